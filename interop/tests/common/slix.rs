//! The slixmpp side of `slixmpp.rs`: the two transfer directions over a [`Case`] (the table
//! row shared with `purple.rs` and `qxmpp.rs`), the setup of the decline, cancel and kill
//! cases, and what the limitation rows read from slixmpp's installed source.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::time::Duration;

use ft_testkit::SlixPeer;

use super::matrix::*;
use super::xftcli::*;

pub const CLIENT: &str = "slixmpp 1.17";
pub const UNICODE: &str = "ünïcødé name ✓ with spaces.bin";

/// The source of one of slixmpp's modules, as installed in the peers' virtualenv (for the
/// limitation rows: what slixmpp has no code for).
pub fn slix_source(module: &str) -> String {
    let out = std::process::Command::new(ft_testkit::python().unwrap())
        .args([
            "-c",
            &format!("import inspect, {module} as m; print(inspect.getsource(m))"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{module}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Waits until some file in `dir` holds at least `bytes` (a transfer is under way).
pub async fn wait_partial(dir: &Path, bytes: u64) {
    let deadline = tokio::time::Instant::now() + BUDGET;
    loop {
        let biggest = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .max()
            .unwrap_or(0);
        if biggest >= bytes {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing in {} reached {bytes} bytes",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl OneFile {
    /// slixmpp's `recv` (as bob, with options `peer`), then `xft send --method method` (with
    /// options `xft`) of the file to it.
    pub async fn xft_sends(&self, peer: &[&str], method: &str, xft: &[&str]) -> (SlixPeer, Xft) {
        let slix = SlixPeer::recv(&self.r.prosody, "bob", &self.inbox, 1, peer)
            .await
            .unwrap();
        let to = slix.jid().unwrap().to_string();
        let xft = xft_send(&self.r.prosody, &to, method, xft, &[&self.file]);
        (slix, xft)
    }

    /// `xft recv` (as bob/xft, with options `xft`), then slixmpp's `send --method method`
    /// (as alice, with options `peer`) of the file to it.
    pub async fn slix_sends(&self, xft: &[&str], method: &str, peer: &[&str]) -> (Xft, SlixPeer) {
        let xft = xft_recv(&self.r.prosody, &self.inbox, 1, xft).await;
        let to = format!("{}/xft", self.r.prosody.jid("bob"));
        let slix = SlixPeer::send(&self.r.prosody, "alice", &to, &self.file, method, peer)
            .await
            .unwrap();
        (xft, slix)
    }
}

/// `xft send` → slixmpp's `recv` (`c.peer_common` are its options): every file arrives
/// whole with the right SHA-256 on disk. With `unconfirmed` (IBB over message, no
/// acknowledgements) xft's rows must say `unconfirmed` and `verified: false`, and the file
/// must still arrive: slixmpp does deliver message-mode data.
pub async fn xft_to_slix(c: Case<'_>, unconfirmed: bool) {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(CLIENT, "xft → peer", c.case);
    let cr = CaseRig::new(&c).await;
    let (r, inbox, files) = (&cr.r, &cr.inbox, &cr.files);
    let mut peer = SlixPeer::recv(&r.prosody, "bob", inbox, files.len(), c.peer_common)
        .await
        .unwrap();
    let to = peer.jid().unwrap().to_string();
    let (xft, rows, ok) = cr.xft_sends_all(&c, &to).await;
    for ((path, sha), (x, (_, size))) in files.iter().zip(rows.iter().zip(c.files)) {
        if unconfirmed {
            assert!(x["error"].is_null(), "{x}\n{}", peer.stderr());
            check_xft_row_unconfirmed(x);
            assert_eq!(x["sha256"], sha.as_str(), "{x}");
        } else {
            check_xft_row(x, sha, *size, c.expect_method, &peer.stderr());
        }
        let got = peer
            .wait_any(&["file", "cancelled"], BUDGET)
            .await
            .unwrap_or_else(|e| panic!("{e}\n--- xft ---\n{}", xft.stderr()));
        assert_eq!(got["event"], "file", "{got}\n{}", peer.stderr());
        let name = path.file_name().unwrap();
        assert_eq!(got["name"].as_str(), name.to_str(), "{got}");
        assert_eq!(got["size"].as_u64(), Some(*size as u64), "{got}");
        assert_eq!(got["sha256"], sha.as_str(), "{got}");
        assert_eq!(&sha256_file(&inbox.join(name)), sha, "on disk: {got}");
        row.note = format!("{} via {}", x["method"].as_str().unwrap_or("?"), c.method);
    }
    assert!(ok, "xft send exits 0: {rows:?}\n{}", xft.stderr());
    assert!(peer.wait_exit(BUDGET).await.unwrap(), "{}", peer.stderr());
    assert_prosody_loopback(&r.prosody);
    if unconfirmed {
        row.note = "ibb-message: delivered; xft says unconfirmed, not verified".into();
    }
}

/// slixmpp's `send --method slix_method` (`c.peer_common` are its options) → `xft recv`:
/// slixmpp offers one file per session, so each file is one `send` in turn against one
/// `xft recv --count N`. Every file arrives whole with the right SHA-256 on disk.
pub async fn slix_to_xft(c: Case<'_>, slix_method: &str) {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(CLIENT, "peer → xft", c.case);
    let cr = CaseRig::new(&c).await;
    let (r, inbox, files) = (&cr.r, &cr.inbox, &cr.files);
    let (mut xft, to) = cr.xft_receives_all(&c).await;
    for ((path, sha), (_, size)) in files.iter().zip(c.files) {
        let mut peer = SlixPeer::send(&r.prosody, "alice", &to, path, slix_method, c.peer_common)
            .await
            .unwrap();
        let sent = peer
            .wait_any(&["sent", "cancelled"], BUDGET)
            .await
            .unwrap_or_else(|e| panic!("{e}\n--- xft ---\n{}", xft.stderr()));
        let x =
            sent_and_received(&sent, &mut xft, sha, *size, c.expect_method, &peer.stderr()).await;
        let name = path.file_name().unwrap();
        assert_eq!(
            x["file"]
                .as_str()
                .map(|f| Path::new(f).file_name().unwrap()),
            Some(name),
            "{x}"
        );
        assert_eq!(&sha256_file(&inbox.join(name)), sha, "on disk: {x}");
        assert!(peer.wait_exit(BUDGET).await.unwrap(), "{}", peer.stderr());
        row.note = format!(
            "{} from slixmpp's {slix_method}",
            x["method"].as_str().unwrap_or("?")
        );
    }
    let (rest, ok) = xft.finish(BUDGET).await;
    assert!(rest.is_empty(), "{rest:?}");
    assert!(ok, "xft recv exits 0: {}", xft.stderr());
    assert_prosody_loopback(&r.prosody);
}
