//! Following one transfer: an `indicatif` bar on stderr (bytes, rate, ETA; bytes and rate
//! only when the offer had no size), and the per-stage timeline for the result row.
//!
//! No bar at all when stderr is not a terminal or `--json` is on: stdout then carries the
//! rows alone and stderr only messages.

use std::io::IsTerminal;

use ft_facade::{Event, Outcome, TransferError, TransferHandle};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::timeline::Timeline;

/// Whether `send`/`recv` draw a bar.
pub(crate) fn wanted(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

/// The bar of one transfer (hidden when not wanted).
#[derive(Debug)]
pub(crate) struct Bar {
    bar: ProgressBar,
    sized: Option<bool>,
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
        bar.set_message(name.to_owned());
        Self { bar, sized: None }
    }

    /// Shows `p`: with a total, a bar with the bytes, rate and ETA; without, the bytes
    /// and the rate.
    pub(crate) fn update(&mut self, bytes: u64, total: Option<u64>) {
        let sized = total.is_some();
        if self.sized != Some(sized) {
            self.sized = Some(sized);
            self.bar.set_style(style(sized));
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

fn style(sized: bool) -> ProgressStyle {
    let template = if sized {
        "{msg} [{bar:30}] {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec} ETA {eta}"
    } else {
        // No size offered: no percentage, no ETA.
        "{spinner} {msg} {decimal_bytes} {decimal_bytes_per_sec}"
    };
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// Follows a transfer's events (the bar, the timeline), then returns its outcome.
pub(crate) async fn follow(
    mut handle: TransferHandle,
    name: &str,
    show: bool,
) -> (Result<Outcome, TransferError>, Timeline) {
    let mut bar = Bar::new(name, show);
    let mut timeline = Timeline::default();
    while let Some(ev) = handle.next_event().await {
        timeline.observe(&ev);
        match &ev {
            Event::Progress(p) => bar.update(p.bytes, p.total),
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
        bar.update(bytes, total);
        bar.bar.tick();
        term.contents()
    }

    #[test]
    fn a_sized_transfer_shows_bytes_of_total_rate_and_eta_and_a_sizeless_one_bytes_only() {
        let sized = drawn(Some(2_000_000), 1_000_000);
        assert!(sized.contains("f.bin"), "{sized}");
        assert!(sized.contains("1.00 MB/2.00 MB"), "{sized}");
        assert!(sized.contains("B/s") && sized.contains("ETA"), "{sized}");
        let sizeless = drawn(None, 1_000_000);
        assert!(sizeless.contains("f.bin 1.00 MB"), "{sizeless}");
        assert!(sizeless.contains("B/s"), "{sizeless}");
        assert!(
            !sizeless.contains("ETA") && !sizeless.contains('%'),
            "{sizeless}"
        );
    }

    #[test]
    fn a_hidden_bar_draws_nothing_and_json_never_asks_for_one() {
        assert!(!wanted(true));
        let bar = Bar::new("f.bin", false);
        assert!(bar.bar.is_hidden());
    }
}
