//! The file-transfer application on what Gajim 1.7.3 really sends
//! (`tests/fixtures/gajim/`, recorded by the interop suite from a headless Gajim through
//! Prosody; JIDs rewritten: the initiator is romeo, the responder juliet): its offers
//! (`<hash/>` under 10,000,000 bytes, none above, an empty `<desc />`), its accept (the
//! description echoed with `senders='both'`), and its `<checksum/>` in session-info without
//! `creator`/`name`; it never sends `<received/>`.

use std::path::Path;
use std::time::Instant;

use minidom::Element;
use xep0166_jingle::{Config, Endpoint, Event, Reason, Sid};
use xep0234_jingle_ft::{FileInfo, FtEvent, FtInfo, FtSession, NS_FT, Verdict};
use xmpp_parsers::hashes::{Algo, Hash};
use xmpp_parsers::iq::Iq;

const ROMEO: &str = "romeo@montague.example/orchard";
const JULIET: &str = "juliet@capulet.example/balcony";

fn dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gajim")
}

fn fixture(name: &str) -> Iq {
    let text = std::fs::read_to_string(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let el: Element = text.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
    Iq::try_from(el).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn jingle(iq: &Iq) -> &Element {
    match iq {
        Iq::Set { payload, .. } => payload,
        other => panic!("{other:?}"),
    }
}

fn child<'a>(iq: &'a Iq, name: &str) -> Option<&'a Element> {
    jingle(iq)
        .get_child("content", "urn:xmpp:jingle:1")?
        .children()
        .find(|c| c.name() == name)
}

fn endpoint(me: &str) -> Endpoint {
    let mut c = Config::default();
    xep0234_jingle_ft::configure(&mut c);
    Endpoint::new(me.parse().unwrap(), c)
}

/// Hands a recorded iq to `ep`; it must be acknowledged.
fn deliver(ep: &mut Endpoint, now: Instant, name: &str) {
    assert!(ep.handle_iq(now, fixture(name)).is_break(), "{name}");
    assert!(
        matches!(ep.poll_transmit(), Some(Iq::Result { .. })),
        "{name}: not acknowledged"
    );
}

#[test]
fn every_gajim_description_and_checksum_reads() {
    let (mut descs, mut infos) = (0, 0);
    for e in std::fs::read_dir(dir()).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        let iq = fixture(&name);
        if let Some(d) = child(&iq, "description") {
            let f = FileInfo::from_description(d).unwrap_or_else(|e| panic!("{name}: {e}"));
            f.check_offer(None)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            // gajim-<method>-<len>.bin
            let file_name = f.name.clone().unwrap();
            let len: u64 = file_name
                .trim_end_matches(".bin")
                .rsplit('-')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(f.safe_name().unwrap(), file_name, "{name}");
            assert_eq!(f.size, Some(len), "{name}");
            assert!(
                f.date.is_some(),
                "{name}: its date (UTC, no fraction) reads"
            );
            assert_eq!(f.desc, None, "{name}: the empty <desc /> is no description");
            let algos: Vec<Algo> = f.hashes.iter().map(|h| h.algo.clone()).collect();
            if len < 10_000_000 {
                assert_eq!(algos, [Algo::Blake2b_512], "{name}");
            } else {
                assert!(algos.is_empty(), "{name}: no hash over 10,000,000 bytes");
            }
            descs += 1;
        }
        if let Some(c) = jingle(&iq).get_child("checksum", NS_FT) {
            let FtInfo::Checksum(c) = FtInfo::parse(c).unwrap_or_else(|e| panic!("{name}: {e}"))
            else {
                panic!("{name}")
            };
            assert_eq!((c.creator, c.name), (None, None), "{name}");
            assert_eq!(c.hashes.len(), 1, "{name}");
            assert_eq!(c.hashes[0].algo, Algo::Blake2b_512, "{name}");
            infos += 1;
        }
    }
    assert_eq!((descs, infos), (13, 1), "7 offers, 6 accepts, 1 checksum");
}

