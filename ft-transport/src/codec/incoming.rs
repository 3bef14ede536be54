//! What the decoder hands on: stanzas, malformed stanzas with the answer they call for,
//! other elements, the stream's end.

use minidom::Element;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use super::serialize::renamespace;
use super::{NS_CLIENT, NS_COMPONENT};

/// One top-level element of the stream, as the decoder hands it on.
#[derive(Debug, PartialEq)]
#[non_exhaustive]
#[allow(
    clippy::large_enum_variant,
    reason = "a stanza is nearly every item; boxing it would cost an allocation each"
)]
pub enum Incoming {
    /// A stanza (repaired by [`lenient`](crate::lenient) if it needed it). On a component
    /// stream, in `jabber:client` like every xmpp-parsers type.
    Stanza(Stanza),
    /// An iq, message or presence (or another element in the stanza namespace) that does
    /// not parse even after repair.
    Malformed(Malformed),
    /// A top-level element in another namespace: stream features, SASL, a handshake.
    Element(Element),
    /// `</stream:stream>`: the peer closed the stream. Nothing follows.
    End,
}

/// A top-level element in the stanza namespace that is not a valid stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// The element's name (`iq`, `message`, …).
    pub name: String,
    /// Its `type` attribute.
    pub type_: Option<String>,
    /// Its `id` attribute.
    pub id: Option<String>,
    /// Its `from` attribute, as it was.
    pub from: Option<String>,
    /// Why xmpp-parsers refused it.
    pub reason: String,
}

impl Malformed {
    fn new(el: &Element, reason: String) -> Self {
        let attr = |n: &str| el.attr(n).map(str::to_owned);
        Self {
            name: el.name().to_owned(),
            type_: attr("type"),
            id: attr("id"),
            from: attr("from"),
            reason,
        }
    }

    /// The `modify`/`bad-request` error RFC 6120 §8.3.3.1 answers a malformed iq request
    /// with, addressed to its sender; `None` for anything else (a message, a presence, an
    /// iq result or error, a request without `id` or from a `from` that is no JID), which
    /// is dropped without an answer.
    pub fn bad_request(&self) -> Option<Iq> {
        if self.name != "iq" || !matches!(self.type_.as_deref(), Some("get" | "set")) {
            return None;
        }
        let to = match self.from.as_deref().map(str::parse::<jid::Jid>) {
            Some(Ok(jid)) => Some(jid),
            None => None,
            Some(Err(_)) => return None,
        };
        let mut reply = Iq::from_error(
            self.id.clone()?,
            StanzaError::new(
                ErrorType::Modify,
                DefinedCondition::BadRequest,
                "en",
                "malformed stanza",
            ),
        );
        *reply.to_mut() = to;
        Some(reply)
    }
}

/// What a parsed top-level element is: a stanza (strict, or after the lenient repair), a
/// malformed one, or an element of another namespace.
pub(super) fn classify(el: Element) -> Incoming {
    let el = if el.ns() == NS_COMPONENT {
        renamespace(el, NS_COMPONENT, NS_CLIENT)
    } else {
        el
    };
    if el.ns() != NS_CLIENT {
        return Incoming::Element(el);
    }
    let probe = Malformed::new(&el, String::new());
    match crate::lenient::parse_stanza_lenient(el) {
        Ok(stanza) => Incoming::Stanza(stanza),
        Err(e) => Incoming::Malformed(Malformed {
            reason: e.to_string(),
            ..probe
        }),
    }
}
