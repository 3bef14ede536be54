//! The asking side over tokio: [`Disco`], cached disco#info / disco#items queries.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ft_transport::StanzaTransport;
use ft_transport::iq::{IqError, IqTracker};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use jid::Jid;
use tokio::time::Instant;
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoInfoResult, DiscoItemsQuery, Item};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza_error::DefinedCondition;

use crate::error::Error;
use crate::proto::{is_bytestreams_proxy, parse_info_result, parse_items_result};

/// How the client queries and caches.
#[derive(Debug, Clone)]
pub struct DiscoConfig {
    /// How long one query may take. Default 10 s: a server answers in milliseconds, a
    /// client behind a slow link in a second or two; longer waits only delay the fallback
    /// (no answer is treated as "unknown", not as "unsupported").
    pub timeout: Duration,
    /// How long an answer stays cached. Default 5 minutes: features and a server's proxy
    /// list change rarely, while a peer may reconnect with another client at any time and
    /// a new resource is a new JID anyway.
    pub cache_ttl: Duration,
    /// The most entries kept per cache (info, items, proxies); the oldest go first.
    /// Default 1024, bounding memory whatever a peer does.
    pub max_entries: usize,
    /// [`Disco::find_proxies`] probes (disco#info) only the first this many distinct items
    /// of the server's disco#items; the rest are ignored. Default 20: a server lists a
    /// handful of components, one of them the proxy, while a hostile or broken one may list
    /// 10,000 (BAD-INPUT I4).
    pub max_probed_items: usize,
    /// How many of those probes are in flight at once. Default 4.
    pub max_parallel_probes: usize,
    /// The overall deadline of [`Disco::find_proxies`], the items query and every probe
    /// together. Default 30 s. Probes still unanswered then are skipped, as failed ones
    /// are: the proxies found so far are the answer.
    pub find_proxies_deadline: Duration,
}

impl Default for DiscoConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            cache_ttl: Duration::from_secs(300),
            max_entries: 1024,
            max_probed_items: 20,
            max_parallel_probes: 4,
            find_proxies_deadline: Duration::from_secs(30),
        }
    }
}

impl DiscoConfig {
    /// Sets [`timeout`](Self::timeout).
    pub fn timeout(&mut self, timeout: Duration) -> &mut Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`cache_ttl`](Self::cache_ttl).
    pub fn cache_ttl(&mut self, ttl: Duration) -> &mut Self {
        self.cache_ttl = ttl;
        self
    }

    /// Sets [`max_entries`](Self::max_entries).
    pub fn max_entries(&mut self, n: usize) -> &mut Self {
        self.max_entries = n;
        self
    }

    /// Sets [`max_probed_items`](Self::max_probed_items).
    pub fn max_probed_items(&mut self, n: usize) -> &mut Self {
        self.max_probed_items = n;
        self
    }

    /// Sets [`max_parallel_probes`](Self::max_parallel_probes) (at least 1).
    pub fn max_parallel_probes(&mut self, n: usize) -> &mut Self {
        self.max_parallel_probes = n.max(1);
        self
    }

    /// Sets [`find_proxies_deadline`](Self::find_proxies_deadline).
    pub fn find_proxies_deadline(&mut self, d: Duration) -> &mut Self {
        self.find_proxies_deadline = d;
        self
    }
}

type Key = (Jid, Option<String>);

struct Cache<V> {
    map: HashMap<Key, (Instant, V)>,
}

impl<V: Clone> Cache<V> {
    fn new() -> Self {
        Self {
            map: HashMap::new(),
        }
    }

    fn get(&self, key: &Key, now: Instant) -> Option<V> {
        self.map
            .get(key)
            .filter(|(expires, _)| *expires > now)
            .map(|(_, v)| v.clone())
    }

    fn put(&mut self, key: Key, value: V, now: Instant, ttl: Duration, max: usize) {
        self.map.retain(|_, (expires, _)| *expires > now);
        while self.map.len() >= max.max(1) {
            let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, (expires, _))| *expires)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.map.remove(&oldest);
        }
        self.map.insert(key, (now + ttl, value));
    }
}

