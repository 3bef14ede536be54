//! Every IBB stanza captured from real clients (seeds 000 and 004) and every XEP-0047 example:
//! parsed, checked for meaning, serialized and parsed again.

use std::ops::ControlFlow;
use std::time::Instant;

use minidom::Element;
use xep0047_ibb::{
    Config, Data, Payload, PayloadError, Session, Sid, StanzaKind, proto::IncomingOpen,
};
use xmpp_parsers::{
    iq::Iq,
    message::{Message, MessageType},
    stanza::Stanza,
    stanza_error::{DefinedCondition, ErrorType},
};

/// Parses a fixture: drops a leading `<!-- … -->` line, supplies the stream's default
/// namespace where the capture has none, and drops whitespace between elements.
fn load(text: &str) -> Stanza {
    let body = match text.strip_prefix("<!--") {
        Some(rest) => &rest[rest.find("-->").unwrap() + 3..],
        None => text,
    }
    .trim();
    let body = if body.contains("xmlns='jabber:client'") || body.contains("xmlns=\"jabber:client\"")
    {
        body.to_owned()
    } else {
        let name_end = body.find([' ', '>', '/']).unwrap();
        format!(
            "{} xmlns='jabber:client'{}",
            &body[..name_end],
            &body[name_end..]
        )
    };
    // Whitespace between elements is not content (a stream parser drops it too).
    let mut compact = String::with_capacity(body.len());
    let mut rest = body.as_str();
    while let Some(i) = rest.find('>') {
        compact.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let trimmed = rest.trim_start();
        if trimmed.starts_with('<') {
            rest = trimmed;
        }
    }
    compact.push_str(rest);
    let elem: Element = compact.parse().unwrap();
    let stanza = match elem.name() {
        "iq" => Stanza::Iq(Iq::try_from(elem).unwrap()),
        "message" => Stanza::Message(Message::try_from(elem).unwrap()),
        other => panic!("unexpected root {other}"),
    };
    // Serialize and parse again: same value.
    let again = match &stanza {
        Stanza::Iq(iq) => {
            let e: Element = iq.clone().into();
            let s = String::from(&e);
            Stanza::Iq(Iq::try_from(s.parse::<Element>().unwrap()).unwrap())
        }
        Stanza::Message(m) => {
            let e: Element = m.clone().into();
            let s = String::from(&e);
            Stanza::Message(Message::try_from(s.parse::<Element>().unwrap()).unwrap())
        }
        Stanza::Presence(_) => unreachable!(),
    };
    assert_eq!(again, stanza);
    stanza
}

/// The IBB payload of a stanza, round-tripped through our own serializer.
fn payload(stanza: &Stanza) -> Result<Payload, PayloadError> {
    let elem = match stanza {
        Stanza::Iq(Iq::Set { payload, .. }) => payload,
        Stanza::Message(m) => m.payloads.iter().find(|p| p.name() == "data").unwrap(),
        _ => panic!("no ibb payload"),
    };
    let p = Payload::parse(elem)?.expect("an ibb payload");
    assert_eq!(Payload::parse(&p.to_element()).unwrap().unwrap(), p);
    Ok(p)
}

fn open_of(stanza: &Stanza) -> (String, u16, StanzaKind) {
    match payload(stanza).unwrap() {
        Payload::Open(o) => (o.sid.to_string(), o.block_size, o.stanza),
        other => panic!("not an open: {other:?}"),
    }
}

fn data_of(stanza: &Stanza) -> (String, u16, Vec<u8>) {
    match payload(stanza).unwrap() {
        Payload::Data(d) => (d.sid.to_string(), d.seq, d.data),
        other => panic!("not data: {other:?}"),
    }
}

fn close_of(stanza: &Stanza) -> String {
    match payload(stanza).unwrap() {
        Payload::Close(c) => c.sid.to_string(),
        other => panic!("not a close: {other:?}"),
    }
}

fn result_id(stanza: &Stanza) -> &str {
    match stanza {
        Stanza::Iq(Iq::Result { id, payload, .. }) => {
            assert!(payload.is_none());
            id
        }
        _ => panic!("not a result"),
    }
}

