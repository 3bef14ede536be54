//! xft (the command-line binary) against a slixmpp 1.17 peer (`peers/slixpeer.py`, driven by
//! `ft_testkit::SlixPeer`), through a real Prosody, both directions: IBB over iq (4096, 8192,
//! 65535) and over message, S5B direct, through Prosody's proxy65 and through `xft proxy`,
//! decline, cancel from each side, an empty file, a name with spaces and non-ASCII
//! characters, two files in one session, and the S5B→IBB fallback. Every transfer compares
//! SHA-256 on disk and asserts both sides' outcome and `xft`'s exit status, and that only
//! 127.0.0.1 was ever offered or dialled (Prosody's log, `xft`'s rows; slixmpp has no
//! streamhost of its own and dials only what it is offered or discovers). Each case appends
//! a row to `target/interop-table/rows.jsonl`; what slixmpp cannot do is a
//! `peer limitation` row, proven by an assertion.

mod common {
    pub mod matrix;
    pub mod slix;
    pub mod xftcli;
}

use std::time::Duration;

use ft_testkit::SlixPeer;

use common::matrix::*;
use common::slix::*;
use common::xftcli::*;

// ---- xft → slixmpp -----------------------------------------------------------------------------

cases! {
    xft_to_slix_ibb_4096 => xft_to_slix(
        Case {
            xft_extra: &["--block-size", "4096"],
            expect_method: Some("ibb-iq"),
            ..Case::new("IBB iq 4096", "ibb-iq")
        },
        false,
    );
    /// slixmpp's receiver takes at most 8192 by default (`max_block_size`).
    xft_to_slix_ibb_8192 => xft_to_slix(
        Case {
            xft_extra: &["--block-size", "8192"],
            expect_method: Some("ibb-iq"),
            ..Case::new("IBB iq 8192 (slixmpp's default max)", "ibb-iq")
        },
        false,
    );
    /// slixmpp's receiver raised to `max_block_size` 65535.
    xft_to_slix_ibb_65535 => xft_to_slix(
        Case {
            peer_common: &["--max-block-size", "65535"],
            xft_extra: &["--block-size", "65535"],
            expect_method: Some("ibb-iq"),
            ..Case::new("IBB iq 65535", "ibb-iq")
        },
        false,
    );
    xft_to_slix_ibb_message => xft_to_slix(
        Case {
            xft_extra: &["--block-size", "4096"],
            ..Case::new("IBB message 4096", "ibb-message")
        },
        true,
    );
    xft_to_slix_s5b_direct => xft_to_slix(
        Case {
            peer_common: &["--prefer", "s5b"],
            expect_method: Some("s5b-direct"),
            ..Case::new("S5B direct", "s5b-direct")
        },
        false,
    );
    xft_to_slix_s5b_proxy65 => xft_to_slix(
        Case {
            peer_common: &["--prefer", "s5b"],
            expect_method: Some("s5b-proxy"),
            ..Case::new("S5B proxy65", "s5b-proxy")
        },
        false,
    );
    xft_to_slix_s5b_xft_proxy => xft_to_slix(
        Case {
            via: Via::XftProxy,
            peer_common: &["--prefer", "s5b"],
            xft_extra: &["--proxy", "xftproxy.localhost"],
            expect_method: Some("s5b-proxy"),
            ..Case::new("S5B xft proxy", "s5b-proxy")
        },
        false,
    );
    xft_to_slix_empty_file => xft_to_slix(
        Case {
            files: &[("empty.bin", 0)],
            ..Case::new("empty file", "auto")
        },
        false,
    );
    xft_to_slix_unicode_name => xft_to_slix(
        Case {
            files: &[(UNICODE, 1_000_000)],
            ..Case::new("name with spaces, non-ASCII", "auto")
        },
        false,
    );
    xft_to_slix_two_files => xft_to_slix(
        Case {
            files: &[("one.bin", 700_000), ("two.bin", 300_000)],
            ..Case::new("two files, one session", "auto")
        },
        false,
    );
}

