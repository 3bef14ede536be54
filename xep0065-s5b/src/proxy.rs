//! A XEP-0065 proxy (streamhost) service over any [`StanzaTransport`]-style connection.
//!
//! The proxy is a library: bind it, feed it the stanzas addressed to its JID with
//! [`Proxy::handle_stanza`], and send what it wants to send: either pass a transport to
//! [`Proxy::serve`] (a task forwards every outbound stanza to it), or take the outbound
//! queue with [`Proxy::outbound`] and send its stanzas yourself.
//!
//! Pairing and activation follow [XEP-0065 §6](https://xmpp.org/extensions/xep-0065.html#mediated)
//! and what Prosody and ejabberd do:
//!
//! * The first SOCKS5 connection with a DST.ADDR is the target's, the second the
//!   requester's; a third gets SOCKS5 `connection not allowed` and is closed.
//! * `<activate/>` must come from the requester's full JID (the one in the hash): any other
//!   JID computes a hash no connection used → `cancel/item-not-found`; only one side
//!   connected → `cancel/not-allowed`; already active → `cancel/conflict`; the requester
//!   already has `max_relays_per_jid` relays → `wait/resource-constraint`; a JID outside
//!   `allowed_domains` → `auth/forbidden`.
//! * Connections never activated are closed after `activation_timeout`; a client that
//!   stalls in the SOCKS5 handshake after `handshake_timeout`.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use ft_transport::StanzaTransport;
use ft_transport::util::iq_error_reply;
use jid::Jid;
use minidom::Element;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::codec::Encoder;
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoInfoResult, Identity};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use crate::codec::Reply;
use crate::error::stanza_error;
use crate::payload::{self, Activate, Host, ProxyInfo};
use crate::stream::{server_handshake, success_reply};
use crate::wire::ReplyCode;
use crate::{StreamHost, dst_addr};

/// Settings of a [`Proxy`].
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The proxy's JID (a component domain such as `proxy.example.org`).
    pub jid: Jid,
    /// Where to accept SOCKS5 connections. Default `127.0.0.1:7777`: loopback until you
    /// decide what to expose (7777 is the port Openfire and Prosody use).
    pub listen: Vec<SocketAddr>,
    /// The streamhosts announced in the bytestreams answer. Empty (default): one per bound
    /// listener, with its address and port. Set it to announce a public address or a host
    /// name (several are allowed).
    pub announce: Vec<(Host, u16)>,
    /// Domains whose users may use the proxy (a JID's domain must equal one of them).
    /// Default: none, so everyone is refused with `auth/forbidden` until configured.
    pub allowed_domains: Vec<String>,
    /// How long a connection may wait for activation. Default 60 s.
    pub activation_timeout: Duration,
    /// How long the SOCKS5 handshake may take. Default 10 s.
    pub handshake_timeout: Duration,
    /// Active relays one requester (bare JID) may hold at once. Default 16.
    pub max_relays_per_jid: usize,
    /// Connections waiting for activation, over all sessions. Default 1024.
    pub max_pending: usize,
    /// Per-direction rate limit of each relay, bytes per second. Default: none.
    pub bandwidth_limit: Option<u64>,
    /// The pipe (Linux splice) or buffer size per relay direction, so a relay holds at most
    /// twice this. Default 1 MiB, Linux's default `pipe-max-size` (larger requests are
    /// capped by the kernel). On a shared 2-core loopback, 64 KiB, 256 KiB and 1 MiB pipes
    /// measured within noise of each other (1.1–2.0 GB/s); the larger pipe means fewer
    /// system calls per byte on faster links.
    pub buffer_size: usize,
}

impl ProxyConfig {
    /// Defaults (see each field) for a proxy at `jid`.
    pub fn new(jid: Jid) -> Self {
        Self {
            jid,
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 7777))],
            announce: Vec::new(),
            allowed_domains: Vec::new(),
            activation_timeout: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(10),
            max_relays_per_jid: 16,
            max_pending: 1024,
            bandwidth_limit: None,
            buffer_size: 1 << 20,
        }
    }
}

