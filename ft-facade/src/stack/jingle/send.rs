//! The Jingle stack, sender side: session-initiate with the XEP-0234 `<file/>` and our
//! transport (XEP-0260 candidates or XEP-0261), session-accept (its `<range/>`), the
//! bytestream (S5B raced, falling back to IBB by transport-replace within the one
//! budget), and after the bytes: `<checksum/>`, the session's end, the delivery state.

use std::sync::Arc;

use ft_transport::{Sid, StanzaTransport};
use jid::{FullJid, Jid};
use minidom::Element;
use xep0166_jingle::Reason;
use xep0234_jingle_ft::{FileInfo as FtFile, FtEvent, FtSession};
use xep0260_jingle_s5b::Driver;
use xep0260_jingle_s5b::proto::Role;
use xep0261_jingle_ibb::IbbTransport;
use xmpp_parsers::hashes::{Algo, Hash};

use super::link::Link;
use super::transport;
use crate::HashAlgo;
use crate::config::Method;
use crate::error::{ErrorKind, Side, Stage, TransferError};
use crate::event::{Delivery, Event, FallbackReason, FileInfo, MethodUsed, Outcome};
use crate::glue::BoxStream;
use crate::handle::TaskSide;
use crate::options::SendOptions;
use crate::shared::{Shared, random_sid};
use crate::stack::{Established, Negotiated, Stack};

fn err(stage: Stage, kind: impl Into<ErrorKind>) -> TransferError {
    TransferError::new(stage, kind.into())
}

/// What the sender asks the Jingle stack for.
pub(crate) struct Request<'a> {
    pub(crate) to: &'a Jid,
    pub(crate) sid: &'a Sid,
    pub(crate) info: &'a FileInfo,
    pub(crate) size: u64,
    /// The transports to offer, most preferred first (the peer supports each).
    pub(crate) methods: &'a [Method],
    pub(crate) options: &'a SendOptions,
    /// The whole file's SHA-256 (hex) when known before the offer.
    pub(crate) sha256: Option<&'a str>,
    /// The hash to announce (chosen from the peer's disco#info): with SHA-256 the offer
    /// carries `sha256` when known; another goes in `<hash-used/>` and its `<checksum/>`
    /// follows the last byte.
    pub(crate) hash: HashAlgo,
    /// A pull (XEP-0234 §5): we ask the peer for this file (`senders='responder'`) and
    /// receive it; `info`, `size` and `sha256` are not used then.
    pub(crate) pull: Option<FtFile>,
}

/// What goes on after the bytestream is up.
pub(crate) struct Session<T: StanzaTransport + Clone> {
    pub(crate) link: Link<T>,
    /// Whether the offer carried the hash (else a `<checksum/>` follows the last byte).
    pub(crate) hash_in_offer: bool,
}

/// The `<file/>` we offer (or serve for a request).
pub(crate) fn file(info: &FileInfo, size: u64, sha256: Option<&str>, hash: HashAlgo) -> FtFile {
    let hashes: Vec<Hash> = sha256
        .filter(|_| hash == HashAlgo::Sha256)
        .and_then(|h| hex::decode(h).ok())
        .map(|h| Hash::new(Algo::Sha_256, h))
        .into_iter()
        .collect();
    FtFile {
        name: Some(info.name.clone()),
        size: Some(size),
        date: info.date.as_deref().and_then(|d| d.parse().ok()),
        media_type: info.mime_type.clone(),
        desc: info.desc.clone(),
        hash_used: if hashes.is_empty() {
            vec![algo_of(hash)]
        } else {
            Vec::new()
        },
        hashes,
        range: Some(xmpp_parsers::jingle_ft::Range::new()),
    }
}

