//! What Gajim 1.7.3 really sends (`tests/fixtures/gajim/`, recorded by the interop suite
//! from a headless Gajim through Prosody, JIDs rewritten to romeo/juliet): every S5B
//! transport it put on the wire parses, our responder core runs a whole negotiation on
//! Gajim's own transport-infos, and our listener takes the DST.ADDR Gajim presents at
//! our candidates (its quirk: SHA1(sid + initiator + responder) whoever offered them).

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use minidom::Element;
use xep0065_s5b::codec::Socks5Error;
use xep0065_s5b::stream::client_handshake;
use xep0065_s5b::wire::ReplyCode;
use xep0065_s5b::{Config, DialPolicy, Host, Sid, dst_addr};
use xep0260_jingle_s5b::proto::{Action, Event, Negotiation, Role, Transmit, Via};
use xep0260_jingle_s5b::{
    Driver, Incoming, InputError, Kind, Listener, LocalCandidates, NS, Payload, Signalling,
};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jingle_s5b::{Transport, TransportPayload};

const ROMEO: &str = "romeo@montague.example/orchard";
const JULIET: &str = "juliet@capulet.example/balcony";

fn jid(s: &str) -> jid::Jid {
    s.parse().unwrap()
}

fn fixture(name: &str) -> Element {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gajim")
        .join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The s5b `<transport/>` of a recorded Jingle iq.
fn transport(name: &str) -> Element {
    let iq = fixture(name);
    let jingle = iq.get_child("jingle", "urn:xmpp:jingle:1").expect("jingle");
    let content = jingle
        .get_child("content", "urn:xmpp:jingle:1")
        .expect("content");
    content
        .get_child("transport", NS)
        .expect("s5b transport")
        .clone()
}

fn config() -> Config {
    let mut c = Config::default();
    // Gajim's candidates are 127.0.0.1 in these recordings: loopback allowed on purpose.
    c.dial_policy(DialPolicy::new(|_, _, a| a.ip().is_loopback()));
    c
}

#[test]
fn every_s5b_transport_gajim_sent_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gajim");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let iq = fixture(&name);
        let Some(t) = iq
            .get_child("jingle", "urn:xmpp:jingle:1")
            .and_then(|j| j.get_child("content", "urn:xmpp:jingle:1"))
            .and_then(|c| c.get_child("transport", NS))
        else {
            continue;
        };
        let ours = Incoming::parse(t).unwrap_or_else(|e| panic!("{name}: {e}"));
        // xmpp-parsers' wire type (what `Negotiation::handle_transport` takes) too.
        let wire = Transport::try_from(t.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(wire.sid.0, ours.sid, "{name}");
        if let Payload::Candidates { list, skipped } = &ours.payload {
            assert_eq!(*skipped, 0, "{name}");
            for c in list {
                assert_eq!(c.host, Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)), "{name}");
                match c.kind {
                    Kind::Direct => {
                        assert_eq!(c.priority, 8_257_536, "{name}");
                        assert_eq!(c.jid, jid(ROMEO), "{name}");
                    }
                    Kind::Proxy => {
                        assert_eq!(c.priority, 655_360, "{name}");
                        assert_eq!(c.jid, jid("proxy.localhost"), "{name}");
                    }
                    k => panic!("{name}: {k:?}"),
                }
            }
        }
        seen += 1;
    }
    assert_eq!(seen, 14, "the recorded s5b transports");
}

#[test]
fn gajims_notifications_read_as_what_they_say() {
    let used = Incoming::parse(&transport(
        "s5b-direct-responder-transport-info-candidate-used.xml",
    ))
    .unwrap();
    assert_eq!(
        used.payload,
        Payload::CandidateUsed("0a153d53-e81a-4ccf-9134-84ae14cffd4a".into())
    );
    let err = Incoming::parse(&transport(
        "s5b-direct-initiator-transport-info-candidate-error.xml",
    ))
    .unwrap();
    assert_eq!(err.payload, Payload::CandidateError);
    let act = Incoming::parse(&transport(
        "s5b-proxy65-initiator-transport-info-activated.xml",
    ))
    .unwrap();
    assert_eq!(
        act.payload,
        Payload::Activated("796fa595-ffe6-4603-accb-1b37bb0ce213".into())
    );
    // The accept of a receiver that offers nothing: an empty candidate list.
    let accept = Incoming::parse(&transport("s5b-direct-responder-session-accept.xml")).unwrap();
    assert_eq!(
        accept.payload,
        Payload::Candidates {
            list: vec![],
            skipped: 0
        }
    );
}

