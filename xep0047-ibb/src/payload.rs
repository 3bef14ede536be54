//! The XEP-0047 wire payloads: `<open/>`, `<data/>` and `<close/>`.
//!
//! Parsing is written by hand over [`minidom::Element`] rather than with the xso derives of
//! `xmpp_parsers::ibb`, for two reasons: every rejected input gets its own typed
//! [`PayloadError`] (the derives only give a string), and the data path decodes base64 with
//! base64-simd straight from the element's text, without an intermediate copy.
//!
//! # Base64 strictness
//!
//! Chunks are decoded per [RFC 4648 §4](https://www.rfc-editor.org/rfc/rfc4648#section-4)
//! as [XEP-0047 §8](https://xmpp.org/extensions/xep-0047.html#sec) demands: any character
//! outside the alphabet is rejected, `=` is only accepted as padding at the very end, and the
//! length (without whitespace) must be a multiple of four.
//!
//! **Documented tolerance:** XML whitespace (space, tab, CR, LF) between base64 characters is
//! ignored. The XEP's own examples wrap the text over several lines, and whitespace cannot
//! carry a covert channel that survives XML canonicalisation anyway. Most clients send none,
//! and for them the fast path decodes the text in place without copying it first.

use minidom::Element;

use crate::error::PayloadError;

/// The IBB namespace, `http://jabber.org/protocol/ibb`.
pub const NS_IBB: &str = "http://jabber.org/protocol/ibb";

/// The largest block-size the XEP allows (§2.1: "MUST NOT be greater than 65535").
pub const MAX_BLOCK_SIZE: u16 = u16::MAX;

/// A session id, the `sid` attribute that ties `<open/>`, `<data/>` and `<close/>` together:
/// the one [`ft_transport::Sid`] every xft crate shares (an NMTOKEN of 1 to 128 bytes).
///
/// See [XEP-0047 §2.1](https://xmpp.org/extensions/xep-0047.html#create).
pub use ft_transport::Sid;

/// Which stanza carries the `<data/>` chunks (the `stanza` attribute of `<open/>`).
///
/// See [XEP-0047 §2.1](https://xmpp.org/extensions/xep-0047.html#create) and
/// [§4](https://xmpp.org/extensions/xep-0047.html#message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StanzaKind {
    /// `<iq type='set'/>`, acknowledged one by one (the default and the XEP's recommendation).
    #[default]
    Iq,
    /// `<message/>`, never acknowledged.
    Message,
}

impl StanzaKind {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Iq => "iq",
            Self::Message => "message",
        }
    }
}

/// `<open/>`: the initiator asks for a session.
///
/// See [XEP-0047 §2.1](https://xmpp.org/extensions/xep-0047.html#create).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// The largest chunk, in bytes before base64, 1..=65535.
    pub block_size: u16,
    /// The session id.
    pub sid: Sid,
    /// Which stanza carries the data; an absent attribute means [`StanzaKind::Iq`].
    pub stanza: StanzaKind,
}

/// `<data/>`: one chunk, in an iq or a message.
///
/// See [XEP-0047 §2.2](https://xmpp.org/extensions/xep-0047.html#send).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data {
    /// The per-direction counter, starting at 0 and wrapping from 65535 to 0.
    pub seq: u16,
    /// The session id.
    pub sid: Sid,
    /// The decoded bytes.
    pub data: Vec<u8>,
}

/// `<close/>`: either side ends the session.
///
/// See [XEP-0047 §2.3](https://xmpp.org/extensions/xep-0047.html#close).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// The session id.
    pub sid: Sid,
}

/// Any IBB payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// `<open/>`.
    Open(Open),
    /// `<data/>`.
    Data(Data),
    /// `<close/>`.
    Close(Close),
}

impl Payload {
    /// Parses an element: `Ok(None)` if it is not an IBB element at all (so a caller can hand
    /// the stanza on), `Err` if it is one and is malformed.
    pub fn parse(elem: &Element) -> Result<Option<Self>, PayloadError> {
        if !elem.has_ns(NS_IBB) {
            return Ok(None);
        }
        match elem.name() {
            "open" => Open::parse(elem).map(|o| Some(Self::Open(o))),
            "data" => Data::parse(elem).map(|d| Some(Self::Data(d))),
            "close" => Close::parse(elem).map(|c| Some(Self::Close(c))),
            other => Err(PayloadError::UnknownElement(other.to_owned())),
        }
    }

    /// The sid this payload names.
    pub fn sid(&self) -> &Sid {
        match self {
            Self::Open(o) => &o.sid,
            Self::Data(d) => &d.sid,
            Self::Close(c) => &c.sid,
        }
    }

