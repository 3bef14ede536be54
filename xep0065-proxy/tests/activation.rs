//! The proxy's activation rules over real sockets: BAD-INPUT E1–E4 and E13.

mod common;

use std::time::Duration;

use common::*;
use ft_transport::hub::Hub;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

/// BAD-INPUT E1: an activation from a third party (same domain, so allowed to use the
/// proxy) computes another hash: `item-not-found`, and the pair stays for its requester.
#[tokio::test]
async fn e1_an_activation_by_a_third_party_is_item_not_found() {
    let hub = Hub::new();
    let p = proxy(&hub, |_| {}).await;
    let mut alice = Raw::new(&hub, "alice@example.org/a");
    let mut mallory = Raw::new(&hub, "mallory@example.org/m");
    let (mut target, mut requester) = connected(&p, "act-1").await;
    let r = mallory
        .ask(activate_iq("m1", "act-1", "bob@example.org/b"))
        .await;
    assert_eq!(
        error_of(&r),
        (ErrorType::Cancel, DefinedCondition::ItemNotFound)
    );
    let r = alice
        .ask(activate_iq("a1", "act-1", "bob@example.org/b"))
        .await;
    assert!(matches!(r, Iq::Result { .. }), "{r:?}");
    relays(&mut target, &mut requester, b"hello").await;
}

/// BAD-INPUT E2: no connection → `item-not-found`; only the target → `not-allowed`; both →
/// result; again → `conflict`, and the relay is unchanged.
#[tokio::test]
async fn e2_activation_before_both_connect_is_not_allowed_and_a_repeat_is_conflict() {
    let hub = Hub::new();
    let p = proxy(&hub, |_| {}).await;
    let addr = proxy_addr(&p);
    let mut alice = Raw::new(&hub, "alice@example.org/a");
    let act = |id: &str| activate_iq(id, "act-2", "bob@example.org/b");
    let r = alice.ask(act("a0")).await;
    assert_eq!(
        error_of(&r),
        (ErrorType::Cancel, DefinedCondition::ItemNotFound)
    );
    let (mut target, code) = socks_connect(addr, &hash("act-2")).await;
    assert_eq!(code, 0);
    let r = alice.ask(act("a1")).await;
    assert_eq!(
        error_of(&r),
        (ErrorType::Cancel, DefinedCondition::NotAllowed)
    );
    let (mut requester, code) = socks_connect(addr, &hash("act-2")).await;
    assert_eq!(code, 0);
    let r = alice.ask(act("a2")).await;
    assert!(matches!(r, Iq::Result { .. }), "{r:?}");
    let r = alice.ask(act("a3")).await;
    assert_eq!(
        error_of(&r),
        (ErrorType::Cancel, DefinedCondition::Conflict)
    );
    relays(&mut target, &mut requester, b"still one relay").await;
}

/// BAD-INPUT E3: a third connection with the same DST.ADDR gets REP 02 and is closed; it
/// replaces neither party, before or after activation.
#[tokio::test]
async fn e3_a_third_connection_with_the_same_hash_is_refused_and_replaces_nobody() {
    let hub = Hub::new();
    let p = proxy(&hub, |_| {}).await;
    let addr = proxy_addr(&p);
    let mut alice = Raw::new(&hub, "alice@example.org/a");
    let (mut target, mut requester) = connected(&p, "act-3").await;
    let (third, code) = socks_connect(addr, &hash("act-3")).await;
    assert_eq!(code, 0x02, "connection not allowed");
    assert!(closes_within(third, Duration::from_secs(5)).await);
    let r = alice
        .ask(activate_iq("a1", "act-3", "bob@example.org/b"))
        .await;
    assert!(matches!(r, Iq::Result { .. }), "{r:?}");
    let (fourth, code) = socks_connect(addr, &hash("act-3")).await;
    assert_eq!(code, 0x02, "refused once active too");
    assert!(closes_within(fourth, Duration::from_secs(5)).await);
    relays(&mut target, &mut requester, b"the first two").await;
}

