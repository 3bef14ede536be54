//! The seam between a *stack* (how a transfer is negotiated) and the data path (how its
//! bytes move, are checked and are placed). Crate-private.
//!
//! ```text
//!            sender                                   receiver
//!  send::run: prepare the source           manager: an offer arrives -> StackOffer
//!  stack::choose (disco) -> Stack          recv::IncomingOffer (one type, any stack)
//!  ┌──────── stack-specific ────────┐      receive::prepare: the .part, its offset
//!  │ Si: si_send::negotiate         │      ┌──────── stack-specific ────────┐
//!  │  offer/answer, S5B, IBB on the │      │ Si: StackOffer::answer_and_wait│
//!  │  SI sid, the fallback          │      │  answer, S5B/IBB expected on   │
//!  │ Jingle: jingle::send::negotiate│      │  the SI sid, the fallback      │
//!  │  initiate/accept, XEP-0260     │      │ Jingle: session-accept, the    │
//!  │  race, transport-replace → IBB │      │  race or the IBB open, replace │
//!  └───────────── Negotiated ───────┘      │  (and the session, to end it)  │
//!  send_stream::stream: copy, progress,    └──────────── Established ───────┘
//!  cancel, close, delivery state           receive::land: drain into the .part,
//!                                          verify (verify::Expectations), place
//! ```
//!
//! A stack ends where a bytestream is up: it hands over an [`Established`] (the boxed
//! stream, how it went, whether it fell back) and, on the sender, the span the peer asked
//! for ([`Negotiated`]). Everything after that is shared by every stack and knows nothing
//! of SI or Jingle: [`send_stream::stream`](crate::send_stream::stream) on the sender,
//! [`receive::prepare`](crate::receive::prepare) (before the answer: the `.part` and its
//! resume offset) and [`receive::land`](crate::receive::land) on the receiver (drain into
//! the `.part`, verify against [`Expectations`](crate::verify::Expectations), whose hashes
//! may arrive late through a [`LateHashes`](crate::verify::LateHashes), place, report).
//!
//! # The Jingle stack
//!
//! * [`Stack`] has `Jingle`; [`choose`] picks it from the peer's disco#info
//!   (`urn:xmpp:jingle:1`, `urn:xmpp:jingle:apps:file-transfer:5` and a transport we
//!   share) in the order of [`Config::stacks`](crate::Config::stacks).
//! * Sender: [`jingle::send::negotiate`] beside [`si_send::negotiate`]: session-initiate,
//!   session-accept (its `<range/>` gives the offset), the XEP-0260 race or the XEP-0261
//!   open, transport-replace; then [`jingle::send::stream`] wraps `send_stream::stream`
//!   (the `<checksum/>` goes out after the last byte) and ends with the session's end.
//! * Receiver: [`StackOffer::Jingle`] holds the session-initiate; its
//!   [`StackOffer::incoming`] gives the key, size and hashes (a
//!   [`LateHashes`](crate::verify::LateHashes) for a `<checksum/>` to come); its answer and
//!   transport wait are in `answer_and_wait`; [`jingle::incoming::land_and_end`] runs
//!   `receive::land` while watching the session and ends it (`<success/>`,
//!   `<media-error/>`, `<cancel/>`).
//! * One `xep0166_jingle::Endpoint` per manager: [`jingle::core`].
//!
//! A third stack follows the same pattern: a variant here, in [`StackOffer`], and the two
//! negotiations ending in an [`Established`].

use ft_transport::StanzaTransport;
use jid::Jid;
use xep0030_disco::features;

use crate::copy::guarded;
use crate::error::{ErrorKind, Stage, TransferError};
use crate::event::{Event, MethodUsed};
use crate::glue::BoxStream;
use crate::handle::TaskSide;
use crate::shared::Shared;

pub(crate) mod jingle;
mod offer;
mod si_recv;
pub(crate) mod si_send;
mod si_wait;

