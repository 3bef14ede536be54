//! Deterministic two-peer simulations of what a hostile or failing peer sends to the
//! sans-IO session, named after the bad-input catalogue's A and F items
//! (`docs/bad-input.md`): malformed opens, data and closes, sequence errors, refusals and
//! errors from a server on the way. The ordinary flow is in `sim.rs`.

mod support;

use std::time::Duration;

use support::inject::*;
use support::{Pair, iq_opts, iq_set, message_with, msg_opts, pattern};
use xep0047_ibb::{Error, Event, ProtocolError, TimeoutKind};
use xmpp_parsers::{
    iq::Iq,
    stanza::Stanza,
    stanza_error::{DefinedCondition, ErrorType},
};

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
fn f2_an_open_for_a_sid_in_use_is_not_acceptable_and_a_bad_sid_bad_request() {
    let mut p = Pair::established(iq_opts(4096));
    inject_iq_to_b(
        &mut p,
        "dup",
        "<open xmlns='http://jabber.org/protocol/ibb' block-size='4096' sid='i781hf64'/>",
    );
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
        inject_iq_to_b(
            &mut q,
            "bad",
            &format!(
                "<open xmlns='http://jabber.org/protocol/ibb' block-size='4096' sid='{}'/>",
                sid.replace('<', "&lt;").replace('>', "&gt;")
            ),
        );
        q.drive();
        assert_eq!(pair_errs(&q.a), vec![e("modify", "bad-request")], "{sid}");
        assert!(q.b.session.is_none(), "{sid}");
    }
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
fn f3_data_for_an_unknown_sid_is_item_not_found() {
    let mut p = Pair::established(iq_opts(4096));
    inject_iq_to_b(
        &mut p,
        "x1",
        "<data xmlns='http://jabber.org/protocol/ibb' seq='0' sid='nope'>AAAA</data>",
    );
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
    inject_iq_to_b(
        &mut p,
        "noseq",
        "<data xmlns='http://jabber.org/protocol/ibb' sid='i781hf64'>QUJD</data>",
    );
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
    assert_accepted(4096, &["", "QUJD"], b"ABC");
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
    assert_accepted(3, &["\n  QU\n  JD\n  "], b"ABC");
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
    inject_iq_to_b(
        &mut p,
        "c9",
        "<close xmlns='http://jabber.org/protocol/ibb' sid='nobody'/>",
    );
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
            return Some(iq_error(
                id,
                ErrorType::Wait,
                DefinedCondition::RecipientUnavailable,
            ));
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
        Stanza::Iq(Iq::Set { id, payload, .. }) if payload.name() == "data" => Some(iq_error(
            id,
            ErrorType::Cancel,
            DefinedCondition::ServiceUnavailable,
        )),
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
