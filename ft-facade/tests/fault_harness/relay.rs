//! A faulty TCP relay on 127.0.0.1 between a SOCKS5 client and its streamhost (our direct
//! listener or our proxy): the n-th connection it accepts gets the n-th fault of the plan
//! (reset, half-close, stall, slow) after a given number of bytes in a given direction.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// One connection's fault, once `after` bytes have gone in the faulty direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpFault {
    None,
    /// Both sockets closed with RST (SO_LINGER 0).
    Reset {
        after: u64,
        upstream: bool,
    },
    /// The write half towards one side shut down (FIN), the rest keeps flowing.
    HalfClose {
        after: u64,
        upstream: bool,
    },
    /// Nothing forwarded any more in that direction; the sockets stay open.
    Stall {
        after: u64,
        upstream: bool,
    },
    /// At most `chunk` bytes per `nap` in that direction.
    Slow {
        chunk: usize,
        nap: Duration,
        upstream: bool,
    },
}

/// Where the relay forwards to; set once known (the sender's listener port shows in its
/// offer). A connection that comes before is closed.
pub type Target = Arc<std::sync::Mutex<Option<SocketAddr>>>;

/// The relay: accepts on 127.0.0.1, forwards to its target.
pub struct Relay {
    pub addr: SocketAddr,
    pub target: Target,
    tasks: JoinSet<()>,
}

impl Relay {
    pub async fn start(target: Option<SocketAddr>, faults: Vec<TcpFault>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let target: Target = Arc::new(std::sync::Mutex::new(target));
        let to = target.clone();
        let faults = Arc::new(faults);
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            let mut n = 0usize;
            loop {
                let Ok((down, _)) = listener.accept().await else {
                    break;
                };
                let fault = faults.get(n).copied().unwrap_or(TcpFault::None);
                n += 1;
                let Some(target) = *to.lock().unwrap() else {
                    continue; // dropped: closed
                };
                conns.spawn(relay_one(down, target, fault));
                // Reap finished ones so the set stays small.
                while conns.try_join_next().is_some() {}
            }
        });
        Self {
            addr,
            target,
            tasks,
        }
    }

    /// Stops accepting and drops every relayed connection.
    pub fn stop(mut self) {
        self.tasks.abort_all();
    }
}

async fn relay_one(down: TcpStream, target: SocketAddr, fault: TcpFault) {
    let Ok(up) = TcpStream::connect(target).await else {
        return;
    };
    let (dr, dw) = down.into_split();
    let (ur, uw) = up.into_split();
    let upstream_fault = |f: TcpFault| match f {
        TcpFault::Reset { upstream, .. }
        | TcpFault::HalfClose { upstream, .. }
        | TcpFault::Stall { upstream, .. }
        | TcpFault::Slow { upstream, .. } => upstream,
        TcpFault::None => false,
    };
    let (f_up, f_down) = if fault == TcpFault::None {
        (TcpFault::None, TcpFault::None)
    } else if upstream_fault(fault) {
        (fault, TcpFault::None)
    } else {
        (TcpFault::None, fault)
    };
    let (reset_tx, mut reset_rx) = tokio::sync::watch::channel(false);
    let reset_tx = Arc::new(reset_tx);
    let a = pipe(dr, uw, f_up, reset_tx.clone());
    let b = pipe(ur, dw, f_down, reset_tx);
    tokio::select! {
        _ = async { tokio::join!(a, b) } => {}
        _ = reset_rx.wait_for(|r| *r) => {}
    }
}

/// Returns the halves when it ends so that a reset can set SO_LINGER 0 before dropping them.
async fn pipe(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    fault: TcpFault,
    reset: Arc<tokio::sync::watch::Sender<bool>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut moved = 0u64;
    loop {
        let limit = match fault {
            TcpFault::Reset { after, .. }
            | TcpFault::HalfClose { after, .. }
            | TcpFault::Stall { after, .. } => {
                if moved >= after {
                    match fault {
                        TcpFault::Reset { .. } => {
                            let _ = w.as_ref().set_zero_linger();
                            let _ = r.as_ref().set_zero_linger();
                            reset.send_replace(true);
                            return;
                        }
                        TcpFault::HalfClose { .. } => {
                            let _ = w.shutdown().await;
                            // Keep reading (and discarding) so the other side is not stuck.
                            while matches!(r.read(&mut buf).await, Ok(n) if n > 0) {}
                            return;
                        }
                        _ => {
                            // Stall: hold both halves until the relay is stopped.
                            std::future::pending::<()>().await;
                            return;
                        }
                    }
                }
                ((after - moved) as usize).min(buf.len())
            }
            TcpFault::Slow { chunk, nap, .. } => {
                tokio::time::sleep(nap).await;
                chunk.clamp(1, buf.len())
            }
            TcpFault::None => buf.len(),
        };
        match r.read(&mut buf[..limit]).await {
            Ok(0) | Err(_) => {
                let _ = w.shutdown().await;
                return;
            }
            Ok(n) => {
                if w.write_all(&buf[..n]).await.is_err() {
                    return;
                }
                moved += n as u64;
            }
        }
    }
}
