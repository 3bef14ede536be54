//! The tokio driver: [`Listener`] for our direct candidates, [`negotiate`] to run a
//! [`Negotiation`] over real sockets with the XEP-0065 dialer and SOCKS5 handshakes, and
//! [`Signalling`], what the caller (the Jingle session) provides.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::SinkExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::{AbortHandle, JoinSet};
use tokio_util::codec::Framed;
use xep0065_s5b::codec::{Reply, ServerCodec};
use xep0065_s5b::proto::AttemptId;
use xep0065_s5b::stream::server_handshake;
use xep0065_s5b::wire::ReplyCode;
use xep0065_s5b::{Attempt, Failure, Host, S5bStream, StreamHost, dial, resolve};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jingle_s5b::Transport;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use crate::proto::{Action, Event, Negotiation, Transmit, Via};
use crate::{Candidate, Error, InputError};

/// Inbound SOCKS5 connections at most in their handshake at once; more are closed.
const MAX_HANDSHAKES: usize = 64;

type RouteTx = mpsc::Sender<(Framed<TcpStream, ServerCodec>, String)>;

/// The listener's routing table: each negotiation's channel under every DST.ADDR it
/// accepts (both orders, see [`Negotiation::accepted_dst_addrs`]).
#[derive(Debug, Default)]
struct Routes {
    by_hash: HashMap<String, RouteTx>,
    negotiations: usize,
}

fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// Our listener: the direct candidates of every negotiation that uses it. Each inbound
/// connection runs the SOCKS5 server handshake (the `xep0065-s5b` one: 40 hex digits,
/// port 0) and goes to the negotiation whose DST.ADDR it presents; an unknown DST.ADDR
/// gets `host unreachable`. Stops when dropped.
#[derive(Debug)]
pub struct Listener {
    addrs: Vec<SocketAddr>,
    routes: Arc<Mutex<Routes>>,
    tasks: JoinSet<()>,
}

impl Listener {
    /// Binds `ips` on `port` (0: any); each handshake is bounded by `handshake_timeout`.
    pub async fn bind(ips: &[IpAddr], port: u16, handshake_timeout: Duration) -> io::Result<Self> {
        let routes: Arc<Mutex<Routes>> = Arc::default();
        let mut tasks = JoinSet::new();
        let mut addrs = Vec::new();
        for ip in ips {
            let l = TcpListener::bind(SocketAddr::new(*ip, port)).await?;
            addrs.push(l.local_addr()?);
            tasks.spawn(accept_loop(l, routes.clone(), handshake_timeout));
        }
        Ok(Self {
            addrs,
            routes,
            tasks,
        })
    }

    /// The bound addresses: our direct candidates ([`LocalCandidates::direct`](crate::LocalCandidates)).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    fn route(&self, dst_addrs: &[String]) -> Inbound {
        let (tx, rx) = mpsc::channel(4);
        let mut r = lock(&self.routes);
        for d in dst_addrs {
            r.by_hash.insert(d.clone(), tx.clone());
        }
        r.negotiations += 1;
        rx
    }

    fn unroute(&self, dst_addrs: &[String]) {
        let mut r = lock(&self.routes);
        for d in dst_addrs {
            r.by_hash.remove(d);
        }
        r.negotiations = r.negotiations.saturating_sub(1);
    }

    /// How many negotiations it routes for now.
    pub fn routes(&self) -> usize {
        lock(&self.routes).negotiations
    }

    /// Whether its accept loops run.
    pub fn is_running(&self) -> bool {
        !self.tasks.is_empty()
    }
}

