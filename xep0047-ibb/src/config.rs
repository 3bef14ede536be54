//! Session settings.

use std::time::Duration;

use crate::payload::{MAX_BLOCK_SIZE, StanzaKind};

/// The block size an initiator proposes unless told otherwise, in bytes before base64: the
/// one default of every xft crate and tool (`OpenOptions`, the facade, `xft`, its demo).
///
/// 65535, the XEP's maximum, as a ceiling: XEP-0047 §2.2 lets chunks be smaller than the
/// block-size, and with [`Config::adaptive_chunks`] (the default) the sender picks the chunk
/// size between 4096 and the negotiated block-size from the acknowledgement rate
/// ([`ChunkSizer`](crate::proto::ChunkSizer)): the fastest size depends on the path (through
/// a Prosody with its default 4096-byte reads 4096 is best, through one reading 64 KiB
/// 65535 is, by 2.5x and 2x). A peer that caps the block-size answers
/// `resource-constraint` and the open is retried at the next power of two below
/// (QXmpp takes 4096 after four retries, slixmpp 8192 after three: one round trip each).
/// A block size the user gives is used as it is, for every chunk (the facade's
/// `Config::block_size`, `xft --block-size`).
pub const DEFAULT_BLOCK_SIZE: u16 = 65535;

/// Settings shared by every session of one endpoint. `Default` gives the documented values.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) max_block_size: u16,
    pub(crate) min_block_size: u16,
    pub(crate) initial_window: u16,
    pub(crate) max_in_flight: u16,
    pub(crate) max_in_flight_bytes: usize,
    pub(crate) send_buffer: usize,
    pub(crate) recv_buffer: usize,
    pub(crate) message_overrun: usize,
    pub(crate) open_timeout: Duration,
    pub(crate) ack_timeout: Duration,
    pub(crate) close_timeout: Duration,
    pub(crate) close_grace: Duration,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) retry_delay: Duration,
    pub(crate) max_retries: u32,
    pub(crate) message_rate: Option<u64>,
    pub(crate) max_pending_incoming: usize,
    pub(crate) max_queued_blocks: usize,
    pub(crate) adaptive_chunks: bool,
    pub(crate) hold_close_answer: bool,
    pub(crate) stalled_reader: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_block_size: MAX_BLOCK_SIZE,
            min_block_size: 512,
            initial_window: 4,
            max_in_flight: 32,
            max_in_flight_bytes: 512 * 1024,
            send_buffer: 256 * 1024,
            recv_buffer: 1024 * 1024,
            message_overrun: 16 * 1024 * 1024,
            open_timeout: Duration::from_secs(30),
            ack_timeout: Duration::from_secs(60),
            close_timeout: Duration::from_secs(30),
            close_grace: Duration::from_secs(3),
            idle_timeout: Some(Duration::from_secs(300)),
            retry_delay: Duration::from_millis(500),
            max_retries: 5,
            message_rate: None,
            max_pending_incoming: 16,
            max_queued_blocks: 64,
            adaptive_chunks: true,
            hold_close_answer: false,
            stalled_reader: Duration::from_secs(2),
        }
    }
}

impl Config {
    /// Largest block-size this side accepts in an incoming `<open/>`; above it the open is
    /// answered `modify/resource-constraint` so the initiator can retry smaller.
    /// Default 65535, the XEP's maximum: an 87 kB stanza fits Prosody's 256 KiB limit.
    pub fn max_block_size(&mut self, v: u16) -> &mut Self {
        self.max_block_size = v.max(1);
        self
    }

    /// The floor for the initiator's halving retry after `resource-constraint`. Default 512:
    /// below that the per-stanza overhead (about 200 bytes of XML) dominates.
    pub fn min_block_size(&mut self, v: u16) -> &mut Self {
        self.min_block_size = v.max(1);
        self
    }

    /// The window an iq-mode sender starts with. It grows by one per acknowledgement up to
    /// [`Config::max_in_flight`] and halves on a `wait` error. Default 4.
    pub fn initial_window(&mut self, v: u16) -> &mut Self {
        self.initial_window = v.max(1);
        self
    }

