//! xft (the command-line binary) against a headless libpurple 2.14 peer (`peers/purplepeer`,
//! Pidgin's library with `prpl-jabber`), through a real Prosody, both directions: IBB, S5B
//! direct, through Prosody's proxy65 and through `xft proxy`, decline, cancel from each side,
//! an empty file, a name with spaces and non-ASCII characters, two files in one session, and
//! the libpurple-style fallback (every streamhost dead via the peer's `--dead-streamhosts`,
//! then IBB on the same sid).
//! Every case compares SHA-256 on disk, asserts both sides' outcome and that only 127.0.0.1
//! was ever offered or dialled, and appends a row to `target/interop-table/rows.jsonl`.

mod common {
    pub mod fallback;
    pub mod matrix;
    pub mod xftcli;
}

use common::fallback::*;
use common::matrix::*;
use common::xftcli::*;
use ft_testkit::{PeerKind, Purple, PurplePeer};

const UNICODE: &str = "ünïcødé name ✓ with spaces.bin";

// ---- xft → libpurple ---------------------------------------------------------------------------

cases! {
    xft_to_purple_ibb_4096 => xft_to_peer::<Purple>(Case {
        xft_extra: &["--block-size", "4096"],
        expect_method: Some("ibb-iq"),
        ..Case::new("IBB iq 4096", "ibb-iq")
    });
    xft_to_purple_ibb_65535 => xft_to_peer::<Purple>(Case {
        xft_extra: &["--block-size", "65535"],
        expect_method: Some("ibb-iq"),
        ..Case::new("IBB iq 65535", "ibb-iq")
    });
    xft_to_purple_ibb_message => xft_to_peer_unconfirmed::<Purple>(Case {
        xft_extra: &["--block-size", "4096"],
        expect_method: Some("ibb-message"),
        ..Case::new("IBB message 4096", "ibb-message")
    });
    xft_to_purple_s5b_direct => xft_to_peer::<Purple>(Case {
        expect_method: Some("s5b-direct"),
        ..Case::new("S5B direct", "s5b-direct")
    });
    xft_to_purple_s5b_proxy65 => xft_to_peer::<Purple>(Case {
        expect_method: Some("s5b-proxy"),
        ..Case::new("S5B proxy65", "s5b-proxy")
    });
    xft_to_purple_s5b_xft_proxy => xft_to_peer::<Purple>(Case {
        via: Via::XftProxy,
        xft_extra: &["--proxy", "xftproxy.localhost"],
        expect_method: Some("s5b-proxy"),
        ..Case::new("S5B xft proxy", "s5b-proxy")
    });
}

/// libpurple's own limitation: it cannot receive an empty file by S5B. It answers
/// `<streamhost-used/>`, connects, reads end-of-stream at 0 of 0 bytes and cancels
/// ("alice@localhost/xft cancelled the transfer of empty.bin"), leaving an empty file; xft did
/// everything right (0 bytes written, socket closed) and reports success.
#[tokio::test]
async fn xft_to_purple_empty_file() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(Purple::CLIENT, "xft → peer", "empty file");
    let prosody = prosody(true);
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let file = write(dir.path(), "empty.bin", &[]);
    let mut peer = PurplePeer::recv(&prosody, "bob", &[], &inbox, 1, &[])
        .await
        .unwrap();
    let to = peer.jid().unwrap().to_string();
    let mut xft = xft_send(&prosody, &to, "auto", &[], &[&file]);
    let (rows, ok) = xft.finish(BUDGET).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0]["error"].is_null(), "{}", rows[0]);
    assert_eq!(rows[0]["bytes"], 0, "{}", rows[0]);
    assert_eq!(rows[0]["sha256"], sha256_hex(&[]), "{}", rows[0]);
    assert!(ok);
    let ev = peer.wait_any(&["file", "cancelled"], BUDGET).await.unwrap();
    assert_eq!(
        ev["event"], "cancelled",
        "libpurple's limitation changed? {ev}"
    );
    assert_eq!(ev["by"], "remote", "{ev}");
    assert_eq!(std::fs::metadata(inbox.join("empty.bin")).unwrap().len(), 0);
    assert_loopback(&peer, &prosody);
    row.peer_limitation("libpurple cancels an empty S5B stream at EOF; xft ok");
}

