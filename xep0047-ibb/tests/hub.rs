//! Async tests of the tokio driver over the in-memory hub.
#![cfg(feature = "tokio")]

use std::time::Duration;

use ft_transport::hub::{Hub, HubReceiver, HubTransport};
use jid::Jid;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xep0047_ibb::{Config, Error, Ibb, IbbStream, OpenOptions, Sid, StanzaKind, TimeoutKind};

fn pump(ibb: Ibb<HubTransport>, rx: HubReceiver) {
    tokio::spawn(ft_transport::pump(rx, move |st| ibb.handle_stanza(st)));
}

fn peers(ca: Config, cb: Config) -> (Ibb<HubTransport>, Ibb<HubTransport>, Jid, Jid) {
    peers_with(ca, cb, false)
}

/// Alice and Bob over one hub; with `gated`, Bob's pump awaits `Ibb::ready` before each
/// stanza (message-mode backpressure).
fn peers_with(
    ca: Config,
    cb: Config,
    gated: bool,
) -> (Ibb<HubTransport>, Ibb<HubTransport>, Jid, Jid) {
    let hub = Hub::new();
    let a_jid: Jid = "alice@example.org/a".parse().unwrap();
    let b_jid: Jid = "bob@example.org/b".parse().unwrap();
    let (at, arx) = hub.connect(a_jid.clone());
    let (bt, brx) = hub.connect(b_jid.clone());
    let a = Ibb::new(at, ca);
    let b = Ibb::new(bt, cb);
    pump(a.clone(), arx);
    if gated {
        tokio::spawn(ft_transport::pump(brx, b.clone()));
    } else {
        pump(b.clone(), brx);
    }
    (a, b, a_jid, b_jid)
}

/// A receiver's config for the `stalled_reader` cases: a small buffer, a short patience.
fn impatient(patience: Duration) -> Config {
    let mut c = Config::default();
    c.recv_buffer(64 * 1024).stalled_reader(patience);
    c
}

fn data(n: usize, salt: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(7) ^ salt ^ (i >> 9) as u8)
        .collect()
}

async fn both_ways(block_size: u16, stanza: StanzaKind) {
    let (a, b, a_jid, b_jid) = peers(Config::default(), Config::default());
    let sid = Sid::new(format!("s-{block_size}-{}", stanza.as_str())).unwrap();
    let accept = b.expect(a_jid, sid.clone(), Duration::from_secs(5));
    let opened = a.open(b_jid, sid, OpenOptions { block_size, stanza });
    let (sa, sb) = tokio::join!(opened, accept);
    let (sa, sb) = (sa.unwrap(), sb.unwrap());
    assert_eq!(sb.block_size(), block_size);
    let ab = data(1 << 20, 1);
    let ba = data(1 << 20, 2);
    let task = |mut s: IbbStream, out: Vec<u8>| async move {
        let (mut r, mut w) = tokio::io::split(&mut s);
        let write = async {
            w.write_all(&out).await.unwrap();
            w.flush().await.unwrap();
        };
        let read = async {
            let mut got = Vec::new();
            let mut buf = vec![0; 1 << 20];
            while got.len() < 1 << 20 {
                let n = r.read(&mut buf).await.unwrap();
                assert!(n > 0, "early eof");
                got.extend_from_slice(&buf[..n]);
            }
            got
        };
        let ((), got) = tokio::join!(write, read);
        s.shutdown().await.unwrap();
        got
    };
    let (got_b, got_a) = tokio::join!(task(sb, ba.clone()), task(sa, ab.clone()));
    // What b read is what a wrote, and the other way round.
    assert_eq!(Sha256::digest(&got_b), Sha256::digest(&ab));
    assert_eq!(Sha256::digest(&got_a), Sha256::digest(&ba));
}

#[tokio::test]
async fn one_mib_both_ways_over_iq_at_4096() {
    both_ways(4096, StanzaKind::Iq).await;
}

#[tokio::test]
async fn one_mib_both_ways_over_iq_at_65535() {
    both_ways(65535, StanzaKind::Iq).await;
}

#[tokio::test]
async fn one_mib_both_ways_over_message_at_4096() {
    both_ways(4096, StanzaKind::Message).await;
}

