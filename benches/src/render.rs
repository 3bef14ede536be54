//! Turning a [`Report`] into `results.json`, `latest.md`, a history entry and a
//! self-contained `index.html` (inline SVG, CSS and script, nothing fetched).

use std::fmt::Write as _;
use std::path::Path;

use crate::history;
use crate::report::{Case, Outcome, Report, Verdict};
use crate::suite::SuiteError;

mod html;
mod svg;

pub use html::html;

const MIB: f64 = 1_048_576.0;

/// Writes `results.json`, `latest.md` and `index.html` into `dir` (created if missing),
/// after recording a full (not `--quick`) run in `dir/history/` at the commit checked out
/// ([`history::record`]); the page shows every run recorded there.
pub fn write_all(report: &Report, dir: &Path) -> Result<(), SuiteError> {
    let history_err = |e: history::HistoryError| SuiteError::Write {
        path: dir.join(history::DIR).display().to_string(),
        source: std::io::Error::other(e),
    };
    if !report.quick {
        history::record(report, &history::current_commit(dir), dir).map_err(history_err)?;
    }
    let runs = history::load(dir).map_err(history_err)?;
    let write = |name: &str, body: String| {
        let path = dir.join(name);
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&path, body))
            .map_err(|source| SuiteError::Write {
                path: path.display().to_string(),
                source,
            })
    };
    let json = serde_json::to_string_pretty(report).map_err(|e| SuiteError::Write {
        path: dir.join("results.json").display().to_string(),
        source: std::io::Error::other(e),
    })?;
    write("results.json", json + "\n")?;
    write("latest.md", markdown(report))?;
    write("index.html", html(report, &runs))
}

fn fmt_mbps(c: &Case) -> String {
    match (&c.outcome, c.mbps) {
        (Outcome::Ok, Some(s)) if c.runs_mbps.len() > 1 => {
            format!("{:.1} ({:.1}–{:.1})", s.median, s.min, s.max)
        }
        (Outcome::Ok, Some(s)) => format!("{:.1}", s.median),
        (Outcome::Failed(_), _) => "failed".to_owned(),
        (Outcome::Skipped(_), _) => "skipped".to_owned(),
        _ => "–".to_owned(),
    }
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.digits$}"))
}

fn fmt_rss(c: &Case) -> String {
    match (c.rss_start_bytes, c.peak_rss_bytes) {
        (Some(a), Some(b)) => format!("{:.0} → {:.0}", a as f64 / MIB, b as f64 / MIB),
        (None, Some(b)) => format!("{:.0}", b as f64 / MIB),
        _ => "–".to_owned(),
    }
}

fn fmt_latency(c: &Case) -> String {
    c.ack_latency_us.map_or_else(
        || "–".to_owned(),
        |p| format!("{} / {} / {} / {}", p.p50, p.p90, p.p99, p.max),
    )
}

fn status(c: &Case) -> String {
    match &c.outcome {
        Outcome::Ok => "ok".to_owned(),
        Outcome::Failed(r) => format!("failed: {r}"),
        Outcome::Skipped(r) => format!("skipped: {r}"),
    }
}

fn load(l: Option<[f64; 3]>) -> String {
    l.map_or_else(
        || "unknown".to_owned(),
        |[a, b, c]| format!("{a:.2} {b:.2} {c:.2}"),
    )
}

fn header_lines(r: &Report) -> Vec<String> {
    let m = &r.machine;
    vec![
        format!("Run {} with `{}`{}.", r.date, r.command, if r.quick { " (quick: small sizes, one run; not a measurement)" } else { "" }),
        format!(
            "Machine: {} cores, {} memory, {}, kernel {}, {}.",
            m.cores,
            m.memory_bytes
                .map_or_else(|| "unknown".to_owned(), |b| format!("{:.1} GiB", b as f64 / MIB / 1024.0)),
            m.cpu_model,
            m.kernel,
            m.os
        ),
        format!(
            "Versions: xft {}; {}; Prosody {}; slixmpp {}.",
            r.versions.xft,
            r.versions.rustc.as_deref().unwrap_or("rustc unknown"),
            r.versions.prosody.as_deref().unwrap_or("not run"),
            r.versions.slixmpp.as_deref().unwrap_or("not run")
        ),
        format!(
            "Load average (1/5/15 min) before: {}, after: {}. The machine is shared: other work perturbs every figure, and every ratio compares figures from the same run.",
            load(r.load_average.before),
            load(r.load_average.after)
        ),
        "MB = 10^6 bytes. Ratios compare medians with the case's ceiling from the same run; CPU is this process's user + system seconds (peers such as Prosody are not counted).".to_owned(),
    ]
}

