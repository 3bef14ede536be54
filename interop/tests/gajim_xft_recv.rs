//! Gajim 1.7.3 (the headless `peers/gajimpeer`) → xft (the command-line binary, `xft recv`)
//! by Jingle File Transfer through a real Prosody: S5B direct (Gajim's 127.0.0.1
//! candidate), S5B through Prosody's proxy65 and through `xft proxy` (Gajim takes any
//! proxy JID in its `file_transfer_proxies`), IBB, a file over 10 MB (Gajim's blake2b-512
//! comes in session-info), decline by xft, cancel by Gajim, xft killed mid-transfer, and
//! Gajim's dead S5B → IBB fallback, pinned. Each delivered file has the source's SHA-256 on
//! disk and in both sides' reports; every case checks loopback only on Gajim's side
//! (`assert_loopback_only`), in Prosody's log and in xft's rows.

mod common {
    pub mod gajim;
    pub mod gajim_xft;
    pub mod matrix;
    pub mod xftcli;
}

use std::time::Duration;

use common::gajim::{CAROL, GajimCase, XFT_PROXY, kinds, wait_stanza};
use common::gajim_xft::*;
use common::matrix::Via;
use common::xftcli::*;
use ft_testkit::GajimOptions;

fn bob_xft(f: &FromGajim) -> String {
    format!("{}/xft", f.r.prosody.jid("bob"))
}

#[tokio::test]
async fn gajim_to_xft_s5b_direct() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(CLIENT, "peer → xft", "jingle s5b direct");
    let mut f = gajim_to_xft(GajimCase::new(300_000, "s5b")).await;
    let x = expect_from_gajim(&mut f, "s5b-direct").await;
    assert_eq!(
        x["verified_by"], "blake2b-512",
        "Gajim's hash, in its offer: {x}"
    );
    save_xft_fixtures(&f.gajim, &bob_xft(&f), false, "gajim-to-xft-s5b-direct");
    row.note = format!("jingle s5b-direct, {} checked", x["verified_by"]);
    assert_xft_offered_loopback_only(&f.gajim);
}

#[tokio::test]
async fn gajim_to_xft_s5b_through_prosody_proxy65() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(CLIENT, "peer → xft", "jingle s5b proxy65");
    let opts = GajimOptions::default().proxy("proxy.localhost", false);
    let mut f = gajim_to_xft(GajimCase {
        gajim: opts,
        ..GajimCase::new(300_000, "s5b")
    })
    .await;
    expect_from_gajim(&mut f, "s5b-proxy").await;
    let out = kinds(&f.gajim, "out");
    assert!(out.contains(&"bytestreams-activate".to_owned()), "{out:?}");
    save_xft_fixtures(&f.gajim, &bob_xft(&f), false, "gajim-to-xft-s5b-proxy65");
    row.note = "jingle s5b-proxy (Gajim's proxy65 candidate)".into();
    assert_xft_offered_loopback_only(&f.gajim);
}

/// Gajim can use a second proxy: `xft proxy`, attached to Prosody as a component, is just
/// another JID in its `file_transfer_proxies`; Gajim queries it, offers its streamhost and
/// activates it.
#[tokio::test]
async fn gajim_to_xft_s5b_through_xft_proxy() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(CLIENT, "peer → xft", "jingle s5b xft proxy");
    let opts = GajimOptions::default().proxy(XFT_PROXY, false);
    let mut f = gajim_to_xft(GajimCase {
        via: Via::XftProxy,
        gajim: opts,
        ..GajimCase::new(300_000, "s5b")
    })
    .await;
    expect_from_gajim(&mut f, "s5b-proxy").await;
    row.note = "jingle s5b-proxy (Gajim's xft proxy candidate)".into();
    assert_xft_offered_loopback_only(&f.gajim);
}

#[tokio::test]
async fn gajim_to_xft_ibb() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(CLIENT, "peer → xft", "jingle ibb");
    let mut f = gajim_to_xft(GajimCase::new(200_000, "ibb")).await;
    expect_from_gajim(&mut f, "ibb-iq").await;
    save_xft_fixtures(&f.gajim, &bob_xft(&f), false, "gajim-to-xft-ibb");
    row.note = "jingle ibb-iq (Gajim: 4096-byte blocks)".into();
    assert_xft_offered_loopback_only(&f.gajim);
}

/// 10,500,000 bytes: no hash in Gajim's offer, its blake2b-512 in a session-info checksum
/// after the bytes; xft checks it.
#[tokio::test]
async fn gajim_to_xft_over_10_mb_checksum_in_session_info() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(CLIENT, "peer → xft", "jingle over 10 MB");
    let mut f = gajim_to_xft(GajimCase::new(10_500_000, "s5b")).await;
    // This case is about the checksum: Gajim offers its own streamhost and Prosody's
    // proxy, and on a loaded machine the proxy pair may connect first and be nominated.
    let x = expect_from_gajim_by(&mut f, &["s5b-direct", "s5b-proxy"]).await;
    assert_eq!(x["bytes"], 10_500_000, "{x}");
    assert_eq!(x["verified_by"], "blake2b-512", "{x}");
    let sent = f
        .gajim
        .events()
        .iter()
        .filter(|v| v["event"] == "checksum" && v["dir"] == "out")
        .count();
    assert_eq!(sent, 1, "Gajim sent its checksum in session-info");
    save_xft_fixtures(&f.gajim, &bob_xft(&f), false, "gajim-to-xft-over-10mb");
    row.note = "checksum in session-info, blake2b-512 checked".into();
    assert_xft_offered_loopback_only(&f.gajim);
}

