//! A minimal XML stream over TCP: a [`StanzaTransport`] that really serializes and parses
//! every stanza, with no server in between (the "raw XML" path of the suite), and the reader
//! the Prosody clients of the suite use.
//!
//! # Framing
//!
//! After the `<stream:stream>` header, a byte scanner finds where each top-level element
//! ends (tags, quoted attribute values, CDATA); the element's bytes are then parsed on their
//! own with the stream's namespaces in scope. Comments, processing instructions and DTDs are
//! refused (`restricted-xml`, RFC 6120 §11.1), an element larger than the limit is refused
//! (`policy-violation`), and text between stanzas is `not-well-formed`.
//!
//! # The `<data/>` fast path
//!
//! A general DOM parse validates and copies every character of text, which caps an IBB
//! stream near 130 MB/s. The IBB payload is almost all base64 text, so both directions have
//! a strict fast path:
//!
//! * **parse**: when an element ends exactly in `</data></iq>` or `</data></message>`, the
//!   run of base64-alphabet bytes (`A–Z a–z 0–9 + / =`) just before `</data>` is cut out, the
//!   rest (a few hundred bytes) goes through the ordinary parser and conversion, and the cut
//!   text is appended to the last child element. Alphabet bytes have no markup, entity or
//!   normalization meaning in XML, and the `</data>` right before the root's end tag closes
//!   the root's last child, so the result is the element the general parser builds,
//!   well-formedness checks included. Anything else takes the general path. The reader's
//!   [`XmlReader::next_stanza`] converts the rest to a stanza first and appends the text to
//!   its `<data/>` payload afterwards, so the conversion never copies the text; where the
//!   stanza would not keep that child as its payload, it parses the general way. Before
//!   all that, a data iq in exactly the shape the serializer writes, with plain attribute
//!   values and valid base64, is read without any XML parser (a per-stanza parser and
//!   conversion cost about as much as the rest of the receive path at 64 KiB chunks).
//! * **serialize**: an iq `set` or a message whose only payload is an IBB `<data/>` with
//!   alphabet-only text is written directly, with attribute values escaped, and the transport
//!   sends its text from the stanza itself with one vectored write; an `<iq type='result'/>`
//!   without payload (the acknowledgement) is written directly too; anything else goes
//!   through minidom.
//!
//! The unit tests check that both paths produce identical stanzas.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;

use bytes::{Buf, BytesMut};
use jid::Jid;
use minidom::Element;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stream_error::DefinedCondition;

use ft_transport::StanzaTransport;

mod fast;
mod frame;

use fast::{
    fast_text, parse_fast, parse_fast_stanza, serialize_empty_result, serialize_fast,
    serialize_fast_head,
};
use frame::{Found, Scan, find_seq, scan, tag_end};

/// Namespace of the stream element.
pub const NS_STREAM: &str = "http://etherx.jabber.org/streams";
/// Default namespace of a client stream.
pub const NS_CLIENT: &str = "jabber:client";
/// The IBB namespace, whose `<data/>` has the fast path.
pub const NS_IBB: &str = "http://jabber.org/protocol/ibb";

/// Largest top-level element accepted by default: 1 MiB, room for an IBB `<data/>` at the
/// maximum block size (about 87 kB) many times over, while a peer that never closes an
/// element cannot make the reader buffer without bound.
pub const DEFAULT_MAX_ELEMENT: usize = 1 << 20;

/// Stanzas at least this long skip the writer's buffer.
const DIRECT_WRITE: usize = 16 * 1024;

/// What reading or writing the stream can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum XmlStreamError {
    /// The socket failed.
    #[error("xml stream i/o failed")]
    Io(#[from] io::Error),
    /// The stream ended in the middle of an element or before its header.
    #[error("xml stream ended inside an element")]
    UnexpectedEof,
    /// An element grew past the size limit.
    #[error("top-level element larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A comment, processing instruction or DTD, which RFC 6120 §11.1 forbids.
    #[error("restricted xml (comment, processing instruction or dtd) at byte {offset}")]
    Restricted {
        /// Offset in the stream.
        offset: u64,
    },
    /// The bytes are not well-formed XML.
    #[error("malformed xml: {0}")]
    NotWellFormed(String),
    /// The stream did not open with a `<stream:stream>` header in the streams namespace.
    #[error("missing or invalid stream header")]
    BadHeader,
    /// A top-level element is not an iq, message or presence the parsers accept.
    #[error("top-level element is not a valid stanza: {0}")]
    NotAStanza(String),
    /// The peer sent a stream error.
    #[error("peer sent a stream error: {0}")]
    StreamError(String),
    /// The writer task is gone (the stream was closed or its socket failed).
    #[error("xml stream is closed")]
    Closed,
}

