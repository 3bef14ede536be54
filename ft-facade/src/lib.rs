//! The complete XMPP file transfer, by both stacks: Jingle File Transfer (XEP-0234 over
//! XEP-0166, on XEP-0260 or XEP-0261) and SI (XEP-0096 over XEP-0095, on XEP-0065 or
//! XEP-0047), chosen per peer by disco.
//!
//! XEP-0234 Jingle File Transfer (v0.19) over XEP-0166 Jingle (v1.1.2), carried by
//! XEP-0260 Jingle SOCKS5 Bytestreams (v1.0.3) or XEP-0261 Jingle In-Band Bytestreams
//! (v1.0), hashes per XEP-0300 (v1.0); XEP-0096 SI File Transfer (v1.3.1) negotiated with
//! XEP-0095 Stream Initiation (v1.2), carried by XEP-0065 SOCKS5 Bytestreams (v1.8.2) or
//! XEP-0047 In-Band Bytestreams (v2.0.1); XEP-0030 (v2.5.0) for features and proxies.
//!
//! # Flow
//!
//! The sender asks the peer's disco#info and takes the first stack of
//! [`Config::stacks`] the peer has (default: Jingle, then SI; a peer that does not answer
//! disco gets SI). One Jingle transfer, as XEP-0234 §4, XEP-0260 §2 and XEP-0261 §2 draw it
//! together:
//!
//! ```text
//! Sender (FileTransfer::send_file)                   Receiver (IncomingOffer)
//!   |  [disco#info: jingle:1, file-transfer:5, s5b:1/ibb:1, hashes:2]
//!   | session-initiate <file name size date [hash|hash-used]/>
//!   |                  <transport s5b: our candidates | ibb: sid block-size/>
//!   |----------------------------------------------------->|  next_offer()
//!   |   session-accept [<range offset/>] <transport: its candidates | ibb answer/>
//!   |<-----------------------------------------------------|  accept_into_dir()
//!   | S5B: both race, transport-info <candidate-used/> / <candidate-error/>,
//!   |      [proxy: <activate/> to the proxy, <activated/>]
//!   |<---------------------------------------------------->|
//!   |   or, when S5B fails: transport-replace <ibb/>, transport-accept
//!   | IBB: iq set <open sid block-size/>, <data/>…         |
//!   |   the file's bytes; then S5B half-close / IBB close  |
//!   |=====================================================>|
//!   | [session-info <checksum><hash/></checksum>] (no hash in the offer)
//!   |----------------------------------------------------->|  size, hash checked,
//!   |       session-terminate <success/> | <media-error/>  |  .part renamed
//!   |<-----------------------------------------------------|
//! ```
//!
//! One SI transfer, as XEP-0096 §2 and XEP-0065 §5.3 / XEP-0047 §2 draw it together:
//!
//! ```text
//! Sender (FileTransfer::send_file)                   Receiver (IncomingOffer)
//!   |  [disco#info: does the peer do si file transfer?]    |
//!   | iq set <si><file name size [hash]/> methods </si>    |
//!   |----------------------------------------------------->|  next_offer()
//!   |        iq result <si> chosen method [<range/>]       |  accept_into_dir()
//!   |<-----------------------------------------------------|
//!   | S5B: iq set <query sid><streamhost/>…</query>        |
//!   |----------------------------------------------------->|  connects, SOCKS5
//!   |        iq result <streamhost-used jid/>              |
//!   |<-----------------------------------------------------|
//!   |  [proxy: iq set <activate/> to the proxy]            |
//!   |     or, when S5B fails or IBB was chosen:            |
//!   | IBB: iq set <open sid block-size/>, <data/>…         |
//!   |----------------------------------------------------->|
//!   |   the file's bytes; then S5B half-close / IBB close  |
//!   |=====================================================>|  size, MD5 checked,
//!   |                                                      |  .part renamed
//! ```
//!
//! # What this crate does and does not do
//!
//! [`FileTransfer`] is one manager over one XMPP connection (any
//! [`ft_transport::StanzaTransport`]):
//!
//! * **Sending**: [`FileTransfer::send_file`] / [`FileTransfer::send_reader`] offer a file
//!   with its size, date and, for files within [`Config::offer_hash`] (64 MiB by default),
//!   the MD5 computed before the offer (larger files are offered at once without it and
//!   hashed while streaming), stream it by the first method
//!   of the preference the peer accepts, and half-close at the end (Prosody's proxy holds
//!   the last 4 KiB until then).
//! * **Receiving**: [`FileTransfer::next_offer`] yields [`IncomingOffer`]s to accept into a
//!   directory (safe name, `<name>.part` held exclusively so that two receivers of one
//!   name use `<name (1).ext>.part` and never share one, MD5 and SHA-256 on threads of
//!   their own beside the disk writes, size and MD5 checked, renamed into place, never
//!   overwriting unless asked, resumed from an existing `.part` with `<range offset/>`) or
//!   into any `AsyncWrite`, or to decline (`forbidden`). [`Policy`] auto-accepts from given
//!   accounts and declines offers over a size.
//! * **Methods**: an ordered preference ([`Config::methods`]); S5B falls back to IBB on the
//!   same sid the way libpurple does (the target answers `item-not-found`, the initiator
//!   opens IBB), and an IBB open that comes while S5B is still being tried is taken too
//!   (Spark, seed 004). One total S5B budget ([`Config::s5b_budget`]).
//! * **Proxies**: configured, or discovered (disco#items on our server, `proxy/bytestreams`
//!   identities, then the bytestreams query on each), cached.
//! * **Control and diagnostics**: every transfer is a [`TransferHandle`] with progress,
//!   structured [`Event`]s (disco, offer, proxies, candidate attempts, fallback, connected,
//!   progress, completion) with timings, `cancel()` at any stage, and a final
//!   [`Outcome`] or [`TransferError`] `{ stage, kind }`.
//!
//! * **Jingle** ([`Stack::Jingle`]): one XEP-0166 session table per manager; the
//!   XEP-0260 candidates are our own listener (on the addresses of [`Config::s5b`]) and the
//!   proxies of [`Config::proxies`], the peer's raced under the same dial policy and
//!   budget; S5B failing moves to IBB by transport-replace within the same budget; the
//!   offer carries the SHA-256 of files within [`Config::offer_hash`], larger files send it
//!   in `<checksum/>` right after the last byte (a peer whose disco#info lists no SHA-256
//!   but another hash we compute gets that one, in `<checksum/>`); the receiver checks any
//!   XEP-0300 hash (SHA-256, SHA3-256, BLAKE2b-256/512) and ends the session `<success/>`
//!   only once the file is in place (`<media-error/>` for wrong bytes); the sender's
//!   delivery is [`Delivery::Acknowledged`] only after that `<success/>` (or
//!   `<received/>`). A dateless offer with a strong hash resumes like a dated one.
//!   **Pull** (XEP-0234 §5): [`FileTransfer::request_file`] asks a peer for a file by name
//!   or hash and receives it like an accepted offer; a peer's request comes from
//!   [`FileTransfer::next_request`] as an [`IncomingRequest`], served only with a file the
//!   application gives ([`IncomingRequest::accept_file`]), else ended
//!   `<failed-application/>`.
//!
//! It does not own the XMPP connection: the application feeds every inbound stanza to
//! [`FileTransfer::handle_stanza`] and gets back what is not ours. The pump contract:
//! await [`FileTransfer::ready`] before each `handle_stanza`, so that a receiver that lags
//! behind IBB over `<message/>` (which has no acknowledgements) slows the sender down
//! instead of overrunning; it returns at once otherwise. It does not do HTTP upload
//! (XEP-0363) or out-of-band URLs (XEP-0066), nor resume a pull. Unlike
//! the XEP crates below it, it has no sans-IO core of its own: it is the tokio layer that
//! composes theirs, and every transfer runs on a task.
//!
//! # Example
//!
//! Two entities on the in-memory hub, the bytes over IBB (each lists Jingle in its
//! disco#info, so the file goes by Jingle):
//!
//! ```
//! use ft_facade::{AcceptOptions, Config, FileTransfer, Method, ProxySource, SendOptions};
//! use ft_transport::hub::Hub;
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let hub = Hub::new();
//! let mut config = Config::default();
//! config.methods(&[Method::Ibb]).proxies(ProxySource::None);
//!
//! let mut peers = Vec::new();
//! for me in ["alice@example.org/a", "bob@example.org/b"] {
//!     let (transport, mut inbox) = hub.connect(me.parse().unwrap());
//!     let ft = FileTransfer::new(transport, config.clone());
//!     let pumped = ft.clone();
//!     // The application's receive loop: wait until ready, offer every stanza, keep what
//!     // comes back.
//!     tokio::spawn(async move {
//!         while let Some(stanza) = inbox.recv().await {
//!             pumped.ready().await;
//!             let _not_ours = pumped.handle_stanza(stanza);
//!         }
//!     });
//!     peers.push(ft);
//! }
//! let (alice, bob) = (&peers[0], &peers[1]);
//!
//! let src = tempfile::tempdir().unwrap();
//! let path = src.path().join("hello.txt");
//! std::fs::write(&path, b"hello, bob").unwrap();
//! let sending = alice.send_file("bob@example.org/b".parse().unwrap(), &path, SendOptions::default());
//!
//! let offer = bob.next_offer().await.unwrap();
//! assert_eq!(offer.file().name, "hello.txt");
//! let dst = tempfile::tempdir().unwrap();
//! let receiving = offer.accept_into_dir(dst.path(), AcceptOptions::new());
//!
//! let received = receiving.outcome().await.unwrap();
//! let sent = sending.outcome().await.unwrap();
//! assert_eq!(sent.stack, ft_facade::Stack::Jingle);
//! assert_eq!(std::fs::read(received.path.unwrap()).unwrap(), b"hello, bob");
//! # });
//! ```
//!
//! # Cargo features
//!
//! None: the facade always uses tokio and every XEP crate with its `tokio` feature.
//!
//! # Known deviations
//!
//! * A sender that cancels while its offer is pending stops waiting; SI has no way to
//!   withdraw an offer, so a receiver that accepts later times out waiting for the stream
//!   ([`Config::stream_start_timeout`]).
//! * SI: a sender's cancel mid-stream reaches the receiver as the end of the bytestream
//!   (IBB `<close/>`, S5B socket close), so the receiver reports [`ErrorKind::Truncated`].
//!   Jingle says it: the receiver reports [`ErrorKind::Cancelled`]`(`[`Side::Peer`]`)`.
//! * Jingle: the sender offers SHA-256 only (every XEP-0300 peer computes it; Gajim
//!   verifies it), whatever `xep0300_hashes::choose` would prefer; a receiver given no hash
//!   and no `<hash-used/>` computes SHA-256 and BLAKE2b-512 (Gajim's choice) for the
//!   `<checksum/>` to come.
//! * Jingle: a peer's transport-info is acknowledged by the session core when it arrives;
//!   an S5B element the negotiation refuses is logged, not answered with an error.
//! * Jingle: the resume key of a `.part` is the peer, name, size and `<date/>` (SI's adds
//!   the MD5); an offer without a date does not resume.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

