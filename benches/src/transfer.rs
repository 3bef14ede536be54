//! One run of each in-process transfer: S5B direct and through our proxy over the hub, IBB
//! over the hub and over a raw XML stream. Every listener is on 127.0.0.1; every task a run
//! spawns lives in a `JoinSet` that aborts it when the run ends or runs out of time.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ft_transport::hub::{Hub, HubTransport};
use ft_transport::xmpp::{Inbound, XmppTransport, open_serverless_halves};
use ft_transport::{Jid, StanzaSource, StanzaTransport};
use hdrhistogram::Histogram;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use xep0047_ibb::{Config as IbbConfig, Ibb, OpenOptions, StanzaKind};
use xep0065_proxy::{Proxy, ProxyConfig};
use xep0065_s5b::{Config as S5bConfig, S5b};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;

use crate::measure::{Run, latency_histogram};
use crate::pattern::{self, ReadOn};

/// The domain of every in-process entity.
pub const DOMAIN: &str = "bench.example";
/// Our proxy's JID on the hub.
pub const PROXY_JID: &str = "proxy.bench.example";

/// How long negotiation (offer, open) may take inside a run.
const NEGOTIATE: Duration = Duration::from_secs(20);

fn jid(s: &str) -> Result<Jid, String> {
    s.parse().map_err(|e| format!("bad jid {s}: {e}"))
}

fn loopback() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

fn tracing_free_log(msg: &str) {
    if std::env::var_os("XFT_BENCH_DEBUG").is_some() {
        eprintln!("{msg}");
    }
}

/// Feeds every stanza from `rx` to `handle` until the stream ends.
fn pump<R: StanzaSource + 'static>(
    set: &mut JoinSet<Result<(), String>>,
    rx: R,
    handle: impl Fn(Stanza) -> ControlFlow<(), Stanza> + Send + 'static,
) {
    let unhandled = |other| {
        tracing_free_log(&format!("unhandled stanza: {other:?}"));
        ControlFlow::Break(())
    };
    set.spawn(async move {
        ft_transport::pump(rx, (handle, unhandled)).await;
        Ok(())
    });
}

/// [`pump`] for an IBB receiver: the pump awaits [`Ibb::ready`] before each stanza (an
/// [`Ibb`] is a `StanzaHandler`), so a reader that lags behind a message-mode sender slows
/// the sender down instead of overrunning.
fn pump_ibb<R: StanzaSource + 'static, T: StanzaTransport>(
    set: &mut JoinSet<Result<(), String>>,
    rx: R,
    ibb: Ibb<T>,
) {
    let unhandled = |other| {
        tracing_free_log(&format!("unhandled stanza: {other:?}"));
        ControlFlow::Break(())
    };
    set.spawn(async move {
        ft_transport::pump(rx, (ibb, unhandled)).await;
        Ok(())
    });
}

/// Writes the pattern on `w` and reads it back verified on `r`; returns the time from the
/// first byte written to the last byte verified.
async fn stream_pattern<W, R>(mut w: W, mut r: R, bytes: u64) -> Result<Duration, String>
where
    W: AsyncWrite + Unpin + Send + 'static,
    R: AsyncRead + Unpin,
{
    let t0 = Instant::now();
    let writer = tokio::spawn(async move { pattern::write_pattern(&mut w, bytes).await });
    let read = pattern::read_verify(&mut r, bytes).await;
    let elapsed = t0.elapsed();
    let write = writer.await;
    read.map_err(|e| format!("receiver: {e}"))?;
    write
        .map_err(|e| format!("writer task: {e}"))?
        .map_err(|e| format!("writer: {e}"))?;
    Ok(elapsed)
}

fn s5b_peer(
    set: &mut JoinSet<Result<(), String>>,
    hub: &Hub,
    who: &Jid,
    config: S5bConfig,
) -> S5b<HubTransport> {
    let (t, rx) = hub.connect(who.clone());
    let s5b = S5b::new(t, config);
    let s = s5b.clone();
    pump(set, rx, move |st| s.handle_stanza(st));
    s5b
}

fn s5b_config(own_listener: bool) -> S5bConfig {
    let mut c = S5bConfig::default();
    // The suite runs on loopback: allowed explicitly (the default refuses it).
    c.dial_policy(xep0065_s5b::DialPolicy::allow_all());
    c.listen(if own_listener {
        vec![loopback()]
    } else {
        Vec::new()
    });
    c
}

