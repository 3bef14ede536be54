//! Bad input J17..J19 (docs/bad-input.md, section J).

use minidom::Element;
use xep0047_ibb::{OpenOptions, StanzaKind};
use xep0261_jingle_ibb::{IbbError, IbbTransport, Sid};
use xmpp_parsers::jingle::Reason;

fn tr(attrs: &str) -> Element {
    format!("<transport xmlns='urn:xmpp:jingle:transports:ibb:1' {attrs}/>")
        .parse()
        .unwrap()
}

#[test]
fn j17_an_answer_that_raises_the_block_size_or_changes_the_sid_is_refused() {
    let ours = IbbTransport::new(
        Sid::new("ch1").unwrap(),
        OpenOptions {
            block_size: 4096,
            stanza: StanzaKind::Iq,
        },
    );
    let raised = IbbTransport::parse(&tr("sid='ch1' block-size='65535'")).unwrap();
    assert_eq!(
        ours.check_answer(&raised),
        Err(IbbError::Raised {
            offered: 4096,
            answered: 65535
        })
    );
    let other = IbbTransport::parse(&tr("sid='ch2' block-size='4096'")).unwrap();
    assert_eq!(ours.check_answer(&other), Err(IbbError::SidChanged));
    assert_eq!(IbbError::SidChanged.reason(), Reason::FailedTransport);
    // As responder we never raise either, whatever our own maximum.
    let offer = IbbTransport::parse(&tr("sid='ch1' block-size='1024'")).unwrap();
    assert_eq!(offer.answer(65535).block_size, 1024);
    assert_eq!(offer.answer(0).block_size, 1);
}

#[test]
fn j18_a_block_size_missing_zero_signed_or_past_65535_is_refused() {
    for attrs in [
        "sid='a'",
        "sid='a' block-size='0'",
        "sid='a' block-size='-1'",
        "sid='a' block-size='+4096'",
        "sid='a' block-size='65536'",
        "sid='a' block-size=' 4096'",
        "sid='a' block-size='4k'",
    ] {
        assert!(
            matches!(IbbTransport::parse(&tr(attrs)), Err(IbbError::BlockSize(_))),
            "{attrs}"
        );
    }
    assert!(matches!(
        IbbTransport::parse(&tr("sid='a' block-size='1' stanza='presence'")),
        Err(IbbError::Stanza(_))
    ));
    assert_eq!(
        IbbTransport::parse(&tr("sid='a' block-size='1' stanza='message'"))
            .unwrap()
            .stanza,
        StanzaKind::Message
    );
    let s5b: Element = "<transport xmlns='urn:xmpp:jingle:transports:s5b:1' sid='a'/>"
        .parse()
        .unwrap();
    assert_eq!(IbbTransport::parse(&s5b), Err(IbbError::NotIbb));
}

#[test]
fn j19_a_sid_that_is_not_an_nmtoken_is_refused_and_gajims_none_is_taken() {
    let long = format!("sid='{}' block-size='4096'", "x".repeat(129));
    for attrs in [
        "block-size='4096'",
        "sid='' block-size='4096'",
        "sid='a b' block-size='4096'",
        "sid='a&lt;b' block-size='4096'",
        long.as_str(),
    ] {
        assert!(
            matches!(IbbTransport::parse(&tr(attrs)), Err(IbbError::Sid(_))),
            "{attrs}"
        );
    }
    // Gajim 1.7 sends the Python None as a sid: a valid NMTOKEN, so a valid sid.
    let t = IbbTransport::parse(&tr("sid='None' block-size='4096'")).unwrap();
    assert_eq!(t.sid.as_str(), "None");
}
