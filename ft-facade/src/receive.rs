//! The receiver's run, whatever the stack: the target prepared (the safe `.part`, its
//! resume offset, the digests to compute), the stack's answer and bytestream
//! ([`StackOffer::answer_and_wait`]), then [`land`]: drained, verified against the
//! [`Expectations`], placed, reported. Failures leave the `.part` as the policy says.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ft_transport::{Sid, StanzaTransport};
use jid::Jid;
use tokio::io::{AsyncWrite, AsyncWriteExt as _};
use xep0096_file::{Collision, Expected, HashLanes, PartFile, PartKey};

use crate::cleanup::PartCleanup;
use crate::error::{ErrorKind, Misuse, Side, Stage, TransferError};
use crate::event::{Delivery, Event, Outcome};
use crate::handle::TaskSide;
use crate::options::AcceptOptions;
use crate::recv_stream::{self, Sink};
use crate::shared::Shared;
use crate::stack::{Established, Incoming, StackOffer};
use crate::verify::{Computed, Expectations, HashAlgo};

/// Where an accepted file goes.
pub(crate) enum Destination {
    Dir(PathBuf),
    Writer(Pin<Box<dyn AsyncWrite + Send>>),
}

/// The prepared target: the sink, where the bytes start, and the algorithms computed beyond
/// MD5 and SHA-256 (in the order of the sink's extra digests).
pub(crate) struct Target {
    pub(crate) sink: Sink,
    pub(crate) offset: u64,
    pub(crate) extra: Vec<HashAlgo>,
}

/// Opens the target for `incoming`: a `.part` in `dir` (resumed when asked and the sender
/// can start at an offset), or the application's writer (from `options.offset`). A failure
/// comes with the text to decline the offer with.
pub(crate) async fn prepare(
    policy: &crate::Policy,
    incoming: &Incoming,
    dest: Destination,
    options: &AcceptOptions,
) -> Result<Target, (TransferError, String)> {
    let expectations = &incoming.expectations;
    let size = incoming.key.size;
    let (algos, digests): (Vec<HashAlgo>, Vec<_>) =
        expectations.extra_digests().into_iter().unzip();
    match dest {
        Destination::Dir(dir) => {
            // B4: an offer that does not fit is declined before anything is opened.
            if let Err(n) = policy.check_free_space(&dir, size) {
                let e = ErrorKind::NoSpace {
                    size: n.size,
                    available: n.available,
                };
                return Err((TransferError::new(Stage::Prepare, e), n.text()));
            }
            // A part of ours for this very file (same peer, name, size, date or hash) is
            // resumed when the sender announced ranges; anything else starts afresh, in a
            // part we create (see `PartFile`).
            let part = if options.resume {
                PartFile::open_with(&dir, &incoming.key, incoming.ranged, digests).await
            } else {
                let key = PartKey::new(incoming.key.name.clone(), size);
                PartFile::open_with(&dir, &key, false, digests).await
            };
            let mut part = part.map_err(|e| {
                let e = TransferError::new(Stage::Prepare, e.into());
                (e, "cannot store the file".to_owned())
            })?;
            let offset = part.offset();
            if !expectations.wants_md5() {
                // Nothing to check it against (most clients offer no hash): MD5, the
                // slower digest, is not computed at all.
                part.skip_md5();
            }
            Ok(Target {
                sink: Sink::Part(Box::new(part)),
                offset,
                extra: algos,
            })
        }
        Destination::Writer(w) => {
            // Without a size there is nothing to resume against.
            let offset = match size {
                Some(size) if incoming.ranged => options.offset.min(size),
                _ => 0,
            };
            let mut lanes = HashLanes::new();
            let mut extra = Vec::new();
            if offset == 0 {
                for (algo, d) in algos.into_iter().zip(digests) {
                    if lanes.add_digest(d).is_ok() {
                        extra.push(algo);
                    }
                }
            }
            if !expectations.wants_md5() || offset > 0 {
                // MD5 is checked only against an offered hash, and only for a whole file.
                lanes.skip_md5();
            }
            Ok(Target {
                sink: Sink::Writer(w, lanes),
                offset,
                extra,
            })
        }
    }
}

