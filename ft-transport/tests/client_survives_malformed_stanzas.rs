//! Through a real Prosody: a peer's malformed stanzas neither kill our client connection
//! nor reach the handlers unrepaired.
#![cfg(feature = "tokio-xmpp")]

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use ft_testkit::{Prosody, ProsodyOptions};
use ft_transport::iq::IqTracker;
use ft_transport::xmpp::Inbound;
use ft_transport::{Jid, Stanza, StanzaTransport};
use minidom::Element;
use tokio::sync::mpsc;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

const WAIT: Duration = Duration::from_secs(20);

/// Feeds every inbound stanza to the tracker; hands the rest to the returned channel.
fn pump(inbound: Inbound, tracker: Arc<IqTracker>) -> mpsc::UnboundedReceiver<Stanza> {
    let (tx, rx) = mpsc::unbounded_channel();
    let rest = move |other| {
        let _ = tx.send(other);
        ControlFlow::Break(())
    };
    tokio::spawn(ft_transport::pump(inbound, (tracker, rest)));
    rx
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Stanza>) -> Stanza {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a stanza within the budget")
        .expect("the connection is still up")
}

fn raw(xml: &str) -> Element {
    xml.parse().unwrap()
}

#[tokio::test]
async fn a_peers_spark_refusal_is_repaired_and_its_junk_does_not_kill_the_connection() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let (alice, alice_in) = prosody.connect("alice", "rust").await.unwrap();
    let (bob, bob_in) = prosody.connect("bob", "rust").await.unwrap();
    let alice_tracker = Arc::new(IqTracker::new("alice"));
    let mut alice_rx = pump(alice_in, alice_tracker.clone());
    let mut bob_rx = pump(bob_in, Arc::new(IqTracker::new("bob")));
    let to_alice = alice.jid().to_string();

    // Seed 000: Spark's refusal of a file offer, upper-case type and mangled condition.
    bob.send_raw(raw(&format!(
        "<iq xmlns='jabber:client' type='error' id='file_33fe4dbdf2364' to='{to_alice}'><error code='406' type='MODIFY'>\n\t\tnot-acceptable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>\n\t</error></iq>"
    )))
    .await
    .unwrap();
    // A message xmpp-parsers refuses (two threads).
    bob.send_raw(raw(&format!(
        "<message xmlns='jabber:client' id='junk' to='{to_alice}'><body>x</body><thread>a</thread><thread>b</thread></message>"
    )))
    .await
    .unwrap();
    // A request xmpp-parsers refuses (a get without its payload).
    bob.send_raw(raw(&format!(
        "<iq xmlns='jabber:client' type='get' id='junk-request' to='{to_alice}'/>"
    )))
    .await
    .unwrap();
    // A well-formed marker after the junk.
    let mut marker = xmpp_parsers::message::Message::new(Some(alice.jid().clone()));
    marker.id = Some(xmpp_parsers::message::Id("marker".into()));
    bob.send(marker.into()).await.unwrap();

    // Alice gets the refusal, repaired into a typed error, then the marker: the junk message
    // was dropped and the junk request answered, never handed on.
    let Stanza::Iq(Iq::Error {
        id, from, error, ..
    }) = next(&mut alice_rx).await
    else {
        panic!("the refusal did not arrive first")
    };
    assert_eq!(id, "file_33fe4dbdf2364");
    assert_eq!(from.as_ref(), Some(bob.jid()));
    assert_eq!(error.type_, ErrorType::Modify);
    assert_eq!(error.defined_condition, DefinedCondition::NotAcceptable);
    let Stanza::Message(message) = next(&mut alice_rx).await else {
        panic!("the marker did not follow")
    };
    assert_eq!(message.id.map(|id| id.0).as_deref(), Some("marker"));

    // Bob is told his request was bad.
    let Stanza::Iq(Iq::Error {
        id, from, error, ..
    }) = next(&mut bob_rx).await
    else {
        panic!("no answer to the malformed request")
    };
    assert_eq!(id, "junk-request");
    assert_eq!(from.as_ref(), Some(alice.jid()));
    assert_eq!(error.type_, ErrorType::Modify);
    assert_eq!(error.defined_condition, DefinedCondition::BadRequest);

    // Alice's connection is the same one, still up: an iq round trip succeeds and Prosody
    // never saw her stream fail.
    let server: Jid = prosody.domain().parse().unwrap();
    let ping = Iq::from_get("ignored", xmpp_parsers::ping::Ping).with_to(server);
    let answer = alice_tracker.request(&alice, ping, WAIT).await;
    assert!(matches!(answer, Ok(None)), "{answer:?}");
    let log = prosody.log();
    assert_eq!(
        log.matches("Authenticated as alice@localhost").count(),
        1,
        "alice logged in again:\n{log}"
    );
}
