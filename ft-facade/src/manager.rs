//! [`FileTransfer`]: one manager over one stanza transport.

use std::collections::HashSet;
use std::fmt;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ft_transport::iq::IqTracker;
use ft_transport::util::iq_error_reply;
use ft_transport::{Stanza, StanzaTransport};
use jid::{BareJid, Jid};
use rand::Rng;
use tokio::io::AsyncRead;
use tokio::sync::mpsc;
use xep0030_disco::{Disco, DiscoConfig, DiscoResponder};
use xep0065_s5b::{S5b, StreamHost};
use xep0096_file::FileOffer;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

use crate::config::{Config, Method, ProxySource};
use crate::event::FileInfo;
use crate::glue::Ibb;
use crate::handle::{TransferHandle, pair};
use crate::recv::IncomingOffer;

/// What to send and how, beyond the file itself.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SendOptions {
    /// A description (`<desc/>`).
    pub desc: Option<String>,
    /// Methods for this transfer only, instead of [`Config::methods`].
    pub methods: Option<Vec<Method>>,
    /// The stream id; a random one (16 characters) when `None`.
    pub sid: Option<String>,
    /// The IBB block size for this transfer, instead of [`Config::block_size`].
    pub block_size: Option<u16>,
}

impl SendOptions {
    /// Sets the methods for this transfer.
    #[must_use]
    pub fn with_methods(mut self, methods: &[Method]) -> Self {
        self.methods = Some(methods.to_vec());
        self
    }

    /// Sets the description.
    #[must_use]
    pub fn with_desc(mut self, desc: impl Into<String>) -> Self {
        self.desc = Some(desc.into());
        self
    }

    /// Sets the stream id.
    #[must_use]
    pub fn with_sid(mut self, sid: impl Into<String>) -> Self {
        self.sid = Some(sid.into());
        self
    }
}

/// What a transfer reads from.
pub(crate) enum Source {
    Path(PathBuf),
    Reader(Box<dyn AsyncRead + Send + Unpin>, FileInfo),
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Path(p) => f.debug_tuple("Path").field(p).finish(),
            Self::Reader(_, i) => f.debug_tuple("Reader").field(i).finish(),
        }
    }
}

pub(crate) struct Inner<T: StanzaTransport + Clone> {
    pub(crate) transport: T,
    pub(crate) config: Config,
    pub(crate) tracker: Arc<IqTracker>,
    pub(crate) disco: Disco<T>,
    pub(crate) responder: DiscoResponder,
    /// Offers our own listener and the proxies.
    pub(crate) s5b: S5b<T>,
    /// Offers proxies only ([`Method::S5bProxy`]).
    pub(crate) s5b_proxy_only: S5b<T>,
    pub(crate) ibb: Ibb<T>,
    pub(crate) offers_tx: mpsc::Sender<IncomingOffer<T>>,
    pub(crate) offers_rx: tokio::sync::Mutex<mpsc::Receiver<IncomingOffer<T>>>,
    pub(crate) proxy_cache: Mutex<Option<(Instant, Vec<StreamHost>)>>,
    /// (peer, sid) of incoming offers being handled, to refuse duplicates.
    pub(crate) incoming: Mutex<HashSet<(Jid, String)>>,
}

/// The complete file transfer over one XMPP connection: send files, receive offers.
///
/// Feed every inbound stanza to [`handle_stanza`](Self::handle_stanza); what is not ours
/// comes back. Cheap to clone (clones share everything).
///
/// It must be created and used inside a tokio runtime: every transfer runs on a task of its
/// own, and replies are sent from tasks.
pub struct FileTransfer<T: StanzaTransport + Clone> {
    pub(crate) inner: Arc<Inner<T>>,
}

impl<T: StanzaTransport + Clone> Clone for FileTransfer<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T: StanzaTransport + Clone> fmt::Debug for FileTransfer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileTransfer")
            .field("jid", &self.inner.transport.jid().to_string())
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// A random stream id: 16 alphanumerics (95 bits), as unique as the XEPs ask.
pub(crate) fn random_sid() -> String {
    let mut rng = rand::thread_rng();
    (0..16)
        .map(|_| {
            let i = rng.gen_range(0..62u8);
            char::from(match i {
                0..=9 => b'0' + i,
                10..=35 => b'a' + i - 10,
                _ => b'A' + i - 36,
            })
        })
        .collect()
}

