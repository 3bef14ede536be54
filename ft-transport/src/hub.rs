//! An in-memory hub: several XMPP entities in one process, routed the way a server routes.
//!
//! * Stanzas are routed by the exact `to` JID (a client's full JID or a component's domain).
//!   A message to a bare JID goes to one of that account's resources.
//! * `from` is stamped with the sender's JID, as a server does.
//! * A request iq or a message to nobody gets `cancel/service-unavailable` back, like
//!   XMPP core (RFC 6120 §8.5) describes for a server.
//! * A domain with no entity of its own answers disco like a server does: `disco#items`
//!   lists the components registered under it (the way a client discovers a SOCKS5 proxy),
//!   `disco#info` names a `server/im` identity.
//!
//! Every entity has a bounded inbox ([`HubConfig::inbox_capacity`]); a sender waits while the
//! recipient's inbox is full, so a fast sender cannot grow memory without bound.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use jid::Jid;
use tokio::sync::mpsc;
use xmpp_parsers::{
    disco::{DiscoInfoQuery, DiscoInfoResult, DiscoItemsQuery, DiscoItemsResult, Identity, Item},
    iq::Iq,
    ns,
    stanza::Stanza,
    stanza_error::{DefinedCondition, ErrorType},
};

use crate::StanzaTransport;
use crate::util::{error_reply, set_stanza_from, stanza_error, stanza_to};

/// Hub settings.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// How many stanzas wait in one entity's inbox before senders wait. Default 1024: enough
    /// for an IBB window of hundreds of chunks in flight, small enough to bound memory
    /// (1024 × a 64 KiB chunk ≈ 64 MiB in the worst case).
    pub inbox_capacity: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            inbox_capacity: 1024,
        }
    }
}

/// Error sending through the hub.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// The sender's own inbox was closed: this entity has disconnected.
    #[error("entity {0} is disconnected from the hub")]
    Disconnected(Jid),
}

struct Inner {
    config: HubConfig,
    entities: Mutex<HashMap<Jid, mpsc::Sender<Stanza>>>,
}

