//! XEP-0096 SI File Transfer (v1.3.1): file metadata, range, hashing, safe naming.
//!
//! # Flow
//!
//! As XEP-0096 §2–3 draw it (the SI exchange of `xep0095-si`, with this profile):
//!
//! ```text
//! Sender                                             Receiver
//!   | iq set <si id='s' profile='…/file-transfer'>         |
//!   |   <file name='a.txt' size='1022' hash='552d…'        |
//!   |         date='…'><desc/><range/></file>              |
//!   |   <feature> stream-method options </feature>         |
//!   |----------------------------------------------------->|
//!   |            iq result <si><file><range offset='512'/> |
//!   |              </file><feature> chosen method          |
//!   |<-----------------------------------------------------|
//!   |   bytes offset..size over the chosen bytestream      |
//!   |=====================================================>|
//!   |                       receiver checks size (and MD5  |
//!   |                       when `hash` was offered), then |
//!   |                       renames `<name>.part` in place |
//! ```
//!
//! # What this crate does and does not do
//!
//! * Wire types: `<file name size date hash desc>` ([`File`]) with `<range offset length>`
//!   ([`Range`], 64-bit), and the answer's `<file><range/></file>` ([`FileAnswer`]).
//! * Offers: [`FileOffer`] is an XEP-0095 offer whose profile is file transfer; anything
//!   else is refused with `bad-request` + `<bad-profile/>`.
//! * The sender's side: [`FileMeta::from_path`] (name, size, mtime as an XEP-0082 date, a
//!   MIME guess) and [`Digests::of_path`] for the `hash` attribute (hex MD5, which QXmpp
//!   checks).
//! * The receiver's side: [`safe_file_name`] (the peer's name can never leave the target
//!   directory), [`Hasher`] (MD5 and SHA-256 as data flows) and, under `tokio`,
//!   [`PartFile`]: `<name>.part`, only ever a file it created (never through a symlink,
//!   never a user's file of that name), synced as it grows, a byte count that refuses more
//!   than offered, a final check of size and hash, a rename that never overwrites unless
//!   asked, and resume with `<range offset>` only of a part of ours for the same file
//!   ([`PartKey`]); [`available_space`] for a free-space policy.
//!
//! It moves no bytes over the network: the stream method (SOCKS5 or IBB) is negotiated by
//! `xep0095-si` and carried by the bytestream crates; the facade glues them.
//!
//! # Example
//!
//! ```
//! use minidom::Element;
//! use xep0095_si::{Sid, method, offer_iq};
//! use xep0096_file::{File, FileOffer, Hasher, Range, safe_file_name};
//! use xmpp_parsers::iq::Iq;
//!
//! // The sender offers a file with its MD5 and announces ranged transfers.
//! let mut h = Hasher::new();
//! h.update(b"hello");
//! let file = File::new("../notes.txt", 5).with_md5(h.finish().md5).with_ranged();
//! let si = FileOffer::si(&Sid::new("s1").unwrap(), file, Some("text/plain"), &[method::IBB]);
//! let iq = offer_iq("o1", "bob@example.org/pc".parse().unwrap(), si).unwrap();
//! let iq = Iq::try_from(Element::from(iq)).unwrap(); // over the wire
//!
//! // The receiver reads it; the name is made safe before it touches the disk.
//! let offer = FileOffer::from_iq(&iq).unwrap();
//! assert_eq!(offer.file.size, Some(5));
//! assert_eq!(offer.safe_name().unwrap(), "notes.txt");
//! assert_eq!(safe_file_name("C:\\Windows\\..\\CON.txt").unwrap(), "_CON.txt");
//!
//! // It already has 2 bytes in notes.txt.part, so it asks for the rest.
//! let answer = offer.accept(method::IBB, Some(Range::from_offset(2))).unwrap();
//! assert_eq!(answer.id(), "o1");
//! ```
//!
//! # Deviations and choices
//!
//! * `date` is kept as text and read leniently ([`File::parsed_date`]): XEP-0096's own
//!   Example 10 writes a date without seconds, and a bad date is no reason to refuse a file.
//! * A `<range/>` in the answer is only sent when the offer announced ranged transfers.
//! * Names are made safe by taking the last path component and replacing what is unsafe
//!   rather than refusing the offer; only NUL, `.`/`..` and empty names are refused.
//! * The MIME guess is a built-in table of about 50 common extensions (no dependency).
//!
//! # Cargo features
//!
//! * `tokio` (default): [`PartFile`], the async receiving writer, and [`HashLanes`]
//!   (MD5 and SHA-256 on threads of their own, beside the I/O).
//! * `__fuzzing`: private, don't rely on this.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

pub mod error;
#[cfg(feature = "__fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod hash;
#[cfg(feature = "tokio")]
pub mod lanes;
pub mod meta;
pub mod name;
pub mod offer;
#[cfg(feature = "tokio")]
pub mod part;
pub mod payload;

pub use error::{FileError, NameError, WriteError};
pub use hash::{Digests, Hasher, LaneDigest};
#[cfg(feature = "tokio")]
pub use lanes::{HashLanes, LaneDigests, LaneGone};
pub use meta::{FileMeta, guess_mime_type};
pub use name::{MAX_NAME_BYTES, safe_file_name};
pub use offer::{Expected, FileOffer, answer_range, error_reply};
#[cfg(feature = "tokio")]
pub use part::{Collision, PartFile, PartKey, available_space};
pub use payload::{File, FileAnswer, NS_FILE_TRANSFER, Range};
