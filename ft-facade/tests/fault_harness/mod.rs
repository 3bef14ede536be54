//! The seeded fault harness: one run = two `FileTransfer`s on the hub, one transfer, the
//! faults of [`Plan::new`]`(seed, mode)`, and the checks of [`check`]. See `tests/faults.rs`.
#![allow(dead_code, unreachable_pub)]

mod check;
pub mod leak;
pub mod plan;
pub mod relay;
pub mod sink;
pub mod transport;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ft_facade::{
    AcceptOptions, Config, Event, FileTransfer, Method, Outcome, ProxySource, S5bRoute,
    SendOptions, Stage, TransferError, TransferHandle,
};
use ft_transport::hub::{Hub, HubReceiver};
use ft_transport::util::{iq_error_reply, stanza_error};
use ft_transport::{Stanza, StanzaTransport};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

use check::{brief, check};
pub use plan::{CancelAt, Mode, Plan, Who};
use relay::Relay;
use sink::FaultyWriter;
use transport::FaultyTransport;

use crate::common::{LOOPBACK, config, content, jid, write_file};

/// Real time per tick of the paused clock, and how much faster than real time it runs.
const TICK: Duration = Duration::from_micros(100);
const CLOCK_RATE: u32 = 20;

const NAME: &str = "data.bin";
const PART: &str = "data.bin.part";
/// The sidecar beside a `.part` that marks it as ours (kept with it).
const PART_SIDECAR: &str = "data.bin.part.xft";

/// How one side ended.
#[derive(Debug)]
pub struct Ended {
    pub outcome: Result<Outcome, TransferError>,
    /// `Completed`/`Failed` events seen.
    pub terminal_events: usize,
    /// Whether the last terminal event was `Completed`.
    pub terminal_ok: Option<bool>,
}

/// The bound of one run: the sum of every stage timeout of `c`, plus the accept delay.
fn stage_sum(c: &Config, plan: &Plan) -> Duration {
    c.disco.timeout
        + c.offer_timeout
        + c.s5b.iq_timeout
        + c.s5b_budget
        + c.stream_start_timeout
        + c.fallback_window
        + c.inactivity_timeout
        + c.close_timeout
        + c.receiver_close_grace
        + plan.cap // the IBB open timeout, capped at `cap` by `cap_timeouts`
        + plan.cap // the IBB ack timeout, likewise
        + plan.accept_delay
}

/// Runs one seed on a runtime of its own; `Ok(summary)` or `Err(what went wrong)`, both
/// naming the seed and how to replay it.
pub fn run_seed(seed: u64, mode: Mode) -> Result<String, String> {
    run_plan(&Plan::new(seed, mode))
}

/// Runs one plan (a seed's, or one written out by a test) on a runtime of its own, noted
/// for the next [`checkpoint`].
pub fn run_plan(plan: &Plan) -> Result<String, String> {
    leak::guarded(plan, || run_plan_alone(plan))
}

/// Checks that the runs since the last checkpoint left no descriptor or thread behind
/// (see [`leak`]); the seeds that did, each with its replay command. The first call takes
/// the baseline, after one run without faults of every mode.
pub fn checkpoint() -> Vec<(u64, String)> {
    leak::checkpoint(
        || {
            for mode in Mode::ALL {
                let _ = run_plan_alone(&Plan::new(0, mode).without_faults());
            }
        },
        |p| match run_plan_alone(p) {
            Ok(s) => format!("alone: ok, {s}"),
            Err(e) => format!("alone: {}", e.lines().nth(1).unwrap_or("").trim()),
        },
    )
}

/// Replays `seed` of `mode` with no other run in flight (the gate held for writing).
pub fn replay_alone(seed: u64, mode: Mode) -> Result<String, String> {
    let _all = leak::GATE
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    run_plan_alone(&Plan::new(seed, mode))
}

