//! Both paths give identical stanzas; the stream is bounded and strict.

use super::fast::{parse_data_iq, parse_empty_result, parse_fast};
use super::serialize::{clone_stanza, serialize_empty_result, serialize_fast};
use super::*;
use xmpp_parsers::message::{Message, MessageType};

/// Deterministic bytes that are not all alike.
fn bytes_of(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + i / 7) as u8).collect()
}

fn b64(n: usize) -> String {
    base64_simd::STANDARD.encode_to_string(bytes_of(n))
}

fn data_el(n: usize, sid: &str) -> Element {
    Element::builder("data", NS_IBB)
        .attr(minidom::rxml::xml_ncname!("seq").into(), "7")
        .attr(minidom::rxml::xml_ncname!("sid").into(), sid)
        .append(b64(n))
        .build()
}

fn data_iq(n: usize) -> Stanza {
    Stanza::Iq(Iq::Set {
        from: Some("a@x/r'\"&<>".parse().unwrap()),
        to: Some("b@x/r".parse().unwrap()),
        id: "id&1".into(),
        payload: data_el(n, "s'&<1"),
    })
}

fn data_message(n: usize) -> Stanza {
    let mut m = Message::new_with_type(MessageType::Chat, Some("b@x/r".parse().unwrap()));
    m.from = Some("a@x/r".parse().unwrap());
    m.id = Some(xmpp_parsers::message::Id("m&1".into()));
    m.payloads.push(data_el(n, "s"));
    Stanza::Message(m)
}

fn client_prefixes() -> BTreeMap<Option<String>, String> {
    [(None, NS_CLIENT.to_owned())].into()
}

/// Parses one element with or without the fast path, as the decoder does.
fn parse(bytes: &[u8], fast: bool) -> Result<Stanza, CodecError> {
    XmlCodec::client()
        .header_received()
        .with_fast_path(fast)
        .parse_stanza(bytes)
}

fn decode_all(
    codec: &mut XmlCodec,
    input: &[u8],
    chunk: usize,
) -> Result<Vec<Incoming>, CodecError> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for part in input.chunks(chunk.max(1)) {
        buf.extend_from_slice(part);
        while let Some(item) = codec.decode(&mut buf)? {
            out.push(item);
        }
    }
    while let Some(item) = codec.decode_eof(&mut buf)? {
        out.push(item);
        if matches!(out.last(), Some(Incoming::End)) {
            break;
        }
    }
    Ok(out)
}

#[test]
fn fast_and_general_serialization_give_the_same_stanza() {
    for stanza in [
        data_iq(4096),
        Stanza::Message({
            let mut m = Message::new_with_type(MessageType::Normal, Some("b@x/r".parse().unwrap()));
            m.id = Some(xmpp_parsers::message::Id("m1".into()));
            m.payloads.push(data_el(100, "s"));
            m
        }),
    ] {
        let (mut fast, mut general) = (Vec::new(), Vec::new());
        assert!(serialize_fast(&stanza, NS_CLIENT, &mut fast));
        serialize_general(&stanza, &mut general);
        let a = parse_general(&fast, &client_prefixes()).unwrap();
        let b = parse_general(&general, &client_prefixes()).unwrap();
        assert_eq!(a, b);
        assert_eq!(stanza_from_element(a).unwrap(), stanza);
    }
}

#[test]
fn escape_replaces_exactly_the_five_markup_characters() {
    assert_eq!(escape(""), "");
    assert_eq!(escape("plain é ü"), "plain é ü");
    assert_eq!(
        escape("a&b<c>d'e\"f&&"),
        "a&amp;b&lt;c&gt;d&apos;e&quot;f&amp;&amp;"
    );
}