impl XmlStreamError {
    /// The RFC 6120 stream error condition this failure calls for, where one applies.
    pub fn condition(&self) -> Option<DefinedCondition> {
        Some(match self {
            Self::TooLarge { .. } => DefinedCondition::PolicyViolation,
            Self::Restricted { .. } => DefinedCondition::RestrictedXml,
            Self::NotWellFormed(_) => DefinedCondition::NotWellFormed,
            Self::BadHeader => DefinedCondition::InvalidNamespace,
            Self::NotAStanza(_) => DefinedCondition::UnsupportedStanzaType,
            Self::Io(_) | Self::UnexpectedEof | Self::StreamError(_) | Self::Closed => {
                return None;
            }
        })
    }
}

/// The header every stream of the suite opens with.
pub fn stream_header(to: Option<&str>) -> String {
    let to = to.map_or_else(String::new, |t| format!(" to='{}'", escape(t)));
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAM}' \
         version='1.0'{to}>"
    )
}

/// Reads elements off a stream.
#[derive(Debug)]
pub struct XmlReader<R> {
    r: R,
    buf: BytesMut,
    consumed: u64,
    scan: Scan,
    limit: usize,
    prefixes: BTreeMap<Option<String>, String>,
    fast_hits: u64,
}

impl<R: AsyncRead + Unpin> XmlReader<R> {
    /// A reader over `r` with the default element size limit.
    pub fn new(r: R) -> Self {
        Self::with_buffer(r, BytesMut::new())
    }

    /// A reader that starts with bytes already read from `r`.
    pub fn with_buffer(r: R, buf: BytesMut) -> Self {
        Self {
            r,
            buf,
            consumed: 0,
            scan: Scan::default(),
            limit: DEFAULT_MAX_ELEMENT,
            prefixes: BTreeMap::new(),
            fast_hits: 0,
        }
    }

    /// How many elements took the `<data/>` fast path so far.
    pub fn fast_hits(&self) -> u64 {
        self.fast_hits
    }

    async fn fill(&mut self) -> Result<(), XmlStreamError> {
        if self.buf.capacity() - self.buf.len() < 64 * 1024 {
            self.buf.reserve(256 * 1024);
        }
        if self.r.read_buf(&mut self.buf).await? == 0 {
            return Err(XmlStreamError::UnexpectedEof);
        }
        Ok(())
    }

    fn advance(&mut self, n: usize) {
        self.buf.advance(n);
        self.consumed += n as u64;
        self.scan = Scan::default();
    }

    /// Reads the peer's `<?xml?>` declaration (optional) and `<stream:stream>` header, and
    /// puts its namespace declarations in scope for the elements that follow.
    pub async fn read_header(&mut self) -> Result<(), XmlStreamError> {
        loop {
            let ws = self
                .buf
                .iter()
                .take_while(|b| b.is_ascii_whitespace())
                .count();
            self.advance(ws);
            if self.buf.starts_with(b"<?xml") {
                if let Some(end) = find_seq(&self.buf, b"?>") {
                    self.advance(end + 2);
                    continue;
                }
            } else if self.buf.len() >= 2
                && let Some(end) = tag_end(&self.buf, 1)
            {
                let tag = std::str::from_utf8(&self.buf[..=end])
                    .map_err(|_| XmlStreamError::BadHeader)?
                    .to_owned();
                self.advance(end + 1);
                return self.accept_header(&tag);
            }
            if self.buf.len() > self.limit {
                return Err(XmlStreamError::TooLarge { limit: self.limit });
            }
            self.fill().await?;
        }
    }

