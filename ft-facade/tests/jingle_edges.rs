//! Jingle File Transfer through the facade, the edges: resume with `<range/>`, cancel from
//! each side mid-stream, a `<checksum/>` after the last byte, a mismatch (`<media-error/>`,
//! no file), the disco choice between Jingle and SI, both stacks received by one manager.

mod common;

use std::ops::ControlFlow;
use std::time::Duration;

use common::*;
use ft_facade::{
    AcceptOptions, Delivery, ErrorKind, FileTransfer, HashAlgo, Method, OfferHash, SendOptions,
    Side, Stack, Stage,
};
use ft_transport::StanzaTransport;
use ft_transport::hub::{Hub, HubTransport};

async fn sender_cancels(method: Method) {
    let bob = jconfig(&[Method::S5b, Method::Ibb]);
    let received = cancel::sender_cancels_mid_transfer(jconfig(&[method]), bob).await;
    // The session's <cancel/> names the cut (SI can only say "truncated").
    assert!(received.is_cancelled_by(Side::Peer), "{received}");
}

async fn receiver_cancels(method: Method) {
    let bob = jconfig(&[Method::S5b, Method::Ibb]);
    cancel::receiver_cancels_mid_transfer(jconfig(&[method]), bob).await;
}

#[tokio::test]
async fn jingle_sender_cancel_mid_ibb_is_a_peer_cancel_on_the_receiver() {
    sender_cancels(Method::Ibb).await;
}

#[tokio::test]
async fn jingle_sender_cancel_mid_s5b_is_a_peer_cancel_on_the_receiver() {
    sender_cancels(Method::S5b).await;
}

#[tokio::test]
async fn jingle_receiver_cancel_mid_ibb_is_a_peer_cancel_on_the_sender() {
    receiver_cancels(Method::Ibb).await;
}

#[tokio::test]
async fn jingle_receiver_cancel_mid_s5b_is_a_peer_cancel_on_the_sender() {
    receiver_cancels(Method::S5b).await;
}

#[tokio::test]
async fn a_cut_jingle_transfer_resumes_with_a_range_into_an_identical_file() {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", jconfig(&[Method::S5b]));
    let bob = entity(&hub, "bob@x/b", jconfig(&[Method::S5b, Method::Ibb]));
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let data = content(400_000, 10);
    let cut = 123_457;
    let path = write_file(src.path(), "resume.bin", &data);
    // The part an earlier, cut Jingle transfer of this file from alice left: the key is
    // peer, name, size and date (the date as the offer's <date/> reads back).
    let date = xep0096_file::FileMeta::from_path(&path)
        .unwrap()
        .to_file(None)
        .date
        .unwrap();
    let date: xmpp_parsers::date::DateTime = date.parse().unwrap();
    let date = minidom::IntoAttributeValue::into_attribute_value(date).unwrap();
    let key = xep0096_file::PartKey::new("resume.bin", data.len() as u64)
        .with_peer("alice@x")
        .with_date(date);
    let mut part = xep0096_file::PartFile::open(dst.path(), &key)
        .await
        .unwrap();
    part.write(&data[..cut]).await.unwrap();
    part.checkpoint().await.unwrap();
    drop(part);
    let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let receiving = bob
        .next_offer()
        .await
        .unwrap()
        .accept_into_dir(dst.path(), AcceptOptions::new());
    let (sent, received) = tokio::join!(sending.outcome(), receiving.outcome());
    let (sent, received) = (sent.unwrap(), received.unwrap());
    assert_eq!(sent.stack, Stack::Jingle);
    assert_eq!(
        sent.offset, cut as u64,
        "the accept's <range offset/> was honoured"
    );
    assert_eq!(sent.bytes, (data.len() - cut) as u64);
    assert_eq!(received.offset, cut as u64);
    assert_eq!(
        received.verified_by,
        Some(HashAlgo::Sha256),
        "the whole file is checked"
    );
    assert_eq!(
        sha256_file(&dst.path().join("resume.bin")),
        sha256_hex(&data)
    );
    assert_eq!(listing(dst.path()), ["resume.bin"], "the .part is gone");
}

#[tokio::test]
async fn a_file_over_offer_hash_is_verified_by_the_checksum_after_the_last_byte() {
    for method in [Method::Ibb, Method::S5b] {
        let hub = Hub::new();
        let mut a = jconfig(&[method]);
        a.offer_hash = OfferHash::up_to(1000);
        let alice = entity(&hub, "alice@x/a", a);
        let bob = entity(&hub, "bob@x/b", jconfig(&[Method::S5b, Method::Ibb]));
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let data = content(250_000, 12);
        let path = write_file(src.path(), "late.bin", &data);
        let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
        let offer = bob.next_offer().await.unwrap();
        let received = offer
            .accept_into_dir(dst.path(), AcceptOptions::new())
            .outcome()
            .await
            .unwrap();
        let sent = sending.outcome().await.unwrap();
        assert_eq!(received.verified_by, Some(HashAlgo::Sha256), "{method}");
        assert_eq!(
            received.delivery,
            Delivery::Received {
                size_checked: true,
                hash_checked: true
            }
        );
        assert_eq!(sent.delivery, Delivery::Acknowledged, "{method}");
        assert_eq!(sent.sha256, sha256_hex(&data));
        assert_eq!(sha256_file(&dst.path().join("late.bin")), sha256_hex(&data));
    }
}

