//! Errors of the test rig.

use std::io;
use std::time::Duration;

/// Why the rig could not start or drive a real peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A program the rig needs is missing (`scripts/test` installs it).
    #[error("{what} not found ({hint})")]
    NotInstalled {
        /// What is missing.
        what: String,
        /// How to get it.
        hint: &'static str,
    },
    /// Spawning, reading or writing failed.
    #[error("{context}: {source}")]
    Io {
        /// What the rig was doing.
        context: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// `prosodyctl register` failed.
    #[error("prosodyctl register {user}@{host} failed: {output}")]
    Register {
        /// The account's local part.
        user: String,
        /// The account's host.
        host: String,
        /// What prosodyctl printed.
        output: String,
    },
    /// Prosody did not come up (exited, or did not open its ports in time).
    #[error("prosody did not start: {reason}\n--- prosody log ---\n{log}")]
    Startup {
        /// What went wrong.
        reason: String,
        /// Prosody's log and console output.
        log: String,
    },
    /// The slixmpp peer printed something that is not a JSON object.
    #[error("slixmpp peer printed a line that is not json ({line:?}): {source}")]
    BadOutput {
        /// The line.
        line: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The slixmpp peer reported an error (`{"event":"error"}`) or exited early.
    #[error("slixmpp peer failed: {message}\n--- peer stderr ---\n{stderr}")]
    Peer {
        /// Its message, or how it exited.
        message: String,
        /// Its log.
        stderr: String,
    },
    /// Waiting for the slixmpp peer took longer than allowed.
    #[error("slixmpp peer said nothing of {what} within {after:?}\n--- peer stderr ---\n{stderr}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        after: Duration,
        /// Its log.
        stderr: String,
    },
    /// Making a test certificate failed.
    #[error("test certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// Logging in through the tokio-xmpp adapter failed.
    #[error("tokio-xmpp adapter: {0}")]
    Transport(#[from] ft_transport::xmpp::Error),
}

pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}