/// One S5B transfer over the hub: direct (the requester's own listener on 127.0.0.1) or,
/// with `via_proxy`, through our [`Proxy`] on 127.0.0.1 (the requester offers no own
/// address). Timed from the first byte written to the last byte verified.
pub async fn s5b(bytes: u64, via_proxy: bool) -> Result<Run, String> {
    let mut set = JoinSet::new();
    let hub = Hub::new();
    let a = jid(&format!("alice@{DOMAIN}/a"))?;
    let b = jid(&format!("bob@{DOMAIN}/b"))?;
    let mut proxy_hosts = Vec::new();
    let _proxy = if via_proxy {
        let mut pc = ProxyConfig::new(jid(PROXY_JID)?);
        pc.listen = vec![SocketAddr::new(loopback(), 0)];
        pc.allowed_domains = vec![DOMAIN.to_owned()];
        let p = Proxy::bind(pc)
            .await
            .map_err(|e| format!("proxy bind: {e}"))?;
        let (t, rx) = hub.connect(jid(PROXY_JID)?);
        p.serve(t);
        let p2 = p.clone();
        pump(&mut set, rx, move |st| p2.handle_stanza(st));
        Some(p)
    } else {
        None
    };
    let sa = s5b_peer(&mut set, &hub, &a, s5b_config(!via_proxy));
    let sb = s5b_peer(&mut set, &hub, &b, s5b_config(true));
    if via_proxy {
        proxy_hosts = sa
            .query_proxy(jid(PROXY_JID)?)
            .await
            .map_err(|e| format!("proxy query: {e}"))?;
    }
    let sid = xep0065_s5b::Sid::new("bench-s5b").map_err(|e| e.to_string())?;
    let expect = sb.expect(a.clone(), sid.clone(), NEGOTIATE);
    let (req, tgt) = tokio::join!(sa.connect(b.clone(), sid, &proxy_hosts), expect);
    let req = req.map_err(|e| format!("requester: {e}"))?;
    let tgt = tgt.map_err(|e| format!("target: {e}"))?;
    if via_proxy && req.streamhost.jid.to_string() != PROXY_JID {
        return Err(format!("expected the proxy, used {}", req.streamhost.jid));
    }
    let elapsed = stream_pattern(req.stream, tgt.stream, bytes).await?;
    set.abort_all();
    Ok(Run {
        bytes,
        elapsed: Some(elapsed),
        latency: None,
    })
}

/// Which window an IBB-over-iq case runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The crate's defaults (starts at 4 chunks, grows to 32, at most 512 KiB in flight).
    Adaptive,
    /// Exactly this many chunks in flight.
    Fixed(u16),
}

/// What an IBB case sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IbbParams {
    /// Block size proposed in `<open/>`.
    pub block_size: u16,
    /// Iq with this window, or message (no acknowledgements) when `None`.
    pub iq_window: Option<Window>,
    /// Open and send exactly as xft does by default ([`OpenOptions::default`] and
    /// [`IbbConfig::default`] on both sides); `block_size` and `iq_window` are then only
    /// labels.
    pub xft_default: bool,
}

impl IbbParams {
    /// Iq with `window` at a fixed `block_size`.
    pub fn fixed(block_size: u16, window: Window) -> Self {
        Self {
            block_size,
            iq_window: Some(window),
            xft_default: false,
        }
    }

    /// What xft does when neither the user nor the peer says otherwise.
    pub fn xft_default() -> Self {
        let o = OpenOptions::default();
        Self {
            block_size: o.block_size,
            iq_window: Some(Window::Adaptive),
            xft_default: true,
        }
    }

    /// The sender's IBB config.
    pub fn config(&self) -> IbbConfig {
        let mut c = IbbConfig::default();
        if self.xft_default {
            return c;
        }
        // A case names its block size: every chunk has it (as `xft --block-size` does).
        c.adaptive_chunks(false);
        if let Some(Window::Fixed(w)) = self.iq_window {
            c.max_in_flight(w).initial_window(w);
            // Room for the whole window of full chunks on both sides (and in flight).
            let window_bytes = usize::from(w) * usize::from(self.block_size);
            c.max_in_flight_bytes(window_bytes);
            c.send_buffer(window_bytes.max(256 * 1024));
            c.recv_buffer(window_bytes.max(1024 * 1024));
        }
        c
    }

