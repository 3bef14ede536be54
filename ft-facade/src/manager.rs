//! [`FileTransfer`]: one manager over one stanza transport.

use std::fmt;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;

use ft_transport::util::iq_error_reply;
use ft_transport::{Stanza, StanzaTransport};
use jid::Jid;
use tokio::io::AsyncRead;
use tokio::sync::mpsc;
use xep0096_file::FileOffer;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

use crate::config::Config;
use crate::event::FileInfo;
use crate::handle::{TransferHandle, pair};
use crate::options::{AcceptOptions, SendOptions, Source};
use crate::recv::IncomingOffer;
use crate::refused::{Refusal, RefusedOffer};
use crate::shared::{Shared, lock, random_sid, spawn_send};
use crate::stack::jingle::pull::FileRequest;
use crate::stack::jingle::serve::IncomingRequest;

struct Offers<T: StanzaTransport + Clone> {
    tx: mpsc::Sender<IncomingOffer<T>>,
    rx: tokio::sync::Mutex<mpsc::Receiver<IncomingOffer<T>>>,
    /// Offers the manager refused itself; at most [`REFUSED_QUEUE`] wait to be read, later
    /// ones are dropped (they were answered anyway).
    refused_tx: mpsc::Sender<RefusedOffer>,
    refused_rx: tokio::sync::Mutex<mpsc::Receiver<RefusedOffer>>,
    /// Peers' requests (XEP-0234 pull) for the application.
    requests_tx: mpsc::Sender<IncomingRequest<T>>,
    requests_rx: tokio::sync::Mutex<mpsc::Receiver<IncomingRequest<T>>>,
}

/// How many refused offers wait for [`FileTransfer::next_refused`] before more are
/// dropped: a flood of bad offers must not grow memory.
pub const REFUSED_QUEUE: usize = 64;

/// The complete file transfer over one XMPP connection: send files, receive offers.
///
/// Feed every inbound stanza to [`handle_stanza`](Self::handle_stanza); what is not ours
/// comes back. Cheap to clone (clones share everything).
///
/// It must be created and used inside a tokio runtime: every transfer runs on a task of its
/// own, and replies are sent from tasks.
pub struct FileTransfer<T: StanzaTransport + Clone> {
    shared: Arc<Shared<T>>,
    offers: Arc<Offers<T>>,
}

impl<T: StanzaTransport + Clone> Clone for FileTransfer<T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            offers: self.offers.clone(),
        }
    }
}