async fn accept_loop(l: TcpListener, routes: Arc<Mutex<Routes>>, t: Duration) {
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let mut conns = JoinSet::new();
    loop {
        let Ok((tcp, _)) = l.accept().await else {
            // Out of descriptors and the like: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        while conns.try_join_next().is_some() {}
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue; // dropped: closed
        };
        let routes = routes.clone();
        conns.spawn(async move {
            let _permit = permit;
            let _ = tcp.set_nodelay(true);
            let Ok((framed, dst)) = server_handshake(tcp, 40, t).await else {
                return;
            };
            let route = lock(&routes).by_hash.get(&dst).cloned();
            let refused = match route {
                Some(tx) => tx.try_send((framed, dst)).err().map(|e| e.into_inner().0),
                None => Some(framed),
            };
            if let Some(mut framed) = refused {
                let _ = framed
                    .send(Reply::failure(ReplyCode::HostUnreachable))
                    .await;
            }
        });
    }
}

/// What the driver needs from the Jingle session: transport-info both ways and the
/// proxy activation iq. Implementations must make [`recv`](Self::recv) cancel-safe (an
/// `mpsc` receiver is).
pub trait Signalling: Send {
    /// Sends a transport-info carrying `transport` (this content) to the peer.
    fn send(
        &mut self,
        transport: Transport,
    ) -> impl Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>> + Send;
    /// The next transport element the peer sent (transport-info, or session-accept's for
    /// the initiator); `None` when the session ended.
    fn recv(&mut self) -> impl Future<Output = Option<Transport>> + Send;
    /// The verdict on the transport [`recv`](Self::recv) returned last: answer its iq
    /// with an ack, or with `e.stanza_error()`.
    fn verdict(&mut self, verdict: Result<(), InputError>);
    /// Sends the activation iq to the proxy; returns its answer (a result or error iq).
    fn activate(
        &mut self,
        iq: Iq,
    ) -> impl Future<Output = Result<Iq, Box<dyn std::error::Error + Send + Sync>>> + Send;
}

/// The bytestream, ready for data.
#[derive(Debug)]
pub struct Established {
    /// The stream.
    pub stream: S5bStream,
    /// The nominated candidate.
    pub candidate: Candidate,
    /// Whether we offered it.
    pub ours: bool,
    /// Our attempts at the peer's candidates.
    pub attempts: Vec<Attempt>,
}

/// Why [`negotiate`] returned no stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The negotiation failed: fall back to another transport.
    #[error(transparent)]
    Failed(#[from] Error),
    /// The signalling failed.
    #[error("signalling: {0}")]
    Signalling(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The session ended (the signalling's `recv` returned `None`).
    #[error("the jingle session ended during the negotiation")]
    SessionEnded,
}

enum SockEvent {
    Resolved(AttemptId, Result<Vec<SocketAddr>, io::ErrorKind>),
    Dialed(AttemptId, Result<S5bStream, Failure>),
    Proxy(Result<S5bStream, Failure>),
}

type Inbound = mpsc::Receiver<(Framed<TcpStream, ServerCodec>, String)>;

/// Our listener's route for one negotiation's DST.ADDRs; removed when dropped.
#[derive(Debug)]
struct Route<'l> {
    listener: &'l Listener,
    dst_addrs: Vec<String>,
    rx: Inbound,
}

impl<'l> Route<'l> {
    /// Routes every DST.ADDR `n` accepts (both orders: the Gajim quirk).
    fn new(listener: &'l Listener, n: &Negotiation) -> Self {
        let dst_addrs = n.accepted_dst_addrs().to_vec();
        let rx = listener.route(&dst_addrs);
        Self {
            listener,
            dst_addrs,
            rx,
        }
    }
}

impl Drop for Route<'_> {
    fn drop(&mut self) {
        self.listener.unroute(&self.dst_addrs);
    }
}

/// A [`Negotiation`] bound to the listener its direct candidates name. Made before our
/// transport goes out (session-initiate / session-accept): [`new`](Self::new) registers
/// our DST.ADDR with the listener at once, so that the peer's first connection finds it.
#[derive(Debug)]
pub struct Driver<'l> {
    n: Negotiation,
    listener: Option<&'l Listener>,
    route: Option<Route<'l>>,
    early: Vec<Action>,
}