    /// The receiver's IBB config: the defaults, with a receive buffer that holds a whole
    /// fixed window so that the window, not the buffer, is what the case measures.
    pub fn receiver_config(&self) -> IbbConfig {
        let mut c = IbbConfig::default();
        if let Some(Window::Fixed(w)) = self.iq_window {
            c.recv_buffer((usize::from(w) * usize::from(self.block_size)).max(1024 * 1024));
        }
        c
    }

    fn options(&self) -> OpenOptions {
        if self.xft_default {
            return OpenOptions::default();
        }
        OpenOptions {
            block_size: self.block_size,
            stanza: if self.iq_window.is_some() {
                StanzaKind::Iq
            } else {
                StanzaKind::Message
            },
        }
    }
}

/// A transport that notes when each IBB `<data/>` iq leaves, so the sender's inbound pump
/// can time its acknowledgement.
#[derive(Debug, Clone)]
pub struct Timed<T> {
    inner: T,
    clock: AckClock,
}

type AckState = (HashMap<String, Instant>, Histogram<u64>);

/// Send times of outstanding `<data/>` iqs and the latency histogram of their answers.
#[derive(Debug, Clone)]
pub struct AckClock {
    state: Arc<Mutex<AckState>>,
}

impl Default for AckClock {
    fn default() -> Self {
        Self {
            state: Arc::new(Mutex::new((HashMap::new(), latency_histogram()))),
        }
    }
}

impl AckClock {
    fn sent(&self, stanza: &Stanza) {
        if let Stanza::Iq(Iq::Set { id, payload, .. }) = stanza
            && payload.is("data", ft_transport::codec::NS_IBB)
        {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.0.insert(id.clone(), Instant::now());
        }
    }

    /// Records the latency if `stanza` answers a timed `<data/>` iq.
    pub fn observe(&self, stanza: &Stanza) {
        if let Stanza::Iq(Iq::Result { id, .. } | Iq::Error { id, .. }) = stanza {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(t) = st.0.remove(id) {
                let us = t.elapsed().as_micros().clamp(1, 100_000_000) as u64;
                st.1.saturating_record(us);
            }
        }
    }

    /// The histogram so far.
    pub fn histogram(&self) -> Histogram<u64> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }
}

impl<T: StanzaTransport> Timed<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, clock: AckClock) -> Self {
        Self { inner, clock }
    }
}

impl<T: StanzaTransport> StanzaTransport for Timed<T> {
    type Error = T::Error;

    fn send(&self, stanza: Stanza) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.clock.sent(&stanza);
        self.inner.send(stanza)
    }

    fn jid(&self) -> &Jid {
        self.inner.jid()
    }
}

