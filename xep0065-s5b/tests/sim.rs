//! Deterministic simulations of the sans-IO requester and target: racing, fallback,
//! timeouts and the refusals, on a virtual clock with a simulated network.

mod support;

use std::time::Duration;

use support::*;
use xep0065_s5b::proto::{AttemptId, Event, Via};

fn attempt(i: usize) -> AttemptId {
    AttemptId::from_index(i)
}
use xep0065_s5b::wire::ReplyCode;
use xep0065_s5b::{DialPolicy, Error, Failure, Outcome, ProtocolError, Refusal, StreamHost};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;

const MS: Duration = Duration::from_millis(1);

fn own(port: u16) -> StreamHost {
    StreamHost::new(jid(ALICE), addr("127.0.0.1:1").ip(), port)
}

fn other(name: &str, ip: &str, port: u16) -> StreamHost {
    let ip: std::net::IpAddr = ip.parse().unwrap();
    StreamHost::new(jid(name), ip, port)
}

fn outcomes(attempts: &[xep0065_s5b::Attempt]) -> Vec<Outcome> {
    attempts.iter().map(|a| a.outcome.clone()).collect()
}

/// The target's terminal event.
fn target_end(p: &Pair) -> &Event {
    assert_eq!(p.target_events.len(), 1, "{:?}", p.target_events);
    &p.target_events[0].1
}

fn requester_end(p: &Pair) -> &Event {
    assert_eq!(p.requester_events.len(), 1, "{:?}", p.requester_events);
    &p.requester_events[0].1
}

#[test]
fn direct_offer_to_our_own_listener_connects_both_sides() {
    let mut p = Pair::new();
    p.own_addrs = vec![addr("127.0.0.1:7001")];
    p.network
        .insert(addr("127.0.0.1:7001"), Dial::Answer(5 * MS));
    p.expect();
    p.offer(vec![own(7001)]);
    p.drive();
    let Event::Connected {
        via,
        attempts,
        streamhost,
    } = target_end(&p)
    else {
        panic!("{:?}", p.target_events)
    };
    assert!(matches!(via, Via::Attempt(a) if a.index() == 0));
    assert_eq!(streamhost.jid, jid(ALICE));
    assert_eq!(outcomes(attempts), vec![Outcome::Won]);
    let Event::Connected {
        via, streamhost, ..
    } = requester_end(&p)
    else {
        panic!("{:?}", p.requester_events)
    };
    assert_eq!(*via, Via::Inbound);
    assert_eq!(streamhost.port, 7001);
    // offer latency + dial + streamhost-used latency.
    assert_eq!(p.requester_events[0].0, 45 * MS);
    assert_eq!(p.dst_addrs[&(Who::Target, attempt(0))], hash());
}

#[test]
fn a_dead_first_streamhost_falls_through_to_the_next_at_once() {
    let mut p = Pair::new();
    p.own_addrs = vec![addr("127.0.0.1:7001")];
    p.network
        .insert(addr("192.0.2.1:7000"), Dial::Refuse(3 * MS));
    p.network
        .insert(addr("127.0.0.1:7001"), Dial::Answer(5 * MS));
    p.expect();
    p.offer(vec![
        other("dead.example.org", "192.0.2.1", 7000),
        own(7001),
    ]);
    p.drive();
    // The second attempt starts when the first failed, not after the 250 ms stagger.
    assert_eq!(p.connects[1], (Who::Target, attempt(1), 23 * MS));
    let Event::Connected { attempts, .. } = target_end(&p) else {
        panic!()
    };
    assert!(matches!(
        &attempts[0].outcome,
        Outcome::Failed(Failure::Connect {
            kind: std::io::ErrorKind::ConnectionRefused,
            ..
        })
    ));
    assert_eq!(attempts[0].duration, 3 * MS);
    assert_eq!(attempts[1].outcome, Outcome::Won);
    assert!(matches!(
        requester_end(&p),
        Event::Connected {
            via: Via::Inbound,
            ..
        }
    ));
}

