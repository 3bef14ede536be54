//! The slixmpp peer (`peers/slixpeer.py`), run from the repository's `.venv`.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use jid::FullJid;
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::error::{Error, io};
use crate::prosody::Prosody;

/// How long [`SlixPeer::wait_json`] waits for a line by default. Generous: the peer logs in
/// within a second, but the machine is shared with parallel builds.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// The repository root (found from this crate's manifest directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The virtualenv's python (`<repo>/.venv/bin/python`, or `$XFT_PYTHON`).
pub fn python() -> Result<PathBuf, Error> {
    if let Some(p) = std::env::var_os("XFT_PYTHON") {
        return Ok(PathBuf::from(p));
    }
    let p = repo_root().join(".venv/bin/python");
    if p.is_file() {
        Ok(p)
    } else {
        Err(Error::NotInstalled {
            what: p.display().to_string(),
            hint: "run scripts/test, which creates .venv from peers/requirements.txt",
        })
    }
}

/// A running slixmpp peer; killed (by its pid) when dropped.
///
/// It prints one JSON object per line, each with an `"event"`: `ready` (with the bound
/// `jid`) first, then `disco-info`, `file`, `sent`, `declined`, `cancelled` or `error`
/// depending on the mode (see `peers/slixpeer.py`). Its log goes to a file, read by [`SlixPeer::stderr`].
pub struct SlixPeer {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    log_dir: TempDir,
    jid: Option<FullJid>,
}

impl fmt::Debug for SlixPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlixPeer")
            .field("pid", &self.child.id())
            .field("jid", &self.jid)
            .finish_non_exhaustive()
    }
}

impl SlixPeer {
    /// Starts `slixpeer.py` with raw arguments (common options first, then the mode).
    pub async fn spawn_args<I, S>(args: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let log_dir = tempfile::Builder::new()
            .prefix("xft-slixpeer-")
            .tempdir()
            .map_err(io("creating the peer's log directory"))?;
        let log = fs::File::create(log_dir.path().join("stderr.log"))
            .map_err(io("creating the peer's log"))?;
        let mut child = Command::new(python()?)
            .arg(repo_root().join("peers/slixpeer.py"))
            .args(args)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(io("spawning peers/slixpeer.py"))?;
        let stdout = child.stdout.take().ok_or_else(|| Error::Peer {
            message: "no stdout pipe".into(),
            stderr: String::new(),
        })?;
        Ok(Self {
            child,
            stdout: BufReader::new(stdout).lines(),
            log_dir,
            jid: None,
        })
    }

    /// Starts the peer logged in as `user/resource` on `prosody`, in mode `mode` with its
    /// arguments (`["serve"]`, `["recv", "--dir", D, "--count", "1"]`, …), and waits until
    /// it is online.
    ///
    /// # Panics
    ///
    /// When `user` is not an account of `prosody` (a bug in the test).
    pub async fn spawn(
        prosody: &Prosody,
        user: &str,
        resource: &str,
        mode: &[&str],
    ) -> Result<Self, Error> {
        let password = prosody
            .password(user)
            .unwrap_or_else(|| panic!("{user} is not an account of this prosody"));
        let mut args = vec![
            "--jid".to_owned(),
            format!("{}/{resource}", prosody.jid(user)),
            "--password".to_owned(),
            password.to_owned(),
            "--host".to_owned(),
            "127.0.0.1".to_owned(),
            "--port".to_owned(),
            prosody.c2s_port().to_string(),
        ];
        args.extend(mode.iter().map(|s| (*s).to_owned()));
        let mut peer = Self::spawn_args(args).await?;
        peer.wait_ready().await?;
        Ok(peer)
    }

    /// `serve`: online as `user/slix`, answering disco#info (SI, the file-transfer profile,
    /// IBB, bytestreams) until stopped.
    pub async fn serve(prosody: &Prosody, user: &str) -> Result<Self, Error> {
        Self::spawn(prosody, user, "slix", &["serve"]).await
    }

    /// `recv`: online as `user/slix`, accepting the next `count` SI file offers into `dir`
    /// (one `file` event each, then it exits). `extra` takes `--prefer ibb|s5b` (slixmpp
    /// itself picks IBB when both are offered) and `--max-block-size N` (slixmpp's own limit
    /// is 8192; larger opens get `resource-constraint`), `--decline [TEXT]` (answer every
    /// offer with slixmpp's `cancel/forbidden`, one `declined` event each) and
    /// `--cancel-after BYTES` (end each bytestream once that many bytes arrived, one
    /// `cancelled` event each).
    pub async fn recv(
        prosody: &Prosody,
        user: &str,
        dir: &Path,
        count: usize,
        extra: &[&str],
    ) -> Result<Self, Error> {
        let dir = dir.to_string_lossy().into_owned();
        let count = count.to_string();
        let mut mode = vec!["recv", "--dir", dir.as_str(), "--count", count.as_str()];
        mode.extend_from_slice(extra);
        Self::spawn(prosody, user, "slix", &mode).await
    }

