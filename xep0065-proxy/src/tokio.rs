//! The tokio service: [`Proxy`] binds the listeners, runs each SOCKS5 handshake, and
//! drives the [`Broker`] (pairing, activation, timeouts) with its sockets and one timer.
//!
//! Bind it, feed it the stanzas addressed to its JID with [`Proxy::handle_stanza`], and
//! send what it wants to send: either pass a transport to [`Proxy::serve`] (a task forwards
//! every outbound stanza to it), or take the outbound queue with [`Proxy::outbound`] and
//! send its stanzas yourself.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, Weak};

use ft_transport::StanzaTransport;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use xep0065_s5b::StreamHost;
use xmpp_parsers::stanza::Stanza;

use crate::ProxyConfig;
use crate::proto::{Action, Broker, ConnId};

mod accept;
mod relays;
mod slot;

use accept::accept_loop;
use relays::RelayThreads;
use slot::{Counts, Slot};

struct State {
    broker: Broker,
    /// Connections waiting for activation.
    /// Paired or waiting connections, each with the bytes that arrived together with its
    /// SOCKS5 request (bounded by the handshake's read buffer), relayed first.
    conns: HashMap<ConnId, (TcpStream, bytes::Bytes, Slot, Watch)>,
    next_conn: u64,
}

struct Inner {
    config: ProxyConfig,
    streamhosts: Vec<StreamHost>,
    state: Mutex<State>,
    /// Wakes the timer task when the next deadline may have moved (a new slot).
    timer: Arc<Notify>,
    out_tx: mpsc::UnboundedSender<Stanza>,
    out_rx: Mutex<Option<mpsc::UnboundedReceiver<Stanza>>>,
    tasks: Mutex<JoinSet<()>>,
    counts: Arc<Mutex<Counts>>,
    /// Where activated relays run ([`ProxyConfig::relay_threads`]).
    relays: RelayThreads,
}

impl Drop for Inner {
    fn drop(&mut self) {
        lock(&self.tasks).abort_all();
    }
}

fn lock<X>(m: &Mutex<X>) -> std::sync::MutexGuard<'_, X> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Spawns `fut` into `tasks`, first reaping the tasks that have ended: a `JoinSet` keeps
/// every finished task until it is joined, so without this each connection ever accepted
/// would leave its allocation behind (issue 10, finding 5).
fn spawn(
    tasks: &Mutex<JoinSet<()>>,
    fut: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::AbortHandle {
    spawn_on(tasks, None, fut)
}

/// [`spawn`] on the runtime of `on` (the caller's when `None`).
fn spawn_on(
    tasks: &Mutex<JoinSet<()>>,
    on: Option<&tokio::runtime::Handle>,
    fut: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::AbortHandle {
    let mut t = lock(tasks);
    while t.try_join_next().is_some() {}
    match on {
        Some(h) => t.spawn_on(fut, h),
        None => t.spawn(fut),
    }
}

/// Aborts the task watching a waiting connection for its peer's close when the connection
/// stops waiting (activated, timed out, or closed).
struct Watch(tokio::task::AbortHandle);

impl Drop for Watch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
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
            listeners.push(listen(*a)?);
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
        let relays = RelayThreads::start(config.relay_threads)?;
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                broker: Broker::new(&config, streamhosts.clone()),
                conns: HashMap::new(),
                next_conn: 0,
            }),
            config,
            streamhosts,
            timer: Arc::new(Notify::new()),
            out_tx,
            out_rx: Mutex::new(Some(out_rx)),
            tasks: Mutex::new(JoinSet::new()),
            counts: Arc::default(),
            relays,
        });
        for l in listeners {
            let weak = Arc::downgrade(&inner);
            spawn(&inner.tasks, accept_loop(l, weak, accept::Reserve::new()));
        }
        let timer = inner.timer.clone();
        spawn(&inner.tasks, timer_loop(Arc::downgrade(&inner), timer));
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
        spawn(&self.inner.tasks, async move {
            while let Some(s) = rx.recv().await {
                if let Err(e) = transport.send(s).await {
                    tracing::debug!("proxy: cannot send: {e}");
                }
            }
        });
    }

    /// How many tasks the service holds: its accept loops, its timer and outbound tasks,
    /// and one per connection in its handshake or relay. Ended tasks count until the next
    /// one starts, which reaps them: after a burst of short connections this is back near
    /// its baseline, not one task per connection ever made.
    pub fn tasks(&self) -> usize {
        lock(&self.inner.tasks).len()
    }

    /// How many connections are in their SOCKS5 handshake (at most
    /// [`max_handshakes`](ProxyConfig::max_handshakes)).
    pub fn handshakes(&self) -> usize {
        lock(&self.inner.counts).handshakes()
    }

    /// How many connections wait for activation.
    pub fn pending(&self) -> usize {
        lock(&self.inner.state).broker.pending()
    }

    /// Takes disco#info and bytestreams iqs; hands back everything else. Call it inside a
    /// tokio runtime (an activation starts a relay task).
    pub fn handle_stanza(&self, stanza: Stanza) -> ControlFlow<(), Stanza> {
        let mut st = lock(&self.inner.state);
        let flow = st.broker.handle_stanza(now(), stanza);
        drive(&self.inner, &mut st);
        flow
    }
}

