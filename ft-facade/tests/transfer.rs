//! Complete transfers between two facades on the in-memory hub, bytes over 127.0.0.1.

mod common;

use std::time::Duration;

use common::*;
use ft_facade::{AcceptOptions, ErrorKind, Method, MethodUsed, SendOptions, Side, Stage};
use ft_transport::hub::Hub;

#[tokio::test]
async fn s5b_direct_transfer_lands_with_identical_sha256() {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", config(&[Method::S5b]));
    let bob = entity(&hub, "bob@x/b", config(&[Method::S5b, Method::Ibb]));
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let data = content(300_000, 1);
    let path = write_file(src.path(), "report.pdf", &data);

    let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let offer = bob.next_offer().await.unwrap();
    assert_eq!(offer.file().name, "report.pdf");
    assert_eq!(offer.file().size, Some(300_000));
    assert!(offer.file().md5.is_some(), "the offer carries the md5");
    let receiving = offer.accept_into_dir(dst.path(), AcceptOptions::new());

    let (sent, received) = tokio::join!(sending.outcome(), receiving.outcome());
    let (sent, received) = (sent.unwrap(), received.unwrap());
    assert!(
        matches!(sent.method, MethodUsed::S5bDirect { .. }),
        "{:?}",
        sent.method
    );
    assert_eq!(received.bytes, 300_000);
    let on_disk = received.path.clone().unwrap();
    assert_eq!(on_disk, dst.path().join("report.pdf"));
    assert_eq!(sha256_file(&on_disk), sha256_hex(&data));
    assert_eq!(received.sha256, sha256_hex(&data));
    assert_eq!(sent.sha256, sha256_hex(&data));
    assert_eq!(listing(dst.path()), ["report.pdf"]);
}

#[tokio::test]
async fn a_declined_offer_is_declined_on_the_sender_with_the_reason() {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", config(&[Method::S5b, Method::Ibb]));
    let bob = entity(&hub, "bob@x/b", config(&[Method::S5b, Method::Ibb]));
    let src = tempfile::tempdir().unwrap();
    let path = write_file(src.path(), "a.bin", &content(1000, 2));
    let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    bob.next_offer().await.unwrap().decline(Some("not now"));
    let err = sending.outcome().await.unwrap_err();
    assert_eq!(err.stage, Stage::Offer);
    assert!(
        matches!(&err.kind, ErrorKind::Declined { text: Some(t) } if t == "not now"),
        "{err}"
    );
}

#[tokio::test]
async fn h3_cancel_while_the_offer_is_pending_ends_the_sender_at_stage_offer() {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", config(&[Method::S5b]));
    let bob = entity(&hub, "bob@x/b", config(&[Method::S5b]));
    let src = tempfile::tempdir().unwrap();
    let path = write_file(src.path(), "a.bin", &content(1000, 3));
    let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let _offer = bob.next_offer().await.unwrap();
    sending.cancel();
    let err = tokio::time::timeout(Duration::from_secs(5), sending.outcome())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.stage, Stage::Offer);
    assert!(err.is_cancelled_by(Side::Local));
}

async fn transfer_by(
    sender_methods: &[Method],
    size: usize,
    seed: u64,
) -> (
    ft_facade::Outcome,
    ft_facade::Outcome,
    Vec<u8>,
    tempfile::TempDir,
) {
    transfer_with(config(sender_methods), size, seed).await
}

async fn transfer_with(
    mut sc: ft_facade::Config,
    size: usize,
    seed: u64,
) -> (
    ft_facade::Outcome,
    ft_facade::Outcome,
    Vec<u8>,
    tempfile::TempDir,
) {
    let hub = Hub::new();
    sc.block_size(4096);
    let alice = entity(&hub, "alice@x/a", sc);
    let bob = entity(&hub, "bob@x/b", config(&[Method::S5b, Method::Ibb]));
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let data = content(size, seed);
    let path = write_file(src.path(), "data.bin", &data);
    let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let offer = bob.next_offer().await.unwrap();
    let receiving = offer.accept_into_dir(dst.path(), AcceptOptions::new());
    let (sent, received) = tokio::join!(sending.outcome(), receiving.outcome());
    (sent.unwrap(), received.unwrap(), data, dst)
}

#[tokio::test]
async fn ibb_over_iq_transfer_lands_with_identical_sha256() {
    let (sent, received, data, dst) = transfer_by(&[Method::Ibb], 100_000, 4).await;
    assert_eq!(sent.method, MethodUsed::IbbIq);
    assert_eq!(received.method, MethodUsed::IbbIq);
    assert_eq!(sha256_file(&dst.path().join("data.bin")), sha256_hex(&data));
    assert!(!sent.fallback && !received.fallback);
}

