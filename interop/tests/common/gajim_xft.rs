//! The xft ↔ Gajim rig of `tests/gajim_xft.rs` and `tests/gajim_xft_recv.rs`: the `xft`
//! binary (as in the other interop suites) and the headless Gajim 1.7.3 peer through one
//! real Prosody (with proxy65, or with `xft proxy` attached), the checks every delivered
//! file gets on both sides, and the recording of the stanzas of each session as fixtures.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::time::Duration;

use ft_testkit::{GajimOptions, GajimPeer};
use serde_json::Value;

use super::gajim::{GajimCase, proxy_args, proxy_opts, write_fixtures};
use super::matrix::{Rig, rig};
use super::xftcli::*;

pub const CLIENT: &str = "Gajim 1.7.3";
/// A whole transfer: 10.5 MB over S5B, or a few hundred kB over Gajim's IBB (one 4096-byte
/// block in flight, ~1 MB/s), on 2 shared cores.
pub const DONE: Duration = Duration::from_secs(90);

/// Gajim's options when it receives: no direct candidate of its own (its dual-direct race,
/// see `common/gajim.rs` `receiver_without_direct`), on Gajim's bob account.
pub fn gajim_receiver() -> GajimOptions {
    GajimOptions {
        direct: false,
        ..GajimOptions::default()
    }
    .resource("gajim")
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// An xft → Gajim case: Gajim receives with [`gajim_receiver`].
pub fn to_gajim(len: usize, method: &str) -> GajimCase<'_> {
    GajimCase {
        gajim: gajim_receiver(),
        ..GajimCase::new(len, method)
    }
}

/// Panics unless every candidate or streamhost xft put on the wire, as Gajim received it,
/// names a loopback host: the `host` attributes of the stanzas Gajim got from xft, and the
/// `streamhost` events of Gajim's dial filter for the peer's candidates. (Gajim's own side
/// is [`GajimPeer::assert_loopback_only`].)
pub fn assert_xft_offered_loopback_only(gajim: &GajimPeer) {
    let mut hosts = Vec::new();
    for (d, kind, xml) in gajim.stanzas() {
        if d != "in" {
            continue;
        }
        for part in xml.split(" host=").skip(1) {
            let q = part.chars().next().unwrap_or('"');
            let host: String = part[1..].chars().take_while(|c| *c != q).collect();
            hosts.push((kind.clone(), host));
        }
    }
    for v in gajim.events() {
        if v["event"] == "streamhost" && v["dir"] == "received" {
            hosts.push((
                "received".into(),
                v["host"].as_str().unwrap_or("").to_owned(),
            ));
        }
    }
    for (kind, host) in hosts {
        let ip: std::net::IpAddr = host
            .parse()
            .unwrap_or_else(|e| panic!("xft offered {host:?} in {kind}: {e}"));
        assert!(ip.is_loopback(), "xft offered {ip} in {kind}");
    }
}

/// One xft ↔ Gajim session: Prosody, `xft` and Gajim (the case's `gajim` options, with
/// `gajim_extra`), and the source file of the case.
pub struct XftGajim {
    pub r: Rig,
    pub gajim: GajimPeer,
    pub xft: Xft,
    pub source: PathBuf,
    pub sha: String,
    pub inbox: PathBuf,
}

/// xft → Gajim.
pub type ToGajim = XftGajim;
/// Gajim → xft.
pub type FromGajim = XftGajim;

impl XftGajim {
    /// The rig of `c` and its source file `<sender>-<method>-<len>.bin`, with `inbox` (the
    /// receiver's) created or not.
    async fn rig(
        c: &GajimCase<'_>,
        sender: &str,
        create_inbox: bool,
    ) -> (Rig, PathBuf, PathBuf, String) {
        let r = rig(c.via).await;
        let inbox = r.dir.path().join("inbox");
        if create_inbox {
            std::fs::create_dir_all(&inbox).unwrap();
        }
        let data = content(c.len, c.len as u64);
        let name = format!("{sender}-{}-{}.bin", c.method, c.len);
        let source = write(r.dir.path(), &name, &data);
        (r, inbox, source, sha256_hex(&data))
    }

