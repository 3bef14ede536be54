//! XEP-0300 (Use of Cryptographic Hash Functions in XMPP, `urn:xmpp:hashes:2`) for file
//! transfer: streaming hashers, our disco features, the choice of an algorithm from a
//! peer's features, and the validation of the `<hash/>` elements a peer sends.
//!
//! The flow, as XEP-0300 and XEP-0234 draw it (the hash in the offer, or in session-info
//! when it is computed while the file streams):
//!
//! ```text
//! Sender                                   Receiver
//!   |  disco#info                            |
//!   |--------------------------------------->|
//!   |  <feature var='urn:xmpp:hashes:2'/>    |
//!   |  <feature var='…text-names:sha-256'/>  |   choose(features)
//!   |<---------------------------------------|
//!   |  session-initiate <file>               |
//!   |    [<hash algo='sha-256'>…</hash>]     |   read_hashes(file children)
//!   |--------------------------------------->|
//!   |  bytes … (Hasher::update per chunk)    |   Hasher::update per chunk
//!   |=======================================>|
//!   |  session-info <checksum><file><hash/>  |   (when not in the offer)
//!   |--------------------------------------->|   KnownHash::matches(hasher.finish())
//! ```
//!
//! # Example
//!
//! ```
//! use minidom::Element;
//! use xep0300_hashes::{Hasher, HashAlgo, choose, read_hashes, MAX_HASHES};
//!
//! // What Gajim 1.7.3 lists (trimmed): we pick by our preference.
//! let peer = ["urn:xmpp:hashes:2",
//!             "urn:xmpp:hash-function-text-names:id-blake2b512",
//!             "urn:xmpp:hash-function-text-names:sha-256"];
//! let algo = choose(peer).unwrap();
//! assert_eq!(algo, HashAlgo::Sha256);
//!
//! // Sender: hash while streaming, then send the element.
//! let mut h = Hasher::new(algo);
//! for chunk in [&b"hello "[..], b"world"] {
//!     h.update(chunk);
//! }
//! let hash: Element = h.finish().into();
//!
//! // Receiver: read what came (an unknown algorithm is ignored), verify after streaming.
//! let file: Element = format!(
//!     "<file xmlns='urn:xmpp:jingle:apps:file-transfer:5'>\
//!        <hash xmlns='urn:xmpp:hashes:2' algo='whirlpool'>AAAA</hash>{}</file>",
//!     String::from(&hash),
//! ).parse().unwrap();
//! let known = read_hashes(file.children(), MAX_HASHES).unwrap();
//! assert_eq!(known.len(), 1);
//! let mut mine = Hasher::new(known[0].algo);
//! mine.update(b"hello world");
//! assert!(known[0].matches(&mine.finish()));
//! ```
//!
//! Wire types are xmpp-parsers' [`Hash`](struct@Hash) and [`Algo`]; [`HashAlgo`] is the closed, `Copy`
//! set this crate computes (an [`Algo::Unknown`] never reaches a hasher).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod algo;
mod hasher;
mod validate;

pub use algo::{
    ALL, DISCO_FEATURES, HashAlgo, NS_HASHES, NS_TEXT_NAMES, PREFERENCE, choose, choose_from,
};
pub use hasher::{Hasher, MultiHasher};
pub use validate::{HashError, KnownHash, MAX_HASHES, read_hashes};
pub use xmpp_parsers::hashes::{Algo, Hash};
