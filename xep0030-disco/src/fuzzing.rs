//! Fuzzing entry points (feature `__fuzzing`). Private: don't rely on this.

use minidom::Element;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;

use crate::{DiscoResponder, parse_info_result, parse_items_result};

/// Parses `data` as an element: as disco results, and as an iq given to the responder.
pub fn fuzz_disco(data: &[u8]) {
    let Some(elem) = std::str::from_utf8(data)
        .ok()
        .and_then(|t| t.parse::<Element>().ok())
    else {
        return;
    };
    let _ = parse_info_result(elem.clone());
    let _ = parse_items_result(elem.clone());
    if let Ok(iq) = Iq::try_from(elem) {
        let _ = DiscoResponder::default().handle_stanza(Stanza::Iq(iq));
    }
}
