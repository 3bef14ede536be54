//! The XML stream of an XMPP session as a [tokio-util codec](tokio_util::codec): a strict,
//! bounded [`Decoder`] yielding [`Incoming`] stanzas and an [`Encoder`] of [`Stanza`]s, with
//! a parser-less path for IBB `<data/>` in both directions (feature `codec`).
//!
//! The [`xmpp`](crate::xmpp) adapters run it on the connection once tokio-xmpp has logged
//! in; it works on any byte stream (a raw loopback stream without a server, for one).
//!
//! # Framing
//!
//! After the `<stream:stream>` header, a byte scanner finds where each top-level element
//! ends (tags, quoted attribute values, CDATA); the element's bytes are then parsed on their
//! own with the stream's namespaces in scope. The stream is strict and bounded:
//!
//! * comments, processing instructions and DTDs are refused (`restricted-xml`, RFC 6120
//!   §11.1), and so is text between stanzas (`not-well-formed`);
//! * an element larger than [`XmlCodec::with_max_element`] (default
//!   [`DEFAULT_MAX_ELEMENT`], 1 MiB) or nested deeper than [`XmlCodec::with_max_depth`]
//!   (default [`DEFAULT_MAX_DEPTH`]) is refused (`policy-violation`) before it is parsed,
//!   so a peer that never closes an element cannot make the reader buffer without bound;
//! * a `<stream:error/>` from the peer ends the stream as [`CodecError::StreamError`],
//!   `</stream:stream>` as [`Incoming::End`].
//!
//! Every error is fatal to the stream: [`CodecError::condition`] gives the stream error to
//! close it with. A single stanza that is well-formed XML but not a stanza xmpp-parsers
//! accepts is not: [`Incoming::Malformed`] hands it on for an answer
//! ([`Malformed::bad_request`]), after the repair of [`lenient`](crate::lenient) (Spark's
//! `type='MODIFY'` errors) was tried.
//!
//! # The `<data/>` fast path
//!
//! A general DOM parse validates and copies every character of text, which caps an IBB
//! stream near 130 MB/s. The IBB payload is almost all base64 text, so both directions have
//! a strict fast path:
//!
//! * **parse**: a data iq in exactly the shape the serializer writes (or Prosody relays),
//!   with plain attribute values and valid base64, is read without any XML parser. Failing
//!   that, when an element ends exactly in `</data></iq>` or `</data></message>`, the run of
//!   base64-alphabet bytes (`A–Z a–z 0–9 + / =`) just before `</data>` is cut out, the rest
//!   (a few hundred bytes) goes through the ordinary parser and conversion, and the cut text
//!   is appended to the `<data/>` payload afterwards, so the conversion never copies the
//!   text. Alphabet bytes have no markup, entity or normalization meaning in XML, and the
//!   `</data>` right before the root's end tag closes the root's last child, so the result is
//!   the stanza the general parser builds, well-formedness checks included. Where the stanza
//!   would not keep that child as its payload, or anything else differs, it parses the
//!   general way.
//! * **serialize**: an iq `set` or a message whose only payload is an IBB `<data/>` with
//!   alphabet-only text is written directly, with attribute values escaped
//!   ([`XmlCodec::encode_parts`] keeps its text in the stanza, for one vectored write); an
//!   `<iq type='result'/>` without payload (the acknowledgement) is written directly too;
//!   anything else goes through minidom.
//!
//! The unit tests check that every accepted fast-path variant gives the general path's
//! stanza, and that everything else takes the general path.
//!
//! # Example
//!
//! ```
//! use bytes::BytesMut;
//! use ft_transport::codec::{Incoming, XmlCodec, stream_header};
//! use tokio_util::codec::{Decoder, Encoder};
//! use xmpp_parsers::{iq::Iq, ping::Ping, stanza::Stanza};
//!
//! let mut codec = XmlCodec::client();
//! let mut wire = BytesMut::from(stream_header(None).as_str());
//! let ping = Stanza::Iq(Iq::from_get("p1", Ping));
//! codec.encode(&ping, &mut wire).unwrap();
//! let Some(Incoming::Stanza(got)) = codec.decode(&mut wire).unwrap() else { panic!() };
//! assert_eq!(got, ping);
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use minidom::Element;
use tokio_util::codec::{Decoder, Encoder};
#[cfg(test)]
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;
#[cfg(test)]
use xmpp_parsers::stream_error::DefinedCondition;

mod error;
mod fast;
mod frame;
mod incoming;
mod serialize;
#[cfg(test)]
mod tests;
mod xml_log;

