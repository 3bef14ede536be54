//! The end-to-end suite: which cases run, in what order and with which ceiling (the goals
//! they are judged against are in [`goals`](crate::goals)). [`run`] is what the `transfer`
//! binary and `xft bench` call.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::ceiling::{self, CpuPath};
use crate::machine::{self, Machine};
use crate::measure::{self, Accumulator, Run, Spec};
use crate::pattern::ReadOn;
use crate::report::{Case, LoadAverage, Outcome, Report, Versions};
use crate::transfer::{self, IbbParams, Window};

/// One mebibyte.
pub const MIB: u64 = 1 << 20;

/// The fewest rounds the socket cases (raw TCP, relay hop, S5B direct and proxied), the
/// stacks beside each other and IBB over raw XML with its ceiling run outside `--quick`: a
/// run takes well under a second, and on this shared machine single runs of them varied by
/// 2x within a minute. With 7 rounds the median of our proxy over the relay hop still went
/// from 0.85× to 1.17× between runs of the same code; with 15, 0.96× to 1.02× (three runs).
pub const SOCKET_ROUNDS: usize = 15;

/// One run of a case, boxed so that cases of different kinds can run in rounds.
pub(crate) type RunFn = Box<dyn FnMut() -> Pin<Box<dyn Future<Output = Result<Run, String>>>>>;

pub(crate) fn boxed<F, Fut>(mut f: F) -> RunFn
where
    F: FnMut() -> Fut + 'static,
    Fut: Future<Output = Result<Run, String>> + 'static,
{
    Box::new(move || Box::pin(f()))
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Small sizes, one run each: proves every case still runs (CI), measures little.
    pub quick: bool,
    /// Transfer sizes for the socket cases. Default 32 MiB and 256 MiB (the sizes:
    /// one that fits caches and buffers, one that does not).
    pub sizes: Vec<u64>,
    /// Size of the IBB and server cases, which run at stanza speed. Default 32 MiB; only
    /// the default-window IBB cases also run at every size in `sizes`, to show memory stays
    /// flat.
    pub ibb_size: u64,
    /// Runs per case. Default 3 (median and range); `--quick` 1.
    pub runs: usize,
    /// Time budget of one run; a run past it fails the case instead of hanging the suite.
    /// Default 120 s.
    pub budget: Duration,
    /// Run only cases whose id contains one of these (all when empty).
    pub filter: Vec<String>,
    /// Skip the cases that need Prosody or slixmpp.
    pub in_process_only: bool,
    /// The command line, recorded in the report.
    pub command: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            quick: false,
            sizes: vec![32 * MIB, 256 * MIB],
            ibb_size: 32 * MIB,
            runs: 3,
            budget: Duration::from_secs(120),
            filter: Vec::new(),
            in_process_only: false,
            command: "transfer".to_owned(),
        }
    }
}

impl Options {
    /// The `--quick` settings: 4 MiB socket cases, 1 MiB IBB cases, one run each, 30 s
    /// budget.
    pub fn quick() -> Self {
        Self {
            quick: true,
            sizes: vec![4 * MIB],
            ibb_size: MIB,
            runs: 1,
            budget: Duration::from_secs(30),
            ..Self::default()
        }
    }

    fn wants(&self, id: &str) -> bool {
        self.filter.is_empty() || self.filter.iter().any(|f| id.contains(f.as_str()))
    }
}

/// What can stop the suite as a whole (a single case failing never does).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SuiteError {
    /// The tokio runtime could not be built.
    #[error("cannot start the tokio runtime")]
    Runtime(#[source] std::io::Error),
    /// The suite's thread panicked.
    #[error("the suite thread panicked")]
    Panicked,
    /// Writing the results failed.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Runs the suite on a fresh multi-threaded runtime (one worker per core) on its own
/// thread, so it can be called from anywhere, including from inside another runtime.
pub fn run(opts: Options) -> Result<Report, SuiteError> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(std::thread::available_parallelism().map_or(2, usize::from))
            .enable_all()
            .build()
            .map_err(SuiteError::Runtime)?;
        Ok(rt.block_on(run_async(opts)))
    })
    .join()
    .map_err(|_| SuiteError::Panicked)?
}