#[tokio::test]
async fn ibb_over_message_transfer_lands_with_identical_sha256() {
    let (sent, received, data, dst) =
        transfer_with(over_message(config(&[Method::Ibb])), 100_000, 5).await;
    assert_eq!(sent.method, MethodUsed::IbbMessage);
    assert_eq!(received.method, MethodUsed::IbbMessage);
    assert_eq!(sha256_file(&dst.path().join("data.bin")), sha256_hex(&data));
}

#[tokio::test]
async fn b3_an_empty_file_transfers_by_ibb() {
    let (_sent, received, _data, dst) = transfer_by(&[Method::Ibb], 0, 6).await;
    assert_eq!(received.bytes, 0);
    assert_eq!(std::fs::read(dst.path().join("data.bin")).unwrap(), b"");
}

#[tokio::test]
async fn s5b_through_a_discovered_proxy_lands_with_identical_sha256() {
    let hub = Hub::new();
    // Our proxy on the hub as proxy.x, its listener on 127.0.0.1.
    let mut pc = xep0065_proxy::ProxyConfig::new(jid("proxy.x"));
    pc.listen = vec![std::net::SocketAddr::from(([127, 0, 0, 1], 0))];
    pc.allowed_domains = vec!["x".into()];
    let proxy = xep0065_proxy::Proxy::bind(pc).await.unwrap();
    let (pt, mut prx) = hub.connect(jid("proxy.x"));
    proxy.serve(pt);
    let p2 = proxy.clone();
    tokio::spawn(async move {
        while let Some(s) = prx.recv().await {
            let _ = p2.handle_stanza(s);
        }
    });
    let mut sc = proxy_only(config(&[Method::S5b]));
    sc.proxies(ft_facade::ProxySource::Discover);
    let alice = entity(&hub, "alice@x/a", sc);
    let bob = entity(&hub, "bob@x/b", config(&[Method::S5b, Method::Ibb]));
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let data = content(200_000, 7);
    let path = write_file(src.path(), "via-proxy.bin", &data);
    let mut sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let receiving = bob
        .next_offer()
        .await
        .unwrap()
        .accept_into_dir(dst.path(), AcceptOptions::new());
    let received = receiving.outcome().await.unwrap();
    let mut saw_proxies = None;
    while let Some(ev) = sending.next_event().await {
        match ev {
            ft_facade::Event::Proxies { streamhosts, .. } => saw_proxies = Some(streamhosts),
            ft_facade::Event::Completed(_) | ft_facade::Event::Failed(_) => break,
            _ => {}
        }
    }
    let sent = sending.outcome().await.unwrap();
    assert!(
        matches!(&sent.method, MethodUsed::S5bProxy { proxy, .. } if proxy == &jid("proxy.x")),
        "{:?}",
        sent.method
    );
    assert!(matches!(&received.method, MethodUsed::S5bProxy { .. }));
    let hosts = saw_proxies.expect("a proxies event");
    assert_eq!(hosts.len(), 1);
    assert!(hosts[0].starts_with("proxy.x 127.0.0.1:"), "{hosts:?}");
    assert_eq!(
        sha256_file(&dst.path().join("via-proxy.bin")),
        sha256_hex(&data)
    );
}

