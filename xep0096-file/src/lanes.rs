//! MD5 and SHA-256 off the data path: each digest is a *lane* fed shared [`Bytes`] chunks
//! through a bounded queue and hashed, in order, on a small pool of threads that every
//! lane of the process shares, so the two digests and the caller's I/O overlap.
//!
//! The pool has as many threads as the machine has cores (at least 2, so one transfer's
//! two digests run side by side; at most [`MAX_POOL_THREADS`]), started when the first lane
//! is. A thousand concurrent transfers share those threads instead of starting two each
//! (BAD-INPUT I1); a lane hashes at most [`TURN`] chunks before the next waiting lane gets
//! the thread, so a large transfer cannot starve a small one.

use std::collections::VecDeque;
use std::fmt;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread;

use bytes::Bytes;
use md5::{Digest, Md5};
use sha2::Sha256;
use tokio::sync::{Semaphore, oneshot};

use crate::hash::{Hasher, LaneDigest};

/// Chunks queued per lane. With chunks of at most a copy buffer (256 KiB in the facade), a
/// lane holds at most a few MiB whatever the file size; a full queue makes
/// [`HashLanes::update`] wait.
pub const LANE_DEPTH: usize = 8;

/// The most threads the shared hashing pool starts, whatever the core count.
pub const MAX_POOL_THREADS: usize = 8;

/// Chunks a lane hashes in one turn before it goes to the back of the pool's queue.
pub const TURN: usize = 16;

enum Msg {
    Data(Bytes),
    Snapshot(oneshot::Sender<Vec<u8>>),
}

enum Algo {
    Md5(Md5),
    Sha256(Sha256),
    Other(Box<dyn LaneDigest>),
}

impl Algo {
    fn update(&mut self, b: &[u8]) {
        match self {
            Self::Md5(d) => d.update(b),
            Self::Sha256(d) => d.update(b),
            Self::Other(d) => d.update(b),
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        match self {
            Self::Md5(d) => d.clone().finalize().to_vec(),
            Self::Sha256(d) => d.clone().finalize().to_vec(),
            Self::Other(d) => d.snapshot(),
        }
    }
}

struct LaneState {
    queue: VecDeque<Msg>,
    /// `None` while a pool thread is hashing with it.
    digest: Option<Algo>,
    /// In the pool's queue or on a pool thread.
    scheduled: bool,
    /// The [`HashLanes`] is gone: nothing more to hash.
    closed: bool,
}

struct LaneInner {
    state: Mutex<LaneState>,
    /// Free places in `queue` for data ([`LANE_DEPTH`]).
    space: Semaphore,
}

fn lock(m: &Mutex<LaneState>) -> MutexGuard<'_, LaneState> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

type Job = Arc<LaneInner>;

struct Pool {
    jobs: std_mpsc::Sender<Job>,
}

/// The shared pool; `None` if not one thread could be started.
fn pool() -> Option<&'static Pool> {
    static POOL: OnceLock<Option<Pool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let n = thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(2, MAX_POOL_THREADS);
        let (jobs, rx) = std_mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut started = 0;
        for i in 0..n {
            let rx = rx.clone();
            let worker = move || {
                loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(lane) => run_turn(&lane),
                        Err(_) => return,
                    }
                }
            };
            if thread::Builder::new()
                .name(format!("xft-hash-{i}"))
                .spawn(worker)
                .is_ok()
            {
                started += 1;
            }
        }
        (started > 0).then_some(Pool { jobs })
    })
    .as_ref()
}

/// One turn of `lane` on a pool thread: up to [`TURN`] messages, in order.
fn run_turn(lane: &Arc<LaneInner>) {
    let Some(mut digest) = lock(&lane.state).digest.take() else {
        return;
    };
    for _ in 0..TURN {
        let msg = {
            let mut st = lock(&lane.state);
            if st.closed {
                st.queue.clear();
                st.scheduled = false;
                return;
            }
            match st.queue.pop_front() {
                Some(m) => m,
                None => {
                    // Checked and cleared under one lock: a producer that pushes after
                    // this sees `scheduled == false` and schedules the lane again.
                    st.digest = Some(digest);
                    st.scheduled = false;
                    return;
                }
            }
        };
        match msg {
            Msg::Data(b) => {
                digest.update(&b);
                lane.space.add_permits(1);
            }
            Msg::Snapshot(reply) => {
                let _ = reply.send(digest.snapshot());
            }
        }
    }
    // The turn is over: back of the queue if there is more.
    let again = {
        let mut st = lock(&lane.state);
        st.digest = Some(digest);
        st.scheduled = !st.queue.is_empty() && !st.closed;
        st.scheduled
    };
    if again && !submit(lane.clone()) {
        lock(&lane.state).scheduled = false;
    }
}

