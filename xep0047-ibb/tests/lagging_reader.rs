//! A reader that lags, and a peer that keeps sending (BAD-INPUT F11): what a session holds
//! for the reader is bounded by `Config::max_queued_blocks` (64) in both stanza kinds.
//! Deterministic: the sans-IO session alone, fed stanzas by hand; plus one transfer over the
//! hub showing a gated pump stays under the bound.

use std::time::{Duration, Instant};

use ft_transport::hub::Hub;
use jid::Jid;
use minidom::Element;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xep0047_ibb::proto::IncomingOpen;
use xep0047_ibb::{Config, Error, Ibb, OpenOptions, ProtocolError, Session, Sid, StanzaKind};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

const NS: &str = "http://jabber.org/protocol/ibb";

fn alice() -> Jid {
    "alice@example.org/a".parse().unwrap()
}

fn bob() -> Jid {
    "bob@example.org/b".parse().unwrap()
}

/// Bob's session, having accepted alice's open of `sid` (block-size 4096, `stanza`).
fn accepted(config: &Config, stanza: &str, now: Instant) -> Session {
    let open: Element =
        format!("<open xmlns='{NS}' sid='lag' block-size='4096' stanza='{stanza}'/>")
            .parse()
            .unwrap();
    let iq = Stanza::Iq(Iq::Set {
        from: Some(alice()),
        to: Some(bob()),
        id: "open1".into(),
        payload: open,
    });
    let incoming = IncomingOpen::parse(&iq).unwrap().unwrap();
    let mut s = Session::accept(config, &incoming, now);
    assert!(matches!(
        s.poll_transmit(),
        Some(Stanza::Iq(Iq::Result { .. }))
    ));
    s
}

fn data(seq: u16, len: usize) -> Element {
    let text = base64_simd::STANDARD.encode_to_string(vec![b'x'; len]);
    format!("<data xmlns='{NS}' sid='lag' seq='{seq}'>{text}</data>")
        .parse()
        .unwrap()
}

fn data_iq(seq: u16, len: usize) -> Stanza {
    Stanza::Iq(Iq::Set {
        from: Some(alice()),
        to: Some(bob()),
        id: format!("d{seq}"),
        payload: data(seq, len),
    })
}

fn data_message(seq: u16, len: usize) -> Stanza {
    let mut m = Message::new(Some(bob()));
    m.from = Some(alice());
    m.payloads.push(data(seq, len));
    Stanza::Message(m)
}

fn transmitted(s: &mut Session) -> Vec<Stanza> {
    std::iter::from_fn(|| s.poll_transmit()).collect()
}

fn is_close(st: &Stanza) -> bool {
    matches!(st, Stanza::Iq(Iq::Set { payload, .. }) if payload.is("close", NS))
}

