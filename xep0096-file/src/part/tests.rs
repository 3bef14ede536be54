//! Tests of the `.part` writer.

use super::naming::numbered;
use super::*;
use crate::hash::Hasher;
use tokio::fs::OpenOptions;

pub(super) fn expected_for(data: &[u8]) -> Expected {
    let mut h = Hasher::new();
    h.update(data);
    let d = h.finish();
    Expected {
        size: Some(data.len() as u64),
        md5: Some(d.md5),
        sha256: Some(d.sha256),
    }
}

/// The key of a file offered with its MD5 (which identifies it for a resume).
pub(super) fn key_for(name: &str, data: &[u8]) -> PartKey {
    let md5 = expected_for(data).md5.unwrap();
    PartKey::new(name, data.len() as u64)
        .with_peer("alice@example.org")
        .with_md5(md5)
}

pub(super) fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_verified_file_lands_under_its_name_with_identical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
    let mut p = PartFile::create(dir.path(), "report.pdf", data.len() as u64)
        .await
        .unwrap();
    assert_eq!(p.offset(), 0);
    assert_eq!(p.range(), None);
    for c in data.chunks(999) {
        p.write(c).await.unwrap();
    }
    let path = p
        .finish(&expected_for(&data), Collision::Rename)
        .await
        .unwrap();
    assert_eq!(path, dir.path().join("report.pdf"));
    assert_eq!(std::fs::read(&path).unwrap(), data);
    assert_eq!(names(dir.path()), ["report.pdf"]);
}

#[tokio::test]
async fn g7_more_bytes_than_offered_are_refused_and_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = PartFile::create(dir.path(), "a.bin", 4).await.unwrap();
    p.write(b"abc").await.unwrap();
    let err = p.write(b"de").await.unwrap_err();
    assert!(matches!(
        err,
        WriteError::TooManyBytes {
            expected: 4,
            received: 5
        }
    ));
    assert_eq!(p.offset(), 3);
    p.checkpoint().await.unwrap();
    assert_eq!(std::fs::metadata(p.part_path()).unwrap().len(), 3);
}

#[tokio::test]
async fn a_short_stream_is_a_size_mismatch_and_keeps_the_part_for_resume() {
    let dir = tempfile::tempdir().unwrap();
    let data = b"0123456789";
    let mut p = PartFile::open(dir.path(), &key_for("a.bin", data))
        .await
        .unwrap();
    p.write(&data[..6]).await.unwrap();
    let err = p
        .finish(&expected_for(data), Collision::Rename)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        WriteError::SizeMismatch {
            expected: 10,
            received: 6
        }
    ));
    assert_eq!(names(dir.path()), ["a.bin.part", "a.bin.part.xft"]);

    // Resume: the offset is what is on disk and the hash covers it.
    let mut p = PartFile::open(dir.path(), &key_for("a.bin", data))
        .await
        .unwrap();
    assert_eq!(p.offset(), 6);
    assert_eq!(p.range(), Some(Range::from_offset(6)));
    p.write(&data[6..]).await.unwrap();
    let path = p
        .finish(&expected_for(data), Collision::Rename)
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), data);
    assert_eq!(names(dir.path()), ["a.bin"]);
}

#[tokio::test]
async fn a_hash_mismatch_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = PartFile::create(dir.path(), "a.bin", 3).await.unwrap();
    p.write(b"abd").await.unwrap();
    let err = p
        .finish(&expected_for(b"abc"), Collision::Rename)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        WriteError::HashMismatch {
            algorithm: "md5",
            ..
        }
    ));
    assert!(names(dir.path()).is_empty());
}

#[tokio::test]
async fn a_sha256_mismatch_is_caught_without_an_md5() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = PartFile::create(dir.path(), "a.bin", 3).await.unwrap();
    p.write(b"abd").await.unwrap();
    let mut e = expected_for(b"abc");
    e.md5 = None;
    let err = p.finish(&e, Collision::Rename).await.unwrap_err();
    assert!(matches!(
        err,
        WriteError::HashMismatch {
            algorithm: "sha-256",
            ..
        }
    ));
}