/// [`run_plan`] without the gate (a checkpoint's replays, which hold it already).
fn run_plan_alone(plan: &Plan) -> Result<String, String> {
    let (seed, mode) = (plan.seed, plan.mode);
    let mut b = tokio::runtime::Builder::new_current_thread();
    b.enable_all();
    if !mode.sockets() {
        b.start_paused(true);
    }
    let rt = b.build().expect("runtime");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            // The clock: paused, advanced by a ticker at `CLOCK_RATE` times real time. Not
            // tokio's auto-advance: the facade's digests run on std threads (xep0096-file
            // `HashLanes`) that tokio cannot see, so auto-advance jumps to the next timer
            // while a digest is still running and fires timeouts no real clock would.
            let ticker = (!mode.sockets()).then(|| {
                tokio::spawn(async {
                    loop {
                        std::thread::sleep(TICK);
                        tokio::time::advance(TICK * CLOCK_RATE).await;
                    }
                })
            });
            let baseline = usize::from(ticker.is_some());
            let (sc, _) = configs(plan);
            let bound = stage_sum(&sc, plan) + Duration::from_secs(1);
            let Ok(r) = tokio::time::timeout(bound, run(plan)).await else {
                return Err(format!("hang: no terminal outcome within {bound:?}"));
            };
            // Nothing left behind: every task ends (timers included) once both facades are
            // dropped, within one more stage bound.
            let handle = tokio::runtime::Handle::current();
            let until = tokio::time::Instant::now() + bound;
            loop {
                let n = handle.metrics().num_alive_tasks();
                if n == baseline {
                    break;
                }
                if tokio::time::Instant::now() >= until {
                    return Err(format!(
                        "{n} task(s) still alive {bound:?} after the end ({})",
                        r.as_deref().unwrap_or_else(|e| e)
                    ));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if let Some(t) = ticker {
                t.abort();
            }
            r
        })
    }));
    rt.shutdown_timeout(Duration::from_secs(1));
    let r = match outcome {
        Ok(r) => r,
        Err(p) => Err(format!(
            "panic: {}",
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default()
        )),
    };
    r.map_err(|e| {
        format!(
            "XFT_SEED={seed} XFT_MODE={} cargo test -p ft-facade --test faults replay -- --nocapture\n  {e}\n  plan: {plan:?}",
            mode.name()
        )
    })
}

fn configs(plan: &Plan) -> (Config, Config) {
    let (mut sc, mut rc) = match plan.mode {
        Mode::IbbIq | Mode::IbbMessage => {
            (config(&[Method::Ibb]), config(&[Method::S5b, Method::Ibb]))
        }
        Mode::S5bDirect | Mode::S5bProxy => (config(&[Method::S5b]), config(&[Method::S5b])),
        Mode::Fallback => (
            config(&[Method::S5b, Method::Ibb]),
            config(&[Method::S5b, Method::Ibb]),
        ),
    };
    for c in [&mut sc, &mut rc] {
        c.cap_timeouts(plan.cap);
        c.s5b.connect_budget(plan.cap).handshake_timeout(plan.cap);
    }
    if plan.mode == Mode::IbbMessage {
        sc.ibb_stanza(ft_facade::StanzaKind::Message);
    }
    (sc, rc)
}

