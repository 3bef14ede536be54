//! Fuzzing entry points (feature `__fuzzing`). Private: don't rely on this.

use minidom::Element;
use xmpp_parsers::iq::Iq;

use crate::{File, FileOffer, safe_file_name};

/// Parses `data` as an iq and reads it as a file offer.
pub fn fuzz_file_offer(data: &[u8]) {
    let Some(elem) = std::str::from_utf8(data)
        .ok()
        .and_then(|t| t.parse::<Element>().ok())
    else {
        return;
    };
    if let Ok(file) = File::try_from(&elem) {
        let _ = file.parsed_date();
        let _ = safe_file_name(&file.name);
    }
    if let Ok(iq) = Iq::try_from(elem) {
        if let Ok(o) = FileOffer::from_iq(&iq) {
            let _ = o.expected();
            let _ = o.safe_name();
        }
    }
}

/// Runs arbitrary bytes (as lossy UTF-8) through [`safe_file_name`].
pub fn fuzz_safe_name(data: &[u8]) {
    let _ = safe_file_name(&String::from_utf8_lossy(data));
}
