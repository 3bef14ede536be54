//! Gajim 1.7.3 (the headless `peers/gajimpeer`) sending to Gajim by Jingle File Transfer
//! through a real Prosody: S5B direct, S5B through Prosody's proxy65, IBB, a file over
//! 10 MB (its checksum arrives in session-info), decline and cancel. Each case compares the
//! received file's SHA-256 with the source's and checks, on both sides, that only loopback
//! was offered, dialled or bound; one case shows the check fails when a candidate leaks.
//!
//! With `XFT_GAJIM_FIXTURES=DIR` the stanzas Gajim sent in each case are written to DIR
//! (JIDs rewritten), which is how `interop/tests/fixtures/gajim/` was recorded.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ft_testkit::{GajimOptions, GajimPeer, Prosody, ProsodyOptions};
use sha2::{Digest, Sha256};

const DONE: Duration = Duration::from_secs(90);

/// The receiver's options for S5B: no direct candidate of its own, so that only the
/// sender's 127.0.0.1 listener is raced. When both Gajims offer one, both connections come
/// up, and the one that loses the nomination, closed by the peer, sets `error = -1` on the
/// file both share (`Socks5Server.pollend` in Gajim 1.7.3's `socks5.py`): the receive ends
/// as failed with nothing written. Seen once in ~30 runs here (under load, three tests at
/// once; 12 of 12 sequential runs passed), so not in every run, but real. Gajim's own race,
/// not the confinement's (its own candidates race the same way on a LAN).
fn receiver_without_direct() -> GajimOptions {
    GajimOptions {
        direct: false,
        ..GajimOptions::default()
    }
}

struct Pair {
    _prosody: Prosody,
    sender: GajimPeer,
    receiver: GajimPeer,
    source: PathBuf,
    dir: tempfile::TempDir,
    _src_dir: tempfile::TempDir,
}

fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).expect("read file")))
}

/// Starts Prosody, a receiving Gajim (`bob/recv`) and a sending Gajim (`alice/send`) that
/// offers a `len`-byte file by `method`.
async fn transfer(
    len: usize,
    method: &str,
    send_opts: GajimOptions,
    recv_opts: GajimOptions,
    recv_extra: &[&str],
    send_extra: &[&str],
) -> Option<Pair> {
    if !ft_testkit::interop_enabled() {
        return None;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).expect("prosody");
    let dir = tempfile::tempdir().expect("tempdir");
    let src_dir = tempfile::tempdir().expect("tempdir");
    let source = src_dir.path().join(format!("gajim-{method}-{len}.bin"));
    std::fs::write(&source, ft_testkit::content(len, len as u64)).expect("write source");
    let receiver = GajimPeer::recv(
        &prosody,
        "bob",
        &recv_opts.resource("recv"),
        dir.path(),
        1,
        recv_extra,
    )
    .await
    .expect("receiver online");
    let to = receiver.jid().expect("receiver jid").to_string();
    let sender = GajimPeer::send(
        &prosody,
        "alice",
        &send_opts.resource("send"),
        &to,
        &source,
        method,
        send_extra,
    )
    .await
    .expect("sender online");
    Some(Pair {
        _prosody: prosody,
        sender,
        receiver,
        source,
        dir,
        _src_dir: src_dir,
    })
}

/// Both peers run to their end; the receiver's `file` event and the file on disk match the
/// source; both stayed on loopback. Returns the receiver's `file` event.
async fn expect_delivered(p: &mut Pair, method: &str, case: Option<&str>) -> serde_json::Value {
    let file = p
        .receiver
        .wait_any(&["file", "transfer-error", "cancelled"], DONE)
        .await
        .expect("receiver outcome");
    assert_eq!(
        file["event"],
        "file",
        "{file}\n{}",
        p.receiver.stderr_tail()
    );
    let sent = p
        .sender
        .wait_any(&["sent", "transfer-error", "cancelled"], DONE)
        .await
        .expect("sender outcome");
    assert_eq!(sent["event"], "sent", "{sent}");
    let on_disk = p.dir.path().join(p.source.file_name().expect("name"));
    let want = sha256(&p.source);
    assert_eq!(sha256(&on_disk), want, "SHA-256 on disk");
    assert_eq!(file["sha256"], want.as_str());
    assert_eq!(sent["sha256"], want.as_str());
    assert_eq!(file["method"], method);
    assert_eq!(
        file["hash_checked"], true,
        "Gajim's own hash check ran: {file}"
    );
    assert_eq!(file["hash_ok"], true);
    assert_eq!(
        p.receiver.finish(DONE).await.expect("receiver exit"),
        Some(0)
    );
    assert_eq!(p.sender.finish(DONE).await.expect("sender exit"), Some(0));
    p.sender.assert_loopback_only();
    p.receiver.assert_loopback_only();
    if let Some(case) = case {
        save_fixtures(&p.sender, &p.receiver, case);
    }
    file
}

