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
use std::time::Duration;

use ft_transport::StanzaTransport;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio_util::codec::Encoder;
use xep0065_s5b::StreamHost;
use xep0065_s5b::codec::Reply;
use xep0065_s5b::stream::server_handshake;
use xmpp_parsers::stanza::Stanza;

use crate::ProxyConfig;
use crate::proto::{Action, Broker, ConnId};

struct State {
    broker: Broker,
    /// Connections waiting for activation.
    /// Paired or waiting connections, each with the bytes that arrived together with its
    /// SOCKS5 request (bounded by the handshake's read buffer), relayed first.
    conns: HashMap<ConnId, (TcpStream, bytes::Bytes, Slot, Watch)>,
    next_conn: u64,
}

/// Connections counted against the per-IP and handshake caps.
#[derive(Debug, Default)]
struct Counts {
    per_ip: HashMap<std::net::IpAddr, usize>,
    handshakes: usize,
}

/// One connection's place in [`Counts`] (its IP's pending count, and while `handshake`, the
/// handshake count): given back when dropped. `Counts` has a lock of its own, never held
/// with the state's, so a slot may be dropped under either.
struct Slot {
    ip: std::net::IpAddr,
    handshake: bool,
    counts: Arc<Mutex<Counts>>,
}

impl Slot {
    /// Takes a place for a new connection from `ip`, or `None` when a cap is reached.
    fn take(
        counts: &Arc<Mutex<Counts>>,
        ip: std::net::IpAddr,
        config: &ProxyConfig,
    ) -> Option<Self> {
        let mut c = lock(counts);
        let n = c.per_ip.get(&ip).copied().unwrap_or(0);
        if n >= config.max_pending_per_ip || c.handshakes >= config.max_handshakes {
            return None;
        }
        c.per_ip.insert(ip, n + 1);
        c.handshakes += 1;
        Some(Self {
            ip,
            handshake: true,
            counts: counts.clone(),
        })
    }

    /// The handshake is over: the connection now only waits for activation.
    fn handshake_done(&mut self) {
        if std::mem::replace(&mut self.handshake, false) {
            lock(&self.counts).handshakes -= 1;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = lock(&self.counts);
        if self.handshake {
            c.handshakes -= 1;
        }
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
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
    let mut t = lock(tasks);
    while t.try_join_next().is_some() {}
    t.spawn(fut)
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
        });
        for l in listeners {
            let weak = Arc::downgrade(&inner);
            spawn(&inner.tasks, accept_loop(l, weak));
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
                spawn(&inner.tasks, async move {
                    let ((mut t, t_early), (mut r, r_early)) = ((t, te), (r, re));
                    // What each side sent with its request goes to the other side first.
                    if r.write_all(&t_early).await.is_err() || t.write_all(&r_early).await.is_err()
                    {
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

async fn accept_loop(listener: TcpListener, inner: Weak<Inner>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(a) => a,
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
        // Over its IP's cap, or too many handshakes at once: closed now, never queued.
        let Some(mut slot) = Slot::take(&strong.counts, peer.ip(), &strong.config) else {
            tracing::debug!("proxy: refusing a connection from {peer}: pending cap reached");
            drop(tcp);
            continue;
        };
        let weak = Arc::downgrade(&strong);
        let timeout = strong.config.handshake_timeout;
        spawn(&strong.tasks, async move {
            let _ = tcp.set_nodelay(true);
            let Ok((framed, dst)) = server_handshake(tcp, 40, timeout).await else {
                return;
            };
            slot.handshake_done();
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
            // Bytes that came with the request are kept and relayed first once activated,
            // never dropped (BAD-INPUT E12: libpurple and others write at once); later ones
            // stay unread in the socket until activation (no buffer of ours grows).
            let early = parts.read_buf.freeze();
            let mut st = lock(&inner.state);
            let conn = ConnId(st.next_conn);
            st.next_conn += 1;
            let decision = st.broker.handle_request(now(), conn, &dst);
            let reply = match decision {
                Ok(_) => Reply::success_s5b(&dst),
                Err(code) => Reply::failure(code),
            };
            let mut buf = bytes::BytesMut::new();
            let sent = codec.encode(reply, &mut buf).is_ok()
                && matches!(stream.try_write(&buf), Ok(n) if n == buf.len());
            if decision.is_ok() {
                match (sent, watched(stream, conn, &inner)) {
                    (true, Ok((stream, watch))) => {
                        st.conns.insert(conn, (stream, early, slot, watch));
                    }
                    _ => st.broker.handle_closed(conn),
                }
            }
            drive(&inner, &mut st);
            drop(st);
            inner.timer.notify_one();
        });
    }
}
