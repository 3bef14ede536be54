//! The relays' own threads (issue 9, the flood line): activated relays run on
//! [`ProxyConfig::relay_threads`](crate::ProxyConfig::relay_threads) threads of their own,
//! each a current-thread runtime, never on the runtime that accepts and runs the SOCKS5
//! handshakes.
//!
//! Why: under a slowloris flood the accepting runtime runs thousands of handshake tasks
//! (accept, one read, displacement, reset). A relay task on that runtime, woken by its
//! socket's readiness, waited in the same run queue behind them at every pipe's worth of
//! bytes, and a legitimate 256 MiB transfer ran at 0.26–0.49× its unflooded speed on two
//! cores, with CPU to spare. On a thread of its own the relay is woken by the kernel at
//! once, whatever the handshakes do.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{JoinHandle, ThreadId};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// One relay thread: its runtime's handle, the signal that ends it, and the thread.
struct Worker {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// The relay threads of one proxy; relays are handed out round-robin. Dropping it ends the
/// threads (their relays are dropped: both sockets closed) and waits for them, so that a
/// dropped proxy leaves no thread behind.
pub(super) struct RelayThreads {
    workers: Vec<Worker>,
    next: AtomicUsize,
}

impl RelayThreads {
    /// Starts `n` threads (none for 0: relays then run on the caller's runtime).
    pub(super) fn start(n: usize) -> io::Result<Self> {
        let mut workers = Vec::with_capacity(n);
        for i in 0..n {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let handle = rt.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("xep0065-relay-{i}"))
                .spawn(move || {
                    // Runs the relays until the proxy is dropped; dropping the runtime then
                    // drops every relay still running on it.
                    rt.block_on(async {
                        let _ = stopped.await;
                    });
                })?;
            workers.push(Worker {
                handle,
                stop: Some(stop),
                thread: Some(thread),
            });
        }
        Ok(Self {
            workers,
            next: AtomicUsize::new(0),
        })
    }

    /// The runtime the next relay goes to; `None` when there are no relay threads.
    pub(super) fn next(&self) -> Option<&Handle> {
        if self.workers.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len();
        Some(&self.workers[i].handle)
    }

    fn ids(&self) -> Vec<ThreadId> {
        self.workers
            .iter()
            .filter_map(|w| w.thread.as_ref().map(|t| t.thread().id()))
            .collect()
    }
}

impl Drop for RelayThreads {
    fn drop(&mut self) {
        for w in &mut self.workers {
            drop(w.stop.take());
        }
        // Dropped on one of our own threads (its relay held the last reference to the
        // proxy): waiting there would wait for itself. The threads end on their own.
        if self.ids().contains(&std::thread::current().id()) {
            return;
        }
        for w in &mut self.workers {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
    }
}
