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
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

/// A per-direction pacing to `bytes_per_sec`.
#[derive(Debug)]
pub(crate) struct Pacer {
    rate: Option<u64>,
    start: Instant,
    sent: u64,
}

impl Pacer {
    pub(crate) fn new(rate: Option<u64>) -> Self {
        Self {
            rate: rate.filter(|&r| r > 0),
            start: Instant::now(),
            sent: 0,
        }
    }

    /// Accounts `n` bytes and sleeps until they are within the rate.
    pub(crate) async fn account(&mut self, n: usize) {
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
pub(crate) async fn relay(
    a: TcpStream,
    b: TcpStream,
    buffer_size: usize,
    rate: Option<u64>,
) -> io::Result<(u64, u64)> {
    let (ab, ba) = tokio::join!(
        direction(&a, &b, buffer_size, rate),
        direction(&b, &a, buffer_size, rate)
    );
    Ok((ab?, ba?))
}

async fn direction(
    from: &TcpStream,
    to: &TcpStream,
    buffer_size: usize,
    rate: Option<u64>,
) -> io::Result<u64> {
    let res = move_bytes(from, to, buffer_size, rate).await;
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
    rate: Option<u64>,
) -> io::Result<u64> {
    match crate::splice::Pipe::new(buffer_size) {
        Ok(pipe) => crate::splice::copy(from, to, &pipe, Pacer::new(rate)).await,
        Err(_) => copy_buffered(from, to, buffer_size, Pacer::new(rate)).await,
    }
}

#[cfg(not(target_os = "linux"))]
async fn move_bytes(
    from: &TcpStream,
    to: &TcpStream,
    buffer_size: usize,
    rate: Option<u64>,
) -> io::Result<u64> {
    copy_buffered(from, to, buffer_size, Pacer::new(rate)).await
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
