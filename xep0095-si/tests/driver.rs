//! The tokio driver over the in-memory hub: a real offer, a real answer.
#![cfg(feature = "tokio")]

use std::sync::Arc;
use std::time::Duration;

use ft_transport::hub::{Hub, HubReceiver, HubTransport};
use ft_transport::iq::IqTracker;
use ft_transport::{Jid, Stanza, StanzaTransport};
use minidom::Element;
use xep0095_si::{Error, Offer, Rejection, Si, SiError, Sid, error_reply, method, offer};

fn jid(s: &str) -> Jid {
    s.parse().unwrap()
}

fn file() -> Element {
    "<file xmlns='http://jabber.org/protocol/si/profile/file-transfer' name='a' size='1'/>"
        .parse()
        .unwrap()
}

/// The target: answers each offer with `answer(offer)`.
fn target(
    tx: HubTransport,
    mut rx: HubReceiver,
    answer: fn(&Offer) -> Option<xmpp_parsers::iq::Iq>,
) {
    tokio::spawn(async move {
        while let Some(Stanza::Iq(iq)) = rx.recv().await {
            let reply = match Offer::from_iq(&iq) {
                Ok(o) => answer(&o),
                Err(e) => error_reply(&iq, &e),
            };
            if let Some(reply) = reply {
                tx.send(Stanza::Iq(reply)).await.unwrap();
            }
        }
    });
}

fn initiator(hub: &Hub) -> (HubTransport, Arc<IqTracker>) {
    let (tx, mut rx) = hub.connect(jid("a@x/1"));
    let tracker = Arc::new(IqTracker::new("si"));
    let t = tracker.clone();
    tokio::spawn(async move {
        while let Some(s) = rx.recv().await {
            let _ = t.handle_stanza(s);
        }
    });
    (tx, tracker)
}

fn si() -> Si {
    Si::offer(
        &Sid::new("s1").unwrap(),
        file(),
        &[method::BYTESTREAMS, method::IBB],
    )
}

#[tokio::test]
async fn an_accepted_offer_yields_the_chosen_method() {
    let hub = Hub::new();
    let (btx, brx) = hub.connect(jid("b@x/1"));
    target(btx, brx, |o| {
        o.accept(o.choose(&[method::IBB]).unwrap()).ok()
    });
    let (a, tracker) = initiator(&hub);
    let got = offer(&tracker, &a, jid("b@x/1"), si(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(got.method, method::IBB);
    assert_eq!(tracker.pending(), 0);
}

#[tokio::test]
async fn a_decline_is_a_typed_rejection() {
    let hub = Hub::new();
    let (btx, brx) = hub.connect(jid("b@x/1"));
    target(btx, brx, |o| Some(o.decline(Some("busy"))));
    let (a, tracker) = initiator(&hub);
    let err = offer(&tracker, &a, jid("b@x/1"), si(), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Rejected(Rejection::Declined { text: Some(ref t) }) if t == "busy")
    );
}

#[tokio::test]
async fn no_common_method_is_no_valid_streams() {
    let hub = Hub::new();
    let (btx, brx) = hub.connect(jid("b@x/1"));
    target(btx, brx, |o| Some(o.no_valid_streams()));
    let (a, tracker) = initiator(&hub);
    let err = offer(&tracker, &a, jid("b@x/1"), si(), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Rejected(Rejection::NoValidStreams)));
}

#[tokio::test]
async fn an_offer_without_profile_element_is_refused_with_bad_profile() {
    let hub = Hub::new();
    let (btx, brx) = hub.connect(jid("b@x/1"));
    target(btx, brx, |o| o.accept(method::IBB).ok());
    let (a, tracker) = initiator(&hub);
    let mut bad = si();
    bad.payloads.clear();
    let err = offer(&tracker, &a, jid("b@x/1"), bad, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Rejected(Rejection::BadProfile)),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_answer_with_an_unoffered_method_is_a_protocol_error() {
    let hub = Hub::new();
    let (btx, mut brx) = hub.connect(jid("b@x/1"));
    tokio::spawn(async move {
        while let Some(Stanza::Iq(iq)) = brx.recv().await {
            let reply =
                xmpp_parsers::iq::Iq::from_result(iq.id(), Some(Si::answer("jabber:iq:oob")))
                    .with_to(iq.from().unwrap().clone());
            btx.send(Stanza::Iq(reply)).await.unwrap();
        }
    });
    let (a, tracker) = initiator(&hub);
    let err = offer(&tracker, &a, jid("b@x/1"), si(), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Protocol(SiError::NotOffered(_))),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn silence_is_a_timeout() {
    let hub = Hub::new();
    let (_b, _brx) = hub.connect(jid("b@x/1"));
    let (a, tracker) = initiator(&hub);
    let err = offer(&tracker, &a, jid("b@x/1"), si(), Duration::from_secs(15))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(d) if d == Duration::from_secs(15)));
}

#[tokio::test]
async fn an_unreachable_peer_is_other_service_unavailable() {
    let hub = Hub::new();
    let (a, tracker) = initiator(&hub);
    let err = offer(
        &tracker,
        &a,
        jid("nobody@x/1"),
        si(),
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    let Error::Rejected(Rejection::Other(e)) = err else {
        panic!("{err:?}")
    };
    assert_eq!(
        e.defined_condition,
        xmpp_parsers::stanza_error::DefinedCondition::ServiceUnavailable
    );
}
