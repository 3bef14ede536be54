//! Following one transfer: an `indicatif` bar on stderr (bytes, rate, ETA; bytes and rate
//! only when the offer had no size), and the per-stage timeline for the result row.
//!
//! No bar at all when stderr is not a terminal or `--json` is on: stdout then carries the
//! rows alone and stderr only messages.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ft_facade::{Event, Outcome, TransferError, TransferHandle};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::timeline::Timeline;

/// Whether `send`/`recv` draw a bar.
pub(crate) fn wanted(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

/// The bar of one transfer (hidden when not wanted).
#[derive(Debug)]
pub(crate) struct Bar {
    bar: ProgressBar,
    name: String,
    sized: Option<bool>,
    /// The facade's own rate (bytes per second since the first byte, as `f64` bits): the
    /// bar shows it, and the ETA from it, so they agree with the result line's MB/s.
    rate: Arc<AtomicU64>,
}

impl Bar {
    /// A bar for `name`, drawn on stderr when `show`.
    pub(crate) fn new(name: &str, show: bool) -> Self {
        let target = if show {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Self::with_target(name, target)
    }

    pub(crate) fn with_target(name: &str, target: ProgressDrawTarget) -> Self {
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        Self {
            bar,
            name: name.to_owned(),
            sized: None,
            rate: Arc::default(),
        }
    }

    /// Before bytes flow: what the transfer waits for (`waiting for the answer`,
    /// `connecting`).
    pub(crate) fn waiting(&self, what: &str) {
        if self.sized.is_none() {
            self.bar.set_message(format!("{}: {what}", self.name));
        }
    }

    /// Shows `p`: with a total, a bar with the bytes, rate and ETA; without, the bytes
    /// and the rate.
    pub(crate) fn update(&mut self, bytes: u64, total: Option<u64>, rate: f64) {
        self.rate.store(rate.to_bits(), Ordering::Relaxed);
        let sized = total.is_some();
        if self.sized != Some(sized) {
            self.sized = Some(sized);
            self.bar.set_style(style(sized, self.rate.clone()));
            self.bar.set_message(self.name.clone());
        }
        if let Some(total) = total {
            self.bar.set_length(total);
        }
        self.bar.set_position(bytes);
    }

    /// A line above the bar (the fallback notice).
    pub(crate) fn note(&self, line: String) {
        self.bar.println(line);
    }

    /// Removes the bar (the result line follows).
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn style(sized: bool, rate: Arc<AtomicU64>) -> ProgressStyle {
    let template = if sized {
        "{msg} [{bar:30}] {decimal_bytes}/{decimal_total_bytes} {rate} ETA {left}"
    } else {
        // No size offered: no percentage, no ETA.
        "{spinner} {msg} {decimal_bytes} {rate}"
    };
    let eta_rate = rate.clone();
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
        .with_key(
            "rate",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let r = f64::from_bits(rate.load(Ordering::Relaxed));
                let _ = write!(w, "{:.2} MB/s", r / 1e6);
            },
        )
        .with_key(
            "left",
            move |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let r = f64::from_bits(eta_rate.load(Ordering::Relaxed));
                let left = s.len().unwrap_or(0).saturating_sub(s.pos());
                let _ = if r > 0.0 {
                    write!(w, "{}", eta(left as f64 / r))
                } else {
                    write!(w, "?")
                };
            },
        )
}

/// `42s`, `3m05s`, `1h02m`.
fn eta(secs: f64) -> String {
    let s = secs.ceil() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// Follows a transfer's events (the bar, the timeline), then returns its outcome. `sending`
/// says which side we are, for what the bar says before bytes flow.
pub(crate) async fn follow(
    mut handle: TransferHandle,
    name: &str,
    show: bool,
    sending: bool,
) -> (Result<Outcome, TransferError>, Timeline) {
    let mut bar = Bar::new(name, show);
    let mut timeline = Timeline::default();
    while let Some(ev) = handle.next_event().await {
        timeline.observe(&ev);
        match &ev {
            Event::Offered { .. } if sending => bar.waiting("offered, waiting for the answer"),
            Event::Accepted { .. } => bar.waiting("connecting"),
            Event::Progress(p) => bar.update(p.bytes, p.total, p.rate),
            Event::Fallback { reason, .. } => {
                bar.note(format!(
                    "{name}: socks5 failed ({reason}), falling back to in-band"
                ));
            }
            Event::Completed(_) | Event::Failed(_) => break,
            _ => {}
        }
    }
    bar.finish();
    (handle.outcome().await, timeline)
}

#[cfg(test)]
mod tests {
    use indicatif::InMemoryTerm;

    use super::*;

    fn drawn(total: Option<u64>, bytes: u64) -> String {
        let term = InMemoryTerm::new(4, 120);
        let mut bar = Bar::with_target(
            "f.bin",
            ProgressDrawTarget::term_like(Box::new(term.clone())),
        );
        // 1 MB/s: half a 2 MB file is a second from the end.
        bar.update(bytes, total, 1e6);
        bar.bar.tick();
        term.contents()
    }

    #[test]
    fn a_sized_transfer_shows_bytes_of_total_rate_and_eta_and_a_sizeless_one_bytes_only() {
        let sized = drawn(Some(2_000_000), 1_000_000);
        assert!(sized.contains("f.bin"), "{sized}");
        assert!(sized.contains("1.00 MB/2.00 MB"), "{sized}");
        assert!(sized.contains("1.00 MB/s ETA 1s"), "{sized}");
        let sizeless = drawn(None, 1_000_000);
        assert!(sizeless.contains("f.bin 1.00 MB"), "{sizeless}");
        assert!(sizeless.contains("1.00 MB/s"), "{sizeless}");
        assert!(
            !sizeless.contains("ETA") && !sizeless.contains('%'),
            "{sizeless}"
        );
    }

    #[test]
    fn before_bytes_flow_the_bar_says_what_the_transfer_waits_for() {
        let term = InMemoryTerm::new(4, 120);
        let mut bar = Bar::with_target(
            "f.bin",
            ProgressDrawTarget::term_like(Box::new(term.clone())),
        );
        bar.waiting("connecting");
        bar.bar.tick();
        assert!(
            term.contents().contains("f.bin: connecting"),
            "{}",
            term.contents()
        );
        bar.update(10, Some(100), 0.0);
        bar.waiting("connecting");
        bar.bar.tick();
        let shown = term.contents();
        assert!(
            !shown.contains("connecting") && shown.contains("f.bin"),
            "{shown}"
        );
    }

    #[test]
    fn eta_reads_in_seconds_minutes_or_hours() {
        assert_eq!(eta(0.2), "1s");
        assert_eq!(eta(185.0), "3m05s");
        assert_eq!(eta(3720.0), "1h02m");
    }

    #[test]
    fn a_hidden_bar_draws_nothing_and_json_never_asks_for_one() {
        assert!(!wanted(true));
        let bar = Bar::new("f.bin", false);
        assert!(bar.bar.is_hidden());
    }
}
