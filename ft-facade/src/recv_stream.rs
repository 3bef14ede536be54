//! The receiver's bytestream, whatever stack set it up: drained into a `.part` file or the
//! application's writer, with the digests beside it.

use std::pin::Pin;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use xep0096_file::{HashLanes, PartFile};

use crate::copy;
use crate::error::{ErrorKind, Side, Stage, TransferError};
use crate::handle::TaskSide;

/// Where received bytes go: the `.part` file (which counts, hashes and refuses excess
/// bytes itself), or the application's writer with the digest threads beside it.
pub(crate) enum Sink {
    Part(Box<PartFile>),
    Writer(Pin<Box<dyn AsyncWrite + Send>>, HashLanes),
}

impl Sink {
    /// Writes `chunk`, adding what is put down to `progress` as it goes (the writer's bytes
    /// each write; the `.part` file's whole chunk, written on a blocking thread).
    async fn put(&mut self, chunk: Bytes, progress: &copy::Progress) -> Result<(), ErrorKind> {
        match self {
            Self::Part(part) => {
                let n = chunk.len();
                part.write_bytes(chunk).await.map_err(ErrorKind::from)?;
                progress.add(n);
                Ok(())
            }
            Self::Writer(w, lanes) => {
                copy::write_counted(w, &chunk, progress).await?;
                lanes.update(chunk).await.map_err(ErrorKind::from)
            }
        }
    }

    async fn flush(&mut self) -> Result<(), ErrorKind> {
        match self {
            // PartFile::finish flushes and syncs.
            Self::Part(_) => Ok(()),
            Self::Writer(w, _) => Ok(w.flush().await?),
        }
    }
}