/// At its default, slixmpp refuses an `<open/>` over 8192 with `resource-constraint`, and
/// xft retries at half the size on the same sid, as XEP-0047 suggests. slixmpp cannot take
/// that retry: `xep_0047` checks (and consumes) the sid's pre-authorisation *before* the
/// block size, so the refused first `<open/>` used it up and the retry gets
/// `cancel/not-acceptable`. xft reports the failure at stage `connect` and exits 1; nothing
/// arrives. (QXmpp, same case, takes the retry: `qxmpp.rs`.)
#[tokio::test]
async fn xft_to_slix_ibb_65535_at_slix_default() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(CLIENT, "xft → peer", "IBB iq 65535 (slixmpp takes 8192)");
    let ibb = slix_source("slixmpp.plugins.xep_0047.ibb");
    let auth = ibb.find("if not await self._accept_stream(iq):").unwrap();
    let size = ibb.find("if size > self.max_block_size:").unwrap();
    assert!(auth < size, "slixmpp checks the block size first now");
    assert!(ibb.contains("del self._preauthed_sids[(jid, sid, ifrom)]"));
    let f = OneFile::new("big-blocks.bin", 300_000, 12).await;
    let (mut peer, mut xft) = f.xft_sends(&[], "ibb-iq", &["--block-size", "65535"]).await;
    let (r, inbox) = (&f.r, &f.inbox);
    let (rows, ok) = xft.finish(BUDGET).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let x = &rows[0];
    assert_eq!(x["stage"], "connect", "slixmpp's limitation changed? {x}");
    assert!(
        x["error"]
            .as_str()
            .is_some_and(|e| e.contains("NotAcceptable")),
        "the retry at a smaller block size is refused: {x}\n{}",
        xft.stderr()
    );
    assert!(!ok, "xft send exits 1");
    assert!(
        peer.wait_any(&["file"], Duration::from_secs(2))
            .await
            .is_err(),
        "no file"
    );
    assert!(std::fs::metadata(inbox.join("big-blocks.bin")).map_or(true, |m| m.len() == 0));
    peer.stop().await;
    assert_prosody_loopback(&r.prosody);
    row.peer_limitation(
        "slixmpp uses up the sid on the refused 65535 open, so xft's retry at a smaller \
         block gets not-acceptable; xft fails at connect, exit 1",
    );
}

/// The libpurple-style fallback (the target answers the S5B offer with `item-not-found`,
/// then takes an IBB `<open/>` on the same sid) is not in slixmpp: `xep_0095.accept()`
/// pre-authorises the sid for the chosen method's plugin only, and `xep_0047` refuses every
/// other `<open/>` (`auto_accept` is off by default: `cancel/not-acceptable`). Shown from
/// the installed source, since no loopback rig makes slixmpp's S5B target fail.
#[tokio::test]
async fn xft_to_slix_fallback() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(CLIENT, "xft → peer", "S5B→IBB fallback, same sid");
    let si = slix_source("slixmpp.plugins.xep_0095.stream_initiation");
    assert!(
        si.contains("method_plugin = self._methods[stream['method']][0]")
            && si.contains("self.xmpp.plugin[method_plugin].api['preauthorize_sid']"),
        "slixmpp's accept() changed: it may pre-authorise more than the chosen method"
    );
    let ibb = slix_source("slixmpp.plugins.xep_0047.ibb");
    assert!(
        ibb.contains("'auto_accept': False") && ibb.contains("condition='not-acceptable'"),
        "slixmpp's IBB may take unnegotiated opens now"
    );
    row.peer_limitation(
        "slixmpp's target takes IBB only on a sid negotiated for IBB (xep_0095 pre-authorises \
         the chosen method; other opens get not-acceptable)",
    );
}

#[tokio::test]
async fn slix_declines_xft() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let _row = Row::new(CLIENT, "xft → peer", "decline");
    let f = OneFile::new("unwanted.bin", 100_000, 5).await;
    let (mut peer, mut xft) = f.xft_sends(&["--decline"], "auto", &[]).await;
    let (r, inbox) = (&f.r, &f.inbox);
    let (rows, ok) = xft.finish(BUDGET).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("declined")),
        "the decline is reported: {}",
        rows[0]
    );
    assert_eq!(rows[0]["stage"], "offer", "{}", rows[0]);
    assert!(!ok, "xft send exits 1 after a decline");
    let ev = peer.wait_event("declined").await.unwrap();
    assert_eq!(ev["name"], "unwanted.bin", "{ev}");
    assert!(!inbox.join("unwanted.bin").exists());
    assert!(peer.wait_exit(BUDGET).await.unwrap(), "{}", peer.stderr());
    assert_prosody_loopback(&r.prosody);
}