#[tokio::test]
async fn one_mib_both_ways_over_message_at_65535() {
    both_ways(65535, StanzaKind::Message).await;
}

#[tokio::test]
async fn an_incoming_open_is_offered_and_accepted_then_eof_after_shutdown() {
    let (a, b, a_jid, b_jid) = peers(Config::default(), Config::default());
    let b2 = b.clone();
    let recv = tokio::spawn(async move {
        let inc = b2.next_incoming().await.unwrap();
        assert_eq!(inc.block_size(), xep0047_ibb::DEFAULT_BLOCK_SIZE);
        assert_eq!(inc.peer(), &a_jid);
        let mut s = inc.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        got
    });
    let mut s = a
        .open(b_jid, Sid::new("offered").unwrap(), OpenOptions::default())
        .await
        .unwrap();
    s.write_all(b"hello, juliet").await.unwrap();
    s.shutdown().await.unwrap();
    assert_eq!(recv.await.unwrap(), b"hello, juliet");
}

#[tokio::test]
async fn a_rejected_open_fails_with_not_acceptable() {
    let (a, b, _a_jid, b_jid) = peers(Config::default(), Config::default());
    tokio::spawn(async move {
        b.next_incoming().await.unwrap().reject();
    });
    let err = a
        .open(b_jid, Sid::new("nope").unwrap(), OpenOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::Rejected(e)
        if e.defined_condition == xmpp_parsers::stanza_error::DefinedCondition::NotAcceptable));
}

#[tokio::test]
async fn the_initiator_retries_at_the_power_of_two_below_after_resource_constraint() {
    let mut cb = Config::default();
    cb.max_block_size(8192);
    let (a, b, a_jid, b_jid) = peers(Config::default(), cb);
    let accept = b.expect(a_jid, Sid::new("rc").unwrap(), Duration::from_secs(5));
    let opened = a.open(
        b_jid,
        Sid::new("rc").unwrap(),
        OpenOptions {
            block_size: 65535,
            stanza: StanzaKind::Iq,
        },
    );
    let (sa, sb) = tokio::join!(opened, accept);
    // 65535, then the powers of two below: 32768, 16384, 8192 (the peer's cap exactly).
    assert_eq!(sa.unwrap().block_size(), 8192);
    assert_eq!(sb.unwrap().block_size(), 8192);
}

#[tokio::test(start_paused = true)]
async fn an_expected_open_that_never_comes_times_out() {
    let (_a, b, a_jid, _b_jid) = peers(Config::default(), Config::default());
    let r = b
        .expect(a_jid, Sid::new("late").unwrap(), Duration::from_secs(15))
        .await;
    assert!(matches!(r, Err(Error::Timeout(TimeoutKind::Expect))));
}