    /// Serializes to an element.
    pub fn to_element(&self) -> Element {
        match self {
            Self::Open(o) => o.to_element(),
            Self::Data(d) => Data::encode(d.seq, &d.sid, &d.data),
            Self::Close(c) => c.to_element(),
        }
    }
}

/// The sid of an IBB element, if it is one and has a sid; used to route a malformed payload.
pub fn peek_sid(elem: &Element) -> Option<Sid> {
    if !elem.has_ns(NS_IBB) {
        return None;
    }
    elem.attr("sid").and_then(|s| Sid::new(s).ok())
}

fn sid_of(elem: &Element) -> Result<Sid, PayloadError> {
    match elem.attr("sid") {
        Some(s) => Ok(Sid::new(s)?),
        None => Err(PayloadError::MissingSid),
    }
}

/// A plain decimal number: ASCII digits only. Rust's `FromStr` also takes a leading `+`
/// (`seq='+1'`, `block-size='+4096'`), which the XEP's `xs:unsignedShort`-style values
/// do not allow and other implementations read differently (BAD-INPUT F1, F4).
fn decimal<T: std::str::FromStr>(raw: &str) -> Option<T> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

impl Open {
    /// Parses `<open/>`.
    pub fn parse(elem: &Element) -> Result<Self, PayloadError> {
        let sid = sid_of(elem)?;
        let raw = elem
            .attr("block-size")
            .ok_or(PayloadError::MissingBlockSize)?;
        let value: u32 =
            decimal(raw).ok_or_else(|| PayloadError::InvalidBlockSize(raw.to_owned()))?;
        let block_size = match u16::try_from(value) {
            Ok(0) | Err(_) => return Err(PayloadError::BlockSizeOutOfRange(value)),
            Ok(v) => v,
        };
        let stanza = match elem.attr("stanza") {
            None | Some("iq") => StanzaKind::Iq,
            Some("message") => StanzaKind::Message,
            Some(other) => return Err(PayloadError::InvalidStanzaKind(other.to_owned())),
        };
        Ok(Self {
            block_size,
            sid,
            stanza,
        })
    }

    /// Serializes `<open/>`; the `stanza` attribute is always written, as Spark and slixmpp
    /// both accept it and it leaves no doubt.
    pub fn to_element(&self) -> Element {
        Element::builder("open", NS_IBB)
            .attr(
                minidom::rxml::xml_ncname!("block-size").into(),
                self.block_size.to_string(),
            )
            .attr(minidom::rxml::xml_ncname!("sid").into(), self.sid.as_str())
            .attr(
                minidom::rxml::xml_ncname!("stanza").into(),
                self.stanza.as_str(),
            )
            .build()
    }
}

impl Data {
    /// Parses `<data/>`, decoding its text.
    pub fn parse(elem: &Element) -> Result<Self, PayloadError> {
        let (seq, sid) = Self::parse_header(elem)?;
        let data = decode_text(elem)?;
        Ok(Self { seq, sid, data })
    }

    /// Parses only `seq` and `sid`, leaving the text alone.
    pub fn parse_header(elem: &Element) -> Result<(u16, Sid), PayloadError> {
        let sid = sid_of(elem)?;
        let raw = elem.attr("seq").ok_or(PayloadError::MissingSeq)?;
        let seq: u16 = decimal(raw).ok_or_else(|| PayloadError::InvalidSeq(raw.to_owned()))?;
        Ok((seq, sid))
    }

    /// Builds a `<data/>` element for `chunk`, base64-encoding it straight into the string
    /// the element keeps (one allocation of the exact size, no intermediate copy).
    pub fn encode(seq: u16, sid: &Sid, chunk: &[u8]) -> Element {
        let text = base64_simd::STANDARD.encode_to_string(chunk);
        let mut elem = Element::builder("data", NS_IBB)
            .attr(minidom::rxml::xml_ncname!("seq").into(), seq.to_string())
            .attr(minidom::rxml::xml_ncname!("sid").into(), sid.as_str())
            .build();
        if !text.is_empty() {
            elem.append_text_node(text);
        }
        elem
    }
}

fn is_xml_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Decodes the text of a `<data/>` element (see the module docs for what is accepted).
///
/// The common case, one text node without whitespace, is decoded straight from the
/// element's string; only if that fails is the text searched for whitespace to drop.
pub fn decode_text(elem: &Element) -> Result<Vec<u8>, PayloadError> {
    let mut out = Vec::new();
    decode_text_into(elem, &mut out)?;
    Ok(out)
}

