//! Jingle File Transfer through the facade (XEP-0234 over XEP-0166, the bytes on XEP-0260
//! or XEP-0261), two `FileTransfer`s on the in-memory hub, real files, real sockets.

mod common;

use common::*;
use ft_facade::{
    AcceptOptions, Delivery, ErrorKind, Event, HashAlgo, Method, MethodUsed, SendOptions, Stack,
    Stage,
};
use ft_transport::hub::Hub;

/// Sends `data` as `name` from alice to bob (each with its config), bob accepting into a
/// fresh directory; returns both outcomes and the directory.
async fn transfer(
    a: ft_facade::Config,
    b: ft_facade::Config,
    name: &str,
    data: &[u8],
) -> (
    Result<ft_facade::Outcome, ft_facade::TransferError>,
    Result<ft_facade::Outcome, ft_facade::TransferError>,
    tempfile::TempDir,
    Vec<Event>,
) {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", a);
    let bob = entity(&hub, "bob@x/b", b);
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let path = write_file(src.path(), name, data);
    let mut sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let offer = bob.next_offer().await.unwrap();
    assert_eq!(offer.stack(), Stack::Jingle);
    assert_eq!(offer.file().name, name);
    assert_eq!(offer.file().size, Some(data.len() as u64));
    let receiving = offer.accept_into_dir(dst.path(), AcceptOptions::new());
    let received = receiving.outcome().await;
    let mut events = Vec::new();
    while let Some(ev) = sending.next_event().await {
        let end = matches!(ev, Event::Completed(_) | Event::Failed(_));
        events.push(ev);
        if end {
            break;
        }
    }
    let sent = sending.outcome().await;
    (sent, received, dst, events)
}

#[tokio::test]
async fn jingle_over_ibb_lands_with_identical_sha256_and_both_sides_say_jingle() {
    let data = content(300_000, 1);
    let (sent, received, dst, events) = transfer(
        jconfig(&[Method::Ibb]),
        jconfig(&[Method::Ibb]),
        "j-ibb.bin",
        &data,
    )
    .await;
    let sent = sent.unwrap();
    let received = received.unwrap();
    assert_eq!(sent.stack, Stack::Jingle);
    assert_eq!(received.stack, Stack::Jingle);
    assert_eq!(sent.method, MethodUsed::IbbIq);
    assert_eq!(sent.delivery, Delivery::Acknowledged);
    assert_eq!(received.verified_by, Some(HashAlgo::Sha256));
    assert_eq!(
        sha256_file(&dst.path().join("j-ibb.bin")),
        sha256_hex(&data)
    );
    assert_eq!(sent.sha256, sha256_hex(&data));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Stack(Stack::Jingle))),
        "{events:?}"
    );
}

#[tokio::test]
async fn jingle_over_s5b_direct_lands_with_identical_sha256_acknowledged() {
    let data = content(1_000_000, 2);
    let (sent, received, dst, _) = transfer(
        jconfig(&[Method::S5b, Method::Ibb]),
        jconfig(&[Method::S5b, Method::Ibb]),
        "j-s5b.bin",
        &data,
    )
    .await;
    let sent = sent.unwrap();
    let received = received.unwrap();
    assert!(
        matches!(sent.method, MethodUsed::S5bDirect { .. }),
        "{:?}",
        sent.method
    );
    assert!(matches!(received.method, MethodUsed::S5bDirect { .. }));
    assert!(!sent.fallback);
    assert_eq!(sent.delivery, Delivery::Acknowledged);
    assert_eq!(received.verified_by, Some(HashAlgo::Sha256));
    assert_eq!(
        sha256_file(&dst.path().join("j-s5b.bin")),
        sha256_hex(&data)
    );
}

/// Our proxy (`xep0065-proxy`) in-process, on the hub as proxy.x.
async fn proxy(hub: &Hub) -> xep0065_proxy::Proxy {
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
    proxy
}

