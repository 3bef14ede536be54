//! The Jingle stack, receiver side: a session-initiate held as an offer
//! ([`JingleOffer`]), its answer (session-accept with our transport and `<range/>`), the
//! bytestream (IBB on the existing IBB manager; S5B raced, IBB after the initiator's
//! transport-replace), and the session's end once the file is placed or refused.

use std::fmt;
use std::sync::{Arc, Mutex};

use ft_transport::{Sid, StanzaTransport};
use jid::Jid;
use minidom::Element;
use tokio::sync::mpsc;
use xep0166_jingle::{Event as JEvent, Reason, SessionKey};
use xep0234_jingle_ft::{FileInfo as FtFile, FtSession};
use xep0260_jingle_s5b::Driver;
use xep0260_jingle_s5b::proto::Role;
use xep0261_jingle_ibb::{IbbTransport, NS_JINGLE_IBB};
use xmpp_parsers::jingle_ft::Range;

use super::core::now;
use super::link::Link;
use super::transport;
use crate::config::Method;
use crate::error::{ErrorKind, Side, Stage, TransferError};
use crate::event::{Event, FallbackReason, MethodUsed};
use crate::glue::BoxStream;
use crate::handle::TaskSide;
use crate::shared::Shared;
use crate::stack::{Established, Stack};
use crate::verify::LateHashes;

/// A peer's session-initiate, checked, not answered yet.
pub(crate) struct JingleOffer {
    pub(crate) key: SessionKey,
    pub(crate) file: FtFile,
    pub(crate) transport_ns: String,
    ft: Mutex<Option<FtSession>>,
    rx: Mutex<Option<mpsc::Receiver<JEvent>>>,
    pub(crate) late: Mutex<Option<LateHashes>>,
}

impl fmt::Debug for JingleOffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JingleOffer")
            .field("peer", &self.key.peer.to_string())
            .field("sid", &self.key.sid)
            .field("file", &self.file)
            .field("transport", &self.transport_ns)
            .finish_non_exhaustive()
    }
}

impl JingleOffer {
    pub(crate) fn new(ft: FtSession, rx: mpsc::Receiver<JEvent>) -> Self {
        Self {
            key: ft.key().clone(),
            file: ft.file().clone(),
            transport_ns: ft.peer_transport().map(Element::ns).unwrap_or_default(),
            ft: Mutex::new(Some(ft)),
            rx: Mutex::new(Some(rx)),
            late: Mutex::new(None),
        }
    }

    pub(crate) fn sid(&self) -> &Sid {
        &self.key.sid
    }

    /// Ends the session unanswered with `reason` (decline, busy).
    pub(crate) fn refuse<T: StanzaTransport + Clone>(&self, shared: &Shared<T>, reason: Reason) {
        let Some(core) = &shared.jingle else { return };
        let Some(mut ft) = crate::shared::lock(&self.ft).take() else {
            return;
        };
        if let Err(e) = core.with(|ep, now| ft.terminate(ep, now, reason)) {
            tracing::debug!("ft-facade: jingle refusal: {e}");
        }
    }
}

