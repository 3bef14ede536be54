//! Both stacks through the facade, as an application runs them: `ft_facade::FileTransfer`
//! sends by Jingle File Transfer (XEP-0234 over XEP-0260 / XEP-0261) or by SI
//! (XEP-0095/0096 over XEP-0065 / XEP-0047), the receiver takes either. Same bytes, same
//! receiver, same run: the figures compare the stacks (issue 11: Jingle S5B ≥ 0.95× SI,
//! Jingle IBB equal to SI IBB). The facade hashes on both sides while streaming, so these
//! figures sit below the bare `s5b/*` and `ibb/*` cases, which drive the XEP crates alone.
//!
//! Every listener is on 127.0.0.1; every task a run spawns lives in a `JoinSet` that aborts
//! it when the run ends.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ft_facade::{
    AcceptOptions, Config, FileInfo, FileTransfer, Method, Outcome, ProxySource, S5bRoute,
    SendOptions, Stack,
};
use ft_transport::hub::{Hub, HubTransport};
use ft_transport::{Jid, StanzaTransport};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::JoinSet;
use xep0065_proxy::{Proxy, ProxyConfig};

use crate::measure::Run;
use crate::pattern::{self, IO_BUF};
use crate::transfer::{DOMAIN, PROXY_JID};

/// How long an offer may wait for its receiver inside a run.
const OFFER_WAIT: Duration = Duration::from_secs(20);

/// How the bytes of a facade case travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// S5B, the sender's own streamhost on 127.0.0.1.
    S5bDirect,
    /// S5B through our proxy on 127.0.0.1 (the sender offers no address of its own).
    S5bProxy,
    /// IBB over iq with this block size, the facade's default window.
    Ibb(u16),
}

impl Route {
    /// The id part: `s5b-direct`, `s5b-proxy`, `ibb-iq/4096`.
    pub fn id(self) -> String {
        match self {
            Self::S5bDirect => "s5b-direct".into(),
            Self::S5bProxy => "s5b-proxy".into(),
            Self::Ibb(b) => format!("ibb-iq/{b}"),
        }
    }
}

/// The pattern as an [`AsyncRead`] of `total` bytes (what the sender reads).
#[derive(Debug)]
pub struct PatternReader {
    offset: u64,
    total: u64,
}

impl PatternReader {
    /// `total` pattern bytes.
    pub fn new(total: u64) -> Self {
        Self { offset: 0, total }
    }
}

impl AsyncRead for PatternReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let left = self.total - self.offset;
        let n = (buf.remaining() as u64).min(left).min(IO_BUF as u64) as usize;
        let s = pattern::slice_at(self.offset, n);
        buf.put_slice(s);
        self.offset += s.len() as u64;
        Poll::Ready(Ok(()))
    }
}

/// An [`AsyncWrite`] that checks every byte against the pattern at its offset (what the
/// receiver writes into) and notes when the first byte came.
#[derive(Debug, Clone, Default)]
pub struct PatternChecker {
    offset: u64,
    first: Arc<OnceLock<Instant>>,
}

impl PatternChecker {
    /// When the first byte was written, if one was.
    pub fn first_byte(&self) -> Option<Instant> {
        self.first.get().copied()
    }
}