#[test]
fn f11_iq_a_sender_ignoring_held_back_acks_gets_resource_constraint_cancel_and_a_close() {
    let now = Instant::now();
    let mut config = Config::default();
    // The reader never reads: past one chunk's worth, acks are held back.
    config.recv_buffer(4096);
    let mut s = accepted(&config, "iq", now);
    let mut acked = Vec::new();
    let mut refused = None;
    for seq in 0..200u16 {
        let flow = s.handle_stanza(now, data_iq(seq, 4096));
        assert!(flow.is_break());
        for st in transmitted(&mut s) {
            match st {
                Stanza::Iq(Iq::Result { id, .. }) => acked.push(id),
                Stanza::Iq(Iq::Error { id, error, .. }) => {
                    refused.get_or_insert((seq, id, error));
                }
                other if is_close(&other) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        if refused.is_some() {
            break;
        }
        assert!(s.unacknowledged() <= 64);
    }
    // Chunk 0 fits the receive buffer and is acknowledged; 1..=64 are held back.
    assert_eq!(acked, ["d0"]);
    let (seq, id, error) = refused.expect("the 66th chunk is refused");
    assert_eq!((seq, id.as_str()), (65, "d65"));
    assert_eq!(
        error.defined_condition,
        DefinedCondition::ResourceConstraint
    );
    assert_eq!(error.type_, ErrorType::Cancel);
    assert!(matches!(
        s.error(),
        Some(Error::Protocol(ProtocolError::TooManyUnacknowledged(64)))
    ));
    assert_eq!(
        s.unacknowledged(),
        0,
        "nothing is held for the peer any more"
    );
    // The refused chunk was never buffered.
    assert_eq!(s.readable(), 65 * 4096);
    // Later chunks are not taken: item-not-found, the buffer does not grow.
    assert!(s.handle_stanza(now, data_iq(66, 4096)).is_break());
    let after = transmitted(&mut s);
    assert!(
        matches!(&after[..], [Stanza::Iq(Iq::Error { error, .. })]
            if error.defined_condition == DefinedCondition::ItemNotFound),
        "{after:?}"
    );
    assert_eq!(s.readable(), 65 * 4096);
}

#[test]
fn f11_iq_empty_chunks_cannot_grow_the_held_back_acks_either() {
    let now = Instant::now();
    let mut config = Config::default();
    config.recv_buffer(1);
    let mut s = accepted(&config, "iq", now);
    assert!(s.handle_stanza(now, data_iq(0, 10)).is_break());
    let mut errors = 0;
    for seq in 1..10_000u16 {
        let _ = s.handle_stanza(now, data_iq(seq, 0));
        errors += transmitted(&mut s)
            .iter()
            .filter(|st| matches!(st, Stanza::Iq(Iq::Error { .. })))
            .count();
        assert!(s.unacknowledged() <= 64);
    }
    assert!(errors >= 1);
    assert!(matches!(
        s.error(),
        Some(Error::Protocol(ProtocolError::TooManyUnacknowledged(_)))
    ));
}

#[test]
fn f11_message_mode_closes_on_the_65th_unread_chunk_whatever_its_size() {
    let now = Instant::now();
    let config = Config::default();
    let mut s = accepted(&config, "message", now);
    for seq in 0..64u16 {
        assert!(s.handle_stanza(now, data_message(seq, 10)).is_break());
        assert!(
            transmitted(&mut s).is_empty(),
            "chunk {seq} is taken silently"
        );
    }
    assert_eq!(s.queued_chunks(), 64);
    assert!(s.error().is_none());
    // 640 bytes buffered, far below recv_buffer and message_overrun: the count ends it.
    assert!(s.handle_stanza(now, data_message(64, 10)).is_break());
    let out = transmitted(&mut s);
    let Some(Stanza::Message(m)) = out.first() else {
        panic!("{out:?}")
    };
    assert_eq!(m.type_, MessageType::Error);
    let error = m
        .payloads
        .iter()
        .find(|p| p.name() == "error")
        .expect("an error payload");
    assert!(
        error
            .get_child("resource-constraint", "urn:ietf:params:xml:ns:xmpp-stanzas")
            .is_some()
    );
    assert_eq!(error.attr("type"), Some("wait"));
    assert!(out[1..].iter().any(is_close), "{out:?}");
    assert!(matches!(
        s.error(),
        Some(Error::Protocol(ProtocolError::ReceiveBufferOverflow(_)))
    ));
}

/// Over the hub: a message-mode transfer at block-size 4096 to a slow reader, through a pump
/// that awaits `Ibb::ready`, stays under the 64-chunk bound and delivers every byte.
#[tokio::test]
async fn f11_a_gated_pump_keeps_a_small_block_message_stream_under_the_bound() {
    let hub = Hub::new();
    let (at, arx) = hub.connect(alice());
    let (bt, brx) = hub.connect(bob());
    let a = Ibb::new(at, Config::default());
    let b = Ibb::new(bt, Config::default());
    tokio::spawn(ft_transport::pump(arx, a.clone()));
    // The pump awaits `Ibb::ready` before each stanza.
    tokio::spawn(ft_transport::pump(brx, b.clone()));
    let sid = Sid::new("gated").unwrap();
    let accept = b.expect(alice(), sid.clone(), Duration::from_secs(5));
    let opened = a.open(
        bob(),
        sid,
        OpenOptions {
            block_size: 4096,
            stanza: StanzaKind::Message,
        },
    );
    let (sa, sb) = tokio::join!(opened, accept);
    let (mut sa, mut sb) = (sa.unwrap(), sb.unwrap());
    let out: Vec<u8> = (0..4u32 << 20).map(|i| (i * 7 + i / 4096) as u8).collect();
    let expected = out.clone();
    let writer = tokio::spawn(async move {
        sa.write_all(&out).await.unwrap();
        sa.shutdown().await.unwrap();
    });
    let mut got = Vec::new();
    let mut buf = vec![0; 4096];
    loop {
        let n = sb.read(&mut buf).await.expect("no overflow");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        // Slower than the sender: a pause every 64 KiB.
        if got.len() % (64 * 1024) < n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    writer.await.unwrap();
    assert!(got == expected, "every byte, in order");
}
