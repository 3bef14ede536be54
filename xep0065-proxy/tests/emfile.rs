//! BAD-INPUT E8: the accept loop when the process is out of file descriptors.
//!
//! The test lowers `RLIMIT_NOFILE` for its whole process, so it lives alone in this file:
//! `cargo test` runs each test file as a process of its own, and nextest each test.
#![cfg(target_os = "linux")]

mod common;

use std::time::{Duration, Instant};

use common::*;
use ft_transport::hub::Hub;
use rlimit::Resource;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Out of descriptors, `accept` fails while the connection stays in the backlog. The old
/// loop slept 100 ms and retried, forever while the shortage lasted: every client sat
/// connected to nobody. Now each waiting connection is closed at once (a descriptor held
/// in reserve is freed to take it), and when descriptors come back the next client is
/// served at once, end to end. Then `raise_fd_limit` restores the soft limit to the hard.
#[tokio::test]
async fn e8_emfile_never_stalls_the_accept_loop() {
    let hub = Hub::new();
    let p = proxy(&hub, |_| {}).await;
    let addr = proxy_addr(&p);
    let (soft, hard) = Resource::NOFILE.get().unwrap();
    // Client sockets made while there are descriptors; connected once there are none.
    let clients: Vec<_> = (0..20)
        .map(|_| tokio::net::TcpSocket::new_v4().unwrap())
        .collect();
    let (open, _) = fds();
    Resource::NOFILE.set(open as u64 + 16, hard).unwrap();
    let mut filler = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        filler.push(f);
    }
    assert!(
        std::fs::File::open("/dev/null").is_err(),
        "out of descriptors"
    );

    let start = Instant::now();
    let mut conns = Vec::new();
    for c in clients {
        // The kernel completes the connection; the proxy cannot accept it.
        conns.push(c.connect(addr).await.unwrap());
    }
    // Every client kept open, so that no descriptor comes back in the meantime.
    for (i, c) in conns.iter_mut().enumerate() {
        let mut b = [0u8; 1];
        let r = tokio::time::timeout(Duration::from_secs(3), c.read(&mut b)).await;
        assert!(
            matches!(r, Ok(Ok(0) | Err(_))),
            "connection {i} was left waiting in the backlog: {r:?}"
        );
    }
    let shed = start.elapsed();
    assert!(shed < Duration::from_secs(2), "20 closed in {shed:?}");
    drop(conns);

    // Descriptors come back: the next client gets its whole relay.
    drop(filler);
    let mut alice = Raw::new(&hub, "alice@example.org/a");
    let (mut target, mut requester) = relay(&p, &mut alice, "after-emfile").await;
    requester.write_all(b"served").await.unwrap();
    requester.shutdown().await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), target.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"served");

    // The helper `xft proxy` calls at start puts the soft limit back at the hard one.
    assert_eq!(xep0065_proxy::raise_fd_limit().unwrap(), Some(hard));
    assert_eq!(Resource::NOFILE.get().unwrap(), (hard, hard));
    let _ = soft;
}
