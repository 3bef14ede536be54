//! MD5 and SHA-256 off the data path: each digest runs on a thread of its own, fed shared
//! [`Bytes`] chunks through a bounded queue, so the two digests and the caller's I/O overlap.

use std::fmt;
use std::thread;

use bytes::Bytes;
use md5::Digest;
use tokio::sync::{mpsc, oneshot};

use crate::hash::Hasher;

/// Chunks queued per digest thread. With chunks of at most a copy buffer (256 KiB in the
/// facade), a lane holds at most a few MiB whatever the file size; a full queue makes
/// [`HashLanes::update`] wait.
pub const LANE_DEPTH: usize = 8;

enum Msg {
    Data(Bytes),
    Snapshot(oneshot::Sender<Vec<u8>>),
}

/// One digest on its own thread.
struct Lane {
    tx: mpsc::Sender<Msg>,
}

impl Lane {
    fn spawn<D>(name: &str, mut digest: D) -> Self
    where
        D: Digest + Clone + Send + 'static,
    {
        let (tx, mut rx) = mpsc::channel::<Msg>(LANE_DEPTH);
        let body = move || {
            while let Some(msg) = rx.blocking_recv() {
                match msg {
                    Msg::Data(b) => digest.update(&b),
                    Msg::Snapshot(reply) => {
                        let _ = reply.send(digest.clone().finalize().to_vec());
                    }
                }
            }
        };
        // A thread that cannot be started leaves the lane without a receiver: every send
        // fails, and the digest is reported as lost (see `HashLanes::digests`).
        let _ = thread::Builder::new().name(name.to_owned()).spawn(body);
        Self { tx }
    }

    async fn send(&self, chunk: Bytes) -> Result<(), LaneGone> {
        self.tx.send(Msg::Data(chunk)).await.map_err(|_| LaneGone)
    }

    async fn snapshot(&self) -> Result<Vec<u8>, LaneGone> {
        let (reply, got) = oneshot::channel();
        self.tx
            .send(Msg::Snapshot(reply))
            .await
            .map_err(|_| LaneGone)?;
        got.await.map_err(|_| LaneGone)
    }
}

/// A digest thread stopped (it could not be started, or it panicked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a hashing thread stopped")]
pub struct LaneGone;

/// What [`HashLanes`] computed: SHA-256 always, MD5 unless it was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneDigests {
    /// MD5, `None` after [`HashLanes::skip_md5`].
    pub md5: Option<[u8; 16]>,
    /// SHA-256.
    pub sha256: [u8; 32],
    /// The number of bytes hashed.
    pub len: u64,
}

impl LaneDigests {
    /// MD5 as lower-case hex, if it was computed.
    pub fn md5_hex(&self) -> Option<String> {
        self.md5.map(hex::encode)
    }

    /// SHA-256 as lower-case hex.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

/// MD5 and SHA-256 of a stream of chunks, computed on two threads while the caller goes on
/// writing. Memory is bounded: each thread queues at most [`LANE_DEPTH`] chunks, and the
/// chunks are shared (reference counted), not copied. The threads end when this is dropped.
/// MD5 (the slower one) can be left out when nobody checks it ([`skip_md5`](Self::skip_md5)).
///
/// ```
/// use bytes::Bytes;
/// use xep0096_file::HashLanes;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let mut lanes = HashLanes::new();
/// lanes.update(Bytes::from_static(b"hello ")).await.unwrap();
/// lanes.update(Bytes::from_static(b"world")).await.unwrap();
/// let d = lanes.digests().await.unwrap();
/// assert_eq!(d.len, 11);
/// assert_eq!(d.md5_hex().unwrap(), "5eb63bbbe01eeed093cb22bb8f5acdc3");
/// # });
/// ```
pub struct HashLanes {
    md5: Option<Lane>,
    sha256: Lane,
    len: u64,
}

impl fmt::Debug for HashLanes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashLanes").field("len", &self.len).finish()
    }
}

