//! The sender's run: prepare, (disco), offer, connect (S5B, fallback to IBB), stream, close.

use std::io::SeekFrom;
use std::sync::Arc;

use ft_transport::{Sid, StanzaTransport};
use jid::Jid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use xep0030_disco::features;
use xep0065_s5b::{Attempt, Connected};
use xep0095_si::method;
use xep0096_file::{File, FileMeta, FileOffer, HashLanes, answer_range};

use crate::config::{IbbOptions, Method, S5bRoute};
use crate::copy::{self, guarded};
use crate::error::{ErrorKind, Misuse, Side, Stage, TransferError};
use crate::event::{
    CandidateReport, Delivery, Event, FallbackReason, FileInfo, MethodUsed, Outcome, Warning,
};
use crate::glue::BoxStream;
use crate::handle::TaskSide;
use crate::options::{SendOptions, Source};
use crate::shared::Shared;

fn err(stage: Stage, kind: impl Into<ErrorKind>) -> TransferError {
    TransferError::new(stage, kind.into())
}

/// What is being sent, once prepared.
struct Prepared {
    reader: Box<dyn AsyncRead + Send + Unpin>,
    info: FileInfo,
    /// The whole file's SHA-256, when it was read in full before the offer (a path within
    /// [`OfferHash::max_size`](crate::OfferHash::max_size)).
    sha256: Option<String>,
    seekable: Option<tokio::fs::File>,
}

/// Reads the metadata; hashes the file before the offer only when it is within
/// `hash_limit` bytes (see [`OfferHash`](crate::OfferHash)), so a large file's offer goes
/// out at once, without `hash`.
async fn prepare(source: Source, hash_limit: u64) -> Result<Prepared, TransferError> {
    let path = match source {
        Source::Reader(reader, info) => {
            return Ok(Prepared {
                reader,
                info,
                sha256: None,
                seekable: None,
            });
        }
        Source::Path(path) => path,
    };
    let meta = FileMeta::from_path(&path).map_err(|e| err(Stage::Prepare, e))?;
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| err(Stage::Prepare, e))?;
    let mut info = FileInfo::new(meta.name.clone(), meta.size);
    info.date = meta.to_file(None).date;
    info.mime_type = Some(meta.mime_type.to_owned());
    let mut sha256 = None;
    if meta.size <= hash_limit {
        // The offer carries the MD5 (QXmpp checks it): the file is read once before
        // offering, MD5 and SHA-256 side by side on their own threads.
        let mut hashes = HashLanes::new();
        // At most one byte past the size (a grown file is caught alike), so that the read
        // buffer fits the file: a small file does not take a 256 KiB buffer (issue 9).
        let n = copy::hash_reader(&mut file, Some(meta.size.saturating_add(1)), &mut hashes)
            .await
            .map_err(|e| err(Stage::Prepare, e))?;
        if n != meta.size {
            return Err(err(
                Stage::Prepare,
                Misuse::FileChanged {
                    path,
                    read: n,
                    size: meta.size,
                },
            ));
        }
        let digests = hashes.digests().await.map_err(|e| err(Stage::Prepare, e))?;
        sha256 = Some(digests.sha256_hex());
        info.md5 = digests.md5_hex();
        file.seek(SeekFrom::Start(0))
            .await
            .map_err(|e| err(Stage::Prepare, e))?;
    }
    Ok(Prepared {
        reader: Box::new(tokio::io::empty()),
        info,
        sha256,
        seekable: Some(file),
    })
}

fn file_element(info: &FileInfo, ranged: bool) -> Result<File, TransferError> {
    let size = info
        .size
        .ok_or_else(|| err(Stage::Prepare, Misuse::UnknownSize))?;
    let mut f = File::new(info.name.clone(), size);
    if let Some(md5) = &info.md5 {
        let mut raw = [0u8; 16];
        hex::decode_to_slice(md5, &mut raw)
            .map_err(|_| err(Stage::Prepare, Misuse::BadMd5(md5.clone())))?;
        f = f.with_md5(raw);
    }
    f.date = info.date.clone();
    if let Some(desc) = &info.desc {
        f = f.with_desc(desc.clone());
    }
    if ranged {
        f = f.with_ranged();
    }
    Ok(f)
}

