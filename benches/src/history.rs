//! The results of every full run, kept in the repository: `docs/bench/history/` holds one
//! `<date>-<commit>.json` per run (the run's [`Report`], as `results.json` had it) and an
//! `index.json` listing them (date, commit, machine, goals met), from which the dashboard
//! draws each goal across runs.
//!
//! [`record`] adds a run (the suite's `write_all` calls it for every run that is not
//! `--quick`); [`load`] reads them all back, oldest first. The commit is the one checked out
//! when the run was recorded (`git rev-parse`), with `-dirty` when the work tree had
//! changes; runs imported from git history carry the commit that committed their
//! `results.json`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::report::{Goal, Report, Verdict};

/// The directory under the output directory that holds the history.
pub const DIR: &str = "history";
/// The index file inside [`DIR`].
pub const INDEX: &str = "index.json";

/// One line of `index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The run's file, relative to the history directory.
    pub file: String,
    /// When the run started (the report's `date`).
    pub date: String,
    /// The commit measured (see the module docs).
    pub commit: String,
    /// The machine, in one line.
    pub machine: String,
    /// Goals met, out of `goals`.
    pub goals_met: usize,
    /// Goals judged in that run.
    pub goals: usize,
}

/// One recorded run.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Its index line.
    pub entry: Entry,
    /// Its full report.
    pub report: Report,
}

/// What reading or writing the history can fail with.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A run's file is not a report.
    #[error("{path}: not a benchmark report: {source}")]
    Json {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HistoryError + '_ {
    move |source| HistoryError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The machine in one line, e.g. `2 cores, Intel(R) Xeon(R) Processor, linux-x86_64`.
pub fn machine_line(r: &Report) -> String {
    let m = &r.machine;
    format!("{} cores, {}, {}", m.cores, m.cpu_model, m.os)
}

/// `2026-12-02T01:24:14Z` and `299ac03` → `2026-12-02T01-24-14Z-299ac03.json`.
pub fn file_name(date: &str, commit: &str) -> String {
    let safe = |s: &str| {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect::<String>()
    };
    format!("{}-{}.json", safe(date), safe(commit))
}

/// The commit checked out in `dir`'s repository (short hash, `-dirty` with local changes),
/// or `unknown` outside a git checkout.
pub fn current_commit(dir: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(hash) if !hash.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty { format!("{hash}-dirty") } else { hash }
        }
        _ => "unknown".to_owned(),
    }
}

