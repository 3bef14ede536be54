//! BAD-INPUT A3 and B1-B12: hostile SI offers (and answers) sent by a raw client on the hub,
//! with the exact stanza each gets back and what is left on disk.

mod common;

use std::time::Duration;

use common::*;
use ft_facade::{AcceptOptions, ErrorKind, FileInfo, FileTransfer, Method, SendOptions, Stage};
use ft_transport::hub::{Hub, HubReceiver, HubTransport};
use ft_transport::{Stanza, StanzaTransport};
use minidom::Element;
use xep0095_si::AppCondition;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

const NS_SI: &str = "http://jabber.org/protocol/si";
const FT: &str = "http://jabber.org/protocol/si/profile/file-transfer";
const IBB: &str = "http://jabber.org/protocol/ibb";
const WAIT: Duration = Duration::from_secs(5);

async fn send(t: &HubTransport, xml: &str) {
    let el: Element = xml.parse().unwrap();
    t.send(Stanza::Iq(Iq::try_from(el).unwrap())).await.unwrap();
}

/// The next iq `rx` receives with `id`.
async fn answer_to(rx: &mut HubReceiver, id: &str) -> Iq {
    loop {
        match tokio::time::timeout(WAIT, rx.recv()).await {
            Ok(Some(Stanza::Iq(iq))) if iq.id() == id => return iq,
            Ok(Some(_)) => {}
            other => panic!("expected the answer to {id}, got {other:?}"),
        }
    }
}

async fn ask(t: &HubTransport, rx: &mut HubReceiver, id: &str, xml: &str) -> Iq {
    send(t, xml).await;
    answer_to(rx, id).await
}

