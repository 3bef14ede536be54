//! The session core on what Gajim 1.7.3 really sends (`tests/fixtures/gajim/`, recorded by
//! the interop suite from a headless Gajim through Prosody; JIDs rewritten: the initiator
//! is romeo, the responder juliet). Every case is replayed against our endpoint in both
//! roles: as responder to Gajim's initiator stanzas, as initiator to its responder's. Each
//! stanza must be acknowledged with a result and give the event its action names.

use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

use minidom::Element;
use xep0166_jingle::{
    Config, Content, Creator, EndCause, Endpoint, Event, Reason, Senders, SessionKey, Sid,
};
use xmpp_parsers::iq::Iq;

const ROMEO: &str = "romeo@montague.example/orchard";
const JULIET: &str = "juliet@capulet.example/balcony";
const NS_FT: &str = "urn:xmpp:jingle:apps:file-transfer:5";
const CASES: &[&str] = &[
    "s5b-direct",
    "s5b-proxy65",
    "s5b-over-10mb",
    "ibb",
    "ibb-cancel",
    "decline",
    "dead-fallback",
];

fn dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gajim")
}

/// The recorded stanzas of `case` sent by `role`, as `(kind, iq)`, in the order Gajim sends
/// them (session-initiate/-accept first, transport-replace/-accept after transport-info,
/// session-terminate last).
fn stanzas(case: &str, role: &str) -> Vec<(String, Iq)> {
    let prefix = format!("{case}-{role}-");
    let rank = |k: &str| match k {
        k if k.starts_with("session-initiate") || k.starts_with("session-accept") => 0,
        k if k.starts_with("transport-info") => 1,
        k if k.starts_with("session-info") => 2,
        "session-terminate" => 4,
        _ => 3,
    };
    let mut v: Vec<(String, Iq)> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| {
            let kind = n.strip_prefix(&prefix)?.strip_suffix(".xml")?.to_owned();
            Some((n, kind))
        })
        .map(|(n, kind)| {
            let text = std::fs::read_to_string(dir().join(&n)).unwrap();
            let el: Element = text.parse().unwrap_or_else(|e| panic!("{n}: {e}"));
            (
                kind,
                Iq::try_from(el).unwrap_or_else(|e| panic!("{n}: {e}")),
            )
        })
        .collect();
    v.sort_by_key(|(k, _)| rank(k));
    v
}

fn config() -> Config {
    let mut c = Config::default();
    c.session_info_ns.push(NS_FT.into());
    c
}

fn jingle(iq: &Iq) -> &Element {
    match iq {
        Iq::Set { payload, .. } => payload,
        other => panic!("{other:?}"),
    }
}

/// Hands `iq` to `ep` and returns its answer, which must be a result to `iq`'s sender.
fn deliver(ep: &mut Endpoint, now: Instant, kind: &str, iq: Iq) {
    let id = iq.id().to_owned();
    assert!(
        matches!(ep.handle_iq(now, iq), ControlFlow::Break(())),
        "{kind}: not taken"
    );
    match ep.poll_transmit() {
        Some(Iq::Result { id: got, .. }) => assert_eq!(got, id, "{kind}"),
        other => panic!("{kind}: {other:?}"),
    }
}

/// The one content of a recorded action.
fn content(iq: &Iq) -> Content {
    let c = jingle(iq)
        .get_child("content", "urn:xmpp:jingle:1")
        .expect("content");
    let mut out = Content::new(Creator::Initiator, c.attr("name").unwrap());
    out.description = c.children().find(|e| e.name() == "description").cloned();
    out.transport = c.children().find(|e| e.name() == "transport").cloned();
    out
}

