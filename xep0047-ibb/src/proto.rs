//! The sans-IO IBB session: one sid with one peer, either role, both directions.
//!
//! # Run loop
//!
//! A [`Session`] never touches a clock, socket or runtime. The caller:
//!
//! 1. feeds every inbound stanza to [`Session::handle_stanza`] (it hands back what is not
//!    its own, so several sessions and other handlers chain) and calls
//!    [`Session::handle_timeout`] when the instant from [`Session::poll_timeout`] passes;
//! 2. issues user commands: [`Session::send`], [`Session::flush`], [`Session::close`]
//!    (flushing) or [`Session::cancel`] (aborting),
//!    [`Session::read`];
//! 3. after any of the above, calls [`Session::poll_transmit`] until it returns `None`
//!    (sending each stanza, in order), then [`Session::poll_timeout`], then drains
//!    [`Session::poll_event`].
//!
//! Commands use the time of the latest `handle_*` call (or of construction).
//!
//! # States
//!
//! ```text
//!  initiator                          responder
//!  new_initiator()                    accept(IncomingOpen)
//!      |  --> <open/>                     |  --> result
//!      v                                  |
//!  Opening --error resource-constraint--> Opening (block-size / 2, >= floor)
//!      |  \--other error / timeout--> Closed(err)
//!      | <-- result                       |
//!      v                                  v
//!      +--------------> Open <------------+     data both ways, seq per direction
//!                      /    \
//!        close()      /      \   <-- <close/> from peer (reader EOF)
//!   flush, wait acks /        \  flush our data, wait acks
//!   --> <close/>    v          v --> result
//!               Closing      Closed
//!                  | <-- result / error / timeout
//!                  v
//!               Closed
//! ```
//!
//! A violation by the peer (seq gap or replay, bad base64, oversized chunk) is answered
//! with the XEP's stanza error, the session sends `<close/>` and goes through `Closing`
//! to `Closed`, and the error is kept for the reader ([`Session::read`]) and reported as
//! [`Event::Failed`]; no data after the violation is used.
//!
//! # Flow control
//!
//! * iq mode: at most `window` chunks are unacknowledged; the window starts at
//!   [`Config::initial_window`], grows by one per acknowledgement up to
//!   [`Config::max_in_flight`], and halves on a `wait` error, after which the refused chunk
//!   is resent (same seq) after [`Config::retry_delay`]. Written bytes stay in the send
//!   buffer until acknowledged, so a retry re-encodes them without a second copy.
//!   A chunk shorter than the block-size is only sent when nothing is in flight or the
//!   writer flushed or closed, so small writes still fill chunks.
//! * The receiver stops acknowledging while more than [`Config::recv_buffer`] bytes wait
//!   to be read; the sender's window then stalls. Memory per session is bounded by the
//!   send buffer, the window times the block-size, and the receive buffer.
//! * message mode: no acknowledgements exist. Chunks are produced one per
//!   `poll_transmit`, so a driver that awaits each send is paced by the transport;
//!   [`Config::message_rate`] adds a token bucket. The receiver cannot stall the sender:
//!   past [`Config::message_overrun`] buffered bytes it closes the session with
//!   [`ProtocolError::ReceiveBufferOverflow`].
//!
//! Known limitation: with a window above 1, a `wait` error for one chunk while later ones
//! were delivered makes the receiver see a gap; it then closes with `unexpected-request`,
//! which this side reports as [`Error::Rejected`].

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use jid::Jid;
use minidom::Element;
use xmpp_parsers::{
    iq::Iq,
    message::{Id as MessageId, Message, MessageType},
    stanza::Stanza,
    stanza_error::{DefinedCondition, ErrorType, StanzaError},
};

use crate::config::{Config, OpenOptions};
use crate::error::{Error, MisuseError, PayloadError, ProtocolError, TimeoutKind};
use crate::payload::{Close, Data, NS_IBB, Open, Payload, Sid, StanzaKind, decode_text_into};

/// The fewest drained receive buffers a session keeps for the next chunks, so that a steady
/// transfer decodes every chunk into memory it already has instead of allocating.
const RECV_SPARES: usize = 4;

/// Which side opened the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sent `<open/>`.
    Initiator,
    /// Accepted `<open/>`.
    Responder,
}