#[test]
fn a_direct_acknowledgement_parses_to_the_stanza_minidom_writes() {
    for (from, to) in [(Some("a@x/r'&<"), Some("b@x/r")), (None, None)] {
        let stanza = Stanza::Iq(Iq::Result {
            from: from.map(|j| j.parse().unwrap()),
            to: to.map(|j| j.parse().unwrap()),
            id: "id'\"&<>1".into(),
            payload: None,
        });
        let (mut fast, mut general) = (Vec::new(), Vec::new());
        assert!(serialize_empty_result(&stanza, NS_CLIENT, &mut fast));
        serialize_general(&stanza, &mut general);
        assert_eq!(parse(&fast, false).unwrap(), stanza);
        assert_eq!(parse(&general, false).unwrap(), stanza);
    }
}

/// A parser-less path's result for `xml` is `Some` exactly when `taken`, and then the
/// general parse's stanza; whichever way it goes, the decoder answers what the general
/// parse does.
fn assert_path_matches_general(xml: &str, taken: bool, fast: Option<Stanza>) {
    let general = parse(xml.as_bytes(), false);
    match fast {
        Some(fast) => {
            assert!(taken, "{xml}");
            assert_eq!(&fast, general.as_ref().unwrap(), "{xml}");
        }
        None => assert!(!taken, "{xml}"),
    }
    let got = parse(xml.as_bytes(), true);
    assert_eq!(format!("{got:?}"), format!("{general:?}"), "{xml}");
}

#[test]
fn the_parserless_acknowledgement_path_yields_exactly_the_general_stanza() {
    for (xml, taken) in [
        // Ours, and what Prosody relays.
        (
            "<iq xmlns='jabber:client' type='result' id='ibb3-s' to='b@x/r'/>",
            true,
        ),
        (
            "<iq to='a@x/r' id='ibb1-bench' xml:lang='en' from='b@x/r' type='result'/>",
            true,
        ),
        ("<iq type='result' id=''/>", true),
        ("<iq type='result' id='1' from='a@x'/>", true),
        // Not this path: the general one decides.
        ("<iq type='result' id='1' />", false),
        ("<iq type='result'/>", false),
        ("<iq type='set' id='1'/>", false),
        ("<iq type='result' id='1' id='2'/>", false),
        ("<iq type='result' id='1' foo='x'/>", false),
        ("<iq type='result' id='&amp;'/>", false),
        ("<iq type=\"result\" id='1'/>", false),
        ("<iq xmlns='urn:other' type='result' id='1'/>", false),
        ("<iq type='result' id='1' to='not a jid@'/>", false),
        (
            "<iq type='result' id='1'><ping xmlns='urn:xmpp:ping'/></iq>",
            false,
        ),
        ("<message type='result' id='1'/>", false),
    ] {
        assert_path_matches_general(xml, taken, parse_empty_result(xml.as_bytes(), true));
    }
    assert!(parse_empty_result(b"<iq type='result' id='1'/>", false).is_none());
}

#[test]
fn encode_parts_and_both_encoders_write_the_same_bytes() {
    for stanza in [
        data_iq(65535),
        data_message(100),
        data_iq(10),
        Stanza::Iq(Iq::empty_result("b@x/r".parse::<jid::Jid>().unwrap(), "r")),
    ] {
        let mut codec = XmlCodec::client();
        let parts: Vec<u8> = codec.encode_parts(clone_stanza(&stanza)).parts().concat();
        let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
        codec.encode(&stanza, &mut a).unwrap();
        codec.encode(clone_stanza(&stanza), &mut b).unwrap();
        assert_eq!(&a[..], &parts[..]);
        assert_eq!(&b[..], &parts[..]);
        assert_eq!(parse(&parts, true).unwrap(), stanza);
    }
}

#[test]
fn fast_parse_yields_exactly_the_general_parse() {
    let mut bytes = Vec::new();
    serialize(&data_iq(65535), &mut bytes);
    let fast = parse_fast(&bytes, &client_prefixes())
        .unwrap()
        .expect("fast path taken");
    let general = parse_general(&bytes, &client_prefixes()).unwrap();
    assert_eq!(fast, general);
}

