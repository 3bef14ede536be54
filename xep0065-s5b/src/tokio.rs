//! The async driver: [`S5b`], requester and target of XEP-0065 bytestreams over any
//! [`StanzaTransport`].
//!
//! Feed every inbound stanza to [`S5b::handle_stanza`] (it must run inside a tokio runtime:
//! replies it owes are sent from spawned tasks). Requester: [`S5b::connect`]. Target:
//! [`S5b::expect`] once the stream is agreed (for example after SI), then the peer's offer
//! is answered by the returned future.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ft_transport::StanzaTransport;
use ft_transport::iq::{IqError, IqTracker};
use ft_transport::util::iq_error_reply;
use futures_util::SinkExt;
use jid::Jid;
use minidom::Element;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio::time::Instant;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

pub use crate::dial::DialPolicy;
use crate::dial::{dial_addr, is_link_local, race, resolve};
use crate::error::{MisuseError, ProtocolError, stanza_error};
use crate::payload::{self, Activate, Host, Mode, Offer, ProxyInfo, StreamHostUsed};
pub use crate::stream::S5bStream;
use crate::stream::{server_handshake, success_reply};
use crate::wire::ReplyCode;
use crate::{Attempt, Error, Outcome, Sid, StreamHost, dst_addr};

/// Settings of an [`S5b`]. `Default` gives the values documented on each field.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses the requester's listener binds and offers as its own streamhosts.
    /// `None` (default): this host's non-loopback addresses, one IPv4 and one IPv6 (the
    /// ones the system routes from), link-local left out, found when first needed.
    pub listen: Option<Vec<IpAddr>>,
    /// The listener's port; default 0 (any free port, one per address).
    pub listen_port: u16,
    /// Extra addresses offered after the local ones (for example a NAT's external
    /// address forwarded to `listen_port`). Default: none.
    pub external: Vec<(Host, u16)>,
    /// Proxies offered after our own streamhosts, before those passed to
    /// [`S5b::connect`]. Default: none (the facade discovers them).
    pub proxies: Vec<StreamHost>,
    /// How long the requester waits for the target's answer to an offer. Default 60 s:
    /// the target's whole connect budget plus the time its user takes is not in it, but
    /// its racing is.
    pub offer_timeout: Duration,
    /// Iq round trips to a proxy (address query, activation). Default 15 s, the same as
    /// Spark's response timeout.
    pub iq_timeout: Duration,
    /// The target's total budget for connecting to any offered streamhost. Default 10 s.
    pub connect_budget: Duration,
    /// The delay between starting attempts at successive streamhosts (staggered racing,
    /// RFC 8305 style; the next also starts at once when all running ones failed).
    /// Default 250 ms.
    pub stagger: Duration,
    /// The time one SOCKS5 handshake (either side) may take. Default 10 s.
    pub handshake_timeout: Duration,
    /// Which addresses a peer may make us dial. Default: [`DialPolicy::allow_all`], what
    /// deployed clients do and what same-host transfers need; a client exposed to
    /// untrusted peers should use [`DialPolicy::no_loopback`] or its own policy.
    pub dial_policy: DialPolicy,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: None,
            listen_port: 0,
            external: Vec::new(),
            proxies: Vec::new(),
            offer_timeout: Duration::from_secs(60),
            iq_timeout: Duration::from_secs(15),
            connect_budget: Duration::from_secs(10),
            stagger: Duration::from_millis(250),
            handshake_timeout: Duration::from_secs(10),
            dial_policy: DialPolicy::allow_all(),
        }
    }
}

impl Config {
    /// Sets [`listen`](Self::listen).
    pub fn listen(&mut self, addrs: Vec<IpAddr>) -> &mut Self {
        self.listen = Some(addrs);
        self
    }
    /// Sets [`proxies`](Self::proxies).
    pub fn proxies(&mut self, proxies: Vec<StreamHost>) -> &mut Self {
        self.proxies = proxies;
        self
    }
    /// Sets [`connect_budget`](Self::connect_budget).
    pub fn connect_budget(&mut self, d: Duration) -> &mut Self {
        self.connect_budget = d;
        self
    }
    /// Sets [`stagger`](Self::stagger).
    pub fn stagger(&mut self, d: Duration) -> &mut Self {
        self.stagger = d;
        self
    }
    /// Sets [`handshake_timeout`](Self::handshake_timeout).
    pub fn handshake_timeout(&mut self, d: Duration) -> &mut Self {
        self.handshake_timeout = d;
        self
    }
    /// Sets [`dial_policy`](Self::dial_policy).
    pub fn dial_policy(&mut self, p: DialPolicy) -> &mut Self {
        self.dial_policy = p;
        self
    }
}