/// BAD-INPUT E4: an `<activate/>` missing or empty, a sid missing, empty or longer than 128
/// is `bad-request`; a target that does not parse as a JID is `jid-malformed` (it was
/// `bad-request` before); a JID outside the served domains is `forbidden` (auth) first.
#[tokio::test]
async fn e4_a_malformed_activation_is_bad_request_and_a_bad_jid_jid_malformed() {
    let hub = Hub::new();
    let p = proxy(&hub, |_| {}).await;
    let _pair = connected(&p, "act-4").await;
    let mut alice = Raw::new(&hub, "alice@example.org/a");
    let mut eve = Raw::new(&hub, "eve@evil.example/e");
    let raw = |id: &str, xml: &str| Iq::Set {
        from: None,
        to: Some(jid("proxy.example.org")),
        id: id.into(),
        payload: xml.parse().unwrap(),
    };
    let ns = "http://jabber.org/protocol/bytestreams";
    for (id, xml) in [
        (
            "no-sid",
            format!("<query xmlns='{ns}'><activate>bob@example.org/b</activate></query>"),
        ),
        ("no-activate", format!("<query xmlns='{ns}' sid='act-4'/>")),
        (
            "empty-activate",
            format!("<query xmlns='{ns}' sid='act-4'><activate/></query>"),
        ),
    ] {
        let r = alice.ask(raw(id, &xml)).await;
        assert_eq!(
            error_of(&r),
            (ErrorType::Modify, DefinedCondition::BadRequest),
            "{id}"
        );
    }
    let long = "x".repeat(129);
    for (id, xml, want) in [
        (
            "bad-jid",
            format!("<query xmlns='{ns}' sid='act-4'><activate>@bad@/</activate></query>"),
            (ErrorType::Modify, DefinedCondition::JidMalformed),
        ),
        (
            "empty-sid",
            format!("<query xmlns='{ns}' sid=''><activate>bob@example.org/b</activate></query>"),
            (ErrorType::Modify, DefinedCondition::BadRequest),
        ),
        (
            "long-sid",
            format!(
                "<query xmlns='{ns}' sid='{long}'><activate>bob@example.org/b</activate></query>"
            ),
            (ErrorType::Modify, DefinedCondition::BadRequest),
        ),
    ] {
        let r = alice.ask(raw(id, &xml)).await;
        assert_eq!(error_of(&r), want, "{id}");
    }
    let r = eve
        .ask(activate_iq("e1", "act-4", "bob@example.org/b"))
        .await;
    assert_eq!(error_of(&r), (ErrorType::Auth, DefinedCondition::Forbidden));
}

/// BAD-INPUT E13 (hash race): whoever connects first with a hash is the target and the
/// second the requester; a third is refused; only the requester whose JID is in the hash
/// can activate (not the target, not an eavesdropper). The residual risk (an eavesdropper
/// that knows the hash and connects first) is documented; end-to-end encryption covers it.
#[tokio::test]
async fn e13_first_is_target_second_is_requester_and_only_the_requester_activates() {
    let hub = Hub::new();
    let p = proxy(&hub, |_| {}).await;
    let mut alice = Raw::new(&hub, "alice@example.org/a");
    let mut bob = Raw::new(&hub, "bob@example.org/b");
    let (mut first, mut second) = connected(&p, "act-13").await;
    let r = bob
        .ask(activate_iq("b1", "act-13", "alice@example.org/a"))
        .await;
    assert_eq!(
        error_of(&r),
        (ErrorType::Cancel, DefinedCondition::ItemNotFound)
    );
    let r = alice
        .ask(activate_iq("a1", "act-13", "bob@example.org/b"))
        .await;
    assert!(matches!(r, Iq::Result { .. }), "{r:?}");
    // The first connection gets what the second sends, and the reverse.
    relays(&mut first, &mut second, b"to the first").await;
    relays(&mut second, &mut first, b"to the second").await;
}