mod cleanup;
mod config;
mod copy;
mod error;
mod event;
mod glue;
mod handle;
mod hash_algo;
mod jingle_error;
mod manager;
mod options;
mod receive;
#[cfg(test)]
mod receive_tests;
mod recv;
mod recv_stream;
mod refused;
mod send;
mod send_stream;
mod shared;
mod stack;
mod verify;

pub use config::{
    Config, IbbOptions, Method, OfferHash, Policy, ProxySource, S5bRoute, UnknownMethod,
};
pub use error::{ErrorKind, Misuse, Side, Stage, TransferError};
pub use event::{
    CandidateReport, Delivery, Event, FallbackReason, FileInfo, MethodUsed, Outcome, Progress,
    Warning,
};
pub use ft_transport::{InvalidSid, Sid};
pub use handle::{Canceller, PROGRESS_INTERVAL, TransferHandle};
pub use hash_algo::HashAlgo;
pub use jingle_error::JingleError;
pub use manager::{FileTransfer, REFUSED_QUEUE};
pub use options::{AcceptOptions, SendOptions};
pub use recv::IncomingOffer;
pub use refused::{Refusal, RefusedOffer};
pub use stack::jingle::pull::FileRequest;
pub use stack::jingle::serve::IncomingRequest;
pub use stack::{Stack, UnknownStack};
pub use xep0047_ibb::StanzaKind;

/// XEP-0030 Service Discovery (the `xep0030-disco` crate).
pub use xep0030_disco as disco;
/// XEP-0047 In-Band Bytestreams (the `xep0047-ibb` crate).
pub use xep0047_ibb as ibb;
/// XEP-0065 SOCKS5 Bytestreams (the `xep0065-s5b` crate).
pub use xep0065_s5b as s5b;
/// XEP-0095 Stream Initiation (the `xep0095-si` crate).
pub use xep0095_si as si;
/// XEP-0096 SI File Transfer (the `xep0096-file` crate).
pub use xep0096_file as file;
