//! The algorithms we compute, their names, our disco features and the choice of one from a
//! peer's disco features.

use std::fmt;

use xmpp_parsers::hashes::Algo;

/// `urn:xmpp:hashes:2`: we support XEP-0300 at all (without it a peer gets no hash).
pub const NS_HASHES: &str = "urn:xmpp:hashes:2";

/// The prefix of the per-algorithm disco features (XEP-0300 §6; the registry's
/// `urn:xmpp:hash-function-text-names:…`).
pub const NS_TEXT_NAMES: &str = "urn:xmpp:hash-function-text-names:";

/// A hash function this crate computes. `Copy`, closed: an algorithm we do not know stays
/// an [`Algo::Unknown`] of xmpp-parsers and is never hashed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashAlgo {
    /// SHA-256 (FIPS 180-4).
    Sha256,
    /// SHA-512 (FIPS 180-4).
    Sha512,
    /// SHA3-256 (FIPS 202).
    Sha3_256,
    /// SHA3-512 (FIPS 202).
    Sha3_512,
    /// BLAKE2b with a 256-bit output (RFC 7693).
    Blake2b256,
    /// BLAKE2b with a 512-bit output (RFC 7693).
    Blake2b512,
    /// SHA-1: read and verified when a peer sends only that, never chosen by us
    /// (XEP-0300 §4: MUST NOT be used for new purposes).
    Sha1,
}

/// Our preference when we choose what to send, best first, and the order in which a
/// received set is verified: the fastest strong functions on this kind of machine first
/// (see the README's throughput table: SHA-256 runs on the CPU's SHA extensions and
/// is fastest; BLAKE2b-512 next, BLAKE2b-256 costs the same as -512; SHA3 is the slowest).
/// Gajim 1.7.3 chooses the other way round (blake2b-512 first, sha-256 last), so between
/// us and Gajim the sender's order decides; every one of these Gajim verifies.
pub const PREFERENCE: [HashAlgo; 6] = [
    HashAlgo::Sha256,
    HashAlgo::Blake2b512,
    HashAlgo::Blake2b256,
    HashAlgo::Sha512,
    HashAlgo::Sha3_256,
    HashAlgo::Sha3_512,
];

/// Every algorithm we compute (the preference order, then SHA-1).
pub const ALL: [HashAlgo; 7] = [
    HashAlgo::Sha256,
    HashAlgo::Blake2b512,
    HashAlgo::Blake2b256,
    HashAlgo::Sha512,
    HashAlgo::Sha3_256,
    HashAlgo::Sha3_512,
    HashAlgo::Sha1,
];

/// The disco#info features we advertise: [`NS_HASHES`] and one text-name feature per
/// algorithm in [`PREFERENCE`] (SHA-1 is verified when received but not advertised).
/// BLAKE2b uses the registry's names (`id-blake2b256`, `id-blake2b512`), as Gajim does.
pub const DISCO_FEATURES: [&str; 7] = [
    NS_HASHES,
    "urn:xmpp:hash-function-text-names:sha-256",
    "urn:xmpp:hash-function-text-names:id-blake2b512",
    "urn:xmpp:hash-function-text-names:id-blake2b256",
    "urn:xmpp:hash-function-text-names:sha-512",
    "urn:xmpp:hash-function-text-names:sha3-256",
    "urn:xmpp:hash-function-text-names:sha3-512",
];

