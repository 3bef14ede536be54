//! A minimal XMPP client for measuring a server's own stanza relay rate: plaintext c2s on
//! loopback, SASL PLAIN, resource binding, then prepared IBB `<data/>` stanzas written as
//! fast as the window allows and counted (and checked) at the receiver. No IBB session, no
//! `<open/>`: the server only relays, so this is the ceiling any IBB implementation can
//! reach through it.

use std::time::{Duration, Instant};

use base64_simd::STANDARD as B64;
use jid::Jid;
use minidom::Element;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use xep0047_ibb::payload::{Data, Sid};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::stanza::Stanza;

use ft_transport::codec::{self, Incoming, NS_IBB, XmlCodec, escape, stream_header};
use futures_util::StreamExt;
use tokio_util::codec::FramedRead;

use crate::measure::Run;
use crate::pattern::{self, Verifier};

/// The server's side of the stream, read with the shipped codec.
pub type Reader = FramedRead<OwnedReadHalf, XmlCodec>;

const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";

/// A logged-in raw connection.
#[derive(Debug)]
pub struct RawClient {
    /// The bound full JID.
    pub jid: Jid,
    /// Reads the server's elements.
    pub reader: Reader,
    /// Writes raw bytes.
    pub writer: OwnedWriteHalf,
}

/// The next top-level element or stanza; an error once the stream is over.
async fn next(reader: &mut Reader) -> Result<Incoming, String> {
    match reader.next().await {
        Some(Ok(Incoming::End)) | None => Err("stream closed".to_owned()),
        Some(Ok(item)) => Ok(item),
        Some(Err(e)) => Err(e.to_string()),
    }
}

async fn expect(reader: &mut Reader, what: &str) -> Result<Incoming, String> {
    match tokio::time::timeout(Duration::from_secs(15), next(reader)).await {
        Ok(Ok(item)) => Ok(item),
        Ok(Err(e)) => Err(format!("waiting for {what}: {e}")),
        Err(_) => Err(format!("no {what} within 15 s")),
    }
}

/// A non-stanza element (features, SASL), or an error naming what came instead.
fn element(item: Incoming, what: &str) -> Result<Element, String> {
    match item {
        Incoming::Element(e) => Ok(e),
        other => Err(format!("expected {what}, got {other:?}")),
    }
}

/// Logs `user@domain/resource` in at `addr` (loopback, plaintext, SASL PLAIN).
pub async fn login(
    addr: std::net::SocketAddr,
    user: &str,
    domain: &str,
    password: &str,
    resource: &str,
) -> Result<RawClient, String> {
    if !addr.ip().is_loopback() {
        return Err(format!("refusing plaintext login to non-loopback {addr}"));
    }
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let (r, mut w) = tcp.into_split();
    let mut reader = FramedRead::new(r, XmlCodec::client());
    let io = |e: std::io::Error| e.to_string();
    w.write_all(stream_header(Some(domain)).as_bytes())
        .await
        .map_err(io)?;
    element(
        expect(&mut reader, "stream features").await?,
        "stream features",
    )?;
    let auth = B64.encode_to_string(format!("\0{user}\0{password}"));
    w.write_all(format!("<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{auth}</auth>").as_bytes())
        .await
        .map_err(io)?;
    let answer = element(expect(&mut reader, "sasl answer").await?, "sasl answer")?;
    if answer.name() != "success" {
        return Err(format!("sasl: {}", answer_text(&answer)));
    }
    reader.decoder_mut().restart();
    w.write_all(stream_header(Some(domain)).as_bytes())
        .await
        .map_err(io)?;
    element(
        expect(&mut reader, "stream features after sasl").await?,
        "stream features after sasl",
    )?;
    w.write_all(
        format!(
            "<iq type='set' id='bind1'><bind xmlns='{NS_BIND}'><resource>{}</resource></bind></iq>",
            escape(resource)
        )
        .as_bytes(),
    )
    .await
    .map_err(io)?;
    let Incoming::Stanza(Stanza::Iq(Iq::Result {
        payload: Some(bound),
        ..
    })) = expect(&mut reader, "bind result").await?
    else {
        return Err("bind refused".to_owned());
    };
    let jid = Some(&bound)
        .filter(|b| b.is("bind", NS_BIND))
        .and_then(|b| b.get_child("jid", NS_BIND))
        .map(Element::text)
        .ok_or_else(|| "bind result without a jid".to_owned())?;
    let jid: Jid = jid.parse().map_err(|e| format!("bound jid {jid}: {e}"))?;
    w.write_all(b"<presence/>").await.map_err(io)?;
    Ok(RawClient {
        jid,
        reader,
        writer: w,
    })
}

