//! Fuzzing entry points (feature `__fuzzing`). Private: don't rely on this.

use minidom::Element;
use xmpp_parsers::iq::Iq;

use crate::{Offer, method, parse_answer};

/// Parses `data` as an iq (leniently) and runs it through the offer and answer readers.
pub fn fuzz_si_stanza(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(elem) = text.parse::<Element>() else {
        return;
    };
    let Ok(iq) = ft_transport::lenient::parse_iq_lenient(elem) else {
        return;
    };
    if let Err(e) = Offer::from_iq(&iq) {
        let _ = xmpp_parsers::stanza_error::StanzaError::from(&e);
        let _ = crate::error_reply(&iq, &e);
    }
    let offered = [method::BYTESTREAMS.to_owned(), method::IBB.to_owned()];
    let _ = parse_answer(&offered, &iq);
    let _ = Iq::try_from(Element::from(iq));
}
