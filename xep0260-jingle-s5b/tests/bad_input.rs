//! Hostile or broken transport elements and connections (docs/bad-input.md, section J,
//! J20..J39): each is refused with the error the peer sees, and the negotiation goes on.

mod common;

use common::*;
use xep0065_s5b::wire::ReplyCode;
use xep0065_s5b::{Outcome, Refusal};
use xep0260_jingle_s5b::proto::{Action, Event, Via};
use xep0260_jingle_s5b::{Error, InputError, MAX_PARSED_CANDIDATES};
use xmpp_parsers::jingle_s5b::TransportPayload;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

fn out_of_order(e: &InputError) -> bool {
    let se = e.stanza_error();
    se.type_ == ErrorType::Cancel
        && se.defined_condition == DefinedCondition::UnexpectedRequest
        && se
            .other
            .as_ref()
            .is_some_and(|o| o.is("out-of-order", "urn:xmpp:jingle:errors:1"))
}

fn bad_request(e: &InputError) -> bool {
    let se = e.stanza_error();
    se.type_ == ErrorType::Modify && se.defined_condition == DefinedCondition::BadRequest
}

#[test]
fn j20_candidate_used_for_a_cid_never_offered_is_bad_request_and_changes_nothing() {
    let mut s = Sim::new(direct(A_ADDR), direct(B_ADDR));
    s.start();
    let now = s.now;
    let e =
        s.a.n
            .handle_element(now, &el("<candidate-used cid='never'/>"))
            .unwrap_err();
    assert_eq!(e, InputError::UnknownCid("never".into()));
    assert!(bad_request(&e));
    // The peer's real verdict still counts.
    s.run();
    assert!(matches!(s.a.events[..], [Event::Connected { .. }]));
    assert!(matches!(s.b.events[..], [Event::Connected { .. }]));
}

#[test]
fn j21_activated_before_candidate_used_is_out_of_order() {
    let mut s = Sim::new(direct(A_ADDR), only_proxy());
    let now = s.now;
    s.a.n
        .handle_transport(now, s.b.n.local_transport())
        .unwrap();
    let cid = s.a.n.remote_candidates().unwrap()[0].cid.clone();
    let e =
        s.a.n
            .handle_element(now, &el(&format!("<activated cid='{cid}'/>")))
            .unwrap_err();
    assert!(out_of_order(&e), "{e:?}");
    assert!(s.a.n.poll_event().is_none() && !s.a.n.is_done());
}

#[test]
fn j22_activated_for_the_wrong_cid_is_bad_request_and_the_right_one_still_works() {
    // A uses B's proxy (A unreachable, B offers only its proxy): A waits for activated.
    let mut s = Sim::new(direct(A_ADDR), only_proxy());
    s.a.reachable = false;
    s.b.deliver = false; // hold B's transport-infos: we play them by hand
    s.start();
    s.run();
    let now = s.now;
    let mut held = s.b.sent.clone().into_iter();
    s.a.n.handle_transport(now, held.next().unwrap()).unwrap(); // candidate-error
    let e =
        s.a.n
            .handle_element(now, &el("<activated cid='someone-else'/>"))
            .unwrap_err();
    assert!(bad_request(&e), "{e:?}");
    assert!(s.a.n.poll_event().is_none());
    let activated = held.next().unwrap();
    assert!(matches!(activated.payload, TransportPayload::Activated(_)));
    s.a.n.handle_transport(now, activated).unwrap();
    assert!(matches!(
        s.a.n.poll_event(),
        Some(Event::Connected {
            via: Via::Attempt(_),
            ..
        })
    ));
}

#[test]
fn j23_thousands_of_candidates_are_cut_to_64_read_and_8_dialled() {
    let mut s = Sim::new(direct(A_ADDR), direct(B_ADDR));
    let many: String = (0..5000)
        .map(|i| {
            format!(
                "<candidate cid='c{i}' host='127.0.{}.{}' jid='juliet@capulet.lit/balcony' port='9' priority='{i}'/>",
                i / 250, i % 250
            )
        })
        .collect();
    let now = s.now;
    s.a.n.handle_element(now, &el(&many)).unwrap();
    let read = s.a.n.remote_candidates().unwrap();
    assert_eq!(read.len(), MAX_PARSED_CANDIDATES);
    // All 8 tried at once if each fails at once; the highest priorities of those read first.
    let mut dialled = Vec::new();
    for _ in 0..100 {
        let Some(a) = s.a.n.poll_action() else { break };
        if let Action::Connect { attempt, addrs, .. } = a {
            dialled.push(addrs[0]);
            s.a.n.handle_connect_failed(now, attempt, refused(addrs[0]));
        }
    }
    assert_eq!(dialled.len(), 8);
    assert_eq!(dialled[0], "127.0.0.63:9".parse().unwrap()); // priority 63, the best read
    assert_eq!(
        s.a.n.poll_transmit().map(|t| matches!(t, xep0260_jingle_s5b::proto::Transmit::TransportInfo(t) if t.payload == TransportPayload::CandidateError)),
        Some(true)
    );
}