/// One IBB transfer from `a` to `b` over any pair of connections: `a` opens with `params`,
/// `b` expects the open; both sides' inbound stanzas are pumped into their `Ibb`. Timed from
/// the first byte written to the last byte verified; iq acknowledgement latencies recorded.
pub async fn ibb<T, R, U, Q>(
    (ta, ra): (T, R),
    (tb, rb): (U, Q),
    params: IbbParams,
    bytes: u64,
) -> Result<Run, String>
where
    T: StanzaTransport,
    R: StanzaSource + 'static,
    U: StanzaTransport,
    Q: StanzaSource + 'static,
{
    let mut set = JoinSet::new();
    let a = ta.jid().clone();
    let b = tb.jid().clone();
    let clock = AckClock::default();
    let ia = Ibb::new(Timed::new(ta, clock.clone()), params.config());
    let ib = Ibb::new(tb, params.receiver_config());
    {
        let ia = ia.clone();
        let clock = clock.clone();
        pump(&mut set, ra, move |st| {
            clock.observe(&st);
            ia.handle_stanza(st)
        });
        pump_ibb(&mut set, rb, ib.clone());
    }
    let sid = xep0047_ibb::Sid::new("bench-ibb").unwrap();
    let expect = ib.expect(a, sid.clone(), NEGOTIATE);
    let (sa, sb) = tokio::join!(ia.open(b, sid, params.options()), expect);
    let sa = sa.map_err(|e| format!("open: {e}"))?;
    let sb = sb.map_err(|e| format!("expect: {e}"))?;
    let (t0, mut w, r) = (Instant::now(), sa, sb);
    let writer = tokio::spawn(async move {
        let written = pattern::write_pattern(&mut w, bytes).await;
        (written, w.sizer())
    });
    // The receiver reads on a task, as the facade's receive does.
    let (read, _r) = pattern::read_verify_on(ReadOn::Task, r, bytes).await;
    let elapsed = t0.elapsed();
    let (written, sizer) = writer.await.map_err(|e| format!("writer task: {e}"))?;
    read.map_err(|e| format!("receiver: {e}"))?;
    written.map_err(|e| format!("writer: {e}"))?;
    if let Some(s) = sizer {
        tracing_free_log(&format!(
            "chunk size {} of {:?}, rates (MB/s) {:?}",
            s.chunk_size(),
            s.candidates(),
            s.rates()
                .iter()
                .map(|r| r.map(|r| (r / 1e5).round() / 10.0))
                .collect::<Vec<_>>()
        ));
    }
    set.abort_all();
    Ok(Run {
        bytes,
        elapsed: Some(elapsed),
        latency: params.iq_window.map(|_| clock.histogram()),
    })
}

/// IBB over the in-memory hub.
pub async fn ibb_hub(params: IbbParams, bytes: u64) -> Result<Run, String> {
    let hub = Hub::new();
    let a = hub.connect(jid(&format!("alice@{DOMAIN}/a"))?);
    let b = hub.connect(jid(&format!("bob@{DOMAIN}/b"))?);
    ibb(a, b, params, bytes).await
}

/// Two entities joined by one loopback TCP connection (`TCP_NODELAY`) running the shipped
/// client session ([`open_serverless_halves`]: our codec, reader and writer tasks), no
/// server.
pub async fn serverless_pair(
    a: Jid,
    b: Jid,
) -> std::io::Result<((XmppTransport, Inbound), (XmppTransport, Inbound))> {
    let listener = TcpListener::bind((loopback(), 0)).await?;
    let addr = listener.local_addr()?;
    let (ca, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (ca, cb) = (ca?, accepted?.0);
    ca.set_nodelay(true)?;
    cb.set_nodelay(true)?;
    let ((ra, wa), (rb, wb)) = (ca.into_split(), cb.into_split());
    Ok((
        open_serverless_halves(ra, wa, a),
        open_serverless_halves(rb, wb, b),
    ))
}

/// IBB over a raw XML stream between two entities on loopback TCP (no server), through the
/// shipped client transport.
pub async fn ibb_raw_xml(params: IbbParams, bytes: u64) -> Result<Run, String> {
    let (a, b) = serverless_pair(
        jid(&format!("alice@{DOMAIN}/a"))?,
        jid(&format!("bob@{DOMAIN}/b"))?,
    )
    .await
    .map_err(|e| e.to_string())?;
    ibb(a, b, params, bytes).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn s5b_direct_and_proxied_move_every_byte() {
        assert_eq!(s5b(2 * MIB + 3, false).await.unwrap().bytes, 2 * MIB + 3);
        assert_eq!(s5b(2 * MIB + 3, true).await.unwrap().bytes, 2 * MIB + 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ibb_over_hub_and_raw_xml_move_every_byte_and_time_acks() {
        let iq = IbbParams::fixed(4096, Window::Adaptive);
        let run = ibb_hub(iq, MIB / 2 + 1).await.unwrap();
        assert_eq!(run.bytes, MIB / 2 + 1);
        // One acknowledgement per chunk (the last one short).
        assert_eq!(run.latency.unwrap().len(), (MIB / 2) / 4096 + 1);
        let msg = IbbParams {
            block_size: 65535,
            iq_window: None,
            xft_default: false,
        };
        assert!(ibb_raw_xml(msg, MIB).await.unwrap().latency.is_none());
        let w64 = IbbParams::fixed(65535, Window::Fixed(64));
        assert_eq!(ibb_raw_xml(w64, 2 * MIB).await.unwrap().bytes, 2 * MIB);
    }
}
