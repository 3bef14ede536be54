//! A quick throughput figure, not a benchmark and never asserted:
//!
//! ```text
//! cargo test -p xep0065-proxy --release --test throughput -- --ignored --nocapture
//! ```
//!
//! Moves `S5B_MIB` MiB (default 256) one way on 127.0.0.1: raw TCP, direct S5B to our
//! listener, S5B through our proxy (`S5B_PROXY_BUF` bytes of pipe per direction, default
//! `ProxyConfig`'s), and raw TCP again once warm. MB = 10^6 bytes.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ft_transport::hub::Hub;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use xep0065_s5b::Sid;

fn total() -> usize {
    std::env::var("S5B_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256usize)
        << 20
}

async fn pump<W, R>(mut w: W, mut r: R) -> Duration
where
    W: AsyncWrite + Unpin + Send + 'static,
    R: AsyncRead + Unpin,
{
    let n = total();
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        let chunk = vec![0x5au8; 1 << 20];
        let mut left = n;
        while left > 0 {
            let k = left.min(chunk.len());
            w.write_all(&chunk[..k]).await.unwrap();
            left -= k;
        }
        w.shutdown().await.unwrap();
        w
    });
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0usize;
    loop {
        let k = r.read(&mut buf).await.unwrap();
        if k == 0 {
            break;
        }
        got += k;
    }
    let took = start.elapsed();
    drop(writer.await.unwrap());
    assert_eq!(got, n);
    took
}

fn report(name: &str, d: Duration) {
    let mb = total() as f64 / 1e6;
    println!(
        "{name:<28} {:>8.0} MB/s  ({} MiB in {:.3} s)",
        mb / d.as_secs_f64(),
        total() >> 20,
        d.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "prints a throughput figure; run in release with --ignored --nocapture"]
async fn throughput_raw_direct_and_proxied() {
    // Raw TCP.
    let l = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    let (b, _) = l.accept().await.unwrap();
    report("raw loopback tcp", pump(a, b).await);

    // Direct S5B.
    let hub = Hub::new();
    let alice = peer(&hub, "alice@example.org/a", config());
    let bob = peer(&hub, "bob@example.org/b", config());
    let sid = Sid::new("tp-direct").unwrap();
    let t = tokio::spawn(bob.expect(
        jid("alice@example.org/a"),
        sid.clone(),
        Duration::from_secs(10),
    ));
    let req = alice
        .connect(jid("bob@example.org/b"), sid, &[])
        .await
        .unwrap();
    let tgt = t.await.unwrap().unwrap();
    report("direct s5b", pump(req.stream, tgt.stream).await);

    // Through our proxy.
    let buf = std::env::var("S5B_PROXY_BUF")
        .ok()
        .and_then(|v| v.parse().ok());
    let p = proxy(&hub, |c| {
        if let Some(b) = buf {
            c.buffer_size = b;
        }
    })
    .await;
    let mut ac = config();
    ac.listen(vec![]);
    let alice2 = peer(&hub, "alice@example.org/a2", ac);
    let sid = Sid::new("tp-proxy").unwrap();
    let t = tokio::spawn(bob.expect(
        jid("alice@example.org/a2"),
        sid.clone(),
        Duration::from_secs(10),
    ));
    let req = alice2
        .connect(jid("bob@example.org/b"), sid, p.streamhosts())
        .await
        .unwrap();
    let tgt = t.await.unwrap().unwrap();
    report("s5b through our proxy", pump(req.stream, tgt.stream).await);

    // Raw again, now that everything is warm.
    let a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    let (b, _) = l.accept().await.unwrap();
    report("raw loopback tcp (again)", pump(a, b).await);
}
