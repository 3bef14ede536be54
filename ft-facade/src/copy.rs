//! Moving the bytes: bounded buffers, hashing on the way, progress, cancel, inactivity.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use xep0096_file::HashLanes;

use crate::error::{ErrorKind, Side, Stage, TransferError};
use crate::handle::{CancelToken, Reporter};

/// The copy buffer. 256 KiB: fewer system calls per byte on a fast socket (loopback S5B),
/// still a small bounded amount of memory per transfer.
pub(crate) const BUF_SIZE: usize = 256 * 1024;

/// Reads the next at most `max` bytes of `reader` into a fresh chunk of `buf` (reusing its
/// allocation once every earlier chunk is dropped); `Ok(None)` at EOF.
pub(crate) async fn read_chunk<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> std::io::Result<Option<bytes::Bytes>> {
    // Sized to what is left (a 4 KiB file gets 4 KiB, not 256 KiB: 1,000 small transfers at
    // once held 1 GB of buffers, all of it kept by the allocator afterwards; issue 9).
    let want = max.min(BUF_SIZE);
    if buf.capacity() < want.min(BUF_SIZE / 4) {
        buf.reserve(want);
    }
    let n = {
        let mut limited = (&mut *reader).take(max as u64);
        limited.read_buf(buf).await?
    };
    Ok((n > 0).then(|| buf.split().freeze()))
}

/// Hashes `len` bytes of `reader` (or all of it when `len` is `None`) on the digest threads
/// of `hashes`, while the next chunk is read.
pub(crate) async fn hash_reader<R: AsyncRead + Unpin>(
    reader: &mut R,
    len: Option<u64>,
    hashes: &mut HashLanes,
) -> std::io::Result<u64> {
    let mut buf = BytesMut::new();
    let mut done = 0u64;
    loop {
        let want = match len {
            Some(l) if done >= l => break,
            Some(l) => ((l - done) as usize).min(BUF_SIZE),
            None => BUF_SIZE,
        };
        let Some(chunk) = read_chunk(reader, &mut buf, want).await? else {
            break;
        };
        done += chunk.len() as u64;
        hashes.update(chunk).await.map_err(std::io::Error::other)?;
    }
    Ok(done)
}

/// Bytes a writer has put down so far, shared with whoever waits for it: an inactivity
/// timeout over a disk or writer that is slow but moving looks at this, not at how long
/// one whole chunk or the whole queue takes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Progress(Arc<AtomicU64>);