#[test]
fn fast_stanza_parse_yields_exactly_the_general_stanza() {
    for stanza in [data_iq(65535), data_iq(100), data_message(65535)] {
        let mut bytes = Vec::new();
        serialize(&stanza, &mut bytes);
        assert!(
            parse_fast_stanza(&bytes, &client_prefixes())
                .unwrap()
                .is_some()
        );
        let fast = parse(&bytes, true).unwrap();
        assert_eq!(fast, parse(&bytes, false).unwrap());
        assert_eq!(fast, stanza);
    }
}

#[test]
fn the_parserless_data_iq_path_yields_exactly_the_general_stanza() {
    let run = b64(300);
    let ibb = NS_IBB;
    for (head, attrs, data_attrs, taken) in [
        (
            "<iq xmlns='jabber:client' type='set'",
            " id='ibb1-s' from='a@x/r' to='b@x/r'",
            " seq='0' sid='s'",
            true,
        ),
        (
            "<iq xmlns='jabber:client' type='set'",
            " to='b@x/r' id='i d' ",
            " sid='s' seq='65535'",
            false,
        ),
        (
            "<iq xmlns='jabber:client' type='set'",
            " to='b@x/r' id='i d'",
            " sid='s' seq='65535'",
            true,
        ),
        (
            "<iq xmlns='jabber:client' type='set'",
            " id='1'",
            " seq='7' sid='s 1'",
            true,
        ),
        (
            "<iq xmlns='jabber:client' type='set'",
            " id=''",
            " seq='' sid=''",
            true,
        ),
        (
            "<iq xmlns='jabber:client' type='set'",
            " id='1' id='2'",
            " seq='7' sid='s'",
            false,
        ),
        (
            "<iq xmlns='jabber:client' type='set'",
            " id='1'",
            " seq='7' sid='s' seq='8'",
            false,
        ),
        (
            "<iq xmlns='jabber:client' type='set'",
            " id='1&amp;'",
            " seq='7' sid='s'",
            false,
        ),
        (
            "<iq xmlns='jabber:client' type='set'",
            " id='1' from='not a jid@'",
            " seq='7' sid='s'",
            false,
        ),
        // What Prosody relays: the stream's xml:lang on the iq, dropped as the general
        // path drops it.
        (
            "<iq xmlns='jabber:client' type='set'",
            " id='1' xml:lang='en'",
            " seq='7' sid='s'",
            true,
        ),
        (
            "<iq to='b@x/r' id='ibb2-s' xml:lang='en' from='a@x/r' type='set'",
            "",
            " seq='0' sid='s'",
            true,
        ),
        (
            "<iq xmlns='jabber:client' type='set'",
            " id='1' xml:lang='en' xml:lang='de'",
            " seq='7' sid='s'",
            false,
        ),
        (
            "<iq xmlns='jabber:client' type='set'",
            " id=\"1\"",
            " seq='7' sid='s'",
            false,
        ),
        // What Prosody relays: no xmlns on the iq (the stream's), attributes in its order.
        (
            "<iq type='set'",
            " to='b@x/r' id='1' from='a@x/r'",
            " seq='7' sid='s'",
            true,
        ),
        (
            "<iq id='1' type='set'",
            " from='a@x/r'",
            " sid='s' seq='7'",
            true,
        ),
        (
            "<iq xmlns='jabber:client' id='1'",
            " type='set'",
            " seq='7' sid='s'",
            true,
        ),
        (
            "<iq xmlns='urn:other' type='set'",
            " id='1'",
            " seq='7' sid='s'",
            false,
        ),
        ("<iq type='get'", " id='1'", " seq='7' sid='s'", false),
        (
            "<iq type='set' type='set'",
            " id='1'",
            " seq='7' sid='s'",
            false,
        ),
    ] {
        for data_ns in [format!(" xmlns='{ibb}'"), " xmlns='urn:x'".to_owned()] {
            let xml = format!("{head}{attrs}><data{data_ns}{data_attrs}>{run}</data></iq>");
            let taken = taken && data_ns.contains(ibb);
            assert_path_matches_general(&xml, taken, parse_data_iq(xml.as_bytes(), true));
        }
    }
    // Without `jabber:client` as the default namespace, an iq without xmlns is not taken.
    let xml =
        format!("<iq type='set' id='1'><data xmlns='{ibb}' seq='7' sid='s'>{run}</data></iq>");
    assert!(parse_data_iq(xml.as_bytes(), false).is_none());
    // What the sending side writes takes it.
    let mut bytes = Vec::new();
    let stanza = Stanza::Iq(Iq::Set {
        from: Some("a@x/r".parse().unwrap()),
        to: Some("b@x/r".parse().unwrap()),
        id: "ibb7-bench".into(),
        payload: data_el(4096, "bench"),
    });
    serialize(&stanza, &mut bytes);
    assert_eq!(parse_data_iq(&bytes, true), Some(stanza));
}