fn answer_text(e: &Element) -> String {
    e.children()
        .next()
        .map_or_else(|| e.name().to_owned(), |c| c.name().to_owned())
}

/// How the raw client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawMode {
    /// `<iq type='set'>` with at most this many unanswered (1 = stop-and-wait).
    Iq(usize),
    /// `<message>`, no acknowledgement.
    Message,
}

fn stanza_bytes(mode: RawMode, to: &Jid, seq: u16, sid: &Sid, chunk: &[u8]) -> Vec<u8> {
    let payload = Data::encode(seq, sid, chunk);
    let stanza = match mode {
        RawMode::Iq(_) => Stanza::Iq(Iq::Set {
            from: None,
            to: Some(to.clone()),
            id: format!("r{seq}"),
            payload,
        }),
        RawMode::Message => {
            let mut m = Message::new_with_type(MessageType::Normal, Some(to.clone()));
            m.id = Some(xmpp_parsers::message::Id(format!("r{seq}")));
            m.payloads.push(payload);
            Stanza::Message(m)
        }
    };
    let mut out = Vec::new();
    codec::serialize(&stanza, &mut out);
    out
}

/// Sends `bytes` from `a` to `b` through the server in `block`-byte chunks; `b` answers
/// every iq, counts and checks every chunk. Timed from the first write to the last byte
/// checked.
pub async fn relay(
    a: RawClient,
    b: RawClient,
    mode: RawMode,
    block: usize,
    bytes: u64,
) -> Result<Run, String> {
    let RawClient {
        jid: _,
        reader: mut ra,
        writer: mut wa,
    } = a;
    let RawClient {
        jid: b_jid,
        reader: mut rb,
        writer: mut wb,
    } = b;
    let t0 = Instant::now();
    let receiver = tokio::spawn(async move {
        let mut v = Verifier::default();
        while v.received() < bytes {
            let Incoming::Stanza(stanza) = next(&mut rb).await? else {
                continue;
            };
            let (data, ack_to) = match &stanza {
                Stanza::Iq(Iq::Set {
                    payload, id, from, ..
                }) => (Some(payload), Some((id, from))),
                Stanza::Message(m) => (m.payloads.first(), None),
                _ => (None, None),
            };
            let Some(data) = data.filter(|d| d.is("data", NS_IBB)) else {
                continue;
            };
            let d = Data::parse(data).map_err(|e| e.to_string())?;
            v.check(&d.data).map_err(|e| e.to_string())?;
            if let Some((id, from)) = ack_to {
                let Some(from) = from else {
                    return Err("iq without from".to_owned());
                };
                let from = from.to_string();
                let ack = format!(
                    "<iq type='result' id='{}' to='{}'/>",
                    escape(id),
                    escape(&from)
                );
                wb.write_all(ack.as_bytes())
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok::<_, String>((v.received(), t0.elapsed(), rb, wb))
    });
    let sid = Sid::new("raw").unwrap();
    let mut off = 0u64;
    let mut seq = 0u16;
    let mut outstanding = 0usize;
    let window = match mode {
        RawMode::Iq(n) => n.max(1),
        RawMode::Message => usize::MAX,
    };
    while off < bytes {
        while outstanding < window && off < bytes {
            let n = (bytes - off).min(block as u64) as usize;
            let chunk = pattern::slice_at(off, n);
            let out = stanza_bytes(mode, &b_jid, seq, &sid, chunk);
            wa.write_all(&out).await.map_err(|e| e.to_string())?;
            off += chunk.len() as u64;
            seq = seq.wrapping_add(1);
            if window != usize::MAX {
                outstanding += 1;
            }
        }
        if outstanding >= window || (off >= bytes && outstanding > 0) {
            match next(&mut ra).await.map_err(|e| format!("sender: {e}"))? {
                Incoming::Stanza(Stanza::Iq(Iq::Error { error, .. })) => {
                    return Err(format!(
                        "server answered a chunk with an error: {:?}",
                        error.defined_condition
                    ));
                }
                Incoming::Stanza(Stanza::Iq(Iq::Result { .. })) => outstanding -= 1,
                _ => {}
            }
        }
    }
    while outstanding > 0 {
        if let Incoming::Stanza(Stanza::Iq(Iq::Result { .. })) =
            next(&mut ra).await.map_err(|e| format!("sender: {e}"))?
        {
            outstanding -= 1;
        }
    }
    let (got, elapsed, _rb, _wb) = receiver
        .await
        .map_err(|e| format!("receiver task: {e}"))??;
    let _ = wa.write_all(b"</stream:stream>").await;
    Ok(Run {
        bytes: got,
        elapsed: Some(elapsed),
        latency: None,
    })
}
