//! The tokio driver: every IBB session on one connection, as `AsyncRead + AsyncWrite` streams.
//!
//! [`Ibb`] owns a [`StanzaTransport`]. The application pushes every inbound stanza into
//! [`Ibb::handle_stanza`] (synchronous; it hands back what is not IBB). Each session gets one
//! driver task (`tokio::spawn`) that feeds [`Session::poll_transmit`] to the transport one
//! stanza at a time, awaiting each send, so the transport's own backpressure paces it, and
//! sleeps until [`Session::poll_timeout`] or until a stanza or a user command wakes it.
//! An inbound chunk is decoded before its session's lock is taken ([`proto::decode_ahead`]),
//! so that the reader, writer and driver of that session do not wait on the lock meanwhile.
//!
//! Backpressure: a writer waits while the send buffer is full (it empties as chunks are
//! acknowledged); the reader's buffer is bounded by [`Config::recv_buffer`], past which the
//! session stops acknowledging iq chunks. In message mode see [`crate::proto`]: past
//! [`Config::message_overrun`] the session is closed with an error rather than grow.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ft_transport::StanzaTransport;
use jid::Jid;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, mpsc, oneshot};
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use crate::config::{Config, OpenOptions};
use crate::error::{Error, MisuseError, ProtocolError, TimeoutKind};
use crate::payload::{Sid, StanzaKind};
use crate::proto::{self, Event, Session};

mod incoming;
mod stream;
#[cfg(test)]
mod tests;

use incoming::Decide;
pub use incoming::IncomingOpen;
pub use stream::IbbStream;

type Key = (Jid, Sid);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

struct Cell {
    session: Session,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
    open_tx: Option<oneshot::Sender<Result<(), Error>>>,
    io_error: Option<Error>,
    /// [`Session::is_closed`] as of the last dispatch.
    was_closed: bool,
    /// When the application last took a chunk, or had taken every one when more came (or
    /// the session began): a backlogged session whose reader took nothing for
    /// [`Config::stalled_reader`] since no longer holds [`Ibb::ready`].
    last_read: tokio::time::Instant,
}

impl Cell {
    fn new(session: Session) -> Self {
        Self {
            session,
            read_waker: None,
            write_waker: None,
            open_tx: None,
            io_error: None,
            was_closed: false,
            last_read: tokio::time::Instant::now(),
        }
    }

    /// Drains events and resolves a pending open; hands back the reader's and writer's
    /// wakers if anything they wait on may have changed (an event, or the session becoming
    /// closed). The driver dispatches after every stanza it sends, and most sends change
    /// nothing a reader or writer waits for: waking them anyway costs a task poll each.
    ///
    /// The caller wakes them once it has released the cell's lock: a reader on another
    /// thread woken under the lock runs straight into it, sleeps on the mutex and has to
    /// be woken a second time (two futex wake-ups and context switches per IBB chunk on
    /// the raw-stream benchmark, 82 % of all the wake-ups of that case).
    fn dispatch(&mut self) -> Wakeups {
        let mut changed = false;
        let closed = self.session.is_closed();
        if closed != self.was_closed {
            self.was_closed = closed;
            changed = true;
        }
        while let Some(ev) = self.session.poll_event() {
            changed = true;
            if !matches!(ev, Event::Readable | Event::Writable) {
                tracing::debug!(sid = ?self.session.sid(), peer = %self.session.peer(), event = ?ev, "ibb session");
            }
            match ev {
                Event::Opened { .. } => {
                    if let Some(tx) = self.open_tx.take() {
                        let _ = tx.send(Ok(()));
                    }
                }
                Event::Failed(e) => {
                    if let Some(tx) = self.open_tx.take() {
                        let _ = tx.send(Err(e));
                    }
                }
                Event::Readable
                | Event::Writable
                | Event::PeerClosed
                | Event::CloseUnanswered
                | Event::Closed => {}
            }
        }
        if changed {
            self.wakers()
        } else {
            Wakeups::default()
        }
    }

    /// [`dispatch`](Self::dispatch), handing back the reader's and writer's wakers whatever
    /// happened (after an I/O error or a cancel, which are not session events).
    fn dispatch_all(&mut self) -> Wakeups {
        let _ = self.dispatch();
        self.wakers()
    }

    fn wakers(&mut self) -> Wakeups {
        Wakeups([self.read_waker.take(), self.write_waker.take()])
    }
}

