//! The sans-IO session table: every Jingle session of one local full JID.
//!
//! ```text
//!               initiate()/session-initiate             accept()/session-accept
//!   (none) ───────────────────────────────► PENDING ─────────────────────────► ACTIVE
//!                                             │  pending_timeout: terminate <timeout/>
//!                                             ▼                                 │
//!                                           ENDED ◄──── session-terminate ──────┘
//! ```
//!
//! Run loop: feed inbound iqs to [`Endpoint::handle_iq`] and the clock to
//! [`Endpoint::handle_timeout`] when [`Endpoint::poll_timeout`] is due; issue commands;
//! then drain [`Endpoint::poll_transmit`] (iqs to send) and [`Endpoint::poll_event`].

mod event;
mod incoming;
mod session;

pub use event::{EndCause, Event, RequestError};

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use jid::{FullJid, Jid};
use minidom::Element;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jingle::{Action, Reason, ReasonElement};

use crate::error::Misuse;
use crate::types::{Config, Content, Role, SessionKey, Sid, State};
use crate::wire::{self, Out};
use session::Session;

/// A transport-info the application answers.
#[derive(Debug)]
struct Deferred {
    to: Jid,
    deadline: Instant,
}

/// The most transport-infos waiting for the application's answer at once; more are
/// acknowledged on arrival.
const MAX_DEFERRED: usize = 256;

#[derive(Debug)]
struct Request {
    key: SessionKey,
    action: Action,
    deadline: Instant,
}

/// A snapshot of one session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionInfo {
    /// Our role.
    pub role: Role,
    /// Its state.
    pub state: State,
    /// The initiator's full JID.
    pub initiator: FullJid,
    /// The contents (the latest description and transport each party sent).
    pub contents: Vec<Content>,
}

/// Every Jingle session of one local full JID, sans-IO.
#[derive(Debug)]
pub struct Endpoint {
    me: FullJid,
    config: Config,
    sessions: BTreeMap<SessionKey, Session>,
    requests: HashMap<String, Request>,
    next_id: u64,
    transmit: VecDeque<Iq>,
    events: VecDeque<Event>,
    /// Transport-infos the application answers, by (session, iq id).
    deferred: BTreeMap<(SessionKey, String), Deferred>,
}

impl Endpoint {
    /// A table for `me` (the `initiator` we write, the JID we check `responder` against).
    pub fn new(me: FullJid, config: Config) -> Self {
        Self {
            me,
            config,
            sessions: BTreeMap::new(),
            requests: HashMap::new(),
            next_id: 0,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            deferred: BTreeMap::new(),
        }
    }

