//! Many transfers at once through one pair of `FileTransfer`s on the in-memory hub (issue 9):
//! every file a different size and content, all offered at once, all accepted as they
//! come; every file must land intact (SHA-256 on disk) within a bounded time, and nothing
//! but the files is left. Reports wall time, peak threads and RSS.
//!
//! By IBB (every byte a stanza through the hub) and by S5B (every transfer its own loopback
//! socket).
//!
//! Then the leak accounting (issue 9, "leaks after the load"; `tests/leaks`). The load runs
//! twice. After each, once every handle and outcome is dropped, the runtime's tasks, the
//! process's descriptors and threads must be back at their baseline (taken after one
//! warm-up transfer, so the digest pool's threads, started once per process, are in it).
//! Memory is measured as **live heap bytes** (a counting global allocator: what anything
//! in the process still holds): what is held after the load, above the baseline, must be
//! at most 5 % of the baseline RSS, and what the second burst adds to it as well (nothing
//! accumulates). The issue asks for RSS within 5 %; the live heap is the measure of what
//! is held, RSS is not (below).
//!
//! RSS is reported, not asserted: glibc keeps freed memory in its arenas for reuse (one per
//! thread, up to 8 per core; tokio's blocking pool runs up to 512 threads for the file
//! I/O of this test), so the RSS after the load says how high the peak was, not what is
//! held. The figures show it: RSS before and after, glibc's free bytes (`mallinfo2`), and
//! RSS after `malloc_trim(0)`, which the test calls itself to show that the difference is
//! the allocator's free memory. The library does not call it: that is the application's
//! choice (`malloc_trim`, `MALLOC_ARENA_MAX`, another allocator).
//!
//! What this test found, fixed: every transfer took four 256 KiB copy buffers whatever its
//! size (1,000 transfers of 1–16 KiB went through 1 GB of buffers; glibc kept 680 MB of it
//! free, the RSS stayed at ~350 MB); the buffers are now sized to the file. And the maps of
//! the IBB and S5B sessions, of pending iqs and of incoming offers kept the capacity of the
//! burst (+676 KB live after 1,000 transfers); they now give it back.

mod common;
mod leaks;
mod reliability;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use ft_facade::{AcceptOptions, FileTransfer, Method, Policy, SendOptions};
use ft_transport::hub::{Hub, HubTransport};
use reliability::{env_u64, figure, js, proc_status};

/// How long an idle thread of tokio's blocking pool (file I/O) lives: 10 s by default, 2 s
/// here so that the test waits less for the threads to return to their baseline (a default
/// runtime gets there 8 s later).
const KEEP_ALIVE: Duration = Duration::from_secs(2);

/// One at a time (each with a runtime of its own, built once the other is gone): the
/// threads, descriptors and memory measured are the whole process's.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(method: Method, count: usize, var: &str) {
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_keep_alive(KEEP_ALIVE)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(many(method, count, var));
}

#[test]
fn many_concurrent_transfers_over_the_hub_all_land_intact() {
    let count = env_u64("XFT_MANY", 1000) as usize;
    run(Method::Ibb, count, "XFT_MANY");
}

/// The same with every transfer's bytes on its own loopback SOCKS5 connection (three
/// descriptors each: the sender's listener and both ends): 200 by default, within the
/// 1,024 descriptors a process gets by default.
#[test]
fn many_concurrent_s5b_transfers_all_land_intact() {
    let count = env_u64("XFT_MANY_S5B", 200) as usize;
    run(Method::S5b, count, "XFT_MANY_S5B");
}

/// The runtime's live tasks.
fn tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// What one burst of `count` transfers gave.
struct Burst {
    failed: usize,
    busy: usize,
    /// Exactly the files sent are in the directory, nothing else.
    intact: bool,
    wall: Duration,
    peak_threads: u64,
    peak_rss: u64,
    rss_right_after: u64,
}

