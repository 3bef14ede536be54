//! The headless Gajim 1.7.3 peer (`peers/gajimpeer/gajimpeer.py`), Jingle File Transfer
//! (XEP-0234 over XEP-0260 S5B or XEP-0261 IBB), run with Debian's `/usr/bin/python3`.

use std::fs;
use std::path::{Path, PathBuf};

use tokio::process::Command;

use crate::error::{Error, io};
use crate::json_peer::{JsonLinePeer, login_args, recv_mode, send_file_mode, strs};
use crate::native::check_loopback;
use crate::prosody::Prosody;
use crate::slix::repo_root;

/// Where Debian's `gajim` package puts Gajim's Python package.
const GAJIM_PACKAGE: &str = "/usr/lib/python3/dist-packages/gajim/common/jingle_ft.py";

/// The interpreter that runs the peer: `$XFT_GAJIM_PYTHON`, else `/usr/bin/python3` (Debian's,
/// which sees `gajim`, `nbxmpp` and `gi` in `dist-packages`). Missing Gajim is an
/// [`Error::NotInstalled`], never a skip.
pub fn gajim_python() -> Result<PathBuf, Error> {
    if let Some(p) = std::env::var_os("XFT_GAJIM_PYTHON") {
        return Ok(PathBuf::from(p));
    }
    if Path::new("/usr/bin/python3").is_file() && Path::new(GAJIM_PACKAGE).is_file() {
        Ok(PathBuf::from("/usr/bin/python3"))
    } else {
        Err(Error::NotInstalled {
            what: GAJIM_PACKAGE.to_owned(),
            hint: "run scripts/test, which installs the Debian packages gajim and \
                   python3-nbxmpp (--no-install-recommends)",
        })
    }
}

/// Options before the mode, shared by every mode of the peer.
#[derive(Debug, Clone)]
pub struct GajimOptions {
    /// The resource it binds. Default `gajim`.
    pub resource: String,
    /// A SOCKS5 proxy JID Gajim offers as a candidate (`use_ft_proxies`), e.g.
    /// [`Prosody::proxy_jid`]. Default none.
    pub proxy: Option<String>,
    /// Offer our own direct candidate (a 127.0.0.1 listener on a free port). Default `true`;
    /// `false` with a [`GajimOptions::proxy`] offers only the proxy.
    pub direct: bool,
    /// Dial the peer's S5B candidates (loopback ones). Default `true`; `false` makes Gajim
    /// dial none and answer `candidate-error`: S5B fails without any unreachable address,
    /// so that a test reaches the fallback.
    pub dial: bool,
    /// An address put in Gajim's own `ft_add_hosts_to_send` setting. Default none.
    pub extra_host: Option<String>,
    /// Keep every candidate Gajim's own code adds (a test switch: shows that
    /// [`GajimPeer::assert_loopback_only`] catches a leak). Default `false`.
    pub unconfined_candidates: bool,
    /// The peer's whole-run bound in seconds (`--timeout`). Default 90.
    pub timeout_secs: u32,
}

impl Default for GajimOptions {
    fn default() -> Self {
        Self {
            resource: "gajim".into(),
            proxy: None,
            direct: true,
            dial: true,
            extra_host: None,
            unconfined_candidates: false,
            timeout_secs: 90,
        }
    }
}

impl GajimOptions {
    /// The same options with another resource.
    #[must_use]
    pub fn resource(mut self, resource: &str) -> Self {
        self.resource = resource.into();
        self
    }

    /// Offer `proxy` (and, with `direct == false`, nothing else).
    #[must_use]
    pub fn proxy(mut self, proxy: &str, direct: bool) -> Self {
        self.proxy = Some(proxy.into());
        self.direct = direct;
        self
    }

    fn args(&self) -> Vec<String> {
        let mut a = vec!["--timeout".to_owned(), self.timeout_secs.to_string()];
        if let Some(p) = &self.proxy {
            a.extend(["--proxy".to_owned(), p.clone()]);
        }
        if !self.direct {
            a.push("--no-direct".into());
        }
        if !self.dial {
            a.push("--no-dial".into());
        }
        if let Some(h) = &self.extra_host {
            a.extend(["--extra-host".to_owned(), h.clone()]);
        }
        if self.unconfined_candidates {
            a.push("--unconfined-candidates".into());
        }
        a
    }
}

/// A running Gajim peer; killed (by its pid) when dropped.
///
/// It prints one JSON object per line (see the top of `gajimpeer.py`): `ready` first, then
/// `offer`, `file`, `sent`, `declined`, `cancelled`, `checksum`, `stanza` (every Jingle,
/// bytestreams and IBB open/close stanza, both directions), and the `streamhost` / `dial` /
/// `bind` lines [`GajimPeer::assert_loopback_only`] checks, read through [`JsonLinePeer`]
/// (`Deref`), which keeps every line ([`JsonLinePeer::events`]).
#[derive(Debug)]
pub struct GajimPeer {
    peer: JsonLinePeer,
}

deref_to_json_line_peer!([] GajimPeer);

