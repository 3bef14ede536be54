//! The one `xep0166_jingle::Endpoint` of a [`FileTransfer`](crate::FileTransfer): fed the
//! jingle iqs (and the answers to its own) by `handle_stanza`, its clock driven by a task,
//! its iqs sent in order by another, its events routed to the transfer task of each
//! session (a bounded queue per session) and session-initiates handed to the manager.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use ft_transport::{Stanza, StanzaTransport};
use jid::FullJid;
use tokio::sync::{Notify, OnceCell, mpsc};
use xep0166_jingle::{Content, Endpoint, Event, SessionKey};
use xep0260_jingle_s5b::Listener;

use crate::config::Config;
use crate::shared::lock;

/// Events one session's task has not taken yet; more are dropped (a peer flooding
/// transport-info gets nothing for it). The end of a session always fits: it is sent
/// before anything the peer can send after it.
const SESSION_QUEUE: usize = 64;

/// A session-initiate the manager turns into an offer.
pub(crate) struct Initiated {
    pub(crate) key: SessionKey,
    pub(crate) contents: Vec<Content>,
}

struct Inner {
    ep: Endpoint,
    routes: HashMap<SessionKey, mpsc::Sender<Event>>,
    initiated: Vec<Initiated>,
}

/// See the module docs.
pub(crate) struct JingleCore<T: StanzaTransport + Clone> {
    inner: Mutex<Inner>,
    transport: T,
    out: mpsc::UnboundedSender<Stanza>,
    out_rx: Mutex<Option<mpsc::UnboundedReceiver<Stanza>>>,
    wake: Arc<Notify>,
    started: AtomicBool,
    /// The XEP-0260 listener (our direct candidates), bound when first needed.
    listener: OnceCell<Option<Listener>>,
}

