//! The receiving path end to end on real files: offer, `.part`, interruption, resume with
//! `<range offset>`, verification against the offer's MD5, final name.
#![cfg(feature = "tokio")]

use minidom::Element;
use xep0095_si::{Answer, Sid, method, offer_iq, parse_answer};
use xep0096_file::{
    Collision, Digests, FileMeta, FileOffer, PartFile, PartKey, WriteError, answer_range,
};
use xmpp_parsers::iq::Iq;

fn wire(iq: Iq) -> Iq {
    Iq::try_from(Element::from(iq)).unwrap()
}

#[tokio::test]
async fn an_interrupted_transfer_resumes_from_the_part_and_verifies() {
    let src_dir = tempfile::tempdir().unwrap();
    let dst_dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let src = src_dir.path().join("photo.jpg");
    std::fs::write(&src, &data).unwrap();

    // Sender: metadata, MD5, the offer (announcing ranged transfers).
    let meta = FileMeta::from_path(&src).unwrap();
    let digests = Digests::of_path(&src).unwrap();
    let file = meta.to_file(Some(&digests)).with_ranged();
    let si = FileOffer::si(
        &Sid::new("sid1").unwrap(),
        file,
        Some(meta.mime_type),
        &[method::IBB],
    );
    let offer = wire(offer_iq("o1", "bob@x/1".parse().unwrap(), si).unwrap());

    // Receiver, first attempt: 70 000 bytes arrive, then the stream breaks.
    let fo = FileOffer::from_iq(&offer).unwrap();
    assert_eq!(fo.offer.mime_type, "image/jpeg");
    let mut part = PartFile::open(dst_dir.path(), &PartKey::of_offer(&fo))
        .await
        .unwrap();
    for c in data[..70_000].chunks(4096) {
        part.write(c).await.unwrap();
    }
    let err = part
        .finish(&fo.expected().unwrap(), Collision::Rename)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        WriteError::SizeMismatch {
            received: 70_000,
            ..
        }
    ));
    assert!(!dst_dir.path().join("photo.jpg").exists());

    // Second offer of the same file: the receiver resumes and asks for the rest.
    let fo = FileOffer::from_iq(&offer).unwrap();
    let mut part = PartFile::open(dst_dir.path(), &PartKey::of_offer(&fo))
        .await
        .unwrap();
    assert_eq!(part.offset(), 70_000);
    let answer = wire(fo.accept(method::IBB, part.range()).unwrap());

    // Sender reads the range and sends exactly those bytes.
    let Answer::Accepted(acc) = parse_answer(&fo.offer.methods, &answer).unwrap() else {
        panic!()
    };
    let range = answer_range(&acc).unwrap().unwrap();
    let (offset, length) = range.span(data.len() as u64).unwrap();
    assert_eq!((offset, length), (70_000, 130_000));
    let (start, end) = (offset as usize, (offset + length) as usize);
    for c in data[start..end].chunks(4096) {
        part.write(c).await.unwrap();
    }
    let path = part
        .finish(&fo.expected().unwrap(), Collision::Rename)
        .await
        .unwrap();
    assert_eq!(path, dst_dir.path().join("photo.jpg"));
    assert_eq!(std::fs::read(&path).unwrap(), data, "identical bytes");
    assert!(!dst_dir.path().join("photo.jpg.part").exists());
}

#[tokio::test]
async fn corrupted_bytes_fail_the_md5_from_the_offer_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = b"hello, world".to_vec();
    let mut h = xep0096_file::Hasher::new();
    h.update(&data);
    let file = xep0096_file::File::new("../../../tmp/evil.txt", data.len() as u64)
        .with_md5(h.finish().md5);
    let si = FileOffer::si(&Sid::new("s").unwrap(), file, None, &[method::IBB]);
    let fo =
        FileOffer::from_iq(&wire(offer_iq("o", "b@x/1".parse().unwrap(), si).unwrap())).unwrap();
    let mut part = PartFile::open(dir.path(), &PartKey::of_offer(&fo))
        .await
        .unwrap();
    part.write(b"hello, World").await.unwrap();
    let err = part
        .finish(&fo.expected().unwrap(), Collision::Rename)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        WriteError::HashMismatch {
            algorithm: "md5",
            ..
        }
    ));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn a_sender_without_ranges_gets_a_fresh_part_and_no_range() {
    let dir = tempfile::tempdir().unwrap();
    let offer = |sid: &str, file: xep0096_file::File| {
        let si = FileOffer::si(&Sid::new(sid).unwrap(), file, None, &[method::IBB]);
        FileOffer::from_iq(&wire(offer_iq("o", "b@x/1".parse().unwrap(), si).unwrap())).unwrap()
    };
    let dated = |f: xep0096_file::File| xep0096_file::File {
        date: Some("2026-01-01T00:00:00Z".to_owned()),
        ..f
    };
    // A part of ours, cut after 2 of 3 bytes.
    let fo = offer(
        "s0",
        dated(xep0096_file::File::new("a.bin", 3).with_ranged()),
    );
    let mut part = PartFile::for_offer(dir.path(), &fo).await.unwrap();
    part.write(b"ab").await.unwrap();
    part.checkpoint().await.unwrap();
    drop(part);

    let fo = offer("s1", dated(xep0096_file::File::new("a.bin", 3)));
    let mut part = PartFile::for_offer(dir.path(), &fo).await.unwrap();
    assert_eq!(part.offset(), 0, "no resume without announced ranges");
    assert_eq!(part.range(), None);
    part.write(b"abc").await.unwrap();
    let path = part
        .finish(&fo.expected().unwrap(), Collision::Rename)
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), b"abc");

    // With ranges announced, the same situation resumes.
    let fo = offer(
        "s2",
        dated(xep0096_file::File::new("b.bin", 3).with_ranged()),
    );
    let mut part = PartFile::for_offer(dir.path(), &fo).await.unwrap();
    part.write(b"ab").await.unwrap();
    part.checkpoint().await.unwrap();
    drop(part);
    let part = PartFile::for_offer(dir.path(), &fo).await.unwrap();
    assert_eq!(part.offset(), 2);
    // A stranger's b.bin.part would not be: see the unit tests (g6_…).
}