/// [`decode_text`], appending the decoded bytes to `out` (so that a caller can reuse one
/// buffer for every chunk). On error `out` is left as it was.
pub fn decode_text_into(elem: &Element, out: &mut Vec<u8>) -> Result<(), PayloadError> {
    let mut texts = elem.texts();
    match (texts.next(), texts.next()) {
        (None, _) => return Ok(()),
        (Some(t), None) => match decode_strict_into(t.as_bytes(), out) {
            Ok(()) => return Ok(()),
            Err(e) if !t.bytes().any(is_xml_space) => return Err(e),
            Err(_) => {}
        },
        _ => {}
    }
    let mut joined: Vec<u8> = Vec::new();
    for t in elem.texts() {
        joined.extend(t.bytes().filter(|b| !is_xml_space(*b)));
    }
    decode_strict_into(&joined, out)
}

/// Strict RFC 4648 §4 decoding (padding required, alphabet only, `=` only at the end).
pub fn decode_strict(b64: &[u8]) -> Result<Vec<u8>, PayloadError> {
    let mut out = Vec::new();
    decode_strict_into(b64, &mut out)?;
    Ok(out)
}

/// [`decode_strict`], appending to `out`; on error `out` is left as it was.
pub fn decode_strict_into(b64: &[u8], out: &mut Vec<u8>) -> Result<(), PayloadError> {
    base64_simd::STANDARD
        .decode_append(b64, out)
        .map_err(|_| PayloadError::InvalidBase64)
}

impl Close {
    /// Parses `<close/>`.
    pub fn parse(elem: &Element) -> Result<Self, PayloadError> {
        Ok(Self { sid: sid_of(elem)? })
    }

