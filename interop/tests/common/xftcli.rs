//! Our side driven through the `xft` command-line binary (`xft send`, `xft recv --json`,
//! `xft proxy`), against the libpurple and QXmpp peers of `ft-testkit`, through a real
//! Prosody; and the interop table rows each test appends under `target/interop-table/`.
//!
//! Only the binary's command line and JSON rows are used here, never the Rust library APIs.
#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ft_testkit::{NativePeer, PASSWORD, PeerKind, Prosody, ProsodyOptions};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// One whole transfer (a few MB over IBB at ~1 MB/s through Prosody on 2 shared cores).
pub const BUDGET: Duration = Duration::from_secs(60);

// Not every test binary that includes this module sends a file.
#[allow(unused_imports)]
pub use ft_testkit::content;

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn sha256_file(path: &Path) -> String {
    sha256_hex(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

pub fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// The `xft` binary of this build: `$XFT_BIN`, else `<target>/<profile>/xft` next to this
/// test's executable. `cargo nextest run --workspace` (scripts/test) builds it; a lone
/// `cargo test -p interop` needs `cargo build -p xft` first.
pub fn xft_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("XFT_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test>-<hash>
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let p = profile_dir.join("xft");
    assert!(
        p.is_file(),
        "{} not found: build it with `cargo build -p xft` (scripts/test builds it), or set XFT_BIN",
        p.display()
    );
    p
}

/// `--server … --jid user@domain/resource --plaintext --json`, the password in the
/// environment (`XFT_PASSWORD`, set by [`Xft::spawn`]), and the one flag each side needs
/// on loopback: `send` offers its own streamhost on 127.0.0.1 (`--local-address`), `recv`
/// may dial it (`--dial any`: the default, public only, refuses it).
pub fn account(side: &str, prosody: &Prosody, user: &str, resource: &str) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--server".into(),
        prosody.c2s_addr().to_string(),
        "--jid".into(),
        format!("{}/{resource}", prosody.jid(user)),
        "--plaintext".into(),
        "--json".into(),
    ];
    match side {
        "send" => args.extend(["--local-address".into(), "127.0.0.1".into()]),
        _ => args.extend(["--dial".into(), "any".into()]),
    }
    args
}

/// The cases give one set of `xft` options for both directions; `xft recv` takes only the
/// receiver's. `--method M` becomes `--accept-method` with M's methods (`auto`: `s5b,ibb`);
/// `--block-size` and `--proxy` say how a sender offers and never acted on `recv`: dropped.
fn recv_flags(extra: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = extra.iter();
    while let Some(&flag) = it.next() {
        match flag {
            "--method" => {
                let m = it.next().copied().unwrap_or("auto");
                let accept = match m {
                    "auto" => "s5b,ibb",
                    m if m.starts_with("s5b") => "s5b",
                    _ => "ibb",
                };
                out.extend(["--accept-method".to_owned(), accept.to_owned()]);
            }
            "--block-size" | "--proxy" => {
                it.next();
            }
            other => out.push(other.to_owned()),
        }
    }
    out
}

/// A running `xft` process; killed on drop.
pub struct Xft {
    pub child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Xft {
    pub fn spawn(args: &[String]) -> Self {
        let mut child = Command::new(xft_bin())
            .args(args)
            .env("XFT_PASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("xft starts");
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut err_lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(l)) = err_lines.next_line().await {
                sink.lock().unwrap().push(l);
            }
        });
        Self {
            child,
            stdout,
            stderr,
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Waits until the process printed `needle` on stderr (`xft recv`: " online ").
    pub async fn wait_stderr(&self, needle: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !self
            .stderr
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(needle))
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "xft printed no {needle:?} within 30 s: {}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The next JSON row on stdout (`None` at EOF), within `timeout`.
    pub async fn row(&mut self, timeout: Duration) -> Option<Value> {
        let line = tokio::time::timeout(timeout, self.stdout.next_line())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "xft printed no row within {timeout:?}; stderr:\n{}",
                    self.stderr()
                )
            })
            .unwrap()?;
        Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
    }

    /// Every remaining row, then the exit status (success?), within `timeout`.
    pub async fn finish(&mut self, timeout: Duration) -> (Vec<Value>, bool) {
        let mut rows = Vec::new();
        while let Some(r) = self.row(timeout).await {
            rows.push(r);
        }
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("xft exits after closing stdout")
            .unwrap();
        (rows, status.success())
    }

    /// Kills the process (SIGKILL, by its pid) and reaps it.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// `xft send` as `alice/xft` to `to`.
pub fn xft_send(prosody: &Prosody, to: &str, method: &str, extra: &[&str], files: &[&Path]) -> Xft {
    let mut args = vec!["send".to_owned()];
    args.extend(account("send", prosody, "alice", "xft"));
    args.extend(["--to".into(), to.into(), "--method".into(), method.into()]);
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.extend(files.iter().map(|f| f.to_string_lossy().into_owned()));
    Xft::spawn(&args)
}

/// `xft recv` as `bob/xft` into `dir`, online when this returns.
pub async fn xft_recv(prosody: &Prosody, dir: &Path, count: usize, extra: &[&str]) -> Xft {
    let mut args = vec!["recv".to_owned()];
    args.extend(account("recv", prosody, "bob", "xft"));
    args.extend([
        "--dir".into(),
        dir.to_string_lossy().into_owned(),
        "--count".into(),
        count.to_string(),
    ]);
    args.extend(recv_flags(extra));
    let x = Xft::spawn(&args);
    x.wait_stderr(" online ").await;
    x
}

