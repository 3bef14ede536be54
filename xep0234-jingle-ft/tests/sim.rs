//! One file's negotiation between two sans-IO peers, both directions, every ending.

mod common;

use common::*;
use sha2::Digest;
use xep0166_jingle::{Event, Reason, Sid};
use xep0234_jingle_ft::{Direction, FileInfo, FtEvent, FtSession, FtState, Verdict};
use xmpp_parsers::hashes::{Algo, Hash};

fn file() -> FileInfo {
    FileInfo {
        name: Some("notes.txt".into()),
        size: Some(11),
        hash_used: vec![Algo::Sha_256],
        range: Some(Default::default()),
        ..FileInfo::default()
    }
}

fn sha256(b: &[u8]) -> Hash {
    Hash::new(Algo::Sha_256, sha2::Sha256::digest(b).to_vec())
}

fn feed(s: &mut FtSession, evs: &[Event]) -> Vec<FtEvent> {
    evs.iter().filter_map(|e| s.handle(e)).collect()
}

/// Romeo offers, Juliet accepts: (romeo's session, juliet's).
fn offered_and_accepted(p: &mut Pair, range: Option<u64>) -> (FtSession, FtSession) {
    let now = p.now;
    let mut out = FtSession::offer(
        &mut p.a,
        now,
        B.parse().unwrap(),
        Sid::new("s1").unwrap(),
        "a-file-offer",
        file(),
        ibb("ch1"),
    )
    .unwrap();
    let (_, eb) = p.run();
    let Some(Event::Initiated { key, contents }) = eb.first() else {
        panic!("{eb:?}")
    };
    let mut inc = FtSession::incoming(&mut p.b, now, key, contents, Some(1 << 20)).unwrap();
    assert_eq!(
        (inc.direction(), inc.state()),
        (Direction::Receive, FtState::Incoming)
    );
    assert_eq!(inc.peer_transport().unwrap().attr("sid"), Some("ch1"));
    let r = range.map(|o| FileInfo::default().from_offset(o).range.unwrap());
    inc.accept(&mut p.b, now, ibb("ch1"), r).unwrap();
    let (ea, _) = p.run();
    let got = feed(&mut out, &ea);
    let Some(FtEvent::Accepted {
        transport,
        range: got_range,
    }) = got.first()
    else {
        panic!("{got:?}")
    };
    assert_eq!(transport.as_ref().unwrap().attr("sid"), Some("ch1"));
    assert_eq!(got_range.as_ref().map(|r| r.offset), range);
    assert_eq!(
        (out.direction(), out.state()),
        (Direction::Send, FtState::Accepted)
    );
    (out, inc)
}

#[test]
fn push_with_the_checksum_after_accept_then_received_and_success() {
    let mut p = Pair::new();
    let (mut out, mut inc) = offered_and_accepted(&mut p, None);
    let now = p.now;
    out.send_checksum(&mut p.a, now, vec![sha256(b"hello world")])
        .unwrap();
    let (_, eb) = p.run();
    let got = feed(&mut inc, &eb);
    assert!(
        matches!(&got[..], [FtEvent::Checksum(c)] if c.hashes == vec![sha256(b"hello world")]),
        "{got:?}"
    );
    assert_eq!(inc.verify(&[sha256(b"hello world")]), Verdict::Match);
    inc.send_received(&mut p.b, now).unwrap();
    inc.terminate(&mut p.b, now, Reason::Success).unwrap();
    let (ea, _) = p.run();
    let got = feed(&mut out, &ea);
    assert!(got.contains(&FtEvent::Received), "{got:?}");
    assert!(matches!(
        got.last(),
        Some(FtEvent::Ended {
            reason: Some(Reason::Success),
            ..
        })
    ));
    assert_eq!(out.state(), FtState::Ended);
    assert!(p.a.is_empty() && p.b.is_empty());
}

#[test]
fn a_checksum_without_creator_and_name_as_gajim_sends_it_is_taken() {
    let mut p = Pair::new();
    let (_out, mut inc) = offered_and_accepted(&mut p, None);
    let h = sha256(b"hello world").to_base64();
    let payload = el(&format!(
        "<checksum xmlns='urn:xmpp:jingle:apps:file-transfer:5'><file><hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>{h}</hash></file></checksum>"
    ));
    let at_romeo = xep0166_jingle::SessionKey::new(B.parse().unwrap(), inc.key().sid.clone());
    p.a.session_info(p.now, &at_romeo, Some(payload)).unwrap();
    let (_, eb) = p.run();
    assert!(matches!(&feed(&mut inc, &eb)[..], [FtEvent::Checksum(c)] if c.creator.is_none()));
    assert_eq!(inc.hashes().len(), 1);
}

#[test]
fn pull_the_receiver_requests_and_the_sender_serves() {
    let mut p = Pair::new();
    let now = p.now;
    let want = FileInfo::request(vec![sha256(b"hello world")], None);
    let mut req = FtSession::request(
        &mut p.a,
        now,
        B.parse().unwrap(),
        Sid::new("s2").unwrap(),
        "a-file-request",
        want,
        ibb("ch2"),
    )
    .unwrap();
    assert_eq!(req.direction(), Direction::Receive);
    let (_, eb) = p.run();
    let Some(Event::Initiated { key, contents }) = eb.first() else {
        panic!()
    };
    let mut srv = FtSession::incoming(&mut p.b, now, key, contents, Some(10)).unwrap();
    assert_eq!(srv.direction(), Direction::Send);
    assert_eq!(srv.file().hashes, vec![sha256(b"hello world")]);
    srv.accept(&mut p.b, now, ibb("ch2"), None).unwrap();
    let (ea, _) = p.run();
    assert!(matches!(
        feed(&mut req, &ea).first(),
        Some(FtEvent::Accepted { .. })
    ));
}