#[tokio::test]
async fn h6_dropping_an_expect_withdraws_it_so_a_later_open_on_that_sid_is_refused() {
    let (a, b, a_jid, b_jid) = peers(Config::default(), Config::default());
    let expecting = b.expect(
        a_jid.clone(),
        Sid::new("gone").unwrap(),
        Duration::from_secs(30),
    );
    assert_eq!(b.pending_expectations(), 1);
    drop(expecting);
    assert_eq!(b.pending_expectations(), 0, "nothing left in the registry");
    // No longer pre-authorised: the open is an ordinary incoming one, here refused.
    let b2 = b.clone();
    let refuser = tokio::spawn(async move {
        let inc = b2.next_incoming().await.unwrap();
        assert_eq!(inc.sid(), &Sid::new("gone").unwrap());
        inc.reject();
    });
    let err = a
        .open(b_jid, Sid::new("gone").unwrap(), OpenOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::Rejected(e)
        if e.defined_condition == xmpp_parsers::stanza_error::DefinedCondition::NotAcceptable));
    refuser.await.unwrap();
    assert_eq!(b.pending_expectations(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_expect_that_times_out_or_succeeds_leaves_nothing_in_the_registry() {
    let (a, b, a_jid, b_jid) = peers(Config::default(), Config::default());
    let r = b
        .expect(
            a_jid.clone(),
            Sid::new("late").unwrap(),
            Duration::from_secs(1),
        )
        .await;
    assert!(matches!(r, Err(Error::Timeout(TimeoutKind::Expect))));
    assert_eq!(b.pending_expectations(), 0);
    let accept = b.expect(a_jid, Sid::new("ok").unwrap(), Duration::from_secs(5));
    let opened = a.open(b_jid, Sid::new("ok").unwrap(), OpenOptions::default());
    let (sa, sb) = tokio::join!(opened, accept);
    let (_sa, _sb) = (sa.unwrap(), sb.unwrap());
    assert_eq!(b.pending_expectations(), 0);
}

#[tokio::test]
async fn a_second_expect_on_the_same_sid_replaces_the_first_and_dropping_the_first_keeps_it() {
    let (a, b, a_jid, b_jid) = peers(Config::default(), Config::default());
    let first = b.expect(
        a_jid.clone(),
        Sid::new("twice").unwrap(),
        Duration::from_secs(5),
    );
    let second = b.expect(a_jid, Sid::new("twice").unwrap(), Duration::from_secs(5));
    assert!(matches!(
        first.await,
        Err(Error::Timeout(TimeoutKind::Expect))
    ));
    assert_eq!(b.pending_expectations(), 1, "the second still waits");
    let opened = a.open(b_jid, Sid::new("twice").unwrap(), OpenOptions::default());
    let (sa, sb) = tokio::join!(opened, second);
    let (_sa, _sb) = (sa.unwrap(), sb.unwrap());
}

#[tokio::test]
async fn opening_a_peer_that_is_not_there_is_service_unavailable() {
    let (a, _b, _a_jid, _b_jid) = peers(Config::default(), Config::default());
    let err = a
        .open(
            "nobody@example.org/x".parse().unwrap(),
            Sid::new("x").unwrap(),
            OpenOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::Rejected(e)
        if e.defined_condition == xmpp_parsers::stanza_error::DefinedCondition::ServiceUnavailable));
}

#[tokio::test]
async fn ibb_data_for_a_sid_nobody_opened_is_answered_item_not_found() {
    use ft_transport::StanzaTransport;
    use xmpp_parsers::{iq::Iq, stanza::Stanza};
    let hub = Hub::new();
    let raw_jid: Jid = "mallory@example.org/m".parse().unwrap();
    let b_jid: Jid = "bob@example.org/b".parse().unwrap();
    let (raw, mut raw_rx) = hub.connect(raw_jid);
    let (bt, brx) = hub.connect(b_jid.clone());
    pump(Ibb::new(bt, Config::default()), brx);
    let data: minidom::Element =
        "<data xmlns='http://jabber.org/protocol/ibb' seq='0' sid='ghost'>AAAA</data>"
            .parse()
            .unwrap();
    raw.send(Stanza::Iq(Iq::Set {
        from: None,
        to: Some(b_jid),
        id: "d1".into(),
        payload: data,
    }))
    .await
    .unwrap();
    let Some(Stanza::Iq(Iq::Error { id, error, .. })) = raw_rx.recv().await else {
        panic!("no error reply")
    };
    assert_eq!(id, "d1");
    assert_eq!(
        error.defined_condition,
        xmpp_parsers::stanza_error::DefinedCondition::ItemNotFound
    );
    assert_eq!(error.type_, xmpp_parsers::stanza_error::ErrorType::Cancel);
}

/// BAD-INPUT F3: data on a live sid from a JID other than the session's peer is answered
/// `cancel/item-not-found` and never reaches the reader; the session goes on.
#[tokio::test]
async fn f3_data_from_a_jid_other_than_the_session_peer_is_item_not_found_and_not_read() {
    use ft_transport::StanzaTransport;
    use xmpp_parsers::{iq::Iq, stanza::Stanza};
    let hub = Hub::new();
    let a_jid: Jid = "alice@example.org/a".parse().unwrap();
    let b_jid: Jid = "bob@example.org/b".parse().unwrap();
    let (at, arx) = hub.connect(a_jid.clone());
    let (bt, brx) = hub.connect(b_jid.clone());
    let (raw, mut raw_rx) = hub.connect("mallory@example.org/m".parse().unwrap());
    let a = Ibb::new(at, Config::default());
    let b = Ibb::new(bt, Config::default());
    pump(a.clone(), arx);
    pump(b.clone(), brx);
    let sid = Sid::new("live").unwrap();
    let accept = b.expect(a_jid, sid.clone(), Duration::from_secs(5));
    let (sa, sb) = tokio::join!(a.open(b_jid.clone(), sid, OpenOptions::default()), accept);
    let (mut sa, mut sb) = (sa.unwrap(), sb.unwrap());
    let data: minidom::Element =
        "<data xmlns='http://jabber.org/protocol/ibb' seq='0' sid='live'>QUJD</data>"
            .parse()
            .unwrap();
    raw.send(Stanza::Iq(Iq::Set {
        from: None,
        to: Some(b_jid),
        id: "m1".into(),
        payload: data,
    }))
    .await
    .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), raw_rx.recv()).await;
    let Ok(Some(Stanza::Iq(Iq::Error { id, error, .. }))) = answer else {
        panic!("no error reply: {answer:?}")
    };
    assert_eq!(id, "m1");
    assert_eq!(error.type_, xmpp_parsers::stanza_error::ErrorType::Cancel);
    assert_eq!(
        error.defined_condition,
        xmpp_parsers::stanza_error::DefinedCondition::ItemNotFound
    );
    sa.write_all(b"from alice").await.unwrap();
    sa.shutdown().await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), sb.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"from alice", "only the peer's bytes");
}

