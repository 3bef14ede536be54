//! The async driver: [`S5b`], requester and target of XEP-0065 bytestreams over any
//! [`StanzaTransport`]. It owns sockets and timers only: every decision is the sans-IO
//! core's ([`Requester`], [`Target`]), which it drives (see `session.rs`).
//!
//! Feed every inbound stanza to [`S5b::handle_stanza`] (it must run inside a tokio runtime:
//! replies it owes are sent from spawned tasks). Requester: [`S5b::connect`]. Target:
//! [`S5b::expect`] once the stream is agreed (for example after SI), then the peer's offer
//! is answered by the returned future.

pub(crate) mod dial;
mod session;

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use ft_transport::StanzaTransport;
use ft_transport::iq::{IqError, IqTracker};
use futures_util::SinkExt;
use jid::Jid;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;

use self::session::{Done, Session, run};
use crate::codec::Reply;
use crate::config::is_link_local;
use crate::error::{MisuseError, ProtocolError};
use crate::payload::ProxyInfo;
use crate::proto::{IncomingOffer, Requester, Target, reply_unexpected_offer};
use crate::stream::{S5bStream, server_handshake};
use crate::wire::ReplyCode;
use crate::{Attempt, Config, Error, Sid, StreamHost};

/// The host's routable addresses without sending anything: a connected UDP socket shows
/// the source address the system would use (documentation prefixes as destinations).
/// What [`Config::listen`](crate::Config::listen) `None` binds (public so that another
/// listener, XEP-0260's, binds the same).
pub fn default_local_addrs() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let probes: [(IpAddr, SocketAddr); 2] = [
        (
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 9),
        ),
        (
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            SocketAddr::new(
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
                9,
            ),
        ),
    ];
    for (bind, probe) in probes {
        let Ok(s) = UdpSocket::bind(SocketAddr::new(bind, 0)) else {
            continue;
        };
        if s.connect(probe).is_err() {
            continue;
        }
        if let Ok(a) = s.local_addr() {
            let ip = a.ip();
            if !(ip.is_loopback() || ip.is_unspecified() || is_link_local(&ip)) {
                out.push(ip);
            }
        }
    }
    out
}

/// A bytestream ready for data.
#[derive(Debug)]
pub struct Connected {
    /// The stream.
    pub stream: S5bStream,
    /// The streamhost that carries it.
    pub streamhost: StreamHost,
    /// Per streamhost tried (target side; on the requester side, the proxy connection if
    /// one was made): what happened and how long it took.
    pub attempts: Vec<Attempt>,
}

impl From<Done> for Connected {
    fn from(d: Done) -> Self {
        Self {
            stream: d.stream,
            streamhost: d.streamhost,
            attempts: d.attempts,
        }
    }
}

#[derive(Default)]
struct State {
    /// Target side: (peer, sid) → its session.
    expected: HashMap<(Jid, Sid), Arc<Session<Target>>>,
    /// Requester side: DST.ADDR → its session.
    pending: HashMap<String, Arc<Session<Requester>>>,
    /// Bound listener addresses.
    listeners: Option<Vec<SocketAddr>>,
}

struct Inner<T> {
    transport: T,
    config: Config,
    iq: IqTracker,
    state: Mutex<State>,
    tasks: Arc<Mutex<JoinSet<()>>>,
    /// Places for outbound connections ([`Config::max_connects`]), over every session.
    connects: Arc<tokio::sync::Semaphore>,
}

/// All S5B sessions on one XMPP connection. Cheap to clone.
///
/// The listener (requester side) is bound on the first [`connect`](Self::connect) and
/// lives until the last clone is dropped.
pub struct S5b<T: StanzaTransport> {
    inner: Arc<Inner<T>>,
}

impl<T: StanzaTransport> Clone for S5b<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T: StanzaTransport> fmt::Debug for S5b<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S5b")
            .field("jid", self.inner.transport.jid())
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl<T> Drop for Inner<T> {
    fn drop(&mut self) {
        if let Ok(mut t) = self.tasks.lock() {
            t.abort_all();
        }
    }
}

