//! The complete transfer against slixmpp 1.17 through a real Prosody 0.12: declines from
//! each side (ours, and slixmpp's `xep_0095.decline()` reaching our sender as `Declined` at
//! the offer), the typed refusals slixmpp gives, and cancels mid-transfer from each side,
//! sending and receiving, over IBB (iq and message) and S5B through proxy65. slixpeer's
//! `--decline` and `--cancel-after` drive slixmpp's side; a slixmpp sender that goes away
//! mid-transfer covers the peer that vanishes without a word.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ft_facade::file::{File, FileOffer};
use ft_facade::si::{Rejection, Sid};
use ft_facade::{
    AcceptOptions, ErrorKind, FileInfo, Method, Policy, ProxySource, S5bRoute, SendOptions, Side,
    Stage, TransferHandle,
};
use ft_testkit::{Prosody, ProsodyOptions, SlixPeer};
use ft_transport::iq::IqTracker;
use xmpp_parsers::minidom::Element;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

const BOB: &str = "bob@localhost/rust";

/// Waits for slixmpp's `sent` line, which must not come: its send failed.
async fn slixmpp_send_fails(peer: &mut SlixPeer) -> String {
    match tokio::time::timeout(SHORT, peer.wait_event("sent")).await {
        Ok(Err(ft_testkit::Error::Peer { message, .. })) => message,
        Ok(Err(e)) => panic!("slixmpp failed otherwise: {e}"),
        Ok(Ok(v)) => panic!("slixmpp says it sent the file: {v}"),
        Err(_) => panic!(
            "slixmpp did not give up within {SHORT:?}:\n{}",
            peer.stderr()
        ),
    }
}

async fn next_offer(ours: &Ours) -> ft_facade::IncomingOffer<Tap> {
    tokio::time::timeout(SHORT, ours.ft.next_offer())
        .await
        .expect("slixmpp's offer arrives")
        .expect("the manager lives")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_decline_reaches_slixmpp_as_cancel_forbidden_with_our_reason() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "unwanted.bin", &content(5000, 31));
    let bob = ours(&prosody, "bob", config(&[Method::Ibb], ProxySource::None)).await;
    let mut alice = SlixPeer::send(&prosody, "alice", BOB, &path, "ibb-iq", &[])
        .await
        .unwrap();
    let offer = next_offer(&bob).await;
    assert_eq!(offer.file().name, "unwanted.bin");
    offer.decline(Some("not now"));

    let message = slixmpp_send_fails(&mut alice).await;
    // slixpeer prints slixmpp's own IqError.format(): type, condition, our text.
    assert_eq!(message, "IqError: cancel: forbidden: not now");
    assert!(!alice.wait_exit(SHORT).await.unwrap());
    let (out, _) = bob.seen();
    assert_eq!(
        out.iq_errors,
        [(
            ErrorType::Cancel,
            DefinedCondition::Forbidden,
            Some("not now".to_owned())
        )]
    );
    assert!(out.opens.is_empty(), "no bytestream after a decline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_over_our_size_limit_is_declined_forbidden_before_the_application_sees_it() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "big.bin", &content(5000, 32));
    let mut c = config(&[Method::Ibb], ProxySource::None);
    c.policy(Policy::default().with_max_size(1000));
    let bob = ours(&prosody, "bob", c).await;
    let mut alice = SlixPeer::send(&prosody, "alice", BOB, &path, "ibb-iq", &[])
        .await
        .unwrap();

    let message = slixmpp_send_fails(&mut alice).await;
    assert_eq!(
        message,
        "IqError: cancel: forbidden: file of 5000 bytes exceeds the limit of 1000"
    );
    let (out, _) = bob.seen();
    assert_eq!(
        out.iq_errors,
        [(
            ErrorType::Cancel,
            DefinedCondition::Forbidden,
            Some("file of 5000 bytes exceeds the limit of 1000".to_owned())
        )]
    );
    // The decline went out before slixmpp gave up, so the offer was never queued.
    let queued = tokio::time::timeout(Duration::from_millis(200), bob.ft.next_offer()).await;
    assert!(queued.is_err(), "the application never sees the offer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slixmpp_refusals_reach_our_si_driver_as_typed_no_valid_streams_and_bad_profile() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    // The facade only offers methods slixmpp has, so this drives the XEP-0095 crate itself.
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut bob = SlixPeer::serve(&prosody, "bob").await.unwrap();
    let (alice, inbound) = tokio::time::timeout(SHORT, prosody.connect("alice", "rust"))
        .await
        .expect("our client logs in within its budget")
        .unwrap();
    let tracker = Arc::new(IqTracker::new("si"));
    tokio::spawn(ft_transport::pump(inbound, tracker.clone()));
    let to = peer_jid(&bob);

    let sid = Sid::new("interop-no-valid-streams").unwrap();
    let si = FileOffer::si(
        &sid,
        File::new("x.bin", 10),
        None,
        &["urn:example:no-such-stream-method"],
    );
    let err = ft_facade::si::offer(&tracker, &alice, to.clone(), si, SHORT)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ft_facade::si::Error::Rejected(Rejection::NoValidStreams)
        ),
        "{err:?}"
    );
    assert!(matches!(ErrorKind::from(err), ErrorKind::NoCommonMethod));

    let sid = Sid::new("interop-bad-profile").unwrap();
    let profile = Element::builder("thing", "urn:example:no-such-si-profile").build();
    let si = ft_facade::si::Si::offer(&sid, profile, &[ft_facade::si::method::IBB]);
    let err = ft_facade::si::offer(&tracker, &alice, to, si, SHORT)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ft_facade::si::Error::Rejected(Rejection::BadProfile)),
        "{err:?}"
    );
    bob.stop().await;
}

