//! xft (the command-line binary) → Gajim 1.7.3 (the headless `peers/gajimpeer`) by Jingle
//! File Transfer through a real Prosody: S5B direct, S5B through Prosody's proxy65 and
//! through `xft proxy`, IBB, a file over 10 MB, decline and cancel by Gajim, xft killed
//! mid-transfer; and the facade's choice by disco: `xft send` (stack auto) to slixmpp (SI
//! only) uses SI, to Gajim (Jingle only) Jingle, as the JSON row's `stack` says. Every
//! delivered file has the source's SHA-256 on disk and in both sides' reports; every case
//! checks that Gajim offered, dialled and bound only loopback (`assert_loopback_only`), and
//! Prosody's log and xft's rows name only 127.0.0.1. Gajim → xft is `gajim_xft_recv.rs`.
//!
//! With `XFT_GAJIM_FIXTURES=DIR` the stanzas of each session (both sides', as Gajim saw
//! them) are written to DIR as `xft-to-gajim-<case>-…` (see `fixtures/gajim/README.md`).

mod common {
    pub mod gajim;
    pub mod gajim_xft;
    pub mod matrix;
    pub mod xftcli;
}

use common::gajim::{GajimCase, XFT_PROXY, all_kinds, wait_stanza};
use common::gajim_xft::*;
use common::matrix::Via;
use common::xftcli::*;
use ft_testkit::{GajimOptions, SlixPeer};

fn alice_xft(t: &ToGajim) -> String {
    format!("{}/xft", t.r.prosody.jid("alice"))
}

#[tokio::test]
async fn xft_to_gajim_s5b_direct() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(CLIENT, "xft → peer", "jingle s5b direct");
    let mut t = xft_to_gajim(to_gajim(300_000, "s5b-direct")).await;
    let (x, _) = expect_to_gajim(&mut t, "s5b-direct").await;
    assert_eq!(
        x["streamhost"]
            .as_str()
            .map(|s| s.starts_with("127.0.0.1:")),
        Some(true),
        "{x}"
    );
    // Gajim dialled our 127.0.0.1 candidate.
    assert!(
        t.gajim
            .events()
            .iter()
            .any(|v| v["event"] == "dial" && v["host"] == "127.0.0.1"),
        "no loopback dial by Gajim"
    );
    save_xft_fixtures(&t.gajim, &alice_xft(&t), true, "xft-to-gajim-s5b-direct");
    row.note = "jingle s5b-direct".into();
}

#[tokio::test]
async fn xft_to_gajim_s5b_through_prosody_proxy65() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(CLIENT, "xft → peer", "jingle s5b proxy65");
    let mut t = xft_to_gajim(to_gajim(300_000, "s5b-proxy")).await;
    let (x, _) = expect_to_gajim(&mut t, "s5b-proxy").await;
    let kinds = all_kinds(&t.gajim);
    assert!(
        kinds.contains(&"in transport-info-activated".to_owned()),
        "xft activated the proxy and said so: {kinds:?}"
    );
    save_xft_fixtures(&t.gajim, &alice_xft(&t), true, "xft-to-gajim-s5b-proxy65");
    row.note = format!("jingle s5b-proxy via {}", x["streamhost"]);
}

#[tokio::test]
async fn xft_to_gajim_s5b_through_xft_proxy() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(CLIENT, "xft → peer", "jingle s5b xft proxy");
    let mut t = xft_to_gajim(GajimCase {
        via: Via::XftProxy,
        other_extra: &["--proxy", XFT_PROXY],
        ..to_gajim(300_000, "s5b-proxy")
    })
    .await;
    expect_to_gajim(&mut t, "s5b-proxy").await;
    row.note = "jingle s5b-proxy via xft proxy".into();
}

#[tokio::test]
async fn xft_to_gajim_ibb() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(CLIENT, "xft → peer", "jingle ibb");
    let mut t = xft_to_gajim(to_gajim(200_000, "ibb")).await;
    expect_to_gajim(&mut t, "ibb-iq").await;
    let kinds = all_kinds(&t.gajim);
    assert!(kinds.contains(&"in ibb-open".to_owned()), "{kinds:?}");
    save_xft_fixtures(&t.gajim, &alice_xft(&t), true, "xft-to-gajim-ibb");
    row.note = "jingle ibb-iq".into();
}

/// xft's own S5B → IBB fallback with Gajim as the responder: Gajim dials none of xft's
/// candidates (`--no-dial`) and offers none of its own, so both sides send candidate-error;
/// xft sends transport-replace to IBB, Gajim accepts it and the file arrives over IBB in
/// the same session.
#[tokio::test]
async fn xft_to_gajim_s5b_to_ibb_fallback() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(CLIENT, "xft → peer", "jingle s5b→ibb fallback");
    let opts = GajimOptions {
        dial: false,
        ..gajim_receiver()
    };
    let mut t = xft_to_gajim(GajimCase {
        gajim: opts,
        ..to_gajim(200_000, "auto")
    })
    .await;
    let (x, _) = expect_to_gajim(&mut t, "ibb-iq").await;
    assert_eq!(x["fallback"], true, "{x}");
    let kinds = all_kinds(&t.gajim);
    for k in [
        "in transport-replace",
        "out transport-accept",
        "in ibb-open",
    ] {
        assert!(kinds.contains(&k.to_owned()), "{k}: {kinds:?}");
    }
    save_xft_fixtures(&t.gajim, &alice_xft(&t), true, "xft-to-gajim-fallback");
    row.note = "xft's transport-replace to IBB, accepted by Gajim".into();
}

