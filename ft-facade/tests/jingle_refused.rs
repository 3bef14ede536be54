//! What a receiver learns of the Jingle offers its manager refused itself
//! (`next_refused`): the stack, and the session-terminate reason the sender was sent (an
//! SI refusal keeps its stanza error); and what the sender gets for the same refusal.

mod common;

use std::time::Duration;

use common::*;
use ft_facade::{ErrorKind, JingleError, Method, Refusal, RefusedOffer, SendOptions, Stack};
use ft_transport::hub::Hub;

async fn refused(ft: &ft_facade::FileTransfer<ft_transport::hub::HubTransport>) -> RefusedOffer {
    tokio::time::timeout(Duration::from_secs(5), ft.next_refused())
        .await
        .expect("a refusal")
        .unwrap()
}

/// Alice sends a 1000-byte file to bob, whose config is `bob`; returns alice's error and
/// bob's refusal.
async fn refused_send(
    alice: ft_facade::Config,
    bob: ft_facade::Config,
) -> (ft_facade::TransferError, RefusedOffer) {
    let hub = Hub::new();
    let a = entity(&hub, "alice@x/a", alice);
    let b = entity(&hub, "bob@x/b", bob);
    let src = tempfile::tempdir().unwrap();
    let path = write_file(src.path(), "r.bin", &content(1000, 41));
    let sending = a.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let r = refused(&b).await;
    let e = sending.outcome().await.unwrap_err();
    (e, r)
}

#[tokio::test]
async fn a_jingle_offer_over_the_size_limit_is_refused_with_decline_on_both_sides() {
    let mut bob = jconfig(&[Method::Ibb]);
    bob.policy.max_size = Some(10);
    let (e, r) = refused_send(jconfig(&[Method::Ibb]), bob).await;
    assert_eq!(r.stack, Stack::Jingle);
    assert_eq!(r.jingle_reason.as_deref(), Some("decline"));
    assert_eq!(r.answer_text(), "session-terminate <decline/>");
    assert!(matches!(
        r.reason,
        Refusal::TooLarge {
            size: 1000,
            limit: 10
        }
    ));
    assert_eq!(r.name.as_deref(), Some("r.bin"));
    assert!(matches!(e.kind, ErrorKind::Declined { .. }), "{e:?}");
}

#[tokio::test]
async fn a_jingle_offer_over_the_per_peer_bound_is_refused_busy_and_the_sender_reads_busy() {
    let hub = Hub::new();
    let mut c = jconfig(&[Method::Ibb]);
    c.policy.max_offers_per_peer = 1;
    let a = entity(&hub, "alice@x/a", jconfig(&[Method::Ibb]));
    let b = entity(&hub, "bob@x/b", c);
    let src = tempfile::tempdir().unwrap();
    let path = write_file(src.path(), "r.bin", &content(1000, 42));
    // The first offer waits for bob's application; the second is over the bound.
    let _first = a.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let pending = b.next_offer().await.unwrap();
    let second = a.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let r = refused(&b).await;
    let e = second.outcome().await.unwrap_err();
    drop(pending);
    assert_eq!(r.stack, Stack::Jingle);
    assert_eq!(r.jingle_reason.as_deref(), Some("busy"));
    assert_eq!(r.answer_text(), "session-terminate <busy/>");
    let ErrorKind::Jingle(j) = &e.kind else {
        panic!("{e:?}")
    };
    assert!(
        matches!(&**j, JingleError::Terminated { reason, .. } if reason == "busy"),
        "{j:?}"
    );
    assert!(e.kind.chain().contains("<busy/>"), "{}", e.kind.chain());
}

#[tokio::test]
async fn an_si_refusal_keeps_its_stanza_error_and_says_si() {
    let mut bob = config(&[Method::Ibb]);
    bob.policy.max_size = Some(10);
    let (_, r) = refused_send(config(&[Method::Ibb]), bob).await;
    assert_eq!(r.stack, Stack::Si);
    assert_eq!(r.jingle_reason, None);
    assert_eq!(r.answer_text(), "forbidden");
}