#[tokio::test]
async fn c8_a_dead_streamhost_list_falls_back_to_ibb_on_the_same_sid_within_the_budget() {
    let hub = Hub::new();
    // A streamhost that accepts TCP and then says nothing: the worst case for a target.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let mut sc = config(&[Method::S5b, Method::Ibb]);
    sc.s5b.listen(Vec::new());
    sc.s5b.external = vec![(LOOPBACK.into(), silent_port)];
    sc.s5b_budget(Duration::from_secs(3));
    let alice = entity(&hub, "alice@x/a", sc);
    let mut rc = config(&[Method::S5b, Method::Ibb]);
    rc.s5b.connect_budget(Duration::from_secs(1));
    let bob = entity(&hub, "bob@x/b", rc);
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let data = content(50_000, 8);
    let path = write_file(src.path(), "fallback.bin", &data);
    let started = std::time::Instant::now();
    let sending = alice.send_file(
        jid("bob@x/b"),
        &path,
        SendOptions::default().with_sid(ft_facade::Sid::new("same-sid-1").unwrap()),
    );
    let mut receiving = bob
        .next_offer()
        .await
        .unwrap()
        .accept_into_dir(dst.path(), AcceptOptions::new());
    let mut fallback_reason = None;
    let mut candidates = Vec::new();
    while let Some(ev) = receiving.next_event().await {
        match ev {
            ft_facade::Event::Fallback { reason, .. } => fallback_reason = Some(reason),
            ft_facade::Event::Candidate(c) => candidates.push(c),
            ft_facade::Event::Completed(_) | ft_facade::Event::Failed(_) => break,
            _ => {}
        }
    }
    let (sent, received) = tokio::join!(sending.outcome(), receiving.outcome());
    let (sent, received) = (sent.unwrap(), received.unwrap());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "fell back within the budget"
    );
    assert!(sent.fallback && received.fallback);
    assert_eq!(sent.method, MethodUsed::IbbIq);
    assert_eq!(sent.sid, "same-sid-1");
    assert_eq!(received.sid, "same-sid-1");
    assert!(
        matches!(
            fallback_reason,
            Some(
                ft_facade::FallbackReason::S5bFailed(_) | ft_facade::FallbackReason::PeerOpenedIbb
            )
        ),
        "{fallback_reason:?}"
    );
    assert_eq!(candidates.len(), 1, "{candidates:?}");
    assert!(
        matches!(candidates[0].outcome, xep0065_s5b::Outcome::Failed(_)),
        "{candidates:?}"
    );
    assert_eq!(
        sha256_file(&dst.path().join("fallback.bin")),
        sha256_hex(&data)
    );
}

#[tokio::test]
async fn several_transfers_at_once_by_different_methods_all_land_intact() {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", config(&[Method::S5b, Method::Ibb]));
    let bob = entity(&hub, "bob@x/b", config(&[Method::S5b, Method::Ibb]));
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let message = ft_facade::IbbOptions {
        stanza: ft_facade::StanzaKind::Message,
        ..ft_facade::IbbOptions::default()
    };
    let methods = [
        (Method::S5b, None),
        (Method::Ibb, None),
        (Method::Ibb, Some(message)),
    ];
    let mut sends = Vec::new();
    let mut datas = Vec::new();
    for (i, (m, ibb)) in methods.iter().enumerate() {
        let data = content(150_000 + i * 1000, 20 + i as u64);
        let path = write_file(src.path(), &format!("f{i}.bin"), &data);
        datas.push(data);
        let mut options = SendOptions::default().with_methods(&[*m]);
        options.ibb = *ibb;
        sends.push(alice.send_file(jid("bob@x/b"), &path, options));
    }
    let mut receives = Vec::new();
    for _ in 0..methods.len() {
        let offer = bob.next_offer().await.unwrap();
        receives.push(offer.accept_into_dir(dst.path(), AcceptOptions::new()));
    }
    for s in sends {
        s.outcome().await.unwrap();
    }
    for r in receives {
        r.outcome().await.unwrap();
    }
    for (i, data) in datas.iter().enumerate() {
        assert_eq!(
            sha256_file(&dst.path().join(format!("f{i}.bin"))),
            sha256_hex(data)
        );
    }
}

#[tokio::test]
async fn the_optional_feature_check_reports_disco_and_refuses_a_peer_without_si() {
    let hub = Hub::new();
    let mut c = config(&[Method::Ibb]);
    c.check_features = true;
    let alice = entity(&hub, "alice@x/a", c);
    let bob = entity(&hub, "bob@x/b", config(&[Method::Ibb]));
    let src = tempfile::tempdir().unwrap();
    let path = write_file(src.path(), "d.bin", &content(100, 30));

    let mut sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let receiving = bob
        .next_offer()
        .await
        .unwrap()
        .accept_into(Vec::new(), AcceptOptions::new());
    let mut disco = None;
    while let Some(ev) = sending.next_event().await {
        match ev {
            ft_facade::Event::Disco { supported, .. } => disco = Some(supported),
            ft_facade::Event::Completed(_) | ft_facade::Event::Failed(_) => break,
            _ => {}
        }
    }
    assert_eq!(disco, Some(true));
    sending.outcome().await.unwrap();
    receiving.outcome().await.unwrap();

    // A peer that answers disco#info without SI file transfer.
    let (carol, mut carol_rx) = hub.connect(jid("carol@x/c"));
    tokio::spawn(async move {
        use ft_transport::{Stanza, StanzaTransport};
        while let Some(Stanza::Iq(iq)) = carol_rx.recv().await {
            if let xmpp_parsers::iq::Iq::Get { id, from, .. } = iq {
                let info = xmpp_parsers::disco::DiscoInfoResult {
                    node: None,
                    identities: vec![],
                    features: ["http://jabber.org/protocol/disco#info".to_owned()]
                        .into_iter()
                        .collect(),
                    extensions: vec![],
                };
                let mut r = xmpp_parsers::iq::Iq::from_result(id, Some(info));
                *r.to_mut() = from;
                let _ = carol.send(Stanza::Iq(r)).await;
            }
        }
    });
    let err = alice
        .send_file(jid("carol@x/c"), &path, SendOptions::default())
        .outcome()
        .await
        .unwrap_err();
    assert_eq!(err.stage, Stage::Disco);
    assert!(matches!(err.kind, ErrorKind::NoCommonMethod), "{err}");
}

