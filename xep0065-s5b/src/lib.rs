//! XEP-0065 SOCKS5 Bytestreams (version 1.8.2): payloads, the SOCKS5 codec, the sans-IO
//! negotiation of requester and target, and its tokio driver for direct and mediated
//! streams.
//!
//! # The flow, as XEP-0065 draws it
//!
//! ```text
//! Requester                         Target                       Proxy (mediated only)
//!    | -- offer: iq set <query sid>       |                              |
//!    |    <streamhost/> own first,        |                              |
//!    |    proxies last ---------------->  |                              |
//!    |                                    | SOCKS5 CONNECT, DST.ADDR =   |
//!    | <-- (direct) SOCKS5 CONNECT ------ | SHA1(sid + requester + target), port 0
//!    |                                    | -- (mediated) CONNECT -----> |
//!    | <-- iq result <streamhost-used jid/> (or cancel/item-not-found)   |
//!    | -- (mediated) SOCKS5 CONNECT, same DST.ADDR ------------------->  |
//!    | -- (mediated) iq set <activate>target</activate> -------------->  |
//!    | <-- (mediated) iq result ---------------------------------------  |
//!    | <================== bytes (the file) ===========================> |
//! ```
//!
//! # What this crate does and does not do
//!
//! * [`payload`]: the `<query xmlns='http://jabber.org/protocol/bytestreams'/>` wire types
//!   (offer, streamhost-used, activate, proxy info) and [`dst_addr`], the SOCKS5 DST.ADDR hash.
//!   No I/O.
//! * [`codec`] / [`wire`]: RFC 1928 framing (no-auth CONNECT subset) for both ends, as
//!   tokio-util codecs. No I/O either.
//! * [`proto`]: the negotiation, sans IO: [`proto::Requester`] (offer, streamhost-used,
//!   dialing and activating the proxy) and [`proto::Target`] (the staggered race over the
//!   offered streamhosts under one budget, the dial policy, streamhost-used or
//!   `item-not-found`), with every timeout, and typed per-attempt outcomes ([`Outcome`],
//!   [`Failure`]). No sockets, no resolver, no clock.
//! * `tokio` (feature `tokio`, default): [`S5b`], the requester and target over any
//!   `ft_transport::StanzaTransport`: it drives the cores with sockets and timers and hands
//!   back an [`S5bStream`] (a `TcpStream` plus the bytes that came with the SOCKS5 reply).
//!
//! The proxy (streamhost) service is the `xep0065-proxy` crate.
//!
//! It does not discover proxies (that is disco, `xep0030-disco`; [`S5b::query_proxy`] asks a
//! known proxy for its address), does not implement UDP mode (offers with `mode='udp'` are
//! refused with `modify/not-acceptable`), nor SOCKS5 authentication, nor XEP-0260 (Jingle
//! S5B: the `xep0260-jingle-s5b` crate, which drives [`proto::Target::race`], `dial` and
//! [`stream`] from here).
//!
//! # Example
//!
//! ```
//! use xep0065_s5b::{dst_addr, payload::Offer, Sid};
//! use minidom::Element;
//!
//! let offer: Element = "<query xmlns='http://jabber.org/protocol/bytestreams' sid='vxf9n471bn46'>\
//!     <streamhost jid='requester@example.com/foo' host='192.168.4.1' port='5086'/></query>"
//!     .parse().unwrap();
//! let offer = Offer::try_from(&offer).unwrap();
//! assert_eq!(offer.streamhosts[0].port, 5086);
//!
//! let hash = dst_addr(
//!     &offer.sid,
//!     &"requester@example.com/foo".parse().unwrap(),
//!     &"target@example.org/bar".parse().unwrap(),
//! );
//! assert_eq!(hash, "98b8d688d0f5d895fd41c5e7309a2e9e33ba32ff");
//! # let _: Sid = offer.sid;
//! ```
//!
//! A direct bytestream between two entities on the in-memory hub (feature `tokio`):
//!
//! ```
//! # #[cfg(feature = "tokio")]
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use std::{ops::ControlFlow, time::Duration};
//! use ft_transport::hub::Hub;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use xep0065_s5b::{Config, S5b, Sid};
//!
//! let hub = Hub::new();
//! let mut config = Config::default();
//! config.listen(vec!["127.0.0.1".parse().unwrap()]);
//! // Both ends are on this host: loopback allowed on purpose (the default refuses it).
//! config.dial_policy(xep0065_s5b::DialPolicy::allow_all());
//! let mut s5b = Vec::new();
//! for who in ["alice@example.org/a", "bob@example.org/b"] {
//!     let (transport, mut inbox) = hub.connect(who.parse().unwrap());
//!     let s = S5b::new(transport, config.clone());
//!     let feed = s.clone();
//!     // The application offers every inbound stanza; S5b hands back what is not its own.
//!     tokio::spawn(async move {
//!         while let Some(stanza) = inbox.recv().await {
//!             if let ControlFlow::Continue(_other) = feed.handle_stanza(stanza) {}
//!         }
//!     });
//!     s5b.push(s);
//! }
//! let sid = Sid::new("example").unwrap();
//! // Bob (target) authorises the stream first, typically once SI agreed on it.
//! let bob = tokio::spawn(s5b[1].expect("alice@example.org/a".parse().unwrap(), sid.clone(), Duration::from_secs(10)));
//! let mut alice = s5b[0].connect("bob@example.org/b".parse().unwrap(), sid, &[]).await.unwrap();
//! alice.stream.write_all(b"hello").await.unwrap();
//! alice.stream.shutdown().await.unwrap(); // half-close: the end of the file
//!
//! let mut bob = bob.await.unwrap().unwrap();
//! let mut got = Vec::new();
//! bob.stream.read_to_end(&mut got).await.unwrap();
//! assert_eq!(got, b"hello");
//! # });
//! ```
//!
//! # Cargo features
//!
//! * `tokio` (default): the async driver ([`S5b`], [`S5bStream`], [`stream`]'s SOCKS5
//!   handshakes) over tokio and `ft-transport`. Without it the crate is the pure payload,
//!   codec and [`proto`] parts.
//! * `__fuzzing`: private fuzzing entry points. Don't rely on this.
//!
//! # Run loop
//!
//! The SOCKS5 handshake itself is a short sequential exchange (an `async fn` over the codec,
//! [`stream`]); the negotiation around it is not, and lives in [`proto`]. Each core is fed
//! inputs (`handle_stanza(now, stanza)`, `handle_timeout(now)`, and socket events:
//! `handle_resolved`, `handle_connected`, `handle_connect_failed`, and on the requester
//! `handle_inbound` / `handle_inbound_ready`), and after each input the driver drains
//! `poll_action` (dial streamhost N, close attempt N, accept inbound connections with
//! DST.ADDR h), then `poll_transmit` (stanzas, in order), reads `poll_timeout`, and drains
//! `poll_event` up to a terminal `Connected` or `Failed`. See [`proto`] for the details.
//!
//! With the tokio driver the application's only duty is to offer every inbound stanza to
//! [`S5b::handle_stanza`] inside a tokio runtime (the error replies it owes are sent from
//! spawned tasks). A stanza that is not ours comes back as `ControlFlow::Continue(stanza)`,
//! unchanged.
//!
//! The cores alone, with the caller playing the network:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use xep0065_s5b::proto::{Action, Event, Requester, Target, Via};
//! use xep0065_s5b::{Config, Sid, StreamHost};
//! use xmpp_parsers::stanza::Stanza;
//!
//! let (alice, bob): (jid::Jid, jid::Jid) =
//!     ("alice@example.org/a".parse().unwrap(), "bob@example.org/b".parse().unwrap());
//! let mut config = Config::default();
//! // 192.0.2.1 is a documentation address, which the default policy never dials.
//! config.dial_policy(xep0065_s5b::DialPolicy::allow_all());
//! let sid = Sid::new("s1").unwrap();
//! let now = Instant::now();
//! let mine = StreamHost::new(alice.clone(), "192.0.2.1".parse::<std::net::IpAddr>().unwrap(), 7000);
//! let mut req = Requester::new(&config, alice.clone(), bob.clone(), sid.clone(), vec![mine], now).unwrap();
//! let mut tgt = Target::new(&config, bob.clone(), alice.clone(), sid, now, Duration::from_secs(60));
//!
//! // The requester's listener must know the DST.ADDR before the offer goes out.
//! assert!(matches!(req.poll_action(), Some(Action::Accept { .. })));
//! let Some(Stanza::Iq(mut offer)) = req.poll_transmit() else { panic!() };
//! *offer.from_mut() = Some(alice.clone()); // what the server does
//! assert!(tgt.handle_stanza(now, Stanza::Iq(offer)).is_break());
//!
//! // The target dials streamhost 0 ...
//! let Some(Action::Connect { attempt, dst_addr, .. }) = tgt.poll_action() else { panic!() };
//! assert_eq!(dst_addr, req.dst_addr());
//! // ... our listener accepts it, and its SOCKS5 handshake completes on both ends.
//! req.handle_inbound(now, 7000).unwrap();
//! req.handle_inbound_ready(now);
//! tgt.handle_connected(now, attempt);
//! assert!(matches!(tgt.poll_event(), Some(Event::Connected { .. })));
//!
//! let Some(Stanza::Iq(mut used)) = tgt.poll_transmit() else { panic!() };
//! *used.from_mut() = Some(bob);
//! assert!(req.handle_stanza(now, Stanza::Iq(used)).is_break());
//! assert!(matches!(req.poll_event(), Some(Event::Connected { via: Via::Inbound, .. })));
//! ```
//!
//! # Data path
//!
//! [`S5bStream`] is the `TcpStream` itself plus the bytes that arrived with the SOCKS5 reply
//! (read first): no copy layer. `TCP_NODELAY` is on: a file's last small write and any
//! request/response use of the stream are not delayed by Nagle, and on loopback bulk
//! transfer measured no slower than a plain socket with Nagle (3.5 GB/s direct S5B vs
//! 1.9–4.1 GB/s raw TCP, 256 MiB, shared 2-core machine). Kernel buffer sizes are left to
//! autotuning (setting them disables it). `shutdown()` half-closes, which is how the end of
//! a file is signalled (and what makes Prosody's proxy release the tail it holds).
//!
//! # Known deviations
//!
//! * Offers longer than [`payload::MAX_STREAMHOSTS`] are cut to that many streamhosts, and
//!   the target tries only the first [`Config::max_candidates`] (8) of them. At most
//!   [`Config::max_connects`] (64) of its connections are in flight at once over all
//!   sessions, and a streamhost that failed to connect twice is skipped for two hours
//!   ([`Blacklist`], Smack's rule; BAD-INPUT I3).
//! * The target races streamhosts (staggered) instead of trying them strictly one after the
//!   other; the order of the offer is kept as the order of starting attempts.
//! * An offer's optional `dstaddr` (XEP-0065 §6, MUC) is ignored: DST.ADDR is always the
//!   hash of the sid and the iq's JIDs, so that a requester cannot make us present another
//!   session's hash at a proxy (BAD-INPUT C6).
//! * The JIDs are hashed in the form [`jid::Jid`] holds them (already stringprep'd by the
//!   parser), which is what Prosody, ejabberd and slixmpp do.
//! * One [`Config::handshake_timeout`] covers a whole attempt (resolution, TCP connect to
//!   each resolved address in turn, and the SOCKS5 handshake), not each address.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

