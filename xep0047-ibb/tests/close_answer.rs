//! The receiver's answer to the sender's `<close/>` held until it has checked the bytes
//! ([`Config::hold_close_answer`]): a sender reads a result as "kept", an error as "not kept".

mod support;

use support::{Pair, iq_opts, pattern};
use xep0047_ibb::Event;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

fn refused() -> StanzaError {
    StanzaError::new(
        ErrorType::Cancel,
        DefinedCondition::NotAcceptable,
        "en",
        "the file did not verify",
    )
}

/// b holds its close answers; a opens and writes `len` bytes, then closes. Settled without
/// timers: the close is out and, if held, unanswered.
fn sent_and_closed(hold: bool, len: usize) -> (Pair, Vec<u8>) {
    let mut p = Pair::new();
    p.b.config.hold_close_answer(hold);
    p.open("i781hf64", iq_opts(4096));
    p.drive();
    assert!(p.a.s().is_open());
    let data = pattern(len);
    p.a.write(&data, true);
    p.settle();
    (p, data)
}

#[test]
fn a_held_close_is_answered_only_with_the_verdict_and_an_error_reaches_the_sender_as_refused() {
    let (mut p, data) = sent_and_closed(true, 10_000);
    assert_eq!(p.b.read, data, "the reader has every byte and its end");
    assert!(p.b.events.iter().any(|e| matches!(e, Event::PeerClosed)));
    assert_eq!(p.a.closes_received(), 0);
    assert!(
        !p.a.s().is_closed(),
        "no answer before the receiver's verdict"
    );

    p.b.s().answer_close(Err(refused()));
    p.drive();
    assert!(p.a.s().is_closed());
    assert!(p.a.s().error().is_none(), "{:?}", p.a.s().error());
    assert!(!p.a.s().close_unanswered());
    assert_eq!(
        p.a.s().close_refused().map(|e| e.defined_condition.clone()),
        Some(DefinedCondition::NotAcceptable)
    );
    assert!(p.b.s().is_closed());
}

#[test]
fn a_held_close_answered_ok_or_closed_by_the_receiver_is_a_plain_result() {
    let (mut p, _) = sent_and_closed(true, 5_000);
    p.b.s().answer_close(Ok(()));
    p.drive();
    assert!(p.a.s().is_closed() && p.a.s().error().is_none());
    assert!(p.a.s().close_refused().is_none() && !p.a.s().close_unanswered());

    // The receiver closing (or dropping) its stream without a verdict answers a result.
    let (mut p, _) = sent_and_closed(true, 5_000);
    p.b.s().close();
    p.drive();
    assert!(p.a.s().is_closed() && p.a.s().error().is_none());
    assert!(p.a.s().close_refused().is_none() && !p.a.s().close_unanswered());
}

#[test]
fn without_the_hold_the_close_is_answered_at_once_and_a_late_verdict_changes_nothing() {
    let (mut p, data) = sent_and_closed(false, 10_000);
    assert_eq!(p.b.read, data);
    assert!(p.a.s().is_closed(), "answered by the session itself");
    p.b.s().answer_close(Err(refused()));
    p.drive();
    assert!(p.a.s().close_refused().is_none());
}

#[test]
fn a_verdict_never_given_ends_within_the_timeouts_and_the_sender_reports_the_close_unanswered() {
    let (mut p, _) = sent_and_closed(true, 5_000);
    p.drive(); // timers now: a's close grace (3 s), b's close timeout (30 s)
    assert!(p.a.s().is_closed());
    assert!(
        p.a.s().close_unanswered(),
        "a never heard whether b kept it"
    );
    assert!(p.a.s().close_refused().is_none());
    assert!(
        p.b.s().is_closed(),
        "b's held answer is bounded by its close timeout"
    );
}
