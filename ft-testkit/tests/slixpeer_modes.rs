//! The slixmpp peer's modes work against Prosody (slixmpp to slixmpp), so tests of our own
//! side can rely on them.

use std::time::Duration;

use ft_testkit::{Prosody, ProsodyOptions, SlixPeer};

/// 100 kB of a fixed pattern and its SHA-256, computed by the peers themselves.
fn write_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("pattern.bin");
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 256) as u8).collect();
    std::fs::write(&path, data).unwrap();
    path
}

async fn transfer(prosody: &Prosody, method: &str, prefer: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path());
    let inbox = dir.path().join("inbox");
    let mut bob = SlixPeer::recv(prosody, "bob", &inbox, 1, &["--prefer", prefer])
        .await
        .unwrap();
    let to = bob.jid().unwrap().to_string();
    let proxy = prosody.proxy_jid().to_string();
    let extra: &[&str] = if method == "s5b" {
        &["--proxy", &proxy]
    } else {
        &[]
    };
    let mut alice = SlixPeer::send(prosody, "alice", &to, &file, method, extra)
        .await
        .unwrap();
    let sent = alice.wait_event("sent").await.unwrap();
    let got = bob.wait_event("file").await.unwrap();
    assert_eq!(sent["bytes"], 100_000);
    assert_eq!(got["size"], 100_000);
    assert_eq!(got["sha256"], sent["sha256"]);
    assert_eq!(got["method"], prefer);
    assert_eq!(got["name"], "pattern.bin");
    assert_eq!(
        std::fs::read(inbox.join("pattern.bin")).unwrap(),
        std::fs::read(&file).unwrap()
    );
    assert!(alice.wait_exit(Duration::from_secs(30)).await.unwrap());
    assert!(bob.wait_exit(Duration::from_secs(30)).await.unwrap());
}

#[tokio::test]
async fn slixmpp_peers_move_a_file_by_ibb_over_iq_and_over_message_and_by_proxied_s5b() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    transfer(&prosody, "ibb-iq", "ibb").await;
    transfer(&prosody, "ibb-message", "ibb").await;
    transfer(&prosody, "s5b", "s5b").await;
}

#[tokio::test]
async fn slixmpp_disco_info_mode_reports_prosody_proxy65_identity() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut peer = SlixPeer::spawn(&prosody, "carol", "d", &["disco-info", "proxy.localhost"])
        .await
        .unwrap();
    let info = peer.wait_event("disco-info").await.unwrap();
    assert_eq!(info["from"], "proxy.localhost");
    assert_eq!(
        info["identities"][0],
        serde_json::json!(["proxy", "bytestreams", null, "SOCKS5 Bytestreams Service"])
    );
    let features: Vec<&str> = info["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f.as_str())
        .collect();
    assert!(features.contains(&"http://jabber.org/protocol/bytestreams"));
    assert!(peer.wait_exit(Duration::from_secs(30)).await.unwrap());
}

#[tokio::test]
async fn a_peer_that_cannot_log_in_reports_an_error_not_a_hang() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut peer = SlixPeer::spawn_args([
        "--jid",
        "alice@localhost/x",
        "--password",
        "wrong",
        "--port",
        &prosody.c2s_port().to_string(),
        "--timeout",
        "20",
        "serve",
    ])
    .await
    .unwrap();
    let err = peer.wait_ready().await.unwrap_err();
    assert!(
        matches!(err, ft_testkit::Error::Peer { ref message, .. } if message.contains("authentication failed")),
        "{err}"
    );
}
