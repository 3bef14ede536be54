//! The peer's side: jingle iq sets (answered, every one) and the answers to ours.

use std::ops::ControlFlow;
use std::time::Instant;

use jid::{FullJid, Jid};
use minidom::Element;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jingle::{Action, Reason, ReasonElement};
use xmpp_parsers::ns;
use xmpp_parsers::stanza_error::StanzaError;

use super::{EndCause, Endpoint, Event, RequestError, Session};
use crate::error::Rejected;
use crate::types::{Content, Role, SessionKey};
use crate::wire::{self, Out, Parsed};

impl Endpoint {
    /// Takes an inbound iq. A jingle `set` is answered (result, or the XEP-0166 error) and
    /// turned into events; the answer to one of our iqs (matched by id and by the peer's
    /// full JID) becomes `RequestDone`/`RequestFailed`. Anything else comes back untouched
    /// as `Continue`, for the next handler.
    pub fn handle_iq(&mut self, now: Instant, iq: Iq) -> ControlFlow<(), Iq> {
        match iq {
            Iq::Set {
                from, id, payload, ..
            } if payload.is("jingle", ns::JINGLE) => {
                self.on_set(now, from, id, &payload);
                ControlFlow::Break(())
            }
            Iq::Result {
                ref from, ref id, ..
            } if self.is_ours(id, from.as_ref()) => {
                self.on_answer(id.clone(), None);
                ControlFlow::Break(())
            }
            Iq::Error {
                ref from,
                ref id,
                ref error,
                ..
            } if self.is_ours(id, from.as_ref()) => {
                self.on_answer(id.clone(), Some(error.clone()));
                ControlFlow::Break(())
            }
            other => ControlFlow::Continue(other),
        }
    }

    fn is_ours(&self, id: &str, from: Option<&Jid>) -> bool {
        self.requests
            .get(id)
            .is_some_and(|r| from == Some(&Jid::from(r.key.peer.clone())))
    }

    fn on_answer(&mut self, id: String, error: Option<StanzaError>) {
        let Some(r) = self.requests.remove(&id) else {
            return;
        };
        let Some(e) = error else {
            self.events.push_back(Event::RequestDone {
                key: r.key,
                id,
                action: r.action,
            });
            return;
        };
        let fatal = matches!(r.action, Action::SessionInitiate | Action::SessionAccept);
        if fatal && self.sessions.remove(&r.key).is_some() {
            self.events.push_back(Event::Ended {
                key: r.key.clone(),
                cause: EndCause::Refused(r.action.clone(), e.clone()),
            });
        }
        self.events.push_back(Event::RequestFailed {
            key: r.key,
            id,
            action: r.action,
            error: RequestError::Stanza(Box::new(e)),
        });
    }

    fn on_set(&mut self, now: Instant, from: Option<Jid>, id: String, payload: &Element) {
        let to = from.clone();
        let answer = match from.and_then(|j| j.try_into_full().ok()) {
            None => Err(Rejected::BadRequest(
                "a jingle iq not from a full JID".into(),
            )),
            Some(from) => self.on_jingle(now, from, &id, payload),
        };
        if matches!(answer, Ok(After::Deferred)) {
            return;
        }
        let reply = match &answer {
            Ok(_) => Iq::empty_result(to.unwrap_or_else(|| self.me.clone().into()), id),
            Err(rej) => {
                let mut r = Iq::from_error(id, rej.to_stanza_error());
                *r.to_mut() = to;
                r
            }
        };
        self.transmit.push_back(reply);
        if let Ok(After::AckThen(busy)) = answer {
            self.transmit.push_back(*busy);
        }
    }

