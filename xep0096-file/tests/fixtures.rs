//! Every SI file-transfer offer captured from real clients (`fixtures/captured/`) and every
//! XEP-0096 example (`fixtures/xep0096/`): parsed, checked for meaning, serialized and
//! parsed again to the same value.

use minidom::Element;
use xep0095_si::{Answer, method, parse_answer};
use xep0096_file::{File, FileAnswer, FileOffer, NS_FILE_TRANSFER, Range, answer_range};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::Message;

const BS: &str = method::BYTESTREAMS;
const IBB: &str = method::IBB;

/// The top-level elements of a fixture, read inside a stream whose default namespace is
/// `ns`, after the provenance comment on the first line.
fn elements(text: &str, ns: &str) -> Vec<Element> {
    let body = text.split_once("-->\n").map_or(text, |(_, b)| b);
    let root: Element = format!("<stream xmlns='{ns}'>{body}</stream>")
        .parse()
        .expect("fixture is well-formed XML");
    root.children().cloned().collect()
}

fn one_iq(text: &str) -> Iq {
    let mut s = elements(text, "jabber:client");
    assert_eq!(s.len(), 1);
    Iq::try_from(s.remove(0)).expect("strict iq parse")
}

struct Want<'a> {
    name: &'a str,
    size: u64,
    hash: Option<&'a str>,
    date: Option<&'a str>,
    desc: Option<&'a str>,
    methods: &'a [&'a str],
}

fn check_offer(text: &str, want: Want<'_>) -> FileOffer {
    let iq = one_iq(text);
    let o = FileOffer::from_iq(&iq).expect("file offer");
    assert_eq!(o.file.name, want.name);
    assert_eq!(o.file.size, Some(want.size));
    assert_eq!(o.file.hash.as_deref(), want.hash);
    assert_eq!(o.file.parsed_date(), want.date.map(|d| d.parse().unwrap()));
    assert_eq!(o.file.desc.as_deref(), want.desc);
    assert_eq!(o.offer.methods, want.methods);
    let e = o.expected().unwrap();
    assert_eq!(e.size, Some(want.size));
    assert_eq!(e.md5.map(hex::encode).as_deref(), want.hash);
    // Serialize the iq and the file, parse again.
    let back = Iq::try_from(Element::from(iq.clone())).unwrap();
    assert_eq!(back, iq);
    assert_eq!(FileOffer::from_iq(&back).unwrap(), o);
    assert_eq!(
        File::try_from(&Element::from(o.file.clone())).unwrap(),
        o.file
    );
    o
}

// ---- captured ----

#[test]
fn captured_spark_offer_pdf_declined() {
    let o = check_offer(
        include_str!("fixtures/captured/000-spark-offer-ibb-declined.xml"),
        Want {
            name: "File (2).pdf",
            size: 457_701,
            hash: None,
            date: None,
            desc: None,
            methods: &[IBB],
        },
    );
    assert_eq!(o.safe_name().unwrap(), "File (2).pdf");
}

#[test]
fn captured_spark_offer_pdf() {
    check_offer(
        include_str!("fixtures/captured/000-spark-offer-ibb.xml"),
        Want {
            name: "File (1).pdf",
            size: 1_073_243,
            hash: None,
            date: None,
            desc: None,
            methods: &[IBB],
        },
    );
}

#[test]
fn captured_xiff_offer_with_desc_after_the_feature() {
    check_offer(
        include_str!("fixtures/captured/001-xiff-offer-bytestreams-ibb.xml"),
        Want {
            name: "img0545.png",
            size: 152_443,
            hash: None,
            date: None,
            desc: Some("send"),
            methods: &[BS, IBB],
        },
    );
}

#[test]
fn captured_pidgin_offer() {
    check_offer(
        include_str!("fixtures/captured/002-pidgin-offer.xml"),
        Want {
            name: "sery-lvs-cluster.pdf",
            size: 532_473,
            hash: None,
            date: None,
            desc: None,
            methods: &[BS, IBB],
        },
    );
}

#[test]
fn captured_qxmpp_offer_with_date_and_md5() {
    let o = check_offer(
        include_str!("fixtures/captured/003-qxmpp-offer-date-hash.xml"),
        Want {
            name: "Chrysanthemum.jpg",
            size: 879_394,
            hash: Some("076e3caed758a1c18c91a0e9cae3368f"),
            date: Some("2009-07-14T04:52:25.650Z"),
            desc: None,
            methods: &[IBB, BS],
        },
    );
    assert!(!o.file.supports_ranges());
}

#[test]
fn captured_spark_offer_with_list_multi() {
    check_offer(
        include_str!("fixtures/captured/004-spark-offer-list-multi.xml"),
        Want {
            name: "RunSpark.lnk",
            size: 597,
            hash: None,
            date: None,
            desc: Some("Sending"),
            methods: &[BS, IBB],
        },
    );
}

// ---- XEP-0096 examples ----

