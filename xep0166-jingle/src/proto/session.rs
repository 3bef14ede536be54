//! One session's state: role, PENDING/ACTIVE, its contents and the transport-replace in
//! flight either way.

use std::time::Instant;

use jid::FullJid;
use minidom::Element;
use xmpp_parsers::jingle::Action;

use super::SessionInfo;
use crate::error::{Misuse, Rejected};
use crate::types::{Config, Content, Role, State};

#[derive(Debug)]
struct ContentState {
    content: Content,
    /// Our transport-replace awaiting an answer: the proposed transport and the deadline.
    replace_out: Option<(Option<Element>, Instant)>,
    /// The peer's transport-replace awaiting our answer: its transport and the deadline.
    replace_in: Option<(Option<Element>, Instant)>,
}

#[derive(Debug)]
pub(super) struct Session {
    pub(super) role: Role,
    pub(super) state: State,
    pub(super) initiator: FullJid,
    contents: Vec<ContentState>,
    pending_deadline: Option<Instant>,
}

impl Session {
    pub(super) fn new(
        role: Role,
        initiator: FullJid,
        contents: Vec<Content>,
        now: Instant,
        config: &Config,
    ) -> Self {
        Self {
            role,
            state: State::Pending,
            initiator,
            contents: contents
                .into_iter()
                .map(|content| ContentState {
                    content,
                    replace_out: None,
                    replace_in: None,
                })
                .collect(),
            pending_deadline: Some(now + config.pending_timeout),
        }
    }

    pub(super) fn info(&self) -> SessionInfo {
        SessionInfo {
            role: self.role,
            state: self.state,
            initiator: self.initiator.clone(),
            contents: self.contents.iter().map(|c| c.content.clone()).collect(),
        }
    }

    /// The earliest of: the end of PENDING, a transport-replace's answer either way.
    pub(super) fn deadline(&self) -> Option<Instant> {
        let r = self.contents.iter().flat_map(|c| {
            [c.replace_out.as_ref(), c.replace_in.as_ref()]
                .into_iter()
                .flatten()
                .map(|(_, d)| *d)
        });
        r.chain(self.pending_deadline).min()
    }

    fn find(&mut self, c: &Content) -> Option<&mut ContentState> {
        self.contents
            .iter_mut()
            .find(|s| s.content.is(&c.creator, &c.name))
    }

    fn find_all(&mut self, cs: &[Content]) -> Result<(), Rejected> {
        for c in cs {
            if self.find(c).is_none() {
                return Err(Rejected::UnknownContent {
                    creator: c.creator.clone(),
                    name: c.name.clone(),
                });
            }
        }
        Ok(())
    }

    /// Takes the latest description/transport/senders a party sent for a content.
    fn update(&mut self, c: &Content) {
        if let Some(s) = self.find(c) {
            s.content.senders = c.senders.clone();
            if c.description.is_some() {
                s.content.description.clone_from(&c.description);
            }
            if c.transport.is_some() {
                s.content.transport.clone_from(&c.transport);
            }
        }
    }

    // ---- our commands ----

    pub(super) fn accept(&mut self, contents: &[Content]) -> Result<(), Misuse> {
        let not_now = |why| Misuse::NotNow {
            action: Action::SessionAccept,
            why,
        };
        if self.role != Role::Responder {
            return Err(not_now("the initiator does not accept"));
        }
        if self.state != State::Pending {
            return Err(not_now("accepted already"));
        }
        if contents.is_empty() {
            return Err(Misuse::BadContents("no content"));
        }
        for c in contents {
            self.content_mut(c)?;
        }
        contents.iter().for_each(|c| self.update(c));
        self.state = State::Active;
        self.pending_deadline = None;
        Ok(())
    }

    pub(super) fn content_mut(&mut self, c: &Content) -> Result<(), Misuse> {
        self.find(c)
            .map(|_| ())
            .ok_or_else(|| Misuse::NoContent(c.name.clone()))
    }

    pub(super) fn replace_out(&mut self, c: &Content, deadline: Instant) -> Result<(), Misuse> {
        let s = self
            .find(c)
            .ok_or_else(|| Misuse::NoContent(c.name.clone()))?;
        if s.replace_out.is_some() || s.replace_in.is_some() {
            return Err(Misuse::NotNow {
                action: Action::TransportReplace,
                why: "a transport-replace is in flight for this content",
            });
        }
        s.replace_out = Some((c.transport.clone(), deadline));
        Ok(())
    }

    pub(super) fn answer_replace(&mut self, c: &Content, accept: bool) -> Result<(), Misuse> {
        let s = self
            .find(c)
            .ok_or_else(|| Misuse::NoContent(c.name.clone()))?;
        let Some((proposed, _)) = s.replace_in.take() else {
            return Err(Misuse::NotNow {
                action: if accept {
                    Action::TransportAccept
                } else {
                    Action::TransportReject
                },
                why: "the peer has not sent transport-replace for this content",
            });
        };
        if accept {
            s.content.transport = c.transport.clone().or(proposed);
        }
        Ok(())
    }

    // ---- the peer's actions ----

    pub(super) fn on_accept(&mut self, contents: &[Content]) -> Result<(), Rejected> {
        let ooo = |why| Rejected::OutOfOrder {
            action: Action::SessionAccept,
            why,
        };
        if self.role != Role::Initiator {
            return Err(ooo("session-accept from the initiator"));
        }
        if self.state != State::Pending {
            return Err(ooo("a second session-accept"));
        }
        self.find_all(contents)?;
        contents.iter().for_each(|c| self.update(c));
        self.state = State::Active;
        self.pending_deadline = None;
        Ok(())
    }

    pub(super) fn on_transport_info(&mut self, contents: &[Content]) -> Result<(), Rejected> {
        self.find_all(contents)
    }

    pub(super) fn on_replace(&mut self, cs: &[Content], deadline: Instant) -> Result<(), Rejected> {
        self.find_all(cs)?;
        for c in cs {
            if c.transport.is_none() {
                return Err(Rejected::BadRequest(
                    "transport-replace without transport".into(),
                ));
            }
            let s = self.find(c).expect("checked above");
            if s.replace_out.is_some() {
                return Err(Rejected::TieBreak);
            }
            if s.replace_in.is_some() {
                return Err(Rejected::OutOfOrder {
                    action: Action::TransportReplace,
                    why: "a transport-replace for this content is unanswered",
                });
            }
        }
        for c in cs {
            let s = self.find(c).expect("checked above");
            s.replace_in = Some((c.transport.clone(), deadline));
        }
        Ok(())
    }

    pub(super) fn on_replace_answer(
        &mut self,
        cs: &[Content],
        accept: bool,
    ) -> Result<(), Rejected> {
        self.find_all(cs)?;
        for c in cs {
            if self.find(c).expect("checked above").replace_out.is_none() {
                return Err(Rejected::OutOfOrder {
                    action: if accept {
                        Action::TransportAccept
                    } else {
                        Action::TransportReject
                    },
                    why: "no transport-replace of ours for this content",
                });
            }
        }
        for c in cs {
            let s = self.find(c).expect("checked above");
            let (proposed, _) = s.replace_out.take().expect("checked above");
            if accept {
                s.content.transport = c.transport.clone().or(proposed);
            }
        }
        Ok(())
    }
}