/// Wakers taken under a cell's lock, to be woken after it is released
/// ([`Cell::dispatch`]).
#[must_use = "wake them once the lock is released"]
#[derive(Default)]
struct Wakeups([Option<Waker>; 2]);

impl Wakeups {
    fn wake(self) {
        for w in self.0.into_iter().flatten() {
            w.wake();
        }
    }
}

struct Shared {
    cell: Mutex<Cell>,
    /// The session's block-size as of its driver's last turn, read without the lock to
    /// decode inbound chunks ahead ([`proto::decode_ahead`]). A stale value only costs
    /// speed: the session checks every chunk's size again.
    block_size: AtomicU16,
    /// The session's stanza kind, fixed when it is created: [`Ibb::is_backlogged`] looks
    /// at message-mode sessions only, and need not lock an iq session to know it is one.
    kind: StanzaKind,
    notify: Notify,
    /// The manager's [`Inner::drained`]: told whenever the application reads.
    drained: Arc<Notify>,
}

struct Registry {
    sessions: HashMap<Key, Arc<Shared>>,
    /// Pre-authorised opens, each with the token of the [`Ibb::expect`] that owns it.
    expected: HashMap<Key, (u64, oneshot::Sender<Result<IbbStream, Error>>)>,
    next_token: u64,
}

/// Withdraws an [`Ibb::expect`] pre-authorisation when its future ends or is dropped,
/// unless an open already took it or a later `expect` on the same key replaced it.
struct ExpectGuard<T: StanzaTransport> {
    inner: Arc<Inner<T>>,
    key: Key,
    token: u64,
}

impl<T: StanzaTransport> Drop for ExpectGuard<T> {
    fn drop(&mut self) {
        let mut reg = lock(&self.inner.registry);
        if reg
            .expected
            .get(&self.key)
            .is_some_and(|(t, _)| *t == self.token)
        {
            reg.expected.remove(&self.key);
            shrink_after_burst(&mut reg.expected);
        }
    }
}

struct Inner<T> {
    transport: T,
    config: Config,
    registry: Mutex<Registry>,
    incoming_tx: mpsc::Sender<IncomingOpen>,
    incoming_rx: tokio::sync::Mutex<mpsc::Receiver<IncomingOpen>>,
    /// Woken whenever the application reads from a stream (see [`Ibb::ready`]).
    drained: Arc<Notify>,
}

/// Every IBB session on one connection. Cheap to clone.
///
/// See the [crate docs](crate) for an example.
pub struct Ibb<T: StanzaTransport> {
    inner: Arc<Inner<T>>,
}

impl<T: StanzaTransport> Clone for Ibb<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T: StanzaTransport> fmt::Debug for Ibb<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = lock(&self.inner.registry).sessions.len();
        f.debug_struct("Ibb")
            .field("jid", &self.inner.transport.jid().to_string())
            .field("sessions", &n)
            .finish()
    }
}

impl<T: StanzaTransport> Ibb<T> {
    /// Manages IBB sessions over `transport`.
    pub fn new(transport: T, config: Config) -> Self {
        let (incoming_tx, incoming_rx) = mpsc::channel(config.max_pending_incoming);
        Self {
            inner: Arc::new(Inner {
                transport,
                config,
                registry: Mutex::new(Registry {
                    sessions: HashMap::new(),
                    expected: HashMap::new(),
                    next_token: 0,
                }),
                incoming_tx,
                incoming_rx: tokio::sync::Mutex::new(incoming_rx),
                drained: Arc::new(Notify::new()),
            }),
        }
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.inner.transport
    }