    /// Every candidate and streamhost on every side was loopback: Gajim's own
    /// ([`GajimPeer::assert_loopback_only`]), xft's as Gajim saw them, and Prosody's log.
    pub fn assert_loopback(&self) {
        self.gajim.assert_loopback_only();
        assert_xft_offered_loopback_only(&self.gajim);
        assert_prosody_loopback(&self.r.prosody);
    }
}

/// Gajim receiving as `bob/gajim` (`c.gajim`, usually [`gajim_receiver`]), then `xft send`
/// as `alice/xft` by `c.method` with `c.other_extra`.
pub async fn xft_to_gajim(c: GajimCase<'_>) -> ToGajim {
    let (r, inbox, source, sha) = XftGajim::rig(&c, "xft", true).await;
    let gajim_opts = proxy_opts(&r, c.gajim);
    let gajim = GajimPeer::recv(&r.prosody, "bob", &gajim_opts, &inbox, 1, c.gajim_extra)
        .await
        .expect("gajim online");
    let to = gajim.jid().expect("jid").to_string();
    let xft = xft_send(
        &r.prosody,
        &to,
        c.method,
        &strs(&proxy_args(&r, c.other_extra)),
        &[&source],
    );
    XftGajim {
        r,
        gajim,
        xft,
        source,
        sha,
        inbox,
    }
}

/// The session delivered: Gajim's `file` event and the file on disk carry the source's
/// SHA-256, Gajim's own hash check ran and passed (`hash_checked`: xft's XEP-0300 hash, in
/// the offer or a checksum), xft's row says jingle, `expect_method`, acknowledged; both
/// exit 0; loopback only on every side. Returns (xft's row, Gajim's `file` event).
pub async fn expect_to_gajim(t: &mut ToGajim, expect_method: &str) -> (Value, Value) {
    let file = t
        .gajim
        .wait_any(&["file", "transfer-error", "cancelled"], DONE)
        .await
        .unwrap_or_else(|e| panic!("{e}\n--- xft ---\n{}", t.xft.stderr()));
    assert_eq!(
        file["event"],
        "file",
        "{file}\n--- xft ---\n{}\n--- gajim ---\n{}",
        t.xft.stderr(),
        t.gajim.stderr_tail()
    );
    let (rows, ok) = t.xft.finish(DONE).await;
    assert_eq!(rows.len(), 1, "{rows:?}\n{}", t.xft.stderr());
    let row = rows[0].clone();
    assert!(row["error"].is_null(), "{row}\n{}", t.gajim.stderr_tail());
    assert_eq!(row["stack"], "jingle", "{row}");
    assert_eq!(row["method"], expect_method, "{row}");
    assert_eq!(row["sha256"], t.sha.as_str(), "{row}");
    assert_eq!(row["delivery"], "acknowledged", "{row}");
    assert_row_loopback(&row);
    assert!(ok, "xft send exits 0: {row}");
    let name = t.source.file_name().unwrap();
    assert_eq!(file["name"].as_str(), name.to_str());
    assert_eq!(file["sha256"], t.sha.as_str(), "{file}");
    assert_eq!(sha256_file(&t.inbox.join(name)), t.sha, "on disk");
    assert_eq!(file["hash_checked"], true, "Gajim checked our hash: {file}");
    assert_eq!(file["hash_ok"], true, "{file}");
    assert_eq!(t.gajim.finish(DONE).await.expect("gajim exits"), Some(0));
    t.assert_loopback();
    (row, file)
}

/// `xft recv` as `bob/xft` (`c.other_extra`), then Gajim sending as `alice/gajim` by
/// `c.method` with `c.gajim` and `c.gajim_extra`.
pub async fn gajim_to_xft(c: GajimCase<'_>) -> FromGajim {
    let (r, inbox, source, sha) = XftGajim::rig(&c, "gajim", false).await;
    let xft = xft_recv(&r.prosody, &inbox, 1, &strs(&proxy_args(&r, c.other_extra))).await;
    let to = format!("{}/xft", r.prosody.jid("bob"));
    let gajim = GajimPeer::send(
        &r.prosody,
        "alice",
        &proxy_opts(&r, c.gajim).resource("gajim"),
        &to,
        &source,
        c.method,
        c.gajim_extra,
    )
    .await
    .expect("gajim online");
    XftGajim {
        r,
        gajim,
        xft,
        source,
        sha,
        inbox,
    }
}