#[tokio::test]
async fn a_receiver_cancel_while_s5b_connects_ends_both_sides_with_typed_reasons() {
    let hub = Hub::new();
    // The sender offers only a silent streamhost, so the receiver is stuck connecting.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let mut sc = config(&[Method::S5b]);
    sc.s5b.listen(Vec::new());
    sc.s5b.external = vec![(LOOPBACK.into(), port)];
    sc.s5b_budget(Duration::from_secs(3));
    let alice = entity(&hub, "alice@x/a", sc);
    let bob = entity(&hub, "bob@x/b", config(&[Method::S5b]));
    let src = tempfile::tempdir().unwrap();
    let path = write_file(src.path(), "c.bin", &content(100, 31));
    let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let mut receiving = bob
        .next_offer()
        .await
        .unwrap()
        .accept_into(Vec::new(), AcceptOptions::new());
    while receiving.progress().stage != Stage::Connect {
        assert!(receiving.progress_changed().await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    receiving.cancel();
    let received = receiving.outcome().await.unwrap_err();
    assert_eq!(received.stage, Stage::Connect);
    assert!(received.is_cancelled_by(Side::Local));
    let sent = tokio::time::timeout(Duration::from_secs(10), sending.outcome())
        .await
        .expect("the sender ends within its s5b budget")
        .unwrap_err();
    assert_eq!(sent.stage, Stage::Connect, "{sent}");
}

/// A writer slower than any sender: at most 4 KiB per write, and a sleep before each.
struct SlowWriter {
    out: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    nap: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl tokio::io::AsyncWrite for SlowWriter {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let nap = self
            .nap
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(Duration::from_millis(1))));
        std::task::ready!(nap.as_mut().poll(cx));
        self.nap = None;
        let n = buf.len().min(4096);
        self.out.lock().unwrap().extend_from_slice(&buf[..n]);
        std::task::Poll::Ready(Ok(n))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn ibb_over_message_into_a_slow_writer_is_paced_by_the_pump_and_lands_intact() {
    let hub = Hub::new();
    let mut sc = over_message(config(&[Method::Ibb]));
    sc.block_size(4096);
    let alice = entity(&hub, "alice@x/a", sc);
    // Without backpressure, 1 MiB sent at memory speed into a writer that takes ~1 ms per
    // 4 KiB would overrun a 64 KiB message buffer many times over.
    let mut rc = config(&[Method::Ibb]);
    rc.ibb.recv_buffer(16 * 1024).message_overrun(64 * 1024);
    let bob = entity(&hub, "bob@x/b", rc);
    let src = tempfile::tempdir().unwrap();
    let data = content(1 << 20, 41);
    let path = write_file(src.path(), "slow.bin", &data);
    let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let writer = SlowWriter {
        out: out.clone(),
        nap: None,
    };
    let receiving = bob
        .next_offer()
        .await
        .unwrap()
        .accept_into(writer, AcceptOptions::new());
    let (sent, received) = tokio::join!(sending.outcome(), receiving.outcome());
    let (sent, received) = (sent.unwrap(), received.unwrap());
    assert_eq!(sent.method, MethodUsed::IbbMessage);
    assert_eq!(received.method, MethodUsed::IbbMessage);
    assert_eq!(sha256_hex(&out.lock().unwrap()), sha256_hex(&data));
}

/// A writer that takes the first `limit` bytes, then never completes another write: a disk
/// that hangs, so the receiver stops reading and the sender's IBB buffers fill.
struct StuckWriter {
    taken: usize,
    limit: usize,
}

impl tokio::io::AsyncWrite for StuckWriter {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.taken >= self.limit {
            return std::task::Poll::Pending;
        }
        let n = buf.len().min(self.limit - self.taken);
        self.taken += n;
        std::task::Poll::Ready(Ok(n))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// Alice sends 8 MiB over IBB (iq) to Bob, whose writer hangs after 64 KiB; returns both
/// handles once Alice's buffers are full (her progress stops moving).
async fn stalled_ibb_transfer(
    hub: &Hub,
) -> (
    ft_facade::TransferHandle,
    ft_facade::TransferHandle,
    tempfile::TempDir,
) {
    let mut sc = config(&[Method::Ibb]);
    sc.block_size(4096);
    // A close that goes unanswered would be waited for up to the whole budget.
    sc.close_timeout = Duration::from_secs(30);
    let alice = entity(hub, "alice@x/a", sc);
    let mut rc = config(&[Method::Ibb]);
    rc.ibb.recv_buffer(64 * 1024);
    let bob = entity(hub, "bob@x/b", rc);
    let src = tempfile::tempdir().unwrap();
    let path = write_file(src.path(), "big.bin", &content(8 << 20, 51));
    let mut sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let receiving = bob.next_offer().await.unwrap().accept_into(
        StuckWriter {
            taken: 0,
            limit: 64 * 1024,
        },
        AcceptOptions::new(),
    );
    while sending.progress().stage != Stage::Stream || sending.progress().bytes == 0 {
        assert!(sending.progress_changed().await);
    }
    // Stalled: no progress for half a second.
    while tokio::time::timeout(Duration::from_millis(500), sending.progress_changed())
        .await
        .is_ok()
    {}
    assert!(sending.progress().bytes < 8 << 20);
    (sending, receiving, src)
}

#[tokio::test]
async fn a_sender_cancel_mid_ibb_aborts_without_flushing_its_buffers() {
    let hub = Hub::new();
    let (sending, receiving, _src) = stalled_ibb_transfer(&hub).await;
    sending.cancel();
    // A flushing close would wait for the stuck receiver for up to 5 s; the abort doesn't.
    let sent = tokio::time::timeout(Duration::from_secs(3), sending.outcome())
        .await
        .expect("the cancel returns without waiting for a flush")
        .unwrap_err();
    assert_eq!(sent.stage, Stage::Stream);
    assert!(sent.is_cancelled_by(Side::Local), "{sent}");
    // Bob's writer hangs forever; his cancel still ends his transfer.
    receiving.cancel();
    let received = tokio::time::timeout(Duration::from_secs(10), receiving.outcome())
        .await
        .expect("a hung writer does not hold up the receiver's cancel")
        .unwrap_err();
    assert!(received.is_cancelled_by(Side::Local), "{received}");
}

#[tokio::test]
async fn a_receiver_cancel_while_s5b_connects_answers_the_sender_at_once() {
    let hub = Hub::new();
    // The sender offers only a silent streamhost, so the receiver is stuck connecting.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let mut sc = config(&[Method::S5b]);
    sc.s5b.listen(Vec::new());
    sc.s5b.external = vec![(LOOPBACK.into(), port)];
    // A long budget: without an answer the sender would wait all of it.
    sc.s5b_budget(Duration::from_secs(60));
    sc.s5b.connect_budget(Duration::from_secs(60));
    let alice = entity(&hub, "alice@x/a", sc);
    let mut rc = config(&[Method::S5b]);
    rc.s5b.connect_budget(Duration::from_secs(60));
    let bob = entity(&hub, "bob@x/b", rc);
    let src = tempfile::tempdir().unwrap();
    let path = write_file(src.path(), "c.bin", &content(100, 32));
    let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let mut receiving = bob
        .next_offer()
        .await
        .unwrap()
        .accept_into(Vec::new(), AcceptOptions::new());
    while receiving.progress().stage != Stage::Connect {
        assert!(receiving.progress_changed().await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    receiving.cancel();
    let received = receiving.outcome().await.unwrap_err();
    assert!(received.is_cancelled_by(Side::Local));
    let sent = tokio::time::timeout(Duration::from_secs(3), sending.outcome())
        .await
        .expect("the sender hears item-not-found at once instead of waiting its budget")
        .unwrap_err();
    assert_eq!(sent.stage, Stage::Connect, "{sent}");
    assert!(
        matches!(&sent.kind, ErrorKind::Rejected(e)
            if e.defined_condition == xmpp_parsers::stanza_error::DefinedCondition::ItemNotFound),
        "{sent:?}"
    );
}