#[test]
fn streamhosts_start_in_offer_order_one_stagger_apart() {
    let mut p = Pair::new();
    for port in [1, 2, 3] {
        p.network
            .insert(addr(&format!("192.0.2.1:{port}")), Dial::Hang);
    }
    p.expect();
    p.offer(vec![
        other("p1.example.org", "192.0.2.1", 1),
        other("p2.example.org", "192.0.2.1", 2),
        other("p3.example.org", "192.0.2.1", 3),
    ]);
    p.drive();
    let starts: Vec<_> = p.connects.iter().map(|c| (c.1.index(), c.2)).collect();
    assert_eq!(starts, vec![(0, 20 * MS), (1, 270 * MS), (2, 520 * MS)]);
}

#[test]
fn the_first_completed_handshake_wins_and_the_losers_are_closed() {
    let mut p = Pair::new();
    p.own_addrs = vec![addr("127.0.0.1:7001"), addr("127.0.0.1:7002")];
    // The first starts first but is slow; the second, started a stagger later, is quick.
    p.network
        .insert(addr("127.0.0.1:7001"), Dial::Answer(2000 * MS));
    p.network
        .insert(addr("127.0.0.1:7002"), Dial::Answer(10 * MS));
    p.network.insert(addr("192.0.2.9:9"), Dial::Hang);
    p.expect();
    p.offer(vec![
        own(7001),
        own(7002),
        other("p.example.org", "192.0.2.9", 9),
    ]);
    p.drive();
    let Event::Connected { via, attempts, .. } = target_end(&p) else {
        panic!()
    };
    assert!(matches!(via, Via::Attempt(a) if a.index() == 1));
    assert_eq!(
        outcomes(attempts),
        vec![Outcome::Lost, Outcome::Won, Outcome::NotTried]
    );
    assert_eq!(p.target_events[0].0, 280 * MS);
    let mut closed: Vec<_> = p
        .closed
        .iter()
        .filter(|c| c.0 == Who::Target)
        .map(|c| c.1.index())
        .collect();
    closed.sort();
    assert_eq!(closed, vec![0]);
    // The requester's listener saw exactly the winner.
    assert_eq!(p.inbound, vec![Ok(())]);
    let Event::Connected { streamhost, .. } = requester_end(&p) else {
        panic!()
    };
    assert_eq!(streamhost.port, 7002);
}

#[test]
fn all_dead_is_item_not_found_at_the_budget_with_a_typed_reason_each() {
    let mut p = Pair::new();
    p.config.connect_budget(Duration::from_secs(3));
    p.network.insert(addr("192.0.2.1:1"), Dial::Hang);
    p.network.insert(addr("192.0.2.1:2"), Dial::Refuse(MS));
    p.expect();
    p.offer(vec![
        other("p1.example.org", "192.0.2.1", 1),
        other("p2.example.org", "192.0.2.1", 2),
    ]);
    p.drive();
    let Event::Failed(Error::NoStreamHost(attempts)) = target_end(&p) else {
        panic!("{:?}", p.target_events)
    };
    assert_eq!(
        outcomes(attempts)[0],
        Outcome::Failed(Failure::BudgetExhausted(Duration::from_secs(3)))
    );
    assert!(matches!(
        attempts[1].outcome,
        Outcome::Failed(Failure::Connect { .. })
    ));
    // Offer arrives at 20 ms; the budget runs from there.
    assert_eq!(p.target_events[0].0, Duration::from_millis(3020));
    let errs = p.errors_to(Who::Requester);
    assert_eq!(errs.len(), 1);
    assert_eq!(
        (errs[0].0.as_str(), errs[0].1.as_str()),
        ("cancel", "item-not-found")
    );
    // The peer learns that nothing worked, not which host failed how (no port scan through
    // us, BAD-INPUT C3); the reasons are in our own event.
    assert_eq!(errs[0].2, "no streamhost could be reached");
    let Event::Failed(Error::Rejected(se)) = requester_end(&p) else {
        panic!()
    };
    assert_eq!(
        se.defined_condition,
        xmpp_parsers::stanza_error::DefinedCondition::ItemNotFound
    );
    assert!(p.closed.contains(&(Who::Target, attempt(0))));
}

