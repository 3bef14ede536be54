//! The sans-IO negotiation of XEP-0065: [`Requester`] and [`Target`], one bytestream
//! (one sid with one peer) each.
//!
//! # The flow
//!
//! ```text
//!  Requester                                         Target
//!  Requester::new ------ offer (iq set, streamhosts) ---> Target::handle_stanza
//!   Offering                                            Racing: dial streamhost 0,
//!     |                                                 then 1 after `stagger` (or at
//!     |                                                 once when all running failed) ...
//!     |   <-- Action::Accept (own listener) <-- SOCKS5 CONNECT h        first completed
//!     |                                                 SOCKS5 handshake wins, the
//!     |                                                 others are closed
//!     | <--------- streamhost-used (iq result) --------- Connected
//!     |          or item-not-found (all failed) -------- Failed
//!     +-- used = own JID -----> AwaitingInbound --inbound ready--> Connected
//!     +-- used = a proxy -----> Dialing proxy --SOCKS5 done--> Activating
//!     |                           --> <activate/> to the proxy; <-- result --> Connected
//!     +-- used = never offered --> Failed(UnknownStreamHostUsed)
//! ```
//!
//! # Run loop
//!
//! The cores never touch a socket, a resolver or a clock: `now` is passed in. The driver:
//!
//! 1. feeds every inbound stanza to `handle_stanza` (what is not this session's comes
//!    back unchanged as `ControlFlow::Continue`, so sessions and other handlers chain),
//!    calls `handle_timeout` when the instant from `poll_timeout` passes, and reports
//!    socket events: `handle_resolved`, `handle_connected`, `handle_connect_failed`, and on
//!    the requester `handle_inbound` / `handle_inbound_ready`;
//! 2. after any of these (and after construction), drains `poll_action` and performs each
//!    [`Action`] (resolve a name, connect and run the SOCKS5 client handshake, close an
//!    attempt, accept or stop accepting inbound connections with a DST.ADDR), then sends
//!    every `poll_transmit` stanza in order, then reads `poll_timeout`, then drains
//!    `poll_event` until a terminal [`Event`] (`Connected` or `Failed`).
//!
//! Actions come before transmits so that the requester's listener knows the DST.ADDR
//! before the offer that makes the target dial it is sent.
//!
//! Every timeout is decided here: the target's total budget ([`Config::connect_budget`]),
//! the stagger, each attempt's [`Config::handshake_timeout`] (resolution, TCP connect and
//! SOCKS5 together), the requester's [`Config::offer_timeout`] and
//! [`Config::iq_timeout`].
//!
//! [`Config::connect_budget`]: crate::Config::connect_budget
//! [`Config::handshake_timeout`]: crate::Config::handshake_timeout
//! [`Config::offer_timeout`]: crate::Config::offer_timeout
//! [`Config::iq_timeout`]: crate::Config::iq_timeout

mod requester;
mod target;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use minidom::Element;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

pub use self::requester::Requester;
pub use self::target::Target;
use crate::error::{Error, ProtocolError, stanza_error};
use crate::payload::{self, Offer};
use crate::wire::ReplyCode;
use crate::{Sid, StreamHost};

/// One dial of a streamhost: the index of the streamhost in the offer (target), or of
/// the proxy named by streamhost-used (requester).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptId(pub(crate) usize);

impl AttemptId {
    /// The streamhost's index in the offer.
    pub fn index(self) -> usize {
        self.0
    }

    /// The attempt at the streamhost with this index (for drivers and tests that key
    /// their sockets by index).
    pub fn from_index(index: usize) -> Self {
        Self(index)
    }
}

