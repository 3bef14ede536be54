//! Bad input to the facade's Jingle stack (docs/bad-input.md section J, J50–J59): a peer
//! on the hub that writes its jingle iqs by hand, and what it gets back.

mod common;

use std::time::Duration;

use common::*;
use ft_facade::{ErrorKind, JingleError, Method, Refusal, SendOptions, Stage};
use ft_transport::hub::{Hub, HubReceiver, HubTransport};
use ft_transport::{Jid, Stanza, StanzaTransport};
use minidom::Element;
use xmpp_parsers::iq::Iq;

const NS_JINGLE: &str = "urn:xmpp:jingle:1";

fn set(id: &str, to: &str, xml: &str) -> Stanza {
    let payload: Element = xml.parse().unwrap();
    Stanza::Iq(Iq::Set {
        from: None,
        to: Some(jid(to)),
        id: id.to_owned(),
        payload,
    })
}

/// A file offer from mallory@x/m with `desc` and `transport` inside one content.
fn initiate(sid: &str, senders: &str, desc: &str, transport: &str) -> String {
    format!(
        "<jingle xmlns='{NS_JINGLE}' action='session-initiate' initiator='mallory@x/m' sid='{sid}'>\
           <content creator='initiator' name='f' senders='{senders}'>{desc}{transport}</content>\
         </jingle>"
    )
}

fn ft_desc(name: &str, size: u64) -> String {
    format!(
        "<description xmlns='urn:xmpp:jingle:apps:file-transfer:5'>\
           <file><name>{name}</name><size>{size}</size></file></description>"
    )
}

const IBB: &str =
    "<transport xmlns='urn:xmpp:jingle:transports:ibb:1' sid='ib1' block-size='4096'/>";

/// The next jingle iq set mallory receives (answering it with a result), within 5 s.
async fn next_jingle(t: &HubTransport, rx: &mut HubReceiver) -> Element {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let Some(Stanza::Iq(Iq::Set {
                from, id, payload, ..
            })) = rx.recv().await
            else {
                continue;
            };
            if payload.is("jingle", NS_JINGLE) {
                let from: Jid = from.unwrap();
                t.send(Stanza::Iq(Iq::empty_result(from, id)))
                    .await
                    .unwrap();
                return payload;
            }
        }
    })
    .await
    .expect("a jingle iq")
}

/// The reason of the session-terminate mallory receives next.
async fn terminate_reason(t: &HubTransport, rx: &mut HubReceiver) -> String {
    loop {
        let j = next_jingle(t, rx).await;
        if j.attr("action") == Some("session-terminate") {
            let reason = j.get_child("reason", NS_JINGLE).expect("a reason");
            return reason.children().next().unwrap().name().to_owned();
        }
    }
}

async fn refused(ft: &ft_facade::FileTransfer<HubTransport>) -> Refusal {
    tokio::time::timeout(Duration::from_secs(5), ft.next_refused())
        .await
        .expect("a refusal")
        .unwrap()
        .reason
}

#[tokio::test]
async fn j50_a_session_initiate_that_is_not_a_file_offer_is_terminated_unsupported_applications() {
    let hub = Hub::new();
    let bob = entity(&hub, "bob@x/b", jconfig(&[Method::Ibb]));
    let (t, mut rx) = hub.connect(jid("mallory@x/m"));
    let rtp = "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/>";
    t.send(set("i1", "bob@x/b", &initiate("s1", "initiator", rtp, IBB)))
        .await
        .unwrap();
    assert_eq!(
        terminate_reason(&t, &mut rx).await,
        "unsupported-applications"
    );
    assert!(matches!(refused(&bob).await, Refusal::MalformedJingle(_)));
}

#[tokio::test]
async fn j51_a_file_offer_over_a_transport_we_do_not_use_is_terminated_unsupported_transports() {
    let hub = Hub::new();
    let bob = entity(&hub, "bob@x/b", jconfig(&[Method::Ibb]));
    let (t, mut rx) = hub.connect(jid("mallory@x/m"));
    let s5b = "<transport xmlns='urn:xmpp:jingle:transports:s5b:1' sid='t1' mode='tcp'/>";
    let xml = initiate("s1", "initiator", &ft_desc("a.bin", 10), s5b);
    t.send(set("i1", "bob@x/b", &xml)).await.unwrap();
    assert_eq!(
        terminate_reason(&t, &mut rx).await,
        "unsupported-transports"
    );
    assert!(matches!(refused(&bob).await, Refusal::NoCommonMethod));
}

#[tokio::test]
async fn j52_a_jingle_offer_over_the_size_limit_is_declined() {
    let hub = Hub::new();
    let mut c = jconfig(&[Method::Ibb]);
    c.policy.max_size = Some(5);
    let bob = entity(&hub, "bob@x/b", c);
    let (t, mut rx) = hub.connect(jid("mallory@x/m"));
    let xml = initiate("s1", "initiator", &ft_desc("big.bin", 10), IBB);
    t.send(set("i1", "bob@x/b", &xml)).await.unwrap();
    assert_eq!(terminate_reason(&t, &mut rx).await, "decline");
    assert!(matches!(
        refused(&bob).await,
        Refusal::TooLarge { size: 10, limit: 5 }
    ));
}

