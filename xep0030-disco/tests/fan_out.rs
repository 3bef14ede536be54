//! Proxy discovery against a server that lists too much or entities that never answer
//! (BAD-INPUT I4): only the first items are probed, a few at a time, within one deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ft_transport::hub::{Hub, HubError, HubReceiver, HubTransport};
use ft_transport::iq::IqTracker;
use ft_transport::{Jid, StanzaTransport};
use tokio::time::Instant;
use xep0030_disco::{Disco, DiscoConfig, DiscoResponder, Error, identity};
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoItemsQuery, DiscoItemsResult, Item};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;

fn jid(s: &str) -> Jid {
    s.parse().unwrap()
}

/// Our client's transport, counting the disco#info queries it sends.
#[derive(Clone)]
struct Counting {
    inner: HubTransport,
    info_sent: Arc<AtomicUsize>,
}

impl StanzaTransport for Counting {
    type Error = HubError;

    async fn send(&self, stanza: Stanza) -> Result<(), HubError> {
        if let Stanza::Iq(Iq::Get { payload, .. }) = &stanza
            && DiscoInfoQuery::try_from(payload.clone()).is_ok()
        {
            self.info_sent.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.send(stanza).await
    }

    fn jid(&self) -> &Jid {
        self.inner.jid()
    }
}

fn client(hub: &Hub, config: DiscoConfig) -> (Disco<Counting>, Arc<AtomicUsize>) {
    let (tx, mut rx) = hub.connect(jid("a@big.example.org/1"));
    let tracker = Arc::new(IqTracker::new("d"));
    let t = tracker.clone();
    tokio::spawn(async move {
        while let Some(s) = rx.recv().await {
            let _ = t.handle_stanza(s);
        }
    });
    let info_sent = Arc::new(AtomicUsize::new(0));
    let transport = Counting {
        inner: tx,
        info_sent: info_sent.clone(),
    };
    (Disco::new(transport, tracker, config), info_sent)
}

/// The server entity: answers disco#items with `items`.
fn server(hub: &Hub, name: &str, items: Vec<Jid>) {
    let (tx, mut rx) = hub.connect(jid(name));
    tokio::spawn(async move {
        while let Some(s) = rx.recv().await {
            let Stanza::Iq(Iq::Get {
                id, from, payload, ..
            }) = s
            else {
                continue;
            };
            if DiscoItemsQuery::try_from(payload).is_err() {
                continue;
            }
            let result = DiscoItemsResult {
                node: None,
                items: items
                    .iter()
                    .map(|j| Item {
                        jid: j.clone(),
                        node: None,
                        name: None,
                    })
                    .collect(),
                rsm: None,
            };
            let mut reply = Iq::from_result(id, Some(result));
            *reply.to_mut() = from;
            let _ = tx.send(Stanza::Iq(reply)).await;
        }
    });
}

/// Probes in flight at one of our fake components, and the most seen at once.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
    seen: AtomicUsize,
}

/// A component that answers disco#info after `delay` (a proxy if `proxy`).
fn component(hub: &Hub, name: &Jid, proxy: bool, delay: Duration, gauge: Arc<Gauge>) {
    let (tx, mut rx): (HubTransport, HubReceiver) = hub.connect(name.clone());
    let responder = Arc::new(if proxy {
        DiscoResponder::new(identity("proxy", "bytestreams"))
    } else {
        DiscoResponder::new(identity("conference", "text"))
    });
    tokio::spawn(async move {
        while let Some(s) = rx.recv().await {
            let (tx, responder, gauge) = (tx.clone(), responder.clone(), gauge.clone());
            tokio::spawn(async move {
                gauge.seen.fetch_add(1, Ordering::SeqCst);
                let n = gauge.now.fetch_add(1, Ordering::SeqCst) + 1;
                gauge.max.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                gauge.now.fetch_sub(1, Ordering::SeqCst);
                if let std::ops::ControlFlow::Break(Some(reply)) = responder.handle_stanza(s) {
                    let _ = tx.send(reply).await;
                }
            });
        }
    });
}

#[tokio::test(start_paused = true)]
async fn i4_ten_thousand_items_only_the_first_20_are_probed_4_at_a_time() {
    let hub = Hub::new();
    let items: Vec<Jid> = (0..10_000)
        .map(|i| jid(&format!("c{i}.big.example.org")))
        .collect();
    server(&hub, "big.example.org", items.clone());
    let gauge = Arc::new(Gauge::default());
    // The first 40 answer after a second; every fifth is a proxy. Items past them are
    // answered at once by the hub (as a server answers for a domain it hosts).
    for (i, item) in items.iter().take(40).enumerate() {
        component(
            &hub,
            item,
            i % 5 == 0,
            Duration::from_secs(1),
            gauge.clone(),
        );
    }
    let (disco, info_sent) = client(&hub, DiscoConfig::default());
    let start = Instant::now();
    let proxies = disco.find_proxies(&jid("big.example.org")).await.unwrap();
    assert_eq!(
        proxies,
        [0, 5, 10, 15].map(|i| items[i].clone()),
        "proxies among the first 20, in the server's order"
    );
    assert_eq!(
        info_sent.load(Ordering::SeqCst),
        20,
        "disco#info queries sent"
    );
    assert_eq!(gauge.seen.load(Ordering::SeqCst), 20);
    assert_eq!(gauge.max.load(Ordering::SeqCst), 4, "most probes in flight");
    // 20 probes of 1 s each, 4 at a time.
    assert_eq!(start.elapsed(), Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn i4_items_that_never_answer_end_find_proxies_at_its_deadline() {
    let hub = Hub::new();
    let mut items: Vec<Jid> = (0..8)
        .map(|i| jid(&format!("silent{i}.slow.example.org")))
        .collect();
    items.push(jid("proxy.slow.example.org"));
    server(&hub, "slow.example.org", items.clone());
    // Connected, never answering: the hub keeps their inboxes.
    let _silent: Vec<_> = items[..8].iter().map(|j| hub.connect(j.clone())).collect();
    let gauge = Arc::new(Gauge::default());
    component(&hub, &items[8], true, Duration::ZERO, gauge.clone());
    // Each query may take a minute; the whole discovery only the default 30 s.
    let mut config = DiscoConfig::default();
    config.timeout(Duration::from_secs(60));
    let (disco, info_sent) = client(&hub, config);
    let start = Instant::now();
    let proxies = disco.find_proxies(&jid("slow.example.org")).await.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(30),
        "the overall deadline"
    );
    assert!(
        proxies.is_empty(),
        "the proxy behind 8 silent items was not reached"
    );
    assert_eq!(info_sent.load(Ordering::SeqCst), 4, "4 probes at a time");
    assert_eq!(gauge.seen.load(Ordering::SeqCst), 0);

    // A server that never answers disco#items: an error at the deadline.
    let (_mute_tx, _mute_rx) = hub.connect(jid("mute.example.org"));
    let start = Instant::now();
    let err = disco
        .find_proxies(&jid("mute.example.org"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Timeout { timeout, .. } if timeout == Duration::from_secs(30)),
        "{err:?}"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(30));
}