    fn accept_header(&mut self, tag: &str) -> Result<(), XmlStreamError> {
        // Parse the header as an empty element to read its namespace declarations.
        let closed = format!("{}</stream:stream>", tag);
        let elem: Element = closed
            .parse()
            .map_err(|e: minidom::Error| XmlStreamError::NotWellFormed(e.to_string()))?;
        if elem.name() != "stream" || elem.ns() != NS_STREAM {
            return Err(XmlStreamError::BadHeader);
        }
        let mut prefixes = BTreeMap::new();
        for (prefix, ns) in elem.prefixes.declared_prefixes() {
            prefixes.insert(prefix.clone(), ns.clone());
        }
        prefixes.entry(None).or_insert_with(|| NS_CLIENT.to_owned());
        self.prefixes = prefixes;
        Ok(())
    }

    /// Where the next top-level element lies in the buffer (not yet consumed), or `None`
    /// at `</stream:stream>`.
    async fn next_frame(&mut self) -> Result<Option<(usize, usize)>, XmlStreamError> {
        loop {
            match scan(&self.buf, &mut self.scan, self.consumed)? {
                Found::Element(start, end) => return Ok(Some((start, end))),
                Found::StreamEnd(end) => {
                    self.advance(end);
                    return Ok(None);
                }
                Found::Incomplete => {
                    let from = self.scan.start.unwrap_or(self.buf.len());
                    if self.buf.len() - from > self.limit {
                        return Err(XmlStreamError::TooLarge { limit: self.limit });
                    }
                    self.fill().await?;
                }
            }
        }
    }

    /// The next top-level element, or `None` at `</stream:stream>`.
    pub async fn next_element(&mut self) -> Result<Option<Element>, XmlStreamError> {
        let Some((start, end)) = self.next_frame().await? else {
            return Ok(None);
        };
        let elem = self.parse_element(start, end);
        self.advance(end);
        check_stream_error(elem?).map(Some)
    }

    /// The next stanza, or `None` at `</stream:stream>`.
    pub async fn next_stanza(&mut self) -> Result<Option<Stanza>, XmlStreamError> {
        let Some((start, end)) = self.next_frame().await? else {
            return Ok(None);
        };
        let fast = parse_fast_stanza(&self.buf[start..end], &self.prefixes);
        if let Ok(Some(_)) = fast {
            self.fast_hits += 1;
        }
        let stanza = match fast {
            Ok(Some(s)) => Ok(s),
            Err(e) => Err(e),
            Ok(None) => parse_general(&self.buf[start..end], &self.prefixes)
                .and_then(check_stream_error)
                .and_then(stanza_from_element),
        };
        self.advance(end);
        stanza.map(Some)
    }

    fn parse_element(&mut self, start: usize, end: usize) -> Result<Element, XmlStreamError> {
        let bytes = &self.buf[start..end];
        if let Some(elem) = parse_fast(bytes, &self.prefixes)? {
            self.fast_hits += 1;
            return Ok(elem);
        }
        parse_general(bytes, &self.prefixes)
    }

    /// The underlying reader and any bytes read past the last element.
    pub fn into_parts(self) -> (R, BytesMut) {
        (self.r, self.buf)
    }
}

/// A stream error from the peer as an error; any other element unchanged.
fn check_stream_error(elem: Element) -> Result<Element, XmlStreamError> {
    if elem.name() == "error" && elem.ns() == NS_STREAM {
        let cond = elem
            .children()
            .next()
            .map_or_else(|| "undefined".to_owned(), |c| c.name().to_owned());
        return Err(XmlStreamError::StreamError(cond));
    }
    Ok(elem)
}

/// Converts a parsed top-level element to a stanza.
pub fn stanza_from_element(elem: Element) -> Result<Stanza, XmlStreamError> {
    let name = elem.name().to_owned();
    Stanza::try_from(elem).map_err(|e| XmlStreamError::NotAStanza(format!("<{name}/>: {e}")))
}

/// Parses one serialized top-level element the way [`XmlReader`] does, for benchmarks of the
/// parse step alone: `fast` chooses whether the `<data/>` fast path may be taken.
#[derive(Debug, Clone)]
pub struct ChunkParser {
    prefixes: BTreeMap<Option<String>, String>,
}