    /// The most iq chunks outstanding at once (1 = the XEP's lockstep). Default 32, chosen
    /// through a real server: with Prosody 0.12 on loopback (`cargo run --release -p benches
    /// --bin transfer -- --only ibb/prosody/iq-default,server/prosody/iq-32`) a window of 32
    /// reached 9.3 MB/s at block-size 4096 against 8.7 for 16 (Prosody's own ceiling with a
    /// raw client: 10.1–10.4), and 16.2–17.5 at 65535 either way (ceiling 17.7–18.6); over
    /// the in-memory hub 16 and 32 are within noise at 65535 (2.1–2.7 GB/s). It bounds a
    /// burst on a server to 32 stanzas; [`Config::max_in_flight_bytes`] bounds their bytes
    /// (8 stanzas at block-size 65535 by default).
    pub fn max_in_flight(&mut self, v: u16) -> &mut Self {
        self.max_in_flight = v.max(1);
        self.initial_window = self.initial_window.min(self.max_in_flight);
        self
    }

    /// The most bytes (before base64) in unacknowledged iq chunks at once, whatever the
    /// window: a chunk that would pass it waits, unless nothing is in flight. Default
    /// 512 KiB: the window's 32 chunks at block-size 4096 and up to 16384, 8 chunks of
    /// 65535.
    ///
    /// More in flight only fills buffers and caches once the path is busy: over a raw
    /// loopback stream with the shipped client transport, no server, at block-size 65535
    /// (`transfer --in-process --only ibb/raw-xml/iq-default/65535/64MiB,raw-tcp-before-ibb/64MiB
    /// --runs 3`, two interleaved rounds per window, load 8.1-8.8), a window of 32 chunks
    /// (2 MiB) moved 0.30x raw TCP for 0.09 CPU seconds per 64 MiB, windows of 1 to 8
    /// chunks 0.33-0.44x for 0.06-0.07 s; through a Prosody the acknowledgement of a
    /// 65535-byte chunk took 157 ms with 32 in flight at 12.4 MB/s (2 MiB queued in front
    /// of the server, not faster).
    pub fn max_in_flight_bytes(&mut self, v: usize) -> &mut Self {
        self.max_in_flight_bytes = v.max(1);
        self
    }

    /// Bytes a writer may queue beyond those in flight. Default 256 KiB: four full chunks,
    /// enough to keep the window fed between two writes.
    pub fn send_buffer(&mut self, v: usize) -> &mut Self {
        self.send_buffer = v.max(1);
        self
    }

    /// Bytes received but not yet read before this side stops acknowledging iq chunks (which
    /// stalls the sender's window). Default 1 MiB.
    pub fn recv_buffer(&mut self, v: usize) -> &mut Self {
        self.recv_buffer = v.max(1);
        self
    }

    /// Hard cap on buffered bytes in message mode, which has no acknowledgements to stall
    /// the sender: past it the session is closed with
    /// [`ProtocolError::ReceiveBufferOverflow`](crate::ProtocolError::ReceiveBufferOverflow).
    /// Default 16 MiB.
    pub fn message_overrun(&mut self, v: usize) -> &mut Self {
        self.message_overrun = v.max(1);
        self
    }

    /// How long to wait for the answer to `<open/>` (each attempt). Default 30 s, twice
    /// Spark's 15 s response timeout.
    pub fn open_timeout(&mut self, v: Duration) -> &mut Self {
        self.open_timeout = v;
        self
    }

    /// How long one chunk may stay unacknowledged. Default 60 s: servers queue behind rate
    /// limits, and a false timeout costs the transfer.
    pub fn ack_timeout(&mut self, v: Duration) -> &mut Self {
        self.ack_timeout = v;
        self
    }

