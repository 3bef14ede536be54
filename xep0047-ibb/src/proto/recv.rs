//! The receiving side of a session: inbound stanzas, the read buffer, deferred
//! acknowledgements, the peer's `<close/>`.

use super::*;

/// A `<data/>` chunk decoded before it reaches its session ([`decode_ahead`]): a driver
/// that guards the session with a lock decodes outside it and holds the lock only to queue
/// the bytes ([`Session::handle_stanza_decoded`]). Decoding a 64 KiB chunk takes longer than
/// everything else the session does with it, and a reader or writer of the same session
/// waiting on the lock meanwhile puts its thread to sleep.
#[derive(Debug)]
pub struct Decoded {
    /// Length of the text it was decoded from, XML whitespace included.
    text_len: usize,
    bytes: Result<Vec<u8>, PayloadError>,
}

/// The `<data/>` for session `sid` that `stanza` carries, as [`Session::handle_stanza`]
/// finds it: an iq's payload, or a message's first such payload.
fn data_element<'a>(stanza: &'a Stanza, sid: &Sid) -> Option<&'a Element> {
    let is_ours = |p: &&Element| p.is("data", NS_IBB) && p.attr("sid") == Some(sid.as_str());
    match stanza {
        Stanza::Iq(Iq::Set { payload, .. }) => Some(payload).filter(is_ours),
        Stanza::Message(m) if m.type_ != MessageType::Error => m.payloads.iter().find(is_ours),
        _ => None,
    }
}

/// The longest text a chunk of at most `block_size` bytes encodes to.
fn text_limit(block_size: u16) -> usize {
    4 * usize::from(block_size).div_ceil(3)
}

/// Decodes the chunk `stanza` carries for session `sid`, ahead of
/// [`Session::handle_stanza_decoded`], into the buffer `spare` gives (see
/// [`Session::take_spare`]). `None` when it carries none, or when its text is longer than a
/// chunk of `block_size` bytes encodes to: the session refuses that from its length, without
/// decoding it (BAD-INPUT A5). Nothing is checked here that the session does not check again
/// in its own order (peer, state, sequence number, size), so a chunk decoded ahead gets
/// exactly the answer it would have got otherwise.
pub fn decode_ahead(
    stanza: &Stanza,
    sid: &Sid,
    block_size: u16,
    spare: impl FnOnce() -> Vec<u8>,
) -> Option<Decoded> {
    let elem = data_element(stanza, sid)?;
    let text_len = elem.texts().map(str::len).sum::<usize>();
    if text_len > text_limit(block_size) {
        return None;
    }
    let mut out = spare();
    out.clear();
    let bytes = decode_text_into(elem, &mut out).map(|()| out);
    Some(Decoded { text_len, bytes })
}

impl Session {
    /// [`Session::handle_stanza`] for a stanza whose chunk was decoded by [`decode_ahead`]:
    /// the same checks in the same order and the same answers, with the decoded bytes
    /// taken instead of decoding again.
    pub fn handle_stanza_decoded(
        &mut self,
        now: Instant,
        stanza: Stanza,
        decoded: Decoded,
    ) -> ControlFlow<(), Stanza> {
        self.handle_inbound(now, stanza, Some(decoded))
    }

    /// A drained receive buffer to decode the next chunk into ([`decode_ahead`]), or a new
    /// empty one.
    pub fn take_spare(&mut self) -> Vec<u8> {
        self.recv_spare.pop().unwrap_or_default()
    }

    /// Bytes waiting to be read.
    pub fn readable(&self) -> usize {
        self.recv_len
    }

    /// Whether the reader has reached end of file (nothing buffered and no more will come).
    pub fn is_eof(&self) -> bool {
        self.recv_len == 0
            && (self.peer_closed || matches!(self.state, State::Closed))
            && self.error.is_none()
    }