#[test]
fn a_silent_streamhost_fails_at_the_handshake_timeout_not_the_budget() {
    let mut p = Pair::new();
    p.config
        .connect_budget(Duration::from_secs(10))
        .handshake_timeout(Duration::from_secs(1));
    p.network.insert(addr("192.0.2.1:1"), Dial::Hang);
    p.expect();
    p.offer(vec![other("p1.example.org", "192.0.2.1", 1)]);
    p.drive();
    let Event::Failed(Error::NoStreamHost(attempts)) = target_end(&p) else {
        panic!()
    };
    assert_eq!(
        attempts[0].outcome,
        Outcome::Failed(Failure::HandshakeTimeout(Duration::from_secs(1)))
    );
    assert_eq!(p.target_events[0].0, Duration::from_millis(1020));
    assert!(p.closed.contains(&(Who::Target, attempt(0))));
}

#[test]
fn the_dial_policy_refuses_before_any_dial_and_the_next_starts_at_once() {
    let mut p = Pair::new();
    p.config.dial_policy(DialPolicy::no_loopback());
    p.own_addrs = vec![addr("127.0.0.1:7001")];
    p.network
        .insert(addr("198.51.100.7:7002"), Dial::Answer(5 * MS));
    p.proxy_addrs = vec![];
    p.expect();
    p.offer(vec![
        own(7001),
        other("p.example.org", "198.51.100.7", 7002),
    ]);
    p.drive();
    // Only the second was dialed, at once.
    assert_eq!(p.connects.len(), 1);
    assert_eq!(p.connects[0], (Who::Target, attempt(1), 20 * MS));
    assert!(p.inbound.is_empty());
    let Event::Failed(Error::NoStreamHost(attempts)) = target_end(&p) else {
        panic!("{:?}", p.target_events)
    };
    assert_eq!(attempts[0].outcome, Outcome::Refused(Refusal::DialPolicy));
    // 198.51.100.7 is nobody's listener in this network: general failure.
    assert!(matches!(
        attempts[1].outcome,
        Outcome::Failed(Failure::Socks5Reply {
            code: ReplyCode::GeneralFailure,
            ..
        })
    ));
}

#[test]
fn c3_the_default_policy_dials_no_loopback_private_or_mapped_address_a_peer_offers() {
    // BAD-INPUT C3: an offer naming this host (in every disguise) and our LAN.
    let mut p = Pair::new();
    p.config
        .dial_policy(xep0065_s5b::Config::default().dial_policy);
    p.own_addrs = vec![];
    p.proxy_addrs = vec![];
    // Nothing is in the simulated network: any dial would show in `p.connects`.
    p.expect();
    p.offer(vec![
        other("a.example.org", "127.0.0.1", 22),
        other("b.example.org", "::ffff:127.0.0.1", 22),
        other("c.example.org", "::1", 22),
        other("d.example.org", "10.0.0.1", 80),
        other("e.example.org", "192.168.1.1", 80),
        other("f.example.org", "100.64.0.1", 80),
        other("g.example.org", "169.254.169.254", 80),
        other("h.example.org", "fd00::1", 80),
    ]);
    p.drive();
    assert!(p.connects.is_empty(), "nothing dialed: {:?}", p.connects);
    let Event::Failed(Error::NoStreamHost(attempts)) = target_end(&p) else {
        panic!("{:?}", p.target_events)
    };
    assert!(
        attempts
            .iter()
            .all(|a| a.outcome == Outcome::Refused(Refusal::DialPolicy)),
        "{:?}",
        outcomes(attempts)
    );
    let errs = p.errors_to(Who::Requester);
    assert_eq!(
        (errs[0].0.as_str(), errs[0].1.as_str(), errs[0].2.as_str()),
        ("cancel", "item-not-found", "no streamhost could be reached")
    );
}

