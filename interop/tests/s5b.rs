//! XEP-0065 SOCKS5 Bytestreams between our facade and slixmpp 1.17 through a real Prosody
//! 0.12, always through a proxy (slixmpp's S5B is proxy-only): Prosody's `mod_proxy65`, and
//! our own `xep0065_proxy::Proxy` attached to Prosody as a XEP-0114 component. Every
//! streamhost is on 127.0.0.1; SHA-256 equal on both sides, and the proxy that carried the
//! bytes is the one each side reports.

mod common;

use std::net::SocketAddr;

use common::*;
use ft_facade::{AcceptOptions, Event, Method, MethodUsed, ProxySource, S5bRoute, SendOptions};
use ft_testkit::{Prosody, ProsodyOptions, SlixPeer};
use xep0065_proxy::{Proxy, ProxyConfig};

/// 4 MiB: a few hundred of Prosody's 4 KiB relay reads, so a held-back tail (PEERS.md)
/// would show, while the case stays well under a second of streaming.
const SIZE: usize = 4 * MIB;

/// A Prosody without `mod_proxy65`, so the only proxy anyone can find is ours.
fn prosody_without_proxy65() -> Prosody {
    let options = ProsodyOptions {
        proxy65: false,
        ..ProsodyOptions::default()
    };
    Prosody::start(options).unwrap()
}

/// Our proxy on 127.0.0.1 (a free port), attached to `prosody` as its XEP-0114 component,
/// serving users of `localhost`.
async fn our_proxy(prosody: &Prosody) -> Proxy {
    let mut pc = ProxyConfig::new(jid(&prosody.component_jid().to_string()));
    pc.listen = vec![SocketAddr::from((LOOPBACK, 0))];
    pc.allowed_domains = vec![prosody.domain().to_owned()];
    let proxy = Proxy::bind(pc).await.unwrap();
    let (transport, inbound) = tokio::time::timeout(SHORT, prosody.connect_component())
        .await
        .expect("the component connects within its budget")
        .expect("the component connects");
    proxy.serve(transport.clone());
    let handler = proxy.clone();
    tokio::spawn(async move {
        let handle = move |s| handler.handle_stanza(s);
        ft_transport::pump_refusing(inbound, handle, &transport).await
    });
    proxy
}

fn proxy_port(proxy: &Proxy) -> u16 {
    proxy.streamhosts()[0].port
}

/// Ours sends to a slixmpp receiver through the proxy our side discovers (disco#items on
/// `localhost`, `proxy/bytestreams` identities), which must be exactly `proxy_jid` on
/// 127.0.0.1:`port`.
async fn ours_to_slixmpp(prosody: &Prosody, seed: u64, proxy_jid: &str, port: u16) {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let mut bob = SlixPeer::recv(prosody, "bob", &inbox, 1, &["--prefer", "s5b"])
        .await
        .unwrap();
    let alice = ours(prosody, "alice", {
        let mut c = config(&[Method::S5b], ProxySource::Discover);
        c.s5b_route(S5bRoute::Proxy);
        c
    })
    .await;
    let data = content(SIZE, seed);
    let want = sha256_hex(&data);
    let path = write_file(dir.path(), "s5b-to-slixmpp.bin", &data);

    let mut sending = alice
        .ft
        .send_file(peer_jid(&bob), &path, SendOptions::default());
    let mut found = None;
    let events = tokio::time::timeout(TRANSFER_BUDGET, async {
        while let Some(ev) = sending.next_event().await {
            match ev {
                Event::Proxies { streamhosts, .. } => found = Some(streamhosts),
                Event::Completed(_) | Event::Failed(_) => break,
                _ => {}
            }
        }
    });
    events.await.expect("the transfer ends within its budget");
    let sent = outcome(sending).await.expect("our send completes");
    let got = peer_event(&mut bob, "file").await;

    assert_eq!(
        found,
        Some(vec![format!("{proxy_jid} 127.0.0.1:{port}")]),
        "exactly the one proxy, on loopback"
    );
    assert_eq!(
        sent.method,
        MethodUsed::S5bProxy {
            proxy: jid(proxy_jid),
            streamhost: format!("127.0.0.1:{port}"),
        }
    );
    assert_eq!(sent.sha256, want);
    assert_eq!(got["method"], "s5b", "{got}");
    assert_eq!(got["sha256"], want.as_str(), "{got}");
    assert_eq!(got["size"].as_u64(), Some(SIZE as u64), "{got}");
    assert_eq!(sha256_file(&inbox.join("s5b-to-slixmpp.bin")), want);
    assert!(bob.wait_exit(SHORT).await.unwrap(), "{}", bob.stderr());
}