/// Offers the file, waits for session-accept, and sets up the bytestream.
pub(crate) async fn negotiate<T: StanzaTransport + Clone>(
    shared: &Arc<Shared<T>>,
    side: &mut TaskSide,
    request: Request<'_>,
) -> Result<(Negotiated, Session<T>), TransferError> {
    let Request {
        to,
        sid,
        info,
        size,
        methods,
        options,
        sha256,
        hash,
        pull,
    } = request;
    let pulling = pull.is_some();
    let config = &shared.config;
    let cancel = side.cancel.clone();
    let Some(core) = shared.jingle.clone() else {
        let me = shared.transport.jid().to_string();
        return Err(err(Stage::Offer, crate::JingleError::NotFullJid(me)));
    };
    let peer: FullJid = to
        .clone()
        .try_into_full()
        .map_err(|j| err(Stage::Offer, crate::JingleError::NotFullJid(j.to_string())))?;
    let route = options.s5b_route.unwrap_or(config.s5b_route);
    let ibb_options = options.ibb.unwrap_or(config.ibb_options);
    let ibb_ok = methods.contains(&Method::Ibb);

    // Our transport: S5B candidates (the listener routes our DST.ADDR from now on), or IBB.
    let core_ref = core.clone();
    let mut driver: Option<Driver<'_>> = None;
    let first = methods[0];
    let transport: Element = if first == Method::S5b {
        let local = transport::local_candidates(shared, &core_ref, side, route, true).await?;
        let listener = if local.direct.is_empty() {
            None
        } else {
            core_ref.listener(&config.s5b).await
        };
        let n =
            transport::negotiation(shared, &core_ref, Role::Initiator, to, random_sid(), &local);
        let mut d = Driver::new(n, listener);
        let el = Element::from(d.negotiation().local_transport());
        driver = Some(d);
        el
    } else {
        Element::from(&IbbTransport::new(random_sid(), ibb_options))
    };
    let ibb_offer = (first == Method::Ibb)
        .then(|| IbbTransport::parse(&transport).ok())
        .flatten();

    // Offer.
    side.reporter.stage(Stage::Offer);
    let key = xep0166_jingle::SessionKey::new(peer.clone(), sid.clone());
    let f = pull.unwrap_or_else(|| file(info, size, sha256, hash));
    let hash_in_offer = !f.hashes.is_empty();
    let (ft, rx) = core
        .start_session(&key, |ep, now| {
            let initiate = if pulling {
                FtSession::request
            } else {
                FtSession::offer
            };
            initiate(
                ep,
                now,
                peer.clone(),
                sid.clone(),
                "a-file",
                f,
                transport.clone(),
            )
        })
        .map_err(|e| err(Stage::Offer, crate::JingleError::Session(e)))?;
    let mut link = Link::new(core.clone(), ft, rx);
    side.reporter.emit(Event::Offered {
        methods: vec![transport.ns()],
        at: side.reporter.at(),
    });
    let accepted = loop {
        let ev = tokio::select! {
            biased;
            () = cancel.cancelled() => {
                link.terminate(Reason::Cancel);
                return Err(crate::handle::cancelled(Stage::Offer));
            }
            ev = link.next() => ev,
        };
        match ev {
            Some(FtEvent::Accepted { transport, range }) => break (transport, range),
            Some(_) => {}
            None => {
                let ended = link.ended.clone().unwrap_or_else(unreachable_end);
                return Err(ended.error(Stage::Offer, config.offer_timeout));
            }
        }
    };
    let (their_transport, range) = accepted;
    // A pull: the responder's accept described the file; nothing to check of a range.
    let served = pulling.then(|| link.ft.file().size);
    let (offset, length) = match range {
        _ if pulling => (0, served.flatten().unwrap_or(0)),
        Some(r) if r.offset > size || r.length.is_some_and(|l| r.offset + l > size) => {
            link.terminate(Reason::FailedApplication);
            return Err(err(
                Stage::Offer,
                crate::JingleError::File(xep0234_jingle_ft::FtError::RangeOutOfBounds {
                    offset: r.offset,
                    length: r.length,
                    size,
                }),
            ));
        }
        Some(r) => (r.offset, r.length.unwrap_or(size - r.offset)),
        None => (0, size),
    };
    side.reporter.emit(Event::Accepted {
        method: transport.ns(),
        offset,
        at: side.reporter.at(),
    });
    side.reporter.total(served.unwrap_or(Some(length)));

    // Connect.
    side.reporter.stage(Stage::Connect);
    let mut fallback = false;
    let connected: Result<(BoxStream, MethodUsed), TransferError> = match (driver, ibb_offer) {
        (Some(d), _) => match transport::race(shared, side, &mut link, d).await {
            Ok(c) => Ok(c),
            Err(e) if e.is_cancelled_by(Side::Local) => Err(e),
            Err(e) if link.ended.is_some() => Err(e),
            Err(e) if ibb_ok => {
                side.reporter.emit(Event::Fallback {
                    reason: FallbackReason::S5bFailed(Arc::new(e.kind)),
                    at: side.reporter.at(),
                });
                fallback = true;
                replace_to_ibb(shared, side, &mut link, to, ibb_options).await
            }
            Err(e) => Err(e),
        },
        (None, Some(offer)) => {
            let agreed = their_transport
                .as_ref()
                .ok_or(crate::JingleError::WrongTransport)
                .and_then(|t| IbbTransport::parse(t).map_err(crate::JingleError::Ibb))
                .and_then(|t| offer.check_answer(&t).map_err(crate::JingleError::Ibb));
            match agreed {
                Ok(agreed) => open_ibb(shared, side, to, &agreed).await,
                Err(e) => Err(err(Stage::Connect, e)),
            }
        }
        (None, None) => Err(err(Stage::Connect, crate::JingleError::WrongTransport)),
    };
    let (stream, used) = match connected {
        Ok(c) => c,
        Err(e) => {
            // The peer ended the session meanwhile: its reason says more than the
            // transport's failure.
            if let Some(ended) = link.ended.clone() {
                return Err(ended.error(Stage::Connect, config.s5b_budget));
            }
            let reason = if e.is_cancelled_by(Side::Local) {
                Reason::Cancel
            } else {
                Reason::FailedTransport
            };
            link.terminate(reason);
            return Err(e);
        }
    };
    let negotiated = Negotiated {
        established: Established {
            stream,
            method: used,
            fallback,
            stack: Stack::Jingle,
        },
        offset,
        length,
    };
    Ok((
        negotiated,
        Session {
            link,
            hash_in_offer,
        },
    ))
}