/// Offers every file of `paths` at once from `alice` to `bob`, who accepts each into `dst`;
/// checks every file that lands against `want` (name → SHA-256).
async fn burst(
    alice: &FileTransfer<HubTransport>,
    bob: &FileTransfer<HubTransport>,
    paths: &[std::path::PathBuf],
    want: &std::collections::HashMap<String, String>,
    dst: &std::path::Path,
    budget: Duration,
) -> Burst {
    let count = paths.len();
    // Threads and RSS, sampled every 10 ms while the transfers run (VmHWM would be the
    // process's peak, the other test's included).
    let (threads0, rss0, _) = proc_status();
    let peak_threads = Arc::new(AtomicU64::new(threads0));
    let peak_rss = Arc::new(AtomicU64::new(rss0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, rss, done) = (peak_threads.clone(), peak_rss.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let (threads, now, _) = proc_status();
                peak.fetch_max(threads, Ordering::Relaxed);
                rss.fetch_max(now, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };

    let started = Instant::now();
    let sending: Vec<_> = paths
        .iter()
        .map(|p| alice.send_file(jid("bob@x/b"), p, SendOptions::default()))
        .collect();
    let accepting = async {
        let mut receiving = Vec::with_capacity(count);
        for _ in 0..count {
            let offer = bob.next_offer().await.expect("an offer");
            receiving.push(offer.accept_into_dir(dst, AcceptOptions::new()));
        }
        let received =
            futures_util::future::join_all(receiving.into_iter().map(|h| h.outcome())).await;
        let sent = futures_util::future::join_all(sending.into_iter().map(|h| h.outcome())).await;
        (sent, received)
    };
    let (sent, received) = tokio::time::timeout(budget, accepting)
        .await
        .unwrap_or_else(|_| panic!("{count} transfers not done within {budget:?}"));
    let wall = started.elapsed();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let (_, rss_right_after, _) = proc_status();

    let mut failed = 0usize;
    let mut busy = 0usize;
    for r in &sent {
        if let Err(e) = r {
            eprintln!("sender: {e}");
            failed += 1;
            busy += usize::from(e.to_string().contains("resource-constraint"));
        }
    }
    for r in &received {
        match r {
            Ok(o) => {
                let path = o.path.clone().expect("a file");
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                let on_disk = sha256_file(&path);
                if want.get(&name) != Some(&on_disk) || o.sha256 != on_disk {
                    eprintln!("{name}: not the file sent");
                    failed += 1;
                }
            }
            Err(e) => {
                eprintln!("receiver: {e}");
                failed += 1;
            }
        }
    }
    let mut names: Vec<String> = want.keys().cloned().collect();
    names.sort();
    Burst {
        failed,
        busy,
        intact: listing(dst) == names,
        wall,
        peak_threads: peak_threads.load(Ordering::Relaxed),
        peak_rss: peak_rss.load(Ordering::Relaxed),
        rss_right_after,
    }
}

/// Waits (bounded) until the runtime's tasks and the process's descriptors and threads are
/// back at `base` (the blocking pool's threads leave after [`KEEP_ALIVE`] idle); the
/// reading then, and the tasks.
async fn settle(tasks0: usize, base: &leaks::Reading) -> (usize, leaks::Reading) {
    let settle_by = Instant::now() + KEEP_ALIVE + Duration::from_secs(20);
    let mut after = leaks::Reading::now();
    while Instant::now() < settle_by
        && (tasks() > tasks0 || after.fds > base.fds || after.threads > base.threads)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = leaks::Reading::now();
    }
    (tasks(), after)
}

async fn many(method: Method, count: usize, var: &str) {
    // Generous for two shared cores: 1,000 transfers by IBB took 4.3 s when measured.
    let budget = Duration::from_secs(30 + count as u64 / 5);
    let hub = Hub::new();
    let mut c = config(&[method]);
    // Everything is offered at once: the receiving application takes every offer as it
    // comes, and the queue in front of it holds them all.
    let mut policy = Policy::default();
    policy.max_pending_offers = count;
    policy.max_offers_per_peer = count;
    c.policy(policy);
    c.cap_timeouts(budget);
    let alice = entity(&hub, "alice@x/a", config(&[method]));
    let bob = entity(&hub, "bob@x/b", c);
    let src = tempfile::tempdir().unwrap();
    let mut want = std::collections::HashMap::new();
    let mut paths = Vec::new();
    for i in 0..count {
        // 1..=16 KiB, distinct content: a mix-up between two transfers shows.
        let data = content(1024 + (i * 7919) % (15 * 1024), 1_000 + i as u64);
        let name = format!("many-{i:04}.bin");
        want.insert(name.clone(), sha256_hex(&data));
        paths.push(write_file(src.path(), &name, &data));
    }

    // One transfer first: what a process starts once (the digest pool's threads, lazy
    // statics) belongs to the baseline, not to the load. Then the blocking pool's threads
    // of that transfer are let go.
    {
        let warm_src = tempfile::tempdir().unwrap();
        let warm_dst = tempfile::tempdir().unwrap();
        let p = write_file(warm_src.path(), "warm.bin", &content(4096, 7));
        let s = alice.send_file(jid("bob@x/b"), &p, SendOptions::default());
        let offer = bob.next_offer().await.expect("the warm-up offer");
        let r = offer.accept_into_dir(warm_dst.path(), AcceptOptions::new());
        let (s, r) = tokio::join!(s.outcome(), r.outcome());
        s.expect("warm-up sent");
        r.expect("warm-up received");
    }
    tokio::time::sleep(KEEP_ALIVE + Duration::from_millis(500)).await;
    let tasks0 = tasks();
    let base = leaks::Reading::now();
    let large0 = leaks::allocs_of_at_least(17);

    // The load, twice: after the first, what is held must be near the baseline; after the
    // second, no more than after the first (nothing accumulates per transfer).
    let dst = tempfile::tempdir().unwrap();
    let first = burst(&alice, &bob, &paths, &want, dst.path(), budget).await;
    drop(dst);
    let (tasks1, after1) = settle(tasks0, &base).await;
    let dst = tempfile::tempdir().unwrap();
    let second = burst(&alice, &bob, &paths, &want, dst.path(), budget).await;
    drop(dst);
    let (tasks2, after2) = settle(tasks0, &base).await;
    let large = leaks::allocs_of_at_least(17) - large0;
    let rss_untrimmed = after2.rss_kb;
    leaks::trim();
    let (_, rss_trimmed) = leaks::threads_rss();
    let held1 = after1.live_heap - base.live_heap;
    let held2 = after2.live_heap - after1.live_heap;
    let rss_pct = |d: i64| d as f64 * 100.0 / (base.rss_kb as f64 * 1024.0);

    figure(
        if method == Method::Ibb {
            "many"
        } else {
            "many_s5b"
        },
        &[
            ("transfers", count.to_string()),
            ("bursts", "2".into()),
            (
                "method",
                js(if method == Method::Ibb {
                    "ibb-iq over the hub"
                } else {
                    "s5b-direct on 127.0.0.1"
                }),
            ),
            ("failed", (first.failed + second.failed).to_string()),
            ("wall_seconds", format!("{:.2}", first.wall.as_secs_f64())),
            ("threads_before", base.threads.to_string()),
            (
                "peak_threads",
                first.peak_threads.max(second.peak_threads).to_string(),
            ),
            ("rss_before_kb", base.rss_kb.to_string()),
            ("rss_after_kb", first.rss_right_after.to_string()),
            (
                "peak_rss_kb",
                first.peak_rss.max(second.peak_rss).to_string(),
            ),
            ("tasks_before", tasks0.to_string()),
            ("tasks_after", tasks2.to_string()),
            ("fds_before", base.fds.to_string()),
            ("fds_after", after2.fds.to_string()),
            ("threads_after", after2.threads.to_string()),
            ("live_heap_before", base.live_heap.to_string()),
            ("live_heap_after", after1.live_heap.to_string()),
            ("live_heap_after_2nd", after2.live_heap.to_string()),
            ("held_after_pct_of_rss", format!("{:.2}", rss_pct(held1))),
            ("held_by_2nd_pct_of_rss", format!("{:.2}", rss_pct(held2))),
            ("allocator_free_after", after2.allocator_free.to_string()),
            ("rss_settled_kb", rss_untrimmed.to_string()),
            ("rss_trimmed_kb", rss_trimmed.to_string()),
            ("allocs_over_128k", large.to_string()),
            (
                "command",
                js(&format!(
                    "{var}={count} cargo test -p ft-facade --test many"
                )),
            ),
        ],
    );
    let busy = first.busy + second.busy;
    assert_eq!(
        busy, 0,
        "{busy} offers refused as busy: this test means {count} at once from one account, \
         so the receiver's Policy must admit them all (max_pending_offers, and a per-peer \
         cap if the Policy has one)"
    );
    for (i, b) in [&first, &second].iter().enumerate() {
        assert_eq!(
            b.failed,
            0,
            "burst {}: {} of {count} failed or differ",
            i + 1,
            b.failed
        );
        assert!(
            b.intact,
            "burst {}: exactly the files sent, no .part left",
            i + 1
        );
    }
    for (i, (t, r)) in [(tasks1, &after1), (tasks2, &after2)]
        .into_iter()
        .enumerate()
    {
        let n = i + 1;
        assert_eq!(t, tasks0, "tasks after burst {n} (baseline {tasks0})");
        assert_eq!(r.fds, base.fds, "descriptors after burst {n}");
        assert_eq!(r.threads, base.threads, "threads after burst {n}");
    }
    // Memory: what is *held* (live heap bytes), at most 5 % of the baseline RSS above the
    // baseline after the first burst, and again after the second (nothing accumulates).
    // What stays is what reusable structures that live on keep at their high-water mark,
    // found with backtraces of the allocations still live: tokio's mpsc channels keep the
    // blocks of 32 slots a burst filled (the hub's stanza queues, the offer queue), tokio's
    // I/O driver and blocking pool their tables; 50–150 KB here, reused by the next burst
    // (which reaches a slightly different high-water mark). Before the fixes: +676 KB of our
    // own maps sized for 1,000 entries, and finished S5B tasks kept until the next one.
    let allowed = base.rss_kb as i64 * 1024 / 20;
    for (what, held) in [("after the load", held1), ("by the second burst", held2)] {
        assert!(
            held <= allowed,
            "live heap {held:+} B {what} (baseline {} B), more than 5 % of the baseline RSS \
             ({allowed} B)",
            base.live_heap
        );
    }
    // Small files, small buffers: no transfer here allocates 128 KiB at once (each took
    // four 256 KiB buffers before, whatever its size).
    assert!(
        large < count as u64 / 10,
        "{large} allocations of 128 KiB or more for {count} files of at most 16 KiB"
    );
}