/// slixmpp, receiving, ends the IBB stream (`close()`) once 100 kB of 2 MB arrived.
#[tokio::test]
async fn slix_cancels_receiving_from_xft() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let _row = Row::new(CLIENT, "xft → peer", "cancel by peer");
    let size = 2_000_000;
    let f = OneFile::new("cancelled.bin", size, 7).await;
    let (mut peer, mut xft) = f
        .xft_sends(
            &["--cancel-after", "100000"],
            "ibb-iq",
            &["--block-size", "4096"],
        )
        .await;
    let (r, inbox, data) = (&f.r, &f.inbox, &f.data);
    let ev = peer.wait_any(&["file", "cancelled"], BUDGET).await.unwrap();
    assert_eq!(ev["event"], "cancelled", "{ev}");
    assert!(ev["bytes"].as_u64() < Some(size as u64), "{ev}");
    let (rows, ok) = xft.finish(BUDGET).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        !rows[0]["error"].is_null(),
        "xft reports the cancel: {}",
        rows[0]
    );
    assert!(!ok, "xft send exits 1 after the peer cancelled");
    assert!(peer.wait_exit(BUDGET).await.unwrap(), "{}", peer.stderr());
    assert_ne!(sha256_file(&inbox.join("cancelled.bin")), sha256_hex(data));
    assert_prosody_loopback(&r.prosody);
}

/// `xft send` dies (killed by its pid) mid-transfer over IBB: slixmpp's IBB receiver has no
/// inactivity timeout and nothing tells it the sender is gone (no `<close/>`), so it waits
/// on; it must never report the file.
#[tokio::test]
async fn xft_dies_sending_to_slix() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(CLIENT, "xft → peer", "cancel by xft");
    let size = 2_000_000;
    let f = OneFile::new("interrupted.bin", size, 10).await;
    let (mut peer, mut xft) = f.xft_sends(&[], "ibb-iq", &["--block-size", "4096"]).await;
    let (r, inbox, data) = (&f.r, &f.inbox, &f.data);
    wait_partial(inbox, 64 * 1024).await;
    xft.kill().await;
    let landed = std::fs::metadata(inbox.join("interrupted.bin"))
        .unwrap()
        .len();
    assert!(landed < size as u64, "killed mid-transfer: {landed}");
    match peer
        .wait_any(&["file", "cancelled"], Duration::from_secs(6))
        .await
    {
        Ok(ev) => {
            assert_eq!(ev["event"], "cancelled", "{ev}");
            row.note = "receiver cancelled".into();
        }
        Err(ft_testkit::Error::Timeout { .. }) => {
            row.peer_limitation("receiver waits on (no IBB inactivity timeout)");
        }
        Err(e) => panic!("{e}"),
    }
    assert_ne!(
        sha256_file(&inbox.join("interrupted.bin")),
        sha256_hex(data)
    );
    peer.stop().await;
    assert_prosody_loopback(&r.prosody);
}

// ---- slixmpp → xft -----------------------------------------------------------------------------

