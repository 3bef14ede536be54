//! The sans-IO negotiation of one XEP-0260 transport (one content of one Jingle session),
//! for either role.
//!
//! ```text
//!  new(role, our candidates) --Accept{our hash}--> (driver routes inbound SOCKS5 by DST.ADDR)
//!   local_transport() --> session-initiate / session-accept (the Jingle layer sends it)
//!   handle_transport(peer's candidates) --> race the first 8 by priority (the XEP-0065
//!       target's race: stagger, budget, dial policy) with SHA1(sid + peer + us)
//!   race won  --> transport-info <candidate-used cid/>     (ours := Used)
//!   race lost --> transport-info <candidate-error/>        (ours := Error)
//!   handle_transport(<candidate-used/> | <candidate-error/>)  (theirs := ...)
//!   both known --> nomination: higher priority wins; equal: the initiator's choice
//!     peer's direct   --> Connected(Via::Attempt)      our inbound closed
//!     our direct      --> Connected(Via::Inbound)      our outbound closed
//!     peer's proxy    --> wait for <activated cid/>    --> Connected(Via::Attempt)
//!     our proxy       --> ConnectProxy, <activate/> iq to the proxy, result
//!                         --> transport-info <activated cid/>, Connected(Via::Proxy)
//!     both errors     --> Failed(NoCandidate): the application falls back (IBB)
//! ```
//!
//! The run loop is the one of `xep0065_s5b::proto`: after every input, drain
//! [`poll_action`](Negotiation::poll_action) (before the transmits, so that the listener
//! knows our DST.ADDR before the peer can dial it), then
//! [`poll_transmit`](Negotiation::poll_transmit), read
//! [`poll_timeout`](Negotiation::poll_timeout), drain [`poll_event`](Negotiation::poll_event).

mod nominate;
mod race;
mod redial;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use jid::Jid;
use xep0065_s5b::proto::{AttemptId, Target};
use xep0065_s5b::{Attempt, Config, Sid, dst_addr};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jingle_s5b::{Transport, TransportPayload};

use crate::candidate::{Candidate, Incoming, LocalCandidates, Payload, transport};
use crate::error::{Error, InputError};

/// Which side of the Jingle session we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We sent session-initiate.
    Initiator,
    /// We answer it.
    Responder,
}

/// Socket work for the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Route inbound SOCKS5 connections with this DST.ADDR to [`Negotiation::handle_inbound`].
    Accept {
        /// The DST.ADDR (SHA1(sid + us + peer)).
        dst_addr: String,
    },
    /// Stop routing them; close the inbound connection unless `Connected` names
    /// [`Via::Inbound`].
    StopAccepting {
        /// The DST.ADDR.
        dst_addr: String,
    },
    /// Resolve a peer candidate's host name; answer with `handle_resolved`.
    Resolve {
        /// The attempt.
        attempt: AttemptId,
        /// The name.
        name: String,
        /// The port.
        port: u16,
    },
    /// Connect to these addresses in turn and run the SOCKS5 client handshake; answer
    /// `handle_connected` or `handle_connect_failed`.
    Connect {
        /// The attempt.
        attempt: AttemptId,
        /// Already allowed by the dial policy.
        addrs: Vec<SocketAddr>,
        /// The DST.ADDR.
        dst_addr: String,
    },
    /// Close this attempt's socket.
    Close {
        /// The attempt.
        attempt: AttemptId,
    },
    /// Our proxy was nominated: connect to it with this DST.ADDR; answer
    /// `handle_proxy_connected` or `handle_proxy_failed`.
    ConnectProxy {
        /// The proxy's address.
        addr: SocketAddr,
        /// The DST.ADDR (SHA1(sid + us + peer), the one the peer presented).
        dst_addr: String,
    },
    /// Close the connection to our proxy.
    CloseProxy,
}

/// Something to send.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Transmit {
    /// A `transport-info` carrying this transport (same content name and creator as the
    /// session's content; the Jingle layer wraps it).
    TransportInfo(Transport),
    /// The bytestreams `<activate/>` iq set to our proxy; feed its answer to
    /// [`Negotiation::handle_iq`].
    Activate(Box<Iq>),
}

/// Which socket carries the bytestream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Our outbound connection of this attempt (a peer candidate, direct or proxy).
    Attempt(AttemptId),
    /// The inbound connection our listener accepted (our direct candidate).
    Inbound,
    /// Our connection to our own proxy, activated.
    Proxy,
}

