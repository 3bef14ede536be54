//! What every peer program has in common: it is spawned with its log in a temporary
//! directory, prints one JSON object per line on stdout (`ready` with the bound `jid`
//! first, an `error` line when it fails), and is stopped by its pid.

use std::fmt;
use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use jid::FullJid;
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::error::{Error, io};
use crate::prosody::Prosody;

/// How long [`JsonLinePeer::wait_json`] and [`JsonLinePeer::wait_event`] wait for a line by
/// default. Generous: a peer logs in within a second, but the machine is shared with
/// parallel builds.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// A running peer program that speaks JSON lines ([`crate::SlixPeer`],
/// [`crate::NativePeer`], [`crate::GajimPeer`] are one each, and reach these methods through
/// `Deref`); killed (by its pid) when dropped.
///
/// Every line read is kept ([`JsonLinePeer::events`]); the program's stderr goes to a file
/// ([`JsonLinePeer::stderr`]).
pub struct JsonLinePeer {
    /// The program's name in messages (`qxmpppeer`, `gajimpeer`); `None` for a peer whose
    /// messages are its own words (slixmpp's errors, matched by tests), with its whole log.
    label: Option<&'static str>,
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    log_dir: TempDir,
    jid: Option<FullJid>,
    events: Vec<Value>,
}

impl fmt::Debug for JsonLinePeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLinePeer")
            .field("program", &self.label)
            .field("pid", &self.child.id())
            .field("jid", &self.jid)
            .finish_non_exhaustive()
    }
}

/// `Deref` and `DerefMut` to the `peer: JsonLinePeer` field of a peer type:
/// `deref_to_json_line_peer!([generics] Type)`.
macro_rules! deref_to_json_line_peer {
    ([$($generics:tt)*] $ty:ty) => {
        impl<$($generics)*> std::ops::Deref for $ty {
            type Target = $crate::json_peer::JsonLinePeer;
            fn deref(&self) -> &Self::Target {
                &self.peer
            }
        }

        impl<$($generics)*> std::ops::DerefMut for $ty {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.peer
            }
        }
    };
}

/// The arguments that log a peer in as `user/resource` on `prosody`, over plaintext c2s on
/// 127.0.0.1.
///
/// # Panics
///
/// When `user` is not an account of `prosody` (a bug in the test).
pub(crate) fn login_args(prosody: &Prosody, user: &str, resource: &str) -> Vec<String> {
    let password = prosody
        .password(user)
        .unwrap_or_else(|| panic!("{user} is not an account of this prosody"));
    vec![
        "--jid".to_owned(),
        format!("{}/{resource}", prosody.jid(user)),
        "--password".to_owned(),
        password.to_owned(),
        "--host".to_owned(),
        "127.0.0.1".to_owned(),
        "--port".to_owned(),
        prosody.c2s_port().to_string(),
    ]
}

/// The mode `recv --dir DIR --count N EXTRA…` (every peer program).
pub(crate) fn recv_mode(dir: &Path, count: usize, extra: &[&str]) -> Vec<String> {
    let mut mode = vec![
        "recv".to_owned(),
        "--dir".to_owned(),
        dir.to_string_lossy().into_owned(),
        "--count".to_owned(),
        count.to_string(),
    ];
    mode.extend(extra.iter().map(|s| (*s).to_owned()));
    mode
}

/// The mode `send --to TO --file FILE --method METHOD EXTRA…` (slixpeer, gajimpeer).
pub(crate) fn send_file_mode(to: &str, file: &Path, method: &str, extra: &[&str]) -> Vec<String> {
    let mut mode: Vec<String> = ["send", "--to", to, "--file"].map(str::to_owned).into();
    mode.push(file.to_string_lossy().into_owned());
    mode.extend(["--method".to_owned(), method.to_owned()]);
    mode.extend(extra.iter().map(|s| (*s).to_owned()));
    mode
}

/// `mode` as the `&[&str]` the peers' `spawn` takes.
pub(crate) fn strs(mode: &[String]) -> Vec<&str> {
    mode.iter().map(String::as_str).collect()
}

impl JsonLinePeer {
    /// Makes a log directory `xft-<prefix>…`, has `command` build the program's command in it
    /// (program, arguments, environment; it may create files there), and spawns it with
    /// stdin closed, stdout piped and stderr into the log.
    pub(crate) fn spawn(
        label: Option<&'static str>,
        prefix: &str,
        what: &str,
        command: impl FnOnce(&Path) -> Result<Command, Error>,
    ) -> Result<Self, Error> {
        let log_dir = tempfile::Builder::new()
            .prefix(&format!("xft-{prefix}-"))
            .tempdir()
            .map_err(io("creating the peer's log directory"))?;
        let log = fs::File::create(log_dir.path().join("stderr.log"))
            .map_err(io("creating the peer's log"))?;
        let mut child = command(log_dir.path())?
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(io(format!("spawning {what}")))?;
        let stdout = child.stdout.take().ok_or_else(|| Error::Peer {
            message: "no stdout pipe".into(),
            stderr: String::new(),
        })?;
        Ok(Self {
            label,
            child,
            stdout: BufReader::new(stdout).lines(),
            log_dir,
            jid: None,
            events: Vec::new(),
        })
    }

