//! The receiver: an incoming offer, accepted into a directory or a writer, or declined.

use std::fmt;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use std::sync::Arc;

use ft_transport::{Sid, Stanza, StanzaTransport};
use jid::Jid;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use xep0095_si::method;
use xep0096_file::{Collision, Expected, FileOffer, HashLanes, PartFile, Range};

use crate::cleanup::PartCleanup;
use crate::error::{ErrorKind, Misuse, Side, Stage, TransferError};
use crate::event::{Delivery, Event, FileInfo, Outcome};
use crate::handle::{TaskSide, TransferHandle, pair};
use crate::options::AcceptOptions;
use crate::recv_stream::{self, Sink, wait_stream};
use crate::shared::{Shared, spawn_send};

/// An offer the application has not answered yet (or one the policy auto-accepted: see
/// [`take_auto_accepted`](Self::take_auto_accepted)). Dropping it unanswered declines it.
pub struct IncomingOffer<T: StanzaTransport + Clone> {
    shared: Arc<Shared<T>>,
    offer: Option<FileOffer>,
    from: Jid,
    key: (Jid, Sid),
    info: FileInfo,
    auto: Option<TransferHandle>,
}

impl<T: StanzaTransport + Clone> fmt::Debug for IncomingOffer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncomingOffer")
            .field("from", &self.from.to_string())
            .field("sid", &self.key.1)
            .field("file", &self.info)
            .field("auto_accepted", &self.auto.is_some())
            .finish()
    }
}

impl<T: StanzaTransport + Clone> IncomingOffer<T> {
    pub(crate) fn new(
        shared: Arc<Shared<T>>,
        offer: FileOffer,
        from: Jid,
        key: (Jid, Sid),
    ) -> Self {
        let f = &offer.file;
        if f.md5().is_err() {
            // BAD-INPUT B10: not 32 hex digits; treated as absent.
            tracing::warn!(
                "ft-facade: the offer's hash {:?} is not an MD5; ignored",
                cap(f.hash.as_deref().unwrap_or_default(), 64)
            );
        }
        let info = FileInfo {
            name: f.name.clone(),
            size: f.size,
            md5: f.md5().ok().flatten().map(hex::encode),
            date: f.date.clone(),
            // BAD-INPUT B11: a description is for display; more than 1 KiB is cut.
            desc: f.desc.as_deref().map(|d| cap(d, MAX_DESC).to_owned()),
            mime_type: Some(offer.offer.mime_type.clone()),
        };
        Self {
            shared,
            offer: Some(offer),
            from,
            key,
            info,
            auto: None,
        }
    }

    /// Who offers.
    pub fn from(&self) -> &Jid {
        &self.from
    }

    /// The stream id.
    pub fn sid(&self) -> &Sid {
        &self.key.1
    }

    /// The file as offered (the name is the peer's; it is made safe on accept).
    pub fn file(&self) -> &FileInfo {
        &self.info
    }

    /// The methods the peer offered (SI namespaces, in its order).
    pub fn methods(&self) -> Vec<String> {
        self.offer
            .as_ref()
            .map(|o| o.offer.methods.clone())
            .unwrap_or_default()
    }

    /// Whether the policy already accepted this offer; if so, its handle (once).
    pub fn take_auto_accepted(&mut self) -> Option<TransferHandle> {
        self.auto.take()
    }

    pub(crate) fn auto_accept(&mut self, dir: PathBuf) {
        if let Some(offer) = self.offer.take() {
            self.auto = Some(self.start(offer, Destination::Dir(dir), AcceptOptions::new()));
        }
    }

    /// Declines with `cancel/forbidden` (XEP-0095 §3.2) and an optional reason.
    pub fn decline(mut self, reason: Option<&str>) {
        // An auto-accepted offer is the running transfer's: cancel its handle instead.
        if let Some(offer) = self.offer.take() {
            spawn_send(&self.shared, Stanza::Iq(offer.decline(reason)));
            self.release();
        }
    }

    /// Declined because too many offers wait (`wait/resource-constraint`).
    /// Refuses with `wait/resource-constraint`; returns the answer sent.
    pub(crate) fn refuse_busy(mut self) -> Option<Stanza> {
        let offer = self.offer.take()?;
        let e = ft_transport::util::stanza_error(
            xmpp_parsers::stanza_error::ErrorType::Wait,
            xmpp_parsers::stanza_error::DefinedCondition::ResourceConstraint,
        );
        let mut iq = xmpp_parsers::iq::Iq::from_error(offer.offer.iq_id.clone(), e);
        *iq.to_mut() = offer.offer.from;
        let answer = Stanza::Iq(iq.clone());
        spawn_send(&self.shared, Stanza::Iq(iq));
        self.release();
        Some(answer)
    }

