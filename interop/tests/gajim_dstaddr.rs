//! Gajim's DST.ADDR quirk end to end, through a real Prosody: Gajim 1.7.3 (the headless
//! `peers/gajimpeer`) sends by Jingle S5B offering no candidate of its own, so the only
//! way for the bytes is Gajim dialling our receiver's 127.0.0.1 candidate, where it
//! presents SHA1(transport sid + initiator + responder) (XEP-0260 wants the responder's JID
//! first there). Our `xep0260-jingle-s5b` listener takes both orders; before, it answered
//! REP 04 and the transfer died (Gajim's own S5B→IBB fallback is dead). The receiver is
//! the `ft-facade` library, as in `s5b.rs`: `xft recv` has no way to put its Jingle
//! candidates on loopback (see `fixtures/gajim/README.md`).

mod common;

use common::*;
use ft_facade::{AcceptOptions, Method, MethodUsed, ProxySource, Stack};
use ft_testkit::{GajimOptions, GajimPeer, Prosody, ProsodyOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gajim_dials_our_candidate_with_its_dst_addr_order_and_the_file_arrives() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions {
        proxy65: false,
        ..ProsodyOptions::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let data = content(300_000, 300_000);
    let want = sha256_hex(&data);
    let path = write_file(dir.path(), "gajim-dstaddr.bin", &data);
    let bob = ours(
        &prosody,
        "bob",
        config(&[Method::S5b, Method::Ibb], ProxySource::None),
    )
    .await;
    let to = format!("{}/rust", prosody.jid("bob"));
    let gajim_opts = GajimOptions {
        direct: false,
        ..GajimOptions::default()
    }
    .resource("gajim");
    let mut gajim = GajimPeer::send(&prosody, "alice", &gajim_opts, &to, &path, "s5b", &[])
        .await
        .unwrap();

    let offer = tokio::time::timeout(SHORT, bob.ft.next_offer())
        .await
        .expect("Gajim's offer arrives")
        .expect("the manager lives");
    assert_eq!(offer.stack(), Stack::Jingle);
    let received = outcome(offer.accept_into_dir(&inbox, AcceptOptions::new()))
        .await
        .unwrap_or_else(|e| panic!("{e}\n--- gajim ---\n{}", gajim.stderr_tail()));
    let sent = gajim
        .wait_any(&["sent", "transfer-error", "cancelled"], SHORT)
        .await
        .unwrap();
    assert_eq!(sent["event"], "sent", "{sent}");
    assert_eq!(sent["sha256"], want.as_str());
    // Our own candidate carried it: Gajim dialled our 127.0.0.1 listener.
    assert!(
        matches!(&received.method, MethodUsed::S5bDirect { streamhost } if streamhost.starts_with("127.0.0.1:")),
        "{:?}",
        received.method
    );
    assert!(!received.fallback);
    assert_eq!(received.sha256, want);
    assert_eq!(sha256_file(&inbox.join("gajim-dstaddr.bin")), want);
    assert!(
        gajim
            .events()
            .iter()
            .any(|v| v["event"] == "dial" && v["host"] == "127.0.0.1"),
        "Gajim dialled our candidate"
    );
    assert_eq!(gajim.finish(SHORT).await.unwrap(), Some(0));
    gajim.assert_loopback_only();
}
