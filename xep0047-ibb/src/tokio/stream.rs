//! [`IbbStream`]: one session as `AsyncRead + AsyncWrite`.

use super::*;

/// One IBB session as a byte stream. `poll_flush` waits until everything written is
/// acknowledged (iq) or sent (message); `poll_shutdown` is the flushing close, complete when
/// the peer has answered our `<close/>`. Dropping the stream closes it the same way in the
/// background.
pub struct IbbStream {
    pub(super) shared: Arc<Shared>,
    sid: Sid,
    peer: Jid,
    block_size: u16,
    stanza: StanzaKind,
    /// The chunk being read, taken out of the session so that it is copied out without
    /// the session's lock (which the pump needs for every inbound chunk), and how much
    /// of it was read.
    reading: Vec<u8>,
    read_off: usize,
}

impl fmt::Debug for IbbStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IbbStream")
            .field("peer", &self.peer.to_string())
            .field("sid", &self.sid)
            .field("block_size", &self.block_size)
            .field("stanza", &self.stanza)
            .finish()
    }
}

fn to_io(e: Error) -> io::Error {
    let kind = match &e {
        Error::Io(io) => io.kind(),
        Error::Timeout(_) => io::ErrorKind::TimedOut,
        Error::ClosedByPeer | Error::Misuse(MisuseError::WriteAfterClose) => {
            io::ErrorKind::BrokenPipe
        }
        Error::Malformed(_) | Error::Protocol(_) => io::ErrorKind::InvalidData,
        Error::Rejected(_) => io::ErrorKind::ConnectionReset,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

impl IbbStream {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        let (sid, peer, block_size, stanza) = {
            let c = lock(&shared.cell);
            (
                c.session.sid().clone(),
                c.session.peer().clone(),
                c.session.block_size(),
                c.session.stanza_kind(),
            )
        };
        Self {
            shared,
            sid,
            peer,
            block_size,
            stanza,
            reading: Vec::new(),
            read_off: 0,
        }
    }

    /// The session id.
    pub fn sid(&self) -> &Sid {
        &self.sid
    }

    /// The peer.
    pub fn peer(&self) -> &Jid {
        &self.peer
    }

    /// The negotiated block-size.
    pub fn block_size(&self) -> u16 {
        self.block_size
    }

    /// Which stanza carries our data.
    pub fn stanza(&self) -> StanzaKind {
        self.stanza
    }

    /// The size of the next chunk this side sends ([`Session::chunk_size`](crate::Session::chunk_size)).
    pub fn chunk_size(&self) -> u16 {
        lock(&self.shared.cell).session.chunk_size()
    }

    /// The state of the chunk-size search, when one runs
    /// ([`Session::sizer`](crate::Session::sizer)).
    pub fn sizer(&self) -> Option<proto::ChunkSizer> {
        lock(&self.shared.cell).session.sizer().cloned()
    }

    /// Aborts the session at once (a user's cancel), unlike the flushing
    /// [`poll_shutdown`](AsyncWrite::poll_shutdown): buffered unsent data is dropped,
    /// `<close/>` is sent now, and the driver waits for its answer no longer than
    /// [`Config::close_timeout`]. Reads and writes afterwards fail or see the end; the peer
    /// sees the session end (and its reader, if it counts bytes, a short stream).
    pub fn abort(&self) {
        let mut c = lock(&self.shared.cell);
        c.session.cancel();
        let wake = c.dispatch_all();
        drop(c);
        wake.wake();
        self.shared.notify.notify_one();
    }

    /// Whether the session ended without an answer to our `<close/>` although everything
    /// we wrote had gone out (over iq: every chunk acknowledged): see
    /// [`Session::close_unanswered`](crate::Session::close_unanswered). Meaningful once
    /// [`poll_shutdown`](AsyncWrite::poll_shutdown) has returned `Ok`.
    pub fn close_unanswered(&self) -> bool {
        lock(&self.shared.cell).session.close_unanswered()
    }

    /// Answers the peer's `<close/>` when [`Config::hold_close_answer`] holds it (see
    /// [`Session::answer_close`](crate::Session::answer_close)): `Ok` for a result, `Err`
    /// for that stanza error. Closing or dropping the stream without it answers `Ok`.
    pub fn answer_close(&self, verdict: Result<(), StanzaError>) {
        let mut c = lock(&self.shared.cell);
        c.session.answer_close(verdict);
        let wake = c.dispatch_all();
        drop(c);
        wake.wake();
        self.shared.notify.notify_one();
    }

    /// The error the peer answered our `<close/>` with, other than `item-not-found`: it did
    /// not keep what we sent ([`Session::close_refused`](crate::Session::close_refused)).
    /// Meaningful once [`poll_shutdown`](AsyncWrite::poll_shutdown) has returned.
    pub fn close_refused(&self) -> Option<StanzaError> {
        lock(&self.shared.cell).session.close_refused().cloned()
    }

    /// The error the session ended with, if any.
    pub fn error(&self) -> Option<Error> {
        let c = lock(&self.shared.cell);
        c.session.error().cloned().or_else(|| c.io_error.clone())
    }
}

impl AsyncRead for IbbStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if this.read_off == this.reading.len() {
            let mut c = lock(&this.shared.cell);
            let drained = std::mem::take(&mut this.reading);
            if drained.capacity() > 0 {
                c.session.recycle_chunk(drained);
            }
            this.read_off = 0;
            match c.session.read_chunk() {
                Ok(Some(chunk)) => {
                    this.reading = chunk;
                    c.last_read = tokio::time::Instant::now();
                    // Reading only matters to the driver when it released held-back acks.
                    let wake_driver = c.session.has_queued_transmit();
                    drop(c);
                    if wake_driver {
                        this.shared.notify.notify_one();
                    }
                    this.shared.drained.notify_waiters();
                }
                Ok(None) => {
                    if c.session.is_eof() {
                        return Poll::Ready(Ok(()));
                    }
                    if let Some(e) = c.io_error.clone() {
                        return Poll::Ready(Err(to_io(e)));
                    }
                    c.read_waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                Err(e) => return Poll::Ready(Err(to_io(e))),
            }
        }
        let avail = &this.reading[this.read_off..];
        let n = avail.len().min(buf.remaining());
        buf.put_slice(&avail[..n]);
        this.read_off += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for IbbStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut c = lock(&self.shared.cell);
        if let Some(e) = c.io_error.clone() {
            return Poll::Ready(Err(to_io(e)));
        }
        match c.session.send(buf) {
            Ok(0) if !buf.is_empty() => {
                c.write_waker = Some(cx.waker().clone());
                Poll::Pending
            }
            Ok(n) => {
                drop(c);
                self.shared.notify.notify_one();
                Poll::Ready(Ok(n))
            }
            Err(e) => Poll::Ready(Err(to_io(e))),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut c = lock(&self.shared.cell);
        if let Some(e) = c
            .session
            .error()
            .cloned()
            .or_else(|| c.session.write_error())
            .or_else(|| c.io_error.clone())
        {
            return Poll::Ready(Err(to_io(e)));
        }
        if c.session.is_flushed() || c.session.is_closed() {
            return Poll::Ready(Ok(()));
        }
        c.session.flush();
        c.write_waker = Some(cx.waker().clone());
        drop(c);
        self.shared.notify.notify_one();
        Poll::Pending
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut c = lock(&self.shared.cell);
        c.session.close();
        if c.session.is_closed() {
            let e = c
                .session
                .error()
                .cloned()
                .or_else(|| c.session.write_error());
            return match e.or_else(|| c.io_error.clone()) {
                Some(e) => Poll::Ready(Err(to_io(e))),
                None => Poll::Ready(Ok(())),
            };
        }
        if let Some(e) = c.io_error.clone() {
            return Poll::Ready(Err(to_io(e)));
        }
        c.write_waker = Some(cx.waker().clone());
        drop(c);
        self.shared.notify.notify_one();
        Poll::Pending
    }
}

impl Drop for IbbStream {
    fn drop(&mut self) {
        lock(&self.shared.cell).session.close();
        self.shared.notify.notify_one();
    }
}