#[test]
fn c4_a_host_name_is_resolved_then_checked_against_the_policy() {
    let mut p = Pair::new();
    p.config.dial_policy(DialPolicy::no_loopback());
    p.names
        .insert("loop.example.org".into(), vec![addr("127.0.0.1:0")]);
    p.expect();
    p.offer(vec![
        StreamHost::new(
            jid("p.example.org"),
            xep0065_s5b::Host::Name("loop.example.org".into()),
            7777,
        ),
        StreamHost::new(
            jid("q.example.org"),
            xep0065_s5b::Host::Name("nowhere.example.org".into()),
            7777,
        ),
    ]);
    p.drive();
    let Event::Failed(Error::NoStreamHost(attempts)) = target_end(&p) else {
        panic!()
    };
    assert_eq!(attempts[0].outcome, Outcome::Refused(Refusal::DialPolicy));
    assert_eq!(
        attempts[1].outcome,
        Outcome::Failed(Failure::Resolve {
            name: "nowhere.example.org".into(),
            kind: std::io::ErrorKind::NotFound
        })
    );
    assert!(p.connects.is_empty());
    let errs = p.errors_to(Who::Requester);
    assert_eq!(
        (errs[0].0.as_str(), errs[0].1.as_str(), errs[0].2.as_str()),
        ("cancel", "item-not-found", "no streamhost could be reached")
    );
}

#[test]
fn a_wrong_dst_addr_is_host_unreachable_at_our_listener_and_a_second_connection_too() {
    let mut p = Pair::new();
    p.own_addrs = vec![addr("127.0.0.1:7001")];
    p.network
        .insert(addr("127.0.0.1:7001"), Dial::Answer(5 * MS));
    p.offer(vec![own(7001)]);
    p.drive_until(|p| !p.delivered.is_empty());
    let r = p.requester.as_mut().unwrap();
    let now = p.now;
    // A connection whose DST.ADDR is not ours never reaches the core (the driver routes
    // by DST.ADDR); the first with ours is accepted, any later one refused.
    assert_eq!(r.handle_inbound(now, 7001), Ok(()));
    assert_eq!(r.handle_inbound(now, 7001), Err(ReplyCode::NotAllowed));
    // An offer's `dstaddr` can no longer make our target send a foreign DST.ADDR: it is
    // ignored (BAD-INPUT C6, `tests/socks5.rs::c6_...`).
}

#[test]
fn c4_a_name_is_resolved_once_and_only_its_checked_addresses_are_dialled() {
    // DNS rebinding: the name resolves to this host and to a public address; only the
    // public one is dialled, from the one lookup (the driver never resolves again: a
    // Connect carries addresses, not names).
    let mut p = Pair::new();
    p.config.dial_policy(DialPolicy::public_only());
    p.names.insert(
        "rebind.example.org".into(),
        vec![
            addr("127.0.0.1:0"),
            addr("93.184.216.34:0"),
            addr("[::ffff:127.0.0.1]:0"),
            addr("10.0.0.1:0"),
        ],
    );
    p.expect();
    p.offer(vec![StreamHost::new(
        jid("p.example.org"),
        xep0065_s5b::Host::Name("rebind.example.org".into()),
        7777,
    )]);
    p.drive();
    assert_eq!(p.resolves, 1);
    assert_eq!(p.connect_addrs, vec![vec![addr("93.184.216.34:7777")]]);
}

#[test]
fn c7_streamhost_used_naming_a_host_never_offered_fails_the_requester() {
    let mut q = Pair::new();
    q.drop_to_target = true;
    q.offer(vec![own(7001)]);
    q.step();
    // The ids are deterministic: the offer is the first iq of this session.
    let id = String::from("sim-sim-sid-1");
    let used = xep0065_s5b::payload::StreamHostUsed {
        sid: Some(sid()),
        jid: jid("evil.example.net"),
    };
    q.send(
        Who::Target,
        Stanza::Iq(Iq::Result {
            from: None,
            to: Some(jid(ALICE)),
            id,
            payload: Some((&used).into()),
        }),
    );
    q.drive();
    let Event::Failed(Error::Protocol(ProtocolError::UnknownStreamHostUsed(j))) = requester_end(&q)
    else {
        panic!("{:?}", q.requester_events)
    };
    assert_eq!(j, "evil.example.net");
}