pub(crate) fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Spawns `fut` into `tasks`, first reaping the tasks that have ended: a `JoinSet` keeps
/// every finished task until it is joined, so without this each inbound connection and each
/// error reply would leave its allocation behind (issue 10, finding 5). Each task reaps the
/// others as it ends, too: after a burst, the tasks that ended after the last spawn were
/// kept until the next connection (issue 9: 22 to 31 of them, ~1 KiB each, after 200
/// transfers); now at most the last one is.
fn spawn(tasks: &Arc<Mutex<JoinSet<()>>>, fut: impl Future<Output = ()> + Send + 'static) {
    let weak = Arc::downgrade(tasks);
    let mut t = lock(tasks);
    while t.try_join_next().is_some() {}
    t.spawn(async move {
        fut.await;
        if let Some(tasks) = weak.upgrade()
            && let Ok(mut t) = tasks.try_lock()
        {
            while t.try_join_next().is_some() {}
        }
    });
}

/// The driver's clock (tokio's, so paused test time controls the cores too).
pub(crate) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

pub(crate) fn send_err(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Send(Box::new(e))
}

fn iq_err(e: IqError, timeout: Duration) -> Error {
    match e {
        IqError::Rejected(se) => Error::Rejected(se),
        IqError::Timeout(_) => Error::Timeout(timeout),
        other => Error::Send(Box::new(other)),
    }
}

