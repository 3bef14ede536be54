//! The `<description><file/></description>` of XEP-0234 §3 to and from our file metadata.
//!
//! Read by hand, leniently where real peers differ and strictly where it matters: an
//! unreadable `<date/>` is dropped (not the offer), a `<hash/>` that does not decode or
//! names an algorithm we do not know is dropped (XEP-0300 §5 "ignore"), the name is made
//! safe by `xep0096-file`'s sanitizer, the size is bounded, the description cut to 1 KiB.

use std::str::FromStr;

use minidom::Element;
use xep0096_file::{FileMeta, NameError, safe_file_name};
use xmpp_parsers::date::DateTime;
use xmpp_parsers::hashes::{Algo, Hash};
use xmpp_parsers::jingle::Reason;
use xmpp_parsers::jingle_ft::Range;

use crate::{NS_FT, NS_HASHES};

/// The longest `<desc/>` we keep, in bytes (cut at a character boundary), as SI does
/// (BAD-INPUT B11).
pub const MAX_DESC: usize = 1024;
/// The most `<hash/>` + `<hash-used/>` elements read from one `<file/>`.
pub const MAX_HASHES: usize = 16;

/// A file as an offer or request describes it: what we send, or what a peer's description
/// said once checked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FileInfo {
    /// The name as the peer sent it (unsafe to use as a path).
    pub name: Option<String>,
    /// The size in bytes.
    pub size: Option<u64>,
    /// The modification date.
    pub date: Option<DateTime>,
    /// The MIME type (advisory).
    pub media_type: Option<String>,
    /// A description for the user, at most [`MAX_DESC`] bytes.
    pub desc: Option<String>,
    /// Hashes of the content (unknown algorithms and undecodable values dropped).
    pub hashes: Vec<Hash>,
    /// The algorithms whose hash will come later in a `<checksum/>` (`<hash-used/>`).
    pub hash_used: Vec<Algo>,
    /// `<range/>`: in an offer, that ranges are supported; in a request or accept, the part
    /// wanted (resume from `offset`).
    pub range: Option<Range>,
}