/// Chooses our transport answer, accepts, and waits for the bytestream.
pub(crate) async fn answer_and_wait<T: StanzaTransport + Clone>(
    shared: &Arc<Shared<T>>,
    side: &mut TaskSide,
    offer: &JingleOffer,
    from: &Jid,
    offset: u64,
) -> Result<(Established, Link<T>), TransferError> {
    let config = &shared.config;
    let misuse = || TransferError::new(Stage::Offer, crate::Misuse::AlreadyAnswered.into());
    let Some(core) = shared.jingle.clone() else {
        return Err(misuse());
    };
    let ft = crate::shared::lock(&offer.ft).take().ok_or_else(misuse)?;
    let rx = crate::shared::lock(&offer.rx).take().ok_or_else(misuse)?;
    let mut link = Link::new(core.clone(), ft, rx);
    link.late = crate::shared::lock(&offer.late).take();
    let theirs = link.ft.peer_transport().cloned();
    let range = (offset > 0).then(|| Range {
        offset,
        length: None,
        hashes: Vec::new(),
    });
    let fail = |link: &mut Link<T>, reason: Reason, e: TransferError| {
        link.terminate(reason);
        e
    };
    let Some(theirs) = theirs else {
        let e = TransferError::new(Stage::Offer, ErrorKind::NoCommonMethod);
        return Err(fail(&mut link, Reason::UnsupportedTransports, e));
    };

    let accept = |link: &mut Link<T>, el: Element, range: Option<Range>| {
        let ft = &mut link.ft;
        link.core
            .with(|ep, now| ft.accept(ep, now, el, range))
            .map_err(|e| TransferError::new(Stage::Offer, crate::JingleError::Session(e).into()))
    };
    // The session may be gone already (the sender cancelled, its offer timed out): then
    // its end says why the accept failed.
    let gone = async |link: &mut Link<T>, e: TransferError| {
        let _ = tokio::time::timeout(std::time::Duration::from_millis(200), async {
            while link.next().await.is_some() {}
        })
        .await;
        match link.ended.clone() {
            Some(ended) => ended.error(Stage::Offer, config.offer_timeout),
            None => e,
        }
    };
    let accepted = |side: &mut TaskSide, ns: &str| {
        side.reporter.emit(Event::Accepted {
            method: ns.to_owned(),
            offset,
            at: side.reporter.at(),
        });
        side.reporter.stage(Stage::Connect);
    };

    if theirs.is("transport", NS_JINGLE_IBB) {
        if !config.has_ibb() {
            let e = TransferError::new(Stage::Offer, ErrorKind::NoCommonMethod);
            return Err(fail(&mut link, Reason::UnsupportedTransports, e));
        }
        let t = match IbbTransport::parse(&theirs) {
            Ok(t) => t,
            Err(e) => {
                let e = TransferError::new(Stage::Offer, crate::JingleError::Ibb(e).into());
                return Err(fail(&mut link, Reason::FailedTransport, e));
            }
        };
        let answer = t.answer(t.block_size);
        // Registered before the accept goes out: the open may follow it at once.
        let window = config.stream_start_timeout;
        let wait = shared.ibb.expect(from.clone(), answer.sid.clone(), window);
        if let Err(e) = accept(&mut link, Element::from(&answer), range) {
            return Err(gone(&mut link, e).await);
        }
        accepted(side, NS_JINGLE_IBB);
        return match transport::wait_ibb(side, &mut link, wait, window).await {
            Ok((s, m)) => Ok((established(s, m, false), link)),
            Err(e) => Err(end_failed(&mut link, e)),
        };
    }

    if !theirs.is("transport", xep0260_jingle_s5b::NS) || !config.methods.contains(&Method::S5b) {
        let e = TransferError::new(Stage::Offer, ErrorKind::NoCommonMethod);
        return Err(fail(&mut link, Reason::UnsupportedTransports, e));
    }
    let tsid = match Sid::new(theirs.attr("sid").unwrap_or_default()) {
        Ok(s) => s,
        Err(e) => {
            let e = TransferError::new(Stage::Offer, crate::Misuse::BadSid(e).into());
            return Err(fail(&mut link, Reason::FailedTransport, e));
        }
    };
    // A receiver with S5bRoute::Proxy and no proxy offers no candidate at all (it still
    // races the initiator's): what an interop receiver does beside Gajim's own race.
    let route = config.s5b_route;
    // Safe by default: a receiver offers a direct candidate of its own only on addresses the
    // user listed (`s5b.listen`), never this host's addresses found by itself: an offer
    // from a stranger must not learn our LAN addresses, nor make us listen on them (an SI
    // receiver never listens at all). It still races the sender's candidates and offers
    // proxies.
    let direct_ok = config.s5b.listen.is_some();
    let local = match transport::local_candidates(shared, &core, side, route, direct_ok).await {
        Ok(l) => l,
        Err(e) if matches!(e.kind, ErrorKind::NoProxy) => {
            xep0260_jingle_s5b::LocalCandidates::default()
        }
        Err(e) => return Err(end_failed(&mut link, e)),
    };
    let listener = if local.direct.is_empty() {
        None
    } else {
        core.listener(&config.s5b).await
    };
    let n = transport::negotiation(shared, &core, Role::Responder, from, tsid, &local);
    let mut driver = Driver::new(n, listener);
    if let Err(e) = driver.negotiation().handle_element(now(), &theirs) {
        tracing::debug!("ft-facade: the initiator's s5b candidates: {e}");
    }
    let ours = Element::from(driver.negotiation().local_transport());
    if let Err(e) = accept(&mut link, ours, range) {
        return Err(gone(&mut link, e).await);
    }
    accepted(side, xep0260_jingle_s5b::NS);
    match transport::race(shared, side, &mut link, driver).await {
        Ok((s, m)) => Ok((established(s, m, false), link)),
        Err(e) if e.is_cancelled_by(Side::Local) || !config.has_ibb() => {
            Err(end_failed(&mut link, e))
        }
        Err(e) => {
            if link.ended.is_some() {
                return Err(end_failed(&mut link, e));
            }
            side.reporter.emit(Event::Fallback {
                reason: FallbackReason::S5bFailed(Arc::new(e.kind)),
                at: side.reporter.at(),
            });
            match fallback(shared, side, &mut link, from).await {
                Ok((s, m)) => Ok((established(s, m, true), link)),
                Err(e) => Err(end_failed(&mut link, e)),
            }
        }
    }
}

