//! Throughput of each hasher on this machine, to justify [`xep0300_hashes::PREFERENCE`].
//!
//! `cargo run --release -p xep0300-hashes --example throughput [MiB] [rounds]`
//! hashes a MiB-sized buffer in 64 KiB chunks (as a file streams), `rounds` times per
//! algorithm, and prints the best round in MB/s (10^6 bytes per second).

use std::time::Instant;

use xep0300_hashes::{ALL, Hasher};

fn main() {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(256);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let data: Vec<u8> = (0..mib << 20)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761) as u8)
        .collect();
    println!("| algorithm | MB/s (best of {rounds}, {mib} MiB, 64 KiB chunks) |");
    println!("|---|---|");
    for algo in ALL {
        let mut best = f64::MAX;
        for _ in 0..rounds {
            let t = Instant::now();
            let mut h = Hasher::new(algo);
            for chunk in data.chunks(64 << 10) {
                h.update(chunk);
            }
            std::hint::black_box(h.finish());
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!("| {algo} | {:.0} |", data.len() as f64 / best / 1e6);
    }
}
