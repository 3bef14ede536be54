//! The seeded fault harness (issue 9, first bullet), end to end through `ft-facade`.
//!
//! One run = one seed and one mode: two `FileTransfer`s on the in-memory hub, one file, and
//! the faults that [`fault_harness::Plan::new`] draws from the seed (a pure function of
//! `(seed, mode)`, so a seed replays its schedule exactly):
//!
//! * **stanzas** (`fault_harness::transport`): each side's outbound stanzas dropped,
//!   duplicated, delayed (up to 6 s on the paused clock, 300 ms on real time) or swapped
//!   with the next one; either on every stanza or on IBB `<data/>` only; the XMPP stream
//!   of one side cut (`Hub::disconnect`) after its n-th stanza;
//! * **bytestreams** (`fault_harness::relay`, S5B modes): a TCP relay on 127.0.0.1 in
//!   front of the sender's streamhost (on 127.0.0.2; the receiver may dial 127.0.0.1 only)
//!   or of our proxy (on 127.0.0.3, announcing the relay); the n-th connection is reset
//!   (RST), half-closed, stalled or slowed after a number of bytes in one direction;
//! * **the sink** (`fault_harness::sink`): the receiver accepts into a writer that returns
//!   ENOSPC or EIO, hangs, or crawls after a number of bytes; otherwise into a directory;
//! * **cancels**: from either side once its progress reaches a stage and a byte count;
//! * **concurrency**: in 30 % of the runs one or two further transfers go at the same time
//!   between the same facades (same stanza, stream and relay faults; checked alike).
//!
//! Modes: `ibb-iq` and `ibb-message` (hub only, tokio's paused clock, stage timeouts 4 s),
//! `s5b-direct`, `s5b-proxy` and `fallback` (S5B cut at every connection, IBB offered)
//! (real loopback sockets, real time, stage timeouts 2 s). Every run has a runtime of its
//! own (current-thread); runs go on a few threads at once.
//!
//! The paused clock is advanced by a ticker at 20 times real time, not by tokio's
//! auto-advance: the facade hashes on std threads (`xep0096_file` `HashLanes`) that tokio
//! cannot see, so auto-advance jumps to the next timer while a digest is still running and
//! fires timeouts that no real clock would (every run "hung" at once that way).
//!
//! Each run asserts: exactly one terminal outcome (and one `Completed`/`Failed` event) per
//! side within the sum of the stage timeouts (else "hang"); a run without faults completes
//! on both sides (the fallback mode: by falling back); a failing sink fails the receiver
//! while streaming (ENOSPC/EIO as a write error); faults only on IBB data fail only at
//! stage stream/verify/close, and so does a bytestream fault after the SOCKS5 handshake
//! (s5b-direct); a cancelling side reports its own cancel; the final name
//! exists only when the receiver completed and holds the source's bytes (SHA-256); a
//! `.part` is left only on failure with `keep_partial`; and afterwards the runtime's
//! `num_alive_tasks()` returns to its baseline (0, or 1: the clock's ticker) within one
//! more stage bound once both facades, the relay and the proxy are dropped (no task, and so
//! no socket or timer held by one, left behind). Descriptors and threads are the process's:
//! a checkpoint every 32 runs (`XFT_CHECK_EVERY`; after every run with `XFT_THREADS=1`), with
//! no run in flight, compares them with the baseline and replays alone every run since the
//! last one if anything is left, failing those that leave it (`fault_harness::leak`,
//! `tests/fault_leaks.rs`). A seed that fails among the others is replayed alone at once;
//! one that then passes is counted apart (`passed_alone`), a failure under the machine's
//! load (the paused clock runs at 20 times real time).
//!
//! A failing seed prints the command that replays it:
//! `XFT_SEED=<n> XFT_MODE=<mode> cargo test -p ft-facade --test faults replay -- --nocapture`.
//!
//! CI runs `ci_seeds` (56 seeds per hub mode, 48 per socket mode: 256 runs, about 15 s),
//! `regression_seeds` and the defects written out as plans (`g9_…`, `h6_…`). The long version:
//! `XFT_SEEDS=100000 XFT_SEED_START=0 [XFT_MODES=ibb-iq,fallback] [XFT_THREADS=4]
//! XFT_RELIABILITY_OUT=figures.jsonl cargo test --release -p ft-facade --test faults long -- --ignored --nocapture`
//! runs that many seeds per mode and appends one JSON line per mode to
//! `XFT_RELIABILITY_OUT`:
//!
//! ```json
//! {"suite":"faults","mode":"ibb-iq","seed_start":0,"seeds":100000,"failed":0,
//!  "failed_seeds":[],"secs":812.4,"date_unix":1765000000,"threads":4,
//!  "outcomes":{"err@offer/no-offer":3,"err@stream/err@stream":40,"ok/ok":57}}
//! ```
//!
//! `failed_seeds` holds at most the first 100. `outcomes` counts the passing runs by how
//! each side ended, `sender/receiver`: `ok`, `err@<stage>`, or `no-offer` (the offer never
//! reached the receiver).

