//! The strict `<data/>` fast paths (see the [module docs](super)).

use std::collections::BTreeMap;

use minidom::Element;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::MessageType;
use xmpp_parsers::stanza::Stanza;

use super::frame::{all_b64, is_b64};
use super::{NS_CLIENT, NS_IBB, XmlStreamError, escape, parse_general, stanza_from_element};

/// Shortest base64 run worth the fast path; shorter text costs nothing to parse normally.
pub(super) const FAST_MIN: usize = 64;

/// The fast path for elements ending in an IBB-like `</data></iq>`: the element without its
/// trailing base64 run, and that run; `None` when it does not apply.
pub(super) fn parse_fast_parts(
    bytes: &[u8],
    prefixes: &BTreeMap<Option<String>, String>,
) -> Result<Option<(Element, String)>, XmlStreamError> {
    const SUFFIXES: [&[u8]; 2] = [b"</data></iq>", b"</data></message>"];
    let Some(suffix) = SUFFIXES.iter().find(|s| bytes.ends_with(s)) else {
        return Ok(None);
    };
    let cut_end = bytes.len() - suffix.len();
    let cut_start = run_start(bytes, cut_end);
    if cut_end - cut_start < FAST_MIN {
        return Ok(None);
    }
    let mut rest = Vec::with_capacity(cut_start + suffix.len());
    rest.extend_from_slice(&bytes[..cut_start]);
    rest.extend_from_slice(suffix);
    let root = parse_general(&rest, prefixes)?;
    // The run is alphabet-only, hence ASCII: this validation cannot fail and costs little.
    let text = std::str::from_utf8(&bytes[cut_start..cut_end])
        .map_err(|e| XmlStreamError::NotWellFormed(e.to_string()))?
        .to_owned();
    Ok(Some((root, text)))
}

/// Where the run of base64-alphabet bytes that ends at `end` starts.
fn run_start(bytes: &[u8], end: usize) -> usize {
    // The common case: everything after the last `>` (the `<data>` start tag's) is base64.
    // `>` is not in the alphabet, so then the run is exactly that; the SIMD base64 check is
    // several times faster than testing the alphabet byte by byte.
    if let Some(gt) = rfind_byte(b'>', &bytes[..end]) {
        let run = &bytes[gt + 1..end];
        if run.len() >= FAST_MIN && base64_simd::STANDARD.check(run).is_ok() {
            return gt + 1;
        }
    }
    // Otherwise walk back over whole 64-byte blocks first (vectorized check), then byte by
    // byte.
    let mut start = end;
    while start >= 64 && all_b64(&bytes[start - 64..start]) {
        start -= 64;
    }
    while start > 0 && is_b64(bytes[start - 1]) {
        start -= 1;
    }
    start
}

/// The last `needle` in `hay`, testing whole 64-byte blocks from the end branch-free first
/// (which the compiler vectorizes).
fn rfind_byte(needle: u8, hay: &[u8]) -> Option<usize> {
    let mut end = hay.len();
    for block in hay.rchunks(64) {
        let start = end - block.len();
        if block.iter().fold(false, |hit, &b| hit | (b == needle)) {
            return block.iter().rposition(|&b| b == needle).map(|i| start + i);
        }
        end = start;
    }
    None
}

/// The fast path as an element: [`parse_fast_parts`] with the run appended to the root's
/// last child.
pub(super) fn parse_fast(
    bytes: &[u8],
    prefixes: &BTreeMap<Option<String>, String>,
) -> Result<Option<Element>, XmlStreamError> {
    let Some((mut root, text)) = parse_fast_parts(bytes, prefixes)? else {
        return Ok(None);
    };
    // `</data>` right before the root's end tag closes the root's last child element.
    let Some(last) = root.children_mut().last() else {
        return Err(XmlStreamError::NotWellFormed(
            "fast path found no child element".to_owned(),
        ));
    };
    last.append_text(text);
    Ok(Some(root))
}

