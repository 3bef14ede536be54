//! The `<si/>` and `<feature/>` wire types and the XEP-0020 stream-method form.
//!
//! See [XEP-0095 §4](https://xmpp.org/extensions/xep-0095.html#def) and
//! [XEP-0020](https://xmpp.org/extensions/xep-0020.html). These types hold what is on the
//! wire and nothing more; the rules (an offer MUST carry an id and a profile, an answer MUST
//! name exactly one method) are checked in [`crate::proto`].

use minidom::Element;
use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType, Option_};
use xmpp_parsers::iq::{IqResultPayload, IqSetPayload};
use xso::{AsXml, FromXml};

use crate::error::SiError;

/// `http://jabber.org/protocol/si`, the namespace of `<si/>` and of its error conditions.
pub const NS_SI: &str = "http://jabber.org/protocol/si";
/// `http://jabber.org/protocol/feature-neg`, XEP-0020 feature negotiation.
pub const NS_FEATURE_NEG: &str = "http://jabber.org/protocol/feature-neg";
/// The data form field that carries the stream methods.
pub const STREAM_METHOD: &str = "stream-method";

/// Well-known stream method namespaces. SI names methods by namespace string only; this
/// crate never depends on the bytestream crates.
pub mod method {
    /// XEP-0065 SOCKS5 Bytestreams.
    pub const BYTESTREAMS: &str = "http://jabber.org/protocol/bytestreams";
    /// XEP-0047 In-Band Bytestreams.
    pub const IBB: &str = "http://jabber.org/protocol/ibb";
}

/// A stream id, the `id` attribute of an offer's `<si/>`, reused as the `sid` of the
/// bytestream that follows: the one [`ft_transport::Sid`] every xft crate shares (an
/// NMTOKEN of 1 to 128 bytes).
///
/// See [XEP-0095 §3.1](https://xmpp.org/extensions/xep-0095.html#protocol).
pub use ft_transport::Sid;

/// `<feature xmlns='http://jabber.org/protocol/feature-neg'>` around a data form.
///
/// See [XEP-0020 §5](https://xmpp.org/extensions/xep-0020.html#protocol).
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS_FEATURE_NEG, name = "feature")]
pub struct FeatureNeg {
    /// The form; `None` for an empty `<feature/>` (which is an error in an offer or answer).
    #[xml(child(default))]
    pub form: Option<DataForm>,
}

/// `<si xmlns='http://jabber.org/protocol/si' id mime-type profile>`.
///
/// The same element carries the offer (`id`, `profile`, the profile's own element and a
/// form of type `form`) and the answer (usually no attributes and a form of type
/// `submit`). The profile element is kept as a raw [`Element`] so any profile fits; the
/// file-transfer profile lives in `xep0096-file`.
///
/// See [XEP-0095 §4.1](https://xmpp.org/extensions/xep-0095.html#def-si).
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS_SI, name = "si")]
pub struct Si {
    /// The stream id (MUST be present in an offer, SHOULD NOT be in an answer).
    #[xml(attribute(default))]
    pub id: Option<String>,
    /// The MIME type of the stream's data (`application/octet-stream` when absent).
    #[xml(attribute(name = "mime-type", default))]
    pub mime_type: Option<String>,
    /// The profile namespace (MUST be present in an offer).
    #[xml(attribute(default))]
    pub profile: Option<String>,
    /// Every other child: the profile element (for example `<file/>`), in document order.
    /// Written before the feature form, as in XEP-0095's examples.
    #[xml(element(n = ..))]
    pub payloads: Vec<Element>,
    /// The feature negotiation.
    #[xml(child(default))]
    pub feature: Option<FeatureNeg>,
}

impl IqSetPayload for Si {}
impl IqResultPayload for Si {}

impl Si {
    /// An offer: `id`, `profile`, the profile's element and a form offering `methods` in
    /// the given order (most preferred first).
    pub fn offer(sid: &Sid, profile_element: Element, methods: &[&str]) -> Self {
        Self {
            id: Some(sid.as_str().to_owned()),
            mime_type: None,
            profile: Some(profile_element.ns()),
            feature: Some(FeatureNeg {
                form: Some(offer_form(methods)),
            }),
            payloads: vec![profile_element],
        }
    }