/// The in-memory hub. Cheap to clone: clones share the same routing table.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.inner.entities.lock().map(|e| e.len()).unwrap_or(0);
        f.debug_struct("Hub").field("entities", &n).finish()
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    /// A hub with the default [`HubConfig`].
    pub fn new() -> Self {
        Self::with_config(HubConfig::default())
    }

    /// A hub with the given settings.
    pub fn with_config(config: HubConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                entities: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Connects an entity. A client uses its full JID; a component uses its domain.
    /// Connecting a JID again replaces the earlier connection (as a server does on a
    /// resource conflict).
    pub fn connect(&self, jid: Jid) -> (HubTransport, HubReceiver) {
        let (tx, rx) = mpsc::channel(self.inner.config.inbox_capacity.max(1));
        self.inner
            .entities
            .lock()
            .expect("hub lock poisoned")
            .insert(jid.clone(), tx);
        (
            HubTransport {
                hub: self.clone(),
                jid: jid.clone(),
            },
            HubReceiver { rx, jid },
        )
    }

    /// Removes an entity; stanzas to it get `service-unavailable` from now on.
    pub fn disconnect(&self, jid: &Jid) {
        self.inner
            .entities
            .lock()
            .expect("hub lock poisoned")
            .remove(jid);
    }

    fn lookup(&self, to: &Jid, is_message: bool) -> Option<mpsc::Sender<Stanza>> {
        let entities = self.inner.entities.lock().expect("hub lock poisoned");
        if let Some(tx) = entities.get(to)
            && !tx.is_closed()
        {
            return Some(tx.clone());
        }
        if is_message && to.resource().is_none() {
            let bare = to.to_bare();
            return entities
                .iter()
                .find(|(jid, tx)| jid.to_bare() == bare && !tx.is_closed())
                .map(|(_, tx)| tx.clone());
        }
        None
    }

    fn components_of(&self, domain: &str) -> Vec<Jid> {
        let entities = self.inner.entities.lock().expect("hub lock poisoned");
        let suffix = format!(".{domain}");
        let mut found: Vec<Jid> = entities
            .keys()
            .filter(|j| j.node().is_none() && j.resource().is_none())
            .filter(|j| j.domain().as_str().ends_with(&suffix))
            .cloned()
            .collect();
        found.sort_by_key(|j| j.to_string());
        found
    }

    /// Answers what a server would for a domain with no entity of its own.
    fn answer_as_server(&self, to: &Jid, stanza: &Stanza) -> Option<Stanza> {
        let Stanza::Iq(Iq::Get {
            payload, id, from, ..
        }) = stanza
        else {
            return None;
        };
        if to.node().is_some() || to.resource().is_some() {
            return None;
        }
        let reply = if DiscoItemsQuery::try_from(payload.clone()).is_ok() {
            let items = self
                .components_of(to.domain().as_str())
                .into_iter()
                .map(|jid| Item {
                    jid,
                    node: None,
                    name: None,
                })
                .collect();
            Iq::from_result(
                id.clone(),
                Some(DiscoItemsResult {
                    node: None,
                    items,
                    rsm: None,
                }),
            )
        } else if DiscoInfoQuery::try_from(payload.clone()).is_ok() {
            Iq::from_result(
                id.clone(),
                Some(DiscoInfoResult {
                    node: None,
                    identities: vec![Identity::new_anonymous::<_, _, String, String>(
                        "server", "im",
                    )],
                    features: [ns::DISCO_INFO.to_owned(), ns::DISCO_ITEMS.to_owned()]
                        .into_iter()
                        .collect(),
                    extensions: vec![],
                }),
            )
        } else {
            return None;
        };
        let mut reply = reply.with_from(to.clone());
        *reply.to_mut() = from.clone();
        Some(Stanza::Iq(reply))
    }

    async fn route(&self, sender: &Jid, mut stanza: Stanza) -> Result<(), HubError> {
        set_stanza_from(&mut stanza, Some(sender.clone()));
        let is_message = matches!(stanza, Stanza::Message(_));
        let to = stanza_to(&stanza).cloned();
        let target = to.as_ref().and_then(|to| self.lookup(to, is_message));
        match target {
            Some(tx) => {
                if let Err(mpsc::error::SendError(stanza)) = tx.send(stanza).await {
                    self.bounce(sender, to.as_ref(), &stanza).await?;
                }
                Ok(())
            }
            None => {
                if let Some(to) = &to
                    && let Some(reply) = self.answer_as_server(to, &stanza)
                {
                    return self.deliver_back(sender, reply).await;
                }
                self.bounce(sender, to.as_ref(), &stanza).await
            }
        }
    }

    async fn bounce(
        &self,
        sender: &Jid,
        to: Option<&Jid>,
        stanza: &Stanza,
    ) -> Result<(), HubError> {
        let error = stanza_error(ErrorType::Cancel, DefinedCondition::ServiceUnavailable);
        if let Some(mut reply) = error_reply(stanza, error) {
            set_stanza_from(&mut reply, to.cloned());
            self.deliver_back(sender, reply).await?;
        }
        Ok(())
    }

    async fn deliver_back(&self, sender: &Jid, reply: Stanza) -> Result<(), HubError> {
        let tx = self.lookup(sender, false);
        match tx {
            Some(tx) => tx
                .send(reply)
                .await
                .map_err(|_| HubError::Disconnected(sender.clone())),
            None => Err(HubError::Disconnected(sender.clone())),
        }
    }
}

/// One entity's sending half on the [`Hub`]: a [`StanzaTransport`]. Cheap to clone.
#[derive(Clone)]
pub struct HubTransport {
    hub: Hub,
    jid: Jid,
}

impl fmt::Debug for HubTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubTransport")
            .field("jid", &self.jid.to_string())
            .finish()
    }
}

impl HubTransport {
    /// The hub this entity is on.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }
}

impl StanzaTransport for HubTransport {
    type Error = HubError;

    fn send(&self, stanza: Stanza) -> impl Future<Output = Result<(), HubError>> + Send {
        self.hub.route(&self.jid, stanza)
    }

    fn jid(&self) -> &Jid {
        &self.jid
    }
}

/// One entity's inbox on the [`Hub`].
#[derive(Debug)]
pub struct HubReceiver {
    rx: mpsc::Receiver<Stanza>,
    jid: Jid,
}

impl HubReceiver {
    /// The next stanza for this entity, or `None` once the hub has dropped it.
    pub async fn recv(&mut self) -> Option<Stanza> {
        self.rx.recv().await
    }