#[tokio::test]
async fn j56_bytes_that_do_not_match_the_offered_hash_are_a_media_error_and_leave_no_file() {
    for method in [Method::Ibb, Method::S5b] {
        let hub = Hub::new();
        let alice = entity(&hub, "alice@x/a", jconfig(&[method]));
        let bob = entity(&hub, "bob@x/b", jconfig(&[Method::S5b, Method::Ibb]));
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let data = content(100_000, 13);
        let path = write_file(src.path(), "bad.bin", &data);
        let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
        let offer = bob.next_offer().await.unwrap();
        // The offer carries the SHA-256 of `data`; the same file now holds other bytes of
        // the same length (written in place: the sender's open file sees them).
        std::fs::write(&path, content(100_000, 14)).unwrap();
        let received = offer
            .accept_into_dir(dst.path(), AcceptOptions::new())
            .outcome()
            .await
            .unwrap_err();
        assert_eq!(received.stage, Stage::Verify, "{method}");
        assert!(
            matches!(
                received.kind,
                ErrorKind::HashMismatch {
                    algo: HashAlgo::Sha256,
                    ..
                }
            ),
            "{received}"
        );
        let sent = sending.outcome().await.unwrap_err();
        let ErrorKind::Jingle(j) = &sent.kind else {
            panic!("{method}: {sent}")
        };
        assert!(j.is_media_error(), "{method}: {sent}");
        assert!(
            listing(dst.path()).is_empty(),
            "{method}: {:?}",
            listing(dst.path())
        );
    }
}

/// An entity whose disco#info lists SI only (as slixmpp's does): the manager does not
/// answer disco itself; a plain SI responder does.
fn si_only_entity(hub: &Hub, me: &str) -> FileTransfer<HubTransport> {
    let mut c = jconfig(&[Method::S5b, Method::Ibb]);
    c.answer_disco = false;
    let (t, mut rx) = hub.connect(jid(me));
    let ft = FileTransfer::new(t.clone(), c);
    let responder = ft_facade::disco::DiscoResponder::file_transfer_client();
    let pumped = ft.clone();
    tokio::spawn(async move {
        while let Some(s) = rx.recv().await {
            let s = match responder.handle_stanza(s) {
                ControlFlow::Break(Some(reply)) => {
                    let _ = t.send(reply).await;
                    continue;
                }
                ControlFlow::Break(None) => continue,
                ControlFlow::Continue(s) => s,
            };
            pumped.ready().await;
            let _ = pumped.handle_stanza(s);
        }
    });
    ft
}

async fn send_one(
    from: &FileTransfer<HubTransport>,
    to: &FileTransfer<HubTransport>,
    name: &str,
) -> (Stack, Stack) {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let data = content(50_000, 15);
    let path = write_file(src.path(), name, &data);
    let sending = from.send_file(to.jid().clone(), &path, SendOptions::default());
    let offer = to.next_offer().await.unwrap();
    let offered = offer.stack();
    let received = offer
        .accept_into_dir(dst.path(), AcceptOptions::new())
        .outcome()
        .await
        .unwrap();
    let sent = sending.outcome().await.unwrap();
    assert_eq!(sent.stack, received.stack);
    assert_eq!(sha256_file(&dst.path().join(name)), sha256_hex(&data));
    (offered, sent.stack)
}

#[tokio::test]
async fn disco_picks_jingle_when_listed_si_for_an_si_only_peer_and_stacks_can_force_si() {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", jconfig(&[Method::S5b, Method::Ibb]));
    let bob = entity(&hub, "bob@x/b", jconfig(&[Method::S5b, Method::Ibb]));
    let slix = si_only_entity(&hub, "slix@x/s");
    assert_eq!(
        send_one(&alice, &bob, "j.bin").await,
        (Stack::Jingle, Stack::Jingle)
    );
    assert_eq!(
        send_one(&alice, &slix, "s.bin").await,
        (Stack::Si, Stack::Si)
    );
    let mut forced = jconfig(&[Method::S5b, Method::Ibb]);
    forced.stacks(&[Stack::Si]);
    let carol = entity(&hub, "carol@x/c", forced);
    assert_eq!(
        send_one(&carol, &bob, "f.bin").await,
        (Stack::Si, Stack::Si)
    );
    // Jingle only, to a peer without it: refused at the disco stage.
    let mut only = jconfig(&[Method::S5b, Method::Ibb]);
    only.stacks(&[Stack::Jingle]);
    let dave = entity(&hub, "dave@x/d", only);
    let src = tempfile::tempdir().unwrap();
    let path = write_file(src.path(), "n.bin", b"x");
    let e = dave
        .send_file(jid("slix@x/s"), &path, SendOptions::default())
        .outcome()
        .await
        .unwrap_err();
    assert_eq!(e.stage, Stage::Disco);
    assert!(matches!(e.kind, ErrorKind::NoCommonMethod), "{e}");
}

