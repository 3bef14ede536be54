//! The slixmpp peer (`peers/slixpeer.py`), run from the repository's `.venv`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

use crate::error::Error;
use crate::json_peer::{JsonLinePeer, login_args, recv_mode, send_file_mode, strs};
use crate::prosody::Prosody;

pub use crate::json_peer::DEFAULT_WAIT;

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
/// depending on the mode (see `peers/slixpeer.py`). Its log goes to a file, read by
/// [`JsonLinePeer::stderr`]; the lines are read through [`JsonLinePeer`] (`Deref`), whose
/// `error` messages are slixmpp's own words, unprefixed.
#[derive(Debug)]
pub struct SlixPeer {
    peer: JsonLinePeer,
}

deref_to_json_line_peer!([] SlixPeer);

impl SlixPeer {
    /// Starts `slixpeer.py` with raw arguments (common options first, then the mode).
    pub async fn spawn_args<I, S>(args: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let python = python()?;
        let peer = JsonLinePeer::spawn(None, "slixpeer", "peers/slixpeer.py", |_| {
            let mut c = Command::new(python);
            c.arg(repo_root().join("peers/slixpeer.py"))
                .args(args)
                .env("PYTHONUNBUFFERED", "1");
            Ok(c)
        })?;
        Ok(Self { peer })
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
        let mut args = login_args(prosody, user, resource);
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
        let mode = recv_mode(dir, count, extra);
        Self::spawn(prosody, user, "slix", &strs(&mode)).await
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
        let mode = send_file_mode(to, file, method, extra);
        Self::spawn(prosody, user, "slix", &strs(&mode)).await
    }

    /// Skips lines until one whose `"event"` is one of `events`, all within `timeout`
    /// ([`JsonLinePeer::wait_any_within`]). An `error` event is an `Err`.
    pub async fn wait_any(&mut self, events: &[&str], timeout: Duration) -> Result<Value, Error> {
        self.peer.wait_any_within(events, timeout).await
    }
}