/// The Markdown summary (`latest.md`).
pub fn markdown(r: &Report) -> String {
    let mut s = String::from("# xft benchmark results\n\n");
    for l in header_lines(r) {
        let _ = writeln!(s, "{l}  ");
    }
    s.push_str("\n## Goals\n\n| goal | verdict | measured |\n|---|---|---|\n");
    for g in &r.goals {
        let mark = match g.verdict {
            Verdict::Met => "✅ met",
            Verdict::Missed => "❌ missed",
            Verdict::NotMeasured => "⚪ not measured",
        };
        let _ = writeln!(s, "| {} | {mark} | {} |", g.name, g.detail);
    }
    s.push_str(
        "\n## Cases\n\n| case | MB/s median (min–max) | × ceiling | ceiling | ack µs P50/P90/P99/max | RSS MiB start → peak | CPU s | status |\n|---|---|---|---|---|---|---|---|\n",
    );
    for c in &r.cases {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
            c.id,
            fmt_mbps(c),
            fmt_opt(c.ratio_to_ceiling, 2),
            c.ceiling
                .as_deref()
                .map_or_else(|| "–".to_owned(), |id| format!("`{id}`")),
            fmt_latency(c),
            fmt_rss(c),
            fmt_opt(c.cpu_seconds, 2),
            status(c).replace('|', "/"),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::Machine;
    use crate::report::{Goal, LoadAverage, Percentiles, Spread, Versions};

    fn case(id: &str, mbps: f64, outcome: Outcome) -> Case {
        Case {
            id: id.into(),
            group: "ibb".into(),
            method: "IBB <iq>".into(),
            implementation: "xft".into(),
            path: "hub".into(),
            block_size: Some(4096),
            bytes: 1_000_000,
            outcome,
            runs_mbps: vec![mbps],
            mbps: Spread::of(&[mbps]),
            ceiling: None,
            ratio_to_ceiling: Some(0.5),
            ack_latency_us: Some(Percentiles {
                count: 3,
                p50: 10,
                p90: 20,
                p99: 30,
                max: 40,
            }),
            peak_rss_bytes: Some(8 << 20),
            rss_start_bytes: Some(6 << 20),
            peak_rss_ratio: None,
            cpu_seconds: Some(0.5),
            server_cpu_seconds: None,
            cpu_per_mb_ratio: None,
            note: None,
        }
    }

    fn report() -> Report {
        Report {
            schema: 1,
            date: "2026-11-22T04:00:00Z".into(),
            command: "transfer --quick".into(),
            quick: true,
            machine: Machine::detect(),
            versions: Versions::default(),
            load_average: LoadAverage::default(),
            peak_rss_per_case: true,
            cases: vec![
                case("ibb/hub/iq-default/4096/1MiB", 12.5, Outcome::Ok),
                case("ibb/x", 0.0, Outcome::Skipped("no <prosody> here".into())),
            ],
            goals: vec![Goal {
                name: "a <goal>".into(),
                verdict: Verdict::Missed,
                detail: "1 < 2".into(),
            }],
        }
    }

    #[test]
    fn the_dashboard_is_self_contained_and_escapes_what_it_shows() {
        let h = html(&report(), &[]);
        assert!(h.contains("<svg class=chart"));
        assert!(!h.contains(" src=") && !h.contains("http://") && !h.contains("https://"));
        assert!(h.contains("a &lt;goal&gt;") && h.contains("no &lt;prosody&gt; here"));
        assert!(h.contains("class=missed>missed"));
    }

    #[test]
    fn the_markdown_table_has_one_row_per_case_and_per_goal() {
        let m = markdown(&report());
        assert!(m.contains("| `ibb/hub/iq-default/4096/1MiB` | 12.5 | 0.50 | – | 10 / 20 / 30 / 40 | 6 → 8 | 0.50 | ok |"));
        assert!(m.contains("| a <goal> | ❌ missed | 1 < 2 |"));
        assert!(m.contains("skipped: no <prosody> here"));
    }

    #[test]
    fn results_round_trip_through_json() {
        let r = report();
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), r);
    }
}
