//! The sans-IO proxy core: [`Broker`] pairs SOCKS5 connections by DST.ADDR and decides
//! activation ([XEP-0065 §6](https://xmpp.org/extensions/xep-0065.html#mediated)).
//!
//! # Run loop
//!
//! The broker never touches a socket or a clock. The driver:
//!
//! 1. numbers each SOCKS5 connection ([`ConnId`]) and, once its CONNECT request is read,
//!    asks [`Broker::handle_request`], which pairs it and says which SOCKS5 reply to send
//!    (the driver sends it; if that fails it calls [`Broker::handle_closed`]);
//! 2. feeds every stanza addressed to the proxy to [`Broker::handle_stanza`] (disco#info,
//!    the address query, `<activate/>`; anything else comes back), and calls
//!    [`Broker::handle_timeout`] when [`Broker::poll_timeout`] passes;
//! 3. after any `handle_*` call, sends every [`Broker::poll_transmit`] stanza and performs
//!    every [`Broker::poll_action`] ([`Action::Relay`] two connections, [`Action::Close`]
//!    one), then reports the end of each relay with [`Broker::handle_relay_ended`].
//!
//! # One DST.ADDR
//!
//! ```text
//!   (none) --CONNECT h--> Target --CONNECT h--> Paired --<activate/> from--> Active
//!              (1st is the     |                   |     the requester           |
//!               target's)      |                   |     (hash matches)          | relay ends
//!                              +--activation_timeout (from the first CONNECT)--+ v
//!                              v                                                (none)
//!                          both closed
//! ```
//!
//! * A third CONNECT with the same DST.ADDR, or one while the pair is active, gets SOCKS5
//!   `connection not allowed`; beyond [`ProxyConfig::max_pending`] waiting connections,
//!   `general failure`.
//! * `<activate/>` is accepted only from the requester's full JID: the proxy recomputes
//!   the hash from the sender, the sid and the named target, so any other JID finds no
//!   connection (`cancel/item-not-found`). One side only: `cancel/not-allowed`. Active
//!   already: `cancel/conflict`. The requester already holds
//!   [`ProxyConfig::max_relays_per_jid`] relays: `wait/resource-constraint`. A JID outside
//!   [`ProxyConfig::allowed_domains`]: `auth/forbidden`.

use std::collections::{HashMap, VecDeque};
use std::ops::ControlFlow;
use std::time::Instant;

use jid::Jid;
use minidom::Element;
use xep0065_s5b::payload::{self, Activate, ProxyInfo};
use xep0065_s5b::wire::ReplyCode;
use xep0065_s5b::{StreamHost, dst_addr};
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoInfoResult, Identity};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use crate::ProxyConfig;

/// A SOCKS5 connection, numbered by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Which side of a bytestream a connection is (by arrival order, as Prosody and ejabberd
/// decide it: the target connects first, the requester after the target's
/// streamhost-used).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The first connection with this DST.ADDR.
    Target,
    /// The second.
    Requester,
}

/// What the driver must do with its sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Activation succeeded: relay the two connections both ways, then call
    /// [`Broker::handle_relay_ended`] with `dst_addr`.
    Relay {
        /// The DST.ADDR that names this relay.
        dst_addr: String,
        /// The target's connection.
        target: ConnId,
        /// The requester's connection.
        requester: ConnId,
    },
    /// Close this connection (never activated in time).
    Close(ConnId),
}

#[derive(Debug)]
enum SlotState {
    /// Waiting for activation until `deadline`.
    Waiting { deadline: Instant },
    /// Relaying for this requester (bare JID, for the per-JID cap).
    Active { requester: Jid },
}

#[derive(Debug)]
struct Slot {
    target: Option<ConnId>,
    requester: Option<ConnId>,
    state: SlotState,
}

/// The proxy's pairing and activation rules for all its bytestreams. See the
/// [module docs](self) for the run loop and the rules.
#[derive(Debug)]
pub struct Broker {
    config: ProxyConfig,
    streamhosts: Vec<StreamHost>,
    slots: HashMap<String, Slot>,
    /// Waiting connections → their DST.ADDR.
    waiting: HashMap<ConnId, String>,
    relays_per_jid: HashMap<Jid, usize>,
    transmits: VecDeque<Stanza>,
    actions: VecDeque<Action>,
}

impl Broker {
    /// A broker announcing `streamhosts` (the driver knows them once its listeners are bound).
    pub fn new(config: &ProxyConfig, streamhosts: Vec<StreamHost>) -> Self {
        Self {
            config: config.clone(),
            streamhosts,
            slots: HashMap::new(),
            waiting: HashMap::new(),
            relays_per_jid: HashMap::new(),
            transmits: VecDeque::new(),
            actions: VecDeque::new(),
        }
    }

