//! Bad input J12..J16 (docs/bad-input.md, section J).

mod common;

use common::*;
use sha2::Digest;
use xep0166_jingle::{Content, Creator, EndCause, Event, Reason, Senders, Sid};
use xep0234_jingle_ft::{FileInfo, FtError, FtEvent, FtInfo, FtSession, MAX_DESC, Verdict};
use xmpp_parsers::hashes::{Algo, Hash};

const FT: &str = "urn:xmpp:jingle:apps:file-transfer:5";

fn desc(file_children: &str) -> minidom::Element {
    el(&format!(
        "<description xmlns='{FT}'><file>{file_children}</file></description>"
    ))
}

/// Juliet receives an offer with this description; returns what `incoming` says and the
/// reason Romeo sees if it ended.
fn offer_with(
    d: minidom::Element,
    max: Option<u64>,
) -> (Result<FtSession, FtError>, Option<Reason>) {
    let mut p = Pair::new();
    let now = p.now;
    let c = Content::new(Creator::Initiator, "f")
        .with_senders(Senders::Initiator)
        .with_description(d)
        .with_transport(ibb("c"));
    p.a.initiate(now, B.parse().unwrap(), Sid::new("s1").unwrap(), vec![c])
        .unwrap();
    let (_, eb) = p.run();
    let Some(Event::Initiated { key, contents }) = eb.first() else {
        panic!("{eb:?}")
    };
    let r = FtSession::incoming(&mut p.b, now, key, contents, max);
    let (ea, _) = p.run();
    let reason = ea.iter().find_map(|e| match e {
        Event::Ended {
            cause: EndCause::ByPeer(Some(r)),
            ..
        } => Some(r.reason.clone()),
        _ => None,
    });
    (r, reason)
}

#[test]
fn j12_a_hash_of_an_unknown_algorithm_or_wrong_length_is_ignored() {
    let good = Hash::new(Algo::Sha_256, sha2::Sha256::digest(b"x").to_vec()).to_base64();
    let d = desc(&format!(
        "<name>a</name><size>1</size>\
         <hash xmlns='urn:xmpp:hashes:2' algo='md17'>AAAA</hash>\
         <hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>AAAA</hash>\
         <hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>not base64!</hash>\
         <hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>{good}</hash>"
    ));
    let (r, reason) = offer_with(d, None);
    let s = r.unwrap();
    assert_eq!(reason, None, "the offer stands");
    assert_eq!(s.file().hashes.len(), 1, "only the usable sha-256");
    // A checksum in only unknown algorithms verifies nothing.
    let c = el(&format!(
        "<checksum xmlns='{FT}'><file><hash xmlns='urn:xmpp:hashes:2' algo='md17'>AAAA</hash></file></checksum>"
    ));
    let FtInfo::Checksum(c) = FtInfo::parse(&c).unwrap() else {
        panic!()
    };
    assert!(c.hashes.is_empty());
    let s2 = offer_with(desc("<name>a</name><size>1</size>"), None)
        .0
        .unwrap();
    assert_eq!(
        s2.verify(&[Hash::new(Algo::Sha_256, vec![0; 32])]),
        Verdict::Unverified
    );
}

#[test]
fn j13_a_checksum_that_does_not_match_is_a_mismatch() {
    let mut p = Pair::new();
    let now = p.now;
    let f = FileInfo {
        name: Some("a".into()),
        size: Some(5),
        hash_used: vec![Algo::Sha_256],
        ..FileInfo::default()
    };
    let mut out = FtSession::offer(
        &mut p.a,
        now,
        B.parse().unwrap(),
        Sid::new("s1").unwrap(),
        "f",
        f,
        ibb("c"),
    )
    .unwrap();
    let (_, eb) = p.run();
    let Some(Event::Initiated { key, contents }) = eb.first() else {
        panic!()
    };
    let mut inc = FtSession::incoming(&mut p.b, now, key, contents, None).unwrap();
    inc.accept(&mut p.b, now, ibb("c"), None).unwrap();
    p.run();
    let announced = Hash::new(Algo::Sha_256, sha2::Sha256::digest(b"hello").to_vec());
    out.send_checksum(&mut p.a, now, vec![announced.clone()])
        .unwrap();
    let (_, eb) = p.run();
    eb.iter().for_each(|e| {
        inc.handle(e);
    });
    let got = Hash::new(Algo::Sha_256, sha2::Sha256::digest(b"hellO").to_vec());
    assert_eq!(inc.verify(&[got]), Verdict::Mismatch(announced));
    inc.terminate(&mut p.b, now, Reason::MediaError).unwrap();
    let (ea, _) = p.run();
    let evs: Vec<_> = ea.iter().filter_map(|e| out.handle(e)).collect();
    assert!(matches!(
        evs.last(),
        Some(FtEvent::Ended {
            reason: Some(Reason::MediaError),
            ..
        })
    ));
}

