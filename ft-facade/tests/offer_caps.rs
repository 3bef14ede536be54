//! An offer flood from one account (BAD-INPUT I2): at most 16 offers per peer pending or
//! active, the next refused with `wait/resource-constraint`, while other peers are served.

mod common;

use std::time::Duration;

use common::*;
use ft_facade::{AcceptOptions, Method, Policy, Refusal, SendOptions};
use ft_transport::hub::{Hub, HubReceiver, HubTransport};
use ft_transport::{Stanza, StanzaTransport};
use minidom::Element;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

/// An SI file-transfer offer of `sid` in iq `id`, IBB only.
fn si_offer(id: &str, sid: &str, to: &str) -> Stanza {
    let xml = format!(
        "<iq xmlns='jabber:client' type='set' id='{id}' to='{to}'>\
         <si xmlns='http://jabber.org/protocol/si' id='{sid}' \
         profile='http://jabber.org/protocol/si/profile/file-transfer'>\
         <file xmlns='http://jabber.org/protocol/si/profile/file-transfer' name='{sid}.bin' size='10'/>\
         <feature xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' type='form'>\
         <field var='stream-method' type='list-single'>\
         <option><value>http://jabber.org/protocol/ibb</value></option></field></x></feature></si></iq>"
    );
    let el: Element = xml.parse().unwrap();
    Stanza::Iq(Iq::try_from(el).unwrap())
}

/// The next iq `rx` receives within `within`, if any.
async fn next_iq(rx: &mut HubReceiver, within: Duration) -> Option<Iq> {
    match tokio::time::timeout(within, rx.recv()).await {
        Ok(Some(Stanza::Iq(iq))) => Some(iq),
        Ok(other) => panic!("expected an iq, got {other:?}"),
        Err(_) => None,
    }
}

/// Sends 17 offers from `t` (sids `s1`..`s17`); returns once they are all sent.
async fn flood(t: &HubTransport, to: &str) {
    for i in 1..=17 {
        t.send(si_offer(&format!("o{i}"), &format!("s{i}"), to))
            .await
            .unwrap();
    }
}

fn assert_resource_constraint_wait(iq: &Iq, id: &str) {
    let Iq::Error { id: got, error, .. } = iq else {
        panic!("expected an error, got {iq:?}")
    };
    assert_eq!(got, id);
    assert_eq!(
        error.defined_condition,
        DefinedCondition::ResourceConstraint
    );
    assert_eq!(error.type_, ErrorType::Wait);
}

#[tokio::test]
async fn i2_the_17th_offer_from_one_peer_gets_resource_constraint_wait_and_another_peer_is_served()
{
    let hub = Hub::new();
    let bob = entity(&hub, "bob@x/b", config(&[Method::Ibb]));
    let (mallory, mut mallory_rx) = hub.connect(jid("mallory@x/m"));
    flood(&mallory, "bob@x/b").await;
    // The first 16 wait for bob's user; only the 17th is answered, at once.
    let answer = next_iq(&mut mallory_rx, Duration::from_secs(5))
        .await
        .expect("the 17th offer is answered");
    assert_resource_constraint_wait(&answer, "o17");
    assert!(
        next_iq(&mut mallory_rx, Duration::from_millis(200))
            .await
            .is_none()
    );
    let refused = bob.next_refused().await.unwrap();
    assert!(
        matches!(refused.reason, Refusal::PeerBusy { limit: 16 }),
        "{:?}",
        refused.reason
    );
    assert_eq!(refused.from, Some(jid("mallory@x/m")));
    // Another resource of the same account shares the cap (it is counted per bare JID).
    let (mallory2, mut mallory2_rx) = hub.connect(jid("mallory@x/other"));
    mallory2
        .send(si_offer("p1", "t1", "bob@x/b"))
        .await
        .unwrap();
    let answer = next_iq(&mut mallory2_rx, Duration::from_secs(5))
        .await
        .unwrap();
    assert_resource_constraint_wait(&answer, "p1");

    // Carol is served: her file arrives while mallory's 16 still wait.
    let carol = entity(&hub, "carol@x/c", config(&[Method::Ibb]));
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let data = content(50_000, 7);
    let path = write_file(src.path(), "from-carol.bin", &data);
    let sending = carol.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let mut held = Vec::new();
    let offer = loop {
        let offer = tokio::time::timeout(Duration::from_secs(5), bob.next_offer())
            .await
            .expect("carol's offer reaches bob's user")
            .unwrap();
        if offer.from() == &jid("carol@x/c") {
            break offer;
        }
        held.push(offer);
    };
    assert_eq!(held.len(), 16, "mallory's pending offers");
    let receiving = offer.accept_into_dir(dst.path(), AcceptOptions::new());
    let (sent, received) = tokio::join!(sending.outcome(), receiving.outcome());
    sent.unwrap();
    let on_disk = received.unwrap().path.unwrap();
    assert_eq!(sha256_file(&on_disk), sha256_hex(&data));
}

