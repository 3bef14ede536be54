//! Interoperability: our tokio-xmpp adapters against a real Prosody, and a real slixmpp peer.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use ft_testkit::{Prosody, ProsodyOptions, SlixPeer};
use ft_transport::iq::IqTracker;
use ft_transport::xmpp::{ClientInbound, ComponentInbound, Error as ConnectError};
use ft_transport::{Jid, Stanza, StanzaTransport};
use minidom::Element;
use tokio::sync::mpsc;
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoInfoResult};
use xmpp_parsers::iq::Iq;

const NS_SI: &str = "http://jabber.org/protocol/si";
const NS_IBB: &str = "http://jabber.org/protocol/ibb";
const NS_BYTESTREAMS: &str = "http://jabber.org/protocol/bytestreams";
const WAIT: Duration = Duration::from_secs(20);

/// Feeds every inbound stanza to the tracker; hands the rest to the returned channel.
fn pump(inbound: ClientInbound, tracker: Arc<IqTracker>) -> mpsc::UnboundedReceiver<Stanza> {
    let (tx, rx) = mpsc::unbounded_channel();
    let rest = move |other| {
        let _ = tx.send(other);
        ControlFlow::Break(())
    };
    tokio::spawn(ft_transport::pump(inbound, (tracker, rest)));
    rx
}

#[tokio::test]
async fn client_adapter_is_bound_to_the_full_jid_it_asked_for() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let (alice, _inbound) = prosody.connect("alice", "rust").await.unwrap();
    assert_eq!(alice.jid().to_string(), "alice@localhost/rust");
}

#[tokio::test]
async fn iq_tracker_gets_slixmpp_disco_info_with_si_and_ibb_through_prosody() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut bob = SlixPeer::spawn(&prosody, "bob", "slix", &["serve"])
        .await
        .unwrap();
    let bob_jid = Jid::from(bob.jid().unwrap().clone());
    assert_eq!(bob_jid.to_string(), "bob@localhost/slix");

    let (alice, inbound) = prosody.connect("alice", "rust").await.unwrap();
    let tracker = Arc::new(IqTracker::new("disco"));
    let _others = pump(inbound, tracker.clone());

    // tokio-xmpp hands the result of an iq it did not send itself back as a plain stanza,
    // so our own tracker matches it.
    let query = Iq::from_get("ignored", DiscoInfoQuery { node: None }).with_to(bob_jid.clone());
    let payload = tracker
        .request(&alice, query, WAIT)
        .await
        .unwrap()
        .expect("disco#info result has a payload");
    let info = DiscoInfoResult::try_from(payload).unwrap();
    assert!(info.features.contains(NS_SI), "{:?}", info.features);
    assert!(info.features.contains(NS_IBB), "{:?}", info.features);
    assert!(
        info.features
            .contains("http://jabber.org/protocol/si/profile/file-transfer"),
        "{:?}",
        info.features
    );
    assert_eq!(tracker.pending(), 0);
    bob.stop().await;
}

#[tokio::test]
async fn prosody_proxy65_offers_its_loopback_streamhost_and_configured_port() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let (alice, inbound) = prosody.connect("alice", "rust").await.unwrap();
    let tracker = Arc::new(IqTracker::new("s5b"));
    let _others = pump(inbound, tracker.clone());

    let query = Element::builder("query", NS_BYTESTREAMS).build();
    let iq = Iq::Get {
        from: None,
        to: Some(Jid::from(prosody.proxy_jid())),
        id: String::new(),
        payload: query,
    };
    let answer = tracker
        .request(&alice, iq, WAIT)
        .await
        .unwrap()
        .expect("bytestreams result has a payload");
    assert!(answer.is("query", NS_BYTESTREAMS), "{answer:?}");
    let hosts: Vec<&Element> = answer
        .children()
        .filter(|c| c.is("streamhost", NS_BYTESTREAMS))
        .collect();
    assert_eq!(hosts.len(), 1, "{answer:?}");
    assert_eq!(hosts[0].attr("jid"), Some("proxy.localhost"));
    assert_eq!(hosts[0].attr("host"), Some("127.0.0.1"));
    assert_eq!(
        hosts[0].attr("port"),
        Some(prosody.proxy65_port().to_string().as_str())
    );
}

