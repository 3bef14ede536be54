//! The file-transfer session-info payloads: `<checksum/>` (XEP-0234 §8.2) and `<received/>`
//! (§8.1). Both carry `creator` and `name` as SHOULD; Gajim omits them, so both are
//! optional here (xmpp-parsers' `Checksum` and `Received` require them, hence these types).

use std::str::FromStr;

use minidom::Element;
use xmpp_parsers::hashes::{Algo, Hash};
use xmpp_parsers::jingle::{ContentId, Creator};
use xmpp_parsers::jingle_ft::Range;

use crate::NS_FT;
use crate::file::{FileInfo, FtError};

/// `<checksum/>`: the file's hashes, sent after the offer.
#[derive(Debug, Clone, PartialEq)]
pub struct Checksum {
    /// The content it is for, if named.
    pub creator: Option<Creator>,
    /// The content's name, if given.
    pub name: Option<ContentId>,
    /// The hashes of the whole file (known algorithms only).
    pub hashes: Vec<Hash>,
    /// The algorithms announced without a value (`<hash-used/>`).
    pub hash_used: Vec<Algo>,
    /// For a ranged transfer, the range and its hashes.
    pub range: Option<Range>,
}

/// `<received/>`: the receiver has the whole file.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The content, if named.
    pub creator: Option<Creator>,
    /// The content's name, if given.
    pub name: Option<ContentId>,
}

/// A file-transfer session-info payload.
#[derive(Debug, Clone, PartialEq)]
pub enum FtInfo {
    /// `<checksum/>`.
    Checksum(Checksum),
    /// `<received/>`.
    Received(Received),
}

fn content_attrs(e: &Element) -> Result<(Option<Creator>, Option<ContentId>), FtError> {
    let creator = e
        .attr("creator")
        .map(|c| Creator::from_str(c).map_err(|_| FtError::BadAttr("creator")))
        .transpose()?;
    Ok((creator, e.attr("name").map(|n| ContentId(n.to_owned()))))
}

fn set_content_attrs(e: &mut Element, creator: &Option<Creator>, name: &Option<ContentId>) {
    if let Some(c) = creator {
        e.set_attr(
            minidom::rxml::Namespace::NONE,
            minidom::rxml::xml_ncname!("creator").into(),
            c.to_string(),
        );
    }
    if let Some(n) = name {
        e.set_attr(
            minidom::rxml::Namespace::NONE,
            minidom::rxml::xml_ncname!("name").into(),
            n.0.clone(),
        );
    }
}

impl FtInfo {
    /// Reads a session-info child in the file-transfer namespace.
    pub fn parse(e: &Element) -> Result<Self, FtError> {
        let (creator, name) = content_attrs(e)?;
        if e.is("received", NS_FT) {
            return Ok(Self::Received(Received { creator, name }));
        }
        if !e.is("checksum", NS_FT) {
            return Err(FtError::NotFileTransfer);
        }
        let file = e.get_child("file", NS_FT).ok_or(FtError::FileCount(0))?;
        let f = FileInfo::from_file(file)?;
        Ok(Self::Checksum(Checksum {
            creator,
            name,
            hashes: f.hashes,
            hash_used: f.hash_used,
            range: f.range,
        }))
    }

    /// Whether it names this content, or no content at all (Gajim).
    pub fn is_for(&self, creator: &Creator, name: &ContentId) -> bool {
        let (c, n) = match self {
            Self::Checksum(x) => (&x.creator, &x.name),
            Self::Received(x) => (&x.creator, &x.name),
        };
        c.as_ref().is_none_or(|c| c == creator) && n.as_ref().is_none_or(|n| n == name)
    }
}

impl Checksum {
    /// A checksum of the whole file for a content.
    pub fn new(creator: Creator, name: ContentId, hashes: Vec<Hash>) -> Self {
        Self {
            creator: Some(creator),
            name: Some(name),
            hashes,
            hash_used: Vec::new(),
            range: None,
        }
    }
}

impl From<&Checksum> for Element {
    fn from(c: &Checksum) -> Self {
        let file = FileInfo {
            hashes: c.hashes.clone(),
            hash_used: c.hash_used.clone(),
            range: c.range.clone(),
            ..FileInfo::default()
        };
        let mut e = Self::builder("checksum", NS_FT)
            .append(file.to_file())
            .build();
        set_content_attrs(&mut e, &c.creator, &c.name);
        e
    }
}

impl From<&Received> for Element {
    fn from(r: &Received) -> Self {
        let mut e = Self::bare("received", NS_FT);
        set_content_attrs(&mut e, &r.creator, &r.name);
        e
    }
}
