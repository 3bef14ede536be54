//! Deterministic two-peer simulations of the sans-IO session: opening, transfers in both
//! directions, close and cancel, the window and its timeouts. What a hostile or failing peer
//! sends (the bad-input catalogue's A and F items) is in `bad_input.rs`.

mod support;

use std::time::Duration;

use support::inject::{e, pair_errs};
use support::{Pair, iq_opts, msg_opts, pattern};
use xep0047_ibb::{Config, Error, Event, Session, Sid, TimeoutKind};
use xmpp_parsers::{iq::Iq, stanza::Stanza, stanza_error::DefinedCondition};

#[test]
fn resource_constraint_below_the_floor_fails_with_the_rejection() {
    let mut p = Pair::new();
    p.b.config.max_block_size(100);
    p.a.config.min_block_size(512);
    p.open("rc2", iq_opts(1024));
    p.drive();
    assert!(
        matches!(&p.a.events[..], [Event::Failed(Error::Rejected(e))]
        if e.defined_condition == DefinedCondition::ResourceConstraint)
    );
}

#[test]
fn an_open_the_app_refuses_is_not_acceptable() {
    let mut p = Pair::new();
    p.b.accept = false;
    p.open("no", iq_opts(4096));
    p.drive();
    assert_eq!(pair_errs(&p.a), vec![e("cancel", "not-acceptable")]);
    assert!(matches!(
        &p.a.events[..],
        [Event::Failed(Error::Rejected(_))]
    ));
}

#[test]
fn both_directions_carry_data_on_one_sid() {
    let mut p = Pair::established(iq_opts(1000));
    let ab = pattern(10_000);
    let ba: Vec<u8> = pattern(7_777).into_iter().rev().collect();
    p.a.write(&ab, false);
    p.b.write(&ba, false);
    p.drive();
    assert_eq!(p.b.read, ab);
    assert_eq!(p.a.read, ba);
    p.a.s().close();
    p.drive();
    assert!(p.a.events.iter().any(|e| matches!(e, Event::Closed)));
    assert!(p.b.events.iter().any(|e| matches!(e, Event::PeerClosed)));
}

#[test]
fn close_sends_everything_written_before_the_close_element() {
    let mut p = Pair::established(iq_opts(4096));
    let data = pattern(100_000);
    p.a.write(&data, true);
    p.drive();
    assert_eq!(p.b.read, data);
    // The close is the last IBB stanza b received.
    let last =
        p.b.received
            .iter()
            .rev()
            .find(|s| matches!(s, Stanza::Iq(Iq::Set { .. })))
            .unwrap();
    assert!(matches!(last, Stanza::Iq(Iq::Set { payload, .. }) if payload.name() == "close"));
    assert!(p.a.events.iter().any(|e| matches!(e, Event::Closed)));
    assert!(p.b.s().is_eof());
    assert!(p.a.s().is_closed());
}

#[test]
fn a_peer_close_stops_our_unsent_data_and_the_writer_is_told() {
    let mut p = Pair::established(iq_opts(1024));
    let data = pattern(200_000);
    p.b.write(&data, false);
    p.a.s().close();
    p.drive();
    // Only what was already in flight when the close came arrived; the rest never went out.
    assert!(
        p.a.read.len() < 64 * 1024,
        "{} bytes sent after the close",
        p.a.read.len()
    );
    assert_eq!(p.a.read[..], data[..p.a.read.len()]);
    assert!(p.a.events.iter().any(|e| matches!(e, Event::Closed)));
    assert!(p.b.events.iter().any(|e| matches!(e, Event::PeerClosed)));
    assert!(p.b.s().is_closed());
    assert!(matches!(p.b.s().write_error(), Some(Error::ClosedByPeer)));
    assert!(matches!(p.b.s().send(b"more"), Err(Error::ClosedByPeer)));
}

#[test]
fn a_peer_close_with_nothing_unsent_is_a_clean_end_for_the_writer() {
    let mut p = Pair::established(iq_opts(1024));
    let data = pattern(5000);
    p.b.write(&data, false);
    p.settle();
    assert_eq!(p.a.read, data);
    p.a.s().close();
    p.drive();
    assert!(p.b.s().is_closed());
    assert!(p.b.s().write_error().is_none());
    assert!(p.b.s().error().is_none());
}