/// Service discovery queries with a cache and a timeout on every query.
///
/// Answers come back through the [`IqTracker`]: the application feeds every inbound
/// stanza to `tracker.handle_stanza` (it usually shares one tracker with the other drivers).
pub struct Disco<T> {
    transport: T,
    tracker: Arc<IqTracker>,
    config: DiscoConfig,
    info: Mutex<Cache<DiscoInfoResult>>,
    items: Mutex<Cache<Vec<Item>>>,
    proxies: Mutex<Cache<Vec<Jid>>>,
}

impl<T> fmt::Debug for Disco<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Disco")
            .field("config", &self.config)
            .finish()
    }
}

impl<T: StanzaTransport> Disco<T> {
    /// A client sending through `transport`, matching answers with `tracker`.
    pub fn new(transport: T, tracker: Arc<IqTracker>, config: DiscoConfig) -> Self {
        Self {
            transport,
            tracker,
            config,
            info: Mutex::new(Cache::new()),
            items: Mutex::new(Cache::new()),
            proxies: Mutex::new(Cache::new()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DiscoConfig {
        &self.config
    }

    /// Forgets everything cached about `jid`.
    pub fn invalidate(&self, jid: &Jid) {
        if let Ok(mut c) = self.info.lock() {
            c.map.retain(|(j, _), _| j != jid);
        }
        if let Ok(mut c) = self.items.lock() {
            c.map.retain(|(j, _), _| j != jid);
        }
        if let Ok(mut c) = self.proxies.lock() {
            c.map.retain(|(j, _), _| j != jid);
        }
    }

    async fn query(&self, jid: &Jid, payload: Iq) -> Result<minidom::Element, Error> {
        let iq = payload.with_to(jid.clone());
        match self
            .tracker
            .request(&self.transport, iq, self.config.timeout)
            .await
        {
            Ok(Some(p)) => Ok(p),
            Ok(None) => Err(Error::Malformed {
                jid: jid.to_string(),
                reason: "empty result".into(),
            }),
            Err(IqError::Rejected(error)) => Err(Error::Rejected {
                jid: jid.to_string(),
                error,
            }),
            Err(IqError::Timeout(timeout)) => Err(Error::Timeout {
                jid: jid.to_string(),
                timeout,
            }),
            Err(e) => Err(Error::Send {
                jid: jid.to_string(),
                source: Box::new(e),
            }),
        }
    }

    /// disco#info of `jid`, from the cache while fresh.
    pub async fn info(&self, jid: &Jid) -> Result<DiscoInfoResult, Error> {
        self.info_node(jid, None).await
    }

    /// disco#info of `jid` at `node`.
    pub async fn info_node(&self, jid: &Jid, node: Option<&str>) -> Result<DiscoInfoResult, Error> {
        let key = (jid.clone(), node.map(str::to_owned));
        if let Some(hit) = self
            .info
            .lock()
            .ok()
            .and_then(|c| c.get(&key, Instant::now()))
        {
            return Ok(hit);
        }
        let q = Iq::from_get(
            "",
            DiscoInfoQuery {
                node: key.1.clone(),
            },
        );
        let p = self.query(jid, q).await?;
        let info = parse_info_result(p).map_err(|e| Error::Malformed {
            jid: jid.to_string(),
            reason: e.to_string(),
        })?;
        if let Ok(mut c) = self.info.lock() {
            c.put(
                key,
                info.clone(),
                Instant::now(),
                self.config.cache_ttl,
                self.config.max_entries,
            );
        }
        Ok(info)
    }

    /// disco#items of `jid`, from the cache while fresh.
    pub async fn items(&self, jid: &Jid) -> Result<Vec<Item>, Error> {
        let key = (jid.clone(), None);
        if let Some(hit) = self
            .items
            .lock()
            .ok()
            .and_then(|c| c.get(&key, Instant::now()))
        {
            return Ok(hit);
        }
        let q = Iq::from_get(
            "",
            DiscoItemsQuery {
                node: None,
                rsm: None,
            },
        );
        let p = self.query(jid, q).await?;
        let items = parse_items_result(p)
            .map_err(|e| Error::Malformed {
                jid: jid.to_string(),
                reason: e.to_string(),
            })?
            .items;
        if let Ok(mut c) = self.items.lock() {
            c.put(
                key,
                items.clone(),
                Instant::now(),
                self.config.cache_ttl,
                self.config.max_entries,
            );
        }
        Ok(items)
    }

    /// Whether `jid` advertises `feature`.
    ///
    /// An error answer meaning "no such entity or no disco here" (`service-unavailable`,
    /// `feature-not-implemented`, `item-not-found`, `recipient-unavailable`) is `Ok(false)`;
    /// a timeout or any other failure is an `Err`, so the caller can tell "no" from
    /// "unknown".
    pub async fn supports(&self, jid: &Jid, feature: &str) -> Result<bool, Error> {
        match self.info(jid).await {
            Ok(info) => Ok(info.features.contains(feature)),
            Err(Error::Rejected { error, .. })
                if matches!(
                    error.defined_condition,
                    DefinedCondition::ServiceUnavailable
                        | DefinedCondition::FeatureNotImplemented
                        | DefinedCondition::ItemNotFound
                        | DefinedCondition::RecipientUnavailable
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// The SOCKS5 bytestreams proxies of `server`: disco#items on the server, then
    /// disco#info on the first [`max_probed_items`](DiscoConfig::max_probed_items) distinct
    /// items (at most [`max_parallel_probes`](DiscoConfig::max_parallel_probes) at once,
    /// each with the timeout), keeping those with identity `proxy/bytestreams`, in the
    /// server's item order. Everything together ends by
    /// [`find_proxies_deadline`](DiscoConfig::find_proxies_deadline): items whose info
    /// query fails or is still unanswered then are skipped; the items query failing (or
    /// not answered by the deadline) is an error. Cached like the rest.
    pub async fn find_proxies(&self, server: &Jid) -> Result<Vec<Jid>, Error> {
        let key = (server.clone(), None);
        if let Some(hit) = self
            .proxies
            .lock()
            .ok()
            .and_then(|c| c.get(&key, Instant::now()))
        {
            return Ok(hit);
        }
        let deadline = Instant::now() + self.config.find_proxies_deadline;
        let items = match tokio::time::timeout_at(deadline, self.items(server)).await {
            Ok(items) => items?,
            Err(_) => {
                return Err(Error::Timeout {
                    jid: server.to_string(),
                    timeout: self.config.find_proxies_deadline,
                });
            }
        };
        let mut candidates: Vec<Jid> = Vec::new();
        for item in items {
            if candidates.len() >= self.config.max_probed_items {
                break;
            }
            if item.node.is_none() && !candidates.contains(&item.jid) {
                candidates.push(item.jid);
            }
        }
        // In completion order, each tagged with its place; what has not come back by the
        // deadline counts as failed.
        let mut is_proxy = vec![false; candidates.len()];
        {
            // At most `max_parallel_probes` hold a permit (the semaphore is first come,
            // first served, so probes start in the server's order).
            let permits = tokio::sync::Semaphore::new(self.config.max_parallel_probes.max(1));
            let permits = &permits;
            let mut probes: FuturesUnordered<_> = candidates
                .iter()
                .enumerate()
                .map(|(i, j)| async move {
                    let _permit = permits.acquire().await;
                    (i, self.info(j).await)
                })
                .collect();
            let all = async {
                while let Some((i, info)) = probes.next().await {
                    is_proxy[i] = matches!(info, Ok(info) if is_bytestreams_proxy(&info));
                }
            };
            // Past the deadline the probes still running are dropped (their iqs withdrawn).
            let _ = tokio::time::timeout_at(deadline, all).await;
        }
        let proxies: Vec<Jid> = candidates
            .into_iter()
            .zip(is_proxy)
            .filter_map(|(jid, proxy)| proxy.then_some(jid))
            .collect();
        if let Ok(mut c) = self.proxies.lock() {
            c.put(
                key,
                proxies.clone(),
                Instant::now(),
                self.config.cache_ttl,
                self.config.max_entries,
            );
        }
        Ok(proxies)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{DiscoResponder, features, identity};
    use ft_transport::hub::{Hub, HubReceiver, HubTransport};
    use std::ops::ControlFlow;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn jid(s: &str) -> Jid {
        s.parse().unwrap()
    }

    /// Runs a responder for `rx`, counting the requests it answers.
    fn serve(
        tx: HubTransport,
        mut rx: HubReceiver,
        responder: DiscoResponder,
        count: Arc<AtomicUsize>,
    ) {
        tokio::spawn(async move {
            while let Some(s) = rx.recv().await {
                if let ControlFlow::Break(Some(reply)) = responder.handle_stanza(s) {
                    count.fetch_add(1, Ordering::SeqCst);
                    let _ = tx.send(reply).await;
                }
            }
        });
    }

    fn pump(mut rx: HubReceiver, tracker: Arc<IqTracker>) {
        tokio::spawn(async move {
            while let Some(s) = rx.recv().await {
                let _ = tracker.handle_stanza(s);
            }
        });
    }

    fn client(hub: &Hub, config: DiscoConfig) -> Disco<HubTransport> {
        let (tx, rx) = hub.connect(jid("a@example.org/1"));
        let tracker = Arc::new(IqTracker::new("d"));
        pump(rx, tracker.clone());
        Disco::new(tx, tracker, config)
    }

    #[tokio::test(start_paused = true)]
    async fn info_is_cached_until_it_expires() {
        let hub = Hub::new();
        let (btx, brx) = hub.connect(jid("b@example.org/2"));
        let count = Arc::new(AtomicUsize::new(0));
        serve(btx, brx, DiscoResponder::default(), count.clone());
        let mut config = DiscoConfig::default();
        config.cache_ttl(Duration::from_secs(60));
        let disco = client(&hub, config);
        let b = jid("b@example.org/2");
        assert!(
            disco
                .supports(&b, features::SI_FILE_TRANSFER)
                .await
                .unwrap()
        );
        assert!(!disco.supports(&b, "urn:xmpp:jingle:1").await.unwrap());
        assert_eq!(
            count.load(Ordering::SeqCst),
            1,
            "second answer from the cache"
        );
        tokio::time::advance(Duration::from_secs(61)).await;
        disco.info(&b).await.unwrap();
        assert_eq!(
            count.load(Ordering::SeqCst),
            2,
            "expired entry queried again"
        );
        disco.invalidate(&b);
        disco.info(&b).await.unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_times_out_within_the_configured_budget() {
        let hub = Hub::new();
        let (_btx, _brx) = hub.connect(jid("b@example.org/2"));
        let mut config = DiscoConfig::default();
        config.timeout(Duration::from_secs(3));
        let disco = client(&hub, config);
        let start = Instant::now();
        let err = disco.info(&jid("b@example.org/2")).await.unwrap_err();
        assert!(matches!(err, Error::Timeout { timeout, .. } if timeout == Duration::from_secs(3)));
        assert!(start.elapsed() < Duration::from_secs(4));
    }

    #[tokio::test]
    async fn an_absent_peer_supports_nothing() {
        let hub = Hub::new();
        let disco = client(&hub, DiscoConfig::default());
        assert!(
            !disco
                .supports(&jid("gone@example.org/x"), features::SI)
                .await
                .unwrap()
        );
        let err = disco.info(&jid("gone@example.org/x")).await.unwrap_err();
        assert_eq!(
            err.stanza_error().unwrap().defined_condition,
            DefinedCondition::ServiceUnavailable
        );
    }

    #[tokio::test(start_paused = true)]
    async fn find_proxies_keeps_only_bytestreams_proxies_and_skips_silent_items() {
        let hub = Hub::new();
        let count = Arc::new(AtomicUsize::new(0));
        let (ptx, prx) = hub.connect(jid("proxy.example.org"));
        serve(
            ptx,
            prx,
            DiscoResponder::new(identity("proxy", "bytestreams"))
                .with_features([features::BYTESTREAMS]),
            count.clone(),
        );
        let (ctx, crx) = hub.connect(jid("conference.example.org"));
        serve(
            ctx,
            crx,
            DiscoResponder::new(identity("conference", "text")),
            count.clone(),
        );
        // A component that never answers: bounded by the timeout, then skipped.
        let (_stx, _srx) = hub.connect(jid("silent.example.org"));
        let mut config = DiscoConfig::default();
        config.timeout(Duration::from_secs(2));
        let disco = client(&hub, config);
        let proxies = disco.find_proxies(&jid("example.org")).await.unwrap();
        assert_eq!(proxies, [jid("proxy.example.org")]);
        let answered = count.load(Ordering::SeqCst);
        assert_eq!(
            disco.find_proxies(&jid("example.org")).await.unwrap(),
            proxies
        );
        assert_eq!(count.load(Ordering::SeqCst), answered, "cached");
    }
}