/// Ours sends 1 MiB trickling (about 200 kB/s) by `method` to a slixmpp receiver, and
/// cancels once bytes flow. Returns slixmpp's `file` line.
async fn ours_cancels_while_sending(method: Method, prefer: &str) -> (serde_json::Value, Ours) {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let mut bob = SlixPeer::recv(&prosody, "bob", &inbox, 1, &["--prefer", prefer])
        .await
        .unwrap();
    let proxies = ProxySource::Jids(vec![jid("proxy.localhost")]);
    let mut c = config(&[method], proxies);
    // S5B here goes through the proxy: our own streamhost is not offered.
    c.s5b_route(S5bRoute::Proxy);
    c.block_size(4096);
    let alice = ours(&prosody, "alice", c).await;
    let info = FileInfo::new("cut.bin", MIB as u64);
    let mut sending: TransferHandle = alice.ft.send_reader(
        peer_jid(&bob),
        Trickle::new(content(MIB, 33), 1024, Duration::from_millis(5)),
        info,
        SendOptions::default(),
    );
    until_bytes_flow(&mut sending).await;
    sending.cancel();
    let err = outcome(sending).await.unwrap_err();
    assert_eq!(err.stage, Stage::Stream, "{err}");
    assert!(err.is_cancelled_by(Side::Local), "{err}");
    let got = peer_event(&mut bob, "file").await;
    assert_eq!(got["offered_size"].as_u64(), Some(MIB as u64), "{got}");
    let size = got["size"].as_u64().unwrap();
    assert!(size < MIB as u64, "slixmpp got a short file: {got}");
    assert_eq!(
        std::fs::metadata(inbox.join("cut.bin")).unwrap().len(),
        size,
        "slixmpp wrote what arrived"
    );
    assert!(bob.wait_exit(SHORT).await.unwrap(), "{}", bob.stderr());
    (got, alice)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_cancel_mid_ibb_send_closes_slixmpps_stream_short_of_the_offered_size() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let (got, alice) = ours_cancels_while_sending(Method::Ibb, "ibb").await;
    assert_eq!(got["method"], "ibb");
    let (out, _) = alice.seen();
    assert_eq!(out.closes, 1, "the cancel is an IBB <close/>");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_cancel_mid_s5b_send_through_proxy65_ends_slixmpps_stream_short_of_the_offered_size() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let (got, _) = ours_cancels_while_sending(Method::S5b, "s5b").await;
    assert_eq!(got["method"], "s5b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_cancel_mid_ibb_receive_leaves_no_file_under_the_final_name_and_stops_slixmpp() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    // 8 MiB at 4096-byte blocks over iq: seconds of streaming, so the cancel lands mid-way.
    let path = write_file(dir.path(), "cut.bin", &content(8 * MIB, 34));
    let bob = ours(&prosody, "bob", config(&[Method::Ibb], ProxySource::None)).await;
    let mut alice = SlixPeer::send(&prosody, "alice", BOB, &path, "ibb-iq", &[])
        .await
        .unwrap();
    let mut receiving = next_offer(&bob)
        .await
        .accept_into_dir(&inbox, AcceptOptions::new());
    until_bytes_flow(&mut receiving).await;
    receiving.cancel();
    let err = outcome(receiving).await.unwrap_err();
    assert_eq!(err.stage, Stage::Stream, "{err}");
    assert!(err.is_cancelled_by(Side::Local), "{err}");
    assert!(
        !inbox.join("cut.bin").exists(),
        "no file under the final name: {:?}",
        listing(&inbox)
    );

    // Our cancel is an IBB <close/> sent at once (an abort: nothing buffered is flushed
    // first). slixmpp stops instead of streaming the rest, either because its next send on
    // the closed stream raises socket.error (OSError), or because a <data/> it had in flight
    // got the XEP's item-not-found before it processed our <close/> (IqError).
    let message = slixmpp_send_fails(&mut alice).await;
    assert!(
        message.starts_with("OSError") || message.starts_with("IqError: cancel: item-not-found"),
        "{message}"
    );
    assert!(!alice.wait_exit(SHORT).await.unwrap());
    let (out, _) = bob.seen();
    assert_eq!(out.closes, 1, "{out:?}");
    // A <data/> already in flight when the session closed gets the XEP's item-not-found.
    assert!(
        out.iq_errors
            .iter()
            .all(|e| e.0 == ErrorType::Cancel && e.1 == DefinedCondition::ItemNotFound),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slixmpp_sender_gone_mid_ibb_leaves_no_file_and_fails_within_the_inactivity_timeout() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let path = write_file(dir.path(), "gone.bin", &content(8 * MIB, 35));
    let mut c = config(&[Method::Ibb], ProxySource::None);
    c.inactivity_timeout = Duration::from_secs(5);
    let bob = ours(&prosody, "bob", c).await;
    let mut alice = SlixPeer::send(&prosody, "alice", BOB, &path, "ibb-iq", &[])
        .await
        .unwrap();
    let mut receiving = next_offer(&bob)
        .await
        .accept_into_dir(&inbox, AcceptOptions::new());
    until_bytes_flow(&mut receiving).await;
    alice.stop().await;
    let err = outcome(receiving).await.unwrap_err();
    assert_eq!(err.stage, Stage::Stream, "{err}");
    assert!(
        matches!(err.kind, ErrorKind::Timeout(d) if d == Duration::from_secs(5)),
        "{err}"
    );
    assert!(
        !inbox.join("gone.bin").exists(),
        "no file under the final name: {:?}",
        listing(&inbox)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_to_a_resource_that_is_not_online_fails_at_the_offer_with_prosodys_bounce() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "nobody.bin", &content(1000, 36));
    let alice = ours(&prosody, "alice", config(&[Method::Ibb], ProxySource::None)).await;
    let sending = alice.ft.send_file(
        jid("bob@localhost/not-online"),
        &path,
        SendOptions::default(),
    );
    let err = outcome(sending).await.unwrap_err();
    assert_eq!(err.stage, Stage::Offer, "{err}");
    assert!(
        matches!(&err.kind, ErrorKind::Rejected(e)
            if e.defined_condition == DefinedCondition::ServiceUnavailable),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declining_slixmpp_fails_our_send_at_the_offer_with_declined_and_its_text() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "refused.bin", &content(5000, 37));
    let alice = ours(&prosody, "alice", config(&[Method::Ibb], ProxySource::None)).await;

    // slixmpp's own xep_0095.decline(): cancel/forbidden with its fixed text.
    let mut bob = SlixPeer::recv(&prosody, "bob", &dir.path().join("a"), 1, &["--decline"])
        .await
        .unwrap();
    let sending = alice
        .ft
        .send_file(peer_jid(&bob), &path, SendOptions::default());
    let err = outcome(sending).await.unwrap_err();
    assert_eq!(err.stage, Stage::Offer, "{err}");
    assert!(
        matches!(&err.kind, ErrorKind::Declined { text } if text.as_deref() == Some("Offer declined")),
        "{err}"
    );
    let declined = peer_event(&mut bob, "declined").await;
    assert_eq!(declined["name"], "refused.bin", "{declined}");
    assert!(bob.wait_exit(SHORT).await.unwrap(), "slixmpp exits cleanly");

    // The same answer carrying a reason of the user's.
    let mut bob = SlixPeer::recv(
        &prosody,
        "bob",
        &dir.path().join("b"),
        1,
        &["--decline", "no room left"],
    )
    .await
    .unwrap();
    let sending = alice
        .ft
        .send_file(peer_jid(&bob), &path, SendOptions::default());
    let err = outcome(sending).await.unwrap_err();
    assert_eq!(err.stage, Stage::Offer, "{err}");
    assert!(
        matches!(&err.kind, ErrorKind::Declined { text } if text.as_deref() == Some("no room left")),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "transfer failed at stage offer: the peer declined: no room left"
    );
    peer_event(&mut bob, "declined").await;
    assert!(bob.wait_exit(SHORT).await.unwrap());
    let (out, _) = alice.seen();
    assert!(
        out.opens.is_empty(),
        "no bytestream after a decline: {out:?}"
    );
    assert!(listing(&dir.path().join("a")).is_empty());
}

/// slixmpp sends 1 MiB by `method` and cancels after `CUT` bytes (IBB `close()`, or the S5B
/// socket closed); our receiver accepts into a directory with `options`. Returns our error,
/// the inbox and what we received on the wire.
async fn slixmpp_cancels_while_sending(
    method: &str,
    ours_methods: &[Method],
    options: AcceptOptions,
) -> (
    ft_facade::TransferError,
    std::path::PathBuf,
    IbbSeen,
    tempfile::TempDir,
) {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let data = content(MIB, 38);
    let path = write_file(dir.path(), "cut.bin", &data);
    let bob = ours(&prosody, "bob", config(ours_methods, ProxySource::None)).await;
    let cut = CUT.to_string();
    let mut alice = SlixPeer::send(
        &prosody,
        "alice",
        BOB,
        &path,
        method,
        &["--cancel-after", &cut],
    )
    .await
    .unwrap();
    let receiving = next_offer(&bob).await.accept_into_dir(&inbox, options);
    let err = outcome(receiving).await.unwrap_err();
    let cancelled = peer_event(&mut alice, "cancelled").await;
    assert_eq!(cancelled["bytes"].as_u64(), Some(CUT as u64), "{cancelled}");
    assert_eq!(cancelled["sha256"], sha256_hex(&data[..CUT]), "{cancelled}");
    assert!(
        alice.wait_exit(SHORT).await.unwrap(),
        "slixmpp exits cleanly"
    );
    assert!(
        !inbox.join("cut.bin").exists(),
        "no file under the final name: {:?}",
        listing(&inbox)
    );
    let (_, inb) = bob.seen();
    // The rig owns the temp dir until the caller has looked at the inbox.
    (err, inbox, inb, dir)
}

/// Where slixmpp cancels: 16 blocks of 4096 bytes, a sixteenth of the file.
const CUT: usize = 64 * 1024;

/// The receiver keeps `cut.bin.part` by default, with the sidecar that marks it ours (a
/// later accept of the same file resumes from it): exactly the bytes that arrived, the
/// file's first `CUT` bytes.
fn assert_part_holds_the_cut(inbox: &std::path::Path) {
    assert_eq!(listing(inbox), ["cut.bin.part", "cut.bin.part.xft"]);
    let part = std::fs::read(inbox.join("cut.bin.part")).unwrap();
    assert_eq!(part.len(), CUT);
    assert_eq!(sha256_hex(&part), sha256_hex(&content(MIB, 38)[..CUT]));
}

fn assert_truncated_at_the_cut(err: &ft_facade::TransferError) {
    assert_eq!(err.stage, Stage::Stream, "{err}");
    assert!(
        matches!(err.kind, ErrorKind::Truncated { expected, got }
            if expected == MIB as u64 && got == CUT as u64),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slixmpp_sender_closing_ibb_iq_mid_stream_fails_ours_as_truncated_keeping_the_part() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let (err, inbox, inb, _dir) =
        slixmpp_cancels_while_sending("ibb-iq", &[Method::Ibb], AcceptOptions::new()).await;
    assert_truncated_at_the_cut(&err);
    assert_part_holds_the_cut(&inbox);
    assert_eq!(inb.data_iq, (CUT / 4096) as u64, "{inb:?}");
    assert_eq!(
        inb.closes, 1,
        "slixmpp's cancel is one IBB <close/>: {inb:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slixmpp_sender_closing_ibb_message_mid_stream_leaves_nothing_when_partials_are_not_kept()
{
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut options = AcceptOptions::new();
    options.keep_partial = false;
    let (err, inbox, inb, _dir) =
        slixmpp_cancels_while_sending("ibb-message", &[Method::Ibb], options).await;
    assert_truncated_at_the_cut(&err);
    assert!(listing(&inbox).is_empty(), "{:?}", listing(&inbox));
    assert_eq!(inb.data_message, (CUT / 4096) as u64, "{inb:?}");
    assert_eq!(inb.closes, 1, "{inb:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slixmpp_sender_closing_its_s5b_socket_through_proxy65_mid_stream_fails_ours_as_truncated()
 {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let (err, inbox, inb, _dir) =
        slixmpp_cancels_while_sending("s5b", &[Method::S5b], AcceptOptions::new()).await;
    assert_truncated_at_the_cut(&err);
    assert_part_holds_the_cut(&inbox);
    assert!(
        inb.opens.is_empty(),
        "no IBB fallback after a cut S5B: {inb:?}"
    );
}

/// Ours sends 1 MiB trickling (about 200 kB/s) by `method` to a slixmpp receiver that
/// cancels once `CUT` bytes arrived. Returns our error and slixmpp's `cancelled` line.
async fn slixmpp_cancels_while_receiving(
    method: Method,
    prefer: &str,
) -> (ft_facade::TransferError, serde_json::Value, Ours) {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let cut = CUT.to_string();
    let mut bob = SlixPeer::recv(
        &prosody,
        "bob",
        &inbox,
        1,
        &["--prefer", prefer, "--cancel-after", &cut],
    )
    .await
    .unwrap();
    let proxies = ProxySource::Jids(vec![jid("proxy.localhost")]);
    let mut c = config(&[method], proxies);
    // S5B here goes through the proxy: our own streamhost is not offered.
    c.s5b_route(S5bRoute::Proxy);
    c.block_size(4096);
    let alice = ours(&prosody, "alice", c).await;
    let sending = alice.ft.send_reader(
        peer_jid(&bob),
        Trickle::new(content(MIB, 39), 1024, Duration::from_millis(5)),
        FileInfo::new("cut.bin", MIB as u64),
        SendOptions::default(),
    );
    let err = outcome(sending).await.unwrap_err();
    let cancelled = peer_event(&mut bob, "cancelled").await;
    assert!(bob.wait_exit(SHORT).await.unwrap(), "slixmpp exits cleanly");
    let got = cancelled["bytes"].as_u64().unwrap();
    assert!(
        (CUT as u64..MIB as u64).contains(&got),
        "slixmpp cancelled past the cut, short of the end: {cancelled}"
    );
    (err, cancelled, alice)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slixmpp_receiver_closing_ibb_mid_stream_fails_our_send_as_cancelled_by_the_peer() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let (err, cancelled, alice) = slixmpp_cancels_while_receiving(Method::Ibb, "ibb").await;
    assert_eq!(cancelled["method"], "ibb");
    assert_eq!(err.stage, Stage::Stream, "{err}");
    assert!(err.is_cancelled_by(Side::Peer), "{err}");
    let (out, inb) = alice.seen();
    assert_eq!(
        inb.closes, 1,
        "slixmpp's cancel is one IBB <close/>: {inb:?}"
    );
    assert_eq!(
        out.closes, 0,
        "we answer its close, we do not send our own: {out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slixmpp_receiver_closing_its_s5b_socket_through_proxy65_fails_our_send_as_cancelled_by_the_peer()
 {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let (err, cancelled, _) = slixmpp_cancels_while_receiving(Method::S5b, "s5b").await;
    assert_eq!(cancelled["method"], "s5b");
    assert_eq!(err.stage, Stage::Stream, "{err}");
    assert!(err.is_cancelled_by(Side::Peer), "{err}");
}