mod common;
mod fault_harness;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use fault_harness::sink::SinkFault;
use fault_harness::{Mode, Plan, Who, checkpoint, run_plan, run_seed};

/// Seeds that once found a defect; each runs in CI in the mode given.
///
/// A receiver whose writer hangs mid-stream never ended (no timeout applied to the writer):
/// fixed in `recv_stream.rs` (the inactivity timeout bounds each hand-over to the writer and
/// the final wait for it).
const REGRESSION_SEEDS: &[(u64, Mode)] = &[
    (44, Mode::IbbIq),
    (9, Mode::IbbMessage),
    (25, Mode::IbbMessage),
    (14, Mode::S5bDirect),
    (5, Mode::S5bProxy),
    // The sender's stream cut mid-IBB: the facade failed the transfer at its inactivity
    // timeout, but the IBB session's driver task lived on for the IBB ack timeout (60 s,
    // not capped by `Config::cap_timeouts`): fixed, `cap_timeouts` caps it too.
    (19, Mode::Fallback),
    // Found by the long run (seeds 0..10000): a check of the harness assumed the relay's
    // first connection was the main transfer's, also with further transfers beside it;
    // fixed in `check.rs` (the check applies to a lone transfer only).
    (4898, Mode::S5bDirect),
    // Found by the 100,000-seed run: the main transfer's disk hangs in message mode, and a
    // further transfer on the same connection failed at its IBB open, because the pump's
    // backpressure (`Ibb::ready`) held every stanza behind the hung reader until the
    // receiver's inactivity timeout. Fixed in xep0047-ibb: a reader that takes nothing for
    // `Config::stalled_reader` no longer holds the pump (16 of 20 replays failed before).
    (15200, Mode::IbbMessage),
    // Also found by it, twice, under load: a disk taking 524 bytes per 1.6 ms, and the
    // receiver's writer was given one inactivity timeout for the whole queue left at the
    // stream's end ("nothing within 2s" while it kept writing). Fixed in the facade: the
    // inactivity timeout is about a writer (or a stream) that takes nothing, measured by
    // the bytes it puts down (`copy::while_moving`).
    (9066, Mode::S5bProxy),
];

/// Seeds per mode in CI.
const CI_SEEDS_PAUSED: u64 = 56;
const CI_SEEDS_SOCKETS: u64 = 48;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// What a range of seeds gave: the failures (seed, message) and how the runs ended
/// (`sender/receiver` outcome → count, e.g. `ok/err@stream`).
struct Figures {
    failures: Vec<(u64, String)>,
    /// Seeds that failed among the others and passed when replayed alone at once.
    passed_alone: Vec<u64>,
    outcomes: BTreeMap<String, u64>,
}

impl Figures {
    fn outcomes_json(&self) -> String {
        let kv: Vec<String> = self
            .outcomes
            .iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        format!("{{{}}}", kv.join(","))
    }
}

/// `sender ok … / receiver err stream: …` → `ok/err@stream`.
fn outcome_key(summary: &str) -> String {
    let side = |s: &str| {
        let s = s.trim();
        let s = s.split_once(' ').map_or(s, |(_, rest)| rest);
        if s.starts_with("ok") {
            "ok".to_owned()
        } else if let Some(rest) = s.strip_prefix("err ") {
            format!("err@{}", rest.split(':').next().unwrap_or(""))
        } else {
            "no-offer".to_owned()
        }
    };
    let (a, b) = summary.split_once(" / ").unwrap_or((summary, ""));
    format!("{}/{}", side(a), side(b))
}

