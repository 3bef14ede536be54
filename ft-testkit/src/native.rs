//! The libpurple and QXmpp peers (`peers/purplepeer`, `peers/qxmpppeer`), C and C++ programs
//! built by `peers/build.sh` into `peers/build/`.

use std::fmt;
use std::fs;
use std::marker::PhantomData;
use std::net::IpAddr;
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
use crate::slix::{DEFAULT_WAIT, repo_root};

/// Which program a [`NativePeer`] runs.
pub trait PeerKind {
    /// The program's name in `peers/build/`.
    const BINARY: &'static str;
    /// The environment variable that overrides its path.
    const ENV: &'static str;
    /// The resource it logs in with.
    const RESOURCE: &'static str;
    /// What to call it in messages and tables.
    const CLIENT: &'static str;
}

/// libpurple 2.14 (`prpl-jabber`), as Pidgin.
#[derive(Debug)]
pub struct Purple;
impl PeerKind for Purple {
    const BINARY: &'static str = "purplepeer";
    const ENV: &'static str = "XFT_PURPLEPEER";
    const RESOURCE: &'static str = "purple";
    const CLIENT: &'static str = "libpurple 2.14";
}

/// QXmpp 1.4 (Qt 5).
#[derive(Debug)]
pub struct Qxmpp;
impl PeerKind for Qxmpp {
    const BINARY: &'static str = "qxmpppeer";
    const ENV: &'static str = "XFT_QXMPPPEER";
    const RESOURCE: &'static str = "qxmpp";
    const CLIENT: &'static str = "QXmpp 1.4";
}

/// The headless libpurple peer.
pub type PurplePeer = NativePeer<Purple>;
/// The headless QXmpp peer.
pub type QxmppPeer = NativePeer<Qxmpp>;

/// The path of a peer program: `$XFT_PURPLEPEER` / `$XFT_QXMPPPEER`, else
/// `<repo>/peers/build/<name>`. Missing is an [`Error::NotInstalled`], never a skip.
pub fn peer_binary<K: PeerKind>() -> Result<PathBuf, Error> {
    if let Some(p) = std::env::var_os(K::ENV) {
        return Ok(PathBuf::from(p));
    }
    let p = repo_root().join("peers/build").join(K::BINARY);
    if p.is_file() {
        Ok(p)
    } else {
        Err(Error::NotInstalled {
            what: p.display().to_string(),
            hint: "run scripts/test, which installs libpurple-dev and libqxmpp-dev (Debian) \
                   and builds the peers with peers/build.sh",
        })
    }
}

/// A running libpurple or QXmpp peer; killed (by its pid) when dropped.
///
/// It prints one JSON object per line (see the comment at the top of its source): `ready`
/// first, then `streamhost`, `dial`, `bind`, `offer`, `file`, `sent`, `declined`, `cancelled`
/// or `error`. Every line read is kept ([`NativePeer::events`]) so a test can check, at the
/// end, that the peer never offered nor dialled anything but loopback
/// ([`NativePeer::assert_loopback_only`]).
pub struct NativePeer<K: PeerKind> {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    log_dir: TempDir,
    jid: Option<FullJid>,
    events: Vec<Value>,
    kind: PhantomData<K>,
}

impl<K: PeerKind> fmt::Debug for NativePeer<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NativePeer")
            .field("program", &K::BINARY)
            .field("pid", &self.child.id())
            .field("jid", &self.jid)
            .finish_non_exhaustive()
    }
}