pub use error::CodecError;
use fast::parse_fast_stanza;
use frame::{Found, Scan, find_seq, scan, tag_end};
use incoming::classify;
pub use incoming::{Incoming, Malformed};
#[cfg(test)]
use serialize::renamespace;
use serialize::serialize_to;
pub use serialize::{EncodedStanza, escape, serialize, serialize_general};
pub(crate) use xml_log::Framer;
pub use xml_log::{Direction, XmlLog, redact};
#[cfg(test)]
use xmpp_parsers::stanza_error::{DefinedCondition as StanzaCondition, ErrorType};

/// Namespace of the stream element.
pub const NS_STREAM: &str = "http://etherx.jabber.org/streams";
/// Default namespace of a client stream, and of every [`Stanza`] xmpp-parsers builds.
pub const NS_CLIENT: &str = "jabber:client";
/// Default namespace of a XEP-0114 component stream.
pub const NS_COMPONENT: &str = "jabber:component:accept";
/// The IBB namespace, whose `<data/>` has the fast path.
pub const NS_IBB: &str = "http://jabber.org/protocol/ibb";

/// Largest top-level element accepted by default: 1 MiB, room for an IBB `<data/>` at the
/// maximum block size (about 87 kB) many times over.
pub const DEFAULT_MAX_ELEMENT: usize = 1 << 20;

/// Deepest nesting inside a top-level element accepted by default (the stanza itself is
/// depth 1). Real stanzas stay under 10; this leaves room for forms and forwarded stanzas.
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// Spare room the decoder asks for while an element is incomplete, so that a 64 KiB IBB
/// chunk arrives in a few large reads.
const READ_RESERVE: usize = 256 * 1024;

/// The header a client stream opens with (`to` the server's domain, if given).
pub fn stream_header(to: Option<&str>) -> String {
    let to = to.map_or_else(String::new, |t| format!(" to='{}'", escape(t)));
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAM}' \
         version='1.0'{to}>"
    )
}

/// Where the decoder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the peer's `<stream:stream>` header.
    Header,
    /// Between top-level elements.
    Body,
    /// After `</stream:stream>`.
    Ended,
}

/// The codec: decodes the peer's stream into [`Incoming`] elements and encodes our
/// [`Stanza`]s. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct XmlCodec {
    state: State,
    scan: Scan,
    consumed: u64,
    max_element: usize,
    max_depth: usize,
    prefixes: BTreeMap<Option<String>, String>,
    /// The stream's default namespace (what stanzas are written in).
    wire_ns: &'static str,
    fast: bool,
    fast_hits: u64,
    /// Where every decoded element is logged, if anywhere.
    log: Option<Arc<dyn XmlLog>>,
}

impl XmlCodec {
    fn new(wire_ns: &'static str) -> Self {
        Self {
            state: State::Header,
            scan: Scan::default(),
            consumed: 0,
            max_element: DEFAULT_MAX_ELEMENT,
            max_depth: DEFAULT_MAX_DEPTH,
            prefixes: BTreeMap::new(),
            wire_ns,
            fast: true,
            fast_hits: 0,
            log: None,
        }
    }

    /// A codec for a client stream (`jabber:client`), which expects the peer's stream
    /// header first.
    pub fn client() -> Self {
        Self::new(NS_CLIENT)
    }

    /// A codec for a XEP-0114 component stream (`jabber:component:accept`), which expects
    /// the peer's stream header first. Stanzas are read into and written from
    /// xmpp-parsers' `jabber:client` types.
    pub fn component() -> Self {
        Self::new(NS_COMPONENT)
    }

    /// The peer's stream header was already read (by tokio-xmpp's login, say): decode
    /// top-level elements from the first byte on, with the stream's default namespace and
    /// the `stream` prefix in scope.
    #[must_use]
    pub fn header_received(mut self) -> Self {
        self.prefixes = [
            (None, self.wire_ns.to_owned()),
            (Some("stream".to_owned()), NS_STREAM.to_owned()),
        ]
        .into();
        self.alias_component();
        self.state = State::Body;
        self
    }

    /// The largest top-level element accepted, in bytes.
    #[must_use]
    pub fn with_max_element(mut self, limit: usize) -> Self {
        self.max_element = limit;
        self
    }

    /// The deepest nesting accepted inside a top-level element (the element is depth 1).
    #[must_use]
    pub fn with_max_depth(mut self, limit: usize) -> Self {
        self.max_depth = limit.max(1);
        self
    }

    /// Whether the `<data/>` fast path of the parse may be taken (default `true`; `false`
    /// for comparisons). The serializer's fast paths are always on.
    #[must_use]
    pub fn with_fast_path(mut self, fast: bool) -> Self {
        self.fast = fast;
        self
    }