/// xft declines (the sender is not in `--from`): Gajim hears session-terminate `<decline/>`.
#[tokio::test]
async fn xft_declines_gajim() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let _row = Row::new(CLIENT, "peer → xft", "jingle decline by xft");
    let mut f = gajim_to_xft(GajimCase {
        other_extra: &["--from", CAROL],
        ..GajimCase::new(50_000, "s5b")
    })
    .await;
    let ev = f
        .gajim
        .wait_any(&["sent", "cancelled"], DONE)
        .await
        .unwrap();
    assert_eq!(ev["event"], "cancelled", "{ev}");
    assert_eq!(ev["reason"], "decline", "{ev}");
    assert_eq!(f.gajim.finish(DONE).await.unwrap(), Some(2));
    let x = f.xft.row(DONE).await.expect("the refused row");
    assert_eq!(x["kind"], "refused", "{x}");
    f.xft.kill().await;
    assert!(!f.inbox.join(f.source.file_name().unwrap()).exists());
    f.assert_loopback();
}

/// Gajim cancels its send after 40,000 bytes of IBB: xft reports the failure, keeps no
/// complete file and exits 1.
#[tokio::test]
async fn gajim_cancels_sending_to_xft() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let _row = Row::new(CLIENT, "peer → xft", "jingle cancel by peer");
    let mut f = gajim_to_xft(GajimCase {
        gajim_extra: &["--cancel-after", "40000"],
        ..GajimCase::new(2_000_000, "ibb")
    })
    .await;
    let ev = f
        .gajim
        .wait_any(&["sent", "cancelled"], DONE)
        .await
        .unwrap();
    assert_eq!(ev["event"], "cancelled", "{ev}");
    assert_eq!(ev["by"], "us", "{ev}");
    let x = f
        .xft
        .row(DONE)
        .await
        .unwrap_or_else(|| panic!("no row: {}", f.xft.stderr()));
    assert!(!x["error"].is_null(), "xft reports the cancel: {x}");
    assert_eq!(x["stack"], "jingle", "{x}");
    let (_, ok) = f.xft.finish(DONE).await;
    assert!(!ok, "xft recv exits 1 after the sender cancelled");
    let landed = f.inbox.join(f.source.file_name().unwrap());
    assert!(
        !landed.exists() || sha256_file(&landed) != f.sha,
        "no complete file"
    );
    f.gajim.stop().await;
    f.assert_loopback();
}

/// `xft recv` killed (by its pid) mid-stream: Gajim never says `sent`.
#[tokio::test]
async fn xft_dies_receiving_from_gajim() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(CLIENT, "peer → xft", "jingle cancel by xft");
    let mut f = gajim_to_xft(GajimCase::new(3_000_000, "ibb")).await;
    wait_stanza(&mut f.gajim, "out", "ibb-open").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    f.xft.kill().await;
    match f
        .gajim
        .wait_any(
            &["sent", "cancelled", "transfer-error"],
            Duration::from_secs(20),
        )
        .await
    {
        Ok(ev) => {
            assert_ne!(ev["event"], "sent", "{ev}");
            row.note = format!("Gajim: {}", ev["event"]);
        }
        Err(ft_testkit::Error::Timeout { .. }) => {
            assert!(!f.gajim.events().iter().any(|v| v["event"] == "sent"));
            row.peer_limitation("Gajim's IBB sender waits on after the receiver died");
        }
        Err(e) => panic!("{e}"),
    }
    f.gajim.stop().await;
    f.assert_loopback();
}

/// Gajim's own limit, pinned: when S5B fails (here Gajim offers no candidate and dials
/// none of xft's),
/// its fallback sends transport-replace to IBB with `sid='None'`; xft accepts it as the
/// responder, and then Gajim, the initiator, never opens the IBB stream: no file, within
/// 15 s of the accept. xft must not wait for it forever (its own timeouts end the session).
#[tokio::test]
async fn gajim_to_xft_s5b_to_ibb_fallback_is_dead_in_gajim() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut row = Row::new(CLIENT, "peer → xft", "jingle s5b→ibb fallback");
    // Gajim offers no candidate and dials none of xft's: S5B fails whatever xft offers.
    let opts = GajimOptions {
        direct: false,
        dial: false,
        ..GajimOptions::default()
    };
    let mut f = gajim_to_xft(GajimCase {
        gajim: opts,
        ..GajimCase::new(50_000, "s5b")
    })
    .await;
    let mut replaced = None;
    while let Ok(v) = f.gajim.wait_json_for(Duration::from_secs(30)).await {
        if v["event"] == "stanza" && v["dir"] == "out" && v["kind"] == "transport-replace" {
            replaced = v["xml"].as_str().map(str::to_owned);
        }
        if v["event"] == "stanza" && v["dir"] == "in" && v["kind"] == "transport-accept" {
            break;
        }
        if v["event"] == "sent" || v["event"] == "cancelled" {
            break;
        }
    }
    let replaced = replaced.expect("Gajim sent transport-replace");
    assert!(replaced.contains("sid=\"None\""), "{replaced}");
    while f.gajim.wait_json_for(Duration::from_secs(15)).await.is_ok() {}
    assert!(
        !f.gajim.stanzas().iter().any(|(_, k, _)| k == "ibb-open"),
        "nobody opened IBB"
    );
    assert!(!f.gajim.events().iter().any(|v| v["event"] == "sent"));
    assert!(
        !f.inbox.join(f.source.file_name().unwrap()).exists(),
        "no file"
    );
    save_xft_fixtures(&f.gajim, &bob_xft(&f), false, "gajim-to-xft-dead-fallback");
    f.xft.kill().await;
    f.gajim.stop().await;
    f.assert_loopback();
    row.peer_limitation("Gajim's S5B→IBB fallback: transport-replace sid='None', never opens IBB");
}
