//! Gajim 1.7.3 (the headless `peers/gajimpeer`) sending to Gajim by Jingle File Transfer
//! through a real Prosody: S5B direct, S5B through Prosody's proxy65, IBB, a file over
//! 10 MB (its checksum arrives in session-info), decline and cancel. Each case compares the
//! received file's SHA-256 with the source's and checks, on both sides, that only loopback
//! was offered, dialled or bound; one case shows the check fails when a candidate leaks.
//!
//! With `XFT_GAJIM_FIXTURES=DIR` the stanzas Gajim sent in each case are written to DIR
//! (JIDs rewritten), which is how `interop/tests/fixtures/gajim/` was recorded.

mod common {
    pub mod gajim;
    pub mod matrix;
    pub mod xftcli;
}

use std::time::Duration;

use common::gajim::*;
use common::matrix::Via;
use ft_testkit::GajimOptions;

#[tokio::test]
async fn gajim_to_gajim_s5b_direct() {
    let Some(mut p) = transfer(GajimCase {
        receiver: receiver_without_direct(),
        ..GajimCase::new(300_000, "s5b")
    })
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
    let Some(mut p) = transfer(GajimCase {
        gajim: GajimOptions::default().proxy(proxy, false),
        receiver: receiver_without_direct(),
        ..GajimCase::new(300_000, "s5b")
    })
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

/// Gajim takes a second SOCKS5 proxy: `xft proxy`, attached to a Prosody without
/// mod_proxy65 as its XEP-0114 component, is one more JID in `file_transfer_proxies`.
/// Gajim queries it, offers its streamhost, the receiving Gajim dials it, the sending one
/// activates it, and the file crosses it whole.
#[tokio::test]
async fn gajim_to_gajim_s5b_through_xft_proxy() {
    let Some(mut p) = transfer(GajimCase {
        via: Via::XftProxy,
        gajim: GajimOptions::default().proxy(XFT_PROXY, false),
        receiver: receiver_without_direct(),
        ..GajimCase::new(300_000, "s5b")
    })
    .await
    else {
        return;
    };
    let component = p.r.prosody.component_jid().to_string();
    expect_delivered(&mut p, "s5b", None).await;
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
    let activate = p
        .sender
        .stanzas()
        .into_iter()
        .find(|(d, k, _)| d == "out" && k == "bytestreams-activate")
        .expect("Gajim activated the proxy")
        .2;
    assert!(activate.contains(&component), "{activate}");
}

#[tokio::test]
async fn gajim_to_gajim_ibb() {
    let Some(mut p) = transfer(GajimCase::new(200_000, "ibb")).await else {
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
    let Some(mut p) = transfer(GajimCase {
        receiver: receiver_without_direct(),
        ..GajimCase::new(len, "s5b")
    })
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
    let Some(mut p) = transfer(GajimCase {
        other_extra: &["--decline"],
        ..GajimCase::new(50_000, "s5b")
    })
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
        std::fs::read_dir(&p.dir).expect("dir").next().is_none(),
        "nothing written"
    );
    p.assert_loopback();
    assert_eq!(
        p.receiver.finish(DONE).await.expect("receiver exit"),
        Some(0)
    );
    save_fixtures(&p.sender, &p.receiver, "decline");
}

#[tokio::test]
async fn gajim_receiver_cancels_ibb() {
    let Some(mut p) = transfer(GajimCase {
        other_extra: &["--cancel-after", "40000"],
        ..GajimCase::new(2_000_000, "ibb")
    })
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
    p.assert_loopback();
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
    let Some(mut p) = transfer(GajimCase {
        gajim_extra: &["--cancel-after", "40000"],
        ..GajimCase::new(2_000_000, "ibb")
    })
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
    let left = p.dir.join(p.source.file_name().expect("name"));
    let len = std::fs::metadata(&left).map(|m| m.len()).unwrap_or(0);
    assert!(len < 2_000_000, "{len} bytes left");
    p.assert_loopback();
    p.sender.stop().await;
    p.receiver.stop().await;
}

/// Gajim's own limit, pinned: when no S5B candidate works (neither side offers one), the
/// initiator sends `transport-replace` to IBB with `sid='None'` (the literal string), the
/// responder accepts it, and then nobody opens the IBB stream: no `<open/>` within 10 s, no
/// file. (An xft peer must not wait for Gajim's fallback; it can send its own `<open/>`.)
#[tokio::test]
async fn gajim_s5b_to_ibb_fallback_is_dead_in_gajim() {
    let Some(mut p) = transfer(GajimCase {
        gajim: GajimOptions {
            direct: false,
            ..GajimOptions::default()
        },
        receiver: receiver_without_direct(),
        ..GajimCase::new(50_000, "s5b")
    })
    .await
    else {
        return;
    };
    wait_stanza(&mut p.sender, "in", "transport-accept").await;
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
    assert!(std::fs::read_dir(&p.dir).expect("dir").next().is_none());
    p.assert_loopback();
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
    let Some(mut p) = transfer(GajimCase {
        gajim: leak(false),
        receiver: receiver_without_direct(),
        ..GajimCase::new(100_000, "s5b")
    })
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

    let Some(mut p) = transfer(GajimCase {
        gajim: leak(true),
        receiver: receiver_without_direct(),
        ..GajimCase::new(100_000, "s5b")
    })
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
