//! BAD-INPUT E7, E8: a slowloris flood and an activation flood while a legitimate transfer
//! runs. In a file of its own: it holds thousands of sockets (and raises its descriptor
//! limit for them). The 50,000-connection version is the benchmark's
//! (`cargo run --release -p benches --bin proxy-memory`).
#![cfg(target_os = "linux")]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::*;
use ft_transport::hub::Hub;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza_error::DefinedCondition;

/// Whether the proxy has closed `s` (end of stream or reset), without waiting.
fn closed(s: &TcpStream) -> bool {
    // Closed (a FIN: reads 0) or reset (the proxy resets a displaced handshake: the peek
    // fails with ECONNRESET); only "would block" means it is still open.
    let mut b = [std::mem::MaybeUninit::<u8>::uninit(); 1];
    match socket2::SockRef::from(s).peek(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

/// 2,000 connections from 127.0.0.2..=127.0.0.250 (8 per address, under the per-IP cap of
/// 32) each send the first byte of a SOCKS5 greeting and nothing more; strangers send 200
/// activations. Meanwhile a pair from 127.0.0.1 connects, is activated and moves 8 MiB
/// intact. The handshake table holds 1,024: the old proxy refused every connection past
/// it, the legitimate ones included, until the flood's 10 s deadline; now a new connection
/// ends the oldest handshake, so the flood only displaces itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e7_slowloris_flood_does_not_stop_a_legitimate_relay() {
    let limit = xep0065_proxy::raise_fd_limit().unwrap().unwrap_or(1024);
    let flood = 2000usize.min(usize::try_from(limit).unwrap_or(1024).saturating_sub(300) / 2);
    assert!(
        flood > 1100,
        "descriptor limit {limit} too low for this test"
    );
    let hub = Hub::new();
    let p = proxy(&hub, |_| {}).await;
    let addr = proxy_addr(&p);

    let mut held = Vec::with_capacity(flood);
    for i in 0..flood {
        let src = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % 249) as u8));
        let mut s = connect_from(src, addr).await.unwrap();
        s.write_all(&[5]).await.unwrap();
        held.push(s);
    }
    let strangers = tokio::spawn({
        let hub = hub.clone();
        async move {
            let mut mallory = Raw::new(&hub, "mallory@evil.example/m");
            let mut eve = Raw::new(&hub, "eve@example.org/e");
            for i in 0..100 {
                let r = mallory
                    .ask(activate_iq(
                        &format!("m{i}"),
                        &format!("s{i}"),
                        "bob@example.org/b",
                    ))
                    .await;
                assert!(
                    matches!(r, Iq::Error { ref error, .. } if error.defined_condition == DefinedCondition::Forbidden),
                    "{r:?}"
                );
                let r = eve
                    .ask(activate_iq(&format!("e{i}"), "legit", "bob@example.org/b"))
                    .await;
                assert!(
                    matches!(r, Iq::Error { ref error, .. } if error.defined_condition == DefinedCondition::ItemNotFound),
                    "{r:?}"
                );
            }
        }
    });

    let mut alice = Raw::new(&hub, "alice@example.org/a");
    let (mut target, mut requester) =
        tokio::time::timeout(Duration::from_secs(5), relay(&p, &mut alice, "legit"))
            .await
            .expect("the legitimate pair is served during the flood");
    let payload = data(8 << 20);
    let want = sha256(&payload);
    let writer = tokio::spawn(async move {
        requester.write_all(&payload).await.unwrap();
        requester.shutdown().await.unwrap();
        requester
    });
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), target.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sha256(&got), want, "8 MiB intact");
    writer.await.unwrap();
    strangers.await.unwrap();

    // The flood held at most the handshake table: the rest was displaced, oldest first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let open = held.iter().filter(|s| !closed(s)).count();
    eprintln!("{flood} slowloris connections: {open} still in their handshake");
    assert!(
        open <= 1024,
        "{open} half-handshakes held, the table holds 1024"
    );
    assert!(
        held[..100].iter().all(closed),
        "the oldest were displaced first"
    );
}
