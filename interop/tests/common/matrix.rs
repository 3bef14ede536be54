//! The transfer matrix shared by `purple.rs` and `qxmpp.rs`: each case runs `xft` (the
//! binary) against one real peer through a real Prosody, compares SHA-256 on disk, asserts
//! the outcome of both sides and that nothing but loopback was offered or dialled, and
//! appends an interop table row. Its [`Case`] (one row of a table of cases, see [`cases!`]),
//! [`CaseRig`] and [`OneFile`] also serve `slixmpp.rs` (`slix.rs`); the fallback cases are in
//! `fallback.rs`.
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

/// A case's rig with its files written into `outbox`, and the receiver's `inbox` (not created).
pub struct CaseRig {
    pub r: Rig,
    pub inbox: PathBuf,
    /// (path, SHA-256) of each of the case's files.
    pub files: Vec<(PathBuf, String)>,
}

impl CaseRig {
    pub async fn new(c: &Case<'_>) -> Self {
        let r = rig(c.via).await;
        let inbox = r.dir.path().join("inbox");
        let outbox = r.dir.path().join("outbox");
        std::fs::create_dir_all(&outbox).unwrap();
        let files = make_files(&outbox, c.files);
        Self { r, inbox, files }
    }

    pub fn paths(&self) -> Vec<&Path> {
        self.files.iter().map(|(p, _)| p.as_path()).collect()
    }

    /// `xft recv --method M --count N` (the case's method and options) as bob/xft, for all
    /// the files; and its JID, to send to.
    pub async fn xft_receives_all(&self, c: &Case<'_>) -> (Xft, String) {
        let mut extra = vec!["--method", c.method];
        extra.extend_from_slice(c.xft_extra);
        let xft = xft_recv(&self.r.prosody, &self.inbox, self.files.len(), &extra).await;
        (xft, format!("{}/xft", self.r.prosody.jid("bob")))
    }

    /// `xft send` of every file to `to` (the case's method and options), run to its end: xft,
    /// its rows (one per file, asserted) and whether it exited 0.
    pub async fn xft_sends_all(&self, c: &Case<'_>, to: &str) -> (Xft, Vec<Value>, bool) {
        let mut xft = xft_send(&self.r.prosody, to, c.method, c.xft_extra, &self.paths());
        let (rows, ok) = xft.finish(BUDGET).await;
        assert_eq!(
            rows.len(),
            self.files.len(),
            "one row per file: {rows:?}\n{}",
            xft.stderr()
        );
        (xft, rows, ok)
    }
}

/// A rig through Prosody (with proxy65) and one file `name` of `content(size, seed)` in its
/// directory, for the decline, cancel and kill cases; `inbox` is the receiver's (not created).
pub struct OneFile {
    pub r: Rig,
    pub inbox: PathBuf,
    pub file: PathBuf,
    pub data: Vec<u8>,
}

impl OneFile {
    pub async fn new(name: &str, size: usize, seed: u64) -> Self {
        let r = rig(Via::Prosody).await;
        let inbox = r.dir.path().join("inbox");
        let data = content(size, seed);
        let file = write(r.dir.path(), name, &data);
        Self {
            r,
            inbox,
            file,
            data,
        }
    }
}

