//! The receiver: an incoming offer, accepted into a directory or a writer, or declined.

use std::fmt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use ft_transport::{Stanza, StanzaTransport};
use jid::Jid;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use xep0095_si::method;
use xep0096_file::{Collision, Expected, FileOffer, HashLanes, PartFile, Range, WriteError};

use crate::error::{ErrorKind, Side, Stage, TransferError};
use crate::event::{Event, FileInfo, Outcome};
use crate::handle::{TaskSide, TransferHandle, pair};
use crate::manager::{FileTransfer, lock};
use crate::recv_stream::{self, Sink, wait_stream};

/// How to accept an offer.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AcceptOptions {
    /// Resume from an existing `<name>.part` in the directory (asks the sender for a
    /// `<range offset/>`; senders that do not announce ranges send the whole file, and the
    /// part is then started over). Default `true` via [`AcceptOptions::new`].
    pub resume: bool,
    /// Replace an existing file with the final name. Default `false`: a free
    /// `name (1).ext` is picked instead.
    pub overwrite: bool,
    /// Keep the `.part` when the transfer is cut, cancelled or fails in any other way (so a
    /// later accept resumes). Honoured also when the writer hangs and has to be abandoned.
    /// It is always deleted when its content is known to be wrong (too many bytes, hash
    /// mismatch) or when it is empty. Default `true`.
    pub keep_partial: bool,
    /// For [`IncomingOffer::accept_into`]: the offset the writer already holds (the bytes
    /// before it are not sent). Default 0.
    pub offset: u64,
}

impl AcceptOptions {
    /// Resume on, overwrite off, keep partial files.
    pub fn new() -> Self {
        Self {
            resume: true,
            overwrite: false,
            keep_partial: true,
            offset: 0,
        }
    }

    /// Sets overwrite.
    #[must_use]
    pub fn with_overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }

    /// Sets resume.
    #[must_use]
    pub fn with_resume(mut self, resume: bool) -> Self {
        self.resume = resume;
        self
    }

    /// Sets whether a cut or cancelled transfer keeps its `.part`.
    #[must_use]
    pub fn with_keep_partial(mut self, keep_partial: bool) -> Self {
        self.keep_partial = keep_partial;
        self
    }

    /// Sets the writer's offset (resume into a writer).
    #[must_use]
    pub fn with_offset(mut self, offset: u64) -> Self {
        self.offset = offset;
        self
    }
}

/// An offer the application has not answered yet (or one the policy auto-accepted: see
/// [`take_auto_accepted`](Self::take_auto_accepted)). Dropping it unanswered declines it.
pub struct IncomingOffer<T: StanzaTransport + Clone> {
    ft: FileTransfer<T>,
    offer: Option<FileOffer>,
    from: Jid,
    key: (Jid, String),
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
        ft: FileTransfer<T>,
        offer: FileOffer,
        from: Jid,
        key: (Jid, String),
    ) -> Self {
        let f = &offer.file;
        let info = FileInfo {
            name: f.name.clone(),
            size: f.size,
            md5: f.md5().ok().flatten().map(hex::encode),
            date: f.date.clone(),
            desc: f.desc.clone(),
            mime_type: Some(offer.offer.mime_type.clone()),
        };
        Self {
            ft,
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
    pub fn sid(&self) -> &str {
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
            self.ft.spawn_send(Stanza::Iq(offer.decline(reason)));
            self.release();
        }
    }

    /// Declined because too many offers wait (`wait/resource-constraint`).
    pub(crate) fn refuse_busy(mut self) {
        if let Some(offer) = self.offer.take() {
            let e = ft_transport::util::stanza_error(
                xmpp_parsers::stanza_error::ErrorType::Wait,
                xmpp_parsers::stanza_error::DefinedCondition::ResourceConstraint,
            );
            let mut iq = xmpp_parsers::iq::Iq::from_error(offer.offer.iq_id.clone(), e);
            *iq.to_mut() = offer.offer.from;
            self.ft.spawn_send(Stanza::Iq(iq));
            self.release();
        }
    }

    fn release(&self) {
        lock(&self.ft.inner.incoming).remove(&self.key);
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
            ErrorKind::Misuse("this offer was already answered".into()),
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
        let ft = self.ft.clone();
        let from = self.from.clone();
        let key = self.key.clone();
        tokio::spawn(async move {
            let mut side = side;
            let r = receive(&ft, &mut side, offer, from, sink, options).await;
            lock(&ft.inner.incoming).remove(&key);
            side.finish(r);
        });
        handle
    }
}

impl<T: StanzaTransport + Clone> Drop for IncomingOffer<T> {
    fn drop(&mut self) {
        if let Some(offer) = self.offer.take() {
            self.ft.spawn_send(Stanza::Iq(offer.decline(None)));
            self.release();
        }
    }
}

