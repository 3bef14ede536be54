//! Chunk sizes chosen by what the path gives: a bounded search over the sizes up to the
//! negotiated block-size, driven by the acknowledgement rate (iq mode), sans-IO.
//!
//! XEP-0047 §2.2 makes the block-size a maximum: chunks may be smaller. Which chunk size is
//! fastest depends on the path, not on us. Through a Prosody 0.12 with its default network
//! settings (4096-byte reads into LuaSocket's 8 KiB buffer: every read that leaves bytes
//! buffered pauses the connection for at least the event loop's 1 ms `min_wait`), 4096-byte
//! chunks moved 6.6 MB/s and 65535-byte chunks 2.4 MB/s; through the same Prosody reading
//! 64 KiB at a time the order is reversed (9.3 against 18.2 MB/s).
//!
//! The search, deterministic given the acknowledgement times:
//!
//! 1. **Warm-up**: chunks of [`START`] bytes until `warmup` acknowledgements came back (the
//!    window grows by one per acknowledgement; measuring before it is full would favour
//!    whatever comes later).
//! 2. **Probe** each candidate in ascending order ([`START`], then times [`STEP`], then the
//!    block-size): its rate is the bytes of its chunks acknowledged after its first
//!    acknowledgement, over the time since that first one, once at least [`PROBE_ACKS`]
//!    acknowledgements, [`PROBE_BYTES`] bytes and [`PROBE_TIME`] were counted. Chunks of
//!    the previous candidate still in flight are not counted for the next one.
//! 3. **Settle** on the fastest candidate, or, when the rate climbed clearly into it, on
//!    the largest measured within [`GIVE_UP`] of it (the measurements do not tell such
//!    sizes apart, and larger chunks cost fewer stanzas), as soon as one is measured below [`GIVE_UP`] times the best so far twice in a row, or
//!    once below [`CLEAR_FALL`] times (throughput against chunk size rises to one peak on
//!    the paths we measured; the climb stops at the first fall), or after the last.
//!
//! At most one search per session, of at most two probes per candidate: a probe costs its
//! measurement plus a window of chunks at a slower size.

use std::time::{Duration, Instant};

/// The chunk size a search starts from and the smallest candidate: XEP-0047's recommended
/// block-size, which every peer and server we test handles well.
pub const START: u16 = 4096;

/// Each candidate is this many times the one before (the last is the block-size): four
/// keeps the search short (4096, 16384, 65535), since every probe of a slower size costs
/// its measurement and a window of chunks at that size; between those sizes the rate
/// changed little on the paths we measured.
pub const STEP: u16 = 4;

/// Acknowledgements counted per candidate, at least.
pub const PROBE_ACKS: u32 = 16;

/// Acknowledged bytes counted per candidate, at least.
pub const PROBE_BYTES: u64 = 256 * 1024;

/// Time counted per candidate, at least: a probe shorter than a few scheduler time slices
/// measures the machine's load more than the path.
pub const PROBE_TIME: Duration = Duration::from_millis(40);

/// A candidate measured below this fraction of the best so far ends the climb, if it does
/// so twice (one measurement on a loaded machine can be unlucky)...
pub const GIVE_UP: f64 = 0.9;

/// ...or once, below this fraction (a fall no noise explains).
pub const CLEAR_FALL: f64 = 0.6;

/// Where a search stands.
#[derive(Debug, Clone, PartialEq)]
enum Stage {
    /// Sending [`START`]-byte chunks until this many more acknowledgements come back.
    Warmup { left: u32 },
    /// Measuring `candidates[idx]` (`again`: a second time, after an unclear fall).
    Probe {
        idx: usize,
        again: bool,
        first: Option<Instant>,
        acks: u32,
        bytes: u64,
    },
    /// Done: `candidates[idx]` from now on.
    Settled { idx: usize },
}

impl Stage {
    fn probe(idx: usize, again: bool) -> Self {
        Self::Probe {
            idx,
            again,
            first: None,
            acks: 0,
            bytes: 0,
        }
    }
}

/// The chunk-size search of one sending side. Every chunk sent is tagged with
/// [`ChunkSizer::phase`]; every acknowledgement is reported with that tag
/// ([`ChunkSizer::on_ack`]).
#[derive(Debug, Clone)]
pub struct ChunkSizer {
    candidates: Vec<u16>,
    stage: Stage,
    /// Increases each time the size changes, so acknowledgements of older chunks are told
    /// apart from the probe's own.
    phase: u32,
    best: Option<(usize, f64)>,
    /// Rate measured per candidate (bytes per second), for reports and tests.
    rates: Vec<Option<f64>>,
}