    /// Hands every element the decoder reads (and the peer's stream header and end) to
    /// `log`, [`redact`]ed, as [`Direction::In`]. Off by default; when off nothing is copied.
    #[must_use]
    pub fn with_xml_log(mut self, log: Option<Arc<dyn XmlLog>>) -> Self {
        self.log = log;
        self
    }

    /// Expects a new stream header from the peer (the stream restart after SASL or
    /// STARTTLS, RFC 6120 §4.3.3). Bytes already buffered stay and are read as its start.
    pub fn restart(&mut self) {
        self.state = State::Header;
        self.scan = Scan::default();
        self.prefixes.clear();
    }

    /// How many stanzas took the `<data/>` fast path of the parse so far.
    pub fn fast_hits(&self) -> u64 {
        self.fast_hits
    }

    /// Serializes `stanza` for this stream with the fast paths, keeping an IBB `<data/>`
    /// text inside the stanza (see [`EncodedStanza::parts`]).
    pub fn encode_parts(&self, stanza: Stanza) -> EncodedStanza {
        EncodedStanza::new(stanza, self.wire_ns)
    }

    /// Serializes `element` as it is, in its own namespace (for tests that must put what a
    /// broken peer sends on the wire).
    pub fn encode_element(&self, element: &Element) -> EncodedStanza {
        EncodedStanza::element(element)
    }

    /// Parses one complete top-level element (its bytes, as the decoder would frame them)
    /// the way [`Decoder::decode`] does, for benchmarks of the parse step alone.
    pub fn decode_element(&mut self, bytes: &[u8]) -> Result<Incoming, CodecError> {
        if self.state == State::Header {
            let codec = std::mem::replace(self, Self::client());
            *self = codec.header_received();
        }
        if self.fast
            && let Some(stanza) = parse_fast_stanza(bytes, &self.prefixes)?
        {
            self.fast_hits += 1;
            return Ok(Incoming::Stanza(stanza));
        }
        let el = check_stream_error(parse_general(bytes, &self.prefixes)?)?;
        Ok(classify(el))
    }

    /// [`Self::decode_element`] for an element that must be a valid stanza.
    pub fn parse_stanza(&mut self, bytes: &[u8]) -> Result<Stanza, CodecError> {
        match self.decode_element(bytes)? {
            Incoming::Stanza(s) => Ok(s),
            Incoming::Malformed(m) => Err(CodecError::NotAStanza(format!(
                "<{}/>: {}",
                m.name, m.reason
            ))),
            Incoming::Element(e) => Err(CodecError::NotAStanza(format!("<{}/>", e.name()))),
            Incoming::End => Err(CodecError::NotAStanza("</stream:stream>".to_owned())),
        }
    }

    /// On a component stream, stanzas are parsed as `jabber:client` (what xmpp-parsers
    /// reads).
    fn alias_component(&mut self) {
        if let Some(ns) = self.prefixes.get_mut(&None)
            && ns == NS_COMPONENT
        {
            *ns = NS_CLIENT.to_owned();
        }
    }

    fn advance(&mut self, buf: &mut BytesMut, n: usize) {
        buf.advance(n);
        self.consumed += n as u64;
        self.scan = Scan::default();
    }

    fn reserve(buf: &mut BytesMut) {
        if buf.capacity() - buf.len() < READ_RESERVE / 4 {
            buf.reserve(READ_RESERVE);
        }
    }

    /// Reads the peer's `<?xml?>` declaration (optional) and `<stream:stream>` header;
    /// `false` while incomplete.
    fn decode_header(&mut self, buf: &mut BytesMut) -> Result<bool, CodecError> {
        loop {
            let ws = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            self.advance(buf, ws);
            if buf.starts_with(b"<?xml") {
                if let Some(end) = find_seq(buf, b"?>") {
                    self.advance(buf, end + 2);
                    continue;
                }
            } else if !buf.is_empty() && buf[0] != b'<' {
                return Err(CodecError::BadHeader);
            } else if buf.len() >= 2
                && let Some(end) = tag_end(buf, 1)
            {
                let tag = std::str::from_utf8(&buf[..=end])
                    .map_err(|_| CodecError::BadHeader)?
                    .to_owned();
                self.advance(buf, end + 1);
                if let Some(log) = &self.log {
                    log.record(Direction::In, &tag);
                }
                self.accept_header(&tag)?;
                return Ok(true);
            }
            if buf.len() > self.max_element {
                return Err(CodecError::TooLarge {
                    limit: self.max_element,
                });
            }
            return Ok(false);
        }
    }

