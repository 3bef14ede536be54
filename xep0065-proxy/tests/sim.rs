//! Deterministic simulations of mediated bytestreams: `xep0065-s5b`'s requester and
//! target cores with this crate's `Broker` as the proxy, on a virtual clock (the harness
//! is `xep0065-s5b`'s, included as a file); and the broker's rules on their own.

#[path = "../../xep0065-s5b/tests/support/mod.rs"]
mod support;

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use support::*;
use xep0065_proxy::ProxyConfig;
use xep0065_proxy::proto::{Action, Broker, ConnId, Side};
use xep0065_s5b::payload::Activate;
use xep0065_s5b::proto::{Event, Via};
use xep0065_s5b::wire::ReplyCode;
use xep0065_s5b::{Error, Outcome, Sid, StreamHost, dst_addr};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

const MS: Duration = Duration::from_millis(1);

struct BrokerPeer(Broker);

impl ProxyPeer for BrokerPeer {
    fn handle_stanza(&mut self, now: Instant, stanza: Stanza) -> ControlFlow<(), Stanza> {
        self.0.handle_stanza(now, stanza)
    }
    fn handle_request(&mut self, now: Instant, conn: u64, dst: &str) -> Result<(), ReplyCode> {
        self.0.handle_request(now, ConnId(conn), dst).map(|_| ())
    }
    fn poll_transmit(&mut self) -> Option<Stanza> {
        self.0.poll_transmit()
    }
    fn poll_action(&mut self) -> Option<String> {
        self.0.poll_action().map(|a| format!("{a:?}"))
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.0.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.0.handle_timeout(now)
    }
}

fn proxy_config() -> ProxyConfig {
    let mut c = ProxyConfig::new(jid(PROXY));
    c.allowed_domains = vec!["example.org".into()];
    c
}

fn proxy_host() -> StreamHost {
    StreamHost::new(jid(PROXY), addr("192.0.2.50:1").ip(), 7777)
}

fn mediated(config: ProxyConfig) -> Pair<BrokerPeer> {
    let broker = Broker::new(&config, vec![proxy_host()]);
    let mut p = Pair::with_proxy(BrokerPeer(broker));
    p.proxy_addrs = vec![addr("192.0.2.50:7777")];
    p.network
        .insert(addr("192.0.2.50:7777"), Dial::Answer(5 * MS));
    p
}

fn conditions(p: &Pair<BrokerPeer>, who: Who) -> Vec<(String, String)> {
    p.errors_to(who)
        .into_iter()
        .map(|(t, c, _)| (t, c))
        .collect()
}

#[test]
fn through_the_proxy_the_requester_activates_and_only_then_is_connected() {
    let mut p = mediated(proxy_config());
    p.expect();
    p.offer(vec![proxy_host()]);
    p.drive();
    // Target: offer at 20 ms, connected to the proxy at 25 ms.
    let Event::Connected {
        streamhost,
        attempts,
        ..
    } = &p.target_events[0].1
    else {
        panic!("{:?}", p.target_events)
    };
    assert_eq!(streamhost.jid, jid(PROXY));
    assert_eq!(attempts[0].outcome, Outcome::Won);
    assert_eq!(p.target_events[0].0, 25 * MS);
    // Requester: streamhost-used at 45, its SOCKS5 to the proxy done at 50, <activate/>
    // reaches the proxy at 70 and its result comes back at 90: only then connected.
    let activations = p.sets_to(Who::Proxy, "activate");
    assert_eq!(activations.len(), 1);
    let (
        at,
        Event::Connected {
            via,
            streamhost,
            attempts,
        },
    ) = &p.requester_events[0]
    else {
        panic!("{:?}", p.requester_events)
    };
    assert_eq!(*at, 90 * MS);
    assert!(matches!(via, Via::Attempt(a) if a.index() == 0));
    assert_eq!(streamhost.jid, jid(PROXY));
    assert_eq!(attempts[0].outcome, Outcome::Won);
    assert_eq!(
        p.proxy_actions,
        vec![(
            70 * MS,
            format!(
                "{:?}",
                Action::Relay {
                    dst_addr: hash(),
                    target: ConnId(1),
                    requester: ConnId(2)
                }
            )
        )]
    );
    assert_eq!(p.proxy.0.active(), 1);
    assert_eq!(p.proxy.0.pending(), 0);
}