    fn release(&self) {
        self.shared.release_incoming(&self.key);
    }

    /// Accepts into `dir`: the peer's name made safe, written to `<name>.part`, checked
    /// (size, MD5 when offered), then renamed into place (see [`AcceptOptions`]).
    pub fn accept_into_dir(
        mut self,
        dir: impl Into<PathBuf>,
        options: AcceptOptions,
    ) -> TransferHandle {
        match self.offer.take() {
            Some(offer) => self.start(offer, Destination::Dir(dir.into()), options),
            None => self.already_answered(),
        }
    }

    /// Accepts into any writer. With [`AcceptOptions::offset`] the sender is asked for the
    /// bytes from there on (if it announced ranges). The size is checked; the MD5 only for a
    /// whole file.
    pub fn accept_into<W>(mut self, writer: W, options: AcceptOptions) -> TransferHandle
    where
        W: AsyncWrite + Send + Unpin + 'static,
    {
        match self.offer.take() {
            Some(offer) => self.start(offer, Destination::Writer(Box::pin(writer)), options),
            None => self.already_answered(),
        }
    }

    fn already_answered(&mut self) -> TransferHandle {
        let (handle, side) = pair(self.key.1.clone(), self.from.clone(), self.info.size);
        side.finish(Err(TransferError::new(
            Stage::Offer,
            ErrorKind::Misuse(Misuse::AlreadyAnswered),
        )));
        handle
    }

    fn start(
        &mut self,
        offer: FileOffer,
        sink: Destination,
        options: AcceptOptions,
    ) -> TransferHandle {
        let (handle, side) = pair(self.key.1.clone(), self.from.clone(), self.info.size);
        let shared = self.shared.clone();
        let from = self.from.clone();
        let key = self.key.clone();
        tokio::spawn(async move {
            let mut side = side;
            let r = receive(&shared, &mut side, offer, from, sink, options).await;
            shared.release_incoming(&key);
            side.finish(r);
        });
        handle
    }
}

impl<T: StanzaTransport + Clone> Drop for IncomingOffer<T> {
    fn drop(&mut self) {
        if let Some(offer) = self.offer.take() {
            spawn_send(&self.shared, Stanza::Iq(offer.decline(None)));
            self.release();
        }
    }
}

/// The longest offer description kept for display (BAD-INPUT B11), in bytes.
pub(crate) const MAX_DESC: usize = 1024;

