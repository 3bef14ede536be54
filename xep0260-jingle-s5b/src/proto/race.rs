//! The first half: our race at the peer's candidates (the `xep0065-s5b` target's race)
//! and our verdict, `candidate-used` or `candidate-error`.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use xep0065_s5b::Failure;
use xep0065_s5b::proto::{self as s5b, AttemptId};
use xmpp_parsers::jingle_s5b::TransportPayload;

use super::{Action, Choice, Negotiation, Phase, Transmit};
use crate::candidate::transport;

impl Negotiation {
    /// Moves the race's actions and outcome into ours.
    pub(super) fn pump(&mut self, now: Instant) {
        let Some(race) = &mut self.race else {
            return;
        };
        while let Some(a) = race.poll_action() {
            self.actions.push_back(match a {
                s5b::Action::Resolve {
                    attempt,
                    name,
                    port,
                } => Action::Resolve {
                    attempt,
                    name,
                    port,
                },
                s5b::Action::Connect {
                    attempt,
                    addrs,
                    dst_addr,
                } => {
                    self.redial.note(attempt, &addrs, &dst_addr);
                    Action::Connect {
                        attempt,
                        addrs,
                        dst_addr,
                    }
                }
                s5b::Action::Close { attempt } => Action::Close { attempt },
                _ => continue,
            });
        }
        while race.poll_transmit().is_some() {}
        let mut outcome = None;
        while let Some(e) = race.poll_event() {
            outcome = Some(match e {
                s5b::Event::Connected {
                    via: s5b::Via::Attempt(a),
                    attempts,
                    ..
                } => (Some(a), attempts),
                s5b::Event::Failed(xep0065_s5b::Error::NoStreamHost(attempts)) => (None, attempts),
                _ => (None, Vec::new()),
            });
        }
        if let Some((won, attempts)) = outcome {
            self.attempts = attempts;
            self.race_over(now, won);
        }
    }

    fn race_over(&mut self, now: Instant, won: Option<AttemptId>) {
        if self.ours != Choice::Pending || self.phase != Phase::Negotiating {
            // Cancelled meanwhile (the peer's choice outranks all we had left).
            if let Some(a) = won {
                self.actions.push_back(Action::Close { attempt: a });
            }
            return;
        }
        let payload = match won.and_then(|a| Some((a, *self.order.get(a.index())?))) {
            Some((a, r)) => {
                self.ours = Choice::Used(r, Some(a));
                let cid = self
                    .remote
                    .as_ref()
                    .map(|l| l[r].cid.clone())
                    .unwrap_or_default();
                TransportPayload::CandidateUsed(xmpp_parsers::jingle_s5b::CandidateId(cid))
            }
            None => {
                self.ours = Choice::Error;
                TransportPayload::CandidateError
            }
        };
        self.send(payload);
        self.decide(now);
    }

    pub(super) fn send(&mut self, payload: TransportPayload) {
        self.transmits.push_back(Transmit::TransportInfo(transport(
            self.sid.as_str(),
            payload,
        )));
    }

    /// The resolver answered for a race attempt.
    pub fn handle_resolved(
        &mut self,
        now: Instant,
        attempt: AttemptId,
        addrs: Result<Vec<SocketAddr>, io::ErrorKind>,
    ) {
        if let Some(r) = &mut self.race {
            r.handle_resolved(now, attempt, addrs);
        }
        self.pump(now);
    }

    /// A race attempt completed its SOCKS5 handshake.
    pub fn handle_connected(&mut self, now: Instant, attempt: AttemptId) {
        match &mut self.race {
            Some(r) => r.handle_connected(now, attempt),
            None => self.actions.push_back(Action::Close { attempt }),
        }
        self.pump(now);
    }

    /// A race attempt failed.
    pub fn handle_connect_failed(&mut self, now: Instant, attempt: AttemptId, failure: Failure) {
        if self.hold(now, attempt, &failure) {
            return;
        }
        if let Some(r) = &mut self.race {
            r.handle_connect_failed(now, attempt, failure);
        }
        self.pump(now);
    }
}
