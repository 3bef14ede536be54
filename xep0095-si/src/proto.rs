//! The negotiation, sans I/O: the target's view of an offer ([`Offer`]) and the initiator's
//! view of the answer ([`offer_iq`], [`parse_answer`]).
//!
//! ```text
//!  initiator                               target
//!     | iq set <si id profile><file/><feature form> |
//!     |--------------------------------------->| Offer::from_iq
//!     |                                        |   accept(method) -> iq result <si><feature submit>
//!     |<---------------------------------------|   decline(text)  -> iq error cancel/forbidden
//!     | parse_answer -> Accepted | Rejection   |   no_valid_streams() / error_reply(err)
//! ```
//!
//! There is no state to keep: an SI negotiation is one request and one answer. The
//! initiator matches the answer to its request by iq id (`ft_transport::iq::IqTracker` does
//! that in the `tokio` driver).

use jid::Jid;
use minidom::Element;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza_error::StanzaError;

use crate::error::{AppCondition, Misuse, Rejection, SiError, decline_error, si_error};
use crate::payload::{Si, Sid, chosen_methods, offered_methods};

/// The MIME type assumed when an offer carries none (XEP-0095 §4.1).
pub const DEFAULT_MIME_TYPE: &str = "application/octet-stream";

/// The decline's text when the application gives none: what Spark, Pidgin and Psi send
/// (BAD-INPUT B12).
pub const DECLINED_TEXT: &str = "Offer Declined";

/// An SI offer as the target sees it, checked against XEP-0095 §4.1.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    /// The offer iq's `from` (the initiator), as the server stamped it.
    pub from: Option<Jid>,
    /// The offer iq's `to` (us).
    pub to: Option<Jid>,
    /// The offer iq's id; the answer reuses it.
    pub iq_id: String,
    /// The stream id, reused as the bytestream's `sid`.
    pub sid: Sid,
    /// The MIME type, [`DEFAULT_MIME_TYPE`] when absent.
    pub mime_type: String,
    /// The profile namespace.
    pub profile: String,
    /// The profile's element (for example `<file/>`), in the profile's namespace.
    pub profile_element: Element,
    /// The offered stream methods, in the initiator's order.
    pub methods: Vec<String>,
}

impl Offer {
    /// Reads an offer from an iq of type `set` carrying `<si/>`.
    ///
    /// The checks, in order, and the errors they give (map each with
    /// `StanzaError::from(&err)` and answer with [`error_reply`]): not `set` →
    /// [`SiError::WrongIqType`]; no `<si/>` → [`SiError::NotSi`]; no `id` →
    /// [`SiError::MissingId`]; no `profile` → [`SiError::MissingProfile`] (bad-profile); no
    /// feature form → [`SiError::MissingFeature`]; no `stream-method` field →
    /// [`SiError::NoStreamMethod`]; no options → [`SiError::NoOptions`] (these three
    /// no-valid-streams); no element in the profile's namespace →
    /// [`SiError::BadProfileElement`] (bad-profile).
    pub fn from_iq(iq: &Iq) -> Result<Self, SiError> {
        let Iq::Set {
            from,
            to,
            id,
            payload,
        } = iq
        else {
            return Err(SiError::WrongIqType(iq_type(iq)));
        };
        let si = Si::try_from(payload)?;
        Self::from_si(si, id.clone(), from.clone(), to.clone())
    }