fn feed(n: &mut Negotiation, name: &str) {
    let t = Transport::try_from(transport(name)).unwrap();
    n.handle_transport(Instant::now(), t)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
}

/// We receive from Gajim (it initiates), offering no candidate of our own: we dial its
/// direct candidate with the XEP's DST.ADDR (its initiator's hash, which Gajim's listener
/// expects), say candidate-used with its cid, exactly as Gajim's own responder did, and
/// its candidate-error settles it on our connection.
#[test]
fn our_responder_negotiates_with_gajims_direct_offer() {
    let offer = transport("s5b-direct-initiator-session-initiate.xml");
    let sid = Sid::new(offer.attr("sid").unwrap()).unwrap();
    let mut n = Negotiation::new(
        &config(),
        Role::Responder,
        jid(JULIET),
        jid(ROMEO),
        sid.clone(),
        &LocalCandidates::default(),
    );
    feed(&mut n, "s5b-direct-initiator-session-initiate.xml");
    let Some(Action::Connect {
        attempt,
        addrs,
        dst_addr: presented,
    }) = n.poll_action()
    else {
        panic!("no dial")
    };
    assert_eq!(addrs, ["127.0.0.1:37559".parse().unwrap()]);
    assert_eq!(presented, dst_addr(&sid, &jid(ROMEO), &jid(JULIET)));
    n.handle_connected(Instant::now(), attempt);
    let Some(Transmit::TransportInfo(t)) = n.poll_transmit() else {
        panic!("no candidate-used")
    };
    let gajims = Transport::try_from(transport(
        "s5b-direct-responder-transport-info-candidate-used.xml",
    ))
    .unwrap();
    assert_eq!(t.payload, gajims.payload, "what Gajim's own responder sent");
    feed(
        &mut n,
        "s5b-direct-initiator-transport-info-candidate-error.xml",
    );
    match n.poll_event() {
        Some(Event::Connected {
            via: Via::Attempt(a),
            ours: false,
            candidate,
            ..
        }) => {
            assert_eq!(a, attempt);
            assert_eq!(candidate.cid, "0a153d53-e81a-4ccf-9134-84ae14cffd4a");
        }
        other => panic!("{other:?}"),
    }
}

/// Gajim offers only Prosody's proxy65: we dial the proxy, say candidate-used; Gajim
/// answers candidate-error, then `<activated/>` (sent back to back with its activation iq,
/// without waiting for the result): the proxy connection is the bytestream.
#[test]
fn our_responder_takes_gajims_proxy_candidate_and_its_activated() {
    let offer = transport("s5b-proxy65-initiator-session-initiate.xml");
    let sid = Sid::new(offer.attr("sid").unwrap()).unwrap();
    let mut n = Negotiation::new(
        &config(),
        Role::Responder,
        jid(JULIET),
        jid(ROMEO),
        sid,
        &LocalCandidates::default(),
    );
    feed(&mut n, "s5b-proxy65-initiator-session-initiate.xml");
    let Some(Action::Connect { attempt, addrs, .. }) = n.poll_action() else {
        panic!("no dial")
    };
    assert_eq!(addrs, ["127.0.0.1:33279".parse().unwrap()]);
    n.handle_connected(Instant::now(), attempt);
    let Some(Transmit::TransportInfo(t)) = n.poll_transmit() else {
        panic!("no candidate-used")
    };
    assert!(
        matches!(&t.payload, TransportPayload::CandidateUsed(c) if c.0 == "796fa595-ffe6-4603-accb-1b37bb0ce213"),
        "{t:?}"
    );
    feed(
        &mut n,
        "s5b-proxy65-initiator-transport-info-candidate-error.xml",
    );
    assert!(n.poll_event().is_none(), "not before <activated/>");
    feed(&mut n, "s5b-proxy65-initiator-transport-info-activated.xml");
    assert!(
        matches!(
            n.poll_event(),
            Some(Event::Connected { via: Via::Attempt(a), ours: false, candidate, .. })
                if a == attempt && candidate.kind == Kind::Proxy
        ),
        "the proxy connection is the bytestream"
    );
}

