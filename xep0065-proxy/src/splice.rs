//! Zero-copy relay with `splice(2)` (Linux): socket → pipe → socket, the bytes never
//! copied to user space. The only unsafe code of the crate: a few system calls on file
//! descriptors this module owns or borrows for the duration of the call.
//!
//! A direction holds no pipe until its first byte arrives; the pipe starts at the system's
//! default size (64 KiB, or less when the user is over `pipe-user-pages-soft`), grows to
//! the configured size as soon as one read fills it (the sender had more queued: the relay
//! is busy), and is closed again once no byte came for [`RELEASE_AFTER`]: an idle
//! relay holds two sockets and no pipe (BAD-INPUT I5).
#![deny(unsafe_op_in_unsafe_fn)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::relay::{Pacer, RELEASE_AFTER};

/// A non-blocking pipe, closed on drop.
#[derive(Debug)]
pub(crate) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    /// A pipe of the system's default size.
    pub(crate) fn new() -> io::Result<Self> {
        let mut fds: [libc::c_int; 2] = [-1, -1];
        // SAFETY: `fds` is a valid, writable array of two c_ints, as pipe2 requires.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else;
        // OwnedFd takes that ownership and closes them on drop.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: F_GETPIPE_SZ takes no argument and only reports the pipe's capacity.
        let got = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ) };
        let capacity = usize::try_from(got).unwrap_or(4096).max(4096);
        Ok(Self {
            read,
            write,
            capacity,
        })
    }

    /// The pipe's capacity in bytes.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Resizes the pipe to `size` bytes (the kernel rounds up to a power-of-two number of
    /// pages). False when the system refuses (above `pipe-max-size`, or the user is over
    /// `pipe-user-pages-soft`/`-hard`): the pipe stays as it was.
    pub(crate) fn resize(&mut self, size: usize) -> bool {
        let want = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
        // SAFETY: F_SETPIPE_SZ takes an int argument and only resizes the pipe; failure
        // leaves the pipe as it was.
        let got = unsafe { libc::fcntl(self.write.as_raw_fd(), libc::F_SETPIPE_SZ, want) };
        match usize::try_from(got) {
            Ok(n) if n > 0 => {
                self.capacity = n;
                true
            }
            _ => false,
        }
    }
}

/// One splice call, non-blocking.
fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: both descriptors are open for the duration of the call (borrowed from a
    // TcpStream or the Pipe held by the caller), the offsets are null as splice requires
    // for sockets and pipes, and no memory is passed.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// How [`copy`] ended.
#[derive(Debug)]
pub(crate) enum Copied {
    /// End of stream after `bytes`; the largest pipe this direction held was `peak` bytes.
    Done { bytes: u64, peak: usize },
    /// No pipe could be opened (out of descriptors, say) after this many bytes: the caller
    /// goes on with a user-space buffer.
    NoPipe(u64, Pacer),
}

/// Moves everything `from` sends to `to` until end-of-stream, through a pipe that starts at
/// the default size and grows to `max` bytes once busy (see the module docs).
pub(crate) async fn copy(
    from: &TcpStream,
    to: &TcpStream,
    max: usize,
    mut pacer: Pacer,
) -> io::Result<Copied> {
    let mut total = 0u64;
    let mut pipe: Option<Pipe> = None;
    // Cleared when the system refuses to grow a pipe: no retry on every read.
    let mut may_grow = true;
    let mut peak = 0usize;
    loop {
        let n = loop {
            if let Some(p) = &pipe {
                let want = pacer.chunk(p.capacity);
                match from.try_io(Interest::READABLE, || {
                    splice(from.as_raw_fd(), p.write.as_raw_fd(), want)
                }) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                // Nothing queued: wait, and give the (empty) pipe back if nothing comes.
                match tokio::time::timeout(RELEASE_AFTER, from.readable()).await {
                    Ok(ready) => ready?,
                    Err(_) => pipe = None,
                }
            } else {
                from.readable().await?;
                match Pipe::new() {
                    Ok(p) => pipe = Some(p),
                    Err(_) => return Ok(Copied::NoPipe(total, pacer)),
                }
            }
        };
        if n == 0 {
            return Ok(Copied::Done { bytes: total, peak });
        }
        let Some(p) = pipe.as_mut() else {
            return Err(io::Error::other("splice: bytes read without a pipe"));
        };
        let mut left = n;
        while left > 0 {
            let w = to
                .async_io(Interest::WRITABLE, || {
                    splice(p.read.as_raw_fd(), to.as_raw_fd(), left)
                })
                .await?;
            if w == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "splice wrote nothing",
                ));
            }
            left -= w;
        }
        // The read filled the pipe: the sender had more queued, the relay is busy. Grow to
        // the full size at once, as the pipe of the old relay always was (the pipe is
        // empty now, so a resize cannot fail for lack of room).
        if n >= p.capacity && p.capacity < max && may_grow {
            may_grow = p.resize(max);
        }
        peak = peak.max(p.capacity);
        total += n as u64;
        pacer.account(n).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (b, _) = l.accept().await.unwrap();
        (a, b)
    }

    /// Relays what `send` writes through [`copy`]; returns the bytes received and the
    /// direction's outcome.
    async fn relay_through<F>(send: F) -> (Vec<u8>, Copied)
    where
        F: FnOnce(TcpStream) -> tokio::task::JoinHandle<()>,
    {
        let (src_peer, src) = pair().await;
        let (dst, mut dst_peer) = pair().await;
        let writer = send(src_peer);
        let relay = tokio::spawn(async move {
            let c = copy(&src, &dst, 1 << 20, Pacer::new(None)).await.unwrap();
            drop(dst);
            c
        });
        let mut got = Vec::new();
        dst_peer.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        (got, relay.await.unwrap())
    }

    #[tokio::test]
    async fn splice_moves_every_byte_and_a_busy_direction_grows_its_pipe() {
        let data: Vec<u8> = (0..16_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let d2 = data.clone();
        let (got, c) = relay_through(|mut s| {
            tokio::spawn(async move {
                s.write_all(&d2).await.unwrap();
                s.shutdown().await.unwrap();
            })
        })
        .await;
        assert!(got == data, "identical bytes");
        let Copied::Done { bytes, peak } = c else {
            panic!("{c:?}")
        };
        assert_eq!(bytes, data.len() as u64);
        assert!(peak > 65536, "the pipe grew while busy: {peak}");
        assert!(peak <= 1 << 20, "never past the configured size: {peak}");
    }

    #[tokio::test]
    async fn a_trickling_direction_keeps_the_default_pipe() {
        let (got, c) = relay_through(|mut s| {
            tokio::spawn(async move {
                for i in 0..40u8 {
                    s.write_all(&[i; 100]).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                s.shutdown().await.unwrap();
            })
        })
        .await;
        assert_eq!(got.len(), 4000);
        let Copied::Done { bytes, peak } = c else {
            panic!("{c:?}")
        };
        assert_eq!(bytes, 4000);
        let default = Pipe::new().unwrap().capacity();
        assert_eq!(peak, default, "never grown past the default");
    }
}