    /// Checks and applies one action: acknowledged, acknowledged and followed by a
    /// session-terminate (the busy answer to an initiate over our bounds), or left to the
    /// application (a transport-info, with [`Config::defer_transport_info`](crate::Config::defer_transport_info)).
    fn on_jingle(
        &mut self,
        now: Instant,
        from: FullJid,
        id: &str,
        payload: &Element,
    ) -> Result<After, Rejected> {
        let p = wire::parse(payload, self.config.max_contents)?;
        let key = SessionKey::new(from.clone(), p.sid.clone());
        let from_jid = Jid::from(from);
        if p.action == Action::SessionInitiate {
            return self.on_initiate(now, key, from_jid, p);
        }
        let replace_deadline = now + self.config.replace_timeout;
        let defer = self.config.defer_transport_info
            && p.action == Action::TransportInfo
            && p.contents.len() == 1
            && self.deferred.len() < super::MAX_DEFERRED;
        let answer_deadline = now + self.config.answer_timeout;
        let known_info: Vec<String> = self.config.session_info_ns.clone();
        let s = self
            .sessions
            .get_mut(&key)
            .ok_or(Rejected::UnknownSession)?;
        if p.initiator.as_ref().is_some_and(|i| *i != s.initiator) {
            return Err(Rejected::BadRequest(
                "initiator is not the session's".into(),
            ));
        }
        let ev = |f: fn(SessionKey, Content) -> Event, cs: Vec<Content>| -> Vec<Event> {
            cs.into_iter().map(|c| f(key.clone(), c)).collect()
        };
        let events = match p.action {
            Action::SessionAccept => {
                if p.responder.as_ref().is_some_and(|r| *r != from_jid) {
                    return Err(Rejected::BadRequest("responder is not the sender".into()));
                }
                s.on_accept(&p.contents)?;
                vec![Event::Accepted {
                    key: key.clone(),
                    contents: p.contents,
                }]
            }
            Action::SessionTerminate => {
                self.sessions.remove(&key);
                vec![Event::Ended {
                    key: key.clone(),
                    cause: EndCause::ByPeer(p.reason),
                }]
            }
            Action::SessionInfo => {
                if let Some(c) = p.other.iter().find(|c| !known_info.contains(&c.ns())) {
                    return Err(Rejected::UnsupportedInfo {
                        name: c.name().chars().take(64).collect(),
                        ns: c.ns().chars().take(128).collect(),
                    });
                }
                let k = key.clone();
                let f = move |payload| Event::SessionInfo {
                    key: k.clone(),
                    payload,
                };
                p.other.into_iter().map(f).collect()
            }
            Action::TransportInfo => {
                need_transports(&p.contents)?;
                s.on_transport_info(&p.contents)?;
                let k = (key.clone(), id.to_owned());
                if defer
                    && let Some(content) = p.contents.first().cloned()
                    && let std::collections::btree_map::Entry::Vacant(v) = self.deferred.entry(k)
                {
                    v.insert(super::Deferred {
                        to: from_jid,
                        deadline: answer_deadline,
                    });
                    self.events.push_back(Event::TransportInfo {
                        key,
                        content,
                        answer: Some(id.to_owned()),
                    });
                    return Ok(After::Deferred);
                }
                ev(
                    |key, content| Event::TransportInfo {
                        key,
                        content,
                        answer: None,
                    },
                    p.contents,
                )
            }
            Action::TransportReplace => {
                need_transports(&p.contents)?;
                s.on_replace(&p.contents, replace_deadline)?;
                ev(
                    |key, content| Event::TransportReplace { key, content },
                    p.contents,
                )
            }
            Action::TransportAccept | Action::TransportReject => {
                let accept = p.action == Action::TransportAccept;
                if p.contents.is_empty() {
                    return Err(Rejected::BadRequest("no content".into()));
                }
                s.on_replace_answer(&p.contents, accept)?;
                if accept {
                    ev(
                        |key, content| Event::TransportAccepted { key, content },
                        p.contents,
                    )
                } else {
                    ev(
                        |key, content| Event::TransportRejected { key, content },
                        p.contents,
                    )
                }
            }
            other => return Err(Rejected::NotImplemented(other.to_string())),
        };
        self.events.extend(events);
        Ok(After::Ack)
    }

    fn on_initiate(
        &mut self,
        now: Instant,
        key: SessionKey,
        from: Jid,
        p: Parsed,
    ) -> Result<After, Rejected> {
        if let Some(s) = self.sessions.get(&key) {
            return Err(match s.role {
                Role::Initiator => Rejected::TieBreak,
                Role::Responder => Rejected::OutOfOrder {
                    action: Action::SessionInitiate,
                    why: "the session exists",
                },
            });
        }
        if p.initiator.as_ref().is_some_and(|i| *i != from) {
            return Err(Rejected::BadRequest("initiator is not the sender".into()));
        }
        if p.contents.is_empty() {
            return Err(Rejected::BadRequest(
                "session-initiate without content".into(),
            ));
        }
        if p.contents
            .iter()
            .any(|c| c.description.is_none() || c.transport.is_none())
        {
            return Err(Rejected::BadRequest(
                "a content without description or transport".into(),
            ));
        }
        if self.check_room(&key.peer).is_err() {
            // XEP-0166 §6.3.2: acknowledge, then terminate with <busy/>. Not tracked (it
            // must not grow our request table); its answer passes through as not ours.
            let jingle = wire::build(
                Action::SessionTerminate,
                &key.sid,
                Out {
                    reason: Some(ReasonElement {
                        reason: Reason::Busy,
                        texts: Default::default(),
                    }),
                    ..Out::default()
                },
            );
            let id = format!("{}busy", self.config.id_prefix);
            return Ok(After::AckThen(Box::new(
                Iq::from_set(id, jingle).with_to(from),
            )));
        }
        let s = Session::new(
            Role::Responder,
            key.peer.clone(),
            p.contents.clone(),
            now,
            &self.config,
        );
        self.sessions.insert(key.clone(), s);
        self.events.push_back(Event::Initiated {
            key,
            contents: p.contents,
        });
        Ok(After::Ack)
    }
}

/// What follows an action we took.
enum After {
    /// The result goes out now.
    Ack,
    /// The result, then this iq.
    AckThen(Box<Iq>),
    /// The application answers (a deferred transport-info).
    Deferred,
}

fn need_transports(cs: &[Content]) -> Result<(), Rejected> {
    if cs.is_empty() || cs.iter().any(|c| c.transport.is_none()) {
        return Err(Rejected::BadRequest("a content without transport".into()));
    }
    Ok(())
}