    /// Reads received bytes into `buf`. `Ok(0)` with a non-empty `buf` means nothing is
    /// buffered now; check [`Session::is_eof`]. Once the buffer is drained, an error the
    /// session ended with is returned.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut n = 0;
        while n < buf.len() {
            let Some(front) = self.recv_chunks.front() else {
                break;
            };
            let avail = &front[self.recv_off..];
            let take = avail.len().min(buf.len() - n);
            buf[n..n + take].copy_from_slice(&avail[..take]);
            n += take;
            self.recv_off += take;
            if self.recv_off == front.len() {
                if let Some(done) = self.recv_chunks.pop_front() {
                    self.recycle(done);
                }
                self.recv_off = 0;
            }
        }
        self.recv_len -= n;
        if n == 0
            && !buf.is_empty()
            && let Some(e) = &self.error
        {
            return Err(e.clone());
        }
        self.release_acks();
        Ok(n)
    }

    /// Takes the oldest received chunk's unread bytes out whole, for a reader that copies
    /// them out without holding whatever guards the session; hand the buffer back with
    /// [`Session::recycle_chunk`] once it is drained. Like [`Session::read`]: `Ok(None)` when
    /// nothing is buffered now (check [`Session::is_eof`]), the session's error once the
    /// buffer is drained.
    pub fn read_chunk(&mut self) -> Result<Option<Vec<u8>>, Error> {
        let Some(mut chunk) = self.recv_chunks.pop_front() else {
            return match &self.error {
                Some(e) => Err(e.clone()),
                None => Ok(None),
            };
        };
        if self.recv_off > 0 {
            chunk.drain(..self.recv_off);
            self.recv_off = 0;
        }
        self.recv_len -= chunk.len();
        self.release_acks();
        Ok(Some(chunk))
    }

    /// Gives back a buffer from [`Session::read_chunk`] for a later chunk (kept if there is
    /// room, as [`Session::read`] keeps its drained buffers).
    pub fn recycle_chunk(&mut self, buf: Vec<u8>) {
        self.recycle(buf);
    }

    /// How many drained buffers to keep: enough for the chunks a full receive buffer holds
    /// (a reader that lags by up to [`Config::recv_buffer`] then still allocates nothing),
    /// at least [`RECV_SPARES`] and at most 64; together they hold no more than the larger
    /// of the receive buffer and [`RECV_SPARES`] chunks.
    pub(super) fn recv_spares(&self) -> usize {
        let per_chunk = usize::from(self.block_size).max(1);
        (self.config.recv_buffer / per_chunk).clamp(RECV_SPARES, 64)
    }

    /// Keeps a drained receive buffer for the next chunk, if there is room for it.
    pub(super) fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.recv_spare.len() < self.recv_spares()
            && buf.capacity() <= usize::from(self.block_size)
            && !matches!(self.state, State::Closed)
        {
            buf.clear();
            self.recv_spare.push(buf);
        }
    }

    pub(super) fn release_acks(&mut self) {
        while self.recv_len <= self.config.recv_buffer {
            let Some(id) = self.deferred_acks.pop_front() else {
                break;
            };
            self.transmit.push_back(iq_result(&self.peer, id));
        }
    }

    /// Offers an inbound stanza; hands it back unchanged if it is not for this session.
    pub fn handle_stanza(&mut self, now: Instant, stanza: Stanza) -> ControlFlow<(), Stanza> {
        self.handle_inbound(now, stanza, None)
    }

    /// Both of the above: `decoded` is the stanza's chunk if it was decoded ahead.
    fn handle_inbound(
        &mut self,
        now: Instant,
        stanza: Stanza,
        decoded: Option<Decoded>,
    ) -> ControlFlow<(), Stanza> {
        self.now = now;
        match stanza {
            Stanza::Iq(iq) => self.handle_iq(iq, decoded),
            Stanza::Message(m) => self.handle_message(m, decoded),
            other => ControlFlow::Continue(other),
        }
    }

    pub(super) fn is_from_peer(&self, from: Option<&Jid>) -> bool {
        from == Some(&self.peer)
    }

    pub(super) fn handle_iq(
        &mut self,
        iq: Iq,
        decoded: Option<Decoded>,
    ) -> ControlFlow<(), Stanza> {
        match iq {
            Iq::Result {
                ref from, ref id, ..
            } if self.is_from_peer(from.as_ref()) && self.owns_id(id) => {
                let id = id.clone();
                self.on_response(&id, None);
                ControlFlow::Break(())
            }
            Iq::Error {
                ref from,
                ref id,
                ref error,
                ..
            } if self.is_from_peer(from.as_ref()) && self.owns_id(id) => {
                let (id, error) = (id.clone(), error.clone());
                self.on_response(&id, Some(error));
                ControlFlow::Break(())
            }
            Iq::Set {
                ref from,
                ref id,
                ref payload,
                ..
            } if self.is_from_peer(from.as_ref())
                && payload.has_ns(NS_IBB)
                && payload.attr("sid") == Some(self.sid.as_str()) =>
            {
                let id = id.clone();
                self.on_request(Some(id), payload, decoded);
                ControlFlow::Break(())
            }
            other => ControlFlow::Continue(Stanza::Iq(other)),
        }
    }

    pub(super) fn handle_message(
        &mut self,
        m: Message,
        decoded: Option<Decoded>,
    ) -> ControlFlow<(), Stanza> {
        if !self.is_from_peer(m.from.as_ref()) || m.type_ == MessageType::Error {
            return ControlFlow::Continue(Stanza::Message(m));
        }
        let Some(elem) = m
            .payloads
            .iter()
            .find(|p| p.is("data", NS_IBB) && p.attr("sid") == Some(self.sid.as_str()))
        else {
            return ControlFlow::Continue(Stanza::Message(m));
        };
        if let Err(e) = self.on_data(elem, decoded) {
            self.transmit
                .push_back(Stanza::Message(message_error(&m, StanzaError::from(&e))));
            if !matches!(e, ProtocolError::UnknownSession) {
                self.fail(Error::Protocol(e));
            }
        }
        ControlFlow::Break(())
    }

    pub(super) fn owns_id(&self, id: &str) -> bool {
        match &self.state {
            State::Opening { id: open_id, .. } if open_id == id => return true,
            State::Closing {
                close_id: Some(c), ..
            } if c == id => return true,
            _ => {}
        }
        self.in_flight.iter().any(|f| f.id == id)
    }

    pub(super) fn on_request(
        &mut self,
        id: Option<String>,
        payload: &Element,
        decoded: Option<Decoded>,
    ) {
        self.last_activity = self.now;
        let id = id.unwrap_or_default();
        let reply_err = |s: &Self, e: &ProtocolError| {
            iq_error(Some(s.peer.clone()), id.clone(), StanzaError::from(e))
        };
        match payload.name() {
            "open" => {
                let e = ProtocolError::DuplicateSid;
                self.transmit.push_back(reply_err(self, &e));
            }
            // A sender that respects our acknowledgements stalls once they are held back;
            // one that goes on past the bound is refused before its chunk is even decoded.
            "data" if self.deferred_acks.len() >= self.config.max_queued_blocks => {
                let e = ProtocolError::TooManyUnacknowledged(self.deferred_acks.len());
                self.transmit.push_back(reply_err(self, &e));
                self.fail(Error::Protocol(e));
            }
            "data" => match self.on_data(payload, decoded) {
                Ok(true) => self.transmit.push_back(iq_result(&self.peer, id)),
                Ok(false) => self.deferred_acks.push_back(id),
                Err(e) => {
                    self.transmit.push_back(reply_err(self, &e));
                    if !matches!(e, ProtocolError::UnknownSession) {
                        self.fail(Error::Protocol(e));
                    }
                }
            },
            "close" => self.on_peer_close(id),
            _ => {
                let e = ProtocolError::Malformed(PayloadError::UnknownElement(
                    payload.name().to_owned(),
                ));
                self.transmit.push_back(reply_err(self, &e));
            }
        }
    }

    pub(super) fn on_peer_close(&mut self, id: String) {
        match self.state {
            State::Closed | State::Opening { .. } => {
                let e = ProtocolError::UnknownSession;
                self.transmit.push_back(iq_error(
                    Some(self.peer.clone()),
                    id,
                    StanzaError::from(&e),
                ));
                if matches!(self.state, State::Opening { .. }) {
                    self.finish(Some(Error::ClosedByPeer));
                }
            }
            State::Closing {
                close_id: Some(_), ..
            } => {
                // Both closed at once: answer, and our own close's answer ends it.
                self.peer_closed = true;
                self.events.push_back(Event::PeerClosed);
                self.transmit.push_back(iq_result(&self.peer, id));
            }
            State::Open | State::Closing { close_id: None, .. } => {
                self.peer_closed = true;
                self.events.push_back(Event::PeerClosed);
                // After a close either party stops sending (XEP-0047 §2.3): what is not sent
                // yet is dropped (and the writer told, see `write_error`); chunks already in
                // flight are still answered, so the close is answered once they are.
                let unsent = self.send_buf.len() - self.send_inflight_bytes;
                if unsent > 0 {
                    self.discarded = true;
                    self.send_buf.truncate(self.send_inflight_bytes);
                    self.flush_requested = false;
                    self.events.push_back(Event::Writable);
                }
                self.peer_close = Some((id, later(self.now, self.config.close_timeout)));
                self.progress_close();
            }
        }
    }

    /// Takes one chunk (`decoded`: its text decoded ahead, if it was): `Ok(true)` to
    /// acknowledge now, `Ok(false)` to defer the ack.
    pub(super) fn on_data(
        &mut self,
        elem: &Element,
        decoded: Option<Decoded>,
    ) -> Result<bool, ProtocolError> {
        let receiving = match self.state {
            State::Open | State::Closing { .. } => {
                !self.peer_closed && !self.cancelled && self.error.is_none()
            }
            _ => false,
        };
        if !receiving {
            return Err(ProtocolError::UnknownSession);
        }
        self.last_activity = self.now;
        let (seq, _) = Data::parse_header(elem).map_err(ProtocolError::Malformed)?;
        if seq != self.recv_seq {
            return Err(ProtocolError::UnexpectedSeq {
                expected: self.recv_seq,
                got: seq,
            });
        }
        // Text longer than a block of `block_size` bytes can encode to is refused from its
        // length, before anything is decoded or allocated for it (BAD-INPUT A5). XML
        // whitespace, which some senders wrap lines with, does not count.
        let limit = text_limit(self.block_size);
        let text_len = elem.texts().map(str::len).sum::<usize>();
        if text_len > limit {
            let chars = elem
                .texts()
                .flat_map(str::bytes)
                .filter(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
                .count();
            if chars > limit {
                return Err(ProtocolError::ChunkTooLarge {
                    len: chars.div_ceil(4) * 3,
                    block_size: self.block_size,
                });
            }
        }
        let chunk = match decoded {
            // Decoded ahead from this very element (the stanza's only chunk for this sid).
            Some(d) if d.text_len == text_len => d.bytes.map_err(ProtocolError::Malformed)?,
            _ => {
                // Decoded straight into a drained buffer when there is one.
                let mut chunk = self.recv_spare.pop().unwrap_or_default();
                if let Err(e) = decode_text_into(elem, &mut chunk) {
                    self.recycle(chunk);
                    return Err(ProtocolError::Malformed(e));
                }
                chunk
            }
        };
        if chunk.len() > usize::from(self.block_size) {
            return Err(ProtocolError::ChunkTooLarge {
                len: chunk.len(),
                block_size: self.block_size,
            });
        }
        self.recv_seq = seq.wrapping_add(1);
        if chunk.is_empty() {
            self.recycle(chunk);
        } else {
            self.recv_len += chunk.len();
            self.recv_chunks.push_back(chunk);
            self.events.push_back(Event::Readable);
        }
        if self.recv_len > self.config.message_overrun
            || (self.kind == StanzaKind::Message
                && self.recv_chunks.len() > self.config.max_queued_blocks)
        {
            return Err(ProtocolError::ReceiveBufferOverflow(self.recv_len));
        }
        Ok(self.recv_len <= self.config.recv_buffer && self.deferred_acks.is_empty())
    }

    /// Received chunks not yet fully read (see [`Config::max_queued_blocks`]).
    pub fn queued_chunks(&self) -> usize {
        self.recv_chunks.len()
    }

    /// Chunks received over iq whose acknowledgement is held back until the reader
    /// catches up (at most [`Config::max_queued_blocks`]).
    pub fn unacknowledged(&self) -> usize {
        self.deferred_acks.len()
    }
}