    /// How long a close may take: the flush before `<close/>` and its answer, or the
    /// answers to chunks already in flight before we answer the peer's close (unsent data
    /// is dropped then, XEP-0047 §2.3). After [`Session::cancel`](crate::Session::cancel)
    /// it bounds only the wait for the close's answer. Default 30 s.
    pub fn close_timeout(&mut self, v: Duration) -> &mut Self {
        self.close_timeout = v;
        self
    }

    /// Holds the answer to a peer's `<close/>` on sessions we accepted (responder) until the
    /// application gives its verdict ([`Session::answer_close`](crate::Session::answer_close),
    /// [`IbbStream::answer_close`](crate::IbbStream::answer_close)), or closes or drops the
    /// stream (a result). A file receiver checks the bytes first, so that a sender reads
    /// the answer as "kept" only for a file that was. The wait is bounded by
    /// [`close_timeout`](Self::close_timeout) (then the session fails with a close
    /// timeout, answering the peer with a result). Default `false`: answered at once.
    pub fn hold_close_answer(&mut self, v: bool) -> &mut Self {
        self.hold_close_answer = v;
        self
    }

    /// How long our `<close/>` may stay unanswered once everything we wrote has gone out
    /// (over iq: every `<data/>` acknowledged) before the session ends anyway, as a clean
    /// close with [`Session::close_unanswered`](crate::Session::close_unanswered) set and
    /// [`Event::CloseUnanswered`](crate::Event::CloseUnanswered) queued. libpurple never
    /// answers an IBB `<close/>` (PEERS.md); the acknowledged chunks already say the bytes
    /// arrived, so that is a warning, not a failure. Capped by
    /// [`close_timeout`](Self::close_timeout). Default 3 s: many server round trips, short
    /// enough that a transfer to Pidgin does not seem to hang at its end.
    pub fn close_grace(&mut self, v: Duration) -> &mut Self {
        self.close_grace = v;
        self
    }

    /// Close a session on which nothing was sent or received for this long. Default 300 s;
    /// `None` disables it.
    pub fn idle_timeout(&mut self, v: Option<Duration>) -> &mut Self {
        self.idle_timeout = v;
        self
    }

    /// Delay before resending a chunk answered with a `wait` error; doubles on each retry.
    /// Default 500 ms.
    pub fn retry_delay(&mut self, v: Duration) -> &mut Self {
        self.retry_delay = v;
        self
    }

    /// Retries of one chunk before the session fails. Default 5.
    pub fn max_retries(&mut self, v: u32) -> &mut Self {
        self.max_retries = v;
        self
    }

    /// Message-mode pacing in bytes per second (before base64), a token bucket with one
    /// tenth of a second of burst. Default `None`: message chunks are paced only by the
    /// transport's send completion (the driver awaits each send before producing the next).
    pub fn message_rate(&mut self, v: Option<u64>) -> &mut Self {
        self.message_rate = v.filter(|r| *r > 0);
        self
    }

    /// Shortens [`open_timeout`](Self::open_timeout) to `t` at most (tests, demos: the
    /// facade's `cap_timeouts`).
    pub fn cap_open_timeout(&mut self, t: Duration) -> &mut Self {
        self.open_timeout = self.open_timeout.min(t);
        self
    }

    /// Shortens the open, ack and close timeouts to `t` at most (tests, demos: the
    /// facade's `cap_timeouts`), and [`stalled_reader`](Self::stalled_reader) to `t / 2`,
    /// so that an open behind a hung reader is still answered within `t`. Without the ack
    /// and close timeouts, a session whose transfer the facade had already failed kept its
    /// driver task for up to 60 s.
    pub fn cap_timeouts(&mut self, t: Duration) -> &mut Self {
        self.open_timeout = self.open_timeout.min(t);
        self.ack_timeout = self.ack_timeout.min(t);
        self.close_timeout = self.close_timeout.min(t);
        self.stalled_reader = self.stalled_reader.min(t / 2);
        self
    }

