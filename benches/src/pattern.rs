//! The bytes every case sends, and the receiving side that checks each one arrived.
//!
//! A fixed 1 MiB pseudo-random block repeats for the whole transfer: the receiver compares
//! every byte against it at the same offset (a `memcmp`, far cheaper than hashing), so a
//! lost, duplicated or reordered byte fails the case rather than inflating its figure.

use std::io;
use std::sync::OnceLock;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Length of the repeating block.
pub const PATTERN_LEN: usize = 1 << 20;

/// Size of each write and read the suite issues on a socket: large enough that syscalls do
/// not dominate on loopback.
pub const IO_BUF: usize = 256 * 1024;

/// The repeating block (xorshift64*, fixed seed).
pub fn pattern() -> &'static [u8] {
    static P: OnceLock<Vec<u8>> = OnceLock::new();
    P.get_or_init(|| {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut v = Vec::with_capacity(PATTERN_LEN);
        while v.len() < PATTERN_LEN {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            v.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        v
    })
}

/// The bytes at stream offset `offset`, at most `len` of them, without wrapping.
pub fn slice_at(offset: u64, len: usize) -> &'static [u8] {
    let p = pattern();
    let start = (offset % PATTERN_LEN as u64) as usize;
    &p[start..(start + len).min(PATTERN_LEN)]
}

/// Writes `total` pattern bytes to `w`, then shuts down its write side.
pub async fn write_pattern<W: AsyncWrite + Unpin>(w: &mut W, total: u64) -> io::Result<()> {
    let mut sent = 0u64;
    while sent < total {
        let n = (total - sent).min(IO_BUF as u64) as usize;
        let chunk = slice_at(sent, n);
        w.write_all(chunk).await?;
        sent += chunk.len() as u64;
    }
    w.flush().await?;
    w.shutdown().await
}

/// What can go wrong on the receiving side of a case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Reading failed.
    #[error("reading the stream failed after {received} bytes")]
    Io {
        /// Bytes verified before the failure.
        received: u64,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A byte differs from what was sent.
    #[error("byte {offset} differs from what was sent")]
    Corrupt {
        /// Offset of the first differing byte.
        offset: u64,
    },
    /// The stream ended early or carried more than was sent.
    #[error("received {received} bytes, expected {expected}")]
    Length {
        /// Bytes received.
        received: u64,
        /// Bytes sent.
        expected: u64,
    },
}

/// A running check of received bytes against the pattern.
#[derive(Debug, Default)]
pub struct Verifier {
    received: u64,
}

impl Verifier {
    /// Checks the next `data` bytes of the stream.
    pub fn check(&mut self, mut data: &[u8]) -> Result<(), VerifyError> {
        while !data.is_empty() {
            let want = slice_at(self.received, data.len());
            let n = want.len();
            if data[..n] != *want {
                let at = data.iter().zip(want).position(|(a, b)| a != b).unwrap_or(0);
                return Err(VerifyError::Corrupt {
                    offset: self.received + at as u64,
                });
            }
            self.received += n as u64;
            data = &data[n..];
        }
        Ok(())
    }

    /// Bytes verified so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Checks the total at end of stream.
    pub fn finish(&self, expected: u64) -> Result<u64, VerifyError> {
        if self.received == expected {
            Ok(expected)
        } else {
            Err(VerifyError::Length {
                received: self.received,
                expected,
            })
        }
    }
}

/// Reads `r` to its end, checking every byte, and returns the count if it is exactly
/// `expected`.
pub async fn read_verify<R: AsyncRead + Unpin>(
    r: &mut R,
    expected: u64,
) -> Result<u64, VerifyError> {
    let mut v = Verifier::default();
    let mut buf = vec![0u8; IO_BUF];
    loop {
        let n = r.read(&mut buf).await.map_err(|source| VerifyError::Io {
            received: v.received,
            source,
        })?;
        if n == 0 {
            return v.finish(expected);
        }
        v.check(&buf[..n])?;
        if v.received > expected {
            return v.finish(expected);
        }
    }
}

/// Where a case's receiving end reads and verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOn {
    /// On the suite's own thread (`block_on`, outside the runtime's workers): the socket
    /// cases' rig, where the relay under test also runs on a thread of its own.
    Caller,
    /// On a runtime task, as the facade's receive runs: the IBB cases' rig. A reader on the
    /// suite's thread is woken across threads for every chunk, which in a pipeline of
    /// several tasks measures that hand-off as much as the transport (a perf profile of IBB
    /// over raw XML at 65535 put 74 % of the case's futex calls on it).
    Task,
}

/// [`read_verify`] where `on` says; hands the reader back.
pub async fn read_verify_on<R>(on: ReadOn, mut r: R, expected: u64) -> (Result<u64, VerifyError>, R)
where
    R: AsyncRead + Unpin + Send + 'static,
{
    match on {
        ReadOn::Caller => (read_verify(&mut r, expected).await, r),
        ReadOn::Task => {
            match tokio::spawn(async move { (read_verify(&mut r, expected).await, r) }).await {
                Ok(done) => done,
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_flipped_byte_is_reported_at_its_offset() {
        let total = PATTERN_LEN as u64 + 1000;
        let (mut a, mut b) = tokio::io::duplex(64 * 1024);
        let writer = tokio::spawn(async move {
            let mut data = Vec::new();
            let mut off = 0;
            while off < total {
                let s = slice_at(off, (total - off) as usize);
                data.extend_from_slice(s);
                off += s.len() as u64;
            }
            data[PATTERN_LEN + 7] ^= 1;
            a.write_all(&data).await.unwrap();
        });
        let err = read_verify(&mut b, total).await.unwrap_err();
        assert!(matches!(err, VerifyError::Corrupt { offset } if offset == PATTERN_LEN as u64 + 7));
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn an_intact_stream_verifies_across_the_pattern_wrap() {
        let total = PATTERN_LEN as u64 * 2 + 5;
        let (mut a, mut b) = tokio::io::duplex(64 * 1024);
        let writer = tokio::spawn(async move { write_pattern(&mut a, total).await });
        assert_eq!(read_verify(&mut b, total).await.unwrap(), total);
        writer.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_short_stream_is_a_length_error() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        tokio::spawn(async move { write_pattern(&mut a, 10).await });
        let err = read_verify(&mut b, 11).await.unwrap_err();
        assert!(matches!(
            err,
            VerifyError::Length {
                received: 10,
                expected: 11
            }
        ));
    }
}
