//! Deterministic two-peer simulation of the session core: both roles, every action, the
//! errors, timeouts on a passed-in clock.

mod common;

use std::time::Duration;

use common::*;
use xep0166_jingle::{
    Action, Content, Creator, EndCause, Event, Reason, RequestError, Role, SessionKey, State,
};
use xmpp_parsers::stanza_error::DefinedCondition as D;

fn key_at_b() -> SessionKey {
    SessionKey::new(A.parse().unwrap(), sid("s1"))
}
fn key_at_a() -> SessionKey {
    SessionKey::new(B.parse().unwrap(), sid("s1"))
}

/// Romeo initiates, Juliet accepts: both ACTIVE.
fn accepted(p: &mut Pair) {
    let now = p.now;
    p.a.initiate(now, B.parse().unwrap(), sid("s1"), vec![offer("f")])
        .unwrap();
    p.run();
    let ev = p.events_b();
    let [Event::Initiated { key, contents }] = &ev[..] else {
        panic!("{ev:?}")
    };
    assert_eq!(key, &key_at_b());
    assert_eq!(
        contents[0].transport_ns().as_deref(),
        Some("urn:example:t1")
    );
    assert_eq!(p.b.session(key).unwrap().state, State::Pending);
    let answer = Content::new(Creator::Initiator, "f")
        .with_transport(el("<transport xmlns='urn:example:t1' sid='t' mine='1'/>"));
    p.b.accept(now, key, vec![answer]).unwrap();
    p.run();
    let ev = p.events_a();
    assert!(
        matches!(
            &ev[..],
            [
                Event::RequestDone {
                    action: Action::SessionInitiate,
                    ..
                },
                Event::Accepted { .. }
            ]
        ),
        "{ev:?}"
    );
    let info = p.a.session(&key_at_a()).unwrap();
    assert_eq!((info.role, info.state), (Role::Initiator, State::Active));
    assert_eq!(
        info.contents[0].transport.as_ref().unwrap().attr("mine"),
        Some("1")
    );
    p.events_b();
}

