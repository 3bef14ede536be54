//! The receiver's stack-neutral data path with a hash that arrives after the bytes began
//! (Jingle's `<checksum/>` in session-info). No stack hands one over yet (SI has none), so
//! these drive [`receive::prepare`] and [`receive::land`] directly, on a real `.part` in a
//! temporary directory, over an in-memory bytestream.

use std::time::Duration;

use sha2::Digest as _;
use tokio::io::AsyncWriteExt;
use xep0096_file::PartKey;

use crate::error::{ErrorKind, Stage, TransferError};
use crate::event::{Delivery, MethodUsed, Outcome};
use crate::handle::pair;
use crate::options::AcceptOptions;
use crate::receive::{self, Destination, Landing};
use crate::recv_stream::Sink;
use crate::stack::{Established, Incoming};
use crate::verify::{Expectations, ExpectedHash, HashAlgo, LateHashes};

const CONTENT: &[u8] = b"the bytes of a file whose checksum comes in session-info";

/// The expected BLAKE2b-512, computed by RustCrypto directly (the transfer's own comes from
/// the `xep0300-hashes` hasher behind [`crate::verify::digest_for`]).
fn blake2b512(data: &[u8]) -> Vec<u8> {
    <blake2::Blake2b512 as blake2::Digest>::digest(data).to_vec()
}

fn sha256(data: &[u8]) -> Vec<u8> {
    sha2::Sha256::digest(data).to_vec()
}

fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Receives `content[offset..end]` (the offset the prepared target resumes from, `end` the
/// whole length unless `cut`) into `dir` as `incoming` describes, the bytestream written
/// by a task; `at_half` runs once the first half of those bytes is written, and what it
/// returns is dropped a little after the last one (a stack holding a late-hash handle).
/// The sink comes back for a failed transfer, as `receive` has it for its cleanup.
async fn receive_bytes<K: Send + 'static>(
    dir: &std::path::Path,
    incoming: Incoming,
    content: &'static [u8],
    cut: Option<usize>,
    at_half: impl FnOnce() -> K + Send + 'static,
) -> (Result<Outcome, TransferError>, Option<Sink>) {
    let size = incoming.key.size;
    let options = AcceptOptions::new();
    let target = receive::prepare(
        &crate::Policy::default(),
        &incoming,
        Destination::Dir(dir.to_owned()),
        &options,
    )
    .await
    .map_err(|(e, _)| e)
    .expect("the part opens");
    let offset = usize::try_from(target.offset).unwrap();
    let (ours, mut theirs) = tokio::io::duplex(1024);
    let sender = tokio::spawn(async move {
        let sent = &content[offset..cut.unwrap_or(content.len())];
        let (head, tail) = sent.split_at(sent.len() / 2);
        theirs.write_all(head).await.unwrap();
        let kept = at_half();
        theirs.write_all(tail).await.unwrap();
        theirs.shutdown().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(kept);
        theirs
    });
    let sid = ft_transport::Sid::new("late").unwrap();
    let peer: jid::Jid = "alice@example.org/a".parse().unwrap();
    let (_handle, mut side) = pair(sid.clone(), peer.clone(), size);
    let mut sink = Some(target.sink);
    let mut expectations = incoming.expectations;
    let established = Established {
        stream: Box::pin(ours),
        method: MethodUsed::IbbIq,
        fallback: false,
        stack: crate::Stack::Si,
    };
    let landing = Landing {
        peer: &peer,
        sid: &sid,
        offset: target.offset,
        extra: &target.extra,
        max_size: None,
        inactivity: Duration::from_secs(5),
    };
    let r = receive::land(
        &mut side,
        established,
        &mut sink,
        &mut expectations,
        &options,
        landing,
    )
    .await;
    let _ = sender.await;
    (r, sink)
}

/// Receives [`CONTENT`] into `dir` as `late.bin`, with a SHA-256 to come late; `set` gets
/// the late-hash handle once half the bytes are written (and may keep it, set it, or drop
/// it).
async fn receive_with_late_hash(
    dir: &std::path::Path,
    late_wait: Duration,
    set: impl FnOnce(LateHashes) -> Option<LateHashes> + Send + 'static,
) -> Result<Outcome, TransferError> {
    let size = CONTENT.len() as u64;
    let mut expectations = Expectations::new(Some(size), Vec::new());
    expectations.late_wait = late_wait;
    let late = expectations.late(&[HashAlgo::Sha256]);
    let incoming = Incoming {
        key: PartKey::new("late.bin", size),
        ranged: false,
        expectations,
    };
    receive_bytes(dir, incoming, CONTENT, None, move || set(late))
        .await
        .0
}

#[tokio::test]
async fn a_late_sha256_set_while_the_bytes_flow_is_checked_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let want = sha256(CONTENT);
    let got = receive_with_late_hash(dir.path(), Duration::from_secs(5), move |late| {
        late.set(HashAlgo::Sha256, want);
        Some(late)
    })
    .await
    .expect("received");
    assert_eq!(got.verified_by, Some(HashAlgo::Sha256));
    assert_eq!(
        got.delivery,
        Delivery::Received {
            size_checked: true,
            hash_checked: true
        }
    );
    assert_eq!(got.sha256, hex::encode(sha256(CONTENT)));
    assert_eq!(listing(dir.path()), ["late.bin"]);
    assert_eq!(std::fs::read(dir.path().join("late.bin")).unwrap(), CONTENT);
}