cases! {
    xft_to_purple_unicode_name => xft_to_peer::<Purple>(Case {
        files: &[(UNICODE, 1_000_000)],
        ..Case::new("name with spaces, non-ASCII", "auto")
    });
    /// Small files by S5B, which the peer reads whole and then closes the socket at once
    /// (libpurple stops at `size`). The peer gets every file complete with the right SHA-256, but xft
    /// sometimes (about 1 run in 4 for one 200 kB file here) reports `"cancelled by the peer"`
    /// at stage `stream` with `bytes: 0` and exits 1: it takes the receiver's close after the
    /// last byte for a cancel.
    xft_to_purple_small_files_by_s5b => xft_to_peer::<Purple>(Case {
        files: &[
            ("small-1.bin", 200_000),
            ("small-2.bin", 200_000),
            ("small-3.bin", 200_000),
            ("small-4.bin", 200_000),
            ("small-5.bin", 200_000),
        ],
        expect_method: Some("s5b-direct"),
        ..Case::new("5 small files by S5B", "s5b-direct")
    });
    xft_to_purple_two_files => xft_to_peer::<Purple>(Case {
        files: &[("one.bin", 700_000), ("two.bin", 300_000)],
        ..Case::new("two files, one session", "auto")
    });
    purple_declines_xft => peer_declines::<Purple>("auto");
    xft_dies_sending_to_purple =>
        xft_dies_sending::<Purple>("ibb-iq", &["--block-size", "4096"], true);
    purple_cancels_receiving_from_xft =>
        peer_cancels_receiving::<Purple>("ibb-iq", &["--block-size", "4096"], 100_000);
}

// ---- libpurple → xft ---------------------------------------------------------------------------

cases! {
    purple_to_xft_ibb => peer_to_xft::<Purple>(Case {
        peer_common: &["--methods", "ibb"],
        files: &[("payload.bin", 300_000)],
        expect_method: Some("ibb-iq"),
        ..Case::new("IBB iq (libpurple's 4096)", "auto")
    });
    purple_to_xft_s5b_direct => peer_to_xft::<Purple>(Case {
        peer_common: &["--methods", "s5b"],
        expect_method: Some("s5b-direct"),
        ..Case::new("S5B direct", "auto")
    });
    purple_to_xft_s5b_proxy65 => peer_to_xft::<Purple>(Case {
        peer_common: &["--methods", "s5b", "--no-direct"],
        expect_method: Some("s5b-proxy"),
        ..Case::new("S5B proxy65", "s5b-proxy")
    });
    purple_to_xft_s5b_xft_proxy => peer_to_xft::<Purple>(Case {
        via: Via::XftProxy,
        peer_common: &["--methods", "s5b", "--no-direct"],
        xft_extra: &["--proxy", "xftproxy.localhost"],
        expect_method: Some("s5b-proxy"),
        ..Case::new("S5B xft proxy", "s5b-proxy")
    });
}

/// libpurple's own limitation: sending an empty file by S5B it never completes (nothing to
/// write, so its transfer never ends; no `file-send-complete`). xft receives the file, 0
/// bytes with the right hash, once libpurple closes the stream (here: when it gives up).
#[tokio::test]
async fn purple_to_xft_empty_file() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(Purple::CLIENT, "peer → xft", "empty file");
    let prosody = prosody(true);
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let file = write(dir.path(), "empty.bin", &[]);
    let mut xft = xft_recv(&prosody, &inbox, 1, &[]).await;
    let to = format!("{}/xft", prosody.jid("bob"));
    let mut peer = PurplePeer::send(&prosody, "alice", &["--timeout", "6"], &to, &[&file], &[])
        .await
        .unwrap();
    let r = peer.wait_any(&["sent", "cancelled"], BUDGET).await;
    assert!(
        matches!(&r, Err(ft_testkit::Error::Peer { message, .. }) if message.contains("timeout")),
        "libpurple's limitation changed? {r:?}"
    );
    let x = xft.row(BUDGET).await.expect("a row once libpurple closed");
    assert!(x["error"].is_null(), "{x}");
    assert_eq!(x["bytes"], 0, "{x}");
    assert_eq!(x["sha256"], sha256_hex(&[]), "{x}");
    assert_eq!(std::fs::metadata(inbox.join("empty.bin")).unwrap().len(), 0);
    assert!(xft.finish(BUDGET).await.1);
    assert_loopback(&peer, &prosody);
    row.peer_limitation("libpurple never completes an empty S5B send; xft ok at EOF");
}

