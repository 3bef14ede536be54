//! The connection under tokio-xmpp during login: a read buffer (tokio-xmpp's reader wants an
//! `AsyncBufRead`) that can log what the XML parser consumes and what is written, framed
//! into elements and [`redact`]ed, to an [`XmlLog`].
//!
//! Logging at `consume` (not at read) means that bytes read past the end of the login
//! (stanzas right behind the bind result) are not logged here: they stay in the buffer and
//! the session's codec logs them when it decodes them.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, ReadBuf};

use crate::codec::{Direction, Framer, XmlLog, redact};

/// Size of the read buffer.
const READ_BUFFER: usize = 16 * 1024;

/// A buffered, optionally logging, connection. Writes are not buffered (tokio-xmpp and the
/// session's writer buffer their own).
pub(super) struct Tap<S> {
    inner: S,
    buf: Box<[u8]>,
    pos: usize,
    filled: usize,
    log: Option<TapLog>,
}

struct TapLog {
    sink: Arc<dyn XmlLog>,
    inbound: Framer,
    outbound: Framer,
}

impl TapLog {
    fn push(&mut self, direction: Direction, bytes: &[u8]) {
        let sink = &*self.sink;
        let framer = match direction {
            Direction::In => &mut self.inbound,
            Direction::Out => &mut self.outbound,
        };
        framer.push(bytes, |unit| sink.record(direction, &redact(unit)));
    }
}

impl<S> std::fmt::Debug for Tap<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tap")
            .field("buffered", &(self.filled - self.pos))
            .field("logging", &self.log.is_some())
            .finish_non_exhaustive()
    }
}

impl<S> Tap<S> {
    pub(super) fn new(inner: S, log: Option<Arc<dyn XmlLog>>) -> Self {
        Self {
            inner,
            buf: vec![0; READ_BUFFER].into_boxed_slice(),
            pos: 0,
            filled: 0,
            log: log.map(|sink| TapLog {
                sink,
                inbound: Framer::default(),
                outbound: Framer::default(),
            }),
        }
    }

    /// Stops logging (the session's codec and writer log from here on); buffered bytes stay.
    pub(super) fn stop_logging(&mut self) {
        self.log = None;
    }

    /// The connection underneath, for the TLS upgrade. Bytes still buffered are dropped (a
    /// server sends nothing between `<proceed/>` and the TLS handshake).
    pub(super) fn into_inner(self) -> S {
        self.inner
    }

    fn consume_logged(&mut self, amt: usize) {
        let end = (self.pos + amt).min(self.filled);
        if let Some(log) = self.log.as_mut() {
            log.push(Direction::In, &self.buf[self.pos..end]);
        }
        self.pos = end;
    }
}

impl<S: AsyncRead + Unpin> AsyncBufRead for Tap<S> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        if this.pos == this.filled {
            let mut rb = ReadBuf::new(&mut this.buf);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            this.filled = rb.filled().len();
            this.pos = 0;
        }
        Poll::Ready(Ok(&this.buf[this.pos..this.filled]))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        self.get_mut().consume_logged(amt);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tap<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.filled {
            let n = out.remaining().min(this.filled - this.pos);
            out.put_slice(&this.buf[this.pos..this.pos + n]);
            this.consume_logged(n);
            return Poll::Ready(Ok(()));
        }
        // Nothing buffered: straight from the connection, no copy.
        let before = out.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, out))?;
        if let Some(log) = this.log.as_mut() {
            log.push(Direction::In, &out.filled()[before..]);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tap<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, data))?;
        if let Some(log) = this.log.as_mut() {
            log.push(Direction::Out, &data[..n]);
        }
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, bufs))?;
        if let Some(log) = this.log.as_mut() {
            let mut left = n;
            for b in bufs {
                let take = left.min(b.len());
                log.push(Direction::Out, &b[..take]);
                left -= take;
                if left == 0 {
                    break;
                }
            }
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
