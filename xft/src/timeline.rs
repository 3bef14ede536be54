//! Per-stage times of one transfer, from the facade's events (each carries its time since
//! the transfer began) and its outcome.
//!
//! The stages, as `--json` names them (docs/json.md):
//! `prepare` from the start to the offer (the sender reads the file and makes the MD5 the
//! offer carries; the receiver: nothing), `offer` from the offer to the answer (the sender
//! waits for the peer; the receiver prepares the `.part` file and answers), `connect` from
//! the answer to the bytestream being up (S5B candidates, proxy activation, a fallback, the
//! IBB open), `stream` the streaming phase (the outcome's own clock), `finish` whatever
//! remains to the end (the sender waits for the receiver's close, the delivery; the
//! receiver checks the size and hash and moves the file into place).

use std::time::Duration;

use ft_facade::{Event, Outcome, Stack, Stage, TransferError};

/// The times of the stage boundaries seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Timeline {
    /// The stack the sender chose ([`Event::Stack`]), known before the transfer ends.
    pub(crate) stack: Option<Stack>,
    offered: Option<Duration>,
    accepted: Option<Duration>,
    connected: Option<Duration>,
}

/// Seconds spent in each stage; `None` for a stage the transfer never finished (a failed
/// one's failing stage is counted up to the failure).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct StageTimes {
    pub(crate) prepare: Option<f64>,
    pub(crate) offer: Option<f64>,
    pub(crate) connect: Option<f64>,
    pub(crate) stream: Option<f64>,
    pub(crate) finish: Option<f64>,
}

impl Timeline {
    /// Takes note of one event.
    pub(crate) fn observe(&mut self, ev: &Event) {
        match ev {
            Event::Stack(stack) => self.stack = Some(*stack),
            Event::Offered { at, .. } => self.offered = Some(*at),
            Event::Accepted { at, .. } => self.accepted = Some(*at),
            Event::Connected { at, .. } => self.connected = Some(*at),
            _ => {}
        }
    }

    /// The stage times of a transfer that ended with `r` after `total` (used for the
    /// failing stage of a failed one, which the facade's events do not time).
    pub(crate) fn times(&self, r: &Result<Outcome, TransferError>, total: Duration) -> StageTimes {
        let secs = |a: Duration, b: Duration| Some(b.saturating_sub(a).as_secs_f64());
        let mut t = StageTimes::default();
        match r {
            Ok(o) => {
                let end = o.elapsed;
                if let Some(offered) = self.offered {
                    t.prepare = secs(Duration::ZERO, offered);
                    t.offer = self.accepted.and_then(|a| secs(offered, a));
                }
                if let (Some(a), Some(c)) = (self.accepted, self.connected) {
                    t.connect = secs(a, c);
                }
                t.stream = Some(o.streaming.as_secs_f64());
                if let Some(c) = self.connected {
                    t.finish = secs(c + o.streaming, end);
                }
            }
            Err(e) => {
                // Every boundary passed is timed; the stage that failed runs to `total`.
                let bounds = [
                    Some(Duration::ZERO),
                    self.offered,
                    self.accepted,
                    self.connected,
                ];
                let slots = [&mut t.prepare, &mut t.offer, &mut t.connect, &mut t.stream];
                let failing = match e.stage {
                    Stage::Prepare | Stage::Disco => 0,
                    Stage::Offer => 1,
                    Stage::Proxies | Stage::Connect => 2,
                    // Verify and close follow the stream, which ran to the failure.
                    _ => 3,
                };
                for (i, slot) in slots.into_iter().enumerate() {
                    let Some(start) = bounds[i] else { break };
                    let end = if i == failing {
                        Some(total)
                    } else {
                        bounds.get(i + 1).copied().flatten()
                    };
                    let Some(end) = end else { break };
                    *slot = secs(start, end);
                    if i == failing {
                        break;
                    }
                }
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ft_facade::ErrorKind;

    fn at(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn timeline(events: &[Event]) -> Timeline {
        let mut t = Timeline::default();
        for e in events {
            t.observe(e);
        }
        t
    }

    fn offered(ms: u64) -> Event {
        Event::Offered {
            methods: vec![],
            at: at(ms),
        }
    }

    fn accepted(ms: u64) -> Event {
        Event::Accepted {
            method: String::new(),
            offset: 0,
            at: at(ms),
        }
    }

    #[test]
    fn a_failure_at_connect_times_the_stages_before_it_and_connect_up_to_the_failure() {
        let t = timeline(&[offered(100), accepted(600)]);
        let e = TransferError::new(Stage::Connect, ErrorKind::Timeout(at(5000)));
        let s = t.times(&Err(e), at(5600));
        assert_eq!(s.prepare, Some(0.1));
        assert_eq!(s.offer, Some(0.5));
        assert_eq!(s.connect, Some(5.0));
        assert_eq!((s.stream, s.finish), (None, None));
    }

    #[test]
    fn a_failure_at_offer_leaves_connect_and_stream_untimed() {
        let t = timeline(&[offered(0)]);
        let e = TransferError::new(Stage::Offer, ErrorKind::Declined { text: None });
        let s = t.times(&Err(e), at(250));
        assert_eq!(s.prepare, Some(0.0));
        assert_eq!(s.offer, Some(0.25));
        assert_eq!((s.connect, s.stream, s.finish), (None, None, None));
    }
}
