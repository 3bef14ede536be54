//! The dashboard as a reader sees it: `docs/bench/index.html` is what the renderer makes of
//! the committed results and history, and a real headless Chromium lays out every chart it
//! announces with no console message at all (script errors, SVG attribute errors).
//!
//! Needs the Debian package `chromium` (`scripts/test` installs it); without it these tests
//! fail with that hint, they never skip.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use benches::report::Report;
use benches::{history, render};
use tokio::process::Command;

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/bench")
}

fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "chromium not found on PATH: the dashboard test opens the page in a real headless \
         browser. Install it with `apt-get install -y chromium` (scripts/test does)."
    );
}

/// What the browser made of a page: the `<body>` tag of the DOM after its scripts ran, and
/// every console message the page produced.
struct Opened {
    body: String,
    console: Vec<String>,
}

async fn open(page: &Path) -> Opened {
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let run = Command::new(chromium())
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("chromium renders the page within 120 s")
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && dom.contains("<body"),
        "chromium failed ({}): {stderr}",
        out.status
    );
    let start = dom.find("<body").unwrap();
    let end = start + dom[start..].find('>').unwrap();
    Opened {
        body: dom[start..=end].to_owned(),
        console: stderr
            .lines()
            .filter(|l| l.contains(":CONSOLE"))
            .map(str::to_owned)
            .collect(),
    }
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let rest = &tag[tag.find(&format!("{name}=\""))? + name.len() + 2..];
    Some(&rest[..rest.find('"')?])
}

#[test]
fn the_committed_page_is_what_the_renderer_makes_of_the_committed_results_and_history() {
    let latest: Report =
        serde_json::from_str(&std::fs::read_to_string(docs().join("results.json")).unwrap())
            .unwrap();
    let runs = history::load(&docs()).unwrap();
    assert!(
        runs.len() >= 2,
        "the dashboard shows at least two runs' history"
    );
    let page = std::fs::read_to_string(docs().join("index.html")).unwrap();
    assert!(
        page == render::html(&latest, &runs),
        "docs/bench/index.html is stale: run `cargo run -p benches --bin dashboard`"
    );
}

#[tokio::test]
async fn chromium_lays_out_every_chart_of_the_dashboard_with_no_console_message() {
    let opened = open(&docs().join("index.html")).await;
    assert_eq!(opened.console, Vec::<String>::new(), "console messages");
    let announced: usize = attr(&opened.body, "data-charts")
        .expect("the page says how many charts it has")
        .parse()
        .unwrap();
    // One chart per goal with a figure (11 across the recorded runs) and the groups.
    assert!(announced >= 20, "{}", opened.body);
    assert_eq!(
        attr(&opened.body, "data-rendered"),
        Some(format!("{announced} charts").as_str()),
        "{}",
        opened.body
    );
}

#[tokio::test]
async fn a_page_with_a_script_error_is_reported_and_not_marked_rendered() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("broken.html");
    let good = std::fs::read_to_string(docs().join("index.html")).unwrap();
    // The same page with its script broken the way a typo would.
    std::fs::write(&page, good.replace("querySelectorAll", "querySelectorAl")).unwrap();
    let opened = open(&page).await;
    assert!(
        opened
            .console
            .iter()
            .any(|l| l.contains("Uncaught TypeError")),
        "{:?}",
        opened.console
    );
    assert_eq!(attr(&opened.body, "data-rendered"), None);
}
