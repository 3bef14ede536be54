//! Shared helpers for the proxy tests (all sockets on 127.0.0.1): the S5B crate's own test
//! helpers (peers on the hub, a raw iq client, a raw SOCKS5 client), plus our proxy.
#![allow(dead_code, unreachable_pub)]

#[path = "../../../xep0065-s5b/tests/common/mod.rs"]
mod s5b;

use std::net::SocketAddr;

use ft_transport::hub::Hub;
pub use s5b::*;
use xep0065_proxy::{Proxy, ProxyConfig};

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
