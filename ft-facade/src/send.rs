//! The sender's run: prepare, (disco), offer, connect (S5B, fallback to IBB), stream, close.

use std::io::SeekFrom;

use ft_transport::StanzaTransport;
use jid::Jid;
use tokio::io::{AsyncRead, AsyncSeekExt, AsyncWriteExt};
use xep0030_disco::features;
use xep0065_s5b::{Attempt, Connected};
use xep0095_si::{Sid, method};
use xep0096_file::{File, FileMeta, FileOffer, HashLanes, answer_range};

use crate::config::{IbbStanza, Method};
use crate::copy::{self, guarded};
use crate::error::{ErrorKind, Side, Stage, TransferError};
use crate::event::{CandidateReport, Event, FileInfo, MethodUsed, Outcome};
use crate::glue::BoxStream;
use crate::handle::TaskSide;
use crate::manager::{FileTransfer, SendOptions, Source};

fn err(stage: Stage, kind: ErrorKind) -> TransferError {
    TransferError::new(stage, kind)
}

/// What is being sent, once prepared.
struct Prepared {
    reader: Box<dyn AsyncRead + Send + Unpin>,
    info: FileInfo,
    /// The whole file's SHA-256, when it was read in full before the offer (a path).
    sha256: Option<String>,
    seekable: Option<tokio::fs::File>,
}

async fn prepare(source: Source) -> Result<Prepared, TransferError> {
    match source {
        Source::Reader(reader, info) => Ok(Prepared {
            reader,
            info,
            sha256: None,
            seekable: None,
        }),
        Source::Path(path) => {
            let meta = FileMeta::from_path(&path).map_err(|e| err(Stage::Prepare, e.into()))?;
            let mut file = tokio::fs::File::open(&path)
                .await
                .map_err(|e| err(Stage::Prepare, e.into()))?;
            // The offer carries the MD5 (QXmpp checks it), so the whole file is read once
            // before offering; MD5 and SHA-256 run side by side on their own threads.
            let mut hashes = HashLanes::new();
            let n = copy::hash_reader(&mut file, None, &mut hashes)
                .await
                .map_err(|e| err(Stage::Prepare, e.into()))?;
            if n != meta.size {
                return Err(err(
                    Stage::Prepare,
                    ErrorKind::Io(std::io::Error::other(format!(
                        "{} changed while being read ({n} of {} bytes)",
                        path.display(),
                        meta.size
                    ))),
                ));
            }
            let digests = hashes
                .digests()
                .await
                .map_err(|e| err(Stage::Prepare, ErrorKind::Io(std::io::Error::other(e))))?;
            let sha256 = digests.sha256_hex();
            let mut info = FileInfo::new(meta.name.clone(), meta.size);
            info.md5 = digests.md5_hex();
            info.date = meta.to_file(None).date;
            info.mime_type = Some(meta.mime_type.to_owned());
            file.seek(SeekFrom::Start(0))
                .await
                .map_err(|e| err(Stage::Prepare, e.into()))?;
            Ok(Prepared {
                reader: Box::new(tokio::io::empty()),
                info,
                sha256: Some(sha256),
                seekable: Some(file),
            })
        }
    }
}

