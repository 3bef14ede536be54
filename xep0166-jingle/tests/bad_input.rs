//! Bad input J1..J13 (docs/bad-input.md, section J): what the peer receives for each.

mod common;

use common::*;
use xep0166_jingle::{Config, Endpoint, Event, JingleCondition as J, Reason};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza_error::{DefinedCondition as D, ErrorType as T};

const NS: &str = "urn:xmpp:jingle:1";
const DESC: &str = "<description xmlns='urn:example:app'/>";
const TR: &str = "<transport xmlns='urn:example:t1'/>";

fn initiate(sid: &str) -> String {
    format!(
        "<jingle xmlns='{NS}' action='session-initiate' sid='{sid}'><content creator='initiator' name='f'>{DESC}{TR}</content></jingle>"
    )
}

/// Juliet with one session initiated by Romeo (sid s1, content f), still PENDING.
fn juliet_pending() -> (Endpoint, std::time::Instant) {
    let mut p = Pair::new();
    let a = inject(&mut p.b, p.now, A, &initiate("s1"));
    assert_result(&a);
    assert!(matches!(p.b.poll_event(), Some(Event::Initiated { .. })));
    (p.b, p.now)
}

#[test]
fn j1_an_action_for_an_unknown_sid_is_item_not_found_unknown_session() {
    let (mut b, now) = juliet_pending();
    for xml in [
        format!(
            "<jingle xmlns='{NS}' action='transport-info' sid='nope'><content creator='initiator' name='f'>{TR}</content></jingle>"
        ),
        format!("<jingle xmlns='{NS}' action='session-terminate' sid='nope'/>"),
    ] {
        let r = inject(&mut b, now, A, &xml);
        assert_error(&r, T::Cancel, D::ItemNotFound, Some(J::UnknownSession));
    }
    // The right sid from another full JID is another (unknown) session too.
    let xml = format!("<jingle xmlns='{NS}' action='session-terminate' sid='s1'/>");
    let r = inject(&mut b, now, "mallory@evil.example/x", &xml);
    assert_error(&r, T::Cancel, D::ItemNotFound, Some(J::UnknownSession));
    assert_eq!(b.len(), 1, "the real session is untouched");
}

#[test]
fn j2_a_wrong_initiator_or_responder_is_bad_request() {
    let mut p = Pair::new();
    let xml = format!(
        "<jingle xmlns='{NS}' action='session-initiate' initiator='mallory@evil.example/x' sid='s1'><content creator='initiator' name='f'>{DESC}{TR}</content></jingle>"
    );
    assert_error(
        &inject(&mut p.b, p.now, A, &xml),
        T::Cancel,
        D::BadRequest,
        None,
    );
    assert!(p.b.is_empty() && p.b.poll_event().is_none());
    let (mut b, now) = juliet_pending();
    let xml = format!("<jingle xmlns='{NS}' action='session-terminate' initiator='{B}' sid='s1'/>");
    assert_error(
        &inject(&mut b, now, A, &xml),
        T::Cancel,
        D::BadRequest,
        None,
    );
    assert_eq!(b.len(), 1);
    // On Romeo's side: a session-accept naming another responder.
    let mut p = Pair::new();
    p.a.initiate(p.now, B.parse().unwrap(), sid("s1"), vec![offer("f")])
        .unwrap();
    p.a.poll_transmit();
    let xml = format!(
        "<jingle xmlns='{NS}' action='session-accept' responder='juliet@capulet.example/other' sid='s1'><content creator='initiator' name='f'>{TR}</content></jingle>"
    );
    assert_error(
        &inject(&mut p.a, p.now, B, &xml),
        T::Cancel,
        D::BadRequest,
        None,
    );
}

#[test]
fn j3_a_second_session_accept_is_unexpected_request_out_of_order() {
    let mut p = Pair::new();
    p.a.initiate(p.now, B.parse().unwrap(), sid("s1"), vec![offer("f")])
        .unwrap();
    p.a.poll_transmit();
    let xml = format!(
        "<jingle xmlns='{NS}' action='session-accept' sid='s1'><content creator='initiator' name='f'>{TR}</content></jingle>"
    );
    assert_result(&inject(&mut p.a, p.now, B, &xml));
    assert_error(
        &inject(&mut p.a, p.now, B, &xml),
        T::Wait,
        D::UnexpectedRequest,
        Some(J::OutOfOrder),
    );
}