    /// Our full JID.
    pub fn me(&self) -> &FullJid {
        &self.me
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Sessions open now.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Our iqs awaiting an answer.
    pub fn pending_requests(&self) -> usize {
        self.requests.len()
    }

    /// A snapshot of a session.
    pub fn session(&self, key: &SessionKey) -> Option<SessionInfo> {
        self.sessions.get(key).map(Session::info)
    }

    /// Sends session-initiate to `peer` with `contents` (each with a description and a
    /// transport). Returns the iq id.
    pub fn initiate(
        &mut self,
        now: Instant,
        peer: FullJid,
        sid: Sid,
        contents: Vec<Content>,
    ) -> Result<String, Misuse> {
        let key = SessionKey::new(peer, sid);
        if self.sessions.contains_key(&key) {
            return Err(Misuse::Exists(key));
        }
        self.check_room(&key.peer).map_err(Misuse::Bound)?;
        self.check_offer(&contents)?;
        let s = Session::new(
            Role::Initiator,
            self.me.clone(),
            contents.clone(),
            now,
            &self.config,
        );
        self.sessions.insert(key.clone(), s);
        let out = Out {
            initiator: Some(self.me.clone().into()),
            contents,
            ..Out::default()
        };
        Ok(self.send(now, &key, Action::SessionInitiate, out))
    }

    /// Accepts a session a peer initiated, with our answer for each content (our
    /// description and transport). Returns the iq id.
    pub fn accept(
        &mut self,
        now: Instant,
        key: &SessionKey,
        contents: Vec<Content>,
    ) -> Result<String, Misuse> {
        let s = self.get_mut(key)?;
        s.accept(&contents)?;
        let initiator = s.initiator.clone();
        let out = Out {
            initiator: Some(initiator.into()),
            responder: Some(self.me.clone().into()),
            contents,
            ..Out::default()
        };
        Ok(self.send(now, key, Action::SessionAccept, out))
    }

    /// Ends a session with `reason` (and an optional `<text/>`). The session is removed at
    /// once and [`Event::Ended`] queued; the peer's answer comes as `RequestDone`/`Failed`.
    pub fn terminate(
        &mut self,
        now: Instant,
        key: &SessionKey,
        reason: Reason,
        text: Option<&str>,
    ) -> Result<String, Misuse> {
        let s = self
            .sessions
            .remove(key)
            .ok_or_else(|| Misuse::NoSession(key.clone()))?;
        let mut r = ReasonElement {
            reason: reason.clone(),
            texts: BTreeMap::new(),
        };
        if let Some(t) = text {
            r.texts.insert(String::new(), t.to_owned());
        }
        let out = Out {
            initiator: Some(s.initiator.into()),
            reason: Some(r),
            ..Out::default()
        };
        let id = self.send(now, key, Action::SessionTerminate, out);
        self.events.push_back(Event::Ended {
            key: key.clone(),
            cause: EndCause::ByUs(reason),
        });
        Ok(id)
    }

    /// Sends transport-info for one content (which must exist).
    pub fn transport_info(
        &mut self,
        now: Instant,
        key: &SessionKey,
        content: Content,
    ) -> Result<String, Misuse> {
        self.get_mut(key)?.content_mut(&content)?;
        self.content_action(now, key, Action::TransportInfo, content)
    }

    /// Proposes another transport for a content (answered by transport-accept/-reject).
    pub fn transport_replace(
        &mut self,
        now: Instant,
        key: &SessionKey,
        content: Content,
    ) -> Result<String, Misuse> {
        let t = self.config.replace_timeout;
        self.get_mut(key)?.replace_out(&content, now + t)?;
        self.content_action(now, key, Action::TransportReplace, content)
    }

    /// Accepts the peer's transport-replace for this content (with our transport element).
    pub fn transport_accept(
        &mut self,
        now: Instant,
        key: &SessionKey,
        content: Content,
    ) -> Result<String, Misuse> {
        self.get_mut(key)?.answer_replace(&content, true)?;
        self.content_action(now, key, Action::TransportAccept, content)
    }

    /// Rejects the peer's transport-replace for this content.
    pub fn transport_reject(
        &mut self,
        now: Instant,
        key: &SessionKey,
        content: Content,
    ) -> Result<String, Misuse> {
        self.get_mut(key)?.answer_replace(&content, false)?;
        self.content_action(now, key, Action::TransportReject, content)
    }

    /// Sends session-info with `payload` (none: a ping).
    pub fn session_info(
        &mut self,
        now: Instant,
        key: &SessionKey,
        payload: Option<Element>,
    ) -> Result<String, Misuse> {
        let s = self.get_mut(key)?;
        let out = Out {
            initiator: Some(s.initiator.clone().into()),
            other: payload,
            ..Out::default()
        };
        Ok(self.send(now, key, Action::SessionInfo, out))
    }

    /// Answers a transport-info of `key` whose [`Event::TransportInfo`] carried `id`:
    /// `Ok` acknowledges it, `Err` answers with that stanza error (the transport refused
    /// the element). `false` when it is not waiting (answered already, or acknowledged on
    /// its timeout).
    pub fn answer_transport_info(
        &mut self,
        key: &SessionKey,
        id: &str,
        verdict: Result<(), xmpp_parsers::stanza_error::StanzaError>,
    ) -> bool {
        let Some(d) = self.deferred.remove(&(key.clone(), id.to_owned())) else {
            return false;
        };
        let reply = match verdict {
            Ok(()) => Iq::empty_result(d.to, id.to_owned()),
            Err(e) => {
                let mut r = Iq::from_error(id.to_owned(), e);
                *r.to_mut() = Some(d.to);
                r
            }
        };
        self.transmit.push_back(reply);
        true
    }

    /// The next iq to send.
    pub fn poll_transmit(&mut self) -> Option<Iq> {
        self.transmit.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Endpoint::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let r = self.requests.values().map(|r| r.deadline);
        let s = self.sessions.values().filter_map(Session::deadline);
        let d = self.deferred.values().map(|d| d.deadline);
        r.chain(s).chain(d).min()
    }

    /// Expires what is due at `now`: our unanswered iqs (`RequestFailed` with `Timeout`; a
    /// live session is then ended with `<timeout/>`), PENDING sessions and unanswered
    /// transport-replaces (session-terminate `<timeout/>`, [`EndCause::Timeout`]), deferred
    /// transport-infos the application did not answer (acknowledged).
    pub fn handle_timeout(&mut self, now: Instant) {
        // Deferred transport-infos nobody answered: acknowledged, as without deferral.
        let late: Vec<(SessionKey, String)> = self
            .deferred
            .iter()
            .filter(|(_, d)| d.deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for (key, id) in late {
            self.answer_transport_info(&key, &id, Ok(()));
        }
        let mut due: Vec<String> = self
            .requests
            .iter()
            .filter(|(_, r)| r.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        due.sort();
        let mut to_end = Vec::new();
        for id in due {
            let Some(r) = self.requests.remove(&id) else {
                continue;
            };
            if self.sessions.contains_key(&r.key) {
                to_end.push(r.key.clone());
            }
            self.events.push_back(Event::RequestFailed {
                key: r.key,
                id,
                action: r.action,
                error: RequestError::Timeout,
            });
        }
        to_end.extend(
            self.sessions
                .iter()
                .filter(|(_, s)| s.deadline().is_some_and(|d| d <= now))
                .map(|(k, _)| k.clone()),
        );
        for key in to_end {
            if self.sessions.contains_key(&key) {
                self.end_with_timeout(now, &key);
            }
        }
    }

    fn end_with_timeout(&mut self, now: Instant, key: &SessionKey) {
        if let Some(s) = self.sessions.remove(key) {
            let out = Out {
                initiator: Some(s.initiator.into()),
                reason: Some(ReasonElement {
                    reason: Reason::Timeout,
                    texts: BTreeMap::new(),
                }),
                ..Out::default()
            };
            self.send(now, key, Action::SessionTerminate, out);
            self.events.push_back(Event::Ended {
                key: key.clone(),
                cause: EndCause::Timeout,
            });
        }
    }

    fn content_action(
        &mut self,
        now: Instant,
        key: &SessionKey,
        action: Action,
        content: Content,
    ) -> Result<String, Misuse> {
        let initiator = self.get_mut(key)?.initiator.clone();
        let out = Out {
            initiator: Some(initiator.into()),
            contents: vec![content],
            ..Out::default()
        };
        Ok(self.send(now, key, action, out))
    }

    fn get_mut(&mut self, key: &SessionKey) -> Result<&mut Session, Misuse> {
        self.sessions
            .get_mut(key)
            .ok_or_else(|| Misuse::NoSession(key.clone()))
    }

    fn check_room(&self, peer: &FullJid) -> Result<(), &'static str> {
        if self.sessions.len() >= self.config.max_sessions {
            return Err("sessions in total");
        }
        if self.sessions.keys().filter(|k| &k.peer == peer).count()
            >= self.config.max_sessions_per_peer
        {
            return Err("sessions per peer");
        }
        Ok(())
    }

    fn check_offer(&self, contents: &[Content]) -> Result<(), Misuse> {
        if contents.is_empty() {
            return Err(Misuse::BadContents("no content"));
        }
        if contents.len() > self.config.max_contents {
            return Err(Misuse::Bound("contents per session"));
        }
        if contents
            .iter()
            .any(|c| c.description.is_none() || c.transport.is_none())
        {
            return Err(Misuse::BadContents(
                "a content without description or transport",
            ));
        }
        for (i, c) in contents.iter().enumerate() {
            if contents[..i].iter().any(|o| o.is(&c.creator, &c.name)) {
                return Err(Misuse::BadContents(
                    "two contents with one creator and name",
                ));
            }
        }
        Ok(())
    }

    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("{}{}", self.config.id_prefix, self.next_id)
    }

    /// Queues a tracked iq set.
    fn send(&mut self, now: Instant, key: &SessionKey, action: Action, out: Out) -> String {
        let id = self.new_id();
        let jingle = wire::build(action.clone(), &key.sid, out);
        let iq = Iq::from_set(id.clone(), jingle).with_to(Jid::from(key.peer.clone()));
        self.transmit.push_back(iq);
        self.requests.insert(
            id.clone(),
            Request {
                key: key.clone(),
                action,
                deadline: now + self.config.request_timeout,
            },
        );
        id
    }
}