pub mod codec;
mod config;
pub mod error;
pub mod payload;
pub mod proto;
pub mod scope;
pub mod wire;

#[cfg(feature = "tokio")]
pub mod stream;
#[cfg(feature = "tokio")]
mod tokio;

pub use crate::config::{Blacklist, Config, DialPolicy};
pub use crate::proto::{Attempt, Failure, Outcome, Refusal, Socks5Fault};
#[cfg(feature = "tokio")]
pub use crate::stream::S5bStream;
#[cfg(feature = "tokio")]
pub use crate::tokio::dial::{dial, resolve};
#[cfg(feature = "tokio")]
pub use crate::tokio::{Connected, S5b, default_local_addrs};
pub use error::{Error, MisuseError, PayloadError, ProtocolError};
pub use payload::{Host, Mode, Sid, StreamHost, dst_addr};

#[cfg(feature = "__fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    //! Fuzzing entry points. Don't rely on this.
    use bytes::BytesMut;
    use tokio_util::codec::Decoder;

    /// Feeds bytes to the server codec until it stops.
    pub fn fuzz_socks5_server(data: &[u8]) {
        let mut c = crate::codec::ServerCodec::new();
        let mut b = BytesMut::from(data);
        while let Ok(Some(_)) = c.decode(&mut b) {}
    }

    /// Feeds bytes to the client codec until it stops.
    pub fn fuzz_socks5_reply(data: &[u8]) {
        let mut c = crate::codec::ClientCodec::new();
        let mut b = BytesMut::from(data);
        while let Ok(Some(_)) = c.decode(&mut b) {}
    }

    /// Parses an element as every bytestreams payload.
    pub fn fuzz_payload(data: &str) {
        if let Ok(e) = data.parse::<minidom::Element>() {
            let _ = crate::payload::Offer::try_from(&e);
            let _ = crate::payload::StreamHostUsed::try_from(&e);
            let _ = crate::payload::Activate::try_from(&e);
            let _ = crate::payload::ProxyInfo::try_from(&e);
        }
    }
}