impl<T: StanzaTransport> S5b<T> {
    /// All S5B sessions of `transport`'s connection.
    pub fn new(transport: T, config: Config) -> Self {
        let salt = RandomState::new().hash_one(0u8) & 0xffff_ffff;
        let mut config = config;
        config.id_prefix = format!("{}{salt:x}-", config.id_prefix);
        let connects = Arc::new(tokio::sync::Semaphore::new(config.max_connects.max(1)));
        Self {
            inner: Arc::new(Inner {
                transport,
                iq: IqTracker::new(format!("s5b{salt:x}-q")),
                config,
                state: Mutex::new(State::default()),
                tasks: Arc::new(Mutex::new(JoinSet::new())),
                connects,
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// How many background tasks this holds (listeners, inbound handshakes, replies being
    /// sent). Ended tasks count until the next one starts, which reaps
    /// them: after a burst of short connections this is back near its baseline.
    pub fn tasks(&self) -> usize {
        lock(&self.inner.tasks).len()
    }

    fn spawn_send(&self, stanzas: Vec<Stanza>) {
        if stanzas.is_empty() {
            return;
        }
        let inner = self.inner.clone();
        spawn(&self.inner.tasks, async move {
            for s in stanzas {
                if let Err(e) = inner.transport.send(s).await {
                    tracing::debug!("s5b: could not send a reply: {e}");
                }
            }
        });
    }

    /// Takes what is ours: results of iqs we sent, and bytestreams offers (answered
    /// `modify/bad-request` when malformed, `modify/not-acceptable` when not expected or
    /// UDP). Hands everything else back. Call it inside a tokio runtime.
    pub fn handle_stanza(&self, stanza: Stanza) -> ControlFlow<(), Stanza> {
        let stanza = self.inner.iq.handle_stanza(stanza)?;
        match IncomingOffer::parse(&stanza) {
            Some(Err(reply)) => {
                self.spawn_send(vec![reply]);
                return ControlFlow::Break(());
            }
            Some(Ok(inc)) => {
                let key = (inc.from, inc.offer.sid);
                let session = lock(&self.inner.state).expected.get(&key).cloned();
                let stanza = match session {
                    Some(s) => {
                        let flow = lock(&s.core).handle_stanza(now(), stanza);
                        s.wake.notify_one();
                        match flow {
                            ControlFlow::Break(()) => return ControlFlow::Break(()),
                            ControlFlow::Continue(st) => st,
                        }
                    }
                    None => stanza,
                };
                let e = ProtocolError::UnexpectedSid {
                    sid: key.1.to_string(),
                    from: key.0.to_string(),
                };
                tracing::debug!("s5b: {e}");
                self.spawn_send(reply_unexpected_offer(&stanza).into_iter().collect());
                return ControlFlow::Break(());
            }
            None => {}
        }
        let sessions: Vec<_> = lock(&self.inner.state).pending.values().cloned().collect();
        let mut stanza = stanza;
        for s in sessions {
            match lock(&s.core).handle_stanza(now(), stanza) {
                ControlFlow::Break(()) => {
                    s.wake.notify_one();
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(st) => stanza = st,
            }
        }
        ControlFlow::Continue(stanza)
    }

    /// The bytestreams query to a proxy: every streamhost it returns, hostnames included.
    pub async fn query_proxy(&self, proxy: Jid) -> Result<Vec<StreamHost>, Error> {
        let iq = Iq::Get {
            from: None,
            to: Some(proxy),
            id: String::new(),
            payload: ProxyInfo::request(),
        };
        let t = self.inner.config.iq_timeout;
        let payload = self
            .inner
            .iq
            .request(&self.inner.transport, iq, t)
            .await
            .map_err(|e| iq_err(e, t))?
            .ok_or(ProtocolError::MissingPayload("query"))?;
        Ok(ProxyInfo::try_from(&payload)?.streamhosts)
    }

    async fn ensure_listeners(&self) -> Result<Vec<SocketAddr>, Error> {
        if let Some(l) = &lock(&self.inner.state).listeners {
            return Ok(l.clone());
        }
        let addrs = match &self.inner.config.listen {
            Some(a) => a.clone(),
            None => default_local_addrs(),
        };
        let mut bound = Vec::new();
        for ip in addrs {
            let listener =
                match TcpListener::bind(SocketAddr::new(ip, self.inner.config.listen_port)).await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!("s5b: cannot listen on {ip}: {e}");
                        continue;
                    }
                };
            bound.push(listener.local_addr()?);
            let weak = Arc::downgrade(&self.inner);
            spawn(&self.inner.tasks, accept_loop(listener, weak));
        }
        let mut st = lock(&self.inner.state);
        // Another connect may have raced us; keep the first set (ours serve too).
        let l = st.listeners.get_or_insert(bound);
        Ok(l.clone())
    }

    /// Requester: offers own streamhost(s) first, proxies last (`config.proxies` then
    /// `proxies`); on streamhost-used naming a proxy, connects to it and sends
    /// `<activate/>`, and only returns after its result.
    pub async fn connect(
        &self,
        target: Jid,
        sid: Sid,
        proxies: &[StreamHost],
    ) -> Result<Connected, Error> {
        let me = self.inner.transport.jid().clone();
        let listeners = self.ensure_listeners().await?;
        let mut streamhosts: Vec<StreamHost> = listeners
            .iter()
            .map(|a| StreamHost::new(me.clone(), a.ip(), a.port()))
            .collect();
        for (h, p) in &self.inner.config.external {
            streamhosts.push(StreamHost::new(me.clone(), h.clone(), *p));
        }
        for p in self.inner.config.proxies.iter().chain(proxies) {
            if !streamhosts.contains(p) {
                streamhosts.push(p.clone());
            }
        }
        let core = Requester::new(
            &self.inner.config,
            me,
            target,
            sid.clone(),
            streamhosts,
            now(),
        )?;
        let hash = core.dst_addr().to_owned();
        let session = Session::new(core);
        {
            let mut st = lock(&self.inner.state);
            if st.pending.contains_key(&hash) {
                return Err(MisuseError::DuplicateSid(sid.to_string()).into());
            }
            st.pending.insert(hash.clone(), session.clone());
        }
        let _guard = PendingGuard {
            inner: &self.inner,
            hash,
        };
        let t = &self.inner.transport;
        Ok(run(
            &*session,
            t,
            self.inner.config.handshake_timeout,
            &self.inner.connects,
        )
        .await?
        .into())
    }

    /// Target: pre-authorises `sid` from `peer`. The returned future waits (at most
    /// `within`) for that peer's offer, races its streamhosts in order, answers
    /// `streamhost-used` (or `cancel/item-not-found` with one reason per streamhost) and
    /// resolves to the stream.
    ///
    /// The authorisation is registered when `expect` is called, not when the future is
    /// first polled, so an offer that arrives in between is not lost. Dropping the future
    /// while it races an offer's streamhosts answers that offer `cancel/item-not-found` at
    /// once, so the requester falls back or fails now rather than at the end of its budget.
    pub fn expect(
        &self,
        peer: Jid,
        sid: Sid,
        within: Duration,
    ) -> impl Future<Output = Result<Connected, Error>> + Send + 'static {
        let me = self.inner.transport.jid().clone();
        let key = (peer.clone(), sid.clone());
        let core = Target::new(&self.inner.config, me, peer, sid, now(), within);
        let session = Session::new(core);
        let dup = {
            let mut st = lock(&self.inner.state);
            if st.expected.contains_key(&key) {
                true
            } else {
                st.expected.insert(key.clone(), session.clone());
                false
            }
        };
        let this = self.clone();
        async move {
            if dup {
                return Err(MisuseError::DuplicateSid(key.1.to_string()).into());
            }
            let mut guard = ExpectGuard {
                s5b: &this,
                key,
                session: session.clone(),
                armed: true,
            };
            let t = &this.inner.transport;
            let res = run(
                &*session,
                t,
                this.inner.config.handshake_timeout,
                &this.inner.connects,
            )
            .await;
            guard.armed = false;
            Ok(res?.into())
        }
    }
}

struct PendingGuard<'a, T> {
    inner: &'a Inner<T>,
    hash: String,
}

impl<T> Drop for PendingGuard<'_, T> {
    fn drop(&mut self) {
        let mut st = lock(&self.inner.state);
        st.pending.remove(&self.hash);
        shrink_after_burst(&mut st.pending);
    }
}

