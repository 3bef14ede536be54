//! A deterministic two-peer simulation: two sans-IO sides, a virtual clock, latency,
//! ack reordering and a filter standing in for a server on the way.
#![allow(dead_code, unreachable_pub)]

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use jid::Jid;
use xep0047_ibb::{
    Config, Event, OpenOptions, Session, Sid,
    proto::{IncomingOpen, reply_unknown_session},
};
use xmpp_parsers::{iq::Iq, message::Message, stanza::Stanza};

pub mod inject;

/// A stanza filter: `Some(reply)` drops the stanza and sends `reply` back to its sender.
pub type Filter = Box<dyn FnMut(&Stanza) -> Option<Stanza>>;

pub struct Side {
    pub jid: Jid,
    pub config: Config,
    pub session: Option<Session>,
    /// Accept incoming opens (after the block-size check).
    pub accept: bool,
    /// Read everything that arrives into `read`.
    pub auto_read: bool,
    pub read: Vec<u8>,
    pub read_error: Option<xep0047_ibb::Error>,
    pub events: Vec<Event>,
    /// Every stanza delivered to this side, if `log` is set.
    pub log: bool,
    pub received: Vec<Stanza>,
    /// Bytes still to write, fed as the send buffer frees.
    pub to_write: Vec<u8>,
    pub close_after_write: bool,
    /// Hand chunks to the session decoded ahead (`proto::decode_ahead`), as the tokio
    /// driver does, instead of letting it decode them.
    pub decode_ahead: bool,
}

impl Side {
    fn new(jid: &str) -> Self {
        let mut config = Config::default();
        config.idle_timeout(None);
        Self {
            jid: jid.parse().unwrap(),
            config,
            session: None,
            accept: true,
            auto_read: true,
            read: Vec::new(),
            read_error: None,
            events: Vec::new(),
            log: true,
            received: Vec::new(),
            to_write: Vec::new(),
            close_after_write: false,
            decode_ahead: false,
        }
    }

    pub fn s(&mut self) -> &mut Session {
        self.session.as_mut().expect("no session")
    }

    /// Queues bytes for writing, and closes once all are taken if `close` is set.
    pub fn write(&mut self, bytes: &[u8], close: bool) {
        self.to_write.extend_from_slice(bytes);
        self.close_after_write = close;
    }

    fn pump_user(&mut self) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        if !self.to_write.is_empty()
            && let Ok(n) = s.send(&self.to_write)
        {
            self.to_write.drain(..n);
        }
        if self.to_write.is_empty() && self.close_after_write {
            s.close();
        }
        if self.auto_read {
            let mut buf = [0u8; 65536];
            loop {
                match s.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => self.read.extend_from_slice(&buf[..n]),
                    Err(e) => {
                        self.read_error = Some(e);
                        break;
                    }
                }
            }
        }
    }

    /// The stanzas this side received that carry an error, as (type, condition).
    pub fn errors_received(&self) -> Vec<(String, String)> {
        self.received
            .iter()
            .filter_map(|s| {
                let e = match s {
                    Stanza::Iq(Iq::Error { error, .. }) => error.clone(),
                    Stanza::Message(m) => m
                        .payloads
                        .iter()
                        .find(|p| p.name() == "error")
                        .and_then(|p| {
                            xmpp_parsers::stanza_error::StanzaError::try_from(p.clone()).ok()
                        })?,
                    _ => return None,
                };
                let elem: minidom::Element = e.into();
                let t = elem.attr("type").unwrap_or("").to_owned();
                let c = elem
                    .children()
                    .find(|c| c.ns() == "urn:ietf:params:xml:ns:xmpp-stanzas")
                    .map(|c| c.name().to_owned())
                    .unwrap_or_default();
                Some((t, c))
            })
            .collect()
    }

    /// How many `<close/>` this side received.
    pub fn closes_received(&self) -> usize {
        self.received
            .iter()
            .filter(
                |s| matches!(s, Stanza::Iq(Iq::Set { payload, .. }) if payload.name() == "close"),
            )
            .count()
    }
}

struct InTransit {
    at: Instant,
    order: u64,
    to_b: bool,
    stanza: Stanza,
}

/// Says which stanzas a peer ignores without an answer.
pub type Swallow = Box<dyn FnMut(&Stanza) -> bool>;

