//! The target: waits for the offer, races its streamhosts, answers.
//!
//! ```text
//!  Target::new --> Expecting --offer (iq set)--> Racing --first SOCKS5 done--> Done (Connected)
//!                     |                            |    --> streamhost-used, losers closed
//!                     | `within` passes            | all failed / budget spent
//!                     v                            v    --> cancel/item-not-found
//!               Done (Failed Timeout)        Done (Failed NoStreamHost)
//! ```
//!
//! A UDP offer is answered `modify/not-acceptable` and fails the session; a second offer
//! for the same sid while racing is answered `cancel/unexpected-request`.

use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};
use std::{collections::VecDeque, io};

use jid::Jid;
use minidom::Element;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use super::error_reply;
use super::{Action, Attempt, AttemptId, Event, Failure, IncomingOffer, Outcome, Refusal, Via};
use crate::error::{Error, ProtocolError, stanza_error};
use crate::payload::{Mode, StreamHostUsed};
use crate::{Config, Host, Sid, StreamHost, dst_addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    NotStarted,
    Resolving { deadline: Instant },
    Connecting { deadline: Instant },
    Finished,
}

#[derive(Debug)]
struct Slot {
    attempt: Attempt,
    started: Option<Instant>,
    phase: Phase,
}

impl Slot {
    fn running(&self) -> bool {
        matches!(
            self.phase,
            Phase::Resolving { .. } | Phase::Connecting { .. }
        )
    }

    fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Resolving { deadline } | Phase::Connecting { deadline } => Some(deadline),
            _ => None,
        }
    }

    fn finish(&mut self, now: Instant, outcome: Outcome) {
        self.attempt.outcome = outcome;
        self.attempt.duration = self
            .started
            .map(|s| now.saturating_duration_since(s))
            .unwrap_or_default();
        self.phase = Phase::Finished;
    }
}

#[derive(Debug)]
struct Race {
    /// The offer's iq (answered at the end); `None` when racing candidates that came
    /// another way ([`Target::race`]).
    offer_iq: Option<Iq>,
    hash: String,
    slots: Vec<Slot>,
    next: usize,
    next_at: Instant,
    deadline: Instant,
}

#[derive(Debug)]
enum State {
    Expecting { deadline: Instant, within: Duration },
    Racing(Box<Race>),
    Done,
}

/// The target of one bytestream: `sid` from `peer`. See the [module docs](super) for the
/// run loop.
#[derive(Debug)]
pub struct Target {
    config: Config,
    me: Jid,
    peer: Jid,
    sid: Sid,
    state: State,
    transmits: VecDeque<Stanza>,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
}