#[tokio::test]
async fn j53_a_pull_request_goes_to_the_application_and_its_decline_is_failed_application() {
    let hub = Hub::new();
    let bob = entity(&hub, "bob@x/b", jconfig(&[Method::Ibb]));
    let (t, mut rx) = hub.connect(jid("mallory@x/m"));
    let want = "<description xmlns='urn:xmpp:jingle:apps:file-transfer:5'><file>\
                <name>secret.txt</name></file></description>";
    let xml = initiate("s1", "responder", want, IBB);
    t.send(set("i1", "bob@x/b", &xml)).await.unwrap();
    // Nothing is served by itself: the application sees the request, by name.
    let request = bob.next_request().await.unwrap();
    assert_eq!(request.request().name.as_deref(), Some("secret.txt"));
    assert_eq!(request.sid().as_str(), "s1");
    request.decline();
    assert_eq!(terminate_reason(&t, &mut rx).await, "failed-application");
}

#[tokio::test]
async fn j54_jingle_offers_over_the_per_peer_bound_get_busy() {
    let hub = Hub::new();
    let mut c = jconfig(&[Method::Ibb]);
    c.policy.max_offers_per_peer = 2;
    let bob = entity(&hub, "bob@x/b", c);
    let (t, mut rx) = hub.connect(jid("mallory@x/m"));
    for i in 0..3 {
        let xml = initiate(&format!("s{i}"), "initiator", &ft_desc("a.bin", 10), IBB);
        t.send(set(&format!("i{i}"), "bob@x/b", &xml))
            .await
            .unwrap();
    }
    assert_eq!(terminate_reason(&t, &mut rx).await, "busy");
    assert!(matches!(
        refused(&bob).await,
        Refusal::PeerBusy { limit: 2 }
    ));
    // The two within the bound wait for the application.
    let a = bob.next_offer().await.unwrap();
    let b = bob.next_offer().await.unwrap();
    assert_eq!((a.sid().as_str(), b.sid().as_str()), ("s0", "s1"));
}

#[tokio::test]
async fn j55_an_accept_whose_range_is_past_the_end_fails_the_sender_at_offer() {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", jconfig(&[Method::Ibb]));
    // Mallory answers disco with the Jingle features, then accepts asking for bytes from
    // offset 1000 of a 10-byte file.
    let (t, mut rx) = hub.connect(jid("mallory@x/m"));
    let responder = ft_facade::disco::DiscoResponder::file_transfer_client().with_features([
        "urn:xmpp:jingle:1",
        "urn:xmpp:jingle:apps:file-transfer:5",
        "urn:xmpp:jingle:transports:ibb:1",
    ]);
    let src = tempfile::tempdir().unwrap();
    let path = write_file(src.path(), "ten.bin", b"0123456789");
    let sending = alice.send_file(jid("mallory@x/m"), &path, SendOptions::default());
    let offer = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let s = rx.recv().await.unwrap();
            match responder.handle_stanza(s) {
                std::ops::ControlFlow::Break(Some(reply)) => t.send(reply).await.unwrap(),
                std::ops::ControlFlow::Break(None) => {}
                std::ops::ControlFlow::Continue(Stanza::Iq(Iq::Set {
                    from, id, payload, ..
                })) if payload.is("jingle", NS_JINGLE) => {
                    t.send(Stanza::Iq(Iq::empty_result(from.unwrap(), id)))
                        .await
                        .unwrap();
                    return payload;
                }
                std::ops::ControlFlow::Continue(_) => {}
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(offer.attr("action"), Some("session-initiate"));
    let sid = offer.attr("sid").unwrap();
    let accept = format!(
        "<jingle xmlns='{NS_JINGLE}' action='session-accept' initiator='alice@x/a' \
           responder='mallory@x/m' sid='{sid}'>\
           <content creator='initiator' name='a-file' senders='initiator'>\
             <description xmlns='urn:xmpp:jingle:apps:file-transfer:5'><file>\
               <name>ten.bin</name><size>10</size><range offset='1000'/></file></description>\
             {IBB}</content></jingle>"
    );
    t.send(set("a1", "alice@x/a", &accept)).await.unwrap();
    assert_eq!(terminate_reason(&t, &mut rx).await, "failed-application");
    let e = sending.outcome().await.unwrap_err();
    assert_eq!(e.stage, Stage::Offer);
    let ErrorKind::Jingle(j) = &e.kind else {
        panic!("{e}")
    };
    assert!(
        matches!(
            &**j,
            JingleError::File(xep0234_jingle_ft::FtError::RangeOutOfBounds { offset: 1000, .. })
        ),
        "{e}"
    );
}