impl Default for ChunkParser {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkParser {
    /// A parser with `jabber:client` as the default namespace.
    pub fn new() -> Self {
        Self {
            prefixes: [(None, NS_CLIENT.to_owned())].into(),
        }
    }

    /// Parses `bytes` (one complete element) into a stanza.
    pub fn parse(&self, bytes: &[u8], fast: bool) -> Result<Stanza, XmlStreamError> {
        if fast && let Some(s) = parse_fast_stanza(bytes, &self.prefixes)? {
            return Ok(s);
        }
        stanza_from_element(parse_general(bytes, &self.prefixes)?)
    }
}

pub(super) fn parse_general(
    bytes: &[u8],
    prefixes: &BTreeMap<Option<String>, String>,
) -> Result<Element, XmlStreamError> {
    Element::from_reader_with_prefixes(bytes, prefixes.clone())
        .map_err(|e| XmlStreamError::NotWellFormed(e.to_string()))
}

/// Escapes an attribute value or text for single-quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// Serializes a stanza to the bytes the stream carries (root with its `xmlns`).
pub fn serialize(stanza: &Stanza, out: &mut Vec<u8>) {
    if serialize_fast(stanza, out) || serialize_empty_result(stanza, out) {
        return;
    }
    serialize_general(stanza, out);
}

/// Serializes through minidom (no fast path).
pub fn serialize_general(stanza: &Stanza, out: &mut Vec<u8>) {
    let elem = Element::from(clone_stanza(stanza));
    // Writing to a Vec cannot fail on I/O; minidom only fails on invalid names, which a
    // parsed or built Element does not have.
    let _ = elem.write_to(out);
}

fn clone_stanza(stanza: &Stanza) -> Stanza {
    match stanza {
        Stanza::Iq(iq) => Stanza::Iq(iq.clone()),
        Stanza::Message(m) => Stanza::Message(m.clone()),
        Stanza::Presence(p) => Stanza::Presence(p.clone()),
    }
}

/// A [`StanzaTransport`] writing to an XML stream. Stamps `from` with its own JID when a
/// stanza has none (what a server would do), serializes in the sending task, and hands the
/// bytes to a writer task that coalesces them into large writes.
#[derive(Debug, Clone)]
pub struct XmlStreamTransport {
    jid: Jid,
    stamp_from: bool,
    tx: mpsc::Sender<Frame>,
}

/// What the sending side hands the writer task.
#[derive(Debug)]
enum Frame {
    /// A serialized stanza.
    Bytes(Vec<u8>),
    /// A stanza on the `<data/>` fast path: its serialized start, its text (still in the
    /// stanza) and its closing tags, written together with one vectored write.
    Data {
        head: Vec<u8>,
        stanza: Box<Stanza>,
        tail: &'static [u8],
    },
}

impl XmlStreamTransport {
    /// Starts the writer task on `w` (the stream header must already be written, or be
    /// `header`), returning the transport and the task's handle. The task ends when every
    /// transport clone is dropped, after writing `</stream:stream>`.
    pub fn spawn<W: AsyncWrite + Unpin + Send + 'static>(
        jid: Jid,
        stamp_from: bool,
        w: W,
        header: Option<String>,
    ) -> (Self, tokio::task::JoinHandle<io::Result<()>>) {
        let (tx, rx) = mpsc::channel(64);
        let task = tokio::spawn(write_loop(w, rx, header));
        (
            Self {
                jid,
                stamp_from,
                tx,
            },
            task,
        )
    }
}

/// Writes all of `parts` with as few vectored writes as the socket allows.
async fn write_all_vectored<W: AsyncWrite + Unpin>(
    w: &mut W,
    mut parts: [&[u8]; 3],
) -> io::Result<()> {
    let mut first = 0;
    while first < parts.len() {
        if parts[first].is_empty() {
            first += 1;
            continue;
        }
        let slices = parts.map(io::IoSlice::new);
        let mut n = w.write_vectored(&slices[first..]).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while n > 0 {
            let take = n.min(parts[first].len());
            parts[first] = &parts[first][take..];
            n -= take;
            if parts[first].is_empty() {
                first += 1;
            }
        }
    }
    Ok(())
}