/// What the application hears from a session.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// The peer accepted our `<open/>` with this block-size (after any halving retries).
    Opened {
        /// The negotiated block-size.
        block_size: u16,
    },
    /// New bytes can be read.
    Readable,
    /// Send-buffer space was freed.
    Writable,
    /// The peer sent `<close/>`: the reader reaches end of file after the buffered bytes.
    PeerClosed,
    /// The session ended cleanly (our close answered, or the peer's close answered).
    Closed,
    /// The session ended with an error.
    Failed(Error),
}

#[derive(Debug)]
enum State {
    Opening {
        id: String,
        deadline: Instant,
        requested: u16,
    },
    Open,
    /// `close_id` is `None` while flushing, `Some` once `<close/>` is sent.
    Closing {
        close_id: Option<String>,
        deadline: Instant,
    },
    Closed,
}

#[derive(Debug)]
struct InFlight {
    id: String,
    seq: u16,
    /// Absolute stream offset of the chunk's first byte.
    start: u64,
    len: usize,
    acked: bool,
    deadline: Instant,
    retry_at: Option<Instant>,
    retries: u32,
}

/// An incoming `<open/>` not yet accepted or rejected.
#[derive(Debug, Clone)]
pub struct IncomingOpen {
    /// Who sent it.
    pub peer: Jid,
    /// The iq id to answer.
    pub id: String,
    /// What it asks for.
    pub open: Open,
}

impl IncomingOpen {
    /// Recognises an `<iq type='set'><open/></iq>`: `None` if the stanza is something else,
    /// `Some(Err(reply))` if it is a malformed open (the reply is `modify/bad-request`).
    pub fn parse(stanza: &Stanza) -> Option<Result<Self, Stanza>> {
        let Stanza::Iq(Iq::Set {
            from, id, payload, ..
        }) = stanza
        else {
            return None;
        };
        if !payload.is("open", NS_IBB) {
            return None;
        }
        let peer = from.clone()?;
        Some(match Open::parse(payload) {
            Ok(open) => Ok(Self {
                peer,
                id: id.clone(),
                open,
            }),
            Err(_) => Err(iq_error(
                Some(peer),
                id.clone(),
                err(ErrorType::Modify, DefinedCondition::BadRequest),
            )),
        })
    }

    /// Checks the open against the local limit: above [`Config::max_block_size`] it is
    /// [`ProtocolError::BlockSizeTooLarge`] (`modify/resource-constraint`).
    pub fn check(&self, config: &Config) -> Result<(), ProtocolError> {
        if self.open.block_size > config.max_block_size {
            return Err(ProtocolError::BlockSizeTooLarge {
                requested: self.open.block_size,
                limit: config.max_block_size,
            });
        }
        Ok(())
    }

    /// The error answer to this open.
    pub fn reject(&self, error: StanzaError) -> Stanza {
        iq_error(Some(self.peer.clone()), self.id.clone(), error)
    }
}

/// The answer to an IBB `<data/>` or `<close/>` that no session claimed:
/// `cancel/item-not-found` (XEP-0047 §2.2, §2.3). `None` if the stanza is not one.
pub fn reply_unknown_session(stanza: &Stanza) -> Option<Stanza> {
    let e = StanzaError::from(&ProtocolError::UnknownSession);
    match stanza {
        Stanza::Iq(Iq::Set {
            from, id, payload, ..
        }) if payload.has_ns(NS_IBB) && !payload.is("open", NS_IBB) => {
            Some(iq_error(from.clone(), id.clone(), e))
        }
        Stanza::Message(m)
            if m.type_ != MessageType::Error && m.payloads.iter().any(|p| p.is("data", NS_IBB)) =>
        {
            Some(Stanza::Message(message_error(m, e)))
        }
        _ => None,
    }
}

/// The sid of the IBB payload of a stanza, if it has one.
pub fn stanza_sid(stanza: &Stanza) -> Option<Sid> {
    match stanza {
        Stanza::Iq(Iq::Set { payload, .. }) => crate::payload::peek_sid(payload),
        Stanza::Message(m) => m.payloads.iter().find_map(crate::payload::peek_sid),
        _ => None,
    }
}

fn err(t: ErrorType, c: DefinedCondition) -> StanzaError {
    StanzaError::new(t, c, "en", "")
}

fn iq_error(to: Option<Jid>, id: String, error: StanzaError) -> Stanza {
    Stanza::Iq(Iq::Error {
        from: None,
        to,
        id,
        error,
        payload: None,
    })
}

