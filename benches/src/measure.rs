//! Running one case: several timed runs, each bounded by a budget, with CPU seconds and
//! peak RSS of this process recorded around it.

use std::future::Future;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::machine;
use crate::report::{Case, MB, Outcome, Percentiles, Spread};

/// What a case is, before it runs.
#[derive(Debug, Clone)]
pub struct Spec {
    /// See [`Case::id`].
    pub id: String,
    /// See [`Case::group`].
    pub group: &'static str,
    /// See [`Case::method`].
    pub method: String,
    /// See [`Case::implementation`].
    pub implementation: &'static str,
    /// See [`Case::path`].
    pub path: &'static str,
    /// See [`Case::block_size`].
    pub block_size: Option<u32>,
    /// Bytes per run.
    pub bytes: u64,
    /// See [`Case::ceiling`].
    pub ceiling: Option<String>,
    /// See [`Case::note`].
    pub note: Option<String>,
}

impl Spec {
    /// The case with no runs and the given outcome (a skip, or a failure before any run).
    pub fn without_runs(self, outcome: Outcome) -> Case {
        Case {
            id: self.id,
            group: self.group.to_owned(),
            method: self.method,
            implementation: self.implementation.to_owned(),
            path: self.path.to_owned(),
            block_size: self.block_size,
            bytes: self.bytes,
            outcome,
            runs_mbps: Vec::new(),
            mbps: None,
            ceiling: self.ceiling,
            ratio_to_ceiling: None,
            ack_latency_us: None,
            peak_rss_bytes: None,
            rss_start_bytes: None,
            peak_rss_ratio: None,
            cpu_seconds: None,
            server_cpu_seconds: None,
            cpu_per_mb_ratio: None,
            note: self.note,
        }
    }
}

/// What one run hands back.
#[derive(Debug)]
pub struct Run {
    /// Bytes moved and verified.
    pub bytes: u64,
    /// Time from the first byte offered to the last byte verified. `None` lets the harness
    /// use the wall time of the whole run future.
    pub elapsed: Option<Duration>,
    /// Per-chunk acknowledgement latencies, microseconds.
    pub latency: Option<Histogram<u64>>,
}

impl Run {
    /// A run timed by the harness.
    pub fn bytes(bytes: u64) -> Self {
        Self {
            bytes,
            elapsed: None,
            latency: None,
        }
    }
}

/// A new latency histogram in microseconds (1 µs to 100 s, 3 significant digits).
pub fn latency_histogram() -> Histogram<u64> {
    // Bounds are constants that are valid for hdrhistogram; `new_with_bounds` only fails
    // for low < 1 or high < 2 * low.
    Histogram::new_with_bounds(1, 100_000_000, 3).unwrap_or_else(|_| unreachable!())
}

/// Runs `runs` times (stopping at the first failure), each bounded by `budget`, and
/// gathers the figures into a [`Case`].
pub async fn measure<F, Fut>(spec: Spec, runs: usize, budget: Duration, run: F) -> Case
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Run, String>>,
{
    measure_with_server(spec, runs, budget, None, run).await
}

/// [`measure`], also recording the CPU seconds of the server process `server_pid` (the
/// Prosody the case runs through) around each run.
pub async fn measure_with_server<F, Fut>(
    spec: Spec,
    runs: usize,
    budget: Duration,
    server_pid: Option<u32>,
    mut run: F,
) -> Case
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Run, String>>,
{
    let mut acc = Accumulator::new(spec, runs).with_server(server_pid);
    for _ in 0..runs {
        if !acc.run_once(budget, run()).await {
            break;
        }
    }
    acc.finish()
}

/// The figures of one case gathered run by run, so that the runs of several cases can be
/// interleaved (see `suite`: the socket cases run in rounds, one run of each case per round,
/// so that a change in the shared machine's speed reaches every case of a ratio alike).
#[derive(Debug)]
pub struct Accumulator {
    spec: Spec,
    runs: usize,
    done: usize,
    mbps: Vec<f64>,
    cpu: Vec<f64>,
    server_pid: Option<u32>,
    server_cpu: Vec<f64>,
    peak: Option<u64>,
    latency: Option<Histogram<u64>>,
    outcome: Outcome,
    rss_start: Option<u64>,
}

impl Accumulator {
    /// An empty case that expects `runs` runs.
    pub fn new(spec: Spec, runs: usize) -> Self {
        Self {
            spec,
            runs,
            done: 0,
            mbps: Vec::new(),
            cpu: Vec::new(),
            server_pid: None,
            server_cpu: Vec::new(),
            peak: None,
            latency: None,
            outcome: Outcome::Ok,
            rss_start: machine::rss_bytes(),
        }
    }

