//! Diagnostics as data: what happened at each stage, with timings, and the final outcome.

use std::path::PathBuf;
use std::time::Duration;

use ft_transport::Sid;
use jid::Jid;

use crate::error::{Stage, TransferError};

/// What a transfer carries: the XEP-0096 `<file/>` metadata as the facade uses it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct FileInfo {
    /// The file name as offered (the receiver sanitises it before use).
    pub name: String,
    /// The full size in bytes. `None` only in an offer that left it out (QXmpp offers an
    /// empty file that way): the file then ends where the bytestream ends, progress has no
    /// total, the size policy applies to the bytes as they arrive, and nothing is resumed.
    /// A sender always knows it.
    pub size: Option<u64>,
    /// The MD5 of the whole file, lower-case hex (XEP-0096's `hash`), if known.
    pub md5: Option<String>,
    /// Last modification time, XEP-0082 format (`2009-07-14T04:52:25.650Z`).
    pub date: Option<String>,
    /// A description.
    pub desc: Option<String>,
    /// MIME type of the `<si/>`; `application/octet-stream` when `None`.
    pub mime_type: Option<String>,
}

impl FileInfo {
    /// Metadata with a name and size only.
    pub fn new(name: impl Into<String>, size: u64) -> Self {
        Self {
            name: name.into(),
            size: Some(size),
            ..Self::default()
        }
    }

    /// Sets the MD5 (lower-case hex).
    #[must_use]
    pub fn with_md5(mut self, md5: impl Into<String>) -> Self {
        self.md5 = Some(md5.into());
        self
    }

    /// Sets the description.
    #[must_use]
    pub fn with_desc(mut self, desc: impl Into<String>) -> Self {
        self.desc = Some(desc.into());
        self
    }

    /// Sets the date.
    #[must_use]
    pub fn with_date(mut self, date: impl Into<String>) -> Self {
        self.date = Some(date.into());
        self
    }
}

/// How the bytes actually travelled.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MethodUsed {
    /// SOCKS5 straight to the sender's own streamhost.
    S5bDirect {
        /// `host:port` of the streamhost.
        streamhost: String,
    },
    /// SOCKS5 through a proxy.
    S5bProxy {
        /// The proxy's JID.
        proxy: Jid,
        /// `host:port` of the streamhost.
        streamhost: String,
    },
    /// In-band over `<iq/>`.
    IbbIq,
    /// In-band over `<message/>`.
    IbbMessage,
}

impl MethodUsed {
    /// S5B through `streamhost`: direct when its JID is `sender` (the requester's own
    /// streamhost), through a proxy otherwise.
    pub(crate) fn s5b(streamhost: &xep0065_s5b::StreamHost, sender: &Jid) -> Self {
        let address = format!("{}:{}", streamhost.host, streamhost.port);
        if &streamhost.jid == sender {
            Self::S5bDirect {
                streamhost: address,
            }
        } else {
            Self::S5bProxy {
                proxy: streamhost.jid.clone(),
                streamhost: address,
            }
        }
    }

    /// IBB over `kind`.
    pub(crate) fn ibb(kind: xep0047_ibb::StanzaKind) -> Self {
        match kind {
            xep0047_ibb::StanzaKind::Message => Self::IbbMessage,
            _ => Self::IbbIq,
        }
    }

    /// A short name: `s5b-direct`, `s5b-proxy`, `ibb-iq`, `ibb-message`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::S5bDirect { .. } => "s5b-direct",
            Self::S5bProxy { .. } => "s5b-proxy",
            Self::IbbIq => "ibb-iq",
            Self::IbbMessage => "ibb-message",
        }
    }

    /// The streamhost (`host:port`) for S5B.
    pub fn streamhost(&self) -> Option<&str> {
        match self {
            Self::S5bDirect { streamhost } | Self::S5bProxy { streamhost, .. } => Some(streamhost),
            _ => None,
        }
    }
}

/// Where a transfer is, for a progress bar.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Progress {
    /// Bytes carried so far in this session (from the range offset on).
    pub bytes: u64,
    /// Bytes this session carries (the size, or the range length); `None` when the offer
    /// had no size (show bytes, no percentage).
    pub total: Option<u64>,
    /// Average rate since bytes started flowing, bytes per second.
    pub rate: f64,
    /// The current stage.
    pub stage: Stage,
}