    /// `message`, after the program's name if it has one.
    fn said(&self, message: &str) -> String {
        match self.label {
            Some(name) => format!("{name}: {message}"),
            None => message.to_owned(),
        }
    }

    /// The log to put in an error: its last 80 lines, or all of it for an unnamed peer.
    fn log_for_error(&self) -> String {
        match self.label {
            Some(_) => self.stderr_tail(),
            None => self.stderr(),
        }
    }

    /// The full JID the peer is bound to (known after [`JsonLinePeer::wait_ready`]).
    pub fn jid(&self) -> Option<&FullJid> {
        self.jid.as_ref()
    }

    /// The peer's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Every JSON line read so far.
    pub fn events(&self) -> &[Value] {
        &self.events
    }

    /// Waits for the `ready` line and returns the bound JID.
    pub async fn wait_ready(&mut self) -> Result<FullJid, Error> {
        let v = self.wait_event("ready").await?;
        let jid: FullJid = v["jid"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::Peer {
                message: self.said(&format!("ready line without a full jid: {v}")),
                stderr: self.log_for_error(),
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
                    what: match self.label {
                        Some(name) => format!("a json line from {name}"),
                        None => "a json line".into(),
                    },
                    after: timeout,
                    stderr: self.log_for_error(),
                });
            }
            Ok(Err(e)) => return Err(io("reading the peer's stdout")(e)),
            Ok(Ok(None)) => {
                let status = self.child.wait().await.ok();
                let exited = format!("exited ({status:?}) before printing the line");
                return Err(Error::Peer {
                    message: match self.label {
                        Some(name) => format!("{name} {exited}"),
                        None => exited,
                    },
                    stderr: self.log_for_error(),
                });
            }
            Ok(Ok(Some(line))) => line,
        };
        let v: Value = serde_json::from_str(&line).map_err(|source| Error::BadOutput {
            line: line.clone(),
            source,
        })?;
        self.events.push(v.clone());
        if v["event"] == "error" {
            return Err(Error::Peer {
                message: self.said(v["message"].as_str().unwrap_or("unknown error")),
                stderr: self.log_for_error(),
            });
        }
        Ok(v)
    }

    /// Skips lines until one whose `"event"` is `event` (at most [`DEFAULT_WAIT`] each).
    pub async fn wait_event(&mut self, event: &str) -> Result<Value, Error> {
        self.wait_any(&[event], DEFAULT_WAIT).await
    }

    /// Skips lines until one whose `"event"` is one of `events` (at most `timeout` each).
    pub async fn wait_any(&mut self, events: &[&str], timeout: Duration) -> Result<Value, Error> {
        loop {
            let v = self.wait_json_for(timeout).await?;
            if events.iter().any(|e| v["event"] == *e) {
                return Ok(v);
            }
        }
    }

    /// Skips lines until one whose `"event"` is one of `events`, all within `timeout`. An
    /// `error` event is an `Err`.
    pub async fn wait_any_within(
        &mut self,
        events: &[&str],
        timeout: Duration,
    ) -> Result<Value, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let v = self.wait_json_for(left).await?;
            if events.iter().any(|e| v["event"] == *e) {
                return Ok(v);
            }
        }
    }

    /// Reads every line until the peer exits (at most `timeout`) and returns its exit code
    /// (`None`: killed by a signal).
    pub async fn finish(&mut self, timeout: Duration) -> Result<Option<i32>, Error> {
        let drained = tokio::time::timeout(timeout, async {
            while let Ok(Some(line)) = self.stdout.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    self.events.push(v);
                }
            }
        })
        .await;
        let waited = match drained {
            Ok(()) => tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await,
            Err(e) => Err(e),
        };
        match waited {
            Ok(Ok(status)) => Ok(status.code()),
            Ok(Err(e)) => Err(io("waiting for the peer")(e)),
            Err(_) => Err(Error::Timeout {
                what: format!("{} to exit", self.label.unwrap_or("the peer")),
                after: timeout,
                stderr: self.log_for_error(),
            }),
        }
    }

    /// Waits for the peer to exit by itself and returns whether it succeeded.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<bool, Error> {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(status)) => Ok(status.success()),
            Ok(Err(e)) => Err(io("waiting for the peer")(e)),
            Err(_) => Err(Error::Timeout {
                what: "its exit".into(),
                after: timeout,
                stderr: self.log_for_error(),
            }),
        }
    }

    /// The peer's log so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.log_dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// The last 80 lines of the peer's log.
    pub fn stderr_tail(&self) -> String {
        let log = self.stderr();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(80)..].join("\n")
    }

    /// Stops the peer by its pid (SIGTERM: it logs out cleanly; SIGKILL after 5 s) and
    /// waits for it.
    pub async fn stop(&mut self) {
        if let Some(pid) = self.child.id() {
            // The crate forbids unsafe code (libc::kill), so signal through kill(1).
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .stdin(Stdio::null())
                .status();
            if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
                .await
                .is_ok()
            {
                return;
            }
        }
        let _ = self.child.kill().await;
    }
}