/// Adds `report`, measured at `commit`, to the history in `out/history/` and rewrites the
/// index. Returns the run's file. Recording the same date and commit again replaces it.
pub fn record(report: &Report, commit: &str, out: &Path) -> Result<PathBuf, HistoryError> {
    let dir = out.join(DIR);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let path = dir.join(file_name(&report.date, commit));
    let json = serde_json::to_string_pretty(report).map_err(|source| HistoryError::Json {
        path: path.display().to_string(),
        source,
    })?;
    std::fs::write(&path, json + "\n").map_err(io(&path))?;
    let mut entries = index(&dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    entries.retain(|e| Some(&e.file) != name.as_ref());
    entries.push(Entry {
        file: name.unwrap_or_default(),
        date: report.date.clone(),
        commit: commit.to_owned(),
        machine: machine_line(report),
        goals_met: report
            .goals
            .iter()
            .filter(|g| g.verdict == Verdict::Met)
            .count(),
        goals: report.goals.len(),
    });
    entries.sort_by(|a, b| a.date.cmp(&b.date));
    let index_path = dir.join(INDEX);
    let json = serde_json::to_string_pretty(&entries).map_err(|source| HistoryError::Json {
        path: index_path.display().to_string(),
        source,
    })?;
    std::fs::write(&index_path, json + "\n").map_err(io(&index_path))?;
    Ok(path)
}

fn index(dir: &Path) -> Result<Vec<Entry>, HistoryError> {
    let path = dir.join(INDEX);
    match std::fs::read_to_string(&path) {
        Ok(s) => serde_json::from_str(&s).map_err(|source| HistoryError::Json {
            path: path.display().to_string(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io(&path)(e)),
    }
}

/// Every run listed in `out/history/index.json`, oldest first (none when there is no
/// history yet).
pub fn load(out: &Path) -> Result<Vec<Run>, HistoryError> {
    let dir = out.join(DIR);
    let mut runs = Vec::new();
    for entry in index(&dir)? {
        let path = dir.join(&entry.file);
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let report = serde_json::from_str(&text).map_err(|source| HistoryError::Json {
            path: path.display().to_string(),
            source,
        })?;
        runs.push(Run { entry, report });
    }
    runs.sort_by(|a, b| a.entry.date.cmp(&b.entry.date));
    Ok(runs)
}

/// A goal's measured figure against its target, read from its `detail` (the suite writes
/// them in three shapes; see the tests).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figure {
    /// What was measured.
    pub value: f64,
    /// What the goal asks.
    pub target: f64,
    /// `true` when more is better (ratios, MB/s); `false` for costs (CPU s/MB).
    pub higher_is_better: bool,
    /// The unit: `×`, `MB/s` or `s/MB`.
    pub unit: &'static str,
}

/// The figure behind a goal, or `None` for a goal without one (memory, not measured).
pub fn figure(goal: &Goal) -> Option<Figure> {
    let d = goal.detail.as_str();
    let num = |s: &str| s.trim().trim_end_matches('×').trim().parse::<f64>().ok();
    // "624.3 / 3166.3 MB/s = 0.20× (goal 0.4×)"
    if let Some((_, rest)) = d.split_once(" = ")
        && let Some((value, goal)) = rest.split_once(" (goal ")
    {
        return Some(Figure {
            value: num(value)?,
            target: num(goal.trim_end_matches(')'))?,
            higher_is_better: true,
            unit: "×",
        });
    }
    // "1495.3 MB/s against 490 MB/s measured elsewhere (PEERS.md)"
    if let Some((value, rest)) = d.split_once(" MB/s against ") {
        return Some(Figure {
            value: num(value)?,
            target: num(rest.split_once(" MB/s")?.0)?,
            higher_is_better: true,
            unit: "MB/s",
        });
    }
    // "xft 0.0200 s/MB (sender + receiver), Prosody …; goal ≤ 0.0192 s/MB (…)"
    if let Some(rest) = d.strip_prefix("xft ")
        && let Some((value, _)) = rest.split_once(" s/MB")
        && let Some((_, goal)) = rest.split_once("goal ≤ ")
    {
        return Some(Figure {
            value: num(value)?,
            target: num(goal.split_once(" s/MB")?.0)?,
            higher_is_better: false,
            unit: "s/MB",
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn goal(detail: &str) -> Goal {
        Goal {
            name: "g".into(),
            verdict: Verdict::Met,
            detail: detail.into(),
        }
    }

    #[test]
    fn every_shape_of_goal_detail_the_suite_writes_gives_its_figure() {
        let f = figure(&goal("624.3 / 3166.3 MB/s = 0.20× (goal 0.4×)")).unwrap();
        assert_eq!(
            (f.value, f.target, f.higher_is_better, f.unit),
            (0.20, 0.4, true, "×")
        );
        let f = figure(&goal(
            "1495.3 MB/s against 490 MB/s measured elsewhere (PEERS.md)",
        ))
        .unwrap();
        assert_eq!((f.value, f.target, f.unit), (1495.3, 490.0, "MB/s"));
        let f = figure(&goal(
            "xft 0.0200 s/MB (sender + receiver), Prosody 0.0957 s/MB; goal ≤ 0.0192 s/MB \
             (CPU ticks are 10 ms: coarse on short runs)",
        ))
        .unwrap();
        assert_eq!(
            (f.value, f.target, f.higher_is_better),
            (0.02, 0.0192, false)
        );
        assert_eq!(figure(&goal("needs a and b")), None);
        assert_eq!(
            figure(&goal("peak RSS 32MiB → 256MiB: s5b/direct: 9 → 9 MiB")),
            None
        );
    }

    fn report(date: &str, ratio: f64) -> Report {
        Report {
            schema: 1,
            date: date.into(),
            command: "transfer".into(),
            quick: false,
            machine: crate::machine::Machine::detect(),
            versions: crate::report::Versions::default(),
            load_average: crate::report::LoadAverage::default(),
            peak_rss_per_case: true,
            cases: Vec::new(),
            goals: vec![Goal {
                name: "direct S5B ≥ 0.85× raw TCP".into(),
                verdict: if ratio >= 0.85 {
                    Verdict::Met
                } else {
                    Verdict::Missed
                },
                detail: format!("1.0 / 1.0 MB/s = {ratio:.2}× (goal 0.85×)"),
            }],
        }
    }

    #[test]
    fn recorded_runs_load_back_oldest_first_and_a_rerecord_replaces_its_run() {
        let dir = tempfile::tempdir().unwrap();
        record(&report("2026-12-03T00:00:00Z", 0.9), "bbb", dir.path()).unwrap();
        record(&report("2026-12-01T00:00:00Z", 0.5), "aaa", dir.path()).unwrap();
        record(&report("2026-12-03T00:00:00Z", 0.95), "bbb", dir.path()).unwrap();
        let runs = load(dir.path()).unwrap();
        let seen: Vec<(&str, usize)> = runs
            .iter()
            .map(|r| (r.entry.commit.as_str(), r.entry.goals_met))
            .collect();
        assert_eq!(seen, [("aaa", 0), ("bbb", 1)]);
        assert_eq!(figure(&runs[1].report.goals[0]).unwrap().value, 0.95);
        assert!(
            dir.path()
                .join("history/2026-12-01T00-00-00Z-aaa.json")
                .is_file()
        );
        // The page draws the goal across both runs.
        let page = crate::render::html(&runs[1].report, &runs);
        assert!(
            page.contains("goal 0.85 ×") && page.contains("12-01 00:00"),
            "{page}"
        );
    }

    #[test]
    fn file_names_are_safe_and_sort_by_date() {
        assert_eq!(
            file_name("2026-12-02T01:24:14Z", "299ac03-dirty"),
            "2026-12-02T01-24-14Z-299ac03-dirty.json"
        );
        assert_eq!(file_name("../x", "a/b"), "---x-a-b.json");
    }
}