/// One S5B candidate the target tried, as reported back to the facade.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CandidateReport {
    /// The streamhost's JID.
    pub jid: Jid,
    /// `host:port`.
    pub address: String,
    /// Won, lost, not tried, refused by the dial policy, or failed (with the reason), as the
    /// S5B crate reports it.
    pub outcome: xep0065_s5b::Outcome,
    /// How long the attempt took.
    pub duration: Duration,
}

impl CandidateReport {
    /// The report of one attempt.
    pub(crate) fn new(a: &xep0065_s5b::Attempt) -> Self {
        Self {
            jid: a.streamhost.jid.clone(),
            address: format!("{}:{}", a.streamhost.host, a.streamhost.port),
            outcome: a.outcome.clone(),
            duration: a.duration,
        }
    }

    /// The outcome in words: `won`, `lost`, `not-tried`, `refused: …`, `failed: …`.
    pub fn outcome_text(&self) -> String {
        match &self.outcome {
            xep0065_s5b::Outcome::Won => "won".to_owned(),
            xep0065_s5b::Outcome::Lost => "lost".to_owned(),
            xep0065_s5b::Outcome::NotTried => "not-tried".to_owned(),
            xep0065_s5b::Outcome::Refused(r) => format!("refused: {r}"),
            xep0065_s5b::Outcome::Failed(r) => format!("failed: {r}"),
            other => format!("{other:?}"),
        }
    }
}

/// Why a transfer left S5B for IBB ([`Event::Fallback`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum FallbackReason {
    /// S5B failed (every candidate, the budget, the peer's `item-not-found`).
    S5bFailed(std::sync::Arc<crate::ErrorKind>),
    /// The peer opened IBB while S5B was still being tried (Spark, seed 004).
    PeerOpenedIbb,
}

impl std::fmt::Display for FallbackReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::S5bFailed(e) => f.write_str(&e.chain()),
            Self::PeerOpenedIbb => f.write_str("the peer opened in-band bytestreams instead"),
        }
    }
}

/// A structured diagnostic event. Every event carries the time since the transfer began.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// The sender chose the stack that negotiates this transfer (after [`Event::Disco`],
    /// if the peer's features were asked).
    Stack(crate::Stack),
    /// The peer's features were checked.
    Disco {
        /// Whether the peer supports SI file transfer.
        supported: bool,
        /// Since start.
        at: Duration,
    },
    /// The offer went out (sender) or arrived (receiver).
    Offered {
        /// The methods offered, as SI namespaces.
        methods: Vec<String>,
        /// Since start.
        at: Duration,
    },
    /// The offer was accepted.
    Accepted {
        /// The chosen method's namespace.
        method: String,
        /// The range offset asked for (resume), 0 for a whole file.
        offset: u64,
        /// Since start.
        at: Duration,
    },
    /// Proxies were found (or came from the cache or the configuration).
    Proxies {
        /// `jid host:port` of each proxy streamhost.
        streamhosts: Vec<String>,
        /// Since start.
        at: Duration,
    },
    /// An S5B candidate was tried.
    Candidate(CandidateReport),
    /// S5B failed and the transfer moves to IBB on the same sid.
    Fallback {
        /// Why.
        reason: FallbackReason,
        /// Since start.
        at: Duration,
    },
    /// The bytestream is up.
    Connected {
        /// How it goes.
        method: MethodUsed,
        /// Since start.
        at: Duration,
    },
    /// Bytes moved.
    Progress(Progress),
    /// Done.
    Completed(Box<Outcome>),
    /// Failed.
    Failed(std::sync::Arc<TransferError>),
}

/// What a completed transfer's result knows about delivery, and who confirmed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// Sender: the receiver acknowledged every byte. Over IBB/iq every `<data/>` was
    /// answered with a result; over S5B the receiver closed the bytestream cleanly after our
    /// last byte (through a proxy: the proxy passed that close on).
    Acknowledged,
    /// Sender: nothing the receiver sent says the bytes arrived. IBB over `<message/>` has no
    /// acknowledgements at all (libpurple and QXmpp accept such an open, then drop every
    /// data message; QXmpp even answers the `<close/>`); an S5B receiver that neither closed
    /// within [`Config::receiver_close_grace`](crate::Config::receiver_close_grace) nor
    /// cleanly (see [`Outcome::warnings`]).
    Unconfirmed,
    /// Receiver: the bytes are in place, and these checks passed.
    Received {
        /// The byte count equals the offered size (`false`: the offer had no size, the file
        /// ended where the bytestream ended).
        size_checked: bool,
        /// An expected hash was checked and matched ([`Outcome::verified_by`] says which):
        /// the offered MD5 for SI. `false`: the offer carried no hash (and none came later),
        /// or a resume into a writer left the prefix unhashed.
        hash_checked: bool,
    },
}