/// slixmpp sends to our receiver through a proxy (`--proxy JID`, or its own discovery when
/// `proxy_arg` is `None`).
async fn slixmpp_to_ours(
    prosody: &Prosody,
    seed: u64,
    proxy_arg: Option<&str>,
    proxy_jid: &str,
    port: u16,
) {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let data = content(SIZE, seed);
    let want = sha256_hex(&data);
    let path = write_file(dir.path(), "s5b-from-slixmpp.bin", &data);
    let bob = ours(
        prosody,
        "bob",
        config(&[Method::S5b, Method::Ibb], ProxySource::None),
    )
    .await;
    let extra: Vec<&str> = proxy_arg.map(|p| vec!["--proxy", p]).unwrap_or_default();
    let mut alice = SlixPeer::send(prosody, "alice", "bob@localhost/rust", &path, "s5b", &extra)
        .await
        .unwrap();

    let offer = tokio::time::timeout(SHORT, bob.ft.next_offer())
        .await
        .expect("slixmpp's offer arrives")
        .expect("the manager lives");
    assert_eq!(
        offer.methods(),
        ["http://jabber.org/protocol/bytestreams"],
        "slixmpp offers S5B only"
    );
    let receiving = offer.accept_into_dir(&inbox, AcceptOptions::new());
    let received = outcome(receiving).await.expect("our receive completes");
    let sent = peer_event(&mut alice, "sent").await;

    assert_eq!(
        received.method,
        MethodUsed::S5bProxy {
            proxy: jid(proxy_jid),
            streamhost: format!("127.0.0.1:{port}"),
        }
    );
    assert!(!received.fallback);
    assert_eq!(received.sha256, want);
    assert_eq!(sent["method"], "s5b", "{sent}");
    assert_eq!(sent["sha256"], want.as_str(), "{sent}");
    assert_eq!(sha256_file(&inbox.join("s5b-from-slixmpp.bin")), want);
    assert_eq!(listing(&inbox), ["s5b-from-slixmpp.bin"]);
    assert!(alice.wait_exit(SHORT).await.unwrap(), "{}", alice.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ours_sends_to_slixmpp_through_prosody_proxy65_found_by_discovery() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let port = prosody.proxy65_port();
    ours_to_slixmpp(&prosody, 21, "proxy.localhost", port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slixmpp_sends_to_ours_through_prosody_proxy65_it_discovered() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let port = prosody.proxy65_port();
    slixmpp_to_ours(&prosody, 22, None, "proxy.localhost", port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ours_sends_to_slixmpp_through_our_own_proxy_attached_as_a_component() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = prosody_without_proxy65();
    let proxy = our_proxy(&prosody).await;
    let component = prosody.component_jid().to_string();
    ours_to_slixmpp(&prosody, 23, &component, proxy_port(&proxy)).await;
    assert_eq!(proxy.pending(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slixmpp_discovers_our_own_proxy_and_sends_to_ours_through_it() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = prosody_without_proxy65();
    let proxy = our_proxy(&prosody).await;
    let component = prosody.component_jid().to_string();
    slixmpp_to_ours(&prosody, 24, None, &component, proxy_port(&proxy)).await;
    assert_eq!(proxy.pending(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slixmpp_told_our_proxy_jid_sends_to_ours_through_it_while_proxy65_is_up_too() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    // Both proxies online: `--proxy` makes slixmpp use ours, not the first it discovers.
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let proxy = our_proxy(&prosody).await;
    let component = prosody.component_jid().to_string();
    slixmpp_to_ours(
        &prosody,
        25,
        Some(&component),
        &component,
        proxy_port(&proxy),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slixmpp_as_target_connects_straight_to_our_own_loopback_streamhost() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    // slixmpp offers only proxies, but as a target it dials whatever streamhost it is given.
    let prosody = prosody_without_proxy65();
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let mut bob = SlixPeer::recv(&prosody, "bob", &inbox, 1, &["--prefer", "s5b"])
        .await
        .unwrap();
    let alice = ours(&prosody, "alice", {
        let mut c = config(&[Method::S5b], ProxySource::None);
        c.s5b_route(S5bRoute::Direct);
        c
    })
    .await;
    let data = content(SIZE, 26);
    let want = sha256_hex(&data);
    let path = write_file(dir.path(), "direct.bin", &data);
    let sending = alice
        .ft
        .send_file(peer_jid(&bob), &path, SendOptions::default());
    let sent = outcome(sending).await.expect("our send completes");
    let got = peer_event(&mut bob, "file").await;
    let MethodUsed::S5bDirect { streamhost } = &sent.method else {
        panic!("expected our own streamhost, got {:?}", sent.method);
    };
    assert!(streamhost.starts_with("127.0.0.1:"), "{streamhost}");
    assert_eq!(sent.sha256, want);
    assert_eq!(got["method"], "s5b", "{got}");
    assert_eq!(got["sha256"], want.as_str(), "{got}");
    assert_eq!(got["size"].as_u64(), Some(SIZE as u64), "{got}");
    assert!(bob.wait_exit(SHORT).await.unwrap(), "{}", bob.stderr());
}