#[test]
fn we_take_every_gajim_session_as_responder() {
    for case in CASES {
        let mut juliet = Endpoint::new(JULIET.parse().unwrap(), config());
        let now = Instant::now();
        let mut key: Option<SessionKey> = None;
        for (kind, iq) in stanzas(case, "initiator") {
            deliver(&mut juliet, now, &kind, iq.clone());
            let ev = juliet.poll_event();
            match (kind.as_str(), ev) {
                (k, Some(Event::Initiated { key: k2, contents }))
                    if k.starts_with("session-initiate") =>
                {
                    assert_eq!(contents.len(), 1, "{case}");
                    let c = &contents[0];
                    assert_eq!(
                        (&c.creator, &c.senders),
                        (&Creator::Initiator, &Senders::Initiator),
                        "{case}"
                    );
                    assert_eq!(c.description_ns().as_deref(), Some(NS_FT), "{case}");
                    assert_eq!(k2.peer.to_string(), ROMEO);
                    if *case == "decline" {
                        juliet.terminate(now, &k2, Reason::Decline, None).unwrap();
                    } else {
                        // Gajim's own answer: the description echoed, senders='both'.
                        let answer =
                            content(&stanzas(case, "responder")[0].1).with_senders(Senders::Both);
                        juliet.accept(now, &k2, vec![answer]).unwrap();
                    }
                    key = Some(k2);
                }
                (
                    "transport-info-candidate-error" | "transport-info-activated",
                    Some(Event::TransportInfo { content, .. }),
                ) => {
                    assert!(content.transport.is_some(), "{case}");
                }
                ("session-info-checksum", Some(Event::SessionInfo { payload, .. })) => {
                    assert!(payload.is("checksum", NS_FT), "{case}");
                }
                ("transport-replace", Some(Event::TransportReplace { key: k2, content })) => {
                    // Gajim's IBB transport with sid='None': the core does not judge it.
                    let t = content.transport.clone().unwrap();
                    assert_eq!(t.attr("sid"), Some("None"));
                    juliet.transport_accept(now, &k2, content).unwrap();
                }
                (k, ev) => panic!("{case}: {k}: {ev:?}"),
            }
            while juliet.poll_transmit().is_some() {}
        }
        let key = key.expect("initiated");
        if *case == "decline" {
            assert!(juliet.session(&key).is_none());
        } else {
            assert!(juliet.session(&key).is_some(), "{case}: still active");
        }
    }
}

#[test]
fn we_take_every_gajim_answer_as_initiator() {
    for case in CASES {
        let mut romeo = Endpoint::new(ROMEO.parse().unwrap(), config());
        let now = Instant::now();
        // Our offer is Gajim's own, same sid and content, so that its answers fit.
        let (_, offer) = stanzas(case, "initiator").remove(0);
        let sid = Sid::new(jingle(&offer).attr("sid").unwrap()).unwrap();
        let mut c = content(&offer).with_senders(Senders::Initiator);
        let id = romeo
            .initiate(now, JULIET.parse().unwrap(), sid.clone(), vec![c.clone()])
            .unwrap();
        let _ = romeo.poll_transmit();
        let ack = Iq::empty_result(ROMEO.parse().unwrap(), id).with_from(JULIET.parse().unwrap());
        assert!(romeo.handle_iq(now, ack).is_break());
        assert!(matches!(
            romeo.poll_event(),
            Some(Event::RequestDone { .. })
        ));
        let key = SessionKey::new(JULIET.parse().unwrap(), sid);
        let mut ended = false;
        for (kind, iq) in stanzas(case, "responder") {
            if kind == "transport-accept" {
                // Gajim accepts the transport-replace its initiator sent: ours here.
                let (_, replace) = stanzas(case, "initiator")
                    .into_iter()
                    .find(|(k, _)| k == "transport-replace")
                    .unwrap();
                c.transport = content(&replace).transport;
                romeo.transport_replace(now, &key, c.clone()).unwrap();
                let _ = romeo.poll_transmit();
            }
            deliver(&mut romeo, now, &format!("{case}: {kind}"), iq);
            let ev = romeo.poll_event();
            match (kind.as_str(), ev) {
                (k, Some(Event::Accepted { contents, .. })) if k.starts_with("session-accept") => {
                    assert_eq!(contents[0].senders, Senders::Both, "{case}");
                }
                (
                    "transport-info-candidate-used" | "transport-info-candidate-error",
                    Some(Event::TransportInfo { .. }),
                ) => {}
                ("transport-accept", Some(Event::TransportAccepted { content, .. })) => {
                    assert_eq!(content.transport.unwrap().attr("sid"), Some("None"));
                }
                (
                    "session-terminate",
                    Some(Event::Ended {
                        cause: EndCause::ByPeer(Some(r)),
                        ..
                    }),
                ) => {
                    let want = match *case {
                        "decline" => Reason::Decline,
                        "ibb-cancel" => Reason::Cancel,
                        _ => Reason::Success,
                    };
                    assert_eq!(r.reason, want, "{case}");
                    ended = true;
                }
                (k, ev) => panic!("{case}: {k}: {ev:?}"),
            }
        }
        let finished = ["dead-fallback"];
        assert_eq!(ended, !finished.contains(case), "{case}");
        assert_eq!(romeo.is_empty(), ended, "{case}");
    }
}
