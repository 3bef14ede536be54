//! One transfer task's end of its Jingle session: the `FtSession`, the session's events,
//! what arrived out of turn (a `<checksum/>`, `<received/>`, the end), and the XEP-0260
//! [`Signalling`] over it.

use std::sync::Arc;
use std::time::Duration;

use ft_transport::StanzaTransport;
use minidom::Element;
use tokio::sync::mpsc;
use xep0166_jingle::{EndCause, Event, Reason};
use xep0234_jingle_ft::{FtEvent, FtSession};
use xep0260_jingle_s5b::{InputError, Signalling};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jingle_s5b::Transport;

use super::core::JingleCore;
use crate::error::{ErrorKind, Side, Stage, TransferError};
use crate::verify::{HashAlgo, LateHashes};

/// The session as one transfer task holds it.
pub(crate) struct Link<T: StanzaTransport + Clone> {
    pub(crate) core: Arc<JingleCore<T>>,
    pub(crate) ft: FtSession,
    rx: mpsc::Receiver<Event>,
    /// The session is over: why (`None` while it lives).
    pub(crate) ended: Option<Ended>,
    /// The peer sent `<received/>`.
    pub(crate) received: bool,
    /// A transport-replace from the peer not answered yet.
    pub(crate) replace: Option<Element>,
    /// Our transport-replace was answered: `Some(el)` accepted, `None` rejected.
    pub(crate) replaced: Option<Option<Element>>,
    /// Where a `<checksum/>` goes (receiver).
    pub(crate) late: Option<LateHashes>,
    /// The peer's transport elements not taken yet (session-accept's, transport-info's),
    /// each with the id of its transport-info iq when that waits for our answer.
    pub(crate) transports: std::collections::VecDeque<(Element, Option<String>)>,
    /// The transport-info iq whose element [`Signalling::recv`] returned last, to answer
    /// with its verdict.
    judged: Option<String>,
    /// No S5B negotiation reads transport-info any more (it ended, or never ran): each is
    /// acknowledged on arrival.
    s5b_done: bool,
    /// The proxy activation goes through this tracker.
    pub(crate) activate: Option<(Arc<ft_transport::iq::IqTracker>, Duration)>,
}

/// How a session ended.
#[derive(Debug, Clone)]
pub(crate) struct Ended {
    pub(crate) reason: Option<Reason>,
    pub(crate) text: Option<String>,
    pub(crate) timeout: bool,
    pub(crate) refused: Option<xmpp_parsers::stanza_error::StanzaError>,
}

/// The element name of a reason (`media-error`).
pub(crate) fn reason_name(r: &Reason) -> String {
    let e: Element = r.clone().into();
    e.name().to_owned()
}

impl Ended {
    fn of(cause: &EndCause) -> Self {
        let mut e = Self {
            reason: None,
            text: None,
            timeout: false,
            refused: None,
        };
        match cause {
            EndCause::ByPeer(Some(r)) => {
                e.reason = Some(r.reason.clone());
                e.text = r.texts.values().next().cloned();
            }
            EndCause::ByUs(r) => e.reason = Some(r.clone()),
            EndCause::Timeout => e.timeout = true,
            EndCause::Refused(_, err) => e.refused = Some(err.clone()),
            _ => {}
        }
        e
    }

    /// The error a transfer fails with when the session ended this way at `stage`;
    /// `timeout` is the wait that ran out.
    pub(crate) fn error(&self, stage: Stage, timeout: Duration) -> TransferError {
        let kind = if self.timeout {
            ErrorKind::Timeout(timeout)
        } else if let Some(err) = &self.refused {
            ErrorKind::Rejected(Box::new(err.clone()))
        } else {
            match &self.reason {
                Some(Reason::Decline) => ErrorKind::Declined {
                    text: self.text.clone(),
                },
                Some(Reason::Cancel) => ErrorKind::Cancelled(Side::Peer),
                Some(Reason::Timeout) => ErrorKind::Timeout(timeout),
                other => crate::JingleError::Terminated {
                    reason: other
                        .as_ref()
                        .map_or_else(|| "none".to_owned(), reason_name),
                    text: self.text.clone(),
                }
                .into(),
            }
        };
        TransferError::new(stage, kind)
    }

    pub(crate) fn is_success(&self) -> bool {
        self.reason == Some(Reason::Success)
    }
}

impl<T: StanzaTransport + Clone> Link<T> {
    pub(crate) fn new(core: Arc<JingleCore<T>>, ft: FtSession, rx: mpsc::Receiver<Event>) -> Self {
        Self {
            core,
            ft,
            rx,
            ended: None,
            received: false,
            replace: None,
            replaced: None,
            late: None,
            transports: std::collections::VecDeque::new(),
            judged: None,
            s5b_done: false,
            activate: None,
        }
    }

