//! Test support for xft: a real Prosody 0.12 server and a real slixmpp 1.17 peer, started
//! by the tests themselves.
//!
//! # What this crate does and does not do
//!
//! * [`Prosody::start`] writes a config into a temporary directory (data, pid file and log
//!   there too), picks free loopback ports for c2s, XEP-0114 components and `mod_proxy65`,
//!   registers accounts with `prosodyctl`, runs `prosody -F` as the `prosody` user and waits
//!   until its ports are open. With [`ProsodyOptions::tls`] it serves and requires STARTTLS
//!   with a certificate issued by a [`TestCa`] the test makes ([`Prosody::ca_file`] for
//!   `SSL_CERT_FILE`, [`Prosody::tls_client_options`] for our adapter). Dropping it kills the process by its pid and removes the
//!   directory; a panicking test prints the tail of Prosody's log.
//! * [`SlixPeer`] runs `peers/slixpeer.py` from the repository's `.venv` (slixmpp pinned in
//!   `peers/requirements.txt`) in one mode: `disco-info`, `serve`, `recv` or `send`, and
//!   reads the JSON lines it prints.
//! * [`PurplePeer`] and [`QxmppPeer`] run `peers/build/purplepeer` (libpurple 2.14) and
//!   `peers/build/qxmpppeer` (QXmpp 1.4), built by `peers/build.sh`, in mode `recv` or
//!   `send`, read their JSON lines and check that they only ever offered, dialled and bound
//!   loopback addresses ([`NativePeer::assert_loopback_only`]).
//! * [`GajimPeer`] runs `peers/gajimpeer/gajimpeer.py`, a headless Gajim 1.7.3 (Debian's
//!   `gajim` and `python3-nbxmpp`, on `/usr/bin/python3`) sending or receiving by Jingle
//!   File Transfer over S5B or IBB, confined to loopback ([`GajimPeer::assert_loopback_only`]).
//! * The three peers share one [`JsonLinePeer`] (reached through `Deref`): spawned with its
//!   log in a temporary directory, its JSON lines read with a timeout and kept, stopped by
//!   its pid.
//! * It installs nothing: `scripts/test` installs the Debian package `prosody` and creates
//!   `.venv`. A missing piece is an [`Error::NotInstalled`], never a silent skip. Only
//!   `XFT_SKIP_INTEROP=1` skips, loudly ([`interop_enabled`]).
//! * Dev-dependency only; nothing here is for production.
//!
//! # Example
//!
//! ```
//! use ft_testkit::{Prosody, ProsodyOptions, SlixPeer};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! if !ft_testkit::interop_enabled() {
//!     return;
//! }
//! let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
//! // A slixmpp client asks Prosody's proxy65 component who it is.
//! let mut peer = SlixPeer::spawn(&prosody, "alice", "slix", &["disco-info", "proxy.localhost"])
//!     .await
//!     .unwrap();
//! let info = peer.wait_event("disco-info").await.unwrap();
//! assert_eq!(info["identities"][0][0], "proxy");
//! assert_eq!(info["identities"][0][1], "bytestreams");
//! # });
//! ```
//!
//! Our side logs in with [`Prosody::connect`] (the tokio-xmpp adapter of `ft-transport`,
//! plaintext on loopback) or [`Prosody::connect_component`] (XEP-0114).
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

#[macro_use]
mod json_peer;
mod error;
mod gajim;
mod native;
mod prosody;
mod slix;
mod tls;

pub use error::Error;
pub use gajim::{GajimOptions, GajimPeer, gajim_python};
pub use json_peer::JsonLinePeer;
pub use native::{
    NativePeer, PeerKind, Purple, PurplePeer, Qxmpp, QxmppPeer, check_loopback, peer_binary,
};
pub use prosody::{PASSWORD, Prosody, ProsodyOptions};
pub use slix::{DEFAULT_WAIT, SlixPeer, python, repo_root};
pub use tls::{IssuedCert, TestCa};

/// Deterministic pseudo-random file content (xorshift from `seed`): the same bytes for the
/// same `(len, seed)` in every test that sends a file through a real peer.
pub fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Whether the interoperability tests should run: `false` only when `XFT_SKIP_INTEROP=1`,
/// and then it says so on stderr, loudly. Call it first in every test that needs Prosody or
/// slixmpp and return when it is `false`.
pub fn interop_enabled() -> bool {
    if std::env::var("XFT_SKIP_INTEROP").is_ok_and(|v| v == "1") {
        eprintln!(
            "!!! XFT_SKIP_INTEROP=1: SKIPPING an interoperability test (Prosody/slixmpp) !!!"
        );
        false
    } else {
        true
    }
}
