//! The file-transfer offer: an SI offer whose profile is `<file/>`.
//!
//! ```text
//!  sender                                             receiver
//!    | iq set <si profile=file-transfer><file name size hash/>… |
//!    |---------------------------------------------------->| FileOffer::from_iq
//!    |   iq result <si><file><range offset/></file><feature submit/>
//!    |<----------------------------------------------------| FileOffer::accept(method, range)
//!    | answer_range(&accepted) -> send bytes [offset, offset+length)
//! ```

use minidom::Element;
use xep0095_si::{Accepted, Misuse, Offer, Si, SiError, Sid};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza_error::StanzaError;

use crate::error::{FileError, NameError};
use crate::name::safe_file_name;
use crate::payload::{File, FileAnswer, NS_FILE_TRANSFER, Range};

/// What the received content must match: the offered size and the offered digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Expected {
    /// The whole file's size; `None` when the offer had none (the file ends where the
    /// bytestream ends, and nothing checks its length).
    pub size: Option<u64>,
    /// The MD5 (from the offer's `hash`), checked if present.
    pub md5: Option<[u8; 16]>,
    /// A SHA-256 learnt some other way (for example XEP-0300 hashes), checked if present.
    pub sha256: Option<[u8; 32]>,
}

/// An SI offer with the file-transfer profile, as the receiver sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct FileOffer {
    /// The SI part: sid, sender, iq id, offered methods.
    pub offer: Offer,
    /// The `<file/>`.
    pub file: File,
}

impl FileOffer {
    /// Reads an SI file-transfer offer. A profile other than file-transfer is
    /// [`SiError::UnsupportedProfile`] and a bad `<file/>` is [`FileError::Malformed`]; both
    /// map to `bad-request` + `<bad-profile/>`. A `hash` that is not 32 hex digits does not
    /// refuse the offer: it is treated as absent (BAD-INPUT B10; [`Self::expected`]). The
    /// other errors are [`Offer::from_iq`]'s.
    pub fn from_iq(iq: &Iq) -> Result<Self, FileError> {
        Self::from_offer(Offer::from_iq(iq)?)
    }

    /// Reads the file profile of an already checked SI offer.
    pub fn from_offer(offer: Offer) -> Result<Self, FileError> {
        if offer.profile != NS_FILE_TRANSFER {
            return Err(SiError::UnsupportedProfile(offer.profile).into());
        }
        let file = File::try_from(&offer.profile_element)?;
        Ok(Self { offer, file })
    }

    /// The offer the sender sends: `<si id profile mime-type>` with `file` and `methods` (most
    /// preferred first; XEP-0096 §3.1 says bytestreams, then IBB).
    pub fn si(sid: &Sid, file: File, mime_type: Option<&str>, methods: &[&str]) -> Si {
        let si = Si::offer(sid, Element::from(file), methods);
        match mime_type {
            Some(m) => si.with_mime_type(m),
            None => si,
        }
    }

    /// What the content must match (size and the offered MD5). A `hash` that is not 32 hex
    /// digits is treated as absent (BAD-INPUT B10): nothing to check against, as when the
    /// sender offers none (the caller may warn, see [`File::md5`]).
    pub fn expected(&self) -> Result<Expected, FileError> {
        Ok(Expected {
            size: self.file.size,
            md5: self.file.md5().unwrap_or(None),
            sha256: None,
        })
    }

    /// The peer's name made safe for the target directory.
    pub fn safe_name(&self) -> Result<String, NameError> {
        safe_file_name(&self.file.name)
    }

    /// Accepts with `method`, asking for `range` (for a resume, `Range::from_offset(n)`
    /// where `n` is the length of the partial file; see `PartFile::range`). A range is only
    /// sent when the sender announced ranged transfers; otherwise it is left out and the
    /// whole file comes.
    pub fn accept(&self, method: &str, range: Option<Range>) -> Result<Iq, Misuse> {
        let range = range.filter(|r| !r.is_whole_file() && self.file.supports_ranges());
        let payload = range.map(|r| Element::from(FileAnswer { range: Some(r) }));
        self.offer.accept_with(method, payload)
    }

    /// Declines (`cancel/forbidden`).
    pub fn decline(&self, reason: Option<&str>) -> Iq {
        self.offer.decline(reason)
    }
}

/// The error reply to an offer iq refused with `err`; `None` if `iq` is a result or error.
pub fn error_reply(iq: &Iq, err: &FileError) -> Option<Iq> {
    match iq {
        Iq::Get { .. } | Iq::Set { .. } => {
            let mut reply = Iq::from_error(iq.id().to_owned(), StanzaError::from(err));
            *reply.to_mut() = iq.from().cloned();
            *reply.from_mut() = iq.to().cloned();
            Some(reply)
        }
        _ => None,
    }
}

