//! A deterministic simulation of one bytestream negotiation: the requester's and the
//! target's sans-IO cores, optionally a proxy core (any [`ProxyPeer`]; `xep0065-proxy`'s
//! tests plug its `Broker` in by including this file), a virtual clock, stanza latency,
//! and a "network" that decides per address whether a dial succeeds, fails or hangs, and
//! after how long. Dials that reach the requester's own address are decided by the
//! requester's core (`handle_inbound`), dials that reach the proxy's by the proxy core.
#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use jid::Jid;
use xep0065_s5b::proto::{
    Action, AttemptId, Event, Failure, Requester, Target, reply_unexpected_offer,
};
use xep0065_s5b::wire::ReplyCode;
use xep0065_s5b::{Config, Sid, StreamHost, dst_addr};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;

pub const ALICE: &str = "alice@example.org/a";
pub const BOB: &str = "bob@example.org/b";
pub const PROXY: &str = "proxy.example.org";

pub fn jid(s: &str) -> Jid {
    s.parse().unwrap()
}

/// The sid every simulated session uses.
pub fn sid() -> Sid {
    Sid::new("sim-sid").unwrap()
}

/// Its DST.ADDR (alice requester, bob target).
pub fn hash() -> String {
    dst_addr(&sid(), &jid(ALICE), &jid(BOB))
}

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// What dialing one address does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dial {
    /// The TCP connect and SOCKS5 handshake complete after this long. To the requester's
    /// own address, the requester's listener decides (its core's `handle_inbound`); to the
    /// proxy's, the proxy model decides.
    Answer(Duration),
    /// Refused (RST) after this long.
    Refuse(Duration),
    /// Nothing ever comes back.
    Hang,
}

/// Who is who.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Who {
    Requester,
    Target,
    Proxy,
}

#[derive(Debug)]
enum Ev {
    Deliver(Who, Box<Stanza>),
    Dialed(Who, AttemptId, Result<(), Failure>),
    Resolved(Who, AttemptId, Result<Vec<SocketAddr>, io::ErrorKind>),
    /// The SOCKS5 request reached the listener at `addr`: whoever listens there decides.
    Handshake(Who, AttemptId, SocketAddr, String),
}

/// A proxy core the simulation can drive.
pub trait ProxyPeer {
    fn handle_stanza(&mut self, now: Instant, stanza: Stanza) -> ControlFlow<(), Stanza>;
    /// A SOCKS5 CONNECT with `dst` on connection `conn` completed its request.
    fn handle_request(&mut self, now: Instant, conn: u64, dst: &str) -> Result<(), ReplyCode>;
    fn poll_transmit(&mut self) -> Option<Stanza>;
    /// Socket actions, as text for the log (the proxy crate's tests inspect the core).
    fn poll_action(&mut self) -> Option<String>;
    fn poll_timeout(&self) -> Option<Instant>;
    fn handle_timeout(&mut self, now: Instant);
}

/// No proxy.
#[derive(Debug, Default)]
pub struct NoProxy;

