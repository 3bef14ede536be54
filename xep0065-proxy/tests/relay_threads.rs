//! Issue 9, the flood line: activated relays run on threads of the proxy's own
//! ([`ProxyConfig::relay_threads`](xep0065_proxy::ProxyConfig::relay_threads)), so a runtime
//! busy with handshakes (a slowloris flood) does not hold back a relay's bytes. Here the
//! runtime that bound the proxy is blocked outright, the hardest form of "busy".

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;
use ft_transport::hub::Hub;

/// The tests of this file count the process's threads: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Both client ends of a relay as blocking std sockets: 4 MiB written into the requester
/// by one thread and read from the target by another; the moment the last byte arrived.
fn transfer_on_threads(
    target: tokio::net::TcpStream,
    requester: tokio::net::TcpStream,
) -> std::thread::JoinHandle<Result<Instant, String>> {
    let data: Vec<u8> = (0..4u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let mut t = target.into_std().unwrap();
    let mut r = requester.into_std().unwrap();
    t.set_nonblocking(false).unwrap();
    r.set_nonblocking(false).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    r.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let expected = data.clone();
    std::thread::spawn(move || {
        let writer = std::thread::spawn(move || r.write_all(&data).map(|()| r));
        let mut got = vec![0u8; expected.len()];
        t.read_exact(&mut got)
            .map_err(|e| format!("reading the relayed bytes: {e}"))?;
        let at = Instant::now();
        writer
            .join()
            .unwrap()
            .map_err(|e| format!("writing: {e}"))?;
        if got != expected {
            return Err("the relayed bytes differ".into());
        }
        Ok(at)
    })
}

/// The proxy's runtime (this test's only thread) is blocked for 2 s right after the
/// activation: with the relay on that runtime (the old proxy, or `relay_threads = 0`) no
/// byte moves until it is free again; on the relay thread all 4 MiB arrive meanwhile.
#[tokio::test]
async fn a_relay_moves_its_bytes_while_the_proxys_runtime_is_busy() {
    let _one = SERIAL.lock().await;
    let hub = Hub::new();
    let p = proxy(&hub, |_| {}).await;
    let mut alice = Raw::new(&hub, "alice@example.org/a");
    let (target, requester) = relay(&p, &mut alice, "busy-runtime").await;
    let moving = transfer_on_threads(target, requester);
    let blocked = Instant::now();
    // Blocks the runtime: its accept loop, handshakes and timers stand still.
    std::thread::sleep(Duration::from_secs(2));
    let freed = Instant::now();
    // Waited for off the runtime, which must run again (on the old proxy, the relay too).
    let done = tokio::task::spawn_blocking(move || moving.join().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(
        done < freed,
        "the relay waited for the proxy's runtime: done {:?} after it was blocked, \
         the runtime was free again after {:?}",
        done - blocked,
        freed - blocked
    );
}

/// `relay_threads = 0` keeps the relays on the caller's runtime (they still move every
/// byte once it runs), and a proxy with relay threads leaves none behind when dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_on_the_callers_runtime_still_flow_and_relay_threads_end_with_the_proxy() {
    let _one = SERIAL.lock().await;
    // The proxy's relay threads alive in this process (by name).
    let threads = || {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .flatten()
            .filter(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .is_ok_and(|c| c.starts_with("xep0065-relay"))
            })
            .count()
    };
    // Another test's proxy may still be ending (its runtime drops it after the test).
    let deadline = Instant::now() + Duration::from_secs(5);
    while threads() != 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(threads(), 0);
    for relay_threads in [0, 1, 3] {
        let hub = Hub::new();
        // As `common::proxy`, but with a stanza pump that can be stopped: that one holds a
        // clone of the proxy for as long as the hub lives.
        let mut c = xep0065_proxy::ProxyConfig::new(jid("proxy.example.org"));
        c.listen = vec![std::net::SocketAddr::new(LOCALHOST, 0)];
        c.allowed_domains = vec!["example.org".into()];
        c.relay_threads = relay_threads;
        let p = xep0065_proxy::Proxy::bind(c).await.unwrap();
        let (t, mut rx) = hub.connect(jid("proxy.example.org"));
        let mut out = p.outbound().unwrap();
        tokio::spawn(async move {
            while let Some(st) = out.recv().await {
                let _ = ft_transport::StanzaTransport::send(&t, st).await;
            }
        });
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let p2 = p.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    st = rx.recv() => match st {
                        Some(st) => { let _ = p2.handle_stanza(st); }
                        None => return,
                    },
                }
            }
        });
        let mut alice = Raw::new(&hub, "alice@example.org/a");
        for i in 0..4 {
            let (mut target, mut requester) = relay(&p, &mut alice, &format!("r{i}")).await;
            relays(&mut target, &mut requester, &vec![i as u8; 100_000]).await;
        }
        assert_eq!(threads(), relay_threads, "{relay_threads} relay threads");
        drop((p, stop));
        let deadline = Instant::now() + Duration::from_secs(5);
        while threads() != 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(threads(), 0, "threads left by a proxy with {relay_threads}");
    }
}