/// Runs `count` seeds of `mode` from `start` on `threads` threads, with a leak
/// [`checkpoint`] before, after, and every `XFT_CHECK_EVERY` runs (32 by default; after
/// every run with one thread).
fn run_range(mode: Mode, start: u64, count: u64, threads: usize) -> Figures {
    let next = AtomicU64::new(start);
    let done = AtomicU64::new(0);
    let every = env_u64("XFT_CHECK_EVERY").unwrap_or(if threads <= 1 { 1 } else { 32 });
    let figures = Mutex::new(Figures {
        failures: checkpoint(),
        passed_alone: Vec::new(),
        outcomes: BTreeMap::new(),
    });
    let leaked = |f: &mut Figures, found: Vec<(u64, String)>| {
        for (seed, e) in found {
            eprintln!("FAILED (left behind) {e}");
            f.failures.push((seed, e));
        }
    };
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= start + count {
                        break;
                    }
                    let r = run_seed(seed, mode);
                    {
                        let mut f = figures.lock().unwrap();
                        match r {
                            Ok(summary) => {
                                if std::env::var_os("XFT_VERBOSE").is_some() {
                                    eprintln!("seed {seed} {}: {summary}", mode.name());
                                }
                                *f.outcomes.entry(outcome_key(&summary)).or_default() += 1;
                            }
                            Err(e) => {
                                // Replayed at once, alone (the gate held): a seed that passes
                                // then failed on the machine's load (the paused clock runs
                                // at 20x real time, so a thread that stalls 200 ms is a
                                // 4 s stage timeout). Reported apart, never hidden.
                                drop(f);
                                let alone = fault_harness::replay_alone(seed, mode);
                                let mut f = figures.lock().unwrap();
                                if alone.is_ok() {
                                    eprintln!("FAILED UNDER LOAD, passed alone: {e}");
                                    f.passed_alone.push(seed);
                                    *f.outcomes
                                        .entry("failed-then-passed-alone".into())
                                        .or_default() += 1;
                                } else {
                                    eprintln!("FAILED {e}");
                                    f.failures.push((seed, e));
                                }
                            }
                        }
                    }
                    if (done.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(every.max(1)) {
                        let found = checkpoint();
                        leaked(&mut figures.lock().unwrap(), found);
                    }
                }
            });
        }
    });
    let mut f = figures.into_inner().unwrap();
    leaked(&mut f, checkpoint());
    f.failures.sort_by_key(|(s, _)| *s);
    f
}

fn threads(mode: Mode) -> usize {
    env_u64("XFT_THREADS").map_or(if mode.sockets() { 8 } else { 2 }, |t| t as usize)
}

