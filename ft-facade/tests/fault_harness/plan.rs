//! The fault schedule of one run: a pure function of `(seed, mode)`.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::relay::TcpFault;
use super::sink::SinkFault;
use super::transport::StanzaFaults;

/// How the bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// IBB over `<iq/>`, hub only, paused clock.
    IbbIq,
    /// IBB over `<message/>`, hub only, paused clock.
    IbbMessage,
    /// S5B, the sender's own streamhost, through the faulty relay; real time.
    S5bDirect,
    /// S5B through our proxy (`xep0065-proxy`) behind the faulty relay; real time.
    S5bProxy,
    /// S5B preferred, IBB offered: S5B is broken at the relay, the transfer falls back.
    Fallback,
}

impl Mode {
    pub const ALL: [Self; 5] = [
        Self::IbbIq,
        Self::IbbMessage,
        Self::S5bDirect,
        Self::S5bProxy,
        Self::Fallback,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::IbbIq => "ibb-iq",
            Self::IbbMessage => "ibb-message",
            Self::S5bDirect => "s5b-direct",
            Self::S5bProxy => "s5b-proxy",
            Self::Fallback => "fallback",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == s)
    }

    /// Whether real sockets are involved (real time) or only the hub (paused clock).
    pub fn sockets(self) -> bool {
        !matches!(self, Self::IbbIq | Self::IbbMessage)
    }
}

/// Which side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Sender,
    Receiver,
}

/// A cancel once the side's progress reaches `stage_index` (0 offer .. 3 stream) and
/// `bytes`; if the transfer ends first the cancel comes late (and must change nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelAt {
    pub who: Who,
    pub stage_index: u8,
    pub bytes: u64,
}

/// Everything one run does.
#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    pub mode: Mode,
    pub size: usize,
    pub sender_stanzas: StanzaFaults,
    pub receiver_stanzas: StanzaFaults,
    /// The XMPP stream of this side is cut after it has sent this many stanzas.
    pub disconnect: Option<(Who, u64)>,
    pub sink: SinkFault,
    /// Receive into a directory (real files; `sink` is then `None`) or into the writer.
    pub into_dir: bool,
    pub keep_partial: bool,
    pub cancel: Option<CancelAt>,
    /// The n-th connection through the relay gets the n-th fault.
    pub tcp: Vec<TcpFault>,
    /// The receiver waits this long before accepting.
    pub accept_delay: Duration,
    /// The cap on every stage timeout.
    pub cap: Duration,
    /// Sizes of further transfers at the same time between the same two facades, with the
    /// same stanza, stream and relay faults but no sink fault or cancel of their own.
    pub also: Vec<usize>,
    /// Descriptors the run leaves open on purpose (never drawn from a seed: the test that
    /// the leak checkpoint finds a leaking run sets it).
    pub leak_fds: usize,
}

const SIZES: [usize; 8] = [0, 1, 4095, 4096, 4097, 65_536, 100_003, 300_000];

