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
//! A caller that guards the session with a lock can decode an inbound chunk before taking
//! it: [`decode_ahead`] outside, then [`Session::handle_stanza_decoded`] inside. The answers
//! are the same; only the decoding (the longest step by far for a 64 KiB chunk) moves out.
//!
//! # States
//!
//! ```text
//!  initiator                          responder
//!  new_initiator()                    accept(IncomingOpen)
//!      |  --> <open/>                     |  --> result
//!      v                                  |
//!  Opening --error resource-constraint--> Opening (power of two below, >= floor)
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
//!   [`Config::max_in_flight`] (and no more than [`Config::max_in_flight_bytes`] bytes are
//!   in flight), and halves on a `wait` error, after which the refused chunk
//!   is resent (same seq) after [`Config::retry_delay`]. Written bytes stay in the send
//!   buffer until acknowledged, so a retry re-encodes them without a second copy.
//!   A chunk shorter than the chunk size is only sent when nothing is in flight or the
//!   writer flushed or closed, so small writes still fill chunks.
//! * Chunk size: the block-size is a maximum (XEP-0047 §2.2). With
//!   [`Config::adaptive_chunks`] (default) an iq sender starts at 4096 bytes and searches
//!   once, up to the block-size, for the size whose acknowledgements come back fastest
//!   ([`sizer`]); the block-size itself otherwise.
//! * The receiver acknowledges a chunk once it is queued for the reader, and stops
//!   acknowledging while more than [`Config::recv_buffer`] bytes wait to be read; the
//!   sender's window then stalls. A sender that goes on regardless is answered
//!   `cancel/resource-constraint` once [`Config::max_queued_blocks`] chunks are held
//!   unacknowledged, and the session is closed ([`ProtocolError::TooManyUnacknowledged`]).
//!   Memory per session is bounded by the send buffer, the window times the block-size,
//!   and the receive buffer plus that many chunks.
//! * message mode: no acknowledgements exist. Chunks are produced one per
//!   `poll_transmit`, so a driver that awaits each send is paced by the transport;
//!   [`Config::message_rate`] adds a token bucket. The receiver cannot stall the sender:
//!   past [`Config::max_queued_blocks`] unread chunks or [`Config::message_overrun`]
//!   buffered bytes it closes the session with [`ProtocolError::ReceiveBufferOverflow`]
//!   (the tokio driver's `Ibb::ready` keeps a pump below both).
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

mod open;
mod recv;
mod send;
pub mod sizer;

pub use open::{IncomingOpen, reply_unknown_session, stanza_payload, stanza_sid};
pub use recv::{Decoded, decode_ahead};
pub use sizer::ChunkSizer;

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
    /// Everything we wrote went out (over iq: every chunk acknowledged), but the peer did
    /// not answer our `<close/>` within [`Config::close_grace`](crate::Config::close_grace).
    /// [`Event::Closed`] follows: the session ends cleanly anyway.
    CloseUnanswered,
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
    /// The [`ChunkSizer::phase`] it was sent in.
    phase: u32,
    acked: bool,
    deadline: Instant,
    retry_at: Option<Instant>,
    retries: u32,
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
    /// The chunk-size search (iq mode with [`Config::adaptive_chunks`], block-size above
    /// [`sizer::START`]); created when the session opens.
    sizer: Option<ChunkSizer>,
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
    /// Our close went unanswered after everything had gone out ([`Event::CloseUnanswered`]).
    close_unanswered: bool,
    /// The peer answered our close with an error ([`Session::close_refused`]).
    close_refused: Option<StanzaError>,
    /// What the application said about the peer's close when its answer is held
    /// ([`Config::hold_close_answer`]): `None` until [`Session::answer_close`], `close`,
    /// `cancel` or a failure.
    close_verdict: Option<Result<(), StanzaError>>,
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
            sizer: None,
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
            close_unanswered: false,
            close_refused: None,
            close_verdict: None,
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
        s.start_sizer();
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

    /// The size of the next new chunk this side sends: the block-size, or with
    /// [`Config::adaptive_chunks`] the size the [`ChunkSizer`] chose so far (iq) or at most
    /// [`sizer::START`] (message, which has no acknowledgements to measure).
    pub fn chunk_size(&self) -> u16 {
        if !self.config.adaptive_chunks {
            return self.block_size;
        }
        match (self.kind, &self.sizer) {
            (StanzaKind::Message, _) => self.block_size.min(sizer::START),
            (StanzaKind::Iq, Some(s)) => s.chunk_size().min(self.block_size),
            (StanzaKind::Iq, None) => self.block_size,
        }
    }

    /// The chunk-size search, when one runs (see [`Session::chunk_size`]).
    pub fn sizer(&self) -> Option<&ChunkSizer> {
        self.sizer.as_ref()
    }

    /// Starts the chunk-size search once the block-size is known.
    fn start_sizer(&mut self) {
        if self.config.adaptive_chunks && self.kind == StanzaKind::Iq {
            self.sizer = ChunkSizer::new(self.block_size, u32::from(self.config.max_in_flight));
        }
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
            let answer = self.close_answer(id);
            self.transmit.push_back(answer);
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
                } else if close_id.is_some() && self.is_flushed() {
                    // Every byte went out (and over iq was acknowledged); only the answer
                    // to our close is missing (libpurple never sends it).
                    self.close_unanswered = true;
                    self.events.push_back(Event::CloseUnanswered);
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

//END