/// Socket work the driver must do for a core.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Resolve a streamhost's host name; answer with `handle_resolved`.
    Resolve {
        /// The attempt.
        attempt: AttemptId,
        /// The host name.
        name: String,
        /// The streamhost's port.
        port: u16,
    },
    /// Connect to these addresses in turn and run the SOCKS5 client handshake (CONNECT
    /// to `dst_addr`, port 0) on the first that answers; report `handle_connected` or
    /// `handle_connect_failed` (the last address's failure).
    Connect {
        /// The attempt.
        attempt: AttemptId,
        /// The addresses, in order (already allowed by the dial policy).
        addrs: Vec<SocketAddr>,
        /// The DST.ADDR.
        dst_addr: String,
    },
    /// Stop this attempt and close its socket if it has one: it lost, failed a timeout,
    /// or the session ended.
    Close {
        /// The attempt.
        attempt: AttemptId,
    },
    /// Requester: route inbound SOCKS5 connections whose DST.ADDR is `dst_addr` to
    /// `handle_inbound`.
    Accept {
        /// The DST.ADDR.
        dst_addr: String,
    },
    /// Requester: stop routing inbound connections with `dst_addr`; close the one accepted
    /// unless the `Connected` event names [`Via::Inbound`].
    StopAccepting {
        /// The DST.ADDR.
        dst_addr: String,
    },
}

/// Which socket carries a bytestream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The connection of this attempt.
    Attempt(AttemptId),
    /// The inbound connection the requester's listener accepted.
    Inbound,
}

/// What a core reports; `Connected` and `Failed` end the session.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// The bytestream is ready for data (on the requester through a proxy: activated).
    Connected {
        /// The socket that carries it.
        via: Via,
        /// The streamhost.
        streamhost: StreamHost,
        /// Per streamhost tried: what happened and how long it took (target side; on the
        /// requester side, the proxy connection if one was made).
        attempts: Vec<Attempt>,
    },
    /// The session failed.
    Failed(Error),
}

/// One streamhost a side tried, for diagnostics and the `item-not-found` reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The streamhost.
    pub streamhost: StreamHost,
    /// What happened.
    pub outcome: Outcome,
    /// From the start of this attempt to its outcome.
    pub duration: Duration,
}

/// The outcome of one [`Attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// This streamhost carries the bytestream.
    Won,
    /// Still connecting (or connected) when another streamhost won; closed.
    Lost,
    /// Never started: another streamhost won or the budget ran out first.
    NotTried,
    /// The dial policy refused to connect there.
    Refused(Refusal),
    /// Resolving, connecting or the SOCKS5 handshake failed, or it took too long.
    Failed(Failure),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Won => f.write_str("won"),
            Self::Lost => f.write_str("lost"),
            Self::NotTried => f.write_str("not tried"),
            Self::Refused(r) => write!(f, "refused: {r}"),
            Self::Failed(r) => write!(f, "failed: {r}"),
        }
    }
}

/// Why an attempt was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The [`DialPolicy`](crate::DialPolicy) refused every address of the streamhost.
    #[error("the dial policy refused every address")]
    DialPolicy,
    /// The streamhost failed recently and is skipped for a while
    /// ([`Blacklist`](crate::Blacklist)).
    #[error("the streamhost failed recently and is blacklisted")]
    Blacklisted,
}

/// What broke in a SOCKS5 exchange that did not end in a reply code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Socks5Fault {
    /// The streamhost closed the connection during the handshake.
    Closed,
    /// It sent bytes that are not SOCKS5 (bad version, reserved byte, address type, ...).
    Malformed,
    /// It chose no method we offered (we offer only "no authentication").
    NoAcceptableMethod,
    /// A socket error of this kind.
    Io(io::ErrorKind),
}

impl fmt::Display for Socks5Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => f.write_str("closed during the handshake"),
            Self::Malformed => f.write_str("malformed answer"),
            Self::NoAcceptableMethod => f.write_str("no acceptable authentication method"),
            Self::Io(k) => write!(f, "{k}"),
        }
    }
}