#[test]
fn a_data_run_the_stanza_does_not_keep_as_its_payload_is_parsed_the_general_way() {
    // An iq keeps its first child only: the run in a later `<data/>` must not end up in
    // the first one, even when that one is named `data` too.
    let run = b64(300);
    for first in ["<x xmlns='urn:x'/>", "<data xmlns='urn:x'/>"] {
        let xml = format!(
            "<iq xmlns='jabber:client' type='set' id='1'>{first}<data xmlns='{NS_IBB}' \
             seq='0' sid='s'>{run}</data></iq>"
        );
        let fast = parse(xml.as_bytes(), true);
        let general = parse(xml.as_bytes(), false);
        assert_eq!(format!("{fast:?}"), format!("{general:?}"), "{first}");
        assert!(
            parse_fast_stanza(xml.as_bytes(), &client_prefixes())
                .unwrap()
                .is_none()
        );
    }
}

#[test]
fn text_with_other_characters_keeps_them_in_order() {
    // Whitespace and an entity before the base64 run: only the run is cut.
    let run = b64(300);
    let xml = format!(
        "<iq xmlns='jabber:client' type='set' id='1'><data xmlns='{NS_IBB}' seq='0' \
         sid='s'>&amp; \n{run}</data></iq>"
    );
    let fast = parse_fast(xml.as_bytes(), &client_prefixes())
        .unwrap()
        .unwrap();
    assert_eq!(
        fast,
        parse_general(xml.as_bytes(), &client_prefixes()).unwrap()
    );
    assert_eq!(fast.children().next().unwrap().text(), format!("& \n{run}"));
}

#[test]
fn the_cut_is_the_whole_alphabet_run_whatever_precedes_it() {
    // A `>` in the text, base64 that is not valid (length), and valid base64 directly
    // after the start tag: each parses as the general path does.
    let run = b64(300);
    for text in [
        format!("a>{run}"),
        format!("{run}A"),
        run.clone(),
        format!("{run}\n"),
    ] {
        let xml = format!(
            "<iq xmlns='jabber:client' type='set' id='1'><data xmlns='{NS_IBB}' seq='0' \
             sid='s'>{}</data></iq>",
            text.replace('>', "&gt;")
        );
        let general = parse_general(xml.as_bytes(), &client_prefixes()).unwrap();
        if let Some(fast) = parse_fast(xml.as_bytes(), &client_prefixes()).unwrap() {
            assert_eq!(fast, general);
        }
        let xml = xml.replace("&gt;", ">");
        let general = parse_general(xml.as_bytes(), &client_prefixes()).unwrap();
        let fast = parse_fast(xml.as_bytes(), &client_prefixes()).unwrap();
        assert_eq!(fast.unwrap_or_else(|| general.clone()), general);
    }
}

#[test]
fn malformed_rest_is_still_rejected_on_the_fast_path() {
    let run = b64(300);
    let xml = format!("<iq xmlns='jabber:client' type='set' id='1><data seq='0'>{run}</data></iq>");
    assert!(matches!(
        parse_fast(xml.as_bytes(), &client_prefixes()),
        Err(CodecError::NotWellFormed(_))
    ));
}

#[test]
fn comments_are_restricted_xml() {
    let input = format!("{}<!-- hi --><iq/>", stream_header(None));
    let err = decode_all(&mut XmlCodec::client(), input.as_bytes(), 1000).unwrap_err();
    assert_eq!(err.condition(), Some(DefinedCondition::RestrictedXml));
}

