//! Repair of the `<error/>` elements real clients send and strict xmpp-parsers refuses.
//!
//! Spark/Openfire refuse a file offer with `<error code="406" type="MODIFY">` (upper-case
//! type) and, in captured traffic, the condition element mangled into text
//! (`not-acceptable xmlns="…"/>` without its `<`). xmpp-parsers 0.23 matches the error
//! `type` case-sensitively and requires a defined condition, so such a stanza would not
//! parse at all. The transport repairs such stanzas before anyone parses them (the
//! [`codec`](crate::codec) does it for every inbound element); the functions are public for
//! readers of stanzas that did not come through it (captured traffic, fuzzing):
//!
//! * the `type` attribute is lower-cased (a missing one comes from the legacy `code`);
//! * stray text inside `<error/>` is dropped;
//! * a missing defined condition is derived from the legacy `code` with the XEP-0086 table
//!   (`406` → `not-acceptable`), or `undefined-condition` when there is no usable code.

use minidom::{Element, Node};
use xmpp_parsers::FromElementError;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::StanzaError;

const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

const CONDITIONS: &[&str] = &[
    "bad-request",
    "conflict",
    "feature-not-implemented",
    "forbidden",
    "gone",
    "internal-server-error",
    "item-not-found",
    "jid-malformed",
    "not-acceptable",
    "not-allowed",
    "not-authorized",
    "policy-violation",
    "recipient-unavailable",
    "redirect",
    "registration-required",
    "remote-server-not-found",
    "remote-server-timeout",
    "resource-constraint",
    "service-unavailable",
    "subscription-required",
    "undefined-condition",
    "unexpected-request",
];

/// The defined condition XEP-0086 §3 maps a legacy error code to.
pub fn condition_for_code(code: u16) -> Option<&'static str> {
    Some(match code {
        302 => "redirect",
        400 => "bad-request",
        401 => "not-authorized",
        402 | 407 => "registration-required",
        403 => "forbidden",
        404 => "item-not-found",
        405 => "not-allowed",
        406 => "not-acceptable",
        408 | 504 => "remote-server-timeout",
        409 => "conflict",
        500 => "internal-server-error",
        501 => "feature-not-implemented",
        502 | 503 => "service-unavailable",
        _ => return None,
    })
}

/// The error type XEP-0086 §3 gives a legacy error code, used only when `type` is missing.
fn type_for_code(code: u16) -> &'static str {
    match code {
        302 | 400 | 405 | 406 | 409 => "modify",
        401 | 402 | 403 | 407 => "auth",
        500 | 502 | 503 | 504 => "wait",
        _ => "cancel",
    }
}

/// Repairs an `<error/>` element in place as described in the module docs.
pub fn repair_error_element(error: &mut Element) {
    let code = error
        .attr("code")
        .and_then(|c| c.trim().parse::<u16>().ok());
    let mut has_type = false;
    for ((ns, name), value) in error.attrs_mut() {
        if ns.is_none() && name.as_str() == "type" {
            has_type = true;
            *value = value.trim().to_ascii_lowercase();
        }
    }
    let elements: Vec<Element> = error
        .take_nodes()
        .into_iter()
        .filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
        .collect();
    let has_condition = elements
        .iter()
        .any(|c| c.ns() == NS_STANZAS && CONDITIONS.contains(&c.name()));
    if !has_condition {
        // The condition comes first for readers that look at the first child.
        let name = code
            .and_then(condition_for_code)
            .unwrap_or("undefined-condition");
        error.append_child(Element::bare(name, NS_STANZAS));
    }
    for e in elements {
        error.append_child(e);
    }
    if !has_type {
        error.set_attr(
            minidom::rxml::Namespace::NONE,
            minidom::rxml::xml_ncname!("type").to_owned(),
            type_for_code(code.unwrap_or(0)),
        );
    }
}