impl AsyncWrite for PatternChecker {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if !buf.is_empty() {
            self.first.get_or_init(Instant::now);
        }
        let mut done = 0;
        while done < buf.len() {
            let want = pattern::slice_at(self.offset, buf.len() - done);
            let got = &buf[done..done + want.len()];
            if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
                return Poll::Ready(Err(io::Error::other(format!(
                    "byte {} differs from what was sent",
                    self.offset + i as u64
                ))));
            }
            done += want.len();
            self.offset += want.len() as u64;
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn jid(s: &str) -> Result<Jid, String> {
    s.parse().map_err(|e| format!("bad jid {s}: {e}"))
}

fn loopback() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

/// The sender's config: only `stack`, the route's method, its own streamhost on loopback
/// (direct) or our proxy (proxied).
pub fn sender_config(stack: Stack, route: Route) -> Config {
    let mut c = Config::default();
    c.stacks(&[stack]);
    c.cap_timeouts(OFFER_WAIT);
    c.s5b.dial_policy(ft_facade::s5b::DialPolicy::allow_all());
    match route {
        Route::S5bDirect => {
            c.methods(&[Method::S5b]);
            c.s5b.listen(vec![loopback()]);
            c.proxies(ProxySource::None);
        }
        Route::S5bProxy => {
            c.methods(&[Method::S5b]);
            c.s5b.listen(Vec::new());
            c.proxies(ProxySource::Jids(vec![
                PROXY_JID.parse().unwrap_or_else(|_| unreachable!()),
            ]));
        }
        Route::Ibb(block) => {
            c.methods(&[Method::Ibb]);
            c.block_size(block);
        }
    }
    c
}

/// The receiver's config: both stacks and methods, no streamhost of its own (the sender's
/// candidates are the ones used, as for a receiver behind NAT), loopback dials allowed.
pub fn receiver_config() -> Config {
    let mut c = Config::default();
    c.methods(&[Method::S5b, Method::Ibb]);
    c.cap_timeouts(OFFER_WAIT);
    c.s5b.listen(Vec::new());
    c.proxies(ProxySource::None);
    c.s5b.dial_policy(ft_facade::s5b::DialPolicy::allow_all());
    c
}

/// A facade whose inbound stanzas come from `rx` (pumped on `set`, with the facade's
/// backpressure).
pub fn facade_on<T: StanzaTransport + Clone + 'static>(
    set: &mut JoinSet<Result<(), String>>,
    transport: T,
    rx: impl ft_transport::StanzaSource + 'static,
    config: Config,
) -> FileTransfer<T> {
    let ft = FileTransfer::new(transport, config);
    let handler = Backpressured(ft.clone());
    set.spawn(async move {
        ft_transport::pump(rx, handler).await;
        Ok(())
    });
    ft
}

/// The facade as a stanza handler that waits for [`FileTransfer::ready`].
struct Backpressured<T: StanzaTransport + Clone>(FileTransfer<T>);

impl<T: StanzaTransport + Clone> ft_transport::StanzaHandler for Backpressured<T> {
    fn handle_stanza(
        &self,
        stanza: ft_transport::Stanza,
    ) -> std::ops::ControlFlow<(), ft_transport::Stanza> {
        self.0.handle_stanza(stanza)
    }

    fn ready(&self) -> impl Future<Output = ()> + Send {
        self.0.ready()
    }
}

/// One file of `bytes` from `alice` to `bob`: the offer is taken as soon as it arrives
/// (that instant is returned), accepted into a [`PatternChecker`]; both outcomes must name
/// `stack`.
pub async fn one_file<T, U>(
    alice: &FileTransfer<T>,
    bob: &FileTransfer<U>,
    stack: Stack,
    route: Route,
    bytes: u64,
) -> Result<(Outcome, Instant, PatternChecker), String>
where
    T: StanzaTransport + Clone + 'static,
    U: StanzaTransport + Clone + 'static,
{
    let mut options = SendOptions::default();
    match route {
        Route::S5bDirect => options = options.with_s5b_route(S5bRoute::Direct),
        Route::S5bProxy => options = options.with_s5b_route(S5bRoute::Proxy),
        Route::Ibb(_) => {}
    }
    let sending = alice.send_reader(
        bob.jid().clone(),
        PatternReader::new(bytes),
        FileInfo::new("bench.bin", bytes),
        options,
    );
    let Ok(Some(offer)) = tokio::time::timeout(OFFER_WAIT, bob.next_offer()).await else {
        sending.cancel();
        return Err(format!(
            "no offer within {} s: {:?}",
            OFFER_WAIT.as_secs(),
            sending.outcome().await.err()
        ));
    };
    let offered = Instant::now();
    if offer.stack() != stack {
        return Err(format!(
            "offered by {}, not {}",
            offer.stack().name(),
            stack.name()
        ));
    }
    let checker = PatternChecker::default();
    let receiving = offer.accept_into(checker.clone(), AcceptOptions::new());
    let (sent, received) = tokio::join!(sending.outcome(), receiving.outcome());
    let received = received.map_err(|e| format!("receiver: {}", e.kind.chain()))?;
    let sent = sent.map_err(|e| format!("sender: {}", e.kind.chain()))?;
    if sent.stack != stack || received.stack != stack {
        return Err(format!(
            "sent by {}, received by {}, asked for {}",
            sent.stack.name(),
            received.stack.name(),
            stack.name()
        ));
    }
    Ok((received, offered, checker))
}