#[test]
fn j24_a_candidate_outside_loopback_is_refused_by_the_dial_policy_never_dialled() {
    let mut s = Sim::new(direct(A_ADDR), direct(B_ADDR));
    let now = s.now;
    let cands = "<candidate cid='x' host='10.0.0.7' jid='juliet@capulet.lit/balcony' port='9' priority='9999999'/>\
        <candidate cid='y' host='192.0.2.1' jid='juliet@capulet.lit/balcony' port='9' priority='9999998'/>";
    s.a.n.handle_element(now, &el(cands)).unwrap();
    let actions: Vec<Action> = std::iter::from_fn(|| s.a.n.poll_action()).collect();
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Connect { .. })),
        "{actions:?}"
    );
    let sent = s.a.n.poll_transmit();
    assert!(
        matches!(sent, Some(xep0260_jingle_s5b::proto::Transmit::TransportInfo(ref t)) if t.payload == TransportPayload::CandidateError),
        "{sent:?}"
    );
    // B says candidate-error too: A reports both refusals.
    s.a.n
        .handle_element(now, &el("<candidate-error/>"))
        .unwrap();
    let Some(Event::Failed(Error::NoCandidate { attempts })) = s.a.n.poll_event() else {
        panic!()
    };
    assert!(
        attempts
            .iter()
            .all(|a| a.outcome == Outcome::Refused(Refusal::DialPolicy))
    );
}

#[test]
fn j25_an_inbound_connection_with_another_dst_addr_is_refused_host_unreachable() {
    let mut s = Sim::new(direct(A_ADDR), direct(B_ADDR));
    let now = s.now;
    // B's hash for A's candidates is SHA1(sid + A + B) (and, the Gajim quirk, the
    // reverse order: tests/gajim.rs); the same JIDs with another sid are not it.
    let wrong = xep0065_s5b::dst_addr(
        &xep0065_s5b::Sid::new("another-sid").unwrap(),
        &a_jid(),
        &b_jid(),
    );
    assert_eq!(
        s.a.n.handle_inbound(now, &wrong),
        Err(ReplyCode::HostUnreachable)
    );
    assert_eq!(
        s.a.n
            .handle_inbound(now, "0123456789012345678901234567890123456789"),
        Err(ReplyCode::HostUnreachable)
    );
    let right = s.a.n.local_dst_addr();
    assert_eq!(s.a.n.handle_inbound(now, &right), Ok(()));
    // A second connection with the right hash: only the first is taken.
    assert_eq!(
        s.a.n.handle_inbound(now, &right),
        Err(ReplyCode::HostUnreachable)
    );
}

#[test]
fn j26_udp_mode_is_not_acceptable() {
    let mut s = Sim::new(direct(A_ADDR), direct(B_ADDR));
    let e: minidom::Element =
        "<transport xmlns='urn:xmpp:jingle:transports:s5b:1' sid='vj3hs98y' mode='udp'/>"
            .parse()
            .unwrap();
    let err = s.a.n.handle_element(s.now, &e).unwrap_err();
    assert_eq!(err, InputError::Udp);
    assert_eq!(
        err.stanza_error().defined_condition,
        DefinedCondition::NotAcceptable
    );
    assert!(s.a.n.remote_candidates().is_none());
}

#[test]
fn j27_a_transport_for_another_sid_is_bad_request() {
    let mut s = Sim::new(direct(A_ADDR), direct(B_ADDR));
    let e: minidom::Element =
        "<transport xmlns='urn:xmpp:jingle:transports:s5b:1' sid='other'><candidate-error/></transport>".parse().unwrap();
    let err = s.a.n.handle_element(s.now, &e).unwrap_err();
    assert!(matches!(err, InputError::WrongSid { .. }) && bad_request(&err));
}

#[test]
fn j28_a_second_verdict_or_a_second_candidate_list_is_out_of_order() {
    let mut s = Sim::new(direct(A_ADDR), direct(B_ADDR));
    s.a.reachable = false;
    s.b.deliver = false;
    s.start();
    s.run();
    let now = s.now;
    let e =
        s.a.n
            .handle_transport(now, s.b.n.local_transport())
            .unwrap_err();
    assert!(out_of_order(&e), "{e:?}");
    s.a.n
        .handle_element(now, &el("<candidate-error/>"))
        .unwrap();
    // A's choice nominated on the first verdict; a second one comes after the end.
    let e =
        s.a.n
            .handle_element(now, &el("<candidate-error/>"))
            .unwrap_err();
    assert!(out_of_order(&e), "{e:?}");
}

#[test]
fn j29_proxy_error_without_a_nominated_proxy_is_out_of_order_and_malformed_elements_bad_request() {
    let mut s = Sim::new(direct(A_ADDR), direct(B_ADDR));
    s.start();
    let now = s.now;
    let e =
        s.a.n
            .handle_element(now, &el("<proxy-error/>"))
            .unwrap_err();
    assert!(out_of_order(&e));
    for bad in [
        "<candidate-used/>",
        "<candidate-error/><candidate-error/>",
        "<candidate-error/><candidate cid='a' host='127.0.0.1' jid='a@b/c' priority='1'/>",
        "<unknown/>",
    ] {
        let e = s.a.n.handle_element(now, &el(bad)).unwrap_err();
        assert!(bad_request(&e), "{bad}: {e:?}");
    }
    assert!(!s.a.n.is_done());
}