#[test]
fn cancel_drops_unsent_data_and_sends_close_at_once() {
    let mut p = Pair::established(iq_opts(4096));
    let data = pattern(1 << 20);
    p.a.write(&data, true);
    p.drive_until(|p| !p.b.read.is_empty());
    p.a.to_write.clear();
    p.a.close_after_write = false;
    p.a.s().cancel();
    assert!(p.a.s().is_flushed(), "nothing left to send");
    p.drive();
    assert_eq!(p.b.closes_received(), 1);
    assert!(p.b.read.len() < data.len() / 2, "{} bytes", p.b.read.len());
    assert_eq!(p.b.read[..], data[..p.b.read.len()]);
    // Nothing after the close: it is the last set b received.
    let last =
        p.b.received
            .iter()
            .rev()
            .find(|s| matches!(s, Stanza::Iq(Iq::Set { .. })))
            .unwrap();
    assert!(matches!(last, Stanza::Iq(Iq::Set { payload, .. }) if payload.name() == "close"));
    assert!(matches!(p.a.events.last(), Some(Event::Closed)));
    assert!(p.a.s().is_closed() && p.a.s().is_cancelled());
    assert!(p.b.events.iter().any(|e| matches!(e, Event::PeerClosed)));
}

#[test]
fn cancel_waits_for_the_close_answer_no_longer_than_the_close_timeout_and_is_no_error() {
    let mut p = Pair::established(iq_opts(4096));
    let start = p.now;
    p.drop_a_to_b = true;
    p.a.write(&pattern(100_000), false);
    p.a.s().cancel();
    p.drive();
    assert!(p.a.s().is_closed());
    assert!(p.a.s().error().is_none());
    assert!(matches!(p.a.events.last(), Some(Event::Closed)));
    // The default close timeout is 30 s; no ack waits beyond it.
    assert!(
        p.now - start <= Duration::from_secs(31),
        "{:?}",
        p.now - start
    );
}

fn is_close(s: &Stanza) -> bool {
    matches!(s, Stanza::Iq(Iq::Set { payload, .. }) if payload.name() == "close")
}

#[test]
fn an_unanswered_close_after_every_chunk_was_acknowledged_is_a_clean_end_with_a_warning() {
    // libpurple acknowledges every <data/> and never answers <close/> (PEERS.md).
    let mut p = Pair::established(iq_opts(4096));
    p.swallow_a_to_b = Some(Box::new(is_close));
    let data = pattern(100_000);
    p.a.write(&data, true);
    let start = p.now;
    p.drive();
    assert_eq!(p.b.read, data);
    assert!(p.a.s().is_closed());
    assert!(p.a.s().error().is_none(), "{:?}", p.a.s().error());
    assert!(p.a.s().close_unanswered());
    let tail: Vec<_> = p.a.events.iter().rev().take(2).collect();
    assert!(
        matches!(tail[..], [Event::Closed, Event::CloseUnanswered]),
        "{tail:?}"
    );
    // The grace (3 s by default), not the 30 s close timeout.
    assert!(
        p.now - start <= Duration::from_secs(4),
        "{:?}",
        p.now - start
    );
}

#[test]
fn an_unanswered_close_with_chunks_unacknowledged_is_still_a_close_timeout() {
    // The peer ignores everything after the open: nothing says the bytes arrived.
    let mut p = Pair::established(iq_opts(4096));
    p.swallow_a_to_b = Some(Box::new(|_| true));
    p.a.write(&pattern(10_000), true);
    p.drive();
    assert!(p.a.s().is_closed());
    assert!(!p.a.s().close_unanswered());
    assert!(
        matches!(p.a.s().error(), Some(Error::Timeout(_))),
        "{:?}",
        p.a.s().error()
    );
}

#[test]
fn an_answered_close_is_no_warning() {
    let mut p = Pair::established(iq_opts(4096));
    p.a.write(&pattern(10_000), true);
    p.drive();
    assert!(p.a.s().is_closed() && p.a.s().error().is_none());
    assert!(!p.a.s().close_unanswered());
    assert!(
        !p.a.events
            .iter()
            .any(|e| matches!(e, Event::CloseUnanswered))
    );
}

#[test]
fn a_full_reader_stops_acknowledging_until_it_reads() {
    let mut p = Pair::new();
    p.b.config.recv_buffer(4096);
    p.b.auto_read = false;
    p.open("bp", iq_opts(1024));
    p.drive();
    p.a.write(&pattern(64 * 1024), false);
    p.settle();
    // b holds at most recv_buffer plus one window of chunks.
    let buffered = p.b.s().readable();
    assert!(buffered <= 4096 + 16 * 1024, "{buffered}");
    assert!(p.a.s().in_flight() > 0);
    p.b.auto_read = true;
    p.drive();
    assert_eq!(p.b.read, pattern(64 * 1024));
    assert_eq!(p.a.s().in_flight(), 0);
}

#[test]
fn reordered_acks_still_deliver_every_byte() {
    let mut p = Pair::established(iq_opts(512));
    p.ack_jitter = Duration::from_millis(30);
    let data = pattern(200_000);
    p.a.write(&data, true);
    p.drive();
    assert_eq!(p.b.read, data);
}

#[test]
fn an_unanswered_open_times_out() {
    let mut p = Pair::new();
    p.drop_a_to_b = true;
    p.open("lost", iq_opts(4096));
    p.drive();
    assert!(matches!(
        &p.a.events[..],
        [Event::Failed(Error::Timeout(TimeoutKind::Open))]
    ));
}