pub(crate) use offer::{Incoming, Refuse, StackOffer};

/// Which protocol stack negotiates a transfer: Jingle File Transfer or Stream Initiation.
///
/// The sender picks one per peer from its disco#info, in the order of
/// [`Config::stacks`](crate::Config::stacks); the receiver takes both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stack {
    /// XEP-0234 Jingle File Transfer over XEP-0166, the bytes on XEP-0260 (SOCKS5) or
    /// XEP-0261 (IBB), S5B falling back to IBB with transport-replace.
    Jingle,
    /// XEP-0095 Stream Initiation with the XEP-0096 file profile; XEP-0065 or XEP-0047 on
    /// the SI sid, S5B falling back to IBB.
    Si,
}

impl Stack {
    /// The name: `jingle` or `si`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Jingle => "jingle",
            Self::Si => "si",
        }
    }
}

impl std::fmt::Display for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Stack {
    type Err = UnknownStack;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "jingle" => Self::Jingle,
            "si" => Self::Si,
            other => return Err(UnknownStack(other.to_owned())),
        })
    }
}

/// A stack name that is not one of [`Stack`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown stack {0:?} (expected jingle or si)")]
pub struct UnknownStack(pub String);

/// A bytestream a stack set up: from here on the transfer is the same whatever the stack.
pub(crate) struct Established {
    /// The bytes, either method.
    pub(crate) stream: BoxStream,
    /// How they travel.
    pub(crate) method: MethodUsed,
    /// Whether the first method failed and this is the fallback.
    pub(crate) fallback: bool,
    /// The stack that set it up.
    pub(crate) stack: Stack,
}

/// What the sender's stack agreed with the peer: the bytestream, and which part of the
/// file goes over it (`offset` from the peer's range, `length` bytes).
pub(crate) struct Negotiated {
    pub(crate) established: Established,
    pub(crate) offset: u64,
    pub(crate) length: u64,
}

/// The disco#info features we add for Jingle File Transfer: XEP-0166, XEP-0234, the
/// transports of `methods` (XEP-0260, XEP-0261), and XEP-0300's hashes.
pub(crate) fn jingle_features(methods: &[crate::Method]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = xep0234_jingle_ft::DISCO_FEATURES.to_vec();
    if methods.contains(&crate::Method::S5b) {
        out.push(xep0260_jingle_s5b::NS);
    }
    if methods.contains(&crate::Method::Ibb) {
        out.extend(xep0261_jingle_ibb::DISCO_FEATURES);
    }
    out.extend(xep0300_hashes::DISCO_FEATURES);
    out
}

/// The stack chosen for a send, and for Jingle the transports the peer has, in our order.
pub(crate) struct Chosen {
    pub(crate) stack: Stack,
    pub(crate) jingle_methods: Vec<crate::Method>,
    /// The hash a Jingle sender announces: [`hash_for`] the peer's features.
    pub(crate) hash: crate::HashAlgo,
}

/// The hashes a Jingle sender can announce (computed while streaming), in preference
/// order: XEP-0300's, limited to what [`digest_for`](crate::verify::digest_for) computes.
const SEND_HASHES: [xep0300_hashes::HashAlgo; 4] = [
    xep0300_hashes::HashAlgo::Sha256,
    xep0300_hashes::HashAlgo::Blake2b512,
    xep0300_hashes::HashAlgo::Blake2b256,
    xep0300_hashes::HashAlgo::Sha3_256,
];

/// The hash to announce to a peer with `features` (`xep0300_hashes::choose_from`, the
/// preference of [`SEND_HASHES`]); SHA-256 when it advertises none we compute.
pub(crate) fn hash_for(features: &std::collections::BTreeSet<String>) -> crate::HashAlgo {
    xep0300_hashes::choose_from(features, &SEND_HASHES)
        .and_then(|a| crate::HashAlgo::from_name(a.name()))
        .unwrap_or(crate::HashAlgo::Sha256)
}