    /// `send`: online as `user/slix`, offers `file` to `to` by `method` (`ibb-iq`,
    /// `ibb-message` or `s5b`; slixmpp's S5B goes through a proxy only), then prints one
    /// `sent` event and exits. `extra` takes `--block-size N`, `--proxy JID`,
    /// `--cancel-after BYTES` (stop after that many bytes: IBB `close()`, S5B socket closed;
    /// a `cancelled` event instead of `sent`) and `--pace SECONDS` (a sleep per chunk).
    pub async fn send(
        prosody: &Prosody,
        user: &str,
        to: &str,
        file: &Path,
        method: &str,
        extra: &[&str],
    ) -> Result<Self, Error> {
        let file = file.to_string_lossy().into_owned();
        let mut mode = vec![
            "send",
            "--to",
            to,
            "--file",
            file.as_str(),
            "--method",
            method,
        ];
        mode.extend_from_slice(extra);
        Self::spawn(prosody, user, "slix", &mode).await
    }

    /// The full JID the peer is bound to (known after [`SlixPeer::wait_ready`]).
    pub fn jid(&self) -> Option<&FullJid> {
        self.jid.as_ref()
    }

    /// The peer's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits for the `ready` line and returns the bound JID.
    pub async fn wait_ready(&mut self) -> Result<FullJid, Error> {
        let v = self.wait_event("ready").await?;
        let jid: FullJid = v["jid"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::Peer {
                message: format!("ready line without a full jid: {v}"),
                stderr: self.stderr(),
            })?;
        self.jid = Some(jid.clone());
        Ok(jid)
    }

    /// The next JSON line, waiting at most [`DEFAULT_WAIT`].
    pub async fn wait_json(&mut self) -> Result<Value, Error> {
        self.wait_json_for(DEFAULT_WAIT).await
    }

    /// The next JSON line, waiting at most `timeout`. An `error` event is an `Err`.
    pub async fn wait_json_for(&mut self, timeout: Duration) -> Result<Value, Error> {
        let line = match tokio::time::timeout(timeout, self.stdout.next_line()).await {
            Err(_) => {
                return Err(Error::Timeout {
                    what: "a json line".into(),
                    after: timeout,
                    stderr: self.stderr(),
                });
            }
            Ok(Err(e)) => return Err(io("reading the peer's stdout")(e)),
            Ok(Ok(None)) => {
                let status = self.child.wait().await.ok();
                return Err(Error::Peer {
                    message: format!("exited ({status:?}) before printing the line"),
                    stderr: self.stderr(),
                });
            }
            Ok(Ok(Some(line))) => line,
        };
        let v: Value = serde_json::from_str(&line).map_err(|source| Error::BadOutput {
            line: line.clone(),
            source,
        })?;
        if v["event"] == "error" {
            return Err(Error::Peer {
                message: v["message"].as_str().unwrap_or("unknown error").to_owned(),
                stderr: self.stderr(),
            });
        }
        Ok(v)
    }

    /// Skips lines until one whose `"event"` is `event` (at most [`DEFAULT_WAIT`] each).
    pub async fn wait_event(&mut self, event: &str) -> Result<Value, Error> {
        loop {
            let v = self.wait_json().await?;
            if v["event"] == event {
                return Ok(v);
            }
        }
    }

    /// Skips lines until one whose `"event"` is one of `events`, all within `timeout`. An
    /// `error` event is an `Err`.
    pub async fn wait_any(&mut self, events: &[&str], timeout: Duration) -> Result<Value, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let v = self.wait_json_for(left).await?;
            if events.iter().any(|e| v["event"] == *e) {
                return Ok(v);
            }
        }
    }

    /// The peer's log so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.log_dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// Stops the peer by its pid (SIGTERM: it logs out cleanly; SIGKILL after 5 s) and
    /// waits for it.
    pub async fn stop(&mut self) {
        stop_child(&mut self.child).await;
    }

    /// Waits for the peer to exit by itself (modes `disco-info`, `recv`, `send`) and
    /// returns whether it succeeded.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<bool, Error> {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(status)) => Ok(status.success()),
            Ok(Err(e)) => Err(io("waiting for the peer")(e)),
            Err(_) => Err(Error::Timeout {
                what: "its exit".into(),
                after: timeout,
                stderr: self.stderr(),
            }),
        }
    }
}

/// Stops a peer process by its pid: SIGTERM (it logs out cleanly), SIGKILL after 5 s, and
/// waits for it. Shared by every peer launcher.
pub(crate) async fn stop_child(child: &mut Child) {
    if let Some(pid) = child.id() {
        // The crate forbids unsafe code (libc::kill), so signal through kill(1).
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .stdin(Stdio::null())
            .status();
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = child.kill().await;
}
