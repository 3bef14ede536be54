//! Deterministic two-peer simulations of the sans-IO session.

mod support;

use std::time::Duration;

use support::{Pair, iq_opts, iq_set, message_with, pattern};
use xep0047_ibb::{
    Config, Error, Event, OpenOptions, ProtocolError, Session, Sid, StanzaKind, TimeoutKind,
};
use xmpp_parsers::{
    iq::Iq,
    stanza::Stanza,
    stanza_error::{DefinedCondition, ErrorType, StanzaError},
};

fn msg_opts(block_size: u16) -> OpenOptions {
    OpenOptions {
        block_size,
        stanza: StanzaKind::Message,
    }
}

fn pair_errs(side: &support::Side) -> Vec<(String, String)> {
    side.errors_received()
}

fn e(t: &str, c: &str) -> (String, String) {
    (t.to_owned(), c.to_owned())
}

#[test]
fn f7_a_transfer_of_more_than_65536_chunks_wraps_seq_and_keeps_every_byte() {
    let mut p = Pair::new();
    p.a.log = false;
    p.b.log = false;
    p.latency = Duration::from_micros(50);
    // Block-size 1, as the catalogue asks (BAD-INPUT F7): 70 003 chunks, seq wraps once.
    p.open("wrap", iq_opts(1));
    p.drive();
    let data = pattern(70_003);
    p.a.write(&data, true);
    p.drive();
    assert_eq!(p.b.read.len(), data.len());
    assert!(p.b.read == data, "bytes differ");
    assert!(p.a.events.iter().any(|e| matches!(e, Event::Closed)));
    assert!(p.b.s().is_eof());
}

#[test]
fn message_mode_transfer_past_the_seq_wrap_keeps_every_byte() {
    let mut p = Pair::new();
    p.a.log = false;
    p.b.log = false;
    // The simulation delivers every chunk in transit before the reader's next turn, as a
    // pump that ignores `Ibb::ready` would; lift the unread-chunk bound for that.
    p.b.config.max_queued_blocks(usize::MAX);
    p.open("wrapm", msg_opts(4));
    p.drive();
    let data = pattern(4 * 66_000);
    p.a.write(&data, true);
    p.drive();
    assert!(p.b.read == data, "bytes differ");
    assert!(p.b.s().is_eof());
}

#[test]
fn f1_responder_above_its_limit_gets_resource_constraint_and_initiator_retries_at_half() {
    let mut p = Pair::new();
    p.b.config.max_block_size(1500);
    p.open("rc", iq_opts(4096));
    p.drive();
    assert!(matches!(p.a.events[0], Event::Opened { block_size: 1024 }));
    assert_eq!(p.a.s().block_size(), 1024);
    assert_eq!(
        pair_errs(&p.a),
        vec![
            e("modify", "resource-constraint"),
            e("modify", "resource-constraint")
        ]
    );
    let data = pattern(5000);
    p.a.write(&data, true);
    p.drive();
    assert_eq!(p.b.read, data);
}

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
fn f2_an_open_for_a_sid_in_use_is_not_acceptable_and_a_bad_sid_bad_request() {
    let mut p = Pair::established(iq_opts(4096));
    let to = p.b.jid.clone();
    p.inject_to_b(iq_set(
        "dup",
        &to,
        "<open xmlns='http://jabber.org/protocol/ibb' block-size='4096' sid='i781hf64'/>",
    ));
    p.drive();
    assert_eq!(pair_errs(&p.a), vec![e("cancel", "not-acceptable")]);
    // The existing stream is unaffected.
    p.a.write(b"still open", false);
    p.drive();
    assert_eq!(p.b.read, b"still open");
    assert!(p.b.read_error.is_none());
    // A sid that is no NMTOKEN (or too long) opens nothing.
    for sid in ["a b", "a/b", "<x>", &"s".repeat(129)] {
        let mut q = Pair::new();
        let to = q.b.jid.clone();
        q.inject_to_b(iq_set(
            "bad",
            &to,
            &format!(
                "<open xmlns='http://jabber.org/protocol/ibb' block-size='4096' sid='{}'/>",
                sid.replace('<', "&lt;").replace('>', "&gt;")
            ),
        ));
        q.drive();
        assert_eq!(pair_errs(&q.a), vec![e("modify", "bad-request")], "{sid}");
        assert!(q.b.session.is_none(), "{sid}");
    }
}

fn inject_open_to_fresh_b(attrs: &str) -> Pair {
    let mut p = Pair::new();
    let to = p.b.jid.clone();
    p.inject_to_b(iq_set(
        "o1",
        &to,
        &format!("<open xmlns='http://jabber.org/protocol/ibb' {attrs}/>"),
    ));
    p.drive();
    p
}