pub(crate) async fn receive<T: StanzaTransport + Clone>(
    shared: &Arc<Shared<T>>,
    side: &mut TaskSide,
    offer: StackOffer,
    from: Jid,
    dest: Destination,
    options: AcceptOptions,
) -> Result<Outcome, TransferError> {
    side.reporter.emit(Event::Offered {
        methods: offer.methods(),
        at: side.reporter.at(),
    });
    let incoming = offer.incoming()?;

    // Prepare the target.
    side.reporter.stage(Stage::Prepare);
    let target = match prepare(&shared.config.policy, &incoming, dest, &options).await {
        Ok(t) => t,
        Err((e, text)) => {
            offer.refuse(shared, crate::stack::Refuse::Decline(Some(&text)));
            return Err(e);
        }
    };
    let sid = offer.sid().clone();
    let offer = &offer;
    let connect = async |side: &mut TaskSide, offset: u64| {
        offer.answer_and_wait(shared, side, &from, offset).await
    };
    land_prepared(
        shared,
        side,
        target,
        incoming.expectations,
        (&from, &sid),
        options,
        connect,
    )
    .await
}

/// After [`prepare`], whatever the stack: `connect` answers and brings the bytestream up
/// (with the Jingle session to watch and end, if any), then [`land`]; a failure leaves the
/// `.part` as the policy says.
pub(crate) async fn land_prepared<T, C>(
    shared: &Arc<Shared<T>>,
    side: &mut TaskSide,
    target: Target,
    mut expectations: Expectations,
    (from, sid): (&Jid, &Sid),
    options: AcceptOptions,
    connect: C,
) -> Result<Outcome, TransferError>
where
    T: StanzaTransport + Clone,
    C: AsyncFnOnce(
        &mut TaskSide,
        u64,
    ) -> Result<
        (Established, Option<crate::stack::jingle::link::Link<T>>),
        TransferError,
    >,
{
    let Target {
        sink,
        offset,
        extra,
    } = target;

    // From here on a failure, whatever its stage, leaves the `.part` only as the policy
    // says, also when the writer had to be abandoned and the part file is lost with it.
    let mut cleanup = match &sink {
        Sink::Part(part) => Some(PartCleanup::new(
            part.part_path(),
            part.sidecar_path(),
            options.keep_partial,
        )),
        Sink::Writer(..) => None,
    };
    let mut target = Some(sink);
    let r = async {
        let length = expectations.size.map(|size| size - offset);
        side.reporter.total(length);
        let (established, link) = connect(side, offset).await?;
        let landing = Landing {
            peer: from,
            sid,
            offset,
            extra: &extra,
            max_size: shared.config.policy.max_size,
            inactivity: shared.config.inactivity_timeout,
        };
        let landed = land(
            side,
            established,
            &mut target,
            &mut expectations,
            &options,
            landing,
        );
        match link {
            None => landed.await,
            Some(link) => crate::stack::jingle::incoming::land_and_end(link, landed).await,
        }
    }
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
        cleanup.failed(wrong).await;
    }
    if let Some(cleanup) = cleanup.as_mut() {
        cleanup.disarm();
    }
    drop(target);
    r
}

/// How long a failed receive waits for its kept `.part` to be synced.
const CHECKPOINT_GRACE: Duration = Duration::from_secs(5);

/// What [`land`] reports and bounds, besides the bytestream and the target.
pub(crate) struct Landing<'a> {
    pub(crate) peer: &'a Jid,
    pub(crate) sid: &'a Sid,
    pub(crate) offset: u64,
    /// The algorithms of the sink's extra digests, in order.
    pub(crate) extra: &'a [HashAlgo],
    /// The size policy, for an offer without a size.
    pub(crate) max_size: Option<u64>,
    pub(crate) inactivity: Duration,
}