fn file_element(info: &FileInfo, ranged: bool) -> Result<File, TransferError> {
    let mut f = File::new(info.name.clone(), info.size);
    if let Some(md5) = &info.md5 {
        let mut raw = [0u8; 16];
        hex::decode_to_slice(md5, &mut raw).map_err(|_| {
            err(
                Stage::Prepare,
                ErrorKind::Misuse(format!("md5 {md5:?} is not 32 hex digits")),
            )
        })?;
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
    ft: &FileTransfer<T>,
    side: &mut TaskSide,
    to: Jid,
    sid: String,
    source: Source,
    options: SendOptions,
) -> Result<Outcome, TransferError> {
    let inner = &ft.inner;
    let config = &inner.config;
    let methods: Vec<Method> = options
        .methods
        .clone()
        .unwrap_or_else(|| config.methods.clone());
    if methods.is_empty() {
        return Err(err(
            Stage::Prepare,
            ErrorKind::Misuse("no method configured".into()),
        ));
    }
    let cancel = side.cancel.clone();

    // Prepare: metadata and the MD5 the offer carries.
    side.reporter.stage(Stage::Prepare);
    let mut prepared = tokio::select! {
        biased;
        () = cancel.cancelled() => return Err(crate::handle::cancelled(Stage::Prepare)),
        p = prepare(source) => p?,
    };
    if let Some(desc) = options.desc.clone() {
        prepared.info.desc = Some(desc);
    }
    let size = prepared.info.size;
    side.reporter.total(size);

    // Disco (optional).
    if config.check_features {
        side.reporter.stage(Stage::Disco);
        let supported = guarded(Stage::Disco, &cancel, config.disco_timeout, async {
            inner
                .disco
                .supports(&to, features::SI_FILE_TRANSFER)
                .await
                .map_err(|e| ErrorKind::Protocol(e.to_string()))
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
    let si_sid = Sid::new(sid.clone())
        .ok_or_else(|| err(Stage::Prepare, ErrorKind::Misuse("empty sid".into())))?;
    let file = file_element(&prepared.info, prepared.seekable.is_some())?;
    let si = FileOffer::si(
        &si_sid,
        file,
        prepared.info.mime_type.as_deref(),
        &namespaces,
    );
    side.reporter.emit(Event::Offered {
        methods: namespaces.iter().map(|s| (*s).to_owned()).collect(),
        at: side.reporter.at(),
    });
    let accepted = tokio::select! {
        biased;
        () = cancel.cancelled() => return Err(crate::handle::cancelled(Stage::Offer)),
        r = xep0095_si::offer(&inner.tracker, &inner.transport, to.clone(), si, config.offer_timeout) => {
            r.map_err(|e| err(Stage::Offer, e.into()))?
        }
    };
    let range = answer_range(&accepted)
        .map_err(|e| err(Stage::Offer, ErrorKind::Protocol(e.to_string())))?;
    let (offset, length) = match range {
        Some(r) => r
            .span(size)
            .map_err(|e| err(Stage::Offer, ErrorKind::Protocol(e.to_string())))?,
        None => (0, size),
    };
    side.reporter.emit(Event::Accepted {
        method: accepted.method.clone(),
        offset,
        at: side.reporter.at(),
    });
    side.reporter.total(length);

    // Connect.
    side.reporter.stage(Stage::Connect);
    let ibb_kind = crate::config::ibb_variant(&methods, config.ibb_stanza);
    let block_size = options.block_size.unwrap_or(config.block_size);
    let mut fallback = false;
    let (mut stream, used): (BoxStream, MethodUsed) = if accepted.method == method::BYTESTREAMS {
        let variant = methods
            .iter()
            .copied()
            .find(|m| m.is_s5b())
            .unwrap_or(Method::S5b);
        match connect_s5b(ft, side, &to, &sid, variant).await {
            Ok(c) => c,
            Err(e) if e.is_cancelled_by(Side::Local) => return Err(e),
            Err(e) => {
                // XEP-0096 §4 / libpurple: IBB on the same sid when it was offered.
                let Some(kind) = ibb_kind else {
                    return Err(e);
                };
                side.reporter.emit(Event::Fallback {
                    reason: e.kind.to_string(),
                    at: side.reporter.at(),
                });
                fallback = true;
                open_ibb(ft, side, &to, &sid, block_size, kind).await?
            }
        }
    } else {
        let kind = ibb_kind.unwrap_or(config.ibb_stanza);
        open_ibb(ft, side, &to, &sid, block_size, kind).await?
    };
    side.reporter.emit(Event::Connected {
        method: used.clone(),
        at: side.reporter.at(),
    });

    // Stream. A path was hashed in full before the offer; a reader is hashed as it goes.
    let mut hashes = prepared.sha256.is_none().then(HashLanes::new);
    let mut reader: Box<dyn AsyncRead + Send + Unpin> = match prepared.seekable.take() {
        Some(mut f) => {
            f.seek(SeekFrom::Start(offset))
                .await
                .map_err(|e| err(Stage::Stream, e.into()))?;
            Box::new(f)
        }
        None => {
            let mut r = prepared.reader;
            if offset > 0 {
                let hashes = hashes.get_or_insert_with(HashLanes::new);
                let skipped = copy::hash_reader(&mut r, Some(offset), hashes)
                    .await
                    .map_err(|e| err(Stage::Stream, e.into()))?;
                if skipped != offset {
                    return Err(err(
                        Stage::Stream,
                        ErrorKind::Misuse(format!(
                            "the reader ended before the resume offset {offset}"
                        )),
                    ));
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
    let (sha256, md5) = match (prepared.sha256, sent.hashes) {
        (Some(sha), _) => (sha, prepared.info.md5.clone()),
        (None, Some(h)) => {
            let d = h
                .digests()
                .await
                .map_err(|e| err(Stage::Close, ErrorKind::Io(std::io::Error::other(e))))?;
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
    })
}

fn report_attempts(side: &TaskSide, attempts: &[Attempt]) {
    for a in attempts {
        side.reporter.emit(Event::Candidate(candidate(a)));
    }
}

pub(crate) fn candidate(a: &Attempt) -> CandidateReport {
    CandidateReport {
        jid: a.streamhost.jid.clone(),
        address: format!("{}:{}", a.streamhost.host, a.streamhost.port),
        outcome: match &a.outcome {
            xep0065_s5b::Outcome::Won => "won".to_owned(),
            xep0065_s5b::Outcome::Lost => "lost".to_owned(),
            xep0065_s5b::Outcome::NotTried => "not-tried".to_owned(),
            xep0065_s5b::Outcome::Refused(r) => format!("refused: {r}"),
            xep0065_s5b::Outcome::Failed(r) => format!("failed: {r}"),
            other => format!("{other:?}"),
        },
        duration: a.duration,
    }
}

async fn connect_s5b<T: StanzaTransport + Clone>(
    ft: &FileTransfer<T>,
    side: &mut TaskSide,
    to: &Jid,
    sid: &str,
    variant: Method,
) -> Result<(BoxStream, MethodUsed), TransferError> {
    let inner = &ft.inner;
    let config = &inner.config;
    let cancel = side.cancel.clone();
    let deadline = tokio::time::Instant::now() + config.s5b_budget;
    let proxies = if variant == Method::S5bDirect {
        Vec::new()
    } else {
        side.reporter.stage(Stage::Proxies);
        let found = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(crate::handle::cancelled(Stage::Proxies)),
            r = tokio::time::timeout_at(deadline, ft.proxies()) => r,
        };
        match found {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                tracing::debug!("ft-facade: {e}");
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
    if variant == Method::S5bProxy && proxies.is_empty() && config.s5b.proxies.is_empty() {
        return Err(err(Stage::Proxies, ErrorKind::S5b("no proxy found".into())));
    }
    side.reporter.stage(Stage::Connect);
    let s5b = if variant == Method::S5bProxy {
        &inner.s5b_proxy_only
    } else {
        &inner.s5b
    };
    let s5b_sid = xep0065_s5b::Sid::new(sid.to_owned())
        .map_err(|e| err(Stage::Connect, ErrorKind::Misuse(e.to_string())))?;
    let r = tokio::select! {
        biased;
        () = cancel.cancelled() => return Err(crate::handle::cancelled(Stage::Connect)),
        r = tokio::time::timeout_at(deadline, s5b.connect(to.clone(), s5b_sid, &proxies)) => r,
    };
    let connected: Connected = match r {
        Err(_) => {
            return Err(err(Stage::Connect, ErrorKind::Timeout(config.s5b_budget)));
        }
        Ok(Err(e)) => {
            if let xep0065_s5b::Error::NoStreamHost(a) = &e {
                report_attempts(side, a);
            }
            return Err(err(Stage::Connect, s5b_error(e)));
        }
        Ok(Ok(c)) => c,
    };
    report_attempts(side, &connected.attempts);
    let used = MethodUsed::s5b(&connected.streamhost, inner.transport.jid());
    Ok((Box::pin(connected.stream), used))
}

pub(crate) fn s5b_error(e: xep0065_s5b::Error) -> ErrorKind {
    match e {
        xep0065_s5b::Error::Rejected(se) => ErrorKind::Rejected(se),
        xep0065_s5b::Error::Timeout(d) => ErrorKind::Timeout(d),
        other => ErrorKind::S5b(other.to_string()),
    }
}

async fn open_ibb<T: StanzaTransport + Clone>(
    ft: &FileTransfer<T>,
    side: &mut TaskSide,
    to: &Jid,
    sid: &str,
    block_size: u16,
    kind: IbbStanza,
) -> Result<(BoxStream, MethodUsed), TransferError> {
    let config = &ft.inner.config;
    side.reporter.stage(Stage::Connect);
    let stream = guarded(
        Stage::Connect,
        &side.cancel,
        config.ibb_open_timeout,
        async {
            ft.inner
                .ibb
                .open(to.clone(), sid, block_size, kind)
                .await
                .map_err(ibb_error)
        },
    )
    .await?;
    Ok((stream, MethodUsed::ibb(kind)))
}

pub(crate) fn ibb_error(e: xep0047_ibb::Error) -> ErrorKind {
    match e {
        xep0047_ibb::Error::Rejected(se) => ErrorKind::Rejected(se),
        xep0047_ibb::Error::ClosedByPeer => ErrorKind::Cancelled(Side::Peer),
        other => ErrorKind::Ibb(other.to_string()),
    }
}