#[tokio::test]
async fn i2_auto_accepted_offers_count_against_the_per_peer_cap() {
    let hub = Hub::new();
    let dst = tempfile::tempdir().unwrap();
    let mut c = config(&[Method::Ibb]);
    c.policy = Policy::auto_accept(vec![jid("mallory@x").to_bare()], dst.path());
    let _bob = entity(&hub, "bob@x/b", c);
    let (mallory, mut mallory_rx) = hub.connect(jid("mallory@x/m"));
    flood(&mallory, "bob@x/b").await;
    // 16 accepted (each then waits for an IBB open that never comes), the 17th refused.
    let mut accepted = 0;
    let mut refused = Vec::new();
    while let Some(iq) = next_iq(&mut mallory_rx, Duration::from_secs(2)).await {
        match &iq {
            Iq::Result { .. } => accepted += 1,
            Iq::Error { .. } => refused.push(iq),
            other => panic!("{other:?}"),
        }
        if accepted + refused.len() == 17 {
            break;
        }
    }
    assert_eq!(accepted, 16);
    assert_eq!(refused.len(), 1);
    assert_resource_constraint_wait(&refused[0], "o17");
}

/// An offer whose `stream-method` field lists `methods`.
fn offer_with_methods(id: &str, sid: &str, methods: &[String]) -> Stanza {
    let options: String = methods
        .iter()
        .map(|m| format!("<option><value>{m}</value></option>"))
        .collect();
    let xml = format!(
        "<iq xmlns='jabber:client' type='set' id='{id}' to='bob@x/b'>\
         <si xmlns='http://jabber.org/protocol/si' id='{sid}' \
         profile='http://jabber.org/protocol/si/profile/file-transfer'>\
         <file xmlns='http://jabber.org/protocol/si/profile/file-transfer' name='m.bin' size='10'/>\
         <feature xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' type='form'>\
         <field var='stream-method' type='list-single'>{options}</field></x></feature></si></iq>"
    );
    let el: Element = xml.parse().unwrap();
    Stanza::Iq(Iq::try_from(el).unwrap())
}

#[tokio::test]
async fn b6_methods_past_the_16th_option_are_ignored_and_duplicates_count_once() {
    let hub = Hub::new();
    let bob = entity(&hub, "bob@x/b", config(&[Method::Ibb]));
    let (mallory, mut rx) = hub.connect(jid("mallory@x/m"));
    const IBB: &str = "http://jabber.org/protocol/ibb";
    // Sixteen unknown methods, then IBB: IBB is never read, so nothing is in common.
    let mut methods: Vec<String> = (0..16).map(|i| format!("urn:junk:{i}")).collect();
    methods.push(IBB.into());
    mallory
        .send(offer_with_methods("late", "s-late", &methods))
        .await
        .unwrap();
    let answer = next_iq(&mut rx, Duration::from_secs(5)).await.unwrap();
    let Iq::Error { id, error, .. } = &answer else {
        panic!("{answer:?}")
    };
    assert_eq!(id, "late");
    assert_eq!(error.defined_condition, DefinedCondition::BadRequest);
    assert_eq!(
        xep0095_si::AppCondition::of(error),
        Some(xep0095_si::AppCondition::NoValidStreams)
    );
    assert!(matches!(
        bob.next_refused().await.unwrap().reason,
        Refusal::NoCommonMethod
    ));
    // IBB twelve times among unknown ones, within the first 16: offered once, chosen.
    let mut methods: Vec<String> = vec![IBB.into(); 12];
    methods.extend((0..5000).map(|i| format!("urn:junk:{i}")));
    mallory
        .send(offer_with_methods("dup", "s-dup", &methods))
        .await
        .unwrap();
    let offer = tokio::time::timeout(Duration::from_secs(5), bob.next_offer())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        offer.methods(),
        [IBB, "urn:junk:0", "urn:junk:1", "urn:junk:2", "urn:junk:3"]
    );
}