#[test]
fn an_element_past_the_limit_is_a_policy_violation() {
    let input = format!(
        "{}<message><body>{}",
        stream_header(None),
        "a".repeat(DEFAULT_MAX_ELEMENT + 10)
    );
    let err = decode_all(&mut XmlCodec::client(), input.as_bytes(), 65536).unwrap_err();
    assert!(matches!(err, CodecError::TooLarge { .. }));
    assert_eq!(err.condition(), Some(DefinedCondition::PolicyViolation));
}

#[test]
fn an_element_nested_past_the_limit_is_a_policy_violation() {
    let deep = |n: usize| {
        format!(
            "{}<message>{}{}</message>",
            stream_header(None),
            "<x xmlns='urn:x'>".repeat(n),
            "</x>".repeat(n)
        )
    };
    let mut codec = XmlCodec::client().with_max_depth(8);
    assert_eq!(
        decode_all(&mut codec, deep(7).as_bytes(), 5).unwrap().len(),
        1
    );
    let err = decode_all(
        &mut XmlCodec::client().with_max_depth(8),
        deep(8).as_bytes(),
        5,
    )
    .unwrap_err();
    assert!(matches!(err, CodecError::TooDeep { limit: 8 }));
    assert_eq!(err.condition(), Some(DefinedCondition::PolicyViolation));
}

#[test]
fn elements_split_at_every_byte_and_quotes_with_brackets_are_framed() {
    let header = stream_header(None);
    let input = format!(
        "{header}<message to='b@x' id='a&gt;b\"&lt;'><body>x &gt; y</body></message> \
         <presence/><iq type='get' id='2'><ping xmlns='urn:xmpp:ping'/></iq>\n\
         <stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>\
         </stream:stream>"
    );
    for chunk in 1..=input.len() {
        let got = decode_all(&mut XmlCodec::client(), input.as_bytes(), chunk).unwrap();
        let [
            Incoming::Stanza(Stanza::Message(m)),
            Incoming::Stanza(Stanza::Presence(_)),
            Incoming::Stanza(Stanza::Iq(_)),
            Incoming::Element(features),
            Incoming::End,
        ] = &got[..]
        else {
            panic!("chunk {chunk}: {got:?}")
        };
        assert_eq!(m.id.as_ref().unwrap().0, "a>b\"<");
        assert!(features.is("features", NS_STREAM));
    }
}

#[test]
fn a_data_stanza_split_at_every_boundary_takes_the_fast_path() {
    let mut input = stream_header(None).into_bytes();
    serialize(&data_iq(1000), &mut input);
    for chunk in [1, 7, 64, 333, input.len()] {
        let mut codec = XmlCodec::client();
        let got = decode_all(&mut codec, &input, chunk).unwrap();
        assert_eq!(got, [Incoming::Stanza(data_iq(1000))]);
        assert_eq!(codec.fast_hits(), 1);
    }
}

#[test]
fn a_stream_error_ends_the_stream_and_a_bad_header_is_refused() {
    let input = format!(
        "{}<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
        stream_header(None)
    );
    let err = decode_all(&mut XmlCodec::client(), input.as_bytes(), 9).unwrap_err();
    assert!(matches!(err, CodecError::StreamError(ref c) if c == "conflict"));
    let err = decode_all(&mut XmlCodec::client(), b"<html>", 9).unwrap_err();
    assert!(matches!(err, CodecError::BadHeader));
    let err = decode_all(
        &mut XmlCodec::component(),
        stream_header(None).as_bytes(),
        9,
    )
    .unwrap_err();
    assert!(matches!(err, CodecError::BadHeader));
}

#[test]
fn text_between_stanzas_is_not_well_formed_and_eof_inside_an_element_is_unexpected() {
    let input = format!("{}<presence/>junk", stream_header(None));
    let err = decode_all(&mut XmlCodec::client(), input.as_bytes(), 3).unwrap_err();
    assert_eq!(err.condition(), Some(DefinedCondition::NotWellFormed));
    let input = format!("{}<presence>", stream_header(None));
    let err = decode_all(&mut XmlCodec::client(), input.as_bytes(), 3).unwrap_err();
    assert!(matches!(err, CodecError::UnexpectedEof));
}

