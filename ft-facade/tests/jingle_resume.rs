//! Resume of a Jingle offer that has a hash but no date (what most Jingle senders offer):
//! the strong hash keys the `.part` in place of the date. A real cut (the receiver
//! cancels mid-file, the `.part` kept), then the re-offer: the same hash resumes by
//! `<range offset/>` into an identical file; another hash (v2 of the same name and size)
//! starts over.

mod common;

use std::ops::ControlFlow;

use common::*;
use ft_facade::{AcceptOptions, FileTransfer, HashAlgo, Method, SendOptions, Stack};
use ft_transport::hub::{Hub, HubTransport};
use ft_transport::{Stanza, StanzaTransport};
use xmpp_parsers::iq::Iq;

const NS_JINGLE: &str = "urn:xmpp:jingle:1";
const NS_FT: &str = "urn:xmpp:jingle:apps:file-transfer:5";

/// Bob, who sees every offer without its `<date/>` (the hub strips it on the way in).
fn bob_without_dates(hub: &Hub) -> FileTransfer<HubTransport> {
    let (t, mut rx) = hub.connect(jid("bob@x/b"));
    let ft = FileTransfer::new(t.clone(), jconfig(&[Method::Ibb]));
    let pumped = ft.clone();
    tokio::spawn(async move {
        while let Some(mut s) = rx.recv().await {
            if let Stanza::Iq(Iq::Set { payload, .. }) = &mut s
                && payload.is("jingle", NS_JINGLE)
                && payload.attr("action") == Some("session-initiate")
            {
                for content in payload.children_mut() {
                    for d in content.children_mut() {
                        if d.is("description", NS_FT) {
                            for f in d.children_mut() {
                                assert!(f.remove_child("date", NS_FT).is_some());
                            }
                        }
                    }
                }
            }
            pumped.ready().await;
            if let ControlFlow::Continue(Stanza::Iq(iq)) = pumped.handle_stanza(s) {
                let e = ft_transport::util::stanza_error(
                    xmpp_parsers::stanza_error::ErrorType::Cancel,
                    xmpp_parsers::stanza_error::DefinedCondition::ServiceUnavailable,
                );
                if let Some(r) = ft_transport::util::iq_error_reply(&iq, e) {
                    let _ = t.send(Stanza::Iq(r)).await;
                }
            }
        }
    });
    ft
}

/// Alice sends `path`; bob accepts into `dst` and cancels once bytes flow: the `.part`
/// stays (with what was verified).
async fn cut(
    alice: &FileTransfer<HubTransport>,
    bob: &FileTransfer<HubTransport>,
    path: &std::path::Path,
    dst: &std::path::Path,
) {
    let sending = alice.send_file(jid("bob@x/b"), path, SendOptions::default());
    let offer = bob.next_offer().await.unwrap();
    assert_eq!(
        offer.file().date,
        None,
        "the offer reaches bob without a date"
    );
    let mut receiving = offer.accept_into_dir(dst, AcceptOptions::new());
    until_bytes_flow(&mut receiving).await;
    receiving.cancel();
    assert!(receiving.outcome().await.is_err());
    assert!(sending.outcome().await.is_err());
    let parts: Vec<String> = listing(dst)
        .into_iter()
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert_eq!(parts.len(), 1, "{:?}", listing(dst));
}

/// Re-offers `path` and lands it: (sender's offset, receiver's outcome).
async fn reoffer(
    alice: &FileTransfer<HubTransport>,
    bob: &FileTransfer<HubTransport>,
    path: &std::path::Path,
    dst: &std::path::Path,
) -> (u64, ft_facade::Outcome) {
    let sending = alice.send_file(jid("bob@x/b"), path, SendOptions::default());
    let receiving = bob
        .next_offer()
        .await
        .unwrap()
        .accept_into_dir(dst, AcceptOptions::new());
    let (sent, received) = tokio::join!(sending.outcome(), receiving.outcome());
    let (sent, received) = (sent.unwrap(), received.unwrap());
    assert_eq!(sent.stack, Stack::Jingle);
    (sent.offset, received)
}

const SIZE: usize = 8_000_000;

#[tokio::test]
async fn a_dateless_offer_with_the_same_hash_resumes_by_range_into_an_identical_file() {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", jconfig(&[Method::Ibb]));
    let bob = bob_without_dates(&hub);
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let data = content(SIZE, 31);
    let path = write_file(src.path(), "nodate.bin", &data);
    cut(&alice, &bob, &path, dst.path()).await;
    let (offset, received) = reoffer(&alice, &bob, &path, dst.path()).await;
    assert!(offset > 0, "the accept asked for a <range offset/>");
    assert_eq!(received.offset, offset);
    assert_eq!(received.bytes, SIZE as u64 - offset);
    assert_eq!(received.verified_by, Some(HashAlgo::Sha256));
    assert_eq!(
        sha256_file(&dst.path().join("nodate.bin")),
        sha256_hex(&data)
    );
    assert_eq!(listing(dst.path()), ["nodate.bin"]);
}

#[tokio::test]
async fn a_dateless_offer_with_another_hash_starts_over() {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", jconfig(&[Method::Ibb]));
    let bob = bob_without_dates(&hub);
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let v1 = content(SIZE, 32);
    let path = write_file(src.path(), "nodate.bin", &v1);
    cut(&alice, &bob, &path, dst.path()).await;
    // v2: the same name and size, other bytes.
    let v2 = content(SIZE, 33);
    let path = write_file(src.path(), "nodate.bin", &v2);
    let (offset, received) = reoffer(&alice, &bob, &path, dst.path()).await;
    assert_eq!(offset, 0);
    assert_eq!(received.offset, 0);
    assert_eq!(received.bytes, SIZE as u64);
    assert_eq!(sha256_file(&dst.path().join("nodate.bin")), sha256_hex(&v2));
    assert_eq!(listing(dst.path()), ["nodate.bin"]);
}