impl<T: StanzaTransport + Clone> fmt::Debug for FileTransfer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileTransfer")
            .field("jid", &self.shared.transport.jid().to_string())
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl<T: StanzaTransport + Clone> FileTransfer<T> {
    /// A manager sending through `transport`.
    pub fn new(transport: T, config: Config) -> Self {
        let (tx, rx) = mpsc::channel(config.policy.pending_capacity());
        let (refused_tx, refused_rx) = mpsc::channel(REFUSED_QUEUE);
        let (requests_tx, requests_rx) = mpsc::channel(config.policy.pending_capacity());
        Self {
            shared: Arc::new(Shared::new(transport, config)),
            offers: Arc::new(Offers {
                tx,
                rx: tokio::sync::Mutex::new(rx),
                refused_tx,
                refused_rx: tokio::sync::Mutex::new(refused_rx),
                requests_tx,
                requests_rx: tokio::sync::Mutex::new(requests_rx),
            }),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared<T>> {
        &self.shared
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Our own JID.
    pub fn jid(&self) -> &Jid {
        self.shared.transport.jid()
    }

    /// Takes what is ours and hands back the rest, in this order: answers to our own iqs
    /// (offers, disco), disco#info requests (answered with our features unless
    /// [`Config::answer_disco`] is off), SI file-transfer
    /// offers (other SI profiles get `bad-profile`), then S5B and IBB stanzas.
    ///
    /// Must run inside a tokio runtime (replies are sent from tasks).
    ///
    /// The pump contract: await [`ready`](Self::ready) before each call. IBB over
    /// `<message/>` has no acknowledgements; `ready` is what turns a receiver that writes
    /// slower than the sender sends into backpressure on the sender rather than an overrun
    /// (`wait/resource-constraint` at [`xep0047_ibb::Config::message_overrun`]).
    pub fn handle_stanza(&self, stanza: Stanza) -> ControlFlow<(), Stanza> {
        let inner = &self.shared;
        let stanza = inner.tracker.handle_stanza(stanza)?;
        let stanza = if inner.config.answer_disco {
            match inner.responder.handle_stanza(stanza) {
                ControlFlow::Break(reply) => {
                    if let Some(reply) = reply {
                        self.spawn_send(reply);
                    }
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(s) => s,
            }
        } else {
            stanza
        };
        let stanza = match &inner.jingle {
            Some(core) => match core.handle_stanza(stanza) {
                ControlFlow::Break(initiated) => {
                    for i in initiated {
                        self.jingle_offer(i);
                    }
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(s) => s,
            },
            None => stanza,
        };
        let stanza = self.handle_si(stanza)?;
        let stanza = inner.s5b.handle_stanza(stanza)?;
        let stanza = inner.s5b_proxy_only.handle_stanza(stanza)?;
        inner.ibb.handle_stanza(stanza)
    }

    /// Waits while an IBB-over-`<message/>` stream holds more than
    /// [`xep0047_ibb::Config::recv_buffer`] received bytes its transfer has not taken yet.
    ///
    /// Part of the pump contract: a receive loop that awaits this before each
    /// [`handle_stanza`](Self::handle_stanza) stops taking stanzas while a receiver lags,
    /// so the connection's inbound queue fills and the sender's sends wait (by TCP flow
    /// control through a server). Returns at once when nothing lags; iq-mode IBB and S5B
    /// need no help (their own acknowledgements and TCP pace them). Transfers read on
    /// their own tasks, never on the pump's, so waiting here cannot deadlock. A receiver
    /// that takes nothing for [`xep0047_ibb::Config::stalled_reader`] (a hung disk) stops
    /// holding the connection: its stream then ends at its own bound, and the other
    /// transfers, offers and iqs of the connection go on.
    pub async fn ready(&self) {
        self.shared.ibb.ready().await;
    }

    fn spawn_send(&self, stanza: Stanza) {
        spawn_send(&self.shared, stanza);
    }

    /// SI offers: a `set` with `<si xmlns='http://jabber.org/protocol/si'/>`.
    fn handle_si(&self, stanza: Stanza) -> ControlFlow<(), Stanza> {
        let Stanza::Iq(iq) = stanza else {
            return ControlFlow::Continue(stanza);
        };
        let is_si = matches!(&iq, Iq::Set { payload, .. } if payload.is("si", xep0095_si::NS_SI));
        if !is_si {
            return ControlFlow::Continue(Stanza::Iq(iq));
        }
        let offer = match FileOffer::from_iq(&iq) {
            Ok(o) => o,
            Err(e) => {
                tracing::debug!("ft-facade: refusing an si offer: {e}");
                let reply = xep0096_file::error_reply(&iq, &e).map(Stanza::Iq);
                self.refused(&iq, Refusal::Malformed(Arc::new(e)), reply);
                return ControlFlow::Break(());
            }
        };
        self.offer_arrived(iq, offer);
        ControlFlow::Break(())
    }

    fn offer_arrived(&self, iq: Iq, offer: FileOffer) {
        let inner = &self.shared;
        let Some(from) = offer.offer.from.clone() else {
            let e =
                ft_transport::util::stanza_error(ErrorType::Modify, DefinedCondition::BadRequest);
            let reply = iq_error_reply(&iq, e).map(Stanza::Iq);
            self.refused(&iq, Refusal::NoSender, reply);
            return;
        };
        let ours: Vec<&str> = inner.config.offered_namespaces();
        if offer.offer.choose(&ours).is_none() {
            let reply = Some(Stanza::Iq(offer.offer.no_valid_streams()));
            self.refused(&iq, Refusal::NoCommonMethod, reply);
            return;
        }
        let key = (from.clone(), offer.offer.sid.clone());
        let policy = &inner.config.policy;
        if let Some(refusal) = self.admit(&key) {
            let e = match refusal {
                Refusal::Duplicate => {
                    ft_transport::util::stanza_error(ErrorType::Cancel, DefinedCondition::Conflict)
                }
                _ => ft_transport::util::stanza_error(
                    ErrorType::Wait,
                    DefinedCondition::ResourceConstraint,
                ),
            };
            let reply = iq_error_reply(&iq, e).map(Stanza::Iq);
            self.refused(&iq, refusal, reply);
            return;
        }
        // An offer without a size is held to the limit as its bytes arrive.
        if let Some(limit) = policy.max_size
            && let Some(size) = offer.file.size
            && size > limit
        {
            inner.release_incoming(&key);
            let text = format!("file of {size} bytes exceeds the limit of {limit}");
            let reply = Some(Stanza::Iq(offer.decline(Some(&text))));
            self.refused(&iq, Refusal::TooLarge { size, limit }, reply);
            return;
        }
        let auto = policy
            .auto_accept_dir
            .as_ref()
            .filter(|_| policy.auto_accept_from.iter().any(|b| *b == from.to_bare()));
        // B4: an offer larger than the free space is refused before anything is opened.
        if let Some(dir) = auto
            && let Err(n) = policy.check_free_space(dir, offer.file.size)
        {
            inner.release_incoming(&key);
            let reply = Some(Stanza::Iq(offer.decline(Some(&n.text()))));
            let reason = Refusal::NoSpace {
                size: n.size,
                available: n.available,
            };
            self.refused(&iq, reason, reply);
            return;
        }
        let offer = crate::stack::StackOffer::Si(Box::new(offer));
        let mut incoming = IncomingOffer::new(self.shared.clone(), offer, from.clone(), key);
        if let Some(dir) = auto {
            incoming.auto_accept(dir.clone());
        }
        if let Err(e) = self.offers.tx.try_send(incoming) {
            let incoming = match e {
                mpsc::error::TrySendError::Full(i) | mpsc::error::TrySendError::Closed(i) => i,
            };
            let reply = incoming.refuse_busy();
            self.note_refused(RefusedOffer::new(&iq, Refusal::Busy, reply.as_ref()));
        }
    }

    /// Counts an incoming offer (any stack) against the bounds: a duplicate (peer, sid),
    /// too many pending in total or from this account. `None`: admitted (and counted until
    /// released).
    pub(crate) fn admit(&self, key: &(Jid, ft_transport::Sid)) -> Option<Refusal> {
        let policy = &self.shared.config.policy;
        let mut incoming = lock(&self.shared.incoming);
        let refusal = if incoming.contains(key) {
            Some(Refusal::Duplicate)
        } else if incoming.len() >= policy.pending_capacity() {
            Some(Refusal::Busy)
        } else {
            // Offers stay in `incoming` while pending or receiving (auto-accepted ones
            // too), so this counts what the peer's account holds of ours right now.
            let bare = key.0.to_bare();
            let limit = policy.per_peer_capacity();
            let held = incoming.iter().filter(|(j, _)| j.to_bare() == bare).count();
            (held >= limit).then_some(Refusal::PeerBusy { limit })
        };
        if refusal.is_none() {
            incoming.insert(key.clone());
        }
        refusal
    }

    /// Hands an admitted offer to the application (or starts it when auto-accepted);
    /// refused busy when the queue is full.
    pub(crate) fn deliver(
        &self,
        mut incoming: IncomingOffer<T>,
        auto: Option<PathBuf>,
        refused: RefusedOffer,
    ) {
        if let Some(dir) = auto {
            incoming.auto_accept(dir);
        }
        if let Err(e) = self.offers.tx.try_send(incoming) {
            let incoming = match e {
                mpsc::error::TrySendError::Full(i) | mpsc::error::TrySendError::Closed(i) => i,
            };
            let reply = incoming.refuse_busy();
            let mut refused = refused;
            refused.answer = match reply {
                Some(Stanza::Iq(Iq::Error { error, .. })) => Some(error),
                _ => None,
            };
            self.note_refused(refused);
        }
    }

    /// Hands a peer's request to the application; ended `<busy/>` when the queue is full.
    pub(crate) fn deliver_request(&self, request: IncomingRequest<T>, refused: RefusedOffer) {
        if let Err(e) = self.offers.requests_tx.try_send(request) {
            let request = match e {
                mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r) => r,
            };
            request.refuse_busy();
            self.note_refused(refused);
        }
    }

    /// The next file a peer asks us for (XEP-0234 pull, Jingle only). Nothing is sent
    /// unless the application accepts it ([`IncomingRequest::accept_file`]); requests
    /// nobody reads wait here (at most [`Policy::max_pending_offers`](crate::Policy::max_pending_offers),
    /// more are ended `<busy/>`) until the peer's session times out. `None` never happens
    /// while the manager lives.
    pub async fn next_request(&self) -> Option<IncomingRequest<T>> {
        self.offers.requests_rx.lock().await.recv().await
    }

    /// Asks `from` (a full JID with Jingle File Transfer) for a file (XEP-0234 pull) and
    /// receives it into `dir` like an accepted offer: the peer's name made safe, a `.part`
    /// renamed into place once the size and every hash checked (the requested hash
    /// first), progress and events on the handle. Without Jingle on both sides it fails at
    /// stage `Disco` with [`ErrorKind::NoCommonMethod`](crate::ErrorKind::NoCommonMethod);
    /// a peer that does not serve it ends the session (`<failed-application/>` ends the
    /// transfer with [`JingleError::Terminated`](crate::JingleError::Terminated)). A
    /// request is not resumed.
    pub fn request_file(
        &self,
        from: Jid,
        request: FileRequest,
        dir: impl Into<PathBuf>,
        options: AcceptOptions,
    ) -> TransferHandle {
        let sid = random_sid();
        let (handle, side) = pair(sid.clone(), from.clone(), None);
        let shared = self.shared.clone();
        let dest = crate::receive::Destination::Dir(dir.into());
        tokio::spawn(async move {
            let mut side = side;
            let r = crate::stack::jingle::pull::run(
                &shared, &mut side, from, sid, request, dest, options,
            )
            .await;
            side.finish(r);
        });
        handle
    }

    /// Sends `reply` (the refusal) and tells [`next_refused`](Self::next_refused).
    fn refused(&self, iq: &Iq, reason: Refusal, reply: Option<Stanza>) {
        let refused = RefusedOffer::new(iq, reason, reply.as_ref());
        if let Some(reply) = reply {
            self.spawn_send(reply);
        }
        self.note_refused(refused);
    }

    pub(crate) fn note_refused(&self, refused: RefusedOffer) {
        // A peer's name goes into the log capped (BAD-INPUT B11: 300 bytes, as Prosody).
        tracing::info!(
            "ft-facade: refused an offer of {:?} from {:?}: {} (answered {})",
            refused.name.as_deref().map(|n| crate::recv::cap(n, 300)),
            refused.from.as_ref().map(ToString::to_string),
            refused.reason,
            refused.answer_text()
        );
        // Full: the application does not read them; the peer was answered anyway.
        let _ = self.offers.refused_tx.try_send(refused);
    }

    /// The next offer the manager refused itself before the application saw it (malformed,
    /// no common method, too large for the policy, a duplicate sid, too many pending from
    /// that peer or from everyone), with
    /// what the peer was answered: a receiver shows these so that its user learns that an
    /// offer came and why it went nowhere. At most [`REFUSED_QUEUE`] wait; more are dropped.
    /// `None` never happens while the manager lives.
    pub async fn next_refused(&self) -> Option<RefusedOffer> {
        self.offers.refused_rx.lock().await.recv().await
    }

    /// The next incoming offer (or auto-accepted transfer); `None` never happens while the
    /// manager lives. Offers that wait here too long are declined by the sender's timeout.
    pub async fn next_offer(&self) -> Option<IncomingOffer<T>> {
        self.offers.rx.lock().await.recv().await
    }

    /// Sends the file at `path` to `to` (a full JID). The MD5 and date go in the offer; the
    /// transfer runs on its own task.
    pub fn send_file(
        &self,
        to: Jid,
        path: impl Into<PathBuf>,
        options: SendOptions,
    ) -> TransferHandle {
        self.start_send(to, Source::Path(path.into()), options)
    }

    /// Sends `info.size` bytes read from `reader`. The offer carries `info` as given (set
    /// [`FileInfo::md5`] for receivers that check it). Resume requests are honoured by
    /// reading and discarding the first bytes.
    pub fn send_reader<R>(
        &self,
        to: Jid,
        reader: R,
        info: FileInfo,
        options: SendOptions,
    ) -> TransferHandle
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        self.start_send(to, Source::Reader(Box::new(reader), info), options)
    }

    fn start_send(&self, to: Jid, source: Source, options: SendOptions) -> TransferHandle {
        let sid = options.sid.clone().unwrap_or_else(random_sid);
        let total = match &source {
            Source::Reader(_, info) => info.size,
            Source::Path(_) => None,
        };
        let (handle, side) = pair(sid.clone(), to.clone(), total);
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let mut side = side;
            let result = crate::send::run(&shared, &mut side, to, sid, source, options).await;
            side.finish(result);
        });
        handle
    }
}