#[test]
fn j4_session_accept_from_the_initiator_is_out_of_order() {
    let (mut b, now) = juliet_pending();
    let xml = format!(
        "<jingle xmlns='{NS}' action='session-accept' sid='s1'><content creator='initiator' name='f'>{TR}</content></jingle>"
    );
    assert_error(
        &inject(&mut b, now, A, &xml),
        T::Wait,
        D::UnexpectedRequest,
        Some(J::OutOfOrder),
    );
    // and a second session-initiate for the same session
    assert_error(
        &inject(&mut b, now, A, &initiate("s1")),
        T::Wait,
        D::UnexpectedRequest,
        Some(J::OutOfOrder),
    );
    // and transport-accept without a transport-replace of ours
    let xml = format!(
        "<jingle xmlns='{NS}' action='transport-accept' sid='s1'><content creator='initiator' name='f'>{TR}</content></jingle>"
    );
    assert_error(
        &inject(&mut b, now, A, &xml),
        T::Wait,
        D::UnexpectedRequest,
        Some(J::OutOfOrder),
    );
}

#[test]
fn j5_an_unknown_or_unimplemented_action_is_feature_not_implemented() {
    let (mut b, now) = juliet_pending();
    for action in ["content-add", "description-info", "dance"] {
        let xml = format!("<jingle xmlns='{NS}' action='{action}' sid='s1'/>");
        assert_error(
            &inject(&mut b, now, A, &xml),
            T::Cancel,
            D::FeatureNotImplemented,
            None,
        );
    }
    assert_eq!(b.len(), 1);
}

#[test]
fn j6_a_content_name_that_does_not_exist_is_item_not_found() {
    let (mut b, now) = juliet_pending();
    for (creator, name) in [("initiator", "nope"), ("responder", "f")] {
        let xml = format!(
            "<jingle xmlns='{NS}' action='transport-info' sid='s1'><content creator='{creator}' name='{name}'>{TR}</content></jingle>"
        );
        assert_error(
            &inject(&mut b, now, A, &xml),
            T::Cancel,
            D::ItemNotFound,
            None,
        );
    }
}

#[test]
fn j7_a_session_info_payload_not_understood_is_unsupported_info() {
    let (mut b, now) = juliet_pending();
    let xml = format!(
        "<jingle xmlns='{NS}' action='session-info' sid='s1'><ringing xmlns='urn:xmpp:jingle:apps:rtp:info:1'/></jingle>"
    );
    assert_error(
        &inject(&mut b, now, A, &xml),
        T::Modify,
        D::FeatureNotImplemented,
        Some(J::UnsupportedInfo),
    );
    let ping = format!("<jingle xmlns='{NS}' action='session-info' sid='s1'/>");
    assert_result(&inject(&mut b, now, A, &ping));
}

#[test]
fn j8_malformed_jingle_is_bad_request() {
    let mut p = Pair::new();
    for xml in [
        format!("<jingle xmlns='{NS}' sid='s1'/>"),
        format!("<jingle xmlns='{NS}' action='session-initiate'/>"),
        format!("<jingle xmlns='{NS}' action='session-initiate' sid='a b'/>"),
        format!(
            "<jingle xmlns='{NS}' action='session-initiate' sid='{}'/>",
            "x".repeat(129)
        ),
        format!("<jingle xmlns='{NS}' action='session-initiate' sid='s1'/>"),
        format!(
            "<jingle xmlns='{NS}' action='session-initiate' sid='s1'><content creator='initiator' name='f'>{TR}</content></jingle>"
        ),
        format!(
            "<jingle xmlns='{NS}' action='session-initiate' sid='s1'><content creator='boss' name='f'>{DESC}{TR}</content></jingle>"
        ),
        format!(
            "<jingle xmlns='{NS}' action='session-initiate' sid='s1'><content creator='initiator' name='f'>{DESC}{TR}{TR}</content></jingle>"
        ),
        format!(
            "<jingle xmlns='{NS}' action='session-initiate' sid='s1'><content creator='initiator' name='f'>{DESC}{TR}</content><content creator='initiator' name='f'>{DESC}{TR}</content></jingle>"
        ),
    ] {
        assert_error(
            &inject(&mut p.b, p.now, A, &xml),
            T::Cancel,
            D::BadRequest,
            None,
        );
    }
    // from a bare JID
    let iq = Iq::try_from(el(&format!(
        "<iq xmlns='jabber:client' type='set' id='raw1' from='romeo@montague.example'>{}</iq>",
        initiate("s1")
    )))
    .unwrap();
    assert!(p.b.handle_iq(p.now, iq).is_break());
    assert_error(
        &p.b.poll_transmit().unwrap(),
        T::Cancel,
        D::BadRequest,
        None,
    );
    assert!(p.b.is_empty() && p.b.poll_event().is_none());
}