#[tokio::test]
async fn an_existing_file_is_never_overwritten_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), b"old").unwrap();
    std::fs::write(dir.path().join("a (1).txt"), b"old1").unwrap();

    let mut p = PartFile::create(dir.path(), "a.txt", 3).await.unwrap();
    p.write(b"new").await.unwrap();
    let path = p
        .finish(&expected_for(b"new"), Collision::Rename)
        .await
        .unwrap();
    assert_eq!(path, dir.path().join("a (2).txt"));
    assert_eq!(std::fs::read(dir.path().join("a.txt")).unwrap(), b"old");

    let mut p = PartFile::open(dir.path(), &key_for("a.txt", b"new"))
        .await
        .unwrap();
    p.write(b"new").await.unwrap();
    let err = p
        .finish(&expected_for(b"new"), Collision::Fail)
        .await
        .unwrap_err();
    assert!(matches!(err, WriteError::Exists(ref p) if p.ends_with("a.txt")));
    assert_eq!(std::fs::read(dir.path().join("a.txt")).unwrap(), b"old");

    let mut p = PartFile::open(dir.path(), &key_for("a.txt", b"new"))
        .await
        .unwrap();
    assert_eq!(p.offset(), 3, "the verified part was kept");
    let path = p
        .finish(&expected_for(b"new"), Collision::Replace)
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), b"new");
    p = PartFile::create(dir.path(), "b", 0).await.unwrap();
    p.discard().await.unwrap();
    assert_eq!(names(dir.path()), ["a (1).txt", "a (2).txt", "a.txt"]);
}

#[tokio::test]
async fn g9_a_full_disk_fails_the_transfer_and_leaves_no_final_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = PartFile::create(dir.path(), "a.bin", 1 << 20)
        .await
        .unwrap();
    let full = OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .await
        .unwrap();
    p.replace_file_for_test(full);
    let chunk = vec![0u8; 64 * 1024];
    let mut err = None;
    for _ in 0..16 {
        if let Err(e) = p.write(&chunk).await {
            err = Some(e);
            break;
        }
    }
    let err = match err {
        Some(e) => e,
        None => p
            .finish(
                &Expected {
                    size: Some(1 << 20),
                    md5: None,
                    sha256: None,
                },
                Collision::Rename,
            )
            .await
            .unwrap_err(),
    };
    let WriteError::Io { source, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(source.kind(), io::ErrorKind::StorageFull);
    assert!(!dir.path().join("a.bin").exists());
}

#[tokio::test]
async fn a_full_disk_on_flush_fails_finish() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = PartFile::create(dir.path(), "a.bin", 3).await.unwrap();
    let full = OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .await
        .unwrap();
    p.replace_file_for_test(full);
    // tokio buffers the write and reports the error on the next operation.
    let r = p.write(b"abc").await;
    let err = match r {
        Err(e) => e,
        Ok(()) => p
            .finish(&expected_for(b"abc"), Collision::Rename)
            .await
            .unwrap_err(),
    };
    assert!(
        matches!(err, WriteError::Io { ref source, .. } if source.kind() == io::ErrorKind::StorageFull)
    );
    assert!(!dir.path().join("a.bin").exists());
}

#[tokio::test]
async fn traversal_names_stay_in_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("in");
    std::fs::create_dir(&inner).unwrap();
    let mut p = PartFile::create(&inner, "../../escape.txt", 2)
        .await
        .unwrap();
    p.write(b"hi").await.unwrap();
    let path = p
        .finish(&expected_for(b"hi"), Collision::Rename)
        .await
        .unwrap();
    assert_eq!(path, inner.join("escape.txt"));
    assert_eq!(names(dir.path()), ["in"]);
    assert!(matches!(
        PartFile::create(&inner, "..", 1).await,
        Err(WriteError::Name(crate::NameError::DotName(_)))
    ));
}

#[tokio::test]
async fn an_empty_file_is_received_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let p = PartFile::create(dir.path(), "empty", 0).await.unwrap();
    let path = p
        .finish(&expected_for(b""), Collision::Rename)
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), b"");
    assert_eq!(names(dir.path()), ["empty"]);
}

#[tokio::test]
async fn two_receivers_of_one_name_at_once_get_their_own_part_and_both_files_land_intact() {
    let dir = tempfile::tempdir().unwrap();
    let one: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
    let two: Vec<u8> = (0..300_000u32).map(|i| (i * 13 + 5) as u8).collect();
    let mut a = PartFile::create(dir.path(), "photo.jpg", one.len() as u64)
        .await
        .unwrap();
    let mut b = PartFile::create(dir.path(), "photo.jpg", two.len() as u64)
        .await
        .unwrap();
    assert_eq!(a.part_path(), dir.path().join("photo.jpg.part"));
    assert_eq!(b.part_path(), dir.path().join("photo (1).jpg.part"));
    assert_eq!(
        b.offset(),
        0,
        "the second one does not resume the first one's bytes"
    );
    // Interleaved, as two concurrent streams would arrive.
    for (x, y) in one.chunks(4096).zip(two.chunks(4096)) {
        a.write(x).await.unwrap();
        b.write(y).await.unwrap();
    }
    // The second finishes first.
    let pb = b
        .finish(&expected_for(&two), Collision::Rename)
        .await
        .unwrap();
    let pa = a
        .finish(&expected_for(&one), Collision::Rename)
        .await
        .unwrap();
    assert_eq!(pa, dir.path().join("photo.jpg"));
    assert_eq!(pb, dir.path().join("photo (1).jpg"));
    assert_eq!(std::fs::read(&pa).unwrap(), one);
    assert_eq!(std::fs::read(&pb).unwrap(), two);
    assert_eq!(names(dir.path()), ["photo (1).jpg", "photo.jpg"]);
}