/// Drains `stream` into `sink` until EOF, pipelined: this task reads the bytestream while a
/// second task writes the previous chunks, and the digests run on threads of their own
/// (see [`HashLanes`]), so socket, disk and hashing overlap. Chunks are shared, not copied;
/// at most [`QUEUE`] of [`copy::BUF_SIZE`] wait for the writer, and the digest queues are
/// bounded too, so memory does not depend on the file size.
///
/// More than `length` bytes is [`ErrorKind::TooLong`] (the excess is never written);
/// fewer is [`ErrorKind::Truncated`]. The sink comes back unless the writer task died or
/// was abandoned (a writer that hangs after a cancel).
pub(crate) async fn receive<S: AsyncRead + Unpin>(
    stream: &mut S,
    sink: Sink,
    length: Length,
    side: &mut TaskSide,
    inactivity: Duration,
) -> (Option<Sink>, Result<u64, TransferError>) {
    let (full_tx, mut full_rx) = mpsc::channel::<Bytes>(QUEUE);
    // What the writer has put down: "nothing within" the inactivity timeout is about it
    // taking nothing, not about how long a slow disk needs for the queue.
    let progress = copy::Progress::default();
    let put_down = progress.clone();
    let writer = tokio::spawn(async move {
        let mut sink = sink;
        while let Some(chunk) = full_rx.recv().await {
            if let Err(e) = sink.put(chunk, &put_down).await {
                return (sink, Err(e));
            }
        }
        let flushed = sink.flush().await;
        (sink, flushed)
    });
    let cancel = side.cancel.clone();
    side.reporter.streaming();
    let mut done = 0u64;
    let read: Result<(), TransferError> = async {
        let mut buf = BytesMut::new();
        loop {
            // Sized to what is left (plus one byte, to see an excess), at most a copy buffer:
            // a small file gets a small buffer (issue 9: 1,000 small transfers at once held
            // 256 KiB each here). Reuses the allocation once the writer and the digests are
            // done with it.
            let want = match length {
                Length::Exactly(expected) => usize::try_from(expected.saturating_sub(done))
                    .unwrap_or(usize::MAX)
                    .saturating_add(1)
                    .min(copy::BUF_SIZE),
                Length::Unknown { .. } => copy::BUF_SIZE,
            };
            if buf.capacity() < want.min(copy::BUF_SIZE / 4) {
                buf.reserve(want);
            }
            let n = copy::guarded(Stage::Stream, &cancel, inactivity, async {
                match stream.read_buf(&mut buf).await {
                    Ok(n) => Ok(n),
                    // A reset is the peer giving up: the byte count decides below.
                    Err(e) => match copy::peer_gone(e) {
                        ErrorKind::Cancelled(_) => Ok(0),
                        other => Err(other),
                    },
                }
            })
            .await?;
            if n == 0 {
                return Ok(());
            }
            match length {
                Length::Exactly(expected) if n as u64 > expected - done => {
                    return Err(TransferError::new(
                        Stage::Stream,
                        ErrorKind::TooLong { expected },
                    ));
                }
                Length::Unknown { limit: Some(limit) } if done + n as u64 > limit => {
                    // No size offered: the size policy holds the bytes as they arrive.
                    return Err(TransferError::new(
                        Stage::Stream,
                        ErrorKind::TooLarge {
                            size: done + n as u64,
                            limit,
                        },
                    ));
                }
                _ => {}
            }
            let chunk = buf.split().freeze();
            // A writer that hangs stops taking chunks: a cancel must still get through.
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(crate::handle::cancelled(Stage::Stream)),
                sent = copy::while_moving(inactivity, &progress, full_tx.send(chunk)) => match sent {
                    // The writer stopped on an error; it is collected below.
                    Some(Err(_)) => return Ok(()),
                    Some(Ok(())) => {}
                    // A writer that takes nothing for the whole inactivity timeout has hung
                    // (fault harness, ibb-iq seed 44): the transfer fails instead of waiting
                    // forever.
                    None => return Err(TransferError::new(Stage::Stream, ErrorKind::Timeout(inactivity))),
                },
            }
            done += n as u64;
            side.reporter.bytes(done, false);
        }
    }
    .await;
    drop(full_tx);
    let mut writer = writer;
    let hung = read
        .as_ref()
        .is_err_and(|e| matches!(e.kind, ErrorKind::Timeout(_)));
    let joined = if hung {
        // The writer hung: it is abandoned at once, like after a cancel's grace.
        writer.abort();
        return (None, read.map(|()| done));
    } else if read.as_ref().is_err_and(|e| e.is_cancelled_by(Side::Local)) {
        // Cancelled: give the writer a moment to finish what it holds, no more (a hung
        // disk or application writer must not hold a cancel up).
        match tokio::time::timeout(CANCEL_GRACE, &mut writer).await {
            Ok(r) => r,
            Err(_) => {
                writer.abort();
                return (None, read.map(|()| done));
            }
        }
    } else {
        // The bytes are all read; the writer has at most the queue left to write. One that
        // puts nothing down for the inactivity timeout has hung (seed 9, ibb-message); one
        // that is slow but moving is waited for (seed 9066, s5b-proxy).
        match copy::while_moving(inactivity, &progress, &mut writer).await {
            Some(r) => r,
            None => {
                writer.abort();
                return (
                    None,
                    Err(TransferError::new(
                        Stage::Stream,
                        ErrorKind::Timeout(inactivity),
                    )),
                );
            }
        }
    };
    let (sink, written) = match joined {
        Ok(r) => r,
        Err(e) => {
            // The writer never panics on peer input; a panic is a bug, reported as an i/o
            // error rather than taking the application down.
            return (
                None,
                Err(TransferError::new(
                    Stage::Stream,
                    ErrorKind::Io(std::io::Error::other(format!("writer task failed: {e}"))),
                )),
            );
        }
    };
    let sink = Some(sink);
    if let Err(e) = read {
        return (sink, Err(e));
    }
    if let Err(kind) = written {
        return (sink, Err(TransferError::new(Stage::Stream, kind)));
    }
    side.reporter.bytes(done, true);
    if let Length::Exactly(expected) = length
        && done < expected
    {
        return (
            sink,
            Err(TransferError::new(
                Stage::Stream,
                ErrorKind::Truncated {
                    expected,
                    got: done,
                },
            )),
        );
    }
    (sink, Ok(done))
}

/// How many bytes a bytestream must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Length {
    /// The offered size (less the resume offset): fewer is truncated, more is refused.
    Exactly(u64),
    /// The offer had no size: the stream's end is the file's end; at most `limit` bytes
    /// (the size policy) are taken.
    Unknown { limit: Option<u64> },
}

impl Length {
    /// `Exactly(n)` for a known length, `Unknown` with the policy's `limit` otherwise.
    pub(crate) fn new(length: Option<u64>, limit: Option<u64>) -> Self {
        match length {
            Some(n) => Self::Exactly(n),
            None => Self::Unknown { limit },
        }
    }
}

/// Chunks in flight between the reading and the writing task.
const QUEUE: usize = 4;

