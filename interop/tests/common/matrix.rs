//! The transfer matrix shared by `purple.rs` and `qxmpp.rs`: each case runs `xft` (the
//! binary) against one real peer through a real Prosody, compares SHA-256 on disk, asserts
//! the outcome of both sides and that nothing but loopback was offered or dialled, and
//! appends an interop table row.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use ft_testkit::{NativePeer, PeerKind};
use serde_json::Value;

use super::xftcli::*;

/// Where the transfer goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Prosody with mod_proxy65 (`proxy.localhost`).
    Prosody,
    /// Prosody without mod_proxy65, and `xft proxy` attached as `xftproxy.localhost`.
    XftProxy,
}

pub struct Case<'a> {
    /// The table's case name.
    pub case: &'static str,
    pub via: Via,
    /// `xft send`'s or `xft recv`'s `--method`.
    pub method: &'a str,
    /// More `xft` options.
    pub xft_extra: &'a [&'a str],
    /// The peer's common options (`--methods ibb`, `--proxy JID`, …).
    pub peer_common: &'a [&'a str],
    /// The files: (name, size).
    pub files: &'a [(&'a str, usize)],
    /// The method `xft` must report for each file (`None`: do not check).
    pub expect_method: Option<&'a str>,
}

impl<'a> Case<'a> {
    pub fn new(case: &'static str, method: &'a str) -> Self {
        Self {
            case,
            via: Via::Prosody,
            method,
            xft_extra: &[],
            peer_common: &[],
            files: &[("payload.bin", 1_000_000)],
            expect_method: None,
        }
    }
}

/// One case's Prosody (with proxy65, or with `xft proxy` attached) and temporary directory.
pub struct Rig {
    pub prosody: ft_testkit::Prosody,
    pub _proxy: Option<Xft>,
    pub dir: tempfile::TempDir,
}

pub async fn rig(via: Via) -> Rig {
    let prosody = prosody(via == Via::Prosody);
    let proxy = match via {
        Via::Prosody => None,
        Via::XftProxy => Some(xft_proxy(&prosody).await),
    };
    Rig {
        prosody,
        _proxy: proxy,
        dir: tempfile::tempdir().unwrap(),
    }
}

/// The case's files written into `dir`: (path, SHA-256).
pub fn make_files(dir: &Path, files: &[(&str, usize)]) -> Vec<(PathBuf, String)> {
    files
        .iter()
        .enumerate()
        .map(|(i, (name, size))| {
            let data = content(*size, *size as u64 + i as u64 + 1);
            (write(dir, name, &data), sha256_hex(&data))
        })
        .collect()
}

/// One `xft --json` row of a transfer that must have succeeded: hash, size, method, a
/// confirmed delivery, verified, loopback only.
pub fn check_xft_row(
    row: &Value,
    sha: &str,
    size: usize,
    expect_method: Option<&str>,
    peer_log: &str,
) {
    assert!(
        row["error"].is_null(),
        "xft failed: {row}\n--- peer log ---\n{peer_log}"
    );
    assert_eq!(row["sha256"], sha, "{row}");
    assert_eq!(row["bytes"].as_u64(), Some(size as u64), "{row}");
    if let Some(m) = expect_method {
        assert_eq!(row["method"], m, "{row}");
    }
    // Either side: what was checked or acknowledged, never an unconfirmed claim.
    assert!(
        matches!(row["delivery"].as_str(), Some("acknowledged" | "received")),
        "{row}"
    );
    // `verified`: the other side's word that every byte is here (docs/json.md): the
    // receiver's ack, or the offered size or hash matching; an offer with neither (QXmpp's
    // empty file) leaves a receiver nothing to check against.
    let nothing_offered = row["size_checked"] == false && row["hash_checked"] == false;
    assert_eq!(row["verified"], !nothing_offered, "{row}");
    assert_row_loopback(row);
}