#[test]
fn the_window_grows_with_acks_up_to_max_in_flight() {
    let mut p = Pair::new();
    p.a.config.initial_window(1).max_in_flight(8);
    p.open("grow", iq_opts(64));
    p.drive();
    assert_eq!(p.a.s().window(), 1);
    p.a.write(&pattern(64 * 100), false);
    p.drive();
    assert_eq!(p.a.s().window(), 8);
}

#[test]
fn message_rate_paces_chunks_over_virtual_time() {
    let mut p = Pair::new();
    p.a.config.message_rate(Some(10_000));
    p.open("rate", msg_opts(1000));
    p.drive();
    let start = p.now;
    p.a.write(&pattern(20_000), false);
    p.drive();
    assert_eq!(p.b.read.len(), 20_000);
    // 20 kB at 10 kB/s with a 1 kB burst takes close to two virtual seconds.
    assert!(p.now - start >= Duration::from_millis(1800));
}

#[test]
fn writing_after_close_is_misuse() {
    let mut p = Pair::established(iq_opts(4096));
    p.a.s().close();
    assert!(matches!(
        p.a.s().send(b"x"),
        Err(Error::Misuse(xep0047_ibb::MisuseError::WriteAfterClose))
    ));
}

mod window {
    use super::*;
    use proptest::prelude::*;
    use std::time::Instant;

    proptest! {
        #[test]
        fn in_flight_never_exceeds_the_window_under_any_ack_order(
            ops in proptest::collection::vec((0u8..3, 0usize..64), 1..200),
            max in 1u16..12,
        ) {
            let mut cfg = Config::default();
            cfg.max_in_flight(max).initial_window(1);
            let now = Instant::now();
            let peer: jid::Jid = "b@x/y".parse().unwrap();
            let mut s = Session::new_initiator(&cfg, Sid::new("p").unwrap(), peer.clone(), iq_opts(16), now).unwrap();
            let Some(Stanza::Iq(open)) = s.poll_transmit() else { panic!() };
            let ack = |id: String| Stanza::Iq(Iq::Result { from: Some(peer.clone()), to: None, id, payload: None });
            let _ = s.handle_stanza(now, ack(open.id().to_owned()));
            let mut outstanding: Vec<String> = Vec::new();
            let mut next_seq = 0u16;
            for (op, n) in ops {
                match op {
                    0 => { let _ = s.send(&vec![7u8; n * 7]).unwrap(); }
                    1 if !outstanding.is_empty() => {
                        let id = outstanding.remove(n % outstanding.len());
                        let _ = s.handle_stanza(now, ack(id));
                    }
                    _ => s.flush(),
                }
                while let Some(st) = s.poll_transmit() {
                    if let Stanza::Iq(Iq::Set { id, payload, .. }) = st {
                        let want = next_seq.to_string();
                        prop_assert_eq!(payload.attr("seq"), Some(want.as_str()));
                        next_seq = next_seq.wrapping_add(1);
                        outstanding.push(id);
                    }
                }
                prop_assert!(s.in_flight() <= usize::from(s.window()));
                prop_assert!(s.window() <= max);
                prop_assert!(s.in_flight() >= outstanding.len());
            }
        }
    }
}

#[test]
fn an_idle_session_is_closed_after_the_inactivity_timeout() {
    let mut p = Pair::new();
    p.a.config.idle_timeout(Some(Duration::from_secs(60)));
    p.open("idle", iq_opts(4096));
    p.drive();
    assert!(matches!(
        p.a.events.last(),
        Some(Event::Failed(Error::Timeout(TimeoutKind::Inactivity)))
    ));
    assert_eq!(p.b.closes_received(), 1);
    assert!(p.b.s().is_eof());
}

#[test]
fn an_unanswered_close_with_nothing_outstanding_ends_cleanly_after_the_grace() {
    // Nothing written, so nothing unacknowledged: only the close's answer is missing.
    let mut p = Pair::established(iq_opts(4096));
    p.drop_a_to_b = true;
    p.a.s().close();
    p.drive();
    assert!(matches!(p.a.events.last(), Some(Event::Closed)));
    assert!(p.a.s().is_closed() && p.a.s().close_unanswered());
}

#[test]
fn chunks_that_straddle_the_send_ring_wrap_arrive_intact() {
    // Odd block-size and write sizes so chunks fall across the ring buffer's wrap point.
    let mut p = Pair::new();
    p.a.config.send_buffer(1000);
    p.open("ring", iq_opts(333));
    p.drive();
    let data = pattern(50_000);
    for part in data.chunks(777) {
        p.a.write(part, false);
        p.settle();
    }
    p.a.s().close();
    p.drive();
    assert_eq!(p.b.read, data);
}