#[test]
fn xep0096_example1_simple_offer() {
    let o = check_offer(
        include_str!("fixtures/xep0096/ex01-simple-profile-usage-in-stream-initiation-offer.xml"),
        Want {
            name: "test.txt",
            size: 1022,
            hash: None,
            date: None,
            desc: None,
            methods: &[BS, IBB],
        },
    );
    assert_eq!(o.offer.mime_type, "text/plain");
    assert_eq!(o.offer.sid.as_str(), "a0");
}

fn check_result(text: &str) {
    let iq = one_iq(text);
    let Answer::Accepted(a) = parse_answer(&[BS.to_owned(), IBB.to_owned()], &iq).unwrap() else {
        panic!()
    };
    assert_eq!(a.method, BS);
    assert_eq!(answer_range(&a).unwrap(), None, "no range: the whole file");
    let back = Iq::try_from(Element::from(iq.clone())).unwrap();
    assert_eq!(back, iq);
}

#[test]
fn xep0096_example2_simple_result() {
    check_result(include_str!(
        "fixtures/xep0096/ex02-simple-profile-usage-in-stream-initiation-result.xml"
    ));
}

#[test]
fn xep0096_example3_complete_offer() {
    check_offer(
        include_str!("fixtures/xep0096/ex03-complete-profile-usage-in-stream-initiation-offe.xml"),
        Want {
            name: "test.txt",
            size: 1022,
            hash: Some("552da749930852c69ae5d2141d3766b1"),
            date: Some("1969-07-21T02:56:15Z"),
            desc: Some("This is a test. If this were a real file..."),
            methods: &[BS, IBB],
        },
    );
}

#[test]
fn xep0096_example4_complete_result_with_empty_file() {
    check_result(include_str!(
        "fixtures/xep0096/ex04-complete-profile-usage-in-stream-initiation-resu.xml"
    ));
}

fn range(text: &str) -> Range {
    let mut e = elements(text, NS_FILE_TRANSFER);
    assert_eq!(e.len(), 1);
    let r = Range::try_from(e.remove(0)).unwrap();
    assert_eq!(Range::try_from(Element::from(r)).unwrap(), r);
    // Carried in an answer's <file/>, it reads back the same.
    let back = FileAnswer::try_from(Element::from(FileAnswer { range: Some(r) })).unwrap();
    assert_eq!(back.range, Some(r));
    r
}

#[test]
fn xep0096_example5_range_first_256_bytes() {
    let r = range(include_str!("fixtures/xep0096/ex05-range.xml"));
    assert_eq!(
        r,
        Range {
            offset: None,
            length: Some(256)
        }
    );
    assert_eq!(r.span(1022).unwrap(), (0, 256));
}

#[test]
fn xep0096_example6_range_256_bytes_from_128() {
    let r = range(include_str!("fixtures/xep0096/ex06-range.xml"));
    assert_eq!(
        r,
        Range {
            offset: Some(128),
            length: Some(256)
        }
    );
    assert_eq!(r.span(1022).unwrap(), (128, 256));
}

#[test]
fn xep0096_example7_range_rest_from_128() {
    let r = range(include_str!("fixtures/xep0096/ex07-range.xml"));
    assert_eq!(r, Range::from_offset(128));
    assert_eq!(r.span(1022).unwrap(), (128, 894));
}

#[test]
fn xep0096_example8_empty_range_is_the_whole_file() {
    let r = range(include_str!("fixtures/xep0096/ex08-range.xml"));
    assert!(r.is_whole_file());
    assert_eq!(r.span(1022).unwrap(), (0, 1022));
}

fn sipub_file(text: &str) -> File {
    let mut e = elements(text, "jabber:client");
    let m = Message::try_from(e.remove(0)).unwrap();
    let sipub = m
        .payloads
        .iter()
        .find(|p| p.is("sipub", "http://jabber.org/protocol/sipub"))
        .unwrap();
    let file = sipub.get_child("file", NS_FILE_TRANSFER).unwrap();
    let f = File::try_from(file).unwrap();
    assert_eq!(File::try_from(&Element::from(f.clone())).unwrap(), f);
    f
}

#[test]
fn xep0096_example10_sipub_file_with_a_date_without_seconds() {
    let f = sipub_file(include_str!(
        "fixtures/xep0096/ex10-sending-a-file-resulting-stanza.xml"
    ));
    assert_eq!((f.name.as_str(), f.size), ("missive.txt", Some(1024)));
    assert_eq!(f.date.as_deref(), Some("2005-11-29T11:21Z"));
    assert_eq!(
        f.parsed_date(),
        Some("2005-11-29T11:21:00Z".parse().unwrap())
    );
}

#[test]
fn xep0096_example12_sipub_file() {
    let f = sipub_file(include_str!(
        "fixtures/xep0096/ex12-receiving-a-file-equivalent-stanza.xml"
    ));
    assert_eq!((f.name.as_str(), f.size), ("reply.txt", Some(2048)));
}
