//! Tests of what the `.part` writer never does (BAD-INPUT section G): write through a
//! symlink or a hard link, adopt a file it did not create, resume a part of another file or
//! past its verified length, overwrite on finalize.

use std::io::Write;

use super::tests::{expected_for, key_for, names};
use super::*;

fn data(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

async fn receive_whole(p: &mut PartFile, data: &[u8]) {
    for c in data[p.offset() as usize..].chunks(7_777) {
        p.write(c).await.unwrap();
    }
}

#[tokio::test]
async fn g6_a_user_part_file_of_the_same_name_is_never_adopted() {
    let dir = tempfile::tempdir().unwrap();
    // The browser's own partial download of another movie.mkv.
    let theirs = b"a browser's partial download".to_vec();
    std::fs::write(dir.path().join("movie.mkv.part"), &theirs).unwrap();
    let movie = data(100_000, 1);

    for resume in [true, false] {
        let mut p = if resume {
            PartFile::open(dir.path(), &key_for("movie.mkv", &movie))
                .await
                .unwrap()
        } else {
            PartFile::create(dir.path(), "movie.mkv", movie.len() as u64)
                .await
                .unwrap()
        };
        assert_eq!(p.offset(), 0, "nothing of the user's file is taken");
        assert_eq!(p.part_path(), dir.path().join("movie (1).mkv.part"));
        receive_whole(&mut p, &movie).await;
        let path = p
            .finish(&expected_for(&movie), Collision::Rename)
            .await
            .unwrap();
        let want = if resume { "movie.mkv" } else { "movie (1).mkv" };
        assert_eq!(path, dir.path().join(want), "the final name is free");
        assert_eq!(std::fs::read(&path).unwrap(), movie);
        assert_eq!(
            std::fs::read(dir.path().join("movie.mkv.part")).unwrap(),
            theirs,
            "the user's file is untouched"
        );
    }
    assert_eq!(
        names(dir.path()),
        ["movie (1).mkv", "movie.mkv", "movie.mkv.part"]
    );
}

#[tokio::test]
async fn g6_a_planted_symlink_part_is_never_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let bashrc = elsewhere.path().join(".bashrc");
    std::fs::write(&bashrc, b"export PATH=/usr/bin\n").unwrap();
    let secret = elsewhere.path().join("secret");
    std::fs::write(&secret, b"keep me").unwrap();
    // x.part -> ~/.bashrc; its sidecar name -> another file; y.part dangling.
    std::os::unix::fs::symlink(&bashrc, dir.path().join("x.part")).unwrap();
    std::os::unix::fs::symlink(&secret, dir.path().join("x (1).part.xft")).unwrap();
    std::os::unix::fs::symlink(elsewhere.path().join("nothing"), dir.path().join("y.part"))
        .unwrap();
    let body = data(50_000, 2);

    let mut p = PartFile::open(dir.path(), &key_for("x", &body))
        .await
        .unwrap();
    assert_eq!(p.offset(), 0);
    assert_eq!(p.part_path(), dir.path().join("x (2).part"));
    receive_whole(&mut p, &body).await;
    let path = p
        .finish(&expected_for(&body), Collision::Rename)
        .await
        .unwrap();
    assert_eq!(path, dir.path().join("x"));
    assert_eq!(std::fs::read(&path).unwrap(), body);

    let mut p = PartFile::create(dir.path(), "y", 3).await.unwrap();
    assert_eq!(p.part_path(), dir.path().join("y (1).part"));
    p.write(b"abc").await.unwrap();
    p.finish(&expected_for(b"abc"), Collision::Rename)
        .await
        .unwrap();

    assert_eq!(std::fs::read(&bashrc).unwrap(), b"export PATH=/usr/bin\n");
    assert_eq!(std::fs::read(&secret).unwrap(), b"keep me");
    assert!(!elsewhere.path().join("nothing").exists(), "never created");
    for link in ["x.part", "x (1).part.xft", "y.part"] {
        assert!(dir.path().join(link).is_symlink(), "{link} left as it was");
    }
    // The slot the sidecar's name blocked left nothing behind.
    assert!(!dir.path().join("x (1).part").exists());
}