    /// Reads an offer from an already parsed `<si/>` and the iq's envelope.
    pub fn from_si(
        si: Si,
        iq_id: String,
        from: Option<Jid>,
        to: Option<Jid>,
    ) -> Result<Self, SiError> {
        let sid = Sid::new(si.id.as_deref().unwrap_or_default())?;
        let profile = match si.profile.as_deref().map(str::trim) {
            Some(p) if !p.is_empty() => p.to_owned(),
            _ => return Err(SiError::MissingProfile),
        };
        let form = si.form().ok_or(SiError::MissingFeature)?;
        let methods = offered_methods(form)?;
        let profile_element = si
            .payloads
            .into_iter()
            .find(|e| e.ns() == profile)
            .ok_or_else(|| SiError::BadProfileElement(profile.clone()))?;
        Ok(Self {
            from,
            to,
            iq_id,
            sid,
            mime_type: si
                .mime_type
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| DEFAULT_MIME_TYPE.to_owned()),
            profile,
            profile_element,
            methods,
        })
    }

    /// Whether `method` was offered.
    pub fn is_offered(&self, method: &str) -> bool {
        self.methods.iter().any(|m| m == method)
    }

    /// The first method of `preference` (ours, most preferred first) that was offered.
    pub fn choose<'a>(&self, preference: &[&'a str]) -> Option<&'a str> {
        preference.iter().copied().find(|m| self.is_offered(m))
    }

    /// The result accepting the offer with `method`: reuses the offer's iq id and goes to
    /// its sender.
    pub fn accept(&self, method: &str) -> Result<Iq, Misuse> {
        self.accept_with(method, None)
    }

    /// [`accept`](Self::accept) with a profile element in the answer (XEP-0096's
    /// `<file><range/></file>` for a ranged transfer).
    pub fn accept_with(
        &self,
        method: &str,
        profile_element: Option<Element>,
    ) -> Result<Iq, Misuse> {
        if !self.is_offered(method) {
            return Err(Misuse::MethodNotOffered(method.to_owned()));
        }
        let mut si = Si::answer(method);
        si.payloads.extend(profile_element);
        Ok(self.reply(Iq::from_result(self.iq_id.clone(), Some(si))))
    }

    /// The decline: `cancel/forbidden`, with `reason` as the error text, or
    /// [`DECLINED_TEXT`] when none is given (BAD-INPUT B12).
    pub fn decline(&self, reason: Option<&str>) -> Iq {
        let text = reason.unwrap_or(DECLINED_TEXT);
        self.reply(Iq::from_error(
            self.iq_id.clone(),
            decline_error(Some(text)),
        ))
    }

    /// The answer when none of the offered methods is usable: `bad-request` +
    /// `<no-valid-streams/>`.
    pub fn no_valid_streams(&self) -> Iq {
        self.reply(Iq::from_error(
            self.iq_id.clone(),
            si_error(AppCondition::NoValidStreams),
        ))
    }

    /// The answer when the profile is not one we handle: `bad-request` + `<bad-profile/>`.
    pub fn bad_profile(&self) -> Iq {
        self.reply(Iq::from_error(
            self.iq_id.clone(),
            si_error(AppCondition::BadProfile),
        ))
    }

    fn reply(&self, mut iq: Iq) -> Iq {
        *iq.to_mut() = self.from.clone();
        *iq.from_mut() = self.to.clone();
        iq
    }
}

fn iq_type(iq: &Iq) -> &'static str {
    match iq {
        Iq::Get { .. } => "get",
        Iq::Set { .. } => "set",
        Iq::Result { .. } => "result",
        Iq::Error { .. } => "error",
    }
}

/// The error reply to a request iq whose offer was refused with `err`; `None` if `iq` is a
/// result or an error (those are never answered).
pub fn error_reply(iq: &Iq, err: &SiError) -> Option<Iq> {
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

/// The initiator's offer iq: `si` sent as a `set` to `to` with the iq id `id`.
///
/// Checks that `si` carries a sid and at least one method.
pub fn offer_iq(id: impl Into<String>, to: Jid, si: Si) -> Result<Iq, Misuse> {
    if si.id.as_deref().is_none_or(str::is_empty) {
        return Err(Misuse::NoSid);
    }
    if si.form().is_none_or(|f| offered_methods(f).is_err()) {
        return Err(Misuse::NoMethods);
    }
    Ok(Iq::from_set(id, si).with_to(to))
}

/// What the target accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// The stream method to open, one of those offered.
    pub method: String,
    /// Profile elements the target sent back (for example XEP-0096's `<file><range/></file>`).
    pub payloads: Vec<Element>,
}

