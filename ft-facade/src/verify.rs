//! What the received bytes must match, whatever the stack: the size, and expected hashes of
//! any algorithm, computed while the bytes stream (on the shared hashing pool, never by a
//! second read) and compared before the file takes its final name.
//!
//! A hash may be known at the offer (SI's `hash`, a Jingle `<file>`'s `<hash/>`) or arrive
//! while the bytes flow (Jingle's `<checksum/>` in session-info): the stack keeps the
//! [`LateHashes`] of [`Expectations::late`] and sets it whenever the hash comes; the
//! verification waits for it, at most [`Expectations::late_wait`] after the last byte, and
//! says "size checked, hash not checked" if it never comes.
//!
//! MD5 and SHA-256 run in [`HashLanes`](xep0096_file::HashLanes) natively; any other
//! algorithm is a [`LaneDigest`] from [`digest_for`] (the XEP-0300 hashers plug in there).

use std::time::Duration;

use tokio::sync::watch;
use xep0096_file::LaneDigest;

use crate::error::ErrorKind;
pub(crate) use crate::hash_algo::HashAlgo;

/// A streaming digest for `algo` beyond the native MD5 and SHA-256, hashed on the shared
/// pool (`None` for MD5 and SHA-256, which `HashLanes` computes natively). The others
/// are `xep0300-hashes`' [`Hasher`](xep0300_hashes::Hasher)s.
pub(crate) fn digest_for(algo: HashAlgo) -> Option<Box<dyn LaneDigest>> {
    let algo = match algo {
        // MD5 and SHA-256 are native in `HashLanes`.
        HashAlgo::Md5 | HashAlgo::Sha256 => return None,
        HashAlgo::Sha3_256 => xep0300_hashes::HashAlgo::Sha3_256,
        HashAlgo::Blake2b256 => xep0300_hashes::HashAlgo::Blake2b256,
        HashAlgo::Blake2b512 => xep0300_hashes::HashAlgo::Blake2b512,
    };
    Some(Box::new(Xep0300Lane(xep0300_hashes::Hasher::new(algo))))
}

/// An `xep0300-hashes` hasher as a digest lane.
struct Xep0300Lane(xep0300_hashes::Hasher);

impl LaneDigest for Xep0300Lane {
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn snapshot(&self) -> Vec<u8> {
        self.0.clone().finish_bytes()
    }

    fn fresh(&self) -> Box<dyn LaneDigest> {
        Box::new(Self(xep0300_hashes::Hasher::new(self.0.algo())))
    }
}

/// One hash the content must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExpectedHash {
    pub(crate) algo: HashAlgo,
    pub(crate) value: Vec<u8>,
}

/// The sending half of a hash that comes after the offer: kept by the stack, set when the
/// hash arrives (any time before the verification gives up waiting). Dropping it says
/// that no hash will come, and the verification stops waiting.
#[derive(Debug)]
pub(crate) struct LateHashes(watch::Sender<Vec<ExpectedHash>>);

impl LateHashes {
    /// The content must also have `value` as its `algo` digest.
    pub(crate) fn set(&self, algo: HashAlgo, value: Vec<u8>) {
        self.0.send_modify(|v| v.push(ExpectedHash { algo, value }));
    }
}

/// What the received content must match.
#[derive(Debug)]
pub(crate) struct Expectations {
    /// The whole file's size; `None` when the offer had none.
    pub(crate) size: Option<u64>,
    /// Hashes known at the offer.
    pub(crate) hashes: Vec<ExpectedHash>,
    /// Algorithms to compute even without a value yet (one announced to come later).
    pub(crate) compute: Vec<HashAlgo>,
    late: Option<watch::Receiver<Vec<ExpectedHash>>>,
    /// How long the verification waits after the last byte for a late hash.
    pub(crate) late_wait: Duration,
}

/// How long, by default, the verification waits after the last byte for a hash announced
/// to come later.
pub(crate) const LATE_HASH_WAIT: Duration = Duration::from_secs(10);

impl Expectations {
    /// The size and the hashes an offer gave.
    pub(crate) fn new(size: Option<u64>, hashes: Vec<ExpectedHash>) -> Self {
        Self {
            size,
            hashes,
            compute: Vec::new(),
            late: None,
            late_wait: LATE_HASH_WAIT,
        }
    }

    /// A hash of one of `algos` may come later: they are computed from the first byte,
    /// and the returned handle takes the value.
    pub(crate) fn late(&mut self, algos: &[HashAlgo]) -> LateHashes {
        for a in algos {
            if !self.compute.contains(a) {
                self.compute.push(*a);
            }
        }
        let (tx, rx) = watch::channel(Vec::new());
        self.late = Some(rx);
        LateHashes(tx)
    }