impl<'l> Driver<'l> {
    /// Binds `n` to `listener` (`None` when we offer only proxies) and routes its DST.ADDR.
    pub fn new(mut n: Negotiation, listener: Option<&'l Listener>) -> Self {
        let mut route = None;
        let mut early = Vec::new();
        while let Some(a) = n.poll_action() {
            match (a, listener) {
                (Action::Accept { .. }, Some(l)) => route = Some(Route::new(l, &n)),
                (a, _) => early.push(a),
            }
        }
        Self {
            n,
            listener,
            route,
            early,
        }
    }

    /// The negotiation: for [`local_transport`](Negotiation::local_transport) and, on the
    /// responder, the initiator's candidates before [`run`](Self::run).
    pub fn negotiation(&mut self) -> &mut Negotiation {
        &mut self.n
    }

    /// Runs the negotiation to its end: executes its actions (dials with the
    /// `xep0065-s5b` dialer, takes our listener's inbound connections), sends and
    /// receives through `sig`, and returns the nominated stream. Every socket but the
    /// winner is closed; dropping the future cancels.
    pub async fn run<S: Signalling>(
        self,
        sig: &mut S,
        config: &xep0065_s5b::Config,
    ) -> Result<Established, DriverError> {
        run(self, sig, config).await
    }
}

/// [`Driver::new`] then [`Driver::run`]: for when our transport went out already with the
/// route registered some other way, or we offer no direct candidate.
pub async fn negotiate<S: Signalling>(
    n: Negotiation,
    listener: Option<&Listener>,
    sig: &mut S,
    config: &xep0065_s5b::Config,
) -> Result<Established, DriverError> {
    Driver::new(n, listener).run(sig, config).await
}