/// A file over 10 MB (10,500,000 bytes): whatever way xft gives its hash (in the offer or
/// in a session-info checksum), Gajim checks it.
#[tokio::test]
async fn xft_to_gajim_over_10_mb() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(CLIENT, "xft → peer", "jingle over 10 MB");
    let mut t = xft_to_gajim(to_gajim(10_500_000, "s5b-direct")).await;
    let (_, file) = expect_to_gajim(&mut t, "s5b-direct").await;
    assert_eq!(file["size"], 10_500_000);
    row.note = format!("hash {} checked by Gajim", file["hash_algo"]);
}

#[tokio::test]
async fn gajim_declines_xft() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let _row = Row::new(CLIENT, "xft → peer", "jingle decline by peer");
    let mut t = xft_to_gajim(GajimCase {
        gajim_extra: &["--decline"],
        ..to_gajim(50_000, "auto")
    })
    .await;
    t.gajim.wait_event("declined").await.expect("declined");
    let (rows, ok) = t.xft.finish(DONE).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let x = &rows[0];
    assert_eq!(x["stage"], "offer", "{x}");
    assert!(
        x["error"].as_str().is_some_and(|e| e.contains("declin")),
        "{x}"
    );
    assert_eq!(x["stack"], "jingle", "{x}");
    assert!(!ok, "xft send exits 1");
    assert!(
        std::fs::read_dir(&t.inbox).unwrap().next().is_none(),
        "nothing written"
    );
    assert_eq!(t.gajim.finish(DONE).await.unwrap(), Some(0));
    t.assert_loopback();
}

/// Gajim cancels after 40,000 bytes of an IBB stream (session-terminate `<cancel/>`): xft
/// reports the failure and exits 1.
#[tokio::test]
async fn gajim_cancels_receiving_from_xft() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let _row = Row::new(CLIENT, "xft → peer", "jingle cancel by peer");
    let mut t = xft_to_gajim(GajimCase {
        gajim_extra: &["--cancel-after", "40000"],
        ..to_gajim(2_000_000, "ibb")
    })
    .await;
    let ev = t
        .gajim
        .wait_any(&["cancelled", "file"], DONE)
        .await
        .unwrap();
    assert_eq!(ev["event"], "cancelled", "{ev}");
    assert_eq!(ev["by"], "us", "{ev}");
    let (rows, ok) = t.xft.finish(DONE).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        !rows[0]["error"].is_null(),
        "xft reports the cancel: {}",
        rows[0]
    );
    assert_eq!(rows[0]["stack"], "jingle", "{}", rows[0]);
    assert!(!ok, "xft send exits 1 after the peer cancelled");
    assert_eq!(t.gajim.finish(DONE).await.unwrap(), Some(0));
    t.assert_loopback();
}

/// xft is killed (by its pid) mid-stream: Gajim never reports the file as complete. Pinned
/// Gajim limit: it writes straight to the final name (no `.part`) and leaves what arrived
/// there, shorter than the offer.
#[tokio::test]
async fn xft_dies_sending_to_gajim() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(CLIENT, "xft → peer", "jingle cancel by xft");
    let mut t = xft_to_gajim(to_gajim(3_000_000, "ibb")).await;
    // The stream is under way once Gajim accepted and IBB opened.
    wait_stanza(&mut t.gajim, "in", "ibb-open").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    t.xft.kill().await;
    match t
        .gajim
        .wait_any(
            &["file", "cancelled", "transfer-error"],
            std::time::Duration::from_secs(20),
        )
        .await
    {
        Ok(ev) => assert_ne!(
            ev["event"], "file",
            "a partial file reported complete: {ev}"
        ),
        Err(ft_testkit::Error::Timeout { .. }) => {
            row.peer_limitation("Gajim waits on (no IBB inactivity timeout) after the sender died");
        }
        Err(e) => panic!("{e}"),
    }
    let left = t.inbox.join(t.source.file_name().unwrap());
    let len = std::fs::metadata(&left).map(|m| m.len()).unwrap_or(0);
    assert!(len < 3_000_000, "{len} bytes left");
    t.gajim.stop().await;
    t.assert_loopback();
}

/// The facade's choice by disco, through the binary: `xft send` with the default stack
/// (auto) to slixmpp, which lists only SI, sends by SI; to Gajim, which lists only Jingle,
/// by Jingle. Both files arrive whole.
#[tokio::test]
async fn xft_send_picks_si_for_slixmpp_and_jingle_for_gajim_by_disco() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let _row = Row::new(
        CLIENT,
        "xft → peer",
        "stack chosen by disco (SI to slixmpp)",
    );
    let r = common::matrix::rig(Via::Prosody).await;
    let inbox = r.dir.path().join("slix");
    let data = content(100_000, 11);
    let file = write(r.dir.path(), "to-slixmpp.bin", &data);
    let mut slix = SlixPeer::recv(&r.prosody, "carol", &inbox, 1, &[])
        .await
        .unwrap();
    let to = slix.jid().unwrap().to_string();
    let mut xft = xft_send(&r.prosody, &to, "auto", &[], &[&file]);
    let (rows, ok) = xft.finish(BUDGET).await;
    assert_eq!(rows.len(), 1, "{rows:?}\n{}", xft.stderr());
    assert!(rows[0]["error"].is_null(), "{}\n{}", rows[0], slix.stderr());
    assert_eq!(rows[0]["stack"], "si", "slixmpp lists only SI: {}", rows[0]);
    assert!(ok);
    assert_eq!(
        sha256_file(&inbox.join("to-slixmpp.bin")),
        sha256_hex(&data)
    );
    assert!(slix.wait_exit(BUDGET).await.unwrap(), "{}", slix.stderr());
    drop(r);

    let mut t = xft_to_gajim(to_gajim(100_000, "auto")).await;
    let (x, _) = expect_to_gajim(&mut t, "s5b-direct").await;
    assert_eq!(x["stack"], "jingle", "Gajim lists only Jingle: {x}");
}
