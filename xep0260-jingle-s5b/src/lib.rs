//! XEP-0260 Jingle SOCKS5 Bytestreams Transport (`urn:xmpp:jingle:transports:s5b:1`,
//! version 1.0.3) on the XEP-0065 machinery of `xep0065-s5b`: the same race (stagger,
//! budget, dial policy), SOCKS5 codec and handshakes, dialer and stream type.
//!
//! # The flow, as XEP-0260 draws it
//!
//! ```text
//! Initiator                                 Responder
//!   |  session-initiate (S5B transport,          |
//!   |    candidates)                              |
//!   |------------------------------------------->|
//!   |  ack                                        |
//!   |<-------------------------------------------|
//!   |  session-accept (S5B transport,            |
//!   |    candidates)                              |
//!   |<-------------------------------------------|
//!   |  ack                                        |
//!   |------------------------------------------->|
//!   |  [ SOCKS5 negotiation, both ways ]          |
//!   |  candidate-used transport-info              |
//!   |------------------------------------------->|
//!   |  ack                                        |
//!   |<-------------------------------------------|
//!   |  candidate-used transport-info              |
//!   |<-------------------------------------------|
//!   |  ack                                        |
//!   |------------------------------------------->|
//!   |  [ file transfer ]                          |
//!   |<==========================================>|
//! ```
//!
//! Each side offers candidates (a direct one per address of its own listener, priority
//! 126 × 65536 + local preference; one per discovered proxy, 10 × 65536 + local
//! preference), races the peer's (the first 8 by priority), and sends `candidate-used` or
//! `candidate-error`. The nominated candidate is the one with the higher priority; on equal
//! priorities the initiator's choice. If it is a proxy, the party that offered it connects
//! to the proxy, activates it (`<activate/>` iq) and sends `transport-info <activated cid/>`.
//! DST.ADDR is SHA1(sid + offerer + dialer): SHA1(sid + initiator + responder) at the
//! initiator's candidates, SHA1(sid + responder + initiator) at the responder's (§2.2).
//!
//! # What is where
//!
//! * [`proto::Negotiation`]: the sans-IO core for either [`Role`](proto::Role): transport elements in
//!   ([`handle_transport`](proto::Negotiation::handle_transport)), socket events and
//!   timeouts in; transport-info, the activation iq, socket actions and a terminal
//!   [`proto::Event`] out. No socket, no clock.
//! * [`Incoming`], [`Candidate`], [`LocalCandidates`]: the transport element, read with
//!   bounds ([`MAX_PARSED_CANDIDATES`]).
//! * `tokio` (feature `tokio`, default): [`Listener`] (our direct candidates) and
//!   [`negotiate`], which runs a negotiation over real sockets through a [`Signalling`]
//!   the caller provides (the Jingle session) and returns the [`S5bStream`].
//!
//! Fallback is not here: on [`proto::Event::Failed`] / [`DriverError::Failed`] the
//! composing layer sends transport-replace (XEP-0261 IBB) or terminates.
//!
//! # Example
//!
//! Two cores, the caller playing the network: both sides connect, both send
//! candidate-used, equal priorities, so the initiator's choice is the bytestream.
//!
//! ```
//! use std::time::Instant;
//! use xep0065_s5b::{Config, DialPolicy, Sid};
//! use xep0260_jingle_s5b::proto::{Action, Event, Negotiation, Role, Transmit, Via};
//! use xep0260_jingle_s5b::LocalCandidates;
//!
//! let (romeo, juliet): (jid::Jid, jid::Jid) =
//!     ("romeo@montague.lit/orchard".parse().unwrap(), "juliet@capulet.lit/balcony".parse().unwrap());
//! let mut config = Config::default();
//! config.dial_policy(DialPolicy::allow_all()); // loopback, on purpose: both on this host
//! let sid = Sid::new("vj3hs98y").unwrap();
//! let now = Instant::now();
//! let listen = |port| LocalCandidates { direct: vec![([127, 0, 0, 1], port).into()], proxies: vec![] };
//! let mut ini = Negotiation::new(&config, Role::Initiator, romeo.clone(), juliet.clone(), sid.clone(), &listen(5086));
//! let mut res = Negotiation::new(&config, Role::Responder, juliet, romeo, sid, &listen(5087));
//! assert!(matches!(ini.poll_action(), Some(Action::Accept { .. })));
//! assert!(matches!(res.poll_action(), Some(Action::Accept { .. })));
//!
//! // session-initiate carries the initiator's candidates, session-accept the responder's.
//! res.handle_transport(now, ini.local_transport()).unwrap();
//! ini.handle_transport(now, res.local_transport()).unwrap();
//! // Each dials the other's listener; each listener accepts the other's DST.ADDR.
//! fn dial(me: &mut Negotiation, other: &mut Negotiation, now: Instant) {
//!     let Some(Action::Connect { attempt, dst_addr, .. }) = me.poll_action() else { panic!() };
//!     other.handle_inbound(now, &dst_addr).unwrap();
//!     me.handle_connected(now, attempt);
//! }
//! dial(&mut ini, &mut res, now);
//! dial(&mut res, &mut ini, now);
//! // candidate-used both ways.
//! let Some(Transmit::TransportInfo(used_by_ini)) = ini.poll_transmit() else { panic!() };
//! let Some(Transmit::TransportInfo(used_by_res)) = res.poll_transmit() else { panic!() };
//! res.handle_transport(now, used_by_ini).unwrap();
//! ini.handle_transport(now, used_by_res).unwrap();
//! // The initiator's choice (the responder's candidate) wins on both sides.
//! let Some(Event::Connected { via, ours: false, .. }) = ini.poll_event() else { panic!() };
//! assert!(matches!(via, Via::Attempt(_)));
//! let Some(Event::Connected { via: Via::Inbound, ours: true, .. }) = res.poll_event() else { panic!() };
//! ```
//!
//! # Known deviations
//!
//! * Gajim quirk: our listener takes both orders of the DST.ADDR for a negotiation,
//!   SHA1(sid + us + peer) as §2.2 says and SHA1(sid + peer + us)
//!   ([`proto::Negotiation::accepted_dst_addrs`]). Gajim 1.7.3 presents SHA1(sid +
//!   initiator + responder) at every candidate it dials, so as the initiator it dials our
//!   (the responder's) candidates with the other order; refusing it (REP 04) lost every
//!   direct connection from Gajim to us. Another sid or other JIDs still get REP 04. We
//!   still present the XEP's order at the peer's candidates.
//! * A peer's `dstaddr` attribute is ignored, as `xep0065-s5b` ignores an offer's (C6): we
//!   always compute SHA1(sid + offerer + dialer) ourselves.
//! * A malformed candidate is skipped, not a reason to refuse the whole element; more
//!   than [`MAX_PARSED_CANDIDATES`] are counted and dropped.
//! * Our proxy candidates must name IP addresses (the wire type carries no host names):
//!   resolve a discovered proxy first ([`resolve_proxies`] with the `tokio` feature).
//! * We wait for the proxy's activation result before sending `<activated/>` (Gajim sends
//!   both back to back; as the dialer we accept that, since data only flows once the
//!   proxy relays anyway).
//! * A peer candidate whose TCP connect is refused may be dialled again
//!   ([`proto::Negotiation::redial_refused`], off by default, bounded, within the budget):
//!   Gajim 1.7.3 under load sends its candidate before its listener is up.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
#![doc(test(attr(deny(warnings))))]

mod candidate;
pub mod error;
pub mod proto;
#[cfg(feature = "tokio")]
mod tokio;

pub use crate::candidate::{
    Candidate, Incoming, Kind, LocalCandidates, MAX_CID_LEN, MAX_PARSED_CANDIDATES, NS, Payload,
    preference,
};
pub use crate::error::{Error, InputError};
#[cfg(feature = "tokio")]
pub use crate::tokio::{
    Driver, DriverError, Established, Listener, Signalling, negotiate, resolve_proxies,
};
#[cfg(feature = "tokio")]
pub use xep0065_s5b::S5bStream;
pub use xep0065_s5b::{Config, DialPolicy, Sid};