/// A table of cases: each `name => call;` is a `#[tokio::test]` that awaits `call` (doc
/// comments before a name go onto its test).
#[allow(unused_macros)]
macro_rules! cases {
    ($($(#[$doc:meta])* $name:ident => $call:expr;)*) => {$(
        $(#[$doc])*
        #[tokio::test]
        async fn $name() {
            $call.await;
        }
    )*};
}
#[allow(unused_imports)]
pub(crate) use cases;

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

/// One file of a peer → `xft recv` case: the peer's `sent` event names the file's SHA-256,
/// and `xft recv`'s next row is a success for it ([`check_xft_row`]); returns that row.
pub async fn sent_and_received(
    sent: &Value,
    xft: &mut Xft,
    sha: &str,
    size: usize,
    expect_method: Option<&str>,
    peer_log: &str,
) -> Value {
    assert_eq!(sent["event"], "sent", "{sent}\n{peer_log}");
    assert_eq!(sent["sha256"], sha, "{sent}");
    let x = xft
        .row(BUDGET)
        .await
        .unwrap_or_else(|| panic!("xft recv printed no row: {}", xft.stderr()));
    check_xft_row(&x, sha, size, expect_method, peer_log);
    x
}

/// The case's rig, the peer's `recv` as bob (with `c.peer_common`) for all the files, and
/// `xft send` of them to it run to its end ([`CaseRig::xft_sends_all`]).
async fn peer_receives_all<K: PeerKind>(
    c: &Case<'_>,
) -> (CaseRig, NativePeer<K>, Xft, Vec<Value>, bool) {
    let cr = CaseRig::new(c).await;
    let count = cr.files.len();
    let peer = NativePeer::<K>::recv(&cr.r.prosody, "bob", c.peer_common, &cr.inbox, count, &[])
        .await
        .unwrap();
    let to = peer.jid().unwrap().to_string();
    let (xft, rows, ok) = cr.xft_sends_all(c, &to).await;
    (cr, peer, xft, rows, ok)
}

/// `xft send` → the peer's `recv`: every file arrives whole on both counts.
pub async fn xft_to_peer<K: PeerKind>(c: Case<'_>) {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(K::CLIENT, "xft → peer", c.case);
    let (cr, mut peer, xft, rows, ok) = peer_receives_all::<K>(&c).await;
    let (r, inbox, files) = (&cr.r, &cr.inbox, &cr.files);
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
    let (cr, mut peer, _xft, rows, _ok) = peer_receives_all::<K>(&c).await;
    let (r, inbox, files) = (&cr.r, &cr.inbox, &cr.files);
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
    for (path, _) in files {
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
    let cr = CaseRig::new(&c).await;
    let (r, inbox, files) = (&cr.r, &cr.inbox, &cr.files);
    let (mut xft, to) = cr.xft_receives_all(&c).await;
    let paths = cr.paths();
    let mut peer = NativePeer::<K>::send(&r.prosody, "alice", c.peer_common, &to, &paths, &[])
        .await
        .unwrap();
    for ((path, sha), (_, size)) in files.iter().zip(c.files) {
        let sent = peer.wait_any(&["sent", "cancelled"], BUDGET).await.unwrap();
        let log = peer.stderr_tail();
        let x = sent_and_received(&sent, &mut xft, sha, *size, c.expect_method, &log).await;
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
    let OneFile { r, inbox, file, .. } = OneFile::new("unwanted.bin", 100_000, 5).await;
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
    let OneFile { r, inbox, file, .. } = OneFile::new("unwanted.bin", 100_000, 6).await;
    let carol = r.prosody.jid("carol").to_string();
    let mut xft = xft_recv(&r.prosody, &inbox, 1, &["--from", &carol]).await;
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
    let OneFile { r, inbox, file, .. } = OneFile::new("cancelled.bin", 3_000_000, 7).await;
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
    let OneFile {
        r,
        inbox,
        file,
        data,
    } = OneFile::new("cancelled.bin", 3_000_000, 8).await;
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

/// What the kill cases share: once the peer reports progress, xft is killed (by its pid);
/// the peer then cancels (and exits 2), or with `may_hang` may stay silent (`hang` is then
/// the table's note), but never says `done` (`sent` or `file`).
async fn kill_xft_mid_transfer<K: PeerKind>(
    row: &mut Row,
    peer: &mut NativePeer<K>,
    xft: &mut Xft,
    done: &str,
    hang: &str,
    may_hang: bool,
) {
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
    match peer.wait_any(&[done, "cancelled"], wait).await {
        Ok(ev) => {
            assert_eq!(ev["event"], "cancelled", "{ev}");
            assert_eq!(peer.finish(BUDGET).await.unwrap(), Some(2));
            let who = if done == "sent" { "sender" } else { "receiver" };
            row.note = format!("{who} cancelled");
        }
        Err(ft_testkit::Error::Timeout { .. }) if may_hang => {
            assert!(
                !peer.events().iter().any(|e| e["event"] == done),
                "{:?}",
                peer.events()
            );
            row.peer_limitation(hang);
        }
        Err(e) => panic!("{e}"),
    }
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
    let OneFile { r, inbox, file, .. } = OneFile::new("interrupted.bin", 3_000_000, 9).await;
    let mut xft = xft_recv(&r.prosody, &inbox, 1, &[]).await;
    let to = format!("{}/xft", r.prosody.jid("bob"));
    let mut peer = NativePeer::<K>::send(&r.prosody, "alice", peer_common, &to, &[&file], &[])
        .await
        .unwrap();
    let hang = "sender hangs (lost IBB ack, no timeout)";
    kill_xft_mid_transfer(&mut row, &mut peer, &mut xft, "sent", hang, may_hang).await;
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
    let OneFile { r, inbox, file, .. } = OneFile::new("interrupted.bin", 3_000_000, 10).await;
    let mut peer = NativePeer::<K>::recv(&r.prosody, "bob", &[], &inbox, 1, &[])
        .await
        .unwrap();
    let to = peer.jid().unwrap().to_string();
    let mut xft = xft_send(&r.prosody, &to, method, xft_extra, &[&file]);
    let hang = "receiver waits on (no IBB inactivity timeout)";
    kill_xft_mid_transfer(&mut row, &mut peer, &mut xft, "file", hang, may_hang).await;
    assert_loopback(&peer, &r.prosody);
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