impl HashAlgo {
    /// The value of the `algo` attribute (XEP-0300 §3, IANA text names).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha-1",
            Self::Sha256 => "sha-256",
            Self::Sha512 => "sha-512",
            Self::Sha3_256 => "sha3-256",
            Self::Sha3_512 => "sha3-512",
            Self::Blake2b256 => "blake2b-256",
            Self::Blake2b512 => "blake2b-512",
        }
    }

    /// The length of a digest in bytes: a received value of any other length is invalid.
    pub const fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 | Self::Sha3_256 | Self::Blake2b256 => 32,
            Self::Sha512 | Self::Sha3_512 | Self::Blake2b512 => 64,
        }
    }

    /// The `algo` attribute value parsed; `None` for an algorithm we do not compute.
    pub fn from_name(name: &str) -> Option<Self> {
        ALL.into_iter().find(|a| a.name() == name)
    }

    /// The disco feature names that say a peer supports this algorithm: the registry's
    /// (`…:id-blake2b512` for BLAKE2b) and, leniently, one built from the `algo` name.
    pub fn features(self) -> &'static [&'static str] {
        match self {
            Self::Sha1 => &["urn:xmpp:hash-function-text-names:sha-1"],
            Self::Sha256 => &["urn:xmpp:hash-function-text-names:sha-256"],
            Self::Sha512 => &["urn:xmpp:hash-function-text-names:sha-512"],
            Self::Sha3_256 => &["urn:xmpp:hash-function-text-names:sha3-256"],
            Self::Sha3_512 => &["urn:xmpp:hash-function-text-names:sha3-512"],
            Self::Blake2b256 => &[
                "urn:xmpp:hash-function-text-names:id-blake2b256",
                "urn:xmpp:hash-function-text-names:blake2b-256",
            ],
            Self::Blake2b512 => &[
                "urn:xmpp:hash-function-text-names:id-blake2b512",
                "urn:xmpp:hash-function-text-names:blake2b-512",
            ],
        }
    }

    /// The xmpp-parsers value.
    pub fn to_algo(self) -> Algo {
        match self {
            Self::Sha1 => Algo::Sha_1,
            Self::Sha256 => Algo::Sha_256,
            Self::Sha512 => Algo::Sha_512,
            Self::Sha3_256 => Algo::Sha3_256,
            Self::Sha3_512 => Algo::Sha3_512,
            Self::Blake2b256 => Algo::Blake2b_256,
            Self::Blake2b512 => Algo::Blake2b_512,
        }
    }

    /// The xmpp-parsers value read back; `None` for [`Algo::Unknown`].
    pub fn from_algo(algo: &Algo) -> Option<Self> {
        Some(match algo {
            Algo::Sha_1 => Self::Sha1,
            Algo::Sha_256 => Self::Sha256,
            Algo::Sha_512 => Self::Sha512,
            Algo::Sha3_256 => Self::Sha3_256,
            Algo::Sha3_512 => Self::Sha3_512,
            Algo::Blake2b_256 => Self::Blake2b256,
            Algo::Blake2b_512 => Self::Blake2b512,
            Algo::Unknown(name) => return Self::from_name(name),
        })
    }
}

impl fmt::Display for HashAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The algorithm to hash a file we send with, from the peer's disco#info features, by
/// [`PREFERENCE`]. `None` when the peer does not list [`NS_HASHES`] (then send no hash, as
/// Gajim does) or lists none of ours.
///
/// ```
/// use xep0300_hashes::{HashAlgo, choose};
/// let gajim = ["urn:xmpp:hashes:2", "urn:xmpp:hash-function-text-names:id-blake2b512",
///              "urn:xmpp:hash-function-text-names:sha3-256"];
/// assert_eq!(choose(gajim), Some(HashAlgo::Blake2b512));
/// assert_eq!(choose(["urn:xmpp:hash-function-text-names:sha-256"]), None);
/// ```
pub fn choose<I, S>(features: I) -> Option<HashAlgo>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    choose_from(features, &PREFERENCE)
}

/// [`choose`] with another preference order (e.g. a user's setting).
pub fn choose_from<I, S>(features: I, preference: &[HashAlgo]) -> Option<HashAlgo>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let features: Vec<S> = features.into_iter().collect();
    let has = |f: &str| features.iter().any(|x| x.as_ref() == f);
    if !has(NS_HASHES) {
        return None;
    }
    preference
        .iter()
        .copied()
        .find(|a| a.features().iter().any(|f| has(f)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lengths_and_parser_values_round_trip() {
        for a in ALL {
            assert_eq!(HashAlgo::from_name(a.name()), Some(a));
            assert_eq!(HashAlgo::from_algo(&a.to_algo()), Some(a));
            assert_eq!(String::from(a.to_algo()), a.name());
        }
        assert_eq!(HashAlgo::from_name("md5"), None);
        assert_eq!(HashAlgo::from_algo(&Algo::Unknown("md5".into())), None);
    }

    #[test]
    fn every_advertised_feature_is_understood_by_our_own_choice() {
        for a in PREFERENCE {
            let mut features: Vec<&str> = vec![NS_HASHES];
            features.push(a.features()[0]);
            assert!(DISCO_FEATURES.contains(&a.features()[0]), "{a}");
            assert_eq!(choose(&features), Some(a));
        }
        assert_eq!(choose(DISCO_FEATURES), Some(PREFERENCE[0]));
    }

    #[test]
    fn sha1_is_never_chosen() {
        let f = [NS_HASHES, "urn:xmpp:hash-function-text-names:sha-1"];
        assert_eq!(choose(f), None);
    }
}