impl ChunkSizer {
    /// A search up to `block_size`, starting after `warmup` acknowledgements; `None` when
    /// `block_size` leaves nothing to choose ([`START`] or less).
    pub fn new(block_size: u16, warmup: u32) -> Option<Self> {
        if block_size <= START {
            return None;
        }
        let mut candidates = Vec::new();
        let mut c = START;
        while c < block_size {
            candidates.push(c);
            c = match c.checked_mul(STEP) {
                Some(n) => n,
                None => break,
            };
        }
        candidates.push(block_size);
        let n = candidates.len();
        Some(Self {
            candidates,
            stage: if warmup == 0 {
                Stage::probe(0, false)
            } else {
                Stage::Warmup { left: warmup }
            },
            phase: 0,
            best: None,
            rates: vec![None; n],
        })
    }

    /// The size of the next new chunk.
    pub fn chunk_size(&self) -> u16 {
        match self.stage {
            Stage::Warmup { .. } => self.candidates[0],
            Stage::Probe { idx, .. } | Stage::Settled { idx } => self.candidates[idx],
        }
    }

    /// The tag of a chunk sent now.
    pub fn phase(&self) -> u32 {
        self.phase
    }

    /// Whether the search is over.
    pub fn is_settled(&self) -> bool {
        matches!(self.stage, Stage::Settled { .. })
    }

    /// The sizes the search chooses from, ascending.
    pub fn candidates(&self) -> &[u16] {
        &self.candidates
    }

    /// The rate measured for each candidate so far, in bytes per second.
    pub fn rates(&self) -> &[Option<f64>] {
        &self.rates
    }

