//! XEP-0234 §5 pull through the facade: alice asks bob for a file (`request_file`), bob's
//! application gets the request (`next_request`) and serves a file of its choosing or
//! declines. Two `FileTransfer`s on the in-memory hub, real files, IBB over the hub and
//! S5B over loopback sockets.

mod common;

use common::*;
use ft_facade::{
    AcceptOptions, Delivery, ErrorKind, FileRequest, HashAlgo, JingleError, Method, MethodUsed,
    Misuse, SendOptions, Stack,
};
use ft_transport::hub::Hub;
use sha2::{Digest, Sha256};

/// Alice requests `request` from bob over `methods`; bob's application serves `name` with
/// `data` (`serve`), or declines. Returns both outcomes, alice's directory, the request
/// bob saw.
async fn pull(
    methods: &[Method],
    request: FileRequest,
    data: &[u8],
    serve: bool,
) -> (
    Result<ft_facade::Outcome, ft_facade::TransferError>,
    Option<Result<ft_facade::Outcome, ft_facade::TransferError>>,
    tempfile::TempDir,
    FileRequest,
) {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", jconfig(methods));
    let bob = entity(&hub, "bob@x/b", jconfig(methods));
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let path = write_file(src.path(), "served.bin", data);
    let asking = alice.request_file(jid("bob@x/b"), request, dst.path(), AcceptOptions::new());
    let incoming = tokio::time::timeout(std::time::Duration::from_secs(10), bob.next_request())
        .await
        .expect("bob gets the request")
        .unwrap();
    assert_eq!(incoming.from(), &jid("alice@x/a"));
    let seen = incoming.request().clone();
    let served = if serve {
        Some(
            incoming
                .accept_file(&path, SendOptions::default())
                .outcome()
                .await,
        )
    } else {
        incoming.decline();
        None
    };
    let received = asking.outcome().await;
    (received, served, dst, seen)
}

async fn a_pull_lands_identical_and_verified(methods: &[Method]) -> MethodUsed {
    let data = content(700_000, 11);
    let (received, served, dst, seen) =
        pull(methods, FileRequest::by_name("served.bin"), &data, true).await;
    assert_eq!(seen.name.as_deref(), Some("served.bin"));
    let served = served.unwrap().unwrap();
    let received = received.unwrap();
    assert_eq!(received.stack, Stack::Jingle);
    assert_eq!(served.stack, Stack::Jingle);
    // The responder's accept carried the size and SHA-256: checked on arrival.
    assert_eq!(received.verified_by, Some(HashAlgo::Sha256));
    assert_eq!(
        received.delivery,
        Delivery::Received {
            size_checked: true,
            hash_checked: true
        }
    );
    assert_eq!(served.delivery, Delivery::Acknowledged);
    assert_eq!(received.bytes, data.len() as u64);
    assert_eq!(
        sha256_file(&dst.path().join("served.bin")),
        sha256_hex(&data)
    );
    // Nothing but the file: no .part, no sidecar left.
    assert_eq!(listing(dst.path()), vec!["served.bin".to_owned()]);
    received.method
}

#[tokio::test]
async fn a_pull_over_ibb_is_served_by_the_application_and_lands_verified() {
    let m = a_pull_lands_identical_and_verified(&[Method::Ibb]).await;
    assert_eq!(m, MethodUsed::IbbIq);
}

#[tokio::test]
async fn a_pull_over_loopback_s5b_is_served_by_the_application_and_lands_verified() {
    let m = a_pull_lands_identical_and_verified(&[Method::S5b, Method::Ibb]).await;
    assert!(matches!(m, MethodUsed::S5bDirect { .. }), "{m:?}");
}