/// Opens `sid` from `a` to `b` over `<message/>` at `block_size`, `b` having pre-authorised
/// it: both ends' results.
async fn open_message(
    (a, b): (&Ibb<HubTransport>, &Ibb<HubTransport>),
    (a_jid, b_jid): (&Jid, &Jid),
    sid: &str,
    block_size: u16,
) -> (Result<IbbStream, Error>, Result<IbbStream, Error>) {
    let sid = Sid::new(sid).unwrap();
    let accept = b.expect(a_jid.clone(), sid.clone(), Duration::from_secs(5));
    let opened = a.open(
        b_jid.clone(),
        sid,
        OpenOptions {
            block_size,
            stanza: StanzaKind::Message,
        },
    );
    tokio::join!(opened, accept)
}

/// Message mode has no acks: a reader slower than the sender used to end the session at
/// `message_overrun`. A pump that awaits `Ibb::ready()` turns the lag into backpressure on
/// the sender instead, and every byte arrives.
async fn slow_reader_over_message(gated: bool) -> Result<Vec<u8>, std::io::Error> {
    let mut cb = Config::default();
    cb.recv_buffer(256 * 1024).message_overrun(1024 * 1024);
    let (a, b, a_jid, b_jid) = peers_with(Config::default(), cb, gated);
    let (sa, sb) = open_message((&a, &b), (&a_jid, &b_jid), &format!("slow-{gated}"), 65535).await;
    let (mut sa, mut sb) = (sa.unwrap(), sb.unwrap());
    let out = data(8 << 20, 3);
    let expected = out.clone();
    let writer = tokio::spawn(async move {
        let _ = sa.write_all(&out).await;
        let _ = sa.shutdown().await;
    });
    let mut got = Vec::new();
    let mut buf = vec![0; 16 * 1024];
    let res = loop {
        match sb.read(&mut buf).await {
            Ok(0) => break Ok(got),
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                // A reader slower than the sender: a pause every 64 KiB.
                if got.len() % (64 * 1024) < n {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            Err(e) => break Err(e),
        }
    };
    writer.abort();
    if let Ok(got) = &res {
        assert_eq!(Sha256::digest(got), Sha256::digest(&expected));
    }
    res
}

#[tokio::test]
async fn a_pump_that_awaits_ready_gives_message_mode_backpressure() {
    let got = slow_reader_over_message(true)
        .await
        .expect("every byte arrives");
    assert_eq!(got.len(), 8 << 20);
}

#[tokio::test]
async fn without_the_gate_a_lagging_reader_hits_the_overrun_limit() {
    let err = slow_reader_over_message(false)
        .await
        .expect_err("the session ends at message_overrun");
    eprintln!("ungated: {err}");
    assert!(err.to_string().contains("buffer"), "{err}");
}

/// A message-mode reader that takes nothing (a hung disk, a forgotten stream) must not hold
/// up the rest of the connection behind `Ibb::ready`: after `Config::stalled_reader` the
/// pump takes stanzas again, another session opens and completes, and the hung one ends at
/// its own bound (`max_queued_blocks`) with a buffer overflow. Before, every stanza of the
/// connection waited until the hung session's idle timeout (fault seed ibb-message 15200).
#[tokio::test]
async fn f11_a_reader_that_takes_nothing_does_not_hold_up_the_other_sessions() {
    let (a, b, a_jid, b_jid) =
        peers_with(Config::default(), impatient(Duration::from_secs(1)), true);
    let (sa, sb) = open_message((&a, &b), (&a_jid, &b_jid), "hung", 4096).await;
    let (mut sa, sb) = (sa.unwrap(), sb.unwrap());
    // Far more than the receiver holds; nobody reads `sb`.
    let writer = tokio::spawn(async move {
        let _ = sa.write_all(&data(4 << 20, 5)).await;
        let _ = sa.shutdown().await;
    });
    // Wait for the hung session to hold up the pump (best effort: on a loaded machine it
    // may already be past `stalled_reader` when this looks; that it was held up is proved
    // below by its overflow, which the gate alone would never let happen).
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while !b.is_backlogged() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;

    // Another transfer on the same connection, while the first is stuck.
    let moved = tokio::time::timeout(Duration::from_secs(3), async {
        let (sa2, sb2) = open_message((&a, &b), (&a_jid, &b_jid), "other", 4096).await;
        let (mut sa2, mut sb2) = (sa2.expect("the open is answered"), sb2.expect("accepted"));
        let out = data(256 * 1024, 6);
        let send = async {
            sa2.write_all(&out).await.unwrap();
            sa2.shutdown().await.unwrap();
        };
        let mut got = Vec::new();
        let ((), read) = tokio::join!(send, sb2.read_to_end(&mut got));
        read.unwrap();
        assert_eq!(Sha256::digest(&got), Sha256::digest(&out));
    })
    .await;
    assert!(
        moved.is_ok(),
        "the second session waited behind the hung one"
    );

    // The hung session ended at its own bound, not at its idle timeout.
    let ended = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            if let Some(e) = sb.error() {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the hung session ends");
    assert!(ended.to_string().contains("buffer"), "{ended}");
    assert!(!b.is_backlogged());
    writer.abort();
}

/// The other side of `stalled_reader`: a reader that had taken everything is waiting, not
/// stalled. A session that stayed quiet for longer than `stalled_reader` and then gets a
/// burst keeps its backpressure while its reader drains it at its own pace: every byte
/// arrives (the first version counted from the last chunk taken, so this session was
/// "stalled" at its first chunk and overran).
#[tokio::test]
async fn f11_a_reader_idle_for_want_of_data_keeps_its_backpressure() {
    let (a, b, a_jid, b_jid) = peers_with(
        Config::default(),
        impatient(Duration::from_millis(300)),
        true,
    );
    let (sa, sb) = open_message((&a, &b), (&a_jid, &b_jid), "quiet-then-burst", 4096).await;
    let (mut sa, mut sb) = (sa.unwrap(), sb.unwrap());
    let out = data(1 << 20, 7);
    let expected = out.clone();
    let writer = tokio::spawn(async move {
        // Quiet for longer than `stalled_reader`, then a burst far above the buffer.
        tokio::time::sleep(Duration::from_millis(600)).await;
        sa.write_all(&out).await.unwrap();
        sa.shutdown().await.unwrap();
    });
    let mut got = Vec::new();
    let mut buf = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let n = sb.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            got.extend_from_slice(&buf[..n]);
            // Slower than the sender, well within `stalled_reader` per chunk.
            if got.len() % (32 * 1024) < n {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    })
    .await
    .expect("the transfer ends");
    read.expect("every byte arrives, no overrun");
    assert_eq!(Sha256::digest(&got), Sha256::digest(&expected));
    writer.await.unwrap();
}
