//! What a target does with long or failing streamhost lists (BAD-INPUT C2, I3): only the
//! first 8 candidates, at most `max_connects` connections in flight over every session,
//! and streamhosts that failed twice skipped for two hours.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Raw, config, jid, peer};
use ft_transport::hub::Hub;
use xep0065_s5b::proto::{Action, AttemptId, Event, Target};
use xep0065_s5b::wire::ReplyCode;
use xep0065_s5b::{Config, DialPolicy, Error, Failure, Outcome, Refusal, Sid};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::DefinedCondition;

const NS: &str = "http://jabber.org/protocol/bytestreams";

/// An offer of `sid` from alice listing `hosts` (host, port).
fn offer(id: &str, sid: &str, hosts: &[(String, u16)]) -> Iq {
    let list: String = hosts
        .iter()
        .enumerate()
        .map(|(i, (h, p))| format!("<streamhost jid='sh{i}.example.org' host='{h}' port='{p}'/>"))
        .collect();
    Iq::Set {
        from: Some(jid("alice@example.org/a")),
        to: Some(jid("bob@example.org/b")),
        id: id.into(),
        payload: format!("<query xmlns='{NS}' sid='{sid}'>{list}</query>")
            .parse()
            .unwrap(),
    }
}

fn target(config: &Config, sid: &str, now: Instant) -> Target {
    Target::new(
        config,
        jid("bob@example.org/b"),
        jid("alice@example.org/a"),
        Sid::new(sid).unwrap(),
        now,
        Duration::from_secs(60),
    )
}

fn connects(t: &mut Target) -> Vec<AttemptId> {
    std::iter::from_fn(|| t.poll_action())
        .filter_map(|a| match a {
            Action::Connect { attempt, .. } => Some(attempt),
            _ => None,
        })
        .collect()
}

fn sans_io_config() -> Config {
    let mut c = Config::default();
    c.dial_policy(DialPolicy::allow_all());
    c
}

#[test]
fn c2_i3_only_the_first_8_streamhosts_of_an_offer_are_tried() {
    let now = Instant::now();
    let mut t = target(&sans_io_config(), "many", now);
    let hosts: Vec<(String, u16)> = (1..=16).map(|i| (format!("192.0.2.{i}"), 1000)).collect();
    assert!(
        t.handle_stanza(now, Stanza::Iq(offer("o1", "many", &hosts)))
            .is_break()
    );
    // Every connect fails at once, so the next one starts at once: all that will ever be
    // tried are dialled here.
    let mut dialled = Vec::new();
    loop {
        let batch = connects(&mut t);
        if batch.is_empty() {
            break;
        }
        for a in batch {
            dialled.push(a.index());
            let addr = format!("192.0.2.{}:1000", a.index() + 1).parse().unwrap();
            let failure = Failure::Connect {
                addr,
                kind: std::io::ErrorKind::ConnectionRefused,
            };
            t.handle_connect_failed(now, a, failure);
        }
    }
    assert_eq!(dialled, (0..8).collect::<Vec<_>>());
    let Some(Event::Failed(Error::NoStreamHost(attempts))) = t.poll_event() else {
        panic!("the race ends")
    };
    assert_eq!(attempts.len(), 8);
    let Some(Stanza::Iq(Iq::Error { error, .. })) = t.poll_transmit() else {
        panic!("the offer is answered")
    };
    assert_eq!(error.defined_condition, DefinedCondition::ItemNotFound);
}

/// Runs one offer of the one streamhost `192.0.2.7:7777` whose connect ends with `failure`
/// (`None`: it is not even dialled); returns the outcome.
fn one_attempt(config: &Config, sid: &str, now: Instant, failure: Option<Failure>) -> Outcome {
    let mut t = target(config, sid, now);
    let hosts = [("192.0.2.7".to_owned(), 7777)];
    assert!(
        t.handle_stanza(now, Stanza::Iq(offer(sid, sid, &hosts)))
            .is_break()
    );
    let dialled = connects(&mut t);
    match failure {
        Some(f) => {
            assert_eq!(dialled.len(), 1, "{sid}: dialled");
            t.handle_connect_failed(now, dialled[0], f);
        }
        None => assert!(dialled.is_empty(), "{sid}: not dialled"),
    }
    let Some(Event::Failed(Error::NoStreamHost(attempts))) = t.poll_event() else {
        panic!("{sid}: the race ends")
    };
    let Some(Stanza::Iq(Iq::Error { error, .. })) = t.poll_transmit() else {
        panic!("{sid}: answered")
    };
    assert_eq!(error.defined_condition, DefinedCondition::ItemNotFound);
    attempts[0].outcome.clone()
}