/// Gajim's quirk in the core: as initiator it presents SHA1(sid + initiator + responder)
/// at our (the responder's) candidates, where XEP-0260 says SHA1(sid + responder +
/// initiator). Both orders of this sid and these JIDs are accepted; another sid is
/// `host unreachable`.
#[test]
fn gajim_quirk_both_orders_accepted_another_sid_refused() {
    let sid = Sid::new("59b2ef23-7909-4749-acb5-7814059f5fc6").unwrap();
    let here = LocalCandidates {
        direct: vec!["127.0.0.1:4000".parse().unwrap()],
        proxies: vec![],
    };
    let gajims = dst_addr(&sid, &jid(ROMEO), &jid(JULIET));
    let xeps = dst_addr(&sid, &jid(JULIET), &jid(ROMEO));
    let other = dst_addr(&Sid::new("another-sid").unwrap(), &jid(ROMEO), &jid(JULIET));
    let new = || {
        Negotiation::new(
            &config(),
            Role::Responder,
            jid(JULIET),
            jid(ROMEO),
            sid.clone(),
            &here,
        )
    };
    let now = Instant::now();
    let mut n = new();
    assert_eq!(n.local_dst_addr(), xeps);
    assert_eq!(n.accepted_dst_addrs(), [xeps.clone(), gajims.clone()]);
    assert_eq!(
        n.handle_inbound(now, &other),
        Err(ReplyCode::HostUnreachable)
    );
    assert_eq!(n.handle_inbound(now, &gajims.to_uppercase()), Ok(()));
    // Still only one inbound connection per negotiation (J25), whichever order.
    assert_eq!(
        n.handle_inbound(now, &xeps),
        Err(ReplyCode::HostUnreachable)
    );
    let mut n = new();
    assert_eq!(n.handle_inbound(now, &xeps), Ok(()));
}

/// transport-info nowhere; the peer never answers (the test reads the listener only).
struct Quiet;

impl Signalling for Quiet {
    async fn send(&mut self, _: Transport) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(())
    }
    async fn recv(&mut self) -> Option<Transport> {
        std::future::pending().await
    }
    fn verdict(&mut self, _: Result<(), InputError>) {}
    async fn activate(&mut self, _: Iq) -> Result<Iq, Box<dyn std::error::Error + Send + Sync>> {
        Err("no proxy".into())
    }
}

/// Over real loopback TCP: our listener, routing for a responder negotiation with Gajim's
/// transport sid, answers Gajim's DST.ADDR order with success (it answered REP 04 before
/// the quirk was accepted), and a hash of another sid with REP 04 (host unreachable).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gajim_quirk_our_listener_takes_gajims_dst_addr_order() {
    let c = config();
    let l = Listener::bind(
        &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
        0,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let sid = Sid::new("59b2ef23-7909-4749-acb5-7814059f5fc6").unwrap();
    let local = LocalCandidates {
        direct: l.local_addrs().to_vec(),
        proxies: vec![],
    };
    let n = Negotiation::new(
        &c,
        Role::Responder,
        jid(JULIET),
        jid(ROMEO),
        sid.clone(),
        &local,
    );
    let d = Driver::new(n, Some(&l));
    assert_eq!(l.routes(), 1, "one negotiation, however many hashes");
    let addr = l.local_addrs()[0];
    let probe = async {
        let other = dst_addr(&Sid::new("another-sid").unwrap(), &jid(ROMEO), &jid(JULIET));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let r = client_handshake(tcp, &other, Duration::from_secs(5)).await;
        assert!(
            matches!(r, Err(Socks5Error::Failed(ReplyCode::HostUnreachable))),
            "another sid: {r:?}"
        );
        let gajims = dst_addr(&sid, &jid(ROMEO), &jid(JULIET));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        client_handshake(tcp, &gajims, Duration::from_secs(5)).await
    };
    let mut sig = Quiet;
    let r = tokio::select! {
        r = probe => r,
        end = d.run(&mut sig, &c) => panic!("the negotiation ended first: {end:?}"),
    };
    assert!(r.is_ok(), "Gajim's order: {r:?}");
    assert_eq!(l.routes(), 0, "the route went with the negotiation");
}