fn message_error(m: &Message, error: StanzaError) -> Message {
    let mut reply = Message::new_with_type(MessageType::Error, m.from.clone());
    reply.id = m.id.clone();
    reply.payloads.push(error.into());
    reply
}

/// One IBB session. See the [module docs](self) for the run loop and the state diagram.
#[derive(Debug)]
pub struct Session {
    config: Config,
    sid: Sid,
    peer: Jid,
    role: Role,
    kind: StanzaKind,
    block_size: u16,
    state: State,
    now: Instant,
    next_id: u64,
    transmit: VecDeque<Stanza>,
    events: VecDeque<Event>,
    error: Option<Error>,
    last_activity: Instant,
    // send side
    /// Written bytes not yet acknowledged (in flight) or not yet sent: a ring, so
    /// acknowledged bytes leave the front without moving the rest.
    send_buf: VecDeque<u8>,
    /// Absolute offset of `send_buf[0]`.
    send_base: u64,
    /// Bytes at the front of `send_buf` that are in flight (sent, not acknowledged).
    send_inflight_bytes: usize,
    send_seq: u16,
    in_flight: VecDeque<InFlight>,
    window: u16,
    flush_requested: bool,
    write_closed: bool,
    tokens: f64,
    tokens_at: Instant,
    // receive side
    recv_chunks: VecDeque<Vec<u8>>,
    /// Drained chunk buffers kept for reuse (see `recv_spares`).
    recv_spare: Vec<Vec<u8>>,
    recv_off: usize,
    recv_len: usize,
    recv_seq: u16,
    deferred_acks: VecDeque<String>,
    peer_closed: bool,
    peer_close: Option<(String, Instant)>,
    /// [`Session::cancel`] was called: nothing more is sent or kept.
    cancelled: bool,
    /// Written bytes were dropped unsent because the peer closed first.
    discarded: bool,
}

impl Session {
    fn base(config: &Config, sid: Sid, peer: Jid, role: Role, now: Instant) -> Self {
        Self {
            config: config.clone(),
            sid,
            peer,
            role,
            kind: StanzaKind::Iq,
            block_size: 0,
            state: State::Closed,
            now,
            next_id: 0,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            error: None,
            last_activity: now,
            send_buf: VecDeque::new(),
            send_base: 0,
            send_inflight_bytes: 0,
            send_seq: 0,
            in_flight: VecDeque::new(),
            window: config.initial_window.clamp(1, config.max_in_flight),
            flush_requested: false,
            write_closed: false,
            tokens: 0.0,
            tokens_at: now,
            recv_chunks: VecDeque::new(),
            recv_spare: Vec::new(),
            recv_off: 0,
            recv_len: 0,
            recv_seq: 0,
            deferred_acks: VecDeque::new(),
            peer_closed: false,
            peer_close: None,
            cancelled: false,
            discarded: false,
        }
    }

    /// Starts a session as initiator: queues `<open/>` to `peer`.
    pub fn new_initiator(
        config: &Config,
        sid: Sid,
        peer: Jid,
        options: OpenOptions,
        now: Instant,
    ) -> Result<Self, Error> {
        if options.block_size == 0 {
            return Err(MisuseError::ZeroBlockSize.into());
        }
        let mut s = Self::base(config, sid, peer, Role::Initiator, now);
        s.kind = options.stanza;
        s.send_open(options.block_size);
        Ok(s)
    }

    /// Accepts an incoming open as responder: queues the iq result. The caller checks
    /// [`IncomingOpen::check`] and duplicate sids first.
    pub fn accept(config: &Config, incoming: &IncomingOpen, now: Instant) -> Self {
        let mut s = Self::base(
            config,
            incoming.open.sid.clone(),
            incoming.peer.clone(),
            Role::Responder,
            now,
        );
        s.kind = incoming.open.stanza;
        s.block_size = incoming.open.block_size;
        s.state = State::Open;
        s.transmit
            .push_back(iq_result(&s.peer, incoming.id.clone()));
        s
    }

    fn fresh_id(&mut self) -> String {
        self.next_id += 1;
        format!("ibb{}-{}", self.next_id, self.sid)
    }

