//! The receiver's files (BAD-INPUT G6, G8, B4; issue 10 findings 2 and 3): a `.part` that
//! is not ours is never adopted or written through, a part of ours is resumed only for the
//! same file, an offer larger than the free space is refused before anything is opened,
//! and a sender whose file the receiver rejects is never told it was delivered.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ft_facade::{
    AcceptOptions, Delivery, ErrorKind, FileInfo, Method, Policy, Refusal, SendOptions, Stage,
    Warning,
};
use ft_transport::hub::{Hub, HubTransport};
use ft_transport::iq::IqTracker;
use tokio::io::AsyncWriteExt;
use xep0096_file::{File, FileOffer, Range, answer_range};
use xmpp_parsers::stanza_error::DefinedCondition;

const WAIT: Duration = Duration::from_secs(30);

async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(WAIT, f).await.expect("bounded")
}

/// A raw sender on the hub: offers exactly the `<file/>` it is given and streams exactly
/// the bytes it is given over IBB.
struct Raw {
    t: HubTransport,
    tracker: Arc<IqTracker>,
    ibb: xep0047_ibb::Ibb<HubTransport>,
}

impl Raw {
    fn new(hub: &Hub, me: &str) -> Self {
        let (t, mut rx) = hub.connect(jid(me));
        let tracker = Arc::new(IqTracker::new("raw"));
        let ibb = xep0047_ibb::Ibb::new(t.clone(), xep0047_ibb::Config::default());
        let (tr, ib) = (tracker.clone(), ibb.clone());
        tokio::spawn(async move {
            while let Some(s) = rx.recv().await {
                ib.ready().await;
                if let std::ops::ControlFlow::Continue(s) = tr.handle_stanza(s) {
                    let _ = ib.handle_stanza(s);
                }
            }
        });
        Self { t, tracker, ibb }
    }

    /// Offers `file` on `sid`; the range the receiver asked for.
    async fn offer(&self, to: &str, sid: &str, file: File) -> Option<Range> {
        let si = FileOffer::si(
            &xep0095_si::Sid::new(sid).unwrap(),
            file,
            None,
            &[xep0095_si::method::IBB],
        );
        let accepted = xep0095_si::offer(&self.tracker, &self.t, jid(to), si, WAIT)
            .await
            .unwrap();
        answer_range(&accepted).unwrap()
    }