struct Waiting {
    stream: TcpStream,
}

struct Slot {
    generation: u64,
    target: Option<Waiting>,
    requester: Option<Waiting>,
    active: bool,
}

#[derive(Default)]
struct State {
    slots: HashMap<String, Slot>,
    relays_per_jid: HashMap<Jid, usize>,
    pending: usize,
    generation: u64,
}

struct Inner {
    config: ProxyConfig,
    streamhosts: Vec<StreamHost>,
    state: Mutex<State>,
    out_tx: mpsc::UnboundedSender<Stanza>,
    out_rx: Mutex<Option<mpsc::UnboundedReceiver<Stanza>>>,
    tasks: Mutex<JoinSet<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        lock(&self.tasks).abort_all();
    }
}

fn lock<X>(m: &Mutex<X>) -> std::sync::MutexGuard<'_, X> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A XEP-0065 proxy. Cheap to clone; the listeners and relays stop when the last clone is
/// dropped.
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("jid", &self.inner.config.jid)
            .field("streamhosts", &self.inner.streamhosts)
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// Binds the listeners and starts accepting SOCKS5 connections.
    pub async fn bind(config: ProxyConfig) -> io::Result<Self> {
        let mut listeners = Vec::new();
        for a in &config.listen {
            listeners.push(TcpListener::bind(a).await?);
        }
        let streamhosts = if config.announce.is_empty() {
            listeners
                .iter()
                .map(|l| {
                    l.local_addr()
                        .map(|a| StreamHost::new(config.jid.clone(), a.ip(), a.port()))
                })
                .collect::<io::Result<Vec<_>>>()?
        } else {
            config
                .announce
                .iter()
                .map(|(h, p)| StreamHost::new(config.jid.clone(), h.clone(), *p))
                .collect()
        };
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            config,
            streamhosts,
            state: Mutex::new(State::default()),
            out_tx,
            out_rx: Mutex::new(Some(out_rx)),
            tasks: Mutex::new(JoinSet::new()),
        });
        for l in listeners {
            let weak = Arc::downgrade(&inner);
            lock(&inner.tasks).spawn(accept_loop(l, weak));
        }
        Ok(Self { inner })
    }

    /// The streamhosts this proxy announces.
    pub fn streamhosts(&self) -> &[StreamHost] {
        &self.inner.streamhosts
    }

    /// The outbound stanzas (iq answers), once: `None` after the first call or after
    /// [`serve`](Self::serve).
    pub fn outbound(&self) -> Option<mpsc::UnboundedReceiver<Stanza>> {
        lock(&self.inner.out_rx).take()
    }

    /// Sends every outbound stanza through `transport` from a task that lives as long as
    /// the proxy. Does nothing if [`outbound`](Self::outbound) was taken already.
    pub fn serve<T: StanzaTransport>(&self, transport: T) {
        let Some(mut rx) = self.outbound() else {
            return;
        };
        lock(&self.inner.tasks).spawn(async move {
            while let Some(s) = rx.recv().await {
                if let Err(e) = transport.send(s).await {
                    tracing::debug!("proxy: cannot send: {e}");
                }
            }
        });
    }

    /// How many connections wait for activation.
    pub fn pending(&self) -> usize {
        lock(&self.inner.state).pending
    }

    fn send(&self, iq: Iq) {
        let _ = self.inner.out_tx.send(Stanza::Iq(iq));
    }

    fn reply_error(&self, iq: &Iq, e: StanzaError) {
        if let Some(mut r) = iq_error_reply(iq, e) {
            *r.from_mut() = iq.to().cloned();
            self.send(r);
        }
    }

    fn allowed(&self, from: &Jid) -> bool {
        let d = from.domain();
        self.inner
            .config
            .allowed_domains
            .iter()
            .any(|a| a.eq_ignore_ascii_case(d.as_str()))
    }

    /// Takes disco#info and bytestreams iqs; hands back everything else.
    pub fn handle_stanza(&self, stanza: Stanza) -> ControlFlow<(), Stanza> {
        let Stanza::Iq(iq) = stanza else {
            return ControlFlow::Continue(stanza);
        };
        match &iq {
            Iq::Get {
                payload, id, from, ..
            } if payload.is("query", xmpp_parsers::ns::DISCO_INFO) => {
                if DiscoInfoQuery::try_from(payload.clone()).is_err() {
                    return ControlFlow::Continue(Stanza::Iq(iq));
                }
                let result = DiscoInfoResult {
                    node: None,
                    identities: vec![Identity::new(
                        "proxy",
                        "bytestreams",
                        "en",
                        "SOCKS5 Bytestreams Service",
                    )],
                    features: [
                        payload::NS.to_owned(),
                        xmpp_parsers::ns::DISCO_INFO.to_owned(),
                    ]
                    .into_iter()
                    .collect(),
                    extensions: Vec::new(),
                };
                self.send(Iq::Result {
                    from: Some(self.inner.config.jid.clone()),
                    to: from.clone(),
                    id: id.clone(),
                    payload: Some(result.into()),
                });
                ControlFlow::Break(())
            }
            Iq::Get {
                payload, id, from, ..
            } if payload.is("query", payload::NS) => {
                match from {
                    Some(f) if self.allowed(f) => {}
                    _ => {
                        self.reply_error(
                            &iq,
                            stanza_error(ErrorType::Auth, DefinedCondition::Forbidden),
                        );
                        return ControlFlow::Break(());
                    }
                }
                if self.inner.streamhosts.is_empty() {
                    self.reply_error(
                        &iq,
                        stanza_error(ErrorType::Cancel, DefinedCondition::NotAllowed),
                    );
                    return ControlFlow::Break(());
                }
                let info = ProxyInfo {
                    streamhosts: self.inner.streamhosts.clone(),
                };
                self.send(Iq::Result {
                    from: Some(self.inner.config.jid.clone()),
                    to: from.clone(),
                    id: id.clone(),
                    payload: Some(Element::from(&info)),
                });
                ControlFlow::Break(())
            }
            Iq::Set { payload, from, .. } if payload.is("query", payload::NS) => {
                let Some(from) = from.clone().filter(|f| self.allowed(f)) else {
                    self.reply_error(
                        &iq,
                        stanza_error(ErrorType::Auth, DefinedCondition::Forbidden),
                    );
                    return ControlFlow::Break(());
                };
                let activate = match Activate::try_from(payload) {
                    Ok(a) => a,
                    Err(e) => {
                        self.reply_error(&iq, StanzaError::from(&e));
                        return ControlFlow::Break(());
                    }
                };
                match self.activate(&from, &activate) {
                    Ok(()) => {
                        let mut r = Iq::empty_result(from, iq.id().to_owned());
                        *r.from_mut() = Some(self.inner.config.jid.clone());
                        self.send(r);
                    }
                    Err((t, c)) => self.reply_error(&iq, stanza_error(t, c)),
                }
                ControlFlow::Break(())
            }
            _ => ControlFlow::Continue(Stanza::Iq(iq)),
        }
    }

    fn activate(&self, from: &Jid, a: &Activate) -> Result<(), (ErrorType, DefinedCondition)> {
        let hash = dst_addr(&a.sid, from, &a.target);
        let mut st = lock(&self.inner.state);
        let Some(slot) = st.slots.get_mut(&hash) else {
            return Err((ErrorType::Cancel, DefinedCondition::ItemNotFound));
        };
        if slot.active {
            return Err((ErrorType::Cancel, DefinedCondition::Conflict));
        }
        if slot.requester.is_none() || slot.target.is_none() {
            return Err((ErrorType::Cancel, DefinedCondition::NotAllowed));
        }
        let bare = Jid::from(from.to_bare());
        let cap = self.inner.config.max_relays_per_jid;
        if st.relays_per_jid.get(&bare).copied().unwrap_or(0) >= cap {
            return Err((ErrorType::Wait, DefinedCondition::ResourceConstraint));
        }
        let Some(slot) = st.slots.get_mut(&hash) else {
            return Err((ErrorType::Cancel, DefinedCondition::ItemNotFound));
        };
        let (Some(t), Some(r)) = (slot.target.take(), slot.requester.take()) else {
            return Err((ErrorType::Cancel, DefinedCondition::NotAllowed));
        };
        slot.active = true;
        st.pending = st.pending.saturating_sub(2);
        *st.relays_per_jid.entry(bare.clone()).or_default() += 1;
        drop(st);
        let weak = Arc::downgrade(&self.inner);
        let size = self.inner.config.buffer_size;
        let rate = self.inner.config.bandwidth_limit;
        lock(&self.inner.tasks).spawn(async move {
            let res = crate::relay::relay(t.stream, r.stream, size, rate).await;
            tracing::debug!("proxy: relay {hash} ended: {res:?}");
            if let Some(inner) = weak.upgrade() {
                let mut st = lock(&inner.state);
                st.slots.remove(&hash);
                if let Some(n) = st.relays_per_jid.get_mut(&bare) {
                    *n -= 1;
                    if *n == 0 {
                        st.relays_per_jid.remove(&bare);
                    }
                }
            }
        });
        Ok(())
    }
}

