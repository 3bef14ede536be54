//! Shared rig for the interoperability tests: our facade logged in to a real Prosody through
//! the tokio-xmpp adapter, a wire tap that records what IBB really carried, files and hashes.
#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, Ipv4Addr};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ft_facade::{Config, FileTransfer, Method, ProxySource, TransferError, TransferHandle};
use ft_testkit::{Prosody, SlixPeer};
use ft_transport::xmpp::ClientTransport;
use ft_transport::{Jid, Stanza, StanzaTransport};
use sha2::{Digest, Sha256};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::MessageType;
use xmpp_parsers::minidom::Element;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

pub const NS_IBB: &str = "http://jabber.org/protocol/ibb";
pub const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// How long one whole transfer may take in these tests. Generous: the slowest case (32 MiB
/// over IBB, both peers and Prosody on 2 shared cores) measured in seconds, and every wait
/// is bounded so a broken peer fails the test instead of hanging it.
pub const TRANSFER_BUDGET: Duration = Duration::from_secs(150);

/// How long a short exchange (an offer and its answer, a cancel reaching the other side)
/// may take.
pub const SHORT: Duration = Duration::from_secs(30);

pub fn jid(s: &str) -> Jid {
    s.parse().unwrap()
}

/// What IBB stanzas crossed our connection in one direction.
#[derive(Debug, Default, Clone)]
pub struct IbbSeen {
    /// `(block-size, stanza)` of every `<open/>` (stanza `iq` when the attribute is absent).
    pub opens: Vec<(u16, String)>,
    /// `<data/>` carried in `<iq/>`.
    pub data_iq: u64,
    /// `<data/>` carried in `<message/>`.
    pub data_message: u64,
    /// The largest decoded `<data/>` payload, in bytes.
    pub largest_block: usize,
    /// Decoded `<data/>` payload bytes, all chunks together.
    pub data_bytes: u64,
    /// `<close/>` requests.
    pub closes: u64,
    /// Every iq error: (type, condition, text).
    pub iq_errors: Vec<(ErrorType, DefinedCondition, Option<String>)>,
    /// Every message error (a bounced data message, for example): (type, condition).
    pub message_errors: Vec<(ErrorType, DefinedCondition)>,
}

impl IbbSeen {
    fn record(&mut self, stanza: &Stanza) {
        match stanza {
            Stanza::Iq(Iq::Set { payload, .. }) => self.element(payload, false),
            Stanza::Iq(Iq::Error { error, .. }) => self.iq_errors.push((
                error.type_.clone(),
                error.defined_condition.clone(),
                error.texts.values().next().cloned(),
            )),
            Stanza::Message(m) if m.type_ == MessageType::Error => {
                if let Some(error) = m
                    .payloads
                    .iter()
                    .find_map(|p| StanzaError::try_from(p.clone()).ok())
                {
                    self.message_errors
                        .push((error.type_, error.defined_condition));
                }
            }
            Stanza::Message(m) => {
                for p in &m.payloads {
                    self.element(p, true);
                }
            }
            _ => {}
        }
    }

    fn element(&mut self, e: &Element, in_message: bool) {
        if e.is("open", NS_IBB) {
            let block = e
                .attr("block-size")
                .and_then(|b| b.parse().ok())
                .unwrap_or(0);
            let stanza = e.attr("stanza").unwrap_or("iq").to_owned();
            self.opens.push((block, stanza));
        } else if e.is("data", NS_IBB) {
            if in_message {
                self.data_message += 1;
            } else {
                self.data_iq += 1;
            }
            let b64: usize = e
                .text()
                .bytes()
                .filter(|c| !c.is_ascii_whitespace())
                .count();
            let pad = e.text().bytes().rev().take_while(|c| *c == b'=').count();
            let decoded = (b64 / 4 * 3).saturating_sub(pad.min(2));
            self.largest_block = self.largest_block.max(decoded);
            self.data_bytes += decoded as u64;
        } else if e.is("close", NS_IBB) {
            self.closes += 1;
        }
    }
}

/// Both directions of the tap.
#[derive(Debug, Default)]
pub struct Wire {
    /// What we sent.
    pub out: IbbSeen,
    /// What reached us.
    pub inb: IbbSeen,
}

/// Our client transport, recording the IBB stanzas it sends.
#[derive(Debug, Clone)]
pub struct Tap {
    inner: ClientTransport,
    wire: Arc<Mutex<Wire>>,
}

impl StanzaTransport for Tap {
    type Error = <ClientTransport as StanzaTransport>::Error;

    fn send(&self, stanza: Stanza) -> impl Future<Output = Result<(), Self::Error>> + Send {
        lock(&self.wire).out.record(&stanza);
        self.inner.send(stanza)
    }