#[tokio::test]
async fn jingle_over_s5b_via_our_proxy_lands_with_identical_sha256() {
    let hub = Hub::new();
    let _proxy = proxy(&hub).await;
    // Both offer only the proxy: the nominated candidate is a proxy, activated by its
    // offerer, `<activated/>` sent.
    let mut a = proxy_only(jconfig(&[Method::S5b]));
    a.proxies(ft_facade::ProxySource::Jids(vec![jid("proxy.x")]));
    let mut b = proxy_only(jconfig(&[Method::S5b]));
    b.proxies(ft_facade::ProxySource::Jids(vec![jid("proxy.x")]));
    let alice = entity(&hub, "alice@x/a", a);
    let bob = entity(&hub, "bob@x/b", b);
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let data = content(400_000, 3);
    let path = write_file(src.path(), "j-proxy.bin", &data);
    let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let offer = bob.next_offer().await.unwrap();
    let received = offer
        .accept_into_dir(dst.path(), AcceptOptions::new())
        .outcome()
        .await
        .unwrap();
    let sent = sending.outcome().await.unwrap();
    assert!(
        matches!(&sent.method, MethodUsed::S5bProxy { proxy, .. } if proxy == &jid("proxy.x")),
        "{:?}",
        sent.method
    );
    assert!(matches!(&received.method, MethodUsed::S5bProxy { .. }));
    assert_eq!(sent.delivery, Delivery::Acknowledged);
    assert_eq!(
        sha256_file(&dst.path().join("j-proxy.bin")),
        sha256_hex(&data)
    );
}

#[tokio::test]
async fn jingle_s5b_with_no_candidate_falls_back_to_ibb_by_transport_replace() {
    // Neither side offers a candidate that connects: a proxy route with no proxy on the
    // receiver, and the sender's direct candidate refused by the receiver's dial policy.
    let mut a = jconfig(&[Method::S5b, Method::Ibb]);
    a.s5b_budget(std::time::Duration::from_secs(3));
    let mut b = jconfig(&[Method::S5b, Method::Ibb]);
    b.s5b.dial_policy(ft_facade::s5b::DialPolicy::public_only());
    b.s5b_route(ft_facade::S5bRoute::Direct);
    b.s5b.listen(vec![]);
    let data = content(120_000, 4);
    let (sent, received, dst, events) = transfer(a, b, "j-fallback.bin", &data).await;
    let sent = sent.unwrap();
    let received = received.unwrap();
    assert!(sent.fallback && received.fallback);
    assert_eq!(sent.method, MethodUsed::IbbIq);
    assert!(
        events.iter().any(|e| matches!(e, Event::Fallback { .. })),
        "{events:?}"
    );
    assert_eq!(
        sha256_file(&dst.path().join("j-fallback.bin")),
        sha256_hex(&data)
    );
}

#[tokio::test]
async fn a_declined_jingle_offer_fails_the_sender_with_declined_at_stage_offer() {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", jconfig(&[Method::Ibb]));
    let bob = entity(&hub, "bob@x/b", jconfig(&[Method::Ibb]));
    let src = tempfile::tempdir().unwrap();
    let path = write_file(src.path(), "no.bin", b"not wanted");
    let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let offer = bob.next_offer().await.unwrap();
    assert_eq!(offer.stack(), Stack::Jingle);
    offer.decline(Some("no thanks"));
    let e = sending.outcome().await.unwrap_err();
    assert_eq!(e.stage, Stage::Offer);
    assert!(matches!(e.kind, ErrorKind::Declined { .. }), "{e:?}");
}

