//! The proxy's relay: moves bytes both ways between two sockets, half-closing each
//! direction as soon as its sender finishes, so the receiver gets every byte and the
//! end-of-stream at once (unlike Prosody's mod_proxy65, which can hold the last 4 KiB until
//! the other side closes).
//!
//! On Linux the bytes never enter user space: [`splice`](crate::splice) moves them socket →
//! pipe → socket. Elsewhere a user-space buffer per direction is used. Either way a
//! direction's buffer starts small, grows (up to `buffer_size`) only when a read fills it, and is given back after [`RELEASE_AFTER`] without data, so an idle relay holds
//! its two sockets and no buffer, and a busy one still moves large chunks (BAD-INPUT I5).

use std::io;
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

/// A direction that received nothing for this long gives its buffer (pipe) back; the next
/// byte opens a new one at the starting size.
pub(crate) const RELEASE_AFTER: Duration = Duration::from_secs(1);

/// The user-space buffer's starting size (what ejabberd and Prosody use per direction).
pub(crate) const START_BUFFER: usize = 16 * 1024;

/// When a relay last moved a byte, in either direction (for its idle timeout).
#[derive(Debug)]
pub(crate) struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// A per-direction pacing to `bytes_per_sec`, and the relay's activity clock.
#[derive(Debug)]
pub(crate) struct Pacer {
    rate: Option<u64>,
    start: Instant,
    sent: u64,
    activity: Option<Arc<Activity>>,
}

impl Pacer {
    pub(crate) fn new(rate: Option<u64>) -> Self {
        Self {
            rate: rate.filter(|&r| r > 0),
            start: Instant::now(),
            sent: 0,
            activity: None,
        }
    }

    fn with_activity(rate: Option<u64>, activity: Arc<Activity>) -> Self {
        Self {
            activity: Some(activity),
            ..Self::new(rate)
        }
    }

    /// Accounts `n` bytes and sleeps until they are within the rate.
    pub(crate) async fn account(&mut self, n: usize) {
        if let Some(a) = &self.activity {
            a.touch();
        }
        let Some(rate) = self.rate else {
            return;
        };
        self.sent += n as u64;
        let due = self.start + Duration::from_secs_f64(self.sent as f64 / rate as f64);
        tokio::time::sleep_until(due).await;
    }

    /// The largest chunk to move at once: about 1/20 s worth at the rate.
    pub(crate) fn chunk(&self, max: usize) -> usize {
        match self.rate {
            Some(r) => usize::try_from(r / 20).unwrap_or(max).clamp(1, max),
            None => max,
        }
    }
}

/// Relays `a` ⇄ `b` until both directions have ended; returns the bytes moved a→b, b→a.
/// With `idle`, a relay on which no byte moved either way for that long (a peer that
/// vanished without FIN, or one that stopped reading: BAD-INPUT E10, I5) is closed on both
/// sides and ends with `TimedOut`. TCP keepalive is on for both sockets, so a dead peer is
/// noticed by the kernel too.
pub(crate) async fn relay(
    a: TcpStream,
    b: TcpStream,
    buffer_size: usize,
    rate: Option<u64>,
    idle: Option<Duration>,
) -> io::Result<(u64, u64)> {
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(60))
        .with_interval(Duration::from_secs(10));
    for s in [&a, &b] {
        let _ = socket2::SockRef::from(s).set_tcp_keepalive(&keepalive);
    }
    let activity = Arc::new(Activity::new());
    let both = async {
        tokio::join!(
            direction(
                &a,
                &b,
                buffer_size,
                Pacer::with_activity(rate, activity.clone())
            ),
            direction(
                &b,
                &a,
                buffer_size,
                Pacer::with_activity(rate, activity.clone())
            )
        )
    };
    let watchdog = async {
        let Some(idle) = idle else {
            return std::future::pending().await;
        };
        loop {
            let left = idle.saturating_sub(activity.idle());
            if left.is_zero() {
                return;
            }
            tokio::time::sleep(left.max(Duration::from_millis(5))).await;
        }
    };
    tokio::select! {
        (ab, ba) = both => Ok((ab?, ba?)),
        () = watchdog => {
            for s in [&a, &b] {
                let _ = socket2::SockRef::from(s).shutdown(Shutdown::Both);
            }
            Err(io::Error::new(io::ErrorKind::TimedOut, "relay idle"))
        }
    }
}

