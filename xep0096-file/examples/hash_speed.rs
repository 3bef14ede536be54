//! How fast the digests are on this machine: MD5 and SHA-256 alone, both serially (the
//! `Hasher`), and both on their own threads (`HashLanes`), over 256 MiB in 256 KiB chunks.
//!
//! ```text
//! cargo run --release -p xep0096-file --example hash_speed
//! ```

use std::time::Instant;

use bytes::Bytes;
use md5::{Digest, Md5};
use sha2::Sha256;
use xep0096_file::{HashLanes, Hasher};

const TOTAL: usize = 256 << 20;
const CHUNK: usize = 256 << 10;

fn rate(label: &str, started: Instant) {
    let s = started.elapsed().as_secs_f64();
    println!("{label:<28} {:>8.0} MB/s", TOTAL as f64 / s / 1e6);
}

fn main() {
    let chunk: Vec<u8> = (0..CHUNK as u32)
        .map(|i| (i * 2_654_435_761) as u8)
        .collect();
    let n = TOTAL / CHUNK;

    let t = Instant::now();
    let mut md5 = Md5::new();
    for _ in 0..n {
        md5.update(&chunk);
    }
    std::hint::black_box(md5.finalize());
    rate("md5", t);

    let t = Instant::now();
    let mut sha = Sha256::new();
    for _ in 0..n {
        sha.update(&chunk);
    }
    std::hint::black_box(sha.finalize());
    rate("sha-256", t);

    let t = Instant::now();
    let mut h = Hasher::new();
    for _ in 0..n {
        h.update(&chunk);
    }
    std::hint::black_box(h.finish());
    rate("md5+sha-256 serial (Hasher)", t);

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let shared = Bytes::from(chunk);
    let t = Instant::now();
    rt.block_on(async {
        let mut lanes = HashLanes::new();
        for _ in 0..n {
            lanes.update(shared.clone()).await.unwrap();
        }
        std::hint::black_box(lanes.digests().await.unwrap());
    });
    rate("md5+sha-256 (HashLanes)", t);
}
