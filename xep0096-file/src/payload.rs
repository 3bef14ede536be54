//! The `<file/>` and `<range/>` wire types of the SI file-transfer profile.
//!
//! See [XEP-0096 §3](https://xmpp.org/extensions/xep-0096.html#protocol).

use minidom::Element;
use xmpp_parsers::date::DateTime;
use xso::{AsXml, AsXmlText, FromXml};

use crate::error::FileError;

/// `http://jabber.org/protocol/si/profile/file-transfer`, the profile namespace.
pub const NS_FILE_TRANSFER: &str = "http://jabber.org/protocol/si/profile/file-transfer";

/// `<range offset length/>`.
///
/// In an offer, an empty `<range/>` means "I can do ranged transfers". In the answer,
/// `offset` (default 0) and `length` (default: to the end) say which bytes to send.
///
/// See [XEP-0096 §3](https://xmpp.org/extensions/xep-0096.html#protocol).
#[derive(FromXml, AsXml, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[xml(namespace = NS_FILE_TRANSFER, name = "range")]
pub struct Range {
    /// The first byte to send (default 0).
    #[xml(attribute(default))]
    pub offset: Option<u64>,
    /// How many bytes to send from `offset` (default: the rest of the file).
    #[xml(attribute(default))]
    pub length: Option<u64>,
}

impl Range {
    /// A range from `offset` to the end of the file (what a resuming receiver asks for).
    pub fn from_offset(offset: u64) -> Self {
        Self {
            offset: Some(offset),
            length: None,
        }
    }

    /// Whether this range asks for the whole file (no attributes, or offset 0 and no length).
    pub fn is_whole_file(&self) -> bool {
        self.offset.unwrap_or(0) == 0 && self.length.is_none()
    }

    /// The byte span `(offset, length)` this range selects in a file of `size` bytes, or an
    /// error if it reaches past the end.
    pub fn span(&self, size: u64) -> Result<(u64, u64), FileError> {
        let offset = self.offset.unwrap_or(0);
        if offset > size {
            return Err(FileError::RangeOutOfBounds {
                offset,
                length: self.length,
                size,
            });
        }
        let rest = size - offset;
        let length = match self.length {
            None => rest,
            Some(l) if l <= rest => l,
            Some(_) => {
                return Err(FileError::RangeOutOfBounds {
                    offset,
                    length: self.length,
                    size,
                });
            }
        };
        Ok((offset, length))
    }
}

/// `<file xmlns='http://jabber.org/protocol/si/profile/file-transfer' name size date hash>`
/// as an offer carries it.
///
/// `name` and `size` MUST be present in an offer (XEP-0096 §3); the element in an answer
/// has neither and is read with [`FileAnswer`]. A missing `size` is read as "unknown"
/// (QXmpp 1.4 offers an empty file without it, PEERS.md; BAD-INPUT B1): the file then ends
/// where the bytestream ends. A `size` that is there must be a plain decimal `u64`.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS_FILE_TRANSFER, name = "file")]
pub struct File {
    /// The file's name as the sender gives it. Never use it as a path: see
    /// [`safe_file_name`](crate::safe_file_name).
    #[xml(attribute)]
    pub name: String,
    /// The size in bytes; `None` when the offer left it out (see above).
    #[xml(attribute(default))]
    pub size: Option<u64>,
    /// The last modification time as sent (an XEP-0082 date-time; read it with
    /// [`File::parsed_date`], which also accepts the seconds-less form XEP-0096's own
    /// examples use). Kept as text so a date a peer got wrong never costs the transfer.
    #[xml(attribute(default))]
    pub date: Option<String>,
    /// The MD5 of the content, in hex (QXmpp checks it; see [`File::md5`]).
    #[xml(attribute(default))]
    pub hash: Option<String>,
    /// A description for the user.
    #[xml(extract(default, fields(text(type_ = String))))]
    pub desc: Option<String>,
    /// An empty `<range/>`: the sender can do ranged transfers.
    #[xml(child(default))]
    pub range: Option<Range>,
}

impl File {
    /// A file with a name and size and nothing else.
    pub fn new(name: impl Into<String>, size: u64) -> Self {
        Self {
            name: name.into(),
            size: Some(size),
            date: None,
            hash: None,
            desc: None,
            range: None,
        }
    }

