//! Errors: what a peer's SI payload can be wrong about ([`SiError`], each mapped to the stanza
//! error to reply with), how a peer can say no ([`Rejection`]), what the caller can get wrong
//! ([`Misuse`]), and the driver's [`Error`] grouping them by fault.

use std::time::Duration;

use minidom::Element;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use crate::payload::NS_SI;

/// A peer's SI offer or answer that this crate cannot use.
///
/// `StanzaError::from(&err)` gives the error to reply with, per
/// [XEP-0095 §4.2](https://xmpp.org/extensions/xep-0095.html#def-error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SiError {
    /// The iq carries no `<si/>` (or another element where `<si/>` was expected).
    #[error("expected <si xmlns='{NS_SI}'>, found <{name} xmlns='{ns}'>")]
    NotSi {
        /// The element's local name.
        name: String,
        /// The element's namespace.
        ns: String,
    },
    /// The iq is not of the type the step needs (an offer must be `set`).
    #[error("si offer must be an iq of type set, found type {0}")]
    WrongIqType(&'static str),
    /// The `<si/>` or its form does not parse.
    #[error("malformed si payload: {0}")]
    Malformed(String),
    /// The offer has no (or an empty) `id` attribute.
    #[error("si offer without an id attribute")]
    MissingId,
    /// The offer's `id` is not a valid stream id (overlong, or not an NMTOKEN).
    #[error("si offer with a bad id")]
    BadId(#[source] ft_transport::InvalidSid),
    /// The offer has no `profile` attribute.
    #[error("si offer without a profile attribute")]
    MissingProfile,
    /// The offer names a profile this side does not handle.
    #[error("si profile {0} is not supported")]
    UnsupportedProfile(String),
    /// The offer names a profile but carries no element in that namespace, or one that
    /// does not parse.
    #[error("si offer has no valid element for its profile {0}")]
    BadProfileElement(String),
    /// No `<feature xmlns='http://jabber.org/protocol/feature-neg'>` with a data form.
    #[error("si payload without a feature-negotiation form")]
    MissingFeature,
    /// The form is of the wrong type (`form` in an offer, `submit` in an answer).
    #[error("feature-negotiation form of type {found}, expected {expected}")]
    WrongFormType {
        /// The type the step needs.
        expected: &'static str,
        /// The type found.
        found: &'static str,
    },
    /// The form has no `stream-method` field.
    #[error("feature-negotiation form without a stream-method field")]
    NoStreamMethod,
    /// The offer's `stream-method` field has no options.
    #[error("stream-method field without options")]
    NoOptions,
    /// The answer's `stream-method` field has no value.
    #[error("stream-method field without a value")]
    NoChosenMethod,
    /// The answer names only methods that were never offered.
    #[error("peer chose stream method(s) {0:?}, none of which was offered")]
    NotOffered(Vec<String>),
    /// None of the offered methods is one this side supports.
    #[error("none of the offered stream methods {0:?} is supported")]
    NoValidStreams(Vec<String>),
}

impl SiError {
    /// The XEP-0095 application condition that goes with this error, if any.
    pub fn app_condition(&self) -> Option<AppCondition> {
        match self {
            Self::MissingProfile | Self::UnsupportedProfile(_) | Self::BadProfileElement(_) => {
                Some(AppCondition::BadProfile)
            }
            Self::MissingFeature
            | Self::NoStreamMethod
            | Self::NoOptions
            | Self::NoValidStreams(_) => Some(AppCondition::NoValidStreams),
            _ => None,
        }
    }
}

impl From<ft_transport::InvalidSid> for SiError {
    /// An empty id is a missing one; anything else a bad one.
    fn from(e: ft_transport::InvalidSid) -> Self {
        match e {
            ft_transport::InvalidSid::Empty => Self::MissingId,
            other => Self::BadId(other),
        }
    }
}

/// The application-specific error conditions of XEP-0095, in `http://jabber.org/protocol/si`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppCondition {
    /// `<bad-profile/>`: the profile is not understood or invalid.
    BadProfile,
    /// `<no-valid-streams/>`: none of the offered streams is acceptable.
    NoValidStreams,
}

impl AppCondition {
    /// The element's local name.
    pub fn name(self) -> &'static str {
        match self {
            Self::BadProfile => "bad-profile",
            Self::NoValidStreams => "no-valid-streams",
        }
    }

    /// The condition as an element, for [`StanzaError::other`].
    pub fn to_element(self) -> Element {
        Element::builder(self.name(), NS_SI).build()
    }

    /// The condition carried by `error`, if any.
    pub fn of(error: &StanzaError) -> Option<Self> {
        let other = error.other.as_ref()?;
        if other.is("bad-profile", NS_SI) {
            Some(Self::BadProfile)
        } else if other.is("no-valid-streams", NS_SI) {
            Some(Self::NoValidStreams)
        } else {
            None
        }
    }
}

fn bare_error(type_: ErrorType, condition: DefinedCondition) -> StanzaError {
    StanzaError {
        type_,
        by: None,
        defined_condition: condition,
        texts: Default::default(),
        other: None,
    }
}

/// `400 bad-request` with the application condition, typed as XEP-0095 §4.2's table says:
/// `no-valid-streams` is `cancel`, `bad-profile` is `modify`.
pub fn si_error(condition: AppCondition) -> StanzaError {
    let type_ = match condition {
        AppCondition::BadProfile => ErrorType::Modify,
        AppCondition::NoValidStreams => ErrorType::Cancel,
    };
    let mut e = bare_error(type_, DefinedCondition::BadRequest);
    e.other = Some(condition.to_element());
    e
}