#[test]
fn a_whole_session_with_every_action_both_ways() {
    let mut p = Pair::new();
    accepted(&mut p);
    let now = p.now;
    let c = |t: &str| Content::new(Creator::Initiator, "f").with_transport(el(t));

    // transport-info both ways
    p.a.transport_info(
        now,
        &key_at_a(),
        c("<transport xmlns='urn:example:t1'><cand/></transport>"),
    )
    .unwrap();
    p.b.transport_info(
        now,
        &key_at_b(),
        c("<transport xmlns='urn:example:t1'><used/></transport>"),
    )
    .unwrap();
    p.run();
    assert!(p.events_b().iter().any(|e| matches!(e, Event::TransportInfo { content, .. } if content.transport.as_ref().unwrap().has_child("cand", "urn:example:t1"))));
    assert!(
        p.events_a()
            .iter()
            .any(|e| matches!(e, Event::TransportInfo { .. }))
    );

    // session-info with a payload, and a ping
    p.b.session_info(
        now,
        &key_at_b(),
        Some(el("<received xmlns='urn:example:app'/>")),
    )
    .unwrap();
    p.a.session_info(now, &key_at_a(), None).unwrap();
    p.run();
    assert!(
        p.events_a().iter().any(
            |e| matches!(e, Event::SessionInfo { payload, .. } if payload.name() == "received")
        )
    );
    assert!(
        !p.events_b()
            .iter()
            .any(|e| matches!(e, Event::SessionInfo { .. }))
    );

    // transport-replace by the initiator, accepted
    p.a.transport_replace(now, &key_at_a(), c("<transport xmlns='urn:example:t2'/>"))
        .unwrap();
    p.run();
    let ev = p.events_b();
    let Some(Event::TransportReplace { content, .. }) = ev
        .iter()
        .find(|e| matches!(e, Event::TransportReplace { .. }))
    else {
        panic!("{ev:?}")
    };
    p.b.transport_accept(now, &key_at_b(), content.clone())
        .unwrap();
    p.run();
    assert!(
        p.events_a()
            .iter()
            .any(|e| matches!(e, Event::TransportAccepted { .. }))
    );
    for e in [&p.a, &p.b] {
        let k = if std::ptr::eq(e, &p.a) {
            key_at_a()
        } else {
            key_at_b()
        };
        assert_eq!(
            e.session(&k).unwrap().contents[0].transport_ns().as_deref(),
            Some("urn:example:t2")
        );
    }

    // transport-replace by the responder, rejected: t2 stays
    p.b.transport_replace(now, &key_at_b(), c("<transport xmlns='urn:example:t3'/>"))
        .unwrap();
    p.run();
    assert!(
        p.events_a()
            .iter()
            .any(|e| matches!(e, Event::TransportReplace { .. }))
    );
    p.a.transport_reject(now, &key_at_a(), c("<transport xmlns='urn:example:t3'/>"))
        .unwrap();
    p.run();
    assert!(
        p.events_b()
            .iter()
            .any(|e| matches!(e, Event::TransportRejected { .. }))
    );
    assert_eq!(
        p.b.session(&key_at_b()).unwrap().contents[0]
            .transport_ns()
            .as_deref(),
        Some("urn:example:t2")
    );

    // terminate by the responder with a reason and a text
    p.b.terminate(now, &key_at_b(), Reason::Success, Some("done"))
        .unwrap();
    let (_, ba) = p.run();
    let ev = p.events_a();
    let Some(Event::Ended {
        cause: EndCause::ByPeer(Some(r)),
        ..
    }) = ev.iter().find(|e| matches!(e, Event::Ended { .. }))
    else {
        panic!("{ev:?}")
    };
    assert_eq!(r.reason, Reason::Success);
    assert_eq!(r.texts.get(""), Some(&"done".to_owned()));
    assert!(
        String::from(&minidom::Element::from(ba.last().unwrap().clone())).contains("<success/>")
    );
    assert!(p.events_b().iter().any(|e| matches!(
        e,
        Event::Ended {
            cause: EndCause::ByUs(Reason::Success),
            ..
        }
    )));
    assert!(p.a.is_empty() && p.b.is_empty());
    assert_eq!((p.a.pending_requests(), p.b.pending_requests()), (0, 0));
}

#[test]
fn a_decline_by_the_responder_ends_both_sides() {
    let mut p = Pair::new();
    let now = p.now;
    p.a.initiate(now, B.parse().unwrap(), sid("s1"), vec![offer("f")])
        .unwrap();
    p.run();
    p.events_b();
    p.b.terminate(now, &key_at_b(), Reason::Decline, None)
        .unwrap();
    p.run();
    assert!(p.events_a().iter().any(|e| matches!(e, Event::Ended { cause: EndCause::ByPeer(Some(r)), .. } if r.reason == Reason::Decline)));
    assert!(p.a.is_empty() && p.b.is_empty());
}

#[test]
fn commands_out_of_state_are_misuse_and_send_nothing() {
    let mut p = Pair::new();
    accepted(&mut p);
    let now = p.now;
    assert!(
        p.a.accept(now, &key_at_a(), vec![offer("f")]).is_err(),
        "the initiator accepts"
    );
    assert!(
        p.b.accept(now, &key_at_b(), vec![offer("f")]).is_err(),
        "a second accept"
    );
    assert!(
        p.a.transport_accept(now, &key_at_a(), offer("f")).is_err(),
        "no replace to accept"
    );
    assert!(
        p.a.transport_info(now, &key_at_a(), offer("nope")).is_err(),
        "unknown content"
    );
    assert!(
        p.a.initiate(now, B.parse().unwrap(), sid("s1"), vec![offer("f")])
            .is_err(),
        "exists"
    );
    assert!(
        p.a.initiate(now, B.parse().unwrap(), sid("s2"), vec![])
            .is_err(),
        "no content"
    );
    assert!(p.a.poll_transmit().is_none() && p.b.poll_transmit().is_none());
}