    /// Sets the MD5 (written as lower-case hex).
    #[must_use]
    pub fn with_md5(mut self, md5: [u8; 16]) -> Self {
        self.hash = Some(hex::encode(md5));
        self
    }

    /// Sets the description.
    #[must_use]
    pub fn with_desc(mut self, desc: impl Into<String>) -> Self {
        self.desc = Some(desc.into());
        self
    }

    /// Sets the date.
    #[must_use]
    pub fn with_date(mut self, date: &DateTime) -> Self {
        self.date = date.as_xml_text().ok().map(|d| d.into_owned());
        self
    }

    /// The `date` attribute as a date-time, or `None` if absent or unreadable. Accepts
    /// XEP-0082 date-times and the form without seconds (`2005-11-29T11:21Z`, XEP-0096
    /// Example 10).
    pub fn parsed_date(&self) -> Option<DateTime> {
        let raw = self.date.as_deref()?.trim();
        if let Ok(d) = raw.parse() {
            return Some(d);
        }
        // YYYY-MM-DDTHH:MM followed by Z or an offset: insert ":00".
        let (head, tail) = raw.split_at_checked(16)?;
        if head.as_bytes().get(13) == Some(&b':') && !tail.starts_with(':') {
            return format!("{head}:00{tail}").parse().ok();
        }
        None
    }

    /// Announces that we can send any range (an empty `<range/>`).
    #[must_use]
    pub fn with_ranged(mut self) -> Self {
        self.range = Some(Range::default());
        self
    }

    /// The MD5 from the `hash` attribute; `Ok(None)` when absent, an error when it is not
    /// 32 hex digits.
    pub fn md5(&self) -> Result<Option<[u8; 16]>, FileError> {
        let Some(h) = self.hash.as_deref() else {
            return Ok(None);
        };
        let mut out = [0u8; 16];
        hex::decode_to_slice(h.trim(), &mut out).map_err(|_| FileError::BadHash(h.to_owned()))?;
        Ok(Some(out))
    }

    /// Whether the sender announced ranged transfers.
    pub fn supports_ranges(&self) -> bool {
        self.range.is_some()
    }
}

impl TryFrom<&Element> for File {
    type Error = FileError;

    fn try_from(elem: &Element) -> Result<Self, FileError> {
        if !elem.is("file", NS_FILE_TRANSFER) {
            return Err(FileError::NotFile {
                name: elem.name().to_owned(),
                ns: elem.ns(),
            });
        }
        // `FromStr` for u64 takes a leading `+`: `size='+5'` is no XML Schema unsignedLong
        // in the sense other clients read it (BAD-INPUT B2).
        if let Some(size) = elem.attr("size")
            && (size.is_empty() || !size.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(FileError::Malformed(format!(
                "size {size:?} is not a decimal number"
            )));
        }
        // A `hash` that is not 32 hex digits is kept as sent and read as absent
        // (`FileOffer::expected`, BAD-INPUT B10): it does not refuse the offer.
        Self::try_from(elem.clone()).map_err(|e| FileError::Malformed(e.to_string()))
    }
}

/// `<file/>` as an answer carries it: only an optional `<range/>`.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq, Default)]
#[xml(namespace = NS_FILE_TRANSFER, name = "file")]
pub struct FileAnswer {
    /// The range the receiver wants; `None` means the whole file.
    #[xml(child(default))]
    pub range: Option<Range>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(s: &str) -> Element {
        s.parse().unwrap()
    }

    #[test]
    fn full_file_round_trips() {
        let e = el(
            "<file xmlns='http://jabber.org/protocol/si/profile/file-transfer' name='test.txt' size='1022' hash='552da749930852c69ae5d2141d3766b1' date='1969-07-21T02:56:15Z'><desc>hi</desc><range/></file>",
        );
        let f = File::try_from(&e).unwrap();
        assert_eq!(f.name, "test.txt");
        assert_eq!(f.size, Some(1022));
        assert_eq!(f.desc.as_deref(), Some("hi"));
        assert_eq!(
            f.parsed_date(),
            Some("1969-07-21T02:56:15Z".parse().unwrap())
        );
        assert!(f.supports_ranges());
        assert_eq!(
            f.md5().unwrap().map(hex::encode).as_deref(),
            Some("552da749930852c69ae5d2141d3766b1")
        );
        let back = File::try_from(&Element::from(f.clone())).unwrap();
        assert_eq!(back, f);
    }