#[test]
fn c10_an_activation_error_fails_the_requester_with_the_proxy_condition_and_closes_its_socket() {
    let mut c = proxy_config();
    c.allowed_domains = vec!["example.net".into()];
    let mut p = mediated(c);
    p.expect();
    p.offer(vec![proxy_host()]);
    p.drive();
    let Event::Failed(Error::Rejected(se)) = &p.requester_events[0].1 else {
        panic!("{:?}", p.requester_events)
    };
    assert_eq!(se.type_, ErrorType::Auth);
    assert_eq!(se.defined_condition, DefinedCondition::Forbidden);
    assert!(
        p.closed
            .contains(&(Who::Requester, xep0065_s5b::proto::AttemptId::from_index(0)))
    );
    assert_eq!(
        conditions(&p, Who::Requester),
        vec![("auth".into(), "forbidden".into())]
    );
    // No relay; the two waiting connections are closed at the activation timeout.
    let actions: Vec<_> = p.proxy_actions.iter().map(|(_, a)| a.clone()).collect();
    assert_eq!(
        actions,
        vec![
            format!("{:?}", Action::Close(ConnId(1))),
            format!("{:?}", Action::Close(ConnId(2)))
        ]
    );
}

#[test]
fn a_proxy_that_refuses_the_requester_connection_is_no_streamhost() {
    let mut p = mediated(proxy_config());
    p.proxy.0 = {
        let mut c = proxy_config();
        // Room for the target's connection only.
        c.max_pending = 1;
        Broker::new(&c, vec![proxy_host()])
    };
    p.expect();
    p.offer(vec![proxy_host()]);
    p.drive();
    let Event::Failed(Error::NoStreamHost(attempts)) = &p.requester_events[0].1 else {
        panic!("{:?}", p.requester_events)
    };
    assert!(matches!(
        attempts[0].outcome,
        Outcome::Failed(xep0065_s5b::Failure::Socks5Reply {
            code: ReplyCode::GeneralFailure,
            ..
        })
    ));
}

#[test]
fn never_activated_connections_are_closed_at_the_activation_timeout() {
    let mut c = proxy_config();
    c.activation_timeout = Duration::from_secs(5);
    let mut p = mediated(c);
    p.expect();
    // The requester never learns which host was used (its answer is lost): only the
    // target's connection reaches the proxy.
    p.offer(vec![proxy_host()]);
    p.drive_until(|p| !p.target_events.is_empty());
    p.requester = None;
    p.drive();
    assert_eq!(
        p.proxy_actions,
        vec![(
            Duration::from_millis(5025),
            format!("{:?}", Action::Close(ConnId(1)))
        )]
    );
    assert_eq!(p.proxy.0.pending(), 0);
}

// The broker's rules on their own.

fn activate(from: &str, sid: &str, target: &str) -> Stanza {
    Stanza::Iq(Iq::Set {
        from: Some(jid(from)),
        to: Some(jid(PROXY)),
        id: format!("act-{from}"),
        payload: (&Activate {
            sid: Sid::new(sid).unwrap(),
            target: jid(target),
        })
            .into(),
    })
}