cases! {
    purple_to_xft_unicode_name => peer_to_xft::<Purple>(Case {
        files: &[(UNICODE, 1_000_000)],
        ..Case::new("name with spaces, non-ASCII", "auto")
    });
    purple_to_xft_two_files => peer_to_xft::<Purple>(Case {
        files: &[("one.bin", 700_000), ("two.bin", 300_000)],
        ..Case::new("two files, one session", "auto")
    });
    xft_declines_purple => xft_declines::<Purple>();
    purple_cancels_sending_to_xft => peer_cancels_sending::<Purple>(&["--methods", "ibb"], 100_000);
    xft_dies_receiving_from_purple => xft_dies_receiving::<Purple>(&["--methods", "ibb"], true);
}

// ---- the libpurple-style fallback: every streamhost dead, then IBB on the same sid -------------

/// xft's streamhosts are dead from libpurple's view (`--dead-streamhosts` rewrites every
/// received `<streamhost/>` to a port on 127.0.0.1 where nothing listens): libpurple tries each
/// for 5 s, answers `item-not-found`, and xft opens IBB on the same sid.
#[tokio::test]
async fn xft_to_purple_fallback_dead_streamhosts() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(Purple::CLIENT, "xft → peer", "S5B dead → IBB fallback");
    let f = fallback_xft_to_peer::<Purple>(true).await;
    assert_fallback_ok(&f, "received", "file");
    // On the wire (libpurple's debug log): its item-not-found, then xft's IBB open on the sid.
    let log = f.peer.stderr();
    let refusal = log_line(&log, &["jabber: Sending", "type='error'", "item-not-found"])
        .unwrap_or_else(|| panic!("libpurple sent no item-not-found:\n{log}"));
    assert!(
        refusal.contains("<error code='404' type='cancel'><item-not-found"),
        "{refusal}"
    );
    let si = log_line(&log, &["jabber: Recv", "<si "]).expect("the SI offer");
    let open = log_line(
        &log,
        &["jabber: Recv", "<open ", "http://jabber.org/protocol/ibb"],
    )
    .unwrap_or_else(|| panic!("xft opened no IBB:\n{log}"));
    assert_eq!(
        attr_in(open, "open", "sid"),
        attr_in(si, "si", "id"),
        "the same sid:\n{si}\n{open}"
    );
    row.note = "ibb-iq after item-not-found".into();
}

/// libpurple's own offer is dead (its streamhost and proxy65's rewritten to a dead port): xft
/// fails each within `--s5b-budget`, answers `item-not-found`, libpurple opens IBB on the sid.
#[tokio::test]
async fn purple_to_xft_fallback_dead_streamhosts() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(Purple::CLIENT, "peer → xft", "S5B dead → IBB fallback");
    let f = fallback_peer_to_xft::<Purple>().await;
    assert_fallback_ok(&f, "offer", "sent");
    // On the wire (libpurple's debug log): xft's item-not-found, then libpurple's IBB open.
    let log = f.peer.stderr();
    let query = log_line(
        &log,
        &["jabber: Sending", "<query ", "protocol/bytestreams' sid="],
    )
    .unwrap_or_else(|| panic!("no bytestreams offer:\n{log}"));
    let qid = attr_in(query, "iq", "id").expect("query id");
    let refusal = log_line(
        &log,
        &["jabber: Recv", "type='error'", &format!("id='{qid}'")],
    )
    .unwrap_or_else(|| panic!("xft did not refuse the streamhosts:\n{log}"));
    assert!(
        refusal.contains("<error type='cancel'><item-not-found"),
        "{refusal}"
    );
    let si = log_line(&log, &["jabber: Sending", "<si "]).expect("the SI offer");
    let open = log_line(
        &log,
        &[
            "jabber: Sending",
            "<open ",
            "http://jabber.org/protocol/ibb",
        ],
    )
    .unwrap_or_else(|| panic!("libpurple opened no IBB:\n{log}"));
    assert_eq!(
        attr_in(open, "open", "sid"),
        attr_in(si, "si", "id"),
        "the same sid:\n{si}\n{open}"
    );
    assert_eq!(attr_in(query, "query", "sid"), attr_in(si, "si", "id"));
    row.note = "ibb-iq after item-not-found".into();
}
