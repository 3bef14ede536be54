//! The accept loop: caps, one task per connection, and what to do when the process is out
//! of file descriptors (BAD-INPUT E8).

use std::io;
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Encoder;
use xep0065_s5b::codec::Reply;
use xep0065_s5b::stream::server_handshake;

use super::{Inner, Slot, drive, lock, now, spawn, watched};

/// One descriptor held in reserve for the moment the process runs out: `accept` then fails
/// with EMFILE/ENFILE while the connection stays in the listen backlog (Linux even fails
/// before looking at the backlog), so retrying at once would spin and sleeping would stall
/// every client behind it. Instead the reserve is closed, the waiting connection accepted
/// with its descriptor and closed at once (its client sees the close, not a hang), and the
/// reserve taken again.
#[derive(Debug)]
pub(super) struct Reserve(Option<socket2::Socket>);

impl Reserve {
    pub(super) fn new() -> Self {
        Self(Self::open())
    }

    /// An unbound datagram socket: one descriptor, on every platform, bound to nothing.
    fn open() -> Option<socket2::Socket> {
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).ok()
    }

    /// Sheds the connection waiting in `listener`'s backlog, if any, with the reserve's
    /// descriptor. False when there was no descriptor to free (the reserve was lost to
    /// another task, or taken again before the accept): the caller backs off briefly.
    async fn shed(&mut self, listener: &TcpListener) -> bool {
        if self.0.take().is_none() {
            self.0 = Self::open();
            return false;
        }
        // One poll: a waiting connection is taken and closed; none waiting, the listener's
        // readiness is cleared (the accept said "would block") and the loop waits for the
        // next client instead of spinning on a stale EMFILE.
        let once = std::future::poll_fn(|cx| Poll::Ready(listener.poll_accept(cx))).await;
        let shed = match once {
            Poll::Ready(Ok((s, peer))) => {
                tracing::debug!("proxy: out of descriptors, closed {peer} at once");
                drop(s);
                true
            }
            Poll::Ready(Err(_)) => false,
            Poll::Pending => true,
        };
        self.0 = Self::open();
        shed
    }
}

/// Whether `e` says the process or the system is out of descriptors (or of the memory to
/// make one).
fn out_of_descriptors(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(
            e.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
        )
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// Accepts on `listener` until the proxy is dropped. `reserve` is taken when the listener
/// is bound, not when this task first runs, so that it exists before any shortage.
pub(super) async fn accept_loop(listener: TcpListener, inner: Weak<Inner>, mut reserve: Reserve) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(a) => a,
            Err(e) if out_of_descriptors(&e) => {
                tracing::warn!("proxy: accept failed: {e}; closing the waiting connection");
                if !reserve.shed(&listener).await {
                    // Nothing could be freed: a short pause, not a spin.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                continue;
            }
            Err(e) => {
                // A connection reset before we took it, and the like: go on at once.
                tracing::debug!("proxy: accept failed: {e}");
                tokio::task::yield_now().await;
                continue;
            }
        };
        let Some(strong) = inner.upgrade() else {
            return;
        };
        // Over its IP's cap, or too many handshakes at once: closed now, never queued.
        let Some(slot) = Slot::take(&strong.counts, peer.ip(), &strong.config) else {
            tracing::debug!("proxy: refusing a connection from {peer}: pending cap reached");
            drop(tcp);
            continue;
        };
        let weak = Arc::downgrade(&strong);
        spawn(&strong.tasks, handshake(tcp, slot, weak));
    }
}

/// One connection: its SOCKS5 handshake (total deadline), then its place in the broker.
async fn handshake(mut tcp: TcpStream, mut slot: Slot, weak: Weak<Inner>) {
    let Some(timeout) = weak.upgrade().map(|i| i.config.handshake_timeout) else {
        return;
    };
    // No socket option before the handshake is done: a connection that never finishes it
    // (a flood) costs an accept, a read and a close, no more (issue 9).
    let done = {
        let run = async {
            let (framed, dst) = server_handshake(&mut tcp, 40, timeout).await?;
            // Bytes that came with the request are kept and relayed first once activated,
            // never dropped (BAD-INPUT E12: libpurple and others write at once); later ones
            // stay unread in the socket until activation (no buffer of ours grows). Copied
            // out of the handshake's read buffer (8 KiB of capacity), which is freed here:
            // an idle waiting connection holds only what it sent (BAD-INPUT I5).
            let parts = framed.into_parts();
            let early = bytes::Bytes::copy_from_slice(&parts.read_buf);
            Ok::<_, xep0065_s5b::codec::Socks5Error>((parts.codec, early, dst))
        };
        tokio::select! {
            r = run => Some(r),
            // Displaced by a newer connection while the handshake table was full.
            () = slot.evicted() => None,
        }
    };
    let (mut codec, early, dst) = match done {
        Some(Ok(d)) => d,
        // Displaced, or silent for the whole deadline: nothing is owed to it, and it is
        // reset rather than closed (issue 9: under a flood, closing with a FIN made the
        // proxy do the TCP close of both ends on loopback, half its CPU per connection;
        // a reset frees the socket at once).
        None | Some(Err(xep0065_s5b::codec::Socks5Error::Timeout(_))) => {
            let _ = tcp.set_zero_linger();
            return;
        }
        // Anything else may have been answered (`05 FF`): an orderly close.
        Some(Err(_)) => return,
    };
    slot.handshake_done();
    let _ = tcp.set_nodelay(true);
    let stream = tcp;
    let Some(inner) = weak.upgrade() else {
        return;
    };
    // Decide, answer and register in one critical section: a peer that has read our
    // success reply may activate at once, and its activation must find the connection
    // already in its slot. The reply is one small write on a fresh socket whose send buffer
    // is empty, so a non-blocking write takes it whole; anything else drops the connection.
    let mut st = lock(&inner.state);
    let conn = crate::proto::ConnId(st.next_conn);
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
}