/// Why one attempt failed. Typed, so a caller reports it without parsing strings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// The host name did not resolve.
    #[error("cannot resolve {name}: {kind}")]
    Resolve {
        /// The name.
        name: String,
        /// The resolver's error kind.
        kind: io::ErrorKind,
    },
    /// The host name resolved to no address.
    #[error("{name} resolves to no address")]
    NoAddress {
        /// The name.
        name: String,
    },
    /// The TCP connection failed.
    #[error("{addr}: tcp connect: {kind}")]
    Connect {
        /// The address.
        addr: SocketAddr,
        /// The error kind (refused, unreachable, ...).
        kind: io::ErrorKind,
    },
    /// The streamhost answered the SOCKS5 CONNECT with a failure code.
    #[error("{addr}: socks5 reply {code:?}")]
    Socks5Reply {
        /// The address.
        addr: SocketAddr,
        /// The reply code.
        code: ReplyCode,
    },
    /// The SOCKS5 exchange broke.
    #[error("{addr}: socks5: {fault}")]
    Socks5 {
        /// The address.
        addr: SocketAddr,
        /// What broke.
        fault: Socks5Fault,
    },
    /// The attempt (resolution, connect and handshake) took longer than
    /// [`Config::handshake_timeout`](crate::Config::handshake_timeout).
    #[error("no socks5 connection within the {0:?} handshake timeout")]
    HandshakeTimeout(Duration),
    /// The target's total budget ran out while this attempt was running.
    #[error("no socks5 connection within the {0:?} budget")]
    BudgetExhausted(Duration),
}

/// A bytestreams offer, recognised before any session looks at it.
#[derive(Debug, Clone)]
pub struct IncomingOffer {
    /// Who sent it.
    pub from: jid::Jid,
    /// The iq id to answer.
    pub id: String,
    /// The offer.
    pub offer: Offer,
}

impl IncomingOffer {
    /// Recognises an offer (`<iq type='set'><query xmlns='…bytestreams' sid=…>` with
    /// streamhosts, not `<activate/>`): `None` if the stanza is something else,
    /// `Some(Err(reply))` if it is malformed or has no sender (the reply is
    /// `modify/bad-request`).
    pub fn parse(stanza: &Stanza) -> Option<Result<Self, Stanza>> {
        let Stanza::Iq(
            iq @ Iq::Set {
                payload, id, from, ..
            },
        ) = stanza
        else {
            return None;
        };
        if !payload.is("query", payload::NS) || payload.get_child("activate", payload::NS).is_some()
        {
            return None;
        }
        let offer = match Offer::try_from(payload) {
            Ok(o) => o,
            Err(e) => return Some(Err(error_reply(iq, StanzaError::from(&e)))),
        };
        let Some(from) = from.clone() else {
            let e = stanza_error(ErrorType::Modify, DefinedCondition::BadRequest);
            return Some(Err(error_reply(iq, e)));
        };
        Some(Ok(Self {
            from,
            id: id.clone(),
            offer,
        }))
    }

    /// The sid offered.
    pub fn sid(&self) -> &Sid {
        &self.offer.sid
    }
}

/// The answer to an offer no session expects: `modify/not-acceptable`
/// ([`ProtocolError::UnexpectedSid`]). `None` if `stanza` is not an offer; a malformed
/// offer gets its `bad-request`.
pub fn reply_unexpected_offer(stanza: &Stanza) -> Option<Stanza> {
    let Stanza::Iq(iq) = stanza else {
        return None;
    };
    match IncomingOffer::parse(stanza)? {
        Err(reply) => Some(reply),
        Ok(inc) => {
            let e = ProtocolError::UnexpectedSid {
                sid: inc.offer.sid.to_string(),
                from: inc.from.to_string(),
            };
            Some(error_reply(iq, StanzaError::from(&e)))
        }
    }
}

/// The error answer to a request iq, addressed to its sender.
pub(crate) fn error_reply(iq: &Iq, error: StanzaError) -> Stanza {
    let mut r = Iq::from_error(iq.id().to_owned(), error);
    *r.to_mut() = iq.from().cloned();
    Stanza::Iq(r)
}

/// Iq ids: `{prefix}{sid}-{n}`.
#[derive(Debug)]
pub(crate) struct IqIds {
    prefix: String,
    next: u32,
}

impl IqIds {
    pub(crate) fn new(prefix: &str, sid: &Sid) -> Self {
        Self {
            prefix: format!("{prefix}{sid}-"),
            next: 0,
        }
    }

    pub(crate) fn next(&mut self) -> String {
        self.next += 1;
        format!("{}{}", self.prefix, self.next)
    }
}

/// An iq set to `to` with `payload`.
pub(crate) fn iq_set(to: &jid::Jid, id: String, payload: Element) -> Stanza {
    Stanza::Iq(Iq::Set {
        from: None,
        to: Some(to.clone()),
        id,
        payload,
    })
}

