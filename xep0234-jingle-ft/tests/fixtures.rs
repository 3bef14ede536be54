//! The XEP-0234 examples (tests/fixtures/, copied from the XEP's text) parsed and
//! round-tripped through our types.

use std::path::Path;

use minidom::Element;
use xep0234_jingle_ft::{FileInfo, FtInfo, NS_FT};
use xmpp_parsers::hashes::Algo;

fn fixtures() -> Vec<(String, Element)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            // The XEP's examples have no stream: give the iq its default namespace.
            let text = text.replacen("<iq ", "<iq xmlns='jabber:client' ", 1);
            let e: Element = text
                .parse()
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), e)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn descendants<'a>(e: &'a Element, out: &mut Vec<&'a Element>) {
    out.push(e);
    e.children().for_each(|c| descendants(c, out));
}

#[test]
fn every_description_and_info_of_the_xep_parses_and_round_trips() {
    let (mut descs, mut infos) = (0, 0);
    for (name, iq) in fixtures() {
        let mut all = Vec::new();
        descendants(&iq, &mut all);
        for e in all {
            if e.is("description", NS_FT) {
                let f = FileInfo::from_description(e).unwrap_or_else(|err| panic!("{name}: {err}"));
                let again = FileInfo::from_description(&f.to_description()).unwrap();
                assert_eq!(f, again, "{name}");
                descs += 1;
            }
            if e.is("checksum", NS_FT) || e.is("received", NS_FT) {
                let i = FtInfo::parse(e).unwrap_or_else(|err| panic!("{name}: {err}"));
                let el = match &i {
                    FtInfo::Checksum(c) => Element::from(c),
                    FtInfo::Received(r) => Element::from(r),
                };
                assert_eq!(FtInfo::parse(&el).unwrap(), i, "{name}");
                infos += 1;
            }
        }
    }
    assert_eq!(
        (descs, infos),
        (6, 3),
        "descriptions and infos in the XEP's examples"
    );
}

#[test]
fn the_offer_example_reads_as_the_xep_says() {
    let (_, iq) = fixtures()
        .into_iter()
        .find(|(n, _)| n.starts_with("xep0234-ex01"))
        .unwrap();
    let d = iq
        .get_child("jingle", "urn:xmpp:jingle:1")
        .unwrap()
        .get_child("content", "urn:xmpp:jingle:1")
        .unwrap()
        .get_child("description", NS_FT)
        .unwrap();
    let f = FileInfo::from_description(d).unwrap();
    assert_eq!(f.name.as_deref(), Some("test.txt"));
    assert_eq!(f.size, Some(6144));
    assert_eq!(f.media_type.as_deref(), Some("text/plain"));
    assert_eq!(
        f.desc.as_deref(),
        Some("This is a test. If this were a real file...")
    );
    assert_eq!(f.date, Some("1969-07-21T02:56:15Z".parse().unwrap()));
    assert_eq!(f.hashes[0].algo, Algo::Sha_1);
    assert_eq!(f.hashes[0].to_base64(), "w0mcJylzCn+AfvuGdqkty2+KP48=");
    assert!(f.range.is_some());
    f.check_offer(None).unwrap();
    // hash-used (example 16), and the resume range (example 8)
    let (_, iq) = fixtures()
        .into_iter()
        .find(|(n, _)| n.starts_with("xep0234-ex16"))
        .unwrap();
    let mut all = Vec::new();
    descendants(&iq, &mut all);
    let d = all.iter().find(|e| e.is("description", NS_FT)).unwrap();
    assert_eq!(
        FileInfo::from_description(d).unwrap().hash_used,
        vec![Algo::Sha_1]
    );
    let (_, iq) = fixtures()
        .into_iter()
        .find(|(n, _)| n.starts_with("xep0234-ex08"))
        .unwrap();
    let mut all = Vec::new();
    descendants(&iq, &mut all);
    let d = all.iter().find(|e| e.is("description", NS_FT)).unwrap();
    assert_eq!(
        FileInfo::from_description(d).unwrap().range.unwrap().offset,
        270_336
    );
}
