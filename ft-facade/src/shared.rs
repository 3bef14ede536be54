//! What every transfer of one [`FileTransfer`](crate::FileTransfer) shares: the transport,
//! the configuration and the protocol drivers. The send path, the receive path and the
//! manager all build on this module; it imports none of them.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ft_transport::iq::IqTracker;
use ft_transport::{Sid, Stanza, StanzaTransport};
use jid::{BareJid, Jid};
use rand::Rng;
use xep0030_disco::{Disco, DiscoResponder};
use xep0065_s5b::{S5b, StreamHost};

use crate::config::{Config, ProxySource};
use crate::glue::Ibb;

pub(crate) struct Shared<T: StanzaTransport + Clone> {
    pub(crate) transport: T,
    pub(crate) config: Config,
    pub(crate) tracker: Arc<IqTracker>,
    pub(crate) disco: Disco<T>,
    pub(crate) responder: DiscoResponder,
    /// Offers our own listener and the proxies.
    pub(crate) s5b: S5b<T>,
    /// Offers proxies only ([`S5bRoute::Proxy`](crate::S5bRoute::Proxy)).
    pub(crate) s5b_proxy_only: S5b<T>,
    pub(crate) ibb: Ibb<T>,
    pub(crate) proxy_cache: Mutex<Option<(Instant, Vec<StreamHost>)>>,
    /// (peer, sid) of incoming offers being handled, to refuse duplicates.
    pub(crate) incoming: Mutex<HashSet<(Jid, Sid)>>,
    /// The Jingle session table; `None` when our JID is not a full JID.
    pub(crate) jingle: Option<Arc<crate::stack::jingle::core::JingleCore<T>>>,
}

impl<T: StanzaTransport + Clone> Shared<T> {
    pub(crate) fn new(transport: T, config: Config) -> Self {
        let tracker = Arc::new(IqTracker::new(format!(
            "ft{}-",
            &random_sid().as_str()[..6]
        )));
        let disco = Disco::new(transport.clone(), tracker.clone(), config.disco.clone());
        let responder = DiscoResponder::file_transfer_client()
            .with_features(crate::stack::jingle_features(&config.methods))
            .with_jid(transport.jid().clone());
        let mut s5b_config = config.s5b.clone();
        s5b_config.connect_budget = s5b_config.connect_budget.min(config.s5b_budget);
        let s5b = S5b::new(transport.clone(), s5b_config.clone());
        s5b_config.listen(Vec::new());
        s5b_config.external.clear();
        let s5b_proxy_only = S5b::new(transport.clone(), s5b_config);
        let ibb = Ibb::new(transport.clone(), config.ibb.clone());
        let jingle = crate::stack::jingle::core::JingleCore::new(
            transport.clone(),
            &config,
            format!("jg{}-", &random_sid().as_str()[..6]),
        );
        Self {
            jingle,
            transport,
            config,
            tracker,
            disco,
            responder,
            s5b,
            s5b_proxy_only,
            ibb,
            proxy_cache: Mutex::new(None),
            incoming: Mutex::new(HashSet::new()),
        }
    }

    /// Forgets an incoming offer (answered, refused or ended). The set gives back the room
    /// of a burst once it is over (issue 9: sized for 1,000 offers, it stayed that size).
    pub(crate) fn release_incoming(&self, key: &(Jid, Sid)) {
        let mut set = lock(&self.incoming);
        set.remove(key);
        if set.capacity() > 16 && set.len() * 4 < set.capacity() {
            let keep = set.len() * 2;
            set.shrink_to(keep);
        }
    }

    /// Proxy streamhosts per [`Config::proxies`], cached for [`Config::proxy_cache_ttl`].
    pub(crate) async fn proxies(&self) -> Result<Vec<StreamHost>, xep0030_disco::Error> {
        if let Some((at, hosts)) = &*lock(&self.proxy_cache)
            && at.elapsed() < self.config.proxy_cache_ttl
        {
            return Ok(hosts.clone());
        }
        let jids = match &self.config.proxies {
            ProxySource::None => return Ok(Vec::new()),
            ProxySource::Jids(j) => j.clone(),
            ProxySource::Discover => {
                let server = Jid::from(BareJid::from_parts(None, self.transport.jid().domain()));
                self.disco.find_proxies(&server).await?
            }
        };
        // Each query times out by the S5B crate's own `iq_timeout`.
        let queries = jids.iter().map(|j| async move {
            match self.s5b.query_proxy(j.clone()).await {
                Ok(hosts) => hosts,
                Err(e) => {
                    tracing::debug!("ft-facade: proxy {j}: {e}");
                    Vec::new()
                }
            }
        });
        let mut hosts = Vec::new();
        for h in futures_util::future::join_all(queries).await {
            hosts.extend(h);
        }
        *lock(&self.proxy_cache) = Some((Instant::now(), hosts.clone()));
        Ok(hosts)
    }
}

/// Sends `stanza` from a task of its own.
pub(crate) fn spawn_send<T: StanzaTransport + Clone>(shared: &Arc<Shared<T>>, stanza: Stanza) {
    // Also called from `Drop` (an unanswered offer is declined), which may run after the
    // runtime is gone: then there is nobody to send through anyway.
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        tracing::debug!("ft-facade: no runtime to send a reply from");
        return;
    };
    let shared = shared.clone();
    rt.spawn(async move {
        if let Err(e) = shared.transport.send(stanza).await {
            tracing::debug!("ft-facade: could not send a reply: {e}");
        }
    });
}

/// A random stream id: 16 alphanumerics (95 bits), as unique as the XEPs ask.
pub(crate) fn random_sid() -> Sid {
    let mut rng = rand::thread_rng();
    let s: String = (0..16)
        .map(|_| {
            let i = rng.gen_range(0..62u8);
            char::from(match i {
                0..=9 => b'0' + i,
                10..=35 => b'a' + i - 10,
                _ => b'A' + i - 36,
            })
        })
        .collect();
    Sid::new(s).unwrap_or_else(|_| unreachable!("16 ascii alphanumerics are a valid sid"))
}

pub(crate) fn lock<X>(m: &Mutex<X>) -> std::sync::MutexGuard<'_, X> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
