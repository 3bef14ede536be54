//! BAD-INPUT E8 / issue 10, finding 5: short connections leave no task and no memory behind.
//! Alone in its file (its own process under `cargo test` and nextest): it measures the
//! process's tasks and memory.
//!
//! CI runs 10,000 connections; `XFT_LONG=1` runs the 100,000.
#![cfg(target_os = "linux")]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use common::*;
use ft_transport::hub::Hub;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One short connection of kind `i % 4`: closed at once; closed mid-handshake (after the
/// method selection); a bad greeting (SOCKS4), answered `05 FF`; or a valid CONNECT that is
/// never activated, closed after the success reply.
async fn short(addr: std::net::SocketAddr, src: IpAddr, i: u64) {
    let Ok(mut s) = connect_from(src, addr).await else {
        return;
    };
    let mut b = [0u8; 64];
    match i % 4 {
        0 => {}
        1 => {
            s.write_all(&[5, 1, 0]).await.unwrap();
            let _ = s.read_exact(&mut b[..2]).await;
        }
        2 => {
            s.write_all(&[4, 1, 0, 80]).await.unwrap();
            let _ = s.read(&mut b).await;
        }
        _ => {
            let dst = format!("{:040x}", u128::from(i as u32) << 64 | 0xabcdef);
            s.write_all(&[5, 1, 0]).await.unwrap();
            let _ = s.read_exact(&mut b[..2]).await;
            let mut req = vec![5, 1, 0, 3, 40];
            req.extend_from_slice(dst.as_bytes());
            req.extend_from_slice(&[0, 0]);
            s.write_all(&req).await.unwrap();
            let _ = s.read_exact(&mut b[..4 + 1 + 40 + 2]).await;
        }
    }
}

/// Resident memory once the allocator has given its free pages back (glibc keeps freed
/// memory in per-thread arenas, so without this RSS says more about which thread freed what
/// than about what is still held).
fn live_rss() -> u64 {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free heap memory to the system; it takes no pointer.
    unsafe {
        libc::malloc_trim(0);
    }
    rss()
}

/// `total` short connections from 100 loopback addresses, 64 at a time.
async fn burst(addr: std::net::SocketAddr, from: u64, total: u64) {
    let mut set = tokio::task::JoinSet::new();
    for i in from..from + total {
        if set.len() >= 64 {
            set.join_next().await.unwrap().unwrap();
        }
        let src = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % 100) as u8));
        set.spawn(short(addr, src, i));
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
}

/// After a warm-up burst (the allocator and the runtime reach their working size), the
/// tasks alive in the runtime and the proxy's own count are back at their baseline once
/// the connections are gone, and the resident memory within 5 % of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e8_short_connections_leave_no_task_or_memory_behind() {
    let total: u64 = if std::env::var_os("XFT_LONG").is_some_and(|v| v == "1") {
        100_000
    } else {
        10_000
    };
    let hub = Hub::new();
    let p = proxy(&hub, |_| {}).await;
    let addr = proxy_addr(&p);
    let metrics = tokio::runtime::Handle::current().metrics();
    burst(addr, 0, 5_000).await;
    let settle = |what: &'static str| {
        let p = p.clone();
        let metrics = metrics.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            while p.pending() > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // One more connection reaps the proxy's ended tasks.
            burst(addr, 0, 1).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            let r = (
                metrics.num_alive_tasks(),
                p.tasks(),
                live_rss(),
                p.pending(),
            );
            eprintln!(
                "{what}: alive tasks {}, proxy tasks {}, RSS {} KiB, pending {}",
                r.0,
                r.1,
                r.2 / 1024,
                r.3
            );
            r
        }
    };
    let (alive0, tasks0, rss0, _) = settle("baseline").await;
    let start = Instant::now();
    burst(addr, 10_000, total).await;
    let took = start.elapsed();
    let (alive1, tasks1, rss1, pending1) = settle("after").await;
    eprintln!("{total} short connections in {took:?}");
    assert_eq!(pending1, 0, "no connection left waiting");
    assert!(
        alive1 <= alive0,
        "{alive1} tasks alive after {total} connections, {alive0} before"
    );
    assert!(
        tasks1 <= tasks0,
        "the proxy holds {tasks1} tasks, {tasks0} before"
    );
    assert!(
        rss1 <= rss0 + rss0 / 20,
        "RSS {} KiB after {total} connections, {} KiB before",
        rss1 / 1024,
        rss0 / 1024
    );
}