fn error_of(iq: &Iq) -> &StanzaError {
    match iq {
        Iq::Error { error, .. } => error,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn condition(iq: &Iq) -> (ErrorType, DefinedCondition, Option<AppCondition>) {
    let e = error_of(iq);
    (
        e.type_.clone(),
        e.defined_condition.clone(),
        AppCondition::of(e),
    )
}

/// An SI offer iq `id` with si attributes `si_attrs` and `inner` before the feature form.
fn offer_xml(id: &str, si_attrs: &str, inner: &str) -> String {
    format!(
        "<iq xmlns='jabber:client' type='set' id='{id}' to='bob@x/b'>\
         <si xmlns='{NS_SI}' {si_attrs}>{inner}\
         <feature xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' type='form'>\
         <field var='stream-method' type='list-single'><option><value>{IBB}</value></option>\
         </field></x></feature></si></iq>"
    )
}

/// A well-formed offer of `file_attrs`, sid `sid`.
fn file_offer(id: &str, sid: &str, file_attrs: &str) -> String {
    offer_xml(
        id,
        &format!("id='{sid}' profile='{FT}'"),
        &format!("<file xmlns='{FT}' {file_attrs}/>"),
    )
}

fn bob(hub: &Hub) -> FileTransfer<HubTransport> {
    entity(hub, "bob@x/b", config(&[Method::S5b, Method::Ibb]))
}

/// No offer reaches the application within a moment.
async fn no_offer(bob: &FileTransfer<HubTransport>) {
    assert!(
        tokio::time::timeout(Duration::from_millis(200), bob.next_offer())
            .await
            .is_err(),
        "the refused offer must not reach the application"
    );
}

#[tokio::test]
async fn a3_unknown_children_and_foreign_namespaces_in_an_offer_are_ignored() {
    let hub = Hub::new();
    let bob = bob(&hub);
    let (t, mut rx) = hub.connect(jid("mallory@x/m"));
    let xml = offer_xml(
        "o1",
        &format!("id='s1' profile='{FT}' mime-type='text/plain' x-extra='1'"),
        &format!(
            "<file xmlns='{FT}' name='a.txt' size='3' x-attr='y'>\
             <desc>hi</desc><thumbnail xmlns='urn:xmpp:thumbs:1' uri='cid:x'/><junk><deeper/></junk>\
             </file><unknown xmlns='urn:example:other'><nested a='b'/></unknown>"
        ),
    );
    send(&t, &xml).await;
    let offer = tokio::time::timeout(WAIT, bob.next_offer())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(offer.file().name, "a.txt");
    assert_eq!(offer.file().size, Some(3));
    let dst = tempfile::tempdir().unwrap();
    let _receiving = offer.accept_into_dir(dst.path(), AcceptOptions::new());
    let answer = answer_to(&mut rx, "o1").await;
    let Iq::Result {
        payload: Some(si), ..
    } = &answer
    else {
        panic!("expected the si result, got {answer:?}")
    };
    assert!(si.is("si", NS_SI), "{si:?}");
}

#[tokio::test]
async fn b1_an_offer_missing_id_profile_file_or_name_is_refused_and_one_without_size_is_not() {
    let hub = Hub::new();
    let bob = bob(&hub);
    let (t, mut rx) = hub.connect(jid("mallory@x/m"));
    let file = format!("<file xmlns='{FT}' name='a' size='1'/>");
    let bad_profile = (
        ErrorType::Modify,
        DefinedCondition::BadRequest,
        Some(AppCondition::BadProfile),
    );
    for (id, si_attrs, inner, want) in [
        // No si@id: a plain bad-request (the id is SI's, not the profile's).
        (
            "no-id",
            format!("profile='{FT}'"),
            file.clone(),
            (ErrorType::Modify, DefinedCondition::BadRequest, None),
        ),
        (
            "no-profile",
            "id='s2'".to_owned(),
            file.clone(),
            bad_profile.clone(),
        ),
        (
            "no-file",
            format!("id='s3' profile='{FT}'"),
            String::new(),
            bad_profile.clone(),
        ),
        (
            "no-name",
            format!("id='s4' profile='{FT}'"),
            format!("<file xmlns='{FT}' size='1'/>"),
            bad_profile.clone(),
        ),
    ] {
        let answer = ask(&t, &mut rx, id, &offer_xml(id, &si_attrs, &inner)).await;
        assert_eq!(condition(&answer), want, "{id}");
        let refused = tokio::time::timeout(WAIT, bob.next_refused())
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(refused.reason, ft_facade::Refusal::Malformed(_)),
            "{id}: {}",
            refused.reason
        );
    }
    no_offer(&bob).await;
    // Without a size: accepted, as size unknown.
    send(&t, &file_offer("sizeless", "s5", "name='empty.txt'")).await;
    let offer = tokio::time::timeout(WAIT, bob.next_offer())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(offer.file().name, "empty.txt");
    assert_eq!(offer.file().size, None);
}

#[tokio::test]
async fn b2_a_size_that_is_not_a_plain_decimal_u64_gets_bad_profile() {
    let hub = Hub::new();
    let bob = bob(&hub);
    let (t, mut rx) = hub.connect(jid("mallory@x/m"));
    for (i, size) in [
        "-1",
        "1e6",
        "+5",
        " 5",
        "5 ",
        "0x10",
        "",
        "123456789012345678901",
        "18446744073709551616",
    ]
    .iter()
    .enumerate()
    {
        let id = format!("o{i}");
        let xml = file_offer(&id, &format!("s{i}"), &format!("name='a' size='{size}'"));
        let answer = ask(&t, &mut rx, &id, &xml).await;
        assert_eq!(
            condition(&answer),
            (
                ErrorType::Modify,
                DefinedCondition::BadRequest,
                Some(AppCondition::BadProfile)
            ),
            "size {size:?}"
        );
    }
    no_offer(&bob).await;
}

#[tokio::test]
async fn b7_a_repeated_sid_from_the_same_jid_gets_conflict_and_the_first_offer_stays() {
    let hub = Hub::new();
    let bob = bob(&hub);
    let (t, mut rx) = hub.connect(jid("mallory@x/m"));
    send(&t, &file_offer("o1", "same", "name='first.txt' size='3'")).await;
    let first = tokio::time::timeout(WAIT, bob.next_offer())
        .await
        .unwrap()
        .unwrap();
    let answer = ask(
        &t,
        &mut rx,
        "o2",
        &file_offer("o2", "same", "name='second.txt' size='5'"),
    )
    .await;
    assert_eq!(
        condition(&answer),
        (ErrorType::Cancel, DefinedCondition::Conflict, None)
    );
    no_offer(&bob).await;
    // The first is untouched: it can still be accepted, and the answer goes to its iq.
    assert_eq!(first.file().name, "first.txt");
    let dst = tempfile::tempdir().unwrap();
    let _receiving = first.accept_into_dir(dst.path(), AcceptOptions::new());
    let answer = answer_to(&mut rx, "o1").await;
    assert!(matches!(answer, Iq::Result { .. }), "{answer:?}");
}

#[tokio::test]
async fn b8_the_same_sid_from_another_jid_is_a_separate_offer() {
    let hub = Hub::new();
    let bob = bob(&hub);
    let (mt, mut mrx) = hub.connect(jid("mallory@x/m"));
    let (et, mut erx) = hub.connect(jid("eve@x/e"));
    send(&mt, &file_offer("m1", "shared", "name='m.txt' size='3'")).await;
    send(&et, &file_offer("e1", "shared", "name='e.txt' size='3'")).await;
    let a = tokio::time::timeout(WAIT, bob.next_offer())
        .await
        .unwrap()
        .unwrap();
    let b = tokio::time::timeout(WAIT, bob.next_offer())
        .await
        .unwrap()
        .unwrap();
    let mut froms = [a.from().to_string(), b.from().to_string()];
    froms.sort();
    assert_eq!(froms, ["eve@x/e", "mallory@x/m"]);
    assert_eq!((a.sid().as_str(), b.sid().as_str()), ("shared", "shared"));
    // Each is answered on its own.
    let (eve, mallory) = if a.from() == &jid("eve@x/e") {
        (a, b)
    } else {
        (b, a)
    };
    eve.decline(Some("not you"));
    let dst = tempfile::tempdir().unwrap();
    let _receiving = mallory.accept_into_dir(dst.path(), AcceptOptions::new());
    let to_eve = answer_to(&mut erx, "e1").await;
    assert_eq!(
        error_of(&to_eve).defined_condition,
        DefinedCondition::Forbidden
    );
    let to_mallory = answer_to(&mut mrx, "m1").await;
    assert!(matches!(to_mallory, Iq::Result { .. }), "{to_mallory:?}");
}

#[tokio::test]
async fn b9_a_range_beyond_the_file_aborts_the_sender_before_any_bytestream() {
    for range in ["offset='2000'", "offset='10' length='991'"] {
        let hub = Hub::new();
        let alice = entity(&hub, "alice@x/a", config(&[Method::Ibb]));
        let (t, mut rx) = hub.connect(jid("mallory@x/m"));
        let src = tempfile::tempdir().unwrap();
        let path = write_file(src.path(), "thousand.bin", &content(1000, 3));
        let sending = alice.send_file(jid("mallory@x/m"), &path, SendOptions::default());
        let offer = match tokio::time::timeout(WAIT, rx.recv()).await {
            Ok(Some(Stanza::Iq(iq))) => iq,
            other => panic!("expected the offer, got {other:?}"),
        };
        let sid = match &offer {
            Iq::Set { payload, .. } => payload.attr("id").unwrap().to_owned(),
            other => panic!("{other:?}"),
        };
        let answer = format!(
            "<iq xmlns='jabber:client' type='result' id='{}' to='alice@x/a'>\
             <si xmlns='{NS_SI}' id='{sid}'><file xmlns='{FT}'><range {range}/></file>\
             <feature xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' type='submit'>\
             <field var='stream-method'><value>{IBB}</value></field></x></feature></si></iq>",
            offer.id()
        );
        send(&t, &answer).await;
        let err = tokio::time::timeout(WAIT, sending.outcome())
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(err.stage, Stage::Offer, "{range}: {err}");
        assert!(matches!(err.kind, ErrorKind::File(_)), "{range}: {err}");
        // No bytestream: nothing more reaches the receiver.
        let more = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await;
        assert!(more.is_err(), "{range}: {more:?}");
    }
}

#[tokio::test]
async fn b10_a_hash_that_is_not_32_hex_digits_is_ignored_and_a_mismatch_leaves_nothing() {
    let hub = Hub::new();
    let bob = bob(&hub);
    let (t, mut rx) = hub.connect(jid("mallory@x/m"));
    for (i, hash) in ["xyz", "0123456789abcdef", &"g".repeat(32), &"a".repeat(33)]
        .iter()
        .enumerate()
    {
        let id = format!("o{i}");
        send(
            &t,
            &file_offer(
                &id,
                &format!("s{i}"),
                &format!("name='a' size='1' hash='{hash}'"),
            ),
        )
        .await;
        let offer = tokio::time::timeout(WAIT, bob.next_offer())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("hash {hash:?}: offer refused"));
        assert_eq!(offer.file().md5, None, "hash {hash:?} is treated as absent");
        let dst = tempfile::tempdir().unwrap();
        let _receiving = offer.accept_into_dir(dst.path(), AcceptOptions::new());
        let answer = answer_to(&mut rx, &id).await;
        assert!(matches!(answer, Iq::Result { .. }), "{hash:?}: {answer:?}");
    }

    // A well-formed hash the content does not match: the transfer fails, nothing is kept.
    let alice = entity(&hub, "alice@x/a", config(&[Method::Ibb]));
    let data = content(50_000, 4);
    let mut info = FileInfo::new("lie.bin", data.len() as u64);
    info.md5 = Some("00112233445566778899aabbccddeeff".into());
    let sending = alice.send_reader(
        jid("bob@x/b"),
        std::io::Cursor::new(data),
        info,
        SendOptions::default(),
    );
    let offer = tokio::time::timeout(WAIT, bob.next_offer())
        .await
        .unwrap()
        .unwrap();
    let dst = tempfile::tempdir().unwrap();
    let received = offer
        .accept_into_dir(dst.path(), AcceptOptions::new())
        .outcome()
        .await
        .unwrap_err();
    assert!(
        matches!(received.kind, ErrorKind::HashMismatch { .. }),
        "{received}"
    );
    assert!(listing(dst.path()).is_empty(), "{:?}", listing(dst.path()));
    let _ = tokio::time::timeout(WAIT, sending.outcome()).await;
}

