//! The stanza console's hook: an [`XmlLog`] is handed every top-level element of a stream in
//! both directions (stream headers, features, SASL and STARTTLS nonzas during login,
//! stanzas afterwards), as text, with secrets and bulk payloads taken out by [`redact`].
//!
//! The [`xmpp`](crate::xmpp) adapters call it when one is set in their options; nothing is
//! formatted or copied when none is (an `Option` test per element).

use std::borrow::Cow;
use std::fmt;

use super::frame::{Found, Scan, find_seq, is_b64, scan, tag_end};

/// Which way an element travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the server (or peer) to us.
    In,
    /// From us to the server.
    Out,
}

impl Direction {
    /// `<<` for inbound, `>>` for outbound.
    pub fn arrow(self) -> &'static str {
        match self {
            Self::In => "<<",
            Self::Out => ">>",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::In => "IN",
            Self::Out => "OUT",
        })
    }
}

/// Receives the XML of a stream, one top-level element at a time.
///
/// `record` is called from the task reading or writing the stream, so it should be quick
/// (a buffered write under a mutex is fine). The text is already [`redact`]ed.
///
/// ```
/// use std::sync::Mutex;
/// use ft_transport::codec::{Direction, XmlLog};
///
/// #[derive(Debug, Default)]
/// struct Collect(Mutex<Vec<String>>);
///
/// impl XmlLog for Collect {
///     fn record(&self, direction: Direction, xml: &str) {
///         self.0.lock().unwrap().push(format!("{} {xml}", direction.arrow()));
///     }
/// }
///
/// let log = Collect::default();
/// log.record(Direction::Out, "<presence/>");
/// assert_eq!(log.0.lock().unwrap()[0], ">> <presence/>");
/// ```
pub trait XmlLog: Send + Sync + fmt::Debug {
    /// One element (or stream header, or `</stream:stream>`) went `direction`.
    fn record(&self, direction: Direction, xml: &str);

    /// Something that happened on the connection besides XML (connected to an address, TLS
    /// established, the stream handed from the login to the session). Ignored by default.
    fn note(&self, _text: &str) {}
}

/// Elements whose text is a secret or a SASL payload, by local name: SASL `<auth/>`,
/// `<response/>`, `<challenge/>`, `<success/>`, the XEP-0114 `<handshake/>` digest, and the
/// `<password/>` and `<digest/>` of XEP-0077 registration and XEP-0078 legacy auth.
const SECRET: &[&str] = &[
    "auth",
    "response",
    "challenge",
    "success",
    "handshake",
    "password",
    "digest",
];

/// The text of `xml` (one element, or several) for a log: the text content of every SASL
/// `<auth/>`, `<response/>`, `<challenge/>` and `<success/>`, XEP-0114 `<handshake/>`, and
/// `<password/>` or `<digest/>` (XEP-0077, XEP-0078) replaced by `[redacted]`, and a `<data/>` holding base64 (IBB, XEP-0231)
/// shortened to `[N base64 chars]`. Elements with child elements keep their text (their
/// children are looked at on their own). Invalid UTF-8 is replaced, not refused.
///
/// ```
/// use ft_transport::codec::redact;
///
/// let data = "<iq type='set'><data xmlns='http://jabber.org/protocol/ibb' seq='3' sid='s'>\
///             QUJD</data></iq>";
/// assert_eq!(
///     redact(data.as_bytes()),
///     "<iq type='set'><data xmlns='http://jabber.org/protocol/ibb' seq='3' sid='s'>\
///      [4 base64 chars]</data></iq>"
/// );
/// let auth = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHB3</auth>";
/// assert_eq!(
///     redact(auth.as_bytes()),
///     "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>[redacted]</auth>"
/// );
/// ```
pub fn redact(xml: &[u8]) -> String {
    let text = String::from_utf8_lossy(xml);
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut pos = 0;
    while let Some(lt) = bytes[pos..]
        .iter()
        .position(|&b| b == b'<')
        .map(|i| pos + i)
    {
        pos = lt + 1;
        let name_len = bytes[pos..]
            .iter()
            .position(|&b| b.is_ascii_whitespace() || b == b'/' || b == b'>')
            .unwrap_or(bytes.len() - pos);
        let name = &text[pos..pos + name_len];
        if name.is_empty() || name.starts_with(['/', '!', '?']) {
            continue;
        }
        let local = name.rsplit(':').next().unwrap_or(name);
        let is_data = local == "data";
        if !is_data && !SECRET.contains(&local) {
            continue;
        }
        let Some(gt) = tag_end(bytes, pos) else {
            break;
        };
        pos = gt + 1;
        if bytes[gt - 1] == b'/' {
            continue;
        }
        let close = format!("</{name}>");
        let Some(end) = find_seq(&bytes[pos..], close.as_bytes()).map(|i| pos + i) else {
            continue;
        };
        let content = &bytes[pos..end];
        if content.is_empty() || content.contains(&b'<') {
            continue;
        }
        let replacement: Cow<'static, str> = if is_data {
            if !content
                .iter()
                .all(|&b| is_b64(b) || b.is_ascii_whitespace())
            {
                continue;
            }
            let chars = content.iter().filter(|b| !b.is_ascii_whitespace()).count();
            format!("[{chars} base64 chars]").into()
        } else {
            "[redacted]".into()
        };
        out.push_str(&text[copied..pos]);
        out.push_str(&replacement);
        copied = end;
        pos = end;
    }
    if copied == 0 {
        return text.into_owned();
    }
    out.push_str(&text[copied..]);
    out
}

/// Largest unfinished element a [`Framer`] keeps; past it the bytes are logged as they are.
const MAX_FRAME: usize = 1 << 20;