/// The session delivered: Gajim says `sent` with the source's SHA-256, xft's row says
/// jingle, `expect_method`, verified (size and Gajim's blake2b-512 hash checked), and the
/// file on disk matches; both exit 0; loopback only on Gajim's side and in Prosody's log.
/// Returns xft's row; the caller checks xft's own candidates last
/// ([`assert_xft_offered_loopback_only`]), after what it asserts about the transfer.
pub async fn expect_from_gajim(f: &mut FromGajim, expect_method: &str) -> Value {
    expect_from_gajim_by(f, &[expect_method]).await
}

/// [`expect_from_gajim`], the method being any of `methods` (for S5B: which candidate
/// pair XEP-0260's nomination settles on depends on which connects first).
pub async fn expect_from_gajim_by(f: &mut FromGajim, methods: &[&str]) -> Value {
    let row = f.xft.row(DONE).await.unwrap_or_else(|| {
        panic!(
            "xft recv printed no row: {}\n--- gajim ---\n{}",
            f.xft.stderr(),
            f.gajim.stderr_tail()
        )
    });
    assert!(
        row["error"].is_null(),
        "{row}\n--- xft ---\n{}\n--- gajim ---\n{}",
        f.xft.stderr(),
        f.gajim.stderr_tail()
    );
    assert_eq!(row["stack"], "jingle", "{row}");
    assert!(
        methods.iter().any(|m| row["method"] == *m),
        "method not one of {methods:?}: {row}"
    );
    assert_eq!(row["sha256"], f.sha.as_str(), "{row}");
    assert_eq!(row["size_checked"], true, "{row}");
    assert_eq!(row["hash_checked"], true, "{row}");
    assert_eq!(row["verified"], true, "{row}");
    assert_row_loopback(&row);
    let name = f.source.file_name().unwrap();
    assert_eq!(sha256_file(&f.inbox.join(name)), f.sha, "on disk");
    let sent = f
        .gajim
        .wait_any(&["sent", "transfer-error", "cancelled"], DONE)
        .await
        .expect("gajim's outcome");
    assert_eq!(sent["event"], "sent", "{sent}");
    assert_eq!(sent["sha256"], f.sha.as_str(), "{sent}");
    let (rest, ok) = f.xft.finish(DONE).await;
    assert!(rest.is_empty(), "{rest:?}");
    assert!(ok, "xft recv exits 0: {}", f.xft.stderr());
    assert_eq!(f.gajim.finish(DONE).await.expect("gajim exits"), Some(0));
    f.gajim.assert_loopback_only();
    assert_prosody_loopback(&f.r.prosody);
    row
}

/// With `XFT_GAJIM_FIXTURES=DIR`: the stanzas of an xft ↔ Gajim session as Gajim saw them,
/// both ways (`in`: what xft sent), as `DIR/<case>-<initiator|responder>-<kind>.xml`;
/// `xft_initiates` says which side was the initiator. The JIDs are rewritten as in
/// `common/gajim.rs` (initiator romeo, responder juliet).
pub fn save_xft_fixtures(gajim: &GajimPeer, xft_jid: &str, xft_initiates: bool, case: &str) {
    let g = gajim.jid().expect("jid").to_string();
    let (gajim_role, xft_role) = if xft_initiates {
        ("responder", "initiator")
    } else {
        ("initiator", "responder")
    };
    let files: Vec<(String, String)> = gajim
        .stanzas()
        .into_iter()
        .map(|(d, kind, xml)| {
            let role = if d == "out" { gajim_role } else { xft_role };
            (format!("{case}-{role}-{kind}.xml"), xml)
        })
        .collect();
    let (ini, res) = if xft_initiates {
        (xft_jid, g.as_str())
    } else {
        (g.as_str(), xft_jid)
    };
    write_fixtures(
        case,
        &files,
        &[
            (ini, "romeo@montague.example/orchard"),
            (res, "juliet@capulet.example/balcony"),
        ],
    );
}