    /// Offers an inbound stanza: IBB stanzas are consumed (and their session's driver
    /// woken), anything else is handed back. Must be called inside a tokio runtime.
    pub fn handle_stanza(&self, stanza: Stanza) -> ControlFlow<(), Stanza> {
        let now = now();
        let key = proto::stanza_sid(&stanza).and_then(|sid| {
            ft_transport::util::stanza_from(&stanza).map(|from| (from.clone(), sid))
        });
        let candidates: Vec<Arc<Shared>> = {
            let reg = lock(&self.inner.registry);
            match key.as_ref().and_then(|k| reg.sessions.get(k)) {
                Some(s) => vec![s.clone()],
                None if key.is_some() => vec![],
                // Results and errors carry no sid: ask each session.
                None => reg.sessions.values().cloned().collect(),
            }
        };
        // A chunk for a known session is decoded before its lock is taken, so that its
        // reader, writer and driver are not held up meanwhile.
        let mut decoded = match (&key, candidates.as_slice()) {
            (Some((_, sid)), [shared]) => proto::decode_ahead(
                &stanza,
                sid,
                shared.block_size.load(Ordering::Relaxed),
                || {
                    shared
                        .cell
                        .try_lock()
                        .map(|mut c| c.session.take_spare())
                        .unwrap_or_default()
                },
            ),
            _ => None,
        };
        let mut stanza = stanza;
        for shared in candidates {
            let mut cell = lock(&shared.cell);
            let caught_up = cell.session.readable() == 0;
            let handled = match decoded.take() {
                Some(d) => cell.session.handle_stanza_decoded(now, stanza, d),
                None => cell.session.handle_stanza(now, stanza),
            };
            match handled {
                ControlFlow::Break(()) => {
                    if caught_up && cell.session.readable() > 0 {
                        // The reader had taken everything: it waits, it is not stalled.
                        cell.last_read = tokio::time::Instant::now();
                    }
                    let wake = cell.dispatch();
                    drop(cell);
                    wake.wake();
                    shared.notify.notify_one();
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(s) => stanza = s,
            }
        }
        match proto::IncomingOpen::parse(&stanza) {
            Some(Ok(incoming)) => {
                self.on_open(incoming);
                return ControlFlow::Break(());
            }
            Some(Err(reply)) => {
                self.spawn_send(reply);
                return ControlFlow::Break(());
            }
            None => {}
        }
        if let Some(reply) = proto::reply_unknown_session(&stanza) {
            self.spawn_send(reply);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(stanza)
    }

    fn spawn_send(&self, stanza: Stanza) {
        let inner = self.inner.clone();
        tokio::spawn(async move {
            if let Err(e) = inner.transport.send(stanza).await {
                tracing::debug!(error = %e, "ibb: sending an error reply failed");
            }
        });
    }

    fn on_open(&self, incoming: proto::IncomingOpen) {
        tracing::debug!(
            peer = %incoming.peer,
            sid = ?incoming.open.sid,
            block_size = incoming.open.block_size,
            stanza = ?incoming.open.stanza,
            "ibb open received"
        );
        let key = (incoming.peer.clone(), incoming.open.sid.clone());
        let mut reg = lock(&self.inner.registry);
        if reg.sessions.contains_key(&key) {
            drop(reg);
            self.spawn_send(incoming.reject((&ProtocolError::DuplicateSid).into()));
            return;
        }
        if let Err(e) = incoming.check(&self.inner.config) {
            drop(reg);
            self.spawn_send(incoming.reject((&e).into()));
            return;
        }
        if let Some((_, tx)) = reg.expected.remove(&key) {
            shrink_after_burst(&mut reg.expected);
            let stream = start_responder(&self.inner, &mut reg, &incoming);
            drop(reg);
            if let Err(Ok(stream)) = tx.send(Ok(stream)) {
                drop(stream);
            }
            return;
        }
        drop(reg);
        let inner = self.inner.clone();
        let decide = {
            let incoming = incoming.clone();
            Box::new(move |accept: bool| -> Result<IbbStream, Error> {
                let mut reg = lock(&inner.registry);
                let key = (incoming.peer.clone(), incoming.open.sid.clone());
                if !accept || reg.sessions.contains_key(&key) {
                    drop(reg);
                    let reply = incoming.reject(StanzaError::new(
                        ErrorType::Cancel,
                        DefinedCondition::NotAcceptable,
                        "en",
                        "",
                    ));
                    let inner = inner.clone();
                    tokio::spawn(async move {
                        let _ = inner.transport.send(reply).await;
                    });
                    return Err(MisuseError::SidInUse.into());
                }
                Ok(start_responder(&inner, &mut reg, &incoming))
            }) as Decide
        };
        let pending = IncomingOpen {
            peer: incoming.peer.clone(),
            sid: incoming.open.sid.clone(),
            block_size: incoming.open.block_size,
            stanza: incoming.open.stanza,
            decide: Some(decide),
        };
        if let Err(mpsc::error::TrySendError::Full(p) | mpsc::error::TrySendError::Closed(p)) =
            self.inner.incoming_tx.try_send(pending)
        {
            p.reject();
        }
    }

    /// Opens a session to `peer` as initiator and waits for it to be accepted (retrying at
    /// half the block-size after `resource-constraint`, bounded by the open timeout).
    pub async fn open(
        &self,
        peer: Jid,
        sid: Sid,
        options: OpenOptions,
    ) -> Result<IbbStream, Error> {
        let key = (peer.clone(), sid.clone());
        let session = Session::new_initiator(&self.inner.config, sid, peer, options, now())?;
        let (tx, rx) = oneshot::channel();
        let mut cell = Cell::new(session);
        cell.open_tx = Some(tx);
        let shared = Arc::new(Shared {
            block_size: AtomicU16::new(cell.session.block_size()),
            kind: cell.session.stanza_kind(),
            cell: Mutex::new(cell),
            notify: Notify::new(),
            drained: self.inner.drained.clone(),
        });
        {
            let mut reg = lock(&self.inner.registry);
            if reg.sessions.contains_key(&key) {
                return Err(MisuseError::SidInUse.into());
            }
            reg.sessions.insert(key.clone(), shared.clone());
        }
        tokio::spawn(drive(self.inner.clone(), key, shared.clone()));
        match rx.await {
            Ok(Ok(())) => Ok(IbbStream::new(shared)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Io(io::Error::other("ibb driver stopped"))),
        }
    }

    /// Pre-authorises an incoming open of `sid` from `peer` for `within`; the open is
    /// accepted without asking and the stream returned. The authorisation is registered
    /// when this is called, before the future is first polled, and withdrawn when the
    /// future completes, times out or is dropped: a later open on that sid is then an
    /// ordinary [`next_incoming`](Self::next_incoming) open, not taken silently. A second
    /// `expect` on the same peer and sid replaces the first (whose future then fails with
    /// [`TimeoutKind::Expect`]).
    pub fn expect(
        &self,
        peer: Jid,
        sid: Sid,
        within: Duration,
    ) -> impl Future<Output = Result<IbbStream, Error>> + Send + 'static {
        let key = (peer, sid);
        let (tx, rx) = oneshot::channel();
        let token = {
            let mut reg = lock(&self.inner.registry);
            reg.next_token = reg.next_token.wrapping_add(1);
            let token = reg.next_token;
            reg.expected.insert(key.clone(), (token, tx));
            token
        };
        let guard = ExpectGuard {
            inner: self.inner.clone(),
            key,
            token,
        };
        async move {
            let r = match tokio::time::timeout(within, rx).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) | Err(_) => Err(Error::Timeout(TimeoutKind::Expect)),
            };
            drop(guard);
            r
        }
    }

    /// How many [`expect`](Self::expect) pre-authorisations are waiting for their open.
    pub fn pending_expectations(&self) -> usize {
        lock(&self.inner.registry).expected.len()
    }

    /// The next incoming open that was not pre-authorised; accept or reject it. Opens that
    /// find the queue full ([`Config::max_pending_incoming`]) are rejected.
    pub async fn next_incoming(&self) -> Option<IncomingOpen> {
        self.inner.incoming_rx.lock().await.recv().await
    }

    /// Waits while an open message-mode session holds more than [`Config::recv_buffer`]
    /// received bytes, or half of [`Config::max_queued_blocks`] chunks, that the
    /// application has not read yet.
    ///
    /// IBB over `<message/>` has no acknowledgements, so nothing in the protocol slows a
    /// sender down. A pump that awaits `ready()` before each [`handle_stanza`](Self::handle_stanza)
    /// gives it end-to-end backpressure instead: while a reader lags, the pump stops taking
    /// stanzas, the connection's bounded inbound queue fills, and the sender's sends wait
    /// (over the in-memory hub directly; through a server, by TCP flow control). Without it,
    /// a lagging reader ends the session at [`Config::max_queued_blocks`] chunks or
    /// [`Config::message_overrun`] bytes with `wait/resource-constraint`.
    ///
    /// Read the streams from other tasks than the pump: a reader that waits for the pump
    /// would wait forever. A session that stays backlogged is checked again every 100 ms,
    /// so one that closes or is dropped never blocks the pump, and one whose reader took
    /// nothing for [`Config::stalled_reader`] no longer does either: a hung reader ends its
    /// own session (`wait/resource-constraint`), not the connection's other traffic.
    pub async fn ready(&self) {
        loop {
            let notified = self.inner.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.is_backlogged() {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
        }
    }

    /// Whether an open message-mode session holds more unread bytes than
    /// [`Config::recv_buffer`], or more unread chunks than half of
    /// [`Config::max_queued_blocks`] (the other half is the margin for stanzas already
    /// taken when the pump stops), and its reader took a chunk within
    /// [`Config::stalled_reader`].
    pub fn is_backlogged(&self) -> bool {
        let limit = self.inner.config.recv_buffer;
        let chunks = self.inner.config.max_queued_blocks / 2;
        let stalled = tokio::time::Instant::now().checked_sub(self.inner.config.stalled_reader);
        // The pump asks before every stanza: with no message-mode session (iq, the
        // default) nothing is locked but the registry and nothing is allocated.
        let sessions: Vec<Arc<Shared>> = lock(&self.inner.registry)
            .sessions
            .values()
            .filter(|s| s.kind == StanzaKind::Message)
            .cloned()
            .collect();
        sessions.iter().any(|s| {
            let c = lock(&s.cell);
            !c.session.is_closed()
                && (c.session.readable() > limit || c.session.queued_chunks() > chunks)
                && stalled.is_none_or(|t| c.last_read > t)
        })
    }
}