/// How long a cancelled receive waits for its writer to hand the sink back (so that a
/// `.part` can be kept or discarded as asked) before abandoning it: a disk or writer that
/// hangs longer than this must not hold up a cancel.
const CANCEL_GRACE: Duration = Duration::from_secs(2);

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::handle::pair;

    fn writer_sink() -> (Sink, tokio::io::DuplexStream) {
        let (w, r) = tokio::io::duplex(1 << 16);
        (Sink::Writer(Box::pin(w), HashLanes::new()), r)
    }

    #[tokio::test]
    async fn receive_refuses_a_byte_beyond_the_offered_size_and_never_writes_it() {
        let (_h, mut side) = pair(
            ft_transport::Sid::new("s").unwrap(),
            "a@x/1".parse().unwrap(),
            Some(4),
        );
        let mut src: &[u8] = b"12345";
        let (sink, mut out) = writer_sink();
        let (sink, r) = receive(
            &mut src,
            sink,
            Length::Exactly(4),
            &mut side,
            Duration::from_secs(5),
        )
        .await;
        let err = r.unwrap_err();
        assert!(matches!(err.kind, ErrorKind::TooLong { expected: 4 }));
        drop(sink);
        let mut got = Vec::new();
        out.read_to_end(&mut got).await.unwrap();
        assert!(got.is_empty(), "nothing past the limit is written");
    }

    #[tokio::test]
    async fn receive_of_fewer_bytes_than_offered_is_truncated() {
        let (_h, mut side) = pair(
            ft_transport::Sid::new("s").unwrap(),
            "a@x/1".parse().unwrap(),
            Some(10),
        );
        let mut src: &[u8] = b"123";
        let (sink, _out) = writer_sink();
        let (_sink, r) = receive(
            &mut src,
            sink,
            Length::Exactly(10),
            &mut side,
            Duration::from_secs(5),
        )
        .await;
        assert!(matches!(
            r.unwrap_err().kind,
            ErrorKind::Truncated {
                expected: 10,
                got: 3
            }
        ));
    }

    #[tokio::test]
    async fn receive_into_a_writer_hashes_what_it_wrote() {
        let (_h, mut side) = pair(
            ft_transport::Sid::new("s").unwrap(),
            "a@x/1".parse().unwrap(),
            Some(3),
        );
        let mut src: &[u8] = b"abc";
        let (sink, mut out) = writer_sink();
        let (sink, r) = receive(
            &mut src,
            sink,
            Length::Exactly(3),
            &mut side,
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(r.unwrap(), 3);
        let Some(Sink::Writer(w, lanes)) = sink else {
            panic!("the writer comes back")
        };
        drop(w);
        let mut got = Vec::new();
        out.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"abc");
        assert_eq!(
            lanes.digests().await.unwrap().md5_hex().unwrap(),
            "900150983cd24fb0d6963f7d28e17f72"
        );
    }

    /// Reads what `theirs` gets, 512 bytes a millisecond: a slow disk (or stream) that
    /// never stops.
    pub(crate) fn drain_slowly(
        mut theirs: tokio::io::DuplexStream,
    ) -> tokio::task::JoinHandle<Vec<u8>> {
        tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = [0u8; 512];
            loop {
                match theirs.read(&mut buf).await {
                    Ok(0) | Err(_) => return got,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    }

    /// A writer slower than the stream but always moving is waited for: the inactivity
    /// timeout (here 300 ms) is about a writer that takes nothing, not about the 1+ s
    /// this one needs for the queue once the stream has ended (fault seed s5b-proxy 9066:
    /// "nothing within 2s" on a disk taking 524 bytes per 1.6 ms).
    #[tokio::test]
    async fn a_slow_but_moving_writer_is_not_taken_for_a_hung_one() {
        let data: Vec<u8> = (0..512 * 1024).map(|i| (i % 251) as u8).collect();
        let (_h, mut side) = pair(
            ft_transport::Sid::new("s").unwrap(),
            "a@x/1".parse().unwrap(),
            Some(data.len() as u64),
        );
        let mut src: &[u8] = &data;
        let (ours, theirs) = tokio::io::duplex(512);
        let disk = drain_slowly(theirs);
        let sink = Sink::Writer(Box::pin(ours), HashLanes::new());
        let (sink, r) = receive(
            &mut src,
            sink,
            Length::Exactly(data.len() as u64),
            &mut side,
            Duration::from_millis(300),
        )
        .await;
        assert_eq!(r.unwrap(), data.len() as u64);
        drop(sink);
        assert_eq!(disk.await.unwrap(), data);
    }
}