#[test]
fn an_unanswered_offer_times_out_at_the_offer_timeout() {
    let mut p = Pair::new();
    p.drop_to_target = true;
    p.offer(vec![own(7001)]);
    p.drive();
    let Event::Failed(Error::Timeout(d)) = requester_end(&p) else {
        panic!()
    };
    assert_eq!(*d, Duration::from_secs(60));
    assert_eq!(p.requester_events[0].0, Duration::from_secs(60));
}

#[test]
fn an_expected_offer_that_never_comes_times_out_and_an_unexpected_one_is_not_acceptable() {
    let mut p = Pair::new();
    p.expect();
    p.drive();
    assert!(
        matches!(target_end(&p), Event::Failed(Error::Timeout(d)) if *d == Duration::from_secs(60))
    );
    // A target nobody told about the sid: modify/not-acceptable.
    let mut q = Pair::new();
    q.offer(vec![own(7001)]);
    q.drive();
    let errs = q.errors_to(Who::Requester);
    assert_eq!(
        (errs[0].0.as_str(), errs[0].1.as_str()),
        ("modify", "not-acceptable")
    );
    assert!(matches!(
        requester_end(&q),
        Event::Failed(Error::Rejected(_))
    ));
}

#[test]
fn streamhost_used_for_our_listener_before_the_inbound_is_ready_waits_then_times_out() {
    let mut p = Pair::new();
    p.config.handshake_timeout(Duration::from_secs(2));
    p.drop_to_target = true;
    p.offer(vec![own(7001)]);
    p.step();
    let id = String::from("sim-sim-sid-1");
    let used = xep0065_s5b::payload::StreamHostUsed {
        sid: Some(sid()),
        jid: jid(ALICE),
    };
    p.send(
        Who::Target,
        Stanza::Iq(Iq::Result {
            from: None,
            to: Some(jid(ALICE)),
            id,
            payload: Some((&used).into()),
        }),
    );
    p.drive();
    let Event::Failed(Error::Timeout(d)) = requester_end(&p) else {
        panic!("{:?}", p.requester_events)
    };
    assert_eq!(*d, Duration::from_secs(2));
}

#[test]
fn cancelling_while_racing_answers_item_not_found_now_and_closes_every_attempt() {
    let mut p = Pair::new();
    p.network.insert(addr("192.0.2.1:1"), Dial::Hang);
    p.expect();
    p.offer(vec![other("p1.example.org", "192.0.2.1", 1)]);
    p.drive_until(|p| !p.connects.is_empty());
    let now = p.now;
    p.target.as_mut().unwrap().cancel(now);
    p.drive();
    assert!(p.target_events.is_empty());
    assert!(p.closed.contains(&(Who::Target, attempt(0))));
    let errs = p.errors_to(Who::Requester);
    assert_eq!(errs[0].1, "item-not-found");
    assert_eq!(errs[0].2, "the target gave up");
    assert_eq!(p.requester_events[0].0, 40 * MS);
}

#[test]
fn a_udp_offer_is_not_acceptable() {
    let mut p = Pair::new();
    p.expect();
    let mut offer = xep0065_s5b::payload::Offer {
        sid: sid(),
        mode: xep0065_s5b::Mode::Udp,
        dstaddr: None,
        streamhosts: vec![own(7001)],
    };
    offer.streamhosts.truncate(1);
    p.send(
        Who::Requester,
        Stanza::Iq(Iq::Set {
            from: None,
            to: Some(jid(BOB)),
            id: "u1".into(),
            payload: (&offer).into(),
        }),
    );
    p.drive();
    assert!(matches!(
        target_end(&p),
        Event::Failed(Error::Protocol(ProtocolError::UdpNotSupported))
    ));
    let errs = p.errors_to(Who::Requester);
    assert_eq!(
        (errs[0].0.as_str(), errs[0].1.as_str()),
        ("modify", "not-acceptable")
    );
}

#[test]
fn iq_ids_come_from_the_configured_prefix() {
    let mut p = Pair::new();
    p.drop_to_target = true;
    p.offer(vec![own(7001)]);
    let Some(Stanza::Iq(iq)) = p.requester.as_mut().unwrap().poll_transmit() else {
        panic!()
    };
    assert_eq!(iq.id(), "sim-sim-sid-1");
}
