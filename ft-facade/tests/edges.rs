//! Cancel from either side mid-transfer, resume, hostile names, and more bytes than offered.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ft_facade::{
    AcceptOptions, ErrorKind, FileInfo, Method, SendOptions, Side, Stage, TransferHandle,
};
use ft_transport::hub::Hub;
use ft_transport::iq::IqTracker;
use tokio::io::AsyncWriteExt;

/// Starts a trickling SI transfer by `method`; returns (sender, receiver, destination).
async fn trickling(method: Method) -> (TransferHandle, TransferHandle, tempfile::TempDir, Hub) {
    trickling_with(method, AcceptOptions::new()).await
}

/// [`trickling`], accepted with `options`.
async fn trickling_with(
    method: Method,
    options: AcceptOptions,
) -> (TransferHandle, TransferHandle, tempfile::TempDir, Hub) {
    cancel::trickling(
        config(&[method]),
        config(&[Method::S5b, Method::Ibb]),
        options,
    )
    .await
}

async fn sender_cancels_mid_transfer(method: Method) {
    let alice = config(&[method]);
    let received =
        cancel::sender_cancels_mid_transfer(alice, config(&[Method::S5b, Method::Ibb])).await;
    // SI has no word for the sender's cancel: the receiver sees the stream cut short.
    assert!(
        matches!(received.kind, ErrorKind::Truncated { expected: 1_000_000, got } if got < 1_000_000),
        "{received}"
    );
}

async fn receiver_cancels_mid_transfer(method: Method) {
    cancel::receiver_cancels_mid_transfer(config(&[method]), config(&[Method::S5b, Method::Ibb]))
        .await;
}

#[tokio::test]
async fn sender_cancel_mid_ibb_transfer_is_truncated_on_the_receiver() {
    sender_cancels_mid_transfer(Method::Ibb).await;
}

#[tokio::test]
async fn h1_sender_cancel_mid_s5b_transfer_is_truncated_on_the_receiver() {
    sender_cancels_mid_transfer(Method::S5b).await;
}

#[tokio::test]
async fn h4_receiver_cancel_mid_ibb_transfer_is_cancelled_by_peer_on_the_sender() {
    receiver_cancels_mid_transfer(Method::Ibb).await;
}

#[tokio::test]
async fn receiver_cancel_mid_s5b_transfer_is_cancelled_by_peer_on_the_sender() {
    receiver_cancels_mid_transfer(Method::S5b).await;
}

#[tokio::test]
async fn a_cut_transfer_resumes_from_the_part_file_into_an_identical_file() {
    use rand::Rng;
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", config(&[Method::S5b]));
    let bob = entity(&hub, "bob@x/b", config(&[Method::S5b, Method::Ibb]));
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let data = content(400_000, 10);
    let cut = rand::thread_rng().gen_range(1..data.len() - 1);
    let path = write_file(src.path(), "resume.bin", &data);
    // The part an earlier, cut transfer of this file from alice left: ours (created with
    // its sidecar), for the same name, size, date and MD5.
    let date = xep0096_file::FileMeta::from_path(&path)
        .unwrap()
        .to_file(None)
        .date
        .unwrap();
    let md5 = <md5::Md5 as md5::Digest>::digest(&data).into();
    let key = xep0096_file::PartKey::new("resume.bin", data.len() as u64)
        .with_peer("alice@x")
        .with_date(date)
        .with_md5(md5);
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
    assert_eq!(
        sent.offset, cut as u64,
        "the sender was asked for the rest only"
    );
    assert_eq!(sent.bytes, (data.len() - cut) as u64);
    assert_eq!(received.offset, cut as u64);
    assert_eq!(
        sha256_file(&dst.path().join("resume.bin")),
        sha256_hex(&data)
    );
    assert_eq!(
        received.sha256,
        sha256_hex(&data),
        "hash covers the resumed part too"
    );
    assert_eq!(listing(dst.path()), ["resume.bin"], "the .part is gone");
}