/// Whether the peer's `features` let us send by Jingle with `methods`: the transports we
/// share, in our order (empty: not Jingle).
fn jingle_methods(
    features: &std::collections::BTreeSet<String>,
    methods: &[crate::Method],
) -> Vec<crate::Method> {
    let has = |f: &str| features.contains(f);
    if !xep0234_jingle_ft::DISCO_FEATURES.iter().all(|f| has(f)) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for m in methods {
        let ns = match m {
            crate::Method::S5b => xep0260_jingle_s5b::NS,
            crate::Method::Ibb => xep0261_jingle_ibb::NS_JINGLE_IBB,
        };
        if has(ns) && !out.contains(m) {
            out.push(*m);
        }
    }
    out
}

/// Picks the stack to send to `to` with, in the order of
/// [`Config::stacks`](crate::Config::stacks), from the peer's disco#info: Jingle when it lists Jingle File
/// Transfer and a transport of `methods`, SI when it lists SI file transfer. A peer whose
/// disco#info does not answer gets SI (as before Jingle), unless
/// [`Config::check_features`](crate::Config::check_features) is on: then the failure is
/// the transfer's (stage `Disco`), and a peer with neither stack is refused
/// ([`ErrorKind::NoCommonMethod`]).
pub(crate) async fn choose<T: StanzaTransport + Clone>(
    shared: &Shared<T>,
    side: &mut TaskSide,
    to: &Jid,
    methods: &[crate::Method],
) -> Result<Chosen, TransferError> {
    let config = &shared.config;
    let si = Chosen {
        stack: Stack::Si,
        jingle_methods: Vec::new(),
        hash: crate::HashAlgo::Sha256,
    };
    let jingle_possible = config.stacks.contains(&Stack::Jingle)
        && shared.jingle.is_some()
        && to.clone().try_into_full().is_ok();
    if !jingle_possible && !config.check_features {
        return if config.stacks.contains(&Stack::Si) {
            Ok(si)
        } else {
            Err(TransferError::new(Stage::Disco, ErrorKind::NoCommonMethod))
        };
    }
    side.reporter.stage(Stage::Disco);
    let cancel = side.cancel.clone();
    let info = guarded(Stage::Disco, &cancel, config.disco.timeout, async {
        shared.disco.info(to).await.map_err(ErrorKind::from)
    })
    .await;
    let features = match info {
        Ok(i) => i.features,
        Err(e) if config.check_features || e.is_cancelled_by(crate::Side::Local) => {
            return Err(e);
        }
        Err(e) => {
            tracing::debug!("ft-facade: no disco#info from {to} ({e}); sending by SI");
            return if config.stacks.contains(&Stack::Si) {
                Ok(si)
            } else {
                Err(TransferError::new(Stage::Disco, ErrorKind::NoCommonMethod))
            };
        }
    };
    let mut jingle = jingle_methods(&features, methods);
    let si_ok = features.contains(features::SI_FILE_TRANSFER);
    for stack in &config.stacks {
        let chosen = match stack {
            Stack::Jingle if jingle_possible && !jingle.is_empty() => Chosen {
                stack: Stack::Jingle,
                jingle_methods: std::mem::take(&mut jingle),
                hash: hash_for(&features),
            },
            Stack::Si if si_ok || !config.check_features => Chosen {
                stack: Stack::Si,
                jingle_methods: Vec::new(),
                hash: crate::HashAlgo::Sha256,
            },
            _ => continue,
        };
        side.reporter.emit(Event::Disco {
            supported: true,
            at: side.reporter.at(),
        });
        return Ok(chosen);
    }
    side.reporter.emit(Event::Disco {
        supported: false,
        at: side.reporter.at(),
    });
    Err(TransferError::new(Stage::Disco, ErrorKind::NoCommonMethod))
}