    /// Also records the CPU seconds of the server process `pid` around each run.
    #[must_use]
    pub fn with_server(mut self, pid: Option<u32>) -> Self {
        self.server_pid = pid;
        self
    }

    /// Whether the case failed (no further run is useful).
    pub fn failed(&self) -> bool {
        self.outcome != Outcome::Ok
    }

    /// Times one run bounded by `budget`; `false` once the case has failed.
    pub async fn run_once<Fut>(&mut self, budget: Duration, run: Fut) -> bool
    where
        Fut: Future<Output = Result<Run, String>>,
    {
        if self.failed() {
            return false;
        }
        self.done += 1;
        let (i, runs) = (self.done, self.runs);
        machine::reset_peak_rss();
        let server = |pid: Option<u32>| pid.and_then(machine::cpu_seconds_of);
        let server0 = server(self.server_pid);
        let cpu0 = machine::cpu_seconds();
        let t0 = Instant::now();
        let result = tokio::time::timeout(budget, run).await;
        let wall = t0.elapsed();
        let cpu1 = machine::cpu_seconds();
        let server1 = server(self.server_pid);
        self.peak = self.peak.max(machine::peak_rss_bytes());
        let r = match result {
            Err(_) => {
                self.outcome = Outcome::Failed(format!(
                    "run {i} of {runs} did not complete within its budget of {} s",
                    budget.as_secs()
                ));
                return false;
            }
            Ok(Err(reason)) => {
                self.outcome = Outcome::Failed(format!("run {i} of {runs}: {reason}"));
                return false;
            }
            Ok(Ok(r)) => r,
        };
        if r.bytes != self.spec.bytes {
            self.outcome = Outcome::Failed(format!(
                "run {i} of {runs} moved {} bytes, expected {}",
                r.bytes, self.spec.bytes
            ));
            return false;
        }
        let secs = r.elapsed.unwrap_or(wall).as_secs_f64().max(1e-9);
        self.mbps.push(r.bytes as f64 / MB / secs);
        if let (Some(a), Some(b)) = (cpu0, cpu1) {
            self.cpu.push(b - a);
        }
        if let (Some(a), Some(b)) = (server0, server1) {
            self.server_cpu.push(b - a);
        }
        if let Some(h) = r.latency {
            match &mut self.latency {
                None => self.latency = Some(h),
                Some(acc) => {
                    // Same bounds on both sides: adding cannot fail.
                    let _ = acc.add(&h);
                }
            }
        }
        true
    }

    /// The case with every figure gathered so far.
    pub fn finish(self) -> Case {
        let mut case = self.spec.without_runs(self.outcome);
        case.mbps = Spread::of(&self.mbps);
        case.runs_mbps = self.mbps;
        case.cpu_seconds = Spread::of(&self.cpu).map(|s| s.median);
        case.server_cpu_seconds = Spread::of(&self.server_cpu).map(|s| s.median);
        case.peak_rss_bytes = self.peak;
        case.rss_start_bytes = self.rss_start;
        case.ack_latency_us = self.latency.as_ref().and_then(Percentiles::of);
        case
    }

    /// The case's id.
    pub fn id(&self) -> &str {
        &self.spec.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(bytes: u64) -> Spec {
        Spec {
            id: "t".into(),
            group: "ceiling",
            method: "test".into(),
            implementation: "tcp",
            path: "loopback",
            block_size: None,
            bytes,
            ceiling: None,
            note: None,
        }
    }

    #[tokio::test]
    async fn a_stalled_run_is_reported_as_failed_within_its_budget() {
        let case = measure(spec(10), 3, Duration::from_millis(50), || async {
            std::future::pending::<()>().await;
            Ok(Run::bytes(10))
        })
        .await;
        let Outcome::Failed(reason) = &case.outcome else {
            panic!("{:?}", case.outcome)
        };
        assert!(
            reason.contains("run 1 of 3 did not complete within its budget"),
            "{reason}"
        );
        assert!(case.runs_mbps.is_empty());
    }

    #[tokio::test]
    async fn a_short_run_fails_the_case() {
        let case = measure(spec(10), 2, Duration::from_secs(5), || async {
            Ok(Run::bytes(9))
        })
        .await;
        assert_eq!(
            case.outcome,
            Outcome::Failed("run 1 of 2 moved 9 bytes, expected 10".into())
        );
    }

    #[tokio::test]
    async fn each_completed_run_gives_one_figure() {
        let case = measure(spec(1_000_000), 3, Duration::from_secs(5), || async {
            Ok(Run {
                bytes: 1_000_000,
                elapsed: Some(Duration::from_millis(10)),
                latency: None,
            })
        })
        .await;
        assert_eq!(case.outcome, Outcome::Ok);
        assert_eq!(case.runs_mbps.len(), 3);
        assert!((case.mbps.unwrap().median - 100.0).abs() < 1e-6);
    }
}