impl Target {
    /// Authorises `sid` from `peer` (we are `me`): the offer must come within `within`.
    pub fn new(
        config: &Config,
        me: Jid,
        peer: Jid,
        sid: Sid,
        now: Instant,
        within: Duration,
    ) -> Self {
        Self {
            config: config.clone(),
            me,
            peer,
            sid,
            state: State::Expecting {
                deadline: now + within,
                within,
            },
            transmits: VecDeque::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The peer (requester).
    pub fn peer(&self) -> &Jid {
        &self.peer
    }

    /// The sid.
    pub fn sid(&self) -> &Sid {
        &self.sid
    }

    /// Whether the offer arrived and is being raced.
    pub fn is_racing(&self) -> bool {
        matches!(self.state, State::Racing(_))
    }

    /// Whether the session is over.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The DST.ADDR, once the offer arrived.
    pub fn dst_addr(&self) -> Option<&str> {
        match &self.state {
            State::Racing(r) => Some(&r.hash),
            _ => None,
        }
    }

    /// Takes the peer's offer for our sid; hands back everything else.
    pub fn handle_stanza(&mut self, now: Instant, stanza: Stanza) -> ControlFlow<(), Stanza> {
        let inc = match IncomingOffer::parse(&stanza) {
            Some(Ok(inc)) if inc.from == self.peer && inc.offer.sid == self.sid => inc,
            _ => return ControlFlow::Continue(stanza),
        };
        let Stanza::Iq(iq) = stanza else {
            return ControlFlow::Continue(stanza);
        };
        match self.state {
            State::Expecting { .. } => self.start(now, iq, inc),
            State::Racing(_) => {
                let e = stanza_error(ErrorType::Cancel, DefinedCondition::UnexpectedRequest);
                self.transmits.push_back(error_reply(&iq, e));
            }
            State::Done => return ControlFlow::Continue(Stanza::Iq(iq)),
        }
        ControlFlow::Break(())
    }

    fn start(&mut self, now: Instant, iq: Iq, inc: IncomingOffer) {
        if inc.offer.mode == Mode::Udp {
            let e = ProtocolError::UdpNotSupported;
            self.transmits
                .push_back(error_reply(&iq, StanzaError::from(&e)));
            self.fail(Error::Protocol(e));
            return;
        }
        // The offer's `dstaddr` (XEP-0065 §6, for MUC occupants, which we never address) is
        // ignored: a requester could otherwise make us present another session's hash at a
        // proxy (BAD-INPUT C6). DST.ADDR is always computed from the iq's JIDs.
        let hash = dst_addr(&inc.offer.sid, &inc.from, &self.me);
        self.start_race(now, Some(iq), hash, &inc.offer.streamhosts);
    }

    /// Races `streamhosts` (in this order, the first [`Config::max_candidates`]) with
    /// `dst_addr` at once, without an offer iq: for transports that carry the candidates
    /// another way (XEP-0260 Jingle SOCKS5). The stagger, the budget, the dial policy and
    /// the blacklist of `config` apply as for an offer; no stanza is ever transmitted, the
    /// outcome is the `Connected` or `Failed` event (with `Via::Attempt(i)`, `i` the
    /// index in `streamhosts`).
    pub fn race(
        config: &Config,
        me: Jid,
        peer: Jid,
        sid: Sid,
        dst_addr: String,
        streamhosts: &[StreamHost],
        now: Instant,
    ) -> Self {
        let mut t = Self::new(config, me, peer, sid, now, config.connect_budget);
        t.start_race(now, None, dst_addr, streamhosts);
        t
    }

    fn start_race(
        &mut self,
        now: Instant,
        offer_iq: Option<Iq>,
        hash: String,
        streamhosts: &[StreamHost],
    ) {
        // Only the first few, in the requester's order (BAD-INPUT C2, I3).
        let slots = streamhosts
            .iter()
            .take(self.config.max_candidates.max(1))
            .map(|sh| Slot {
                attempt: Attempt {
                    streamhost: sh.clone(),
                    outcome: Outcome::NotTried,
                    duration: Duration::ZERO,
                },
                started: None,
                phase: Phase::NotStarted,
            })
            .collect();
        self.state = State::Racing(Box::new(Race {
            offer_iq,
            hash,
            slots,
            next: 0,
            next_at: now,
            deadline: now + self.config.connect_budget,
        }));
        self.advance(now);
    }

    fn fail(&mut self, e: Error) {
        self.state = State::Done;
        self.events.push_back(Event::Failed(e));
    }

    /// Starts every attempt that is due, and ends the race when nothing is left.
    fn advance(&mut self, now: Instant) {
        let State::Racing(race) = &mut self.state else {
            return;
        };
        while race.next < race.slots.len()
            && (now >= race.next_at || !race.slots.iter().any(Slot::running))
        {
            let i = race.next;
            race.next += 1;
            race.next_at = now + self.config.stagger;
            let slot = &mut race.slots[i];
            slot.started = Some(now);
            let deadline = (now + self.config.handshake_timeout).min(race.deadline);
            let sh = slot.attempt.streamhost.clone();
            if self.config.blacklist.is_blocked(&sh.host, sh.port, now) {
                slot.finish(now, Outcome::Refused(Refusal::Blacklisted));
                continue;
            }
            match &sh.host {
                Host::Ip(ip) => {
                    let addr = SocketAddr::new(*ip, sh.port);
                    if self.config.dial_policy.allows(&self.peer, &sh, &addr) {
                        slot.phase = Phase::Connecting { deadline };
                        self.actions.push_back(Action::Connect {
                            attempt: AttemptId(i),
                            addrs: vec![addr],
                            dst_addr: race.hash.clone(),
                        });
                    } else {
                        slot.finish(now, Outcome::Refused(Refusal::DialPolicy));
                    }
                }
                Host::Name(n) => {
                    slot.phase = Phase::Resolving { deadline };
                    self.actions.push_back(Action::Resolve {
                        attempt: AttemptId(i),
                        name: n.clone(),
                        port: sh.port,
                    });
                }
            }
        }
        if race.next >= race.slots.len() && !race.slots.iter().any(Slot::running) {
            self.give_up(None);
        }
    }

    /// Answers `cancel/item-not-found` (with one reason per streamhost, or `text`) and
    /// closes every running attempt.
    fn give_up(&mut self, text: Option<&str>) {
        let State::Racing(race) = std::mem::replace(&mut self.state, State::Done) else {
            return;
        };
        for (i, s) in race.slots.iter().enumerate() {
            if s.running() {
                self.actions.push_back(Action::Close {
                    attempt: AttemptId(i),
                });
            }
        }
        let attempts: Vec<Attempt> = race.slots.into_iter().map(|s| s.attempt).collect();
        // The peer learns that nothing worked, not why each streamhost failed: per-host
        // reasons would make one offer a port scan of our network (BAD-INPUT C3). They go
        // to the application in `Error::NoStreamHost`.
        let reasons = text.unwrap_or("no streamhost could be reached").to_owned();
        let mut err = stanza_error(ErrorType::Cancel, DefinedCondition::ItemNotFound);
        err.texts.insert(String::from("en"), reasons);
        if let Some(iq) = &race.offer_iq {
            self.transmits.push_back(error_reply(iq, err));
        }
        if text.is_none() {
            self.events
                .push_back(Event::Failed(Error::NoStreamHost(attempts)));
        }
    }

    /// The application gives up (cancelled, or took another method): while racing, the
    /// offer is answered `cancel/item-not-found` now, so the requester does not wait out
    /// its budget, and every attempt is closed. No event follows.
    pub fn cancel(&mut self, now: Instant) {
        let _ = now;
        match self.state {
            State::Racing(_) => self.give_up(Some("the target gave up")),
            _ => self.state = State::Done,
        }
    }

    fn slot(&mut self, attempt: AttemptId) -> Option<&mut Slot> {
        match &mut self.state {
            State::Racing(r) => r.slots.get_mut(attempt.0).filter(|s| s.running()),
            _ => None,
        }
    }

    /// The resolver answered for `attempt` (`Err`: its error kind).
    pub fn handle_resolved(
        &mut self,
        now: Instant,
        attempt: AttemptId,
        addrs: Result<Vec<SocketAddr>, io::ErrorKind>,
    ) {
        let peer = self.peer.clone();
        let policy = self.config.dial_policy.clone();
        let Some(slot) = self.slot(attempt) else {
            return;
        };
        let Phase::Resolving { deadline } = slot.phase else {
            return;
        };
        let sh = slot.attempt.streamhost.clone();
        let name = sh.host.to_string();
        match addrs {
            Err(kind) => {
                slot.finish(now, Outcome::Failed(Failure::Resolve { name, kind }));
                self.config.blacklist.record_failure(&sh.host, sh.port, now);
            }
            Ok(a) if a.is_empty() => {
                slot.finish(now, Outcome::Failed(Failure::NoAddress { name }));
                self.config.blacklist.record_failure(&sh.host, sh.port, now);
            }
            Ok(a) => {
                let allowed: Vec<SocketAddr> = a
                    .into_iter()
                    .filter(|a| policy.allows(&peer, &sh, a))
                    .collect();
                if allowed.is_empty() {
                    slot.finish(now, Outcome::Refused(Refusal::DialPolicy));
                } else {
                    slot.phase = Phase::Connecting { deadline };
                    let State::Racing(race) = &self.state else {
                        return;
                    };
                    self.actions.push_back(Action::Connect {
                        attempt,
                        addrs: allowed,
                        dst_addr: race.hash.clone(),
                    });
                }
            }
        }
        self.advance(now);
    }

    /// `attempt` completed its SOCKS5 handshake: the first one wins. A late one (already
    /// lost or timed out) is closed.
    pub fn handle_connected(&mut self, now: Instant, attempt: AttemptId) {
        let won = self
            .slot(attempt)
            .is_some_and(|s| matches!(s.phase, Phase::Connecting { .. }));
        if !won {
            self.actions.push_back(Action::Close { attempt });
            return;
        }
        let State::Racing(mut race) = std::mem::replace(&mut self.state, State::Done) else {
            return;
        };
        for (i, s) in race.slots.iter_mut().enumerate() {
            if i == attempt.0 {
                s.finish(now, Outcome::Won);
            } else if s.running() {
                s.finish(now, Outcome::Lost);
                self.actions.push_back(Action::Close {
                    attempt: AttemptId(i),
                });
            }
        }
        let streamhost = race.slots[attempt.0].attempt.streamhost.clone();
        self.config
            .blacklist
            .record_success(&streamhost.host, streamhost.port);
        let used = StreamHostUsed {
            sid: Some(self.sid.clone()),
            jid: streamhost.jid.clone(),
        };
        if let Some(iq) = &race.offer_iq {
            self.transmits.push_back(Stanza::Iq(Iq::Result {
                from: None,
                to: iq.from().cloned(),
                id: iq.id().to_owned(),
                payload: Some(Element::from(&used)),
            }));
        }
        self.events.push_back(Event::Connected {
            via: Via::Attempt(attempt),
            streamhost,
            attempts: race.slots.into_iter().map(|s| s.attempt).collect(),
        });
    }

    /// `attempt` failed (every address of it).
    pub fn handle_connect_failed(&mut self, now: Instant, attempt: AttemptId, failure: Failure) {
        let blacklist = self.config.blacklist.clone();
        let Some(slot) = self.slot(attempt) else {
            return;
        };
        // A refusal in SOCKS5 does not count: see `Blacklist`.
        if matches!(
            failure,
            Failure::Connect { .. } | Failure::HandshakeTimeout(_)
        ) {
            let sh = &slot.attempt.streamhost;
            blacklist.record_failure(&sh.host, sh.port, now);
        }
        slot.finish(now, Outcome::Failed(failure));
        self.advance(now);
    }

    /// The next instant `handle_timeout` is due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Expecting { deadline, .. } => Some(*deadline),
            State::Racing(r) => {
                let stagger = (r.next < r.slots.len()).then_some(r.next_at);
                r.slots
                    .iter()
                    .filter_map(Slot::deadline)
                    .chain(stagger)
                    .chain([r.deadline])
                    .min()
            }
            State::Done => None,
        }
    }