impl Default for HashLanes {
    fn default() -> Self {
        Self::new()
    }
}

impl HashLanes {
    /// Two digest threads that have seen no bytes.
    pub fn new() -> Self {
        Self::from_hasher(Hasher::new())
    }

    /// Two digest threads that go on from `hasher`'s state (a resumed file).
    pub fn from_hasher(hasher: Hasher) -> Self {
        let (md5, sha256, len) = hasher.into_parts();
        Self {
            md5: Some(Lane::spawn("xft-md5", md5)),
            sha256: Lane::spawn("xft-sha256", sha256),
            len,
        }
    }

    /// Stops computing MD5 (its thread ends): for content whose MD5 nobody will check or
    /// report. [`digests`](Self::digests) then has no MD5.
    pub fn skip_md5(&mut self) {
        self.md5 = None;
    }

    /// Whether MD5 is being computed.
    pub fn has_md5(&self) -> bool {
        self.md5.is_some()
    }

    /// Queues `chunk` for the digests; waits only while a queue is full.
    pub async fn update(&mut self, chunk: Bytes) -> Result<(), LaneGone> {
        if chunk.is_empty() {
            return Ok(());
        }
        let n = chunk.len() as u64;
        if let Some(md5) = &self.md5 {
            md5.send(chunk.clone()).await?;
        }
        self.sha256.send(chunk).await?;
        self.len += n;
        Ok(())
    }

    /// How many bytes were queued.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no bytes were queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digests of everything queued so far (waits for the threads to catch up).
    pub async fn digests(&self) -> Result<LaneDigests, LaneGone> {
        let md5 = async {
            match &self.md5 {
                Some(lane) => lane.snapshot().await.map(Some),
                None => Ok(None),
            }
        };
        let (md5, sha256) = tokio::join!(md5, self.sha256.snapshot());
        let md5 = match md5? {
            Some(v) => Some(v.try_into().map_err(|_| LaneGone)?),
            None => None,
        };
        Ok(LaneDigests {
            md5,
            sha256: sha256?.try_into().map_err(|_| LaneGone)?,
            len: self.len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lanes_agree_with_the_serial_hasher_whatever_the_chunking_and_resume_point() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 31 + i / 7) as u8).collect();
        let mut serial = Hasher::new();
        serial.update(&data);
        let d = serial.finish();
        let want = LaneDigests {
            md5: Some(d.md5),
            sha256: d.sha256,
            len: d.len,
        };

        let mut lanes = HashLanes::new();
        for c in data.chunks(65_537) {
            lanes.update(Bytes::copy_from_slice(c)).await.unwrap();
        }
        assert_eq!(lanes.digests().await.unwrap(), want);

        // Resume: the first 300 000 bytes hashed inline, the rest on the lanes.
        let mut head = Hasher::new();
        head.update(&data[..300_000]);
        let mut lanes = HashLanes::from_hasher(head);
        lanes
            .update(Bytes::copy_from_slice(&data[300_000..]))
            .await
            .unwrap();
        assert_eq!(lanes.digests().await.unwrap(), want);
        // A snapshot does not end the lanes.
        lanes.update(Bytes::from_static(b"x")).await.unwrap();
        assert_ne!(lanes.digests().await.unwrap(), want);
    }

    #[tokio::test]
    async fn a_skipped_md5_is_absent_and_sha256_unchanged() {
        let mut lanes = HashLanes::new();
        lanes.skip_md5();
        assert!(!lanes.has_md5());
        lanes.update(Bytes::from_static(b"abc")).await.unwrap();
        let d = lanes.digests().await.unwrap();
        assert_eq!(d.md5, None);
        assert_eq!(
            d.sha256_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[tokio::test]
    async fn no_bytes_give_the_empty_digests() {
        let lanes = HashLanes::new();
        let d = lanes.digests().await.unwrap();
        assert_eq!(d.md5_hex().unwrap(), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(d.len, 0);
    }
}
