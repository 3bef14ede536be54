//! The XEP-0261 examples (tests/fixtures/, copied from the XEP's text): every IBB transport
//! element parses and round-trips, and the `<open/>` the XEP shows is what xep0047-ibb
//! reads with the same sid and block-size.

use std::path::Path;

use minidom::Element;
use xep0047_ibb::{Open, StanzaKind};
use xep0261_jingle_ibb::{IbbTransport, NS_JINGLE_IBB};

fn all(e: &Element, out: &mut Vec<Element>) {
    out.push(e.clone());
    e.children().for_each(|c| all(c, out));
}

#[test]
fn every_transport_of_the_xep_parses_round_trips_and_its_negotiation_gives_the_open_shown() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        // tests/fixtures/gajim/ is tests/gajim.rs's.
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    files.sort();
    let (mut transports, mut opens) = (Vec::new(), Vec::new());
    for p in files {
        let text =
            std::fs::read_to_string(&p)
                .unwrap()
                .replacen("<iq ", "<iq xmlns='jabber:client' ", 1);
        let root: Element = text
            .parse()
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let mut v = Vec::new();
        all(&root, &mut v);
        for e in v {
            if e.is("transport", NS_JINGLE_IBB) {
                let t =
                    IbbTransport::parse(&e).unwrap_or_else(|err| panic!("{}: {err}", p.display()));
                assert_eq!(IbbTransport::parse(&Element::from(&t)).unwrap(), t);
                transports.push(t);
            }
            if e.is("open", "http://jabber.org/protocol/ibb") {
                opens.push(Open::parse(&e).unwrap());
            }
        }
    }
    assert_eq!(
        transports.len(),
        3,
        "initiate, accept, and the added session"
    );
    assert_eq!(transports[0].block_size, 4096);
    assert_eq!(transports[0].stanza, StanzaKind::Iq);
    // The XEP's own flow negotiates down: offer 4096, accept 2048, <open block-size='2048'/>.
    let agreed = transports[0].check_answer(&transports[1]).unwrap();
    assert_eq!(
        transports[1],
        transports[1].answer(4096),
        "an answer is never raised"
    );
    let negotiated = [agreed, transports[2].clone()];
    for (t, o) in negotiated.iter().zip(&opens) {
        assert_eq!(
            (&t.sid, t.block_size, t.stanza),
            (&o.sid, o.block_size, o.stanza)
        );
    }
    assert_eq!(opens.len(), 2);
}