/// The host's routable addresses without sending anything: a connected UDP socket shows
/// the source address the system would use (documentation prefixes as destinations).
fn default_local_addrs() -> Vec<IpAddr> {
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

struct Incoming {
    id: String,
    from: Jid,
    offer: Offer,
}

#[derive(Default)]
struct State {
    /// Target side: (peer, sid) → the `expect` future waiting for the offer.
    expected: HashMap<(Jid, Sid), oneshot::Sender<Incoming>>,
    /// Requester side: DST.ADDR → the `connect` future waiting for the target's connection.
    pending: HashMap<String, oneshot::Sender<(S5bStream, SocketAddr)>>,
    /// Bound listener addresses.
    listeners: Option<Vec<SocketAddr>>,
}

struct Inner<T> {
    transport: T,
    config: Config,
    iq: IqTracker,
    state: Mutex<State>,
    tasks: Mutex<JoinSet<()>>,
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

fn lock<X>(m: &Mutex<X>) -> std::sync::MutexGuard<'_, X> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn send_err(e: impl std::error::Error + Send + Sync + 'static) -> Error {
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
        let salt = RandomState::new().hash_one(0u8);
        Self {
            inner: Arc::new(Inner {
                transport,
                config,
                iq: IqTracker::new(format!("s5b{:x}-", salt & 0xffff_ffff)),
                state: Mutex::new(State::default()),
                tasks: Mutex::new(JoinSet::new()),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    fn spawn_send(&self, stanza: Stanza) {
        let inner = self.inner.clone();
        lock(&self.inner.tasks).spawn(async move {
            if let Err(e) = inner.transport.send(stanza).await {
                tracing::debug!("s5b: could not send a reply: {e}");
            }
        });
    }

    fn reply_error(&self, iq: &Iq, error: StanzaError) {
        if let Some(r) = iq_error_reply(iq, error) {
            self.spawn_send(Stanza::Iq(r));
        }
    }

    /// Takes what is ours: results of iqs we sent, and bytestreams offers (answered
    /// `modify/bad-request` when malformed, `modify/not-acceptable` when not expected or
    /// UDP). Hands everything else back. Call it inside a tokio runtime.
    pub fn handle_stanza(&self, stanza: Stanza) -> ControlFlow<(), Stanza> {
        let stanza = self.inner.iq.handle_stanza(stanza)?;
        let Stanza::Iq(iq) = stanza else {
            return ControlFlow::Continue(stanza);
        };
        let Iq::Set {
            payload, id, from, ..
        } = &iq
        else {
            return ControlFlow::Continue(Stanza::Iq(iq));
        };
        if !payload.is("query", payload::NS) || payload.get_child("activate", payload::NS).is_some()
        {
            return ControlFlow::Continue(Stanza::Iq(iq));
        }
        let offer = match Offer::try_from(payload) {
            Ok(o) => o,
            Err(e) => {
                self.reply_error(&iq, StanzaError::from(&e));
                return ControlFlow::Break(());
            }
        };
        let Some(from) = from.clone() else {
            self.reply_error(
                &iq,
                stanza_error(ErrorType::Modify, DefinedCondition::BadRequest),
            );
            return ControlFlow::Break(());
        };
        let waiter = lock(&self.inner.state)
            .expected
            .remove(&(from.clone(), offer.sid.clone()));
        let incoming = Incoming {
            id: id.clone(),
            from,
            offer,
        };
        match waiter {
            Some(tx) => {
                if let Err(incoming) = tx.send(incoming) {
                    // The expect future is gone: nobody wants this stream.
                    self.reply_error(&iq_for(&incoming), not_acceptable());
                }
            }
            None => {
                let e = ProtocolError::UnexpectedSid {
                    sid: incoming.offer.sid.to_string(),
                    from: incoming.from.to_string(),
                };
                tracing::debug!("s5b: {e}");
                self.reply_error(&iq, StanzaError::from(&e));
            }
        }
        ControlFlow::Break(())
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
            lock(&self.inner.tasks).spawn(accept_loop(listener, weak));
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
        let hash = dst_addr(&sid, &me, &target);
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
        if streamhosts.is_empty() {
            return Err(MisuseError::NothingToOffer.into());
        }
        let (tx, mut direct) = oneshot::channel();
        {
            let mut st = lock(&self.inner.state);
            if st.pending.contains_key(&hash) {
                return Err(MisuseError::DuplicateSid(sid.to_string()).into());
            }
            st.pending.insert(hash.clone(), tx);
        }
        let _guard = PendingGuard {
            inner: &self.inner,
            hash: hash.clone(),
        };
        let offer = Offer {
            sid: sid.clone(),
            mode: Mode::Tcp,
            dstaddr: None,
            streamhosts: streamhosts.clone(),
        };
        let iq = Iq::Set {
            from: None,
            to: Some(target.clone()),
            id: String::new(),
            payload: Element::from(&offer),
        };
        let t = self.inner.config.offer_timeout;
        let payload = self
            .inner
            .iq
            .request(&self.inner.transport, iq, t)
            .await
            .map_err(|e| iq_err(e, t))?
            .ok_or(ProtocolError::MissingPayload("streamhost-used"))?;
        let used = StreamHostUsed::try_from(&payload)?;
        if used.jid == me {
            // Our own listener: the connection already completed its SOCKS5 handshake.
            let got = match direct.try_recv() {
                Ok(c) => Some(c),
                Err(_) => tokio::time::timeout(self.inner.config.handshake_timeout, direct)
                    .await
                    .ok()
                    .and_then(Result::ok),
            };
            let (stream, local) = got.ok_or(Error::Timeout(self.inner.config.handshake_timeout))?;
            let streamhost = streamhosts
                .iter()
                .find(|s| s.jid == me && s.port == local.port())
                .cloned()
                .unwrap_or_else(|| StreamHost::new(me.clone(), local.ip(), local.port()));
            return Ok(Connected {
                stream,
                streamhost,
                attempts: Vec::new(),
            });
        }
        let Some(proxy) = streamhosts
            .iter()
            .find(|s| s.jid == used.jid && s.jid != me)
            .cloned()
        else {
            return Err(ProtocolError::UnknownStreamHostUsed(used.jid.to_string()).into());
        };
        drop(direct);
        let started = Instant::now();
        let stream = match self.dial(&proxy, &hash).await {
            Ok(s) => s,
            Err(reason) => {
                return Err(Error::NoStreamHost(vec![Attempt {
                    streamhost: proxy,
                    outcome: Outcome::Failed(reason),
                    duration: started.elapsed(),
                }]));
            }
        };
        let activate = Iq::Set {
            from: None,
            to: Some(proxy.jid.clone()),
            id: String::new(),
            payload: Element::from(&Activate { sid, target }),
        };
        let t = self.inner.config.iq_timeout;
        self.inner
            .iq
            .request(&self.inner.transport, activate, t)
            .await
            .map_err(|e| iq_err(e, t))?;
        Ok(Connected {
            stream,
            attempts: vec![Attempt {
                streamhost: proxy.clone(),
                outcome: Outcome::Won,
                duration: started.elapsed(),
            }],
            streamhost: proxy,
        })
    }

    /// Connects to one streamhost (every resolved address in turn) and runs the SOCKS5
    /// client handshake. Used by the requester towards a proxy (no policy: it chose it).
    async fn dial(&self, sh: &StreamHost, hash: &str) -> Result<S5bStream, String> {
        let addrs = resolve(sh).await?;
        let mut last = String::from("no address");
        for a in addrs {
            match dial_addr(a, hash, self.inner.config.handshake_timeout).await {
                Ok(s) => return Ok(s),
                Err(e) => last = format!("{a}: {e}"),
            }
        }
        Err(last)
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
        let (tx, rx) = oneshot::channel();
        let key = (peer, sid);
        let dup = {
            let mut st = lock(&self.inner.state);
            if st.expected.contains_key(&key) {
                true
            } else {
                st.expected.insert(key.clone(), tx);
                false
            }
        };
        let this = self.clone();
        async move {
            if dup {
                return Err(MisuseError::DuplicateSid(key.1.to_string()).into());
            }
            let guard = ExpectGuard {
                inner: &this.inner,
                key,
            };
            let Ok(Ok(incoming)) = tokio::time::timeout(within, rx).await else {
                return Err(Error::Timeout(within));
            };
            drop(guard);
            this.answer(incoming).await
        }
    }

    async fn answer(&self, incoming: Incoming) -> Result<Connected, Error> {
        let iq = iq_for(&incoming);
        if incoming.offer.mode == Mode::Udp {
            let e = ProtocolError::UdpNotSupported;
            self.send_iq(
                Iq::from_error(incoming.id.clone(), StanzaError::from(&e))
                    .with_to(incoming.from.clone()),
            )
            .await?;
            return Err(e.into());
        }
        let me = self.inner.transport.jid().clone();
        let hash = incoming
            .offer
            .dstaddr
            .clone()
            .filter(|d| d.len() == 40 && d.bytes().all(|b| b.is_ascii_hexdigit()))
            .unwrap_or_else(|| dst_addr(&incoming.offer.sid, &incoming.from, &me));
        // Dropped while racing (the application cancelled, or took another method): the
        // requester must not wait out its whole budget, so answer `item-not-found` now.
        let mut unanswered = AnswerOnDrop {
            s5b: Some(self.clone()),
            iq: iq.clone(),
        };
        let raced = race(
            &incoming.from,
            &incoming.offer.streamhosts,
            &hash,
            &self.inner.config,
        )
        .await;
        unanswered.s5b = None;
        match raced {
            Ok((stream, idx, attempts)) => {
                let streamhost = incoming.offer.streamhosts[idx].clone();
                let used = StreamHostUsed {
                    sid: Some(incoming.offer.sid.clone()),
                    jid: streamhost.jid.clone(),
                };
                let reply = Iq::Result {
                    from: None,
                    to: Some(incoming.from.clone()),
                    id: incoming.id.clone(),
                    payload: Some(Element::from(&used)),
                };
                self.send_iq(reply).await?;
                Ok(Connected {
                    stream,
                    streamhost,
                    attempts,
                })
            }
            Err(attempts) => {
                let mut err = stanza_error(ErrorType::Cancel, DefinedCondition::ItemNotFound);
                let reasons = attempts
                    .iter()
                    .map(|a| {
                        format!(
                            "{}:{} ({}): {:?}",
                            a.streamhost.host, a.streamhost.port, a.streamhost.jid, a.outcome
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                err.texts.insert(String::from("en"), reasons);
                if let Some(r) = iq_error_reply(&iq, err) {
                    self.send_iq(r).await?;
                }
                Err(Error::NoStreamHost(attempts))
            }
        }
    }

    async fn send_iq(&self, iq: Iq) -> Result<(), Error> {
        self.inner
            .transport
            .send(Stanza::Iq(iq))
            .await
            .map_err(send_err)
    }
}

fn iq_for(incoming: &Incoming) -> Iq {
    Iq::Set {
        from: Some(incoming.from.clone()),
        to: None,
        id: incoming.id.clone(),
        payload: Element::from(&incoming.offer),
    }
}

fn not_acceptable() -> StanzaError {
    stanza_error(ErrorType::Modify, DefinedCondition::NotAcceptable)
}

/// Answers an offer `cancel/item-not-found` from a task if dropped while still armed.
struct AnswerOnDrop<T: StanzaTransport> {
    s5b: Option<S5b<T>>,
    iq: Iq,
}

impl<T: StanzaTransport> Drop for AnswerOnDrop<T> {
    fn drop(&mut self) {
        let Some(s5b) = self.s5b.take() else {
            return;
        };
        let mut err = stanza_error(ErrorType::Cancel, DefinedCondition::ItemNotFound);
        err.texts
            .insert(String::from("en"), String::from("the target gave up"));
        let Some(reply) = iq_error_reply(&self.iq, err) else {
            return;
        };
        // No runtime (dropped at shutdown): nobody left to send through.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = s5b.send_iq(reply).await {
                    tracing::debug!("s5b: answering an abandoned offer failed: {e}");
                }
            });
        }
    }
}

struct PendingGuard<'a, T> {
    inner: &'a Inner<T>,
    hash: String,
}

impl<T> Drop for PendingGuard<'_, T> {
    fn drop(&mut self) {
        lock(&self.inner.state).pending.remove(&self.hash);
    }
}

struct ExpectGuard<'a, T> {
    inner: &'a Inner<T>,
    key: (Jid, Sid),
}