/// Why a description cannot be used; [`FtError::reason`] is the session-terminate reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FtError {
    /// Not `<description xmlns='urn:xmpp:jingle:apps:file-transfer:5'>` (or none).
    #[error("not a file-transfer description")]
    NotFileTransfer,
    /// No `<file/>`, or two.
    #[error("the description holds {0} <file/> elements, not one")]
    FileCount(usize),
    /// An offer without `<name/>` or `<size/>` (XEP-0234 §3 requires both).
    #[error("the offer lacks <{0}/>")]
    Missing(&'static str),
    /// A `<size/>` that is not a u64, or a `<range/>` attribute that is not.
    #[error("<{0}/> is not a non-negative integer")]
    BadNumber(&'static str),
    /// An attribute with a value outside its set (`creator='boss'`).
    #[error("bad {0} attribute")]
    BadAttr(&'static str),
    /// The name cannot be made safe.
    #[error("unusable file name")]
    Name(#[source] NameError),
    /// Larger than we accept.
    #[error("size {size} over the limit {max}")]
    TooLarge {
        /// The offered size.
        size: u64,
        /// Our limit.
        max: u64,
    },
    /// A `<range/>` reaching past the end of the file.
    #[error("range offset {offset} length {length:?} outside a file of {size} bytes")]
    RangeOutOfBounds {
        /// Its offset.
        offset: u64,
        /// Its length.
        length: Option<u64>,
        /// The file's size.
        size: u64,
    },
}

impl FtError {
    /// The reason to terminate the session with: `failed-application` for a description we
    /// cannot read, `decline` for one we will not take (too large).
    pub fn reason(&self) -> Reason {
        match self {
            Self::TooLarge { .. } => Reason::Decline,
            _ => Reason::FailedApplication,
        }
    }
}

impl FileInfo {
    /// What to offer for a local file (push): name, size, date and MIME type from `meta`,
    /// `<range/>` (we can send any part), and `hashes` if known now; else name the
    /// algorithms in `hash_used` and send a `<checksum/>` later.
    pub fn offer(meta: &FileMeta, hashes: Vec<Hash>, hash_used: Vec<Algo>) -> Self {
        Self {
            name: Some(meta.name.clone()),
            size: Some(meta.size),
            date: meta.date.clone(),
            media_type: Some(meta.mime_type.to_owned()),
            desc: None,
            hashes,
            hash_used,
            range: Some(Range::new()),
        }
    }

    /// What to ask for (pull): the file a peer hosts, named by its hash (and name if known).
    pub fn request(hashes: Vec<Hash>, name: Option<String>) -> Self {
        Self {
            name,
            hashes,
            ..Self::default()
        }
    }

    /// The same file, asked from `offset` on (resume, XEP-0234 §7).
    #[must_use]
    pub fn from_offset(mut self, offset: u64) -> Self {
        self.range = Some(Range {
            offset,
            length: None,
            hashes: Vec::new(),
        });
        self
    }

    /// The name made safe to create in a directory (`xep0096-file`'s rules).
    pub fn safe_name(&self) -> Result<String, FtError> {
        safe_file_name(self.name.as_deref().unwrap_or("")).map_err(FtError::Name)
    }

    /// The `(offset, length)` the `<range/>` selects in this file, checked.
    pub fn span(&self) -> Result<(u64, u64), FtError> {
        let size = self.size.ok_or(FtError::Missing("size"))?;
        let (offset, length) = self
            .range
            .as_ref()
            .map_or((0, None), |r| (r.offset, r.length));
        let oob = || FtError::RangeOutOfBounds {
            offset,
            length,
            size,
        };
        let rest = size.checked_sub(offset).ok_or_else(oob)?;
        match length {
            None => Ok((offset, rest)),
            Some(l) if l <= rest => Ok((offset, l)),
            Some(_) => Err(oob()),
        }
    }

    /// The `<description/>` element.
    pub fn to_description(&self) -> Element {
        Element::builder("description", NS_FT)
            .append(self.to_file())
            .build()
    }

    /// The `<file/>` element.
    pub fn to_file(&self) -> Element {
        let mut f = Element::bare("file", NS_FT);
        let mut text = |n: &str, v: Option<String>| {
            if let Some(v) = v {
                f.append_child(Element::builder(n, NS_FT).append(v).build());
            }
        };
        text("date", self.date.as_ref().map(date_text));
        text("desc", self.desc.clone());
        text("media-type", self.media_type.clone());
        text("name", self.name.clone());
        text("size", self.size.map(|s| s.to_string()));
        if let Some(r) = &self.range {
            f.append_child(r.clone().into());
        }
        for h in &self.hashes {
            f.append_child(h.clone().into());
        }
        for a in &self.hash_used {
            let mut e = Element::bare("hash-used", NS_HASHES);
            e.set_attr(
                minidom::rxml::Namespace::NONE,
                minidom::rxml::xml_ncname!("algo").into(),
                String::from(a.clone()),
            );
            f.append_child(e);
        }
        f
    }

    /// Reads a peer's `<description/>` (any use: offer, request, accept).
    pub fn from_description(d: &Element) -> Result<Self, FtError> {
        if !d.is("description", NS_FT) {
            return Err(FtError::NotFileTransfer);
        }
        let files: Vec<&Element> = d.children().filter(|c| c.is("file", NS_FT)).collect();
        match files[..] {
            [f] => Self::from_file(f),
            _ => Err(FtError::FileCount(files.len())),
        }
    }

    /// Reads a `<file/>` (also the one inside `<checksum/>`).
    pub fn from_file(f: &Element) -> Result<Self, FtError> {
        let text = |n: &str| f.get_child(n, NS_FT).map(|c| c.text().trim().to_owned());
        let size = match text("size") {
            None => None,
            Some(s) => Some(u64::from_str(&s).map_err(|_| FtError::BadNumber("size"))?),
        };
        let range = f.get_child("range", NS_FT).map(read_range).transpose()?;
        let (hashes, hash_used) = read_hashes(f);
        Ok(Self {
            name: text("name"),
            size,
            date: text("date").and_then(|d| parse_date(&d)),
            media_type: text("media-type").map(|m| cap(&m, 255)),
            // Gajim sends an empty <desc/>: no description.
            desc: text("desc")
                .filter(|d| !d.is_empty())
                .map(|d| cap(&d, MAX_DESC)),
            hashes,
            hash_used,
            range,
        })
    }

    /// Checks a peer's offer (push: it will send): `name` and `size` present, the name can
    /// be made safe, the size at most `max_size`, the range inside the file.
    pub fn check_offer(&self, max_size: Option<u64>) -> Result<(), FtError> {
        self.name.as_ref().ok_or(FtError::Missing("name"))?;
        let size = self.size.ok_or(FtError::Missing("size"))?;
        self.safe_name()?;
        if let Some(max) = max_size.filter(|m| size > *m) {
            return Err(FtError::TooLarge { size, max });
        }
        self.span().map(|_| ())
    }
}

fn read_range(r: &Element) -> Result<Range, FtError> {
    let num = |n| {
        r.attr(n)
            .map(|v| u64::from_str(v).map_err(|_| FtError::BadNumber("range")))
            .transpose()
    };
    let (hashes, _) = read_hashes(r);
    Ok(Range {
        offset: num("offset")?.unwrap_or(0),
        length: num("length")?,
        hashes,
    })
}

/// The `<hash/>`es we can use and the `<hash-used/>` algorithms, bounded; unknown
/// algorithms, undecodable values and digests of the wrong length are dropped.
pub(crate) fn read_hashes(parent: &Element) -> (Vec<Hash>, Vec<Algo>) {
    let (mut hashes, mut used) = (Vec::new(), Vec::new());
    for c in parent
        .children()
        .filter(|c| c.ns() == NS_HASHES)
        .take(MAX_HASHES)
    {
        let algo = c.attr("algo").and_then(|a| Algo::from_str(a).ok());
        match (c.name(), algo) {
            (_, None | Some(Algo::Unknown(_))) => {}
            ("hash", Some(algo)) => {
                if let Ok(h) = Hash::from_base64(algo, c.text().trim())
                    && Some(h.hash.len()) == digest_len(&h.algo)
                {
                    hashes.push(h);
                }
            }
            ("hash-used", Some(algo)) => used.push(algo),
            _ => {}
        }
    }
    (hashes, used)
}

/// The digest length of a known algorithm, in bytes.
pub fn digest_len(algo: &Algo) -> Option<usize> {
    Some(match algo {
        Algo::Sha_1 => 20,
        Algo::Sha_256 | Algo::Sha3_256 | Algo::Blake2b_256 => 32,
        Algo::Sha_512 | Algo::Sha3_512 | Algo::Blake2b_512 => 64,
        Algo::Unknown(_) => return None,
    })
}

fn parse_date(s: &str) -> Option<DateTime> {
    // xep0096-file's reader also takes the form without seconds.
    let mut f = xep0096_file::File::new("x", 0);
    f.date = Some(s.to_owned());
    f.parsed_date()
}

fn date_text(d: &DateTime) -> String {
    use xso::AsXmlText;
    d.as_xml_text().map(|c| c.into_owned()).unwrap_or_default()
}

/// `s` cut to at most `max` bytes at a character boundary.
fn cap(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}