/// Cuts a byte stream (one direction of a connection) into the units an [`XmlLog`] gets:
/// the XML declaration, the `<stream:stream>` start tag, each top-level element, and
/// `</stream:stream>`. For the login phase, where tokio-xmpp reads and writes the socket.
#[derive(Debug, Default)]
pub(crate) struct Framer {
    buf: Vec<u8>,
    scan: Scan,
}

impl Framer {
    /// Adds `bytes` and calls `emit` with every unit now complete.
    pub(crate) fn push(&mut self, bytes: &[u8], mut emit: impl FnMut(&[u8])) {
        self.buf.extend_from_slice(bytes);
        loop {
            if self.scan.start.is_none() {
                let ws = self
                    .buf
                    .iter()
                    .take_while(|b| b.is_ascii_whitespace())
                    .count();
                self.take(ws);
            }
            if self.buf.is_empty() {
                return;
            }
            let unit = if self.buf.starts_with(b"<?") {
                find_seq(&self.buf, b"?>").map(|i| i + 2)
            } else if is_stream_start(&self.buf) {
                tag_end(&self.buf, 1).map(|i| i + 1)
            } else {
                match scan(&self.buf, &mut self.scan, 0, usize::MAX) {
                    Ok(Found::Element(_, end) | Found::StreamEnd(end)) => Some(end),
                    Ok(Found::Incomplete) => None,
                    // Not XML we can frame: show it as it is and start afresh.
                    Err(_) => Some(self.buf.len()),
                }
            };
            match unit {
                Some(end) => {
                    emit(&self.buf[..end]);
                    self.take(end);
                }
                None if self.buf.len() > MAX_FRAME => {
                    emit(&self.buf);
                    self.take(self.buf.len());
                }
                None => return,
            }
        }
    }

    fn take(&mut self, n: usize) {
        if n > 0 {
            self.buf.drain(..n);
            self.scan = Scan::default();
        }
    }
}

/// Whether `buf` starts with a `<stream:stream` start tag (any prefix would be legal XML;
/// every server and tokio-xmpp write `stream:`).
fn is_stream_start(buf: &[u8]) -> bool {
    const START: &[u8] = b"<stream:stream";
    buf.starts_with(START)
        && buf
            .get(START.len())
            .is_none_or(|&b| b.is_ascii_whitespace() || b == b'>')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_shortens_ibb_data_and_keeps_the_rest_byte_for_byte() {
        let payload = "A".repeat(5464);
        let xml = format!(
            "<iq xmlns='jabber:client' type='set' id='i1' to='b@x/r'><data \
             xmlns='http://jabber.org/protocol/ibb' seq='3' sid='s1'>{payload}</data></iq>"
        );
        assert_eq!(
            redact(xml.as_bytes()),
            "<iq xmlns='jabber:client' type='set' id='i1' to='b@x/r'><data \
             xmlns='http://jabber.org/protocol/ibb' seq='3' sid='s1'>[5464 base64 chars]</data></iq>"
        );
    }

    #[test]
    fn redact_hides_sasl_handshake_and_password_text() {
        for (xml, want) in [
            (
                "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>Yz1iaXdz</response>",
                "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>[redacted]</response>",
            ),
            (
                "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>cj1meWtv</challenge>",
                "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>[redacted]</challenge>",
            ),
            (
                "<handshake>aaee83c26aeeafcbabeabfcbcd50df997e0a2a1e</handshake>",
                "<handshake>[redacted]</handshake>",
            ),
            (
                "<iq type='set'><query xmlns='jabber:iq:register'><username>a</username>\
                 <password>hunter2</password></query></iq>",
                "<iq type='set'><query xmlns='jabber:iq:register'><username>a</username>\
                 <password>[redacted]</password></query></iq>",
            ),
        ] {
            assert_eq!(redact(xml.as_bytes()), want);
        }
    }

    #[test]
    fn redact_leaves_empty_self_closing_and_non_base64_elements_alone() {
        for xml in [
            "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'></auth>",
            "<message><data xmlns='urn:other'>not base64!</data></message>",
            "<iq><query xmlns='jabber:iq:auth'><auth-extra>x</auth-extra></query></iq>",
            "<message><body>data &lt; password</body></message>",
        ] {
            assert_eq!(redact(xml.as_bytes()), xml);
        }
    }

    #[test]
    fn framer_cuts_headers_elements_and_the_stream_end_across_reads() {
        let wire = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
                     xmlns:stream='http://etherx.jabber.org/streams' id='x' version='1.0'>\
                     <stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\
                     </stream:features> <proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\
                     </stream:stream>";
        for step in [1, 7, wire.len()] {
            let mut framer = Framer::default();
            let mut units = Vec::new();
            for chunk in wire.chunks(step) {
                framer.push(chunk, |u| {
                    units.push(String::from_utf8_lossy(u).into_owned())
                });
            }
            assert_eq!(units.len(), 5, "step {step}: {units:?}");
            assert_eq!(units[0], "<?xml version='1.0'?>");
            assert!(units[1].starts_with("<stream:stream ") && units[1].ends_with("'1.0'>"));
            assert!(units[2].starts_with("<stream:features>"));
            assert!(units[2].ends_with("</stream:features>"));
            assert_eq!(
                units[3],
                "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
            );
            assert_eq!(units[4], "</stream:stream>");
        }
    }

    #[test]
    fn framer_hands_on_what_it_cannot_frame_instead_of_buffering_it() {
        let mut framer = Framer::default();
        let mut units = Vec::new();
        framer.push(b"hello <x/>", |u| units.push(u.to_vec()));
        assert_eq!(units, vec![b"hello <x/>".to_vec()]);
        framer.push(b"<a>", |u| units.push(u.to_vec()));
        assert_eq!(units.len(), 1, "an open element waits for its end");
    }
}
