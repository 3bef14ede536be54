//! Bytestreams through our proxy on 127.0.0.1, requester and target being `xep0065-s5b`'s
//! `S5b`, with the in-memory hub for the stanzas.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use ft_transport::hub::Hub;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use xep0065_s5b::{Outcome, Sid, StreamHost};

const MIB: usize = 1 << 20;

/// Requester and target both through our proxy (the requester offers no own address).
async fn mediated_pair(
    hub: &Hub,
    proxy: &xep0065_proxy::Proxy,
    sid: &str,
) -> (xep0065_s5b::Connected, xep0065_s5b::Connected) {
    let mut ac = config();
    ac.listen(vec![]);
    let a = peer(hub, "alice@example.org/a", ac);
    let b = peer(hub, "bob@example.org/b", config());
    let hosts = a.query_proxy(jid("proxy.example.org")).await.unwrap();
    assert_eq!(hosts, proxy.streamhosts());
    let sid = Sid::new(sid).unwrap();
    let target = tokio::spawn(b.expect(
        jid("alice@example.org/a"),
        sid.clone(),
        Duration::from_secs(10),
    ));
    let req = a
        .connect(jid("bob@example.org/b"), sid, &hosts)
        .await
        .unwrap();
    let tgt = target.await.unwrap().unwrap();
    assert_eq!(req.streamhost.jid, jid("proxy.example.org"));
    assert_eq!(tgt.streamhost.jid, jid("proxy.example.org"));
    (req, tgt)
}

#[tokio::test]
async fn mediated_transfer_through_our_proxy_arrives_byte_identical() {
    let hub = Hub::new();
    let p = proxy(&hub, |_| {}).await;
    let (mut req, mut tgt) = mediated_pair(&hub, &p, "mediated-1").await;
    let payload = data(5 * MIB);
    let want = sha256(&payload);
    let writer = tokio::spawn(async move {
        req.stream.write_all(&payload).await.unwrap();
        req.stream.shutdown().await.unwrap();
        req
    });
    let mut buf = Vec::new();
    tgt.stream.read_to_end(&mut buf).await.unwrap();
    assert_eq!(sha256(&buf), want);
    // And the other way, on the same relay.
    tgt.stream.write_all(b"thanks").await.unwrap();
    tgt.stream.shutdown().await.unwrap();
    let mut req = writer.await.unwrap();
    let mut back = Vec::new();
    req.stream.read_to_end(&mut back).await.unwrap();
    assert_eq!(back, b"thanks");
}

#[tokio::test]
async fn e11_the_tail_of_a_relay_arrives_with_the_half_close_not_at_connection_close() {
    let hub = Hub::new();
    let p = proxy(&hub, |_| {}).await;
    let (mut req, mut tgt) = mediated_pair(&hub, &p, "tail-1").await;
    // Not a multiple of 4096, so a Prosody-style relay would hold a partial tail.
    let payload = data(MIB + 1234);
    req.stream.write_all(&payload).await.unwrap();
    req.stream.shutdown().await.unwrap();
    // The requester keeps its socket open: only the half-close may end the target's read.
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tgt.stream.read_to_end(&mut buf))
        .await
        .expect("end-of-stream must arrive while the requester's socket is still open")
        .unwrap();
    assert_eq!(buf.len(), payload.len());
    assert_eq!(sha256(&buf), sha256(&payload));
    // Still open the other way.
    tgt.stream.write_all(b"ack").await.unwrap();
    let mut ack = [0u8; 3];
    req.stream.read_exact(&mut ack).await.unwrap();
    assert_eq!(&ack, b"ack");
}

#[tokio::test]
async fn racing_past_a_refusing_and_a_silent_streamhost_completes_quickly() {
    let hub = Hub::new();
    let p = proxy(&hub, |_| {}).await;
    // A port that refuses: bind, note, close.
    let refused = {
        let l = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
        l.local_addr().unwrap()
    };
    // A port that accepts (kernel backlog) but never answers the SOCKS5 greeting.
    let silent = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let silent_addr: SocketAddr = silent.local_addr().unwrap();
    let mut ac = config();
    ac.listen(vec![]);
    let a = peer(&hub, "alice@example.org/a", ac);
    let mut bc = config();
    bc.connect_budget(Duration::from_secs(8))
        .handshake_timeout(Duration::from_secs(8));
    let b = peer(&hub, "bob@example.org/b", bc);
    let mut hosts = vec![
        StreamHost::new(jid("refused.example.org"), refused.ip(), refused.port()),
        StreamHost::new(
            jid("silent.example.org"),
            silent_addr.ip(),
            silent_addr.port(),
        ),
    ];
    hosts.extend(p.streamhosts().iter().cloned());
    let sid = Sid::new("race-1").unwrap();
    let started = Instant::now();
    let target = tokio::spawn(b.expect(
        jid("alice@example.org/a"),
        sid.clone(),
        Duration::from_secs(10),
    ));
    let mut req = a
        .connect(jid("bob@example.org/b"), sid, &hosts)
        .await
        .unwrap();
    let mut tgt = target.await.unwrap().unwrap();
    // Well inside the 8 s budget: the silent host did not hold up the race.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let outcomes: Vec<_> = tgt.attempts.iter().map(|a| a.outcome.clone()).collect();
    assert!(matches!(outcomes[0], Outcome::Failed(_)), "{outcomes:?}");
    assert_eq!(outcomes[1], Outcome::Lost);
    assert_eq!(outcomes[2], Outcome::Won);
    assert_eq!(tgt.streamhost.jid, jid("proxy.example.org"));
    req.stream.write_all(b"raced").await.unwrap();
    req.stream.shutdown().await.unwrap();
    let mut buf = Vec::new();
    tgt.stream.read_to_end(&mut buf).await.unwrap();
    assert_eq!(buf, b"raced");
    drop(silent);
}
