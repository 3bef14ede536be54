//! The sending side of a session: the write buffer, the chunk window (iq acknowledgements,
//! `wait` retries, message pacing) and our `<close/>`.

use super::*;

impl Session {
    /// How many bytes [`Session::send`] would accept now.
    pub fn send_capacity(&self) -> usize {
        if self.write_closed || self.peer_closed || self.error.is_some() {
            return 0;
        }
        if matches!(self.state, State::Closed) {
            return 0;
        }
        let unsent = self.send_buf.len() - self.send_inflight_bytes;
        self.config.send_buffer.saturating_sub(unsent)
    }

    /// Whether everything written has been sent and (over iq) acknowledged.
    pub fn is_flushed(&self) -> bool {
        self.send_buf.is_empty() && self.in_flight.is_empty()
    }

    /// Queues bytes to send; returns how many were taken (0 when the buffer is full).
    pub fn send(&mut self, data: &[u8]) -> Result<usize, Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.peer_closed {
            return Err(Error::ClosedByPeer);
        }
        if self.write_closed || matches!(self.state, State::Closed) {
            return Err(MisuseError::WriteAfterClose.into());
        }
        let n = data.len().min(self.send_capacity());
        self.send_buf.extend(&data[..n]);
        Ok(n)
    }

    /// Asks for buffered bytes to go out even as a chunk shorter than the block-size.
    pub fn flush(&mut self) {
        self.flush_requested = true;
    }

    /// Closes the session: what was written is sent and acknowledged first, then `<close/>`
    /// is sent and its answer awaited (bounded by [`Config::close_timeout`]).
    ///
    /// With the peer's close answer held ([`Config::hold_close_answer`]), closing is
    /// [`Session::answer_close`]`(Ok(()))` unless an answer was given.
    pub fn close(&mut self) {
        if self.close_verdict.is_none() && self.peer_close.is_some() {
            self.close_verdict = Some(Ok(()));
            self.progress_close();
        }
        if self.write_closed {
            return;
        }
        self.write_closed = true;
        match self.state {
            State::Open => {
                self.state = State::Closing {
                    close_id: None,
                    deadline: later(self.now, self.config.close_timeout),
                };
            }
            State::Opening { .. } | State::Closing { .. } | State::Closed => {}
        }
    }

    /// Aborts the session (a user's cancel): buffered unsent data and unacknowledged chunks
    /// are dropped, received unread data too, `<close/>` goes out at once, and its answer
    /// is awaited no longer than [`Config::close_timeout`] (no answer by then is not an
    /// error here: we were leaving anyway). Data the peer sends after this is answered
    /// `item-not-found` and dropped. A pending `<close/>` from the peer is answered at once
    /// instead.
    pub fn cancel(&mut self) {
        if self.cancelled || matches!(self.state, State::Closed) {
            return;
        }
        self.cancelled = true;
        self.write_closed = true;
        self.in_flight.clear();
        self.send_inflight_bytes = 0;
        self.send_buf.clear();
        self.flush_requested = false;
        self.deferred_acks.clear();
        self.recv_chunks.clear();
        self.recv_spare = Vec::new();
        self.recv_off = 0;
        self.recv_len = 0;
        if let Some((id, _)) = self.peer_close.take() {
            let answer = self.close_answer(id);
            self.transmit.push_back(answer);
            self.finish(None);
            return;
        }
        match self.state {
            State::Open | State::Closing { close_id: None, .. } => {
                self.send_close(later(self.now, self.config.close_timeout));
            }
            State::Opening { .. } => self.finish(None),
            State::Closing { .. } | State::Closed => {}
        }
    }

    /// Whether [`Session::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    /// Whether the session ended without an answer to our `<close/>` although everything
    /// we wrote had gone out (over iq: every chunk acknowledged), after
    /// [`Config::close_grace`](crate::Config::close_grace): a clean end with a warning
    /// ([`Event::CloseUnanswered`]).
    pub fn close_unanswered(&self) -> bool {
        self.close_unanswered
    }

    /// The error a writer should see although the session itself ended cleanly:
    /// [`Error::ClosedByPeer`] when the peer's `<close/>` came while written bytes were
    /// still unsent, and those bytes were dropped (XEP-0047 §2.3).
    pub fn write_error(&self) -> Option<Error> {
        self.discarded.then_some(Error::ClosedByPeer)
    }

    /// Whether a control stanza (an answer, an open or a close) is queued for
    /// [`Session::poll_transmit`]. Data chunks are not counted: they become sendable through
    /// [`Session::send`], acknowledgements and timeouts, not through reading.
    pub fn has_queued_transmit(&self) -> bool {
        !self.transmit.is_empty()
    }

    /// The next stanza to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Stanza> {
        if let Some(s) = self.transmit.pop_front() {
            return Some(s);
        }
        if let Some(s) = self.next_chunk() {
            return Some(s);
        }
        self.progress_close();
        self.transmit.pop_front()
    }

    pub(super) fn can_send_data(&self) -> bool {
        self.error.is_none()
            && self.block_size != 0
            && match &self.state {
                State::Open => true,
                State::Closing { close_id, .. } => close_id.is_none(),
                _ => false,
            }
    }

    pub(super) fn next_chunk(&mut self) -> Option<Stanza> {
        if !self.can_send_data() {
            return None;
        }
        // A retry that is due goes first.
        let now = self.now;
        if let Some(i) = self
            .in_flight
            .iter()
            .position(|f| f.retry_at.is_some_and(|t| t <= now))
        {
            let id = self.fresh_id();
            let ack_timeout = self.config.ack_timeout;
            let f = &mut self.in_flight[i];
            f.retry_at = None;
            f.id = id.clone();
            f.deadline = later(now, ack_timeout);
            let (seq, start, len) = (f.seq, f.start, f.len);
            let off = (start - self.send_base) as usize;
            let elem = Data::encode(seq, &self.sid, &ring_slice(&self.send_buf, off, len));
            return Some(iq_set(&self.peer, id, elem));
        }
        let unsent_at = self.send_inflight_bytes;
        let unsent = self.send_buf.len() - unsent_at;
        if unsent == 0 {
            self.flush_requested = false;
            return None;
        }
        let chunk = usize::from(self.chunk_size());
        let len = unsent.min(chunk);
        let short = len < chunk;
        match self.kind {
            StanzaKind::Iq => {
                if self.in_flight.len() >= usize::from(self.window)
                    || (!self.in_flight.is_empty()
                        && self.send_inflight_bytes + len > self.config.max_in_flight_bytes)
                {
                    return None;
                }
                if short
                    && !self.in_flight.is_empty()
                    && !self.flush_requested
                    && !self.write_closed
                {
                    return None;
                }
            }
            StanzaKind::Message => {
                if let Some(rate) = self.config.message_rate {
                    self.refill(rate);
                    if self.tokens < len as f64 {
                        return None;
                    }
                    self.tokens -= len as f64;
                }
            }
        }
        // A writer that found the buffer full waits for `Writable`; the bytes of this chunk
        // stop counting against the buffer once in flight, so tell it now rather than at
        // the next acknowledgement (which left it idle for a round trip per buffer-full).
        let was_full = self.send_capacity() == 0;
        let seq = self.send_seq;
        self.send_seq = seq.wrapping_add(1);
        let elem = Data::encode(seq, &self.sid, &ring_slice(&self.send_buf, unsent_at, len));
        let id = self.fresh_id();
        self.last_activity = now;
        match self.kind {
            StanzaKind::Iq => {
                self.in_flight.push_back(InFlight {
                    id: id.clone(),
                    seq,
                    start: self.send_base + self.send_inflight_bytes as u64,
                    len,
                    phase: self.sizer.as_ref().map_or(0, ChunkSizer::phase),
                    acked: false,
                    deadline: later(now, self.config.ack_timeout),
                    retry_at: None,
                    retries: 0,
                });
                self.send_inflight_bytes += len;
                if was_full {
                    self.events.push_back(Event::Writable);
                }
                Some(iq_set(&self.peer, id, elem))
            }
            StanzaKind::Message => {
                self.consume_sent(len);
                let mut m = Message::new_with_type(MessageType::Normal, Some(self.peer.clone()));
                m.id = Some(MessageId(id));
                m.payloads.push(elem);
                Some(Stanza::Message(m))
            }
        }
    }

    pub(super) fn refill(&mut self, rate: u64) {
        let dt = self
            .now
            .saturating_duration_since(self.tokens_at)
            .as_secs_f64();
        self.tokens_at = self.now;
        let burst = (rate as f64 / 10.0).max(f64::from(self.block_size));
        self.tokens = (self.tokens + dt * rate as f64).min(burst);
    }

    /// Drops `len` bytes from the front of the send buffer (sent over message, or acked).
    pub(super) fn consume_sent(&mut self, len: usize) {
        self.send_buf.drain(..len);
        self.send_base += len as u64;
        self.events.push_back(Event::Writable);
    }

    pub(super) fn progress_close(&mut self) {
        if !self.is_flushed() {
            return;
        }
        if self.peer_close.is_some() && self.close_answer_held() {
            return;
        }
        if let Some((id, _)) = self.peer_close.take() {
            let answer = self.close_answer(id);
            self.transmit.push_back(answer);
            if !matches!(
                self.state,
                State::Closing {
                    close_id: Some(_),
                    ..
                }
            ) {
                self.finish(None);
            }
            return;
        }
        if let State::Closing { close_id, deadline } = &self.state
            && close_id.is_none()
        {
            // Everything is out (and over iq acknowledged): the close's answer is the last
            // thing we wait for, and only for the grace (a peer that never answers it still
            // has every byte).
            let deadline = (*deadline).min(later(self.now, self.config.close_grace));
            self.send_close(deadline);
        }
    }

    /// Queues our `<close/>` and waits for its answer until `deadline`.
    pub(super) fn send_close(&mut self, deadline: Instant) {
        let id = self.fresh_id();
        let close = Close {
            sid: self.sid.clone(),
        };
        self.transmit
            .push_back(iq_set(&self.peer, id.clone(), close.to_element()));
        self.state = State::Closing {
            close_id: Some(id),
            deadline,
        };
    }

    pub(super) fn on_response(&mut self, id: &str, error: Option<StanzaError>) {
        self.last_activity = self.now;
        if let State::Opening { requested, .. } = self.state {
            match error {
                None => {
                    self.block_size = requested;
                    self.state = State::Open;
                    self.start_sizer();
                    self.events.push_back(Event::Opened {
                        block_size: requested,
                    });
                    if self.write_closed {
                        self.state = State::Closing {
                            close_id: None,
                            deadline: later(self.now, self.config.close_timeout),
                        };
                    }
                }
                Some(e)
                    if e.defined_condition == DefinedCondition::ResourceConstraint
                        && smaller_block(requested) >= self.config.min_block_size =>
                {
                    self.send_open(smaller_block(requested));
                }
                Some(e) => self.finish(Some(Error::Rejected(Box::new(e)))),
            }
            return;
        }
        if let State::Closing {
            close_id: Some(c), ..
        } = &self.state
            && c == id
        {
            // A result or any error ends it (XEP-0047 §2.3). An error other than
            // item-not-found (the peer had already forgotten the session) is the receiver
            // saying it did not keep what we sent ([`Session::close_refused`]).
            if let Some(e) = error
                && e.defined_condition != DefinedCondition::ItemNotFound
            {
                self.close_refused = Some(e);
            }
            self.finish(None);
            return;
        }
        let Some(i) = self.in_flight.iter().position(|f| f.id == id) else {
            return;
        };
        match error {
            None => {
                self.in_flight[i].acked = true;
                if let Some(sizer) = &mut self.sizer {
                    let f = &self.in_flight[i];
                    sizer.on_ack(f.phase, f.len, self.now);
                }
                while self.in_flight.front().is_some_and(|f| f.acked) {
                    if let Some(f) = self.in_flight.pop_front() {
                        self.send_inflight_bytes -= f.len;
                        self.consume_sent(f.len);
                    }
                }
                self.window = (self.window + 1).min(self.config.max_in_flight);
            }
            Some(e) if e.type_ == ErrorType::Wait => {
                self.window = (self.window / 2).max(1);
                let f = &mut self.in_flight[i];
                f.retries += 1;
                if f.retries > self.config.max_retries {
                    self.fail(Error::Rejected(Box::new(e)));
                    return;
                }
                let delay = self.config.retry_delay * 2u32.saturating_pow(f.retries - 1);
                f.retry_at = Some(later(self.now, delay));
            }
            Some(e) => self.fail(Error::Rejected(Box::new(e))),
        }
    }
}