/// The method to use from an answer's `chosen` values: the first method of `offered` (our
/// order, most preferred first) that the peer named.
///
/// XEP-0095 wants exactly one value; old Smack/Spark/XIFF name every method they support
/// (seeds 001, 004), which reads as "any of these", so our own preference decides.
pub fn pick_method(offered: &[String], chosen: &[String]) -> Result<String, SiError> {
    offered
        .iter()
        .find(|m| chosen.contains(m))
        .cloned()
        .ok_or_else(|| SiError::NotOffered(chosen.to_vec()))
}

/// The outcome of an answer to an offer that proposed `offered`.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The target accepted.
    Accepted(Accepted),
    /// The target refused.
    Rejected(Rejection),
}

/// Reads the target's answer: a result carrying `<si/>` with a submit form, or an error.
///
/// A result without payload or with a bad `<si/>` is an [`SiError`]; an error becomes a
/// [`Rejection`].
pub fn parse_answer(offered: &[String], answer: &Iq) -> Result<Answer, SiError> {
    match answer {
        Iq::Result { payload, .. } => {
            let payload = payload.as_ref().ok_or(SiError::MissingFeature)?;
            parse_result_payload(offered, payload).map(Answer::Accepted)
        }
        Iq::Error { error, .. } => Ok(Answer::Rejected(Rejection::from(error.clone()))),
        other => Err(SiError::WrongIqType(iq_type(other))),
    }
}