impl<T: StanzaTransport + Clone> FileTransfer<T> {
    /// A manager sending through `transport`.
    pub fn new(transport: T, config: Config) -> Self {
        let tracker = Arc::new(IqTracker::new(format!("ft{}-", &random_sid()[..6])));
        let mut disco_config = DiscoConfig::default();
        disco_config
            .timeout(config.disco_timeout)
            .cache_ttl(config.proxy_cache_ttl);
        let disco = Disco::new(transport.clone(), tracker.clone(), disco_config);
        let responder = DiscoResponder::file_transfer_client().with_jid(transport.jid().clone());
        let mut s5b_config = config.s5b.clone();
        s5b_config.connect_budget = s5b_config.connect_budget.min(config.s5b_budget);
        let s5b = S5b::new(transport.clone(), s5b_config.clone());
        s5b_config.listen(Vec::new());
        s5b_config.external.clear();
        let s5b_proxy_only = S5b::new(transport.clone(), s5b_config);
        let ibb = Ibb::new(transport.clone(), config.ibb.clone());
        let (offers_tx, offers_rx) = mpsc::channel(config.policy.pending_capacity());
        Self {
            inner: Arc::new(Inner {
                transport,
                config,
                tracker,
                disco,
                responder,
                s5b,
                s5b_proxy_only,
                ibb,
                offers_tx,
                offers_rx: tokio::sync::Mutex::new(offers_rx),
                proxy_cache: Mutex::new(None),
                incoming: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Our own JID.
    pub fn jid(&self) -> &Jid {
        self.inner.transport.jid()
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
        let inner = &self.inner;
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
    /// their own tasks, never on the pump's, so waiting here cannot deadlock.
    pub async fn ready(&self) {
        self.inner.ibb.ready().await;
    }

    pub(crate) fn spawn_send(&self, stanza: Stanza) {
        // Also called from `Drop` (an unanswered offer is declined), which may run after the
        // runtime is gone: then there is nobody to send through anyway.
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::debug!("ft-facade: no runtime to send a reply from");
            return;
        };
        let inner = self.inner.clone();
        rt.spawn(async move {
            if let Err(e) = inner.transport.send(stanza).await {
                tracing::debug!("ft-facade: could not send a reply: {e}");
            }
        });
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
                if let Some(reply) = xep0096_file::error_reply(&iq, &e) {
                    self.spawn_send(Stanza::Iq(reply));
                }
                return ControlFlow::Break(());
            }
        };
        self.offer_arrived(iq, offer);
        ControlFlow::Break(())
    }

    fn offer_arrived(&self, iq: Iq, offer: FileOffer) {
        let inner = &self.inner;
        let Some(from) = offer.offer.from.clone() else {
            let e =
                ft_transport::util::stanza_error(ErrorType::Modify, DefinedCondition::BadRequest);
            if let Some(r) = iq_error_reply(&iq, e) {
                self.spawn_send(Stanza::Iq(r));
            }
            return;
        };
        let ours: Vec<&str> = inner.config.offered_namespaces();
        if offer.offer.choose(&ours).is_none() {
            self.spawn_send(Stanza::Iq(offer.offer.no_valid_streams()));
            return;
        }
        let key = (from.clone(), offer.offer.sid.as_str().to_owned());
        {
            let mut incoming = lock(&inner.incoming);
            if incoming.contains(&key) {
                let e =
                    ft_transport::util::stanza_error(ErrorType::Cancel, DefinedCondition::Conflict);
                if let Some(r) = iq_error_reply(&iq, e) {
                    self.spawn_send(Stanza::Iq(r));
                }
                return;
            }
            incoming.insert(key.clone());
        }
        let policy = &inner.config.policy;
        if let Some(limit) = policy.max_size
            && offer.file.size > limit
        {
            lock(&inner.incoming).remove(&key);
            let text = format!(
                "file of {} bytes exceeds the limit of {limit}",
                offer.file.size
            );
            self.spawn_send(Stanza::Iq(offer.decline(Some(&text))));
            return;
        }
        let mut incoming = IncomingOffer::new(self.clone(), offer, from.clone(), key);
        let auto = policy
            .auto_accept_dir
            .as_ref()
            .filter(|_| policy.auto_accept_from.iter().any(|b| *b == from.to_bare()));
        if let Some(dir) = auto {
            incoming.auto_accept(dir.clone());
        }
        if let Err(e) = inner.offers_tx.try_send(incoming) {
            let incoming = match e {
                mpsc::error::TrySendError::Full(i) | mpsc::error::TrySendError::Closed(i) => i,
            };
            incoming.refuse_busy();
        }
    }

    /// The next incoming offer (or auto-accepted transfer); `None` never happens while the
    /// manager lives. Offers that wait here too long are declined by the sender's timeout.
    pub async fn next_offer(&self) -> Option<IncomingOffer<T>> {
        self.inner.offers_rx.lock().await.recv().await
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
            Source::Path(_) => 0,
        };
        let (handle, side) = pair(sid.clone(), to.clone(), total);
        let this = self.clone();
        tokio::spawn(async move {
            let mut side = side;
            let result = crate::send::run(&this, &mut side, to, sid, source, options).await;
            side.finish(result);
        });
        handle
    }

    /// Proxy streamhosts per [`Config::proxies`], cached for [`Config::proxy_cache_ttl`].
    pub(crate) async fn proxies(&self) -> Result<Vec<StreamHost>, String> {
        let inner = &self.inner;
        if let Some((at, hosts)) = &*lock(&inner.proxy_cache)
            && at.elapsed() < inner.config.proxy_cache_ttl
        {
            return Ok(hosts.clone());
        }
        let jids = match &inner.config.proxies {
            ProxySource::None => return Ok(Vec::new()),
            ProxySource::Jids(j) => j.clone(),
            ProxySource::Discover => {
                let server = Jid::from(BareJid::from_parts(None, inner.transport.jid().domain()));
                inner
                    .disco
                    .find_proxies(&server)
                    .await
                    .map_err(|e| format!("proxy discovery on {server}: {e}"))?
            }
        };
        let queries = jids.iter().map(|j| async move {
            let r = tokio::time::timeout(
                inner.config.streamhost_query_timeout,
                inner.s5b.query_proxy(j.clone()),
            )
            .await;
            match r {
                Ok(Ok(hosts)) => hosts,
                Ok(Err(e)) => {
                    tracing::debug!("ft-facade: proxy {j}: {e}");
                    Vec::new()
                }
                Err(_) => Vec::new(),
            }
        });
        let mut hosts = Vec::new();
        for h in futures_util::future::join_all(queries).await {
            hosts.extend(h);
        }
        *lock(&inner.proxy_cache) = Some((Instant::now(), hosts.clone()));
        Ok(hosts)
    }
}

pub(crate) fn lock<X>(m: &Mutex<X>) -> std::sync::MutexGuard<'_, X> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