/// A short label for a size: `32MiB`, `1MiB`, `1500B`.
pub fn size_label(bytes: u64) -> String {
    if bytes.is_multiple_of(MIB) {
        format!("{}MiB", bytes / MIB)
    } else if bytes.is_multiple_of(1024) {
        format!("{}KiB", bytes / 1024)
    } else {
        format!("{bytes}B")
    }
}

pub(crate) struct Runner {
    pub(crate) opts: Options,
    pub(crate) cases: Vec<Case>,
}

impl Runner {
    fn log(&self, case: &Case) {
        let fig = case.mbps.map_or_else(String::new, |s| {
            format!("{:9.1} MB/s ({:.1}–{:.1})", s.median, s.min, s.max)
        });
        let status = match &case.outcome {
            Outcome::Ok => "ok".to_owned(),
            Outcome::Failed(r) => format!("FAILED: {r}"),
            Outcome::Skipped(r) => format!("skipped: {r}"),
        };
        eprintln!("{:<44} {fig:<36} {status}", case.id);
    }

    pub(crate) async fn case<F, Fut>(&mut self, spec: Spec, run: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Run, String>>,
    {
        if !self.opts.wants(&spec.id) {
            return;
        }
        let case = measure::measure(spec, self.opts.runs, self.opts.budget, run).await;
        self.log(&case);
        self.cases.push(case);
    }

    /// Runs the wanted `cases` in `rounds` rounds, one run of each case per round in the
    /// order given, so that the ceiling and the cases judged against it see the same
    /// machine: on a shared machine the speed drifts over seconds, and timing all runs of one
    /// case before the next skewed ratios by more than the goals' margins.
    pub(crate) async fn interleaved(&mut self, rounds: usize, cases: Vec<(Spec, RunFn)>) {
        let mut cases: Vec<(Accumulator, RunFn)> = cases
            .into_iter()
            .filter(|(spec, _)| self.opts.wants(&spec.id))
            .map(|(spec, run)| (Accumulator::new(spec, rounds), run))
            .collect();
        for _ in 0..rounds {
            for (acc, run) in &mut cases {
                acc.run_once(self.opts.budget, run()).await;
            }
        }
        for (acc, _) in cases {
            let case = acc.finish();
            self.log(&case);
            self.cases.push(case);
        }
    }

    fn skip(&mut self, spec: Spec, reason: &str) {
        if !self.opts.wants(&spec.id) {
            return;
        }
        let case = spec.without_runs(Outcome::Skipped(reason.to_owned()));
        self.log(&case);
        self.cases.push(case);
    }
}

/// Builds a [`Spec`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn spec(
    id: String,
    group: &'static str,
    method: impl Into<String>,
    implementation: &'static str,
    path: &'static str,
    block_size: Option<u32>,
    bytes: u64,
    ceiling: Option<String>,
) -> Spec {
    Spec {
        id,
        group,
        method: method.into(),
        implementation,
        path,
        block_size,
        bytes,
        ceiling,
        note: None,
    }
}

/// The id of the raw TCP ceiling at `size`.
pub fn raw_tcp_id(size: u64) -> String {
    format!("ceiling/raw-tcp/{}", size_label(size))
}

/// The id of the raw TCP ceiling measured right before the IBB cases.
pub fn ibb_tcp_id(size: u64) -> String {
    format!("ceiling/raw-tcp-before-ibb/{}", size_label(size))
}

/// The IBB modes every path runs, with their id part and name.
pub fn ibb_modes() -> [(IbbParams, &'static str, &'static str); 8] {
    let p = |block_size, iq_window| IbbParams {
        block_size,
        iq_window,
        xft_default: false,
    };
    [
        (
            p(4096, Some(Window::Fixed(1))),
            "iq-w1",
            "IBB over iq, window 1",
        ),
        (
            p(4096, Some(Window::Adaptive)),
            "iq-default",
            "IBB over iq, default window",
        ),
        (
            p(4096, Some(Window::Fixed(64))),
            "iq-w64",
            "IBB over iq, window 64",
        ),
        (p(4096, None), "message", "IBB over message"),
        (
            p(65535, Some(Window::Fixed(1))),
            "iq-w1",
            "IBB over iq, window 1",
        ),
        (
            p(65535, Some(Window::Adaptive)),
            "iq-default",
            "IBB over iq, default window",
        ),
        (
            p(65535, Some(Window::Fixed(64))),
            "iq-w64",
            "IBB over iq, window 64",
        ),
        (p(65535, None), "message", "IBB over message"),
    ]
}