#[tokio::test]
async fn a_late_hash_set_after_the_last_byte_is_still_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let want = sha256(CONTENT);
    let got = receive_with_late_hash(dir.path(), Duration::from_secs(5), move |late| {
        tokio::spawn(async move {
            // Well after the stream's end: verification waits for it.
            tokio::time::sleep(Duration::from_millis(300)).await;
            late.set(HashAlgo::Sha256, want);
            tokio::time::sleep(Duration::from_secs(1)).await;
            drop(late);
        });
        None
    })
    .await
    .expect("received");
    assert_eq!(got.verified_by, Some(HashAlgo::Sha256));
    assert_eq!(listing(dir.path()), ["late.bin"]);
}

#[tokio::test]
async fn a_late_hash_that_never_comes_leaves_the_size_checked_and_the_hash_not() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    // The stack keeps the handle past the wait and never sets it.
    let got = receive_with_late_hash(dir.path(), Duration::from_millis(200), |late| {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            drop(late);
        });
        None
    })
    .await
    .expect("received");
    assert!(started.elapsed() >= Duration::from_millis(200), "it waited");
    assert!(started.elapsed() < Duration::from_secs(2), "bounded");
    assert_eq!(got.verified_by, None);
    assert_eq!(
        got.delivery,
        Delivery::Received {
            size_checked: true,
            hash_checked: false
        }
    );
    assert_eq!(std::fs::read(dir.path().join("late.bin")).unwrap(), CONTENT);

    // A stack that lets go of the handle says nothing more comes: no wait at all.
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let got = receive_with_late_hash(dir.path(), Duration::from_secs(30), |_late| None)
        .await
        .expect("received");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(got.verified_by, None);
}

#[tokio::test]
async fn a_wrong_late_hash_fails_at_verify_and_leaves_nothing_under_the_final_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut wrong = sha256(CONTENT);
    wrong[0] ^= 1;
    let offered = hex::encode(&wrong);
    let err = receive_with_late_hash(dir.path(), Duration::from_secs(5), move |late| {
        late.set(HashAlgo::Sha256, wrong);
        Some(late)
    })
    .await
    .expect_err("a wrong hash fails");
    assert_eq!(err.stage, Stage::Verify);
    match &err.kind {
        ErrorKind::HashMismatch {
            algo,
            offered: o,
            received,
        } => {
            assert_eq!(*algo, HashAlgo::Sha256);
            assert_eq!(*o, offered);
            assert_eq!(*received, hex::encode(sha256(CONTENT)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.kind.to_string(),
        format!(
            "sha-256 mismatch: offered {offered}, received {}",
            hex::encode(sha256(CONTENT))
        )
    );
    // Neither the file nor its .part (nor the sidecar) is left.
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
}

/// An offer of `name` with a date (so a part of it can be resumed) and BLAKE2b-512 `value`.
fn blake2b_offer(name: &str, value: Vec<u8>) -> Incoming {
    let size = CONTENT.len() as u64;
    let hashes = vec![ExpectedHash {
        algo: HashAlgo::Blake2b512,
        value,
    }];
    Incoming {
        key: PartKey::new(name, size)
            .with_peer("alice@example.org")
            .with_date("2026-12-06T19:00:00Z"),
        ranged: true,
        expectations: Expectations::new(Some(size), hashes),
    }
}

#[tokio::test]
async fn an_offered_hash_of_another_algorithm_is_computed_on_the_pool_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let incoming = blake2b_offer("b.bin", blake2b512(CONTENT));
    let (r, _) = receive_bytes(dir.path(), incoming, CONTENT, None, || ()).await;
    let got = r.expect("received");
    assert_eq!(got.verified_by, Some(HashAlgo::Blake2b512));
    assert_eq!(std::fs::read(dir.path().join("b.bin")).unwrap(), CONTENT);

    let mut wrong = blake2b512(CONTENT);
    wrong[63] ^= 0x80;
    let incoming = blake2b_offer("c.bin", wrong);
    let (r, _) = receive_bytes(dir.path(), incoming, CONTENT, None, || ()).await;
    let err = r.expect_err("a wrong blake2b-512 fails");
    assert_eq!(err.stage, Stage::Verify);
    assert!(
        matches!(
            err.kind,
            ErrorKind::HashMismatch {
                algo: HashAlgo::Blake2b512,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(listing(dir.path()), ["b.bin"], "nothing of c.bin is left");
}

#[tokio::test]
async fn a_resumed_part_feeds_its_prefix_once_to_every_digest_and_the_whole_file_checks() {
    let dir = tempfile::tempdir().unwrap();
    let cut = CONTENT.len() / 3;
    // The first attempt ends early: the part keeps what came (synced, as `receive` does
    // for a kept part).
    let incoming = blake2b_offer("r.bin", blake2b512(CONTENT));
    let (r, mut sink) = receive_bytes(dir.path(), incoming, CONTENT, Some(cut), || ()).await;
    assert!(matches!(r.unwrap_err().kind, ErrorKind::Truncated { .. }));
    let Some(Sink::Part(part)) = sink.as_mut() else {
        panic!("the part comes back")
    };
    part.checkpoint().await.unwrap();
    drop(sink);
    // The second resumes at the cut: the prefix is read once, by the part, into every
    // digest, and only the rest comes over the stream.
    let incoming = blake2b_offer("r.bin", blake2b512(CONTENT));
    let (r, _) = receive_bytes(dir.path(), incoming, CONTENT, None, || ()).await;
    let got = r.expect("resumed");
    assert_eq!(got.offset, cut as u64);
    assert_eq!(got.bytes, (CONTENT.len() - cut) as u64);
    assert_eq!(got.verified_by, Some(HashAlgo::Blake2b512));
    assert_eq!(got.sha256, hex::encode(sha256(CONTENT)));
    assert_eq!(listing(dir.path()), ["r.bin"]);
    assert_eq!(std::fs::read(dir.path().join("r.bin")).unwrap(), CONTENT);
}