cases! {
    slix_to_xft_ibb_4096 => slix_to_xft(
        Case {
            peer_common: &["--block-size", "4096"],
            expect_method: Some("ibb-iq"),
            ..Case::new("IBB iq 4096", "auto")
        },
        "ibb-iq",
    );
    slix_to_xft_ibb_65535 => slix_to_xft(
        Case {
            peer_common: &["--block-size", "65535"],
            expect_method: Some("ibb-iq"),
            ..Case::new("IBB iq 65535", "auto")
        },
        "ibb-iq",
    );
    slix_to_xft_ibb_message => slix_to_xft(
        Case {
            peer_common: &["--block-size", "4096"],
            expect_method: Some("ibb-message"),
            ..Case::new("IBB message 4096", "auto")
        },
        "ibb-message",
    );
    slix_to_xft_s5b_proxy65 => slix_to_xft(
        Case {
            expect_method: Some("s5b-proxy"),
            ..Case::new("S5B proxy65", "auto")
        },
        "s5b",
    );
    slix_to_xft_s5b_xft_proxy => slix_to_xft(
        Case {
            via: Via::XftProxy,
            peer_common: &["--proxy", "xftproxy.localhost"],
            xft_extra: &["--proxy", "xftproxy.localhost"],
            expect_method: Some("s5b-proxy"),
            ..Case::new("S5B xft proxy", "auto")
        },
        "s5b",
    );
    slix_to_xft_empty_file => slix_to_xft(
        Case {
            files: &[("empty.bin", 0)],
            expect_method: Some("ibb-iq"),
            ..Case::new("empty file", "auto")
        },
        "ibb-iq",
    );
    slix_to_xft_unicode_name => slix_to_xft(
        Case {
            files: &[(UNICODE, 1_000_000)],
            ..Case::new("name with spaces, non-ASCII", "auto")
        },
        "s5b",
    );
    /// Two `send`s in turn (slixmpp offers one file per run) against one `xft recv --count 2`.
    slix_to_xft_two_files => slix_to_xft(
        Case {
            files: &[("one.bin", 700_000), ("two.bin", 300_000)],
            ..Case::new("two files, one session", "auto")
        },
        "ibb-iq",
    );
}

/// slixmpp's `xep_0065` has no listener of its own and offers only proxies: with none on the
/// server it cannot offer S5B at all (no offer reaches xft). Its source has no server socket.
#[tokio::test]
async fn slix_to_xft_s5b_direct() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(CLIENT, "peer → xft", "S5B direct");
    let s5b = slix_source("slixmpp.plugins.xep_0065.proxy");
    assert!(
        !s5b.contains("create_server") && !s5b.contains("start_server"),
        "slixmpp's xep_0065 has a listener now: write the S5B direct case"
    );
    let prosody = prosody(false); // no proxy65, no component: no proxy to discover
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let mut xft = xft_recv(&prosody, &inbox, 1, &[]).await;
    let file = write(dir.path(), "direct.bin", &content(100_000, 11));
    let to = format!("{}/xft", prosody.jid("bob"));
    let mut peer = SlixPeer::send(&prosody, "alice", &to, &file, "s5b", &[])
        .await
        .unwrap();
    let r2 = peer.wait_any(&["sent", "cancelled"], BUDGET).await;
    assert!(
        matches!(&r2, Err(ft_testkit::Error::Peer { message, .. }) if message.contains("no SOCKS5 proxy")),
        "slixmpp sent by S5B without a proxy? {r2:?}"
    );
    assert!(!peer.wait_exit(BUDGET).await.unwrap());
    assert!(!inbox.join("direct.bin").exists());
    // xft saw no offer at all: nothing printed, still waiting.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), xft.row(BUDGET))
            .await
            .is_err(),
        "xft got an offer"
    );
    xft.kill().await;
    assert_prosody_loopback(&prosody);
    row.peer_limitation("slixmpp has no S5B listener; it offers proxies only");
}

/// slixmpp's sending side has no fallback: its offer carries one stream-method, and neither
/// `xep_0095` nor `xep_0096` ever opens a bytestream (the application does, by the method
/// chosen), so a failed S5B is never followed by IBB on the same sid.
#[tokio::test]
async fn slix_to_xft_fallback() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(CLIENT, "peer → xft", "S5B→IBB fallback, same sid");
    for module in [
        "slixmpp.plugins.xep_0095.stream_initiation",
        "slixmpp.plugins.xep_0096.file_transfer",
    ] {
        let src = slix_source(module);
        assert!(
            !src.contains("open_stream") && !src.contains("handshake"),
            "{module} opens bytestreams now: write the fallback case"
        );
    }
    row.peer_limitation(
        "slixmpp's SI layer opens no bytestream itself, so nothing falls back after S5B fails",
    );
}

