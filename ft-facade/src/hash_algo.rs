//! [`HashAlgo`]: the hash algorithms a received file can be checked with (a vocabulary
//! type: the error, the outcome and the verification all name it; it imports nothing).

use std::fmt;

/// A hash algorithm a received file can be checked with, named as XEP-0300 names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashAlgo {
    /// MD5 (XEP-0096's `hash` attribute; not a security check).
    Md5,
    /// SHA-256 (`sha-256`).
    Sha256,
    /// SHA3-256 (`sha3-256`).
    Sha3_256,
    /// BLAKE2b with a 256-bit output (`blake2b-256`).
    Blake2b256,
    /// BLAKE2b with a 512-bit output (`blake2b-512`).
    Blake2b512,
}

impl HashAlgo {
    /// The XEP-0300 name: `md5`, `sha-256`, `sha3-256`, `blake2b-256`, `blake2b-512`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Md5 => "md5",
            Self::Sha256 => "sha-256",
            Self::Sha3_256 => "sha3-256",
            Self::Blake2b256 => "blake2b-256",
            Self::Blake2b512 => "blake2b-512",
        }
    }

    /// The algorithm of an XEP-0300 name; `None` for one we do not know.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Md5,
            Self::Sha256,
            Self::Sha3_256,
            Self::Blake2b256,
            Self::Blake2b512,
        ]
        .into_iter()
        .find(|a| a.name() == name)
    }

    /// The digest's length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Self::Md5 => 16,
            Self::Blake2b512 => 64,
            _ => 32,
        }
    }

    /// Which of two checked algorithms a result names: the stronger one.
    pub(crate) fn rank(self) -> u8 {
        match self {
            Self::Md5 => 0,
            Self::Sha256 => 1,
            Self::Blake2b256 => 2,
            Self::Sha3_256 => 3,
            Self::Blake2b512 => 4,
        }
    }
}

impl fmt::Display for HashAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