/// After S5B failed: the initiator's transport-replace to IBB (within the fallback
/// window), our transport-accept, its `<open/>`.
async fn fallback<T: StanzaTransport + Clone>(
    shared: &Arc<Shared<T>>,
    side: &mut TaskSide,
    link: &mut Link<T>,
    from: &Jid,
) -> Result<(BoxStream, MethodUsed), TransferError> {
    let window = shared.config.fallback_window;
    let cancel = side.cancel.clone();
    let proposal = tokio::time::timeout(window, async {
        loop {
            if let Some(el) = link.replace.take() {
                return Some(el);
            }
            link.next().await?;
        }
    });
    let proposal = tokio::select! {
        biased;
        () = cancel.cancelled() => return Err(crate::handle::cancelled(Stage::Connect)),
        p = proposal => p,
    };
    let el = match proposal {
        Err(_) => {
            return Err(TransferError::new(
                Stage::Connect,
                ErrorKind::Timeout(window),
            ));
        }
        Ok(None) => {
            let ended = link.ended.clone();
            return Err(match ended {
                Some(e) => e.error(Stage::Connect, window),
                None => TransferError::new(Stage::Connect, ErrorKind::Timeout(window)),
            });
        }
        Ok(Some(el)) => el,
    };
    let t = match IbbTransport::parse(&el) {
        Ok(t) => t,
        Err(e) => {
            let ft = &mut link.ft;
            let _ = link.core.with(|ep, now| ft.reject_transport(ep, now, el));
            return Err(TransferError::new(
                Stage::Connect,
                crate::JingleError::Ibb(e).into(),
            ));
        }
    };
    let answer = t.answer(t.block_size);
    let wait = shared.ibb.expect(from.clone(), answer.sid.clone(), window);
    let ft = &mut link.ft;
    let el = Element::from(&answer);
    link.core
        .with(|ep, now| ft.accept_transport(ep, now, el))
        .map_err(|e| TransferError::new(Stage::Connect, crate::JingleError::Session(e).into()))?;
    transport::wait_ibb(side, link, wait, window).await
}

/// The session ends with the reason for `e` (unless the peer ended it): the error back.
fn end_failed<T: StanzaTransport + Clone>(link: &mut Link<T>, e: TransferError) -> TransferError {
    if let Some(ended) = link.ended.clone() {
        if ended.reason.is_some() || ended.timeout || ended.refused.is_some() {
            return ended.error(e.stage, std::time::Duration::ZERO);
        }
        return e;
    }
    link.terminate(reason_for(&e));
    e
}

/// The session-terminate reason a receive that ended with `result` sends.
pub(crate) fn reason_for(e: &TransferError) -> Reason {
    match &e.kind {
        ErrorKind::HashMismatch { .. } | ErrorKind::TooLong { .. } => Reason::MediaError,
        ErrorKind::Cancelled(_) => Reason::Cancel,
        ErrorKind::Timeout(_) => Reason::Timeout,
        ErrorKind::NoCommonMethod => Reason::UnsupportedTransports,
        _ if matches!(e.stage, Stage::Connect | Stage::Stream | Stage::Proxies) => {
            Reason::FailedTransport
        }
        _ => Reason::FailedApplication,
    }
}

fn established(stream: BoxStream, method: MethodUsed, fallback: bool) -> Established {
    Established {
        stream,
        method,
        fallback,
        stack: Stack::Jingle,
    }
}
