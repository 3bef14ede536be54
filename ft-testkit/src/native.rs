//! The libpurple and QXmpp peers (`peers/purplepeer`, `peers/qxmpppeer`), C and C++ programs
//! built by `peers/build.sh` into `peers/build/`.

use std::marker::PhantomData;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio::process::Command;

use crate::error::Error;
use crate::json_peer::{JsonLinePeer, login_args, recv_mode, strs};
use crate::prosody::Prosody;
use crate::slix::repo_root;

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
/// or `error`, read through [`JsonLinePeer`] (`Deref`), which keeps every line
/// ([`JsonLinePeer::events`]) so a test can check, at the end, that the peer never offered
/// nor dialled anything but loopback ([`NativePeer::assert_loopback_only`]).
#[derive(Debug)]
pub struct NativePeer<K: PeerKind> {
    peer: JsonLinePeer,
    kind: PhantomData<K>,
}

deref_to_json_line_peer!([K: PeerKind] NativePeer<K>);

impl<K: PeerKind> NativePeer<K> {
    /// Starts the program with raw arguments (common options first, then the mode).
    pub async fn spawn_args<I, S>(args: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let program = peer_binary::<K>()?;
        let what = program.display().to_string();
        let peer = JsonLinePeer::spawn(Some(K::BINARY), K::BINARY, &what, |log_dir| {
            let mut c = Command::new(&program);
            c.args(args)
                // libpurple: no session bus; Qt: no display, no plugins from the environment.
                .env("DBUS_SESSION_BUS_ADDRESS", "disabled:")
                .env("QT_QPA_PLATFORM", "offscreen")
                .env("HOME", log_dir);
            Ok(c)
        })?;
        Ok(Self {
            peer,
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
        let mut args = login_args(prosody, user, K::RESOURCE);
        args.extend(["--timeout".to_owned(), "90".to_owned()]);
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
        let mode = recv_mode(dir, count, extra);
        Self::spawn(prosody, user, common, &strs(&mode)).await
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

    /// Panics unless every streamhost the peer put on the wire (offered or kept from what it
    /// received), every address it dialled (or tried to) and every address it bound is
    /// loopback. Call it after the last [`JsonLinePeer::wait_event`] or
    /// [`JsonLinePeer::finish`].
    pub fn assert_loopback_only(&self) {
        if let Err(e) = check_loopback(self.events()) {
            panic!("{}: {e}\n--- log ---\n{}", K::BINARY, self.stderr_tail());
        }
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