impl GajimPeer {
    /// Starts `gajimpeer.py` with raw arguments (common options first, then the mode).
    pub async fn spawn_args<I, S>(args: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let python = gajim_python()?;
        let what = "peers/gajimpeer/gajimpeer.py";
        let peer = JsonLinePeer::spawn(Some("gajimpeer"), "gajimpeer", what, |log_dir| {
            // Gajim's profile (settings, caches, its sqlite files) lives in the log
            // directory, removed with it even when the peer is killed.
            let profile = log_dir.join("profile");
            fs::create_dir(&profile).map_err(io("creating the peer's Gajim profile"))?;
            let mut c = Command::new(python);
            c.arg(repo_root().join("peers/gajimpeer/gajimpeer.py"))
                .arg("--profile")
                .arg(&profile)
                .args(args)
                .env("PYTHONUNBUFFERED", "1")
                // No session bus, no display: Gajim's idle monitor and D-Bus bits stay off.
                .env("DBUS_SESSION_BUS_ADDRESS", "disabled:")
                .env_remove("DISPLAY")
                .env("HOME", log_dir)
                .env("XDG_CONFIG_HOME", log_dir)
                .env("XDG_DATA_HOME", log_dir)
                .env("XDG_CACHE_HOME", log_dir);
            Ok(c)
        })?;
        Ok(Self { peer })
    }

    /// Starts the peer logged in as `user/<options.resource>` on `prosody` in `mode` and
    /// waits until it is online.
    ///
    /// # Panics
    ///
    /// When `user` is not an account of `prosody` (a bug in the test).
    pub async fn spawn(
        prosody: &Prosody,
        user: &str,
        options: &GajimOptions,
        mode: &[&str],
    ) -> Result<Self, Error> {
        let mut args = login_args(prosody, user, &options.resource);
        args.extend(options.args());
        args.extend(mode.iter().map(|s| (*s).to_owned()));
        let mut peer = Self::spawn_args(args).await?;
        peer.wait_ready().await?;
        Ok(peer)
    }

    /// `serve`: online, answering disco#info (Gajim's features: Jingle FT, S5B, IBB,
    /// XEP-0300 hashes) until stopped.
    pub async fn serve(
        prosody: &Prosody,
        user: &str,
        options: &GajimOptions,
    ) -> Result<Self, Error> {
        Self::spawn(prosody, user, options, &["serve"]).await
    }

    /// `recv`: accepts the next `count` Jingle FT offers into `dir` (one `offer`, then one
    /// `file` or `cancelled` event each), then exits. `extra` takes `--decline` (Gajim's
    /// `session-terminate` `<decline/>`, one `declined` event) and `--cancel-after BYTES`.
    pub async fn recv(
        prosody: &Prosody,
        user: &str,
        options: &GajimOptions,
        dir: &Path,
        count: usize,
        extra: &[&str],
    ) -> Result<Self, Error> {
        let mode = recv_mode(dir, count, extra);
        Self::spawn(prosody, user, options, &strs(&mode)).await
    }

    /// `send`: asks `to` (a full JID) for disco#info, offers `file` by `method` (`s5b` or
    /// `ibb`), prints one `sent` (or `cancelled`) event and exits once the receiver ended
    /// the session. `extra` takes `--cancel-after BYTES`.
    pub async fn send(
        prosody: &Prosody,
        user: &str,
        options: &GajimOptions,
        to: &str,
        file: &Path,
        method: &str,
        extra: &[&str],
    ) -> Result<Self, Error> {
        let mode = send_file_mode(to, file, method, extra);
        Self::spawn(prosody, user, options, &strs(&mode)).await
    }

    /// The stanzas seen so far as `(dir, kind, xml)`: `dir` is `out` (Gajim sent it) or
    /// `in`; `kind` the Jingle action (`session-initiate`, `transport-info-candidate-used`,
    /// `session-info-checksum`, …), `ibb-open`, `ibb-close`, `bytestreams-activate`, ….
    pub fn stanzas(&self) -> Vec<(String, String, String)> {
        self.events()
            .iter()
            .filter(|v| v["event"] == "stanza")
            .map(|v| {
                let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
                (s("dir"), s("kind"), s("xml"))
            })
            .collect()
    }

    /// Panics unless every streamhost Gajim put on the wire (its own candidates and proxy
    /// streamhosts, as seen in the stanzas it sent), every one it kept from the peer, every
    /// address it dialled and every address it bound is loopback. Call it after the last
    /// [`JsonLinePeer::wait_event`] or
    /// [`JsonLinePeer::finish`].
    pub fn assert_loopback_only(&self) {
        if let Err(e) = self.check_loopback() {
            panic!("gajimpeer: {e}\n--- log ---\n{}", self.stderr_tail());
        }
    }

    /// The check behind [`GajimPeer::assert_loopback_only`], as a result.
    pub fn check_loopback(&self) -> Result<(), String> {
        check_loopback(self.events())
    }
}

#[cfg(test)]
mod tests {
    use super::GajimOptions;

    #[test]
    fn options_become_the_peer_flags() {
        assert_eq!(GajimOptions::default().args(), ["--timeout", "90"]);
        let o = GajimOptions {
            dial: false,
            extra_host: Some("192.0.2.2".into()),
            unconfined_candidates: true,
            ..GajimOptions::default().proxy("proxy.localhost", false)
        };
        assert_eq!(
            o.args(),
            [
                "--timeout",
                "90",
                "--proxy",
                "proxy.localhost",
                "--no-direct",
                "--no-dial",
                "--extra-host",
                "192.0.2.2",
                "--unconfined-candidates"
            ]
        );
    }
}
