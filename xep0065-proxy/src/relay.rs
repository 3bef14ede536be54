//! The proxy's relay: moves bytes both ways between two sockets, half-closing each
//! direction as soon as its sender finishes, so the receiver gets every byte and the
//! end-of-stream at once (unlike Prosody's mod_proxy65, which can hold the last 4 KiB until
//! the other side closes).
//!
//! On Linux the bytes never enter user space: [`splice`](crate::splice) moves them socket →
//! pipe → socket. Elsewhere a bounded buffer per direction is used. Either way the memory
//! per relay is bounded (two pipes, or two buffers of `buffer_size`).

use std::io;
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

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
    match crate::splice::Pipe::new(buffer_size) {
        Ok(pipe) => crate::splice::copy(from, to, &pipe, pacer).await,
        Err(_) => copy_buffered(from, to, buffer_size, pacer).await,
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

/// The portable relay: one bounded buffer, readiness-driven reads and writes.
pub(crate) async fn copy_buffered(
    from: &TcpStream,
    to: &TcpStream,
    buffer_size: usize,
    mut pacer: Pacer,
) -> io::Result<u64> {
    let mut buf = vec![0u8; buffer_size.max(1)];
    let mut total = 0u64;
    loop {
        let want = pacer.chunk(buf.len());
        from.readable().await?;
        let n = match from.try_read(&mut buf[..want]) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        let mut off = 0;
        while off < n {
            to.writable().await?;
            match to.try_write(&buf[off..n]) {
                Ok(w) => off += w,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        total += n as u64;
        pacer.account(n).await;
    }
}