#[test]
fn a2_an_open_without_sid_or_block_size_is_modify_bad_request_and_opens_nothing() {
    for attrs in ["block-size='4096'", "sid='s1'", "", "stanza='iq'"] {
        let p = inject_open_to_fresh_b(attrs);
        assert_eq!(pair_errs(&p.a), vec![e("modify", "bad-request")], "{attrs}");
        assert!(p.b.session.is_none(), "{attrs}: no session");
    }
}

#[test]
fn f1_an_open_with_a_block_size_missing_zero_signed_or_too_big_is_bad_request() {
    for bs in [
        "0",
        "-1",
        "+4096",
        " 4096",
        "4096 ",
        "abc",
        "65536",
        "99999999999",
        "1e3",
        "",
    ] {
        let p = inject_open_to_fresh_b(&format!("sid='s1' block-size='{bs}'"));
        assert_eq!(pair_errs(&p.a), vec![e("modify", "bad-request")], "{bs:?}");
        assert!(p.b.session.is_none(), "{bs:?}: no session");
    }
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
fn data_after_our_cancel_is_item_not_found_and_dropped() {
    let mut p = Pair::established(iq_opts(4096));
    // b cancels; a's answer to b's close is lost, so b is still waiting for it.
    p.drop_a_to_b = true;
    p.b.s().cancel();
    p.settle();
    p.drop_a_to_b = false;
    assert!(!p.b.s().is_closed());
    inject_data(&mut p, "0", "QUJD");
    p.settle();
    assert_eq!(pair_errs(&p.a), vec![e("cancel", "item-not-found")]);
    assert_eq!(p.b.s().readable(), 0);
    assert!(p.b.read.is_empty());
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
fn f3_data_for_an_unknown_sid_is_item_not_found() {
    let mut p = Pair::established(iq_opts(4096));
    let to = p.b.jid.clone();
    p.inject_to_b(iq_set(
        "x1",
        &to,
        "<data xmlns='http://jabber.org/protocol/ibb' seq='0' sid='nope'>AAAA</data>",
    ));
    p.drive();
    assert_eq!(pair_errs(&p.a), vec![e("cancel", "item-not-found")]);
}

#[test]
fn message_data_for_an_unknown_sid_gets_an_item_not_found_message() {
    let mut p = Pair::established(iq_opts(4096));
    let to = p.b.jid.clone();
    p.inject_to_b(message_with(
        &to,
        "<data xmlns='http://jabber.org/protocol/ibb' seq='0' sid='nope'>AAAA</data>",
    ));
    p.drive();
    assert_eq!(pair_errs(&p.a), vec![e("cancel", "item-not-found")]);
}

fn inject_data(p: &mut Pair, seq: &str, text: &str) {
    let to = p.b.jid.clone();
    p.inject_to_b(iq_set(
        &format!("inj{seq}"),
        &to,
        &format!(
            "<data xmlns='http://jabber.org/protocol/ibb' seq='{seq}' sid='i781hf64'>{text}</data>"
        ),
    ));
}

fn assert_closed_with(p: &mut Pair, cond: (&str, &str), err: impl Fn(&ProtocolError) -> bool) {
    p.drive();
    assert_eq!(pair_errs(&p.a), vec![e(cond.0, cond.1)]);
    assert_eq!(p.a.closes_received(), 1, "b closes the stream");
    match &p.b.read_error {
        Some(Error::Protocol(pe)) if err(pe) => {}
        other => panic!("unexpected read error {other:?}"),
    }
    assert!(matches!(
        p.b.events.last(),
        Some(Event::Failed(Error::Protocol(_)))
    ));
}

#[test]
fn f4_a_seq_missing_signed_spaced_or_past_65535_is_bad_request_and_closes() {
    for seq in ["-1", "+1", " 1", "1 ", "65536", "x", "", "0x1"] {
        let mut p = Pair::established(iq_opts(4096));
        inject_data(&mut p, "0", "QUJD");
        p.drive();
        inject_data(&mut p, seq, "REVG");
        assert_closed_with(&mut p, ("cancel", "bad-request"), |e| {
            matches!(e, ProtocolError::Malformed(_))
        });
        assert_eq!(p.b.read, b"ABC", "{seq:?}: nothing of that chunk is used");
    }
    // No seq at all.
    let mut p = Pair::established(iq_opts(4096));
    let to = p.b.jid.clone();
    p.inject_to_b(iq_set(
        "noseq",
        &to,
        "<data xmlns='http://jabber.org/protocol/ibb' sid='i781hf64'>QUJD</data>",
    ));
    assert_closed_with(&mut p, ("cancel", "bad-request"), |e| {
        matches!(e, ProtocolError::Malformed(_))
    });
    assert!(p.b.read.is_empty());
}

#[test]
fn f6_a_seq_gap_is_unexpected_request_and_closes_the_stream() {
    let mut p = Pair::established(iq_opts(4096));
    inject_data(&mut p, "0", "QUJD");
    inject_data(&mut p, "2", "REVG");
    inject_data(&mut p, "1", "R0hJ");
    p.drive();
    assert_eq!(p.b.read, b"ABC", "nothing after the gap is used");
    assert_eq!(
        pair_errs(&p.a),
        vec![
            e("cancel", "unexpected-request"),
            e("cancel", "item-not-found")
        ]
    );
    assert_eq!(p.a.closes_received(), 1);
    assert!(matches!(
        p.b.read_error,
        Some(Error::Protocol(ProtocolError::UnexpectedSeq {
            expected: 1,
            got: 2
        }))
    ));
}

#[test]
fn f5_a_replayed_seq_is_unexpected_request_and_closes_the_stream() {
    let mut p = Pair::established(iq_opts(4096));
    inject_data(&mut p, "0", "QUJD");
    p.drive();
    inject_data(&mut p, "0", "QUJD");
    assert_closed_with(&mut p, ("cancel", "unexpected-request"), |e| {
        matches!(
            e,
            ProtocolError::UnexpectedSeq {
                expected: 1,
                got: 0
            }
        )
    });
    assert_eq!(p.b.read, b"ABC");
}

#[test]
fn f8_invalid_base64_is_bad_request_and_closes_the_stream() {
    for text in [
        "QU=D", "=AAA", "BBBB=CCC", "QUI", "QUI==", "QQ===", "QU*D", "QUJD!", "QU-D", "QU_D",
    ] {
        let mut p = Pair::established(iq_opts(4096));
        inject_data(&mut p, "0", text);
        assert_closed_with(&mut p, ("cancel", "bad-request"), |e| {
            matches!(e, ProtocolError::Malformed(_))
        });
        assert!(p.b.read.is_empty(), "{text}: nothing written");
    }
}

#[test]
fn f9_a_chunk_larger_than_the_block_size_is_bad_request_and_an_empty_one_advances_seq() {
    let mut p = Pair::established(iq_opts(2));
    inject_data(&mut p, "0", "QUJD");
    assert_closed_with(&mut p, ("cancel", "bad-request"), |e| {
        matches!(
            e,
            ProtocolError::ChunkTooLarge {
                len: 3,
                block_size: 2
            }
        )
    });
    assert!(p.b.read.is_empty());
    // An empty chunk is accepted and advances seq.
    let mut p = Pair::established(iq_opts(4096));
    inject_data(&mut p, "0", "");
    inject_data(&mut p, "1", "QUJD");
    p.drive();
    assert!(pair_errs(&p.a).is_empty(), "{:?}", pair_errs(&p.a));
    assert_eq!(p.b.read, b"ABC");
}

#[test]
fn a5_ibb_text_longer_than_the_block_size_allows_is_refused_before_decoding() {
    // block-size 3: at most 4 characters. Eight characters that are not even base64 are
    // refused for their length, so they were never decoded.
    let mut p = Pair::established(iq_opts(3));
    inject_data(&mut p, "0", "QUJD");
    p.drive();
    inject_data(&mut p, "1", "!!!!!!!!");
    assert_closed_with(&mut p, ("cancel", "bad-request"), |e| {
        matches!(e, ProtocolError::ChunkTooLarge { block_size: 3, .. })
    });
    assert_eq!(p.b.read, b"ABC", "the bytes before it are kept");
    // Whitespace (wrapped lines) does not count against the bound.
    let mut p = Pair::established(iq_opts(3));
    inject_data(&mut p, "0", "\n  QU\n  JD\n  ");
    p.drive();
    assert!(pair_errs(&p.a).is_empty(), "{:?}", pair_errs(&p.a));
    assert_eq!(p.b.read, b"ABC");
}

#[test]
fn f14_a_close_is_answered_and_ends_the_stream_and_one_for_an_unknown_sid_is_item_not_found() {
    let mut p = Pair::established(iq_opts(4096));
    p.a.write(b"all of it", true);
    p.drive();
    assert_eq!(p.b.read, b"all of it");
    assert!(p.b.s().is_eof(), "the receiver sees the end of the stream");
    assert!(pair_errs(&p.a).is_empty(), "{:?}", pair_errs(&p.a));
    assert!(
        p.a.events.iter().any(|e| matches!(e, Event::Closed)),
        "{:?}",
        p.a.events
    );
    // A close for a sid nobody opened.
    let to = p.b.jid.clone();
    p.inject_to_b(iq_set(
        "c9",
        &to,
        "<close xmlns='http://jabber.org/protocol/ibb' sid='nobody'/>",
    ));
    p.drive();
    assert_eq!(pair_errs(&p.a), vec![e("cancel", "item-not-found")]);
}

#[test]
fn f10_data_before_the_open_is_answered_is_item_not_found() {
    let mut p = Pair::new();
    p.latency = Duration::from_millis(100);
    p.open("early", iq_opts(4096));
    p.step();
    // a is still waiting for its open result; b's data comes first.
    let to = p.a.jid.clone();
    p.inject_to_a(iq_set(
        "early1",
        &to,
        "<data xmlns='http://jabber.org/protocol/ibb' seq='0' sid='early'>AAAA</data>",
    ));
    p.drive();
    assert_eq!(pair_errs(&p.b), vec![e("cancel", "item-not-found")]);
    assert!(p.a.read.is_empty());
}

#[test]
fn f10_data_after_close_is_item_not_found() {
    let mut p = Pair::established(iq_opts(4096));
    p.a.s().close();
    p.drive();
    inject_data(&mut p, "0", "QUJD");
    p.drive();
    assert_eq!(pair_errs(&p.a), vec![e("cancel", "item-not-found")]);
    assert!(p.b.read.is_empty());
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
fn f13_an_unacknowledged_chunk_times_out_and_the_stream_closes() {
    let mut p = Pair::established(iq_opts(4096));
    p.drop_a_to_b = true;
    p.a.write(b"hello", false);
    p.drive();
    assert!(matches!(
        p.a.events.last(),
        Some(Event::Failed(Error::Timeout(TimeoutKind::Ack)))
    ));
    assert!(p.a.s().is_closed());
}

#[test]
fn f12_a_wait_error_halves_the_window_and_the_chunk_is_retried() {
    let mut p = Pair::established(iq_opts(100));
    let mut refused = false;
    p.filter_a_to_b = Some(Box::new(move |st| {
        if let Stanza::Iq(Iq::Set { id, payload, .. }) = st
            && payload.name() == "data"
            && payload.attr("seq") == Some("0")
            && !refused
        {
            refused = true;
            return Some(Stanza::Iq(Iq::Error {
                from: None,
                to: None,
                id: id.clone(),
                error: StanzaError::new(
                    ErrorType::Wait,
                    DefinedCondition::RecipientUnavailable,
                    "en",
                    "",
                ),
                payload: None,
            }));
        }
        None
    }));
    let data = pattern(100);
    p.a.write(&data, true);
    p.drive();
    assert_eq!(p.b.read, data);
    assert!(p.a.events.iter().any(|e| matches!(e, Event::Closed)));
}

#[test]
fn f12_a_cancel_error_on_a_chunk_fails_and_closes() {
    let mut p = Pair::established(iq_opts(100));
    p.filter_a_to_b = Some(Box::new(|st| match st {
        Stanza::Iq(Iq::Set { id, payload, .. }) if payload.name() == "data" => {
            Some(Stanza::Iq(Iq::Error {
                from: None,
                to: None,
                id: id.clone(),
                error: StanzaError::new(
                    ErrorType::Cancel,
                    DefinedCondition::ServiceUnavailable,
                    "en",
                    "",
                ),
                payload: None,
            }))
        }
        _ => None,
    }));
    p.a.write(b"x", false);
    p.drive();
    assert!(matches!(
        p.a.events.last(),
        Some(Event::Failed(Error::Rejected(_)))
    ));
    assert_eq!(p.b.closes_received(), 1);
}

#[test]
fn message_overrun_closes_with_resource_constraint() {
    let mut p = Pair::new();
    p.b.auto_read = false;
    p.b.config.message_overrun(10_000);
    p.open("mo", msg_opts(4096));
    p.drive();
    p.a.write(&pattern(20_000), false);
    p.drive();
    // The chunk that overflowed, then the ones already on their way after the close.
    let errs = pair_errs(&p.a);
    assert_eq!(errs[0], e("wait", "resource-constraint"));
    assert!(
        errs[1..]
            .iter()
            .all(|x| *x == e("cancel", "item-not-found"))
    );
    assert_eq!(p.a.closes_received(), 1);
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
