//! The libpurple-style fallback cases of `purple.rs` and `qxmpp.rs` (every streamhost dead
//! from the peer's view via its `--dead-streamhosts`, then IBB on the same sid), over the
//! rig of [`super::matrix`].
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::time::Duration;

use ft_testkit::{NativePeer, PeerKind};
use serde_json::Value;

use super::matrix::*;
use super::xftcli::*;

/// The xft options of the fallback cases: a short SOCKS5 budget (libpurple tries each
/// streamhost 5 s, QXmpp 7 s) and IBB blocks every peer takes (QXmpp caps at 4096).
pub const FALLBACK_XFT: &[&str] = &["--s5b-budget", "8", "--block-size", "4096"];

/// The fallback file: small, so that IBB at 4096 stop-and-wait stays quick.
pub const FALLBACK_SIZE: usize = 300_000;

/// The fallback file's name.
pub const FALLBACK_NAME: &str = "fallback.bin";

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

impl<K: PeerKind> Fallback<K> {
    /// Waits (15 s at most) for the peer to exit, and with `XFT_FALLBACK_DEBUG=1` prints both
    /// sides' logs on stderr (run with --nocapture).
    async fn finish(
        rig: Rig,
        inbox: PathBuf,
        sha: String,
        mut peer: NativePeer<K>,
        xft: Xft,
        rows: Vec<Value>,
        ok: bool,
    ) -> Self {
        let _ = peer.finish(Duration::from_secs(15)).await;
        if std::env::var_os("XFT_FALLBACK_DEBUG").is_some() {
            eprintln!(
                "--- peer stderr ---\n{}\n--- xft stderr ---\n{}",
                peer.stderr(),
                xft.stderr()
            );
        }
        Self {
            rig,
            peer,
            xft,
            rows,
            ok,
            sha,
            inbox,
            name: FALLBACK_NAME,
        }
    }
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
    let files = make_files(&outbox, &[(FALLBACK_NAME, FALLBACK_SIZE)]);
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
    let sha = files[0].1.clone();
    Fallback::finish(r, inbox, sha, peer, xft, rows, ok).await
}

/// The peer's `send --dead-streamhosts` → `xft recv --method auto`: every streamhost the peer
/// offers (its own, proxy65's) is dead, so none remains alive for xft.
pub async fn fallback_peer_to_xft<K: PeerKind>() -> Fallback<K> {
    let r = rig(Via::Prosody).await;
    let inbox = r.dir.path().join("inbox");
    let outbox = r.dir.path().join("outbox");
    std::fs::create_dir_all(&outbox).unwrap();
    let files = make_files(&outbox, &[(FALLBACK_NAME, FALLBACK_SIZE)]);
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
    let sha = files[0].1.clone();
    Fallback::finish(r, inbox, sha, peer, xft, rows, ok).await
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
