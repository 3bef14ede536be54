//! A transport-info is answered by the S5B negotiation's verdict, not acknowledged before
//! it is judged (docs/bad-input.md J20, J21 through the facade): mallory, a hand-written
//! peer on the hub, accepts alice's S5B offer and then sends what XEP-0260 does not allow.

mod common;

use std::ops::ControlFlow;
use std::time::Duration;

use common::*;
use ft_facade::{Method, SendOptions};
use ft_transport::hub::{Hub, HubReceiver, HubTransport};
use ft_transport::{Stanza, StanzaTransport};
use minidom::Element;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

const NS_JINGLE: &str = "urn:xmpp:jingle:1";
const NS_S5B: &str = "urn:xmpp:jingle:transports:s5b:1";

fn set(id: &str, xml: &str) -> Stanza {
    Stanza::Iq(Iq::Set {
        from: None,
        to: Some(jid("alice@x/a")),
        id: id.to_owned(),
        payload: xml.parse().unwrap(),
    })
}

/// Mallory's end: answers disco with Jingle FT over S5B, acknowledges alice's jingle iqs,
/// and returns alice's session-initiate.
async fn offered(t: &HubTransport, rx: &mut HubReceiver) -> Element {
    let responder = ft_facade::disco::DiscoResponder::file_transfer_client().with_features([
        NS_JINGLE,
        "urn:xmpp:jingle:apps:file-transfer:5",
        NS_S5B,
    ]);
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let s = rx.recv().await.unwrap();
            match responder.handle_stanza(s) {
                ControlFlow::Break(Some(reply)) => t.send(reply).await.unwrap(),
                ControlFlow::Break(None) => {}
                ControlFlow::Continue(Stanza::Iq(Iq::Set {
                    from, id, payload, ..
                })) if payload.is("jingle", NS_JINGLE) => {
                    t.send(Stanza::Iq(Iq::empty_result(from.unwrap(), id)))
                        .await
                        .unwrap();
                    return payload;
                }
                ControlFlow::Continue(_) => {}
            }
        }
    })
    .await
    .expect("alice's session-initiate")
}

/// The answer to mallory's iq `id` (alice's own jingle iqs are acknowledged on the way):
/// `None` for a result, the error otherwise.
async fn answer(t: &HubTransport, rx: &mut HubReceiver, id: &str) -> Option<StanzaError> {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match rx.recv().await.unwrap() {
                Stanza::Iq(Iq::Result { id: got, .. }) if got == id => return None,
                Stanza::Iq(Iq::Error { id: got, error, .. }) if got == id => return Some(error),
                Stanza::Iq(Iq::Set {
                    from, id, payload, ..
                }) if payload.is("jingle", NS_JINGLE) => {
                    t.send(Stanza::Iq(Iq::empty_result(from.unwrap(), id)))
                        .await
                        .unwrap();
                }
                _ => {}
            }
        }
    })
    .await
    .expect("an answer within 5 s (not the answer timeout)")
}

/// Alice offers over S5B; mallory accepts with no candidate of its own. Returns
/// mallory's end, the session sid and the transport sid.
async fn accepted(
    hub: &Hub,
) -> (
    HubTransport,
    HubReceiver,
    String,
    String,
    ft_facade::TransferHandle,
) {
    let alice = entity(hub, "alice@x/a", jconfig(&[Method::S5b]));
    let (t, mut rx) = hub.connect(jid("mallory@x/m"));
    let src = tempfile::tempdir().unwrap();
    let path = write_file(src.path(), "t.bin", &content(1000, 51));
    let sending = alice.send_file(jid("mallory@x/m"), &path, SendOptions::default());
    let offer = offered(&t, &mut rx).await;
    let sid = offer.attr("sid").unwrap().to_owned();
    let transport = offer
        .children()
        .flat_map(Element::children)
        .find(|c| c.is("transport", NS_S5B))
        .expect("an s5b transport");
    let tsid = transport.attr("sid").unwrap().to_owned();
    let accept = format!(
        "<jingle xmlns='{NS_JINGLE}' action='session-accept' initiator='alice@x/a' \
           responder='mallory@x/m' sid='{sid}'>\
           <content creator='initiator' name='a-file' senders='initiator'>\
             <description xmlns='urn:xmpp:jingle:apps:file-transfer:5'><file>\
               <name>t.bin</name><size>1000</size></file></description>\
             <transport xmlns='{NS_S5B}' sid='{tsid}' mode='tcp'/></content></jingle>"
    );
    t.send(set("acc", &accept)).await.unwrap();
    assert_eq!(answer(&t, &mut rx, "acc").await, None);
    (t, rx, sid, tsid, sending)
}

fn transport_info(sid: &str, tsid: &str, inner: &str) -> String {
    format!(
        "<jingle xmlns='{NS_JINGLE}' action='transport-info' initiator='alice@x/a' sid='{sid}'>\
           <content creator='initiator' name='a-file'>\
             <transport xmlns='{NS_S5B}' sid='{tsid}'>{inner}</transport></content></jingle>"
    )
}

#[tokio::test]
async fn j20_a_candidate_used_for_a_cid_never_offered_is_answered_bad_request_by_the_facade() {
    let hub = Hub::new();
    let (t, mut rx, sid, tsid, sending) = accepted(&hub).await;
    let bad = transport_info(&sid, &tsid, "<candidate-used cid='never-offered'/>");
    t.send(set("ti1", &bad)).await.unwrap();
    let e = answer(&t, &mut rx, "ti1")
        .await
        .expect("an error, not an ack");
    assert_eq!(e.type_, ErrorType::Modify);
    assert_eq!(e.defined_condition, DefinedCondition::BadRequest);
    // A well-formed verdict is still acknowledged: the session goes on.
    let ok = transport_info(&sid, &tsid, "<candidate-error/>");
    t.send(set("ti2", &ok)).await.unwrap();
    assert_eq!(answer(&t, &mut rx, "ti2").await, None);
    drop(sending);
}

#[tokio::test]
async fn j21_an_activated_out_of_turn_is_answered_out_of_order_by_the_facade() {
    let hub = Hub::new();
    let (t, mut rx, sid, tsid, sending) = accepted(&hub).await;
    let bad = transport_info(&sid, &tsid, "<activated cid='unknown-cid'/>");
    t.send(set("ti1", &bad)).await.unwrap();
    let e = answer(&t, &mut rx, "ti1")
        .await
        .expect("an error, not an ack");
    assert_eq!(e.type_, ErrorType::Cancel);
    assert_eq!(e.defined_condition, DefinedCondition::UnexpectedRequest);
    assert!(
        e.other
            .as_ref()
            .is_some_and(|o| o.is("out-of-order", "urn:xmpp:jingle:errors:1")),
        "{e:?}"
    );
    drop(sending);
}
