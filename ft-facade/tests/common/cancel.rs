//! Cancel mid-transfer from either side, for every stack (`edges.rs` for SI,
//! `jingle_edges.rs` for Jingle): a trickling transfer, and the assertions both stacks
//! share.

use std::time::Duration;

use ft_facade::{
    AcceptOptions, Config, FileInfo, SendOptions, Side, Stage, TransferError, TransferHandle,
};
use ft_transport::hub::Hub;

use super::{Trickle, content, entity, jid, until_bytes_flow};

/// A trickling 1,000,000-byte `cut.bin` from alice (`alice`'s config) to bob (`bob`'s),
/// accepted into a fresh directory with `options`: (sender, receiver, destination, hub).
pub async fn trickling(
    alice: Config,
    bob: Config,
    options: AcceptOptions,
) -> (TransferHandle, TransferHandle, tempfile::TempDir, Hub) {
    let hub = Hub::new();
    let a = entity(&hub, "alice@x/a", alice);
    let b = entity(&hub, "bob@x/b", bob);
    let dst = tempfile::tempdir().unwrap();
    let data = content(1_000_000, 9);
    let info = FileInfo::new("cut.bin", data.len() as u64);
    let sending = a.send_reader(
        jid("bob@x/b"),
        Trickle::new(data, 1024, Duration::from_millis(5)),
        info,
        SendOptions::default(),
    );
    let receiving = b
        .next_offer()
        .await
        .unwrap()
        .accept_into_dir(dst.path(), options);
    (sending, receiving, dst, hub)
}

/// The sender cancels once bytes flow: its own error is a local cancel at stage Stream, no
/// file lands; returns the receiver's error (at stage Stream; what it says is the stack's).
pub async fn sender_cancels_mid_transfer(alice: Config, bob: Config) -> TransferError {
    let (sending, mut receiving, dst, _hub) = trickling(alice, bob, AcceptOptions::new()).await;
    until_bytes_flow(&mut receiving).await;
    sending.cancel();
    let sent = sending.outcome().await.unwrap_err();
    assert_eq!(sent.stage, Stage::Stream);
    assert!(sent.is_cancelled_by(Side::Local), "{sent}");
    let received = tokio::time::timeout(Duration::from_secs(10), receiving.outcome())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(received.stage, Stage::Stream, "{received}");
    assert!(
        !dst.path().join("cut.bin").exists(),
        "no file under the final name"
    );
    received
}

/// The receiver cancels once bytes flow: a local cancel for it, a peer's cancel for the
/// sender, both at stage Stream, no file under the final name.
pub async fn receiver_cancels_mid_transfer(alice: Config, bob: Config) {
    let (sending, mut receiving, dst, _hub) = trickling(alice, bob, AcceptOptions::new()).await;
    until_bytes_flow(&mut receiving).await;
    receiving.cancel();
    let received = receiving.outcome().await.unwrap_err();
    assert_eq!(received.stage, Stage::Stream);
    assert!(received.is_cancelled_by(Side::Local), "{received}");
    let sent = tokio::time::timeout(Duration::from_secs(10), sending.outcome())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(sent.stage, Stage::Stream, "{sent}");
    assert!(sent.is_cancelled_by(Side::Peer), "{sent}");
    assert!(
        !dst.path().join("cut.bin").exists(),
        "no file under the final name"
    );
}