/// Where an accepted file goes.
enum Destination {
    Dir(PathBuf),
    Writer(Pin<Box<dyn AsyncWrite + Send>>),
}

pub(crate) fn write_error(e: WriteError) -> ErrorKind {
    match e {
        WriteError::TooManyBytes { expected, .. } => ErrorKind::TooLong { expected },
        WriteError::SizeMismatch { expected, received } => ErrorKind::Truncated {
            expected,
            got: received,
        },
        WriteError::HashMismatch {
            expected, actual, ..
        } => ErrorKind::HashMismatch {
            offered: expected,
            received: actual,
        },
        WriteError::Exists(p) => ErrorKind::Exists(p),
        WriteError::Io { source, .. } => ErrorKind::Io(source),
        other => ErrorKind::Io(std::io::Error::other(other.to_string())),
    }
}

async fn receive<T: StanzaTransport + Clone>(
    ft: &FileTransfer<T>,
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
        .map_err(|e| TransferError::new(Stage::Offer, ErrorKind::Protocol(e.to_string())))?;

    // Prepare the target.
    side.reporter.stage(Stage::Prepare);
    let size = offer.file.size;
    let (target, offset) = match sink {
        Destination::Dir(dir) => {
            let part = if options.resume {
                PartFile::open(&dir, &offer.file.name, size).await
            } else {
                PartFile::create(&dir, &offer.file.name, size).await
            };
            let mut part = match part {
                Ok(p) => p,
                Err(WriteError::PartTooLong { .. }) => {
                    PartFile::create(&dir, &offer.file.name, size)
                        .await
                        .map_err(|e| TransferError::new(Stage::Prepare, write_error(e)))?
                }
                Err(e) => {
                    ft.spawn_send(Stanza::Iq(offer.decline(Some("cannot store the file"))));
                    return Err(TransferError::new(Stage::Prepare, write_error(e)));
                }
            };
            let offset = if offer.file.supports_ranges() {
                part.offset()
            } else {
                0
            };
            if offset == 0 && part.offset() > 0 {
                // The sender cannot resume: start the part over (still holding it).
                part.start_over()
                    .await
                    .map_err(|e| TransferError::new(Stage::Prepare, write_error(e)))?;
            }
            if expected.md5.is_none() {
                // Nothing to check it against (most clients offer no hash): MD5, the
                // slower digest, is not computed at all.
                part.skip_md5();
            }
            (Sink::Part(part), offset)
        }
        Destination::Writer(w) => {
            let offset = if offer.file.supports_ranges() {
                options.offset.min(size)
            } else {
                0
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
        Sink::Part(part) => Some(PartCleanup::new(part.part_path(), options.keep_partial)),
        Sink::Writer(..) => None,
    };
    let mut target = Some(target);
    let r = deliver(
        ft,
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
        // Removed while the part file (if we still have it) holds it.
        cleanup.failed(matches!(
            e.kind,
            ErrorKind::TooLong { .. } | ErrorKind::HashMismatch { .. }
        ));
    }
    if let Some(cleanup) = cleanup.as_mut() {
        cleanup.disarm();
    }
    drop(target);
    r
}

/// Answers the offer, waits for the bytestream, drains it into `target` (taken out and
/// put back unless it was lost), then verifies and places the file.
#[allow(clippy::too_many_arguments)]
async fn deliver<T: StanzaTransport + Clone>(
    ft: &FileTransfer<T>,
    side: &mut TaskSide,
    offer: &FileOffer,
    from: &Jid,
    target: &mut Option<Sink>,
    offset: u64,
    expected: &Expected,
    options: &AcceptOptions,
) -> Result<Outcome, TransferError> {
    let inner = &ft.inner;
    let config = &inner.config;
    let sid = offer.offer.sid.as_str().to_owned();
    let size = offer.file.size;
    let length = size - offset;
    side.reporter.total(length);

    // Choose a method and get ready for the bytestream before answering.
    let ours = config.offered_namespaces();
    let Some(chosen) = offer.offer.choose(&ours) else {
        ft.spawn_send(Stanza::Iq(offer.offer.no_valid_streams()));
        return Err(TransferError::new(Stage::Offer, ErrorKind::NoCommonMethod));
    };
    let ibb_ok = offer.offer.is_offered(method::IBB) && config.ibb_variant().is_some();
    // `expect` registers the pre-authorisation when it is called, not when its future is
    // first polled: call it now, before the answer goes out, or a peer that sends its
    // bytestreams offer right after our answer (slixmpp does) finds no session.
    let s5b_wait = (chosen == method::BYTESTREAMS).then(|| {
        let expected = xep0065_s5b::Sid::new(sid.clone()).ok().map(|s| {
            inner
                .s5b
                .expect(from.clone(), s, config.stream_start_timeout)
        });
        async move {
            match expected {
                Some(f) => f.await.map_err(Some),
                None => Err(None),
            }
        }
    });
    // IBB is awaited even when S5B was chosen: the libpurple fallback after item-not-found,
    // and Spark's open without any earlier error (seed 004).
    let ibb_window = config.stream_start_timeout + config.s5b_budget + config.fallback_window;
    let ibb_wait = ibb_ok.then(|| inner.ibb.expect(from.clone(), &sid, ibb_window));

    let range = (offset > 0).then(|| Range::from_offset(offset));
    let answer = offer
        .accept(chosen, range)
        .map_err(|e| TransferError::new(Stage::Offer, ErrorKind::Misuse(e.to_string())))?;
    inner
        .transport
        .send(Stanza::Iq(answer))
        .await
        .map_err(|e| TransferError::new(Stage::Offer, ErrorKind::Transport(e.to_string())))?;
    side.reporter.emit(Event::Accepted {
        method: chosen.to_owned(),
        offset,
        at: side.reporter.at(),
    });

    // Connect.
    side.reporter.stage(Stage::Connect);
    let (mut stream, used, fallback) = wait_stream(ft, side, from, s5b_wait, ibb_wait).await?;
    side.reporter.emit(Event::Connected {
        method: used.clone(),
        at: side.reporter.at(),
    });

    // Stream.
    let Some(sink) = target.take() else {
        return Err(lost_target());
    };
    let (back, result) =
        recv_stream::receive(&mut stream, sink, length, side, config.inactivity_timeout).await;
    *target = back;
    let bytes = match result {
        Ok(r) => r,
        Err(e) => {
            // Tell the sender: IBB <close/> or S5B shutdown, then drop.
            if e.is_cancelled_by(Side::Local) && !stream.as_mut().abort() {
                let _ = tokio::time::timeout(Duration::from_secs(2), stream.shutdown()).await;
            }
            return Err(e);
        }
    };
    drop(stream);

    // Verify and place.
    side.reporter.stage(Stage::Verify);
    let streaming = side.reporter.streaming_time();
    let (path, sha256, md5) = match target.take() {
        None => return Err(lost_target()),
        Some(Sink::Part(part)) => {
            let digests = part
                .digests()
                .await
                .map_err(|e| TransferError::new(Stage::Verify, write_error(e)))?;
            let collision = if options.overwrite {
                Collision::Replace
            } else {
                Collision::Rename
            };
            let path = part
                .finish(expected, collision)
                .await
                .map_err(|e| TransferError::new(Stage::Verify, write_error(e)))?;
            (Some(path), digests.sha256_hex(), digests.md5_hex())
        }
        Some(Sink::Writer(_, lanes)) => {
            let digests = lanes.digests().await.map_err(|e| {
                TransferError::new(Stage::Verify, ErrorKind::Io(std::io::Error::other(e)))
            })?;
            let md5 = digests.md5_hex();
            if let Some(md5) = &md5 {
                check_md5(expected, md5)?;
            }
            (None, digests.sha256_hex(), md5)
        }
    };
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
        md5,
        path,
    })
}