pub struct Pair {
    pub a: Side,
    pub b: Side,
    pub now: Instant,
    pub latency: Duration,
    /// When set, each direction is a serial link instead of `latency`: a stanza arrives
    /// this long after the later of its sending and the arrival of the one before it the
    /// same way (a server that relays one stanza at a time, at a cost that depends on what
    /// it carries). Order is kept, as on a stream.
    pub latency_of: Option<fn(&Stanza) -> Duration>,
    /// The latest arrival scheduled in each direction (to a, to b), for `latency_of`.
    last_at: [Option<Instant>; 2],
    /// Hold iq results (acks) back by a pseudo-random extra delay up to this, reordering them.
    pub ack_jitter: Duration,
    /// Drop every stanza from a to b (a dead link).
    pub drop_a_to_b: bool,
    pub filter_a_to_b: Option<Filter>,
    /// Drop the stanzas from a to b for which this says `true`, answering nothing (a peer
    /// that ignores them, as libpurple ignores an IBB `<close/>`).
    pub swallow_a_to_b: Option<Swallow>,
    transit: Vec<InTransit>,
    order: u64,
    rng: u64,
    pub steps: u64,
}

impl Default for Pair {
    fn default() -> Self {
        Self::new()
    }
}

impl Pair {
    pub fn new() -> Self {
        Self {
            a: Side::new("romeo@montague.net/orchard"),
            b: Side::new("juliet@capulet.com/balcony"),
            now: Instant::now(),
            latency: Duration::from_millis(10),
            latency_of: None,
            last_at: [None; 2],
            ack_jitter: Duration::ZERO,
            drop_a_to_b: false,
            filter_a_to_b: None,
            swallow_a_to_b: None,
            transit: Vec::new(),
            order: 0,
            rng: 0x9E37_79B9_7F4A_7C15,
            steps: 0,
        }
    }

    fn rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// a opens `sid` to b.
    pub fn open(&mut self, sid: &str, options: OpenOptions) {
        let s = Session::new_initiator(
            &self.a.config,
            Sid::new(sid).unwrap(),
            self.b.jid.clone(),
            options,
            self.now,
        )
        .unwrap();
        self.a.session = Some(s);
    }

    /// Opens and drives until established.
    pub fn established(options: OpenOptions) -> Self {
        let mut p = Self::new();
        p.open("i781hf64", options);
        p.drive();
        assert!(p.a.s().is_open());
        p
    }

    /// Delivers a hand-made stanza to b as if a had sent it.
    pub fn inject_to_b(&mut self, stanza: Stanza) {
        self.send(true, stanza);
    }

    /// Delivers a hand-made stanza to a as if b had sent it.
    pub fn inject_to_a(&mut self, stanza: Stanza) {
        self.send(false, stanza);
    }

    fn send(&mut self, to_b: bool, mut stanza: Stanza) {
        let from = if to_b { &self.a.jid } else { &self.b.jid }.clone();
        match &mut stanza {
            Stanza::Iq(iq) => *iq.from_mut() = Some(from),
            Stanza::Message(m) => m.from = Some(from),
            Stanza::Presence(p) => p.from = Some(from),
        }
        if to_b {
            if self.drop_a_to_b {
                return;
            }
            if let Some(f) = self.swallow_a_to_b.as_mut()
                && f(&stanza)
            {
                return;
            }
            if let Some(f) = self.filter_a_to_b.as_mut()
                && let Some(reply) = f(&stanza)
            {
                self.send(false, reply);
                return;
            }
        }
        let mut at = self.now + self.latency;
        if let Some(f) = self.latency_of {
            let last = &mut self.last_at[usize::from(to_b)];
            at = last.map_or(self.now, |l| l.max(self.now)) + f(&stanza);
            *last = Some(at);
        }
        if matches!(stanza, Stanza::Iq(Iq::Result { .. })) && !self.ack_jitter.is_zero() {
            let j = self.rand() % (self.ack_jitter.as_micros() as u64 + 1);
            at += Duration::from_micros(j);
        }
        self.order += 1;
        self.transit.push(InTransit {
            at,
            order: self.order,
            to_b,
            stanza,
        });
    }

    fn flush_side(&mut self, b: bool) -> bool {
        let side = if b { &mut self.b } else { &mut self.a };
        side.pump_user();
        let mut out = Vec::new();
        if let Some(s) = side.session.as_mut() {
            while let Some(st) = s.poll_transmit() {
                out.push(st);
            }
            while let Some(e) = s.poll_event() {
                if !matches!(e, Event::Readable | Event::Writable) {
                    side.events.push(e);
                }
            }
        }
        let any = !out.is_empty();
        for st in out {
            self.send(!b, st);
        }
        any
    }

