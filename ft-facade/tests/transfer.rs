//! Complete transfers between two facades on the in-memory hub, bytes over 127.0.0.1.

mod common;

use std::time::Duration;

use common::*;
use ft_facade::{AcceptOptions, ErrorKind, Method, MethodUsed, SendOptions, Side, Stage};
use ft_transport::hub::Hub;

#[tokio::test]
async fn s5b_direct_transfer_lands_with_identical_sha256() {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", config(&[Method::S5bDirect]));
    let bob = entity(&hub, "bob@x/b", config(&[Method::S5b, Method::Ibb]));
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let data = content(300_000, 1);
    let path = write_file(src.path(), "report.pdf", &data);

    let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let offer = bob.next_offer().await.unwrap();
    assert_eq!(offer.file().name, "report.pdf");
    assert_eq!(offer.file().size, 300_000);
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
async fn cancel_while_the_offer_is_pending_ends_the_sender_at_stage_offer() {
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