#[tokio::test]
async fn a_peer_name_with_dot_dot_lands_inside_the_directory() {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", config(&[Method::Ibb]));
    let bob = entity(&hub, "bob@x/b", config(&[Method::Ibb]));
    let root = tempfile::tempdir().unwrap();
    let dst = root.path().join("inbox");
    std::fs::create_dir(&dst).unwrap();
    let data = content(5000, 11);
    let info = FileInfo::new("../../escape.txt", data.len() as u64);
    let sending = alice.send_reader(
        jid("bob@x/b"),
        std::io::Cursor::new(data.clone()),
        info,
        SendOptions::default(),
    );
    let offer = bob.next_offer().await.unwrap();
    assert_eq!(
        offer.file().name,
        "../../escape.txt",
        "the offer shows the peer's name"
    );
    let receiving = offer.accept_into_dir(&dst, AcceptOptions::new());
    let (sent, received) = tokio::join!(sending.outcome(), receiving.outcome());
    sent.unwrap();
    let received = received.unwrap();
    assert_eq!(received.md5, None, "no hash offered, none computed");
    assert_eq!(received.sha256, sha256_hex(&data));
    let path = received.path.unwrap();
    assert_eq!(path.parent(), Some(dst.as_path()));
    assert_eq!(
        listing(root.path()),
        ["inbox"],
        "nothing outside the directory"
    );
    assert_eq!(std::fs::read(&path).unwrap(), data);
}

#[tokio::test]
async fn more_bytes_than_offered_is_too_long_and_leaves_no_file() {
    let hub = Hub::new();
    let bob = entity(&hub, "bob@x/b", config(&[Method::Ibb]));
    // A raw peer: offers 10 bytes, then pushes 20 through IBB.
    let (mt, mut mrx) = hub.connect(jid("mallory@x/m"));
    let tracker = Arc::new(IqTracker::new("m"));
    let ibb = xep0047_ibb::Ibb::new(mt.clone(), xep0047_ibb::Config::default());
    {
        let (tracker, ibb) = (tracker.clone(), ibb.clone());
        tokio::spawn(async move {
            while let Some(s) = mrx.recv().await {
                ibb.ready().await;
                if let std::ops::ControlFlow::Continue(s) = tracker.handle_stanza(s) {
                    let _ = ibb.handle_stanza(s);
                }
            }
        });
    }
    let sid = xep0095_si::Sid::new("too-long").unwrap();
    let file = xep0096_file::File::new("big.bin", 10);
    let si = xep0096_file::FileOffer::si(&sid, file, None, &[xep0095_si::method::IBB]);
    let dst = tempfile::tempdir().unwrap();
    let offering = {
        let (tracker, mt) = (tracker.clone(), mt.clone());
        tokio::spawn(async move {
            xep0095_si::offer(&tracker, &mt, jid("bob@x/b"), si, Duration::from_secs(5)).await
        })
    };
    let receiving = bob
        .next_offer()
        .await
        .unwrap()
        .accept_into_dir(dst.path(), AcceptOptions::new());
    offering.await.unwrap().unwrap();
    let mut stream = ibb
        .open(
            jid("bob@x/b"),
            ft_facade::Sid::new("too-long").unwrap(),
            xep0047_ibb::OpenOptions::default(),
        )
        .await
        .unwrap();
    stream.write_all(&[7u8; 20]).await.unwrap();
    let _ = stream.shutdown().await;
    let err = receiving.outcome().await.unwrap_err();
    assert_eq!(err.stage, Stage::Stream);
    assert!(
        matches!(err.kind, ErrorKind::TooLong { expected: 10 }),
        "{err}"
    );
    assert!(
        listing(dst.path()).is_empty(),
        "no file, no .part: {:?}",
        listing(dst.path())
    );
}

#[tokio::test]
async fn accepting_into_a_writer_with_an_offset_gets_only_the_rest() {
    use tokio::io::AsyncReadExt;
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", config(&[Method::Ibb]));
    let bob = entity(&hub, "bob@x/b", config(&[Method::Ibb]));
    let src = tempfile::tempdir().unwrap();
    let data = content(70_000, 14);
    let path = write_file(src.path(), "w.bin", &data);
    let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let (writer, mut reader) = tokio::io::duplex(1 << 16);
    let receiving = bob
        .next_offer()
        .await
        .unwrap()
        .accept_into(writer, AcceptOptions::new().with_offset(50_000));
    let collect = tokio::spawn(async move {
        let mut got = Vec::new();
        reader.read_to_end(&mut got).await.unwrap();
        got
    });
    let (sent, received) = tokio::join!(sending.outcome(), receiving.outcome());
    let (sent, received) = (sent.unwrap(), received.unwrap());
    assert_eq!(sent.offset, 50_000);
    assert_eq!(received.offset, 50_000);
    assert_eq!(received.bytes, 20_000);
    assert_eq!(received.path, None);
    assert_eq!(collect.await.unwrap(), data[50_000..]);
}

fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

#[tokio::test]
async fn two_offers_of_one_name_at_once_land_intact_under_two_names() {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", config(&[Method::S5b]));
    let bob = entity(&hub, "bob@x/b", config(&[Method::S5b, Method::Ibb]));
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let first = content(300_000, 60);
    let second = content(200_000, 61);

    // The first is fed by the test, so it is still receiving while the second comes.
    let (mut feed, reader) = tokio::io::duplex(1 << 20);
    let info = FileInfo::new("same.bin", first.len() as u64).with_md5(md5_hex(&first));
    let sending1 = alice.send_reader(jid("bob@x/b"), reader, info, SendOptions::default());
    let mut receiving1 = bob
        .next_offer()
        .await
        .unwrap()
        .accept_into_dir(dst.path(), AcceptOptions::new());
    feed.write_all(&first[..100_000]).await.unwrap();
    until_bytes_flow(&mut receiving1).await;

    // The second, a file (ranged: it would resume from the first one's bytes if it could).
    let path = write_file(src.path(), "same.bin", &second);
    let sending2 = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let receiving2 = bob
        .next_offer()
        .await
        .unwrap()
        .accept_into_dir(dst.path(), AcceptOptions::new());
    let (sent2, received2) = tokio::join!(sending2.outcome(), receiving2.outcome());
    let (sent2, received2) = (sent2.unwrap(), received2.unwrap());
    assert_eq!(
        sent2.offset, 0,
        "nothing of the first one's part is resumed"
    );
    assert_eq!(received2.path, Some(dst.path().join("same (1).bin")));

    feed.write_all(&first[100_000..]).await.unwrap();
    drop(feed);
    let (sent1, received1) = tokio::join!(sending1.outcome(), receiving1.outcome());
    sent1.unwrap();
    let received1 = received1.unwrap();
    assert_eq!(received1.path, Some(dst.path().join("same.bin")));

    assert_eq!(
        sha256_file(&dst.path().join("same.bin")),
        sha256_hex(&first)
    );
    assert_eq!(
        sha256_file(&dst.path().join("same (1).bin")),
        sha256_hex(&second)
    );
    assert_eq!(received1.sha256, sha256_hex(&first));
    assert_eq!(
        received1.md5,
        Some(md5_hex(&first)),
        "the offered md5 was checked"
    );
    assert_eq!(received2.sha256, sha256_hex(&second));
    assert_eq!(listing(dst.path()), ["same (1).bin", "same.bin"]);
}

#[tokio::test]
async fn h3_a_receiver_cancel_without_keep_partial_leaves_no_part() {
    let (_sending, mut receiving, dst, _hub) =
        trickling_with(Method::Ibb, AcceptOptions::new().with_keep_partial(false)).await;
    until_bytes_flow(&mut receiving).await;
    receiving.cancel();
    let received = receiving.outcome().await.unwrap_err();
    assert!(received.is_cancelled_by(Side::Local), "{received}");
    assert!(listing(dst.path()).is_empty(), "{:?}", listing(dst.path()));
}

