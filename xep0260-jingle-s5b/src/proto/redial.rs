//! Dialling a peer's candidate again when its TCP connect was refused
//! ([`Negotiation::redial_refused`]): a peer may put a candidate in its session-initiate
//! before its listener is up (Gajim 1.7.3 under load does; an immediate dial is then
//! refused although the candidate works a moment later). Off by default; bounded in count,
//! and never past the negotiation's budget. Only `ConnectionRefused` is retried: a timeout
//! or a SOCKS5 refusal is an answer.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use xep0065_s5b::Failure;
use xep0065_s5b::proto::AttemptId;

use super::{Action, Choice, Negotiation, Phase};

/// What [`Negotiation::redial_refused`] set, and the dials held back.
#[derive(Debug, Default)]
pub(super) struct Redial {
    times: u32,
    step: Duration,
    /// Each attempt's last dial (its addresses and DST.ADDR), and how often it was redone.
    dials: BTreeMap<AttemptId, (Vec<SocketAddr>, String, u32)>,
    /// Dials to do again, when.
    due: Vec<(Instant, AttemptId)>,
}

impl Redial {
    pub(super) fn note(&mut self, attempt: AttemptId, addrs: &[SocketAddr], dst_addr: &str) {
        if self.times > 0 {
            let n = self.dials.get(&attempt).map_or(0, |d| d.2);
            self.dials
                .insert(attempt, (addrs.to_vec(), dst_addr.to_owned(), n));
        }
    }

    pub(super) fn next_due(&self) -> Option<Instant> {
        self.due.iter().map(|(at, _)| *at).min()
    }
}

impl Negotiation {
    /// Dials a peer's candidate whose TCP connect was refused again, up to `times` more
    /// times, `step`, `2 × step`, … after each refusal (within the budget); the race goes
    /// on meanwhile. Default: never (a refusal is the attempt's failure at once).
    pub fn redial_refused(&mut self, times: u32, step: Duration) {
        self.redial.times = times;
        self.redial.step = step;
    }

    /// Whether the failure of `attempt` is held back for another dial.
    pub(super) fn hold(&mut self, now: Instant, attempt: AttemptId, failure: &Failure) -> bool {
        let refused = matches!(
            failure,
            Failure::Connect {
                kind: io::ErrorKind::ConnectionRefused,
                ..
            }
        );
        if !refused || self.ours != Choice::Pending || self.phase != Phase::Negotiating {
            return false;
        }
        let r = &mut self.redial;
        let Some(dial) = r.dials.get_mut(&attempt) else {
            return false;
        };
        if dial.2 >= r.times {
            return false;
        }
        dial.2 += 1;
        let at = now + r.step * dial.2;
        if self.deadline.is_some_and(|d| at >= d) {
            return false;
        }
        r.due.push((at, attempt));
        true
    }

    /// The held-back dials due at `now`, dialled again while our race still runs.
    pub(super) fn redial_due(&mut self, now: Instant) {
        let (due, later): (Vec<_>, Vec<_>) =
            self.redial.due.drain(..).partition(|(at, _)| *at <= now);
        self.redial.due = later;
        for (_, attempt) in due {
            if self.ours != Choice::Pending || self.phase != Phase::Negotiating {
                continue;
            }
            if let Some((addrs, dst_addr, _)) = self.redial.dials.get(&attempt) {
                self.actions.push_back(Action::Connect {
                    attempt,
                    addrs: addrs.clone(),
                    dst_addr: dst_addr.clone(),
                });
            }
        }
    }
}
