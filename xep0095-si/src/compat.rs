//! Lenient reading of what real clients send, for stanzas strict xmpp-parsers refuses.
//!
//! Spark/Openfire refuse an offer with `<error code="406" type="MODIFY">` (upper case type)
//! and, in the captured seed 000, the condition element mangled into text
//! (`not-acceptable xmlns="…"/>` without its `<`). xmpp-parsers 0.23 rejects both: the
//! error `type` is matched case-sensitively and a defined condition is required. The
//! functions here repair the `<error/>` before handing the iq to xmpp-parsers:
//!
//! * the `type` attribute is lower-cased;
//! * stray text inside `<error/>` is dropped;
//! * a missing defined condition is derived from the legacy `code` with the
//!   [XEP-0086](https://xmpp.org/extensions/xep-0086.html) table (`406` → `not-acceptable`),
//!   or `undefined-condition` when there is no usable code.
//!
//! Everything else is left to the strict parser.

use minidom::{Element, Node};
use xmpp_parsers::iq::Iq;
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
        502 => "service-unavailable",
        503 => "service-unavailable",
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
    for ((ns, name), value) in error.attrs_mut().iter_mut() {
        if ns.is_none() && name.as_str() == "type" {
            has_type = true;
            let lower = value.trim().to_ascii_lowercase();
            *value = lower;
        }
    }
    let nodes = error.take_nodes();
    for node in nodes {
        if let Node::Element(e) = node {
            error.append_child(e);
        }
    }
    let has_condition = error
        .children()
        .any(|c| c.ns() == NS_STANZAS && CONDITIONS.contains(&c.name()));
    if !has_condition {
        let name = code
            .and_then(condition_for_code)
            .unwrap_or("undefined-condition");
        let condition = Element::bare(name, NS_STANZAS);
        // The condition must come first for readers that look at the first child.
        let rest: Vec<Element> = error
            .take_nodes()
            .into_iter()
            .filter_map(|n| match n {
                Node::Element(e) => Some(e),
                Node::Text(_) => None,
            })
            .collect();
        error.append_child(condition);
        for e in rest {
            error.append_child(e);
        }
    }
    if !has_type {
        let t = type_for_code(code.unwrap_or(0));
        error.set_attr(
            minidom::rxml::Namespace::NONE,
            minidom::rxml::xml_ncname!("type").to_owned(),
            t,
        );
    }
}

/// Parses an iq, first strictly and then, if that fails, with its `<error/>` repaired.
pub fn parse_iq_lenient(elem: Element) -> Result<Iq, xso::error::FromElementError> {
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
pub fn parse_error_lenient(
    mut error: Element,
) -> Result<StanzaError, xso::error::FromElementError> {
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
        let Iq::Error { error, .. } = parse_iq_lenient(elem).unwrap() else {
            panic!()
        };
        assert_eq!(error.type_, ErrorType::Modify);
        assert_eq!(error.defined_condition, DefinedCondition::NotAcceptable);
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
}
