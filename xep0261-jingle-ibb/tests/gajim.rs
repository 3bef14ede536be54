//! What Gajim 1.7.3 really sends over IBB (`tests/fixtures/gajim/`, recorded by the interop
//! suite from a headless Gajim through Prosody; JIDs rewritten): its IBB transports parse,
//! its answer is a valid downward answer to its offer, and its XEP-0047 `<open/>` carries
//! the agreed sid and block-size; the `sid='None'` of its dead S5B→IBB fallback is read as
//! the sid it literally is.

use std::path::Path;

use minidom::Element;
use xep0047_ibb::{Open, StanzaKind};
use xep0261_jingle_ibb::{IbbTransport, NS_JINGLE_IBB};

const NS_IBB: &str = "http://jabber.org/protocol/ibb";

fn fixture(name: &str) -> Element {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gajim")
        .join(name);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .parse()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn transport(name: &str) -> IbbTransport {
    let iq = fixture(name);
    let t = iq
        .get_child("jingle", "urn:xmpp:jingle:1")
        .and_then(|j| j.get_child("content", "urn:xmpp:jingle:1"))
        .and_then(|c| c.get_child("transport", NS_JINGLE_IBB))
        .unwrap_or_else(|| panic!("{name}: no ibb transport"));
    let parsed = IbbTransport::parse(t).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        IbbTransport::parse(&Element::from(&parsed)).unwrap(),
        parsed,
        "{name}: round trip"
    );
    parsed
}

#[test]
fn gajims_ibb_offer_answer_and_open_agree() {
    for case in ["ibb", "ibb-cancel"] {
        let offer = transport(&format!("{case}-initiator-session-initiate-ibb.xml"));
        let answer = transport(&format!("{case}-responder-session-accept-ibb.xml"));
        assert_eq!(
            (offer.block_size, offer.stanza),
            (4096, StanzaKind::Iq),
            "{case}"
        );
        // Gajim's responder answers with the same block-size: a valid answer, not raised.
        let agreed = offer.check_answer(&answer).unwrap();
        assert_eq!(agreed, offer.answer(4096), "{case}");
        let iq = fixture(&format!("{case}-initiator-ibb-open.xml"));
        let open = Open::parse(iq.get_child("open", NS_IBB).unwrap()).unwrap();
        let o = agreed.open_options();
        assert_eq!(
            (&open.sid, open.block_size, open.stanza),
            (&agreed.sid, o.block_size, o.stanza),
            "{case}: the <open/> is the agreed transport's"
        );
    }
    // Its <close/> names the same sid.
    let close = fixture("ibb-initiator-ibb-close.xml");
    let sid = close.get_child("close", NS_IBB).unwrap().attr("sid");
    assert_eq!(
        sid,
        Some(
            transport("ibb-initiator-session-initiate-ibb.xml")
                .sid
                .as_str()
        )
    );
}

/// Gajim's dead fallback: transport-replace to IBB with `sid='None'` (the string Python
/// printed for an unset sid), echoed by its responder. Both read as sid `None`, a valid
/// NMTOKEN: the answer checks, and an `<open/>` would have to carry `None`.
#[test]
fn gajims_fallback_transport_with_sid_none_reads_as_that_sid() {
    let replace = transport("dead-fallback-initiator-transport-replace.xml");
    let accept = transport("dead-fallback-responder-transport-accept.xml");
    assert_eq!(replace.sid.as_str(), "None");
    assert_eq!(replace.check_answer(&accept).unwrap().sid.as_str(), "None");
}