pub(crate) async fn run<T: StanzaTransport + Clone>(
    shared: &Arc<Shared<T>>,
    side: &mut TaskSide,
    to: Jid,
    sid: Sid,
    source: Source,
    options: SendOptions,
) -> Result<Outcome, TransferError> {
    let config = &shared.config;
    let methods: Vec<Method> = options
        .methods
        .clone()
        .unwrap_or_else(|| config.methods.clone());
    if methods.is_empty() {
        return Err(err(Stage::Prepare, Misuse::NoMethod));
    }
    let cancel = side.cancel.clone();

    // Prepare: metadata, and the MD5 the offer carries when the file is small enough.
    side.reporter.stage(Stage::Prepare);
    let mut prepared = tokio::select! {
        biased;
        () = cancel.cancelled() => return Err(crate::handle::cancelled(Stage::Prepare)),
        p = prepare(source, config.offer_hash.max_size) => p?,
    };
    if let Some(desc) = options.desc.clone() {
        prepared.info.desc = Some(desc);
    }
    let size = prepared
        .info
        .size
        .ok_or_else(|| err(Stage::Prepare, Misuse::UnknownSize))?;
    side.reporter.total(Some(size));

    // Disco (optional).
    if config.check_features {
        side.reporter.stage(Stage::Disco);
        let supported = guarded(Stage::Disco, &cancel, config.disco.timeout, async {
            shared.disco.supports(&to, features::SI_FILE_TRANSFER).await
        })
        .await?;
        side.reporter.emit(Event::Disco {
            supported,
            at: side.reporter.at(),
        });
        if !supported {
            return Err(err(Stage::Disco, ErrorKind::NoCommonMethod));
        }
    }

    // Offer.
    side.reporter.stage(Stage::Offer);
    let namespaces = crate::config::namespaces(&methods);
    let file = file_element(&prepared.info, prepared.seekable.is_some())?;
    let si = FileOffer::si(&sid, file, prepared.info.mime_type.as_deref(), &namespaces);
    side.reporter.emit(Event::Offered {
        methods: namespaces.iter().map(|s| (*s).to_owned()).collect(),
        at: side.reporter.at(),
    });
    let accepted = tokio::select! {
        biased;
        () = cancel.cancelled() => return Err(crate::handle::cancelled(Stage::Offer)),
        r = xep0095_si::offer(&shared.tracker, &shared.transport, to.clone(), si, config.offer_timeout) => {
            r.map_err(|e| err(Stage::Offer, e))?
        }
    };
    let range = answer_range(&accepted).map_err(|e| err(Stage::Offer, e))?;
    let (offset, length) = match range {
        Some(r) => r.span(size).map_err(|e| err(Stage::Offer, e))?,
        None => (0, size),
    };
    side.reporter.emit(Event::Accepted {
        method: accepted.method.clone(),
        offset,
        at: side.reporter.at(),
    });
    side.reporter.total(Some(length));

    // Connect.
    side.reporter.stage(Stage::Connect);
    let ibb_offered = methods.contains(&Method::Ibb);
    let ibb = options.ibb.unwrap_or(config.ibb_options);
    let mut fallback = false;
    let (mut stream, used): (BoxStream, MethodUsed) = if accepted.method == method::BYTESTREAMS {
        let route = options.s5b_route.unwrap_or(config.s5b_route);
        match connect_s5b(shared, side, &to, &sid, route).await {
            Ok(c) => c,
            Err(e) if e.is_cancelled_by(Side::Local) => return Err(e),
            Err(e) => {
                // XEP-0096 §4 / libpurple: IBB on the same sid when it was offered.
                if !ibb_offered {
                    return Err(e);
                }
                side.reporter.emit(Event::Fallback {
                    reason: FallbackReason::S5bFailed(Arc::new(e.kind)),
                    at: side.reporter.at(),
                });
                fallback = true;
                open_ibb(shared, side, &to, &sid, ibb).await?
            }
        }
    } else {
        open_ibb(shared, side, &to, &sid, ibb).await?
    };
    side.reporter.emit(Event::Connected {
        method: used.clone(),
        at: side.reporter.at(),
    });

    // Stream. A path hashed before the offer is not hashed again; otherwise the bytes are
    // hashed as they go (and, when resuming, the part before them first), so the sender
    // always reports the SHA-256 of the whole file.
    let mut hashes = prepared.sha256.is_none().then(|| {
        let mut lanes = HashLanes::new();
        if prepared.info.md5.is_none() && prepared.seekable.is_some() {
            // Nobody checks an MD5 that was not offered: SHA-256 only.
            lanes.skip_md5();
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

    // Close: the half-close Prosody's proxy needs to release the tail, or IBB's <close/>.
    side.reporter.stage(Stage::Close);
    guarded(Stage::Close, &cancel, config.close_timeout, async {
        stream.shutdown().await.map_err(copy::peer_gone)
    })
    .await?;
    let streaming = side.reporter.streaming_time();
    let (delivery, warnings) = delivery(&mut stream, &used, config.receiver_close_grace).await;
    let (sha256, md5) = match (prepared.sha256, sent.hashes) {
        (Some(sha), _) => (sha, prepared.info.md5.clone()),
        (None, Some(h)) => {
            let d = h.digests().await.map_err(|e| err(Stage::Close, e))?;
            (d.sha256_hex(), d.md5_hex().filter(|_| offset == 0))
        }
        (None, None) => (String::new(), None),
    };
    Ok(Outcome {
        peer: to,
        sid,
        method: used,
        fallback,
        bytes: sent.bytes,
        offset,
        elapsed: side.reporter.at(),
        streaming,
        sha256,
        md5,
        path: None,
        delivery,
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

fn report_attempts(side: &TaskSide, attempts: &[Attempt]) {
    for a in attempts {
        side.reporter
            .emit(Event::Candidate(CandidateReport::new(a)));
    }
}

async fn connect_s5b<T: StanzaTransport + Clone>(
    shared: &Shared<T>,
    side: &mut TaskSide,
    to: &Jid,
    sid: &Sid,
    route: S5bRoute,
) -> Result<(BoxStream, MethodUsed), TransferError> {
    let config = &shared.config;
    let cancel = side.cancel.clone();
    let deadline = tokio::time::Instant::now() + config.s5b_budget;
    let proxies = if route == S5bRoute::Direct {
        Vec::new()
    } else {
        side.reporter.stage(Stage::Proxies);
        let found = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(crate::handle::cancelled(Stage::Proxies)),
            r = tokio::time::timeout_at(deadline, shared.proxies()) => r,
        };
        match found {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                tracing::debug!("ft-facade: proxy discovery: {e}");
                Vec::new()
            }
            Err(_) => Vec::new(),
        }
    };
    side.reporter.emit(Event::Proxies {
        streamhosts: proxies
            .iter()
            .map(|s| format!("{} {}:{}", s.jid, s.host, s.port))
            .collect(),
        at: side.reporter.at(),
    });
    if route == S5bRoute::Proxy && proxies.is_empty() && config.s5b.proxies.is_empty() {
        return Err(err(Stage::Proxies, ErrorKind::NoProxy));
    }
    side.reporter.stage(Stage::Connect);
    let s5b = if route == S5bRoute::Proxy {
        &shared.s5b_proxy_only
    } else {
        &shared.s5b
    };
    let r = tokio::select! {
        biased;
        () = cancel.cancelled() => return Err(crate::handle::cancelled(Stage::Connect)),
        r = tokio::time::timeout_at(deadline, s5b.connect(to.clone(), sid.clone(), &proxies)) => r,
    };
    let connected: Connected = match r {
        Err(_) => {
            return Err(err(Stage::Connect, ErrorKind::Timeout(config.s5b_budget)));
        }
        Ok(Err(e)) => {
            if let xep0065_s5b::Error::NoStreamHost(a) = &e {
                report_attempts(side, a);
            }
            return Err(err(Stage::Connect, e));
        }
        Ok(Ok(c)) => c,
    };
    report_attempts(side, &connected.attempts);
    let used = MethodUsed::s5b(&connected.streamhost, shared.transport.jid());
    Ok((Box::pin(connected.stream), used))
}

/// Opens IBB; the open's timeout is the IBB driver's own
/// ([`xep0047_ibb::Config::open_timeout`]), only a cancel cuts it short.
async fn open_ibb<T: StanzaTransport + Clone>(
    shared: &Shared<T>,
    side: &mut TaskSide,
    to: &Jid,
    sid: &Sid,
    options: IbbOptions,
) -> Result<(BoxStream, MethodUsed), TransferError> {
    side.reporter.stage(Stage::Connect);
    let stream = tokio::select! {
        biased;
        () = side.cancel.cancelled() => return Err(crate::handle::cancelled(Stage::Connect)),
        r = shared.ibb.open(to.clone(), sid.clone(), options) => r.map_err(|e| err(Stage::Connect, e))?,
    };
    Ok((stream, MethodUsed::ibb(options.stanza)))
}