/// The stack-neutral end of a receive: drains the established bytestream into `target`
/// (taken out and put back unless it was lost), verifies, places the file, reports.
pub(crate) async fn land(
    side: &mut TaskSide,
    established: Established,
    target: &mut Option<Sink>,
    expectations: &mut Expectations,
    options: &AcceptOptions,
    landing: Landing<'_>,
) -> Result<Outcome, TransferError> {
    let Established {
        mut stream,
        method: used,
        fallback,
        stack,
    } = established;
    side.reporter.emit(Event::Connected {
        method: used.clone(),
        at: side.reporter.at(),
    });
    let offset = landing.offset;
    let length = expectations.size.map(|size| size - offset);

    // Stream.
    let Some(sink) = target.take() else {
        return Err(lost_target());
    };
    let (back, result) = recv_stream::receive(
        &mut stream,
        sink,
        recv_stream::Length::new(length, landing.max_size),
        side,
        landing.inactivity,
    )
    .await;
    *target = back;
    let bytes = match result {
        Ok(r) => r,
        Err(e) => {
            if e.is_cancelled_by(Side::Local) {
                if !stream.as_mut().abort() {
                    // Tell the sender: IBB <close/> or S5B shutdown, then drop.
                    let _ = tokio::time::timeout(Duration::from_secs(2), stream.shutdown()).await;
                }
            } else if !matches!(e.kind, ErrorKind::Truncated { .. }) {
                // Whatever failed here (more than offered, the disk full, a write error, the
                // peer's reset), the sender must not read our close as an acknowledgement:
                // S5B gets a reset, never a FIN (BAD-INPUT G11, the disk-full test), IBB's
                // held close answer an error. A stream the sender ended early (truncated)
                // is its own doing: its close is answered as usual (slixmpp reads an error
                // to its cancelling close as a failure of its own).
                stream.as_mut().reject();
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
    let placed = verify(target, expectations, landing.extra, offset, options).await;
    if placed.is_err() {
        // Found wrong, or not placed: the sender must not read our close as "kept".
        stream.as_mut().reject();
    }
    drop(stream);
    let placed = placed?;
    Ok(Outcome {
        peer: landing.peer.clone(),
        sid: landing.sid.clone(),
        method: used,
        fallback,
        stack,
        bytes,
        offset,
        elapsed: side.reporter.at(),
        streaming,
        sha256: placed.sha256,
        md5: placed.md5,
        path: placed.path,
        delivery: Delivery::Received {
            size_checked: expectations.size.is_some(),
            hash_checked: placed.verified_by.is_some(),
        },
        verified_by: placed.verified_by,
        warnings: Vec::new(),
    })
}

/// What verification found and where the file went.
struct Placed {
    path: Option<PathBuf>,
    sha256: String,
    md5: Option<String>,
    verified_by: Option<HashAlgo>,
}

/// Verifies what `target` received against every expected hash it computed (waiting,
/// bounded, for one that comes late) and places the file. A mismatch leaves nothing under
/// the final name (the `.part` is deleted).
async fn verify(
    target: &mut Option<Sink>,
    expectations: &mut Expectations,
    extra: &[HashAlgo],
    offset: u64,
    options: &AcceptOptions,
) -> Result<Placed, TransferError> {
    let at_verify = |e: ErrorKind| TransferError::new(Stage::Verify, e);
    match target.take() {
        None => Err(lost_target()),
        Some(Sink::Part(part)) => {
            let digests = part.digests().await.map_err(|e| at_verify(e.into()))?;
            let extra_values = part
                .extra_digests()
                .await
                .map_err(|e| at_verify(e.into()))?;
            let computed = Computed {
                whole: true,
                md5: digests.md5,
                sha256: Some(digests.sha256),
                extra: extra.iter().copied().zip(extra_values).collect(),
            };
            let expected = expectations.settle(&computed).await;
            let verified_by = match computed.check(&expected) {
                Ok(by) => by,
                Err(e) => {
                    // Removed while still held: nothing under the final name, ever.
                    let _ = part.discard().await;
                    return Err(at_verify(e));
                }
            };
            let collision = if options.overwrite {
                Collision::Replace
            } else {
                Collision::Rename
            };
            // The hashes are checked above; the part checks the size and places the file.
            let size_only = Expected {
                size: expectations.size,
                ..Expected::default()
            };
            let path = part
                .finish(&size_only, collision)
                .await
                .map_err(|e| at_verify(e.into()))?;
            Ok(Placed {
                path: Some(path),
                sha256: digests.sha256_hex(),
                md5: digests.md5_hex(),
                verified_by,
            })
        }
        Some(Sink::Writer(_, lanes)) => {
            let digests = lanes.digests().await.map_err(|e| at_verify(e.into()))?;
            let extra_values = lanes
                .extra_digests()
                .await
                .map_err(|e| at_verify(e.into()))?;
            let computed = Computed {
                // A writer resumed at an offset saw only the tail: nothing to check.
                whole: offset == 0,
                md5: digests.md5,
                sha256: Some(digests.sha256),
                extra: extra.iter().copied().zip(extra_values).collect(),
            };
            let expected = expectations.settle(&computed).await;
            let verified_by = computed.check(&expected).map_err(at_verify)?;
            Ok(Placed {
                path: None,
                sha256: digests.sha256_hex(),
                md5: digests.md5_hex(),
                verified_by,
            })
        }
    }
}

fn lost_target() -> TransferError {
    TransferError::new(Stage::Stream, ErrorKind::Misuse(Misuse::TargetLost))
}