/// BAD-INPUT H2: when the XMPP stream drops, an S5B transfer goes on over its socket (its
/// end needs no stanza) and the file lands intact; an IBB transfer fails, and its `.part`
/// stays for a resume.
#[tokio::test]
async fn h2_the_xmpp_stream_dropping_mid_s5b_does_not_stop_the_data() {
    let (sending, mut receiving, dst, hub) = trickling(Method::S5b).await;
    until_bytes_flow(&mut receiving).await;
    hub.disconnect(&jid("alice@x/a"));
    hub.disconnect(&jid("bob@x/b"));
    let (sent, received) = tokio::time::timeout(
        Duration::from_secs(30),
        futures_util::future::join(sending.outcome(), receiving.outcome()),
    )
    .await
    .expect("the socket finishes on its own");
    sent.unwrap();
    let received = received.unwrap();
    assert_eq!(received.bytes, 1_000_000);
    assert_eq!(
        sha256_file(&dst.path().join("cut.bin")),
        sha256_hex(&content(1_000_000, 9))
    );

    // IBB: every chunk is a stanza; the receiver's inactivity timeout ends it.
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", config(&[Method::Ibb]));
    let mut c = config(&[Method::Ibb]);
    c.inactivity_timeout = Duration::from_secs(1);
    let bob = entity(&hub, "bob@x/b", c);
    let dst = tempfile::tempdir().unwrap();
    let data = content(1_000_000, 9);
    let sending = alice.send_reader(
        jid("bob@x/b"),
        Trickle::new(data.clone(), 1024, Duration::from_millis(5)),
        FileInfo::new("cut.bin", data.len() as u64),
        SendOptions::default(),
    );
    let mut receiving = bob
        .next_offer()
        .await
        .unwrap()
        .accept_into_dir(dst.path(), AcceptOptions::new());
    until_bytes_flow(&mut receiving).await;
    hub.disconnect(&jid("alice@x/a"));
    hub.disconnect(&jid("bob@x/b"));
    let received = tokio::time::timeout(Duration::from_secs(30), receiving.outcome())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(received.stage, Stage::Stream, "{received}");
    assert!(!dst.path().join("cut.bin").exists(), "never complete");
    let part = std::fs::read(dst.path().join("cut.bin.part")).expect("the .part is kept");
    assert!(!part.is_empty() && part.len() < data.len());
    assert_eq!(
        part[..],
        data[..part.len()],
        "what is kept is the file's prefix"
    );
    let _ = tokio::time::timeout(Duration::from_secs(10), sending.outcome()).await;
}

/// BAD-INPUT H4: a cancel from both sides racing the end of a transfer leaves each side in
/// one terminal state that agrees with the disk: a receiver that reports success has the
/// whole file under its name, one that reports a failure has no file under it.
#[tokio::test]
async fn h4_cancel_racing_completion_ends_in_one_consistent_state() {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", config(&[Method::Ibb]));
    let bob = entity(&hub, "bob@x/b", config(&[Method::Ibb]));
    let (mut ok, mut cancelled) = (0, 0);
    for round in 0..12u64 {
        let data = content(40_000, round);
        let name = format!("race{round}.bin");
        let dst = tempfile::tempdir().unwrap();
        let sending = alice.send_reader(
            jid("bob@x/b"),
            Trickle::new(data.clone(), 2048, Duration::from_millis(2)),
            FileInfo::new(&name, data.len() as u64),
            SendOptions::default(),
        );
        let receiving = bob
            .next_offer()
            .await
            .unwrap()
            .accept_into_dir(dst.path(), AcceptOptions::new().with_keep_partial(false));
        // Cancel both around the time the last bytes arrive (about 40 ms in): earlier in
        // the first rounds, later in the last.
        tokio::time::sleep(Duration::from_millis(round * 8)).await;
        sending.cancel();
        receiving.cancel();
        let (sent, received) = tokio::time::timeout(
            Duration::from_secs(20),
            futures_util::future::join(sending.outcome(), receiving.outcome()),
        )
        .await
        .expect("both sides end");
        match &received {
            Ok(o) => {
                ok += 1;
                assert_eq!(o.bytes, 40_000);
                assert_eq!(listing(dst.path()), std::slice::from_ref(&name));
                assert_eq!(sha256_file(&dst.path().join(&name)), sha256_hex(&data));
            }
            Err(e) => {
                cancelled += 1;
                assert!(
                    matches!(
                        e.kind,
                        ErrorKind::Cancelled(_) | ErrorKind::Truncated { .. }
                    ),
                    "{e}"
                );
                assert!(!dst.path().join(&name).exists(), "no file after {e}");
            }
        }
        if let Err(e) = &sent {
            assert!(matches!(e.kind, ErrorKind::Cancelled(_)), "{e}");
        }
    }
    eprintln!("received whole: {ok}, ended by the cancel: {cancelled}");
}