/// `xft proxy` attached to `prosody` as its component, on 127.0.0.1; online when this returns.
pub async fn xft_proxy(prosody: &Prosody) -> Xft {
    let x = Xft::spawn(&[
        "proxy".into(),
        "--server".into(),
        prosody.component_addr().to_string(),
        "--component-jid".into(),
        prosody.component_jid().to_string(),
        "--secret".into(),
        prosody.component_secret().into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
    ]);
    x.wait_stderr(" online ").await;
    x
}

/// A Prosody for these tests (proxy65 on unless `proxy65` is false).
pub fn prosody(proxy65: bool) -> Prosody {
    Prosody::start(ProsodyOptions {
        proxy65,
        ..ProsodyOptions::default()
    })
    .unwrap()
}

/// Panics when Prosody's log names a non-loopback address (every listener and every
/// streamhost it relayed or proxied is 127.0.0.1 in these tests).
pub fn assert_prosody_loopback(prosody: &Prosody) {
    let log = prosody.log();
    for word in log.split(|c: char| !(c.is_ascii_hexdigit() || c == '.' || c == ':')) {
        let w = word.trim_matches(|c| c == ':' || c == '.');
        if let Ok(ip) = w.parse::<std::net::Ipv4Addr>() {
            assert!(
                ip.is_loopback() || ip.is_unspecified(),
                "prosody's log names {ip}:\n{log}"
            );
        }
    }
}

/// Every streamhost `xft` reports having used is loopback.
pub fn assert_row_loopback(row: &Value) {
    if let Some(sh) = row["streamhost"].as_str() {
        let addr: std::net::SocketAddr = sh.parse().unwrap_or_else(|e| panic!("{sh}: {e}"));
        assert!(addr.ip().is_loopback(), "xft used {sh}: {row}");
    }
}

/// Both the peer's and Prosody's side: nothing but loopback.
pub fn assert_loopback<K: PeerKind>(peer: &NativePeer<K>, prosody: &Prosody) {
    peer.assert_loopback_only();
    assert_prosody_loopback(prosody);
}

// ---- the interop table ---------------------------------------------------------------------------

/// The directory the rows go to: `<workspace>/target/interop-table/`.
pub fn table_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "target"))
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
            Path::to_path_buf,
        );
    target.join("interop-table")
}

/// Appends one row when dropped: `pass`, `peer limitation: …` (set with
/// [`Row::peer_limitation`]: the case ran and proved the peer cannot do it), or `FAIL` when
/// the test is panicking.
pub struct Row {
    pub client: &'static str,
    pub direction: &'static str,
    pub case: &'static str,
    pub note: String,
    pub limitation: Option<String>,
}

impl Row {
    pub fn new(client: &'static str, direction: &'static str, case: &'static str) -> Self {
        Self {
            client,
            direction,
            case,
            note: String::new(),
            limitation: None,
        }
    }

    /// The row reads `peer limitation: {why}` instead of `pass` (unless the test fails).
    pub fn peer_limitation(&mut self, why: impl Into<String>) {
        self.limitation = Some(why.into());
    }
}

impl Drop for Row {
    fn drop(&mut self) {
        let result = if std::thread::panicking() {
            "FAIL".to_owned()
        } else if let Some(why) = &self.limitation {
            format!("peer limitation: {why}")
        } else {
            "pass".to_owned()
        };
        let dir = table_dir();
        let _ = std::fs::create_dir_all(&dir);
        let line = serde_json::json!({
            "client": self.client,
            "direction": self.direction,
            "case": self.case,
            "result": result,
            "note": self.note,
            "test": std::thread::current().name().unwrap_or(""),
        });
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("rows.jsonl"))
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// The README table from the rows: one line per (client, direction, case), the latest
/// result of each, grouped by client (named on its first line) and direction (`xft → peer`
/// first, the peer named); the result column reads `ok`, `ok (note)`, `peer limitation: …` or `FAIL`.
pub fn render_table() -> String {
    let text = std::fs::read_to_string(table_dir().join("rows.jsonl")).unwrap_or_default();
    // (client lower-cased, direction order, case) → (client, direction, result, note)
    type Key = (String, u8, String);
    let mut latest: std::collections::BTreeMap<Key, [String; 4]> = Default::default();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
        let order = u8::from(s("direction") != "xft → peer");
        latest.insert(
            (s("client").to_lowercase(), order, s("case")),
            [s("client"), s("direction"), s("result"), s("note")],
        );
    }
    let mut out = String::from("| client | direction | case | result |\n|---|---|---|---|\n");
    let mut last_client = String::new();
    for ((_, _, case), [client, direction, result, note]) in latest {
        let shown = if client == last_client {
            String::new()
        } else {
            last_client.clone_from(&client);
            format!("**{client}**")
        };
        // "xft → peer" reads "xft → libpurple": the client's name without its version.
        let direction = direction.replace("peer", client.split(' ').next().unwrap_or("peer"));
        let result = match (result.as_str(), note.is_empty()) {
            ("pass", true) => "ok".to_owned(),
            ("pass", false) => format!("ok ({note})"),
            (r, true) => r.to_owned(),
            (r, false) => format!("{r} ({note})"),
        };
        let cell = |t: &str| t.replace('|', "\\|");
        out.push_str(&format!(
            "| {shown} | {} | {} | {} |\n",
            cell(&direction),
            cell(&case),
            cell(&result)
        ));
    }
    out
}
