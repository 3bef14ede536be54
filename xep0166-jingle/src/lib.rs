//! XEP-0166 Jingle (v1.1.2): a sans-IO session core and session table, strict and bounded.
//!
//! # Flow
//!
//! As XEP-0166 §3 draws it (each action is an `<iq type='set'/>` acknowledged by a result):
//!
//! ```text
//! Initiator                                                Responder
//!    |  session-initiate (contents: description + transport)  |
//!    |------------------------------------------------------->|
//!    |                         ack                            |
//!    |<-------------------------------------------------------|
//!    |  [transport-info, session-info ...]                    |
//!    |<------------------------------------------------------>|
//!    |                    session-accept                      |
//!    |<-------------------------------------------------------|
//!    |                         ack                            |
//!    |------------------------------------------------------->|
//!    |  [transport-replace / transport-accept|reject ...]     |
//!    |<------------------------------------------------------>|
//!    |           <media, or here: the file's bytes>           |
//!    |<======================================================>|
//!    |           session-terminate (reason)                   |
//!    |------------------------------------------------------->|
//!    |                         ack                            |
//!    |<-------------------------------------------------------|
//! ```
//!
//! # What this crate does and does not do
//!
//! [`Endpoint`] holds every session of one full JID, keyed by (peer full JID, sid)
//! ([`SessionKey`]), for both roles. It answers every jingle iq set it is given, with a
//! result or the error XEP-0166 §11 names:
//!
//! | input | answer |
//! |---|---|
//! | unknown (peer, sid) | `cancel/item-not-found` + `<unknown-session/>` |
//! | action out of order (a second session-accept, session-accept from the initiator, transport-accept without transport-replace, session-initiate for an existing session) | `wait/unexpected-request` + `<out-of-order/>` |
//! | session-initiate for a sid we initiated with that peer; crossing transport-replaces | `cancel/conflict` + `<tie-break/>` |
//! | unknown or unimplemented action (`content-*`, `description-info`, `security-info`) | `cancel/feature-not-implemented` |
//! | session-info child outside [`Config::session_info_ns`] | `modify/feature-not-implemented` + `<unsupported-info/>` |
//! | malformed; `initiator`/`responder` that is not the sender | `cancel/bad-request` |
//! | a content (creator, name) the session lacks | `cancel/item-not-found` |
//! | more contents than [`Config::max_contents`] | `wait/resource-constraint` |
//! | session-initiate over [`Config::max_sessions`] / `max_sessions_per_peer` | result, then session-terminate `<busy/>` |
//!
//! It tracks the ids of our own iqs and reports their answers as events, and puts every
//! wait under a timeout on a clock the caller passes in. Descriptions, transports and
//! session-info payloads are handed up as `minidom::Element`s: the application
//! (`xep0234-jingle-ft`) and the transports (`xep0261-jingle-ibb`, `xep0260-jingle-s5b`)
//! parse their own. It has no I/O, no runtime, no clock.
//!
//! # Example
//!
//! Two endpoints, iqs passed by hand (as a server would).
//!
//! ```
//! use std::time::Instant;
//! use minidom::Element;
//! use xep0166_jingle::{Config, Content, Endpoint, Event, Sid};
//! use xmpp_parsers::jingle::{Creator, Reason};
//!
//! let (a, b) = ("romeo@montague.example/orchard", "juliet@capulet.example/balcony");
//! let mut romeo = Endpoint::new(a.parse()?, Config::default());
//! let mut juliet = Endpoint::new(b.parse()?, Config::default());
//! let now = Instant::now();
//! let desc: Element = "<description xmlns='urn:example:app'/>".parse()?;
//! let tr: Element = "<transport xmlns='urn:example:transport'/>".parse()?;
//! let offer = Content::new(Creator::Initiator, "a-file").with_description(desc).with_transport(tr);
//! romeo.initiate(now, b.parse()?, Sid::new("851ba2")?, vec![offer])?;
//!
//! // What a server does: stamp `from` and route.
//! let deliver = |src: &mut Endpoint, dst: &mut Endpoint| {
//!     while let Some(iq) = src.poll_transmit() {
//!         let iq = iq.with_from(src.me().clone().into());
//!         let _ = dst.handle_iq(now, iq);
//!     }
//! };
//! deliver(&mut romeo, &mut juliet);
//! let Some(Event::Initiated { key, contents }) = juliet.poll_event() else { panic!() };
//! juliet.accept(now, &key, contents)?;
//! deliver(&mut juliet, &mut romeo);
//! deliver(&mut romeo, &mut juliet); // the acks
//! assert!(matches!(romeo.poll_event(), Some(Event::RequestDone { .. })));
//! assert!(matches!(romeo.poll_event(), Some(Event::Accepted { .. })));
//!
//! juliet.terminate(now, &key, Reason::Success, None)?;
//! deliver(&mut juliet, &mut romeo);
//! assert!(romeo.is_empty() && juliet.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Deviations and choices
//!
//! * A content name the session does not have is answered `item-not-found` (XEP-0166 names
//!   no condition for it); a `<transport/>` or `<description/>` is never parsed here.
//! * An action for a sid never initiated (transport-info before session-initiate, say) is
//!   an unknown session, as §11 says, not out-of-order.
//! * Our iq left unanswered [`Config::request_timeout`] ends a live session with
//!   session-terminate `<timeout/>`: a peer that does not answer is gone.
//! * A transport-info is acknowledged on arrival unless [`Config::defer_transport_info`]
//!   is on: then the transport judges it first and the application answers
//!   ([`Endpoint::answer_transport_info`]: the ack, or XEP-0260's `bad-request` for a
//!   `candidate-used` naming a cid never offered); unanswered, it is acknowledged after
//!   [`Config::answer_timeout`].
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
#![doc(test(attr(deny(warnings))))]

pub mod error;
pub mod proto;
mod types;
mod wire;

pub use error::{JingleCondition, Misuse, NS_JINGLE_ERRORS, Rejected, jingle_error};
pub use proto::{EndCause, Endpoint, Event, RequestError, SessionInfo};
pub use types::{Config, Content, Role, SessionKey, Sid, State};
/// The wire types this crate's API uses, from xmpp-parsers.
pub use xmpp_parsers::jingle::{Action, ContentId, Creator, Reason, ReasonElement, Senders};