async fn write_loop<W: AsyncWrite + Unpin>(
    w: W,
    mut rx: mpsc::Receiver<Frame>,
    header: Option<String>,
) -> io::Result<()> {
    let mut w = BufWriter::with_capacity(256 * 1024, w);
    if let Some(h) = header {
        w.write_all(h.as_bytes()).await?;
        w.flush().await?;
    }
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(frame) = next {
            match frame {
                Frame::Bytes(bytes) if bytes.len() < DIRECT_WRITE => w.write_all(&bytes).await?,
                // Large stanzas go straight to the socket: no copy into the buffer.
                Frame::Bytes(bytes) => {
                    w.flush().await?;
                    w.get_mut().write_all(&bytes).await?;
                }
                Frame::Data { head, stanza, tail } => {
                    let text = fast_text(&stanza).as_bytes();
                    if head.len() + text.len() < DIRECT_WRITE {
                        w.write_all(&head).await?;
                        w.write_all(text).await?;
                        w.write_all(tail).await?;
                    } else {
                        w.flush().await?;
                        write_all_vectored(w.get_mut(), [&head, text, tail]).await?;
                    }
                }
            }
            next = rx.try_recv().ok();
        }
        w.flush().await?;
    }
    w.write_all(b"</stream:stream>").await?;
    w.flush().await?;
    w.shutdown().await
}

impl StanzaTransport for XmlStreamTransport {
    type Error = XmlStreamError;

    fn send(&self, mut stanza: Stanza) -> impl Future<Output = Result<(), Self::Error>> + Send {
        if self.stamp_from && ft_transport::util::stanza_from(&stanza).is_none() {
            ft_transport::util::set_stanza_from(&mut stanza, Some(self.jid.clone()));
        }
        let mut head = Vec::new();
        let frame = match serialize_fast_head(&stanza, &mut head) {
            Some((_, tail)) => Frame::Data {
                head,
                stanza: Box::new(stanza),
                tail,
            },
            None => {
                if !serialize_empty_result(&stanza, &mut head) {
                    serialize_general(&stanza, &mut head);
                }
                Frame::Bytes(head)
            }
        };
        let tx = self.tx.clone();
        async move { tx.send(frame).await.map_err(|_| XmlStreamError::Closed) }
    }

    fn jid(&self) -> &Jid {
        &self.jid
    }
}

/// Both ends of a serverless XML stream over one loopback TCP connection.
#[derive(Debug)]
pub struct Peer {
    /// Sends stanzas.
    pub transport: XmlStreamTransport,
    /// Reads the other side's stanzas.
    pub reader: XmlReader<OwnedReadHalf>,
    /// The writer task.
    pub writer: tokio::task::JoinHandle<io::Result<()>>,
}

impl Peer {
    /// Opens the stream on `tcp` as `jid`: writes our header and reads the peer's.
    pub async fn open(tcp: TcpStream, jid: Jid) -> Result<Self, XmlStreamError> {
        tcp.set_nodelay(true)?;
        let (r, w): (OwnedReadHalf, OwnedWriteHalf) = tcp.into_split();
        let (transport, writer) =
            XmlStreamTransport::spawn(jid, true, w, Some(stream_header(None)));
        let mut reader = XmlReader::new(r);
        reader.read_header().await?;
        Ok(Self {
            transport,
            reader,
            writer,
        })
    }
}

/// Two entities joined by a raw XML stream on 127.0.0.1.
pub async fn pair(a: Jid, b: Jid) -> Result<(Peer, Peer), XmlStreamError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (ca, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (pa, pb) = tokio::join!(Peer::open(ca?, a), Peer::open(accepted?.0, b));
    Ok((pa?, pb?))
}

#[cfg(test)]
mod tests {
    use super::fast::parse_data_iq;
    use super::*;
    use xep0047_ibb::payload::{Data, Sid};
    use xmpp_parsers::iq::Iq;
    use xmpp_parsers::message::Message;
    use xmpp_parsers::message::MessageType;

    fn data_el(n: usize, sid: &str) -> Element {
        Data::encode(7, &Sid::new(sid).unwrap(), crate::pattern::slice_at(0, n))
    }