/// What the negotiation reports; both end it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// The bytestream is ready for data.
    Connected {
        /// The socket.
        via: Via,
        /// The nominated candidate.
        candidate: Candidate,
        /// Whether we offered it.
        ours: bool,
        /// Our attempts at the peer's candidates.
        attempts: Vec<Attempt>,
    },
    /// Failed: fall back (transport-replace to IBB) or terminate.
    Failed(Error),
}

/// One side's verdict on the other's candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice {
    Pending,
    /// Index into the candidates (ours: the peer's; theirs: ours), and for ours the
    /// attempt that connected.
    Used(usize, Option<AttemptId>),
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Negotiating,
    /// Our direct candidate won; its inbound connection has not completed yet.
    AwaitInbound(usize),
    /// The peer's proxy won; it activates it and tells us.
    AwaitActivated(usize, AttemptId),
    /// Our proxy won: connecting to it.
    ConnectingProxy(usize),
    /// Our proxy won: the activation iq is out.
    Activating(usize, String),
    Done,
}

/// One XEP-0260 negotiation. See the [module docs](self).
#[derive(Debug)]
pub struct Negotiation {
    config: Config,
    role: Role,
    me: Jid,
    peer: Jid,
    sid: Sid,
    local: Vec<Candidate>,
    remote: Option<Vec<Candidate>>,
    /// Race attempt index → index in `remote`.
    order: Vec<usize>,
    race: Option<Target>,
    attempts: Vec<Attempt>,
    ours: Choice,
    theirs: Choice,
    inbound: bool,
    phase: Phase,
    budget: Duration,
    deadline: Option<Instant>,
    transmits: VecDeque<Transmit>,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    redial: redial::Redial,
}

impl Negotiation {
    /// A negotiation of transport `sid` between `me` and `peer` offering `local`. Every
    /// dial follows `config` (its `dial_policy`, `stagger`, `connect_budget`,
    /// `handshake_timeout`, `max_candidates`); `config.id_prefix` prefixes our cids and
    /// iq ids. The budget of the whole negotiation, `connect_budget + iq_timeout`, runs
    /// from the peer's candidates.
    pub fn new(
        config: &Config,
        role: Role,
        me: Jid,
        peer: Jid,
        sid: Sid,
        local: &LocalCandidates,
    ) -> Self {
        let local = local.build(&me, &format!("{}{sid}-c", config.id_prefix));
        let mut n = Self {
            config: config.clone(),
            role,
            me,
            peer,
            sid,
            local,
            remote: None,
            order: Vec::new(),
            race: None,
            attempts: Vec::new(),
            ours: Choice::Pending,
            theirs: Choice::Pending,
            inbound: false,
            phase: Phase::Negotiating,
            budget: config.connect_budget + config.iq_timeout,
            deadline: None,
            transmits: VecDeque::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            redial: redial::Redial::default(),
        };
        if n.local.iter().any(|c| c.kind != crate::Kind::Proxy) {
            n.actions.push_back(Action::Accept {
                dst_addr: n.local_dst_addr(),
            });
        }
        n
    }

    /// Our candidates.
    pub fn local_candidates(&self) -> &[Candidate] {
        &self.local
    }

    /// The peer's candidates (the first [`MAX_PARSED_CANDIDATES`](crate::MAX_PARSED_CANDIDATES)), once known.
    pub fn remote_candidates(&self) -> Option<&[Candidate]> {
        self.remote.as_deref()
    }

    /// The DST.ADDR the peer presents at our candidates: SHA1(sid + us + peer) (XEP-0260
    /// §2.2: the offerer's JID first).
    pub fn local_dst_addr(&self) -> String {
        dst_addr(&self.sid, &self.me, &self.peer)
    }

    /// The DST.ADDR we present at the peer's candidates: SHA1(sid + peer + us).
    pub fn remote_dst_addr(&self) -> String {
        dst_addr(&self.sid, &self.peer, &self.me)
    }

    /// Every DST.ADDR our listener takes for this negotiation: the XEP's
    /// [`local_dst_addr`](Self::local_dst_addr) (SHA1(sid + us + peer)) and the other
    /// order, SHA1(sid + peer + us).
    ///
    /// A Gajim quirk: Gajim 1.7.3 presents SHA1(sid + initiator + responder) at every
    /// candidate it dials, whoever offered it, so as initiator it dials our (the
    /// responder's) candidates with SHA1(sid + peer + us) where XEP-0260 §2.2 says
    /// SHA1(sid + us + peer). Both orders name this negotiation's sid and the same two
    /// JIDs, so accepting both lets no other session in; a hash of another sid or other
    /// JIDs still gets `host unreachable` (REP 04).
    pub fn accepted_dst_addrs(&self) -> [String; 2] {
        [self.local_dst_addr(), self.remote_dst_addr()]
    }