    /// Opens IBB on `sid`, sends `bytes`, closes.
    async fn stream(&self, to: &str, sid: &str, bytes: &[u8]) {
        let mut s = self
            .ibb
            .open(
                jid(to),
                ft_facade::Sid::new(sid).unwrap(),
                xep0047_ibb::OpenOptions::default(),
            )
            .await
            .unwrap();
        s.write_all(bytes).await.unwrap();
        s.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn g6_a_user_part_file_of_the_same_name_is_never_adopted() {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", config(&[Method::S5b]));
    let bob = entity(&hub, "bob@x/b", config(&[Method::S5b, Method::Ibb]));
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    // The user's browser is downloading another movie.mkv into the same directory.
    let theirs = content(150_000, 20);
    std::fs::write(dst.path().join("movie.mkv.part"), &theirs).unwrap();
    let data = content(400_000, 21);
    let path = write_file(src.path(), "movie.mkv", &data);

    let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let receiving = within(bob.next_offer())
        .await
        .unwrap()
        .accept_into_dir(dst.path(), AcceptOptions::new());
    let (sent, received) =
        within(async { tokio::join!(sending.outcome(), receiving.outcome()) }).await;
    let (sent, received) = (sent.unwrap(), received.unwrap());
    assert_eq!((sent.offset, received.offset), (0, 0), "nothing resumed");
    let on_disk = received.path.unwrap();
    assert_eq!(on_disk, dst.path().join("movie.mkv"));
    assert_eq!(sha256_file(&on_disk), sha256_hex(&data));
    assert_eq!(
        std::fs::read(dst.path().join("movie.mkv.part")).unwrap(),
        theirs,
        "the user's file is untouched, byte for byte"
    );
    assert_eq!(listing(dst.path()), ["movie.mkv", "movie.mkv.part"]);
}

#[tokio::test]
async fn g6_a_planted_symlink_part_is_never_written_through() {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", config(&[Method::S5b]));
    let bob = entity(&hub, "bob@x/b", config(&[Method::S5b, Method::Ibb]));
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    // x.bin.part -> ~/.bashrc (longer than the offered file).
    let bashrc = home.path().join(".bashrc");
    let precious = content(1_000_000, 22);
    std::fs::write(&bashrc, &precious).unwrap();
    std::os::unix::fs::symlink(&bashrc, dst.path().join("x.bin.part")).unwrap();
    let data = content(100_000, 23);
    let path = write_file(src.path(), "x.bin", &data);

    let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let receiving = within(bob.next_offer())
        .await
        .unwrap()
        .accept_into_dir(dst.path(), AcceptOptions::new());
    let (sent, received) =
        within(async { tokio::join!(sending.outcome(), receiving.outcome()) }).await;
    sent.unwrap();
    let on_disk = received.unwrap().path.unwrap();
    assert_eq!(on_disk, dst.path().join("x.bin"));
    assert_eq!(sha256_file(&on_disk), sha256_hex(&data));
    assert_eq!(
        sha256_file(&bashrc),
        sha256_hex(&precious),
        "never written through"
    );
    assert!(dst.path().join("x.bin.part").is_symlink());
    assert_eq!(listing(dst.path()), ["x.bin", "x.bin.part"]);
}

#[tokio::test]
async fn g8_v1_prefix_is_never_joined_to_v2_tail_without_hash_or_date() {
    let hub = Hub::new();
    let bob = entity(&hub, "bob@x/b", config(&[Method::Ibb]));
    let raw = Raw::new(&hub, "alice@x/a");
    let dst = tempfile::tempdir().unwrap();
    let v1 = content(200_000, 24);
    let v2 = content(200_000, 25);
    // Ranged, no hash, no date: what most senders offer.
    let offered = || File::new("doc.pdf", 200_000).with_ranged();

    // v1 is cut after half its bytes: the part is kept for a resume.
    let offering = raw.offer("bob@x/b", "v1", offered());
    let accept = async {
        within(bob.next_offer())
            .await
            .unwrap()
            .accept_into_dir(dst.path(), AcceptOptions::new())
    };
    let (range, receiving) = tokio::join!(offering, accept);
    assert_eq!(range, None);
    raw.stream("bob@x/b", "v1", &v1[..100_000]).await;
    let err = within(receiving.outcome()).await.unwrap_err();
    assert!(
        matches!(err.kind, ErrorKind::Truncated { got: 100_000, .. }),
        "{err}"
    );
    assert_eq!(listing(dst.path()), ["doc.pdf.part", "doc.pdf.part.xft"]);

    // v2: same name, same size, nothing else to tell it from v1: the receiver asks for the
    // whole file, never for v1's missing half.
    let offering = raw.offer("bob@x/b", "v2", offered());
    let accept = async {
        within(bob.next_offer())
            .await
            .unwrap()
            .accept_into_dir(dst.path(), AcceptOptions::new())
    };
    let (range, receiving) = tokio::join!(offering, accept);
    assert_eq!(range, None, "no <range offset/> asked for");
    raw.stream("bob@x/b", "v2", &v2).await;
    let received = within(receiving.outcome()).await.unwrap();
    assert_eq!(received.offset, 0);
    assert_eq!(sha256_file(&dst.path().join("doc.pdf")), sha256_hex(&v2));
    assert_eq!(listing(dst.path()), ["doc.pdf"]);
}

#[tokio::test]
async fn g8_a_cut_transfer_resumes_only_for_the_same_dated_file() {
    let hub = Hub::new();
    let bob = entity(&hub, "bob@x/b", config(&[Method::Ibb]));
    let raw = Raw::new(&hub, "alice@x/a");
    let dst = tempfile::tempdir().unwrap();
    let v1 = content(300_000, 26);
    let dated = |date: &str| File {
        date: Some(date.to_owned()),
        ..File::new("photo.jpg", 300_000).with_ranged()
    };
    let accept = || async {
        within(bob.next_offer())
            .await
            .unwrap()
            .accept_into_dir(dst.path(), AcceptOptions::new())
    };

    let (range, receiving) = tokio::join!(
        raw.offer("bob@x/b", "a1", dated("2026-01-01T00:00:00Z")),
        accept()
    );
    assert_eq!(range, None);
    raw.stream("bob@x/b", "a1", &v1[..123_456]).await;
    within(receiving.outcome()).await.unwrap_err();

    // The same file again: everything received before is kept (synced when cut).
    let (range, receiving) = tokio::join!(
        raw.offer("bob@x/b", "a2", dated("2026-01-01T00:00:00Z")),
        accept()
    );
    assert_eq!(range, Some(Range::from_offset(123_456)));
    raw.stream("bob@x/b", "a2", &v1[123_456..]).await;
    let received = within(receiving.outcome()).await.unwrap();
    assert_eq!(received.offset, 123_456);
    assert_eq!(received.sha256, sha256_hex(&v1));
    assert_eq!(sha256_file(&dst.path().join("photo.jpg")), sha256_hex(&v1));
    assert_eq!(listing(dst.path()), ["photo.jpg"]);
}

#[tokio::test]
async fn g8_a_file_the_receiver_rejects_is_never_acknowledged_to_the_sender() {
    // S5B: the receiver resets the connection instead of closing it.
    rejected_file_is_never_acknowledged(Method::S5b, Warning::ResetByReceiver).await;
}

#[tokio::test]
async fn g8_a_file_the_receiver_rejects_over_ibb_is_never_acknowledged_to_the_sender() {
    // IBB: the receiver's session holds its answer to the sender's <close/> until the file
    // is checked, then answers not-acceptable (before, the session answered a result at
    // once and the sender reported "acknowledged").
    rejected_file_is_never_acknowledged(Method::Ibb, Warning::RefusedByReceiver).await;
}

async fn rejected_file_is_never_acknowledged(method: Method, warning: Warning) {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", config(&[method]));
    let bob = entity(&hub, "bob@x/b", config(&[method]));
    let dst = tempfile::tempdir().unwrap();
    let v1 = content(200_000, 27);
    let v2 = content(200_000, 28);
    // The sender offers v1's MD5 and sends v2's bytes (a file changed after it was hashed).
    let mut info = FileInfo::new("report.pdf", v2.len() as u64);
    info.md5 = Some(hex::encode(<md5::Md5 as md5::Digest>::digest(&v1)));
    let sending = alice.send_reader(
        jid("bob@x/b"),
        std::io::Cursor::new(v2.clone()),
        info,
        SendOptions::default(),
    );
    let receiving = within(bob.next_offer())
        .await
        .unwrap()
        .accept_into_dir(dst.path(), AcceptOptions::new());
    let (sent, received) =
        within(async { tokio::join!(sending.outcome(), receiving.outcome()) }).await;
    let err = received.unwrap_err();
    assert_eq!(err.stage, Stage::Verify);
    assert!(matches!(err.kind, ErrorKind::HashMismatch { .. }), "{err}");
    assert!(listing(dst.path()).is_empty(), "{:?}", listing(dst.path()));
    // The sender's transfer ran to its end, but the receiver said it was not kept.
    let sent = sent.unwrap();
    assert_eq!(sent.delivery, Delivery::Unconfirmed);
    assert_eq!(sent.warnings, [warning]);

    // The same file sent right: acknowledged, landed.
    let mut info = FileInfo::new("report.pdf", v2.len() as u64);
    info.md5 = Some(hex::encode(<md5::Md5 as md5::Digest>::digest(&v2)));
    let sending = alice.send_reader(
        jid("bob@x/b"),
        std::io::Cursor::new(v2.clone()),
        info,
        SendOptions::default(),
    );
    let receiving = within(bob.next_offer())
        .await
        .unwrap()
        .accept_into_dir(dst.path(), AcceptOptions::new());
    let (sent, received) =
        within(async { tokio::join!(sending.outcome(), receiving.outcome()) }).await;
    received.unwrap();
    assert_eq!(sent.unwrap().delivery, Delivery::Acknowledged);
    assert_eq!(sha256_file(&dst.path().join("report.pdf")), sha256_hex(&v2));
}

#[tokio::test]
async fn b4_an_offer_larger_than_the_free_space_is_refused_forbidden() {
    const HUGE: u64 = u64::MAX / 2;
    let hub = Hub::new();
    let inbox = tempfile::tempdir().unwrap();
    let mut c = config(&[Method::Ibb]);
    c.policy(Policy::auto_accept(
        vec![jid("alice@x/a").to_bare()],
        inbox.path(),
    ));
    let bob = entity(&hub, "bob@x/b", c);
    let alice = entity(&hub, "alice@x/a", config(&[Method::Ibb]));

    // Auto-accepted into a directory: the manager refuses it, and says so.
    let sending = alice.send_reader(
        jid("bob@x/b"),
        tokio::io::empty(),
        FileInfo::new("huge.iso", HUGE),
        SendOptions::default(),
    );
    let err = within(sending.outcome()).await.unwrap_err();
    assert_eq!(err.stage, Stage::Offer);
    assert!(
        matches!(&err.kind, ErrorKind::Declined { text: Some(t) } if t.contains("does not fit")),
        "{err}"
    );
    let refused = within(bob.next_refused()).await.unwrap();
    assert!(
        matches!(refused.reason, Refusal::NoSpace { size: HUGE, available } if available < HUGE),
        "{:?}",
        refused.reason
    );
    let answer = refused.answer.unwrap();
    assert_eq!(answer.defined_condition, DefinedCondition::Forbidden);
    assert!(listing(inbox.path()).is_empty());

    // Accepted by the application into a directory: declined the same way, nothing opened.
    let carol = entity(&hub, "carol@x/c", config(&[Method::Ibb]));
    let sending = alice.send_reader(
        jid("carol@x/c"),
        tokio::io::empty(),
        FileInfo::new("huge.iso", HUGE),
        SendOptions::default(),
    );
    let dst = tempfile::tempdir().unwrap();
    let receiving = within(carol.next_offer())
        .await
        .unwrap()
        .accept_into_dir(dst.path(), AcceptOptions::new());
    let err = within(receiving.outcome()).await.unwrap_err();
    assert_eq!(err.stage, Stage::Prepare);
    assert!(
        matches!(err.kind, ErrorKind::NoSpace { size: HUGE, .. }),
        "{err}"
    );
    let err = within(sending.outcome()).await.unwrap_err();
    assert!(
        matches!(&err.kind, ErrorKind::Declined { text: Some(t) } if t.contains("does not fit")),
        "{err}"
    );
    assert!(listing(dst.path()).is_empty());
}

#[tokio::test]
async fn g6_a_fifo_at_the_part_name_is_never_opened() {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", config(&[Method::S5b]));
    let bob = entity(&hub, "bob@x/b", config(&[Method::S5b]));
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let fifo = dst.path().join("pipe.bin.part");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // Our own end (read and write, so the open does not wait for a peer): whatever anyone
    // wrote into the FIFO would come out of it before our own marker.
    let mut end = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    let data = content(2 << 20, 29);
    let path = write_file(src.path(), "pipe.bin", &data);
    let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let receiving = within(bob.next_offer())
        .await
        .unwrap()
        .accept_into_dir(dst.path(), AcceptOptions::new().with_keep_partial(false));
    let (sent, received) =
        within(async { tokio::join!(sending.outcome(), receiving.outcome()) }).await;
    sent.unwrap();
    let on_disk = received.unwrap().path.unwrap();
    assert_eq!(on_disk, dst.path().join("pipe.bin"));
    assert_eq!(sha256_file(&on_disk), sha256_hex(&data));
    std::io::Write::write_all(&mut end, b"END").unwrap();
    let mut buf = [0u8; 3];
    std::io::Read::read_exact(&mut end, &mut buf).unwrap();
    assert_eq!(&buf, b"END", "nothing was written into the FIFO");
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&kind));
    assert_eq!(listing(dst.path()), ["pipe.bin", "pipe.bin.part"]);
}

#[tokio::test]
async fn g10_a_file_that_shrinks_while_sent_fails_the_send_and_is_never_padded() {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", config(&[Method::Ibb]));
    let bob = entity(&hub, "bob@x/b", config(&[Method::Ibb]));
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let data = content(300_000, 30);
    let path = write_file(src.path(), "log.txt", &data);
    let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let offer = within(bob.next_offer()).await.unwrap();
    // Offered (size and MD5 read), then cut to a third before a byte is sent.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(100_000)
        .unwrap();
    let receiving = offer.accept_into_dir(dst.path(), AcceptOptions::new());
    let (sent, received) =
        within(async { tokio::join!(sending.outcome(), receiving.outcome()) }).await;
    let err = sent.unwrap_err();
    assert_eq!(err.stage, Stage::Stream);
    assert!(
        matches!(&err.kind, ErrorKind::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof),
        "{err}"
    );
    let err = received.unwrap_err();
    assert!(
        matches!(err.kind, ErrorKind::Truncated { expected: 300_000, got } if got <= 100_000),
        "{err}"
    );
    assert!(
        !dst.path().join("log.txt").exists(),
        "never reported complete"
    );
}