#[test]
fn after_a_restart_the_new_header_is_read_and_the_bytes_after_it_kept() {
    let input = format!(
        "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>{}<presence/>",
        stream_header(None)
    );
    let mut codec = XmlCodec::client().header_received();
    let mut buf = BytesMut::from(input.as_bytes());
    assert!(matches!(
        codec.decode(&mut buf).unwrap(),
        Some(Incoming::Element(_))
    ));
    codec.restart();
    assert!(matches!(
        codec.decode(&mut buf).unwrap(),
        Some(Incoming::Stanza(Stanza::Presence(_)))
    ));
}

#[test]
fn a_component_stream_reads_and_writes_client_stanzas_in_its_own_namespace() {
    let wire = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' \
                xmlns='jabber:component:accept' id='abc' from='c.localhost'>\
                <iq type='error' id='1' from='a@b/c' to='p.b'><query xmlns='http://jabber.org/protocol/bytestreams'/>\
                <error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>\
                <iq xmlns='jabber:component:accept' type='result' id='2' from='a@b/c' to='p.b'/>";
    let mut codec = XmlCodec::component();
    let got = decode_all(&mut codec, wire.as_bytes(), 11).unwrap();
    let [
        Incoming::Stanza(Stanza::Iq(Iq::Error { error, .. })),
        Incoming::Stanza(Stanza::Iq(Iq::Result { id, .. })),
    ] = &got[..]
    else {
        panic!("{got:?}")
    };
    assert_eq!(error.defined_condition, StanzaCondition::ItemNotFound);
    assert_eq!(id, "2");
    // Out again, in the component namespace, fast path or not.
    for stanza in [
        Stanza::Iq(Iq::empty_result("b@x/r".parse::<jid::Jid>().unwrap(), "r")),
        data_iq(1000),
        Stanza::Iq(Iq::from_get("g", xmpp_parsers::ping::Ping)),
    ] {
        let bytes = codec.encode_parts(clone_stanza(&stanza)).parts().concat();
        let el: Element = String::from_utf8(bytes).unwrap().parse().unwrap();
        assert_eq!(el.ns(), NS_COMPONENT);
        assert_eq!(
            Stanza::try_from(renamespace(el, NS_COMPONENT, NS_CLIENT)).unwrap(),
            stanza
        );
    }
}

fn classify_xml(xml: &str) -> Incoming {
    XmlCodec::client()
        .header_received()
        .decode_element(xml.as_bytes())
        .unwrap()
}

#[test]
fn sparks_upper_case_modify_refusal_is_repaired_into_a_typed_iq_error() {
    // Seed 000: Spark refusing a file offer.
    let xml = "<iq xmlns='jabber:client' id='file_33fe4dbdf2364' to='lxy@user-20160421db/8xz8uslghx' from='lxy2@user-20160421db/Spark' type='error'>\n\t<error code='406' type='MODIFY'>\n\t\tnot-acceptable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>\n\t</error>\n</iq>";
    let el: Element = xml.parse().unwrap();
    assert!(Stanza::try_from(el).is_err(), "strict parser refuses it");
    let Incoming::Stanza(Stanza::Iq(Iq::Error {
        id, from, error, ..
    })) = classify_xml(xml)
    else {
        panic!("not repaired")
    };
    assert_eq!(id, "file_33fe4dbdf2364");
    assert_eq!(from.unwrap().to_string(), "lxy2@user-20160421db/Spark");
    assert_eq!(error.type_, ErrorType::Modify);
    assert_eq!(error.defined_condition, StanzaCondition::NotAcceptable);
}

