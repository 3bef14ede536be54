//! XEP-0096 SI File Transfer (v1.3.1): file metadata, range, hashing, safe naming
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

pub mod error;
pub mod hash;
pub mod meta;
pub mod name;
pub mod offer;
#[cfg(feature = "tokio")]
pub mod part;
pub mod payload;

pub use error::{FileError, NameError, WriteError};
pub use hash::{Digests, Hasher};
pub use meta::{FileMeta, guess_mime_type};
pub use name::{MAX_NAME_BYTES, safe_file_name};
pub use offer::{Expected, FileOffer, answer_range, error_reply};
#[cfg(feature = "tokio")]
pub use part::{Collision, PartFile};
pub use payload::{File, FileAnswer, NS_FILE_TRANSFER, Range};