#[tokio::test]
async fn one_manager_receives_both_stacks_at_once() {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", jconfig(&[Method::S5b, Method::Ibb]));
    let carol = entity(&hub, "carol@x/c", config(&[Method::Ibb]));
    let bob = entity(&hub, "bob@x/b", jconfig(&[Method::S5b, Method::Ibb]));
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let a = content(300_000, 16);
    let c = content(200_000, 17);
    let pa = write_file(src.path(), "from-alice.bin", &a);
    let pc = write_file(src.path(), "from-carol.bin", &c);
    let sa = alice.send_file(jid("bob@x/b"), &pa, SendOptions::default());
    let sc = carol.send_file(jid("bob@x/b"), &pc, SendOptions::default());
    let mut handles = Vec::new();
    let mut stacks = Vec::new();
    for _ in 0..2 {
        let offer = bob.next_offer().await.unwrap();
        stacks.push((offer.file().name.clone(), offer.stack()));
        handles.push(offer.accept_into_dir(dst.path(), AcceptOptions::new()));
    }
    stacks.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        stacks,
        [
            ("from-alice.bin".to_owned(), Stack::Jingle),
            ("from-carol.bin".to_owned(), Stack::Si)
        ]
    );
    for h in handles {
        h.outcome().await.unwrap();
    }
    sa.outcome().await.unwrap();
    sc.outcome().await.unwrap();
    assert_eq!(
        sha256_file(&dst.path().join("from-alice.bin")),
        sha256_hex(&a)
    );
    assert_eq!(
        sha256_file(&dst.path().join("from-carol.bin")),
        sha256_hex(&c)
    );
}

#[tokio::test]
async fn a_sender_cancel_while_the_jingle_offer_waits_reaches_the_receiver_as_a_peer_cancel() {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", jconfig(&[Method::Ibb]));
    let bob = entity(&hub, "bob@x/b", jconfig(&[Method::Ibb]));
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let path = write_file(src.path(), "w.bin", b"withdrawn");
    let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let offer = bob.next_offer().await.unwrap();
    sending.cancel();
    let sent = sending.outcome().await.unwrap_err();
    assert_eq!(sent.stage, Stage::Offer);
    assert!(sent.is_cancelled_by(Side::Local), "{sent}");
    // Jingle can withdraw an offer (SI cannot): accepting it later fails at once.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = std::time::Instant::now();
    let received = offer
        .accept_into_dir(dst.path(), AcceptOptions::new())
        .outcome()
        .await
        .unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(received.stage, Stage::Offer, "{received}");
    assert!(received.is_cancelled_by(Side::Peer), "{received}");
    assert!(listing(dst.path()).is_empty(), "{:?}", listing(dst.path()));
}

#[tokio::test]
async fn an_unanswered_jingle_offer_times_out_at_stage_offer() {
    let hub = Hub::new();
    let mut a = jconfig(&[Method::Ibb]);
    a.offer_timeout = Duration::from_millis(300);
    let alice = entity(&hub, "alice@x/a", a);
    let bob = entity(&hub, "bob@x/b", jconfig(&[Method::Ibb]));
    let src = tempfile::tempdir().unwrap();
    let path = write_file(src.path(), "t.bin", b"nobody answers");
    let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let _held = bob.next_offer().await.unwrap();
    let e = tokio::time::timeout(Duration::from_secs(5), sending.outcome())
        .await
        .expect("bounded")
        .unwrap_err();
    assert_eq!(e.stage, Stage::Offer);
    assert!(matches!(e.kind, ErrorKind::Timeout(_)), "{e}");
}

#[tokio::test]
async fn a_second_send_with_the_sid_of_a_live_session_fails_and_leaves_the_first_intact() {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", jconfig(&[Method::Ibb]));
    let bob = entity(&hub, "bob@x/b", jconfig(&[Method::Ibb]));
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let data = content(30_000, 22);
    let path = write_file(src.path(), "first.bin", &data);
    let sid = ft_facade::Sid::new("same-sid").unwrap();
    let first = alice.send_file(
        jid("bob@x/b"),
        &path,
        SendOptions::default().with_sid(sid.clone()),
    );
    let offer = bob.next_offer().await.unwrap();
    let second = alice
        .send_file(jid("bob@x/b"), &path, SendOptions::default().with_sid(sid))
        .outcome()
        .await
        .unwrap_err();
    assert_eq!(second.stage, Stage::Offer);
    assert!(matches!(second.kind, ErrorKind::Jingle(_)), "{second}");
    // The first session still gets its events: accept, bytes, success.
    let received = offer
        .accept_into_dir(dst.path(), AcceptOptions::new())
        .outcome()
        .await
        .unwrap();
    let sent = first.outcome().await.unwrap();
    assert_eq!(sent.delivery, Delivery::Acknowledged);
    assert_eq!(received.sha256, sha256_hex(&data));
}
