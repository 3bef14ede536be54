//! Hashing while data flows: MD5 (the SI `hash` attribute, which QXmpp checks) and SHA-256.

use std::fmt;
use std::io::{self, Read};
use std::path::Path;

use md5::{Digest as _, Md5};
use sha2::Sha256;

/// Computes MD5 and SHA-256 over the bytes given to [`update`](Self::update), in one pass.
#[derive(Clone, Default)]
pub struct Hasher {
    md5: Md5,
    sha256: Sha256,
    len: u64,
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher").field("len", &self.len).finish()
    }
}

impl Hasher {
    /// A hasher that has seen no bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        self.sha256.update(data);
        self.len += data.len() as u64;
    }

    /// How many bytes were fed.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no bytes were fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest states and the byte count (to go on in [`HashLanes`](crate::HashLanes)).
    #[cfg(feature = "tokio")]
    pub(crate) fn into_parts(self) -> (Md5, Sha256, u64) {
        (self.md5, self.sha256, self.len)
    }

    /// The digests of everything fed.
    pub fn finish(self) -> Digests {
        Digests {
            md5: self.md5.finalize().into(),
            sha256: self.sha256.finalize().into(),
            len: self.len,
        }
    }
}

/// A streaming digest the shared hashing pool ([`HashLanes`](crate::HashLanes)) can run
/// beside MD5 and SHA-256: any hash computed as the bytes flow (XEP-0300's sha3-256 or
/// blake2b, for example). Implement it for a hasher to have it computed off the data path,
/// in order, with the pool's bounds.
pub trait LaneDigest: Send + Sync + 'static {
    /// Feeds the next bytes.
    fn update(&mut self, data: &[u8]);
    /// The digest of everything fed so far, without ending it (more bytes may follow).
    fn snapshot(&self) -> Vec<u8>;
    /// A digest of the same algorithm that has seen no bytes (to start over).
    fn fresh(&self) -> Box<dyn LaneDigest>;
}

/// The digests of some content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digests {
    /// MD5.
    pub md5: [u8; 16],
    /// SHA-256.
    pub sha256: [u8; 32],
    /// The number of bytes hashed.
    pub len: u64,
}

impl Digests {
    /// The digests of a file's content, read with a 64 KiB buffer (bounded memory).
    pub fn of_path(path: impl AsRef<Path>) -> io::Result<Self> {
        let mut f = std::fs::File::open(path)?;
        let mut h = Hasher::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(h.finish())
    }

    /// MD5 as lower-case hex, as the `hash` attribute carries it.
    pub fn md5_hex(&self) -> String {
        hex::encode(self.md5)
    }

    /// SHA-256 as lower-case hex.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_known_values_whatever_the_chunking() {
        let data = b"The quick brown fox jumps over the lazy dog";
        let mut one = Hasher::new();
        one.update(data);
        let mut many = Hasher::new();
        for c in data.chunks(3) {
            many.update(c);
        }
        let (a, b) = (one.finish(), many.finish());
        assert_eq!(a, b);
        assert_eq!(a.md5_hex(), "9e107d9d372bb6826bd81d3542a419d6");
        assert_eq!(
            a.sha256_hex(),
            "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"
        );
        assert_eq!(a.len, 43);
    }

    #[test]
    fn empty_input_has_the_empty_digests() {
        let d = Hasher::new().finish();
        assert_eq!(d.md5_hex(), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
