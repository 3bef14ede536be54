//! Logging in to a real Prosody over STARTTLS with a certificate from a CA the test makes,
//! and every way a login fails, each with the error that says what happened, at once.
#![cfg(feature = "tokio-xmpp")]

use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ft_testkit::{PASSWORD, Prosody, ProsodyOptions, TestCa};
use ft_transport::iq::IqTracker;
use ft_transport::xmpp::{
    ComponentOptions, Direction, Error, LoginStage, Server, XmlLog, connect_client,
    connect_component_with,
};
use ft_transport::{Jid, StanzaTransport};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::ping::Ping;

/// A refusal comes in about a round trip; this is generous for a loaded machine.
const PROMPT: Duration = Duration::from_secs(3);

/// Every element logged, as `IN …` / `OUT …` lines.
#[derive(Debug, Default)]
struct Collect(Mutex<Vec<String>>);

impl XmlLog for Collect {
    fn record(&self, direction: Direction, xml: &str) {
        self.0.lock().unwrap().push(format!("{direction} {xml}"));
    }
}

impl Collect {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn login_over_starttls_trusting_the_test_ca_comes_online_and_is_logged_redacted() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default().with_tls(true)).unwrap();
    let log = Arc::new(Collect::default());
    let options = prosody
        .tls_client_options("alice", "tls")
        .with_xml_log(Some(log.clone()));
    let (alice, inbound) = connect_client(options).await.unwrap();
    assert_eq!(alice.jid().to_string(), "alice@localhost/tls");

    // The session works over TLS: the server answers a ping.
    let tracker = Arc::new(IqTracker::new("t"));
    tokio::spawn(ft_transport::pump(inbound, tracker.clone()));
    let ping = Iq::from_get("p", Ping).with_to(Jid::new("localhost").unwrap());
    let answer = tracker.request(&alice, ping, Duration::from_secs(10)).await;
    assert!(matches!(answer, Ok(None)), "{answer:?}");
    assert!(prosody.log().contains("Authenticated as alice@localhost"));

    let lines = log.lines();
    let all = lines.join("\n");
    let has = |prefix: &str, needle: &str| {
        lines
            .iter()
            .any(|l| l.starts_with(prefix) && l.contains(needle))
    };
    // Before TLS: features with starttls, our request, the server's proceed; then the
    // login over TLS, the bind, and the session's ping both ways.
    assert!(has("IN ", "<starttls"), "{all}");
    assert!(has("OUT ", "<starttls"), "{all}");
    assert!(has("IN ", "<proceed"), "{all}");
    assert!(
        has("OUT ", "<auth ") && has("OUT ", ">[redacted]</auth>"),
        "{all}"
    );
    assert!(has("IN ", "<success"), "{all}");
    assert!(has("OUT ", "urn:ietf:params:xml:ns:xmpp-bind"), "{all}");
    assert!(has("IN ", "alice@localhost/tls</jid>"), "{all}");
    assert!(has("OUT ", "urn:xmpp:ping"), "{all}");
    // Nothing secret: not the password, not a SASL payload (SCRAM's "n,,n=alice,r=…"
    // would be base64 "biwsbj1hbGljZSxy…").
    assert!(!all.contains(PASSWORD), "{all}");
    assert!(!all.contains("biwsbj1hbGljZ"), "{all}");
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_the_sasl_condition_at_once() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default().with_tls(true)).unwrap();
    let mut options = prosody.tls_client_options("alice", "tls");
    options.password = "not-the-password".into();
    let started = Instant::now();
    let err = connect_client(options).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(&err, Error::AuthRefused { condition, jid } if condition == "not-authorized" && jid == "alice@localhost"),
        "{err:?}"
    );
    assert!(err.to_string().contains("not-authorized"), "{err}");
    assert!(took < PROMPT, "refused after {took:?}");
}

#[tokio::test]
async fn a_certificate_from_a_ca_not_trusted_is_refused_naming_the_domain_and_why() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default().with_tls(true)).unwrap();
    let other = TestCa::new("some other ca").unwrap();
    // Trusting only the system's roots, then another CA besides them: neither issued it.
    let without = prosody.client_options("alice", "tls").with_plaintext(false);
    let with_other = without.clone().with_root_certificate_der(other.cert_der());
    for options in [without, with_other] {
        let started = Instant::now();
        let err = connect_client(options).await.unwrap_err();
        assert!(started.elapsed() < PROMPT);
        let Error::Certificate { name, server, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(name, "localhost");
        assert_eq!(server, &prosody.c2s_addr().to_string());
        let text = err.to_string();
        assert!(text.contains("not trusted for localhost"), "{text}");
        assert!(
            text.contains("certificate authority that is not trusted"),
            "{text}"
        );
    }
    assert!(!prosody.log().contains("Authenticated as"));
}

#[tokio::test]
async fn a_closed_port_is_reported_with_its_address_at_once() {
    // No server needed: a loopback port nobody listens on.
    let port = {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let options = ft_transport::xmpp::ClientOptions::new(
        "alice@localhost".parse().unwrap(),
        "pw",
        Server::Addr(addr.parse().unwrap()),
    );
    let started = Instant::now();
    let err = connect_client(options).await.unwrap_err();
    assert!(started.elapsed() < PROMPT);
    let Error::Connect { addr: got, source } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(got, &addr);
    assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(err.to_string().contains(&addr), "{err}");
}

#[tokio::test]
async fn a_server_offering_no_starttls_is_refused_when_tls_is_required() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    // The default rig has no certificate, so it offers no STARTTLS.
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let options = prosody
        .client_options("alice", "rust")
        .with_plaintext(false);
    let started = Instant::now();
    let err = connect_client(options).await.unwrap_err();
    assert!(started.elapsed() < PROMPT);
    assert!(
        matches!(&err, Error::NoStartTls { server, domain } if *server == prosody.c2s_addr().to_string() && domain == "localhost"),
        "{err:?}"
    );
    assert!(err.to_string().contains("offers no starttls"), "{err}");
    assert!(!prosody.log().contains("Authenticated as"));
}

#[tokio::test]
async fn plaintext_to_a_server_that_requires_tls_says_so() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default().with_tls(true)).unwrap();
    let options = prosody.client_options("alice", "plain");
    let err = connect_client(options).await.unwrap_err();
    assert!(matches!(&err, Error::NoMechanism { .. }), "{err:?}");
    assert!(err.to_string().contains("requires tls first"), "{err}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_naming_the_stage() {
    // A listener that accepts and says nothing.
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let options = ft_transport::xmpp::ClientOptions::new(
        "alice@localhost".parse().unwrap(),
        "pw",
        Server::Addr(addr),
    )
    .with_online_timeout(Duration::from_millis(500));
    let err = connect_client(options).await.unwrap_err();
    assert!(
        matches!(&err, Error::OnlineTimeout { stage: LoginStage::Stream, server, .. } if *server == addr.to_string()),
        "{err:?}"
    );
    silent.abort();
}

#[tokio::test]
async fn the_component_log_shows_the_handshake_redacted() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let log = Arc::new(Collect::default());
    let mut options = ComponentOptions::new(
        prosody.component_jid(),
        prosody.component_secret(),
        prosody.component_addr(),
    );
    options.xml_log = Some(log.clone());
    let (_component, _inbound) = connect_component_with(options).await.unwrap();
    let lines = log.lines();
    let all = lines.join("\n");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("OUT ") && l.contains(">[redacted]</handshake>")),
        "{all}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("IN ") && l.contains("<handshake")),
        "{all}"
    );
    assert!(!all.contains(prosody.component_secret()), "{all}");
}