fn kinds(peer: &GajimPeer, dir: &str) -> Vec<String> {
    peer.stanzas()
        .into_iter()
        .filter(|(d, _, _)| d == dir)
        .map(|(_, k, _)| k)
        .collect()
}

#[tokio::test]
async fn gajim_to_gajim_s5b_direct() {
    let Some(mut p) = transfer(
        300_000,
        "s5b",
        GajimOptions::default(),
        receiver_without_direct(),
        &[],
        &[],
    )
    .await
    else {
        return;
    };
    let file = expect_delivered(&mut p, "s5b", Some("s5b-direct")).await;
    // Under 10,000,000 bytes the hash comes in the offer.
    assert_eq!(file["hash_algo"], "blake2b-512");
    let out = kinds(&p.sender, "out");
    assert!(out.contains(&"session-initiate".to_owned()), "{out:?}");
    // The sender had no candidate of the receiver's to dial (candidate-error); the
    // receiver dialled the sender's 127.0.0.1 listener (candidate-used).
    assert!(
        out.contains(&"transport-info-candidate-error".to_owned()),
        "{out:?}"
    );
    let theirs = kinds(&p.receiver, "out");
    assert!(
        theirs.contains(&"transport-info-candidate-used".to_owned()),
        "{theirs:?}"
    );
    assert!(
        p.receiver
            .events()
            .iter()
            .any(|v| v["event"] == "dial" && v["host"] == "127.0.0.1"),
        "no loopback dial"
    );
}

#[tokio::test]
async fn gajim_to_gajim_s5b_proxy65() {
    let proxy = "proxy.localhost";
    let Some(mut p) = transfer(
        300_000,
        "s5b",
        GajimOptions::default().proxy(proxy, false),
        receiver_without_direct(),
        &[],
        &[],
    )
    .await
    else {
        return;
    };
    expect_delivered(&mut p, "s5b", Some("s5b-proxy65")).await;
    let out = kinds(&p.sender, "out");
    assert!(out.contains(&"bytestreams-activate".to_owned()), "{out:?}");
    assert!(
        out.contains(&"transport-info-activated".to_owned()),
        "{out:?}"
    );
    let offered: Vec<_> = p
        .sender
        .events()
        .iter()
        .filter(|v| v["event"] == "streamhost" && v["dir"] == "offer" && v["kept"] == true)
        .cloned()
        .collect();
    assert!(
        !offered.is_empty() && offered.iter().all(|v| v["type"] == "proxy"),
        "{offered:?}"
    );
}

#[tokio::test]
async fn gajim_to_gajim_ibb() {
    let Some(mut p) = transfer(
        200_000,
        "ibb",
        GajimOptions::default(),
        GajimOptions::default(),
        &[],
        &[],
    )
    .await
    else {
        return;
    };
    expect_delivered(&mut p, "ibb", Some("ibb")).await;
    let out = kinds(&p.sender, "out");
    assert!(out.contains(&"session-initiate-ibb".to_owned()), "{out:?}");
    assert!(
        out.contains(&"ibb-open".to_owned()) && out.contains(&"ibb-close".to_owned()),
        "{out:?}"
    );
}

#[tokio::test]
async fn gajim_to_gajim_over_10_mb_checksum_in_session_info() {
    let len = 10_500_000;
    let Some(mut p) = transfer(
        len,
        "s5b",
        GajimOptions::default(),
        receiver_without_direct(),
        &[],
        &[],
    )
    .await
    else {
        return;
    };
    let file = expect_delivered(&mut p, "s5b", Some("s5b-over-10mb")).await;
    assert_eq!(file["size"], len);
    // No hash in the offer; one checksum in session-info, sent and received, verified.
    let offer = p
        .receiver
        .events()
        .iter()
        .find(|v| v["event"] == "offer")
        .cloned();
    assert_eq!(
        offer.as_ref().map(|o| o["hash"].clone()),
        Some(serde_json::Value::Null)
    );
    let got: Vec<_> = p
        .receiver
        .events()
        .iter()
        .filter(|v| v["event"] == "checksum")
        .cloned()
        .collect();
    let sent: Vec<_> = p
        .sender
        .events()
        .iter()
        .filter(|v| v["event"] == "checksum")
        .cloned()
        .collect();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(got[0]["value"], sent[0]["value"]);
    assert_eq!(file["hash_algo"], got[0]["algo"]);
}