fn answer(
    b: &mut Broker,
    now: Instant,
    stanza: Stanza,
) -> Result<(), (ErrorType, DefinedCondition)> {
    assert!(b.handle_stanza(now, stanza).is_break());
    match b.poll_transmit() {
        Some(Stanza::Iq(Iq::Result { .. })) => Ok(()),
        Some(Stanza::Iq(Iq::Error { error, .. })) => Err((error.type_, error.defined_condition)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn activation_is_the_requesters_alone_and_only_with_both_connected() {
    let now = Instant::now();
    let mut b = Broker::new(&proxy_config(), vec![proxy_host()]);
    let h = dst_addr(&Sid::new("s").unwrap(), &jid(ALICE), &jid(BOB));
    // Nobody connected.
    assert_eq!(
        answer(&mut b, now, activate(ALICE, "s", BOB)),
        Err((ErrorType::Cancel, DefinedCondition::ItemNotFound))
    );
    assert_eq!(b.handle_request(now, ConnId(1), &h), Ok(Side::Target));
    // Only the target connected.
    assert_eq!(
        answer(&mut b, now, activate(ALICE, "s", BOB)),
        Err((ErrorType::Cancel, DefinedCondition::NotAllowed))
    );
    assert_eq!(b.handle_request(now, ConnId(2), &h), Ok(Side::Requester));
    // A third connection with the same DST.ADDR.
    assert_eq!(
        b.handle_request(now, ConnId(3), &h),
        Err(ReplyCode::NotAllowed)
    );
    // A third JID (same domain): its hash names no connection.
    assert_eq!(
        answer(&mut b, now, activate("mallory@example.org/m", "s", BOB)),
        Err((ErrorType::Cancel, DefinedCondition::ItemNotFound))
    );
    // The target itself cannot activate either.
    assert_eq!(
        answer(&mut b, now, activate(BOB, "s", ALICE)),
        Err((ErrorType::Cancel, DefinedCondition::ItemNotFound))
    );
    // A JID outside the allowed domains.
    assert_eq!(
        answer(&mut b, now, activate("eve@evil.example/e", "s", BOB)),
        Err((ErrorType::Auth, DefinedCondition::Forbidden))
    );
    assert_eq!(answer(&mut b, now, activate(ALICE, "s", BOB)), Ok(()));
    assert!(matches!(
        b.poll_action(),
        Some(Action::Relay {
            target: ConnId(1),
            requester: ConnId(2),
            ..
        })
    ));
    // Active already.
    assert_eq!(
        answer(&mut b, now, activate(ALICE, "s", BOB)),
        Err((ErrorType::Cancel, DefinedCondition::Conflict))
    );
    assert_eq!(
        b.handle_request(now, ConnId(4), &h),
        Err(ReplyCode::NotAllowed)
    );
    // The relay ends: the DST.ADDR is free again.
    b.handle_relay_ended(&h);
    assert_eq!(b.active(), 0);
    assert_eq!(b.handle_request(now, ConnId(5), &h), Ok(Side::Target));
}

#[test]
fn a_wrong_dst_addr_pairs_with_nothing_and_activation_is_not_allowed() {
    let now = Instant::now();
    let mut b = Broker::new(&proxy_config(), vec![proxy_host()]);
    let right = dst_addr(&Sid::new("s").unwrap(), &jid(ALICE), &jid(BOB));
    let wrong = dst_addr(
        &Sid::new("s").unwrap(),
        &jid("alice@example.org"),
        &jid("bob@example.org"),
    );
    assert_eq!(b.handle_request(now, ConnId(1), &right), Ok(Side::Target));
    // The requester hashed bare JIDs: its connection opens a slot of its own.
    assert_eq!(b.handle_request(now, ConnId(2), &wrong), Ok(Side::Target));
    assert_eq!(
        answer(&mut b, now, activate(ALICE, "s", BOB)),
        Err((ErrorType::Cancel, DefinedCondition::NotAllowed))
    );
}

#[test]
fn one_requester_is_capped_at_max_relays_per_jid() {
    let now = Instant::now();
    let mut c = proxy_config();
    c.max_relays_per_jid = 1;
    let mut b = Broker::new(&c, vec![proxy_host()]);
    for (n, sid) in ["s1", "s2"].iter().enumerate() {
        let h = dst_addr(&Sid::new(*sid).unwrap(), &jid(ALICE), &jid(BOB));
        let base = 10 * n as u64;
        assert!(b.handle_request(now, ConnId(base + 1), &h).is_ok());
        assert!(b.handle_request(now, ConnId(base + 2), &h).is_ok());
    }
    assert_eq!(answer(&mut b, now, activate(ALICE, "s1", BOB)), Ok(()));
    // Another resource of the same bare JID counts too; here the same one.
    assert_eq!(
        answer(&mut b, now, activate(ALICE, "s2", BOB)),
        Err((ErrorType::Wait, DefinedCondition::ResourceConstraint))
    );
}

#[test]
fn the_activation_timeout_runs_from_the_first_connection_and_a_lost_reply_frees_the_slot() {
    let t0 = Instant::now();
    let mut b = Broker::new(&proxy_config(), vec![proxy_host()]);
    let h = dst_addr(&Sid::new("s").unwrap(), &jid(ALICE), &jid(BOB));
    b.handle_request(t0, ConnId(1), &h).unwrap();
    b.handle_request(t0 + Duration::from_secs(30), ConnId(2), &h)
        .unwrap();
    assert_eq!(b.poll_timeout(), Some(t0 + Duration::from_secs(60)));
    b.handle_timeout(t0 + Duration::from_secs(59));
    assert_eq!(b.poll_action(), None);
    b.handle_timeout(t0 + Duration::from_secs(60));
    assert_eq!(b.poll_action(), Some(Action::Close(ConnId(1))));
    assert_eq!(b.poll_action(), Some(Action::Close(ConnId(2))));
    assert_eq!(b.pending(), 0);
    // A connection whose success reply could not be sent leaves at once.
    b.handle_request(t0, ConnId(3), &h).unwrap();
    b.handle_closed(ConnId(3));
    assert_eq!(b.pending(), 0);
    assert_eq!(b.poll_timeout(), None);
}

#[test]
fn the_address_query_is_for_allowed_domains_only() {
    let now = Instant::now();
    let mut b = Broker::new(&proxy_config(), vec![proxy_host()]);
    let q = |from: &str| {
        Stanza::Iq(Iq::Get {
            from: Some(jid(from)),
            to: Some(jid(PROXY)),
            id: "q".into(),
            payload: xep0065_s5b::payload::ProxyInfo::request(),
        })
    };
    assert_eq!(answer(&mut b, now, q(ALICE)), Ok(()));
    assert_eq!(
        answer(&mut b, now, q("eve@evil.example/e")),
        Err((ErrorType::Auth, DefinedCondition::Forbidden))
    );
}
