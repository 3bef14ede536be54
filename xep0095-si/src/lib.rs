//! XEP-0095 Stream Initiation (v1.2): offer, stream-method negotiation, SI errors.
//!
//! # Flow
//!
//! As XEP-0095 §3 draws it:
//!
//! ```text
//! Sender                                             Receiver
//!   | iq set <si id='s' profile='…file-transfer'>          |
//!   |          <file/> <feature><x type='form'>            |
//!   |            stream-method: bytestreams, ibb           |
//!   |----------------------------------------------------->|
//!   |         iq result <si><feature><x type='submit'>     |
//!   |                     stream-method: ibb               |
//!   |<-----------------------------------------------------|
//!   |   (or iq error: forbidden = declined,                |
//!   |    bad-request + no-valid-streams / bad-profile)     |
//!   |                                                      |
//!   |     the chosen bytestream, with sid = the si id      |
//!   |=====================================================>|
//! ```
//!
//! # What this crate does and does not do
//!
//! It reads and writes `<si/>` ([`Si`]), negotiates the stream method through the XEP-0020
//! data form (field `stream-method`), and maps every refusal to the stanza error the XEP
//! names: `bad-request` + `<no-valid-streams/>`, `bad-request` + `<bad-profile/>`, and the
//! decline `cancel/forbidden`.
//!
//! * The target reads an offer with [`Offer::from_iq`] and answers with
//!   [`Offer::accept`], [`Offer::decline`], [`Offer::no_valid_streams`], or
//!   [`error_reply`] for an offer it cannot read (`StanzaError::from(&SiError)`).
//! * The initiator builds the offer with [`Si::offer`] and [`offer_iq`], and reads the answer
//!   with [`parse_answer`]: an [`Accepted`] method (always one it offered) or a typed
//!   [`Rejection`]. Under the `tokio` feature, [`offer()`] does both over any
//!   `ft_transport::StanzaTransport`.
//!
//! SI names stream methods by namespace string ([`method`]); it knows nothing of SOCKS5 or
//! IBB, nor of any profile: the profile element is kept as a raw `Element`
//! (`xep0096-file` reads the file-transfer one). There is no I/O outside the `tokio`
//! module: a negotiation is one request and one answer, so the sans-IO part is plain
//! functions, not a state machine.
//!
//! # Example
//!
//! ```
//! use minidom::Element;
//! use xep0095_si::{Answer, Offer, Si, Sid, method, offer_iq, parse_answer};
//!
//! // The initiator offers both methods, SOCKS5 first.
//! let file: Element = "<file xmlns='http://jabber.org/protocol/si/profile/file-transfer' \
//!                      name='a.txt' size='5'/>".parse().unwrap();
//! let si = Si::offer(&Sid::new("s1").unwrap(), file, &[method::BYTESTREAMS, method::IBB]);
//! let iq = offer_iq("o1", "bob@example.org/pc".parse().unwrap(), si).unwrap();
//!
//! // The target reads it and picks IBB.
//! let offer = Offer::from_iq(&iq).unwrap();
//! assert_eq!(offer.methods, [method::BYTESTREAMS, method::IBB]);
//! let answer = offer.accept(method::IBB).unwrap();
//! assert_eq!(answer.id(), "o1");
//!
//! // The initiator reads the answer.
//! let Answer::Accepted(accepted) = parse_answer(&offer.methods, &answer).unwrap() else {
//!     unreachable!()
//! };
//! assert_eq!(accepted.method, method::IBB);
//! ```
//!
//! # Interoperability
//!
//! Accepted beyond the letter of the XEP, because real clients send it (each has a
//! captured fixture under `tests/fixtures/captured/`):
//!
//! * `type='list-multi'` for the offer's `stream-method` field (Spark);
//! * a submit form naming **several** methods (old Smack/Spark, XIFF): the first method of
//!   *our* offer that the peer named is used ([`pick_method`]);
//! * a refusal with `not-acceptable` (old Smack) reads as a decline like `forbidden`;
//! * `<error type='MODIFY'>` in upper case and a missing condition element (Spark via
//!   Openfire): xmpp-parsers refuses that iq; the transport repairs it before anyone parses
//!   it (`ft_transport::lenient`, which every `ft_transport::xmpp` session applies).
//!
//! # Deviations
//!
//! * XEP-0095 gives `bad-profile` the type `modify` in its table and `cancel` in its
//!   example; this crate sends `modify` (the normative table) and reads either.
//! * The legacy `code` attribute (`400`, `403`) is not sent; xmpp-parsers drops it on read.
//!
//! # Cargo features
//!
//! * `tokio` (default): [`offer()`], the async initiator over `ft_transport`.
//! * `__fuzzing`: private, don't rely on this.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

pub mod error;
#[cfg(feature = "__fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod payload;
pub mod proto;
#[cfg(feature = "tokio")]
mod tokio;

pub use error::{AppCondition, Error, Misuse, Rejection, SiError};
pub use payload::{FeatureNeg, MAX_METHODS, NS_FEATURE_NEG, NS_SI, STREAM_METHOD, Si, Sid, method};
pub use proto::{
    Accepted, Answer, DECLINED_TEXT, Offer, error_reply, offer_iq, parse_answer, pick_method,
};
#[cfg(feature = "tokio")]
pub use tokio::offer;