/// One facade transfer on the hub by `stack` over `route`: timed over the receiver's
/// streaming phase (first byte to last, the facade's own clock).
pub async fn facade(stack: Stack, route: Route, bytes: u64) -> Result<Run, String> {
    let mut set = JoinSet::new();
    let hub = Hub::new();
    let _proxy = if route == Route::S5bProxy {
        let mut pc = ProxyConfig::new(jid(PROXY_JID)?);
        pc.listen = vec![SocketAddr::new(loopback(), 0)];
        pc.allowed_domains = vec![DOMAIN.to_owned()];
        let p = Proxy::bind(pc)
            .await
            .map_err(|e| format!("proxy bind: {e}"))?;
        let (t, rx) = hub.connect(jid(PROXY_JID)?);
        p.serve(t);
        let p2 = p.clone();
        set.spawn(async move {
            ft_transport::pump(rx, move |st| p2.handle_stanza(st)).await;
            Ok(())
        });
        Some(p)
    } else {
        None
    };
    let (ta, ra) = hub.connect(jid(&format!("alice@{DOMAIN}/a"))?);
    let (tb, rb) = hub.connect(jid(&format!("bob@{DOMAIN}/b"))?);
    let alice: FileTransfer<HubTransport> =
        facade_on(&mut set, ta, ra, sender_config(stack, route));
    let bob: FileTransfer<HubTransport> = facade_on(&mut set, tb, rb, receiver_config());
    let (received, _, _) = one_file(&alice, &bob, stack, route, bytes).await?;
    set.abort_all();
    if route == Route::S5bProxy && received.method.streamhost().is_none() {
        return Err(format!("expected the proxy, used {:?}", received.method));
    }
    Ok(Run {
        bytes: received.bytes,
        elapsed: Some(received.streaming),
        latency: None,
    })
}

/// The id of a facade case: `stack/{jingle,si}/{route}/{size}`.
pub fn case_id(stack: Stack, route: Route, size: u64) -> String {
    format!(
        "stack/{}/{}/{}",
        stack.name(),
        route.id(),
        crate::suite::size_label(size)
    )
}

/// The IBB block size of the IBB stack cases.
pub const IBB_BLOCK: u16 = 4096;

/// Runs the facade cases: S5B direct and through our proxy at the largest socket size,
/// each stack beside the other in `rounds` interleaved rounds; then IBB over iq at the IBB
/// size, interleaved likewise.
pub(crate) async fn run_cases(r: &mut crate::suite::Runner, rounds: usize) {
    use crate::suite::{boxed, spec};
    let big = r
        .opts
        .sizes
        .iter()
        .copied()
        .max()
        .unwrap_or(crate::suite::MIB);
    let ibb_size = r.opts.ibb_size;
    let mut s5b = Vec::new();
    let mut ibb = Vec::new();
    for route in [Route::S5bDirect, Route::S5bProxy, Route::Ibb(IBB_BLOCK)] {
        for stack in [Stack::Si, Stack::Jingle] {
            let (size, block, path) = match route {
                Route::S5bDirect => (big, None, "hub + loopback (facade)"),
                Route::S5bProxy => (big, None, "xft proxy (facade)"),
                Route::Ibb(b) => (ibb_size, Some(u32::from(b)), "hub (facade)"),
            };
            let name = match (stack, route) {
                (Stack::Jingle, Route::S5bDirect) => "Jingle S5B direct (XEP-0260)",
                (Stack::Jingle, Route::S5bProxy) => "Jingle S5B through our proxy",
                (Stack::Jingle, _) => "Jingle IBB over iq (XEP-0261)",
                (_, Route::S5bDirect) => "SI S5B direct (XEP-0065)",
                (_, Route::S5bProxy) => "SI S5B through our proxy",
                (_, _) => "SI IBB over iq (XEP-0047)",
            };
            // Jingle is judged against SI of the same run.
            let ceiling = (stack == Stack::Jingle).then(|| case_id(Stack::Si, route, size));
            let sp = spec(
                case_id(stack, route, size),
                "stack",
                name,
                "xft",
                path,
                block,
                size,
                ceiling,
            );
            let run = boxed(move || facade(stack, route, size));
            match route {
                Route::Ibb(_) => ibb.push((sp, run)),
                _ => s5b.push((sp, run)),
            }
        }
    }
    r.interleaved(rounds, s5b).await;
    let ibb_rounds = r.opts.runs;
    r.interleaved(ibb_rounds, ibb).await;
}