    /// Sets the `mime-type` attribute.
    #[must_use]
    pub fn with_mime_type(mut self, mime_type: impl Into<String>) -> Self {
        self.mime_type = Some(mime_type.into());
        self
    }

    /// An answer choosing `method`, with no attributes (XEP-0095 §4.1: the answer "SHOULD
    /// NOT possess any attributes").
    pub fn answer(method: &str) -> Self {
        Self {
            id: None,
            mime_type: None,
            profile: None,
            feature: Some(FeatureNeg {
                form: Some(submit_form(method)),
            }),
            payloads: Vec::new(),
        }
    }

    /// Adds a profile element to an answer (for example `<file><range offset/></file>`).
    #[must_use]
    pub fn with_payload(mut self, payload: Element) -> Self {
        self.payloads.push(payload);
        self
    }

    /// The feature-negotiation form, if there is one.
    pub fn form(&self) -> Option<&DataForm> {
        self.feature.as_ref().and_then(|f| f.form.as_ref())
    }

    /// The first payload in namespace `ns` with local name `name`.
    pub fn payload(&self, name: &str, ns: &str) -> Option<&Element> {
        self.payloads.iter().find(|e| e.is(name, ns))
    }
}

/// The XEP-0020 form an offer carries: one `list-single` field `stream-method` with one
/// `<option>` per method, in the order given.
pub fn offer_form(methods: &[&str]) -> DataForm {
    let mut field = Field::new(STREAM_METHOD, FieldType::ListSingle);
    field.options = methods
        .iter()
        .map(|m| Option_ {
            label: None,
            value: (*m).to_owned(),
        })
        .collect();
    DataForm {
        type_: DataFormType::Form,
        title: None,
        instructions: None,
        fields: vec![field],
    }
}

/// The XEP-0020 form an answer carries: field `stream-method` with the one chosen value.
pub fn submit_form(method: &str) -> DataForm {
    let mut field = Field::new(STREAM_METHOD, FieldType::TextSingle);
    field.values.push(method.to_owned());
    DataForm {
        type_: DataFormType::Submit,
        title: None,
        instructions: None,
        fields: vec![field],
    }
}

fn stream_method_field(form: &DataForm) -> Option<&Field> {
    form.fields
        .iter()
        .find(|f| f.var.as_deref() == Some(STREAM_METHOD))
}

/// How many `<option/>`s of an offer's `stream-method` field (or `<value/>`s of an
/// answer's) are read; later ones are ignored (BAD-INPUT B6). Real clients offer two or
/// three; reading more only costs time on a hostile list.
pub const MAX_METHODS: usize = 16;

/// The methods an offer's form proposes, in the sender's order, without duplicates: the
/// first [`MAX_METHODS`] options, deduplicated. Values we do not know are kept here and
/// ignored by whoever chooses ([`Offer::choose`](crate::Offer::choose)).
///
/// Accepts `type='list-multi'` as well as the XEP's `list-single` (Spark sends
/// `list-multi`, see the seed 004 capture). Options with an empty value are skipped.
pub fn offered_methods(form: &DataForm) -> Result<Vec<String>, SiError> {
    if form.type_ != DataFormType::Form {
        return Err(SiError::WrongFormType {
            expected: "form",
            found: form_type_name(&form.type_),
        });
    }
    let field = stream_method_field(form).ok_or(SiError::NoStreamMethod)?;
    let mut out: Vec<String> = Vec::new();
    for option in field.options.iter().take(MAX_METHODS) {
        let v = option.value.trim();
        if !v.is_empty() && !out.iter().any(|o| o == v) {
            out.push(v.to_owned());
        }
    }
    if out.is_empty() {
        return Err(SiError::NoOptions);
    }
    Ok(out)
}