#[test]
fn an_error_answer_to_session_initiate_ends_the_session() {
    let mut p = Pair::new();
    let now = p.now;
    let mut c = config();
    c.max_contents = 1;
    p.b = xep0166_jingle::Endpoint::new(B.parse().unwrap(), c);
    p.a.initiate(
        now,
        B.parse().unwrap(),
        sid("s1"),
        vec![offer("f"), offer("g")],
    )
    .unwrap();
    p.run();
    let ev = p.events_a();
    assert!(
        matches!(&ev[0], Event::Ended { cause: EndCause::Refused(Action::SessionInitiate, e), .. } if e.defined_condition == D::ResourceConstraint),
        "{ev:?}"
    );
    assert!(matches!(
        &ev[1],
        Event::RequestFailed {
            error: RequestError::Stanza(_),
            ..
        }
    ));
    assert!(p.a.is_empty() && p.b.is_empty());
}

#[test]
fn a_pending_session_times_out_on_both_sides_with_timeout() {
    let mut p = Pair::new();
    let now = p.now;
    let mut c = config();
    c.pending_timeout = Duration::from_secs(600);
    p.b = xep0166_jingle::Endpoint::new(B.parse().unwrap(), c);
    p.a.initiate(now, B.parse().unwrap(), sid("s1"), vec![offer("f")])
        .unwrap();
    p.run();
    p.events_a();
    p.events_b();
    // Juliet's user may take 600 s; Romeo waits 300 s for session-accept.
    p.advance(Duration::from_secs(299));
    assert!(p.events_a().is_empty());
    p.advance(Duration::from_secs(1));
    let (ab, _) = p.run();
    assert!(String::from(&minidom::Element::from(ab[0].clone())).contains("<timeout/>"));
    assert!(p.events_a().iter().any(|e| matches!(
        e,
        Event::Ended {
            cause: EndCause::Timeout,
            ..
        }
    )));
    assert!(p.events_b().iter().any(|e| matches!(e, Event::Ended { cause: EndCause::ByPeer(Some(r)), .. } if r.reason == Reason::Timeout)));
    assert!(p.a.is_empty() && p.b.is_empty() && p.a.poll_timeout().is_none());
}

#[test]
fn an_unanswered_iq_fails_with_timeout_and_ends_the_session() {
    let mut p = Pair::new();
    accepted(&mut p);
    let now = p.now;
    p.a.session_info(now, &key_at_a(), None).unwrap();
    let _lost = p.a.poll_transmit().unwrap(); // the network eats it
    assert_eq!(p.a.poll_timeout(), Some(now + Duration::from_secs(30)));
    p.advance(Duration::from_secs(30));
    let ev = p.events_a();
    assert!(
        matches!(
            &ev[..],
            [
                Event::RequestFailed {
                    error: RequestError::Timeout,
                    action: Action::SessionInfo,
                    ..
                },
                Event::Ended {
                    cause: EndCause::Timeout,
                    ..
                }
            ]
        ),
        "{ev:?}"
    );
}

#[test]
fn an_unanswered_transport_replace_times_out() {
    let mut p = Pair::new();
    accepted(&mut p);
    let now = p.now;
    let c = Content::new(Creator::Initiator, "f")
        .with_transport(el("<transport xmlns='urn:example:t2'/>"));
    p.a.transport_replace(now, &key_at_a(), c).unwrap();
    p.run();
    p.events_a();
    // Juliet never answers transport-replace: both sides give up after replace_timeout.
    p.advance(Duration::from_secs(30));
    p.run();
    assert!(p.events_a().iter().any(|e| matches!(
        e,
        Event::Ended {
            cause: EndCause::Timeout,
            ..
        }
    )));
    assert!(p.a.is_empty() && p.b.is_empty());
}

#[test]
fn a_terminate_with_a_reason_we_cannot_read_still_ends_the_session() {
    let mut p = Pair::new();
    accepted(&mut p);
    let xml = "<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='s1'><reason><gone-fishing xmlns='urn:example:x'/></reason></jingle>";
    let now = p.now;
    let r = inject(&mut p.a, now, B, xml);
    assert_result(&r);
    let ev = p.events_a();
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Event::Ended {
                cause: EndCause::ByPeer(None),
                ..
            }
        )),
        "{ev:?}"
    );
    assert!(p.a.is_empty());
}