/// `xft send` → the peer's `recv`: every file arrives whole on both counts.
pub async fn xft_to_peer<K: PeerKind>(c: Case<'_>) {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(K::CLIENT, "xft → peer", c.case);
    let r = rig(c.via).await;
    let inbox = r.dir.path().join("inbox");
    let outbox = r.dir.path().join("outbox");
    std::fs::create_dir_all(&outbox).unwrap();
    let files = make_files(&outbox, c.files);
    let mut peer =
        NativePeer::<K>::recv(&r.prosody, "bob", c.peer_common, &inbox, files.len(), &[])
            .await
            .unwrap();
    let to = peer.jid().unwrap().to_string();
    let paths: Vec<&Path> = files.iter().map(|(p, _)| p.as_path()).collect();
    let mut xft = xft_send(&r.prosody, &to, c.method, c.xft_extra, &paths);
    let (rows, ok) = xft.finish(BUDGET).await;
    assert_eq!(
        rows.len(),
        files.len(),
        "one row per file: {rows:?}\n{}",
        xft.stderr()
    );
    if rows.iter().any(|x| !x["error"].is_null()) {
        let _ = peer.finish(Duration::from_secs(10)).await;
        panic!(
            "xft failed: {rows:?}\n--- xft stderr ---\n{}\n--- peer events ---\n{:?}\n--- peer log ---\n{}",
            xft.stderr(),
            peer.events(),
            peer.stderr_tail()
        );
    }
    for ((path, sha), (x, (_, size))) in files.iter().zip(rows.iter().zip(c.files)) {
        check_xft_row(x, sha, *size, c.expect_method, &peer.stderr_tail());
        let got = peer.wait_any(&["file", "cancelled"], BUDGET).await.unwrap();
        assert_eq!(got["event"], "file", "{got}\n{}", peer.stderr_tail());
        let name = path.file_name().unwrap();
        assert_eq!(got["name"].as_str(), name.to_str(), "{got}");
        assert_eq!(&sha256_file(&inbox.join(name)), sha, "on disk: {got}");
        assert_eq!(got["sha256"], sha.as_str(), "{got}");
        row.note = format!("{} via {}", x["method"].as_str().unwrap_or("?"), c.method);
    }
    assert!(ok, "xft send exits 0: {rows:?}\n{}", xft.stderr());
    assert_eq!(
        peer.finish(BUDGET).await.unwrap(),
        Some(0),
        "{}",
        peer.stderr_tail()
    );
    assert_loopback(&peer, &r.prosody);
}

/// `xft send --method ibb-message`'s row: over message nothing is acknowledged, so no claim
/// of delivery (`unconfirmed` when no error, `verified` false), loopback only.
pub fn check_xft_row_unconfirmed(x: &Value) {
    assert_eq!(x["method"], "ibb-message", "{x}");
    if x["error"].is_null() {
        assert_eq!(x["delivery"], "unconfirmed", "{x}");
    }
    assert_eq!(x["verified"], false, "never a claim of delivery: {x}");
    assert_row_loopback(x);
}

/// `xft send --method ibb-message` → a peer that accepts `<open stanza='message'/>` and
/// then drops every data message (libpurple, QXmpp: PEERS.md). Over message nothing is
/// acknowledged, so xft must not claim delivery: its row says `unconfirmed`, `verified` is
/// false, and the peer has no file.
pub async fn xft_to_peer_unconfirmed<K: PeerKind>(c: Case<'_>) {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(K::CLIENT, "xft → peer", c.case);
    let r = rig(c.via).await;
    let inbox = r.dir.path().join("inbox");
    let outbox = r.dir.path().join("outbox");
    std::fs::create_dir_all(&outbox).unwrap();
    let files = make_files(&outbox, c.files);
    let mut peer =
        NativePeer::<K>::recv(&r.prosody, "bob", c.peer_common, &inbox, files.len(), &[])
            .await
            .unwrap();
    let to = peer.jid().unwrap().to_string();
    let paths: Vec<&Path> = files.iter().map(|(p, _)| p.as_path()).collect();
    let mut xft = xft_send(&r.prosody, &to, c.method, c.xft_extra, &paths);
    let (rows, _ok) = xft.finish(BUDGET).await;
    assert_eq!(rows.len(), files.len(), "{rows:?}\n{}", xft.stderr());
    for x in &rows {
        check_xft_row_unconfirmed(x);
    }
    // The peer never has the file: it cancels (its size check) or gets nothing at all.
    if let Ok(got) = peer
        .wait_any(&["file", "cancelled"], Duration::from_secs(10))
        .await
    {
        assert_eq!(got["event"], "cancelled", "{got}\n{}", peer.stderr_tail());
    }
    for (path, _) in &files {
        let on_disk = std::fs::metadata(inbox.join(path.file_name().unwrap()));
        assert!(
            on_disk.map_or(true, |m| m.len() == 0),
            "the peer dropped the data messages"
        );
    }
    let _ = peer.finish(Duration::from_secs(10)).await;
    assert_loopback(&peer, &r.prosody);
    row.peer_limitation(format!(
        "{} drops IBB data messages; xft reports unconfirmed",
        K::CLIENT
    ));
}