    fn data_iq(n: usize) -> Stanza {
        Stanza::Iq(Iq::Set {
            from: Some("a@x/r".parse().unwrap()),
            to: Some("b@x/r".parse().unwrap()),
            id: "id&1".into(),
            payload: data_el(n, "s'&<1"),
        })
    }

    fn b64(n: usize) -> String {
        base64_simd::STANDARD.encode_to_string(crate::pattern::slice_at(0, n))
    }

    fn client_prefixes() -> BTreeMap<Option<String>, String> {
        [(None, NS_CLIENT.to_owned())].into()
    }

    #[test]
    fn fast_and_general_serialization_give_the_same_stanza() {
        for stanza in [
            data_iq(4096),
            Stanza::Message({
                let mut m =
                    Message::new_with_type(MessageType::Normal, Some("b@x/r".parse().unwrap()));
                m.id = Some(xmpp_parsers::message::Id("m1".into()));
                m.payloads.push(data_el(100, "s"));
                m
            }),
        ] {
            let (mut fast, mut general) = (Vec::new(), Vec::new());
            assert!(serialize_fast(&stanza, &mut fast));
            serialize_general(&stanza, &mut general);
            let a = parse_general(&fast, &client_prefixes()).unwrap();
            let b = parse_general(&general, &client_prefixes()).unwrap();
            assert_eq!(a, b);
            assert_eq!(stanza_from_element(a).unwrap(), stanza);
        }
    }

    #[test]
    fn a_direct_acknowledgement_parses_to_the_stanza_minidom_writes() {
        for (from, to) in [(Some("a@x/r'&<"), Some("b@x/r")), (None, None)] {
            let stanza = Stanza::Iq(Iq::Result {
                from: from.map(|j| j.parse().unwrap()),
                to: to.map(|j| j.parse().unwrap()),
                id: "id'\"&<>1".into(),
                payload: None,
            });
            let (mut fast, mut general) = (Vec::new(), Vec::new());
            assert!(serialize_empty_result(&stanza, &mut fast));
            serialize_general(&stanza, &mut general);
            let parser = ChunkParser::new();
            assert_eq!(parser.parse(&fast, false).unwrap(), stanza);
            assert_eq!(parser.parse(&general, false).unwrap(), stanza);
        }
    }

    #[test]
    fn fast_parse_yields_exactly_the_general_parse() {
        let mut bytes = Vec::new();
        serialize(&data_iq(65535), &mut bytes);
        let fast = parse_fast(&bytes, &client_prefixes())
            .unwrap()
            .expect("fast path taken");
        let general = parse_general(&bytes, &client_prefixes()).unwrap();
        assert_eq!(fast, general);
    }

    fn data_message(n: usize) -> Stanza {
        let mut m = Message::new_with_type(MessageType::Chat, Some("b@x/r".parse().unwrap()));
        m.from = Some("a@x/r".parse().unwrap());
        m.id = Some(xmpp_parsers::message::Id("m&1".into()));
        m.payloads.push(data_el(n, "s"));
        Stanza::Message(m)
    }

    #[test]
    fn fast_stanza_parse_yields_exactly_the_general_stanza() {
        let parser = ChunkParser::new();
        for stanza in [data_iq(65535), data_iq(100), data_message(65535)] {
            let mut bytes = Vec::new();
            serialize(&stanza, &mut bytes);
            assert!(
                parse_fast_stanza(&bytes, &client_prefixes())
                    .unwrap()
                    .is_some()
            );
            let fast = parser.parse(&bytes, true).unwrap();
            assert_eq!(fast, parser.parse(&bytes, false).unwrap());
            assert_eq!(fast, stanza);
        }
    }

