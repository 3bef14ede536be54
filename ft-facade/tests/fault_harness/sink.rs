//! A faulty sink: an `AsyncWrite` that fails (ENOSPC, EIO), hangs or crawls after a number of
//! bytes, keeping what it took so the run can compare it with the source.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::AsyncWrite;

/// What the sink does once it has taken `after` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkFault {
    /// Nothing: a healthy writer.
    None,
    /// `ENOSPC` from every write after `after` bytes.
    DiskFull { after: u64 },
    /// `EIO` from every write after `after` bytes.
    Eio { after: u64 },
    /// Every write after `after` bytes stays pending forever (a hung disk).
    Hang { after: u64 },
    /// Every write takes `nap` and at most `chunk` bytes (a slow disk; never fails).
    Slow { nap: Duration, chunk: usize },
}

impl SinkFault {
    /// Whether the sink will fail or hang for a file of `size` bytes.
    pub fn breaks(self, size: u64) -> bool {
        match self {
            Self::None | Self::Slow { .. } => false,
            Self::DiskFull { after } | Self::Eio { after } | Self::Hang { after } => after < size,
        }
    }
}

/// The writer; `taken` is shared with the run.
#[derive(Debug)]
pub struct FaultyWriter {
    pub fault: SinkFault,
    pub taken: Arc<Mutex<Vec<u8>>>,
    nap: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl FaultyWriter {
    pub fn new(fault: SinkFault) -> (Self, Arc<Mutex<Vec<u8>>>) {
        let taken = Arc::new(Mutex::new(Vec::new()));
        let w = Self {
            fault,
            taken: taken.clone(),
            nap: None,
        };
        (w, taken)
    }
}

impl AsyncWrite for FaultyWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let have = self.taken.lock().unwrap().len() as u64;
        let room = |after: u64| (after.saturating_sub(have)).min(buf.len() as u64) as usize;
        let n = match self.fault {
            SinkFault::None => buf.len(),
            SinkFault::DiskFull { after }
            | SinkFault::Eio { after }
            | SinkFault::Hang { after }
                if have < after =>
            {
                room(after)
            }
            SinkFault::DiskFull { .. } => {
                return Poll::Ready(Err(io::Error::from_raw_os_error(28))); // ENOSPC
            }
            SinkFault::Eio { .. } => return Poll::Ready(Err(io::Error::from_raw_os_error(5))),
            SinkFault::Hang { .. } => return Poll::Pending,
            SinkFault::Slow { nap, chunk } => {
                let sleep = self
                    .nap
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(nap)));
                std::task::ready!(sleep.as_mut().poll(cx));
                self.nap = None;
                buf.len().min(chunk.max(1))
            }
        };
        self.taken.lock().unwrap().extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