impl<K: PeerKind> NativePeer<K> {
    /// Starts the program with raw arguments (common options first, then the mode).
    pub async fn spawn_args<I, S>(args: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let program = peer_binary::<K>()?;
        let log_dir = tempfile::Builder::new()
            .prefix(&format!("xft-{}-", K::BINARY))
            .tempdir()
            .map_err(io("creating the peer's log directory"))?;
        let log = fs::File::create(log_dir.path().join("stderr.log"))
            .map_err(io("creating the peer's log"))?;
        let mut child = Command::new(&program)
            .args(args)
            // libpurple: no session bus; Qt: no display, no plugins from the environment.
            .env("DBUS_SESSION_BUS_ADDRESS", "disabled:")
            .env("QT_QPA_PLATFORM", "offscreen")
            .env("HOME", log_dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(io(format!("spawning {}", program.display())))?;
        let stdout = child.stdout.take().ok_or_else(|| Error::Peer {
            message: "no stdout pipe".into(),
            stderr: String::new(),
        })?;
        Ok(Self {
            child,
            stdout: BufReader::new(stdout).lines(),
            log_dir,
            jid: None,
            events: Vec::new(),
            kind: PhantomData,
        })
    }

    /// Starts the peer logged in as `user/<purple|qxmpp>` on `prosody` in `mode`
    /// (`["recv", "--dir", D]`, `["send", "--to", J, F]`, …; common options such as
    /// `--methods ibb`, `--proxy JID` or `--timeout S` go in `common`) and waits until it is
    /// online.
    ///
    /// # Panics
    ///
    /// When `user` is not an account of `prosody` (a bug in the test).
    pub async fn spawn(
        prosody: &Prosody,
        user: &str,
        common: &[&str],
        mode: &[&str],
    ) -> Result<Self, Error> {
        let password = prosody
            .password(user)
            .unwrap_or_else(|| panic!("{user} is not an account of this prosody"));
        let mut args = vec![
            "--jid".to_owned(),
            format!("{}/{}", prosody.jid(user), K::RESOURCE),
            "--password".to_owned(),
            password.to_owned(),
            "--host".to_owned(),
            "127.0.0.1".to_owned(),
            "--port".to_owned(),
            prosody.c2s_port().to_string(),
            "--timeout".to_owned(),
            "90".to_owned(),
        ];
        args.extend(common.iter().map(|s| (*s).to_owned()));
        args.extend(mode.iter().map(|s| (*s).to_owned()));
        let mut peer = Self::spawn_args(args).await?;
        peer.wait_ready().await?;
        Ok(peer)
    }

    /// `recv`: accepts the next `count` offers into `dir` (one `file` or `cancelled` event
    /// each), then exits. `extra` takes `--decline` and `--cancel-after BYTES`.
    pub async fn recv(
        prosody: &Prosody,
        user: &str,
        common: &[&str],
        dir: &Path,
        count: usize,
        extra: &[&str],
    ) -> Result<Self, Error> {
        let dir = dir.to_string_lossy().into_owned();
        let count = count.to_string();
        let mut mode = vec!["recv", "--dir", dir.as_str(), "--count", count.as_str()];
        mode.extend_from_slice(extra);
        Self::spawn(prosody, user, common, &mode).await
    }

    /// `send`: offers `files` to `to` one after the other (one `sent` or `cancelled` event
    /// each), then exits. `extra` takes `--cancel-after BYTES`.
    pub async fn send(
        prosody: &Prosody,
        user: &str,
        common: &[&str],
        to: &str,
        files: &[&Path],
        extra: &[&str],
    ) -> Result<Self, Error> {
        let files: Vec<String> = files
            .iter()
            .map(|f| f.to_string_lossy().into_owned())
            .collect();
        let mut mode = vec!["send", "--to", to];
        mode.extend_from_slice(extra);
        mode.extend(files.iter().map(String::as_str));
        Self::spawn(prosody, user, common, &mode).await
    }

    /// What the peer is, for messages and tables (`libpurple 2.14`, `QXmpp 1.4`).
    pub fn client(&self) -> &'static str {
        K::CLIENT
    }

