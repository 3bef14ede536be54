//! Streaming hashers: fed while the bytes stream, never by a second read.

use std::fmt;

use blake2::{Blake2b, Blake2b512, digest::consts::U32};
use xmpp_parsers::hashes::Hash;

use crate::algo::HashAlgo;

// sha1/sha2/blake2 implement digest 0.10, sha3 0.12 digest 0.11 (the versions already in
// the tree): each is called through its own crate's re-exported `Digest`.
use blake2::Digest as _;

#[derive(Clone)]
enum Inner {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
    Sha3_256(sha3::Sha3_256),
    Sha3_512(sha3::Sha3_512),
    Blake2b256(Blake2b<U32>),
    Blake2b512(Blake2b512),
}

/// One running hash: [`Hasher::new`], [`Hasher::update`] with every chunk as it streams,
/// [`Hasher::finish`] into the `<hash/>` element.
///
/// ```
/// use xep0300_hashes::{HashAlgo, Hasher};
/// let mut h = Hasher::new(HashAlgo::Sha256);
/// h.update(b"Hello, ");
/// h.update(b"world!");
/// let hash = h.finish();
/// assert_eq!(hash.to_base64(), "MV9b23bQeMQ7isAGTkoBZGErH853yGk0W/yUx1iU7dM=");
/// ```
///
/// `Clone` (a snapshot of the digest so far: finish the clone, keep feeding the original).
#[derive(Clone)]
pub struct Hasher {
    algo: HashAlgo,
    inner: Inner,
    bytes: u64,
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher")
            .field("algo", &self.algo)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl Hasher {
    /// A fresh hasher for `algo`.
    pub fn new(algo: HashAlgo) -> Self {
        let inner = match algo {
            HashAlgo::Sha1 => Inner::Sha1(sha1::Digest::new()),
            HashAlgo::Sha256 => Inner::Sha256(sha2::Digest::new()),
            HashAlgo::Sha512 => Inner::Sha512(sha2::Digest::new()),
            HashAlgo::Sha3_256 => Inner::Sha3_256(sha3::Digest::new()),
            HashAlgo::Sha3_512 => Inner::Sha3_512(sha3::Digest::new()),
            HashAlgo::Blake2b256 => Inner::Blake2b256(Blake2b::<U32>::new()),
            HashAlgo::Blake2b512 => Inner::Blake2b512(Blake2b512::new()),
        };
        Self {
            algo,
            inner,
            bytes: 0,
        }
    }

    /// The algorithm.
    pub fn algo(&self) -> HashAlgo {
        self.algo
    }

    /// How many bytes were hashed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Hashes the next chunk.
    pub fn update(&mut self, data: &[u8]) {
        self.bytes += data.len() as u64;
        match &mut self.inner {
            Inner::Sha1(h) => sha1::Digest::update(h, data),
            Inner::Sha256(h) => sha2::Digest::update(h, data),
            Inner::Sha512(h) => sha2::Digest::update(h, data),
            Inner::Sha3_256(h) => sha3::Digest::update(h, data),
            Inner::Sha3_512(h) => sha3::Digest::update(h, data),
            Inner::Blake2b256(h) => h.update(data),
            Inner::Blake2b512(h) => h.update(data),
        }
    }

    /// The digest bytes.
    pub fn finish_bytes(self) -> Vec<u8> {
        match self.inner {
            Inner::Sha1(h) => sha1::Digest::finalize(h).to_vec(),
            Inner::Sha256(h) => sha2::Digest::finalize(h).to_vec(),
            Inner::Sha512(h) => sha2::Digest::finalize(h).to_vec(),
            Inner::Sha3_256(h) => sha3::Digest::finalize(h).to_vec(),
            Inner::Sha3_512(h) => sha3::Digest::finalize(h).to_vec(),
            Inner::Blake2b256(h) => h.finalize().to_vec(),
            Inner::Blake2b512(h) => h.finalize().to_vec(),
        }
    }

    /// The `<hash xmlns='urn:xmpp:hashes:2' algo='…'>` element for what was hashed.
    pub fn finish(self) -> Hash {
        let algo = self.algo.to_algo();
        Hash::new(algo, self.finish_bytes())
    }
}

/// Several algorithms over the same stream at once (a sender offering more than one hash,
/// a receiver verifying every known hash a peer sent).
#[derive(Debug)]
pub struct MultiHasher {
    hashers: Vec<Hasher>,
}

impl MultiHasher {
    /// One hasher per algorithm, duplicates dropped.
    pub fn new(algos: impl IntoIterator<Item = HashAlgo>) -> Self {
        let mut hashers: Vec<Hasher> = Vec::new();
        for a in algos {
            if !hashers.iter().any(|h| h.algo == a) {
                hashers.push(Hasher::new(a));
            }
        }
        Self { hashers }
    }

    /// Hashes the next chunk with every algorithm.
    pub fn update(&mut self, data: &[u8]) {
        for h in &mut self.hashers {
            h.update(data);
        }
    }

    /// One `<hash/>` per algorithm, in the order given.
    pub fn finish(self) -> Vec<Hash> {
        self.hashers.into_iter().map(Hasher::finish).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::ALL;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// Known answers for "abc" (FIPS 180-4, FIPS 202, RFC 7693 Appendix A).
    #[test]
    fn known_answers_for_abc() {
        let want = [
            (HashAlgo::Sha1, "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (
                HashAlgo::Sha256,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                HashAlgo::Sha3_256,
                "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532",
            ),
            (
                HashAlgo::Blake2b512,
                "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1\
                 7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923",
            ),
        ];
        for (algo, hexd) in want {
            let mut h = Hasher::new(algo);
            h.update(b"a");
            h.update(b"bc");
            assert_eq!(hex(&h.finish_bytes()), hexd, "{algo}");
        }
    }

    #[test]
    fn output_lengths_match_the_table_and_chunking_does_not_matter() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        for algo in ALL {
            let mut one = Hasher::new(algo);
            one.update(&data);
            let mut many = Hasher::new(algo);
            for c in data.chunks(333) {
                many.update(c);
            }
            assert_eq!(many.bytes(), data.len() as u64);
            let (a, b) = (one.finish(), many.finish());
            assert_eq!(a, b, "{algo}");
            assert_eq!(a.hash.len(), algo.output_len(), "{algo}");
        }
    }
}