/// The peer's `send` → `xft recv`: every file arrives whole on both counts.
pub async fn peer_to_xft<K: PeerKind>(c: Case<'_>) {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(K::CLIENT, "peer → xft", c.case);
    let r = rig(c.via).await;
    let inbox = r.dir.path().join("inbox");
    let outbox = r.dir.path().join("outbox");
    std::fs::create_dir_all(&outbox).unwrap();
    let files = make_files(&outbox, c.files);
    let mut extra = vec!["--method", c.method];
    extra.extend_from_slice(c.xft_extra);
    let mut xft = xft_recv(&r.prosody, &inbox, files.len(), &extra).await;
    let to = format!("{}/xft", r.prosody.jid("bob"));
    let paths: Vec<&Path> = files.iter().map(|(p, _)| p.as_path()).collect();
    let mut peer = NativePeer::<K>::send(&r.prosody, "alice", c.peer_common, &to, &paths, &[])
        .await
        .unwrap();
    for ((path, sha), (_, size)) in files.iter().zip(c.files) {
        let sent = peer.wait_any(&["sent", "cancelled"], BUDGET).await.unwrap();
        assert_eq!(sent["event"], "sent", "{sent}\n{}", peer.stderr_tail());
        assert_eq!(sent["sha256"], sha.as_str(), "{sent}");
        let x = xft
            .row(BUDGET)
            .await
            .unwrap_or_else(|| panic!("xft recv printed no row: {}", xft.stderr()));
        check_xft_row(&x, sha, *size, c.expect_method, &peer.stderr_tail());
        let name = path.file_name().unwrap();
        assert_eq!(&sha256_file(&inbox.join(name)), sha, "on disk: {x}");
        row.note = x["method"].as_str().unwrap_or("?").to_owned();
    }
    let (rest, ok) = xft.finish(BUDGET).await;
    assert!(rest.is_empty(), "{rest:?}");
    assert!(ok, "xft recv exits 0: {}", xft.stderr());
    assert_eq!(
        peer.finish(BUDGET).await.unwrap(),
        Some(0),
        "{}",
        peer.stderr_tail()
    );
    assert_loopback(&peer, &r.prosody);
}

/// The peer declines `xft send`'s offer: xft reports the refusal and exits 1, nothing lands.
pub async fn peer_declines<K: PeerKind>(method: &str) {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let _row = Row::new(K::CLIENT, "xft → peer", "decline");
    let r = rig(Via::Prosody).await;
    let inbox = r.dir.path().join("inbox");
    let file = write(r.dir.path(), "unwanted.bin", &content(100_000, 5));
    let mut peer = NativePeer::<K>::recv(&r.prosody, "bob", &[], &inbox, 1, &["--decline"])
        .await
        .unwrap();
    let to = peer.jid().unwrap().to_string();
    let mut xft = xft_send(&r.prosody, &to, method, &[], &[&file]);
    let (rows, ok) = xft.finish(BUDGET).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        !rows[0]["error"].is_null(),
        "the decline is reported: {}",
        rows[0]
    );
    assert!(!ok, "xft send exits 1 after a decline");
    peer.wait_event("declined").await.unwrap();
    assert!(!inbox.join("unwanted.bin").exists());
    assert_eq!(peer.finish(BUDGET).await.unwrap(), Some(0));
    assert_loopback(&peer, &r.prosody);
}