    fn jid(&self) -> &Jid {
        self.inner.jid()
    }
}

pub fn lock<X>(m: &Mutex<X>) -> std::sync::MutexGuard<'_, X> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Our side: the facade over the tokio-xmpp client adapter, logged in to Prosody.
#[derive(Debug)]
pub struct Ours {
    pub ft: FileTransfer<Tap>,
    pub wire: Arc<Mutex<Wire>>,
}

impl Ours {
    /// A copy of what crossed the wire so far.
    pub fn seen(&self) -> (IbbSeen, IbbSeen) {
        let w = lock(&self.wire);
        (w.out.clone(), w.inb.clone())
    }
}

/// Logs `user/rust` in and pumps every inbound stanza into the facade (recording IBB on the
/// way); requests nobody takes get `service-unavailable`, as a server-side client would.
pub async fn ours(prosody: &Prosody, user: &str, config: Config) -> Ours {
    let (transport, inbound) = tokio::time::timeout(SHORT, prosody.connect(user, "rust"))
        .await
        .expect("our client logs in within its budget")
        .expect("our client logs in");
    let wire = Arc::new(Mutex::new(Wire::default()));
    let tap = Tap {
        inner: transport,
        wire: wire.clone(),
    };
    let ft = FileTransfer::new(tap.clone(), config);
    let pumped = ft.clone();
    let log = wire.clone();
    let record = move |stanza: Stanza| {
        lock(&log).inb.record(&stanza);
        ControlFlow::Continue(stanza)
    };
    let handle = move |stanza| pumped.handle_stanza(stanza);
    tokio::spawn(async move { ft_transport::pump_refusing(inbound, (record, handle), &tap).await });
    Ours { ft, wire }
}

/// Our test config: only `methods`, no proxy unless given, our streamhost (if ever offered)
/// on 127.0.0.1 only, every timeout capped at 30 s so a broken peer fails within the test.
pub fn config(methods: &[Method], proxies: ProxySource) -> Config {
    let mut c = Config::default();
    c.methods(methods);
    c.proxies(proxies);
    c.cap_timeouts(SHORT);
    c.s5b.listen(vec![LOOPBACK]);
    // Every streamhost of the rig is on 127.0.0.1: allowed explicitly.
    c.s5b.dial_policy(ft_facade::s5b::DialPolicy::allow_all());
    c
}

/// Waits for a transfer's end within [`TRANSFER_BUDGET`].
pub async fn outcome(handle: TransferHandle) -> Result<ft_facade::Outcome, TransferError> {
    tokio::time::timeout(TRANSFER_BUDGET, handle.outcome())
        .await
        .expect("the transfer ends within its budget")
}

/// Waits until bytes flow on `h` (at most [`SHORT`]).
pub async fn until_bytes_flow(h: &mut TransferHandle) {
    tokio::time::timeout(SHORT, async {
        while h.progress().bytes == 0 {
            if !h.progress_changed().await {
                break;
            }
        }
    })
    .await
    .expect("bytes start flowing");
}

/// The next JSON event `event` of a slixmpp peer, waiting at most [`TRANSFER_BUDGET`].
pub async fn peer_event(peer: &mut SlixPeer, event: &str) -> serde_json::Value {
    let waited = tokio::time::timeout(TRANSFER_BUDGET, peer.wait_event(event)).await;
    match waited {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => panic!("slixmpp did not report {event:?}: {e}"),
        Err(_) => panic!(
            "slixmpp did not report {event:?} within {TRANSFER_BUDGET:?}; its log:\n{}",
            peer.stderr()
        ),
    }
}

/// The peer's full JID as ours.
pub fn peer_jid(peer: &SlixPeer) -> Jid {
    Jid::from(peer.jid().expect("the peer is ready").clone())
}

/// Deterministic pseudo-random bytes (xorshift), so a misplaced block changes the hash.
pub fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = (len - out.len()).min(8);
        out.extend_from_slice(&x.to_le_bytes()[..n]);
    }
    out
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

/// Names in `dir`, sorted (empty when it does not exist).
pub fn listing(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

pub const MIB: usize = 1 << 20;

/// Hands out `data` a small piece at a time, one piece per `every`, so a transfer is still
/// running when a test cancels it.
#[derive(Debug)]
pub struct Trickle {
    data: Vec<u8>,
    pos: usize,
    piece: usize,
    timer: std::pin::Pin<Box<tokio::time::Sleep>>,
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

impl tokio::io::AsyncRead for Trickle {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.timer.as_mut().poll(cx).is_pending() {
            return std::task::Poll::Pending;
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
        std::task::Poll::Ready(Ok(()))
    }
}
