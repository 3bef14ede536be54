//! `Negotiation::redial_refused`: a peer candidate whose listener is not up yet when it
//! is first dialled (Gajim 1.7.3 under load) is dialled again, bounded; without it a
//! refusal is the attempt's failure at once.

mod common;

use std::time::Duration;

use common::*;
use xep0260_jingle_s5b::LocalCandidates;
use xep0260_jingle_s5b::proto::{Action, Event};
use xmpp_parsers::jingle_s5b::TransportPayload;

/// A offers its direct candidate and is not listening yet; B (no candidate of its own)
/// dials it.
fn late_listener(redials: u32) -> Sim {
    let mut s = Sim::new(direct(A_ADDR), LocalCandidates::default());
    s.b.n.redial_refused(redials, Duration::from_millis(100));
    s.a.reachable = false;
    s.start();
    s.run();
    s
}

fn dials(p: &Peer) -> usize {
    p.actions
        .iter()
        .filter(|a| matches!(a, Action::Connect { .. }))
        .count()
}

#[test]
fn a_refused_candidate_is_dialled_again_and_connects_once_its_listener_is_up() {
    let mut s = late_listener(3);
    assert_eq!(dials(&s.b), 1);
    assert!(
        !s.b.sent
            .iter()
            .any(|t| t.payload == TransportPayload::CandidateError),
        "no verdict while the redial waits: {:?}",
        s.b.sent
    );
    s.advance(Duration::from_millis(50));
    assert_eq!(dials(&s.b), 1, "not before its time");
    s.a.reachable = true;
    s.advance(Duration::from_millis(60));
    assert_eq!(dials(&s.b), 2);
    assert!(
        s.b.sent
            .iter()
            .any(|t| matches!(t.payload, TransportPayload::CandidateUsed(_))),
        "{:?}",
        s.b.sent
    );
    assert!(
        matches!(s.b.events[..], [Event::Connected { .. }]),
        "{:?}",
        s.b.events
    );
    assert!(
        matches!(s.a.events[..], [Event::Connected { .. }]),
        "{:?}",
        s.a.events
    );
}

#[test]
fn a_candidate_that_stays_refused_is_an_error_after_the_bounded_redials() {
    let mut s = late_listener(2);
    for _ in 0..10 {
        s.advance(Duration::from_millis(100));
    }
    assert_eq!(dials(&s.b), 3, "the first dial and two more");
    assert!(
        s.b.sent
            .iter()
            .any(|t| t.payload == TransportPayload::CandidateError),
        "{:?}",
        s.b.sent
    );
}

#[test]
fn without_redials_a_refusal_is_a_candidate_error_at_once() {
    let s = late_listener(0);
    assert_eq!(dials(&s.b), 1);
    assert!(
        s.b.sent
            .iter()
            .any(|t| t.payload == TransportPayload::CandidateError),
        "{:?}",
        s.b.sent
    );
}