async fn next_component_iq(inbound: &mut ComponentInbound) -> Iq {
    loop {
        match tokio::time::timeout(WAIT, inbound.next()).await {
            Ok(Some(Stanza::Iq(iq))) => return iq,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("component stream closed"),
            Err(_) => panic!("no iq reached the component within {WAIT:?}"),
        }
    }
}

#[tokio::test]
async fn component_adapter_receives_a_client_iq_and_its_answer_gets_back() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let (component, mut component_in) = prosody.connect_component().await.unwrap();
    assert_eq!(component.jid().to_string(), "xftproxy.localhost");

    let (alice, inbound) = prosody.connect("alice", "rust").await.unwrap();
    let tracker = Arc::new(IqTracker::new("c"));
    let _others = pump(inbound, tracker.clone());

    let ping = Iq::from_get("ignored", xmpp_parsers::ping::Ping)
        .with_to(Jid::from(prosody.component_jid()));
    let request = tokio::spawn({
        let tracker = tracker.clone();
        async move { tracker.request(&alice, ping, WAIT).await }
    });

    let got = next_component_iq(&mut component_in).await;
    let Iq::Get {
        from: Some(from),
        to: Some(to),
        id,
        payload,
    } = got
    else {
        panic!("expected a get with from and to, got {got:?}");
    };
    assert_eq!(from.to_string(), "alice@localhost/rust");
    assert_eq!(to.to_string(), "xftproxy.localhost");
    assert!(payload.is("ping", "urn:xmpp:ping"));

    let reply = Iq::empty_result(from, id).with_from(to);
    component.send(Stanza::Iq(reply)).await.unwrap();
    let answer = request.await.unwrap();
    assert!(matches!(answer, Ok(None)), "{answer:?}");
}

#[tokio::test]
async fn client_adapter_with_a_wrong_password_is_refused_before_its_timeout() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut options = prosody.client_options("alice", "rust");
    options.password = "not-the-password".into();
    options.online_timeout = Duration::from_secs(2);
    let err = ft_transport::xmpp::connect_client(options)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ConnectError::AuthRefused { condition, .. } if condition == "not-authorized"),
        "{err}"
    );
}

#[tokio::test]
async fn client_adapter_keeps_receiving_while_many_sends_are_in_flight() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let (alice, inbound) = prosody.connect("alice", "rust").await.unwrap();
    let alice = Arc::new(alice);
    let tracker = Arc::new(IqTracker::new("load"));
    let _others = pump(inbound, tracker.clone());
    let server: Jid = prosody.domain().parse().unwrap();

    // 300 pings from 300 tasks at once: sends and answers interleave on one stream.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..300 {
        let (alice, tracker, server) = (alice.clone(), tracker.clone(), server.clone());
        tasks.spawn(async move {
            let ping = Iq::from_get("ignored", xmpp_parsers::ping::Ping).with_to(server);
            tracker.request(&alice, ping, WAIT).await
        });
    }
    let mut answered = 0;
    while let Some(result) = tasks.join_next().await {
        assert!(matches!(result.unwrap(), Ok(None)));
        answered += 1;
    }
    assert_eq!(answered, 300);
    assert_eq!(tracker.pending(), 0);
}

#[tokio::test]
async fn client_adapter_without_plaintext_never_falls_back_when_the_server_offers_no_tls() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    // The rig's Prosody has no certificate, so it offers no STARTTLS: a client that did not
    // ask for plaintext must not log in.
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let options = prosody
        .client_options("alice", "rust")
        .with_plaintext(false)
        .with_online_timeout(Duration::from_secs(2));
    let err = ft_transport::xmpp::connect_client(options)
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::NoStartTls { .. }), "{err}");
    assert!(!prosody.log().contains("Authenticated as alice@localhost"));
}