/// The wire value of `algo`.
fn algo_of(algo: HashAlgo) -> Algo {
    xep0300_hashes::HashAlgo::from_name(algo.name()).map_or(Algo::Sha_256, |a| a.to_algo())
}

fn unreachable_end() -> super::link::Ended {
    super::link::Ended {
        reason: None,
        text: None,
        timeout: false,
        refused: None,
    }
}

/// transport-replace to IBB, the peer's transport-accept, then the IBB open.
async fn replace_to_ibb<T: StanzaTransport + Clone>(
    shared: &Arc<Shared<T>>,
    side: &mut TaskSide,
    link: &mut Link<T>,
    to: &Jid,
    options: crate::IbbOptions,
) -> Result<(BoxStream, MethodUsed), TransferError> {
    let offer = IbbTransport::new(random_sid(), options);
    let el = Element::from(&offer);
    let ft = &mut link.ft;
    link.core
        .with(|ep, now| ft.replace_transport(ep, now, el))
        .map_err(|e| err(Stage::Connect, crate::JingleError::Session(e)))?;
    let window = shared.config.fallback_window;
    let cancel = side.cancel.clone();
    let answer = tokio::time::timeout(window, async {
        loop {
            if let Some(a) = link.replaced.take() {
                return Ok(a);
            }
            if link.next().await.is_none() {
                return Err(());
            }
        }
    });
    let answer = tokio::select! {
        biased;
        () = cancel.cancelled() => return Err(crate::handle::cancelled(Stage::Connect)),
        a = answer => a,
    };
    let agreed = match answer {
        Err(_) => return Err(err(Stage::Connect, ErrorKind::Timeout(window))),
        Ok(Err(())) => {
            let ended = link.ended.clone().unwrap_or_else(unreachable_end);
            return Err(ended.error(Stage::Connect, window));
        }
        Ok(Ok(None)) => return Err(err(Stage::Connect, crate::JingleError::ReplaceRejected)),
        // transport-accept may echo our element or carry the peer's answer.
        Ok(Ok(Some(el))) => match IbbTransport::parse(&el) {
            Ok(t) => offer
                .check_answer(&t)
                .map_err(|e| err(Stage::Connect, crate::JingleError::Ibb(e)))?,
            Err(_) => offer.clone(),
        },
    };
    open_ibb(shared, side, to, &agreed).await
}

