//! Shared by the reliability tests (`resume_offsets.rs`, `many.rs`): a seeded generator,
//! the CI-or-long settings from the environment, and the figure lines for
//! `scripts/reliability` (one JSON object per line appended to `$XFT_RELIABILITY_OUT`).
#![allow(dead_code, unreachable_pub)]

use std::io::Write;

/// SplitMix64: a tiny seeded generator whose sequence never changes with a crate upgrade,
/// so a seed printed by a failing run replays the same offsets.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (`hi > lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }
}

/// `name` from the environment as a number, else `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// One figure line: `fields` are `(key, already-JSON value)` pairs. Appended to
/// `$XFT_RELIABILITY_OUT` when set (one `write` per line, so tests running beside each
/// other never interleave a line); always printed to stderr.
pub fn figure(suite: &str, fields: &[(&str, String)]) {
    let mut line = format!("{{\"suite\":\"{suite}\"");
    for (k, v) in fields {
        line.push_str(&format!(",\"{k}\":{v}"));
    }
    line.push_str("}\n");
    eprint!("figure: {line}");
    if let Ok(path) = std::env::var("XFT_RELIABILITY_OUT") {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        f.write_all(line.as_bytes()).unwrap();
    }
}

/// A JSON string (the values here are plain ASCII: names, commands).
pub fn js(s: &str) -> String {
    format!("{:?}", s)
}

/// This process's `Threads`, `VmRSS` and `VmHWM` (kB) from `/proc/self/status`.
pub fn proc_status() -> (u64, u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("Threads:"), field("VmRSS:"), field("VmHWM:"))
}