/// `Some(result)` if `stanza` is the result or error of our iq `id` sent to `to`: the
/// answer must come from `to`, or, when `to` is a bare JID or a domain, from any of its
/// resources (what `ft_transport::iq::IqTracker` accepts too). An answer from a third
/// party is not ours.
pub(crate) fn response<'a>(
    stanza: &'a Stanza,
    id: &str,
    to: &jid::Jid,
) -> Option<Result<Option<&'a Element>, &'a StanzaError>> {
    let Stanza::Iq(iq) = stanza else {
        return None;
    };
    let from_ok = iq
        .from()
        .is_some_and(|f| f == to || (to.resource().is_none() && f.to_bare() == to.to_bare()));
    if iq.id() != id || !from_ok {
        return None;
    }
    match iq {
        Iq::Result { payload, .. } => Some(Ok(payload.as_ref())),
        Iq::Error { error, .. } => Some(Err(error)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iq(from: Option<&str>, payload: &str) -> Stanza {
        Stanza::Iq(Iq::Set {
            from: from.map(|f| f.parse().unwrap()),
            to: Some("bob@example.org/b".parse().unwrap()),
            id: "o1".into(),
            payload: payload.parse().unwrap(),
        })
    }

    const OFFER: &str = "<query xmlns='http://jabber.org/protocol/bytestreams' sid='s1'>\
        <streamhost jid='alice@example.org/a' host='192.0.2.1' port='7000'/></query>";

    fn condition(s: &Stanza) -> DefinedCondition {
        match s {
            Stanza::Iq(Iq::Error { error, .. }) => error.defined_condition.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_offer_nobody_expects_is_not_acceptable_and_a_malformed_one_bad_request() {
        let r = reply_unexpected_offer(&iq(Some("alice@example.org/a"), OFFER)).unwrap();
        assert_eq!(condition(&r), DefinedCondition::NotAcceptable);
        let bad = "<query xmlns='http://jabber.org/protocol/bytestreams'>\
            <streamhost jid='alice@example.org/a' host='192.0.2.1' port='7000'/></query>";
        let r = reply_unexpected_offer(&iq(Some("alice@example.org/a"), bad)).unwrap();
        assert_eq!(condition(&r), DefinedCondition::BadRequest);
        let r = reply_unexpected_offer(&iq(None, OFFER)).unwrap();
        assert_eq!(condition(&r), DefinedCondition::BadRequest);
    }

    #[test]
    fn an_activation_is_not_an_offer() {
        let act = "<query xmlns='http://jabber.org/protocol/bytestreams' sid='s1'>\
            <activate>bob@example.org/b</activate></query>";
        assert!(IncomingOffer::parse(&iq(Some("alice@example.org/a"), act)).is_none());
        assert!(reply_unexpected_offer(&iq(Some("alice@example.org/a"), act)).is_none());
    }

    #[test]
    fn an_answer_to_a_bare_jid_may_come_from_its_resource_but_not_from_a_third_party() {
        let answer = |from: &str| {
            Stanza::Iq(Iq::Result {
                from: Some(from.parse().unwrap()),
                to: None,
                id: "x1".into(),
                payload: None,
            })
        };
        let bare: jid::Jid = "bob@example.org".parse().unwrap();
        let full: jid::Jid = "bob@example.org/b".parse().unwrap();
        assert!(response(&answer("bob@example.org/b"), "x1", &bare).is_some());
        assert!(response(&answer("bob@example.org/b"), "x1", &full).is_some());
        assert!(response(&answer("bob@example.org/other"), "x1", &full).is_none());
        assert!(response(&answer("mallory@example.org/b"), "x1", &bare).is_none());
        assert!(response(&answer("bob@example.org/b"), "x2", &full).is_none());
    }

    #[test]
    fn outcomes_and_failures_display_without_debug_formatting() {
        let f = Failure::Socks5Reply {
            addr: "192.0.2.1:7000".parse().unwrap(),
            code: ReplyCode::HostUnreachable,
        };
        assert_eq!(
            Outcome::Failed(f).to_string(),
            "failed: 192.0.2.1:7000: socks5 reply HostUnreachable"
        );
        assert_eq!(
            Outcome::Refused(Refusal::DialPolicy).to_string(),
            "refused: the dial policy refused every address"
        );
    }
}