impl<T> Drop for ExpectGuard<'_, T> {
    fn drop(&mut self) {
        lock(&self.inner.state).expected.remove(&self.key);
    }
}

/// Requester's listener: accepts only connections whose DST.ADDR a pending session waits
/// for (the first one per session); others get `host unreachable` and are closed.
async fn accept_loop<T: StanzaTransport>(listener: TcpListener, inner: std::sync::Weak<Inner<T>>) {
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
        lock(&strong.tasks).spawn(async move {
            let _ = tcp.set_nodelay(true);
            let local = tcp.local_addr();
            let Ok((mut framed, dst)) = server_handshake(tcp, 40, timeout).await else {
                return;
            };
            let waiter = weak
                .upgrade()
                .and_then(|i| lock(&i.state).pending.remove(&dst));
            match (waiter, local) {
                (Some(tx), Ok(local)) => {
                    if framed.send(success_reply(&dst)).await.is_ok() {
                        let _ = tx.send((S5bStream::from_parts(framed.into_parts()), local));
                    }
                }
                _ => {
                    let e = ProtocolError::UnknownDstAddr(dst);
                    tracing::debug!("s5b listener: {e}");
                    let _ = framed
                        .send(crate::codec::Reply::failure(ReplyCode::from(&e)))
                        .await;
                }
            }
        });
    }
}
