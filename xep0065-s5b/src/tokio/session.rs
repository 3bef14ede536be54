//! One session's run loop: drains its core, performs the actions with sockets, sends the
//! stanzas, and sleeps until a stanza, a socket or the core's timer wakes it.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ft_transport::StanzaTransport;
use tokio::sync::Notify;
use tokio::task::{AbortHandle, JoinSet};
use xmpp_parsers::stanza::Stanza;

use super::dial::{dial, resolve};
use super::{lock, now, send_err};
use crate::proto::{Action, AttemptId, Event, Failure, Requester, Target, Via};
use crate::stream::S5bStream;
use crate::{Attempt, Error, StreamHost};

/// What the loop needs of a core (both [`Requester`] and [`Target`] have it).
pub(super) trait Core: Send + 'static {
    fn poll_transmit(&mut self) -> Option<Stanza>;
    fn poll_action(&mut self) -> Option<Action>;
    fn poll_event(&mut self) -> Option<Event>;
    fn poll_timeout(&self) -> Option<Instant>;
    fn handle_timeout(&mut self, now: Instant);
    fn handle_resolved(
        &mut self,
        now: Instant,
        a: AttemptId,
        r: Result<Vec<SocketAddr>, io::ErrorKind>,
    );
    fn handle_connected(&mut self, now: Instant, a: AttemptId);
    fn handle_connect_failed(&mut self, now: Instant, a: AttemptId, f: Failure);
}

macro_rules! core_impl {
    ($t:ty) => {
        impl Core for $t {
            fn poll_transmit(&mut self) -> Option<Stanza> {
                <$t>::poll_transmit(self)
            }
            fn poll_action(&mut self) -> Option<Action> {
                <$t>::poll_action(self)
            }
            fn poll_event(&mut self) -> Option<Event> {
                <$t>::poll_event(self)
            }
            fn poll_timeout(&self) -> Option<Instant> {
                <$t>::poll_timeout(self)
            }
            fn handle_timeout(&mut self, now: Instant) {
                <$t>::handle_timeout(self, now)
            }
            fn handle_resolved(
                &mut self,
                now: Instant,
                a: AttemptId,
                r: Result<Vec<SocketAddr>, io::ErrorKind>,
            ) {
                <$t>::handle_resolved(self, now, a, r)
            }
            fn handle_connected(&mut self, now: Instant, a: AttemptId) {
                <$t>::handle_connected(self, now, a)
            }
            fn handle_connect_failed(&mut self, now: Instant, a: AttemptId, f: Failure) {
                <$t>::handle_connect_failed(self, now, a, f)
            }
        }
    };
}
core_impl!(Requester);
core_impl!(Target);

/// A core shared between its run loop and the stanza (and listener) paths.
pub(super) struct Session<C> {
    pub(super) core: Mutex<C>,
    /// Set after the core was fed from outside the loop.
    pub(super) wake: Notify,
    /// Requester: the inbound connection our listener accepted for this DST.ADDR.
    pub(super) inbound: Mutex<Option<S5bStream>>,
}

impl<C> Session<C> {
    pub(super) fn new(core: C) -> Arc<Self> {
        Arc::new(Self {
            core: Mutex::new(core),
            wake: Notify::new(),
            inbound: Mutex::new(None),
        })
    }
}

/// The stream a session ended with.
pub(super) struct Done {
    pub(super) stream: S5bStream,
    pub(super) streamhost: StreamHost,
    pub(super) attempts: Vec<Attempt>,
}

enum SocketResult {
    Resolved(Result<Vec<SocketAddr>, io::ErrorKind>),
    Dialed(Result<S5bStream, Failure>),
}

/// Runs `session` to its end. Dropping the future closes every socket it opened (the
/// caller's guard answers the peer if that matters).
pub(super) async fn run<C: Core, T: StanzaTransport>(
    session: &Session<C>,
    transport: &T,
    handshake_timeout: std::time::Duration,
    connects: &Arc<tokio::sync::Semaphore>,
) -> Result<Done, Error> {
    let mut tasks: JoinSet<(AttemptId, SocketResult)> = JoinSet::new();
    let mut running: HashMap<AttemptId, AbortHandle> = HashMap::new();
    let mut streams: HashMap<AttemptId, S5bStream> = HashMap::new();
    loop {
        let (actions, transmits, events, timeout) = {
            let mut core = lock(&session.core);
            let actions: Vec<Action> = std::iter::from_fn(|| core.poll_action()).collect();
            let transmits: Vec<Stanza> = std::iter::from_fn(|| core.poll_transmit()).collect();
            let timeout = core.poll_timeout();
            let events: Vec<Event> = std::iter::from_fn(|| core.poll_event()).collect();
            (actions, transmits, events, timeout)
        };
        for a in actions {
            match a {
                Action::Resolve {
                    attempt,
                    name,
                    port,
                } => {
                    let h = tasks.spawn(async move {
                        (attempt, SocketResult::Resolved(resolve(&name, port).await))
                    });
                    running.insert(attempt, h);
                }
                Action::Connect {
                    attempt,
                    addrs,
                    dst_addr,
                } => {
                    let connects = connects.clone();
                    let h = tasks.spawn(async move {
                        // Waits for a place among all sessions' connections; the core's
                        // deadline for the attempt covers the wait.
                        let Ok(_place) = connects.acquire_owned().await else {
                            let r = Err(Failure::HandshakeTimeout(handshake_timeout));
                            return (attempt, SocketResult::Dialed(r));
                        };
                        let r = dial(&addrs, &dst_addr, handshake_timeout).await;
                        (attempt, SocketResult::Dialed(r))
                    });
                    running.insert(attempt, h);
                }
                Action::Close { attempt } => {
                    if let Some(h) = running.remove(&attempt) {
                        h.abort();
                    }
                    streams.remove(&attempt);
                }
                // The listener routes by the session map, registered before the first
                // offer went out and removed by the caller's guard.
                Action::Accept { .. } | Action::StopAccepting { .. } => {}
            }
        }
        for s in transmits {
            transport.send(s).await.map_err(send_err)?;
        }
        // Only a terminal event (Connected, Failed) comes out of these cores.
        if let Some(e) = events.into_iter().next() {
            return match e {
                Event::Connected {
                    via,
                    streamhost,
                    attempts,
                } => {
                    let stream = match via {
                        Via::Attempt(a) => streams.remove(&a),
                        Via::Inbound => lock(&session.inbound).take(),
                    };
                    let stream = stream.ok_or(Error::Timeout(handshake_timeout))?;
                    Ok(Done {
                        stream,
                        streamhost,
                        attempts,
                    })
                }
                Event::Failed(e) => Err(e),
            };
        }
        let sleep = async {
            match timeout {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = session.wake.notified() => {}
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                let Ok((attempt, result)) = joined else { continue };
                let mut core = lock(&session.core);
                match result {
                    SocketResult::Resolved(r) => {
                        running.remove(&attempt);
                        core.handle_resolved(now(), attempt, r);
                    }
                    SocketResult::Dialed(Ok(stream)) => {
                        running.remove(&attempt);
                        streams.insert(attempt, stream);
                        core.handle_connected(now(), attempt);
                    }
                    SocketResult::Dialed(Err(f)) => {
                        running.remove(&attempt);
                        core.handle_connect_failed(now(), attempt, f);
                    }
                }
            }
            () = sleep => lock(&session.core).handle_timeout(now()),
        }
    }
}