#[test]
fn ci_seeds() {
    let start = env_u64("XFT_SEED_START").unwrap_or(0);
    let mut all = Vec::new();
    for mode in Mode::ALL {
        let n = if mode.sockets() {
            CI_SEEDS_SOCKETS
        } else {
            CI_SEEDS_PAUSED
        };
        let t = Instant::now();
        let f = run_range(mode, start, n, threads(mode));
        eprintln!(
            "{}: {n} seeds, {} failed, {:.1?}, outcomes {}",
            mode.name(),
            f.failures.len(),
            t.elapsed(),
            f.outcomes_json()
        );
        all.extend(f.failures);
    }
    assert!(
        all.is_empty(),
        "{} seed(s) failed:\n{}",
        all.len(),
        all.iter()
            .map(|(_, e)| e.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn regression_seeds() {
    let _ = checkpoint();
    let bad: Vec<String> = REGRESSION_SEEDS
        .iter()
        .filter_map(|&(seed, mode)| run_seed(seed, mode).err())
        .chain(checkpoint().into_iter().map(|(_, e)| e))
        .collect();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// A plan with no fault but `tweak`'s: the cases the regression seeds found, written out.
fn plan_with(mode: Mode, size: usize, tweak: impl FnOnce(&mut Plan)) -> Plan {
    let mut p = Plan::new(0, mode).without_faults();
    p.size = size;
    tweak(&mut p);
    p
}

/// G9/H1: a writer that hangs mid-stream, with no cancel, fails the receiver at stage
/// stream within its inactivity timeout (it waited forever: seeds ibb-iq 44, s5b-direct 14).
#[test]
fn g9_a_hung_writer_without_a_cancel_fails_the_receiver_at_its_inactivity_timeout() {
    for mode in [
        Mode::IbbIq,
        Mode::IbbMessage,
        Mode::S5bDirect,
        Mode::S5bProxy,
    ] {
        for after in [0, 5000, 99_000] {
            let plan = plan_with(mode, 100_003, |p| {
                p.into_dir = false;
                p.sink = SinkFault::Hang { after };
            });
            if let Err(e) = run_plan(&plan) {
                panic!("{e}");
            }
        }
    }
}

/// H6: the sender's XMPP stream cut in the middle of IBB; its transfer fails at its
/// inactivity timeout and no task of its IBB session outlives the facade by more than the
/// (capped) stage timeouts (the driver lived on for 60 s: seed fallback 19).
#[test]
fn h6_an_ibb_session_cut_from_its_stream_leaves_no_task_behind() {
    for mode in [Mode::IbbIq, Mode::Fallback] {
        for n in [6, 10, 16] {
            let plan = plan_with(mode, 100_003, |p| p.disconnect = Some((Who::Sender, n)));
            if let Err(e) = run_plan(&plan) {
                panic!("{e}");
            }
        }
    }
}

/// Replays `XFT_SEED` in `XFT_MODE` (every mode when unset), printing what happened.
#[test]
fn replay() {
    let Some(seed) = env_u64("XFT_SEED") else {
        return;
    };
    let modes: Vec<Mode> = match std::env::var("XFT_MODE") {
        Ok(m) => vec![
            Mode::parse(&m)
                .expect("XFT_MODE: one of ibb-iq ibb-message s5b-direct s5b-proxy fallback"),
        ],
        Err(_) => Mode::ALL.to_vec(),
    };
    for mode in modes {
        eprintln!("plan: {:?}", Plan::new(seed, mode));
        match run_seed(seed, mode) {
            Ok(s) => eprintln!("seed {seed} {}: ok: {s}", mode.name()),
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
#[ignore = "the long version: XFT_SEEDS, XFT_SEED_START, XFT_MODES, XFT_RELIABILITY_OUT"]
fn long() {
    let start = env_u64("XFT_SEED_START").unwrap_or(0);
    let count = env_u64("XFT_SEEDS").unwrap_or(100_000);
    let modes: Vec<Mode> = match std::env::var("XFT_MODES") {
        Ok(m) => m
            .split(',')
            .map(|m| Mode::parse(m.trim()).expect("XFT_MODES"))
            .collect(),
        Err(_) => Mode::ALL.to_vec(),
    };
    let mut total = 0;
    for mode in modes {
        let t = Instant::now();
        let th = threads(mode);
        let figures = run_range(mode, start, count, th);
        let f = &figures.failures;
        let secs = t.elapsed().as_secs_f64();
        eprintln!(
            "{}: {count} seeds from {start}, {} failed, {secs:.1}s, outcomes {}",
            mode.name(),
            f.len(),
            figures.outcomes_json()
        );
        if let Ok(out) = std::env::var("XFT_RELIABILITY_OUT") {
            use std::io::Write;
            let seeds: Vec<String> = f.iter().take(100).map(|(s, _)| s.to_string()).collect();
            let alone: Vec<String> = figures
                .passed_alone
                .iter()
                .take(100)
                .map(u64::to_string)
                .collect();
            let date = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let line = format!(
                "{{\"suite\":\"faults\",\"mode\":\"{}\",\"seed_start\":{start},\"seeds\":{count},\"failed\":{},\"failed_seeds\":[{}],\"passed_alone\":[{}],\"passed_alone_count\":{},\"secs\":{secs:.1},\"date_unix\":{date},\"threads\":{th},\"outcomes\":{}}}\n",
                mode.name(),
                f.len(),
                seeds.join(","),
                alone.join(","),
                figures.passed_alone.len(),
                figures.outcomes_json()
            );
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&out)
                .and_then(|mut o| o.write_all(line.as_bytes()))
                .expect("XFT_RELIABILITY_OUT");
        }
        total += f.len();
    }
    assert_eq!(total, 0, "failed seeds: see FAILED lines above");
}
