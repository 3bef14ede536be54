//! BAD-INPUT I5: idle relays hold their sockets and nothing else. Alone in its file (its
//! own process under `cargo test` and nextest): it measures the process's memory and
//! descriptors. The 10,000-relay figure, kernel memory included, is the benchmark's
//! (`cargo run --release -p benches --bin proxy-memory`, docs/bench/proxy-memory.md).
#![cfg(target_os = "linux")]

mod common;

use std::time::Duration;

use common::*;
use ft_transport::hub::Hub;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The target: 10,000 idle relays in 256 MiB, kernel included, so 26.8 KB per relay.
const BUDGET_PER_RELAY: u64 = 256 * 1024 * 1024 / 10_000;

/// The kernel's TCP socket buffer memory, pages (system-wide: /proc/net/sockstat `mem`).
fn tcp_mem_pages() -> u64 {
    let s = std::fs::read_to_string("/proc/net/sockstat").unwrap();
    let line = s.lines().find(|l| l.starts_with("TCP:")).unwrap();
    let mut it = line.split_whitespace();
    while let Some(w) = it.next() {
        if w == "mem" {
            return it.next().unwrap().parse().unwrap();
        }
    }
    panic!("no TCP mem in {line}")
}

async fn round_trip(t: &mut TcpStream, r: &mut TcpStream, len: usize) {
    let chunk = data(len);
    r.write_all(&chunk).await.unwrap();
    let mut got = vec![0u8; len];
    t.read_exact(&mut got).await.unwrap();
    assert!(got == chunk);
    t.write_all(&chunk).await.unwrap();
    r.read_exact(&mut got).await.unwrap();
    assert!(got == chunk);
}

/// A thousand relays (fewer if the descriptor limit is low), each of which moved 64 KiB
/// both ways, then went quiet: past the release delay they hold no pipe (the old relay
/// held two 1 MiB pipes, four descriptors, per relay for its whole life), the process
/// grew by far less than the per-relay budget (clients included), the kernel holds no
/// socket buffers for them, and every one of them still relays at once.
#[tokio::test]
async fn i5_idle_relays_hold_no_pipe_and_stay_under_the_memory_bound() {
    let limit = xep0065_proxy::raise_fd_limit().unwrap().unwrap_or(1024);
    let n = 1000usize.min(usize::try_from(limit).unwrap_or(1024).saturating_sub(200) / 8);
    assert!(n >= 50, "descriptor limit {limit} too low for this test");
    let hub = Hub::new();
    let p = proxy(&hub, |c| c.max_relays_per_jid = n + 1).await;
    let mut alice = Raw::new(&hub, "alice@example.org/a");
    // Warm up allocator and runtime with one relay, then take the baseline.
    let (mut t0, mut r0) = relay(&p, &mut alice, "warm").await;
    round_trip(&mut t0, &mut r0, 65536).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (fds0, pipes0) = fds();
    let rss0 = rss();
    let mem0 = tcp_mem_pages();

    let mut relays = Vec::with_capacity(n);
    for i in 0..n {
        let (mut t, mut r) = relay(&p, &mut alice, &format!("idle-{i}")).await;
        round_trip(&mut t, &mut r, 65536).await;
        relays.push((t, r));
    }
    let (_, pipes_busy) = fds();
    // Quiet for longer than the release delay (1 s).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (fds1, pipes1) = fds();
    let rss1 = rss();
    let mem1 = tcp_mem_pages();
    let per_relay = rss1.saturating_sub(rss0) / n as u64;
    eprintln!(
        "{n} idle relays: descriptors {fds0} -> {fds1}, pipes {pipes0} -> {pipes_busy} (just \
         after the traffic) -> {pipes1}, RSS {} -> {} KiB ({per_relay} B per relay, both \
         clients included), TCP buffer pages {mem0} -> {mem1}",
        rss0 / 1024,
        rss1 / 1024
    );
    assert_eq!(pipes1, pipes0, "idle relays hold no pipe");
    assert_eq!(
        fds1 - fds0,
        4 * n,
        "two sockets per relay each side, nothing else"
    );
    assert!(
        per_relay < BUDGET_PER_RELAY / 2,
        "{per_relay} B of user memory per idle relay, budget {BUDGET_PER_RELAY} B in all"
    );
    // System-wide, so other processes' traffic counts too: a loose bound, far below what
    // one 64 KiB page set per relay would be.
    assert!(
        mem1.saturating_sub(mem0) < n as u64 / 4,
        "idle sockets hold no buffers: TCP pages {mem0} -> {mem1}"
    );
    // Every relay still works: the next byte opens a new (default-sized) pipe.
    for (i, (t, r)) in relays.iter_mut().enumerate().step_by(97) {
        round_trip(t, r, 1000 + i).await;
    }
    assert_eq!(p.pending(), 0);
}
