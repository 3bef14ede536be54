//! XEP-0261 Jingle In-Band Bytestreams Transport (v1.0, `urn:xmpp:jingle:transports:ibb:1`).
//!
//! # Flow
//!
//! As XEP-0261 §2 draws it: the transport rides in the Jingle negotiation, then the
//! initiator opens an XEP-0047 bytestream with the agreed sid and block-size:
//!
//! ```text
//! Initiator                                                 Responder
//!    | session-initiate <transport sid='ch3d9s71' block-size='4096'/> |
//!    |--------------------------------------------------------------->|
//!    |                               ack                              |
//!    |<---------------------------------------------------------------|
//!    | session-accept <transport sid='ch3d9s71' block-size='2048'/>   |
//!    |<---------------------------------------------------------------|   (smaller only)
//!    |                               ack                              |
//!    |--------------------------------------------------------------->|
//!    | iq set <open sid='ch3d9s71' block-size='2048'/>  (XEP-0047)    |
//!    |--------------------------------------------------------------->|
//!    |          <data/> ... <close/>, then session-terminate          |
//!    |<==============================================================>|
//! ```
//!
//! # What this crate does
//!
//! [`IbbTransport`] is the `<transport/>` element, checked ([`IbbTransport::parse`]: sid an
//! [`ft_transport::Sid`], block-size 1..=65535, `stanza` `iq` or `message`), turned into
//! `xep0047_ibb::OpenOptions` ([`IbbTransport::open_options`]). The block-size is negotiated
//! downward only: the responder answers with at most what was offered
//! ([`IbbTransport::answer`]) and the initiator refuses an answer that raises it or changes
//! the sid ([`IbbTransport::check_answer`]). The bytes then run on `xep0047-ibb`'s session
//! unchanged: the initiator calls `Ibb::open(peer, sid, options)`, the responder
//! `Ibb::expect(peer, sid, within)`.
//!
//! # Example
//!
//! ```
//! use xep0261_jingle_ibb::{IbbTransport, Sid};
//! use xep0047_ibb::{OpenOptions, StanzaKind};
//!
//! let offer = IbbTransport::new(Sid::new("ch3d9s71")?, OpenOptions::default());
//! let wire = minidom::Element::from(&offer);
//! // The responder reads it and answers with its own limit, 2048.
//! let got = IbbTransport::parse(&wire)?;
//! let answer = got.answer(2048);
//! assert_eq!(answer.block_size, 2048);
//! // The initiator checks the answer and opens the IBB session with it.
//! let agreed = offer.check_answer(&IbbTransport::parse(&(&answer).into())?)?;
//! assert_eq!(agreed.open_options(), OpenOptions { block_size: 2048, stanza: StanzaKind::Iq });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Quirks
//!
//! * Gajim 1.7 sends `sid='None'` when its transport sid was never set. `None` is a valid
//!   NMTOKEN, hence a valid sid: accepted, and the IBB `<open/>` must then carry `None` too.
//! * An absent `stanza` means `iq` (XEP-0047 §2.1); an absent or invalid `block-size` is
//!   refused (XEP-0261 makes it REQUIRED).
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
#![doc(test(attr(deny(warnings))))]

pub use ft_transport::{InvalidSid, Sid};
use minidom::Element;
use xep0047_ibb::{OpenOptions, StanzaKind};
use xmpp_parsers::jingle::Reason;

/// The transport's namespace (also its disco#info feature).
pub const NS_JINGLE_IBB: &str = "urn:xmpp:jingle:transports:ibb:1";
/// The disco#info features to advertise.
pub const DISCO_FEATURES: &[&str] = &[NS_JINGLE_IBB];

/// The `<transport xmlns='urn:xmpp:jingle:transports:ibb:1'/>` of a content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IbbTransport {
    /// The IBB session id (used as the `<open/>` sid).
    pub sid: Sid,
    /// The largest chunk in bytes before base64, 1..=65535.
    pub block_size: u16,
    /// Which stanza carries the data.
    pub stanza: StanzaKind,
}