    /// Fires what is due: the offer's deadline, attempts' handshake timeouts, the next
    /// staggered start, the budget.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &mut self.state {
            State::Expecting { deadline, within } => {
                if *deadline <= now {
                    let within = *within;
                    self.fail(Error::Timeout(within));
                }
            }
            State::Racing(race) => {
                if race.deadline <= now {
                    let budget = self.config.connect_budget;
                    for (i, s) in race.slots.iter_mut().enumerate() {
                        if s.running() {
                            s.finish(now, Outcome::Failed(Failure::BudgetExhausted(budget)));
                            self.actions.push_back(Action::Close {
                                attempt: AttemptId(i),
                            });
                        }
                    }
                    self.give_up(None);
                    return;
                }
                let hs = self.config.handshake_timeout;
                for (i, s) in race.slots.iter_mut().enumerate() {
                    if s.deadline().is_some_and(|d| d <= now) {
                        let sh = &s.attempt.streamhost;
                        self.config.blacklist.record_failure(&sh.host, sh.port, now);
                        s.finish(now, Outcome::Failed(Failure::HandshakeTimeout(hs)));
                        self.actions.push_back(Action::Close {
                            attempt: AttemptId(i),
                        });
                    }
                }
                self.advance(now);
            }
            State::Done => {}
        }
    }

    /// The next stanza to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Stanza> {
        self.transmits.pop_front()
    }

    /// The next socket action.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default config, but dialling the documentation addresses these tests offer
    /// (which the default policy refuses).
    fn test_config() -> Config {
        let mut c = Config::default();
        c.dial_policy(crate::DialPolicy::allow_all());
        c
    }

    fn offer_stanza() -> Stanza {
        Stanza::Iq(Iq::Set {
            from: Some("alice@example.org/a".parse().unwrap()),
            to: Some("bob@example.org/b".parse().unwrap()),
            id: "o1".into(),
            payload: "<query xmlns='http://jabber.org/protocol/bytestreams' sid='s1'>\
                <streamhost jid='p1.example.org' host='192.0.2.1' port='1'/>\
                <streamhost jid='p2.example.org' host='192.0.2.2' port='2'/></query>"
                .parse()
                .unwrap(),
        })
    }

    fn racing(now: Instant) -> Target {
        let mut t = Target::new(
            &test_config(),
            "bob@example.org/b".parse().unwrap(),
            "alice@example.org/a".parse().unwrap(),
            Sid::new("s1").unwrap(),
            now,
            Duration::from_secs(60),
        );
        assert!(t.handle_stanza(now, offer_stanza()).is_break());
        t
    }

    #[test]
    fn a_second_offer_for_the_sid_while_racing_is_unexpected_request() {
        let now = Instant::now();
        let mut t = racing(now);
        assert!(t.handle_stanza(now, offer_stanza()).is_break());
        let Some(Stanza::Iq(Iq::Error { error, .. })) = t.poll_transmit() else {
            panic!()
        };
        assert_eq!(error.defined_condition, DefinedCondition::UnexpectedRequest);
        assert!(t.is_racing());
    }

    #[test]
    fn a_handshake_completing_after_the_winner_is_closed() {
        let now = Instant::now();
        let mut t = racing(now);
        t.handle_timeout(now + Duration::from_millis(250));
        let actions: Vec<_> = std::iter::from_fn(|| t.poll_action()).collect();
        assert_eq!(actions.len(), 2, "{actions:?}");
        t.handle_connected(now + Duration::from_millis(300), AttemptId(1));
        assert!(matches!(t.poll_event(), Some(Event::Connected { .. })));
        assert_eq!(
            t.poll_action(),
            Some(Action::Close {
                attempt: AttemptId(0)
            })
        );
        // Attempt 0's socket completes anyway: it is closed, nothing else happens.
        t.handle_connected(now + Duration::from_millis(400), AttemptId(0));
        assert_eq!(
            t.poll_action(),
            Some(Action::Close {
                attempt: AttemptId(0)
            })
        );
        assert!(t.poll_event().is_none());
        assert!(t.is_done());
    }

    #[test]
    fn an_offer_from_another_jid_or_for_another_sid_is_not_ours() {
        let now = Instant::now();
        let mut t = Target::new(
            &test_config(),
            "bob@example.org/b".parse().unwrap(),
            "carol@example.org/c".parse().unwrap(),
            Sid::new("s1").unwrap(),
            now,
            Duration::from_secs(60),
        );
        assert!(t.handle_stanza(now, offer_stanza()).is_continue());
        assert!(!t.is_racing());
    }

    #[test]
    fn a_race_without_an_offer_dials_with_the_given_hash_and_transmits_nothing() {
        let now = Instant::now();
        let sh = |h: &str| {
            StreamHost::new(
                "p.example.org".parse().unwrap(),
                h.parse::<std::net::IpAddr>().unwrap(),
                1,
            )
        };
        let mut t = Target::race(
            &test_config(),
            "bob@example.org/b".parse().unwrap(),
            "alice@example.org/a".parse().unwrap(),
            Sid::new("s1").unwrap(),
            "ab".repeat(20),
            &[sh("192.0.2.1"), sh("192.0.2.2")],
            now,
        );
        assert!(t.is_racing());
        let Some(Action::Connect { dst_addr, .. }) = t.poll_action() else {
            panic!()
        };
        assert_eq!(dst_addr, "ab".repeat(20));
        t.handle_connect_failed(now, AttemptId(0), Failure::HandshakeTimeout(Duration::ZERO));
        t.handle_connected(now, AttemptId(1));
        assert!(matches!(
            t.poll_event(),
            Some(Event::Connected {
                via: Via::Attempt(AttemptId(1)),
                ..
            })
        ));
        assert!(t.poll_transmit().is_none());
    }
}
