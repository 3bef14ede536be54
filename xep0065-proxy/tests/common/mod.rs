//! Shared helpers for the proxy tests (all sockets on 127.0.0.1): the S5B crate's own test
//! helpers (peers on the hub, a raw iq client, a raw SOCKS5 client), plus our proxy.
#![allow(dead_code, unreachable_pub)]

#[path = "../../../xep0065-s5b/tests/common/mod.rs"]
mod s5b;

use std::net::SocketAddr;

use ft_transport::hub::Hub;
use minidom::Element;
pub use s5b::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use xep0065_proxy::{Proxy, ProxyConfig};
use xep0065_s5b::payload::Activate;
use xep0065_s5b::{Host, Sid, dst_addr};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

/// Our proxy at `proxy.example.org` on 127.0.0.1, serving example.org users.
pub async fn proxy(hub: &Hub, tweak: impl FnOnce(&mut ProxyConfig)) -> Proxy {
    let mut c = ProxyConfig::new(jid("proxy.example.org"));
    c.listen = vec![SocketAddr::new(LOCALHOST, 0)];
    c.allowed_domains = vec!["example.org".into()];
    tweak(&mut c);
    let p = Proxy::bind(c).await.unwrap();
    let (t, mut rx) = hub.connect(jid("proxy.example.org"));
    p.serve(t);
    let p2 = p.clone();
    tokio::spawn(async move {
        while let Some(st) = rx.recv().await {
            let _ = p2.handle_stanza(st);
        }
    });
    p
}

/// The proxy's (first) SOCKS5 address.
pub fn proxy_addr(p: &Proxy) -> SocketAddr {
    let sh = &p.streamhosts()[0];
    let Host::Ip(ip) = sh.host else { panic!() };
    SocketAddr::new(ip, sh.port)
}

/// An `<activate/>` for `sid` and `target`, to the proxy.
pub fn activate_iq(id: &str, sid: &str, target: &str) -> Iq {
    Iq::Set {
        from: None,
        to: Some(jid("proxy.example.org")),
        id: id.into(),
        payload: Element::from(&Activate {
            sid: Sid::new(sid).unwrap(),
            target: jid(target),
        }),
    }
}

/// A relay between `alice@example.org/a` (requester) and `bob@example.org/b` (target) for
/// `sid`, activated by `alice`: returns (target, requester) sockets.
pub async fn relay(p: &Proxy, alice: &mut Raw, sid: &str) -> (TcpStream, TcpStream) {
    let addr = proxy_addr(p);
    let hash = dst_addr(
        &Sid::new(sid).unwrap(),
        &jid("alice@example.org/a"),
        &jid("bob@example.org/b"),
    );
    let (target, code) = socks_connect(addr, &hash).await;
    assert_eq!(code, 0, "target connected");
    let (requester, code) = socks_connect(addr, &hash).await;
    assert_eq!(code, 0, "requester connected");
    let r = alice
        .ask(activate_iq(&format!("act-{sid}"), sid, "bob@example.org/b"))
        .await;
    assert!(matches!(r, Iq::Result { .. }), "activation of {sid}: {r:?}");
    (target, requester)
}

/// This process's resident memory, bytes (Linux).
pub fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// This process's open descriptors: (all, pipes) (Linux).
pub fn fds() -> (usize, usize) {
    let mut all = 0;
    let mut pipes = 0;
    for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        all += 1;
        if std::fs::read_link(e.path())
            .map(|l| l.to_string_lossy().starts_with("pipe:"))
            .unwrap_or(false)
        {
            pipes += 1;
        }
    }
    (all, pipes)
}

/// A client socket from `src` (a loopback address) to `addr`.
pub async fn connect_from(src: std::net::IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(src, 0))?;
    sock.connect(addr).await
}

pub fn error_of(iq: &Iq) -> (ErrorType, DefinedCondition) {
    match iq {
        Iq::Error { error, .. } => (error.type_.clone(), error.defined_condition.clone()),
        other => panic!("expected an error, got {other:?}"),
    }
}

pub async fn closes_within(mut s: TcpStream, budget: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(budget, s.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

pub fn hash(sid: &str) -> String {
    dst_addr(
        &Sid::new(sid).unwrap(),
        &jid("alice@example.org/a"),
        &jid("bob@example.org/b"),
    )
}

/// Target and requester connected for `sid`, not activated.
pub async fn connected(p: &Proxy, sid: &str) -> (TcpStream, TcpStream) {
    let addr = proxy_addr(p);
    let (target, code) = socks_connect(addr, &hash(sid)).await;
    assert_eq!(code, 0);
    let (requester, code) = socks_connect(addr, &hash(sid)).await;
    assert_eq!(code, 0);
    (target, requester)
}

pub async fn relays(target: &mut TcpStream, requester: &mut TcpStream, what: &[u8]) {
    requester.write_all(what).await.unwrap();
    let mut b = vec![0u8; what.len()];
    tokio::time::timeout(Duration::from_secs(5), target.read_exact(&mut b))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b, what);
}