/// `xft recv` declines the peer's offer (not from an accepted sender): the peer reports the
/// transfer as refused, nothing lands.
pub async fn xft_declines<K: PeerKind>() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let _row = Row::new(K::CLIENT, "peer → xft", "decline");
    let r = rig(Via::Prosody).await;
    let inbox = r.dir.path().join("inbox");
    let carol = r.prosody.jid("carol").to_string();
    let mut xft = xft_recv(&r.prosody, &inbox, 1, &["--from", &carol]).await;
    let file = write(r.dir.path(), "unwanted.bin", &content(100_000, 6));
    let to = format!("{}/xft", r.prosody.jid("bob"));
    let mut peer = NativePeer::<K>::send(&r.prosody, "alice", &[], &to, &[&file], &[])
        .await
        .unwrap();
    let ev = peer.wait_any(&["sent", "cancelled"], BUDGET).await.unwrap();
    assert_eq!(ev["event"], "cancelled", "{ev}");
    assert_eq!(ev["by"], "remote", "{ev}");
    assert_eq!(peer.finish(BUDGET).await.unwrap(), Some(2));
    assert!(!inbox.join("unwanted.bin").exists());
    xft.kill().await;
    assert_loopback(&peer, &r.prosody);
}

/// The peer, receiving, cancels once `after` bytes arrived: xft reports a failure and exits 1.
pub async fn peer_cancels_receiving<K: PeerKind>(method: &str, xft_extra: &[&str], after: u64) {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let _row = Row::new(K::CLIENT, "xft → peer", "cancel by peer");
    let r = rig(Via::Prosody).await;
    let inbox = r.dir.path().join("inbox");
    let size = 3_000_000;
    let file = write(r.dir.path(), "cancelled.bin", &content(size, 7));
    let after_s = after.to_string();
    let mut peer = NativePeer::<K>::recv(
        &r.prosody,
        "bob",
        &[],
        &inbox,
        1,
        &["--cancel-after", &after_s],
    )
    .await
    .unwrap();
    let to = peer.jid().unwrap().to_string();
    let mut xft = xft_send(&r.prosody, &to, method, xft_extra, &[&file]);
    let ev = peer.wait_any(&["file", "cancelled"], BUDGET).await.unwrap();
    assert_eq!(ev["event"], "cancelled", "{ev}");
    assert_eq!(ev["by"], "local", "{ev}");
    let (rows, ok) = xft.finish(BUDGET).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        !rows[0]["error"].is_null(),
        "xft reports the cancel: {}",
        rows[0]
    );
    assert!(!ok, "xft send exits 1 after the peer cancelled");
    assert_eq!(peer.finish(BUDGET).await.unwrap(), Some(0));
    assert_loopback(&peer, &r.prosody);
}

/// The peer, sending, cancels once `after` bytes are out: xft recv reports a failure, keeps
/// no complete file and exits 1.
pub async fn peer_cancels_sending<K: PeerKind>(peer_common: &[&str], after: u64) {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let _row = Row::new(K::CLIENT, "peer → xft", "cancel by peer");
    let r = rig(Via::Prosody).await;
    let inbox = r.dir.path().join("inbox");
    let size = 3_000_000;
    let data = content(size, 8);
    let file = write(r.dir.path(), "cancelled.bin", &data);
    let mut xft = xft_recv(&r.prosody, &inbox, 1, &[]).await;
    let to = format!("{}/xft", r.prosody.jid("bob"));
    let after_s = after.to_string();
    let mut peer = NativePeer::<K>::send(
        &r.prosody,
        "alice",
        peer_common,
        &to,
        &[&file],
        &["--cancel-after", &after_s],
    )
    .await
    .unwrap();
    let ev = peer.wait_any(&["sent", "cancelled"], BUDGET).await.unwrap();
    assert_eq!(ev["event"], "cancelled", "{ev}");
    assert_eq!(ev["by"], "local", "{ev}");
    let x = xft
        .row(BUDGET)
        .await
        .unwrap_or_else(|| panic!("no row: {}", xft.stderr()));
    assert!(!x["error"].is_null(), "xft reports the cancel: {x}");
    let (_, ok) = xft.finish(BUDGET).await;
    assert!(!ok, "xft recv exits 1 after the sender cancelled");
    let landed = inbox.join("cancelled.bin");
    assert!(
        !landed.exists() || sha256_file(&landed) != sha256_hex(&data),
        "no complete file after a cancel"
    );
    assert_eq!(peer.finish(BUDGET).await.unwrap(), Some(0));
    assert_loopback(&peer, &r.prosody);
}