/// The values an answer's form names, in the peer's order, without duplicates (the first
/// [`MAX_METHODS`]).
///
/// XEP-0095 says there MUST be exactly one; old Smack/Spark and XIFF send every method they
/// support (seeds 001 and 004), so several are accepted here and the initiator picks (see
/// [`crate::proto::pick_method`]). A `type='result'` form is accepted too.
pub fn chosen_methods(form: &DataForm) -> Result<Vec<String>, SiError> {
    if !matches!(form.type_, DataFormType::Submit | DataFormType::Result_) {
        return Err(SiError::WrongFormType {
            expected: "submit",
            found: form_type_name(&form.type_),
        });
    }
    let field = stream_method_field(form).ok_or(SiError::NoStreamMethod)?;
    let mut out: Vec<String> = Vec::new();
    for value in field.values.iter().take(MAX_METHODS) {
        let v = value.trim();
        if !v.is_empty() && !out.iter().any(|o| o == v) {
            out.push(v.to_owned());
        }
    }
    if out.is_empty() {
        return Err(SiError::NoChosenMethod);
    }
    Ok(out)
}

fn form_type_name(t: &DataFormType) -> &'static str {
    match t {
        DataFormType::Cancel => "cancel",
        DataFormType::Form => "form",
        DataFormType::Result_ => "result",
        DataFormType::Submit => "submit",
    }
}

impl TryFrom<&Element> for Si {
    type Error = SiError;