/// The fast path straight to a stanza: the element without its base64 run is converted
/// (small), and the run is then appended to the `<data/>` payload, so the conversion never
/// copies the run. `None` when the fast path does not apply, or when the converted stanza
/// has no `<data/>` where the root's last child was; the caller then takes the general path,
/// which also gives the general path's error for an element that is not a valid stanza.
pub(super) fn parse_fast_stanza(
    bytes: &[u8],
    prefixes: &BTreeMap<Option<String>, String>,
) -> Result<Option<Stanza>, XmlStreamError> {
    if let Some(stanza) = parse_data_iq(bytes) {
        return Ok(Some(stanza));
    }
    let Some((root, text)) = parse_fast_parts(bytes, prefixes)? else {
        return Ok(None);
    };
    let only_child = root.children().count() == 1;
    let Ok(mut stanza) = stanza_from_element(root) else {
        return Ok(None);
    };
    // The root's last child is the `<data/>`: a message's last payload (it is neither a
    // body, a subject nor a thread), or an iq's payload if it is the iq's only child (an iq
    // keeps its first child only).
    let target = match &mut stanza {
        Stanza::Iq(
            Iq::Set { payload, .. }
            | Iq::Get { payload, .. }
            | Iq::Result {
                payload: Some(payload),
                ..
            },
        ) if only_child => payload,
        Stanza::Message(m) => match m.payloads.last_mut() {
            Some(p) => p,
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    if target.name() != "data" {
        return Ok(None);
    }
    target.append_text(text);
    Ok(Some(stanza))
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
    // Valid base64 is alphabet-only, and the SIMD check is several times faster than
    // testing the alphabet byte by byte; other alphabet-only text is tested the slow way.
    let b = text.as_bytes();
    (texts.next().is_none()
        && text.len() >= FAST_MIN
        && (base64_simd::STANDARD.check(b).is_ok() || all_b64(b)))
    .then_some(text)
}

pub(super) fn push_attr(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(b" ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"='");
    out.extend_from_slice(escape(value).as_bytes());
    out.extend_from_slice(b"'");
}

/// Serializes `stanza` with the fast path, if it applies: `false` (and `out` untouched) if not.
pub(super) fn serialize_fast(stanza: &Stanza, out: &mut Vec<u8>) -> bool {
    let Some((text, tail)) = serialize_fast_head(stanza, out) else {
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
    let tail: &'static [u8] = if root == "iq" {
        b"</data></iq>"
    } else {
        b"</data></message>"
    };
    Some((text, tail))
}

/// The `<data/>` text of a stanza that [`serialize_fast_head`] accepted (without checking
/// it again).
pub(super) fn fast_text(stanza: &Stanza) -> &str {
    let payload = match stanza {
        Stanza::Iq(Iq::Set { payload, .. }) => Some(payload),
        Stanza::Message(m) => m.payloads.first(),
        _ => None,
    };
    payload.and_then(|p| p.texts().next()).unwrap_or("")
}

/// An `<iq type='result'/>` without payload (an IBB acknowledgement, one per chunk) written
/// directly rather than through minidom; `false` (and `out` untouched) for anything else.
pub(super) fn serialize_empty_result(stanza: &Stanza, out: &mut Vec<u8>) -> bool {
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
    push_attr(out, "xmlns", NS_CLIENT);
    push_attr(out, "type", "result");
    push_attr(out, "id", id);
    if let Some(from) = from {
        push_attr(out, "from", &from.to_string());
    }
    if let Some(to) = to {
        push_attr(out, "to", &to.to_string());
    }
    out.extend_from_slice(b"/>");
    true
}

/// The narrowest fast path, with no XML parser at all: an IBB data iq in exactly the shape
/// [`serialize_fast`] writes, `<iq xmlns='jabber:client' type='set' id='…' from='…'
/// to='…'><data xmlns='http://jabber.org/protocol/ibb' seq='…' sid='…'>RUN</data></iq>`
/// (`from` and `to` optional, attributes in any order, each at most once), where every
/// attribute value is printable ASCII without `& < > ' "` (so it has no entity, no
/// normalization and no markup meaning) and RUN is valid base64. The stanza is built
/// directly. Anything else, and any JID that does not parse, is `None`: the caller takes the
/// parser-based paths, which give the general path's result or error.
pub(super) fn parse_data_iq(bytes: &[u8]) -> Option<Stanza> {
    const TAIL: &[u8] = b"</data></iq>";
    let body = bytes.strip_suffix(TAIL)?;
    let mut c = Cursor(body);
    c.literal(b"<iq xmlns='jabber:client' type='set'")?;
    let (mut id, mut from, mut to) = (None, None, None);
    while c.literal(b">").is_none() {
        let (name, value) = c.attr()?;
        let slot = match name {
            b"id" => &mut id,
            b"from" => &mut from,
            b"to" => &mut to,
            _ => return None,
        };
        if slot.replace(value).is_some() {
            return None;
        }
    }
    c.literal(b"<data xmlns='http://jabber.org/protocol/ibb'")?;
    let (mut seq, mut sid) = (None, None);
    while c.literal(b">").is_none() {
        let (name, value) = c.attr()?;
        let slot = match name {
            b"seq" => &mut seq,
            b"sid" => &mut sid,
            _ => return None,
        };
        if slot.replace(value).is_some() {
            return None;
        }
    }
    let run = c.0;
    if run.len() < FAST_MIN || base64_simd::STANDARD.check(run).is_err() {
        return None;
    }
    let jid = |v: Option<&str>| -> Option<Option<jid::Jid>> {
        v.map_or(Some(None), |v| jid::Jid::new(v).ok().map(Some))
    };
    let (from, to) = (jid(from)?, jid(to)?);
    let mut payload = Element::builder("data", NS_IBB)
        .attr(minidom::rxml::xml_ncname!("seq").into(), seq?)
        .attr(minidom::rxml::xml_ncname!("sid").into(), sid?)
        .build();
    // Valid base64 is ASCII: this cannot fail.
    payload.append_text_node(std::str::from_utf8(run).ok()?.to_owned());
    Some(Stanza::Iq(Iq::Set {
        from,
        to,
        id: id?.to_owned(),
        payload,
    }))
}

/// The bytes [`parse_data_iq`] has not consumed yet.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn literal(&mut self, lit: &[u8]) -> Option<()> {
        self.0 = self.0.strip_prefix(lit)?;
        Some(())
    }

    /// ` name='value'` with a plain value (see [`parse_data_iq`]).
    fn attr(&mut self) -> Option<(&'a [u8], &'a str)> {
        self.literal(b" ")?;
        let eq = self.0.iter().position(|&b| b == b'=')?;
        let name = &self.0[..eq];
        self.0 = &self.0[eq..];
        self.literal(b"='")?;
        let end = self.0.iter().position(|&b| b == b'\'')?;
        let value = &self.0[..end];
        if !value
            .iter()
            .all(|&b| (0x20..0x7f).contains(&b) && !matches!(b, b'&' | b'<' | b'>' | b'"'))
        {
            return None;
        }
        self.0 = &self.0[end + 1..];
        Some((name, std::str::from_utf8(value).ok()?))
    }
}