    /// The streamhosts announced.
    pub fn streamhosts(&self) -> &[StreamHost] {
        &self.streamhosts
    }

    /// How many connections wait for activation.
    pub fn pending(&self) -> usize {
        self.waiting.len()
    }

    /// How many relays are active.
    pub fn active(&self) -> usize {
        self.relays_per_jid.values().sum()
    }

    /// A connection's SOCKS5 CONNECT named `dst_addr`: pairs it and returns its side (send
    /// the XEP's success reply) or the failure code to reply with (then close it).
    pub fn handle_request(
        &mut self,
        now: Instant,
        conn: ConnId,
        dst_addr: &str,
    ) -> Result<Side, ReplyCode> {
        if self.waiting.len() >= self.config.max_pending {
            return Err(ReplyCode::GeneralFailure);
        }
        let side = match self.slots.get_mut(dst_addr) {
            None => {
                let deadline = now + self.config.activation_timeout;
                self.slots.insert(
                    dst_addr.to_owned(),
                    Slot {
                        target: Some(conn),
                        requester: None,
                        state: SlotState::Waiting { deadline },
                    },
                );
                Side::Target
            }
            Some(Slot {
                target: Some(_),
                requester: r @ None,
                state: SlotState::Waiting { .. },
            }) => {
                *r = Some(conn);
                Side::Requester
            }
            Some(_) => return Err(ReplyCode::NotAllowed),
        };
        self.waiting.insert(conn, dst_addr.to_owned());
        Ok(side)
    }

    /// A waiting connection went away (or its reply could not be sent): it leaves its
    /// slot. Unknown or relaying connections are ignored.
    pub fn handle_closed(&mut self, conn: ConnId) {
        let Some(dst) = self.waiting.remove(&conn) else {
            return;
        };
        if let Some(slot) = self.slots.get_mut(&dst) {
            if slot.target == Some(conn) {
                // The target left: a later requester could not pair with it.
                slot.target = None;
            }
            if slot.requester == Some(conn) {
                slot.requester = None;
            }
            if slot.target.is_none() {
                if let Some(r) = slot.requester.take() {
                    self.waiting.remove(&r);
                    self.actions.push_back(Action::Close(r));
                }
                self.slots.remove(&dst);
            }
        }
    }

    /// The relay named `dst_addr` ended: the DST.ADDR is free again and the requester's
    /// relay count drops.
    pub fn handle_relay_ended(&mut self, dst_addr: &str) {
        let Some(slot) = self.slots.remove(dst_addr) else {
            return;
        };
        if let SlotState::Active { requester } = slot.state
            && let Some(n) = self.relays_per_jid.get_mut(&requester)
        {
            *n -= 1;
            if *n == 0 {
                self.relays_per_jid.remove(&requester);
            }
        }
    }