fn submit(lane: Job) -> bool {
    pool().is_some_and(|p| p.jobs.send(lane).is_ok())
}

/// One digest, hashed on the shared pool.
struct Lane {
    inner: Arc<LaneInner>,
}

impl Lane {
    fn new(digest: Algo) -> Self {
        Self {
            inner: Arc::new(LaneInner {
                state: Mutex::new(LaneState {
                    queue: VecDeque::new(),
                    digest: Some(digest),
                    scheduled: false,
                    closed: false,
                }),
                space: Semaphore::new(LANE_DEPTH),
            }),
        }
    }

    /// Queues `msg` and schedules the lane if it is idle.
    fn push(&self, msg: Msg) -> Result<(), LaneGone> {
        let schedule = {
            let mut st = lock(&self.inner.state);
            st.queue.push_back(msg);
            !std::mem::replace(&mut st.scheduled, true)
        };
        if schedule && !submit(self.inner.clone()) {
            let mut st = lock(&self.inner.state);
            st.scheduled = false;
            st.queue.clear();
            return Err(LaneGone);
        }
        Ok(())
    }

    async fn send(&self, chunk: Bytes) -> Result<(), LaneGone> {
        let permit = self.inner.space.acquire().await.map_err(|_| LaneGone)?;
        permit.forget();
        self.push(Msg::Data(chunk))
    }

    async fn snapshot(&self) -> Result<Vec<u8>, LaneGone> {
        let (reply, got) = oneshot::channel();
        self.push(Msg::Snapshot(reply))?;
        got.await.map_err(|_| LaneGone)
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        let mut st = lock(&self.inner.state);
        st.closed = true;
        st.queue.clear();
    }
}

/// The hashing pool could not be started (not one thread), or a digest's turn was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the hashing pool is not running")]
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

/// MD5 and SHA-256 of a stream of chunks, computed on the shared hashing pool while the
/// caller goes on writing. Memory is bounded: each digest queues at most [`LANE_DEPTH`]
/// chunks, and the chunks are shared (reference counted), not copied. Dropping this drops
/// what is still queued. MD5 (the slower one) can be left out when nobody checks it
/// ([`skip_md5`](Self::skip_md5)).
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
    /// Digests added with [`add_digest`](Self::add_digest), and a fresh copy of each.
    extra: Vec<(Lane, Box<dyn LaneDigest>)>,
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
    /// Two digests that have seen no bytes.
    pub fn new() -> Self {
        Self::from_hasher(Hasher::new())
    }

    /// Two digests that go on from `hasher`'s state (a resumed file).
    pub fn from_hasher(hasher: Hasher) -> Self {
        let (md5, sha256, len) = hasher.into_parts();
        Self {
            md5: Some(Lane::new(Algo::Md5(md5))),
            sha256: Lane::new(Algo::Sha256(sha256)),
            extra: Vec::new(),
            len,
        }
    }

    /// Adds a digest of another algorithm ([`LaneDigest`]), hashed on the same pool with
    /// the same bounds; its value comes from [`extra_digests`](Self::extra_digests), in the
    /// order added. Only before any bytes are queued: a digest added later would miss them,
    /// so it is handed back.
    pub fn add_digest(&mut self, digest: Box<dyn LaneDigest>) -> Result<(), Box<dyn LaneDigest>> {
        if self.len > 0 {
            return Err(digest);
        }
        let fresh = digest.fresh();
        self.extra.push((Lane::new(Algo::Other(digest)), fresh));
        Ok(())
    }

    /// Fresh lanes computing the same digests as these (MD5 again, whether skipped or not),
    /// having seen no bytes.
    pub fn restarted(&self) -> Self {
        let mut lanes = Self::new();
        for (_, fresh) in &self.extra {
            let _ = lanes.add_digest(fresh.fresh());
        }
        lanes
    }

    /// The digests added with [`add_digest`](Self::add_digest), of everything queued so
    /// far, in the order added.
    pub async fn extra_digests(&self) -> Result<Vec<Vec<u8>>, LaneGone> {
        let mut out = Vec::with_capacity(self.extra.len());
        for (lane, _) in &self.extra {
            out.push(lane.snapshot().await?);
        }
        Ok(out)
    }

    /// Stops computing MD5 (what it has queued is dropped): for content whose MD5 nobody will check or
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
        for (lane, _) in &self.extra {
            lane.send(chunk.clone()).await?;
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

    /// The digests of everything queued so far (waits for the pool to catch up).
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
#[path = "lanes_tests.rs"]
mod tests;