fn lost_target() -> TransferError {
    TransferError::new(
        Stage::Stream,
        ErrorKind::Misuse("the receive target was lost".into()),
    )
}

/// The `.part` of a transfer that failed: removed unless the policy keeps partial files,
/// and always when its content is known to be wrong or it is empty (nothing to resume).
/// Works from the path, so it also applies when the part file itself was lost (a hung
/// writer abandoned after a cancel); on Unix it removes the path only while it still names
/// the same file. Dropped while armed (the receiving task itself was dropped), it applies
/// the policy too.
#[derive(Debug)]
struct PartCleanup {
    path: PathBuf,
    keep: bool,
    id: Option<FileId>,
    armed: bool,
}

impl PartCleanup {
    fn new(path: &Path, keep: bool) -> Self {
        Self {
            path: path.to_owned(),
            keep,
            id: file_id(path),
            armed: true,
        }
    }

    /// The transfer failed; `wrong` when the content is known to be bad.
    fn failed(&mut self, wrong: bool) {
        if !self.armed {
            return;
        }
        self.armed = false;
        let empty = std::fs::metadata(&self.path).is_ok_and(|m| m.len() == 0);
        if (wrong || !self.keep || empty) && file_id(&self.path) == self.id {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for PartCleanup {
    fn drop(&mut self) {
        if self.armed {
            self.failed(false);
        }
    }
}

#[cfg(unix)]
type FileId = (u64, u64);

#[cfg(unix)]
fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
type FileId = ();

#[cfg(not(unix))]
fn file_id(path: &Path) -> Option<FileId> {
    path.exists().then_some(())
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
