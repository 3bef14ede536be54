//! The machine-readable results: one [`Report`] per suite run, serialized as
//! `docs/bench/results.json`, from which the dashboard and the Markdown table are rendered.

use serde::{Deserialize, Serialize};

use crate::machine::Machine;

/// MB as the suite reports it: 10^6 bytes.
pub const MB: f64 = 1_000_000.0;

/// One run of the suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Version of this JSON layout; bumped when a field changes meaning.
    pub schema: u32,
    /// When the suite started, RFC 3339 UTC.
    pub date: String,
    /// The command line that produced the report.
    pub command: String,
    /// Whether this was a `--quick` run (small sizes, one run each: proves it runs, measures
    /// little).
    pub quick: bool,
    /// The machine.
    pub machine: Machine,
    /// Versions of what was measured.
    pub versions: Versions,
    /// Load average before the first case, and after the last one.
    pub load_average: LoadAverage,
    /// Whether per-case peak RSS could be reset between cases (`/proc/self/clear_refs`); when
    /// not, each peak is the process-wide maximum so far.
    pub peak_rss_per_case: bool,
    /// Every case, in the order run.
    pub cases: Vec<Case>,
    /// The goals of the issue, each marked met, missed or not measured.
    pub goals: Vec<Goal>,
}

/// Versions of the software measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    /// This workspace's version.
    pub xft: String,
    /// `rustc --version` of the toolchain on the machine, if found.
    pub rustc: Option<String>,
    /// Prosody's version, if a Prosody case ran.
    pub prosody: Option<String>,
    /// slixmpp's version, if a slixmpp case ran.
    pub slixmpp: Option<String>,
}

/// Load averages around the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadAverage {
    /// 1/5/15-minute load average before the first case.
    pub before: Option<[f64; 3]>,
    /// 1/5/15-minute load average after the last case.
    pub after: Option<[f64; 3]>,
}

/// How a case ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "reason")]
pub enum Outcome {
    /// Every run completed and every byte arrived intact.
    Ok,
    /// A run failed, lost or corrupted bytes, or ran past its time budget.
    Failed(String),
    /// The case could not run here (a missing server, peer or crate); the reason says which.
    Skipped(String),
}

/// The result of one case (one method, path and size).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Stable identifier, e.g. `ibb/raw-xml/iq-w64/65535/32MiB`.
    pub id: String,
    /// What kind of figure this is: `ceiling`, `s5b`, `ibb` or `server` (a server's own
    /// relay rate measured with a minimal client).
    pub group: String,
    /// Human name of the method, e.g. `IBB over iq, window 64`.
    pub method: String,
    /// Whose implementation moved the bytes: `xft`, `slixmpp`, `prosody`, `raw client`, `tcp`.
    pub implementation: String,
    /// The path the bytes took: `loopback`, `hub`, `raw-xml`, `prosody`, `xft proxy`,
    /// `proxy65`.
    pub path: String,
    /// IBB block size, where it applies.
    pub block_size: Option<u32>,
    /// Bytes per run.
    pub bytes: u64,
    /// How the case ended.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// MB/s of each completed run.
    pub runs_mbps: Vec<f64>,
    /// Median, min and max of `runs_mbps`.
    pub mbps: Option<Spread>,
    /// The ceiling this case is compared to (its `id`), measured in the same run.
    pub ceiling: Option<String>,
    /// Median MB/s divided by the ceiling's median MB/s.
    pub ratio_to_ceiling: Option<f64>,
    /// Per-chunk acknowledgement latency (IBB over iq), microseconds.
    pub ack_latency_us: Option<Percentiles>,
    /// Highest peak RSS of this process over the runs, bytes. The allocator keeps memory
    /// freed by earlier cases, so compare with `rss_start_bytes`.
    pub peak_rss_bytes: Option<u64>,
    /// RSS of this process when the case started, bytes.
    pub rss_start_bytes: Option<u64>,
    /// `peak_rss_bytes` divided by the ceiling's.
    pub peak_rss_ratio: Option<f64>,
    /// CPU seconds (user + system, all threads) of this process per run, median.
    pub cpu_seconds: Option<f64>,
    /// CPU seconds of the server the case went through (Prosody, by its pid) per run,
    /// median; `None` for cases without a server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu_seconds: Option<f64>,
    /// CPU seconds per MB divided by the ceiling's.
    pub cpu_per_mb_ratio: Option<f64>,
    /// Anything a reader should know (tuning, what stood in for what).
    pub note: Option<String>,
}