/// Forgets the expectation; dropped before the end while racing, lets the core answer
/// the offer `cancel/item-not-found` from a task.
struct ExpectGuard<'a, T: StanzaTransport> {
    s5b: &'a S5b<T>,
    key: (Jid, Sid),
    session: Arc<Session<Target>>,
    armed: bool,
}

impl<T: StanzaTransport> Drop for ExpectGuard<'_, T> {
    fn drop(&mut self) {
        {
            let mut st = lock(&self.s5b.inner.state);
            st.expected.remove(&self.key);
            shrink_after_burst(&mut st.expected);
        }
        if !self.armed {
            return;
        }
        let replies: Vec<Stanza> = {
            let mut core = lock(&self.session.core);
            core.cancel(now());
            std::iter::from_fn(|| core.poll_transmit()).collect()
        };
        // No runtime (dropped at shutdown): nobody left to send through.
        if tokio::runtime::Handle::try_current().is_ok() {
            self.s5b.spawn_send(replies);
        }
    }
}

/// Requester's listener: hands each connection's DST.ADDR to the session that waits for
/// it; the core accepts the first per session, and every other connection gets `host
/// unreachable` and is closed.
async fn accept_loop<T: StanzaTransport>(listener: TcpListener, inner: Weak<Inner<T>>) {
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!("s5b listener: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let timeout = strong.config.handshake_timeout;
        let weak = Arc::downgrade(&strong);
        spawn(&strong.tasks, async move {
            let _ = tcp.set_nodelay(true);
            let port = tcp.local_addr().map(|a| a.port()).unwrap_or(0);
            let Ok((mut framed, dst)) = server_handshake(tcp, 40, timeout).await else {
                return;
            };
            let session = weak
                .upgrade()
                .and_then(|i| lock(&i.state).pending.get(&dst).cloned());
            let decision = match &session {
                Some(s) => lock(&s.core).handle_inbound(now(), port),
                None => {
                    let e = ProtocolError::UnknownDstAddr(dst.clone());
                    tracing::debug!("s5b listener: {e}");
                    Err(ReplyCode::from(&e))
                }
            };
            match (decision, session) {
                (Ok(()), Some(s)) => {
                    if framed.send(Reply::success_s5b(&dst)).await.is_ok() {
                        *lock(&s.inbound) = Some(S5bStream::from_parts(framed.into_parts()));
                        lock(&s.core).handle_inbound_ready(now());
                        s.wake.notify_one();
                    }
                }
                (Ok(()), None) => {}
                (Err(code), _) => {
                    let _ = framed.send(Reply::failure(code)).await;
                }
            }
        });
    }
}

/// Gives back the room of a burst once it is over: a map that held 1,000 entries keeps
/// its capacity after they leave (issue 9: about 700 bytes per transfer of the peak stayed
/// allocated after 1,000 concurrent transfers had ended).
fn shrink_after_burst<K: std::hash::Hash + Eq, V, S: BuildHasher>(m: &mut HashMap<K, V, S>) {
    if m.capacity() > 16 && m.len() * 4 < m.capacity() {
        let keep = m.len() * 2;
        m.shrink_to(keep);
    }
}
