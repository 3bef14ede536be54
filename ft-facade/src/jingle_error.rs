//! [`JingleError`]: what the Jingle stack reports beyond the errors every stack shares
//! (declined, cancelled, timeouts and hash mismatches keep their [`ErrorKind`] variants).
//!
//! [`ErrorKind`]: crate::ErrorKind

/// Why a Jingle File Transfer failed ([`ErrorKind::Jingle`](crate::ErrorKind::Jingle)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JingleError {
    /// The peer ended the session with this XEP-0166 reason (not `decline`, `cancel`:
    /// those are [`ErrorKind::Declined`](crate::ErrorKind::Declined) and
    /// [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled)). `media-error` after the last
    /// byte: the receiver's hash check failed.
    #[error("the peer ended the session with <{reason}/>{}", text.as_deref().map(|t| format!(": {t}")).unwrap_or_default())]
    Terminated {
        /// The reason's element name (`media-error`, `failed-transport`, `busy`, …).
        reason: String,
        /// The peer's `<text/>`, if any.
        text: Option<String>,
    },
    /// Jingle routes by full JIDs: the peer (or our own JID) is not one.
    #[error("{0} is not a full jid")]
    NotFullJid(String),
    /// The session core refused a command (the session is gone, a bound was reached).
    #[error("the jingle session refused the command")]
    Session(#[source] xep0166_jingle::Misuse),
    /// The peer's file description is unusable.
    #[error("bad file description")]
    File(#[source] xep0234_jingle_ft::FtError),
    /// The peer's IBB transport element (or answer) is unusable.
    #[error("bad in-band transport")]
    Ibb(#[source] xep0261_jingle_ibb::IbbError),
    /// The XEP-0260 negotiation found no bytestream.
    #[error("socks5 transport negotiation failed")]
    S5b(#[source] xep0260_jingle_s5b::DriverError),
    /// The peer rejected our transport-replace (the fallback to IBB).
    #[error("the peer rejected the transport replacement")]
    ReplaceRejected,
    /// The peer accepted with a transport we did not offer, or none.
    #[error("the peer answered with a transport we did not offer")]
    WrongTransport,
}

impl JingleError {
    /// Whether the peer ended the session with `<media-error/>` (its hash check failed).
    pub fn is_media_error(&self) -> bool {
        matches!(self, Self::Terminated { reason, .. } if reason == "media-error")
    }
}