/// `s` cut to at most `max` bytes, at a character boundary.
pub(crate) fn cap(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Where an accepted file goes.
enum Destination {
    Dir(PathBuf),
    Writer(Pin<Box<dyn AsyncWrite + Send>>),
}

async fn receive<T: StanzaTransport + Clone>(
    shared: &Arc<Shared<T>>,
    side: &mut TaskSide,
    offer: FileOffer,
    from: Jid,
    sink: Destination,
    options: AcceptOptions,
) -> Result<Outcome, TransferError> {
    side.reporter.emit(Event::Offered {
        methods: offer.offer.methods.clone(),
        at: side.reporter.at(),
    });
    let expected = offer
        .expected()
        .map_err(|e| TransferError::new(Stage::Offer, e.into()))?;

    // Prepare the target.
    side.reporter.stage(Stage::Prepare);
    let size = offer.file.size;
    let (target, offset) = match sink {
        Destination::Dir(dir) => {
            // B4: an offer that does not fit is declined before anything is opened.
            if let Err(n) = shared.config.policy.check_free_space(&dir, size) {
                spawn_send(shared, Stanza::Iq(offer.decline(Some(&n.text()))));
                return Err(TransferError::new(
                    Stage::Prepare,
                    ErrorKind::NoSpace {
                        size: n.size,
                        available: n.available,
                    },
                ));
            }
            // A part of ours for this very file (same peer, name, size, date or hash) is
            // resumed when the sender announced ranges; anything else starts afresh, in a
            // part we create (see `PartFile`).
            let part = if options.resume {
                PartFile::for_offer(&dir, &offer).await
            } else {
                PartFile::create(&dir, &offer.file.name, size).await
            };
            let mut part = match part {
                Ok(p) => p,
                Err(e) => {
                    spawn_send(
                        shared,
                        Stanza::Iq(offer.decline(Some("cannot store the file"))),
                    );
                    return Err(TransferError::new(Stage::Prepare, e.into()));
                }
            };
            let offset = part.offset();
            if expected.md5.is_none() {
                // Nothing to check it against (most clients offer no hash): MD5, the
                // slower digest, is not computed at all.
                part.skip_md5();
            }
            (Sink::Part(Box::new(part)), offset)
        }
        Destination::Writer(w) => {
            // Without a size there is nothing to resume against.
            let offset = match size {
                Some(size) if offer.file.supports_ranges() => options.offset.min(size),
                _ => 0,
            };
            let mut lanes = HashLanes::new();
            if expected.md5.is_none() || offset > 0 {
                // MD5 is checked only against an offered hash, and only for a whole file.
                lanes.skip_md5();
            }
            (Sink::Writer(w, lanes), offset)
        }
    };

    // From here on a failure, whatever its stage, leaves the `.part` only as the policy
    // says, also when the writer had to be abandoned and the part file is lost with it.
    let mut cleanup = match &target {
        Sink::Part(part) => Some(PartCleanup::new(
            part.part_path(),
            part.sidecar_path(),
            options.keep_partial,
        )),
        Sink::Writer(..) => None,
    };
    let mut target = Some(target);
    let r = deliver(
        shared,
        side,
        &offer,
        &from,
        &mut target,
        offset,
        &expected,
        &options,
    )
    .await;
    if let (Err(e), Some(cleanup)) = (&r, cleanup.as_mut()) {
        let wrong = matches!(
            e.kind,
            ErrorKind::TooLong { .. } | ErrorKind::HashMismatch { .. }
        );
        if !wrong
            && options.keep_partial
            && let Some(Sink::Part(part)) = target.as_mut()
        {
            // Kept for a resume: everything received so far is synced and recorded as
            // verified (bounded: a hung disk must not hold the failure up).
            let _ = tokio::time::timeout(CHECKPOINT_GRACE, part.checkpoint()).await;
        }
        // Removed while the part file (if we still have it) holds it.
        cleanup.failed(wrong);
    }
    if let Some(cleanup) = cleanup.as_mut() {
        cleanup.disarm();
    }
    drop(target);
    r
}

/// How long a failed receive waits for its kept `.part` to be synced.
const CHECKPOINT_GRACE: Duration = Duration::from_secs(5);

/// Answers the offer, waits for the bytestream, drains it into `target` (taken out and
/// put back unless it was lost), then verifies and places the file.
#[allow(clippy::too_many_arguments)]
async fn deliver<T: StanzaTransport + Clone>(
    shared: &Arc<Shared<T>>,
    side: &mut TaskSide,
    offer: &FileOffer,
    from: &Jid,
    target: &mut Option<Sink>,
    offset: u64,
    expected: &Expected,
    options: &AcceptOptions,
) -> Result<Outcome, TransferError> {
    let inner = &**shared;
    let config = &inner.config;
    let sid = offer.offer.sid.clone();
    let length = offer.file.size.map(|size| size - offset);
    side.reporter.total(length);

    // Choose a method and get ready for the bytestream before answering.
    let ours = config.offered_namespaces();
    // Without a size the file ends where the bytestream ends: IBB's <close/> says so
    // explicitly, while an S5B sender of a size-less (empty) file may wait for us to close
    // (QXmpp does): prefer IBB when it was offered.
    let chosen =
        if offer.file.size.is_none() && offer.offer.is_offered(method::IBB) && config.has_ibb() {
            Some(method::IBB)
        } else {
            offer.offer.choose(&ours)
        };
    let Some(chosen) = chosen else {
        spawn_send(shared, Stanza::Iq(offer.offer.no_valid_streams()));
        return Err(TransferError::new(Stage::Offer, ErrorKind::NoCommonMethod));
    };
    let ibb_ok = offer.offer.is_offered(method::IBB) && config.has_ibb();
    // `expect` registers the pre-authorisation when it is called, not when its future is
    // first polled: call it now, before the answer goes out, or a peer that sends its
    // bytestreams offer right after our answer (slixmpp does) finds no session.
    let s5b_wait = (chosen == method::BYTESTREAMS).then(|| {
        inner
            .s5b
            .expect(from.clone(), sid.clone(), config.stream_start_timeout)
    });
    // IBB is awaited even when S5B was chosen: the libpurple fallback after item-not-found,
    // and Spark's open without any earlier error (seed 004).
    let ibb_window = config.stream_start_timeout + config.s5b_budget + config.fallback_window;
    let ibb_wait = ibb_ok.then(|| inner.ibb.expect(from.clone(), sid.clone(), ibb_window));

    let range = (offset > 0).then(|| Range::from_offset(offset));
    let answer = offer.accept(chosen, range).map_err(|e| {
        TransferError::new(
            Stage::Offer,
            ErrorKind::Si(Arc::new(xep0095_si::Error::Misuse(e))),
        )
    })?;
    inner
        .transport
        .send(Stanza::Iq(answer))
        .await
        .map_err(|e| TransferError::new(Stage::Offer, ErrorKind::Transport(Arc::new(e))))?;
    side.reporter.emit(Event::Accepted {
        method: chosen.to_owned(),
        offset,
        at: side.reporter.at(),
    });

    // Connect.
    side.reporter.stage(Stage::Connect);
    let (mut stream, used, fallback) = wait_stream(inner, side, from, s5b_wait, ibb_wait).await?;
    side.reporter.emit(Event::Connected {
        method: used.clone(),
        at: side.reporter.at(),
    });

    // Stream.
    let Some(sink) = target.take() else {
        return Err(lost_target());
    };
    let (back, result) = recv_stream::receive(
        &mut stream,
        sink,
        recv_stream::Length::new(length, config.policy.max_size),
        side,
        config.inactivity_timeout,
    )
    .await;
    *target = back;
    let bytes = match result {
        Ok(r) => r,
        Err(e) => {
            if matches!(e.kind, ErrorKind::TooLong { .. }) {
                // More than offered: refused, and the sender must not read our close as
                // an acknowledgement (S5B: a reset).
                stream.as_mut().reject();
            } else if e.is_cancelled_by(Side::Local) && !stream.as_mut().abort() {
                // Tell the sender: IBB <close/> or S5B shutdown, then drop.
                let _ = tokio::time::timeout(Duration::from_secs(2), stream.shutdown()).await;
            }
            return Err(e);
        }
    };
    // The stream stays open until the file is verified and placed: over S5B our close is
    // the sender's only sign of delivery, so it comes only for a file we kept (a clean
    // close) and never for one found wrong (a reset). The sender waits
    // `receiver_close_grace` for it.
    side.reporter.stage(Stage::Verify);
    let streaming = side.reporter.streaming_time();
    let placed = verify(target, expected, options).await;
    if let Err(e) = &placed
        && matches!(e.kind, ErrorKind::HashMismatch { .. })
    {
        stream.as_mut().reject();
    }
    drop(stream);
    let (path, sha256, md5) = placed?;
    Ok(Outcome {
        peer: from.clone(),
        sid,
        method: used,
        fallback,
        bytes,
        offset,
        elapsed: side.reporter.at(),
        streaming,
        sha256,
        md5: md5.clone(),
        path,
        delivery: Delivery::Received {
            size_checked: expected.size.is_some(),
            hash_checked: expected.md5.is_some() && md5.is_some(),
        },
        warnings: Vec::new(),
    })
}

/// Verifies and places what `target` received: the path (for a `.part`), the SHA-256 and
/// the MD5 (when computed).
async fn verify(
    target: &mut Option<Sink>,
    expected: &Expected,
    options: &AcceptOptions,
) -> Result<(Option<PathBuf>, String, Option<String>), TransferError> {
    match target.take() {
        None => Err(lost_target()),
        Some(Sink::Part(part)) => {
            let digests = part
                .digests()
                .await
                .map_err(|e| TransferError::new(Stage::Verify, e.into()))?;
            let collision = if options.overwrite {
                Collision::Replace
            } else {
                Collision::Rename
            };
            let path = part
                .finish(expected, collision)
                .await
                .map_err(|e| TransferError::new(Stage::Verify, e.into()))?;
            Ok((Some(path), digests.sha256_hex(), digests.md5_hex()))
        }
        Some(Sink::Writer(_, lanes)) => {
            let digests = lanes
                .digests()
                .await
                .map_err(|e| TransferError::new(Stage::Verify, e.into()))?;
            let md5 = digests.md5_hex();
            if let Some(md5) = &md5 {
                check_md5(expected, md5)?;
            }
            Ok((None, digests.sha256_hex(), md5))
        }
    }
}

fn lost_target() -> TransferError {
    TransferError::new(Stage::Stream, ErrorKind::Misuse(Misuse::TargetLost))
}

fn check_md5(expected: &Expected, md5: &str) -> Result<(), TransferError> {
    if let Some(want) = expected.md5 {
        let want = hex::encode(want);
        if want != md5 {
            return Err(TransferError::new(
                Stage::Verify,
                ErrorKind::HashMismatch {
                    offered: want,
                    received: md5.to_owned(),
                },
            ));
        }
    }
    Ok(())
}