fn error_of(stanza: &Stanza) -> (ErrorType, DefinedCondition) {
    match stanza {
        Stanza::Iq(Iq::Error { error, .. }) => {
            (error.type_.clone(), error.defined_condition.clone())
        }
        _ => panic!("not an error"),
    }
}

macro_rules! fixture {
    ($path:literal) => {
        load(include_str!(concat!("fixtures/", $path)))
    };
}

// --- captured: seed 000 (Openfire + Spark, iq) ---

#[test]
fn spark_open_over_iq_names_stanza_iq_and_block_size_4096() {
    let s = fixture!("captured/000-open-iq.xml");
    assert_eq!(
        open_of(&s),
        ("jsi_33fe66c647209".into(), 4096, StanzaKind::Iq)
    );
}

#[test]
fn spark_open_result_answers_the_open_id() {
    let s = fixture!("captured/000-open-result.xml");
    assert_eq!(result_id(&s), "efd57f0e-ba5a-4cbe-b68b-d7e1353839c2:ibb");
}

#[test]
fn the_placeholder_in_seed_000_data_is_rejected_as_invalid_base64() {
    let s = fixture!("captured/000-data-iq-placeholder.xml");
    assert_eq!(payload(&s), Err(PayloadError::InvalidBase64));
}

#[test]
fn spark_data_ack_answers_the_data_id() {
    let s = fixture!("captured/000-data-ack.xml");
    assert_eq!(result_id(&s), "b8ef6e92-66c8-41f9-aa16-711d471b5b7a:ibb");
}

#[test]
fn spark_close_and_its_result() {
    let s = fixture!("captured/000-close.xml");
    assert_eq!(close_of(&s), "jsi_33fe66c647209");
    let r = fixture!("captured/000-close-result.xml");
    assert_eq!(result_id(&r), "f113f9f8-619b-4446-8551-3e85d7bbd065:ibb");
}

#[test]
fn spark_cancel_by_the_sender_is_a_close() {
    let s = fixture!("captured/000-sender-cancel-close.xml");
    assert_eq!(close_of(&s), "jsi_33fe9304c6907");
    let r = fixture!("captured/000-sender-cancel-result.xml");
    assert_eq!(result_id(&r), "ff5767cb-7677-43e8-9e9c-ae7493ab7a04:ibb");
}

#[test]
fn spark_cancel_by_the_receiver_is_a_close_answered_with_a_result() {
    let s = fixture!("captured/000-receiver-cancel-close.xml");
    assert_eq!(close_of(&s), "jsi_33fe9702f3329");
    let r = fixture!("captured/000-receiver-cancel-result.xml");
    assert_eq!(result_id(&r), "pfVx0-912");
}

// --- captured: seed 004 (Spark fallback, data in messages) ---

#[test]
fn spark_fallback_open_without_stanza_attribute_means_iq() {
    let s = fixture!("captured/004-open-no-stanza.xml");
    assert_eq!(
        open_of(&s),
        ("jsi_5471441136722873260".into(), 4096, StanzaKind::Iq)
    );
    assert_eq!(
        result_id(&fixture!("captured/004-open-result.xml")),
        "vrC08-128"
    );
}

#[test]
fn spark_data_in_a_message_decodes_to_the_597_byte_file() {
    let s = fixture!("captured/004-data-message.xml");
    let Stanza::Message(m) = &s else { panic!() };
    assert_eq!(m.type_, MessageType::Normal);
    let (sid, seq, bytes) = data_of(&s);
    assert_eq!((sid.as_str(), seq), ("jsi_5471441136722873260", 0));
    // The offer said size='597' (RunSpark.lnk); a .lnk starts with 4C 00 00 00 01 14 02 00.
    assert_eq!(bytes.len(), 597);
    assert_eq!(&bytes[..8], &[0x4c, 0, 0, 0, 0x01, 0x14, 0x02, 0x00]);
}

#[test]
fn spark_fallback_close_and_result() {
    assert_eq!(
        close_of(&fixture!("captured/004-close.xml")),
        "jsi_5471441136722873260"
    );
    assert_eq!(
        result_id(&fixture!("captured/004-close-result.xml")),
        "vrC08-130"
    );
}