/// `xft recv` dies mid-transfer (killed by its pid): the sending peer reports the transfer
/// as failed instead of sent. With `may_hang`, the peer may instead stay silent but must
/// never say `sent`: libpurple's and QXmpp's IBB senders have no acknowledgement timeout, and
/// the `<data/>` in flight when xft dies is written by Prosody to the closing session
/// (`Sending[c2s]: <iq to='bob@localhost/xft' … id='qxmpp147'>` right before `Connection closed
/// by remote`), so neither a result nor an error ever comes back. When the next `<data/>`
/// arrives after the unbind, Prosody bounces it (`service-unavailable`) and the peer cancels.
pub async fn xft_dies_receiving<K: PeerKind>(peer_common: &[&str], may_hang: bool) {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(K::CLIENT, "peer → xft", "cancel by xft");
    let r = rig(Via::Prosody).await;
    let inbox = r.dir.path().join("inbox");
    let file = write(r.dir.path(), "interrupted.bin", &content(3_000_000, 9));
    let mut xft = xft_recv(&r.prosody, &inbox, 1, &[]).await;
    let to = format!("{}/xft", r.prosody.jid("bob"));
    let mut peer = NativePeer::<K>::send(&r.prosody, "alice", peer_common, &to, &[&file], &[])
        .await
        .unwrap();
    let p = peer.wait_event("progress").await.unwrap();
    xft.kill().await;
    assert!(
        p["bytes"].as_u64() < p["size"].as_u64(),
        "killed mid-transfer: {p}"
    );
    let wait = if may_hang {
        Duration::from_secs(15)
    } else {
        BUDGET
    };
    match peer.wait_any(&["sent", "cancelled"], wait).await {
        Ok(ev) => {
            assert_eq!(ev["event"], "cancelled", "{ev}");
            assert_eq!(peer.finish(BUDGET).await.unwrap(), Some(2));
            row.note = "sender cancelled".into();
        }
        Err(ft_testkit::Error::Timeout { .. }) if may_hang => {
            assert!(
                !peer.events().iter().any(|e| e["event"] == "sent"),
                "{:?}",
                peer.events()
            );
            row.peer_limitation("sender hangs (lost IBB ack, no timeout)");
        }
        Err(e) => panic!("{e}"),
    }
    assert_loopback(&peer, &r.prosody);
}

/// `xft send` dies mid-transfer: the receiving peer reports the transfer as cancelled and
/// never as a complete file. With `may_hang`, the peer may instead wait on (QXmpp's IBB
/// receiver has no inactivity timeout and nothing tells it the sender is gone) but must never
/// report a file.
pub async fn xft_dies_sending<K: PeerKind>(method: &str, xft_extra: &[&str], may_hang: bool) {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(K::CLIENT, "xft → peer", "cancel by xft");
    let r = rig(Via::Prosody).await;
    let inbox = r.dir.path().join("inbox");
    let file = write(r.dir.path(), "interrupted.bin", &content(3_000_000, 10));
    let mut peer = NativePeer::<K>::recv(&r.prosody, "bob", &[], &inbox, 1, &[])
        .await
        .unwrap();
    let to = peer.jid().unwrap().to_string();
    let mut xft = xft_send(&r.prosody, &to, method, xft_extra, &[&file]);
    let p = peer.wait_event("progress").await.unwrap();
    xft.kill().await;
    assert!(
        p["bytes"].as_u64() < p["size"].as_u64(),
        "killed mid-transfer: {p}"
    );
    let wait = if may_hang {
        Duration::from_secs(15)
    } else {
        BUDGET
    };
    match peer.wait_any(&["file", "cancelled"], wait).await {
        Ok(ev) => {
            assert_eq!(ev["event"], "cancelled", "{ev}");
            assert_eq!(peer.finish(BUDGET).await.unwrap(), Some(2));
            row.note = "receiver cancelled".into();
        }
        Err(ft_testkit::Error::Timeout { .. }) if may_hang => {
            assert!(
                !peer.events().iter().any(|e| e["event"] == "file"),
                "{:?}",
                peer.events()
            );
            row.peer_limitation("receiver waits on (no IBB inactivity timeout)");
        }
        Err(e) => panic!("{e}"),
    }
    assert_loopback(&peer, &r.prosody);
}

