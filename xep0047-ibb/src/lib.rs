//! XEP-0047 In-Band Bytestreams (v2.0.1): strict, bidirectional, windowed.
//!
//! # Flow
//!
//! As XEP-0047 §2 draws it (over `<iq/>`; over `<message/>` the data goes without results):
//!
//! ```text
//! Initiator                                          Responder
//!     | iq set <open sid='s' block-size='4096' stanza='iq'/> |
//!     |----------------------------------------------------->|
//!     |                      iq result                       |
//!     |<-----------------------------------------------------|
//!     | iq set <data sid='s' seq='0'>base64 chunk</data>     |
//!     |----------------------------------------------------->|
//!     |                      iq result                       |
//!     |<-----------------------------------------------------|
//!     |          ... seq 1, 2, ... (65535 wraps to 0) ...    |
//!     | iq set <close sid='s'/>                              |
//!     |----------------------------------------------------->|
//!     |                      iq result                       |
//!     |<-----------------------------------------------------|
//! ```
//!
//! # What this crate does and does not do
//!
//! It does:
//!
//! * parse and build `<open/>`, `<data/>` and `<close/>` ([`payload`]), with one typed
//!   [`PayloadError`] per rejected input and strict RFC 4648 §4 base64 (base64-simd);
//! * run one IBB session in either role, sans-IO ([`proto::Session`]): block-size
//!   negotiation with a smaller retry after `resource-constraint`, chunk sizes chosen by the
//!   acknowledgement rate up to the block-size ([`proto::ChunkSizer`]), a window of
//!   unacknowledged iq chunks that grows with acknowledgements and halves on `wait` errors, paced message
//!   mode, `seq` per direction wrapping 65535 → 0, data in both directions, a close that
//!   flushes and is acknowledged, a timeout on every wait, and the XEP's stanza error for
//!   every violation by the peer (unknown sid, seq gap or replay, bad base64, oversized
//!   chunk), each also reported as a typed [`Error`];
//! * drive every session of a connection over tokio (feature `tokio`): [`Ibb`] hands out
//!   [`IbbStream`]s (`AsyncRead + AsyncWrite`).
//!
//! It does not: own an XMPP connection (the application pushes inbound stanzas into
//! [`Ibb::handle_stanza`] or [`Session::handle_stanza`] and sends what they produce), negotiate
//! which bytestream to use (XEP-0095/0096, Jingle), or read files. [`proto`] does no I/O and
//! reads no clock.
//!
//! # Run loop (sans-IO)
//!
//! Feed inbound stanzas to `handle_stanza` and expired timers to `handle_timeout`, issue
//! commands (`send`, `flush`, `close`, `read`), then drain `poll_transmit` until `None`,
//! then `poll_timeout`, then `poll_event`. See [`proto`] for the state diagram.
//!
//! # Example
//!
//! Two entities on the in-memory hub; bob pre-authorises the sid (as after an SI
//! negotiation), alice opens and writes, bob reads to end of file.
//!
//! ```
//! use std::{ops::ControlFlow, time::Duration};
//! use ft_transport::hub::Hub;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use xep0047_ibb::{Config, Ibb, OpenOptions, Sid};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let hub = Hub::new();
//! let (alice_jid, bob_jid) = ("alice@example.org/a".parse()?, "bob@example.org/b".parse()?);
//! let (alice_tx, mut alice_rx) = hub.connect(alice_jid);
//! let (bob_tx, mut bob_rx) = hub.connect(bob_jid);
//! let alice = Ibb::new(alice_tx, Config::default());
//! let bob = Ibb::new(bob_tx, Config::default());
//!
//! // Each side pushes its inbound stanzas into its Ibb; what is not IBB comes back.
//! let a = alice.clone();
//! tokio::spawn(async move {
//!     while let Some(st) = alice_rx.recv().await {
//!         if let ControlFlow::Continue(_other) = a.handle_stanza(st) { /* not ours */ }
//!     }
//! });
//! let b = bob.clone();
//! tokio::spawn(async move {
//!     while let Some(st) = bob_rx.recv().await {
//!         let _ = b.handle_stanza(st);
//!     }
//! });
//!
//! let sid = Sid::new("i781hf64").unwrap();
//! let incoming = bob.expect("alice@example.org/a".parse()?, sid.clone(), Duration::from_secs(15));
//! let mut out = alice.open("bob@example.org/b".parse()?, sid, OpenOptions::default()).await?;
//! let mut inc = incoming.await?;
//!
//! out.write_all(b"Romeo, Romeo!").await?;
//! out.shutdown().await?; // flushes, sends <close/>, waits for bob's answer
//!
//! let mut got = Vec::new();
//! inc.read_to_end(&mut got).await?;
//! assert_eq!(got, b"Romeo, Romeo!");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # Performance
//!
//! Over the in-memory hub (no server, so the cost of XML objects and base64 only), one tokio
//! thread, on the shared 2-core build machine while other builds ran, MB = 10^6 bytes:
//!
//! | case (256 MiB unless noted) | window 1 | 4 | 16 | 64 |
//! |---|---|---|---|---|
//! | iq, block-size 65535 | 1064–1086 | 1336–1385 | 1443–1487 | 1234–1371 |
//! | message, block-size 65535 | | | 1196 | |
//! | iq, block-size 4096, 64 MiB | | | 667 | |
//!
//! Command: `cargo run --release -p xep0047-ibb --example throughput -- 256 65535 iq 1 4 16 64`.
//! 16 is the best of that sweep over the hub; the default [`Config::max_in_flight`] is 32,
//! chosen through a real Prosody, where a server round trip per window has to be hidden and
//! small blocks gain from a larger window (see that setting for the figures). Behind a
//! server's rate limit a larger window only queues stanzas.
//!
//! # Cargo features
//!
//! * `tokio` (default): [`Ibb`] and [`IbbStream`] over an `ft_transport::StanzaTransport`.
//! * `__fuzzing`: private; don't rely on this.
//!
//! # Deviations and choices
//!
//! * XML whitespace inside `<data/>` text is ignored (the XEP's own examples wrap lines);
//!   everything else outside the base64 alphabet is rejected.
//! * Data is accepted in either stanza kind whatever `<open stanza>` said: Spark opens
//!   without `stanza` (iq) and then sends `<message/>`s (seed 004).
//! * Invalid base64 is answered `cancel/bad-request` as XEP-0047 §2.2 says; a chunk over the
//!   block-size (which the XEP names no error for) `modify/bad-request`.
//! * A `wait` error on a chunk is retried (XEP-0047 §2.2 "retry sending at a later time");
//!   with a window above 1 the receiver may already have later chunks and will then close
//!   with `unexpected-request` (see [`proto`]).
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

pub mod config;
pub mod error;
#[cfg(feature = "__fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod payload;
pub mod proto;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use config::{Config, DEFAULT_BLOCK_SIZE, OpenOptions};
pub use error::{Error, MisuseError, PayloadError, ProtocolError, TimeoutKind};
pub use payload::{Close, Data, Open, Payload, Sid, StanzaKind};
pub use proto::{Event, Role, Session};
#[cfg(feature = "tokio")]
pub use tokio::{Ibb, IbbStream, IncomingOpen};
