//! `<jingle/>` to and from the core's values. Descriptions and transports stay opaque
//! elements: xmpp-parsers' `Jingle` parses them into its own types and refuses the whole
//! action when one of them is not to its taste, so the core reads the envelope itself and
//! reuses xmpp-parsers' `Action`, `Creator`, `Senders` and `ReasonElement`.

use std::str::FromStr;

use jid::Jid;
use minidom::Element;
use xmpp_parsers::jingle::{
    Action, Content as WireContent, Creator, Description, Jingle, ReasonElement, Senders,
    SessionId, Transport,
};
use xmpp_parsers::ns;

use crate::error::Rejected;
use crate::types::{Content, Sid};

/// A peer's `<jingle/>`, read.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) action: Action,
    pub(crate) sid: Sid,
    pub(crate) initiator: Option<Jid>,
    pub(crate) responder: Option<Jid>,
    pub(crate) contents: Vec<Content>,
    pub(crate) reason: Option<ReasonElement>,
    pub(crate) other: Vec<Element>,
}

fn bad(s: impl Into<String>) -> Rejected {
    Rejected::BadRequest(s.into())
}

/// Reads a `<jingle xmlns='urn:xmpp:jingle:1'/>` (the caller checked name and namespace).
/// An `action` we do not know is `NotImplemented`; at most `max_contents` contents.
pub(crate) fn parse(elem: &Element, max_contents: usize) -> Result<Parsed, Rejected> {
    let action_s = elem.attr("action").ok_or_else(|| bad("no action"))?;
    let action = Action::from_str(action_s)
        .map_err(|_| Rejected::NotImplemented(action_s.chars().take(64).collect()))?;
    let sid = Sid::new(elem.attr("sid").unwrap_or("")).map_err(|e| bad(format!("sid: {e}")))?;
    let jid_attr = |n: &str| -> Result<Option<Jid>, Rejected> {
        elem.attr(n)
            .map(|s| Jid::from_str(s).map_err(|e| bad(format!("{n}: {e}"))))
            .transpose()
    };
    let initiator = jid_attr("initiator")?;
    let responder = jid_attr("responder")?;
    let mut contents = Vec::new();
    let mut reason = None;
    let mut other = Vec::new();
    for child in elem.children() {
        if child.is("content", ns::JINGLE) {
            if contents.len() == max_contents {
                return Err(Rejected::ResourceConstraint("contents per action"));
            }
            let c = parse_content(child)?;
            if contents.iter().any(|o: &Content| o.is(&c.creator, &c.name)) {
                return Err(bad("two contents with one creator and name"));
            }
            contents.push(c);
        } else if child.is("reason", ns::JINGLE) {
            // A reason we cannot read (an unknown condition) is dropped, not the action: a
            // session-terminate must end the session whatever its reason says.
            reason = reason.or_else(|| ReasonElement::try_from(child.clone()).ok());
        } else {
            other.push(child.clone());
        }
    }
    Ok(Parsed {
        action,
        sid,
        initiator,
        responder,
        contents,
        reason,
        other,
    })
}

fn parse_content(c: &Element) -> Result<Content, Rejected> {
    let creator = Creator::from_str(c.attr("creator").ok_or_else(|| bad("content creator"))?)
        .map_err(|_| bad("content creator"))?;
    let name = c
        .attr("name")
        .filter(|n| !n.is_empty() && n.len() <= 256)
        .ok_or_else(|| bad("content name missing, empty or over 256 bytes"))?;
    let senders = match c.attr("senders") {
        None => Senders::Both,
        Some(s) => Senders::from_str(s).map_err(|_| bad("content senders"))?,
    };
    let mut out = Content::new(creator, name).with_senders(senders);
    for child in c.children() {
        let slot = match child.name() {
            "description" => &mut out.description,
            "transport" => &mut out.transport,
            _ => continue,
        };
        if slot.replace(child.clone()).is_some() {
            return Err(bad(format!("two <{}/> in one content", child.name())));
        }
    }
    Ok(out)
}

/// What an action we send carries.
#[derive(Debug, Default)]
pub(crate) struct Out {
    pub(crate) initiator: Option<Jid>,
    pub(crate) responder: Option<Jid>,
    pub(crate) contents: Vec<Content>,
    pub(crate) reason: Option<ReasonElement>,
    pub(crate) other: Option<Element>,
}

/// Builds a `<jingle/>`.
pub(crate) fn build(action: Action, sid: &Sid, out: Out) -> Jingle {
    let mut j = Jingle::new(action, SessionId(sid.as_str().to_owned()));
    j.initiator = out.initiator;
    j.responder = out.responder;
    j.reason = out.reason;
    j.other.extend(out.other);
    for c in out.contents {
        let mut w = WireContent::new(c.creator, c.name).with_senders(c.senders);
        w.description = c.description.map(Description::Unknown);
        w.transport = c.transport.map(Transport::Unknown);
        j.contents.push(w);
    }
    j
}