/// The clock the endpoint reads (tokio's, so that paused test time drives it too).
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl<T: StanzaTransport + Clone> JingleCore<T> {
    /// `None` when our JID is not a full JID (Jingle routes by full JIDs).
    pub(crate) fn new(transport: T, config: &Config, id_prefix: String) -> Option<Arc<Self>> {
        let me: FullJid = transport.jid().clone().try_into_full().ok()?;
        let mut jc = xep0166_jingle::Config::default();
        jc.id_prefix = id_prefix;
        jc.request_timeout = config.s5b.iq_timeout;
        jc.pending_timeout = config.offer_timeout;
        jc.replace_timeout = config.fallback_window;
        jc.max_sessions = config.policy.pending_capacity().saturating_mul(2).max(2);
        jc.max_sessions_per_peer = config.policy.per_peer_capacity().saturating_mul(2).max(2);
        xep0234_jingle_ft::configure(&mut jc);
        // A transport-info is answered once the S5B negotiation judged it (the link's
        // `Signalling::verdict`): a candidate-used for a cid never offered gets the
        // negotiation's stanza error, not an ack.
        jc.defer_transport_info = true;
        jc.answer_timeout = config.s5b.iq_timeout.min(Duration::from_secs(10));
        let (out, out_rx) = mpsc::unbounded_channel();
        Some(Arc::new(Self {
            inner: Mutex::new(Inner {
                ep: Endpoint::new(me, jc),
                routes: HashMap::new(),
                initiated: Vec::new(),
            }),
            transport,
            out,
            out_rx: Mutex::new(Some(out_rx)),
            wake: Arc::new(Notify::new()),
            started: AtomicBool::new(false),
            listener: OnceCell::new(),
        }))
    }

    /// Runs `f` on the endpoint, then sends what it queued and routes its events.
    pub(crate) fn with<R>(self: &Arc<Self>, f: impl FnOnce(&mut Endpoint, Instant) -> R) -> R {
        self.start();
        let mut inner = lock(&self.inner);
        let r = f(&mut inner.ep, now());
        self.drain(&mut inner);
        drop(inner);
        self.wake.notify_one();
        r
    }

    /// A jingle iq set, or the answer to one of ours: taken (with the session-initiates it
    /// produced); anything else comes back.
    pub(crate) fn handle_stanza(
        self: &Arc<Self>,
        stanza: Stanza,
    ) -> ControlFlow<Vec<Initiated>, Stanza> {
        let Stanza::Iq(iq) = stanza else {
            return ControlFlow::Continue(stanza);
        };
        self.start();
        let mut inner = lock(&self.inner);
        match inner.ep.handle_iq(now(), iq) {
            ControlFlow::Continue(iq) => ControlFlow::Continue(Stanza::Iq(iq)),
            ControlFlow::Break(()) => {
                self.drain(&mut inner);
                let initiated = std::mem::take(&mut inner.initiated);
                drop(inner);
                self.wake.notify_one();
                ControlFlow::Break(initiated)
            }
        }
    }

    /// The events of `key` from now on (replacing any earlier route).
    pub(crate) fn route(&self, key: &SessionKey) -> mpsc::Receiver<Event> {
        let (tx, rx) = mpsc::channel(SESSION_QUEUE);
        lock(&self.inner).routes.insert(key.clone(), tx);
        rx
    }

    /// [`with`](Self::with) for a command that starts session `key`: when it succeeds, the
    /// session's events are routed to the returned receiver from that very moment (an
    /// earlier route of the same key, another transfer's, is left alone when it fails).
    pub(crate) fn start_session<R, E>(
        self: &Arc<Self>,
        key: &SessionKey,
        f: impl FnOnce(&mut Endpoint, Instant) -> Result<R, E>,
    ) -> Result<(R, mpsc::Receiver<Event>), E> {
        self.start();
        let mut inner = lock(&self.inner);
        let r = f(&mut inner.ep, now());
        let r = r.map(|r| {
            let (tx, rx) = mpsc::channel(SESSION_QUEUE);
            inner.routes.insert(key.clone(), tx);
            (r, rx)
        });
        self.drain(&mut inner);
        drop(inner);
        self.wake.notify_one();
        r
    }

    /// The transport the iqs go out on.
    pub(crate) fn transport(&self) -> &T {
        &self.transport
    }

    /// Our full JID.
    pub(crate) fn me(&self) -> FullJid {
        lock(&self.inner).ep.me().clone()
    }

    /// The XEP-0260 listener, bound on the addresses of our SI listener (any free port)
    /// when first asked for; `None` if it cannot be bound.
    pub(crate) async fn listener(&self, s5b: &xep0065_s5b::Config) -> Option<&Listener> {
        self.listener
            .get_or_init(|| async {
                let ips = s5b
                    .listen
                    .clone()
                    .unwrap_or_else(xep0065_s5b::default_local_addrs);
                match Listener::bind(&ips, 0, s5b.handshake_timeout).await {
                    Ok(l) => Some(l),
                    Err(e) => {
                        tracing::warn!("ft-facade: cannot bind the jingle s5b listener: {e}");
                        None
                    }
                }
            })
            .await
            .as_ref()
    }

    /// Our listener's addresses, if it is bound.
    pub(crate) async fn direct_candidates(&self, s5b: &xep0065_s5b::Config) -> Vec<SocketAddr> {
        self.listener(s5b)
            .await
            .map(|l| l.local_addrs().to_vec())
            .unwrap_or_default()
    }

    fn drain(&self, inner: &mut Inner) {
        while let Some(iq) = inner.ep.poll_transmit() {
            let _ = self.out.send(Stanza::Iq(iq));
        }
        while let Some(ev) = inner.ep.poll_event() {
            let key = match &ev {
                Event::Initiated { key, contents } => {
                    inner.initiated.push(Initiated {
                        key: key.clone(),
                        contents: contents.clone(),
                    });
                    continue;
                }
                Event::Accepted { key, .. }
                | Event::TransportInfo { key, .. }
                | Event::TransportReplace { key, .. }
                | Event::TransportAccepted { key, .. }
                | Event::TransportRejected { key, .. }
                | Event::SessionInfo { key, .. }
                | Event::Ended { key, .. }
                | Event::RequestDone { key, .. }
                | Event::RequestFailed { key, .. } => key.clone(),
                _ => continue,
            };
            let ended = matches!(ev, Event::Ended { .. });
            if let Some(tx) = inner.routes.get(&key)
                && tx.try_send(ev).is_err()
            {
                tracing::debug!("ft-facade: jingle session {} lags; event dropped", key.sid);
            }
            if ended {
                inner.routes.remove(&key);
            }
        }
    }

    /// Starts the sender and the clock tasks once, on the runtime of the first caller.
    fn start(self: &Arc<Self>) {
        if self.started.load(Ordering::Acquire) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(mut rx) = lock(&self.out_rx).take() {
            let transport = self.transport.clone();
            // In order: a checksum before the terminate, candidates in the order produced.
            rt.spawn(async move {
                while let Some(s) = rx.recv().await {
                    if let Err(e) = transport.send(s).await {
                        tracing::debug!("ft-facade: could not send a jingle iq: {e}");
                    }
                }
            });
        }
        let weak: Weak<Self> = Arc::downgrade(self);
        let wake = self.wake.clone();
        rt.spawn(async move {
            loop {
                let deadline = {
                    let Some(core) = weak.upgrade() else { break };
                    lock(&core.inner).ep.poll_timeout()
                };
                // Wakes at least once a second to notice that the manager is gone.
                let cap = tokio::time::Instant::now() + Duration::from_secs(1);
                let at = deadline
                    .map(tokio::time::Instant::from_std)
                    .map_or(cap, |d| d.min(cap));
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {
                        let Some(core) = weak.upgrade() else { break };
                        let due = lock(&core.inner).ep.poll_timeout().is_some_and(|d| d <= now());
                        if due {
                            core.with(|ep, now| ep.handle_timeout(now));
                        }
                    }
                    () = wake.notified() => {}
                }
            }
        });
    }
}
