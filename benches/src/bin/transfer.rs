//! The xft end-to-end benchmark suite: runs every case, writes `results.json`,
//! `latest.md` and `index.html`, and prints the Markdown table.
//!
//! ```text
//! cargo run --release -p benches --bin transfer                 # full suite, ~15 min
//! cargo run --release -p benches --bin transfer -- --quick      # small sizes, one run
//! cargo run --release -p benches --bin transfer -- --quick --in-process --out /tmp/b
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use benches::suite::{self, MIB, Options};
use clap::Parser;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "xft throughput suite: S5B, IBB, ceilings and peers, with a dashboard")]
struct Args {
    /// Small sizes and one run per case (CI: proves the suite runs, measures little).
    #[arg(long)]
    quick: bool,
    /// Only the in-process cases (no Prosody, no slixmpp).
    #[arg(long)]
    in_process: bool,
    /// Socket-case sizes in MiB (default 32 and 256; quick 4).
    #[arg(long, value_delimiter = ',')]
    sizes_mib: Vec<u64>,
    /// IBB and server-case size in MiB (default 32; quick 1).
    #[arg(long)]
    ibb_mib: Option<u64>,
    /// Runs per case (default 3; quick 1).
    #[arg(long)]
    runs: Option<usize>,
    /// Time budget of one run, seconds (default 120; quick 30).
    #[arg(long)]
    budget_secs: Option<u64>,
    /// Run only the cases whose id contains one of these (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where to write results.json, latest.md and index.html.
    #[arg(long, default_value = "docs/bench")]
    out: PathBuf,
    /// Do not write any file; print the table only.
    #[arg(long)]
    no_write: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut opts = if args.quick {
        Options::quick()
    } else {
        Options::default()
    };
    if !args.sizes_mib.is_empty() {
        opts.sizes = args.sizes_mib.iter().map(|m| m * MIB).collect();
    }
    if let Some(m) = args.ibb_mib {
        opts.ibb_size = m * MIB;
    }
    if let Some(r) = args.runs {
        opts.runs = r.max(1);
    }
    if let Some(b) = args.budget_secs {
        opts.budget = Duration::from_secs(b);
    }
    opts.filter = args.only;
    opts.in_process_only = args.in_process;
    opts.command = std::env::args().collect::<Vec<_>>().join(" ");
    let report = match suite::run(opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("transfer: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", benches::render::markdown(&report));
    if !args.no_write {
        if let Err(e) = benches::render::write_all(&report, &args.out) {
            eprintln!("transfer: {e}");
            return ExitCode::FAILURE;
        }
        eprintln!(
            "wrote {}/{{results.json,latest.md,index.html}}",
            args.out.display()
        );
    }
    ExitCode::SUCCESS
}
