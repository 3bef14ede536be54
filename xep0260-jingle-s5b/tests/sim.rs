//! Deterministic two-peer simulations of the sans-IO negotiation (no sockets, no clock).

mod common;

use std::time::Duration;

use common::*;
use xep0065_s5b::Outcome;
use xep0260_jingle_s5b::proto::{Action, Event, Via};
use xep0260_jingle_s5b::{Error, Kind, preference};
use xmpp_parsers::jingle_s5b::TransportPayload;

fn payloads(sent: &[xmpp_parsers::jingle_s5b::Transport]) -> Vec<TransportPayload> {
    sent.iter().map(|t| t.payload.clone()).collect()
}

fn connected(events: &[Event]) -> (Via, Kind, bool) {
    match events {
        [
            Event::Connected {
                via,
                candidate,
                ours,
                ..
            },
        ] => (*via, candidate.kind, *ours),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_dst_addr_is_the_offerers_hash_as_in_the_xep_examples() {
    let s = Sim::new(direct(A_ADDR), direct(B_ADDR));
    // XEP-0260 Example 1 (Romeo's candidates) and Example 3 (Juliet's).
    assert_eq!(
        s.a.n.local_dst_addr(),
        "972b7bf47291ca609517f67f86b5081086052dad"
    );
    assert_eq!(
        s.b.n.remote_dst_addr(),
        "972b7bf47291ca609517f67f86b5081086052dad"
    );
    assert_eq!(
        s.b.n.local_dst_addr(),
        "1a12fb7bc625e55f3ed5b29a53dbe0e4aa7d80ba"
    );
    assert_eq!(
        s.a.n.remote_dst_addr(),
        "1a12fb7bc625e55f3ed5b29a53dbe0e4aa7d80ba"
    );
}

#[test]
fn our_candidates_carry_the_xep_priorities_and_dstaddr_only_with_a_proxy() {
    let s = Sim::new(
        xep0260_jingle_s5b::LocalCandidates {
            direct: vec![A_ADDR.parse().unwrap(), "127.0.0.1:1001".parse().unwrap()],
            proxies: vec![proxy()],
        },
        direct(B_ADDR),
    );
    let prios: Vec<u32> =
        s.a.n
            .local_candidates()
            .iter()
            .map(|c| c.priority)
            .collect();
    assert_eq!(
        prios,
        [
            126 * 65536 + 65535,
            126 * 65536 + 65534,
            preference::PROXY * 65536 + 65535
        ]
    );
    let t = s.a.n.local_transport();
    assert_eq!(
        t.dstaddr.as_deref(),
        Some("972b7bf47291ca609517f67f86b5081086052dad")
    );
    let TransportPayload::Candidates(c) = t.payload else {
        panic!()
    };
    assert_eq!(c.len(), 3);
    assert_eq!(s.b.n.local_transport().dstaddr, None);
}

#[test]
fn both_direct_and_equal_priorities_nominate_the_initiators_choice() {
    let mut s = Sim::new(direct(A_ADDR), direct(B_ADDR));
    s.start();
    s.run();
    // Both connected and both said so.
    assert!(matches!(
        payloads(&s.a.sent)[..],
        [TransportPayload::CandidateUsed(_)]
    ));
    assert!(matches!(
        payloads(&s.b.sent)[..],
        [TransportPayload::CandidateUsed(_)]
    ));
    // The initiator's choice is B's candidate: A uses its outbound socket, B its inbound.
    assert!(matches!(
        connected(&s.a.events),
        (Via::Attempt(_), Kind::Direct, false)
    ));
    assert_eq!(connected(&s.b.events), (Via::Inbound, Kind::Direct, true));
    // The losing choice's bytestream is closed on both ends: B closes its outbound
    // attempt, A stops accepting (its inbound one is dropped).
    assert!(
        s.b.actions
            .iter()
            .any(|a| matches!(a, Action::Close { .. }))
    );
    assert!(
        s.a.actions
            .iter()
            .any(|a| matches!(a, Action::StopAccepting { .. }))
    );
    assert!(s.a.n.is_done() && s.b.n.is_done());
}

#[test]
fn only_one_side_reachable_uses_the_one_that_connected() {
    let mut s = Sim::new(direct(A_ADDR), direct(B_ADDR));
    s.a.reachable = false; // B cannot reach A
    s.start();
    s.run();
    assert!(matches!(
        payloads(&s.a.sent)[..],
        [TransportPayload::CandidateUsed(_)]
    ));
    assert_eq!(payloads(&s.b.sent), [TransportPayload::CandidateError]);
    assert!(matches!(
        connected(&s.a.events),
        (Via::Attempt(_), Kind::Direct, false)
    ));
    assert_eq!(connected(&s.b.events), (Via::Inbound, Kind::Direct, true));
}

#[test]
fn the_higher_priority_wins_over_the_initiators_choice() {
    // B offers only a proxy (low priority), A a direct candidate (high): A's choice is
    // B's proxy, B's choice is A's direct candidate, which wins.
    let mut s = Sim::new(direct(A_ADDR), only_proxy());
    s.start();
    s.run();
    assert_eq!(connected(&s.a.events), (Via::Inbound, Kind::Direct, true));
    assert!(matches!(
        connected(&s.b.events),
        (Via::Attempt(_), Kind::Direct, false)
    ));
    // Nobody activated the proxy; A closed its proxy connection.
    assert!(s.activations.is_empty());
    assert!(
        s.a.actions
            .iter()
            .any(|a| matches!(a, Action::Close { .. }))
    );
}

#[test]
fn both_candidate_errors_fail_both_sides_so_the_application_falls_back() {
    let mut s = Sim::new(direct(A_ADDR), direct(B_ADDR));
    s.a.reachable = false;
    s.b.reachable = false;
    s.start();
    s.run();
    assert_eq!(payloads(&s.a.sent), [TransportPayload::CandidateError]);
    assert_eq!(payloads(&s.b.sent), [TransportPayload::CandidateError]);
    for p in [&s.a, &s.b] {
        let [Event::Failed(Error::NoCandidate { attempts })] = &p.events[..] else {
            panic!("{:?}", p.events)
        };
        assert!(matches!(attempts[0].outcome, Outcome::Failed(_)));
    }
}

#[test]
fn a_proxy_chosen_is_activated_by_its_offerer_then_announced_activated() {
    // A offers only its proxy; B is unreachable: the only working candidate is A's proxy.
    let mut s = Sim::new(only_proxy(), direct(B_ADDR));
    s.b.reachable = false;
    s.start();
    s.run();
    // B connected to the proxy with SHA1(sid + A + B); A connected with the same hash.
    assert_eq!(s.proxy_conns, vec![s.a.n.local_dst_addr(); 2]);
    // A: candidate-error (B unreachable), then the activation iq, then activated.
    assert_eq!(s.activations.len(), 1);
    assert_eq!(
        s.activations[0].to().map(ToString::to_string).as_deref(),
        Some(PROXY_JID)
    );
    let cid = s.a.n.local_candidates()[0].cid.clone();
    let p = payloads(&s.a.sent);
    assert_eq!(p[0], TransportPayload::CandidateError);
    assert_eq!(
        p[1],
        TransportPayload::Activated(xmpp_parsers::jingle_s5b::CandidateId(cid))
    );
    assert_eq!(connected(&s.a.events), (Via::Proxy, Kind::Proxy, true));
    assert!(matches!(
        connected(&s.b.events),
        (Via::Attempt(_), Kind::Proxy, false)
    ));
}

#[test]
fn a_proxy_that_refuses_activation_fails_both_sides_with_proxy_error() {
    let mut s = Sim::new(only_proxy(), direct(B_ADDR));
    s.b.reachable = false;
    s.start();
    // The proxy holds a stray connection with another hash: the activation finds no pair.
    s.proxy_conns
        .push(String::from("0000000000000000000000000000000000000000"));
    s.run();
    assert!(
        matches!(
            s.a.events[..],
            [Event::Failed(Error::ProxyActivation { .. })]
        ),
        "{:?}",
        s.a.events
    );
    assert_eq!(
        payloads(&s.a.sent).last(),
        Some(&TransportPayload::ProxyError)
    );
    assert!(
        matches!(
            s.b.events[..],
            [Event::Failed(Error::PeerProxyError { .. })]
        ),
        "{:?}",
        s.b.events
    );
}

#[test]
fn a_silent_peer_times_out_within_the_one_budget() {
    let mut s = Sim::new(direct(A_ADDR), direct(B_ADDR));
    s.b.deliver = false; // B's candidate-used never reaches A
    s.start();
    s.run();
    assert!(s.a.events.is_empty());
    let deadline = s.a.n.poll_timeout().unwrap();
    let budget = config().connect_budget + config().iq_timeout;
    assert_eq!(deadline, s.now + budget);
    s.advance(budget - Duration::from_millis(1));
    assert!(s.a.events.is_empty());
    s.advance(Duration::from_millis(1));
    assert!(matches!(s.a.events[..], [Event::Failed(Error::Timeout(d))] if d == budget));
    // Its winning socket and its listener route are released.
    assert!(
        s.a.actions
            .iter()
            .any(|a| matches!(a, Action::Close { .. }))
    );
    assert!(
        s.a.actions
            .iter()
            .any(|a| matches!(a, Action::StopAccepting { .. }))
    );
    assert_eq!(s.a.n.poll_timeout(), None);
}

#[test]
fn cancel_closes_every_socket_and_reports_nothing() {
    let mut s = Sim::new(direct(A_ADDR), direct(B_ADDR));
    // B's race starts; nothing answers yet.
    let now = s.now;
    s.b.n
        .handle_transport(now, s.a.n.local_transport())
        .unwrap();
    let Some(Action::Accept { .. }) = s.b.n.poll_action() else {
        panic!()
    };
    let Some(Action::Connect { attempt, .. }) = s.b.n.poll_action() else {
        panic!()
    };
    s.b.n.cancel(now);
    let rest: Vec<Action> = std::iter::from_fn(|| s.b.n.poll_action()).collect();
    assert!(rest.contains(&Action::Close { attempt }), "{rest:?}");
    assert!(
        rest.iter()
            .any(|a| matches!(a, Action::StopAccepting { .. }))
    );
    assert!(s.b.n.poll_event().is_none() && s.b.n.poll_transmit().is_none());
    assert!(s.b.n.is_done() && s.b.n.poll_timeout().is_none());
    // A late handshake is closed, nothing else.
    s.b.n.handle_connected(now, attempt);
    assert_eq!(s.b.n.poll_action(), Some(Action::Close { attempt }));
    assert!(s.b.n.poll_event().is_none());
}

#[test]
fn a_peer_choice_that_outranks_every_candidate_left_stops_our_race_with_candidate_error() {
    // A races B's only candidate, a proxy (priority 10 × 65536 + …); B reports using A's
    // direct candidate (126 × 65536 + …) first: nothing left can outrank it (XEP-0260 §2.3).
    let mut s = Sim::new(direct(A_ADDR), only_proxy());
    let now = s.now;
    s.a.n
        .handle_transport(now, s.b.n.local_transport())
        .unwrap();
    let Some(Action::Accept { dst_addr }) = s.a.n.poll_action() else {
        panic!()
    };
    let Some(Action::Connect { attempt, .. }) = s.a.n.poll_action() else {
        panic!()
    };
    s.a.n.handle_inbound(now, &dst_addr).unwrap();
    let cid = s.a.n.local_candidates()[0].cid.clone();
    s.a.n
        .handle_element(now, &el(&format!("<candidate-used cid='{cid}'/>")))
        .unwrap();
    let actions: Vec<Action> = std::iter::from_fn(|| s.a.n.poll_action()).collect();
    assert!(actions.contains(&Action::Close { attempt }), "{actions:?}");
    let Some(xep0260_jingle_s5b::proto::Transmit::TransportInfo(t)) = s.a.n.poll_transmit() else {
        panic!()
    };
    assert_eq!(t.payload, TransportPayload::CandidateError);
    assert!(matches!(
        s.a.n.poll_event(),
        Some(Event::Connected {
            via: Via::Inbound,
            ours: true,
            ..
        })
    ));
}

#[test]
fn gajims_candidates_without_mode_or_dstaddr_are_read_and_raced_by_priority() {
    // As Gajim 1.7.3 sends them (PEERS.md): no mode, no dstaddr, its fixed priorities.
    let mut s = Sim::new(direct(A_ADDR), direct(B_ADDR));
    let gajim = "<candidate cid='p1' host='127.0.0.3' jid='proxy.example.org' port='7777' priority='655360' type='proxy'/>\
        <candidate cid='d1' host='127.0.0.2' jid='juliet@capulet.lit/balcony' port='2000' priority='8257536' type='direct'/>";
    let now = s.now;
    s.a.n.handle_element(now, &el(gajim)).unwrap();
    let r = s.a.n.remote_candidates().unwrap();
    assert_eq!((r[0].kind, r[1].kind), (Kind::Proxy, Kind::Direct));
    let _ = s.a.n.poll_action(); // Accept
    let Some(Action::Connect { addrs, .. }) = s.a.n.poll_action() else {
        panic!()
    };
    assert_eq!(
        addrs,
        ["127.0.0.2:2000".parse().unwrap()],
        "the direct one (higher priority) first"
    );
}

fn fixture(name: &str) -> minidom::Element {
    let p = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(p).unwrap().parse().unwrap()
}

#[test]
fn the_xep_examples_are_read_whole_and_their_dstaddr_is_ours() {
    // Example 1 (Romeo, initiator) and Example 3 (Juliet, responder). Example 1's proxy
    // host `123.456.7.8` is no IP address: read as a host name (xmpp-parsers' Candidate
    // would refuse the whole element).
    let ex1 = fixture("xep0260-ex1-transport.xml");
    let ex3 = fixture("xep0260-ex3-transport.xml");
    let s = Sim::new(direct(A_ADDR), direct(B_ADDR));
    assert_eq!(ex1.attr("dstaddr"), Some(s.a.n.local_dst_addr().as_str()));
    assert_eq!(ex3.attr("dstaddr"), Some(s.b.n.local_dst_addr().as_str()));
    let mut s = s;
    let now = s.now;
    s.b.n.handle_element(now, &ex1).unwrap();
    let r = s.b.n.remote_candidates().unwrap();
    assert_eq!(r.len(), 3);
    assert_eq!(r[2].kind, Kind::Proxy);
    assert_eq!(r[2].host.to_string(), "123.456.7.8");
    s.a.n.handle_element(now, &ex3).unwrap();
    let r = s.a.n.remote_candidates().unwrap();
    let kinds: Vec<Kind> = r.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [Kind::Direct, Kind::Direct, Kind::Assisted, Kind::Proxy]
    );
    assert_eq!(
        r[1].host.to_string(),
        "2001:638:708:30c9:219:d1ff:fea4:a17d"
    );
}

#[test]
fn the_responder_does_not_offer_the_proxy_the_initiator_offered() {
    // Both discovered the same server proxy; B has its own listener too.
    let both = |addr: &str| xep0260_jingle_s5b::LocalCandidates {
        direct: vec![addr.parse().unwrap()],
        proxies: vec![proxy()],
    };
    let mut s = Sim::new(both(A_ADDR), both(B_ADDR));
    let now = s.now;
    s.b.n
        .handle_transport(now, s.a.n.local_transport())
        .unwrap();
    let kinds: Vec<Kind> = s.b.n.local_candidates().iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [Kind::Direct]);
    let TransportPayload::Candidates(c) = s.b.n.local_transport().payload else {
        panic!()
    };
    assert_eq!(c.len(), 1);
    assert_eq!(s.b.n.local_transport().dstaddr, None);
}