/// Parses a stanza, first strictly and then, if that fails and it has an `<error/>` child,
/// with that `<error/>` repaired.
pub fn parse_stanza_lenient(elem: Element) -> Result<Stanza, FromElementError> {
    // Cloned only when a repair may be needed: error stanzas are rare and small.
    let ns = elem.ns();
    let repairable = elem.get_child("error", ns.as_str()).map(|_| elem.clone());
    let strict = match Stanza::try_from(elem) {
        Ok(stanza) => return Ok(stanza),
        Err(e) => e,
    };
    let Some(mut elem) = repairable else {
        return Err(strict);
    };
    if let Some(error) = elem.get_child_mut("error", ns.as_str()) {
        repair_error_element(error);
    }
    Stanza::try_from(elem).map_err(|_| strict)
}

/// [`parse_stanza_lenient`] for an iq.
pub fn parse_iq_lenient(elem: Element) -> Result<Iq, FromElementError> {
    match Iq::try_from(elem.clone()) {
        Ok(iq) => Ok(iq),
        Err(strict) => {
            let mut elem = elem;
            let ns = elem.ns();
            let Some(error) = elem.get_child_mut("error", ns.as_str()) else {
                return Err(strict);
            };
            repair_error_element(error);
            Iq::try_from(elem)
        }
    }
}

/// Parses an `<error/>` element leniently (see the module docs).
pub fn parse_error_lenient(mut error: Element) -> Result<StanzaError, FromElementError> {
    match StanzaError::try_from(error.clone()) {
        Ok(e) => Ok(e),
        Err(_) => {
            repair_error_element(&mut error);
            StanzaError::try_from(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

    #[test]
    fn upper_case_type_and_mangled_condition_read_as_modify_not_acceptable() {
        let elem: Element = "<iq xmlns='jabber:client' id='f' type='error'><error code='406' type='MODIFY'>\n\t\tnot-acceptable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>\n\t</error></iq>".parse().unwrap();
        assert!(
            Iq::try_from(elem.clone()).is_err(),
            "strict parser refuses it"
        );
        let Iq::Error { error, .. } = parse_iq_lenient(elem.clone()).unwrap() else {
            panic!()
        };
        assert_eq!(error.type_, ErrorType::Modify);
        assert_eq!(error.defined_condition, DefinedCondition::NotAcceptable);
        assert!(matches!(
            parse_stanza_lenient(elem),
            Ok(Stanza::Iq(Iq::Error { .. }))
        ));
    }

    #[test]
    fn missing_type_and_condition_come_from_the_code() {
        let elem: Element = "<error xmlns='jabber:client' code='403'/>".parse().unwrap();
        let e = parse_error_lenient(elem).unwrap();
        assert_eq!(e.type_, ErrorType::Auth);
        assert_eq!(e.defined_condition, DefinedCondition::Forbidden);
    }

    #[test]
    fn no_code_and_no_condition_is_undefined_condition() {
        let elem: Element = "<error xmlns='jabber:client' type='Cancel'/>"
            .parse()
            .unwrap();
        let e = parse_error_lenient(elem).unwrap();
        assert_eq!(e.type_, ErrorType::Cancel);
        assert_eq!(e.defined_condition, DefinedCondition::UndefinedCondition);
    }

    #[test]
    fn a_well_formed_error_is_untouched() {
        let elem: Element = "<error xmlns='jabber:client' type='cancel'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>".parse().unwrap();
        let e = parse_error_lenient(elem).unwrap();
        assert_eq!(e.defined_condition, DefinedCondition::Forbidden);
    }

    #[test]
    fn repair_keeps_the_error_children_and_derives_missing_type_and_condition() {
        let mut error: Element = "<error xmlns='jabber:client' code='404'><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>gone</text></error>".parse().unwrap();
        repair_error_element(&mut error);
        let parsed = StanzaError::try_from(error).unwrap();
        assert_eq!(parsed.type_, ErrorType::Cancel);
        assert_eq!(parsed.defined_condition, DefinedCondition::ItemNotFound);
        assert_eq!(parsed.texts.get("").map(String::as_str), Some("gone"));
    }
}