/// Gajim sends a file over 10 MB: no hash in the offer; after the bytes, a `<checksum/>`
/// with neither `creator` nor `name`, which is taken as this session's one file; the
/// verdict follows it.
#[test]
fn gajims_checksum_in_session_info_is_for_our_one_file() {
    let mut juliet = endpoint(JULIET);
    let now = Instant::now();
    deliver(
        &mut juliet,
        now,
        "s5b-over-10mb-initiator-session-initiate.xml",
    );
    let Some(Event::Initiated { key, contents }) = juliet.poll_event() else {
        panic!("no session")
    };
    let mut inc = FtSession::incoming(&mut juliet, now, &key, &contents, Some(1 << 30)).unwrap();
    assert_eq!(inc.file().size, Some(10_500_000));
    assert!(inc.hashes().is_empty());
    let accept = fixture("s5b-over-10mb-responder-session-accept.xml");
    let tr = child(&accept, "transport").unwrap().clone();
    inc.accept(&mut juliet, now, tr, None).unwrap();
    let _ = juliet.poll_transmit();
    assert_eq!(inc.verify(&[]), Verdict::Unverified);
    deliver(
        &mut juliet,
        now,
        "s5b-over-10mb-initiator-transport-info-candidate-error.xml",
    );
    let ev = juliet.poll_event().unwrap();
    assert!(matches!(inc.handle(&ev), Some(FtEvent::TransportInfo(_))));
    deliver(
        &mut juliet,
        now,
        "s5b-over-10mb-initiator-session-info-checksum.xml",
    );
    let ev = juliet.poll_event().unwrap();
    let Some(FtEvent::Checksum(c)) = inc.handle(&ev) else {
        panic!("{ev:?}")
    };
    assert_eq!(inc.hashes(), &c.hashes[..]);
    let good = c.hashes[0].clone();
    assert_eq!(inc.verify(std::slice::from_ref(&good)), Verdict::Match);
    let mut bad = good.hash.clone();
    bad[0] ^= 1;
    let bad = Hash::new(Algo::Blake2b_512, bad);
    assert_eq!(inc.verify(&[bad]), Verdict::Mismatch(good));
}

/// We offer, Gajim answers as it does: session-accept echoing the description with
/// `senders='both'` (and its own empty S5B transport), candidate-used, then
/// session-terminate `<success/>` and no `<received/>`.
#[test]
fn gajim_accepts_our_offer_and_ends_it_with_success() {
    let mut romeo = endpoint(ROMEO);
    let now = Instant::now();
    let offer = fixture("s5b-direct-initiator-session-initiate.xml");
    let sid = Sid::new(jingle(&offer).attr("sid").unwrap()).unwrap();
    let content = jingle(&offer)
        .get_child("content", "urn:xmpp:jingle:1")
        .unwrap();
    let file = FileInfo::from_description(child(&offer, "description").unwrap()).unwrap();
    let tr = child(&offer, "transport").unwrap().clone();
    let mut out = FtSession::offer(
        &mut romeo,
        now,
        JULIET.parse().unwrap(),
        sid,
        content.attr("name").unwrap(),
        file,
        tr,
    )
    .unwrap();
    let Some(Iq::Set { id, .. }) = romeo.poll_transmit() else {
        panic!()
    };
    let ack = Iq::empty_result(ROMEO.parse().unwrap(), id).with_from(JULIET.parse().unwrap());
    assert!(romeo.handle_iq(now, ack).is_break());
    let mut evs = Vec::new();
    for name in [
        "s5b-direct-responder-session-accept.xml",
        "s5b-direct-responder-transport-info-candidate-used.xml",
        "s5b-direct-responder-session-terminate.xml",
    ] {
        deliver(&mut romeo, now, name);
        evs.extend(std::iter::from_fn(|| romeo.poll_event()).filter_map(|e| out.handle(&e)));
    }
    assert!(
        matches!(&evs[0], FtEvent::Accepted { transport: Some(t), range: None } if t.attr("sid").is_some()),
        "{evs:?}"
    );
    assert!(matches!(evs[1], FtEvent::TransportInfo(_)), "{evs:?}");
    assert!(
        matches!(
            evs.last(),
            Some(FtEvent::Ended {
                reason: Some(Reason::Success),
                ..
            })
        ),
        "{evs:?}"
    );
    assert!(
        !evs.contains(&FtEvent::Received),
        "Gajim never sends <received/>"
    );
}