    #[test]
    fn the_parserless_data_iq_path_yields_exactly_the_general_stanza() {
        let parser = ChunkParser::new();
        let run = b64(300);
        let ibb = NS_IBB;
        let head = "<iq xmlns='jabber:client' type='set'";
        for (attrs, data_attrs, taken) in [
            (
                " id='ibb1-s' from='a@x/r' to='b@x/r'",
                " seq='0' sid='s'",
                true,
            ),
            (" to='b@x/r' id='i d' ", " sid='s' seq='65535'", false),
            (" to='b@x/r' id='i d'", " sid='s' seq='65535'", true),
            (" id='1'", " seq='7' sid='s 1'", true),
            (" id=''", " seq='' sid=''", true),
            (" id='1' id='2'", " seq='7' sid='s'", false),
            (" id='1'", " seq='7' sid='s' seq='8'", false),
            (" id='1&amp;'", " seq='7' sid='s'", false),
            (" id='1' from='not a jid@'", " seq='7' sid='s'", false),
            (" id='1' xml:lang='en'", " seq='7' sid='s'", false),
            (" id=\"1\"", " seq='7' sid='s'", false),
        ] {
            let xml = format!("{head}{attrs}><data xmlns='{ibb}'{data_attrs}>{run}</data></iq>");
            let general = parser.parse(xml.as_bytes(), false);
            match parse_data_iq(xml.as_bytes()) {
                Some(fast) => {
                    assert!(taken, "{xml}");
                    assert_eq!(&fast, general.as_ref().unwrap(), "{xml}");
                }
                None => assert!(!taken, "{xml}"),
            }
            // Whichever way it goes, the reader's answer is the general one.
            let got = parser.parse(xml.as_bytes(), true);
            assert_eq!(format!("{got:?}"), format!("{general:?}"), "{xml}");
        }
        // What the sending side writes takes it.
        let mut bytes = Vec::new();
        let stanza = Stanza::Iq(Iq::Set {
            from: Some("a@x/r".parse().unwrap()),
            to: Some("b@x/r".parse().unwrap()),
            id: "ibb7-bench".into(),
            payload: data_el(4096, "bench"),
        });
        serialize(&stanza, &mut bytes);
        assert_eq!(parse_data_iq(&bytes), Some(stanza));
    }

    #[test]
    fn a_data_run_the_stanza_does_not_keep_as_its_payload_is_parsed_the_general_way() {
        // An iq keeps its first child only: the run in a later `<data/>` must not end up in
        // the first one, even when that one is named `data` too.
        let run = b64(300);
        let parser = ChunkParser::new();
        for first in ["<x xmlns='urn:x'/>", "<data xmlns='urn:x'/>"] {
            let xml = format!(
                "<iq xmlns='jabber:client' type='set' id='1'>{first}<data xmlns='{NS_IBB}' \
                 seq='0' sid='s'>{run}</data></iq>"
            );
            let fast = parser.parse(xml.as_bytes(), true);
            let general = parser.parse(xml.as_bytes(), false);
            assert_eq!(format!("{fast:?}"), format!("{general:?}"), "{first}");
            assert!(
                parse_fast_stanza(xml.as_bytes(), &client_prefixes())
                    .unwrap()
                    .is_none()
            );
        }
    }

    #[test]
    fn text_with_other_characters_keeps_them_in_order() {
        // Whitespace and an entity before the base64 run: only the run is cut.
        let run = b64(300);
        let xml = format!(
            "<iq xmlns='jabber:client' type='set' id='1'><data xmlns='{NS_IBB}' seq='0' \
             sid='s'>&amp; \n{run}</data></iq>"
        );
        let fast = parse_fast(xml.as_bytes(), &client_prefixes())
            .unwrap()
            .unwrap();
        assert_eq!(
            fast,
            parse_general(xml.as_bytes(), &client_prefixes()).unwrap()
        );
        assert_eq!(fast.children().next().unwrap().text(), format!("& \n{run}"));
    }

    #[test]
    fn the_cut_is_the_whole_alphabet_run_whatever_precedes_it() {
        // A `>` in the text, base64 that is not valid (length), and valid base64 directly
        // after the start tag: each parses as the general path does.
        let run = b64(300);
        for text in [
            format!("a>{run}"),
            format!("{run}A"),
            run.clone(),
            format!("{run}\n"),
        ] {
            let xml = format!(
                "<iq xmlns='jabber:client' type='set' id='1'><data xmlns='{NS_IBB}' seq='0' \
                 sid='s'>{}</data></iq>",
                text.replace('>', "&gt;")
            );
            let general = parse_general(xml.as_bytes(), &client_prefixes()).unwrap();
            if let Some(fast) = parse_fast(xml.as_bytes(), &client_prefixes()).unwrap() {
                assert_eq!(fast, general);
            }
            let xml = xml.replace("&gt;", ">");
            let general = parse_general(xml.as_bytes(), &client_prefixes()).unwrap();
            let fast = parse_fast(xml.as_bytes(), &client_prefixes()).unwrap();
            assert_eq!(fast.unwrap_or_else(|| general.clone()), general);
        }
    }

