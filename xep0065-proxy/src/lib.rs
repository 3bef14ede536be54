//! A XEP-0065 SOCKS5 Bytestreams (version 1.8.2) proxy: the streamhost of mediated
//! connections ([§6](https://xmpp.org/extensions/xep-0065.html#mediated)).
//!
//! # The flow, as XEP-0065 draws it
//!
//! ```text
//! Requester          Proxy                Target
//!    | -- disco#info --> |                    |      (what are you?)
//!    | -- query get ---> |                    |      (your network address?)
//!    | <-- streamhost -- |                    |
//!    | --------------- offer (iq set) ------------> |
//!    |                   | <-- SOCKS5 CONNECT -- |   DST.ADDR = SHA1(sid + requester + target)
//!    |                   | --- success reply --> |
//!    | <-------------- streamhost-used ----------- |
//!    | -- SOCKS5 CONNECT->|                   |      same DST.ADDR
//!    | <- success reply --|                   |
//!    | -- <activate/> --> |                   |      iq set from the requester
//!    | <---- result ----- |                   |
//!    | <====== bytes relayed both ways =====> |
//! ```
//!
//! # What this crate does and does not do
//!
//! * [`proto::Broker`]: the proxy's rules, sans-IO: pairing by DST.ADDR (the first
//!   connection is the target's, the second the requester's, a third is refused),
//!   activation only by the requester whose JID is in the hash and only when both are
//!   connected, `conflict` once active, `item-not-found` / `not-allowed`, the activation
//!   timeout, the per-JID relay cap, the allowed domains, disco#info and the address
//!   query. It touches no socket and no clock.
//! * `tokio` (feature, default): [`Proxy`], the service over tokio: listeners, the SOCKS5
//!   server handshake (the codec of `xep0065-s5b`), the relay (zero-copy `splice(2)` on
//!   Linux, a bounded buffer elsewhere; the crate's only `unsafe`, in one module) and the
//!   timer that drives the broker.
//!
//! # What a hostile network can make it hold
//!
//! * An idle relay holds its two sockets and one task: each direction's pipe (or buffer)
//!   opens with the first byte at 64 KiB (16 KiB), grows only when a read fills it, up to
//!   [`ProxyConfig::buffer_size`], and is closed after 1 s without data. Measured: about
//!   15 KiB per idle relay, kernel included (`docs/bench/proxy-memory.md`).
//! * Connections in their handshake: at most [`ProxyConfig::max_handshakes`], each for at
//!   most [`ProxyConfig::handshake_timeout`]; when the table is full the oldest is ended, so
//!   a flood displaces itself, not the clients. Per address, at most
//!   [`ProxyConfig::max_pending_per_ip`] in handshake or waiting.
//! * Out of descriptors, the accept loop closes each new connection at once (a descriptor
//!   kept in reserve takes it) instead of stalling; [`raise_fd_limit`] lifts the soft limit
//!   at start (`xft proxy` calls it).
//!
//! It does not discover anything, does not implement UDP mode or SOCKS5 authentication,
//! and is not a component connection (give it any stanza transport, for example a
//! XEP-0114 component stream).
//!
//! # Run loop
//!
//! [`Proxy`] runs the broker's loop itself (see [`proto`] for the contract); the
//! application's only duty is to offer every stanza addressed to the proxy's JID to
//! [`Proxy::handle_stanza`] inside a tokio runtime, and to send what the proxy sends
//! ([`Proxy::serve`] or [`Proxy::outbound`]). The listeners, handshakes and timers run on
//! the runtime that called [`Proxy::bind`]; activated relays run on threads of the proxy's
//! own ([`ProxyConfig::relay_threads`], default 1), so that a flood of handshakes does not
//! hold back their bytes. Dropping the last clone of the [`Proxy`] ends those threads.
//!
//! # Example
//!
//! The rules alone, sans IO:
//!
//! ```
//! use std::{ops::ControlFlow, time::Instant};
//! use xep0065_proxy::{ProxyConfig, proto::{Action, Broker, ConnId, Side}};
//! use xep0065_s5b::{dst_addr, payload::Activate, Sid, StreamHost};
//! use xmpp_parsers::{iq::Iq, stanza::Stanza};
//!
//! let mut config = ProxyConfig::new("proxy.example.org".parse().unwrap());
//! config.allowed_domains = vec!["example.org".into()];
//! let here = StreamHost::new(config.jid.clone(), "192.0.2.1".parse::<std::net::IpAddr>().unwrap(), 7777);
//! let mut broker = Broker::new(&config, vec![here]);
//! let (requester, target) = ("alice@example.org/a".parse().unwrap(), "bob@example.org/b".parse().unwrap());
//! let sid = Sid::new("s1").unwrap();
//! let hash = dst_addr(&sid, &requester, &target);
//! let now = Instant::now();
//! assert_eq!(broker.handle_request(now, ConnId(1), &hash), Ok(Side::Target));
//! assert_eq!(broker.handle_request(now, ConnId(2), &hash), Ok(Side::Requester));
//!
//! let activate = Iq::Set {
//!     from: Some(requester),
//!     to: Some(config.jid.clone()),
//!     id: "act".into(),
//!     payload: (&Activate { sid, target }).into(),
//! };
//! assert!(broker.handle_stanza(now, Stanza::Iq(activate)).is_break());
//! assert!(matches!(broker.poll_transmit(), Some(Stanza::Iq(Iq::Result { .. }))));
//! assert_eq!(
//!     broker.poll_action(),
//!     Some(Action::Relay { dst_addr: hash, target: ConnId(1), requester: ConnId(2) })
//! );
//! # let _ = ControlFlow::<()>::Continue(());
//! ```
//!
//! The service on 127.0.0.1 (feature `tokio`):
//!
//! ```
//! # #[cfg(feature = "tokio")]
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use xep0065_proxy::{Proxy, ProxyConfig};
//!
//! let mut config = ProxyConfig::new("proxy.example.org".parse().unwrap());
//! config.listen = vec!["127.0.0.1:0".parse().unwrap()];
//! config.allowed_domains = vec!["example.org".into()];
//! let proxy = Proxy::bind(config).await.unwrap();
//! assert_eq!(proxy.streamhosts().len(), 1);
//! assert_eq!(proxy.pending(), 0);
//! // Feed it the stanzas to proxy.example.org with `proxy.handle_stanza(..)`, and send
//! // what it answers: `proxy.serve(transport)`.
//! # });
//! ```
//!
//! # Cargo features
//!
//! * `tokio` (default): [`Proxy`], the tokio service (with `socket2`, and `libc` for
//!   `splice(2)` on Linux). Without it the crate is [`proto`] and [`ProxyConfig`].
//!
//! # Known deviations
//!
//! * Bytes a client sends before activation are kept, not ignored as XEP-0065 §9.1 allows:
//!   libpurple and other requesters write right after `<activate/>`, before its result. Those
//!   that arrived together with the SOCKS5 request are held (at most one handshake read) and
//!   relayed first; later ones wait unread in the socket until the relay starts.
//! * Unlike Prosody's mod_proxy65, each relay direction is half-closed as soon as its
//!   sender finishes, so the tail and the end-of-stream arrive together.
#![cfg_attr(not(feature = "tokio"), forbid(unsafe_code))]
#![cfg_attr(feature = "tokio", deny(unsafe_code))]
#![warn(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

mod config;
#[cfg(feature = "tokio")]
mod fdlimit;
pub mod proto;

#[cfg(feature = "tokio")]
mod relay;
#[cfg(all(feature = "tokio", target_os = "linux"))]
#[allow(unsafe_code)]
mod splice;
#[cfg(feature = "tokio")]
mod tokio;

pub use crate::config::ProxyConfig;
#[cfg(feature = "tokio")]
pub use crate::fdlimit::raise_fd_limit;
#[cfg(feature = "tokio")]
pub use crate::tokio::Proxy;