/// Runs every case and judges the goals.
pub async fn run_async(opts: Options) -> Report {
    let date = machine::utc_now_rfc3339();
    let before = machine::load_average();
    let peak_rss_per_case = machine::reset_peak_rss();
    // Build the pattern and warm the loopback path (allocator, socket buffers) before the
    // first timed run; this run is not reported.
    let _ = crate::pattern::pattern();
    if !opts.quick {
        let _ = tokio::time::timeout(opts.budget, ceiling::raw_tcp(opts.sizes[0], ReadOn::Caller))
            .await;
    }
    let mut r = Runner {
        opts: opts.clone(),
        cases: Vec::new(),
    };

    // Sockets: ceilings and S5B at every size, in interleaved rounds.
    let rounds = if opts.quick {
        opts.runs
    } else {
        opts.runs.max(SOCKET_ROUNDS)
    };
    for &size in &opts.sizes {
        let sl = size_label(size);
        let tcp = raw_tcp_id(size);
        let sock = |id: String, group, method, implementation, path, ceiling| {
            spec(id, group, method, implementation, path, None, size, ceiling)
        };
        r.interleaved(
            rounds,
            vec![
                (
                    sock(
                        tcp.clone(),
                        "ceiling",
                        "raw loopback TCP",
                        "tcp",
                        "loopback",
                        None,
                    ),
                    boxed(move || ceiling::raw_tcp(size, ReadOn::Caller)),
                ),
                (
                    sock(
                        format!("ceiling/relay-hop/{sl}"),
                        "ceiling",
                        "plain copy relay hop",
                        "tcp",
                        "loopback relay",
                        Some(tcp.clone()),
                    ),
                    boxed(move || ceiling::relay_hop(size)),
                ),
                (
                    sock(
                        format!("s5b/direct/{sl}"),
                        "s5b",
                        "S5B direct",
                        "xft",
                        "hub + loopback",
                        Some(tcp.clone()),
                    ),
                    boxed(move || transfer::s5b(size, false)),
                ),
                (
                    sock(
                        format!("s5b/xft-proxy/{sl}"),
                        "s5b",
                        "S5B through our proxy",
                        "xft",
                        "xft proxy",
                        Some(tcp.clone()),
                    ),
                    boxed(move || transfer::s5b(size, true)),
                ),
            ],
        )
        .await;
    }

    // Both stacks through the facade, same run, same machine moment.
    crate::stacks::run_cases(&mut r, rounds).await;

    // IBB: raw TCP again in the IBB cases' rig (every party on a runtime task), in rounds
    // with the goal's case so that the two see the same machine; then the CPU ceilings, the
    // raw XML stream's own ceiling and the other transfers.
    let ibb_size = opts.ibb_size;
    let isl = size_label(ibb_size);
    let (goal_params, goal_mode, goal_name) = ibb_modes()
        .into_iter()
        .find(|(p, mode, _)| p.block_size == 65535 && *mode == "iq-default")
        .expect("ibb_modes has iq-default at 65535");
    let goal_id = format!("ibb/raw-xml/{goal_mode}/65535/{isl}");
    r.interleaved(
        rounds,
        vec![
            (
                spec(
                    ibb_tcp_id(ibb_size),
                    "ceiling",
                    "raw loopback TCP, reader on a runtime task as in the IBB cases, \
                     in rounds with IBB over raw XML at 65535",
                    "tcp",
                    "loopback",
                    None,
                    ibb_size,
                    None,
                ),
                boxed(move || ceiling::raw_tcp(ibb_size, ReadOn::Task)),
            ),
            (
                spec(
                    goal_id.clone(),
                    "ibb",
                    goal_name,
                    "xft",
                    "raw-xml",
                    Some(65535),
                    ibb_size,
                    Some(ibb_tcp_id(ibb_size)),
                ),
                boxed(move || transfer::ibb_raw_xml(goal_params, ibb_size)),
            ),
        ],
    )
    .await;
    for block in [4096u16, 65535] {
        let bs = usize::from(block);
        for (path, name, what) in [
            (
                CpuPath::Base64,
                "base64",
                "base64-simd encode + strict decode",
            ),
            (
                CpuPath::XmlDom,
                "xml-dom",
                "IBB stanza build, serialize, DOM parse, decode",
            ),
            (
                CpuPath::XmlFast,
                "xml-fast",
                "IBB stanza build, serialize, fast-path parse, decode",
            ),
        ] {
            r.case(
                spec(
                    format!("ceiling/{name}/{block}/{isl}"),
                    "ceiling",
                    what,
                    "xft",
                    "cpu (one core)",
                    Some(u32::from(block)),
                    ibb_size,
                    None,
                ),
                move || async move {
                    tokio::task::spawn_blocking(move || ceiling::cpu_path(path, ibb_size, bs))
                        .await
                        .map_err(|e| format!("cpu task: {e}"))?
                },
            )
            .await;
        }
        r.case(
            spec(
                format!("ceiling/raw-xml-pump/{block}/{isl}"),
                "ceiling",
                "<data/> iqs pumped over a raw XML stream, no acks",
                "xft",
                "raw-xml",
                Some(u32::from(block)),
                ibb_size,
                Some(ibb_tcp_id(ibb_size)),
            ),
            move || ceiling::raw_xml_pump(ibb_size, bs),
        )
        .await;
    }
    for (params, mode, name) in ibb_modes() {
        let block = params.block_size;
        let mut sizes = vec![ibb_size];
        if params.iq_window == Some(Window::Adaptive) {
            sizes.extend(opts.sizes.iter().copied().filter(|s| *s != ibb_size));
        }
        for size in sizes {
            let sl = size_label(size);
            r.case(
                spec(
                    format!("ibb/hub/{mode}/{block}/{sl}"),
                    "ibb",
                    name,
                    "xft",
                    "hub",
                    Some(u32::from(block)),
                    size,
                    Some(format!("ceiling/base64/{block}/{isl}")),
                ),
                move || transfer::ibb_hub(params, size),
            )
            .await;
            let id = format!("ibb/raw-xml/{mode}/{block}/{sl}");
            if id == goal_id {
                // Measured above, in rounds with its ceiling.
                continue;
            }
            r.case(
                spec(
                    id,
                    "ibb",
                    name,
                    "xft",
                    "raw-xml",
                    Some(u32::from(block)),
                    size,
                    Some(ibb_tcp_id(ibb_size)),
                ),
                move || transfer::ibb_raw_xml(params, size),
            )
            .await;
        }
    }

    r.case(
        spec(
            crate::offer::ID.to_owned(),
            "offer",
            "xft send of a sparse 4 GiB file: send_file until the SI offer is on the hub",
            "xft",
            "hub",
            None,
            4 << 30,
            None,
        ),
        crate::offer::run,
    )
    .await;

    let mut versions = Versions {
        xft: env!("CARGO_PKG_VERSION").to_owned(),
        rustc: rustc_version(),
        ..Versions::default()
    };
    if opts.in_process_only {
        for id in external_case_ids(&opts) {
            r.skip(
                spec(id, "server", "", "", "", None, 0, None),
                "--in-process: cases that need Prosody or slixmpp are not run",
            );
        }
    } else {
        crate::external::run_all(&mut r.cases, &opts, &mut versions).await;
    }

    let mut report = Report {
        schema: 1,
        date,
        command: opts.command.clone(),
        quick: opts.quick,
        machine: Machine::detect(),
        versions,
        load_average: LoadAverage {
            before,
            after: machine::load_average(),
        },
        peak_rss_per_case,
        cases: r.cases,
        goals: Vec::new(),
    };
    report.compute_ratios();
    report.goals = crate::goals::goals(&report, &opts);
    report
}

fn external_case_ids(opts: &Options) -> Vec<String> {
    let _ = opts;
    vec!["external/prosody-and-slixmpp".to_owned()]
}

fn rustc_version() -> Option<String> {
    let out = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