/// The decline of XEP-0095 §3.2: `403 cancel/forbidden`, with an optional human-readable text.
pub fn decline_error(text: Option<&str>) -> StanzaError {
    let mut e = bare_error(ErrorType::Cancel, DefinedCondition::Forbidden);
    if let Some(text) = text {
        // xmpp-parsers writes the language key as `xml:lang`; "en" as RFC 6120's examples.
        e.texts.insert("en".to_owned(), text.to_owned());
    }
    e
}

impl From<&SiError> for StanzaError {
    fn from(err: &SiError) -> Self {
        match err.app_condition() {
            Some(c) => si_error(c),
            None => bare_error(ErrorType::Modify, DefinedCondition::BadRequest),
        }
    }
}

/// How the peer said no to an offer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// `forbidden` (XEP-0095's decline), or `not-acceptable` as old Smack/Spark send
    /// (seed 000: `<error code="406" type="MODIFY">`). `text` is the peer's reason if it gave one.
    #[error("the peer declined the offer{}", text.as_deref().map(|t| format!(": {t}")).unwrap_or_default())]
    Declined {
        /// The peer's `<text/>`, if any.
        text: Option<String>,
    },
    /// `bad-request` + `<no-valid-streams/>`: the peer supports none of the offered methods.
    #[error("the peer supports none of the offered stream methods")]
    NoValidStreams,
    /// `bad-request` + `<bad-profile/>`: the peer does not understand the profile.
    #[error("the peer does not understand the si profile")]
    BadProfile,
    /// Any other error (for example `service-unavailable` when the peer has no SI at all).
    #[error("the peer answered with error {:?} ({:?})", .0.defined_condition, .0.type_)]
    Other(Box<StanzaError>),
}

impl From<StanzaError> for Rejection {
    fn from(error: StanzaError) -> Self {
        match AppCondition::of(&error) {
            Some(AppCondition::NoValidStreams) => return Self::NoValidStreams,
            Some(AppCondition::BadProfile) => return Self::BadProfile,
            None => {}
        }
        match error.defined_condition {
            DefinedCondition::Forbidden | DefinedCondition::NotAcceptable => Self::Declined {
                text: error.texts.values().find(|t| !t.is_empty()).cloned(),
            },
            _ => Self::Other(Box::new(error)),
        }
    }
}

/// What the caller got wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Misuse {
    /// Accepting with a method the offer did not propose.
    #[error("stream method {0} was not offered")]
    MethodNotOffered(String),
    /// Offering with no stream method at all.
    #[error("an offer needs at least one stream method")]
    NoMethods,
    /// Offering an `<si/>` without a stream id.
    #[error("an offer needs a stream id")]
    NoSid,
}

/// Everything [`offer`](crate::offer) can end with instead of an accepted method, grouped by
/// who is at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer's answer is malformed or breaks XEP-0095.
    #[error("bad si answer: {0}")]
    Protocol(#[from] SiError),
    /// The peer said no.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// No answer came in time.
    #[error("no answer to the si offer within {0:?}")]
    Timeout(Duration),
    /// The offer could not be sent, or the request tracker went away.
    #[error("could not send the si offer: {0}")]
    Send(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The caller did something wrong.
    #[error("si misuse: {0}")]
    Misuse(#[from] Misuse),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_valid_streams_maps_to_cancel_bad_request_with_app_condition() {
        let e = StanzaError::from(&SiError::NoOptions);
        assert_eq!(e.type_, ErrorType::Cancel);
        assert_eq!(e.defined_condition, DefinedCondition::BadRequest);
        assert_eq!(AppCondition::of(&e), Some(AppCondition::NoValidStreams));
    }

    #[test]
    fn missing_profile_maps_to_modify_bad_request_bad_profile() {
        let e = StanzaError::from(&SiError::MissingProfile);
        assert_eq!(e.type_, ErrorType::Modify);
        assert_eq!(e.defined_condition, DefinedCondition::BadRequest);
        assert_eq!(AppCondition::of(&e), Some(AppCondition::BadProfile));
    }

    #[test]
    fn missing_id_maps_to_plain_bad_request() {
        let e = StanzaError::from(&SiError::MissingId);
        assert_eq!(e.defined_condition, DefinedCondition::BadRequest);
        assert_eq!(e.other, None);
    }

    #[test]
    fn forbidden_and_not_acceptable_are_declines() {
        let r = Rejection::from(decline_error(Some("no thanks")));
        assert_eq!(
            r,
            Rejection::Declined {
                text: Some("no thanks".into())
            }
        );
        let r = Rejection::from(bare_error(
            ErrorType::Modify,
            DefinedCondition::NotAcceptable,
        ));
        assert_eq!(r, Rejection::Declined { text: None });
    }

    #[test]
    fn decline_serializes_to_the_exact_wire_form() {
        let mut out = Vec::new();
        Element::from(decline_error(Some("Offer Declined")))
            .write_to(&mut out)
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<error xmlns='jabber:client' type='cancel'>\
             <forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>Offer Declined</text>\
             </error>"
        );
    }

    #[test]
    fn no_valid_streams_serializes_to_the_exact_wire_form() {
        let mut out = Vec::new();
        Element::from(si_error(AppCondition::NoValidStreams))
            .write_to(&mut out)
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<error xmlns='jabber:client' type='cancel'>\
             <bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <no-valid-streams xmlns='http://jabber.org/protocol/si'/>\
             </error>"
        );
    }

    #[test]
    fn other_conditions_stay_other() {
        let r = Rejection::from(bare_error(
            ErrorType::Cancel,
            DefinedCondition::ServiceUnavailable,
        ));
        assert!(
            matches!(r, Rejection::Other(e) if e.defined_condition == DefinedCondition::ServiceUnavailable)
        );
    }
}