    /// The full JID the peer is bound to (known after [`NativePeer::wait_ready`]).
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
                message: format!("{}: ready line without a full jid: {v}", K::BINARY),
                stderr: self.stderr(),
            })?;
        self.jid = Some(jid.clone());
        Ok(jid)
    }

    /// The next JSON line, waiting at most `timeout`. An `error` event is an `Err`.
    pub async fn wait_json_for(&mut self, timeout: Duration) -> Result<Value, Error> {
        let line = match tokio::time::timeout(timeout, self.stdout.next_line()).await {
            Err(_) => {
                return Err(Error::Timeout {
                    what: format!("a json line from {}", K::BINARY),
                    after: timeout,
                    stderr: self.stderr_tail(),
                });
            }
            Ok(Err(e)) => return Err(io("reading the peer's stdout")(e)),
            Ok(Ok(None)) => {
                let status = self.child.wait().await.ok();
                return Err(Error::Peer {
                    message: format!("{} exited ({status:?}) before printing the line", K::BINARY),
                    stderr: self.stderr_tail(),
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
                message: format!(
                    "{}: {}",
                    K::BINARY,
                    v["message"].as_str().unwrap_or("unknown error")
                ),
                stderr: self.stderr_tail(),
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

    /// Reads every line until the peer exits (at most `timeout`) and returns its exit code
    /// (`0` all as asked, `2` a transfer failed, `1` an error; `None` killed by a signal).
    pub async fn finish(&mut self, timeout: Duration) -> Result<Option<i32>, Error> {
        let drained = tokio::time::timeout(timeout, async {
            while let Ok(Some(line)) = self.stdout.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    self.events.push(v);
                }
            }
        })
        .await;
        if drained.is_err() {
            return Err(Error::Timeout {
                what: format!("{} to exit", K::BINARY),
                after: timeout,
                stderr: self.stderr_tail(),
            });
        }
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(Ok(status)) => Ok(status.code()),
            Ok(Err(e)) => Err(io("waiting for the peer")(e)),
            Err(_) => Err(Error::Timeout {
                what: format!("{} to exit", K::BINARY),
                after: timeout,
                stderr: self.stderr_tail(),
            }),
        }
    }

    /// Panics unless every streamhost the peer put on the wire (offered or kept from what it
    /// received), every address it dialled (or tried to) and every address it bound is
    /// loopback. Call it after the last [`NativePeer::wait_event`] or [`NativePeer::finish`].
    pub fn assert_loopback_only(&self) {
        if let Err(e) = check_loopback(&self.events) {
            panic!("{}: {e}\n--- log ---\n{}", K::BINARY, self.stderr_tail());
        }
    }

    /// The peer's log so far (libpurple's debug log or QXmpp's logger: every stanza).
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.log_dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// The last 80 lines of the peer's log.
    pub fn stderr_tail(&self) -> String {
        let log = self.stderr();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(80)..].join("\n")
    }

    /// Stops the peer by its pid (SIGTERM; SIGKILL after 5 s) and waits for it.
    pub async fn stop(&mut self) {
        crate::slix::stop_child(&mut self.child).await;
    }
}

fn is_loopback(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok_and(|ip| match ip {
        IpAddr::V4(a) => a.is_loopback(),
        IpAddr::V6(a) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|m| m.is_loopback()),
    })
}

/// The check behind [`NativePeer::assert_loopback_only`], over a peer's JSON events: a kept
/// `streamhost` (as put on the wire, after any rewrite), a `dial` (allowed or refused) and a
/// `bind` must all name a loopback address.
pub fn check_loopback(events: &[Value]) -> Result<(), String> {
    for v in events {
        let host = v["host"].as_str().unwrap_or("");
        match v["event"].as_str().unwrap_or("") {
            "streamhost" if v["kept"] == true => {
                let on_wire = v["rewritten"].as_str().unwrap_or(host);
                if !is_loopback(on_wire) {
                    return Err(format!("a non-loopback streamhost went on the wire: {v}"));
                }
            }
            "dial" if !(is_loopback(host) && v["allowed"] == true) => {
                return Err(format!("tried to reach a non-loopback address: {v}"));
            }
            "bind" if !is_loopback(host) => {
                return Err(format!("bound a non-loopback address: {v}"));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_loopback;
    use serde_json::json;

    #[test]
    fn loopback_only_events_pass() {
        let events = [
            json!({"event":"dial","host":"127.0.0.1","port":5222,"allowed":true}),
            json!({"event":"bind","host":"::ffff:127.0.0.1","port":0,"rewritten":true}),
            json!({"event":"streamhost","dir":"offer","host":"192.0.2.2","kept":false}),
            json!({"event":"streamhost","dir":"offer","host":"192.0.2.2","kept":true,"rewritten":"127.0.0.1"}),
            json!({"event":"streamhost","dir":"received","host":"::1","kept":true}),
        ];
        assert_eq!(check_loopback(&events), Ok(()));
    }

    #[test]
    fn any_non_loopback_offer_dial_or_bind_fails() {
        for bad in [
            json!({"event":"streamhost","dir":"offer","host":"192.0.2.2","kept":true}),
            json!({"event":"streamhost","dir":"received","host":"proxy.example","kept":true}),
            json!({"event":"dial","host":"192.0.2.2","port":7777,"allowed":false}),
            json!({"event":"dial","host":"fd00::2","port":7777,"allowed":true}),
            json!({"event":"bind","host":"0.0.0.0","port":0,"rewritten":false}),
        ] {
            assert!(check_loopback(std::slice::from_ref(&bad)).is_err(), "{bad}");
        }
    }
}