    #[test]
    fn malformed_rest_is_still_rejected_on_the_fast_path() {
        let run = b64(300);
        let xml =
            format!("<iq xmlns='jabber:client' type='set' id='1><data seq='0'>{run}</data></iq>");
        assert!(matches!(
            parse_fast(xml.as_bytes(), &client_prefixes()),
            Err(XmlStreamError::NotWellFormed(_))
        ));
    }

    #[tokio::test]
    async fn comments_are_restricted_xml() {
        let input = format!("{}<!-- hi --><iq/>", stream_header(None));
        let mut r = XmlReader::new(input.as_bytes());
        r.read_header().await.unwrap();
        let err = r.next_element().await.unwrap_err();
        assert_eq!(err.condition(), Some(DefinedCondition::RestrictedXml));
    }

    #[tokio::test]
    async fn an_element_past_the_limit_is_a_policy_violation() {
        let input = format!(
            "{}<message><body>{}",
            stream_header(None),
            "a".repeat(DEFAULT_MAX_ELEMENT + 10)
        );
        let mut r = XmlReader::new(input.as_bytes());
        r.read_header().await.unwrap();
        let err = r.next_element().await.unwrap_err();
        assert_eq!(err.condition(), Some(DefinedCondition::PolicyViolation));
    }

    #[tokio::test]
    async fn elements_split_across_reads_and_quotes_with_brackets_are_framed() {
        let header = stream_header(None);
        let input = format!(
            "{header}<message to='b@x' id='a&gt;b\"&lt;'><body>x &gt; y</body></message> \
             <presence/><iq type='get' id='2'><ping xmlns='urn:xmpp:ping'/></iq></stream:stream>"
        );
        let (mut w, r) = tokio::io::duplex(7);
        tokio::spawn(async move { w.write_all(input.as_bytes()).await });
        let mut r = XmlReader::new(r);
        r.read_header().await.unwrap();
        let Some(Stanza::Message(m)) = r.next_stanza().await.unwrap() else {
            panic!()
        };
        assert_eq!(m.id.unwrap().0, "a>b\"<");
        assert!(matches!(
            r.next_stanza().await.unwrap(),
            Some(Stanza::Presence(_))
        ));
        assert!(matches!(
            r.next_stanza().await.unwrap(),
            Some(Stanza::Iq(_))
        ));
        assert!(r.next_stanza().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_stanza_crosses_a_loopback_stream_intact_with_from_stamped() {
        let (a, mut b) = pair("a@x/r".parse().unwrap(), "b@x/r".parse().unwrap())
            .await
            .unwrap();
        let mut sent = data_iq(65535);
        ft_transport::util::set_stanza_from(&mut sent, None);
        a.transport.send(sent).await.unwrap();
        let got = b.reader.next_stanza().await.unwrap().unwrap();
        assert_eq!(got, data_iq(65535));
        assert_eq!(b.reader.fast_hits(), 1);
    }

    #[tokio::test]
    async fn large_and_small_stanzas_cross_in_order() {
        // Fast-path stanzas go out as vectored writes, the rest through the writer's buffer.
        let (a, mut b) = pair("a@x/r".parse().unwrap(), "b@x/r".parse().unwrap())
            .await
            .unwrap();
        let sent = || {
            [
                data_message(65535),
                data_iq(100),
                Stanza::Iq(Iq::Result {
                    from: Some("a@x/r".parse().unwrap()),
                    to: None,
                    id: "r1".into(),
                    payload: None,
                }),
                data_iq(65535),
            ]
        };
        for s in sent() {
            a.transport.send(s).await.unwrap();
        }
        for want in sent() {
            assert_eq!(b.reader.next_stanza().await.unwrap().unwrap(), want);
        }
        assert_eq!(b.reader.fast_hits(), 3);
    }
}
