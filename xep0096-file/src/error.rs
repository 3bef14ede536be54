//! Errors: a peer's `<file/>` or offer that cannot be used ([`FileError`], mapped to the
//! stanza error to reply with), a peer's file name that cannot be made safe ([`NameError`]),
//! and receiving to disk ([`WriteError`]).

use std::io;
use std::path::PathBuf;

use xep0095_si::{AppCondition, SiError};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

/// A `<file/>` element or file-transfer offer this crate cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The SI layer refused the offer.
    #[error(transparent)]
    Si(#[from] SiError),
    /// Another element where `<file/>` was expected.
    #[error(
        "expected <file xmlns='{}'>, found <{name} xmlns='{ns}'>",
        crate::NS_FILE_TRANSFER
    )]
    NotFile {
        /// The element's local name.
        name: String,
        /// The element's namespace.
        ns: String,
    },
    /// `<file/>` does not parse (missing `name` or `size`, a size that is not a u64, …).
    #[error("malformed file element: {0}")]
    Malformed(String),
    /// The `hash` attribute is not 32 hex digits (an MD5).
    #[error("file hash {0:?} is not a hex md5")]
    BadHash(String),
    /// A `<range/>` that reaches past the end of the file.
    #[error("range offset {offset} length {length:?} is outside a file of {size} bytes")]
    RangeOutOfBounds {
        /// The range's offset.
        offset: u64,
        /// The range's length, if given.
        length: Option<u64>,
        /// The file's size.
        size: u64,
    },
}

impl From<&FileError> for StanzaError {
    /// A bad `<file/>` is an invalid profile: `bad-request` + `<bad-profile/>` (XEP-0095
    /// §4.2 "the profile is not understood or invalid").
    fn from(err: &FileError) -> Self {
        match err {
            FileError::Si(e) => Self::from(e),
            FileError::NotFile { .. } | FileError::Malformed(_) | FileError::BadHash(_) => {
                xep0095_si::error::si_error(AppCondition::BadProfile)
            }
            FileError::RangeOutOfBounds { .. } => Self {
                type_: ErrorType::Modify,
                by: None,
                defined_condition: DefinedCondition::BadRequest,
                texts: Default::default(),
                other: None,
            },
        }
    }
}

/// A peer's file name that cannot be turned into a safe local name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Nothing usable is left (empty, only spaces and dots, or a trailing separator).
    #[error("file name {0:?} has no usable characters")]
    Empty(String),
    /// The name contains a NUL character.
    #[error("file name contains a nul character")]
    Nul,
    /// The last path component is `.` or `..`.
    #[error("file name {0:?} names a directory, not a file")]
    DotName(String),
}

impl From<&NameError> for StanzaError {
    /// An offered name no local name can be made from is an invalid profile:
    /// `bad-request` + `<bad-profile/>`.
    fn from(_: &NameError) -> Self {
        xep0095_si::error::si_error(AppCondition::BadProfile)
    }
}

/// What can go wrong receiving into a `.part` file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The peer's name could not be made safe.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A file system operation failed (a full disk shows up here as
    /// [`io::ErrorKind::StorageFull`]).
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("write", "rename", …).
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The peer sent more bytes than the offered size.
    #[error("peer sent {received} bytes, more than the offered {expected}")]
    TooManyBytes {
        /// The offered size.
        expected: u64,
        /// The bytes received including this write.
        received: u64,
    },
    /// The stream ended with fewer (or more) bytes than expected.
    #[error("received {received} bytes, expected {expected}")]
    SizeMismatch {
        /// The expected size.
        expected: u64,
        /// The size received.
        received: u64,
    },
    /// The content does not match the announced hash.
    #[error("{algorithm} mismatch: expected {expected}, got {actual}")]
    HashMismatch {
        /// `md5` or `sha-256`.
        algorithm: &'static str,
        /// The announced digest, hex.
        expected: String,
        /// The digest of what was received, hex.
        actual: String,
    },
    /// An existing `.part` file is longer than the whole file.
    #[error("existing partial file {path} has {len} bytes, more than the file's {size}")]
    PartTooLong {
        /// The `.part` path.
        path: PathBuf,
        /// Its length.
        len: u64,
        /// The offered size.
        size: u64,
    },
    /// The final name exists and the policy is [`Collision::Fail`](crate::Collision::Fail).
    #[error("{0} already exists")]
    Exists(PathBuf),
    /// Every `name (n).ext` up to the limit exists.
    #[error("no free name for {0} after {1} attempts")]
    NoFreeName(PathBuf, u32),
}

impl WriteError {
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unusable_name_maps_to_bad_profile() {
        let e = StanzaError::from(&NameError::Nul);
        assert_eq!(e.defined_condition, DefinedCondition::BadRequest);
        assert_eq!(AppCondition::of(&e), Some(AppCondition::BadProfile));
    }

    #[test]
    fn a_range_out_of_bounds_is_bad_request() {
        let e = StanzaError::from(&FileError::RangeOutOfBounds {
            offset: 9,
            length: None,
            size: 1,
        });
        assert_eq!(e.defined_condition, DefinedCondition::BadRequest);
        assert_eq!(e.type_, ErrorType::Modify);
    }
}