#[test]
fn a_malformed_iq_request_is_answered_bad_request_to_its_sender() {
    // No payload: RFC 6120 §8.2.3 requires exactly one child in a get.
    let Incoming::Malformed(m) = classify_xml(
        "<iq xmlns='jabber:client' type='get' id='j1' from='bob@localhost/x' to='alice@localhost/y'/>",
    ) else {
        panic!("not malformed")
    };
    let Some(Iq::Error { id, to, error, .. }) = m.bad_request() else {
        panic!("not refused")
    };
    assert_eq!(id, "j1");
    assert_eq!(to.unwrap().to_string(), "bob@localhost/x");
    assert_eq!(error.type_, ErrorType::Modify);
    assert_eq!(error.defined_condition, StanzaCondition::BadRequest);
}

#[test]
fn a_malformed_message_or_result_is_dropped_without_an_answer() {
    for xml in [
        "<message xmlns='jabber:client' type='bogus' from='bob@localhost/x'><body>hi</body></message>",
        "<iq xmlns='jabber:client' type='result' from='bob@localhost/x'/>",
        "<iq xmlns='jabber:client' type='get' id='r' from='not a jid@@'/>",
        "<message xmlns='jabber:client' from='bob@localhost/x'><thread>a</thread><thread>b</thread></message>",
        "<presence xmlns='jabber:client' type='nonsense'/>",
        "<junk xmlns='jabber:client'/>",
    ] {
        let Incoming::Malformed(m) = classify_xml(xml) else {
            panic!("{xml}")
        };
        assert!(m.bad_request().is_none(), "{xml}");
    }
}

#[test]
fn well_formed_stanzas_pass_unchanged() {
    let xml = "<iq xmlns='jabber:client' type='error' id='e' from='bob@localhost/x'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>";
    let Incoming::Stanza(stanza) = classify_xml(xml) else {
        panic!()
    };
    assert_eq!(Element::from(stanza), xml.parse::<Element>().unwrap());
}

/// BAD-INPUT A4 (RFC 6120 §11.1): a DTD is restricted XML, an entity reference XML does not
/// predefine is not well-formed, and depth and size are bounded (the size bound is also what
/// bounds the number of attributes): each ends the stream with its stream error.
#[test]
fn a4_dtd_entities_depth_and_attribute_floods_are_refused_by_the_xml_layer() {
    let header = stream_header(None);
    let dtd = format!("{header}<!DOCTYPE iq [<!ENTITY x 'y'>]><iq/>");
    let err = decode_all(&mut XmlCodec::client(), dtd.as_bytes(), 7).unwrap_err();
    assert_eq!(
        err.condition(),
        Some(DefinedCondition::RestrictedXml),
        "{err}"
    );

    let pi = format!("{header}<?evil x?><iq/>");
    let err = decode_all(&mut XmlCodec::client(), pi.as_bytes(), 7).unwrap_err();
    assert_eq!(
        err.condition(),
        Some(DefinedCondition::RestrictedXml),
        "{err}"
    );

    let entity = format!(
        "{header}<message xmlns='jabber:client' to='b@x' id='1'><body>&xxe;</body></message>"
    );
    let err = decode_all(&mut XmlCodec::client(), entity.as_bytes(), 7).unwrap_err();
    assert_eq!(
        err.condition(),
        Some(DefinedCondition::NotWellFormed),
        "{err}"
    );

    let deep = format!(
        "{header}<message>{}{}</message>",
        "<x xmlns='urn:x'>".repeat(DEFAULT_MAX_DEPTH + 1),
        "</x>".repeat(DEFAULT_MAX_DEPTH + 1)
    );
    let err = decode_all(&mut XmlCodec::client(), deep.as_bytes(), 4096).unwrap_err();
    assert_eq!(
        err.condition(),
        Some(DefinedCondition::PolicyViolation),
        "{err}"
    );

    let attributes: String = (0..150_000).map(|i| format!(" a{i}='v'")).collect();
    let flood = format!("{header}<message{attributes}/>");
    let err = decode_all(&mut XmlCodec::client(), flood.as_bytes(), 65536).unwrap_err();
    assert!(matches!(err, CodecError::TooLarge { .. }), "{err}");
    assert_eq!(err.condition(), Some(DefinedCondition::PolicyViolation));
}