/// The listen backlog: connections the kernel completes before we accept them.
/// `TcpListener::bind` gives 128 (measured with `ss`); under a connection flood a full
/// backlog drops new SYNs, and a client then waits for its SYN retransmission (1 s, then
/// 2 s...). The kernel caps it at `net.core.somaxconn` (4096 by default since Linux 5.4).
const BACKLOG: u32 = 4096;

/// A listener on `addr` with [`BACKLOG`] (and `SO_REUSEADDR` on Unix, as tokio's `bind`).
fn listen(addr: std::net::SocketAddr) -> io::Result<TcpListener> {
    let sock = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(BACKLOG)
}

/// Sends the broker's stanzas and performs its actions (under the state lock).
fn drive(inner: &Arc<Inner>, st: &mut State) {
    while let Some(s) = st.broker.poll_transmit() {
        let _ = inner.out_tx.send(s);
    }
    while let Some(a) = st.broker.poll_action() {
        match a {
            Action::Close(c) => {
                if st.conns.remove(&c).is_some() {
                    tracing::debug!("proxy: connection {c:?} never activated, closed");
                }
            }
            Action::Relay {
                dst_addr,
                target,
                requester,
            } => {
                let (Some((t, te, _, _)), Some((r, re, _, _))) =
                    (st.conns.remove(&target), st.conns.remove(&requester))
                else {
                    st.broker.handle_relay_ended(&dst_addr);
                    continue;
                };
                let weak = Arc::downgrade(inner);
                let size = inner.config.buffer_size;
                let rate = inner.config.bandwidth_limit;
                let idle = inner.config.relay_idle_timeout;
                let on = inner.relays.next();
                // Moving to a relay thread: the sockets leave this runtime's reactor here
                // and join that thread's in its task.
                let (t, r) = if on.is_some() {
                    match (t.into_std(), r.into_std()) {
                        (Ok(t), Ok(r)) => (Sock::Std(t), Sock::Std(r)),
                        _ => {
                            st.broker.handle_relay_ended(&dst_addr);
                            continue;
                        }
                    }
                } else {
                    (Sock::Tokio(t), Sock::Tokio(r))
                };
                spawn_on(&inner.tasks, on, async move {
                    let (Ok(t), Ok(r)) = (t.into_tokio(), r.into_tokio()) else {
                        if let Some(inner) = weak.upgrade() {
                            lock(&inner.state).broker.handle_relay_ended(&dst_addr);
                        }
                        return;
                    };
                    let ((mut t, t_early), (mut r, r_early)) = ((t, te), (r, re));
                    // What each side sent with its request goes to the other side first
                    // (then the buffers are freed, not held for the relay's lifetime).
                    let sent =
                        r.write_all(&t_early).await.is_ok() && t.write_all(&r_early).await.is_ok();
                    drop((t_early, r_early));
                    if !sent {
                        if let Some(inner) = weak.upgrade() {
                            lock(&inner.state).broker.handle_relay_ended(&dst_addr);
                        }
                        return;
                    }
                    let res = crate::relay::relay(t, r, size, rate, idle).await;
                    tracing::debug!("proxy: relay {dst_addr} ended: {res:?}");
                    if let Some(inner) = weak.upgrade() {
                        lock(&inner.state).broker.handle_relay_ended(&dst_addr);
                    }
                });
            }
        }
    }
}

/// A relay's socket on its way to the runtime its relay runs on.
enum Sock {
    Tokio(TcpStream),
    Std(std::net::TcpStream),
}

impl Sock {
    /// The socket on the current runtime (called in the relay's task).
    fn into_tokio(self) -> io::Result<TcpStream> {
        match self {
            Self::Tokio(s) => Ok(s),
            Self::Std(s) => TcpStream::from_std(s),
        }
    }
}

/// Calls the broker's `handle_timeout` at each deadline it asks for.
async fn timer_loop(weak: Weak<Inner>, timer: Arc<Notify>) {
    loop {
        let next = {
            let Some(inner) = weak.upgrade() else { return };
            lock(&inner.state).broker.poll_timeout()
        };
        let sleep = async {
            match next {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => {}
            () = timer.notified() => continue,
        }
        let Some(inner) = weak.upgrade() else { return };
        let mut st = lock(&inner.state);
        st.broker.handle_timeout(now());
        drive(&inner, &mut st);
    }
}

/// A second handle on a connection that waits for activation, read by a task of its own
/// with `peek` (nothing is consumed): a peer that closes before activation frees its place
/// at once (BAD-INPUT E6, issue 10 finding 4) instead of at the activation timeout. Bytes
/// the peer sends early only end the watch: they are kept for the relay.
fn watched(stream: TcpStream, conn: ConnId, inner: &Arc<Inner>) -> io::Result<(TcpStream, Watch)> {
    let std = stream.into_std()?;
    let second = std.try_clone()?;
    let stream = TcpStream::from_std(std)?;
    let second = TcpStream::from_std(second)?;
    let weak = Arc::downgrade(inner);
    let handle = spawn(&inner.tasks, async move {
        let mut b = [0u8; 1];
        if matches!(second.peek(&mut b).await, Ok(0) | Err(_))
            && let Some(inner) = weak.upgrade()
        {
            let mut st = lock(&inner.state);
            if st.conns.remove(&conn).is_some() {
                tracing::debug!("proxy: connection {conn:?} closed before activation");
                st.broker.handle_closed(conn);
            }
            drive(&inner, &mut st);
        }
    });
    Ok((stream, Watch(handle)))
}