#[test]
fn j9_sessions_over_the_bounds_get_busy_and_contents_resource_constraint() {
    let mut c = config();
    c.max_sessions_per_peer = 2;
    c.max_sessions = 3;
    c.max_contents = 2;
    let mut b = Endpoint::new(B.parse().unwrap(), c);
    let now = std::time::Instant::now();
    for s in ["s1", "s2"] {
        assert_result(&inject(&mut b, now, A, &initiate(s)));
    }
    // a third from the same peer: acknowledged, then session-terminate <busy/>
    assert_result(&inject(&mut b, now, A, &initiate("s3")));
    let busy = String::from(&minidom::Element::from(b.poll_transmit().unwrap()));
    assert!(
        busy.contains("session-terminate") && busy.contains("<busy/>"),
        "{busy}"
    );
    assert_result(&inject(&mut b, now, "other@x.example/r", &initiate("s1")));
    assert_result(&inject(&mut b, now, "third@x.example/r", &initiate("s1")));
    assert!(
        b.poll_transmit()
            .is_some_and(|iq| String::from(&minidom::Element::from(iq)).contains("<busy/>"))
    );
    assert_eq!(b.len(), 3);
    // thousands of contents: refused at the third, nothing kept
    let many: String = (0..5000)
        .map(|i| format!("<content creator='initiator' name='c{i}'>{DESC}{TR}</content>"))
        .collect();
    let xml = format!("<jingle xmlns='{NS}' action='session-initiate' sid='big'>{many}</jingle>");
    assert_error(
        &inject(&mut b, now, "fourth@x.example/r", &xml),
        T::Wait,
        D::ResourceConstraint,
        None,
    );
    assert_eq!(b.len(), 3);
    assert_eq!(b.pending_requests(), 0, "busy answers are not tracked");
}

#[test]
fn j10_a_session_initiate_for_a_sid_we_initiated_is_conflict_tie_break() {
    let mut p = Pair::new();
    p.a.initiate(p.now, B.parse().unwrap(), sid("s1"), vec![offer("f")])
        .unwrap();
    p.a.poll_transmit();
    assert_error(
        &inject(&mut p.a, p.now, B, &initiate("s1")),
        T::Cancel,
        D::Conflict,
        Some(J::TieBreak),
    );
}

#[test]
fn j11_an_answer_to_our_iq_from_another_jid_is_not_taken() {
    let mut p = Pair::new();
    let id =
        p.a.initiate(p.now, B.parse().unwrap(), sid("s1"), vec![offer("f")])
            .unwrap();
    p.a.poll_transmit();
    let forged = Iq::try_from(el(&format!("<iq xmlns='jabber:client' type='error' id='{id}' from='mallory@evil.example/x'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"))).unwrap();
    assert!(p.a.handle_iq(p.now, forged).is_continue());
    assert_eq!(p.a.len(), 1);
    assert_eq!(p.a.pending_requests(), 1);
    assert!(p.a.poll_event().is_none());
    // a non-jingle iq passes through
    let ping = Iq::try_from(el("<iq xmlns='jabber:client' type='get' id='p' from='x@y/z'><ping xmlns='urn:xmpp:ping'/></iq>")).unwrap();
    assert!(p.a.handle_iq(p.now, ping).is_continue());
    let _ = Reason::Success;
    let _ = Config::default();
}