impl Plan {
    pub fn new(seed: u64, mode: Mode) -> Self {
        // The mode is mixed in so that every mode sees different schedules for one seed.
        let mut rng =
            StdRng::seed_from_u64(seed ^ (mode as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let size = if rng.gen_bool(0.7) {
            SIZES[rng.gen_range(0..SIZES.len())]
        } else {
            rng.gen_range(0..200_000)
        };
        let mut p = Self {
            seed,
            mode,
            size,
            sender_stanzas: StanzaFaults::default(),
            receiver_stanzas: StanzaFaults::default(),
            disconnect: None,
            sink: SinkFault::None,
            into_dir: true,
            keep_partial: rng.gen_bool(0.5),
            cancel: None,
            tcp: Vec::new(),
            accept_delay: Duration::ZERO,
            cap: if mode.sockets() {
                Duration::from_secs(2)
            } else {
                Duration::from_secs(4)
            },
            also: Vec::new(),
            leak_fds: 0,
        };
        if rng.gen_bool(0.2) {
            p.accept_delay = Duration::from_millis(rng.gen_range(1..300));
        }
        // One kind of fault in most runs (so that its stage is determinable), several in some.
        let kinds = if rng.gen_bool(0.8) {
            1
        } else {
            rng.gen_range(2..=4)
        };
        for _ in 0..kinds {
            match rng.gen_range(0..8) {
                0 => {} // clean
                1 | 2 => {
                    let data_only = rng.gen_bool(0.5);
                    let f = stanza_faults(&mut rng, data_only, mode);
                    if rng.gen_bool(0.5) {
                        p.sender_stanzas = f;
                    } else {
                        p.receiver_stanzas = f;
                    }
                }
                3 => {
                    p.into_dir = false;
                    let after = rng.gen_range(0..=size as u64);
                    p.sink = match rng.gen_range(0..4) {
                        0 => SinkFault::DiskFull { after },
                        1 => SinkFault::Eio { after },
                        2 => SinkFault::Hang { after },
                        _ => SinkFault::Slow {
                            nap: Duration::from_micros(rng.gen_range(100..2000)),
                            chunk: rng.gen_range(512..16_384),
                        },
                    };
                }
                4 | 5 => {
                    p.cancel = Some(CancelAt {
                        who: if rng.gen_bool(0.5) {
                            Who::Sender
                        } else {
                            Who::Receiver
                        },
                        stage_index: rng.gen_range(0..4),
                        bytes: rng.gen_range(0..=size as u64),
                    });
                }
                6 => {
                    let who = if rng.gen_bool(0.5) {
                        Who::Sender
                    } else {
                        Who::Receiver
                    };
                    p.disconnect = Some((who, rng.gen_range(0..40)));
                }
                _ => {
                    if mode.sockets() {
                        p.tcp = (0..rng.gen_range(1..4))
                            .map(|_| tcp_fault(&mut rng, size))
                            .collect();
                    }
                }
            }
        }
        if mode == Mode::Fallback {
            // Every S5B connection is cut before SOCKS5 completes: the transfer must fall
            // back to IBB (or fail, if other faults hit IBB too).
            p.tcp = vec![
                TcpFault::Reset {
                    after: 0,
                    upstream: rng.gen_bool(0.5)
                };
                8
            ];
        }
        // Drawn last, so that the schedules drawn above stay those of earlier versions (the
        // regression seeds replay what they found).
        if rng.gen_bool(0.3) {
            p.also = (0..rng.gen_range(1..=2))
                .map(|_| SIZES[rng.gen_range(0..SIZES.len())])
                .collect();
        }
        p
    }

    /// This plan's seed, mode and size with every fault taken out (and no further
    /// transfer): a run that must complete.
    pub fn without_faults(mut self) -> Self {
        self.sender_stanzas = StanzaFaults::default();
        self.receiver_stanzas = StanzaFaults::default();
        self.disconnect = None;
        self.sink = SinkFault::None;
        self.into_dir = true;
        self.cancel = None;
        self.tcp = if self.mode == Mode::Fallback {
            vec![
                TcpFault::Reset {
                    after: 0,
                    upstream: false
                };
                8
            ]
        } else {
            Vec::new()
        };
        self.accept_delay = Duration::ZERO;
        self.also.clear();
        self
    }

    /// No fault at all (a slow disk or a slow link is not a fault: the transfer must succeed).
    pub fn clean(&self) -> bool {
        !self.sender_stanzas.any()
            && !self.receiver_stanzas.any()
            && self.disconnect.is_none()
            && !self.sink.breaks(self.size as u64)
            && self.cancel.is_none()
            && self
                .tcp
                .iter()
                .all(|f| matches!(f, TcpFault::None | TcpFault::Slow { .. }))
    }
}

fn stanza_faults(rng: &mut StdRng, data_only: bool, mode: Mode) -> StanzaFaults {
    let mut pm = || {
        if rng.gen_bool(0.5) {
            0
        } else {
            rng.gen_range(1..=40)
        }
    };
    let (drop, duplicate, delay, reorder) = (pm(), pm(), pm(), pm());
    StanzaFaults {
        drop,
        duplicate,
        delay,
        reorder,
        max_delay: if mode.sockets() {
            Duration::from_millis(300)
        } else {
            Duration::from_millis(rng.gen_range(100..6000))
        },
        data_only,
    }
}

fn tcp_fault(rng: &mut StdRng, size: usize) -> TcpFault {
    // Bytes counted include the SOCKS5 handshake (a few dozen bytes each way).
    let after = rng.gen_range(0..=size as u64 + 64);
    let upstream = rng.gen_bool(0.5);
    match rng.gen_range(0..5) {
        0 => TcpFault::None,
        1 => TcpFault::Reset { after, upstream },
        2 => TcpFault::HalfClose { after, upstream },
        3 => TcpFault::Stall { after, upstream },
        _ => TcpFault::Slow {
            chunk: rng.gen_range(2048..32_768),
            nap: Duration::from_millis(rng.gen_range(1..4)),
            upstream,
        },
    }
}