    /// The next activation deadline.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.slots
            .values()
            .filter_map(|s| match s.state {
                SlotState::Waiting { deadline } => Some(deadline),
                SlotState::Active { .. } => None,
            })
            .min()
    }

    /// Closes the connections whose activation deadline has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .slots
            .iter()
            .filter(|(_, s)| matches!(s.state, SlotState::Waiting { deadline } if deadline <= now))
            .map(|(h, _)| h.clone())
            .collect();
        for h in expired {
            if let Some(s) = self.slots.remove(&h) {
                for c in [s.target, s.requester].into_iter().flatten() {
                    self.waiting.remove(&c);
                    self.actions.push_back(Action::Close(c));
                }
            }
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

    fn send(&mut self, iq: Iq) {
        self.transmits.push_back(Stanza::Iq(iq));
    }

    fn reply_error(&mut self, iq: &Iq, type_: ErrorType, condition: DefinedCondition) {
        let mut r = Iq::from_error(
            iq.id().to_owned(),
            StanzaError::new(type_, condition, "en", ""),
        );
        *r.to_mut() = iq.from().cloned();
        *r.from_mut() = Some(self.config.jid.clone());
        self.send(r);
    }

    fn result(&self, to: Option<Jid>, id: &str, payload: Option<Element>) -> Iq {
        Iq::Result {
            from: Some(self.config.jid.clone()),
            to,
            id: id.to_owned(),
            payload,
        }
    }

    /// Takes disco#info and bytestreams iqs; hands back everything else.
    pub fn handle_stanza(&mut self, now: Instant, stanza: Stanza) -> ControlFlow<(), Stanza> {
        let _ = now;
        let Stanza::Iq(iq) = stanza else {
            return ControlFlow::Continue(stanza);
        };
        match &iq {
            Iq::Get {
                payload, id, from, ..
            } if payload.is("query", xmpp_parsers::ns::DISCO_INFO) => {
                if DiscoInfoQuery::try_from(payload.clone()).is_err() {
                    return ControlFlow::Continue(Stanza::Iq(iq));
                }
                let info = DiscoInfoResult {
                    node: None,
                    identities: vec![Identity::new(
                        "proxy",
                        "bytestreams",
                        "en",
                        "SOCKS5 Bytestreams Service",
                    )],
                    features: [
                        payload::NS.to_owned(),
                        xmpp_parsers::ns::DISCO_INFO.to_owned(),
                    ]
                    .into_iter()
                    .collect(),
                    extensions: Vec::new(),
                };
                let r = self.result(from.clone(), id, Some(info.into()));
                self.send(r);
            }
            Iq::Get {
                payload, id, from, ..
            } if payload.is("query", payload::NS) => {
                if !from.as_ref().is_some_and(|f| self.config.is_allowed(f)) {
                    self.reply_error(&iq, ErrorType::Auth, DefinedCondition::Forbidden);
                } else if self.streamhosts.is_empty() {
                    self.reply_error(&iq, ErrorType::Cancel, DefinedCondition::NotAllowed);
                } else {
                    let info = ProxyInfo {
                        streamhosts: self.streamhosts.clone(),
                    };
                    let r = self.result(from.clone(), id, Some(Element::from(&info)));
                    self.send(r);
                }
            }
            Iq::Set {
                payload, from, id, ..
            } if payload.is("query", payload::NS) => {
                let Some(from) = from.clone().filter(|f| self.config.is_allowed(f)) else {
                    self.reply_error(&iq, ErrorType::Auth, DefinedCondition::Forbidden);
                    return ControlFlow::Break(());
                };
                let activate = match Activate::try_from(payload) {
                    Ok(a) => a,
                    // BAD-INPUT E4: a target that is there but does not parse is
                    // `jid-malformed`; a missing or empty one, or a bad sid, `bad-request`.
                    Err(xep0065_s5b::PayloadError::BadJid { value, .. })
                        if !value.trim().is_empty() =>
                    {
                        self.reply_error(&iq, ErrorType::Modify, DefinedCondition::JidMalformed);
                        return ControlFlow::Break(());
                    }
                    Err(e) => {
                        let se = StanzaError::from(&e);
                        self.reply_error(&iq, se.type_, se.defined_condition);
                        return ControlFlow::Break(());
                    }
                };
                match self.activate(&from, &activate) {
                    Ok(()) => {
                        let r = self.result(Some(from), id, None);
                        self.send(r);
                    }
                    Err((t, c)) => self.reply_error(&iq, t, c),
                }
            }
            _ => return ControlFlow::Continue(Stanza::Iq(iq)),
        }
        ControlFlow::Break(())
    }

    fn activate(&mut self, from: &Jid, a: &Activate) -> Result<(), (ErrorType, DefinedCondition)> {
        let hash = dst_addr(&a.sid, from, &a.target);
        let bare = Jid::from(from.to_bare());
        let held = self.relays_per_jid.get(&bare).copied().unwrap_or(0);
        let Some(slot) = self.slots.get_mut(&hash) else {
            return Err((ErrorType::Cancel, DefinedCondition::ItemNotFound));
        };
        let (target, requester) = match (&slot.state, slot.target, slot.requester) {
            (SlotState::Active { .. }, _, _) => {
                return Err((ErrorType::Cancel, DefinedCondition::Conflict));
            }
            (SlotState::Waiting { .. }, Some(t), Some(r)) => (t, r),
            (SlotState::Waiting { .. }, _, _) => {
                return Err((ErrorType::Cancel, DefinedCondition::NotAllowed));
            }
        };
        if held >= self.config.max_relays_per_jid {
            return Err((ErrorType::Wait, DefinedCondition::ResourceConstraint));
        }
        slot.state = SlotState::Active {
            requester: bare.clone(),
        };
        slot.target = None;
        slot.requester = None;
        self.waiting.remove(&target);
        self.waiting.remove(&requester);
        *self.relays_per_jid.entry(bare).or_default() += 1;
        self.actions.push_back(Action::Relay {
            dst_addr: hash,
            target,
            requester,
        });
        Ok(())
    }
}