/// The range the receiver asked for in its answer; `None` means the whole file.
pub fn answer_range(accepted: &Accepted) -> Result<Option<Range>, FileError> {
    let Some(file) = accepted
        .payloads
        .iter()
        .find(|e| e.is("file", NS_FILE_TRANSFER))
    else {
        return Ok(None);
    };
    let answer =
        FileAnswer::try_from(file.clone()).map_err(|e| FileError::Malformed(e.to_string()))?;
    Ok(answer.range.filter(|r| !r.is_whole_file()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use xep0095_si::{Answer, AppCondition, method, parse_answer};
    use xmpp_parsers::stanza_error::DefinedCondition;

    fn offer_iq(file: &str, profile: &str) -> Iq {
        let s = format!(
            "<iq xmlns='jabber:client' type='set' id='o1' from='a@x/1' to='b@x/2'>\
             <si xmlns='http://jabber.org/protocol/si' id='s1' profile='{profile}'>{file}\
             <feature xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' type='form'>\
             <field var='stream-method' type='list-single'><option><value>http://jabber.org/protocol/bytestreams</value></option>\
             <option><value>http://jabber.org/protocol/ibb</value></option></field></x></feature></si></iq>"
        );
        Iq::try_from(s.parse::<Element>().unwrap()).unwrap()
    }

    const FT: &str = NS_FILE_TRANSFER;

    #[test]
    fn file_offer_reads_the_file_and_methods() {
        let iq = offer_iq(
            &format!(
                "<file xmlns='{FT}' name='a.txt' size='10' hash='552da749930852c69ae5d2141d3766b1'><range/></file>"
            ),
            FT,
        );
        let o = FileOffer::from_iq(&iq).unwrap();
        assert_eq!(o.file.name, "a.txt");
        assert_eq!(o.offer.methods, [method::BYTESTREAMS, method::IBB]);
        let e = o.expected().unwrap();
        assert_eq!(e.size, Some(10));
        assert_eq!(
            hex::encode(e.md5.unwrap()),
            "552da749930852c69ae5d2141d3766b1"
        );
    }

    #[test]
    fn accept_with_range_round_trips_to_the_sender() {
        let iq = offer_iq(
            &format!("<file xmlns='{FT}' name='a' size='10'><range/></file>"),
            FT,
        );
        let o = FileOffer::from_iq(&iq).unwrap();
        let answer = o.accept(method::IBB, Some(Range::from_offset(4))).unwrap();
        let back = Iq::try_from(Element::from(answer)).unwrap();
        let Answer::Accepted(a) = parse_answer(&o.offer.methods, &back).unwrap() else {
            panic!()
        };
        assert_eq!(a.method, method::IBB);
        assert_eq!(answer_range(&a).unwrap(), Some(Range::from_offset(4)));
    }

    #[test]
    fn range_is_not_asked_of_a_sender_that_did_not_announce_it() {
        let iq = offer_iq(&format!("<file xmlns='{FT}' name='a' size='10'/>"), FT);
        let o = FileOffer::from_iq(&iq).unwrap();
        let answer = o.accept(method::IBB, Some(Range::from_offset(4))).unwrap();
        let Answer::Accepted(a) = parse_answer(&o.offer.methods, &answer).unwrap() else {
            panic!()
        };
        assert_eq!(answer_range(&a).unwrap(), None);
    }

    #[test]
    fn invalid_other_profile_is_bad_profile() {
        let iq = offer_iq("<thing xmlns='urn:x:other'/>", "urn:x:other");
        let err = FileOffer::from_iq(&iq).unwrap_err();
        assert_eq!(
            err,
            FileError::Si(SiError::UnsupportedProfile("urn:x:other".into()))
        );
        let e = StanzaError::from(&err);
        assert_eq!(e.defined_condition, DefinedCondition::BadRequest);
        assert_eq!(AppCondition::of(&e), Some(AppCondition::BadProfile));
        let reply = error_reply(&iq, &err).unwrap();
        assert_eq!(reply.id(), "o1");
    }

    #[test]
    fn an_offer_without_size_is_accepted_as_size_unknown() {
        // QXmpp 1.4's empty file (BAD-INPUT B1): not bad-profile any more.
        let iq = offer_iq(&format!("<file xmlns='{FT}' name='a'/>"), FT);
        let offer = FileOffer::from_iq(&iq).unwrap();
        assert_eq!(offer.file.size, None);
        assert_eq!(offer.expected().unwrap().size, None);
    }

    #[test]
    fn invalid_file_without_name_is_bad_profile() {
        let iq = offer_iq(&format!("<file xmlns='{FT}' size='3'/>"), FT);
        let err = FileOffer::from_iq(&iq).unwrap_err();
        assert!(matches!(err, FileError::Malformed(_)));
        assert_eq!(
            AppCondition::of(&StanzaError::from(&err)),
            Some(AppCondition::BadProfile)
        );
    }

    #[test]
    fn a_hash_that_is_not_32_hex_digits_is_treated_as_absent() {
        let iq = offer_iq(
            &format!("<file xmlns='{FT}' name='a' size='1' hash='nothex'/>"),
            FT,
        );
        let offer = FileOffer::from_iq(&iq).unwrap();
        assert_eq!(offer.expected().unwrap().md5, None);
        assert_eq!(offer.file.md5(), Err(FileError::BadHash("nothex".into())));
    }

    #[test]
    fn sender_side_offer_parses_back_as_a_file_offer() {
        let sid = Sid::new("s9").unwrap();
        let file = File::new("x.bin", 5).with_md5([7; 16]).with_ranged();
        let si = FileOffer::si(
            &sid,
            file.clone(),
            Some("application/octet-stream"),
            &[method::IBB],
        );
        let iq = xep0095_si::offer_iq("q1", "b@x/1".parse().unwrap(), si).unwrap();
        let back = Iq::try_from(Element::from(iq)).unwrap();
        let o = FileOffer::from_iq(&back).unwrap();
        assert_eq!(o.file, file);
        assert_eq!(o.offer.sid, sid);
    }
}
