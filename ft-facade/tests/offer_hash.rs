//! The offer's MD5 (XEP-0096 `hash`) is made before the offer only for files within
//! `Config::offer_hash`: a 4 GiB file's offer goes out at once, without `hash`, and the
//! sender still reports the SHA-256 of what it sent.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ft_facade::{AcceptOptions, Delivery, HashAlgo, Method, OfferHash, SendOptions};
use ft_transport::Stanza;
use ft_transport::hub::{Hub, HubReceiver};
use minidom::Element;
use xmpp_parsers::iq::Iq;

const GIB: u64 = 1 << 30;

/// The `<file/>` of the next SI offer that reaches `rx`.
async fn next_offer_file(rx: &mut HubReceiver) -> Element {
    loop {
        let Some(Stanza::Iq(Iq::Set { payload, .. })) = rx.recv().await else {
            continue;
        };
        if payload.is("si", xep0095_si_ns()) {
            return payload
                .children()
                .find(|c| c.name() == "file")
                .expect("an si file-transfer offer has a <file/>")
                .clone();
        }
    }
}

fn xep0095_si_ns() -> &'static str {
    ft_facade::si::NS_SI
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4_gib_file_is_offered_at_once_without_hash() {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", config(&[Method::S5b, Method::Ibb]));
    let (_bob, mut bob_rx) = hub.connect(jid("bob@x/b"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.iso");
    // Sparse: no disk space, but reading it (what a pre-offer hash would do) is 4 GiB of
    // zeros through MD5, seconds even in release.
    std::fs::File::create(&path)
        .unwrap()
        .set_len(4 * GIB)
        .unwrap();

    let started = Instant::now();
    let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let file = tokio::time::timeout(Duration::from_secs(1), next_offer_file(&mut bob_rx))
        .await
        .expect("the offer reaches the hub within 1 s");
    eprintln!("4 GiB offer on the hub after {:?}", started.elapsed());

    assert_eq!(file.attr("size"), Some("4294967296"));
    assert_eq!(file.attr("name"), Some("big.iso"));
    assert_eq!(
        file.attr("hash"),
        None,
        "a file over the budget is offered without hash"
    );
    const { assert!(4 * GIB > OfferHash::DEFAULT_MAX_SIZE) };
    sending.cancel();
    let err = sending.outcome().await.unwrap_err();
    assert_eq!(err.stage, ft_facade::Stage::Offer, "{err}");
}

#[tokio::test]
async fn a_file_within_the_budget_is_offered_with_its_md5() {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", config(&[Method::Ibb]));
    let (_bob, mut bob_rx) = hub.connect(jid("bob@x/b"));
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "abc.txt", b"abc");
    let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let file = next_offer_file(&mut bob_rx).await;
    assert_eq!(file.attr("hash"), Some("900150983cd24fb0d6963f7d28e17f72"));
    sending.cancel();
}

#[tokio::test]
async fn without_a_pre_offer_hash_the_sender_still_reports_the_sha256_it_sent() {
    let hub = Hub::new();
    let mut sc = config(&[Method::Ibb]);
    sc.offer_hash = OfferHash::up_to(0);
    let alice = entity(&hub, "alice@x/a", sc);
    let bob = entity(&hub, "bob@x/b", config(&[Method::Ibb]));
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let data = content(200_000, 77);
    let path = write_file(src.path(), "nohash.bin", &data);
    let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let offer = bob.next_offer().await.unwrap();
    assert_eq!(offer.file().md5, None, "offered without hash");
    let receiving = offer.accept_into_dir(dst.path(), AcceptOptions::new());
    let (sent, received) = tokio::join!(sending.outcome(), receiving.outcome());
    let (sent, received) = (sent.unwrap(), received.unwrap());
    assert_eq!(sent.sha256, sha256_hex(&data));
    assert_eq!(received.sha256, sha256_hex(&data));
    assert_eq!(sent.md5, None, "no MD5 is made when none was offered");
    assert_eq!(
        sha256_file(&dst.path().join("nohash.bin")),
        sha256_hex(&data)
    );
}

#[tokio::test]
async fn the_receiver_names_the_algorithm_it_checked_and_none_without_an_offered_hash() {
    let hub = Hub::new();
    let mut unhashed = config(&[Method::Ibb]);
    unhashed.offer_hash = OfferHash::up_to(0);
    let alice = entity(&hub, "alice@x/a", config(&[Method::Ibb]));
    let carol = entity(&hub, "carol@x/c", unhashed);
    let bob = entity(&hub, "bob@x/b", config(&[Method::Ibb]));
    let src = tempfile::tempdir().unwrap();
    let data = content(50_000, 5);
    let path = write_file(src.path(), "named.bin", &data);
    for (sender, want) in [(&alice, Some(HashAlgo::Md5)), (&carol, None)] {
        let dst = tempfile::tempdir().unwrap();
        let sending = sender.send_file(jid("bob@x/b"), &path, SendOptions::default());
        let offer = bob.next_offer().await.unwrap();
        let receiving = offer.accept_into_dir(dst.path(), AcceptOptions::new());
        let (sent, received) = tokio::join!(sending.outcome(), receiving.outcome());
        let (sent, received) = (sent.unwrap(), received.unwrap());
        assert_eq!(received.verified_by, want, "from {}", sent.peer);
        assert_eq!(
            received.delivery,
            Delivery::Received {
                size_checked: true,
                hash_checked: want.is_some()
            }
        );
        assert_eq!(sent.verified_by, None, "the sender checks nothing");
        assert_eq!(
            sha256_file(&dst.path().join("named.bin")),
            sha256_hex(&data)
        );
    }
}
