//! The target's answers to offers: each rejected input gets the condition XEP-0065 names.

mod common;

use std::time::Duration;

use common::*;
use ft_transport::hub::Hub;
use xep0065_s5b::{Error, ProtocolError, Sid};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

fn offer(id: &str, xml: &str) -> Iq {
    Iq::Set {
        from: None,
        to: Some(jid("bob@example.org/b")),
        id: id.into(),
        payload: xml.parse().unwrap(),
    }
}

fn condition(iq: &Iq) -> (ErrorType, DefinedCondition) {
    match iq {
        Iq::Error { error, .. } => (error.type_.clone(), error.defined_condition.clone()),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn c1_an_offer_without_sid_is_bad_request_and_one_nobody_expects_not_acceptable() {
    let hub = Hub::new();
    let _b = peer(&hub, "bob@example.org/b", config());
    let mut a = Raw::new(&hub, "alice@example.org/a");
    let r = a
        .ask(offer(
            "o1",
            "<query xmlns='http://jabber.org/protocol/bytestreams'>\
            <streamhost jid='alice@example.org/a' host='127.0.0.1' port='9'/></query>",
        ))
        .await;
    assert_eq!(
        condition(&r),
        (ErrorType::Modify, DefinedCondition::BadRequest)
    );
    // A sid no SI negotiation announced (nobody expects it): not-acceptable.
    let r = a
        .ask(offer(
            "o2",
            "<query xmlns='http://jabber.org/protocol/bytestreams' sid='unknown'>\
            <streamhost jid='alice@example.org/a' host='127.0.0.1' port='9'/></query>",
        ))
        .await;
    assert_eq!(
        condition(&r),
        (ErrorType::Modify, DefinedCondition::NotAcceptable)
    );
}

#[tokio::test]
async fn an_offer_with_a_bad_port_is_bad_request() {
    let hub = Hub::new();
    let _b = peer(&hub, "bob@example.org/b", config());
    let mut a = Raw::new(&hub, "alice@example.org/a");
    let r = a
        .ask(offer(
            "o1",
            "<query xmlns='http://jabber.org/protocol/bytestreams' sid='s'>\
            <streamhost jid='alice@example.org/a' host='127.0.0.1' port='99999'/></query>",
        ))
        .await;
    assert_eq!(
        condition(&r),
        (ErrorType::Modify, DefinedCondition::BadRequest)
    );
}

#[tokio::test]
async fn an_expected_sid_from_another_jid_is_not_acceptable() {
    let hub = Hub::new();
    let b = peer(&hub, "bob@example.org/b", config());
    let _pending = b.expect(
        jid("alice@example.org/a"),
        Sid::new("s1").unwrap(),
        Duration::from_secs(5),
    );
    let mut m = Raw::new(&hub, "mallory@example.org/m");
    let r = m
        .ask(offer(
            "o1",
            "<query xmlns='http://jabber.org/protocol/bytestreams' sid='s1'>\
            <streamhost jid='mallory@example.org/m' host='127.0.0.1' port='9'/></query>",
        ))
        .await;
    assert_eq!(
        condition(&r),
        (ErrorType::Modify, DefinedCondition::NotAcceptable)
    );
}

#[tokio::test]
async fn c9_a_udp_offer_is_refused_with_not_acceptable() {
    let hub = Hub::new();
    let b = peer(&hub, "bob@example.org/b", config());
    let target = tokio::spawn(b.expect(
        jid("alice@example.org/a"),
        Sid::new("u1").unwrap(),
        Duration::from_secs(5),
    ));
    let mut a = Raw::new(&hub, "alice@example.org/a");
    let r = a
        .ask(offer(
            "o1",
            "<query xmlns='http://jabber.org/protocol/bytestreams' sid='u1' mode='udp'>\
            <streamhost jid='alice@example.org/a' host='127.0.0.1' port='9'/></query>",
        ))
        .await;
    assert_eq!(
        condition(&r),
        (ErrorType::Modify, DefinedCondition::NotAcceptable)
    );
    assert!(matches!(
        target.await.unwrap(),
        Err(Error::Protocol(ProtocolError::UdpNotSupported))
    ));
}

#[tokio::test(start_paused = true)]
async fn expect_without_an_offer_times_out_and_forgets_the_sid() {
    let hub = Hub::new();
    let b = peer(&hub, "bob@example.org/b", config());
    let err = b
        .expect(
            jid("alice@example.org/a"),
            Sid::new("t1").unwrap(),
            Duration::from_secs(30),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(d) if d == Duration::from_secs(30)));
    // The sid can be expected again.
    let again = b.expect(
        jid("alice@example.org/a"),
        Sid::new("t1").unwrap(),
        Duration::from_secs(1),
    );
    assert!(matches!(again.await, Err(Error::Timeout(_))));
}

#[tokio::test]
async fn the_target_refusing_is_reported_as_rejected_with_its_condition() {
    let hub = Hub::new();
    let a = peer(&hub, "alice@example.org/a", config());
    // bob exists but expects nothing: he answers not-acceptable.
    let _b = peer(&hub, "bob@example.org/b", config());
    let err = a
        .connect(jid("bob@example.org/b"), Sid::new("r1").unwrap(), &[])
        .await
        .unwrap_err();
    let se = err.stanza_error().unwrap();
    assert_eq!(se.defined_condition, DefinedCondition::NotAcceptable);
}