#[test]
fn a_responder_session_takes_spark_fallback_as_captured() {
    // Open without `stanza` (iq), then data in a message: accepted, 597 bytes, then close.
    let now = Instant::now();
    let config = Config::default();
    let open = fixture!("captured/004-open-no-stanza.xml");
    let incoming = IncomingOpen::parse(&open).unwrap().unwrap();
    incoming.check(&config).unwrap();
    let mut s = Session::accept(&config, &incoming, now);
    let Some(Stanza::Iq(Iq::Result { id, to, .. })) = s.poll_transmit() else {
        panic!()
    };
    assert_eq!(
        (id.as_str(), to.unwrap().to_string().as_str()),
        ("vrC08-128", "user1@host/spark")
    );
    assert!(matches!(
        s.handle_stanza(now, fixture!("captured/004-data-message.xml")),
        ControlFlow::Break(())
    ));
    assert!(
        s.poll_transmit().is_none(),
        "message data is not acknowledged"
    );
    let mut buf = [0u8; 1024];
    assert_eq!(s.read(&mut buf).unwrap(), 597);
    assert!(matches!(
        s.handle_stanza(now, fixture!("captured/004-close.xml")),
        ControlFlow::Break(())
    ));
    let Some(Stanza::Iq(Iq::Result { id, .. })) = s.poll_transmit() else {
        panic!()
    };
    assert_eq!(id, "vrC08-130");
    assert!(s.is_eof());
    assert_eq!(s.sid(), &Sid::new("jsi_5471441136722873260").unwrap());
}

// --- XEP-0047 v2.0.1 examples ---

#[test]
fn xep_example_1_open() {
    let s = fixture!("xep0047/ex01-open.xml");
    assert_eq!(open_of(&s), ("i781hf64".into(), 4096, StanzaKind::Iq));
}

#[test]
fn xep_example_2_open_accepted() {
    assert_eq!(
        result_id(&fixture!("xep0047/ex02-open-result.xml")),
        "jn3h8g65"
    );
}

#[test]
fn xep_example_3_service_unavailable() {
    let s = fixture!("xep0047/ex03-open-service-unavailable.xml");
    assert_eq!(
        error_of(&s),
        (ErrorType::Cancel, DefinedCondition::ServiceUnavailable)
    );
}

#[test]
fn xep_example_4_resource_constraint() {
    let s = fixture!("xep0047/ex04-open-resource-constraint.xml");
    assert_eq!(
        error_of(&s),
        (ErrorType::Modify, DefinedCondition::ResourceConstraint)
    );
}

#[test]
fn xep_example_5_not_acceptable() {
    let s = fixture!("xep0047/ex05-open-not-acceptable.xml");
    assert_eq!(
        error_of(&s),
        (ErrorType::Cancel, DefinedCondition::NotAcceptable)
    );
}

#[test]
fn xep_example_6_data_in_iq_with_wrapped_lines() {
    let (sid, seq, bytes) = data_of(&fixture!("xep0047/ex06-data-iq.xml"));
    assert_eq!((sid.as_str(), seq, bytes.len()), ("i781hf64", 0, 240));
    assert_eq!(&bytes[..3], &[0xa8, 0x03, 0x50]);
}

#[test]
fn xep_example_7_ack() {
    assert_eq!(
        result_id(&fixture!("xep0047/ex07-data-ack.xml")),
        "kr91n475"
    );
}

#[test]
fn xep_example_8_close() {
    assert_eq!(close_of(&fixture!("xep0047/ex08-close.xml")), "i781hf64");
}

#[test]
fn xep_example_9_close_result() {
    assert_eq!(
        result_id(&fixture!("xep0047/ex09-close-result.xml")),
        "us71g45j"
    );
}

#[test]
fn xep_example_10_item_not_found() {
    let s = fixture!("xep0047/ex10-close-item-not-found.xml");
    assert_eq!(
        error_of(&s),
        (ErrorType::Cancel, DefinedCondition::ItemNotFound)
    );
}

#[test]
fn xep_example_11_data_in_message_equals_example_6() {
    let m = data_of(&fixture!("xep0047/ex11-data-message.xml"));
    let i = data_of(&fixture!("xep0047/ex06-data-iq.xml"));
    assert_eq!(m, i);
    // Our own encoding of those bytes parses back to the same chunk.
    let e = Data::encode(i.1, &Sid::new(i.0.as_str()).unwrap(), &i.2);
    assert_eq!(Data::parse(&e).unwrap().data, i.2);
}
