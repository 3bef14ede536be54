//! Fuzzing entry points (feature `__fuzzing`). Don't rely on this.

use minidom::Element;

use crate::payload::Payload;

/// Parses arbitrary bytes as an XML element and then as an IBB payload; must never panic.
pub fn fuzz_payload(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(elem) = text.parse::<Element>() else {
        return;
    };
    if let Ok(Some(p)) = Payload::parse(&elem) {
        let _ = Payload::parse(&p.to_element());
    }
}