/// A free port on `ip` (bound and released: the facade's listener and the proxy need a
/// fixed port so that the relay can forward to it).
fn free_port(ip: Ipv4Addr) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn pump(ft: FileTransfer<FaultyTransport>, transport: FaultyTransport, mut rx: HubReceiver) {
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

/// The port of the streamhost on `host` in an S5B offer (`<query xmlns=bytestreams>`).
fn streamhost_port(s: &Stanza, host: &str) -> Option<u16> {
    let Stanza::Iq(xmpp_parsers::iq::Iq::Set { payload, .. }) = s else {
        return None;
    };
    if !payload.is("query", "http://jabber.org/protocol/bytestreams") {
        return None;
    }
    payload
        .children()
        .filter(|c| c.name() == "streamhost" && c.attr("host") == Some(host))
        .find_map(|c| c.attr("port")?.parse().ok())
}

fn stage_index(s: Stage) -> u8 {
    match s {
        Stage::Prepare | Stage::Disco | Stage::Offer => 0,
        Stage::Proxies | Stage::Connect => 1,
        Stage::Stream => 2,
        _ => 3, // Verify, Close
    }
}

/// Cancels when the plan says, then reads every event and the outcome.
async fn drive(mut h: TransferHandle, cancel: Option<CancelAt>) -> Ended {
    if let Some(c) = cancel {
        loop {
            let p = h.progress();
            if stage_index(p.stage) >= c.stage_index && p.bytes >= c.bytes {
                break;
            }
            if !h.progress_changed().await {
                break; // ended first: the cancel comes late
            }
        }
        h.cancel();
    }
    let (mut terminal_events, mut terminal_ok) = (0, None);
    let debug = std::env::var_os("XFT_DEBUG").is_some();
    while let Some(ev) = h.next_event().await {
        if debug {
            eprintln!("{:?} {}: {ev:?}", tokio::time::Instant::now(), h.sid());
        }
        match ev {
            Event::Completed(_) => {
                (terminal_events, terminal_ok) = (terminal_events + 1, Some(true))
            }
            Event::Failed(_) => (terminal_events, terminal_ok) = (terminal_events + 1, Some(false)),
            _ => {}
        }
    }
    if debug {
        eprintln!("{:?} {}: events done", tokio::time::Instant::now(), h.sid());
    }
    Ended {
        outcome: h.outcome().await,
        terminal_events,
        terminal_ok,
    }
}

fn cancel_of(plan: &Plan, who: Who) -> Option<CancelAt> {
    plan.cancel.filter(|c| c.who == who)
}

/// Descriptors left open on purpose by runs with [`Plan::leak_fds`] (see
/// `tests/fault_leaks.rs`), until [`close_leaked`].
static LEAKED: std::sync::Mutex<Vec<std::net::TcpListener>> = std::sync::Mutex::new(Vec::new());

/// Closes what runs with [`Plan::leak_fds`] left open.
pub fn close_leaked() {
    LEAKED.lock().unwrap().clear();
}

/// One run: set up, transfer, tear down, check.
async fn run(plan: &Plan) -> Result<String, String> {
    for _ in 0..plan.leak_fds {
        LEAKED
            .lock()
            .unwrap()
            .push(std::net::TcpListener::bind((LOOPBACK, 0)).unwrap());
    }
    let hub = Hub::new();
    let (mut sc, mut rc) = configs(plan);
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let data = content(plan.size, plan.seed);
    let path = write_file(src.path(), NAME, &data);

    let mut relay = None;
    let mut proxy = None;
    let mut observer: Option<transport::Observer> = None;
    match plan.mode {
        Mode::IbbIq | Mode::IbbMessage => {}
        Mode::S5bDirect | Mode::Fallback => {
            // The sender listens on 127.0.0.2 and offers the relay on 127.0.0.1 as well;
            // the receiver may dial 127.0.0.1 only, so every byte crosses the relay.
            let ip2 = Ipv4Addr::new(127, 0, 0, 2);
            // The relay learns the listener's port from the sender's offer (no port picked
            // beforehand: another run could take it in between).
            let r = Relay::start(None, plan.tcp.clone()).await;
            sc.s5b.listen(vec![IpAddr::V4(ip2)]);
            sc.s5b.external = vec![(LOOPBACK.into(), r.addr.port())];
            sc.s5b_route(S5bRoute::Direct);
            rc.s5b
                .dial_policy(ft_facade::s5b::DialPolicy::new(|_, _, a| {
                    a.ip() == LOOPBACK
                }));
            let target = r.target.clone();
            observer = Some(Arc::new(move |s: &Stanza| {
                if let Some(port) = streamhost_port(s, "127.0.0.2") {
                    *target.lock().unwrap() = Some(SocketAddr::from((ip2, port)));
                }
            }));
            relay = Some(r);
        }
        Mode::S5bProxy => {
            // Our proxy on 127.0.0.3 announces the relay on 127.0.0.1: both peers cross it.
            let ip3 = Ipv4Addr::new(127, 0, 0, 3);
            let r = Relay::start(None, plan.tcp.clone()).await;
            // A port picked beforehand may be taken in between by another run: a few tries.
            let mut tries = 0;
            let p = loop {
                let port = free_port(ip3);
                let mut pc = xep0065_proxy::ProxyConfig::new(jid("proxy.x"));
                pc.listen = vec![SocketAddr::from((ip3, port))];
                pc.announce = vec![(LOOPBACK.into(), r.addr.port())];
                pc.allowed_domains = vec!["x".into()];
                pc.activation_timeout = plan.cap;
                pc.handshake_timeout = plan.cap;
                match xep0065_proxy::Proxy::bind(pc).await {
                    Ok(p) => {
                        *r.target.lock().unwrap() = Some(SocketAddr::from((ip3, port)));
                        break p;
                    }
                    Err(_) if tries < 5 => tries += 1,
                    Err(e) => return Err(format!("proxy: {e}")),
                }
            };
            let (pt, mut prx) = hub.connect(jid("proxy.x"));
            p.serve(pt);
            let p2 = p.clone();
            tokio::spawn(async move {
                while let Some(s) = prx.recv().await {
                    let _ = p2.handle_stanza(s);
                }
            });
            sc.s5b_route(S5bRoute::Proxy);
            sc.proxies(ProxySource::Jids(vec![jid("proxy.x")]));
            proxy = Some(p);
            relay = Some(r);
        }
    }

    let disc = |who| plan.disconnect.filter(|(w, _)| *w == who).map(|(_, n)| n);
    let (at, arx) = hub.connect(jid("alice@x/a"));
    let mut at = FaultyTransport::new(at, plan.sender_stanzas, disc(Who::Sender), plan.seed ^ 0xa1);
    if let Some(o) = observer {
        at = at.with_observer(o);
    }
    let alice = FileTransfer::new(at.clone(), sc.clone());
    pump(alice.clone(), at.clone(), arx);
    let (bt, brx) = hub.connect(jid("bob@x/b"));
    let bt = FaultyTransport::new(
        bt,
        plan.receiver_stanzas,
        disc(Who::Receiver),
        plan.seed ^ 0xb0,
    );
    let bob = FileTransfer::new(bt.clone(), rc.clone());
    pump(bob.clone(), bt.clone(), brx);

    let (writer, taken) = FaultyWriter::new(plan.sink);
    let sending = alice.send_file(
        jid("bob@x/b"),
        &path,
        SendOptions::default().with_desc("t0"),
    );
    let send = drive(sending, cancel_of(plan, Who::Sender));
    let offer_wait = sc.offer_timeout + plan.cap + Duration::from_secs(6);
    // The further transfers: their own files and directories, told apart by `desc`.
    let mut extras = Vec::new();
    for (i, &size) in plan.also.iter().enumerate() {
        let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let bytes = content(size, plan.seed ^ ((i as u64 + 1) << 40));
        let p = write_file(s.path(), NAME, &bytes);
        let h = alice.send_file(
            jid("bob@x/b"),
            &p,
            SendOptions::default().with_desc(format!("t{}", i + 1)),
        );
        extras.push((s, d, bytes, Some(h)));
    }
    // Offers go to their transfer by `desc`; one that never comes ends its receiver with
    // "no offer" once `offer_wait` is over.
    let mut routes = Vec::new();
    let mut inboxes = Vec::new();
    for _ in 0..=plan.also.len() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        routes.push(Some(tx));
        inboxes.push(rx);
    }
    let router = async {
        let deadline = tokio::time::Instant::now() + offer_wait;
        let mut left = routes.len();
        while left > 0 {
            let Ok(Some(offer)) = tokio::time::timeout_at(deadline, bob.next_offer()).await else {
                break;
            };
            let i = offer
                .file()
                .desc
                .as_deref()
                .and_then(|d| d.strip_prefix('t')?.parse::<usize>().ok());
            if let Some(tx) = i.and_then(|i| routes.get_mut(i)?.take()) {
                let _ = tx.send(offer);
                left -= 1;
            }
        }
        drop(routes);
    };
    let mut inboxes = inboxes.into_iter();
    let main_inbox = inboxes.next().unwrap();
    let recv = async {
        let offer = main_inbox.await.ok()?;
        tokio::time::sleep(plan.accept_delay).await;
        let opts = AcceptOptions::new().with_keep_partial(plan.keep_partial);
        let h = if plan.into_dir {
            offer.accept_into_dir(dst.path(), opts)
        } else {
            offer.accept_into(writer, opts)
        };
        Some(drive(h, cancel_of(plan, Who::Receiver)).await)
    };
    let extra_runs = futures_util::future::join_all(extras.iter_mut().zip(inboxes).map(
        |((_, d, _, h), inbox)| {
            let h = h.take();
            let dir = d.path().to_path_buf();
            let keep = plan.keep_partial;
            async move {
                let sent = drive(h?, None);
                let recv = async {
                    let offer = inbox.await.ok()?;
                    let opts = AcceptOptions::new().with_keep_partial(keep);
                    Some(drive(offer.accept_into_dir(dir, opts), None).await)
                };
                Some(tokio::join!(sent, recv))
            }
        },
    ));
    let ((sent, received), (), extra_ended) =
        tokio::join!(async { tokio::join!(send, recv) }, router, extra_runs);
    // Tear down: both XMPP streams (the pumps end), the facades, the relay, the proxy.
    for j in ["alice@x/a", "bob@x/b", "proxy.x"] {
        hub.disconnect(&jid(j));
    }
    drop((alice, bob, at, bt, proxy));
    if let Some(r) = relay {
        r.stop();
    }
    let taken = taken.lock().unwrap().clone();
    check(plan, &data, &sent, received.as_ref(), dst.path(), &taken)?;
    for (i, ((_, d, bytes, _), ended)) in extras.iter().zip(extra_ended).enumerate() {
        let (sent, received) = ended.expect("every extra transfer started");
        let mut sub = plan.clone();
        sub.size = bytes.len();
        sub.sink = sink::SinkFault::None;
        sub.into_dir = true;
        sub.cancel = None;
        // Beside it ran the main transfer (and the other further ones): checks that hold
        // only for a lone transfer (which S5B connection the relay's faults hit) must not
        // apply (s5b-direct seed 4898 under load: the relay's first connection was this one's).
        sub.also = vec![data.len()];
        check(&sub, bytes, &sent, received.as_ref(), d.path(), &[])
            .map_err(|e| format!("further transfer {} ({} bytes): {e}", i + 1, bytes.len()))?;
    }
    Ok(format!(
        "sender {} / receiver {}",
        brief(&sent),
        received.as_ref().map_or("no offer".into(), brief)
    ))
}