    fn algos(&self) -> impl Iterator<Item = HashAlgo> + '_ {
        self.hashes
            .iter()
            .map(|h| h.algo)
            .chain(self.compute.iter().copied())
    }

    /// Whether MD5 is needed (an MD5 expected or announced).
    pub(crate) fn wants_md5(&self) -> bool {
        self.algos().any(|a| a == HashAlgo::Md5)
    }

    /// The algorithms beyond MD5 and SHA-256 to compute, each once, with their digests.
    pub(crate) fn extra_digests(&self) -> Vec<(HashAlgo, Box<dyn LaneDigest>)> {
        let mut out: Vec<(HashAlgo, Box<dyn LaneDigest>)> = Vec::new();
        for a in self.algos() {
            if out.iter().any(|(b, _)| *b == a) {
                continue;
            }
            if let Some(d) = digest_for(a) {
                out.push((a, d));
            }
        }
        out
    }

    /// Every expected hash: those of the offer and those that arrived late. When none of
    /// them can be checked by `computed` yet and a late one may still come, waits for it,
    /// at most [`late_wait`](Self::late_wait).
    pub(crate) async fn settle(&mut self, computed: &Computed) -> Vec<ExpectedHash> {
        let checkable = |hs: &[ExpectedHash]| hs.iter().any(|h| computed.get(h.algo).is_some());
        let mut all = self.hashes.clone();
        let Some(rx) = self.late.as_mut() else {
            return all;
        };
        if !checkable(&all) {
            let wait = async {
                loop {
                    if checkable(&rx.borrow_and_update()) {
                        return;
                    }
                    if rx.changed().await.is_err() {
                        // The stack let go: nothing more comes.
                        return;
                    }
                }
            };
            let _ = tokio::time::timeout(self.late_wait, wait).await;
        }
        all.extend(rx.borrow().iter().cloned());
        all
    }
}

/// The digests computed over the received content.
#[derive(Debug, Default)]
pub(crate) struct Computed {
    /// Whether they cover the whole file (a writer resumed at an offset has only the tail:
    /// nothing is checked against them).
    pub(crate) whole: bool,
    pub(crate) md5: Option<[u8; 16]>,
    pub(crate) sha256: Option<[u8; 32]>,
    pub(crate) extra: Vec<(HashAlgo, Vec<u8>)>,
}

impl Computed {
    /// The digest for `algo`, if computed over the whole file.
    pub(crate) fn get(&self, algo: HashAlgo) -> Option<&[u8]> {
        if !self.whole {
            return None;
        }
        match algo {
            HashAlgo::Md5 => self.md5.as_ref().map(|d| &d[..]),
            HashAlgo::Sha256 => self.sha256.as_ref().map(|d| &d[..]),
            _ => self
                .extra
                .iter()
                .find(|(a, _)| *a == algo)
                .map(|(_, d)| &d[..]),
        }
    }

    /// Checks every expected hash that was computed; returns the strongest algorithm that
    /// matched (`None`: nothing was checkable). A hash of an algorithm not computed is
    /// not checked (and logged).
    pub(crate) fn check(&self, expected: &[ExpectedHash]) -> Result<Option<HashAlgo>, ErrorKind> {
        let mut by: Option<HashAlgo> = None;
        for e in expected {
            let Some(got) = self.get(e.algo) else {
                tracing::debug!(
                    "ft-facade: an expected {} hash was not computed; not checked",
                    e.algo
                );
                continue;
            };
            if got != e.value.as_slice() {
                return Err(ErrorKind::HashMismatch {
                    algo: e.algo,
                    offered: hex::encode(&e.value),
                    received: hex::encode(got),
                });
            }
            if by.is_none_or(|b| e.algo.rank() > b.rank()) {
                by = Some(e.algo);
            }
        }
        Ok(by)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn computed() -> Computed {
        Computed {
            whole: true,
            md5: Some([1; 16]),
            sha256: Some([2; 32]),
            extra: Vec::new(),
        }
    }

    fn hash(algo: HashAlgo, b: u8) -> ExpectedHash {
        ExpectedHash {
            algo,
            value: vec![b; algo.output_len()],
        }
    }

    #[test]
    fn names_round_trip_and_unknown_ones_are_none() {
        for a in [
            HashAlgo::Md5,
            HashAlgo::Sha256,
            HashAlgo::Sha3_256,
            HashAlgo::Blake2b256,
            HashAlgo::Blake2b512,
        ] {
            assert_eq!(HashAlgo::from_name(a.name()), Some(a));
        }
        assert_eq!(HashAlgo::from_name("sha-1"), None);
    }

    #[test]
    fn the_strongest_matching_algorithm_is_named_and_a_wrong_one_is_a_mismatch() {
        let c = computed();
        let both = [hash(HashAlgo::Md5, 1), hash(HashAlgo::Sha256, 2)];
        assert_eq!(c.check(&both).unwrap(), Some(HashAlgo::Sha256));
        // Not computed: not checked, not a failure.
        assert_eq!(c.check(&[hash(HashAlgo::Sha3_256, 9)]).unwrap(), None);
        let e = c.check(&[hash(HashAlgo::Sha256, 3)]).unwrap_err();
        assert!(matches!(
            e,
            ErrorKind::HashMismatch {
                algo: HashAlgo::Sha256,
                ..
            }
        ));
        // A tail's digests check nothing.
        let tail = Computed {
            whole: false,
            ..computed()
        };
        assert_eq!(tail.check(&both).unwrap(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_hash_is_waited_for_and_a_dropped_sender_ends_the_wait_at_once() {
        let c = computed();
        let mut e = Expectations::new(Some(1), Vec::new());
        let late = e.late(&[HashAlgo::Sha256]);
        let setter = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            late.set(HashAlgo::Sha256, vec![2; 32]);
            late
        });
        let got = e.settle(&c).await;
        assert_eq!(got, [hash(HashAlgo::Sha256, 2)]);
        drop(setter.await.unwrap());

        let mut e = Expectations::new(Some(1), Vec::new());
        drop(e.late(&[HashAlgo::Sha256]));
        let t = tokio::time::Instant::now();
        assert!(e.settle(&c).await.is_empty());
        assert_eq!(t.elapsed(), Duration::ZERO);
    }
}