#[tokio::test]
async fn a_pull_by_hash_reaches_the_application_with_the_hash() {
    let data = content(50_000, 12);
    let digest = Sha256::digest(&data).to_vec();
    let (received, served, dst, seen) = pull(
        &[Method::Ibb],
        FileRequest::by_hash(HashAlgo::Sha256, digest.clone()),
        &data,
        true,
    )
    .await;
    assert_eq!(seen.name, None);
    assert_eq!(seen.hashes, vec![(HashAlgo::Sha256, digest)]);
    served.unwrap().unwrap();
    let received = received.unwrap();
    assert_eq!(received.verified_by, Some(HashAlgo::Sha256));
    // The name is the server's (made safe).
    assert_eq!(
        sha256_file(&dst.path().join("served.bin")),
        sha256_hex(&data)
    );
}

#[tokio::test]
async fn a_declined_request_ends_with_failed_application_and_leaves_nothing() {
    for methods in [&[Method::Ibb][..], &[Method::S5b][..]] {
        let data = content(1000, 13);
        let (received, served, dst, _) =
            pull(methods, FileRequest::by_name("secret.txt"), &data, false).await;
        assert!(served.is_none());
        let e = received.unwrap_err();
        match &e.kind {
            ErrorKind::Jingle(j) => assert!(
                matches!(&**j, JingleError::Terminated { reason, text }
                    if reason == "failed-application"
                        && text.as_deref() == Some("file not available")),
                "{j:?}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(listing(dst.path()).is_empty(), "{:?}", listing(dst.path()));
    }
}

#[tokio::test]
async fn serving_a_file_without_the_requested_sha256_is_refused_on_both_sides() {
    let data = content(4000, 14);
    let (received, served, dst, _) = pull(
        &[Method::Ibb],
        FileRequest::by_hash(HashAlgo::Sha256, vec![7u8; 32]),
        &data,
        true,
    )
    .await;
    let served = served.unwrap().unwrap_err();
    assert!(
        matches!(
            served.kind,
            ErrorKind::Misuse(Misuse::NotTheRequestedFile {
                algo: HashAlgo::Sha256
            })
        ),
        "{served:?}"
    );
    let e = received.unwrap_err();
    assert!(
        matches!(&e.kind, ErrorKind::Jingle(j)
            if matches!(&**j, JingleError::Terminated { reason, .. } if reason == "failed-application")),
        "{e:?}"
    );
    assert!(listing(dst.path()).is_empty());
}

#[tokio::test]
async fn a_request_to_a_peer_without_jingle_in_disco_fails_at_disco() {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", jconfig(&[Method::Ibb]));
    // Its disco#info does not answer (service-unavailable): SI, which has no pull.
    let mut c = jconfig(&[Method::Ibb]);
    c.answer_disco = false;
    let _bob = entity(&hub, "bob@x/b", c);
    let dst = tempfile::tempdir().unwrap();
    let asking = alice.request_file(
        jid("bob@x/b"),
        FileRequest::by_name("x"),
        dst.path(),
        AcceptOptions::new(),
    );
    let e = asking.outcome().await.unwrap_err();
    assert!(matches!(e.kind, ErrorKind::NoCommonMethod), "{e:?}");
    assert_eq!(e.stage, ft_facade::Stage::Disco);
}

#[tokio::test]
async fn a_request_the_application_never_reads_serves_nothing_and_times_out() {
    let hub = Hub::new();
    let mut c = jconfig(&[Method::Ibb]);
    c.offer_timeout = std::time::Duration::from_secs(1);
    let alice = entity(&hub, "alice@x/a", c.clone());
    let _bob = entity(&hub, "bob@x/b", c);
    let dst = tempfile::tempdir().unwrap();
    let asking = alice.request_file(
        jid("bob@x/b"),
        FileRequest::by_name("x"),
        dst.path(),
        AcceptOptions::new(),
    );
    let e = asking.outcome().await.unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Timeout(_)), "{e:?}");
    assert_eq!(e.stage, ft_facade::Stage::Offer);
    assert!(listing(dst.path()).is_empty());
}
