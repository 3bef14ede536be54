//! The session of the tokio-xmpp adapters on a loopback stream with no server (split with a
//! lock, and on a connection's lock-free halves, what the benchmarks' raw-XML path runs),
//! and the reader's answers to a broken peer.
#![cfg(feature = "tokio-xmpp")]

use std::time::Duration;

use ft_transport::codec::{NS_IBB, stream_header};
use ft_transport::xmpp::{Inbound, XmppTransport, open_serverless, open_serverless_halves};
use ft_transport::{Jid, Stanza, StanzaTransport};
use minidom::Element;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

const WAIT: Duration = Duration::from_secs(10);

async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (a, b) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (a, b) = (a.unwrap(), b.unwrap().0);
    a.set_nodelay(true).unwrap();
    b.set_nodelay(true).unwrap();
    (a, b)
}

/// Two entities on one loopback connection: on streams split with `tokio::io::split`
/// (`open_serverless`), or on the connection's lock-free halves (`open_serverless_halves`).
async fn pair(halves: bool) -> ((XmppTransport, Inbound), (XmppTransport, Inbound)) {
    let (a, b) = tcp_pair().await;
    let (ja, jb): (Jid, Jid) = ("a@x/r".parse().unwrap(), "b@x/r".parse().unwrap());
    if halves {
        let ((ra, wa), (rb, wb)) = (a.into_split(), b.into_split());
        (
            open_serverless_halves(ra, wa, ja),
            open_serverless_halves(rb, wb, jb),
        )
    } else {
        (open_serverless(a, ja), open_serverless(b, jb))
    }
}

fn data(n: usize) -> Element {
    let text = base64_simd_free(n);
    Element::builder("data", NS_IBB)
        .attr(minidom::rxml::xml_ncname!("seq").into(), "3")
        .attr(minidom::rxml::xml_ncname!("sid").into(), "s&'1")
        .append(text)
        .build()
}

/// Valid base64 of `n` bytes' worth, without a base64 dependency (`A` is 0).
fn base64_simd_free(n: usize) -> String {
    let mut s = "QUJD".repeat(n / 3);
    match n % 3 {
        1 => s.push_str("QQ=="),
        2 => s.push_str("QUI="),
        _ => {}
    }
    s
}

fn data_iq(n: usize, id: &str) -> Stanza {
    Stanza::Iq(Iq::Set {
        from: None,
        to: Some("b@x/r".parse().unwrap()),
        id: id.into(),
        payload: data(n),
    })
}

async fn next(inbound: &mut Inbound) -> Stanza {
    tokio::time::timeout(WAIT, inbound.next())
        .await
        .expect("a stanza in time")
        .expect("the stream is up")
}

#[tokio::test]
async fn large_and_small_stanzas_cross_in_order_with_from_stamped() {
    for halves in [false, true] {
        large_and_small_stanzas_cross(halves).await;
    }
}

async fn large_and_small_stanzas_cross(halves: bool) {
    let ((a, _a_in), (_b, mut b_in)) = pair(halves).await;
    let sent = || {
        let mut m = Message::new_with_type(MessageType::Chat, Some("b@x/r".parse().unwrap()));
        m.payloads.push(data(65535));
        [
            Stanza::Message(m),
            data_iq(100, "i1"),
            Stanza::Iq(Iq::empty_result("b@x/r".parse::<Jid>().unwrap(), "r1")),
            data_iq(65535, "i2"),
        ]
    };
    for s in sent() {
        a.send(s).await.unwrap();
    }
    for mut want in sent() {
        ft_transport::util::set_stanza_from(&mut want, Some("a@x/r".parse().unwrap()));
        assert_eq!(next(&mut b_in).await, want);
    }
}

#[tokio::test]
async fn dropping_every_transport_closes_the_stream_for_both_sides() {
    for halves in [false, true] {
        dropping_every_transport_closes_the_stream(halves).await;
    }
}

async fn dropping_every_transport_closes_the_stream(halves: bool) {
    let ((a, mut a_in), (b, mut b_in)) = pair(halves).await;
    a.send(data_iq(10, "last")).await.unwrap();
    drop(a);
    // What was queued still arrives, then the stream ends.
    assert!(matches!(next(&mut b_in).await, Stanza::Iq(Iq::Set { .. })));
    assert!(
        tokio::time::timeout(WAIT, b_in.next())
            .await
            .unwrap()
            .is_none()
    );
    // b answered with its own footer: a's reader ends too, and b can no longer send.
    assert!(
        tokio::time::timeout(WAIT, a_in.next())
            .await
            .unwrap()
            .is_none()
    );
    tokio::time::timeout(WAIT, async {
        while b.send(data_iq(10, "x")).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("sends fail once the stream is closed");
}

/// Reads from `peer` until `needle` has been seen.
async fn read_until(peer: &mut TcpStream, needle: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(WAIT, async {
        while !String::from_utf8_lossy(&got).contains(needle) {
            let n = peer.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "closed before {needle}: {}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle} in {}", String::from_utf8_lossy(&got)));
    String::from_utf8(got).unwrap()
}

#[tokio::test]
async fn a_malformed_request_is_answered_and_the_stream_survives_it_but_not_a_comment() {
    let (ours, mut peer) = tcp_pair().await;
    let (_t, mut inbound) = open_serverless(ours, "a@x/r".parse().unwrap());
    peer.write_all(stream_header(None).as_bytes())
        .await
        .unwrap();
    // An iq get without payload, then a Spark-style error, then a good ping.
    peer.write_all(
        b"<iq type='get' id='bad1' from='b@x/r'/>\
          <iq type='error' id='e1' from='b@x/r'><error code='406' type='MODIFY'>not-acceptable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/></error></iq>\
          <iq type='get' id='p1' from='b@x/r'><ping xmlns='urn:xmpp:ping'/></iq>",
    )
    .await
    .unwrap();
    // The stream is read as `inbound` is polled: the malformed request is answered on the
    // way to the repaired error.
    let Stanza::Iq(Iq::Error { id, error, .. }) = next(&mut inbound).await else {
        panic!("the repaired error first")
    };
    let wire = read_until(&mut peer, "bad-request").await;
    assert!(
        wire.contains("id='bad1'") || wire.contains("id=\"bad1\""),
        "{wire}"
    );
    assert_eq!(id, "e1");
    assert_eq!(
        (error.type_, error.defined_condition),
        (ErrorType::Modify, DefinedCondition::NotAcceptable)
    );
    // A peer's ping goes to the handlers (only the server's are answered by the adapter).
    assert!(matches!(
        next(&mut inbound).await,
        Stanza::Iq(Iq::Get { .. })
    ));
    // Restricted XML ends the stream with a stream error.
    peer.write_all(b"<!-- no -->").await.unwrap();
    assert!(
        tokio::time::timeout(WAIT, inbound.next())
            .await
            .unwrap()
            .is_none()
    );
    read_until(&mut peer, "restricted-xml").await;
}
