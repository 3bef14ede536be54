//! Nothing left behind, per seed: descriptors and threads (issue 9).
//!
//! Each run has a runtime of its own, and [`super::run_plan`] already waits for its tasks to
//! end (`num_alive_tasks`, timers included: a tokio timer is polled by a task) before the
//! runtime is dropped. Descriptors (`/proc/self/fd`: sockets, files, pipes, the runtime's
//! own epoll and eventfd) and threads (`/proc/self/task`, those of tokio and of xft: a
//! blocking call that never returns keeps its thread after the runtime is gone) are the
//! process's, and runs go on
//! several threads at once, so they are checked at a **checkpoint**: every run holds
//! [`GATE`] for reading; a checkpoint takes it for writing (no run in flight), and compares
//! the descriptors and threads with the baseline (waiting up to [`SETTLE`] for closes that
//! finish on other threads). If they are above it, every run since the last checkpoint is
//! replayed alone, and each one that leaves anything behind fails with its replay command
//! and what it left (`readlink` of each new descriptor). With one thread (`XFT_THREADS=1`)
//! and a checkpoint after every run, that is the exact per-seed check.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use super::plan::Plan;

/// Held for reading by every run, for writing by a checkpoint.
pub static GATE: RwLock<()> = RwLock::new(());

/// What has run since the last checkpoint, and the baseline.
static STATE: Mutex<State> = Mutex::new(State {
    since: Vec::new(),
    base: None,
});

struct State {
    since: Vec<Plan>,
    base: Option<Snapshot>,
}

/// How long a checkpoint waits for descriptors and threads to come down.
pub const SETTLE: Duration = Duration::from_secs(3);

/// The process's descriptors (number → what it points at) and threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub fds: BTreeMap<u32, String>,
    pub threads: u64,
}

impl Snapshot {
    pub fn now() -> Self {
        let mut fds = BTreeMap::new();
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            for e in dir.flatten() {
                let Some(n) = e.file_name().to_str().and_then(|s| s.parse().ok()) else {
                    continue;
                };
                // The directory's own descriptor is gone by now: readlink fails, skipped.
                if let Ok(target) = std::fs::read_link(e.path()) {
                    fds.insert(n, target.to_string_lossy().into_owned());
                }
            }
        }
        // Threads of runtimes and of xft (tokio names its threads `tokio-runtime-w…`, the
        // digest pool `xft-hash-N`); not the test harness's own (libtest's and the seed
        // workers', which come and go with the tests).
        let threads = std::fs::read_dir("/proc/self/task").map_or(0, |d| {
            d.flatten()
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|c| c.starts_with("tokio") || c.starts_with("xft"))
                })
                .count() as u64
        });
        Self { fds, threads }
    }

    /// What `self` holds beyond `base`, or `None` if nothing.
    fn beyond(&self, base: &Self) -> Option<String> {
        let new: Vec<String> = self
            .fds
            .iter()
            .filter(|(n, t)| base.fds.get(n) != Some(t))
            .map(|(n, t)| format!("fd {n} -> {t}"))
            .collect();
        let more_fds = self.fds.len() > base.fds.len();
        let more_threads = self.threads > base.threads;
        (more_fds || more_threads).then(|| {
            format!(
                "{} descriptor(s) (baseline {}) [{}], {} thread(s) (baseline {})",
                self.fds.len(),
                base.fds.len(),
                new.join(", "),
                self.threads,
                base.threads
            )
        })
    }

    /// Waits up to [`SETTLE`] for the process to be back at `base`; what is left, if any.
    fn settle_to(base: &Self) -> Option<String> {
        let until = Instant::now() + SETTLE;
        loop {
            let now = Self::now();
            match now.beyond(base) {
                None => return None,
                Some(left) if Instant::now() >= until => return Some(left),
                Some(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

/// Runs `f` (one run of `plan`) under the gate, and notes the plan for the next checkpoint.
pub fn guarded<R>(plan: &Plan, f: impl FnOnce() -> R) -> R {
    let r = {
        let _run = GATE.read().unwrap_or_else(PoisonError::into_inner);
        f()
    };
    STATE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .since
        .push(plan.clone());
    r
}

/// A checkpoint (see the module doc). `warm_up` runs once, before the first baseline, so
/// that what a process starts once (the digest pool's threads) is in it; `replay` runs one
/// plan alone. Returns one message per run that left something behind, each starting with
/// its seed's replay command, with the seed.
pub fn checkpoint(warm_up: impl FnOnce(), replay: impl Fn(&Plan) -> String) -> Vec<(u64, String)> {
    let _all = GATE.write().unwrap_or_else(PoisonError::into_inner);
    let mut st = STATE.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(base) = st.base.clone() else {
        drop(st);
        warm_up();
        let base = Snapshot::now();
        let mut st = STATE.lock().unwrap_or_else(PoisonError::into_inner);
        st.since.clear();
        st.base = Some(base);
        return Vec::new();
    };
    let since = std::mem::take(&mut st.since);
    drop(st);
    let Some(left) = Snapshot::settle_to(&base) else {
        return Vec::new();
    };
    // Something was left: find who, each alone.
    let mut bad = Vec::new();
    for plan in &since {
        let before = Snapshot::now();
        let outcome = replay(plan);
        if let Some(l) = Snapshot::settle_to(&before) {
            bad.push((plan.seed, format!(
                "XFT_SEED={} XFT_MODE={} cargo test -p ft-facade --test faults replay -- --nocapture\n  left behind: {l}\n  ({outcome})\n  plan: {plan:?}",
                plan.seed,
                plan.mode.name()
            )));
        }
    }
    if bad.is_empty() {
        let seeds: Vec<String> = since
            .iter()
            .map(|p| format!("{} {}", p.mode.name(), p.seed))
            .collect();
        let first = since.first().map_or(0, |p| p.seed);
        bad.push((
            first,
            format!(
                "left behind by the runs since the last checkpoint ({}), though none leaves it \
             when replayed alone: {left}",
                seeds.join(", ")
            ),
        ));
    }
    // The next checkpoint compares with what is there now (one leak reported once).
    STATE.lock().unwrap_or_else(PoisonError::into_inner).base = Some(Snapshot::now());
    bad
}