    /// A stanza if one is waiting, without waiting.
    pub fn try_recv(&mut self) -> Option<Stanza> {
        self.rx.try_recv().ok()
    }

    /// The JID this inbox belongs to.
    pub fn jid(&self) -> &Jid {
        &self.jid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_parsers::{message::Message, ping::Ping};

    fn jid(s: &str) -> Jid {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn iq_to_unknown_full_jid_gets_service_unavailable() {
        let hub = Hub::new();
        let (a, mut a_rx) = hub.connect(jid("a@x/1"));
        let iq = Iq::from_get("q1", Ping).with_to(jid("nobody@x/1"));
        a.send(Stanza::Iq(iq)).await.unwrap();
        let Some(Stanza::Iq(Iq::Error {
            id, error, from, ..
        })) = a_rx.recv().await
        else {
            panic!("expected an iq error");
        };
        assert_eq!(id, "q1");
        assert_eq!(from, Some(jid("nobody@x/1")));
        assert_eq!(
            error.defined_condition,
            DefinedCondition::ServiceUnavailable
        );
        assert_eq!(error.type_, ErrorType::Cancel);
    }

    #[tokio::test]
    async fn message_to_bare_jid_reaches_a_resource_with_from_stamped() {
        let hub = Hub::new();
        let (a, _a_rx) = hub.connect(jid("a@x/1"));
        let (_b, mut b_rx) = hub.connect(jid("b@x/phone"));
        let mut m = Message::new(Some(jid("b@x")));
        m.from = Some(jid("mallory@evil/1"));
        a.send(Stanza::Message(m)).await.unwrap();
        let Some(Stanza::Message(got)) = b_rx.recv().await else {
            panic!()
        };
        assert_eq!(got.from, Some(jid("a@x/1")), "a forged from is replaced");
    }

    #[tokio::test]
    async fn domain_lists_its_components_in_disco_items() {
        let hub = Hub::new();
        let (a, mut a_rx) = hub.connect(jid("a@x/1"));
        let (_p, _p_rx) = hub.connect(jid("proxy.x"));
        let (_o, _o_rx) = hub.connect(jid("proxy.other"));
        let iq = Iq::from_get(
            "d1",
            DiscoItemsQuery {
                node: None,
                rsm: None,
            },
        )
        .with_to(jid("x"));
        a.send(Stanza::Iq(iq)).await.unwrap();
        let Some(Stanza::Iq(Iq::Result {
            payload: Some(p), ..
        })) = a_rx.recv().await
        else {
            panic!()
        };
        let items = DiscoItemsResult::try_from(p).unwrap();
        let jids: Vec<String> = items.items.iter().map(|i| i.jid.to_string()).collect();
        assert_eq!(jids, vec!["proxy.x"]);
    }

    #[tokio::test]
    async fn a_result_to_nobody_is_dropped_not_bounced() {
        let hub = Hub::new();
        let (a, mut a_rx) = hub.connect(jid("a@x/1"));
        let mut iq = Iq::empty_result(jid("gone@x/1"), "r1");
        *iq.from_mut() = None;
        a.send(Stanza::Iq(iq)).await.unwrap();
        assert!(a_rx.try_recv().is_none());
    }

    #[tokio::test]
    async fn full_inbox_makes_sender_wait() {
        let hub = Hub::with_config(HubConfig { inbox_capacity: 2 });
        let (a, _a_rx) = hub.connect(jid("a@x/1"));
        let (_b, mut b_rx) = hub.connect(jid("b@x/1"));
        for _ in 0..2 {
            a.send(Stanza::Message(Message::new(Some(jid("b@x/1")))))
                .await
                .unwrap();
        }
        let third = a.send(Stanza::Message(Message::new(Some(jid("b@x/1")))));
        tokio::pin!(third);
        assert!(
            futures_poll_once(third.as_mut()).await.is_none(),
            "third send waits"
        );
        b_rx.recv().await.unwrap();
        third.await.unwrap();
    }

    async fn futures_poll_once<F: Future + Unpin>(f: F) -> Option<F::Output> {
        tokio::select! {
            biased;
            out = f => Some(out),
            _ = tokio::task::yield_now() => None,
        }
    }
}