#[test]
fn resume_asks_a_range_from_an_offset() {
    let mut p = Pair::new();
    let (_out, inc) = offered_and_accepted(&mut p, Some(4));
    assert_eq!(inc.file().span().unwrap(), (4, 7));
}

#[test]
fn decline_and_cancel_end_with_their_reasons() {
    for (reason, by_responder) in [
        (Reason::Decline, true),
        (Reason::Cancel, false),
        (Reason::Busy, true),
        (Reason::FailedTransport, false),
        (Reason::MediaError, true),
        (Reason::FailedApplication, false),
    ] {
        let mut p = Pair::new();
        let now = p.now;
        let mut out = FtSession::offer(
            &mut p.a,
            now,
            B.parse().unwrap(),
            Sid::new("s1").unwrap(),
            "f",
            file(),
            ibb("c"),
        )
        .unwrap();
        let (_, eb) = p.run();
        let Some(Event::Initiated { key, contents }) = eb.first() else {
            panic!()
        };
        let mut inc = FtSession::incoming(&mut p.b, now, key, contents, None).unwrap();
        let (from, to_sess, ep_from) = if by_responder {
            (&mut inc, &mut out, 'b')
        } else {
            (&mut out, &mut inc, 'a')
        };
        let ep = if ep_from == 'b' { &mut p.b } else { &mut p.a };
        from.terminate(ep, now, reason.clone()).unwrap();
        let (ea, eb) = p.run();
        let got = feed(to_sess, if by_responder { &ea } else { &eb });
        assert!(
            matches!(got.last(), Some(FtEvent::Ended { reason: Some(r), .. }) if *r == reason),
            "{reason:?}: {got:?}"
        );
    }
}

#[test]
fn the_transport_is_replaced_by_the_sender_and_accepted() {
    let mut p = Pair::new();
    let (mut out, mut inc) = offered_and_accepted(&mut p, None);
    let now = p.now;
    out.replace_transport(&mut p.a, now, ibb("ch9")).unwrap();
    let (_, eb) = p.run();
    let got = feed(&mut inc, &eb);
    let Some(FtEvent::TransportReplace(t)) = got.first() else {
        panic!("{got:?}")
    };
    inc.accept_transport(&mut p.b, now, t.clone()).unwrap();
    let (ea, _) = p.run();
    assert!(matches!(
        feed(&mut out, &ea).first(),
        Some(FtEvent::TransportAccepted(Some(_)))
    ));
    out.transport_info(&mut p.a, now, ibb("ch9")).unwrap();
    let (_, eb) = p.run();
    assert!(matches!(
        feed(&mut inc, &eb).first(),
        Some(FtEvent::TransportInfo(_))
    ));
}

/// The offer PEERS.md shows Gajim 1.7.3 sending: name, date, size, an empty `<desc/>`, a
/// blake2b-512 hash; its session-accept (as responder) echoes the description with
/// `senders='both'`.
#[test]
fn a_gajim_shaped_offer_and_accept_are_read() {
    let h = Hash::new(Algo::Blake2b_512, vec![7; 64]).to_base64();
    let d = el(&format!(
        "<description xmlns='urn:xmpp:jingle:apps:file-transfer:5'><file>\
         <name>photo.jpg</name><date>2024-03-01T10:11:12.123456+00:00</date><size>2048</size><desc/>\
         <hash xmlns='urn:xmpp:hashes:2' algo='blake2b-512'>{h}</hash></file></description>"
    ));
    let f = FileInfo::from_description(&d).unwrap();
    assert_eq!(f.desc, None);
    assert!(f.date.is_some());
    assert_eq!(f.hashes[0].algo, Algo::Blake2b_512);
    f.check_offer(Some(1 << 20)).unwrap();

    let mut p = Pair::new();
    let now = p.now;
    let mut out = FtSession::offer(
        &mut p.a,
        now,
        B.parse().unwrap(),
        Sid::new("s1").unwrap(),
        "f",
        file(),
        ibb("c"),
    )
    .unwrap();
    p.run();
    let gajim_accept = format!(
        "<iq xmlns='jabber:client' type='set' id='g1' from='{B}'><jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid='s1' responder='{B}'>\
         <content creator='initiator' name='f' senders='both'>{}{}</content></jingle></iq>",
        String::from(&file().to_description()),
        String::from(&ibb("c"))
    );
    let iq = xmpp_parsers::iq::Iq::try_from(el(&gajim_accept)).unwrap();
    assert!(p.a.handle_iq(now, iq).is_break());
    let evs: Vec<_> = std::iter::from_fn(|| p.a.poll_event())
        .filter_map(|e| out.handle(&e))
        .collect();
    assert!(
        matches!(evs.first(), Some(FtEvent::Accepted { .. })),
        "{evs:?}"
    );
    assert_eq!(out.direction(), Direction::Send);
}