impl Progress {
    pub(crate) fn add(&self, n: usize) {
        self.0.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Awaits `fut` as long as `progress` moves: `None` once a whole `inactivity` passed
/// without a byte put down (fault seed s5b-proxy 9066: a disk taking 524 bytes per 1.6 ms
/// was "nothing within 2s" while it worked through the queue of 256 KiB chunks).
pub(crate) async fn while_moving<F: Future>(
    inactivity: Duration,
    progress: &Progress,
    fut: F,
) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    loop {
        let before = progress.get();
        match tokio::time::timeout(inactivity, &mut fut).await {
            Ok(v) => return Some(v),
            Err(_) if progress.get() != before => {}
            Err(_) => return None,
        }
    }
}

/// Writes all of `bytes`, adding each write's bytes to `progress`.
pub(crate) async fn write_counted<W: AsyncWrite + Unpin + ?Sized>(
    w: &mut W,
    bytes: &[u8],
    progress: &Progress,
) -> std::io::Result<()> {
    let mut off = 0;
    while off < bytes.len() {
        let n = w.write(&bytes[off..]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        off += n;
        progress.add(n);
    }
    Ok(())
}

/// Runs `fut` unless the transfer is cancelled or it takes longer than `timeout`.
pub(crate) async fn guarded<T, E: Into<ErrorKind>>(
    stage: Stage,
    cancel: &CancelToken,
    timeout: Duration,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, TransferError> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(TransferError::new(stage, ErrorKind::Cancelled(Side::Local))),
        r = tokio::time::timeout(timeout, fut) => match r {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(TransferError::new(stage, e.into())),
            Err(_) => Err(TransferError::new(stage, ErrorKind::Timeout(timeout))),
        },
    }
}

/// What the sender's copy did.
#[derive(Debug)]
pub(crate) struct Sent {
    pub(crate) bytes: u64,
    pub(crate) hashes: Option<HashLanes>,
}

/// Copies exactly `len` bytes from `file` to `stream`, hashing them unless `hashes` is
/// `None` (the whole file was hashed before the offer). A file that ends early is an error
/// (it changed since the offer).
///
/// The receiver never writes on a file transfer's bytestream, so anything that ends the
/// stream's read side (the IBB peer's `<close/>`, the S5B socket closed or reset) means the
/// receiver gave up: the copy stops at once with [`ErrorKind::Cancelled`]`(Peer)` instead of
/// writing into a stream nobody reads.
pub(crate) async fn send<R, S>(
    file: &mut R,
    stream: &mut S,
    len: u64,
    mut hashes: Option<HashLanes>,
    reporter: &mut Reporter,
    cancel: &CancelToken,
    inactivity: Duration,
) -> Result<Sent, TransferError>
where
    R: AsyncRead + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    reporter.streaming();
    let (mut rd, mut wr) = tokio::io::split(stream);
    let peer_left = async move {
        let mut scratch = [0u8; 512];
        loop {
            match rd.read(&mut scratch).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::pin!(peer_left);
    let mut buf = BytesMut::new();
    let mut done = 0u64;
    let moved = Progress::default();
    while done < len {
        let want = ((len - done) as usize).min(BUF_SIZE);
        // The read of the source races the stream's end too: a source that stalls (a pipe,
        // a slow reader) must not hide the receiver's cancel until the inactivity timeout.
        let chunk = tokio::select! {
            biased;
            () = &mut peer_left => {
                return Err(TransferError::new(Stage::Stream, ErrorKind::Cancelled(Side::Peer)));
            }
            r = guarded(Stage::Stream, cancel, inactivity, read_chunk(file, &mut buf, want)) => r?,
        };
        let Some(chunk) = chunk else {
            return Err(TransferError::new(
                Stage::Stream,
                ErrorKind::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("the source ended after {done} of {len} bytes"),
                )),
            ));
        };
        let n = chunk.len();
        // Timed by progress, not by the whole chunk: a 256 KiB chunk on a slow path (IBB
        // through a server's shaper) may take longer than the inactivity timeout while it
        // moves all along.
        tokio::select! {
            biased;
            () = &mut peer_left => {
                return Err(TransferError::new(Stage::Stream, ErrorKind::Cancelled(Side::Peer)));
            }
            () = cancel.cancelled() => return Err(crate::handle::cancelled(Stage::Stream)),
            r = while_moving(inactivity, &moved, write_counted(&mut wr, &chunk, &moved)) => match r {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(TransferError::new(Stage::Stream, peer_gone(e))),
                None => return Err(TransferError::new(Stage::Stream, ErrorKind::Timeout(inactivity))),
            },
        }
        if let Some(h) = hashes.as_mut() {
            // The digest threads hash this chunk while the next one is read and sent.
            h.update(chunk).await.map_err(|e| {
                TransferError::new(Stage::Stream, ErrorKind::Io(std::io::Error::other(e)))
            })?;
        }
        done += n as u64;
        reporter.bytes(done, false);
    }
    // Every byte is handed over: a receiver that closes now is done, not cancelling (QXmpp
    // and libpurple close the socket as soon as they have `size` bytes). Whether it really
    // read them all is for the delivery check after our shutdown (a close with bytes
    // unread arrives as a reset there); only a failing flush is an error here.
    guarded(Stage::Stream, cancel, inactivity, async {
        wr.flush().await.map_err(peer_gone)
    })
    .await?;
    reporter.bytes(done, true);
    Ok(Sent {
        bytes: done,
        hashes,
    })
}

/// A write error on the bytestream: the peer closed or reset it, which is how a receiver
/// cancels (IBB `<close/>`, S5B socket shutdown).
pub(crate) fn peer_gone(e: std::io::Error) -> ErrorKind {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::BrokenPipe
        | K::ConnectionReset
        | K::ConnectionAborted
        | K::NotConnected
        | K::UnexpectedEof => ErrorKind::Cancelled(Side::Peer),
        _ => ErrorKind::Io(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::pair;

    #[tokio::test]
    async fn send_hashes_what_it_sends() {
        let (_h, mut side) = pair(
            ft_transport::Sid::new("s").unwrap(),
            "a@x/1".parse().unwrap(),
            Some(3),
        );
        let mut src: &[u8] = b"abc";
        let (mut ours, mut theirs) = tokio::io::duplex(64);
        let sent = send(
            &mut src,
            &mut ours,
            3,
            Some(HashLanes::new()),
            &mut side.reporter,
            &side.cancel,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        drop(ours);
        let mut out = Vec::new();
        theirs.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"abc");
        let digests = sent.hashes.unwrap().digests().await.unwrap();
        assert_eq!(
            digests.md5_hex().unwrap(),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            digests.sha256_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    /// A bytestream slower than the file but always moving (512 bytes a millisecond: IBB
    /// through a server's shaper, say) is not "nothing within" the inactivity timeout
    /// because one 256 KiB chunk takes longer than it (here 300 ms) to go out.
    #[tokio::test]
    async fn a_slow_but_moving_stream_is_not_taken_for_a_hung_one() {
        let data: Vec<u8> = (0..512 * 1024).map(|i| (i % 253) as u8).collect();
        let (_h, mut side) = pair(
            ft_transport::Sid::new("s").unwrap(),
            "a@x/1".parse().unwrap(),
            Some(data.len() as u64),
        );
        let (mut ours, theirs) = tokio::io::duplex(512);
        let reader = crate::recv_stream::tests::drain_slowly(theirs);
        let mut src: &[u8] = &data;
        let sent = send(
            &mut src,
            &mut ours,
            data.len() as u64,
            None,
            &mut side.reporter,
            &side.cancel,
            Duration::from_millis(300),
        )
        .await
        .expect("sent while the stream moves");
        assert_eq!(sent.bytes, data.len() as u64);
        drop(ours);
        assert_eq!(reader.await.unwrap(), data);
    }
}