    fn try_from(elem: &Element) -> Result<Self, SiError> {
        if !elem.is("si", NS_SI) {
            return Err(SiError::NotSi {
                name: elem.name().to_owned(),
                ns: elem.ns(),
            });
        }
        Self::try_from(elem.clone()).map_err(|e| SiError::Malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(s: &str) -> Element {
        s.parse().unwrap()
    }

    #[test]
    fn offer_round_trips_with_methods_in_order() {
        let file = el("<file xmlns='urn:x:p' name='a'/>");
        let sid = Sid::new("s1").unwrap();
        let si =
            Si::offer(&sid, file, &[method::BYTESTREAMS, method::IBB]).with_mime_type("text/plain");
        let elem = Element::from(si.clone());
        let back = Si::try_from(&elem).unwrap();
        assert_eq!(back, si);
        assert_eq!(back.profile.as_deref(), Some("urn:x:p"));
        assert_eq!(
            offered_methods(back.form().unwrap()).unwrap(),
            [method::BYTESTREAMS, method::IBB]
        );
    }

    #[test]
    fn answer_round_trips_with_one_value() {
        let si = Si::answer(method::IBB);
        let back = Si::try_from(&Element::from(si.clone())).unwrap();
        assert_eq!(back, si);
        assert_eq!(chosen_methods(back.form().unwrap()).unwrap(), [method::IBB]);
    }

    fn xml(si: Si) -> String {
        let mut out = Vec::new();
        Element::from(si).write_to(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn offer_and_answer_have_the_xep_wire_form() {
        let file = Element::bare("file", "urn:p");
        assert_eq!(
            xml(Si::offer(
                &Sid::new("s").unwrap(),
                file,
                &[method::BYTESTREAMS, method::IBB]
            )),
            "<si xmlns='http://jabber.org/protocol/si' id='s' profile='urn:p'>\
             <file xmlns='urn:p'/>\
             <feature xmlns='http://jabber.org/protocol/feature-neg'>\
             <x xmlns='jabber:x:data' type='form'><field type='list-single' var='stream-method'>\
             <option><value>http://jabber.org/protocol/bytestreams</value></option>\
             <option><value>http://jabber.org/protocol/ibb</value></option>\
             </field></x></feature></si>"
        );
        assert_eq!(
            xml(Si::answer(method::IBB)),
            "<si xmlns='http://jabber.org/protocol/si'>\
             <feature xmlns='http://jabber.org/protocol/feature-neg'>\
             <x xmlns='jabber:x:data' type='submit'><field var='stream-method'>\
             <value>http://jabber.org/protocol/ibb</value></field></x></feature></si>"
        );
    }

    #[test]
    fn list_multi_offer_is_accepted() {
        let form: DataForm = DataForm::try_from(el(
            "<x xmlns='jabber:x:data' type='form'><field var='stream-method' type='list-multi'>\
             <option><value>a</value></option><option><value>b</value></option></field></x>",
        ))
        .unwrap();
        assert_eq!(offered_methods(&form).unwrap(), ["a", "b"]);
    }

    #[test]
    fn b6_only_the_first_16_options_are_read_deduplicated() {
        let options = |values: &[String]| -> DataForm {
            let options: String = values
                .iter()
                .map(|v| format!("<option><value>{v}</value></option>"))
                .collect();
            DataForm::try_from(el(&format!(
                "<x xmlns='jabber:x:data' type='form'>\
                 <field var='stream-method' type='list-single'>{options}</field></x>"
            )))
            .unwrap()
        };
        // 16 unknown methods, then ibb as the 17th: ibb is not read.
        let mut values: Vec<String> = (0..16).map(|i| format!("urn:junk:{i}")).collect();
        values.push("http://jabber.org/protocol/ibb".into());
        let read = offered_methods(&options(&values)).unwrap();
        assert_eq!(read.len(), 16);
        assert!(!read.iter().any(|m| m.contains("ibb")));
        // Duplicates count once, among the first 16 options.
        let mut values: Vec<String> = vec!["b".into(); 10];
        values.extend(["a".into(), "b".into(), "a".into(), "c".into()]);
        values.extend((0..10_000).map(|i| format!("urn:junk:{i}")));
        assert_eq!(
            offered_methods(&options(&values)).unwrap(),
            ["b", "a", "c", "urn:junk:0", "urn:junk:1"]
        );
        // An answer's values likewise.
        let submit = DataForm::try_from(el(&format!(
            "<x xmlns='jabber:x:data' type='submit'><field var='stream-method'>{}</field></x>",
            (0..40)
                .map(|i| format!("<value>v{}</value>", i % 20))
                .collect::<String>()
        )))
        .unwrap();
        assert_eq!(chosen_methods(&submit).unwrap().len(), 16);
    }

    #[test]
    fn two_value_submit_yields_both_in_order() {
        let form = DataForm::try_from(el(
            "<x xmlns='jabber:x:data' type='submit'><field var='stream-method'>\
             <value>b</value><value>a</value><value>b</value></field></x>",
        ))
        .unwrap();
        assert_eq!(chosen_methods(&form).unwrap(), ["b", "a"]);
    }

    #[test]
    fn invalid_form_without_stream_method_is_no_stream_method() {
        let form = DataForm::try_from(el(
            "<x xmlns='jabber:x:data' type='form'><field var='other' type='list-single'>\
             <option><value>a</value></option></field></x>",
        ))
        .unwrap();
        assert!(matches!(
            offered_methods(&form),
            Err(SiError::NoStreamMethod)
        ));
    }

    #[test]
    fn invalid_form_with_empty_options_is_no_options() {
        let form = DataForm::try_from(el(
            "<x xmlns='jabber:x:data' type='form'><field var='stream-method' type='list-single'/></x>",
        ))
        .unwrap();
        assert!(matches!(offered_methods(&form), Err(SiError::NoOptions)));
    }

    #[test]
    fn invalid_submit_without_value_is_no_chosen_method() {
        let form = DataForm::try_from(el(
            "<x xmlns='jabber:x:data' type='submit'><field var='stream-method'/></x>",
        ))
        .unwrap();
        assert!(matches!(
            chosen_methods(&form),
            Err(SiError::NoChosenMethod)
        ));
    }

    #[test]
    fn invalid_offer_form_of_type_submit_is_wrong_form_type() {
        let form = submit_form("a");
        assert!(matches!(
            offered_methods(&form),
            Err(SiError::WrongFormType {
                expected: "form",
                found: "submit"
            })
        ));
    }

    #[test]
    fn invalid_element_that_is_not_si_is_not_si() {
        let err = Si::try_from(&el("<query xmlns='urn:x'/>")).unwrap_err();
        assert!(matches!(err, SiError::NotSi { ref name, .. } if name == "query"));
    }

    #[test]
    fn empty_sid_is_refused() {
        assert!(Sid::new("").is_err());
        assert!("".parse::<Sid>().is_err());
    }
}