    #[test]
    fn sizes_past_four_gib_are_kept() {
        let e = el(
            "<file xmlns='http://jabber.org/protocol/si/profile/file-transfer' name='big' size='18446744073709551615'><range offset='8589934592'/></file>",
        );
        let f = File::try_from(&e).unwrap();
        assert_eq!(f.size, Some(u64::MAX));
        assert_eq!(f.range.unwrap().offset, Some(8_589_934_592));
    }

    #[test]
    fn a_file_without_size_has_an_unknown_size() {
        // QXmpp 1.4 offers an empty file this way (BAD-INPUT B1).
        let e = el("<file xmlns='http://jabber.org/protocol/si/profile/file-transfer' name='a'/>");
        let f = File::try_from(&e).unwrap();
        assert_eq!(f.size, None);
        let back = Element::from(f);
        assert_eq!(back.attr("size"), None);
    }

    #[test]
    fn invalid_file_without_name_is_malformed() {
        let e = el("<file xmlns='http://jabber.org/protocol/si/profile/file-transfer' size='1'/>");
        assert!(matches!(File::try_from(&e), Err(FileError::Malformed(_))));
    }

    #[test]
    fn invalid_size_with_a_plus_sign_or_spaces_is_malformed() {
        for size in ["+5", " 5", "5 ", "1e6", "", "123456789012345678901"] {
            let e = el(&format!(
                "<file xmlns='http://jabber.org/protocol/si/profile/file-transfer' name='a' size='{size}'/>"
            ));
            assert!(
                matches!(File::try_from(&e), Err(FileError::Malformed(_))),
                "{size:?}"
            );
        }
    }

    #[test]
    fn invalid_negative_size_is_malformed() {
        let e = el(
            "<file xmlns='http://jabber.org/protocol/si/profile/file-transfer' name='a' size='-1'/>",
        );
        assert!(matches!(File::try_from(&e), Err(FileError::Malformed(_))));
    }

    #[test]
    fn invalid_hash_is_bad_hash() {
        let e = el(
            "<file xmlns='http://jabber.org/protocol/si/profile/file-transfer' name='a' size='1' hash='xyz'/>",
        );
        let f = File::try_from(&e).unwrap();
        assert_eq!(f.md5(), Err(FileError::BadHash("xyz".into())));
    }

    #[test]
    fn range_spans_follow_the_xep_defaults() {
        assert_eq!(Range::default().span(1000).unwrap(), (0, 1000));
        let r = Range {
            offset: None,
            length: Some(256),
        };
        assert_eq!(r.span(1000).unwrap(), (0, 256));
        let r = Range {
            offset: Some(128),
            length: Some(256),
        };
        assert_eq!(r.span(1000).unwrap(), (128, 256));
        assert_eq!(Range::from_offset(128).span(1000).unwrap(), (128, 872));
        assert!(Range::from_offset(1001).span(1000).is_err());
        let r = Range {
            offset: Some(900),
            length: Some(101),
        };
        assert!(matches!(
            r.span(1000),
            Err(FileError::RangeOutOfBounds { .. })
        ));
    }

    #[test]
    fn dates_without_seconds_and_garbage_dates_do_not_fail_the_file() {
        let mut f = File::new("a", 1);
        f.date = Some("2005-11-29T11:21Z".into());
        assert_eq!(
            f.parsed_date(),
            Some("2005-11-29T11:21:00Z".parse().unwrap())
        );
        f.date = Some("yesterday".into());
        assert_eq!(f.parsed_date(), None);
        let d: DateTime = "2009-07-14T04:52:25.650Z".parse().unwrap();
        assert_eq!(File::new("a", 1).with_date(&d).parsed_date(), Some(d));
    }

    #[test]
    fn empty_answer_file_is_whole_file() {
        let e = el("<file xmlns='http://jabber.org/protocol/si/profile/file-transfer'/>");
        let a = FileAnswer::try_from(e).unwrap();
        assert_eq!(a.range, None);
    }
}