    /// The bound on what a peer can make a session hold for a reader that lags
    /// (BAD-INPUT F11). Default 64 blocks.
    ///
    /// * Message mode: the most received chunks held unread. One more closes the session
    ///   with [`ProtocolError::ReceiveBufferOverflow`](crate::ProtocolError::ReceiveBufferOverflow)
    ///   (answered `wait/resource-constraint`), whatever their size: 64 one-byte chunks
    ///   count as much as 64 full ones. A pump that awaits
    ///   [`Ibb::ready`](crate::Ibb::ready) stops taking stanzas at half of it, so a
    ///   well-paced transfer never reaches it.
    /// * iq mode: a chunk is acknowledged once it is queued for the reader, while at most
    ///   [`recv_buffer`](Self::recv_buffer) bytes wait; past that the acks are held back
    ///   (the sender's window stalls). This bounds the chunks held unacknowledged: a sender
    ///   that sends one more without waiting for our answers is answered
    ///   `cancel/resource-constraint`
    ///   ([`ProtocolError::TooManyUnacknowledged`](crate::ProtocolError::TooManyUnacknowledged))
    ///   and the session is closed. `cancel`, not `wait`: the session ends, there is
    ///   nothing to retry. Senders that respect acknowledgements (every one we test: at
    ///   most 32 in flight, most one) never reach it.
    pub fn max_queued_blocks(&mut self, v: usize) -> &mut Self {
        self.max_queued_blocks = v.max(1);
        self
    }

    /// How long [`Ibb::ready`](crate::Ibb::ready) holds the pump for a backlogged
    /// message-mode session whose reader takes nothing. Default 2 s, below the 5 s a Smack
    /// client waits for an iq answer by default.
    ///
    /// Backpressure stops every stanza of the connection, not only that session's: a reader
    /// that hangs (a disk that never returns, an application that forgot the stream) would
    /// otherwise hold up every other transfer, offer and iq on the connection until the
    /// session's idle timeout. Past this, `ready` no longer waits for that session: its
    /// chunks keep coming and it ends at [`max_queued_blocks`](Self::max_queued_blocks) with
    /// `wait/resource-constraint`, while the rest of the connection goes on. A reader that
    /// takes a chunk within it, however slowly, keeps its backpressure.
    pub fn stalled_reader(&mut self, v: Duration) -> &mut Self {
        self.stalled_reader = v;
        self
    }

    /// Whether the chunk size is chosen by what the path gives (default `true`): in iq mode,
    /// a sender whose negotiated block-size is above 4096 starts with 4096-byte chunks and
    /// runs one bounded search up to the block-size, timed by the acknowledgements
    /// ([`ChunkSizer`](crate::proto::ChunkSizer)); in message mode, which has no
    /// acknowledgements, chunks stay at 4096 at most. `false`: every chunk is as large as
    /// the block-size allows (what a user who names a block size asks for).
    pub fn adaptive_chunks(&mut self, v: bool) -> &mut Self {
        self.adaptive_chunks = v;
        self
    }

    /// Whether [`adaptive_chunks`](Self::adaptive_chunks) is on.
    pub fn is_adaptive_chunks(&self) -> bool {
        self.adaptive_chunks
    }

    /// Incoming opens that wait for `next_incoming` before being rejected
    /// (`cancel/not-acceptable`). Default 16.
    pub fn max_pending_incoming(&mut self, v: usize) -> &mut Self {
        self.max_pending_incoming = v.max(1);
        self
    }
}

/// What the initiator proposes in `<open/>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOptions {
    /// The block-size to propose, in bytes before base64 (1..=65535). After
    /// `resource-constraint` the initiator retries by itself at the power of two below it
    /// (half of it when it is one), down to [`Config::min_block_size`]. The largest chunk
    /// this side sends; see [`Config::adaptive_chunks`] for the sizes below it.
    pub block_size: u16,
    /// Which stanza carries the data.
    pub stanza: StanzaKind,
}

impl Default for OpenOptions {
    /// [`DEFAULT_BLOCK_SIZE`] (65535) over iq.
    fn default() -> Self {
        Self {
            block_size: DEFAULT_BLOCK_SIZE,
            stanza: StanzaKind::Iq,
        }
    }
}