async fn run<S: Signalling>(
    d: Driver<'_>,
    sig: &mut S,
    config: &xep0065_s5b::Config,
) -> Result<Established, DriverError> {
    let Driver {
        mut n,
        listener,
        mut route,
        early,
    } = d;
    let mut early = early.into_iter();
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let mut tasks = JoinSet::new();
    let mut running: HashMap<AttemptId, AbortHandle> = HashMap::new();
    let mut proxy_task: Option<AbortHandle> = None;
    let mut sockets: HashMap<AttemptId, S5bStream> = HashMap::new();
    let (mut inbound, mut proxy): (Option<S5bStream>, Option<S5bStream>) = (None, None);
    let hs = config.handshake_timeout;
    let result = loop {
        while let Some(a) = early.next().or_else(|| n.poll_action()) {
            match a {
                Action::Accept { .. } => {
                    if let Some(l) = listener {
                        route = Some(Route::new(l, &n));
                    }
                }
                Action::StopAccepting { .. } => route = None,
                Action::Resolve {
                    attempt,
                    name,
                    port,
                } => {
                    let tx = ev_tx.clone();
                    let h = tasks.spawn(async move {
                        let r = tokio::time::timeout(hs, resolve(&name, port)).await;
                        let r = r.unwrap_or(Err(io::ErrorKind::TimedOut));
                        let _ = tx.send(SockEvent::Resolved(attempt, r));
                    });
                    running.insert(attempt, h);
                }
                Action::Connect {
                    attempt,
                    addrs,
                    dst_addr,
                } => {
                    let tx = ev_tx.clone();
                    let h = tasks.spawn(async move {
                        let r = dial(&addrs, &dst_addr, hs).await;
                        let _ = tx.send(SockEvent::Dialed(attempt, r));
                    });
                    running.insert(attempt, h);
                }
                Action::Close { attempt } => {
                    if let Some(h) = running.remove(&attempt) {
                        h.abort();
                    }
                    sockets.remove(&attempt);
                }
                Action::ConnectProxy { addr, dst_addr } => {
                    let tx = ev_tx.clone();
                    proxy_task = Some(tasks.spawn(async move {
                        let r = dial(&[addr], &dst_addr, hs).await;
                        let _ = tx.send(SockEvent::Proxy(r));
                    }));
                }
                Action::CloseProxy => {
                    if let Some(h) = proxy_task.take() {
                        h.abort();
                    }
                    proxy = None;
                }
            }
        }
        let mut failed = None;
        while let Some(t) = n.poll_transmit() {
            match t {
                Transmit::TransportInfo(t) => {
                    let sent = tokio::time::timeout(config.iq_timeout, sig.send(t)).await;
                    if let Err(e) =
                        sent.unwrap_or_else(|_| Err("transport-info send timed out".into()))
                    {
                        failed = Some(DriverError::Signalling(e));
                        break;
                    }
                }
                Transmit::Activate(iq) => {
                    let id = iq.id().to_owned();
                    let answer =
                        match tokio::time::timeout(config.iq_timeout, sig.activate(*iq)).await {
                            Ok(Ok(answer)) => answer,
                            _ => Iq::from_error(
                                id,
                                StanzaError::new(
                                    ErrorType::Wait,
                                    DefinedCondition::RemoteServerTimeout,
                                    "en",
                                    "no answer from the proxy",
                                ),
                            ),
                        };
                    n.handle_iq(now(), &answer);
                }
            }
        }
        if let Some(e) = failed {
            break Err(e);
        }
        let mut done = None;
        while let Some(e) = n.poll_event() {
            done = Some(match e {
                Event::Connected {
                    via,
                    candidate,
                    ours,
                    attempts,
                } => {
                    let stream = match via {
                        Via::Attempt(a) => sockets.remove(&a),
                        Via::Inbound => inbound.take(),
                        Via::Proxy => proxy.take(),
                    };
                    match stream {
                        Some(stream) => Ok(Established {
                            stream,
                            candidate,
                            ours,
                            attempts,
                        }),
                        None => Err(DriverError::SessionEnded),
                    }
                }
                Event::Failed(e) => Err(DriverError::Failed(e)),
            });
        }
        if let Some(d) = done {
            break d;
        }
        let deadline = n.poll_timeout().map(tokio::time::Instant::from_std);
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let inbound_next = async {
            match &mut route {
                Some(r) => r.rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            t = sig.recv() => match t {
                Some(t) => {
                    let v = n.handle_transport(now(), t);
                    sig.verdict(v);
                }
                None => break Err(DriverError::SessionEnded),
            },
            Some(ev) = ev_rx.recv() => match ev {
                SockEvent::Resolved(a, r) => n.handle_resolved(now(), a, r),
                SockEvent::Dialed(a, Ok(s)) => {
                    running.remove(&a);
                    sockets.insert(a, s);
                    n.handle_connected(now(), a);
                }
                SockEvent::Dialed(a, Err(f)) => {
                    running.remove(&a);
                    n.handle_connect_failed(now(), a, f);
                }
                SockEvent::Proxy(Ok(s)) => {
                    proxy = Some(s);
                    n.handle_proxy_connected(now());
                }
                SockEvent::Proxy(Err(f)) => n.handle_proxy_failed(now(), f),
            },
            Some((mut framed, dst)) = inbound_next => match n.handle_inbound(now(), &dst) {
                Ok(()) => {
                    if framed.send(Reply::success_s5b(&dst)).await.is_ok() {
                        inbound = Some(S5bStream::from_parts(framed.into_parts()));
                    }
                }
                Err(code) => {
                    let _ = framed.send(Reply::failure(code)).await;
                }
            },
            () = sleep => n.handle_timeout(now()),
        }
    };
    drop(route);
    tasks.abort_all();
    result
}

/// Resolves the proxies named by host name (bounded by `timeout` each), so that they can
/// be offered as candidates; IP-literal ones pass through. At most 8 are kept.
pub async fn resolve_proxies(proxies: &[StreamHost], timeout: Duration) -> Vec<StreamHost> {
    let mut out = Vec::new();
    for sh in proxies.iter().take(8) {
        match &sh.host {
            Host::Ip(_) => out.push(sh.clone()),
            Host::Name(name) => {
                if let Ok(Ok(addrs)) = tokio::time::timeout(timeout, resolve(name, sh.port)).await
                    && let Some(a) = addrs.first()
                {
                    out.push(StreamHost::new(sh.jid.clone(), a.ip(), sh.port));
                }
            }
        }
    }
    out
}