impl ProxyPeer for NoProxy {
    fn handle_stanza(&mut self, _: Instant, stanza: Stanza) -> ControlFlow<(), Stanza> {
        ControlFlow::Continue(stanza)
    }
    fn handle_request(&mut self, _: Instant, _: u64, _: &str) -> Result<(), ReplyCode> {
        Err(ReplyCode::ConnectionRefused)
    }
    fn poll_transmit(&mut self) -> Option<Stanza> {
        None
    }
    fn poll_action(&mut self) -> Option<String> {
        None
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn handle_timeout(&mut self, _: Instant) {}
}

pub struct Pair<P: ProxyPeer = NoProxy> {
    pub now: Instant,
    pub t0: Instant,
    pub latency: Duration,
    pub config: Config,
    pub requester: Option<Requester>,
    pub target: Option<Target>,
    pub proxy: P,
    /// Addresses that are the proxy's listener.
    pub proxy_addrs: Vec<SocketAddr>,
    /// Addresses that are the requester's own listener.
    pub own_addrs: Vec<SocketAddr>,
    /// The proxy core's actions, in order.
    pub proxy_actions: Vec<(Duration, String)>,
    next_conn: u64,
    /// Per address: what dialing it does. Unlisted addresses refuse at once.
    pub network: HashMap<SocketAddr, Dial>,
    /// Per host name: what it resolves to (unlisted names fail with `NotFound`).
    pub names: HashMap<String, Vec<SocketAddr>>,
    /// Drop every stanza to the target.
    pub drop_to_target: bool,
    queue: BTreeMap<(Instant, u64), Ev>,
    order: u64,
    /// Attempts that got `Action::Connect`, with the time since t0: (who, attempt, t).
    pub connects: Vec<(Who, AttemptId, Duration)>,
    /// The addresses of each `Action::Connect`, in order.
    pub connect_addrs: Vec<Vec<SocketAddr>>,
    /// How many `Action::Resolve` the cores asked for.
    pub resolves: usize,
    /// Attempts that got `Action::Close`.
    pub closed: Vec<(Who, AttemptId)>,
    pub requester_events: Vec<(Duration, Event)>,
    pub target_events: Vec<(Duration, Event)>,
    /// Every stanza delivered, with its receiver.
    pub delivered: Vec<(Who, Stanza)>,
    /// The requester's inbound connection decisions.
    pub inbound: Vec<Result<(), ReplyCode>>,
    /// The DST.ADDR each Connect action used, per (who, attempt).
    pub dst_addrs: HashMap<(Who, AttemptId), String>,
}

impl Pair<NoProxy> {
    pub fn new() -> Self {
        Self::with_proxy(NoProxy)
    }
}

impl<P: ProxyPeer> Pair<P> {
    pub fn with_proxy(proxy: P) -> Self {
        let mut config = Config::default();
        config.id_prefix("sim-");
        // The simulated network is on loopback addresses: allowed unless a test says not.
        config.dial_policy(xep0065_s5b::DialPolicy::allow_all());
        let now = Instant::now();
        Self {
            now,
            t0: now,
            latency: Duration::from_millis(20),
            config,
            requester: None,
            target: None,
            proxy,
            proxy_addrs: Vec::new(),
            own_addrs: Vec::new(),
            proxy_actions: Vec::new(),
            next_conn: 0,
            network: HashMap::new(),
            names: HashMap::new(),
            drop_to_target: false,
            queue: BTreeMap::new(),
            order: 0,
            connects: Vec::new(),
            connect_addrs: Vec::new(),
            resolves: 0,
            closed: Vec::new(),
            requester_events: Vec::new(),
            target_events: Vec::new(),
            delivered: Vec::new(),
            inbound: Vec::new(),
            dst_addrs: HashMap::new(),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    /// Bob expects the sid from alice (within 60 s).
    pub fn expect(&mut self) {
        self.target = Some(Target::new(
            &self.config,
            jid(BOB),
            jid(ALICE),
            sid(),
            self.now,
            Duration::from_secs(60),
        ));
    }

    /// Alice offers `hosts`.
    pub fn offer(&mut self, hosts: Vec<StreamHost>) {
        self.requester = Some(
            Requester::new(&self.config, jid(ALICE), jid(BOB), sid(), hosts, self.now).unwrap(),
        );
    }

    fn schedule(&mut self, at: Instant, ev: Ev) {
        self.order += 1;
        self.queue.insert((at, self.order), ev);
    }

    /// Sends `stanza` from `from`, delivered after the latency.
    pub fn send(&mut self, from: Who, mut stanza: Stanza) {
        let from_jid = match from {
            Who::Requester => jid(ALICE),
            Who::Target => jid(BOB),
            Who::Proxy => jid(PROXY),
        };
        let Stanza::Iq(iq) = &mut stanza else {
            return;
        };
        *iq.from_mut() = Some(from_jid);
        let to = iq.to().cloned().expect("iq without to");
        let who = if to == jid(ALICE) {
            Who::Requester
        } else if to == jid(BOB) {
            Who::Target
        } else if to == jid(PROXY) {
            Who::Proxy
        } else {
            return;
        };
        if who == Who::Target && self.drop_to_target {
            return;
        }
        let at = self.now + self.latency;
        self.schedule(at, Ev::Deliver(who, Box::new(stanza)));
    }

    /// Drains every core's output; true if anything came out.
    fn flush(&mut self) -> bool {
        let mut any = false;
        for who in [Who::Requester, Who::Target] {
            loop {
                let action = match who {
                    Who::Requester => self.requester.as_mut().and_then(Requester::poll_action),
                    _ => self.target.as_mut().and_then(Target::poll_action),
                };
                let Some(a) = action else { break };
                any = true;
                self.act(who, a);
            }
            loop {
                let t = match who {
                    Who::Requester => self.requester.as_mut().and_then(Requester::poll_transmit),
                    _ => self.target.as_mut().and_then(Target::poll_transmit),
                };
                let Some(t) = t else { break };
                any = true;
                self.send(who, t);
            }
            loop {
                let e = match who {
                    Who::Requester => self.requester.as_mut().and_then(Requester::poll_event),
                    _ => self.target.as_mut().and_then(Target::poll_event),
                };
                let Some(e) = e else { break };
                any = true;
                let at = self.elapsed();
                match who {
                    Who::Requester => self.requester_events.push((at, e)),
                    _ => self.target_events.push((at, e)),
                }
            }
        }
        any
    }

    fn act(&mut self, who: Who, a: Action) {
        match a {
            Action::Resolve {
                attempt,
                name,
                port,
            } => {
                self.resolves += 1;
                let r = self
                    .names
                    .get(&name)
                    .map(|a| {
                        a.iter()
                            .map(|x| SocketAddr::new(x.ip(), port))
                            .collect::<Vec<_>>()
                    })
                    .ok_or(io::ErrorKind::NotFound);
                let at = self.now + Duration::from_millis(5);
                self.schedule(at, Ev::Resolved(who, attempt, r));
            }
            Action::Connect {
                attempt,
                addrs,
                dst_addr,
            } => {
                self.connects.push((who, attempt, self.elapsed()));
                self.connect_addrs.push(addrs.clone());
                self.dst_addrs.insert((who, attempt), dst_addr.clone());
                let a = addrs[0];
                match self
                    .network
                    .get(&a)
                    .copied()
                    .unwrap_or(Dial::Refuse(Duration::ZERO))
                {
                    Dial::Hang => {}
                    Dial::Refuse(d) => {
                        let f = Failure::Connect {
                            addr: a,
                            kind: io::ErrorKind::ConnectionRefused,
                        };
                        let at = self.now + d;
                        self.schedule(at, Ev::Dialed(who, attempt, Err(f)));
                    }
                    Dial::Answer(d) => {
                        let at = self.now + d;
                        self.schedule(at, Ev::Handshake(who, attempt, a, dst_addr));
                    }
                }
            }
            Action::Close { attempt } => {
                self.closed.push((who, attempt));
                // A dial still on its way is dropped with its socket.
                self.queue.retain(|_, ev| {
                    !matches!(ev, Ev::Dialed(w, at, _) | Ev::Resolved(w, at, _) | Ev::Handshake(w, at, ..)
                        if *w == who && *at == attempt)
                });
            }
            _ => {}
        }
    }

    fn handshake(&mut self, who: Who, attempt: AttemptId, a: SocketAddr, dst: String) {
        let now = self.now;
        let decision = if self.own_addrs.contains(&a) {
            match self.requester.as_mut() {
                Some(r) if r.dst_addr() == dst && !r.is_done() => {
                    let d = r.handle_inbound(now, a.port());
                    if d.is_ok() {
                        r.handle_inbound_ready(now);
                    }
                    d
                }
                _ => Err(ReplyCode::NotAllowed),
            }
        } else if self.proxy_addrs.contains(&a) {
            self.next_conn += 1;
            self.proxy.handle_request(now, self.next_conn, &dst)
        } else {
            Err(ReplyCode::GeneralFailure)
        };
        if self.own_addrs.contains(&a) {
            self.inbound.push(decision);
        }
        let r = decision.map_err(|code| Failure::Socks5Reply { addr: a, code });
        self.schedule(now, Ev::Dialed(who, attempt, r));
    }

    fn deliver(&mut self, who: Who, stanza: Stanza) {
        let now = self.now;
        self.delivered.push((who, clone_stanza(&stanza)));
        let back = match who {
            Who::Requester => match self.requester.as_mut() {
                Some(r) => r.handle_stanza(now, stanza),
                None => ControlFlow::Continue(stanza),
            },
            Who::Target => match self.target.as_mut() {
                Some(t) => t.handle_stanza(now, stanza),
                None => ControlFlow::Continue(stanza),
            },
            Who::Proxy => self.proxy.handle_stanza(now, stanza),
        };
        if let ControlFlow::Continue(st) = back
            && let Some(reply) = reply_unexpected_offer(&st)
        {
            self.send(who, reply);
        }
    }

    fn flush_proxy(&mut self) -> bool {
        let mut any = false;
        while let Some(t) = self.proxy.poll_transmit() {
            any = true;
            self.send(Who::Proxy, t);
        }
        while let Some(a) = self.proxy.poll_action() {
            any = true;
            let at = self.elapsed();
            self.proxy_actions.push((at, a));
        }
        any
    }

    fn timeouts(&self) -> Option<Instant> {
        [
            self.requester.as_ref().and_then(Requester::poll_timeout),
            self.target.as_ref().and_then(Target::poll_timeout),
            self.proxy.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// One step: drain outputs, or else advance to the earliest event or timeout and
    /// process everything due then. False when nothing is left.
    pub fn step(&mut self) -> bool {
        let a = self.flush();
        let b = self.flush_proxy();
        if a || b {
            return true;
        }
        let next_ev = self.queue.keys().next().map(|k| k.0);
        let next = match (next_ev, self.timeouts()) {
            (Some(e), Some(t)) => e.min(t),
            (Some(e), None) => e,
            (None, Some(t)) => t,
            (None, None) => return false,
        };
        self.now = self.now.max(next);
        let now = self.now;
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ev = entry.remove();
            match ev {
                Ev::Deliver(who, st) => self.deliver(who, *st),
                Ev::Handshake(who, at, a, dst) => self.handshake(who, at, a, dst),
                Ev::Dialed(who, at, r) => match (who, r) {
                    (Who::Requester, Ok(())) => {
                        if let Some(c) = self.requester.as_mut() {
                            c.handle_connected(now, at);
                        }
                    }
                    (Who::Requester, Err(f)) => {
                        if let Some(c) = self.requester.as_mut() {
                            c.handle_connect_failed(now, at, f);
                        }
                    }
                    (_, Ok(())) => {
                        if let Some(c) = self.target.as_mut() {
                            c.handle_connected(now, at);
                        }
                    }
                    (_, Err(f)) => {
                        if let Some(c) = self.target.as_mut() {
                            c.handle_connect_failed(now, at, f);
                        }
                    }
                },
                Ev::Resolved(who, at, r) => match who {
                    Who::Requester => {
                        if let Some(c) = self.requester.as_mut() {
                            c.handle_resolved(now, at, r);
                        }
                    }
                    _ => {
                        if let Some(c) = self.target.as_mut() {
                            c.handle_resolved(now, at, r);
                        }
                    }
                },
            }
            // Outputs of one input are drained before the next input.
            self.flush();
            self.flush_proxy();
        }
        if let Some(r) = self.requester.as_mut()
            && r.poll_timeout().is_some_and(|t| t <= now)
        {
            r.handle_timeout(now);
        }
        if let Some(t) = self.target.as_mut()
            && t.poll_timeout().is_some_and(|x| x <= now)
        {
            t.handle_timeout(now);
        }
        if self.proxy.poll_timeout().is_some_and(|t| t <= now) {
            self.proxy.handle_timeout(now);
        }
        true
    }

    /// Steps until nothing is left (bounded).
    pub fn drive(&mut self) {
        for _ in 0..100_000 {
            if !self.step() {
                return;
            }
        }
        panic!("simulation did not settle");
    }

    /// Steps until `f` holds (bounded).
    pub fn drive_until(&mut self, mut f: impl FnMut(&Self) -> bool) {
        for _ in 0..100_000 {
            if f(self) || !self.step() {
                return;
            }
        }
        panic!("simulation did not settle");
    }

    /// The error conditions of iq errors delivered to `who`, as (type, condition, text).
    pub fn errors_to(&self, who: Who) -> Vec<(String, String, String)> {
        self.delivered
            .iter()
            .filter(|(w, _)| *w == who)
            .filter_map(|(_, s)| match s {
                Stanza::Iq(Iq::Error { error, .. }) => {
                    let text = error.texts.values().next().cloned().unwrap_or_default();
                    let e: minidom::Element = error.clone().into();
                    let t = e.attr("type").unwrap_or("").to_owned();
                    let c = e
                        .children()
                        .find(|c| {
                            c.ns() == "urn:ietf:params:xml:ns:xmpp-stanzas" && c.name() != "text"
                        })
                        .map(|c| c.name().to_owned())
                        .unwrap_or_default();
                    Some((t, c, text))
                }
                _ => None,
            })
            .collect()
    }

    /// The iq sets delivered to `who` whose payload is `<query/>` with a child named
    /// `child` (or the offer itself, `streamhost`).
    pub fn sets_to(&self, who: Who, child: &str) -> Vec<Iq> {
        self.delivered
            .iter()
            .filter(|(w, _)| *w == who)
            .filter_map(|(_, s)| match s {
                Stanza::Iq(iq @ Iq::Set { payload, .. })
                    if payload.children().any(|c| c.name() == child) =>
                {
                    Some(iq.clone())
                }
                _ => None,
            })
            .collect()
    }
}

pub fn clone_stanza(s: &Stanza) -> Stanza {
    match s {
        Stanza::Iq(i) => Stanza::Iq(i.clone()),
        Stanza::Message(m) => Stanza::Message(m.clone()),
        Stanza::Presence(p) => Stanza::Presence(p.clone()),
    }
}
