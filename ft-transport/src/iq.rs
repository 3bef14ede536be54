//! Request/response matching for the iqs a driver sends itself.
//!
//! The protocol drivers generate their own iq ids and match the answers themselves, so they
//! work over any connection (tokio-xmpp passes results it did not ask for through as plain
//! stanzas). Feed every inbound iq to [`IqTracker::handle_iq`]; it takes the results and
//! errors it is waiting for and hands everything else back.

use std::collections::HashMap;
use std::fmt;
use std::ops::ControlFlow;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jid::Jid;
use minidom::Element;
use tokio::sync::oneshot;
use xmpp_parsers::{iq::Iq, stanza::Stanza, stanza_error::StanzaError};

use crate::StanzaTransport;

/// Why an iq request did not get a result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IqError {
    /// The peer answered with an error.
    #[error("peer answered with an error: {cond:?} ({ty:?})", cond = .0.defined_condition, ty = .0.type_)]
    Rejected(Box<StanzaError>),
    /// No answer came within the time allowed.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The stanza could not be sent.
    #[error("could not send the request: {0}")]
    Send(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The tracker was dropped before an answer came.
    #[error("the iq tracker was dropped")]
    Dropped,
}

impl IqError {
    /// The peer's stanza error, if this is a rejection.
    pub fn stanza_error(&self) -> Option<&StanzaError> {
        match self {
            Self::Rejected(e) => Some(e),
            _ => None,
        }
    }
}

struct Pending {
    to: Option<Jid>,
    tx: oneshot::Sender<Result<Option<Element>, StanzaError>>,
}

/// Matches iq results and errors to the requests that asked for them.
pub struct IqTracker {
    prefix: String,
    counter: AtomicU64,
    pending: Mutex<HashMap<String, Pending>>,
}

impl fmt::Debug for IqTracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.pending.lock().map(|p| p.len()).unwrap_or(0);
        f.debug_struct("IqTracker")
            .field("prefix", &self.prefix)
            .field("pending", &n)
            .finish()
    }
}

impl IqTracker {
    /// A tracker whose ids start with `prefix` (use something unique per connection, for
    /// example a few random characters, so ids never collide with the application's own).
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            counter: AtomicU64::new(0),
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// A fresh iq id.
    pub fn next_id(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("{}{}", self.prefix, n)
    }

    /// How many requests wait for an answer.
    pub fn pending(&self) -> usize {
        self.pending.lock().map(|p| p.len()).unwrap_or(0)
    }

    /// Sends a `get` or `set` iq (its id is replaced with a fresh one) and waits at most
    /// `timeout` for the answer: the result's payload, or the peer's error.
    pub async fn request<T: StanzaTransport>(
        &self,
        transport: &T,
        mut iq: Iq,
        timeout: Duration,
    ) -> Result<Option<Element>, IqError> {
        let id = self.next_id();
        *iq.id_mut() = id.clone();
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("iq tracker lock").insert(
            id.clone(),
            Pending {
                to: iq.to().cloned(),
                tx,
            },
        );
        let guard = RemoveOnDrop { tracker: self, id };
        transport
            .send(Stanza::Iq(iq))
            .await
            .map_err(|e| IqError::Send(Box::new(e)))?;
        let out = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(payload))) => Ok(payload),
            Ok(Ok(Err(error))) => Err(IqError::Rejected(Box::new(error))),
            Ok(Err(_)) => Err(IqError::Dropped),
            Err(_) => Err(IqError::Timeout(timeout)),
        };
        drop(guard);
        out
    }

    /// Takes a result or error this tracker waits for; hands back every other iq.
    ///
    /// An answer must come from the JID the request went to (a request with no `to` accepts
    /// an answer from anyone, as the server answers those for the account).
    pub fn handle_iq(&self, iq: Iq) -> ControlFlow<(), Iq> {
        let (payload, id) = match iq {
            Iq::Result {
                ref id,
                ref payload,
                ..
            } => (Ok(payload.clone()), id.clone()),
            Iq::Error {
                ref id, ref error, ..
            } => (Err(error.clone()), id.clone()),
            _ => return ControlFlow::Continue(iq),
        };
        let mut pending = self.pending.lock().expect("iq tracker lock");
        let Some(p) = pending.get(&id) else {
            return ControlFlow::Continue(iq);
        };
        if !answer_matches(p.to.as_ref(), iq.from()) {
            return ControlFlow::Continue(iq);
        }
        let p = pending.remove(&id).expect("checked above");
        shrink_after_burst(&mut pending);
        let _ = p.tx.send(payload);
        ControlFlow::Break(())
    }

    /// [`handle_iq`](Self::handle_iq) for any stanza.
    pub fn handle_stanza(&self, stanza: Stanza) -> ControlFlow<(), Stanza> {
        match stanza {
            Stanza::Iq(iq) => match self.handle_iq(iq) {
                ControlFlow::Break(()) => ControlFlow::Break(()),
                ControlFlow::Continue(iq) => ControlFlow::Continue(Stanza::Iq(iq)),
            },
            other => ControlFlow::Continue(other),
        }
    }
}

/// A result from a bare JID or domain answers a request to it; a result with no `from`
/// answers a request to the account's own server.
fn answer_matches(to: Option<&Jid>, from: Option<&Jid>) -> bool {
    match (to, from) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(to), Some(from)) => {
            to == from || (to.resource().is_none() && to.to_bare() == from.to_bare())
        }
    }
}