async fn accept_loop(listener: TcpListener, inner: Weak<Inner>) {
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!("proxy: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let weak = Arc::downgrade(&strong);
        let timeout = strong.config.handshake_timeout;
        lock(&strong.tasks).spawn(async move {
            let _ = tcp.set_nodelay(true);
            let Ok((framed, dst)) = server_handshake(tcp, 40, timeout).await else {
                return;
            };
            let Some(inner) = weak.upgrade() else {
                return;
            };
            // Decide, answer and register in one critical section: a peer that has read our
            // success reply may activate at once, and its activation must find the
            // connection already in its slot. The reply is one small write on a fresh socket
            // whose send buffer is empty, so a non-blocking write takes it whole; anything
            // else drops the connection.
            let parts = framed.into_parts();
            let mut codec = parts.codec;
            let stream = parts.io;
            // Bytes sent before activation are ignored (XEP-0065 §9.1): the read buffer is dropped.
            let mut st = lock(&inner.state);
            let full = st.pending >= inner.config.max_pending;
            let accept = match st.slots.get(&dst) {
                _ if full => Err(ReplyCode::GeneralFailure),
                None => Ok(()),
                Some(s) if !s.active && s.requester.is_none() && s.target.is_some() => Ok(()),
                Some(_) => Err(ReplyCode::NotAllowed),
            };
            let reply = match accept {
                Ok(()) => success_reply(&dst),
                Err(code) => Reply::failure(code),
            };
            let mut buf = bytes::BytesMut::new();
            if codec.encode(reply, &mut buf).is_err()
                || !matches!(stream.try_write(&buf), Ok(n) if n == buf.len())
                || accept.is_err()
            {
                return;
            }
            let State {
                slots,
                pending,
                generation,
                ..
            } = &mut *st;
            match slots.get_mut(&dst) {
                Some(s) if !s.active && s.requester.is_none() && s.target.is_some() => {
                    s.requester = Some(Waiting { stream });
                    *pending += 1;
                }
                Some(_) => {}
                None => {
                    *generation += 1;
                    let g = *generation;
                    slots.insert(
                        dst.clone(),
                        Slot {
                            generation: g,
                            target: Some(Waiting { stream }),
                            requester: None,
                            active: false,
                        },
                    );
                    *pending += 1;
                    let weak = Arc::downgrade(&inner);
                    let after = inner.config.activation_timeout;
                    drop(st);
                    lock(&inner.tasks).spawn(async move {
                        tokio::time::sleep(after).await;
                        let Some(inner) = weak.upgrade() else { return };
                        let mut st = lock(&inner.state);
                        let expired = st
                            .slots
                            .get(&dst)
                            .is_some_and(|s| s.generation == g && !s.active);
                        if expired && let Some(s) = st.slots.remove(&dst) {
                            let n = usize::from(s.target.is_some())
                                + usize::from(s.requester.is_some());
                            st.pending = st.pending.saturating_sub(n);
                            tracing::debug!("proxy: {dst} never activated, closed");
                        }
                    });
                }
            }
        });
    }
}
