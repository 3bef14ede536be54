//! Serving a peer's request (XEP-0234 §5, "pull"; we are the responder and send): the
//! session-initiate with `senders='responder'` becomes an [`IncomingRequest`] for the
//! application, which accepts it with the path of the file to send or declines it. No
//! file is ever served by itself. Accepted, our session-accept describes the file in full
//! (name, size, date, hash) with our transport answer, the bytestream comes up as for any
//! offer we answer (`recv::answer_and_wait`: the initiator's candidates raced, its IBB
//! `<open/>`, its transport-replace), and the bytes go as for any send
//! (`send::stream`: progress, `<checksum/>` when the hash was not in the accept, the
//! delivery state). Declined, or dropped unanswered, the session ends with
//! `<failed-application/>` (XEP-0234 §8.1, "file not available").

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use ft_transport::{Sid, StanzaTransport};
use jid::Jid;
use tokio::sync::mpsc;
use xep0166_jingle::{Event as JEvent, Reason};
use xep0234_jingle_ft::FtSession;

use super::pull::FileRequest;
use super::recv::{JingleOffer, answer_and_wait};
use super::send::Session;
use crate::HashAlgo;
use crate::error::{Misuse, Stage, TransferError};
use crate::event::Outcome;
use crate::handle::{TaskSide, TransferHandle, pair};
use crate::options::{SendOptions, Source};
use crate::shared::Shared;
use crate::stack::Negotiated;

/// The text of the `<failed-application/>` a declined request ends with.
const NOT_AVAILABLE: &str = "file not available";

/// A peer asks us for a file ([`FileTransfer::next_request`](crate::FileTransfer::next_request)).
/// Nothing is sent unless the application [accepts](Self::accept_file) it with a file of
/// its choosing; [`decline`](Self::decline) (or dropping it) ends the peer's session with
/// `<failed-application/>` ("file not available", XEP-0234 §8.1).
pub struct IncomingRequest<T: StanzaTransport + Clone> {
    shared: Arc<Shared<T>>,
    session: Option<(FtSession, mpsc::Receiver<JEvent>)>,
    from: Jid,
    key: (Jid, Sid),
    request: FileRequest,
    transport_ns: String,
}

impl<T: StanzaTransport + Clone> fmt::Debug for IncomingRequest<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncomingRequest")
            .field("from", &self.from.to_string())
            .field("sid", &self.key.1)
            .field("request", &self.request)
            .field("transport", &self.transport_ns)
            .finish_non_exhaustive()
    }
}

impl<T: StanzaTransport + Clone> IncomingRequest<T> {
    pub(crate) fn new(shared: Arc<Shared<T>>, ft: FtSession, rx: mpsc::Receiver<JEvent>) -> Self {
        let from = Jid::from(ft.key().peer.clone());
        let key = (from.clone(), ft.key().sid.clone());
        let file = ft.file();
        let request = FileRequest {
            name: file.name.clone(),
            hashes: file
                .hashes
                .iter()
                .filter_map(|h| {
                    let a = xep0300_hashes::HashAlgo::from_algo(&h.algo)?;
                    Some((HashAlgo::from_name(a.name())?, h.hash.clone()))
                })
                .collect(),
        };
        let transport_ns = ft
            .peer_transport()
            .map(minidom::Element::ns)
            .unwrap_or_default();
        Self {
            shared,
            session: Some((ft, rx)),
            from,
            key,
            request,
            transport_ns,
        }
    }

    /// Who asks.
    pub fn from(&self) -> &Jid {
        &self.from
    }

    /// The session id.
    pub fn sid(&self) -> &Sid {
        &self.key.1
    }

    /// What the peer asks for: a name (as the peer wrote it: never use it as a path),
    /// hashes, or both.
    pub fn request(&self) -> &FileRequest {
        &self.request
    }

    /// The transport the peer proposes (its namespace).
    pub fn transport(&self) -> &str {
        &self.transport_ns
    }

    /// Serves the file at `path`. When the file is within
    /// [`OfferHash::max_size`](crate::OfferHash::max_size) it is hashed first and the
    /// accept carries its hash; a request naming a SHA-256 the file does not have is then
    /// ended with `<failed-application/>` and the handle fails with
    /// [`Misuse::NotTheRequestedFile`]. Of [`SendOptions`], the description applies (the
    /// transports are answered as for an offer, with the [`Config`](crate::Config)'s).
    pub fn accept_file(mut self, path: impl Into<PathBuf>, options: SendOptions) -> TransferHandle {
        let (handle, side) = pair(self.key.1.clone(), self.from.clone(), None);
        let Some((ft, rx)) = self.session.take() else {
            side.finish(Err(TransferError::new(
                Stage::Offer,
                Misuse::AlreadyAnswered.into(),
            )));
            return handle;
        };
        let shared = self.shared.clone();
        let from = self.from.clone();
        let key = self.key.clone();
        let request = self.request.clone();
        let path = path.into();
        tokio::spawn(async move {
            let mut side = side;
            let r = serve(&shared, &mut side, ft, rx, &from, &request, path, options).await;
            shared.release_incoming(&key);
            side.finish(r);
        });
        handle
    }