    /// A chunk of `len` bytes sent in `phase` was acknowledged at `now`.
    pub fn on_ack(&mut self, phase: u32, len: usize, now: Instant) {
        match &mut self.stage {
            Stage::Settled { .. } => {}
            Stage::Warmup { left } => {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    self.phase += 1;
                    self.stage = Stage::probe(0, false);
                }
            }
            Stage::Probe {
                idx,
                again,
                first,
                acks,
                bytes,
            } => {
                if phase != self.phase {
                    return;
                }
                let Some(t0) = *first else {
                    *first = Some(now);
                    return;
                };
                *acks += 1;
                *bytes += len as u64;
                let elapsed = now.saturating_duration_since(t0);
                if *acks < PROBE_ACKS || *bytes < PROBE_BYTES || elapsed < PROBE_TIME {
                    return;
                }
                let (idx, again, rate) = (*idx, *again, *bytes as f64 / elapsed.as_secs_f64());
                self.measured(idx, again, rate);
            }
        }
    }

    fn measured(&mut self, idx: usize, again: bool, rate: f64) {
        let rate = self.rates[idx].map_or(rate, |r| r.max(rate));
        self.rates[idx] = Some(rate);
        let best = match self.best {
            Some((b, r)) if r >= rate => (b, r),
            _ => (idx, rate),
        };
        self.best = Some(best);
        self.phase += 1;
        let fell = rate < best.1 * GIVE_UP;
        self.stage = if fell && !again && rate >= best.1 * CLEAR_FALL {
            Stage::probe(idx, true)
        } else if fell || idx + 1 == self.candidates.len() {
            Stage::Settled {
                idx: self.settle_at(best),
            }
        } else {
            Stage::probe(idx + 1, false)
        };
    }

    /// Where the search ends, given the fastest candidate `best` (index, rate): when the
    /// rate climbed clearly into `best` (its predecessor below [`GIVE_UP`] times its rate),
    /// the largest candidate measured at [`GIVE_UP`] times `best` or more, otherwise `best`.
    ///
    /// Within that margin the measurements do not tell sizes apart: through Prosody the
    /// rate drifts down over a transfer, so the size probed last, the largest, is measured
    /// low, and a larger chunk costs fewer stanzas and acknowledgements on both ends and
    /// on the server. But where nothing climbed (the smallest size is the fastest, or the
    /// sizes measure alike, as on a loaded machine through a stock Prosody, where larger
    /// chunks move at less than half the rate), the smallest of them stays.
    fn settle_at(&self, (best, rate): (usize, f64)) -> usize {
        let climbed = best
            .checked_sub(1)
            .and_then(|prev| self.rates[prev])
            .is_some_and(|prev| prev < rate * GIVE_UP);
        if !climbed {
            return best;
        }
        self.rates
            .iter()
            .rposition(|r| r.is_some_and(|r| r >= rate * GIVE_UP))
            .map_or(best, |i| i.max(best))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives a sizer against a path that moves `rate(size)` bytes per second with `window`
    /// chunks in flight, acknowledging chunks in order; returns the settled size and the
    /// bytes sent by then.
    fn simulate(block: u16, window: usize, rate: impl Fn(u16) -> f64) -> (u16, u64, ChunkSizer) {
        let mut s = ChunkSizer::new(block, 32).unwrap();
        let t0 = Instant::now();
        let mut now = t0;
        let mut in_flight: std::collections::VecDeque<(u32, u16)> = Default::default();
        let mut sent = 0u64;
        for _ in 0..100_000 {
            while in_flight.len() < window {
                in_flight.push_back((s.phase(), s.chunk_size()));
                sent += u64::from(s.chunk_size());
            }
            let (phase, len) = in_flight.pop_front().unwrap();
            now += Duration::from_secs_f64(f64::from(len) / rate(len));
            s.on_ack(phase, usize::from(len), now);
            if s.is_settled() {
                return (s.chunk_size(), sent, s);
            }
        }
        panic!("never settled: {s:?}");
    }

    #[test]
    fn no_search_at_or_below_the_start_size() {
        assert!(ChunkSizer::new(4096, 32).is_none());
        assert!(ChunkSizer::new(512, 32).is_none());
    }

    #[test]
    fn candidates_grow_fourfold_from_4096_up_to_the_block_size() {
        let s = ChunkSizer::new(65535, 32).unwrap();
        assert_eq!(s.candidates(), &[4096, 16384, 65535]);
        let s = ChunkSizer::new(10_000, 32).unwrap();
        assert_eq!(s.candidates(), &[4096, 10_000]);
        assert_eq!(s.chunk_size(), 4096, "starts small");
    }

    #[test]
    fn a_stock_prosody_like_path_settles_on_4096_after_one_probe_above() {
        // Figures through Prosody 0.12 with 4096-byte reads (MB/s).
        let stock = |s: u16| match s {
            4096 => 6.6e6,
            8192 => 3.3e6,
            16384 => 2.7e6,
            32768 => 2.5e6,
            _ => 2.4e6,
        };
        let (size, sent, s) = simulate(65535, 32, stock);
        assert_eq!(size, 4096);
        assert!(
            s.rates()[2].is_none(),
            "65535 never probed: {:?}",
            s.rates()
        );
        // Warm-up, one 4096 probe, one 16384 probe and the windows between them.
        assert!(sent < 2 * 1024 * 1024, "{sent}");
    }

    #[test]
    fn a_tuned_prosody_like_path_climbs_to_the_block_size() {
        let tuned = |s: u16| match s {
            4096 => 9.3e6,
            8192 => 13.6e6,
            16384 => 13.6e6,
            32768 => 17.1e6,
            _ => 18.2e6,
        };
        let (size, _, s) = simulate(65535, 32, tuned);
        assert_eq!(size, 65535, "{:?}", s.rates());
    }

    #[test]
    fn a_flat_stretch_within_the_margin_does_not_stop_the_climb_and_the_best_wins() {
        // 16384 a little slower than 4096 (noise), 65535 best.
        let flat = |s: u16| match s {
            4096 => 5e6,
            16384 => 4.7e6,
            _ => 9e6,
        };
        assert_eq!(simulate(65535, 16, flat).0, 65535);
        // 16384 best, 65535 clearly worse.
        let peak = |s: u16| match s {
            4096 => 5e6,
            16384 => 9e6,
            _ => 4e6,
        };
        assert_eq!(simulate(65535, 16, peak).0, 16384);
    }

    #[test]
    fn acknowledgements_of_an_older_phase_do_not_count_for_the_probe() {
        let mut s = ChunkSizer::new(8192, 0).unwrap();
        let t = Instant::now();
        let old = s.phase();
        // First ack of phase 0 starts the clock; 100 stale acks later nothing is measured.
        s.on_ack(old, 4096, t);
        for i in 1..=100 {
            s.on_ack(old + 7, 4096, t + Duration::from_millis(i));
        }
        assert_eq!(s.rates(), &[None, None]);
        for i in 1..=64 {
            s.on_ack(old, 4096, t + Duration::from_millis(i));
        }
        // 64 acks of 4096 over 64 ms.
        let r = s.rates()[0].unwrap();
        assert!((r - 4096.0 * 64.0 / 0.064).abs() < 1.0, "{r}");
        assert_eq!(s.chunk_size(), 8192);
        assert_ne!(s.phase(), old);
    }

    /// Acknowledges chunks of the current phase at `rate` until the phase ends; the time
    /// after.
    fn probe_at(s: &mut ChunkSizer, rate: f64, mut now: Instant) -> Instant {
        let phase = s.phase();
        while s.phase() == phase && !s.is_settled() {
            let len = s.chunk_size();
            now += Duration::from_secs_f64(f64::from(len) / rate);
            s.on_ack(phase, usize::from(len), now);
        }
        now
    }

    #[test]
    fn an_unclear_fall_is_measured_again_and_a_good_second_measurement_climbs_on() {
        let mut s = ChunkSizer::new(65535, 0).unwrap();
        let mut t = Instant::now();
        t = probe_at(&mut s, 10e6, t); // 4096
        t = probe_at(&mut s, 7e6, t); // 16384, a load spike: 0.7x, unclear
        assert_eq!(s.chunk_size(), 16384, "measured again");
        t = probe_at(&mut s, 15e6, t); // 16384 again
        assert_eq!(s.chunk_size(), 65535, "climbs on");
        t = probe_at(&mut s, 12e6, t); // 65535: unclear fall, twice
        assert!(!s.is_settled());
        probe_at(&mut s, 12e6, t);
        assert!(s.is_settled());
        assert_eq!(s.chunk_size(), 16384);
    }

    #[test]
    fn a_last_candidate_measured_just_below_the_best_is_taken_over_a_smaller_one() {
        // Through a tuned Prosody (2026-12-06 22:14Z, `--only /block/ --runs 3`) one search
        // measured 4096 9.9, 16384 15.1 and 65535 14.5 MB/s and kept 16384, which then
        // moved 11.5 MB/s against 18.1 for 65535 over the whole transfer.
        let mut s = ChunkSizer::new(65535, 0).unwrap();
        let mut t = Instant::now();
        t = probe_at(&mut s, 9.9e6, t);
        t = probe_at(&mut s, 15.1e6, t);
        probe_at(&mut s, 14.5e6, t);
        assert!(s.is_settled());
        assert_eq!(s.chunk_size(), 65535, "{:?}", s.rates());
        // A fall beyond the margin still keeps the faster, smaller size.
        let mut s = ChunkSizer::new(65535, 0).unwrap();
        let mut t = Instant::now();
        t = probe_at(&mut s, 9.9e6, t);
        t = probe_at(&mut s, 15.1e6, t);
        t = probe_at(&mut s, 12e6, t);
        probe_at(&mut s, 12e6, t);
        assert_eq!(s.chunk_size(), 16384, "{:?}", s.rates());
    }

    #[test]
    fn sizes_that_measure_alike_from_the_start_keep_the_smallest() {
        // Through a stock Prosody at load 10 (2026-12-06 22:46Z) one search measured 2.2 MB/s
        // for every size; 4096 then moved 3.7 MB/s over whole transfers, 65535 1.8.
        let mut s = ChunkSizer::new(65535, 0).unwrap();
        let mut t = Instant::now();
        for _ in 0..3 {
            t = probe_at(&mut s, 2.2e6, t);
        }
        assert!(s.is_settled());
        assert_eq!(s.chunk_size(), 4096, "{:?}", s.rates());
    }

    #[test]
    fn a_clear_fall_settles_at_once() {
        let mut s = ChunkSizer::new(65535, 0).unwrap();
        let t = probe_at(&mut s, 6e6, Instant::now());
        probe_at(&mut s, 3e6, t);
        assert!(s.is_settled());
        assert_eq!(s.chunk_size(), 4096);
    }

    #[test]
    fn a_probe_lasts_at_least_its_minimum_time() {
        let mut s = ChunkSizer::new(8192, 0).unwrap();
        let t0 = Instant::now();
        // 1 GB/s: 16 acks and 256 KiB take 0.3 ms, far less than PROBE_TIME.
        let t = probe_at(&mut s, 1e9, t0);
        assert!(t - t0 >= PROBE_TIME, "{:?}", t - t0);
    }

    #[test]
    fn the_same_timings_give_the_same_choice() {
        let path = |s: u16| 1e6 + f64::from(s) * 40.0;
        let a = simulate(65535, 32, path);
        let b = simulate(65535, 32, path);
        assert_eq!((a.0, a.1), (b.0, b.1));
    }
}
