//! What the manager answers on its own: bad offers, policies, unexpected bytestreams.

mod common;

use std::time::Duration;

use common::*;
use ft_facade::{Method, Policy, SendOptions};
use ft_transport::hub::{Hub, HubReceiver, HubTransport};
use ft_transport::{Stanza, StanzaTransport};
use minidom::Element;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

const NS_SI: &str = "http://jabber.org/protocol/si";

async fn ask(t: &HubTransport, rx: &mut HubReceiver, xml: &str) -> Iq {
    let el: Element = xml.parse().unwrap();
    t.send(Stanza::Iq(Iq::try_from(el).unwrap())).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
        Ok(Some(Stanza::Iq(iq))) => iq,
        other => panic!("expected an iq answer, got {other:?}"),
    }
}

fn error_of(iq: &Iq) -> &StanzaError {
    match iq {
        Iq::Error { error, .. } => error,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn offer(profile: &str, file: &str, methods: &[&str]) -> String {
    let options: String = methods
        .iter()
        .map(|m| format!("<option><value>{m}</value></option>"))
        .collect();
    format!(
        "<iq xmlns='jabber:client' type='set' id='o1' to='bob@x/b'>\
         <si xmlns='{NS_SI}' id='s1' profile='{profile}'>{file}\
         <feature xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' type='form'>\
         <field var='stream-method' type='list-single'>{options}</field></x></feature></si></iq>"
    )
}

const FT: &str = "http://jabber.org/protocol/si/profile/file-transfer";

#[tokio::test]
async fn an_si_offer_with_another_profile_gets_bad_profile() {
    let hub = Hub::new();
    let _bob = entity(&hub, "bob@x/b", config(&[Method::S5b, Method::Ibb]));
    let (t, mut rx) = hub.connect(jid("mallory@x/m"));
    let answer = ask(
        &t,
        &mut rx,
        &offer(
            "urn:example:other",
            "<thing xmlns='urn:example:other'/>",
            &["http://jabber.org/protocol/ibb"],
        ),
    )
    .await;
    let e = error_of(&answer);
    assert_eq!(e.defined_condition, DefinedCondition::BadRequest);
    assert_eq!(
        xep0095_si::AppCondition::of(e),
        Some(xep0095_si::AppCondition::BadProfile)
    );
}

#[tokio::test]
async fn b5_an_offer_with_no_method_we_know_or_no_stream_method_gets_no_valid_streams() {
    let hub = Hub::new();
    let _bob = entity(&hub, "bob@x/b", config(&[Method::S5b, Method::Ibb]));
    let (t, mut rx) = hub.connect(jid("mallory@x/m"));
    let answer = ask(
        &t,
        &mut rx,
        &offer(
            FT,
            &format!("<file xmlns='{FT}' name='a' size='1'/>"),
            &["jabber:iq:oob"],
        ),
    )
    .await;
    let e = error_of(&answer);
    assert_eq!(e.type_, ErrorType::Cancel);
    assert_eq!(e.defined_condition, DefinedCondition::BadRequest);
    assert_eq!(
        xep0095_si::AppCondition::of(e),
        Some(xep0095_si::AppCondition::NoValidStreams)
    );
    // A form without the stream-method field: the same answer.
    let answer = ask(
        &t,
        &mut rx,
        &format!(
            "<iq xmlns='jabber:client' type='set' id='o2' to='bob@x/b'>\
             <si xmlns='{NS_SI}' id='s2' profile='{FT}'><file xmlns='{FT}' name='a' size='1'/>\
             <feature xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' type='form'>\
             <field var='other' type='list-single'><option><value>x</value></option></field>\
             </x></feature></si></iq>"
        ),
    )
    .await;
    let e = error_of(&answer);
    assert_eq!(
        (e.type_.clone(), e.defined_condition.clone()),
        (ErrorType::Cancel, DefinedCondition::BadRequest)
    );
    assert_eq!(
        xep0095_si::AppCondition::of(e),
        Some(xep0095_si::AppCondition::NoValidStreams)
    );
}

#[tokio::test]
async fn an_offer_over_the_size_limit_is_declined_with_forbidden() {
    let hub = Hub::new();
    let mut c = config(&[Method::S5b, Method::Ibb]);
    c.policy(Policy::default().with_max_size(1000));
    let _bob = entity(&hub, "bob@x/b", c);
    let (t, mut rx) = hub.connect(jid("mallory@x/m"));
    let answer = ask(
        &t,
        &mut rx,
        &offer(
            FT,
            &format!("<file xmlns='{FT}' name='big' size='1001'/>"),
            &["http://jabber.org/protocol/ibb"],
        ),
    )
    .await;
    let e = error_of(&answer);
    assert_eq!(e.type_, ErrorType::Cancel);
    assert_eq!(e.defined_condition, DefinedCondition::Forbidden);
}

#[tokio::test]
async fn a_malformed_file_element_gets_bad_profile() {
    let hub = Hub::new();
    let _bob = entity(&hub, "bob@x/b", config(&[Method::Ibb]));
    let (t, mut rx) = hub.connect(jid("mallory@x/m"));
    let answer = ask(
        &t,
        &mut rx,
        &offer(
            FT,
            &format!("<file xmlns='{FT}' name='a' size='lots'/>"),
            &["http://jabber.org/protocol/ibb"],
        ),
    )
    .await;
    assert_eq!(
        xep0095_si::AppCondition::of(error_of(&answer)),
        Some(xep0095_si::AppCondition::BadProfile)
    );
}

#[tokio::test]
async fn an_ibb_open_without_an_accepted_offer_is_refused_not_acceptable() {
    let hub = Hub::new();
    let _bob = entity(&hub, "bob@x/b", config(&[Method::Ibb]));
    let (t, mut rx) = hub.connect(jid("mallory@x/m"));
    let answer = ask(
        &t,
        &mut rx,
        "<iq xmlns='jabber:client' type='set' id='i1' to='bob@x/b'>\
         <open xmlns='http://jabber.org/protocol/ibb' sid='nobody-asked' block-size='4096'/></iq>",
    )
    .await;
    let e = error_of(&answer);
    assert_eq!(e.type_, ErrorType::Cancel);
    assert_eq!(e.defined_condition, DefinedCondition::NotAcceptable);
}

#[tokio::test]
async fn a_bytestreams_offer_without_an_accepted_offer_is_refused_not_acceptable() {
    let hub = Hub::new();
    let _bob = entity(&hub, "bob@x/b", config(&[Method::S5b]));
    let (t, mut rx) = hub.connect(jid("mallory@x/m"));
    let answer = ask(
        &t,
        &mut rx,
        "<iq xmlns='jabber:client' type='set' id='b1' to='bob@x/b'>\
         <query xmlns='http://jabber.org/protocol/bytestreams' sid='nobody-asked'>\
         <streamhost jid='mallory@x/m' host='127.0.0.1' port='9'/></query></iq>",
    )
    .await;
    assert_eq!(
        error_of(&answer).defined_condition,
        DefinedCondition::NotAcceptable
    );
}

#[tokio::test]
async fn offers_from_an_auto_accepted_account_land_without_asking() {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", config(&[Method::Ibb]));
    let dst = tempfile::tempdir().unwrap();
    let mut c = config(&[Method::S5b, Method::Ibb]);
    c.policy(Policy::auto_accept(
        vec!["alice@x".parse().unwrap()],
        dst.path(),
    ));
    let bob = entity(&hub, "bob@x/b", c);
    let src = tempfile::tempdir().unwrap();
    let data = content(10_000, 12);
    let path = write_file(src.path(), "auto.bin", &data);
    let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let mut offer = bob.next_offer().await.unwrap();
    let handle = offer.take_auto_accepted().expect("accepted by the policy");
    drop(offer);
    let (sent, received) = tokio::join!(sending.outcome(), handle.outcome());
    sent.unwrap();
    assert_eq!(received.unwrap().path, Some(dst.path().join("auto.bin")));
    assert_eq!(sha256_file(&dst.path().join("auto.bin")), sha256_hex(&data));
}

#[tokio::test]
async fn an_offer_dropped_unanswered_is_declined() {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", config(&[Method::Ibb]));
    let bob = entity(&hub, "bob@x/b", config(&[Method::Ibb]));
    let src = tempfile::tempdir().unwrap();
    let path = write_file(src.path(), "x.bin", &content(10, 13));
    let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    drop(bob.next_offer().await.unwrap());
    let err = sending.outcome().await.unwrap_err();
    assert!(
        matches!(err.kind, ft_facade::ErrorKind::Declined { .. }),
        "{err}"
    );
}
