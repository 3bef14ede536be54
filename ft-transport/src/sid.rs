//! The stream id every file-transfer XEP shares: one type, one contract.
//!
//! XEP-0095 names it the `id` of `<si/>` and reuses it as the `sid` of the bytestream that
//! follows (XEP-0065 `<query sid/>`, XEP-0047 `<open sid/>`, `<data sid/>`, `<close sid/>`),
//! so SI, S5B, IBB and the facade all hold this one [`Sid`].

use std::fmt;
use std::str::FromStr;

/// The longest sid accepted, in bytes (UTF-8).
///
/// 128 is what BAD-INPUT E4 allows a proxy activation and what every client we know stays
/// far below (slixmpp's UUIDs are 36, Smack's `jsi_…` about 24, Pidgin's `purple…` 14, ours
/// 16). It bounds what a hostile peer makes us hash (S5B's DST.ADDR), store and key sessions on.
pub const MAX_SID_LEN: usize = 128;

/// A stream id: 1 to [`MAX_SID_LEN`] bytes of XML `NameChar`s (an `NMTOKEN`).
///
/// XEP-0047 §2.1 types `sid` as an NMTOKEN; XEP-0065 and XEP-0095 call it opaque and unique.
/// One contract for all three: non-empty, at most 128 bytes, and only characters XML 1.0
/// allows in an `NMTOKEN` (letters and digits of any script, `.`, `-`, `_`, `:`, the
/// combining marks). That accepts every sid real clients send (UUIDs, `jsi_33fe66c647209`,
/// `purple69ca5fc8`, `vxf9n471bn46`) and refuses what BAD-INPUT F2 / E4 call hostile:
/// empty, overlong, whitespace, control characters, markup (`<`, `&`, quotes).
///
/// See [XEP-0047 §2.1](https://xmpp.org/extensions/xep-0047.html#create),
/// [XEP-0065 §5.2](https://xmpp.org/extensions/xep-0065.html#direct-proto-request) and
/// [XEP-0095 §3.1](https://xmpp.org/extensions/xep-0095.html#protocol).
///
/// ```
/// use ft_transport::{InvalidSid, Sid};
///
/// let sid = Sid::new("jsi_5471441136722873260").unwrap();
/// assert_eq!(sid.as_str(), "jsi_5471441136722873260");
/// assert_eq!(Sid::new(""), Err(InvalidSid::Empty));
/// assert_eq!(Sid::new("a b"), Err(InvalidSid::BadChar(' ')));
/// assert_eq!("x".repeat(129).parse::<Sid>(), Err(InvalidSid::TooLong(129)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid(String);

/// Why a string is not a [`Sid`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidSid {
    /// The sid is empty (or the attribute was empty).
    #[error("empty sid")]
    Empty,
    /// The sid is longer than [`MAX_SID_LEN`] bytes.
    #[error("sid of {0} bytes exceeds the limit {MAX_SID_LEN}")]
    TooLong(usize),
    /// The sid holds a character an `NMTOKEN` does not allow.
    #[error("sid contains {0:?}, not an xml name character")]
    BadChar(char),
}

impl Sid {
    /// A sid from a string, checked against the contract above.
    pub fn new(s: impl Into<String>) -> Result<Self, InvalidSid> {
        let s = s.into();
        check(&s)?;
        Ok(Self(s))
    }

    /// The sid as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The sid as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

fn check(s: &str) -> Result<(), InvalidSid> {
    if s.is_empty() {
        return Err(InvalidSid::Empty);
    }
    if s.len() > MAX_SID_LEN {
        return Err(InvalidSid::TooLong(s.len()));
    }
    match s.chars().find(|&c| !is_name_char(c)) {
        Some(c) => Err(InvalidSid::BadChar(c)),
        None => Ok(()),
    }
}

/// XML 1.0 (fifth edition) `NameChar`, production [4a].
fn is_name_char(c: char) -> bool {
    #[rustfmt::skip]
    const RANGES: &[(char, char)] = &[
        ('\u{C0}', '\u{D6}'), ('\u{D8}', '\u{F6}'), ('\u{F8}', '\u{2FF}'),
        ('\u{300}', '\u{36F}'), ('\u{370}', '\u{37D}'), ('\u{37F}', '\u{1FFF}'),
        ('\u{200C}', '\u{200D}'), ('\u{203F}', '\u{2040}'), ('\u{2070}', '\u{218F}'),
        ('\u{2C00}', '\u{2FEF}'), ('\u{3001}', '\u{D7FF}'), ('\u{F900}', '\u{FDCF}'),
        ('\u{FDF0}', '\u{FFFD}'), ('\u{10000}', '\u{EFFFF}'),
    ];
    c.is_ascii_alphanumeric()
        || matches!(c, ':' | '_' | '-' | '.' | '\u{B7}')
        || RANGES.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Sid {
    type Err = InvalidSid;

    fn from_str(s: &str) -> Result<Self, InvalidSid> {
        Self::new(s)
    }
}

impl TryFrom<String> for Sid {
    type Error = InvalidSid;

    fn try_from(s: String) -> Result<Self, InvalidSid> {
        Self::new(s)
    }
}

impl TryFrom<&str> for Sid {
    type Error = InvalidSid;

    fn try_from(s: &str) -> Result<Self, InvalidSid> {
        Self::new(s)
    }
}

impl AsRef<str> for Sid {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Sid {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Sid {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl From<Sid> for String {
    fn from(sid: Sid) -> Self {
        sid.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_real_clients_send_parse() {
        for s in [
            "s",
            "vxf9n471bn46",
            "jsi_5471441136722873260",
            "82B0C697-C1DE-93F9-103E-481C8E7A3BD8",
            "purple69ca5fc8",
            "MsVtTkTuwqKQhMBxUsuM66qLgEG9r4Cr",
            "a.b:c",
            "ünïcødé",
        ] {
            assert_eq!(Sid::new(s).unwrap().as_str(), s);
        }
        assert!(Sid::new("x".repeat(MAX_SID_LEN)).is_ok());
    }

    #[test]
    fn hostile_sids_are_refused() {
        assert_eq!(Sid::new(""), Err(InvalidSid::Empty));
        assert_eq!(
            Sid::new("x".repeat(MAX_SID_LEN + 1)),
            Err(InvalidSid::TooLong(MAX_SID_LEN + 1))
        );
        for (s, c) in [
            ("s 1", ' '),
            ("a\nb", '\n'),
            ("a\0", '\0'),
            ("<x/>", '<'),
            ("a&b", '&'),
            ("a'b", '\''),
            ("a/b", '/'),
        ] {
            assert_eq!(Sid::new(s), Err(InvalidSid::BadChar(c)), "{s:?}");
        }
    }
}