/// The goals of issue 11: Jingle S5B (direct, proxied) ≥ 0.95× SI of the same run, Jingle
/// IBB equal to SI IBB (≥ 0.95×: equal within this machine's noise), and Jingle's session
/// setup through Prosody reported beside SI's and Gajim's.
pub fn goals(
    report: &crate::report::Report,
    opts: &crate::suite::Options,
) -> Vec<crate::report::Goal> {
    use crate::goals::ratio_goal;
    let big = opts
        .sizes
        .iter()
        .copied()
        .max()
        .unwrap_or(crate::suite::MIB);
    let mut g = Vec::new();
    for (route, what) in [
        (
            Route::S5bDirect,
            "Jingle S5B direct ≥ 0.95× SI S5B direct (facade, same run)",
        ),
        (
            Route::S5bProxy,
            "Jingle S5B through our proxy ≥ 0.95× SI through it (facade, same run)",
        ),
    ] {
        g.push(ratio_goal(
            report,
            what,
            &case_id(Stack::Jingle, route, big),
            &case_id(Stack::Si, route, big),
            0.95,
        ));
    }
    let ibb = Route::Ibb(IBB_BLOCK);
    g.push(ratio_goal(
        report,
        &format!("Jingle IBB equal to SI IBB (iq, {IBB_BLOCK}; facade, same run; ≥ 0.95×)"),
        &case_id(Stack::Jingle, ibb, opts.ibb_size),
        &case_id(Stack::Si, ibb, opts.ibb_size),
        0.95,
    ));
    g.push(setup_goal(report));
    g
}

/// Jingle's session setup through Prosody (session-initiate to first byte, xft to xft) no
/// slower than Gajim's to the same receiver, SI's offer to first byte beside them.
fn setup_goal(report: &crate::report::Report) -> crate::report::Goal {
    use crate::report::{Goal, Outcome, Verdict};
    use crate::setup::case_id;
    let name = "Jingle session setup through Prosody ≤ Gajim's (session-initiate → first byte; \
                SI's offer → first byte beside)"
        .to_owned();
    let ms = |who: &str| {
        report
            .case(&case_id(who))
            .filter(|c| c.outcome == Outcome::Ok)
            .and_then(|c| c.ack_latency_us)
            .map(|p| p.p50 as f64 / 1000.0)
    };
    let show =
        |v: Option<f64>| v.map_or_else(|| "not measured".to_owned(), |v| format!("{v:.1} ms"));
    let (jingle, si, gajim) = (ms("jingle"), ms("si"), ms("gajim-jingle"));
    let detail = format!(
        "median: xft Jingle {}, xft SI {}, Gajim 1.7.3 Jingle {} (to the same xft receiver, S5B direct on loopback)",
        show(jingle),
        show(si),
        show(gajim)
    );
    let verdict = match (jingle, gajim) {
        (Some(j), Some(g)) if j <= g => Verdict::Met,
        (Some(_), Some(_)) => Verdict::Missed,
        _ => Verdict::NotMeasured,
    };
    Goal {
        name,
        verdict,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn both_stacks_move_every_byte_by_every_route() {
        for stack in [Stack::Si, Stack::Jingle] {
            for route in [Route::S5bDirect, Route::S5bProxy, Route::Ibb(4096)] {
                let run = facade(stack, route, MIB + 3)
                    .await
                    .unwrap_or_else(|e| panic!("{stack:?} {route:?}: {e}"));
                assert_eq!(run.bytes, MIB + 3, "{stack:?} {route:?}");
            }
        }
    }

    #[tokio::test]
    async fn the_checker_refuses_a_byte_that_differs() {
        use tokio::io::AsyncWriteExt;
        let mut c = PatternChecker::default();
        c.write_all(pattern::slice_at(0, 1000)).await.unwrap();
        assert!(c.first_byte().is_some());
        let mut bad = pattern::slice_at(1000, 10).to_vec();
        bad[3] ^= 1;
        let e = c.write_all(&bad).await.unwrap_err();
        assert!(e.to_string().contains("byte 1003"), "{e}");
    }
}