    fn accept_header(&mut self, tag: &str) -> Result<(), CodecError> {
        if !tag.starts_with("<stream:stream") {
            return Err(CodecError::BadHeader);
        }
        // Parse the header as an empty element to read its namespace declarations.
        let closed = format!("{tag}</stream:stream>");
        let elem: Element = closed
            .parse()
            .map_err(|e: minidom::Error| CodecError::NotWellFormed(e.to_string()))?;
        if elem.name() != "stream" || elem.ns() != NS_STREAM {
            return Err(CodecError::BadHeader);
        }
        let mut prefixes = BTreeMap::new();
        for (prefix, ns) in elem.prefixes.declared_prefixes() {
            prefixes.insert(prefix.clone(), ns.clone());
        }
        match prefixes.get(&None) {
            None => {
                prefixes.insert(None, self.wire_ns.to_owned());
            }
            Some(ns) if ns == self.wire_ns => {}
            Some(_) => return Err(CodecError::BadHeader),
        }
        self.prefixes = prefixes;
        self.alias_component();
        self.state = State::Body;
        Ok(())
    }
}

impl Decoder for XmlCodec {
    type Item = Incoming;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Incoming>, CodecError> {
        match self.state {
            State::Header => {
                if !self.decode_header(buf)? {
                    Self::reserve(buf);
                    return Ok(None);
                }
            }
            State::Body => {}
            State::Ended => {
                let n = buf.len();
                self.advance(buf, n);
                return Ok(None);
            }
        }
        match scan(buf, &mut self.scan, self.consumed, self.max_depth)? {
            Found::Element(start, end) => {
                if let Some(log) = &self.log {
                    log.record(Direction::In, &redact(&buf[start..end]));
                }
                let item = self.decode_element(&buf[start..end]);
                self.advance(buf, end);
                item.map(Some)
            }
            Found::StreamEnd(end) => {
                if let Some(log) = &self.log {
                    log.record(Direction::In, "</stream:stream>");
                }
                self.advance(buf, end);
                self.state = State::Ended;
                Ok(Some(Incoming::End))
            }
            Found::Incomplete => {
                match self.scan.start {
                    // Only whitespace so far (keepalives): drop it.
                    None => {
                        let n = self.scan.pos;
                        self.advance(buf, n);
                    }
                    Some(start) if buf.len() - start > self.max_element => {
                        return Err(CodecError::TooLarge {
                            limit: self.max_element,
                        });
                    }
                    Some(_) => Self::reserve(buf),
                }
                Ok(None)
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Incoming>, CodecError> {
        match self.decode(buf)? {
            Some(item) => Ok(Some(item)),
            None if buf.iter().all(u8::is_ascii_whitespace) => Ok(None),
            None => Err(CodecError::UnexpectedEof),
        }
    }
}

impl Encoder<&Stanza> for XmlCodec {
    type Error = CodecError;

    fn encode(&mut self, stanza: &Stanza, dst: &mut BytesMut) -> Result<(), CodecError> {
        let mut out = Vec::new();
        serialize_to(stanza, self.wire_ns, &mut out);
        dst.extend_from_slice(&out);
        Ok(())
    }
}

impl Encoder<Stanza> for XmlCodec {
    type Error = CodecError;

    fn encode(&mut self, stanza: Stanza, dst: &mut BytesMut) -> Result<(), CodecError> {
        let encoded = self.encode_parts(stanza);
        dst.reserve(encoded.len());
        for part in encoded.parts() {
            dst.extend_from_slice(part);
        }
        Ok(())
    }
}

/// A stream error from the peer as an error; any other element unchanged.
fn check_stream_error(elem: Element) -> Result<Element, CodecError> {
    if elem.name() == "error" && elem.ns() == NS_STREAM {
        let cond = elem
            .children()
            .next()
            .map_or_else(|| "undefined".to_owned(), |c| c.name().to_owned());
        return Err(CodecError::StreamError(cond));
    }
    Ok(elem)
}

/// Converts a parsed top-level element to a stanza, strictly (for the fast path's rest).
fn stanza_from_element(elem: Element) -> Result<Stanza, CodecError> {
    let name = elem.name().to_owned();
    Stanza::try_from(elem).map_err(|e| CodecError::NotAStanza(format!("<{name}/>: {e}")))
}

fn parse_general(
    bytes: &[u8],
    prefixes: &BTreeMap<Option<String>, String>,
) -> Result<Element, CodecError> {
    Element::from_reader_with_prefixes(bytes, prefixes.clone())
        .map_err(|e| CodecError::NotWellFormed(e.to_string()))
}