    /// Our transport for session-initiate or session-accept: `sid`, `mode='tcp'`, our
    /// candidates, and `dstaddr` when one of them is a proxy. The responder calls it after
    /// the initiator's candidates: it leaves out any host and port they offered.
    pub fn local_transport(&self) -> Transport {
        let list = self.local.iter().filter_map(Candidate::to_wire).collect();
        let t = transport(self.sid.as_str(), TransportPayload::Candidates(list))
            .with_mode(xmpp_parsers::jingle_s5b::Mode::Tcp);
        if self.local.iter().any(|c| c.kind == crate::Kind::Proxy) {
            t.with_dstaddr(self.local_dst_addr())
        } else {
            t
        }
    }

    /// Whether the negotiation is over.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// A transport element from the peer (session-initiate, session-accept or
    /// transport-info), as `xmpp_parsers` parsed it.
    pub fn handle_transport(&mut self, now: Instant, t: Transport) -> Result<(), InputError> {
        self.handle_element(now, &minidom::Element::from(t))
    }

    /// A transport element from the peer, read with the bounds of [`Incoming::parse`].
    /// `Err`: refused, nothing changed; answer the iq with its `stanza_error()`.
    pub fn handle_element(
        &mut self,
        now: Instant,
        el: &minidom::Element,
    ) -> Result<(), InputError> {
        let inc = Incoming::parse(el)?;
        if inc.sid != self.sid.as_str() {
            return Err(InputError::WrongSid {
                expected: self.sid.to_string(),
                got: inc.sid,
            });
        }
        if self.phase == Phase::Done {
            return Err(InputError::OutOfOrder("transport after the end"));
        }
        match inc.payload {
            Payload::Candidates { list, .. } => self.start(now, list),
            Payload::CandidateUsed(cid) => self.peer_used(now, &cid),
            Payload::CandidateError => self.peer_error(now),
            Payload::Activated(cid) => self.activated(now, &cid),
            Payload::ProxyError => self.proxy_error(now),
        }
    }

    fn start(&mut self, now: Instant, list: Vec<Candidate>) -> Result<(), InputError> {
        if self.remote.is_some() {
            return Err(InputError::OutOfOrder("a second candidate list"));
        }
        // Highest priority first; the offer's order among equals (XEP-0260 §2.3).
        let mut order: Vec<usize> = (0..list.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(list[i].priority));
        order.truncate(self.config.max_candidates.max(1));
        let hosts: Vec<_> = order.iter().map(|&i| list[i].streamhost()).collect();
        if self.role == Role::Responder {
            // XEP-0260 §2.2: the responder offers no host/port the initiator offered (the
            // shared server proxy, typically): both would connect there with different
            // hashes.
            let offered = |c: &Candidate| list.iter().any(|r| r.host == c.host && r.port == c.port);
            self.local.retain(|c| !offered(c));
        }
        self.order = order;
        self.remote = Some(list);
        self.deadline = Some(now + self.budget);
        let race = Target::race(
            &self.config,
            self.me.clone(),
            self.peer.clone(),
            self.sid.clone(),
            self.remote_dst_addr(),
            &hosts,
            now,
        );
        self.race = Some(race);
        self.pump(now);
        Ok(())
    }

    /// The next instant [`handle_timeout`](Self::handle_timeout) is due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_done() {
            return None;
        }
        let race = self.race.as_ref().and_then(Target::poll_timeout);
        race.into_iter()
            .chain(self.deadline)
            .chain(self.redial.next_due())
            .min()
    }

    /// Fires what is due: the race's stagger and timeouts, the budget.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(r) = &mut self.race {
            r.handle_timeout(now);
        }
        self.pump(now);
        self.redial_due(now);
        if !self.is_done() && self.deadline.is_some_and(|d| d <= now) {
            self.fail(now, Error::Timeout(self.budget));
        }
    }

    /// The application gives up: every socket is closed, no event follows.
    pub fn cancel(&mut self, now: Instant) {
        self.close_all(now, None);
        self.phase = Phase::Done;
    }

    /// The next socket action.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next thing to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}
