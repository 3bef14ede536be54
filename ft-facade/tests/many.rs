//! Many transfers at once through one pair of `FileTransfer`s on the in-memory hub (issue 9):
//! every file a different size and content, all offered at once, all accepted as they
//! come; every file must land intact (SHA-256 on disk) within a bounded time, and nothing
//! but the files is left. Reports wall time, peak threads and RSS.
//!
//! By IBB (every byte a stanza through the hub) and by S5B (every transfer its own loopback
//! socket). CI runs the full 1,000 by IBB (4.3 s of wall time on two shared cores, measured with
//! `XFT_MANY=1000 cargo test -p ft-facade --test many`); `XFT_MANY=N` runs N; by S5B 200
//! (`XFT_MANY_S5B=N`).

mod common;
mod reliability;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use ft_facade::{AcceptOptions, Method, Policy, SendOptions};
use ft_transport::hub::Hub;
use reliability::{env_u64, figure, js, proc_status};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_transfers_over_the_hub_all_land_intact() {
    let count = env_u64("XFT_MANY", 1000) as usize;
    many(Method::Ibb, count, "XFT_MANY").await;
}

/// The same with every transfer's bytes on its own loopback SOCKS5 connection (three
/// descriptors each: the sender's listener and both ends): 200 by default, within the
/// 1,024 descriptors a process gets by default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_s5b_transfers_all_land_intact() {
    let count = env_u64("XFT_MANY_S5B", 200) as usize;
    many(Method::S5b, count, "XFT_MANY_S5B").await;
}

/// One at a time: the threads and RSS measured are the whole process's.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn many(method: Method, count: usize, var: &str) {
    let _alone = ONE_AT_A_TIME.lock().await;
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
    let dst = tempfile::tempdir().unwrap();
    let mut want = std::collections::HashMap::new();
    let mut paths = Vec::new();
    for i in 0..count {
        // 1..=16 KiB, distinct content: a mix-up between two transfers shows.
        let data = content(1024 + (i * 7919) % (15 * 1024), 1_000 + i as u64);
        let name = format!("many-{i:04}.bin");
        want.insert(name.clone(), sha256_hex(&data));
        paths.push(write_file(src.path(), &name, &data));
    }

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
            receiving.push(offer.accept_into_dir(dst.path(), AcceptOptions::new()));
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
    let (_, rss1, _) = proc_status();

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
    let left = listing(dst.path());
    figure(
        if method == Method::Ibb {
            "many"
        } else {
            "many_s5b"
        },
        &[
            ("transfers", count.to_string()),
            (
                "method",
                js(if method == Method::Ibb {
                    "ibb-iq over the hub"
                } else {
                    "s5b-direct on 127.0.0.1"
                }),
            ),
            ("failed", failed.to_string()),
            ("wall_seconds", format!("{:.2}", wall.as_secs_f64())),
            ("threads_before", threads0.to_string()),
            (
                "peak_threads",
                peak_threads.load(Ordering::Relaxed).to_string(),
            ),
            ("rss_before_kb", rss0.to_string()),
            ("rss_after_kb", rss1.to_string()),
            ("peak_rss_kb", peak_rss.load(Ordering::Relaxed).to_string()),
            (
                "command",
                js(&format!(
                    "{var}={count} cargo test -p ft-facade --test many"
                )),
            ),
        ],
    );
    assert_eq!(
        busy, 0,
        "{busy} offers refused as busy: this test means {count} at once from one account, \
         so the receiver's Policy must admit them all (max_pending_offers, and a per-peer \
         cap if the Policy has one)"
    );
    assert_eq!(failed, 0, "{failed} of {count} transfers failed or differ");
    assert_eq!(left, names, "exactly the files sent, no .part left");
}
