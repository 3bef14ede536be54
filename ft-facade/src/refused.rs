//! Offers the manager answered itself with a refusal, before the application saw them
//! ([`FileTransfer::next_refused`](crate::FileTransfer::next_refused)): so that a receiver
//! can tell its user that an offer came and what the sender was told.

use std::sync::Arc;

use ft_transport::Stanza;
use jid::Jid;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza_error::StanzaError;

/// Why the manager refused an offer itself.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Refusal {
    /// The offer did not parse (a missing `name`, a `size` that is no number, another SI
    /// profile): `bad-request` + `<bad-profile/>`.
    Malformed(Arc<xep0096_file::FileError>),
    /// The offer came without a `from`: `bad-request`.
    NoSender,
    /// A Jingle session-initiate that is not a usable file offer (no file-transfer
    /// content, an unreadable description, more than one content): terminated with the
    /// reason XEP-0234 names (`unsupported-applications`, `failed-application`).
    MalformedJingle(Arc<xep0234_jingle_ft::FtError>),
    /// None of the offered stream methods is one we use: `bad-request` +
    /// `<no-valid-streams/>`.
    NoCommonMethod,
    /// The same sid from the same peer while that offer is still being handled:
    /// `conflict`.
    Duplicate,
    /// The offered size is above [`Policy::max_size`](crate::Policy::max_size):
    /// `forbidden` with the limit in the text.
    TooLarge {
        /// Offered size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The offered size does not fit in the free space of
    /// [`Policy::auto_accept_dir`](crate::Policy::auto_accept_dir) (with
    /// [`Policy::free_space_margin`](crate::Policy::free_space_margin)): `forbidden` with a
    /// text, nothing opened.
    NoSpace {
        /// Offered size.
        size: u64,
        /// Free bytes in the directory's file system.
        available: u64,
    },
    /// Too many offers are pending or active already, from all peers together
    /// ([`Policy::max_pending_offers`](crate::Policy::max_pending_offers)):
    /// `wait/resource-constraint`.
    Busy,
    /// This peer's account has too many offers pending or active already
    /// ([`Policy::max_offers_per_peer`](crate::Policy::max_offers_per_peer)):
    /// `wait/resource-constraint`.
    PeerBusy {
        /// The per-peer limit.
        limit: usize,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "malformed offer: {e}"),
            Self::NoSender => f.write_str("offer without a sender"),
            Self::MalformedJingle(e) => write!(f, "malformed jingle offer: {e}"),
            Self::NoCommonMethod => f.write_str("no stream method in common"),
            Self::Duplicate => f.write_str("a second offer with a sid still in use"),
            Self::TooLarge { size, limit } => {
                write!(f, "offered size {size} exceeds the limit {limit}")
            }
            Self::NoSpace { size, available } => {
                write!(
                    f,
                    "offered size {size} does not fit in the {available} bytes free"
                )
            }
            Self::Busy => f.write_str("too many offers waiting"),
            Self::PeerBusy { limit } => {
                write!(f, "this peer has {limit} offers pending or active already")
            }
        }
    }
}

/// An offer the manager refused itself, and what the peer was answered.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RefusedOffer {
    /// Who offered (`None` when the offer had no `from`).
    pub from: Option<Jid>,
    /// The offered file name, when the offer had one (as sent: never a path).
    pub name: Option<String>,
    /// The offered size, when it had a readable one.
    pub size: Option<u64>,
    /// Why.
    pub reason: Refusal,
    /// The stanza error the peer received (SI; a Jingle offer is answered by its
    /// session-terminate instead: [`jingle_reason`](Self::jingle_reason)).
    pub answer: Option<StanzaError>,
    /// The stack the offer came by.
    pub stack: crate::Stack,
    /// For Jingle, the reason of the session-terminate the peer received, as its element
    /// name (`decline`, `busy`, `unsupported-transports`, `unsupported-applications`,
    /// `failed-application`, …).
    pub jingle_reason: Option<String>,
}

impl RefusedOffer {
    /// A refused Jingle offer, answered with a session-terminate `<sent/>`.
    pub(crate) fn jingle(
        from: Jid,
        name: Option<String>,
        size: Option<u64>,
        reason: Refusal,
        sent: &xep0166_jingle::Reason,
    ) -> Self {
        Self {
            from: Some(from),
            name,
            size,
            reason,
            answer: None,
            stack: crate::Stack::Jingle,
            jingle_reason: Some(crate::stack::jingle::link::reason_name(sent)),
        }
    }

    /// A refusal of the SI offer in `iq`, answered with `reply`.
    pub(crate) fn new(iq: &Iq, reason: Refusal, reply: Option<&Stanza>) -> Self {
        let file = match iq {
            Iq::Set { payload, .. } => payload
                .get_child("file", xep0096_file::NS_FILE_TRANSFER)
                .cloned(),
            _ => None,
        };
        Self {
            from: iq.from().cloned(),
            name: file
                .as_ref()
                .and_then(|f| f.attr("name"))
                .map(str::to_owned),
            size: file
                .as_ref()
                .and_then(|f| f.attr("size"))
                .and_then(|s| s.parse().ok()),
            reason,
            answer: match reply {
                Some(Stanza::Iq(Iq::Error { error, .. })) => Some(error.clone()),
                _ => None,
            },
            stack: crate::Stack::Si,
            jingle_reason: None,
        }
    }

    /// The answer's condition in XMPP's words (`bad-request`, `forbidden`, …), with the
    /// application condition when there is one (`bad-request (bad-profile)`); for Jingle
    /// the session-terminate's reason (`session-terminate <busy/>`).
    pub fn answer_text(&self) -> String {
        if let Some(r) = &self.jingle_reason {
            return format!("session-terminate <{r}/>");
        }
        let Some(e) = &self.answer else {
            return "no answer".to_owned();
        };
        let condition = Element::from(e.defined_condition.clone()).name().to_owned();
        match &e.other {
            Some(app) => format!("{condition} ({})", app.name()),
            None => condition,
        }
    }
}

use minidom::Element;