    /// Serializes `<close/>`.
    pub fn to_element(&self) -> Element {
        Element::builder("close", NS_IBB)
            .attr(minidom::rxml::xml_ncname!("sid").into(), self.sid.as_str())
            .build()
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn invalid_seq_and_block_size_with_a_plus_sign_or_space_are_refused() {
        for bs in ["+4096", " 4096", "4096 ", "-1", "0x10", ""] {
            let e = el(&format!(
                "<open xmlns='http://jabber.org/protocol/ibb' block-size='{bs}' sid='s1'/>"
            ));
            assert!(
                matches!(Open::parse(&e), Err(PayloadError::InvalidBlockSize(_))),
                "{bs:?}"
            );
        }
        for seq in ["+1", " 1", "1 ", "-1", "65536", ""] {
            let e = el(&format!(
                "<data xmlns='http://jabber.org/protocol/ibb' seq='{seq}' sid='s1'>QUJD</data>"
            ));
            assert!(
                matches!(Data::parse(&e), Err(PayloadError::InvalidSeq(_))),
                "{seq:?}"
            );
        }
    }

    use super::*;

    fn el(s: &str) -> Element {
        s.parse().unwrap()
    }

    #[test]
    fn open_round_trips_and_defaults_to_iq() {
        let e = el("<open xmlns='http://jabber.org/protocol/ibb' block-size='4096' sid='s1'/>");
        let open = Open::parse(&e).unwrap();
        assert_eq!(open.block_size, 4096);
        assert_eq!(open.sid.as_str(), "s1");
        assert_eq!(open.stanza, StanzaKind::Iq);
        assert_eq!(Open::parse(&open.to_element()).unwrap(), open);
    }

    #[test]
    fn open_with_message_stanza_is_message() {
        let e = el(
            "<open xmlns='http://jabber.org/protocol/ibb' block-size='1' sid='s' stanza='message'/>",
        );
        assert_eq!(Open::parse(&e).unwrap().stanza, StanzaKind::Message);
    }

    #[test]
    fn open_without_sid_is_missing_sid() {
        let e = el("<open xmlns='http://jabber.org/protocol/ibb' block-size='4096'/>");
        assert_eq!(Open::parse(&e), Err(PayloadError::MissingSid));
    }

    #[test]
    fn open_without_block_size_is_missing_block_size() {
        let e = el("<open xmlns='http://jabber.org/protocol/ibb' sid='s'/>");
        assert_eq!(Open::parse(&e), Err(PayloadError::MissingBlockSize));
    }

    #[test]
    fn open_with_a_sid_that_is_not_an_nmtoken_is_a_bad_sid() {
        // BAD-INPUT F2: bad-request, like every malformed payload.
        let e = el("<open xmlns='http://jabber.org/protocol/ibb' sid='a b' block-size='4096'/>");
        let err = Open::parse(&e).unwrap_err();
        assert_eq!(
            err,
            PayloadError::BadSid(ft_transport::InvalidSid::BadChar(' '))
        );
        let long = format!(
            "<open xmlns='http://jabber.org/protocol/ibb' sid='{}' block-size='4096'/>",
            "x".repeat(129)
        );
        assert_eq!(
            Open::parse(&el(&long)),
            Err(PayloadError::BadSid(ft_transport::InvalidSid::TooLong(129)))
        );
        let e = el("<open xmlns='http://jabber.org/protocol/ibb' sid='' block-size='4096'/>");
        assert_eq!(Open::parse(&e), Err(PayloadError::MissingSid));
    }

    #[test]
    fn open_with_block_size_zero_is_out_of_range() {
        let e = el("<open xmlns='http://jabber.org/protocol/ibb' sid='s' block-size='0'/>");
        assert_eq!(Open::parse(&e), Err(PayloadError::BlockSizeOutOfRange(0)));
    }

    #[test]
    fn open_with_block_size_above_65535_is_out_of_range() {
        let e = el("<open xmlns='http://jabber.org/protocol/ibb' sid='s' block-size='65536'/>");
        assert_eq!(
            Open::parse(&e),
            Err(PayloadError::BlockSizeOutOfRange(65536))
        );
    }

    #[test]
    fn open_with_negative_block_size_is_invalid() {
        let e = el("<open xmlns='http://jabber.org/protocol/ibb' sid='s' block-size='-5'/>");
        assert_eq!(
            Open::parse(&e),
            Err(PayloadError::InvalidBlockSize("-5".into()))
        );
    }

    #[test]
    fn open_with_unknown_stanza_is_invalid_stanza_kind() {
        let e = el(
            "<open xmlns='http://jabber.org/protocol/ibb' sid='s' block-size='4' stanza='presence'/>",
        );
        assert_eq!(
            Open::parse(&e),
            Err(PayloadError::InvalidStanzaKind("presence".into()))
        );
    }

    #[test]
    fn data_round_trips_bytes() {
        let bytes: Vec<u8> = (0..=255).collect();
        let e = Data::encode(7, &Sid::new("s").unwrap(), &bytes);
        let d = Data::parse(&e).unwrap();
        assert_eq!((d.seq, d.sid.as_str(), &d.data[..]), (7, "s", &bytes[..]));
    }

    #[test]
    fn data_without_sid_is_missing_sid() {
        let e = el("<data xmlns='http://jabber.org/protocol/ibb' seq='0'>AAAA</data>");
        assert_eq!(Data::parse(&e), Err(PayloadError::MissingSid));
    }

    #[test]
    fn data_with_seq_outside_u16_is_invalid_seq() {
        let e = el("<data xmlns='http://jabber.org/protocol/ibb' seq='65536' sid='s'>AAAA</data>");
        assert_eq!(
            Data::parse(&e),
            Err(PayloadError::InvalidSeq("65536".into()))
        );
    }

    #[test]
    fn data_without_seq_is_missing_seq() {
        let e = el("<data xmlns='http://jabber.org/protocol/ibb' sid='s'>AAAA</data>");
        assert_eq!(Data::parse(&e), Err(PayloadError::MissingSeq));
    }

    #[test]
    fn data_with_characters_outside_the_alphabet_is_invalid_base64() {
        for bad in ["AA*A", "AAA", "=AAA", "BBBB=CCC", "AA==AA==", "QUJD-A=="] {
            let e = el(&format!(
                "<data xmlns='http://jabber.org/protocol/ibb' seq='0' sid='s'>{bad}</data>"
            ));
            assert_eq!(Data::parse(&e), Err(PayloadError::InvalidBase64), "{bad}");
        }
    }

    #[test]
    fn data_with_line_breaks_is_accepted_as_documented() {
        let e = el(
            "<data xmlns='http://jabber.org/protocol/ibb' seq='0' sid='s'>\n  QUJD\n  REVG\n</data>",
        );
        assert_eq!(Data::parse(&e).unwrap().data, b"ABCDEF");
    }

    #[test]
    fn decoding_into_a_buffer_appends_and_leaves_it_alone_on_error() {
        let mut out = b"xy".to_vec();
        let good = el("<data xmlns='http://jabber.org/protocol/ibb' seq='0' sid='s'>QUJD</data>");
        decode_text_into(&good, &mut out).unwrap();
        assert_eq!(out, b"xyABC");
        let bad = el("<data xmlns='http://jabber.org/protocol/ibb' seq='0' sid='s'>QU*D</data>");
        assert_eq!(
            decode_text_into(&bad, &mut out),
            Err(PayloadError::InvalidBase64)
        );
        assert_eq!(out, b"xyABC");
    }

    #[test]
    fn empty_data_is_an_empty_chunk() {
        let e = el("<data xmlns='http://jabber.org/protocol/ibb' seq='0' sid='s'/>");
        assert!(Data::parse(&e).unwrap().data.is_empty());
    }

    #[test]
    fn close_without_sid_is_missing_sid() {
        let e = el("<close xmlns='http://jabber.org/protocol/ibb'/>");
        assert_eq!(Close::parse(&e), Err(PayloadError::MissingSid));
    }

    #[test]
    fn foreign_element_is_not_ours() {
        let e = el("<ping xmlns='urn:xmpp:ping'/>");
        assert_eq!(Payload::parse(&e), Ok(None));
    }
}
