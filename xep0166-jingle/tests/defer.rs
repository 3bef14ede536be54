//! `Config::defer_transport_info`: a transport-info waits for the application's verdict
//! (the transport judges it first), answered with its stanza error or acknowledged; one
//! nobody answers is acknowledged after `answer_timeout`.

mod common;

use std::time::Duration;

use common::*;
use xep0166_jingle::{Action, Content, Creator, Endpoint, Event, RequestError, SessionKey};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

/// Romeo initiates, Juliet (deferring transport-info) accepts.
fn accepted() -> Pair {
    let mut p = Pair::new();
    let mut c = config();
    c.defer_transport_info = true;
    c.answer_timeout = Duration::from_secs(5);
    p.b = Endpoint::new(B.parse().unwrap(), c);
    let now = p.now;
    p.a.initiate(now, B.parse().unwrap(), sid("s1"), vec![offer("f")])
        .unwrap();
    p.run();
    let key = SessionKey::new(A.parse().unwrap(), sid("s1"));
    let answer = Content::new(Creator::Initiator, "f")
        .with_transport(el("<transport xmlns='urn:example:t1' sid='t'/>"));
    p.b.accept(now, &key, vec![answer]).unwrap();
    p.run();
    p.events_a();
    p.events_b();
    p
}

fn info(p: &mut Pair) -> String {
    let key = SessionKey::new(B.parse().unwrap(), sid("s1"));
    let c = Content::new(Creator::Initiator, "f").with_transport(el(
        "<transport xmlns='urn:example:t1'><used cid='x'/></transport>",
    ));
    let now = p.now;
    p.a.transport_info(now, &key, c).unwrap()
}

#[test]
fn a_deferred_transport_info_is_answered_with_the_applications_verdict() {
    let mut p = accepted();
    let sent = info(&mut p);
    let (_, back) = p.run();
    assert!(back.is_empty(), "not acknowledged on arrival: {back:?}");
    let ev = p.events_b();
    let [
        Event::TransportInfo {
            key,
            answer: Some(id),
            ..
        },
    ] = &ev[..]
    else {
        panic!("{ev:?}")
    };
    let refusal = StanzaError::new(ErrorType::Modify, DefinedCondition::BadRequest, "en", "no");
    assert!(p.b.answer_transport_info(key, id, Err(refusal)));
    assert!(!p.b.answer_transport_info(key, id, Ok(())), "answered once");
    p.run();
    let ev = p.events_a();
    assert!(
        matches!(&ev[..], [Event::RequestFailed { id, action: Action::TransportInfo, error: RequestError::Stanza(e), .. }]
            if *id == sent && e.defined_condition == DefinedCondition::BadRequest),
        "{ev:?}"
    );
    // An accepted one is acknowledged.
    let sent = info(&mut p);
    p.run();
    let ev = p.events_b();
    let [
        Event::TransportInfo {
            key,
            answer: Some(id),
            ..
        },
    ] = &ev[..]
    else {
        panic!("{ev:?}")
    };
    assert!(p.b.answer_transport_info(key, id, Ok(())));
    p.run();
    let ev = p.events_a();
    assert!(
        matches!(&ev[..], [Event::RequestDone { id, .. }] if *id == sent),
        "{ev:?}"
    );
}

#[test]
fn a_deferred_transport_info_nobody_answers_is_acknowledged_after_the_answer_timeout() {
    let mut p = accepted();
    let sent = info(&mut p);
    p.run();
    p.advance(Duration::from_secs(4));
    p.run();
    assert!(p.events_a().is_empty());
    p.advance(Duration::from_secs(2));
    p.run();
    let ev = p.events_a();
    assert!(
        matches!(&ev[..], [Event::RequestDone { id, .. }] if *id == sent),
        "{ev:?}"
    );
}