/// Median and range of a set of runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Median (mean of the two middle values for an even count).
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`, or `None` if there are none.
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Self {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// How many samples.
    pub count: u64,
    /// 50th percentile.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest sample.
    pub max: u64,
}

impl Percentiles {
    /// Reads the percentiles out of a histogram (microseconds), or `None` if it is empty.
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> Option<Self> {
        (!h.is_empty()).then(|| Self {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            max: h.max(),
        })
    }
}

/// One goal of the issue and whether this run met it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goal {
    /// What the goal says, e.g. `direct S5B ≥ 0.85× raw TCP`.
    pub name: String,
    /// `met`, `missed` or `not measured`.
    pub verdict: Verdict,
    /// The measured figures behind the verdict.
    pub detail: String,
}

/// Whether a goal was met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The measured figure reaches the goal.
    Met,
    /// It does not.
    Missed,
    /// A case the goal needs did not run (skipped or failed).
    NotMeasured,
}

impl Verdict {
    /// Lowercase label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Self::Met => "met",
            Self::Missed => "missed",
            Self::NotMeasured => "not measured",
        }
    }
}

impl Report {
    /// The case with this id.
    pub fn case(&self, id: &str) -> Option<&Case> {
        self.cases.iter().find(|c| c.id == id)
    }

    /// Median MB/s of a case that completed.
    pub fn median(&self, id: &str) -> Option<f64> {
        self.case(id)
            .filter(|c| c.outcome == Outcome::Ok)
            .and_then(|c| c.mbps)
            .map(|s| s.median)
    }

    /// Fills in every case's ratios against its ceiling (MB/s, peak RSS, CPU per MB).
    pub fn compute_ratios(&mut self) {
        type Figures = (String, Option<f64>, Option<u64>, Option<f64>);
        let ceilings: Vec<Figures> = self
            .cases
            .iter()
            .map(|c| {
                let m = c
                    .mbps
                    .filter(|_| c.outcome == Outcome::Ok)
                    .map(|s| s.median);
                (c.id.clone(), m, c.peak_rss_bytes, cpu_per_mb(c))
            })
            .collect();
        for case in &mut self.cases {
            let Some(ceiling) = &case.ceiling else {
                continue;
            };
            let Some((_, cm, crss, ccpu)) = ceilings.iter().find(|(id, ..)| id == ceiling) else {
                continue;
            };
            let ok = case.outcome == Outcome::Ok;
            case.ratio_to_ceiling = match (case.mbps, cm) {
                (Some(s), Some(c)) if ok && *c > 0.0 => Some(s.median / c),
                _ => None,
            };
            case.peak_rss_ratio = match (case.peak_rss_bytes, crss) {
                (Some(a), Some(b)) if ok && *b > 0 => Some(a as f64 / *b as f64),
                _ => None,
            };
            case.cpu_per_mb_ratio = match (cpu_per_mb(case), ccpu) {
                (Some(a), Some(b)) if ok && *b > 0.0 => Some(a / b),
                _ => None,
            };
        }
    }
}

fn cpu_per_mb(c: &Case) -> Option<f64> {
    let cpu = c.cpu_seconds?;
    (c.bytes > 0 && cpu > 0.0).then(|| cpu / (c.bytes as f64 / MB))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_the_middle_of_an_even_count() {
        let s = Spread::of(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 4.0));
        assert_eq!(Spread::of(&[]), None);
    }

    #[test]
    fn outcome_serializes_with_its_reason() {
        let json = serde_json::to_string(&Outcome::Skipped("no prosody".into())).unwrap();
        assert_eq!(json, r#"{"status":"skipped","reason":"no prosody"}"#);
    }
}
