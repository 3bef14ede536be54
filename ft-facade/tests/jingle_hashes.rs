//! The Jingle sender's hash algorithm: chosen from the receiver's disco#info
//! (`xep0300_hashes::choose_from`), SHA-256 when nothing better is shared; the receiver
//! verifies by whatever algorithm came. The elements are read on the wire (the hub).

mod common;

use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};

use blake2::Digest as _;
use common::*;
use ft_facade::{AcceptOptions, FileTransfer, HashAlgo, Method, SendOptions};
use ft_transport::hub::{Hub, HubTransport};
use ft_transport::{Stanza, StanzaTransport};
use minidom::Element;

const NS_JINGLE: &str = "urn:xmpp:jingle:1";
const NS_FT: &str = "urn:xmpp:jingle:apps:file-transfer:5";
const NS_HASHES: &str = "urn:xmpp:hashes:2";

/// Bob, whose disco#info lists Jingle FT over IBB and, of the XEP-0300 hashes, only
/// `hashes` (its manager does not answer disco itself); every `<jingle/>` it is sent is
/// kept in the returned log.
fn bob_with_hashes(
    hub: &Hub,
    hashes: &[&str],
) -> (FileTransfer<HubTransport>, Arc<Mutex<Vec<Element>>>) {
    let mut c = jconfig(&[Method::Ibb]);
    c.answer_disco = false;
    let (t, mut rx) = hub.connect(jid("bob@x/b"));
    let ft = FileTransfer::new(t.clone(), c);
    let mut features = vec![
        NS_JINGLE,
        NS_FT,
        "urn:xmpp:jingle:transports:ibb:1",
        NS_HASHES,
    ];
    features.extend_from_slice(hashes);
    let responder =
        ft_facade::disco::DiscoResponder::new(ft_facade::disco::identity("client", "pc"))
            .with_features(features);
    let log = Arc::new(Mutex::new(Vec::new()));
    let (pumped, seen) = (ft.clone(), log.clone());
    tokio::spawn(async move {
        while let Some(s) = rx.recv().await {
            let s = match responder.handle_stanza(s) {
                ControlFlow::Break(Some(reply)) => {
                    let _ = t.send(reply).await;
                    continue;
                }
                ControlFlow::Break(None) => continue,
                ControlFlow::Continue(s) => s,
            };
            if let Stanza::Iq(xmpp_parsers::iq::Iq::Set { payload, .. }) = &s
                && payload.is("jingle", NS_JINGLE)
            {
                seen.lock().unwrap().push(payload.clone());
            }
            pumped.ready().await;
            let _ = pumped.handle_stanza(s);
        }
    });
    (ft, log)
}

/// The `<hash/>`es (algo, raw) under `el`, at any depth.
fn hashes_in(el: &Element, name: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for c in el.children() {
        if c.is(name, NS_HASHES) {
            let raw = xmpp_parsers::hashes::Hash::try_from(c.clone())
                .map(|h| h.hash)
                .unwrap_or_default();
            out.push((c.attr("algo").unwrap_or_default().to_owned(), raw));
        }
        out.extend(hashes_in(c, name));
    }
    out
}

fn action<'a>(log: &'a [Element], action: &str) -> Vec<&'a Element> {
    log.iter()
        .filter(|j| j.attr("action") == Some(action))
        .collect()
}

/// Sends `data` from alice to a bob advertising `hashes`; returns bob's outcome and the
/// jingle elements bob was sent.
async fn send_to(hashes: &[&str], data: &[u8]) -> (ft_facade::Outcome, Vec<Element>) {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", jconfig(&[Method::Ibb]));
    let (bob, log) = bob_with_hashes(&hub, hashes);
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let path = write_file(src.path(), "h.bin", data);
    let sending = alice.send_file(jid("bob@x/b"), &path, SendOptions::default());
    let offer = bob.next_offer().await.unwrap();
    let received = offer
        .accept_into_dir(dst.path(), AcceptOptions::new())
        .outcome()
        .await
        .unwrap();
    sending.outcome().await.unwrap();
    assert_eq!(sha256_file(&dst.path().join("h.bin")), sha256_hex(data));
    let log = log.lock().unwrap().clone();
    (received, log)
}

#[tokio::test]
async fn a_peer_advertising_only_blake2b_512_gets_a_blake2b_512_checksum_and_verifies_by_it() {
    // Small enough that the SHA-256 is computed before the offer: it is still not what
    // this peer is given.
    let data = content(200_000, 21);
    let (received, log) =
        send_to(&["urn:xmpp:hash-function-text-names:id-blake2b512"], &data).await;
    let initiate = action(&log, "session-initiate");
    assert_eq!(initiate.len(), 1);
    assert_eq!(hashes_in(initiate[0], "hash"), vec![]);
    let used: Vec<String> = hashes_in(initiate[0], "hash-used")
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(used, vec!["blake2b-512".to_owned()]);
    let infos = action(&log, "session-info");
    let sent: Vec<(String, Vec<u8>)> = infos.iter().flat_map(|i| hashes_in(i, "hash")).collect();
    let want = blake2::Blake2b512::digest(&data).to_vec();
    assert_eq!(sent, vec![("blake2b-512".to_owned(), want)]);
    assert_eq!(received.verified_by, Some(HashAlgo::Blake2b512));
}

#[tokio::test]
async fn a_peer_sharing_sha_256_gets_it_in_the_offer() {
    let data = content(20_000, 22);
    let (received, log) = send_to(
        &[
            "urn:xmpp:hash-function-text-names:id-blake2b512",
            "urn:xmpp:hash-function-text-names:sha-256",
        ],
        &data,
    )
    .await;
    let initiate = action(&log, "session-initiate");
    let offered: Vec<String> = hashes_in(initiate[0], "hash")
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(offered, vec!["sha-256".to_owned()]);
    assert_eq!(received.verified_by, Some(HashAlgo::Sha256));
}

#[tokio::test]
async fn a_peer_advertising_no_hash_we_compute_gets_sha_256() {
    let data = content(20_000, 23);
    let (received, _) = send_to(&["urn:xmpp:hash-function-text-names:sha-512"], &data).await;
    assert_eq!(received.verified_by, Some(HashAlgo::Sha256));
}
