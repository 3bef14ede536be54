//! The sender's data path, whatever stack negotiated the bytestream: the prepared source
//! streamed over an [`Established`] bytestream with progress, events and cancel, then the
//! end of stream (S5B half-close / IBB `<close/>`) and the honest delivery state.

use std::io::SeekFrom;
use std::sync::Arc;

use crate::HashAlgo;

use ft_transport::{Sid, StanzaTransport};
use jid::Jid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use xep0096_file::HashLanes;

use crate::copy::{self, guarded};
use crate::error::{ErrorKind, Misuse, Stage, TransferError};
use crate::event::{Delivery, Event, FileInfo, MethodUsed, Outcome, Warning};
use crate::glue::BoxStream;
use crate::handle::TaskSide;
use crate::shared::Shared;
use crate::stack::{Established, Negotiated};

fn err(stage: Stage, kind: impl Into<ErrorKind>) -> TransferError {
    TransferError::new(stage, kind.into())
}

/// What is being sent, once prepared.
pub(crate) struct Prepared {
    pub(crate) reader: Box<dyn AsyncRead + Send + Unpin>,
    pub(crate) info: FileInfo,
    /// The whole file's SHA-256, when it was read in full before the offer (a path within
    /// [`OfferHash::max_size`](crate::OfferHash::max_size)).
    pub(crate) sha256: Option<String>,
    pub(crate) seekable: Option<tokio::fs::File>,
    /// A hash to compute while streaming besides SHA-256 (the one a Jingle sender
    /// announced for its `<checksum/>`), even when the SHA-256 was computed before.
    pub(crate) extra_hash: Option<HashAlgo>,
}

/// Called with the whole file's SHA-256 (hex) and its [`Prepared::extra_hash`] digest (if
/// any) once the last byte is written, before the close.
pub(crate) type AfterLastByte = Box<dyn FnOnce(&str, Option<(HashAlgo, Vec<u8>)>) + Send>;

