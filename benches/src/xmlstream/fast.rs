//! The strict `<data/>` fast paths (see the [module docs](super)).

use std::collections::BTreeMap;

use minidom::Element;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::MessageType;
use xmpp_parsers::stanza::Stanza;

use super::frame::{all_b64, is_b64};
use super::{NS_CLIENT, NS_IBB, XmlStreamError, escape, parse_general};

/// Shortest base64 run worth the fast path; shorter text costs nothing to parse normally.
pub(super) const FAST_MIN: usize = 64;

/// The fast path for elements ending in an IBB-like `</data></iq>`; `None` when it does not
/// apply.
pub(super) fn parse_fast(
    bytes: &[u8],
    prefixes: &BTreeMap<Option<String>, String>,
) -> Result<Option<Element>, XmlStreamError> {
    const SUFFIXES: [&[u8]; 2] = [b"</data></iq>", b"</data></message>"];
    let Some(suffix) = SUFFIXES.iter().find(|s| bytes.ends_with(s)) else {
        return Ok(None);
    };
    let cut_end = bytes.len() - suffix.len();
    // Walk back over whole 64-byte blocks first (vectorized check), then byte by byte.
    let mut cut_start = cut_end;
    while cut_start >= 64 && all_b64(&bytes[cut_start - 64..cut_start]) {
        cut_start -= 64;
    }
    while cut_start > 0 && is_b64(bytes[cut_start - 1]) {
        cut_start -= 1;
    }
    if cut_end - cut_start < FAST_MIN {
        return Ok(None);
    }
    let mut rest = Vec::with_capacity(cut_start + suffix.len());
    rest.extend_from_slice(&bytes[..cut_start]);
    rest.extend_from_slice(suffix);
    let mut root = parse_general(&rest, prefixes)?;
    let text = String::from_utf8(bytes[cut_start..cut_end].to_vec())
        .map_err(|e| XmlStreamError::NotWellFormed(e.to_string()))?;
    // `</data>` right before the root's end tag closes the root's last child element.
    let Some(last) = root.children_mut().last() else {
        return Err(XmlStreamError::NotWellFormed(
            "fast path found no child element".to_owned(),
        ));
    };
    last.append_text(text);
    Ok(Some(root))
}

/// The IBB `<data/>` payload and its text, if `e` is one with alphabet-only text and no
/// child elements.
pub(super) fn fast_data(e: &Element) -> Option<&str> {
    if !e.is("data", NS_IBB) || e.children().next().is_some() {
        return None;
    }
    // Borrow the single text node rather than concatenating a copy.
    let mut texts = e.texts();
    let text = texts.next()?;
    (texts.next().is_none() && text.len() >= FAST_MIN && all_b64(text.as_bytes())).then_some(text)
}

pub(super) fn push_attr(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(b" ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"='");
    out.extend_from_slice(escape(value).as_bytes());
    out.extend_from_slice(b"'");
}

pub(super) fn serialize_fast(stanza: &Stanza, out: &mut Vec<u8>) -> bool {
    let (root, type_, id, from, to, payload) = match stanza {
        Stanza::Iq(Iq::Set {
            from,
            to,
            id,
            payload,
        }) => ("iq", "set", Some(id.as_str()), from, to, payload),
        Stanza::Message(m)
            if m.bodies.is_empty()
                && m.subjects.is_empty()
                && m.thread.is_none()
                && m.payloads.len() == 1 =>
        {
            let type_ = match m.type_ {
                MessageType::Chat => "chat",
                MessageType::Error => "error",
                MessageType::Groupchat => "groupchat",
                MessageType::Headline => "headline",
                // The default, which minidom leaves out too.
                MessageType::Normal => "",
            };
            let id = m.id.as_ref().map(|i| i.0.as_str());
            ("message", type_, id, &m.from, &m.to, &m.payloads[0])
        }
        _ => return false,
    };
    let Some(text) = fast_data(payload) else {
        return false;
    };
    if payload.attrs().iter().any(|((ns, _), _)| !ns.is_none()) {
        return false;
    }
    out.reserve(text.len() + 512);
    out.extend_from_slice(b"<");
    out.extend_from_slice(root.as_bytes());
    push_attr(out, "xmlns", NS_CLIENT);
    if !type_.is_empty() {
        push_attr(out, "type", type_);
    }
    if let Some(id) = id {
        push_attr(out, "id", id);
    }
    if let Some(from) = from {
        push_attr(out, "from", &from.to_string());
    }
    if let Some(to) = to {
        push_attr(out, "to", &to.to_string());
    }
    out.extend_from_slice(b"><data");
    push_attr(out, "xmlns", NS_IBB);
    for ((_, name), value) in payload.attrs().iter() {
        push_attr(out, name.as_str(), value);
    }
    out.extend_from_slice(b">");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"</data></");
    out.extend_from_slice(root.as_bytes());
    out.extend_from_slice(b">");
    true
}