#[tokio::test]
async fn b11_an_unparsable_date_is_ignored_and_a_long_desc_is_cut_to_1_kib() {
    let hub = Hub::new();
    let bob = bob(&hub);
    let (t, _rx) = hub.connect(jid("mallory@x/m"));
    let desc = "é".repeat(3000);
    let xml = offer_xml(
        "o1",
        &format!("id='s1' profile='{FT}'"),
        &format!(
            "<file xmlns='{FT}' name='a' size='1' date='the day after tomorrow'><desc>{desc}</desc></file>"
        ),
    );
    send(&t, &xml).await;
    let offer = tokio::time::timeout(WAIT, bob.next_offer())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(offer.file().date.as_deref(), Some("the day after tomorrow"));
    let shown = offer.file().desc.clone().unwrap();
    assert!(shown.len() <= 1024, "{} bytes", shown.len());
    assert!(
        shown.len() >= 1020,
        "cut at the last character boundary, not emptied"
    );
    assert!(desc.starts_with(&shown));
}

#[tokio::test]
async fn b12_an_offer_dropped_unanswered_is_declined_with_offer_declined() {
    let hub = Hub::new();
    let bob = bob(&hub);
    let (t, mut rx) = hub.connect(jid("mallory@x/m"));
    send(&t, &file_offer("o1", "s1", "name='a' size='1'")).await;
    drop(bob.next_offer().await.unwrap());
    let answer = answer_to(&mut rx, "o1").await;
    let e = error_of(&answer);
    assert_eq!(
        (e.type_.clone(), e.defined_condition.clone()),
        (ErrorType::Cancel, DefinedCondition::Forbidden)
    );
    assert_eq!(
        e.texts.values().next().map(String::as_str),
        Some("Offer Declined")
    );
    // The application's own text when it gives one.
    send(&t, &file_offer("o2", "s2", "name='a' size='1'")).await;
    bob.next_offer().await.unwrap().decline(Some("no thanks"));
    let answer = answer_to(&mut rx, "o2").await;
    assert_eq!(
        error_of(&answer).texts.values().next().map(String::as_str),
        Some("no thanks")
    );
}