#[tokio::test]
async fn g6_a_hard_link_with_a_forged_sidecar_is_never_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let body = data(10_000, 3);
    let key = key_for("notes.txt", &body);
    // A user's file, hard-linked under the part's name, and a sidecar that matches the
    // offer exactly (someone who knows the offer wrote it).
    let users = dir.path().join("diary.txt");
    std::fs::write(&users, b"dear diary").unwrap();
    std::fs::hard_link(&users, dir.path().join("notes.txt.part")).unwrap();
    let forged = Meta {
        verified: 4,
        ..Meta::new(&key, "notes.txt")
    };
    std::fs::write(dir.path().join("notes.txt.part.xft"), forged.encode()).unwrap();

    let mut p = PartFile::open(dir.path(), &key).await.unwrap();
    assert_eq!(p.offset(), 0);
    assert_eq!(p.part_path(), dir.path().join("notes (1).txt.part"));
    receive_whole(&mut p, &body).await;
    let path = p
        .finish(&expected_for(&body), Collision::Rename)
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), body);
    assert_eq!(std::fs::read(&users).unwrap(), b"dear diary");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.txt.part.xft")).unwrap(),
        forged.encode(),
        "a file we did not create is never removed either"
    );
}

#[tokio::test]
async fn g8_a_crash_tail_beyond_the_verified_length_is_not_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let body = data(300_000, 4);
    let key = key_for("big.bin", &body);
    let mut p = PartFile::open(dir.path(), &key).await.unwrap();
    p.write(&body[..120_000]).await.unwrap();
    p.checkpoint().await.unwrap();
    let part = p.part_path().to_owned();
    // More bytes reach the file, then the process dies before the next checkpoint: what
    // is past the verified length may be anything (here: garbage).
    p.write(&body[120_000..150_000]).await.unwrap();
    p.file.flush().await.unwrap();
    drop(p);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&part)
        .unwrap()
        .write_all(&[0xAA; 40_000])
        .unwrap();
    assert_eq!(std::fs::metadata(&part).unwrap().len(), 190_000);

    let mut p = PartFile::open(dir.path(), &key).await.unwrap();
    assert_eq!(p.offset(), 120_000, "resumed from the verified length");
    assert_eq!(std::fs::metadata(&part).unwrap().len(), 120_000);
    receive_whole(&mut p, &body).await;
    // No MD5 offered: only the SHA-256 the caller knows would catch a bad prefix; the
    // bytes themselves are right.
    let path = p
        .finish(
            &Expected {
                size: Some(body.len() as u64),
                md5: None,
                sha256: None,
            },
            Collision::Rename,
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), body);
    assert_eq!(names(dir.path()), ["big.bin"]);
}

#[tokio::test]
async fn g8_v1_prefix_is_never_joined_to_v2_tail_without_hash_or_date() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = data(200_000, 5);
    let v2 = data(200_000, 6);
    let bare = |d: Option<&str>| {
        let k = PartKey::new("doc.pdf", 200_000).with_peer("alice@example.org");
        match d {
            Some(d) => k.with_date(d),
            None => k,
        }
    };
    let no_hash = Expected {
        size: Some(200_000),
        md5: None,
        sha256: None,
    };
    // v1 half received and checkpointed, then cut.
    let mut p = PartFile::open(dir.path(), &bare(None)).await.unwrap();
    p.write(&v1[..100_000]).await.unwrap();
    p.checkpoint().await.unwrap();
    drop(p);

    // v2, same name and size, nothing else: never resumed.
    let mut p = PartFile::open(dir.path(), &bare(None)).await.unwrap();
    assert_eq!(p.offset(), 0);
    assert_eq!(
        p.part_path(),
        dir.path().join("doc.pdf.part"),
        "ours: reused"
    );
    receive_whole(&mut p, &v2).await;
    let path = p.finish(&no_hash, Collision::Rename).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), v2);
    std::fs::remove_file(path).unwrap();

    // With a date: the same date resumes, another date starts over.
    let mut p = PartFile::open(dir.path(), &bare(Some("2026-01-01T00:00:00Z")))
        .await
        .unwrap();
    p.write(&v1[..100_000]).await.unwrap();
    p.checkpoint().await.unwrap();
    drop(p);
    let p = PartFile::open(dir.path(), &bare(Some("2026-01-01T00:00:00Z")))
        .await
        .unwrap();
    assert_eq!(p.offset(), 100_000, "the same dated file resumes");
    drop(p);
    let mut p = PartFile::open(dir.path(), &bare(Some("2026-02-02T00:00:00Z")))
        .await
        .unwrap();
    assert_eq!(p.offset(), 0, "another date is another file");
    receive_whole(&mut p, &v2).await;
    let path = p.finish(&no_hash, Collision::Rename).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), v2);

    // Another sender's part of the same file (same hash) is not resumed either.
    let k = key_for("same.bin", &v1);
    let mut p = PartFile::open(dir.path(), &k).await.unwrap();
    p.write(&v1[..10]).await.unwrap();
    p.checkpoint().await.unwrap();
    drop(p);
    let p = PartFile::open(dir.path(), &k.clone().with_peer("mallory@example.org"))
        .await
        .unwrap();
    assert_eq!(p.offset(), 0);
}