    fn deliver(&mut self, to_b: bool, stanza: Stanza) {
        let now = self.now;
        let side = if to_b { &mut self.b } else { &mut self.a };
        if side.log {
            side.received.push(clone_stanza(&stanza));
        }
        let ahead = side
            .session
            .as_ref()
            .filter(|_| side.decode_ahead)
            .and_then(|s| {
                xep0047_ibb::proto::decode_ahead(&stanza, s.sid(), s.block_size(), Vec::new)
            });
        let stanza = match side.session.as_mut() {
            Some(s) => match match ahead {
                Some(d) => s.handle_stanza_decoded(now, stanza, d),
                None => s.handle_stanza(now, stanza),
            } {
                ControlFlow::Break(()) => return,
                ControlFlow::Continue(st) => st,
            },
            None => stanza,
        };
        let reply = match IncomingOpen::parse(&stanza) {
            Some(Ok(inc)) => {
                if side.session.is_some() {
                    Some(inc.reject((&xep0047_ibb::ProtocolError::DuplicateSid).into()))
                } else if let Err(e) = inc.check(&side.config) {
                    Some(inc.reject((&e).into()))
                } else if side.accept {
                    side.session = Some(Session::accept(&side.config, &inc, now));
                    None
                } else {
                    Some(inc.reject(xmpp_parsers::stanza_error::StanzaError::new(
                        xmpp_parsers::stanza_error::ErrorType::Cancel,
                        xmpp_parsers::stanza_error::DefinedCondition::NotAcceptable,
                        "en",
                        "",
                    )))
                }
            }
            Some(Err(reply)) => Some(reply),
            None => reply_unknown_session(&stanza),
        };
        if let Some(r) = reply {
            self.send(!to_b, r);
        }
    }

    /// One step: flush both sides, then deliver everything due at the earliest instant
    /// (or fire timeouts). Returns false when idle.
    pub fn step(&mut self) -> bool {
        self.step_inner(true)
    }

    fn step_inner(&mut self, timers: bool) -> bool {
        self.steps += 1;
        let a = self.flush_side(false);
        let b = self.flush_side(true);
        if a || b {
            return true;
        }
        let next_msg = self.transit.iter().map(|t| t.at).min();
        let next_timeout = [&self.a, &self.b]
            .iter()
            .filter_map(|s| s.session.as_ref().and_then(Session::poll_timeout))
            .filter(|_| timers)
            .min();
        let next = match (next_msg, next_timeout) {
            (Some(m), Some(t)) => m.min(t),
            (Some(m), None) => m,
            (None, Some(t)) => t,
            (None, None) => return false,
        };
        self.now = self.now.max(next);
        let now = self.now;
        let mut due: Vec<InTransit> = Vec::new();
        let mut i = 0;
        while i < self.transit.len() {
            if self.transit[i].at <= now {
                due.push(self.transit.swap_remove(i));
            } else {
                i += 1;
            }
        }
        due.sort_by_key(|t| (t.at, t.order));
        for t in due {
            self.deliver(t.to_b, t.stanza);
        }
        for side in [&mut self.a, &mut self.b] {
            if let Some(s) = side.session.as_mut()
                && s.poll_timeout().is_some_and(|t| t <= now)
            {
                s.handle_timeout(now);
            }
        }
        true
    }

    /// Steps until idle (bounded).
    pub fn drive(&mut self) {
        for _ in 0..10_000_000 {
            if !self.step() {
                return;
            }
        }
        panic!("simulation did not settle");
    }

    /// Steps until nothing is in transit, without firing timers (so a stalled window
    /// stays stalled instead of timing out).
    pub fn settle(&mut self) {
        for _ in 0..10_000_000 {
            if !self.step_inner(false) {
                return;
            }
        }
        panic!("simulation did not settle");
    }

    /// Steps until `f` holds (bounded).
    pub fn drive_until(&mut self, mut f: impl FnMut(&mut Self) -> bool) {
        for _ in 0..10_000_000 {
            if f(self) || !self.step() {
                return;
            }
        }
        panic!("simulation did not settle");
    }
}

pub fn iq_set(id: &str, to: &Jid, xml: &str) -> Stanza {
    Stanza::Iq(Iq::Set {
        from: None,
        to: Some(to.clone()),
        id: id.into(),
        payload: xml.parse().unwrap(),
    })
}

pub fn message_with(to: &Jid, xml: &str) -> Stanza {
    let mut m = Message::new(Some(to.clone()));
    m.payloads.push(xml.parse().unwrap());
    Stanza::Message(m)
}

pub fn clone_stanza(s: &Stanza) -> Stanza {
    match s {
        Stanza::Iq(i) => Stanza::Iq(i.clone()),
        Stanza::Message(m) => Stanza::Message(m.clone()),
        Stanza::Presence(p) => Stanza::Presence(p.clone()),
    }
}

/// The bytes every simulated transfer sends.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + i / 251) as u8).collect()
}

/// An iq-mode open at `block_size`.
pub fn iq_opts(block_size: u16) -> OpenOptions {
    OpenOptions {
        block_size,
        stanza: xep0047_ibb::StanzaKind::Iq,
    }
}

/// A message-mode open at `block_size`.
pub fn msg_opts(block_size: u16) -> OpenOptions {
    OpenOptions {
        block_size,
        stanza: xep0047_ibb::StanzaKind::Message,
    }
}
