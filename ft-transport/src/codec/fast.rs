//! The strict `<data/>` fast paths of the parse (see the [module docs](super)).

use std::collections::BTreeMap;

use minidom::Element;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;

use super::frame::{all_b64, is_b64};
use super::{CodecError as XmlStreamError, NS_CLIENT, NS_IBB, parse_general, stanza_from_element};

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
    if let Some(gt) = memchr::memrchr(b'>', &bytes[..end]) {
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

/// The fast path as an element: [`parse_fast_parts`] with the run appended to the root's
/// last child.
#[cfg(test)]
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
    let default_client = prefixes.get(&None).is_some_and(|ns| ns == NS_CLIENT);
    if let Some(stanza) = parse_data_iq(bytes, default_client) {
        return Ok(Some(stanza));
    }
    if let Some(stanza) = parse_empty_result(bytes, default_client) {
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

/// The narrowest fast path, with no XML parser at all: an IBB data iq in exactly the shape
/// [`serialize_fast`](super::serialize) writes or a server such as Prosody relays,
/// `<iq xmlns='jabber:client' type='set' id='…' from='…' to='…'><data
/// xmlns='http://jabber.org/protocol/ibb' seq='…' sid='…'>RUN</data></iq>` (`xmlns` of the
/// iq optional when the stream's default namespace is `jabber:client`, `from` and `to`
/// optional, an `xml:lang` on the iq allowed and dropped as the general path drops it —
/// Prosody stamps the stream's on every stanza it relays —, attributes in any order, each
/// at most once, one space before each), where every
/// attribute value is single-quoted printable ASCII without `& < > ' "` (so it has no
/// entity, no normalization and no markup meaning) and RUN is valid base64. The stanza is
/// built directly. Anything else, and any JID that does not parse, is `None`: the caller
/// takes the parser-based paths, which give the general path's result or error.
pub(super) fn parse_data_iq(bytes: &[u8], default_client: bool) -> Option<Stanza> {
    const TAIL: &[u8] = b"</data></iq>";
    let body = bytes.strip_suffix(TAIL)?;
    let mut c = Cursor(body);
    c.literal(b"<iq")?;
    let [xmlns, type_, id, from, to, _lang] =
        c.attrs([b"xmlns", b"type", b"id", b"from", b"to", b"xml:lang"])?;
    match xmlns {
        Some(NS_CLIENT) => {}
        None if default_client => {}
        _ => return None,
    }
    if type_? != "set" {
        return None;
    }
    c.literal(b"<data")?;
    let [xmlns, seq, sid] = c.attrs([b"xmlns", b"seq", b"sid"])?;
    if xmlns? != NS_IBB {
        return None;
    }
    let run = c.0;
    if run.len() < FAST_MIN || base64_simd::STANDARD.check(run).is_err() {
        return None;
    }
    let (from, to) = (opt_jid(from)?, opt_jid(to)?);
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

/// The acknowledgement, with no XML parser either: an empty `<iq type='result'/>` in the
/// shape [`serialize_empty_result`](super::serialize) writes or Prosody relays (`xmlns`
/// as for [`parse_data_iq`], `id`, optional `from`, `to` and `xml:lang`, any order, plain
/// single-quoted values, `/>` right after the last). Anything else is `None`.
pub(super) fn parse_empty_result(bytes: &[u8], default_client: bool) -> Option<Stanza> {
    let body = bytes.strip_suffix(b"/>")?;
    let mut c = Cursor(body.strip_prefix(b"<iq")?);
    let mut values = [None; 6];
    let names: [&[u8]; 6] = [b"xmlns", b"type", b"id", b"from", b"to", b"xml:lang"];
    while !c.0.is_empty() {
        let (name, value) = c.attr()?;
        let slot = names.iter().position(|n| *n == name)?;
        if values[slot].replace(value).is_some() {
            return None;
        }
    }
    let [xmlns, type_, id, from, to, _lang] = values;
    match xmlns {
        Some(NS_CLIENT) => {}
        None if default_client => {}
        _ => return None,
    }
    if type_? != "result" {
        return None;
    }
    Some(Stanza::Iq(Iq::Result {
        from: opt_jid(from)?,
        to: opt_jid(to)?,
        id: id?.to_owned(),
        payload: None,
    }))
}

/// An optional attribute as an optional JID; `None` when it is there but no JID.
fn opt_jid(v: Option<&str>) -> Option<Option<jid::Jid>> {
    v.map_or(Some(None), |v| jid::Jid::new(v).ok().map(Some))
}

/// The bytes [`parse_data_iq`] has not consumed yet.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    /// The attributes up to and including the tag's `>`, each one of `names` at most once;
    /// `None` for any other attribute or a repeated one.
    fn attrs<const N: usize>(&mut self, names: [&[u8]; N]) -> Option<[Option<&'a str>; N]> {
        let mut values = [None; N];
        while self.literal(b">").is_none() {
            let (name, value) = self.attr()?;
            let slot = names.iter().position(|n| *n == name)?;
            if values[slot].replace(value).is_some() {
                return None;
            }
        }
        Some(values)
    }

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
