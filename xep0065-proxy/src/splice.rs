//! Zero-copy relay with `splice(2)` (Linux): socket → pipe → socket, the bytes never
//! copied to user space. The only unsafe code of the crate: three system calls on file
//! descriptors this module owns or borrows for the duration of the call.
#![deny(unsafe_op_in_unsafe_fn)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::relay::Pacer;

/// A non-blocking pipe, closed on drop.
#[derive(Debug)]
pub(crate) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    /// A pipe, grown towards `size` bytes where the system allows (the default is 64 KiB).
    pub(crate) fn new(size: usize) -> io::Result<Self> {
        let mut fds: [libc::c_int; 2] = [-1, -1];
        // SAFETY: `fds` is a valid, writable array of two c_ints, as pipe2 requires.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else;
        // OwnedFd takes that ownership and closes them on drop.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let want = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
        // SAFETY: F_SETPIPE_SZ takes an int argument and only resizes the pipe; failure
        // (for example above /proc/sys/fs/pipe-max-size) leaves the pipe as it was.
        let got = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, want) };
        let capacity = usize::try_from(got).unwrap_or(65536).max(4096);
        Ok(Self {
            read,
            write,
            capacity,
        })
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

/// Moves everything `from` sends to `to` until end-of-stream; returns the byte count.
pub(crate) async fn copy(
    from: &TcpStream,
    to: &TcpStream,
    pipe: &Pipe,
    mut pacer: Pacer,
) -> io::Result<u64> {
    let mut total = 0u64;
    loop {
        let want = pacer.chunk(pipe.capacity);
        let n = from
            .async_io(Interest::READABLE, || {
                splice(from.as_raw_fd(), pipe.write.as_raw_fd(), want)
            })
            .await?;
        if n == 0 {
            return Ok(total);
        }
        let mut left = n;
        while left > 0 {
            let w = to
                .async_io(Interest::WRITABLE, || {
                    splice(pipe.read.as_raw_fd(), to.as_raw_fd(), left)
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

    #[tokio::test]
    async fn splice_moves_every_byte_and_stops_at_end_of_stream() {
        let (mut src_peer, src) = pair().await;
        let (dst, mut dst_peer) = pair().await;
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let d2 = data.clone();
        let writer = tokio::spawn(async move {
            src_peer.write_all(&d2).await.unwrap();
            src_peer.shutdown().await.unwrap();
        });
        let pipe = Pipe::new(1 << 20).unwrap();
        let relay = tokio::spawn(async move {
            let n = copy(&src, &dst, &pipe, Pacer::new(None)).await.unwrap();
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
