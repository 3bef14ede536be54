//! Shared test support: two entities on the in-memory hub, files, hashes.
#![allow(dead_code, unreachable_pub)]

pub mod cancel;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ft_facade::{Config, FileTransfer, Method, ProxySource};
use ft_transport::hub::{Hub, HubReceiver, HubTransport};
use ft_transport::util::{iq_error_reply, stanza_error};
use ft_transport::{Jid, Stanza, StanzaTransport};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, ReadBuf};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

pub fn jid(s: &str) -> Jid {
    s.parse().unwrap()
}

pub const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A config for the SI tests: SI only, our streamhost on 127.0.0.1 only, no proxy
/// discovery, short timeouts.
pub fn config(methods: &[Method]) -> Config {
    let mut c = jconfig(methods);
    c.stacks(&[ft_facade::Stack::Si]);
    c
}

/// [`config`] with both stacks in the default order (Jingle first).
pub fn jconfig(methods: &[Method]) -> Config {
    let mut c = Config::default();
    c.methods(methods);
    c.proxies(ProxySource::None);
    c.cap_timeouts(Duration::from_secs(10));
    c.s5b.listen(vec![LOOPBACK]);
    c.s5b.connect_budget(Duration::from_secs(5));
    // Every streamhost in these tests is on 127.0.0.1: allowed explicitly.
    c.s5b.dial_policy(ft_facade::s5b::DialPolicy::allow_all());
    c
}

/// `c` with IBB over `<message/>` (what `xft --method ibb-message` asks for).
pub fn over_message(mut c: Config) -> Config {
    c.ibb_stanza(ft_facade::StanzaKind::Message);
    c
}

/// `c` with S5B through proxies only (what `xft --method s5b-proxy` asks for).
pub fn proxy_only(mut c: Config) -> Config {
    c.s5b_route(ft_facade::S5bRoute::Proxy);
    c
}

/// Feeds every stanza of `rx` to `ft`; answers unhandled requests with service-unavailable.
pub fn pump(ft: FileTransfer<HubTransport>, transport: HubTransport, mut rx: HubReceiver) {
    tokio::spawn(async move {
        while let Some(s) = rx.recv().await {
            ft.ready().await;
            if let std::ops::ControlFlow::Continue(Stanza::Iq(iq)) = ft.handle_stanza(s) {
                let e = stanza_error(ErrorType::Cancel, DefinedCondition::ServiceUnavailable);
                if let Some(r) = iq_error_reply(&iq, e) {
                    let _ = transport.send(Stanza::Iq(r)).await;
                }
            }
        }
    });
}

/// An entity on the hub with a pumped FileTransfer.
pub fn entity(hub: &Hub, me: &str, config: Config) -> FileTransfer<HubTransport> {
    let (t, rx) = hub.connect(jid(me));
    let ft = FileTransfer::new(t.clone(), config);
    pump(ft.clone(), t, rx);
    ft
}

/// Deterministic pseudo-random bytes.
pub fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn write_file(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn sha256_file(p: &Path) -> String {
    sha256_hex(&std::fs::read(p).unwrap())
}

/// Files in `dir` (names, sorted).
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Hands out `data` a small piece at a time, one piece per `every`, so a transfer is still
/// running when a test cancels it.
pub struct Trickle {
    data: Vec<u8>,
    pos: usize,
    piece: usize,
    timer: Pin<Box<tokio::time::Sleep>>,
    every: Duration,
}

impl Trickle {
    pub fn new(data: Vec<u8>, piece: usize, every: Duration) -> Self {
        Self {
            data,
            pos: 0,
            piece,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            every,
        }
    }
}

impl AsyncRead for Trickle {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let next = tokio::time::Instant::now() + self.every;
        self.timer.as_mut().reset(next);
        let n = self
            .piece
            .min(self.data.len() - self.pos)
            .min(buf.remaining());
        let start = self.pos;
        buf.put_slice(&self.data[start..start + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

/// Waits (at most 10 s) until `h` has moved bytes.
pub async fn until_bytes_flow(h: &mut ft_facade::TransferHandle) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while h.progress().bytes == 0 {
            if !h.progress_changed().await {
                break;
            }
        }
    })
    .await
    .expect("bytes start flowing");
}
pub mod captured;