async fn direction(
    from: &TcpStream,
    to: &TcpStream,
    buffer_size: usize,
    pacer: Pacer,
) -> io::Result<u64> {
    let res = move_bytes(from, to, buffer_size, pacer).await;
    // Pass the end on at once: the receiver reads end-of-stream right after the last byte.
    let _ = socket2::SockRef::from(to).shutdown(Shutdown::Write);
    if res.is_err() {
        // The sender broke: stop it from sending more, the other direction ends too.
        let _ = socket2::SockRef::from(from).shutdown(Shutdown::Both);
    }
    res
}

#[cfg(target_os = "linux")]
async fn move_bytes(
    from: &TcpStream,
    to: &TcpStream,
    buffer_size: usize,
    pacer: Pacer,
) -> io::Result<u64> {
    use crate::splice::{Copied, copy};
    match copy(from, to, buffer_size, pacer).await? {
        Copied::Done { bytes, peak } => {
            tracing::trace!("relay direction: {bytes} bytes, largest pipe {peak}");
            Ok(bytes)
        }
        Copied::NoPipe(done, pacer) => {
            Ok(done + copy_buffered(from, to, buffer_size, pacer).await?)
        }
    }
}

#[cfg(not(target_os = "linux"))]
async fn move_bytes(
    from: &TcpStream,
    to: &TcpStream,
    buffer_size: usize,
    pacer: Pacer,
) -> io::Result<u64> {
    copy_buffered(from, to, buffer_size, pacer).await
}

/// The portable relay: a user-space buffer that starts at [`START_BUFFER`], doubles each
/// time a read fills it (up to `max`), and is freed after [`RELEASE_AFTER`] without data;
/// readiness-driven reads and writes.
pub(crate) async fn copy_buffered(
    from: &TcpStream,
    to: &TcpStream,
    max: usize,
    mut pacer: Pacer,
) -> io::Result<u64> {
    let max = max.max(1);
    let start = START_BUFFER.min(max);
    let mut buf: Vec<u8> = Vec::new();
    let mut total = 0u64;
    loop {
        let n = loop {
            if !buf.is_empty() {
                let want = pacer.chunk(buf.len());
                match from.try_read(&mut buf[..want]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                match tokio::time::timeout(RELEASE_AFTER, from.readable()).await {
                    Ok(ready) => ready?,
                    Err(_) => buf = Vec::new(),
                }
            } else {
                from.readable().await?;
                buf = vec![0u8; start];
            }
        };
        if n == 0 {
            return Ok(total);
        }
        let mut off = 0;
        while off < n {
            to.writable().await?;
            match to.try_write(&buf[off..n]) {
                Ok(w) => off += w,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        if n >= buf.len() && buf.len() < max {
            buf = vec![0u8; (buf.len() * 2).min(max)];
        }
        total += n as u64;
        pacer.account(n).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (b, _) = l.accept().await.unwrap();
        (a, b)
    }

    /// The portable path (and Linux's when no pipe can be opened): a buffer that starts at
    /// 16 KiB and grows moves every byte, through a pause longer than `RELEASE_AFTER` that
    /// frees it and a second burst that opens a new one.
    #[tokio::test]
    async fn the_growing_user_space_buffer_moves_every_byte_across_a_release() {
        let (mut src_peer, src) = pair().await;
        let (dst, mut dst_peer) = pair().await;
        let data: Vec<u8> = (0..6_000_000u32).map(|i| (i * 13 % 253) as u8).collect();
        let d2 = data.clone();
        let writer = tokio::spawn(async move {
            src_peer.write_all(&d2[..3_000_000]).await.unwrap();
            tokio::time::sleep(RELEASE_AFTER + Duration::from_millis(200)).await;
            src_peer.write_all(&d2[3_000_000..]).await.unwrap();
            src_peer.shutdown().await.unwrap();
        });
        let relay = tokio::spawn(async move {
            let n = copy_buffered(&src, &dst, 1 << 20, Pacer::new(None))
                .await
                .unwrap();
            drop(dst);
            n
        });
        let mut got = Vec::new();
        dst_peer.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(relay.await.unwrap(), data.len() as u64);
        assert!(got == data, "identical bytes");
    }
}