impl Delivery {
    /// `acknowledged`, `unconfirmed` or `received`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Acknowledged => "acknowledged",
            Self::Unconfirmed => "unconfirmed",
            Self::Received { .. } => "received",
        }
    }
}

/// Something a completed transfer's result should not hide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// IBB: every chunk went out (over iq: acknowledged), but the receiver never answered
    /// our `<close/>` (libpurple never does).
    CloseUnanswered,
    /// S5B: the receiver did not close the bytestream within the grace after our last byte.
    NoCloseFromReceiver,
    /// S5B: the receiver reset the connection after our last byte (closed with bytes still
    /// unread, or an error on its side).
    ResetByReceiver,
    /// IBB: the receiver answered our `<close/>` with an error after our last byte: it did
    /// not keep the file (an xft receiver does so when the bytes do not match the offer).
    RefusedByReceiver,
}

impl Warning {
    /// A short name: `close-unanswered`, `no-close-from-receiver`, `reset-by-receiver`,
    /// `refused-by-receiver`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::CloseUnanswered => "close-unanswered",
            Self::NoCloseFromReceiver => "no-close-from-receiver",
            Self::ResetByReceiver => "reset-by-receiver",
            Self::RefusedByReceiver => "refused-by-receiver",
        }
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::CloseUnanswered => {
                "the receiver acknowledged every chunk but never answered the in-band close"
            }
            Self::NoCloseFromReceiver => {
                "the receiver did not close the bytestream after the last byte"
            }
            Self::ResetByReceiver => "the receiver reset the bytestream after the last byte",
            Self::RefusedByReceiver => {
                "the receiver answered the in-band close with an error: it did not keep the file"
            }
        })
    }
}

/// A completed transfer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Outcome {
    /// The peer.
    pub peer: Jid,
    /// The stream id.
    pub sid: Sid,
    /// How the bytes went.
    pub method: MethodUsed,
    /// Whether S5B failed and IBB carried the file.
    pub fallback: bool,
    /// Which stack negotiated the transfer.
    pub stack: crate::Stack,
    /// Bytes carried in this session.
    pub bytes: u64,
    /// The offset the session started at (resume), 0 for a whole file.
    pub offset: u64,
    /// From the start of the transfer to its end.
    pub elapsed: Duration,
    /// From the first byte to the last.
    pub streaming: Duration,
    /// SHA-256 of the whole file (the receiver: of what is on disk, resumed part included;
    /// the sender: of the bytes it sent, and of the part before them when resuming from a
    /// path), lower-case hex.
    pub sha256: String,
    /// MD5 of the whole file, lower-case hex, when it was computed: the sender computes it
    /// for the offer (files within [`Config::offer_hash`](crate::Config::offer_hash), and
    /// readers whose whole content it sent); the receiver only to check an offered one
    /// (whole files only).
    pub md5: Option<String>,
    /// Where the receiver put the file (`None` when received into a writer).
    pub path: Option<PathBuf>,
    /// What is known about delivery: acknowledged or unconfirmed (sender), the checks that
    /// passed (receiver).
    pub delivery: Delivery,
    /// Receiver: the algorithm of the expected hash the received file was checked against
    /// (the strongest, when several were), `None` when no hash was checked (none was
    /// offered or came in time, or a resume into a writer saw only the tail). Sender: `None`.
    pub verified_by: Option<crate::hash_algo::HashAlgo>,
    /// What went less well than it should have, without failing the transfer.
    pub warnings: Vec<Warning>,
}

impl Outcome {
    /// Average throughput while streaming, bytes per second.
    pub fn rate(&self) -> f64 {
        let s = self.streaming.as_secs_f64();
        if s > 0.0 { self.bytes as f64 / s } else { 0.0 }
    }
}