    /// Declines: the session ends with `<failed-application/>` and the text "file not
    /// available".
    pub fn decline(mut self) {
        self.end(Reason::FailedApplication, Some(NOT_AVAILABLE));
    }

    /// Ended `<busy/>`: too many requests wait.
    pub(crate) fn refuse_busy(mut self) {
        self.end(Reason::Busy, None);
    }

    fn end(&mut self, reason: Reason, text: Option<&str>) {
        if let Some((ft, _)) = self.session.take() {
            if let Some(core) = &self.shared.jingle {
                let r = core.with(|ep, now| ep.terminate(now, ft.key(), reason, text));
                if let Err(e) = r {
                    tracing::debug!("ft-facade: declining a jingle request: {e}");
                }
            }
            self.shared.release_incoming(&self.key);
        }
    }
}

impl<T: StanzaTransport + Clone> Drop for IncomingRequest<T> {
    fn drop(&mut self) {
        self.end(Reason::FailedApplication, Some(NOT_AVAILABLE));
    }
}

/// The serving run: the file read (and hashed when small enough), checked against the
/// requested SHA-256, described in the accept, the bytestream, the bytes.
#[allow(clippy::too_many_arguments)]
async fn serve<T: StanzaTransport + Clone>(
    shared: &Arc<Shared<T>>,
    side: &mut TaskSide,
    mut ft: FtSession,
    rx: mpsc::Receiver<JEvent>,
    from: &Jid,
    request: &FileRequest,
    path: PathBuf,
    options: SendOptions,
) -> Result<Outcome, TransferError> {
    let fail = |ft: &mut FtSession, e: TransferError| {
        if let Some(core) = &shared.jingle {
            let _ = core.with(|ep, now| {
                ep.terminate(
                    now,
                    ft.key(),
                    Reason::FailedApplication,
                    Some(NOT_AVAILABLE),
                )
            });
        }
        e
    };
    side.reporter.stage(Stage::Prepare);
    let hash_limit = shared.config.offer_hash.max_size;
    let cancel = side.cancel.clone();
    let prepared = tokio::select! {
        biased;
        () = cancel.cancelled() => {
            let e = crate::handle::cancelled(Stage::Prepare);
            if let Some(core) = &shared.jingle {
                let _ = core.with(|ep, now| ft.terminate(ep, now, Reason::Cancel));
            }
            return Err(e);
        }
        p = crate::send::prepare(Source::Path(path), hash_limit) => p,
    };
    let mut prepared = match prepared {
        Ok(p) => p,
        Err(e) => return Err(fail(&mut ft, e)),
    };
    if let Some(desc) = options.desc.clone() {
        prepared.info.desc = Some(desc);
    }
    // What we can check before serving: the SHA-256 we computed (a larger file is checked
    // by the requester, which ends with <media-error/> for a wrong one).
    for (algo, value) in &request.hashes {
        let ours = (*algo == HashAlgo::Sha256)
            .then(|| prepared.sha256.as_deref().and_then(|h| hex::decode(h).ok()))
            .flatten();
        if let Some(ours) = ours
            && ours != *value
        {
            let e = TransferError::new(
                Stage::Prepare,
                Misuse::NotTheRequestedFile { algo: *algo }.into(),
            );
            return Err(fail(&mut ft, e));
        }
    }
    let size = prepared.info.size.unwrap_or(0);
    side.reporter.total(Some(size));
    let mut file = super::send::file(
        &prepared.info,
        size,
        prepared.sha256.as_deref(),
        HashAlgo::Sha256,
    );
    file.range = None;
    let hash_in_offer = !file.hashes.is_empty();
    ft.serve(file);
    let sid = ft.key().sid.clone();
    let offer = JingleOffer::new(ft, rx);
    let (established, link) = answer_and_wait(shared, side, &offer, from, 0).await?;
    let negotiated = Negotiated {
        established,
        offset: 0,
        length: size,
    };
    super::send::stream(
        shared,
        side,
        from.clone(),
        sid,
        prepared,
        negotiated,
        Session {
            link,
            hash_in_offer,
        },
    )
    .await
}

/// A peer's request as the application gets it; its session's events routed to it.
pub(crate) fn pending<T: StanzaTransport + Clone>(
    shared: &Arc<Shared<T>>,
    core: &super::core::JingleCore<T>,
    ft: FtSession,
) -> IncomingRequest<T> {
    let rx = core.route(ft.key());
    IncomingRequest::new(shared.clone(), ft, rx)
}
