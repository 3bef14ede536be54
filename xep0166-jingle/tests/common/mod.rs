//! Two endpoints and a deterministic "server" between them.
#![allow(dead_code, unreachable_pub)]

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use minidom::Element;
use xep0166_jingle::{Config, Content, Creator, Endpoint, Event, JingleCondition, Sid};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

pub const A: &str = "romeo@montague.example/orchard";
pub const B: &str = "juliet@capulet.example/balcony";

pub struct Pair {
    pub a: Endpoint,
    pub b: Endpoint,
    pub now: Instant,
}

pub fn config() -> Config {
    let mut c = Config::default();
    c.session_info_ns.push("urn:example:app".into());
    c
}

impl Pair {
    pub fn new() -> Self {
        Self {
            a: Endpoint::new(A.parse().unwrap(), config()),
            b: Endpoint::new(B.parse().unwrap(), config()),
            now: Instant::now(),
        }
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        for e in [&mut self.a, &mut self.b] {
            if e.poll_timeout().is_some_and(|t| t <= self.now) {
                e.handle_timeout(self.now);
            }
        }
    }

    /// Delivers every queued iq both ways until both are quiet; returns what went a→b and b→a.
    pub fn run(&mut self) -> (Vec<Iq>, Vec<Iq>) {
        let (mut ab, mut ba) = (Vec::new(), Vec::new());
        loop {
            let mut moved = false;
            while let Some(iq) = self.a.poll_transmit() {
                let iq = iq.with_from(A.parse().unwrap());
                ab.push(iq.clone());
                assert!(
                    self.b.handle_iq(self.now, iq).is_break(),
                    "b ignored a jingle iq"
                );
                moved = true;
            }
            while let Some(iq) = self.b.poll_transmit() {
                let iq = iq.with_from(B.parse().unwrap());
                ba.push(iq.clone());
                assert!(
                    self.a.handle_iq(self.now, iq).is_break(),
                    "a ignored a jingle iq"
                );
                moved = true;
            }
            if !moved {
                return (ab, ba);
            }
        }
    }

    pub fn events_a(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.a.poll_event()).collect()
    }

    pub fn events_b(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.b.poll_event()).collect()
    }
}

pub fn offer(name: &str) -> Content {
    Content::new(Creator::Initiator, name)
        .with_description(el(
            "<description xmlns='urn:example:app'><x/></description>",
        ))
        .with_transport(el("<transport xmlns='urn:example:t1' sid='t'/>"))
}

pub fn el(s: &str) -> Element {
    s.parse().unwrap()
}

pub fn sid(s: &str) -> Sid {
    Sid::new(s).unwrap()
}

/// Feeds a raw iq to `to` as if `from` sent it; returns `to`'s answer.
pub fn inject(to: &mut Endpoint, now: Instant, from: &str, xml: &str) -> Iq {
    let iq = Iq::try_from(el(&format!(
        "<iq xmlns='jabber:client' type='set' id='raw1' from='{from}'>{xml}</iq>"
    )))
    .unwrap();
    assert!(matches!(to.handle_iq(now, iq), ControlFlow::Break(())));
    to.poll_transmit().expect("every request is answered")
}

/// Asserts an iq is the error (type, condition, jingle condition).
pub fn assert_error(iq: &Iq, t: ErrorType, c: DefinedCondition, j: Option<JingleCondition>) {
    let Iq::Error { error, id, .. } = iq else {
        panic!("expected an error, got {iq:?}")
    };
    assert_eq!(id, "raw1");
    assert_eq!(
        (error.type_.clone(), error.defined_condition.clone()),
        (t, c)
    );
    assert_eq!(JingleCondition::of(error), j);
}

pub fn assert_result(iq: &Iq) {
    assert!(
        matches!(iq, Iq::Result { .. }),
        "expected a result, got {iq:?}"
    );
}
