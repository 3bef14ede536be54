//! A `StanzaTransport` around a hub endpoint that drops, delays, duplicates and reorders the
//! stanzas its entity sends, each decision drawn from a PRNG seeded by the run's seed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ft_transport::hub::{HubError, HubTransport};
use ft_transport::{Jid, Stanza, StanzaTransport};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The probabilities (per mille) of each stanza fault, and which stanzas they hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StanzaFaults {
    pub drop: u32,
    pub duplicate: u32,
    pub delay: u32,
    pub reorder: u32,
    /// Longest delay.
    pub max_delay: Duration,
    /// Only stanzas that carry IBB `<data/>`: every fault then happens while streaming.
    pub data_only: bool,
}

impl StanzaFaults {
    pub fn any(&self) -> bool {
        self.drop + self.duplicate + self.delay + self.reorder > 0
    }
}

/// What happened to one stanza.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Pass,
    Drop,
    Duplicate,
    Delay(Duration),
    Reorder,
}

struct State {
    rng: StdRng,
    held: Option<Stanza>,
    /// Stanzas hit by a fault, for the report.
    hits: u64,
    /// Stanzas sent so far.
    sent: u64,
}

/// The faulty transport. Cheap to clone (clones share the PRNG).
#[derive(Clone)]
pub struct FaultyTransport {
    inner: HubTransport,
    faults: StanzaFaults,
    /// Cut this entity's XMPP stream (`Hub::disconnect`) once it has sent this many stanzas.
    disconnect_after: Option<u64>,
    /// Sees every stanza before the faults do (the harness learns the sender's streamhost).
    observer: Option<Observer>,
    state: Arc<Mutex<State>>,
}

/// A look at each outbound stanza.
pub type Observer = Arc<dyn Fn(&Stanza) + Send + Sync>;

impl FaultyTransport {
    pub fn new(
        inner: HubTransport,
        faults: StanzaFaults,
        disconnect_after: Option<u64>,
        seed: u64,
    ) -> Self {
        Self {
            inner,
            faults,
            disconnect_after,
            observer: None,
            state: Arc::new(Mutex::new(State {
                rng: StdRng::seed_from_u64(seed),
                held: None,
                hits: 0,
                sent: 0,
            })),
        }
    }

    #[must_use]
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn hits(&self) -> u64 {
        self.state.lock().unwrap().hits
    }

    fn decide(&self, stanza: &Stanza) -> Action {
        let f = &self.faults;
        if !f.any() || (f.data_only && !is_ibb_data(stanza)) {
            return Action::Pass;
        }
        let mut st = self.state.lock().unwrap();
        let roll: u32 = st.rng.gen_range(0..1000);
        let delay_ms = st.rng.gen_range(1..=f.max_delay.as_millis().max(1) as u64);
        let a = if roll < f.drop {
            Action::Drop
        } else if roll < f.drop + f.duplicate {
            Action::Duplicate
        } else if roll < f.drop + f.duplicate + f.delay {
            Action::Delay(Duration::from_millis(delay_ms))
        } else if roll < f.drop + f.duplicate + f.delay + f.reorder {
            Action::Reorder
        } else {
            Action::Pass
        };
        if a != Action::Pass {
            st.hits += 1;
        }
        a
    }

    async fn send_inner(&self, stanza: Stanza) -> Result<(), HubError> {
        if let Some(o) = &self.observer {
            o(&stanza);
        }
        let sent = {
            let mut st = self.state.lock().unwrap();
            st.sent += 1;
            st.sent
        };
        if self.disconnect_after.is_some_and(|n| sent > n) {
            self.inner.hub().disconnect(self.inner.jid());
        }
        let action = self.decide(&stanza);
        let held = self.state.lock().unwrap().held.take();
        let r = match action {
            Action::Pass => self.inner.send(stanza).await,
            Action::Drop => Ok(()),
            Action::Duplicate => {
                let _ = self.inner.send(dup(&stanza)).await;
                self.inner.send(stanza).await
            }
            Action::Delay(d) => {
                let inner = self.inner.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(d).await;
                    let _ = inner.send(stanza).await;
                });
                Ok(())
            }
            Action::Reorder => {
                // Held until the next stanza has gone, or 20 ms, whichever is first.
                self.state.lock().unwrap().held = Some(stanza);
                let me = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let held = me.state.lock().unwrap().held.take();
                    if let Some(s) = held {
                        let _ = me.inner.send(s).await;
                    }
                });
                Ok(())
            }
        };
        if let Some(h) = held {
            let _ = self.inner.send(h).await;
        }
        r
    }
}

fn dup(stanza: &Stanza) -> Stanza {
    match stanza {
        Stanza::Iq(i) => Stanza::Iq(i.clone()),
        Stanza::Message(m) => Stanza::Message(m.clone()),
        Stanza::Presence(p) => Stanza::Presence(p.clone()),
    }
}

fn is_ibb_data(stanza: &Stanza) -> bool {
    const NS: &str = "http://jabber.org/protocol/ibb";
    match stanza {
        Stanza::Iq(xmpp_parsers::iq::Iq::Set { payload, .. }) => payload.is("data", NS),
        Stanza::Message(m) => m.payloads.iter().any(|p| p.is("data", NS)),
        _ => false,
    }
}

impl StanzaTransport for FaultyTransport {
    type Error = HubError;

    fn send(&self, stanza: Stanza) -> impl Future<Output = Result<(), HubError>> + Send {
        self.send_inner(stanza)
    }

    fn jid(&self) -> &Jid {
        self.inner.jid()
    }
}