#[tokio::test]
async fn gajim_declines_gajim() {
    let Some(mut p) = transfer(
        50_000,
        "s5b",
        GajimOptions::default(),
        GajimOptions::default(),
        &["--decline"],
        &[],
    )
    .await
    else {
        return;
    };
    let declined = p.receiver.wait_event("declined").await.expect("declined");
    assert_eq!(declined["name"], "gajim-s5b-50000.bin");
    let seen = p
        .sender
        .wait_any(&["cancelled", "sent"], DONE)
        .await
        .expect("sender outcome");
    assert_eq!(seen["event"], "cancelled");
    assert_eq!(seen["reason"], "decline");
    assert_eq!(p.sender.finish(DONE).await.expect("sender exit"), Some(2));
    assert!(
        std::fs::read_dir(p.dir.path())
            .expect("dir")
            .next()
            .is_none(),
        "nothing written"
    );
    p.sender.assert_loopback_only();
    p.receiver.assert_loopback_only();
    assert_eq!(
        p.receiver.finish(DONE).await.expect("receiver exit"),
        Some(0)
    );
    save_fixtures(&p.sender, &p.receiver, "decline");
}

#[tokio::test]
async fn gajim_receiver_cancels_ibb() {
    let Some(mut p) = transfer(
        2_000_000,
        "ibb",
        GajimOptions::default(),
        GajimOptions::default(),
        &["--cancel-after", "40000"],
        &[],
    )
    .await
    else {
        return;
    };
    let ours = p
        .receiver
        .wait_event("cancelled")
        .await
        .expect("receiver cancels");
    assert_eq!(ours["by"], "us");
    let theirs = p
        .sender
        .wait_any(&["cancelled", "sent"], DONE)
        .await
        .expect("sender outcome");
    assert_eq!(theirs["event"], "cancelled", "{theirs}");
    assert_eq!(theirs["reason"], "cancel");
    p.sender.assert_loopback_only();
    p.receiver.assert_loopback_only();
    assert_eq!(
        p.receiver.finish(DONE).await.expect("receiver exit"),
        Some(0)
    );
    save_fixtures(&p.sender, &p.receiver, "ibb-cancel");
}

/// The sender cancels mid-stream: the receiver sees `session-terminate` `<cancel/>` and
/// reports it; Gajim leaves what arrived on disk under the final name (its own behaviour:
/// no `.part`, no clean-up), shorter than the offer.
#[tokio::test]
async fn gajim_sender_cancels_ibb() {
    let Some(mut p) = transfer(
        2_000_000,
        "ibb",
        GajimOptions::default(),
        GajimOptions::default(),
        &[],
        &["--cancel-after", "40000"],
    )
    .await
    else {
        return;
    };
    let ours = p
        .sender
        .wait_event("cancelled")
        .await
        .expect("sender cancels");
    assert_eq!(ours["by"], "us");
    let theirs = p
        .receiver
        .wait_any(&["cancelled", "file", "transfer-error"], DONE)
        .await
        .expect("receiver outcome");
    assert_eq!(theirs["event"], "cancelled", "{theirs}");
    assert_eq!(theirs["by"], "peer");
    assert_eq!(theirs["reason"], "cancel");
    let left = p.dir.path().join(p.source.file_name().expect("name"));
    let len = std::fs::metadata(&left).map(|m| m.len()).unwrap_or(0);
    assert!(len < 2_000_000, "{len} bytes left");
    p.sender.assert_loopback_only();
    p.receiver.assert_loopback_only();
    p.sender.stop().await;
    p.receiver.stop().await;
}