#[tokio::test]
async fn xft_declines_slix() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let _row = Row::new(CLIENT, "peer → xft", "decline");
    let f = OneFile::new("unwanted.bin", 100_000, 6).await;
    let carol = f.r.prosody.jid("carol").to_string();
    let (mut xft, mut peer) = f.slix_sends(&["--from", &carol], "ibb-iq", &[]).await;
    let (r, inbox) = (&f.r, &f.inbox);
    let ev = peer.wait_any(&["sent", "cancelled"], BUDGET).await;
    assert!(
        matches!(&ev, Err(ft_testkit::Error::Peer { message, .. }) if message.contains("forbidden")),
        "slixmpp sees the refusal: {ev:?}"
    );
    assert!(!peer.wait_exit(BUDGET).await.unwrap());
    let x = xft.row(BUDGET).await.expect("a refused row");
    assert_eq!(x["kind"], "refused", "{x}");
    assert_eq!(x["file"], "unwanted.bin", "{x}");
    assert!(
        x["error"]
            .as_str()
            .is_some_and(|e| e.contains("answered forbidden")),
        "{x}"
    );
    // A declined sender does not count toward --count: xft recv waits on for carol.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), xft.child.wait())
            .await
            .is_err(),
        "xft recv waits on after declining a sender"
    );
    xft.kill().await;
    assert!(!inbox.join("unwanted.bin").exists());
    assert_prosody_loopback(&r.prosody);
}

/// slixmpp, sending, closes the IBB stream once 100 kB of 2 MB are out.
#[tokio::test]
async fn slix_cancels_sending_to_xft() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let _row = Row::new(CLIENT, "peer → xft", "cancel by peer");
    let f = OneFile::new("cancelled.bin", 2_000_000, 8).await;
    let (mut xft, mut peer) = f
        .slix_sends(&[], "ibb-iq", &["--cancel-after", "100000"])
        .await;
    let (r, inbox, data) = (&f.r, &f.inbox, &f.data);
    let ev = peer.wait_any(&["sent", "cancelled"], BUDGET).await.unwrap();
    assert_eq!(ev["event"], "cancelled", "{ev}");
    assert!(peer.wait_exit(BUDGET).await.unwrap(), "{}", peer.stderr());
    let x = xft
        .row(BUDGET)
        .await
        .unwrap_or_else(|| panic!("no row: {}", xft.stderr()));
    assert!(!x["error"].is_null(), "xft reports the cancel: {x}");
    let (_, ok) = xft.finish(BUDGET).await;
    assert!(!ok, "xft recv exits 1 after the sender cancelled");
    let landed = inbox.join("cancelled.bin");
    assert!(
        !landed.exists() || sha256_file(&landed) != sha256_hex(data),
        "no complete file after a cancel"
    );
    assert_prosody_loopback(&r.prosody);
}

/// `xft recv` dies (killed by its pid) mid-transfer over IBB: slixmpp's sender must report
/// a failure (the next `<data/>` bounces `service-unavailable`) and never `sent`; it may
/// instead wait for the acknowledgement lost with xft's session (its own 60 s timeout).
#[tokio::test]
async fn xft_dies_receiving_from_slix() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(CLIENT, "peer → xft", "cancel by xft");
    let f = OneFile::new("interrupted.bin", 1_000_000, 9).await;
    let (mut xft, mut peer) = f.slix_sends(&[], "ibb-iq", &["--pace", "0.005"]).await;
    let (r, inbox) = (&f.r, &f.inbox);
    wait_partial(inbox, 64 * 1024).await;
    xft.kill().await;
    match peer
        .wait_any(&["sent", "cancelled"], Duration::from_secs(10))
        .await
    {
        Err(ft_testkit::Error::Peer { message, .. }) => {
            assert!(!peer.wait_exit(BUDGET).await.unwrap());
            row.note = format!("sender fails: {message}");
        }
        Err(ft_testkit::Error::Timeout { .. }) => {
            row.peer_limitation("sender waits for the lost IBB ack (its 60 s timeout)");
        }
        other => panic!("slixmpp must not finish: {other:?}"),
    }
    assert!(
        !inbox.join("interrupted.bin").exists() || {
            let got = std::fs::read(inbox.join("interrupted.bin")).unwrap();
            got.len() < 1_000_000
        }
    );
    peer.stop().await;
    assert_prosody_loopback(&r.prosody);
}