struct RemoveOnDrop<'a> {
    tracker: &'a IqTracker,
    id: String,
}

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        if let Ok(mut p) = self.tracker.pending.lock() {
            p.remove(&self.id);
            shrink_after_burst(&mut p);
        }
    }
}

#[cfg(all(test, feature = "hub"))]
mod tests {
    use super::*;
    use crate::hub::Hub;
    use xmpp_parsers::ping::Ping;
    use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

    fn jid(s: &str) -> Jid {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn request_gets_the_result_from_the_peer() {
        let hub = Hub::new();
        let (a, mut a_rx) = hub.connect(jid("a@x/1"));
        let (b, mut b_rx) = hub.connect(jid("b@x/1"));
        tokio::spawn(async move {
            let Some(Stanza::Iq(iq)) = b_rx.recv().await else {
                return;
            };
            let reply = Iq::empty_result(iq.from().unwrap().clone(), iq.id().to_owned());
            b.send(Stanza::Iq(reply)).await.unwrap();
        });
        let tracker = std::sync::Arc::new(IqTracker::new("t"));
        let t2 = tracker.clone();
        let pump = tokio::spawn(async move {
            while let Some(s) = a_rx.recv().await {
                let _ = t2.handle_stanza(s);
            }
        });
        let iq = Iq::from_get("x", Ping).with_to(jid("b@x/1"));
        let out = tracker
            .request(&a, iq, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(out.is_none());
        assert_eq!(tracker.pending(), 0);
        pump.abort();
    }

    #[tokio::test]
    async fn unknown_recipient_is_rejected_with_service_unavailable() {
        let hub = Hub::new();
        let (a, mut a_rx) = hub.connect(jid("a@x/1"));
        let tracker = std::sync::Arc::new(IqTracker::new("t"));
        let t2 = tracker.clone();
        tokio::spawn(async move {
            while let Some(s) = a_rx.recv().await {
                let _ = t2.handle_stanza(s);
            }
        });
        let iq = Iq::from_get("x", Ping).with_to(jid("nobody@x/1"));
        let err = tracker
            .request(&a, iq, Duration::from_secs(5))
            .await
            .unwrap_err();
        let e = err.stanza_error().unwrap();
        assert_eq!(e.defined_condition, DefinedCondition::ServiceUnavailable);
        assert_eq!(e.type_, ErrorType::Cancel);
    }

    #[tokio::test(start_paused = true)]
    async fn silence_is_a_timeout_and_leaves_nothing_pending() {
        let hub = Hub::new();
        let (a, _a_rx) = hub.connect(jid("a@x/1"));
        let (_b, _b_rx) = hub.connect(jid("b@x/1"));
        let tracker = IqTracker::new("t");
        let iq = Iq::from_get("x", Ping).with_to(jid("b@x/1"));
        let err = tracker
            .request(&a, iq, Duration::from_secs(3))
            .await
            .unwrap_err();
        assert!(matches!(err, IqError::Timeout(_)));
        assert_eq!(tracker.pending(), 0);
    }

    #[test]
    fn a1_an_answer_from_a_third_party_is_not_taken() {
        let tracker = IqTracker::new("t");
        let (tx, mut rx) = oneshot::channel();
        tracker.pending.lock().unwrap().insert(
            "t0".into(),
            Pending {
                to: Some(jid("b@x/1")),
                tx,
            },
        );
        let forged = Iq::empty_result(jid("a@x/1"), "t0").with_from(jid("mallory@x/1"));
        assert!(tracker.handle_iq(forged).is_continue());
        let e = crate::util::stanza_error(ErrorType::Cancel, DefinedCondition::ItemNotFound);
        let forged_error = Iq::from_error("t0", e).with_from(jid("mallory@x/1"));
        assert!(tracker.handle_iq(forged_error).is_continue());
        // The wrong type: a request with the pending id, even from the right peer, is no
        // answer.
        let request = Iq::from_get("t0", Ping).with_from(jid("b@x/1"));
        assert!(tracker.handle_iq(request).is_continue());
        assert_eq!(tracker.pending(), 1, "the request still waits");
        assert!(rx.try_recv().is_err(), "nothing was delivered");
        // The real answer is still taken.
        let real = Iq::empty_result(jid("a@x/1"), "t0").with_from(jid("b@x/1"));
        assert!(tracker.handle_iq(real).is_break());
        assert!(matches!(rx.try_recv(), Ok(Ok(None))));
    }
}

impl crate::StanzaHandler for IqTracker {
    /// [`IqTracker::handle_stanza`].
    fn handle_stanza(&self, stanza: Stanza) -> ControlFlow<(), Stanza> {
        Self::handle_stanza(self, stanza)
    }
}

/// Gives back the room of a burst once it is over: a map that held 1,000 entries keeps
/// its capacity after they leave (issue 9: about 700 bytes per transfer of the peak stayed
/// allocated after 1,000 concurrent transfers had ended).
fn shrink_after_burst<K: std::hash::Hash + Eq, V, S: std::hash::BuildHasher>(
    m: &mut HashMap<K, V, S>,
) {
    if m.capacity() > 16 && m.len() * 4 < m.capacity() {
        let keep = m.len() * 2;
        m.shrink_to(keep);
    }
}
