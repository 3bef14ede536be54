//! Many concurrent transfers (BAD-INPUT I1): the hashing of 200 receives at once shares one
//! bounded pool of threads instead of starting two threads per transfer, and every file
//! lands intact. In a file of its own: the test counts the threads of its process.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use ft_facade::{FileInfo, Method, Policy, SendOptions};
use ft_transport::hub::Hub;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

const TRANSFERS: usize = 200;
const SIZE: usize = 64 * 1024;

/// The `Threads:` line of /proc/self/status.
fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

#[test]
fn i1_two_hundred_concurrent_receives_share_a_bounded_hashing_pool() {
    // Tokio's own threads bounded too: 2 workers, at most 8 blocking (file I/O).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()
        .unwrap();
    let baseline = threads();
    let peak = Arc::new(AtomicUsize::new(baseline));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                peak.fetch_max(threads(), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    rt.block_on(async {
        let hub = Hub::new();
        let dst = tempfile::tempdir().unwrap();
        let mut c = config(&[Method::Ibb]);
        let mut policy = Policy::auto_accept(vec![jid("alice@x").to_bare()], dst.path());
        policy.max_offers_per_peer = TRANSFERS;
        policy.max_pending_offers = TRANSFERS;
        c.policy = policy;
        let bob = entity(&hub, "bob@x/b", c);
        let alice = entity(&hub, "alice@x/a", config(&[Method::Ibb]));

        // Each sender reads its file from a pipe: half of it at once, the rest only once
        // every transfer is under way, so that all 200 receives are open together.
        let (gate_tx, gate) = watch::channel(false);
        let mut sending = Vec::new();
        let mut expected = Vec::new();
        for i in 0..TRANSFERS {
            let data = content(SIZE, i as u64);
            expected.push((format!("f{i}.bin"), sha256_hex(&data)));
            let (mut w, r) = tokio::io::duplex(16 * 1024);
            let mut gate = gate.clone();
            tokio::spawn(async move {
                w.write_all(&data[..SIZE / 2]).await.unwrap();
                let _ = gate.wait_for(|open| *open).await;
                w.write_all(&data[SIZE / 2..]).await.unwrap();
            });
            let info = FileInfo::new(format!("f{i}.bin"), SIZE as u64);
            sending.push(alice.send_reader(jid("bob@x/b"), r, info, SendOptions::default()));
        }
        let mut receiving = Vec::new();
        for _ in 0..TRANSFERS {
            let mut offer = tokio::time::timeout(Duration::from_secs(30), bob.next_offer())
                .await
                .expect("every offer arrives")
                .unwrap();
            receiving.push(offer.take_auto_accepted().expect("auto-accepted"));
        }
        // Every receive has begun: give them time to get their first bytes.
        let started = tokio::time::Instant::now();
        while receiving.iter().any(|h| h.progress().bytes == 0)
            && started.elapsed() < Duration::from_secs(30)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(receiving.iter().all(|h| h.progress().bytes > 0));
        gate_tx.send(true).unwrap();
        for (s, r) in sending.into_iter().zip(receiving) {
            let (sent, received) = tokio::join!(s.outcome(), r.outcome());
            sent.unwrap();
            received.unwrap();
        }
        for (name, sha) in &expected {
            assert_eq!(&sha256_file(&dst.path().join(name)), sha, "{name}");
        }
    });
    done.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    let grew = peak.load(Ordering::SeqCst) - baseline;
    eprintln!("threads: baseline {baseline}, peak +{grew}");
    // 2 tokio workers + 8 blocking + the hashing pool (at most 8) + the sampler, with slack;
    // two threads per digest and transfer would be 400 for the receives alone.
    assert!(grew <= 32, "{grew} more threads with {TRANSFERS} receives");
}
