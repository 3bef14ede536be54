//! Tests of [`HashLanes`](crate::HashLanes) and the shared pool.

use super::*;

#[tokio::test]
async fn lanes_agree_with_the_serial_hasher_whatever_the_chunking_and_resume_point() {
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 31 + i / 7) as u8).collect();
    let mut serial = Hasher::new();
    serial.update(&data);
    let d = serial.finish();
    let want = LaneDigests {
        md5: Some(d.md5),
        sha256: d.sha256,
        len: d.len,
    };

    let mut lanes = HashLanes::new();
    for c in data.chunks(65_537) {
        lanes.update(Bytes::copy_from_slice(c)).await.unwrap();
    }
    assert_eq!(lanes.digests().await.unwrap(), want);

    // Resume: the first 300 000 bytes hashed inline, the rest on the lanes.
    let mut head = Hasher::new();
    head.update(&data[..300_000]);
    let mut lanes = HashLanes::from_hasher(head);
    lanes
        .update(Bytes::copy_from_slice(&data[300_000..]))
        .await
        .unwrap();
    assert_eq!(lanes.digests().await.unwrap(), want);
    // A snapshot does not end the lanes.
    lanes.update(Bytes::from_static(b"x")).await.unwrap();
    assert_ne!(lanes.digests().await.unwrap(), want);
}

/// SHA-256 through the [`LaneDigest`] door, as another algorithm would come.
struct Other(Sha256);

impl LaneDigest for Other {
    fn update(&mut self, data: &[u8]) {
        Digest::update(&mut self.0, data);
    }
    fn snapshot(&self) -> Vec<u8> {
        self.0.clone().finalize().to_vec()
    }
    fn fresh(&self) -> Box<dyn LaneDigest> {
        Box::new(Self(Sha256::new()))
    }
}

#[tokio::test]
async fn an_added_digest_runs_on_the_pool_only_from_the_first_byte_and_survives_a_restart() {
    let mut lanes = HashLanes::new();
    assert!(lanes.add_digest(Box::new(Other(Sha256::new()))).is_ok());
    for c in [&b"ab"[..], b"c"] {
        lanes.update(Bytes::copy_from_slice(c)).await.unwrap();
    }
    let d = lanes.digests().await.unwrap();
    assert_eq!(lanes.extra_digests().await.unwrap(), [d.sha256.to_vec()]);
    assert!(
        lanes.add_digest(Box::new(Other(Sha256::new()))).is_err(),
        "a digest added after bytes would miss them"
    );
    let again = lanes.restarted();
    assert_eq!(again.len(), 0);
    let empty = again.digests().await.unwrap().sha256.to_vec();
    assert_eq!(again.extra_digests().await.unwrap(), [empty]);
}

#[tokio::test]
async fn a_skipped_md5_is_absent_and_sha256_unchanged() {
    let mut lanes = HashLanes::new();
    lanes.skip_md5();
    assert!(!lanes.has_md5());
    lanes.update(Bytes::from_static(b"abc")).await.unwrap();
    let d = lanes.digests().await.unwrap();
    assert_eq!(d.md5, None);
    assert_eq!(
        d.sha256_hex(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn i1_a_thousand_live_lanes_share_the_pool_and_each_keeps_its_order() {
    let before = threads();
    let mut lanes: Vec<HashLanes> = (0..1000).map(|_| HashLanes::new()).collect();
    for (i, l) in lanes.iter_mut().enumerate() {
        l.update(Bytes::from(format!("lane {i} "))).await.unwrap();
        l.update(Bytes::from_static(b"tail")).await.unwrap();
    }
    let during = threads();
    // Other tests of this binary run beside this one: leave room for their threads,
    // far below the 2,000 a thread per digest would start.
    assert!(
        during <= before + MAX_POOL_THREADS + 64,
        "{before} -> {during} threads"
    );
    for (i, l) in lanes.iter().enumerate() {
        let mut serial = Hasher::new();
        serial.update(format!("lane {i} tail").as_bytes());
        let want = serial.finish();
        let got = l.digests().await.unwrap();
        assert_eq!((got.md5, got.sha256), (Some(want.md5), want.sha256));
    }
}

#[tokio::test]
async fn no_bytes_give_the_empty_digests() {
    let lanes = HashLanes::new();
    let d = lanes.digests().await.unwrap();
    assert_eq!(d.md5_hex().unwrap(), "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(d.len, 0);
}