#[tokio::test]
async fn a_jingle_offer_from_an_auto_accepted_account_lands_without_asking() {
    let hub = Hub::new();
    let dst = tempfile::tempdir().unwrap();
    let mut b = jconfig(&[Method::Ibb]);
    b.policy.auto_accept_from = vec!["alice@x".parse().unwrap()];
    b.policy.auto_accept_dir = Some(dst.path().to_owned());
    let alice = entity(&hub, "alice@x/a", jconfig(&[Method::Ibb]));
    let bob = entity(&hub, "bob@x/b", b);
    let src = tempfile::tempdir().unwrap();
    let data = content(20_000, 5);
    let path = write_file(src.path(), "auto.bin", &data);
    let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let mut offer = bob.next_offer().await.unwrap();
    assert_eq!(offer.stack(), Stack::Jingle);
    let handle = offer.take_auto_accepted().expect("auto-accepted");
    let received = handle.outcome().await.unwrap();
    sending.outcome().await.unwrap();
    assert_eq!(received.stack, Stack::Jingle);
    assert_eq!(sha256_file(&dst.path().join("auto.bin")), sha256_hex(&data));
}

#[tokio::test]
async fn a_receiver_offering_no_candidate_still_gets_the_file_over_the_senders_s5b_candidate() {
    // The receiver's route is proxies only and it has none: it offers no candidate (what
    // an interop receiver does beside Gajim), races the sender's, and the sender's direct
    // candidate carries the file.
    let mut b = jconfig(&[Method::S5b]);
    b.s5b_route(ft_facade::S5bRoute::Proxy);
    let data = content(150_000, 6);
    let (sent, received, dst, _) =
        transfer(jconfig(&[Method::S5b]), b, "j-nocand.bin", &data).await;
    let (sent, received) = (sent.unwrap(), received.unwrap());
    assert!(
        matches!(sent.method, MethodUsed::S5bDirect { .. }),
        "{:?}",
        sent.method
    );
    assert!(matches!(received.method, MethodUsed::S5bDirect { .. }));
    assert_eq!(sent.delivery, Delivery::Acknowledged);
    assert_eq!(
        sha256_file(&dst.path().join("j-nocand.bin")),
        sha256_hex(&data)
    );
}

#[tokio::test]
async fn a_receiver_without_listen_addresses_offers_no_direct_candidate_of_its_own() {
    // Safe by default: the receiver's config names no listen addresses (the default), so its
    // session-accept carries no candidate on this host's own addresses (a stranger's offer
    // must not learn them, nor make us listen on them); the sender races nothing of the
    // receiver's, and its own direct candidate carries the file.
    let mut b = jconfig(&[Method::S5b]);
    b.s5b.listen = None;
    let data = content(120_000, 9);
    let (sent, received, dst, events) =
        transfer(jconfig(&[Method::S5b]), b, "j-nolisten.bin", &data).await;
    let (sent, received) = (sent.unwrap(), received.unwrap());
    let raced: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Candidate(c) => Some(c.address.clone()),
            _ => None,
        })
        .collect();
    assert!(
        raced.is_empty(),
        "the sender raced the receiver's candidates {raced:?}"
    );
    assert!(
        matches!(sent.method, MethodUsed::S5bDirect { .. }),
        "{:?}",
        sent.method
    );
    assert!(matches!(received.method, MethodUsed::S5bDirect { .. }));
    assert_eq!(
        sha256_file(&dst.path().join("j-nolisten.bin")),
        sha256_hex(&data)
    );
}

#[tokio::test]
async fn jingle_over_ibb_messages_is_acknowledged_by_the_receivers_success() {
    // IBB over <message/> acknowledges nothing (SI reports Unconfirmed); Jingle's
    // session-terminate <success/>, sent once the file is in place, does.
    let data = content(60_000, 8);
    let (sent, received, dst, _) = transfer(
        over_message(jconfig(&[Method::Ibb])),
        jconfig(&[Method::Ibb]),
        "j-msg.bin",
        &data,
    )
    .await;
    let (sent, received) = (sent.unwrap(), received.unwrap());
    assert_eq!(sent.method, MethodUsed::IbbMessage);
    assert_eq!(received.method, MethodUsed::IbbMessage);
    assert_eq!(sent.delivery, Delivery::Acknowledged);
    assert_eq!(
        sha256_file(&dst.path().join("j-msg.bin")),
        sha256_hex(&data)
    );
}