/// Gajim's own limit, pinned: when no S5B candidate works (neither side offers one), the
/// initiator sends `transport-replace` to IBB with `sid='None'` (the literal string), the
/// responder accepts it, and then nobody opens the IBB stream: no `<open/>` within 10 s, no
/// file. (An xft peer must not wait for Gajim's fallback; it can send its own `<open/>`.)
#[tokio::test]
async fn gajim_s5b_to_ibb_fallback_is_dead_in_gajim() {
    let Some(mut p) = transfer(
        50_000,
        "s5b",
        GajimOptions {
            direct: false,
            ..GajimOptions::default()
        },
        receiver_without_direct(),
        &[],
        &[],
    )
    .await
    else {
        return;
    };
    loop {
        let v = p
            .sender
            .wait_event("stanza")
            .await
            .expect("the fallback stanzas");
        if v["dir"] == "in" && v["kind"] == "transport-accept" {
            break;
        }
    }
    // Everything either side says in the next 10 s.
    for peer in [&mut p.sender, &mut p.receiver] {
        while peer.wait_json_for(Duration::from_secs(5)).await.is_ok() {}
    }
    let (replace, accept) = (
        p.sender
            .stanzas()
            .into_iter()
            .find(|(d, k, _)| d == "out" && k == "transport-replace"),
        p.receiver
            .stanzas()
            .into_iter()
            .find(|(d, k, _)| d == "out" && k == "transport-accept"),
    );
    let replace = replace.expect("Gajim sent transport-replace").2;
    assert!(
        replace.contains("urn:xmpp:jingle:transports:ibb:1") && replace.contains("sid=\"None\""),
        "{replace}"
    );
    assert!(accept.is_some(), "the responder accepted the replacement");
    for peer in [&p.sender, &p.receiver] {
        assert!(
            !peer.stanzas().iter().any(|(_, k, _)| k == "ibb-open"),
            "nobody opens IBB"
        );
        assert!(
            !peer
                .events()
                .iter()
                .any(|v| v["event"] == "file" || v["event"] == "sent")
        );
    }
    assert!(
        std::fs::read_dir(p.dir.path())
            .expect("dir")
            .next()
            .is_none()
    );
    p.sender.assert_loopback_only();
    p.receiver.assert_loopback_only();
    save_fixtures(&p.sender, &p.receiver, "dead-fallback");
    p.sender.stop().await;
    p.receiver.stop().await;
}

/// A candidate that is not loopback must make the check fail: Gajim's own
/// `ft_add_hosts_to_send` offers 192.0.2.2 (TEST-NET-1). Confined, it never reaches the
/// wire; with the confinement off, it does and `check_loopback` reports it. The receiver
/// drops it before dialling in both cases.
#[tokio::test]
async fn gajim_loopback_check_catches_a_leaked_candidate() {
    let leak = |unconfined| GajimOptions {
        extra_host: Some("192.0.2.2".into()),
        unconfined_candidates: unconfined,
        ..GajimOptions::default()
    };
    let Some(mut p) = transfer(
        100_000,
        "s5b",
        leak(false),
        receiver_without_direct(),
        &[],
        &[],
    )
    .await
    else {
        return;
    };
    expect_delivered(&mut p, "s5b", None).await;
    assert!(
        p.sender
            .events()
            .iter()
            .any(|v| v["event"] == "streamhost" && v["host"] == "192.0.2.2" && v["kept"] == false)
    );

    let Some(mut p) = transfer(
        100_000,
        "s5b",
        leak(true),
        receiver_without_direct(),
        &[],
        &[],
    )
    .await
    else {
        return;
    };
    let file = p
        .receiver
        .wait_any(&["file", "transfer-error"], DONE)
        .await
        .expect("outcome");
    assert_eq!(file["event"], "file");
    p.sender.wait_event("sent").await.expect("sent");
    let err = p
        .sender
        .check_loopback()
        .expect_err("the leaked candidate must fail the check");
    assert!(err.contains("192.0.2.2"), "{err}");
    p.receiver.assert_loopback_only();
    let dropped = p.receiver.events().iter().any(|v| {
        v["event"] == "streamhost"
            && v["dir"] == "received"
            && v["host"] == "192.0.2.2"
            && v["kept"] == false
    });
    assert!(dropped, "the receiver dropped 192.0.2.2 before dialling");
}

/// With `XFT_GAJIM_FIXTURES=DIR`, writes each stanza Gajim sent as
/// `DIR/<case>-<initiator|responder>-<kind>.xml` (the first of each kind; the two full JIDs
/// rewritten to fixed ones, everything else byte for byte).
fn save_fixtures(sender: &GajimPeer, receiver: &GajimPeer, case: &str) {
    let Some(dir) = std::env::var_os("XFT_GAJIM_FIXTURES") else {
        return;
    };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("fixture dir");
    let (s, r) = (
        sender.jid().expect("jid").to_string(),
        receiver.jid().expect("jid").to_string(),
    );
    for (role, peer) in [("initiator", sender), ("responder", receiver)] {
        for (d, kind, xml) in peer.stanzas() {
            if d != "out" {
                continue;
            }
            let path = dir.join(format!("{case}-{role}-{kind}.xml"));
            if path.exists() {
                continue;
            }
            let xml = xml
                .replace(&s, "romeo@montague.example/orchard")
                .replace(&r, "juliet@capulet.example/balcony");
            std::fs::write(&path, xml + "\n").expect("write fixture");
        }
    }
}