#[tokio::test]
async fn a_held_part_is_never_truncated_by_a_second_create() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = PartFile::create(dir.path(), "a.bin", 6).await.unwrap();
    a.write(b"abc").await.unwrap();
    let b = PartFile::create(dir.path(), "a.bin", 6).await.unwrap();
    assert_eq!(b.part_path(), dir.path().join("a (1).bin.part"));
    a.write(b"def").await.unwrap();
    let path = a
        .finish(&expected_for(b"abcdef"), Collision::Rename)
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), b"abcdef");
    b.discard().await.unwrap();
    assert_eq!(names(dir.path()), ["a.bin"]);
}

#[tokio::test]
async fn a_part_nobody_holds_is_resumed_and_a_held_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let data = b"0123456789";
    let key = key_for("a.bin", data);
    let mut a = PartFile::open(dir.path(), &key).await.unwrap();
    a.write(&data[..4]).await.unwrap();
    // While `a` holds a.bin.part, a second receiver starts its own part.
    let b = PartFile::open(dir.path(), &key).await.unwrap();
    assert_eq!(b.offset(), 0);
    assert_eq!(b.part_path(), dir.path().join("a (1).bin.part"));
    b.discard().await.unwrap();
    // `a` is cut (dropped after a checkpoint, as a failed transfer does): its part is free
    // for a resume.
    a.checkpoint().await.unwrap();
    drop(a);
    let mut c = PartFile::open(dir.path(), &key).await.unwrap();
    assert_eq!(c.part_path(), dir.path().join("a.bin.part"));
    assert_eq!(c.offset(), 4);
    c.write(&data[4..]).await.unwrap();
    let path = c
        .finish(&expected_for(data), Collision::Rename)
        .await
        .unwrap();
    assert_eq!(path, dir.path().join("a.bin"));
    assert_eq!(std::fs::read(path).unwrap(), data);
}

#[tokio::test]
async fn a_numbered_part_replaces_its_own_numbered_name_not_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let a = PartFile::create(dir.path(), "r.txt", 2).await.unwrap();
    let mut b = PartFile::create(dir.path(), "r.txt", 2).await.unwrap();
    std::fs::write(dir.path().join("r.txt"), b"old").unwrap();
    b.write(b"hi").await.unwrap();
    let path = b
        .finish(&expected_for(b"hi"), Collision::Replace)
        .await
        .unwrap();
    assert_eq!(path, dir.path().join("r (1).txt"));
    assert_eq!(std::fs::read(dir.path().join("r.txt")).unwrap(), b"old");
    a.discard().await.unwrap();
}

#[tokio::test]
async fn start_over_empties_the_held_part() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_for("s.bin", b"newbytes");
    let mut p = PartFile::open(dir.path(), &key).await.unwrap();
    p.write(b"stale").await.unwrap();
    p.checkpoint().await.unwrap();
    drop(p);
    let mut p = PartFile::open(dir.path(), &key).await.unwrap();
    assert_eq!(p.offset(), 5);
    p.start_over().await.unwrap();
    assert_eq!((p.offset(), p.range()), (0, None));
    p.write(b"newbytes").await.unwrap();
    let path = p
        .finish(&expected_for(b"newbytes"), Collision::Rename)
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), b"newbytes");
    assert_eq!(names(dir.path()), ["s.bin"]);
}

#[tokio::test]
async fn without_md5_sha256_is_still_verified_and_an_expected_md5_is_never_passed() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = PartFile::create(dir.path(), "n.bin", 3).await.unwrap();
    p.skip_md5();
    p.write(b"abc").await.unwrap();
    assert_eq!(p.digests().await.unwrap().md5, None);
    let mut e = expected_for(b"abc");
    e.md5 = None;
    let path = p.finish(&e, Collision::Rename).await.unwrap();
    assert_eq!(std::fs::read(path).unwrap(), b"abc");

    let mut p = PartFile::create(dir.path(), "m.bin", 3).await.unwrap();
    p.skip_md5();
    p.write(b"abc").await.unwrap();
    let err = p
        .finish(&expected_for(b"abc"), Collision::Rename)
        .await
        .unwrap_err();
    assert!(matches!(err, WriteError::Io { op: "verify", .. }), "{err}");
    assert!(!dir.path().join("m.bin").exists());
    assert!(
        dir.path().join("m.bin.part").exists() && dir.path().join("m.bin.part.xft").exists(),
        "the content is not known bad"
    );
}

#[test]
fn numbered_names_keep_the_extension() {
    assert_eq!(numbered("a.tar.gz", 2), "a.tar (2).gz");
    assert_eq!(numbered("README", 1), "README (1)");
    assert_eq!(numbered(".x", 1), ".x (1)");
}