/// Streams `prepared` from `negotiated.offset` on over the established bytestream, shuts it
/// down, and reports what the receiver confirmed.
pub(crate) async fn stream<T: StanzaTransport + Clone>(
    shared: &Arc<Shared<T>>,
    side: &mut TaskSide,
    to: Jid,
    sid: Sid,
    mut prepared: Prepared,
    negotiated: Negotiated,
    after_last_byte: Option<AfterLastByte>,
) -> Result<Outcome, TransferError> {
    let config = &shared.config;
    let cancel = side.cancel.clone();
    let Negotiated {
        established,
        offset,
        length,
    } = negotiated;
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

    // Stream. A path hashed before the offer is not hashed again; otherwise the bytes are
    // hashed as they go (and, when resuming, the part before them first), so the sender
    // always reports the SHA-256 of the whole file.
    let extra = prepared.extra_hash;
    let mut hashes = (prepared.sha256.is_none() || extra.is_some()).then(|| {
        let mut lanes = HashLanes::new();
        if (prepared.info.md5.is_none() && prepared.seekable.is_some()) || prepared.sha256.is_some()
        {
            // Nobody checks an MD5 that was not offered: SHA-256 only.
            lanes.skip_md5();
        }
        if let Some(d) = extra.and_then(crate::verify::digest_for) {
            let _ = lanes.add_digest(d);
        }
        lanes
    });
    let mut reader: Box<dyn AsyncRead + Send + Unpin> = match prepared.seekable.take() {
        Some(mut f) => {
            if let Some(h) = hashes.as_mut().filter(|_| offset > 0) {
                let n = copy::hash_reader(&mut f, Some(offset), h)
                    .await
                    .map_err(|e| err(Stage::Stream, e))?;
                if n != offset {
                    return Err(err(Stage::Stream, Misuse::ShortReader(offset)));
                }
            }
            f.seek(SeekFrom::Start(offset))
                .await
                .map_err(|e| err(Stage::Stream, e))?;
            Box::new(f)
        }
        None => {
            let mut r = prepared.reader;
            if offset > 0 {
                let hashes = hashes.get_or_insert_with(HashLanes::new);
                let skipped = copy::hash_reader(&mut r, Some(offset), hashes)
                    .await
                    .map_err(|e| err(Stage::Stream, e))?;
                if skipped != offset {
                    return Err(err(Stage::Stream, Misuse::ShortReader(offset)));
                }
            }
            r
        }
    };
    let sent = copy::send(
        &mut reader,
        &mut stream,
        length,
        hashes,
        &mut side.reporter,
        &cancel,
        config.inactivity_timeout,
    )
    .await;
    let sent = match sent {
        Ok(s) => s,
        Err(e) => {
            // The transfer failed (cancelled, timed out, the peer left): what is still
            // buffered is useless, so abort rather than flush. Tell the peer in the
            // bytestream's terms: IBB <close/> at once, S5B shutdown.
            if !stream.as_mut().abort() {
                let _ = tokio::time::timeout(
                    config.close_timeout.min(std::time::Duration::from_secs(5)),
                    stream.shutdown(),
                )
                .await;
            }
            return Err(e);
        }
    };

    // The digests of what went out, for the outcome and for a stack that announces the
    // hash after the last byte (Jingle's <checksum/>), before the close.
    let extra_value = match (&sent.hashes, extra) {
        (Some(h), Some(algo)) if algo != HashAlgo::Sha256 => h
            .extra_digests()
            .await
            .map_err(|e| err(Stage::Close, e))?
            .into_iter()
            .next()
            .map(|v| (algo, v)),
        _ => None,
    };
    let (sha256, md5) = match (prepared.sha256, sent.hashes) {
        (Some(sha), _) => (sha, prepared.info.md5.clone()),
        (None, Some(h)) => {
            let d = h.digests().await.map_err(|e| err(Stage::Close, e))?;
            (d.sha256_hex(), d.md5_hex().filter(|_| offset == 0))
        }
        (None, None) => (String::new(), None),
    };
    if let Some(hook) = after_last_byte {
        hook(&sha256, extra_value);
    }

    // Close: the half-close Prosody's proxy needs to release the tail, or IBB's <close/>.
    side.reporter.stage(Stage::Close);
    guarded(Stage::Close, &cancel, config.close_timeout, async {
        stream.shutdown().await.map_err(copy::peer_gone)
    })
    .await?;
    let streaming = side.reporter.streaming_time();
    let (delivery, warnings) = delivery(&mut stream, &used, config.receiver_close_grace).await;
    Ok(Outcome {
        peer: to,
        sid,
        method: used,
        fallback,
        stack,
        bytes: sent.bytes,
        offset,
        elapsed: side.reporter.at(),
        streaming,
        sha256,
        md5,
        path: None,
        delivery,
        verified_by: None,
        warnings,
    })
}

/// What the sender can honestly say about delivery once its end of the stream is shut:
/// IBB over iq was acknowledged chunk by chunk, IBB over message never is; over S5B the
/// receiver closing its side within `grace` (a FIN, not a reset) is the acknowledgement.
async fn delivery(
    stream: &mut BoxStream,
    used: &MethodUsed,
    grace: std::time::Duration,
) -> (Delivery, Vec<Warning>) {
    match stream.ibb_close_unanswered() {
        Some(_) if stream.ibb_close_refused() => {
            (Delivery::Unconfirmed, vec![Warning::RefusedByReceiver])
        }
        Some(unanswered) => {
            let warnings = if unanswered {
                vec![Warning::CloseUnanswered]
            } else {
                Vec::new()
            };
            let delivery = if *used == MethodUsed::IbbMessage {
                Delivery::Unconfirmed
            } else {
                Delivery::Acknowledged
            };
            (delivery, warnings)
        }
        None => {
            // Whatever the receiver still writes is not ours to keep: read and drop it
            // until its close, a reset, or the grace runs out.
            let mut buf = [0u8; 4096];
            let deadline = tokio::time::Instant::now() + grace;
            loop {
                match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
                    Ok(Ok(0)) => return (Delivery::Acknowledged, Vec::new()),
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) => return (Delivery::Unconfirmed, vec![Warning::ResetByReceiver]),
                    Err(_) => {
                        return (Delivery::Unconfirmed, vec![Warning::NoCloseFromReceiver]);
                    }
                }
            }
        }
    }
}