/// Reads the `<si/>` of a result iq (what `IqTracker::request` hands back).
pub fn parse_result_payload(offered: &[String], payload: &Element) -> Result<Accepted, SiError> {
    let si = Si::try_from(payload)?;
    let form = si.form().ok_or(SiError::MissingFeature)?;
    let chosen = chosen_methods(form)?;
    let method = pick_method(offered, &chosen)?;
    Ok(Accepted {
        method,
        payloads: si.payloads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::method;
    use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

    fn jid(s: &str) -> Jid {
        s.parse().unwrap()
    }

    fn offer_elem(si: &str) -> Iq {
        let s = format!(
            "<iq xmlns='jabber:client' type='set' id='o1' from='a@x/1' to='b@x/2'>{si}</iq>"
        );
        Iq::try_from(s.parse::<Element>().unwrap()).unwrap()
    }

    const FORM: &str = "<feature xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' type='form'><field var='stream-method' type='list-single'><option><value>http://jabber.org/protocol/bytestreams</value></option><option><value>http://jabber.org/protocol/ibb</value></option></field></x></feature>";

    fn good() -> Iq {
        offer_elem(&format!(
            "<si xmlns='http://jabber.org/protocol/si' id='s1' profile='urn:p'><file xmlns='urn:p'/>{FORM}</si>"
        ))
    }

    #[test]
    fn offer_from_iq_reads_sid_profile_and_methods_in_order() {
        let o = Offer::from_iq(&good()).unwrap();
        assert_eq!(o.sid.as_str(), "s1");
        assert_eq!(o.profile, "urn:p");
        assert_eq!(o.mime_type, DEFAULT_MIME_TYPE);
        assert_eq!(o.methods, [method::BYTESTREAMS, method::IBB]);
        assert_eq!(
            o.choose(&[method::IBB, method::BYTESTREAMS]),
            Some(method::IBB)
        );
        assert_eq!(o.choose(&["urn:other"]), None);
    }

    #[test]
    fn accept_reuses_the_id_and_goes_back_to_the_sender() {
        let o = Offer::from_iq(&good()).unwrap();
        let iq = o.accept(method::IBB).unwrap();
        assert_eq!(iq.id(), "o1");
        assert_eq!(iq.to(), Some(&jid("a@x/1")));
        let offered = &o.methods;
        let Answer::Accepted(a) = parse_answer(offered, &iq).unwrap() else {
            panic!("not accepted")
        };
        assert_eq!(a.method, method::IBB);
    }

    #[test]
    fn accepting_a_method_not_offered_is_misuse() {
        let o = Offer::from_iq(&good()).unwrap();
        assert_eq!(
            o.accept("jabber:iq:oob"),
            Err(Misuse::MethodNotOffered("jabber:iq:oob".into()))
        );
    }

    #[test]
    fn decline_is_cancel_forbidden_with_text_and_reads_back_as_declined() {
        let o = Offer::from_iq(&good()).unwrap();
        let iq = o.decline(Some("Offer Declined"));
        let Iq::Error { error, .. } = &iq else {
            panic!()
        };
        assert_eq!(error.type_, ErrorType::Cancel);
        assert_eq!(error.defined_condition, DefinedCondition::Forbidden);
        // Round trip through XML: the text survives.
        let back = Iq::try_from(Element::from(iq.clone())).unwrap();
        assert_eq!(
            parse_answer(&o.methods, &back).unwrap(),
            Answer::Rejected(Rejection::Declined {
                text: Some("Offer Declined".into())
            })
        );
    }

    #[test]
    fn no_valid_streams_and_bad_profile_read_back_typed() {
        let o = Offer::from_iq(&good()).unwrap();
        let back = Iq::try_from(Element::from(o.no_valid_streams())).unwrap();
        assert_eq!(
            parse_answer(&o.methods, &back).unwrap(),
            Answer::Rejected(Rejection::NoValidStreams)
        );
        let back = Iq::try_from(Element::from(o.bad_profile())).unwrap();
        assert_eq!(
            parse_answer(&o.methods, &back).unwrap(),
            Answer::Rejected(Rejection::BadProfile)
        );
    }

    fn condition(err: &SiError) -> (ErrorType, DefinedCondition, Option<AppCondition>) {
        let e = StanzaError::from(err);
        (
            e.type_.clone(),
            e.defined_condition.clone(),
            AppCondition::of(&e),
        )
    }

    #[test]
    fn an_offer_whose_id_is_not_a_valid_sid_is_bad_request() {
        let iq = offer_elem(&format!(
            "<si xmlns='http://jabber.org/protocol/si' id='a&lt;b' profile='urn:p'><file xmlns='urn:p'/>{FORM}</si>"
        ));
        let err = Offer::from_iq(&iq).unwrap_err();
        assert_eq!(err, SiError::BadId(ft_transport::InvalidSid::BadChar('<')));
        assert_eq!(
            condition(&err),
            (ErrorType::Modify, DefinedCondition::BadRequest, None)
        );
    }

    #[test]
    fn invalid_offer_without_id_is_missing_id_bad_request() {
        let iq = offer_elem(&format!(
            "<si xmlns='http://jabber.org/protocol/si' profile='urn:p'><file xmlns='urn:p'/>{FORM}</si>"
        ));
        let err = Offer::from_iq(&iq).unwrap_err();
        assert_eq!(err, SiError::MissingId);
        assert_eq!(
            condition(&err),
            (ErrorType::Modify, DefinedCondition::BadRequest, None)
        );
        let reply = error_reply(&iq, &err).unwrap();
        assert_eq!(reply.id(), "o1");
        assert_eq!(reply.to(), Some(&jid("a@x/1")));
    }

    #[test]
    fn invalid_offer_without_profile_is_bad_profile() {
        let iq = offer_elem(&format!(
            "<si xmlns='http://jabber.org/protocol/si' id='s1'><file xmlns='urn:p'/>{FORM}</si>"
        ));
        let err = Offer::from_iq(&iq).unwrap_err();
        assert_eq!(err, SiError::MissingProfile);
        assert_eq!(
            condition(&err),
            (
                ErrorType::Modify,
                DefinedCondition::BadRequest,
                Some(AppCondition::BadProfile)
            )
        );
    }

    #[test]
    fn invalid_offer_without_profile_element_is_bad_profile() {
        let iq = offer_elem(&format!(
            "<si xmlns='http://jabber.org/protocol/si' id='s1' profile='urn:p'>{FORM}</si>"
        ));
        let err = Offer::from_iq(&iq).unwrap_err();
        assert_eq!(err, SiError::BadProfileElement("urn:p".into()));
        assert_eq!(condition(&err).2, Some(AppCondition::BadProfile));
    }

    #[test]
    fn invalid_offer_without_feature_form_is_no_valid_streams() {
        for si in [
            "<si xmlns='http://jabber.org/protocol/si' id='s1' profile='urn:p'><file xmlns='urn:p'/></si>",
            "<si xmlns='http://jabber.org/protocol/si' id='s1' profile='urn:p'><file xmlns='urn:p'/><feature xmlns='http://jabber.org/protocol/feature-neg'/></si>",
        ] {
            let err = Offer::from_iq(&offer_elem(si)).unwrap_err();
            assert_eq!(err, SiError::MissingFeature);
            assert_eq!(
                condition(&err),
                (
                    ErrorType::Cancel,
                    DefinedCondition::BadRequest,
                    Some(AppCondition::NoValidStreams)
                )
            );
        }
    }

    #[test]
    fn invalid_offer_form_without_stream_method_is_no_valid_streams() {
        let iq = offer_elem(
            "<si xmlns='http://jabber.org/protocol/si' id='s1' profile='urn:p'><file xmlns='urn:p'/><feature xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' type='form'><field var='method' type='list-single'><option><value>a</value></option></field></x></feature></si>",
        );
        let err = Offer::from_iq(&iq).unwrap_err();
        assert_eq!(err, SiError::NoStreamMethod);
        assert_eq!(condition(&err).2, Some(AppCondition::NoValidStreams));
    }

    #[test]
    fn invalid_offer_with_empty_options_is_no_valid_streams() {
        let iq = offer_elem(
            "<si xmlns='http://jabber.org/protocol/si' id='s1' profile='urn:p'><file xmlns='urn:p'/><feature xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' type='form'><field var='stream-method' type='list-single'/></x></feature></si>",
        );
        let err = Offer::from_iq(&iq).unwrap_err();
        assert_eq!(err, SiError::NoOptions);
        assert_eq!(condition(&err).2, Some(AppCondition::NoValidStreams));
    }

    #[test]
    fn invalid_offer_that_is_a_get_is_wrong_iq_type() {
        let iq = Iq::from_get("g", xmpp_parsers::ping::Ping);
        assert_eq!(
            Offer::from_iq(&iq).unwrap_err(),
            SiError::WrongIqType("get")
        );
    }

    #[test]
    fn answer_naming_an_unoffered_method_is_not_offered() {
        let offered = vec![method::IBB.to_owned()];
        let iq = Iq::from_result("o1", Some(Si::answer(method::BYTESTREAMS)));
        assert_eq!(
            parse_answer(&offered, &iq).unwrap_err(),
            SiError::NotOffered(vec![method::BYTESTREAMS.to_owned()])
        );
    }

    #[test]
    fn answer_with_several_values_picks_our_first_offered() {
        let offered = vec![method::IBB.to_owned(), method::BYTESTREAMS.to_owned()];
        assert_eq!(
            pick_method(&offered, &[method::BYTESTREAMS.into(), method::IBB.into()]).unwrap(),
            method::IBB
        );
    }

    #[test]
    fn offer_iq_refuses_an_si_without_methods_or_sid() {
        let sid = Sid::new("s").unwrap();
        let si = Si::offer(&sid, Element::bare("file", "urn:p"), &[]);
        assert_eq!(
            offer_iq("1", jid("b@x/1"), si).unwrap_err(),
            Misuse::NoMethods
        );
        let mut si = Si::offer(&sid, Element::bare("file", "urn:p"), &["m"]);
        si.id = None;
        assert_eq!(offer_iq("1", jid("b@x/1"), si).unwrap_err(), Misuse::NoSid);
    }
}