    /// The next event of the session, after noting it (`None`: the session is over and
    /// every event was taken).
    pub(crate) async fn next(&mut self) -> Option<FtEvent> {
        loop {
            if self.ended.is_some() && self.rx.is_empty() {
                return None;
            }
            let ev = self.rx.recv().await?;
            let answer = match &ev {
                Event::TransportInfo {
                    answer: Some(id), ..
                } => Some(id.clone()),
                _ => None,
            };
            let Some(fe) = self.ft.handle(&ev) else {
                if let Some(id) = answer {
                    // Not this session's content: nothing judges it.
                    self.answer(&id, Ok(()));
                }
                continue;
            };
            match &fe {
                FtEvent::Ended { cause, .. } => self.ended = Some(Ended::of(cause)),
                FtEvent::Received => self.received = true,
                FtEvent::TransportReplace(el) => self.replace = Some(el.clone()),
                FtEvent::TransportAccepted(el) => self.replaced = Some(el.clone()),
                FtEvent::TransportRejected => self.replaced = Some(None),
                FtEvent::TransportInfo(el)
                    if el.is("transport", xep0260_jingle_s5b::NS) && !self.s5b_done =>
                {
                    self.transports.push_back((el.clone(), answer));
                }
                FtEvent::TransportInfo(el) => {
                    // Another transport's info (IBB has none), or one after the S5B
                    // negotiation: acknowledged; kept only while a negotiation may read it.
                    if !self.s5b_done {
                        self.transports.push_back((el.clone(), None));
                    }
                    if let Some(id) = answer {
                        self.answer(&id, Ok(()));
                    }
                }
                FtEvent::Accepted {
                    transport: Some(el),
                    ..
                } => self.transports.push_back((el.clone(), None)),
                FtEvent::Checksum(c) => {
                    if let Some(late) = &self.late {
                        for h in &c.hashes {
                            let algo = xep0300_hashes::HashAlgo::from_algo(&h.algo)
                                .and_then(|a| HashAlgo::from_name(a.name()));
                            if let Some(algo) = algo {
                                late.set(algo, h.hash.clone());
                            }
                        }
                    }
                }
                _ => {}
            }
            return Some(fe);
        }
    }

    /// Waits until the session ends (taking `<checksum/>` and `<received/>` on the way);
    /// never returns while it lives. For `select!` beside the bytes.
    pub(crate) async fn until_end(&mut self) -> Ended {
        loop {
            if let Some(e) = &self.ended {
                return e.clone();
            }
            if self.next().await.is_none() && self.ended.is_none() {
                // The route is gone without an end: treat as ended without a reason.
                self.ended = Some(Ended::of(&EndCause::ByPeer(None)));
            }
        }
    }

    /// The S5B negotiation is over: what it did not read is acknowledged, and so is every
    /// transport-info from now on.
    pub(crate) fn s5b_done(&mut self) {
        self.s5b_done = true;
        let waiting: Vec<String> = self
            .transports
            .iter_mut()
            .filter_map(|(_, id)| id.take())
            .collect();
        for id in waiting {
            self.answer(&id, Ok(()));
        }
        if let Some(id) = self.judged.take() {
            self.answer(&id, Ok(()));
        }
    }

    /// Answers the peer's transport-info `id`: an ack, or the transport's refusal.
    fn answer(&self, id: &str, verdict: Result<(), InputError>) {
        let key = self.ft.key().clone();
        let verdict = verdict.map_err(|e| e.stanza_error());
        self.core
            .with(|ep, _| ep.answer_transport_info(&key, id, verdict));
    }

    /// Ends the session with `reason` unless it is over already.
    pub(crate) fn terminate(&mut self, reason: Reason) {
        if self.ended.is_some() {
            return;
        }
        let ft = &mut self.ft;
        let r = self
            .core
            .with(|ep, now| ft.terminate(ep, now, reason.clone()));
        if let Err(e) = r {
            tracing::debug!("ft-facade: jingle terminate: {e}");
        }
        self.ended = Some(Ended::of(&EndCause::ByUs(reason)));
    }
}

impl<T: StanzaTransport + Clone> Signalling for Link<T> {
    async fn send(
        &mut self,
        transport: Transport,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let ft = &mut self.ft;
        let el = Element::from(transport);
        self.core
            .with(|ep, now| ft.transport_info(ep, now, el))
            .map(drop)
            .map_err(|e| Box::new(e) as _)
    }

    async fn recv(&mut self) -> Option<Transport> {
        loop {
            if let Some((el, id)) = self.transports.pop_front() {
                match Transport::try_from(el) {
                    Ok(t) => {
                        self.judged = id;
                        return Some(t);
                    }
                    Err(e) => {
                        tracing::debug!("ft-facade: unreadable s5b transport refused: {e}");
                        if let Some(id) = id {
                            self.answer(&id, Err(InputError::Malformed("unreadable transport")));
                        }
                        continue;
                    }
                }
            }
            // A transport-replace from the peer ends the S5B negotiation too.
            if self.ended.is_some() || self.replace.is_some() {
                return None;
            }
            self.next().await?;
        }
    }

    fn verdict(&mut self, verdict: Result<(), InputError>) {
        // The core left the transport-info's iq to us (`defer_transport_info`): its answer
        // is the negotiation's verdict (XEP-0260: `bad-request` for a cid never offered,
        // `unexpected-request` + `<out-of-order/>` for an `activated` out of turn).
        if let Err(e) = &verdict {
            tracing::debug!("ft-facade: peer's s5b transport refused: {e}");
        }
        if let Some(id) = self.judged.take() {
            self.answer(&id, verdict);
        }
    }

    async fn activate(&mut self, iq: Iq) -> Result<Iq, Box<dyn std::error::Error + Send + Sync>> {
        let Some((tracker, timeout)) = self.activate.clone() else {
            return Err("no tracker for the activation".into());
        };
        let id = iq.id().to_owned();
        let from = iq.to().cloned();
        let transport = self.core.transport().clone();
        match tracker.request(&transport, iq, timeout).await {
            Ok(_) => {
                let mut r =
                    Iq::empty_result(from.clone().unwrap_or_else(|| self.core.me().into()), id);
                *r.from_mut() = from;
                Ok(r)
            }
            Err(ft_transport::iq::IqError::Rejected(e)) => {
                let mut r = Iq::from_error(id, *e);
                *r.from_mut() = from;
                Ok(r)
            }
            Err(e) => Err(Box::new(e)),
        }
    }
}