/// Why a transport element or an answer is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IbbError {
    /// Not an IBB transport element.
    #[error("not <transport xmlns='{NS_JINGLE_IBB}'/>")]
    NotIbb,
    /// The sid is missing or not an NMTOKEN of at most 128 bytes.
    #[error("bad sid")]
    Sid(#[source] InvalidSid),
    /// The block-size is missing, 0, or not an integer up to 65535.
    #[error("bad block-size {0:?}")]
    BlockSize(Option<String>),
    /// `stanza` other than `iq` or `message`.
    #[error("bad stanza {0:?}")]
    Stanza(String),
    /// The answer raised the block-size we offered.
    #[error("block-size raised from {offered} to {answered}")]
    Raised {
        /// What we offered.
        offered: u16,
        /// What came back.
        answered: u16,
    },
    /// The answer names another sid.
    #[error("the answer changed the sid")]
    SidChanged,
}

impl IbbError {
    /// The session-terminate reason when this transport was the only one:
    /// `failed-transport`.
    pub fn reason(&self) -> Reason {
        Reason::FailedTransport
    }
}

impl IbbTransport {
    /// Our offer: `sid` with `options`' block-size and stanza.
    pub fn new(sid: Sid, options: OpenOptions) -> Self {
        Self {
            sid,
            block_size: options.block_size.max(1),
            stanza: options.stanza,
        }
    }

    /// Reads a peer's transport element.
    pub fn parse(e: &Element) -> Result<Self, IbbError> {
        if !e.is("transport", NS_JINGLE_IBB) {
            return Err(IbbError::NotIbb);
        }
        let sid = Sid::new(e.attr("sid").unwrap_or_default()).map_err(IbbError::Sid)?;
        let bs = e.attr("block-size");
        let block_size = bs
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|b| *b > 0)
            .ok_or_else(|| IbbError::BlockSize(bs.map(|s| s.chars().take(32).collect())))?;
        let stanza = match e.attr("stanza") {
            None | Some("iq") => StanzaKind::Iq,
            Some("message") => StanzaKind::Message,
            Some(o) => return Err(IbbError::Stanza(o.chars().take(32).collect())),
        };
        Ok(Self {
            sid,
            block_size,
            stanza,
        })
    }

    /// The responder's answer to this offer: the same sid and stanza, the block-size
    /// lowered to `our_max` if the offer was larger (never raised).
    pub fn answer(&self, our_max: u16) -> Self {
        Self {
            block_size: self.block_size.min(our_max.max(1)),
            ..self.clone()
        }
    }

    /// The initiator's check of the responder's answer to our offer: the agreed transport,
    /// or an error if it changed the sid or raised the block-size.
    pub fn check_answer(&self, answer: &Self) -> Result<Self, IbbError> {
        if answer.sid != self.sid {
            return Err(IbbError::SidChanged);
        }
        if answer.block_size > self.block_size {
            return Err(IbbError::Raised {
                offered: self.block_size,
                answered: answer.block_size,
            });
        }
        Ok(Self {
            block_size: answer.block_size,
            ..self.clone()
        })
    }

    /// The `xep0047_ibb` open options for this transport.
    pub fn open_options(&self) -> OpenOptions {
        OpenOptions {
            block_size: self.block_size,
            stanza: self.stanza,
        }
    }
}

impl From<&IbbTransport> for Element {
    fn from(t: &IbbTransport) -> Self {
        use minidom::rxml::xml_ncname;
        let mut b = Self::builder("transport", NS_JINGLE_IBB)
            .attr(xml_ncname!("block-size").into(), t.block_size.to_string())
            .attr(xml_ncname!("sid").into(), t.sid.as_str());
        if t.stanza == StanzaKind::Message {
            b = b.attr(xml_ncname!("stanza").into(), "message");
        }
        b.build()
    }
}

impl From<IbbTransport> for Element {
    fn from(t: IbbTransport) -> Self {
        Self::from(&t)
    }
}
