//! XEP-0234 Jingle File Transfer (v0.19, `urn:xmpp:jingle:apps:file-transfer:5`).
//!
//! # Flow
//!
//! As XEP-0234 §4 draws it (push; a pull is the same with `senders='responder'`):
//!
//! ```text
//! Initiator (sender)                                  Responder (receiver)
//!    | session-initiate <description><file name size date hash|hash-used/>
//!    |                  <transport …/>                            |
//!    |----------------------------------------------------------->|
//!    |                            ack                             |
//!    |<-----------------------------------------------------------|
//!    |             session-accept (<range offset/> to resume)     |
//!    |<-----------------------------------------------------------|
//!    |                            ack                             |
//!    |----------------------------------------------------------->|
//!    |  [transport-info …, transport-replace → IBB …]             |
//!    |<---------------------------------------------------------->|
//!    |                  the file's bytes                          |
//!    |===========================================================>|
//!    |  session-info <checksum><file><hash/></file></checksum>    |
//!    |----------------------------------------------------------->|
//!    |  session-info <received/>                                  |
//!    |<-----------------------------------------------------------|
//!    |  session-terminate <success/>                              |
//!    |<---------------------------------------------------------->|
//! ```
//!
//! # What this crate does and does not do
//!
//! * [`FileInfo`]: the `<file/>` of an offer (push, [`FileInfo::offer`] from
//!   `xep0096_file::FileMeta`) or request (pull, [`FileInfo::request`]), read leniently
//!   and checked ([`FileInfo::check_offer`]: name made safe by `xep0096-file`, size bound,
//!   range inside the file; desc cut to 1 KiB; hashes of unknown algorithms or wrong length
//!   dropped).
//! * [`FtInfo`]: `<checksum/>` and `<received/>` with or without `creator`/`name`.
//! * [`FtSession`]: one file's negotiation over an `xep0166_jingle::Endpoint`, both roles and
//!   both directions; transports are opaque elements (identified by their namespace) that
//!   `xep0261-jingle-ibb` and `xep0260-jingle-s5b` build and read. Hashes are
//!   `xmpp_parsers::hashes::Hash`; choosing and computing them is the caller's.
//!
//! It does not move bytes, open files or read a clock.
//!
//! # Example
//!
//! ```
//! use std::time::Instant;
//! use minidom::Element;
//! use xep0166_jingle::{Config, Endpoint, Event, Reason, Sid};
//! use xep0234_jingle_ft::{FileInfo, FtEvent, FtSession};
//!
//! let (a, b) = ("romeo@montague.example/orchard", "juliet@capulet.example/balcony");
//! let mut config = Config::default();
//! xep0234_jingle_ft::configure(&mut config);
//! let mut romeo = Endpoint::new(a.parse()?, config.clone());
//! let mut juliet = Endpoint::new(b.parse()?, config);
//! let now = Instant::now();
//! let deliver = |src: &mut Endpoint, dst: &mut Endpoint| {
//!     while let Some(iq) = src.poll_transmit() {
//!         let _ = dst.handle_iq(now, iq.with_from(src.me().clone().into()));
//!     }
//! };
//!
//! let file = FileInfo { name: Some("notes.txt".into()), size: Some(5), ..Default::default() };
//! let tr: Element = "<transport xmlns='urn:xmpp:jingle:transports:ibb:1' sid='ch1' block-size='4096'/>".parse()?;
//! let mut out = FtSession::offer(&mut romeo, now, b.parse()?, Sid::new("s1")?, "f", file, tr.clone())?;
//! deliver(&mut romeo, &mut juliet);
//!
//! let Some(Event::Initiated { key, contents }) = juliet.poll_event() else { panic!() };
//! let mut inc = FtSession::incoming(&mut juliet, now, &key, &contents, Some(1 << 30))?;
//! assert_eq!(inc.file().safe_name()?, "notes.txt");
//! inc.accept(&mut juliet, now, tr, None)?;
//! deliver(&mut juliet, &mut romeo);
//! let accepted = std::iter::from_fn(|| romeo.poll_event()).find_map(|e| out.handle(&e));
//! assert!(matches!(accepted, Some(FtEvent::Accepted { .. })));
//!
//! // … the bytes go over the transport; then:
//! inc.send_received(&mut juliet, now)?;
//! inc.terminate(&mut juliet, now, Reason::Success)?;
//! deliver(&mut juliet, &mut romeo);
//! let evs: Vec<_> = std::iter::from_fn(|| romeo.poll_event()).filter_map(|e| out.handle(&e)).collect();
//! assert!(evs.contains(&FtEvent::Received));
//! assert!(matches!(evs.last(), Some(FtEvent::Ended { reason: Some(Reason::Success), .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Deviations and choices
//!
//! * `<checksum/>` and `<received/>` without `creator`/`name` (Gajim) are taken as being for
//!   the session's one file content.
//! * An offer's `<date/>` that does not parse is dropped, not the offer.
//! * [`FtSession::incoming`] refuses more than one content (`unsupported-applications`): one
//!   session, one file, as every client we know sends.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
#![doc(test(attr(deny(warnings))))]

mod event;
pub mod file;
pub mod info;
pub mod session;

pub use file::{FileInfo, FtError, MAX_DESC, MAX_HASHES, digest_len};
pub use info::{Checksum, FtInfo, Received};
pub use session::{Direction, FtEvent, FtSession, FtState, Verdict};

/// The application's namespace.
pub const NS_FT: &str = "urn:xmpp:jingle:apps:file-transfer:5";
/// XEP-0300's namespace (`<hash/>`, `<hash-used/>`).
pub const NS_HASHES: &str = "urn:xmpp:hashes:2";
/// XEP-0166's namespace.
pub const NS_JINGLE: &str = "urn:xmpp:jingle:1";
/// The disco#info features of Jingle FT itself (the transports' and hashes' are their
/// crates').
pub const DISCO_FEATURES: &[&str] = &[NS_JINGLE, NS_FT];

/// Adds what a Jingle FT endpoint needs to a core config: the session-info namespace.
pub fn configure(config: &mut xep0166_jingle::Config) {
    if !config.session_info_ns.iter().any(|n| n == NS_FT) {
        config.session_info_ns.push(NS_FT.to_owned());
    }
}
