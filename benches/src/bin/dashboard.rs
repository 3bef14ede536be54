//! Rebuilds the dashboard without running the suite: records reports into the history and
//! renders `index.html` (and `latest.md`) from `results.json` and every recorded run.
//!
//! ```text
//! # Re-render docs/bench/index.html from docs/bench/results.json and docs/bench/history/:
//! cargo run -p benches --bin dashboard
//! # Record an earlier run, e.g. one taken from git history, measured at commit 299ac03:
//! git show 299ac03:docs/bench/results.json > /tmp/r.json
//! cargo run -p benches --bin dashboard -- --record /tmp/r.json --commit 299ac03
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use benches::report::Report;
use benches::{history, render};
use clap::Parser;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "Record runs into docs/bench/history and re-render the dashboard")]
struct Args {
    /// The dashboard directory (results.json, history/, index.html).
    #[arg(long, default_value = "docs/bench")]
    out: PathBuf,
    /// A report to add to the history first (a results.json).
    #[arg(long, requires = "commit")]
    record: Option<PathBuf>,
    /// The commit the recorded report measured.
    #[arg(long)]
    commit: Option<String>,
}

fn read(path: &std::path::Path) -> Result<Report, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn run(args: Args) -> Result<(), String> {
    if let (Some(path), Some(commit)) = (&args.record, &args.commit) {
        let report = read(path)?;
        let file = history::record(&report, commit, &args.out).map_err(|e| e.to_string())?;
        eprintln!("recorded {}", file.display());
    }
    let latest = read(&args.out.join("results.json"))?;
    let runs = history::load(&args.out).map_err(|e| e.to_string())?;
    let write = |name: &str, body: String| {
        let path = args.out.join(name);
        std::fs::write(&path, body).map_err(|e| format!("{}: {e}", path.display()))
    };
    write("latest.md", render::markdown(&latest))?;
    write("index.html", render::html(&latest, &runs))?;
    eprintln!(
        "wrote {}/{{latest.md,index.html}} with {} recorded runs",
        args.out.display(),
        runs.len()
    );
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dashboard: {e}");
            ExitCode::FAILURE
        }
    }
}