#[test]
fn j14_an_offer_with_a_hostile_or_missing_name_is_failed_application() {
    for (d, want) in [
        (desc("<name>..</name><size>1</size>"), "name"),
        (desc("<name>...</name><size>1</size>"), "name"),
        (desc("<size>1</size>"), "missing"),
        (desc("<name>a</name>"), "missing"),
        (desc("<name>a</name><size>-1</size>"), "number"),
        (el(&format!("<description xmlns='{FT}'/>")), "count"),
    ] {
        let (r, reason) = offer_with(d, None);
        let e = r.unwrap_err();
        assert!(
            format!("{e:?}").to_lowercase().contains(want) || matches!(e, FtError::Name(_)),
            "{want}: {e:?}"
        );
        assert_eq!(reason, Some(Reason::FailedApplication), "{want}");
    }
    // a path is cut to its last component
    let s = offer_with(
        desc("<name>../../.ssh/authorized_keys</name><size>1</size>"),
        None,
    )
    .0
    .unwrap();
    assert_eq!(s.file().safe_name().unwrap(), "authorized_keys");
}

#[test]
fn j15_an_offer_over_the_size_limit_is_declined_and_a_range_past_the_end_refused() {
    let (r, reason) = offer_with(desc("<name>a</name><size>1000001</size>"), Some(1_000_000));
    assert!(matches!(
        r,
        Err(FtError::TooLarge {
            size: 1_000_001,
            max: 1_000_000
        })
    ));
    assert_eq!(reason, Some(Reason::Decline));
    let (r, reason) = offer_with(
        desc("<name>a</name><size>10</size><range offset='11'/>"),
        None,
    );
    assert!(matches!(r, Err(FtError::RangeOutOfBounds { .. })));
    assert_eq!(reason, Some(Reason::FailedApplication));
}

#[test]
fn j16_a_long_desc_is_cut_and_a_non_ft_application_is_unsupported() {
    let long = "é".repeat(5000);
    let s = offer_with(
        desc(&format!(
            "<name>a</name><size>1</size><desc>{long}</desc><date>yesterday</date>"
        )),
        None,
    )
    .0
    .unwrap();
    let d = s.file().desc.as_deref().unwrap();
    assert!(
        d.len() <= MAX_DESC && d.len() >= MAX_DESC - 1,
        "{}",
        d.len()
    );
    assert_eq!(
        s.file().date,
        None,
        "an unreadable date is dropped, not the offer"
    );
    let (r, reason) = offer_with(
        el("<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/>"),
        None,
    );
    assert!(matches!(r, Err(FtError::NotFileTransfer)));
    assert_eq!(reason, Some(Reason::UnsupportedApplications));
}

#[test]
fn j14_a_request_naming_neither_hash_nor_name_is_failed_application() {
    let mut p = Pair::new();
    let now = p.now;
    let c = Content::new(Creator::Initiator, "f")
        .with_senders(Senders::Responder)
        .with_description(desc(""))
        .with_transport(ibb("c"));
    p.a.initiate(now, B.parse().unwrap(), Sid::new("s1").unwrap(), vec![c])
        .unwrap();
    let (_, eb) = p.run();
    let Some(Event::Initiated { key, contents }) = eb.first() else {
        panic!()
    };
    assert!(matches!(
        FtSession::incoming(&mut p.b, now, key, contents, None),
        Err(FtError::Missing(_))
    ));
    let (ea, _) = p.run();
    assert!(ea.iter().any(|e| matches!(e, Event::Ended { cause: EndCause::ByPeer(Some(r)), .. } if r.reason == Reason::FailedApplication)));
}