async fn open_ibb<T: StanzaTransport + Clone>(
    shared: &Shared<T>,
    side: &mut TaskSide,
    to: &Jid,
    agreed: &IbbTransport,
) -> Result<(BoxStream, MethodUsed), TransferError> {
    let options = agreed.open_options();
    let stream = tokio::select! {
        biased;
        () = side.cancel.cancelled() => return Err(crate::handle::cancelled(Stage::Connect)),
        r = shared.ibb.open(to.clone(), agreed.sid.clone(), options) => r.map_err(|e| err(Stage::Connect, e))?,
    };
    Ok((stream, MethodUsed::ibb(options.stanza)))
}

/// After the bytes: waits (bounded) for the receiver to end the session, and makes the
/// delivery state honest: acknowledged only when it ended with `<success/>` or sent
/// `<received/>` (over S5B also closed cleanly); `<media-error/>` is its hash check failing.
pub(crate) async fn finish<T: StanzaTransport + Clone>(
    shared: &Shared<T>,
    side: &mut TaskSide,
    link: &mut Link<T>,
    mut outcome: Outcome,
) -> Result<Outcome, TransferError> {
    let wait = shared.config.close_timeout;
    let cancel = side.cancel.clone();
    let ended = tokio::select! {
        biased;
        () = cancel.cancelled() => {
            link.terminate(Reason::Cancel);
            return Err(crate::handle::cancelled(Stage::Close));
        }
        e = tokio::time::timeout(wait, link.until_end()) => e.ok(),
    };
    let confirmed = match &ended {
        Some(e) if e.is_success() => true,
        Some(e) => return Err(e.error(Stage::Close, wait)),
        None => {
            // The receiver did not end the session: we end it, the file unconfirmed
            // unless it said <received/>.
            link.terminate(Reason::Success);
            link.received
        }
    };
    let socket_ok = match outcome.method {
        MethodUsed::S5bDirect { .. } | MethodUsed::S5bProxy { .. } => {
            outcome.delivery == Delivery::Acknowledged
        }
        _ => true,
    };
    outcome.delivery = if (confirmed || link.received) && socket_ok {
        Delivery::Acknowledged
    } else {
        Delivery::Unconfirmed
    };
    Ok(outcome)
}

/// Streams over the negotiated bytestream while watching the session (the receiver's
/// terminate ends the send with its reason), sends `<checksum/>` after the last byte when
/// the offer had no hash, then [`finish`]es.
pub(crate) async fn stream<T: StanzaTransport + Clone>(
    shared: &Arc<Shared<T>>,
    side: &mut TaskSide,
    to: Jid,
    sid: Sid,
    prepared: crate::send_stream::Prepared,
    negotiated: Negotiated,
    session: Session<T>,
) -> Result<Outcome, TransferError> {
    let Session {
        mut link,
        hash_in_offer,
    } = session;
    let hook: Option<crate::send_stream::AfterLastByte> = (!hash_in_offer).then(|| {
        let core = link.core.clone();
        let key = link.ft.key().clone();
        let name = link.ft.content_name().clone();
        Box::new(move |sha256: &str, extra: Option<(HashAlgo, Vec<u8>)>| {
            let hash = match extra {
                Some((algo, raw)) => Hash::new(algo_of(algo), raw),
                None => match hex::decode(sha256) {
                    Ok(raw) => Hash::new(Algo::Sha_256, raw),
                    Err(_) => return,
                },
            };
            let c = xep0234_jingle_ft::Checksum::new(
                xep0166_jingle::Creator::Initiator,
                name,
                vec![hash],
            );
            let el = Element::from(&c);
            if let Err(e) = core.with(|ep, now| ep.session_info(now, &key, Some(el))) {
                tracing::debug!("ft-facade: jingle checksum: {e}");
            }
        }) as crate::send_stream::AfterLastByte
    });
    let r = {
        let watch = async {
            let e = link.until_end().await;
            if e.is_success() {
                // The receiver is done before our close finished: the stream decides.
                std::future::pending::<()>().await;
            }
            e
        };
        tokio::select! {
            r = crate::send_stream::stream(shared, side, to, sid, prepared, negotiated, hook) => r,
            e = watch => Err(e.error(Stage::Stream, shared.config.inactivity_timeout)),
        }
    };
    match r {
        Ok(outcome) => finish(shared, side, &mut link, outcome).await,
        Err(e) => {
            let reason = if e.is_cancelled_by(Side::Local) {
                Reason::Cancel
            } else {
                Reason::FailedTransport
            };
            link.terminate(reason);
            Err(e)
        }
    }
}