// ---- the libpurple-style fallback: every streamhost dead, then IBB on the same sid -------------

/// The xft options of the fallback cases: a short SOCKS5 budget (libpurple tries each
/// streamhost 5 s, QXmpp 7 s) and IBB blocks every peer takes (QXmpp caps at 4096).
pub const FALLBACK_XFT: &[&str] = &["--s5b-budget", "8", "--block-size", "4096"];

/// The fallback file: small, so that IBB at 4096 stop-and-wait stays quick.
pub const FALLBACK_SIZE: usize = 300_000;

/// What one fallback case saw, for the per-peer assertions.
pub struct Fallback<K: PeerKind> {
    pub rig: Rig,
    pub peer: NativePeer<K>,
    pub xft: Xft,
    /// xft's rows and whether it exited 0.
    pub rows: Vec<Value>,
    pub ok: bool,
    pub sha: String,
    pub inbox: PathBuf,
    pub name: &'static str,
}

/// The peer reported at least one `<streamhost/>` in direction `dir` rewritten dead, and
/// kept none alive.
pub fn assert_dead_streamhosts(events: &[Value], dir: &str) {
    let shs: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "streamhost" && e["dir"] == dir)
        .collect();
    assert!(!shs.is_empty(), "no <streamhost/> {dir}: {events:?}");
    for e in shs {
        if e["kept"] == true {
            let dead = e["dead"].as_str().unwrap_or("");
            assert!(
                dead.starts_with("127.0.0.1:"),
                "a live streamhost remained: {e}"
            );
            assert_eq!(e["rewritten"], "127.0.0.1", "{e}");
        }
    }
    assert!(
        events.iter().any(|e| e["event"] == "streamhost"
            && e["dir"] == dir
            && e["kept"] == true
            && e["dead"].is_string()),
        "no dead streamhost {dir}: {events:?}"
    );
}

/// `xft send --method auto` → the peer with `--dead-streamhosts`: every streamhost xft offers
/// (its own, proxy65's) is dead from the peer's view.
///
/// With `proxy65` Prosody's proxy is offered too (dead as well); without it only xft's own
/// streamhost is, so that a peer that tries each streamhost 7 s (QXmpp) answers within
/// xft's `--s5b-budget`.
pub async fn fallback_xft_to_peer<K: PeerKind>(proxy65: bool) -> Fallback<K> {
    let r = Rig {
        prosody: prosody(proxy65),
        _proxy: None,
        dir: tempfile::tempdir().unwrap(),
    };
    let inbox = r.dir.path().join("inbox");
    let outbox = r.dir.path().join("outbox");
    std::fs::create_dir_all(&outbox).unwrap();
    let name = "fallback.bin";
    let files = make_files(&outbox, &[(name, FALLBACK_SIZE)]);
    let mut peer = NativePeer::<K>::recv(
        &r.prosody,
        "bob",
        &["--dead-streamhosts", "--debug"],
        &inbox,
        1,
        &[],
    )
    .await
    .unwrap();
    let to = peer.jid().unwrap().to_string();
    let mut xft = xft_send(&r.prosody, &to, "auto", FALLBACK_XFT, &[&files[0].0]);
    let (rows, ok) = xft.finish(BUDGET).await;
    let _ = peer
        .wait_any(&["file", "cancelled"], Duration::from_secs(15))
        .await;
    let _ = peer.finish(Duration::from_secs(15)).await;
    // XFT_FALLBACK_DEBUG=1: both sides' logs on stderr (run with --nocapture).
    if std::env::var_os("XFT_FALLBACK_DEBUG").is_some() {
        eprintln!(
            "--- peer stderr ---\n{}\n--- xft stderr ---\n{}",
            peer.stderr(),
            xft.stderr()
        );
    }
    Fallback {
        rig: r,
        peer,
        xft,
        rows,
        ok,
        sha: files[0].1.clone(),
        inbox,
        name,
    }
}

