//! A deterministic two-peer network for the sans-IO cores: two listeners, one proxy,
//! transport-info delivered in order, time passed in.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use xep0065_s5b::proto::AttemptId;
use xep0065_s5b::wire::ReplyCode;
use xep0065_s5b::{Config, DialPolicy, Failure, Sid, StreamHost};
use xep0260_jingle_s5b::LocalCandidates;
use xep0260_jingle_s5b::proto::{Action, Event, Negotiation, Role, Transmit};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jingle_s5b::Transport;

pub const A_ADDR: &str = "127.0.0.1:1000";
pub const B_ADDR: &str = "127.0.0.2:2000";
pub const PROXY_ADDR: &str = "127.0.0.3:7777";
pub const PROXY_JID: &str = "proxy.example.org";

pub fn a_jid() -> jid::Jid {
    "romeo@montague.lit/orchard".parse().unwrap()
}
pub fn b_jid() -> jid::Jid {
    "juliet@capulet.lit/balcony".parse().unwrap()
}

/// Loopback only, allowed explicitly (the default dials no loopback address).
pub fn config() -> Config {
    let mut c = Config::default();
    c.dial_policy(DialPolicy::new(|_, _, a| a.ip().is_loopback()));
    c.id_prefix("t-");
    c
}

pub fn proxy() -> StreamHost {
    let a: SocketAddr = PROXY_ADDR.parse().unwrap();
    StreamHost::new(PROXY_JID.parse().unwrap(), a.ip(), a.port())
}

pub fn direct(addr: &str) -> LocalCandidates {
    LocalCandidates {
        direct: vec![addr.parse().unwrap()],
        proxies: vec![],
    }
}

pub fn only_proxy() -> LocalCandidates {
    LocalCandidates {
        direct: vec![],
        proxies: vec![proxy()],
    }
}

#[derive(Debug)]
pub struct Peer {
    pub n: Negotiation,
    /// Whether its listener accepts connections.
    pub reachable: bool,
    pub events: Vec<Event>,
    /// Every transport-info it sent.
    pub sent: Vec<Transport>,
    /// Every action it asked for.
    pub actions: Vec<Action>,
    /// Deliver its transport-infos to the other side.
    pub deliver: bool,
}

#[derive(Debug)]
pub struct Sim {
    pub a: Peer,
    pub b: Peer,
    pub now: Instant,
    pub proxy_up: bool,
    /// DST.ADDRs connected at the proxy.
    pub proxy_conns: Vec<String>,
    pub activations: Vec<Iq>,
}

impl Sim {
    /// A (initiator) and B (responder), session-initiate and session-accept exchanged.
    pub fn new(a: LocalCandidates, b: LocalCandidates) -> Self {
        let sid = Sid::new("vj3hs98y").unwrap();
        let c = config();
        let peer = |n| Peer {
            n,
            reachable: true,
            events: vec![],
            sent: vec![],
            actions: vec![],
            deliver: true,
        };
        Self {
            a: peer(Negotiation::new(
                &c,
                Role::Initiator,
                a_jid(),
                b_jid(),
                sid.clone(),
                &a,
            )),
            b: peer(Negotiation::new(
                &c,
                Role::Responder,
                b_jid(),
                a_jid(),
                sid,
                &b,
            )),
            now: Instant::now(),
            proxy_up: true,
            proxy_conns: vec![],
            activations: vec![],
        }
    }

    /// Exchanges the candidate lists (session-initiate, session-accept).
    pub fn start(&mut self) {
        let now = self.now;
        self.b
            .n
            .handle_transport(now, self.a.n.local_transport())
            .unwrap();
        self.a
            .n
            .handle_transport(now, self.b.n.local_transport())
            .unwrap();
    }

    /// Runs until nothing moves.
    pub fn run(&mut self) {
        for _ in 0..100 {
            if !self.step() {
                return;
            }
        }
        panic!("no quiescence");
    }

    fn step(&mut self) -> bool {
        let now = self.now;
        let mut moved = false;
        for side in [0, 1] {
            let (me, other) = if side == 0 {
                (&mut self.a, &mut self.b)
            } else {
                (&mut self.b, &mut self.a)
            };
            while let Some(act) = me.n.poll_action() {
                moved = true;
                me.actions.push(act.clone());
                match act {
                    Action::Connect {
                        attempt,
                        addrs,
                        dst_addr,
                    } => {
                        let addr = addrs[0];
                        let r = if addr == PROXY_ADDR.parse().unwrap() {
                            if self.proxy_up {
                                self.proxy_conns.push(dst_addr);
                                Ok(())
                            } else {
                                Err(refused(addr))
                            }
                        } else if other.reachable {
                            other
                                .n
                                .handle_inbound(now, &dst_addr)
                                .map_err(|code| Failure::Socks5Reply { addr, code })
                        } else {
                            Err(refused(addr))
                        };
                        match r {
                            Ok(()) => me.n.handle_connected(now, attempt),
                            Err(f) => me.n.handle_connect_failed(now, attempt, f),
                        }
                    }
                    Action::ConnectProxy { addr, dst_addr } => {
                        if self.proxy_up {
                            self.proxy_conns.push(dst_addr);
                            me.n.handle_proxy_connected(now);
                        } else {
                            me.n.handle_proxy_failed(now, refused(addr));
                        }
                    }
                    _ => {}
                }
            }
            while let Some(t) = me.n.poll_transmit() {
                moved = true;
                match t {
                    Transmit::TransportInfo(t) => {
                        me.sent.push(t.clone());
                        if me.deliver {
                            other.n.handle_transport(now, t).unwrap();
                        }
                    }
                    Transmit::Activate(iq) => {
                        self.activations.push((*iq).clone());
                        // The proxy activates when both sides presented the same hash.
                        let ok = self.proxy_conns.len() >= 2
                            && self.proxy_conns.iter().all(|d| *d == self.proxy_conns[0]);
                        let mut answer = if ok {
                            Iq::Result {
                                from: None,
                                to: None,
                                id: iq.id().to_owned(),
                                payload: None,
                            }
                        } else {
                            Iq::from_error(
                                iq.id(),
                                xmpp_parsers::stanza_error::StanzaError::new(
                                    xmpp_parsers::stanza_error::ErrorType::Cancel,
                                    xmpp_parsers::stanza_error::DefinedCondition::ItemNotFound,
                                    "en",
                                    "no pair",
                                ),
                            )
                        };
                        *answer.from_mut() = Some(PROXY_JID.parse().unwrap());
                        assert!(me.n.handle_iq(now, &answer));
                    }
                    other => panic!("{other:?}"),
                }
            }
            while let Some(e) = me.n.poll_event() {
                moved = true;
                me.events.push(e);
            }
        }
        moved
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        let now = self.now;
        self.a.n.handle_timeout(now);
        self.b.n.handle_timeout(now);
        self.run();
    }
}

pub fn refused(addr: SocketAddr) -> Failure {
    Failure::Connect {
        addr,
        kind: std::io::ErrorKind::ConnectionRefused,
    }
}

pub fn unused(_: AttemptId, _: ReplyCode) {}

/// A transport element from text (the sid is the sim's).
pub fn el(inner: &str) -> minidom::Element {
    format!(
        "<transport xmlns='urn:xmpp:jingle:transports:s5b:1' sid='vj3hs98y'>{inner}</transport>"
    )
    .parse()
    .unwrap()
}
