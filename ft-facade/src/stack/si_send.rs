//! The SI stack, sender side: the XEP-0096 offer and its answer (with the peer's range),
//! then the bytestream on the SI sid: S5B (proxies, candidates, the budget) falling back to
//! IBB when it was offered, or IBB at once.

use std::sync::Arc;

use ft_transport::{Sid, StanzaTransport};
use jid::Jid;
use xep0065_s5b::{Attempt, Connected};
use xep0095_si::method;
use xep0096_file::{File, FileOffer, answer_range};

use crate::config::{IbbOptions, Method, S5bRoute};
use crate::error::{ErrorKind, Misuse, Side, Stage, TransferError};
use crate::event::{CandidateReport, Event, FallbackReason, FileInfo, MethodUsed};
use crate::glue::BoxStream;
use crate::handle::TaskSide;
use crate::options::SendOptions;
use crate::shared::Shared;
use crate::stack::{Established, Negotiated};

fn err(stage: Stage, kind: impl Into<ErrorKind>) -> TransferError {
    TransferError::new(stage, kind.into())
}

/// What the sender asks the SI stack for.
pub(crate) struct Request<'a> {
    pub(crate) to: &'a Jid,
    pub(crate) sid: &'a Sid,
    pub(crate) info: &'a FileInfo,
    /// Whether the source can seek (a path): the offer then announces ranged transfers.
    pub(crate) ranged: bool,
    /// The whole file's size.
    pub(crate) size: u64,
    /// The methods to offer, most preferred first.
    pub(crate) methods: &'a [Method],
    pub(crate) options: &'a SendOptions,
}

/// Offers the file, waits for the answer, and sets up the bytestream the peer chose.
pub(crate) async fn negotiate<T: StanzaTransport + Clone>(
    shared: &Arc<Shared<T>>,
    side: &mut TaskSide,
    request: Request<'_>,
) -> Result<Negotiated, TransferError> {
    let Request {
        to,
        sid,
        info,
        ranged,
        size,
        methods,
        options,
    } = request;
    let config = &shared.config;
    let cancel = side.cancel.clone();

    // Offer.
    side.reporter.stage(Stage::Offer);
    let namespaces = crate::config::namespaces(methods);
    let file = file_element(info, ranged)?;
    let si = FileOffer::si(sid, file, info.mime_type.as_deref(), &namespaces);
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
    let ibb = options
        .ibb
        .unwrap_or_else(|| si_open_options(config.ibb_options, config.ibb.is_adaptive_chunks()));
    let mut fallback = false;
    let (stream, used): (BoxStream, MethodUsed) = if accepted.method == method::BYTESTREAMS {
        let route = options.s5b_route.unwrap_or(config.s5b_route);
        match connect_s5b(shared, side, to, sid, route).await {
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
                open_ibb(shared, side, to, sid, ibb).await?
            }
        }
    } else {
        open_ibb(shared, side, to, sid, ibb).await?
    };
    Ok(Negotiated {
        established: Established {
            stream,
            method: used,
            fallback,
            stack: super::Stack::Si,
        },
        offset,
        length,
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
/// The largest block size an SI sender proposes in its IBB `<open/>` when the size is only a
/// ceiling for the adaptive chunk search (the user named none).
///
/// Unlike Jingle (XEP-0261 negotiates the block size inside the session), SI has one try:
/// slixmpp (8192 at most) answers a larger open `resource-constraint` but has already spent
/// the sid's authorisation on it, so the smaller retry XEP-0047 §2.2 allows is refused
/// `not-acceptable`. Every SI peer we know takes 8192 or retries cleanly below it (QXmpp and
/// libpurple at 4096); only a size the user names (`Config::block_size`,
/// `SendOptions::with_ibb`) is proposed above it.
pub(crate) const SI_IBB_OPEN_CEILING: u16 = 8192;

/// What an SI sender proposes: the configured options, the block size lowered to
/// [`SI_IBB_OPEN_CEILING`] while it is only a ceiling (`adaptive`).
fn si_open_options(configured: IbbOptions, adaptive: bool) -> IbbOptions {
    if adaptive {
        IbbOptions {
            block_size: configured.block_size.min(SI_IBB_OPEN_CEILING),
            ..configured
        }
    } else {
        configured
    }
}

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