/// The peer's `send --dead-streamhosts` → `xft recv --method auto`: every streamhost the peer
/// offers (its own, proxy65's) is dead, so none remains alive for xft.
pub async fn fallback_peer_to_xft<K: PeerKind>() -> Fallback<K> {
    let r = rig(Via::Prosody).await;
    let inbox = r.dir.path().join("inbox");
    let outbox = r.dir.path().join("outbox");
    std::fs::create_dir_all(&outbox).unwrap();
    let name = "fallback.bin";
    let files = make_files(&outbox, &[(name, FALLBACK_SIZE)]);
    let mut extra = vec!["--method", "auto"];
    extra.extend_from_slice(&FALLBACK_XFT[..2]);
    let mut xft = xft_recv(&r.prosody, &inbox, 1, &extra).await;
    let to = format!("{}/xft", r.prosody.jid("bob"));
    let mut peer = NativePeer::<K>::send(
        &r.prosody,
        "alice",
        &["--dead-streamhosts", "--debug", "--timeout", "60"],
        &to,
        &[&files[0].0],
        &[],
    )
    .await
    .unwrap();
    let _ = peer.wait_any(&["sent", "cancelled"], BUDGET).await;
    let mut rows = Vec::new();
    let mut ok = false;
    if let Some(x) = xft.row(BUDGET).await {
        let good = x["error"].is_null();
        rows.push(x);
        if good {
            let (rest, exit_ok) = xft.finish(BUDGET).await;
            rows.extend(rest);
            ok = exit_ok;
        }
    }
    if !ok {
        xft.kill().await;
    }
    let _ = peer.finish(Duration::from_secs(15)).await;
    // XFT_FALLBACK_DEBUG=1: both sides' logs on stderr (run with --nocapture).
    if std::env::var_os("XFT_FALLBACK_DEBUG").is_some() {
        eprintln!(
            "--- peer stderr ---\n{}\n--- xft stderr ---\n{}",
            peer.stderr(),
            xft.stderr()
        );
    }
    Fallback {
        rig: r,
        peer,
        xft,
        rows,
        ok,
        sha: files[0].1.clone(),
        inbox,
        name,
    }
}

/// A fallback that worked: one row, IBB iq after a fallback, the file whole on both counts.
pub fn assert_fallback_ok<K: PeerKind>(f: &Fallback<K>, dir: &str, peer_event: &str) {
    let log = f.peer.stderr_tail();
    assert_eq!(f.rows.len(), 1, "{:?}\n{}\n{log}", f.rows, f.xft.stderr());
    let x = &f.rows[0];
    check_xft_row(x, &f.sha, FALLBACK_SIZE, Some("ibb-iq"), &log);
    assert_eq!(x["fallback"], true, "{x}");
    assert!(f.ok, "xft exits 0: {}", f.xft.stderr());
    assert_dead_streamhosts(f.peer.events(), dir);
    let ev = f
        .peer
        .events()
        .iter()
        .find(|e| e["event"] == peer_event || e["event"] == "cancelled")
        .unwrap_or_else(|| panic!("no {peer_event}: {:?}\n{log}", f.peer.events()));
    assert_eq!(ev["event"], peer_event, "{ev}\n{log}");
    assert_eq!(ev["sha256"], f.sha.as_str(), "{ev}");
    assert_eq!(sha256_file(&f.inbox.join(f.name)), f.sha, "on disk");
    assert_loopback(&f.peer, &f.rig.prosody);
}

/// The first line of `log` that contains every one of `pats`.
pub fn log_line<'a>(log: &'a str, pats: &[&str]) -> Option<&'a str> {
    log.lines().find(|l| pats.iter().all(|p| l.contains(p)))
}

/// Attribute `attr` of the first element `<name …>` in `line` (either quote).
pub fn attr_in(line: &str, name: &str, attr: &str) -> Option<String> {
    let at = line.find(&format!("<{name} "))?;
    let tag = &line[at..];
    let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
    let s = tag.find(&format!(" {attr}="))? + attr.len() + 2;
    let q = tag[s..].chars().next()?;
    let v = &tag[s + 1..];
    Some(v[..v.find(q)?].to_owned())
}
