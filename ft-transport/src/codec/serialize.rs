//! Serialization: the direct `<data/>` and acknowledgement paths, and minidom for the rest
//! (see the [module docs](super)).

use minidom::{Element, Node};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::MessageType;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stream_error::{DefinedCondition, StreamError};

use super::frame::all_b64;
use super::{NS_CLIENT, NS_IBB, fast::FAST_MIN};

/// Escapes an attribute value or text for single-quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    escape_into(s, &mut out);
    // Only ASCII bytes were replaced by ASCII entities: the result is as valid as `s`.
    String::from_utf8(out).unwrap_or_default()
}

/// [`escape`], appended to `out` (no allocation when nothing needs escaping).
fn escape_into(s: &str, out: &mut Vec<u8>) {
    let mut rest = s.as_bytes();
    while let Some(i) = rest
        .iter()
        .position(|b| matches!(b, b'&' | b'<' | b'>' | b'\'' | b'"'))
    {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(match rest[i] {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'\'' => b"&apos;",
            _ => b"&quot;",
        });
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
}

/// A stanza serialized for the wire, in up to three parts so that a writer can send an IBB
/// `<data/>` stanza with one vectored write and never copy its text: the serialized start,
/// the text (still inside the stanza) and the closing tags. Built by
/// [`XmlCodec::encode_parts`](super::XmlCodec::encode_parts).
#[derive(Debug)]
pub struct EncodedStanza(Encoded);

#[derive(Debug)]
enum Encoded {
    /// A serialized element.
    Bytes(Vec<u8>),
    /// A stanza on the `<data/>` fast path.
    Data {
        head: Vec<u8>,
        stanza: Box<Stanza>,
        tail: &'static [u8],
    },
}

impl EncodedStanza {
    /// Serializes `stanza` with root namespace `ns` (the fast paths where they apply).
    pub(super) fn new(stanza: Stanza, ns: &str) -> Self {
        let mut head = Vec::new();
        if serialize_fast_head(&stanza, ns, &mut head).is_some() {
            return Self(Encoded::Data {
                head,
                tail: if matches!(stanza, Stanza::Iq(_)) {
                    b"</data></iq>"
                } else {
                    b"</data></message>"
                },
                stanza: Box::new(stanza),
            });
        }
        if !serialize_empty_result(&stanza, ns, &mut head) {
            write_element(Element::from(stanza), ns, &mut head);
        }
        Self(Encoded::Bytes(head))
    }

    /// An element written as it is (its own namespace).
    pub(super) fn element(element: &Element) -> Self {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail on I/O; minidom only fails on invalid names, which a
        // parsed or built Element does not have.
        let _ = element.write_to(&mut out);
        Self(Encoded::Bytes(out))
    }

    /// `<stream:error/>` with `condition` (what we close a broken stream with).
    pub fn stream_error(condition: DefinedCondition) -> Self {
        let error = StreamError {
            condition,
            texts: Default::default(),
            application_specific: Vec::new(),
        };
        let mut out = Vec::new();
        // See [`Self::element`]. Written unprefixed in the streams namespace.
        let _ = Element::from(error).write_to(&mut out);
        Self(Encoded::Bytes(out))
    }

    /// The bytes to write, in order (some possibly empty).
    pub fn parts(&self) -> [&[u8]; 3] {
        match &self.0 {
            Encoded::Bytes(b) => [b, &[], &[]],
            Encoded::Data { head, stanza, tail } => [head, fast_text(stanza).as_bytes(), tail],
        }
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.parts().iter().map(|p| p.len()).sum()
    }

    /// Whether there are no bytes at all (never, for a stanza).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this took the `<data/>` fast path.
    pub fn is_fast(&self) -> bool {
        matches!(self.0, Encoded::Data { .. })
    }
}

/// Serializes a stanza to the bytes a `jabber:client` stream carries (root with its
/// `xmlns`), with the fast paths where they apply.
pub fn serialize(stanza: &Stanza, out: &mut Vec<u8>) {
    serialize_to(stanza, NS_CLIENT, out);
}

/// [`serialize`] with root namespace `ns`.
pub(super) fn serialize_to(stanza: &Stanza, ns: &str, out: &mut Vec<u8>) {
    if serialize_fast(stanza, ns, out) || serialize_empty_result(stanza, ns, out) {
        return;
    }
    write_element(Element::from(clone_stanza(stanza)), ns, out);
}

/// Serializes through minidom (no fast path), for comparisons and benchmarks.
pub fn serialize_general(stanza: &Stanza, out: &mut Vec<u8>) {
    write_element(Element::from(clone_stanza(stanza)), NS_CLIENT, out);
}

/// A copy of `stanza` (xmpp-parsers' `Stanza` is not `Clone`).
pub(super) fn clone_stanza(stanza: &Stanza) -> Stanza {
    match stanza {
        Stanza::Iq(iq) => Stanza::Iq(iq.clone()),
        Stanza::Message(m) => Stanza::Message(m.clone()),
        Stanza::Presence(p) => Stanza::Presence(p.clone()),
    }
}

/// Writes `element` (a `jabber:client` stanza) with root namespace `ns`.
fn write_element(element: Element, ns: &str, out: &mut Vec<u8>) {
    let element = if ns == NS_CLIENT {
        element
    } else {
        renamespace(element, NS_CLIENT, ns)
    };
    // See [`EncodedStanza::element`].
    let _ = element.write_to(out);
}

/// Moves an element in namespace `from` (and its descendants in `from`) to namespace `to`.
pub(super) fn renamespace(mut el: Element, from: &str, to: &str) -> Element {
    if el.ns() != from {
        return el;
    }
    let nodes = el.take_nodes();
    let mut out = Element::bare(el.name(), to);
    *out.attrs_mut() = el.attrs().clone();
    for node in nodes {
        match node {
            Node::Element(child) => {
                out.append_child(renamespace(child, from, to));
            }
            Node::Text(text) => out.append_text(text),
        }
    }
    out
}

/// The IBB `<data/>` payload and its text, if `e` is one with alphabet-only text and no
/// child elements.
fn fast_data(e: &Element) -> Option<&str> {
    if !e.is("data", NS_IBB) || e.children().next().is_some() {
        return None;
    }
    // Borrow the single text node rather than concatenating a copy.
    let mut texts = e.texts();
    let text = texts.next()?;
    // Valid base64 is alphabet-only, and the SIMD check is several times faster than
    // testing the alphabet byte by byte; other alphabet-only text is tested the slow way.
    let b = text.as_bytes();
    (texts.next().is_none()
        && text.len() >= FAST_MIN
        && (base64_simd::STANDARD.check(b).is_ok() || all_b64(b)))
    .then_some(text)
}

fn push_attr(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(b" ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"='");
    escape_into(value, out);
    out.extend_from_slice(b"'");
}

/// Serializes `stanza` with the fast path, if it applies: `false` (and `out` untouched) if not.
pub(super) fn serialize_fast(stanza: &Stanza, ns: &str, out: &mut Vec<u8>) -> bool {
    let Some((text, tail)) = serialize_fast_head(stanza, ns, out) else {
        return false;
    };
    out.reserve(text.len() + tail.len());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(tail);
    true
}

/// The fast path in three parts: writes to `head` everything before the `<data/>` text and
/// returns the text (borrowed from the stanza) and the closing tags, so that a writer can
/// send the three with one vectored write and never copy the text. `None` (and `head`
/// untouched) when the fast path does not apply.
pub(super) fn serialize_fast_head<'a>(
    stanza: &'a Stanza,
    ns: &str,
    out: &mut Vec<u8>,
) -> Option<(&'a str, &'static [u8])> {
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
        _ => return None,
    };
    let text = fast_data(payload)?;
    if payload.attrs().iter().any(|((ns, _), _)| !ns.is_none()) {
        return None;
    }
    out.extend_from_slice(b"<");
    out.extend_from_slice(root.as_bytes());
    push_attr(out, "xmlns", ns);
    if !type_.is_empty() {
        push_attr(out, "type", type_);
    }
    if let Some(id) = id {
        push_attr(out, "id", id);
    }
    if let Some(from) = from {
        push_attr(out, "from", from.as_str());
    }
    if let Some(to) = to {
        push_attr(out, "to", to.as_str());
    }
    out.extend_from_slice(b"><data");
    push_attr(out, "xmlns", NS_IBB);
    for ((_, name), value) in payload.attrs().iter() {
        push_attr(out, name.as_str(), value);
    }
    out.extend_from_slice(b">");
    let tail: &'static [u8] = if root == "iq" {
        b"</data></iq>"
    } else {
        b"</data></message>"
    };
    Some((text, tail))
}

/// The `<data/>` text of a stanza that [`serialize_fast_head`] accepted (without checking
/// it again).
fn fast_text(stanza: &Stanza) -> &str {
    let payload = match stanza {
        Stanza::Iq(Iq::Set { payload, .. }) => Some(payload),
        Stanza::Message(m) => m.payloads.first(),
        _ => None,
    };
    payload.and_then(|p| p.texts().next()).unwrap_or("")
}

/// An `<iq type='result'/>` without payload (an IBB acknowledgement, one per chunk) written
/// directly rather than through minidom; `false` (and `out` untouched) for anything else.
pub(super) fn serialize_empty_result(stanza: &Stanza, ns: &str, out: &mut Vec<u8>) -> bool {
    let Stanza::Iq(Iq::Result {
        from,
        to,
        id,
        payload: None,
    }) = stanza
    else {
        return false;
    };
    out.extend_from_slice(b"<iq");
    push_attr(out, "xmlns", ns);
    push_attr(out, "type", "result");
    push_attr(out, "id", id);
    if let Some(from) = from {
        push_attr(out, "from", from.as_str());
    }
    if let Some(to) = to {
        push_attr(out, "to", to.as_str());
    }
    out.extend_from_slice(b"/>");
    true
}