#[tokio::test]
async fn g8_a_part_is_synced_and_its_verified_length_recorded_while_receiving() {
    let dir = tempfile::tempdir().unwrap();
    const EVERY: u64 = 256 * 1024;
    let body = data(4 * EVERY as usize, 7);
    let key = key_for("stream.bin", &body);
    let mut p = PartFile::open(dir.path(), &key).await.unwrap();
    p.checkpoint_every_for_test(EVERY);
    for c in body[..(EVERY + EVERY / 2) as usize].chunks(64 * 1024) {
        p.write(c).await.unwrap();
    }
    // The checkpoint runs beside the writes: wait for it (and for the last write, so that
    // nothing holds the file's lock when it is dropped below).
    p.file.flush().await.unwrap();
    p.collect().await.unwrap();
    let side = p.sidecar_path().to_owned();
    let verified = Meta::decode(&std::fs::read_to_string(&side).unwrap())
        .unwrap()
        .verified;
    assert!(verified >= EVERY, "{verified}");
    // A crash now: everything up to `verified` is resumed.
    drop(p);
    let p = PartFile::open(dir.path(), &key).await.unwrap();
    assert_eq!(p.offset(), verified);
}

#[tokio::test]
async fn g11_finalize_fsyncs_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let victim = elsewhere.path().join("victim");
    std::fs::write(&victim, b"victim").unwrap();
    // The final name is a symlink (planted while we received), the next one a file.
    let body = data(20_000, 8);
    let mut p = PartFile::open(dir.path(), &key_for("f.dat", &body))
        .await
        .unwrap();
    receive_whole(&mut p, &body).await;
    std::os::unix::fs::symlink(&victim, dir.path().join("f.dat")).unwrap();
    std::fs::write(dir.path().join("f (1).dat"), b"mine").unwrap();
    let path = p
        .finish(&expected_for(&body), Collision::Rename)
        .await
        .unwrap();
    assert_eq!(path, dir.path().join("f (2).dat"));
    assert_eq!(std::fs::read(&path).unwrap(), body);
    assert_eq!(std::fs::read(&victim).unwrap(), b"victim");
    assert_eq!(
        std::fs::read(dir.path().join("f (1).dat")).unwrap(),
        b"mine"
    );
    assert!(dir.path().join("f.dat").is_symlink());
    assert_eq!(
        names(dir.path()),
        ["f (1).dat", "f (2).dat", "f.dat"],
        "no part and no sidecar left"
    );
    // With Fail the verified part and its sidecar stay, recorded as complete.
    let mut p = PartFile::open(dir.path(), &key_for("f.dat", &body))
        .await
        .unwrap();
    receive_whole(&mut p, &body).await;
    let side = p.sidecar_path().to_owned();
    let err = p
        .finish(&expected_for(&body), Collision::Fail)
        .await
        .unwrap_err();
    assert!(matches!(err, WriteError::Exists(_)), "{err}");
    let meta = Meta::decode(&std::fs::read_to_string(side).unwrap()).unwrap();
    assert_eq!(meta.verified, body.len() as u64, "synced and recorded");
}

#[tokio::test]
async fn g11_parts_are_private_and_the_final_file_gets_the_umask_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mut p = PartFile::create(dir.path(), "m.txt", 2).await.unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(p.part_path()), 0o600);
    assert_eq!(mode(p.sidecar_path()), 0o600);
    p.write(b"hi").await.unwrap();
    let path = p
        .finish(&expected_for(b"hi"), Collision::Rename)
        .await
        .unwrap();
    // What a file created now gets from the umask.
    let probe = dir.path().join("probe");
    std::fs::write(&probe, b"").unwrap();
    assert_eq!(mode(&path), mode(&probe));
    assert_eq!(fsx::final_mode(), mode(&probe));
}

#[tokio::test]
async fn b4_free_space_is_read_from_the_file_system() {
    let dir = tempfile::tempdir().unwrap();
    let free = available_space(dir.path()).unwrap();
    assert!(free > 0 && free < u64::MAX / 2, "{free}");
}