/// The block-size to retry an open with after `resource-constraint`: the power of two below
/// `requested` (65535 -> 32768 -> ... -> 4096, the sizes peers cap at: QXmpp 4096,
/// slixmpp 8192), which is half of it when it is one.
pub(super) fn smaller_block(requested: u16) -> u16 {
    if requested.is_power_of_two() {
        requested / 2
    } else {
        1 << (15 - requested.leading_zeros())
    }
}

impl Session {
    /// Answers the peer's `<close/>` when [`Config::hold_close_answer`] holds it: `Ok` with
    /// a result, `Err` with that stanza error (e.g. `not-acceptable` for a file found
    /// wrong), which the sending side can read as "not kept"
    /// ([`Session::close_refused`]). Given before the close arrives, it is kept for it.
    /// Once given it cannot be changed. Without the hold (the default), the close is
    /// answered by the session itself and this does nothing.
    pub fn answer_close(&mut self, verdict: Result<(), StanzaError>) {
        if !self.holds_close_answer() || self.close_verdict.is_some() {
            return;
        }
        self.close_verdict = Some(verdict);
        self.progress_close();
    }

    /// Whether this session holds its answer to the peer's close for
    /// [`Session::answer_close`]: a responder with [`Config::hold_close_answer`] on.
    pub fn holds_close_answer(&self) -> bool {
        self.config.hold_close_answer && self.role == Role::Responder
    }

    /// The error the peer answered our `<close/>` with, other than `item-not-found`: the
    /// receiver did not keep what it was sent (for a peer holding its answer, see
    /// [`Session::answer_close`]). `None` for a result, no answer, or `item-not-found`.
    pub fn close_refused(&self) -> Option<&StanzaError> {
        self.close_refused.as_ref()
    }

    /// The peer's close is waiting for the application's verdict.
    pub(super) fn close_answer_held(&self) -> bool {
        self.holds_close_answer() && self.close_verdict.is_none()
    }

    /// The answer to the peer's close `id`: the application's verdict, a result otherwise.
    pub(super) fn close_answer(&self, id: String) -> Stanza {
        match &self.close_verdict {
            Some(Err(e)) => iq_error(Some(self.peer.clone()), id, e.clone()),
            _ => iq_result(&self.peer, id),
        }
    }
}