/// An [`Ibb`] is a handler for [`ft_transport::pump`]: it takes the IBB stanzas, and the
/// pump waits for [`Ibb::ready`] before each stanza, so a reader that lags behind a
/// message-mode sender slows the socket down instead of overrunning.
impl<T: StanzaTransport> ft_transport::StanzaHandler for Ibb<T> {
    fn handle_stanza(&self, stanza: Stanza) -> ControlFlow<(), Stanza> {
        Self::handle_stanza(self, stanza)
    }

    fn ready(&self) -> impl Future<Output = ()> + Send {
        Self::ready(self)
    }
}

fn start_responder<T: StanzaTransport>(
    inner: &Arc<Inner<T>>,
    reg: &mut Registry,
    incoming: &proto::IncomingOpen,
) -> IbbStream {
    let key = (incoming.peer.clone(), incoming.open.sid.clone());
    let session = Session::accept(&inner.config, incoming, now());
    let shared = Arc::new(Shared {
        block_size: AtomicU16::new(session.block_size()),
        kind: session.stanza_kind(),
        cell: Mutex::new(Cell::new(session)),
        notify: Notify::new(),
        drained: inner.drained.clone(),
    });
    reg.sessions.insert(key.clone(), shared.clone());
    tokio::spawn(drive(inner.clone(), key, shared.clone()));
    IbbStream::new(shared)
}