    fn send_open(&mut self, block_size: u16) {
        let id = self.fresh_id();
        let open = Open {
            block_size,
            sid: self.sid.clone(),
            stanza: self.kind,
        };
        self.transmit
            .push_back(iq_set(&self.peer, id.clone(), open.to_element()));
        self.state = State::Opening {
            id,
            deadline: later(self.now, self.config.open_timeout),
            requested: block_size,
        };
    }

    /// The session id.
    pub fn sid(&self) -> &Sid {
        &self.sid
    }

    /// The peer.
    pub fn peer(&self) -> &Jid {
        &self.peer
    }

    /// Which side opened.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The negotiated block-size (0 while opening).
    pub fn block_size(&self) -> u16 {
        self.block_size
    }

    /// Which stanza carries our data.
    pub fn stanza_kind(&self) -> StanzaKind {
        self.kind
    }

    /// The current window (chunks allowed in flight).
    pub fn window(&self) -> u16 {
        self.window
    }

    /// Chunks sent and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether the open has been answered successfully.
    pub fn is_open(&self) -> bool {
        !matches!(self.state, State::Opening { .. }) && self.block_size != 0
    }

    /// Whether the session has ended and has nothing left to transmit.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed) && self.transmit.is_empty()
    }

    /// The error the session ended with, if any.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
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
    pub fn close(&mut self) {
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
            self.transmit.push_back(iq_result(&self.peer, id));
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

    /// The error a writer should see although the session itself ended cleanly:
    /// [`Error::ClosedByPeer`] when the peer's `<close/>` came while written bytes were
    /// still unsent, and those bytes were dropped (XEP-0047 §2.3).
    pub fn write_error(&self) -> Option<Error> {
        self.discarded.then_some(Error::ClosedByPeer)
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

    /// How many drained buffers to keep: enough for the chunks a full receive buffer holds
    /// (a reader that lags by up to [`Config::recv_buffer`] then still allocates nothing),
    /// at least [`RECV_SPARES`] and at most 64; together they hold no more than the larger
    /// of the receive buffer and [`RECV_SPARES`] chunks.
    fn recv_spares(&self) -> usize {
        let per_chunk = usize::from(self.block_size).max(1);
        (self.config.recv_buffer / per_chunk).clamp(RECV_SPARES, 64)
    }

    /// Keeps a drained receive buffer for the next chunk, if there is room for it.
    fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.recv_spare.len() < self.recv_spares()
            && buf.capacity() <= usize::from(self.block_size)
            && !matches!(self.state, State::Closed)
        {
            buf.clear();
            self.recv_spare.push(buf);
        }
    }

    fn release_acks(&mut self) {
        while self.recv_len <= self.config.recv_buffer {
            let Some(id) = self.deferred_acks.pop_front() else {
                break;
            };
            self.transmit.push_back(iq_result(&self.peer, id));
        }
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

    fn can_send_data(&self) -> bool {
        self.error.is_none()
            && self.block_size != 0
            && match &self.state {
                State::Open => true,
                State::Closing { close_id, .. } => close_id.is_none(),
                _ => false,
            }
    }

    fn next_chunk(&mut self) -> Option<Stanza> {
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
        let len = unsent.min(usize::from(self.block_size));
        let short = len < usize::from(self.block_size);
        match self.kind {
            StanzaKind::Iq => {
                if self.in_flight.len() >= usize::from(self.window) {
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
                    acked: false,
                    deadline: later(now, self.config.ack_timeout),
                    retry_at: None,
                    retries: 0,
                });
                self.send_inflight_bytes += len;
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

    fn refill(&mut self, rate: u64) {
        let dt = self
            .now
            .saturating_duration_since(self.tokens_at)
            .as_secs_f64();
        self.tokens_at = self.now;
        let burst = (rate as f64 / 10.0).max(f64::from(self.block_size));
        self.tokens = (self.tokens + dt * rate as f64).min(burst);
    }

    /// Drops `len` bytes from the front of the send buffer (sent over message, or acked).
    fn consume_sent(&mut self, len: usize) {
        self.send_buf.drain(..len);
        self.send_base += len as u64;
        self.events.push_back(Event::Writable);
    }

    fn progress_close(&mut self) {
        if !self.is_flushed() {
            return;
        }
        if let Some((id, _)) = self.peer_close.take() {
            self.transmit.push_back(iq_result(&self.peer, id));
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
            let deadline = *deadline;
            self.send_close(deadline);
        }
    }

    /// Queues our `<close/>` and waits for its answer until `deadline`.
    fn send_close(&mut self, deadline: Instant) {
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

    fn finish(&mut self, error: Option<Error>) {
        if matches!(self.state, State::Closed) {
            return;
        }
        self.state = State::Closed;
        self.in_flight.clear();
        self.send_inflight_bytes = 0;
        self.recv_spare = Vec::new();
        match error {
            Some(e) if self.error.is_none() => {
                self.error = Some(e.clone());
                self.events.push_back(Event::Failed(e));
            }
            Some(_) => {}
            None if self.error.is_none() => self.events.push_back(Event::Closed),
            None => {}
        }
    }

    /// Fails the session: keeps the error, drops unsent data, sends `<close/>` (unless
    /// opening) and waits for its answer.
    fn fail(&mut self, e: Error) {
        if self.error.is_none() {
            self.error = Some(e.clone());
            self.events.push_back(Event::Failed(e));
        }
        self.in_flight.clear();
        self.send_inflight_bytes = 0;
        self.send_buf.clear();
        self.write_closed = true;
        self.deferred_acks.clear();
        if let Some((id, _)) = self.peer_close.take() {
            self.transmit.push_back(iq_result(&self.peer, id));
            self.state = State::Closed;
            return;
        }
        match self.state {
            State::Open | State::Closing { close_id: None, .. } => {
                self.send_close(later(self.now, self.config.close_timeout));
            }
            State::Opening { .. } => self.state = State::Closed,
            State::Closing { .. } | State::Closed => {}
        }
    }

    /// When [`Session::handle_timeout`] should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut at = |x: Instant| t = Some(t.map_or(x, |t| t.min(x)));
        match &self.state {
            State::Opening { deadline, .. } | State::Closing { deadline, .. } => at(*deadline),
            State::Open => {}
            State::Closed => return None,
        }
        for f in &self.in_flight {
            at(f.retry_at.unwrap_or(f.deadline));
        }
        if let Some((_, d)) = &self.peer_close {
            at(*d);
        }
        if let (Some(idle), State::Open) = (self.config.idle_timeout, &self.state) {
            at(later(self.last_activity, idle));
        }
        if let (StanzaKind::Message, Some(rate)) = (self.kind, self.config.message_rate) {
            let unsent = self.send_buf.len() - self.send_inflight_bytes;
            if unsent > 0 && self.can_send_data() {
                let need = (unsent.min(usize::from(self.block_size)) as f64 - self.tokens).max(0.0);
                at(self.tokens_at + Duration::from_secs_f64(need / rate as f64));
            }
        }
        t
    }

    /// Advances time: expires waits, makes due retries sendable.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        match &self.state {
            State::Opening { deadline, .. } if *deadline <= now => {
                self.finish(Some(Error::Timeout(TimeoutKind::Open)));
                return;
            }
            State::Closing { deadline, close_id } if *deadline <= now => {
                if close_id.is_some() && (self.error.is_some() || self.cancelled) {
                    self.finish(None);
                } else {
                    self.finish(Some(Error::Timeout(TimeoutKind::Close)));
                }
                return;
            }
            _ => {}
        }
        if self
            .in_flight
            .iter()
            .any(|f| f.retry_at.is_none() && f.deadline <= now)
        {
            self.fail(Error::Timeout(TimeoutKind::Ack));
            return;
        }
        if self.peer_close.as_ref().is_some_and(|(_, d)| *d <= now) {
            self.fail(Error::Timeout(TimeoutKind::Close));
            return;
        }
        if let (Some(idle), State::Open) = (self.config.idle_timeout, &self.state)
            && later(self.last_activity, idle) <= now
            && self.in_flight.is_empty()
        {
            self.fail(Error::Timeout(TimeoutKind::Inactivity));
        }
    }

    /// The next application event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Offers an inbound stanza; hands it back unchanged if it is not for this session.
    pub fn handle_stanza(&mut self, now: Instant, stanza: Stanza) -> ControlFlow<(), Stanza> {
        self.now = now;
        match stanza {
            Stanza::Iq(iq) => self.handle_iq(iq),
            Stanza::Message(m) => self.handle_message(m),
            other => ControlFlow::Continue(other),
        }
    }

    fn is_from_peer(&self, from: Option<&Jid>) -> bool {
        from == Some(&self.peer)
    }

    fn handle_iq(&mut self, iq: Iq) -> ControlFlow<(), Stanza> {
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
                self.on_request(Some(id), payload);
                ControlFlow::Break(())
            }
            other => ControlFlow::Continue(Stanza::Iq(other)),
        }
    }

    fn handle_message(&mut self, m: Message) -> ControlFlow<(), Stanza> {
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
        if let Err(e) = self.on_data(elem) {
            self.transmit
                .push_back(Stanza::Message(message_error(&m, StanzaError::from(&e))));
            if !matches!(e, ProtocolError::UnknownSession) {
                self.fail(Error::Protocol(e));
            }
        }
        ControlFlow::Break(())
    }

    fn owns_id(&self, id: &str) -> bool {
        match &self.state {
            State::Opening { id: open_id, .. } if open_id == id => return true,
            State::Closing {
                close_id: Some(c), ..
            } if c == id => return true,
            _ => {}
        }
        self.in_flight.iter().any(|f| f.id == id)
    }

    fn on_response(&mut self, id: &str, error: Option<StanzaError>) {
        self.last_activity = self.now;
        if let State::Opening { requested, .. } = self.state {
            match error {
                None => {
                    self.block_size = requested;
                    self.state = State::Open;
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
                        && requested / 2 >= self.config.min_block_size =>
                {
                    self.send_open(requested / 2);
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
            // A result or any error (item-not-found included) ends it (XEP-0047 §2.3).
            self.finish(None);
            return;
        }
        let Some(i) = self.in_flight.iter().position(|f| f.id == id) else {
            return;
        };
        match error {
            None => {
                self.in_flight[i].acked = true;
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

    fn on_request(&mut self, id: Option<String>, payload: &Element) {
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
            "data" => match self.on_data(payload) {
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

    fn on_peer_close(&mut self, id: String) {
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

    /// Takes one chunk: `Ok(true)` to acknowledge now, `Ok(false)` to defer the ack.
    fn on_data(&mut self, elem: &Element) -> Result<bool, ProtocolError> {
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
        // Decoded straight into a drained buffer when there is one.
        let mut chunk = self.recv_spare.pop().unwrap_or_default();
        if let Err(e) = decode_text_into(elem, &mut chunk) {
            self.recycle(chunk);
            return Err(ProtocolError::Malformed(e));
        }
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
        if self.recv_len > self.config.message_overrun {
            return Err(ProtocolError::ReceiveBufferOverflow(self.recv_len));
        }
        Ok(self.recv_len <= self.config.recv_buffer && self.deferred_acks.is_empty())
    }
}

/// `t + d`, saturating at about thirty years instead of overflowing (a huge configured
/// timeout means "never").
fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .or_else(|| t.checked_add(Duration::from_secs(30 * 365 * 86_400)))
        .unwrap_or(t)
}

/// `len` bytes at `off` of a ring buffer: borrowed, unless they straddle the wrap point
/// (at most once per lap of the ring), where they are copied.
fn ring_slice(buf: &VecDeque<u8>, off: usize, len: usize) -> std::borrow::Cow<'_, [u8]> {
    let (a, b) = buf.as_slices();
    if off + len <= a.len() {
        std::borrow::Cow::Borrowed(&a[off..off + len])
    } else if off >= a.len() {
        std::borrow::Cow::Borrowed(&b[off - a.len()..off - a.len() + len])
    } else {
        let mut v = Vec::with_capacity(len);
        v.extend_from_slice(&a[off..]);
        v.extend_from_slice(&b[..len - (a.len() - off)]);
        std::borrow::Cow::Owned(v)
    }
}

fn iq_set(to: &Jid, id: String, payload: Element) -> Stanza {
    Stanza::Iq(Iq::Set {
        from: None,
        to: Some(to.clone()),
        id,
        payload,
    })
}

fn iq_result(to: &Jid, id: String) -> Stanza {
    Stanza::Iq(Iq::Result {
        from: None,
        to: Some(to.clone()),
        id,
        payload: None,
    })
}

/// Parses any IBB payload carried by a stanza (for tests and tools).
pub fn stanza_payload(stanza: &Stanza) -> Option<Result<Payload, PayloadError>> {
    let elem = match stanza {
        Stanza::Iq(Iq::Set { payload, .. }) => payload,
        Stanza::Message(m) => m.payloads.iter().find(|p| p.has_ns(NS_IBB))?,
        _ => return None,
    };
    Payload::parse(elem).transpose()
}
