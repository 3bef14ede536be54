//! Reading the `<hash/>` elements a peer sent: bounded, unknown algorithms ignored, every
//! known one checked (base64, length) before it is trusted.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use minidom::Element;
use xmpp_parsers::hashes::Hash;

use crate::algo::{HashAlgo, NS_HASHES, PREFERENCE};

/// How many `<hash/>` elements [`read_hashes`] looks at by default; one more is an error.
/// XEP-0300 lets an entity send several; a real peer sends one (Gajim) or two.
pub const MAX_HASHES: usize = 16;

/// The longest value text we decode: the base64 of a 64-byte digest is 88 characters; a
/// longer text (after trimming) is refused before decoding.
const MAX_VALUE_CHARS: usize = 256;

/// Why a received `<hash/>` is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum HashError {
    /// More `<hash/>` elements than the bound.
    #[error("more than {max} <hash/> elements")]
    TooMany {
        /// The bound.
        max: usize,
    },
    /// A `<hash/>` without an `algo` attribute.
    #[error("<hash/> without an algo attribute")]
    MissingAlgo,
    /// The value of a known algorithm is not base64.
    #[error("the {algo} value is not base64: {reason}")]
    NotBase64 {
        /// The algorithm.
        algo: HashAlgo,
        /// The decoder's message.
        reason: String,
    },
    /// The value decodes to the wrong number of bytes for its algorithm.
    #[error("the {algo} value is {got} bytes, not {expected}")]
    WrongLength {
        /// The algorithm.
        algo: HashAlgo,
        /// Its digest length.
        expected: usize,
        /// What the value decoded to.
        got: usize,
    },
    /// Two values for the same algorithm that differ.
    #[error("two different {algo} values")]
    Conflicting {
        /// The algorithm.
        algo: HashAlgo,
    },
}

/// A received digest of an algorithm we compute, its length checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownHash {
    /// The algorithm.
    pub algo: HashAlgo,
    /// The digest, exactly [`HashAlgo::output_len`] bytes.
    pub value: Vec<u8>,
}

impl KnownHash {
    /// Checks an xmpp-parsers [`Hash`](struct@Hash) (its base64 already decoded): `Ok(None)` for an
    /// algorithm we do not compute (ignored, not fatal), an error for a wrong length.
    pub fn from_parsed(hash: &Hash) -> Result<Option<Self>, HashError> {
        let Some(algo) = HashAlgo::from_algo(&hash.algo) else {
            return Ok(None);
        };
        Self::checked(algo, hash.hash.clone()).map(Some)
    }

    /// Checks one `<hash xmlns='urn:xmpp:hashes:2'/>` element: `Ok(None)` for an unknown
    /// algorithm (its value is not even decoded); otherwise the value must be base64 of
    /// exactly the algorithm's digest length (surrounding whitespace is allowed).
    pub fn from_element(el: &Element) -> Result<Option<Self>, HashError> {
        let algo = el.attr("algo").ok_or(HashError::MissingAlgo)?;
        let Some(algo) = HashAlgo::from_name(algo) else {
            return Ok(None);
        };
        let text = el.text();
        let text = text.trim();
        if text.len() > MAX_VALUE_CHARS {
            return Err(HashError::WrongLength {
                algo,
                expected: algo.output_len(),
                got: text.len() / 4 * 3,
            });
        }
        let value = STANDARD.decode(text).map_err(|e| HashError::NotBase64 {
            algo,
            reason: e.to_string(),
        })?;
        Self::checked(algo, value).map(Some)
    }

    fn checked(algo: HashAlgo, value: Vec<u8>) -> Result<Self, HashError> {
        if value.len() != algo.output_len() {
            return Err(HashError::WrongLength {
                algo,
                expected: algo.output_len(),
                got: value.len(),
            });
        }
        Ok(Self { algo, value })
    }

    /// Whether a finished [`Hash`](struct@Hash) (ours, from [`crate::Hasher::finish`]) is this digest.
    pub fn matches(&self, ours: &Hash) -> bool {
        HashAlgo::from_algo(&ours.algo) == Some(self.algo) && ours.hash == self.value
    }

    /// As an xmpp-parsers [`Hash`](struct@Hash).
    pub fn to_hash(&self) -> Hash {
        Hash::new(self.algo.to_algo(), self.value.clone())
    }
}

/// The known hashes among `elements` (the children of a `<file/>` or `<checksum><file/>`):
/// only `<hash/>` in [`NS_HASHES`] counts; at most `max` of them are read (one more is
/// [`HashError::TooMany`], before it is decoded); unknown algorithms are skipped; one bad
/// known value fails the whole set; the same algorithm twice must carry the same value.
/// Returned in our [`PREFERENCE`] order (SHA-1 last), so `first()` is the one to verify.
pub fn read_hashes<'a, I>(elements: I, max: usize) -> Result<Vec<KnownHash>, HashError>
where
    I: IntoIterator<Item = &'a Element>,
{
    let mut out: Vec<KnownHash> = Vec::new();
    let mut seen = 0usize;
    for el in elements {
        if !el.is("hash", NS_HASHES) {
            continue;
        }
        seen += 1;
        if seen > max {
            return Err(HashError::TooMany { max });
        }
        let Some(h) = KnownHash::from_element(el)? else {
            continue;
        };
        match out.iter().find(|k| k.algo == h.algo) {
            Some(k) if k.value != h.value => return Err(HashError::Conflicting { algo: h.algo }),
            Some(_) => {}
            None => out.push(h),
        }
    }
    out.sort_by_key(|k| rank(k.algo));
    Ok(out)
}

fn rank(algo: HashAlgo) -> usize {
    PREFERENCE
        .iter()
        .position(|a| *a == algo)
        .unwrap_or(PREFERENCE.len())
}
