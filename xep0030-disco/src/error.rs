//! The client's errors.

use std::time::Duration;

use xmpp_parsers::stanza_error::StanzaError;

/// Why a disco query gave no answer, grouped by who is at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer's result is not a disco#info / disco#items query.
    #[error("malformed disco result from {jid}: {reason}")]
    Malformed {
        /// Who answered.
        jid: String,
        /// What is wrong.
        reason: String,
    },
    /// The peer (or its server) answered with an error.
    #[error("disco query to {jid} rejected: {:?} ({:?})", .error.defined_condition, .error.type_)]
    Rejected {
        /// Who was asked.
        jid: String,
        /// The error.
        error: Box<StanzaError>,
    },
    /// No answer within the configured timeout.
    #[error("no disco answer from {jid} within {timeout:?}")]
    Timeout {
        /// Who was asked.
        jid: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The query could not be sent.
    #[error("could not send the disco query to {jid}: {source}")]
    Send {
        /// Who was to be asked.
        jid: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// The peer's stanza error, if this is a rejection.
    pub fn stanza_error(&self) -> Option<&StanzaError> {
        match self {
            Self::Rejected { error, .. } => Some(error),
            _ => None,
        }
    }
}
