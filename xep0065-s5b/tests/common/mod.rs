//! Shared helpers for the loopback tests (all sockets on 127.0.0.1).
#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::ControlFlow;
use std::time::Duration;

use ft_transport::hub::{Hub, HubReceiver, HubTransport};
use ft_transport::{Jid, StanzaTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use xep0065_s5b::{Config, S5b};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;

pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

pub fn jid(s: &str) -> Jid {
    s.parse().unwrap()
}

/// A config for tests: listen on 127.0.0.1 only.
pub fn config() -> Config {
    let mut c = Config::default();
    c.listen(vec![LOCALHOST]);
    // Every streamhost in these tests is on 127.0.0.1: allowed explicitly.
    c.dial_policy(xep0065_s5b::DialPolicy::allow_all());
    c
}

/// An S5b on the hub, with a task feeding it every inbound stanza.
pub fn peer(hub: &Hub, who: &str, config: Config) -> S5b<HubTransport> {
    let (t, mut rx) = hub.connect(jid(who));
    let s5b = S5b::new(t, config);
    let s = s5b.clone();
    tokio::spawn(async move {
        while let Some(st) = rx.recv().await {
            if let ControlFlow::Continue(st) = s.handle_stanza(st) {
                panic!("unhandled stanza: {st:?}");
            }
        }
    });
    s5b
}

/// A plain hub client that sends iqs and reads what comes back.
#[derive(Debug)]
pub struct Raw {
    pub t: HubTransport,
    pub rx: HubReceiver,
}

impl Raw {
    pub fn new(hub: &Hub, who: &str) -> Self {
        let (t, rx) = hub.connect(jid(who));
        Self { t, rx }
    }

    pub async fn send(&self, iq: Iq) {
        self.t.send(Stanza::Iq(iq)).await.unwrap();
    }

    pub async fn recv_iq(&mut self) -> Iq {
        match tokio::time::timeout(Duration::from_secs(10), self.rx.recv()).await {
            Ok(Some(Stanza::Iq(iq))) => iq,
            other => panic!("expected an iq, got {other:?}"),
        }
    }

    /// Sends `iq` and returns the answer with the same id.
    pub async fn ask(&mut self, iq: Iq) -> Iq {
        let id = iq.id().to_owned();
        self.send(iq).await;
        loop {
            let r = self.recv_iq().await;
            if r.id() == id {
                return r;
            }
        }
    }
}

/// A raw SOCKS5 client handshake (greeting, then CONNECT to `dst` port 0); returns the
/// socket and the reply code.
pub async fn socks_connect(addr: SocketAddr, dst: &str) -> (TcpStream, u8) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[5, 1, 0]).await.unwrap();
    let mut m = [0u8; 2];
    s.read_exact(&mut m).await.unwrap();
    assert_eq!(m, [5, 0]);
    let mut req = vec![5, 1, 0, 3, dst.len() as u8];
    req.extend_from_slice(dst.as_bytes());
    req.extend_from_slice(&[0, 0]);
    s.write_all(&req).await.unwrap();
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await.unwrap();
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        _ => {
            let mut l = [0u8; 1];
            s.read_exact(&mut l).await.unwrap();
            usize::from(l[0]) + 2
        }
    };
    let mut tail = vec![0u8; rest];
    s.read_exact(&mut tail).await.unwrap();
    (s, head[1])
}

/// Deterministic test data.
pub fn data(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

pub fn sha256(b: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(b).to_vec()
}