/// The one driver task of a session.
async fn drive<T: StanzaTransport>(inner: Arc<Inner<T>>, key: Key, shared: Arc<Shared>) {
    loop {
        let (next, deadline, done) = {
            let mut cell = lock(&shared.cell);
            let now = now();
            if cell.session.poll_timeout().is_some_and(|t| t <= now) {
                cell.session.handle_timeout(now);
            }
            let next = cell.session.poll_transmit();
            shared
                .block_size
                .store(cell.session.block_size(), Ordering::Relaxed);
            let wake = cell.dispatch();
            let out = (next, cell.session.poll_timeout(), cell.session.is_closed());
            drop(cell);
            wake.wake();
            out
        };
        if let Some(stanza) = next {
            if let Err(e) = inner.transport.send(stanza).await {
                let mut cell = lock(&shared.cell);
                cell.io_error = Some(Error::Io(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    e.to_string(),
                )));
                if let Some(tx) = cell.open_tx.take() {
                    let _ = tx.send(Err(Error::Io(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        e.to_string(),
                    ))));
                }
                let wake = cell.dispatch_all();
                drop(cell);
                wake.wake();
                break;
            }
            continue;
        }
        if done {
            break;
        }
        let notified = shared.notify.notified();
        match deadline {
            Some(d) => {
                tokio::select! {
                    () = notified => {}
                    () = tokio::time::sleep_until(d.into()) => {}
                }
            }
            None => notified.await,
        }
    }
    {
        let mut reg = lock(&inner.registry);
        if reg
            .sessions
            .get(&key)
            .is_some_and(|s| Arc::ptr_eq(s, &shared))
        {
            reg.sessions.remove(&key);
            shrink_after_burst(&mut reg.sessions);
        }
    }
    let wake = lock(&shared.cell).dispatch_all();
    wake.wake();
}

/// Gives back the room of a burst once it is over: a map that held 1,000 entries keeps
/// its capacity after they leave (issue 9: about 700 bytes per transfer of the peak stayed
/// allocated after 1,000 concurrent transfers had ended).
fn shrink_after_burst<K: std::hash::Hash + Eq, V, S: std::hash::BuildHasher>(
    m: &mut HashMap<K, V, S>,
) {
    if m.capacity() > 16 && m.len() * 4 < m.capacity() {
        let keep = m.len() * 2;
        m.shrink_to(keep);
    }
}