#[test]
fn i3_a_streamhost_that_failed_twice_is_skipped_for_two_hours() {
    let start = Instant::now();
    let config = sans_io_config();
    let addr = "192.0.2.7:7777".parse().unwrap();
    let refused = || Failure::Connect {
        addr,
        kind: std::io::ErrorKind::ConnectionRefused,
    };
    // A SOCKS5 refusal does not count (any peer could make a good proxy refuse us).
    let socks = Failure::Socks5Reply {
        addr,
        code: ReplyCode::HostUnreachable,
    };
    one_attempt(&config, "s0", start, Some(socks));
    one_attempt(&config, "s1", start, Some(refused()));
    // Sessions made from clones of the configuration share the list.
    let clone = config.clone();
    let t = start + Duration::from_secs(60);
    one_attempt(&clone, "s2", t, Some(refused()));
    let t = start + Duration::from_secs(3600);
    assert_eq!(
        one_attempt(&config, "s3", t, None),
        Outcome::Refused(Refusal::Blacklisted)
    );
    // Two hours after the last failure it is tried again.
    let t = start + Duration::from_secs(60 + 2 * 3600);
    one_attempt(&config, "s4", t, Some(refused()));
    // A configuration that opts out never skips.
    let mut off = sans_io_config();
    off.blacklist(xep0065_s5b::Blacklist::disabled());
    for i in 0..4 {
        one_attempt(&off, &format!("off{i}"), start, Some(refused()));
    }
}

/// Over real sockets: three offers of the same eight streamhosts, each a 127.0.0.1
/// listener that accepts and never answers the SOCKS5 greeting. With `max_connects` 5, the
/// listeners hold about 5 of our connections at once (24 without the cap).
#[tokio::test]
async fn i3_at_most_max_connects_connections_in_flight_over_every_session() {
    let open = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let mut hosts = Vec::new();
    for _ in 0..8 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        hosts.push(("127.0.0.1".to_owned(), l.local_addr().unwrap().port()));
        let (open, peak, accepted) = (open.clone(), peak.clone(), accepted.clone());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                let n = open.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                let open = open.clone();
                tokio::spawn(async move {
                    use tokio::io::AsyncReadExt;
                    let mut buf = [0u8; 64];
                    // Read the greeting and never answer; EOF when the target gives up.
                    while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
    }
    let hub = Hub::new();
    let mut c = config();
    c.max_connects(5)
        .stagger(Duration::from_millis(5))
        .handshake_timeout(Duration::from_millis(800))
        .connect_budget(Duration::from_millis(1500))
        .blacklist(xep0065_s5b::Blacklist::disabled());
    let bob = peer(&hub, "bob@example.org/b", c);
    let mut alice = Raw::new(&hub, "alice@example.org/a");
    let mut sessions = Vec::new();
    for i in 0..3 {
        let sid = Sid::new(format!("cap{i}")).unwrap();
        sessions.push(tokio::spawn(bob.expect(
            jid("alice@example.org/a"),
            sid,
            Duration::from_secs(10),
        )));
    }
    for i in 0..3 {
        alice
            .send(offer(&format!("o{i}"), &format!("cap{i}"), &hosts))
            .await;
    }
    for _ in 0..3 {
        let answer = alice.recv_iq().await;
        assert!(
            matches!(&answer, Iq::Error { error, .. } if error.defined_condition == DefinedCondition::ItemNotFound),
            "{answer:?}"
        );
    }
    for s in sessions {
        assert!(matches!(s.await.unwrap(), Err(Error::NoStreamHost(_))));
    }
    let peak = peak.load(Ordering::SeqCst);
    eprintln!("accepted {}, peak {peak}", accepted.load(Ordering::SeqCst));
    // The listeners see a closed connection's EOF a moment after the target gave its
    // place to the next attempt, so their count may briefly exceed the cap by one or two.
    assert!(peak <= 5 + 2, "{peak} connections at once");
    assert!(peak >= 2, "the cap still lets several run: {peak}");
}
