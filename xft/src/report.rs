//! Results: the demo's table and one JSON object per transfer.

use std::time::Instant;

use ft_facade::{Delivery, Outcome, Stack, TransferError, Warning};
use serde::Serialize;

use crate::timeline::Timeline;

/// One transfer's result as `--json` prints it; every field is described in docs/json.md
/// (a test checks both ways).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    /// `transfer`, or `refused` for an offer `xft recv` refused (declined, or answered
    /// with an error before any transfer began).
    pub(crate) kind: &'static str,
    /// `send`, `recv` or `demo` (the demo's row is its receiver's, checked by SHA-256).
    pub(crate) side: &'static str,
    /// The method asked for: `send --method`, the receiver's accepted methods, or the
    /// demo's method.
    pub(crate) requested: String,
    /// The stack that negotiated the transfer: `jingle` or `si`.
    pub(crate) stack: Option<&'static str>,
    /// The peer: the receiver (send) or the sender (recv).
    pub(crate) peer: Option<String>,
    /// The method that carried the bytes.
    pub(crate) method: Option<String>,
    /// The file name.
    pub(crate) file: String,
    /// Bytes carried.
    pub(crate) bytes: u64,
    /// Seconds from the start to the end (xft's own clock).
    pub(crate) seconds: f64,
    /// Seconds per stage (see [`crate::timeline`]).
    pub(crate) prepare_s: Option<f64>,
    /// See `prepare_s`.
    pub(crate) offer_s: Option<f64>,
    /// See `prepare_s`.
    pub(crate) connect_s: Option<f64>,
    /// See `prepare_s`.
    pub(crate) stream_s: Option<f64>,
    /// See `prepare_s`.
    pub(crate) finish_s: Option<f64>,
    /// Megabytes (10^6) per second over the streaming phase (`bytes / stream_s`).
    pub(crate) mb_per_s: f64,
    /// SHA-256 of the file.
    pub(crate) sha256: Option<String>,
    /// The side reporting has the other side's word that the receiver holds every byte:
    /// the sender the receiver's acknowledgement (`delivery` `acknowledged`), the receiver
    /// the sender's offered size or hash matching what is on disk (`size_checked` or
    /// `hash_checked`), the demo the source's SHA-256 read back from disk.
    pub(crate) verified: bool,
    /// `acknowledged` or `unconfirmed` (sender), `received` (receiver); `null` on failure.
    pub(crate) delivery: Option<&'static str>,
    /// Receiver: whether the size and the hash were checked against the offer.
    pub(crate) size_checked: Option<bool>,
    /// Receiver: see `size_checked`.
    pub(crate) hash_checked: Option<bool>,
    /// Receiver: the XEP-0300 name of the hash algorithm the file was checked with (`md5`,
    /// `sha-256`, `blake2b-512`, …); `null` when no hash was checked, on send rows and
    /// failures.
    pub(crate) verified_by: Option<&'static str>,
    /// What went less well without failing: `close-unanswered`, `no-close-from-receiver`,
    /// `reset-by-receiver`.
    pub(crate) warnings: Vec<&'static str>,
    /// The S5B streamhost used.
    pub(crate) streamhost: Option<String>,
    /// Whether S5B failed and IBB took over.
    pub(crate) fallback: bool,
    /// The error, if any.
    pub(crate) error: Option<String>,
    /// The stage it failed at, if any.
    pub(crate) stage: Option<String>,
}

impl Row {
    /// The row for one transfer on `side` that started at `started`, whose events
    /// `timeline` saw, and that ended with `r`.
    pub(crate) fn from_result(
        side: &'static str,
        requested: &str,
        file: &str,
        started: Instant,
        timeline: &Timeline,
        r: &Result<Outcome, TransferError>,
    ) -> Self {
        let total = started.elapsed();
        let times = timeline.times(r, total);
        let mut row = Self {
            kind: "transfer",
            side,
            requested: requested.to_owned(),
            stack: timeline.stack.map(Stack::name),
            peer: None,
            method: None,
            file: file.to_owned(),
            bytes: 0,
            seconds: total.as_secs_f64(),
            prepare_s: times.prepare,
            offer_s: times.offer,
            connect_s: times.connect,
            stream_s: times.stream,
            finish_s: times.finish,
            mb_per_s: 0.0,
            sha256: None,
            verified: false,
            delivery: None,
            size_checked: None,
            hash_checked: None,
            verified_by: None,
            warnings: Vec::new(),
            streamhost: None,
            fallback: false,
            error: None,
            stage: None,
        };
        match r {
            Ok(o) => {
                row.peer = Some(o.peer.to_string());
                row.stack = Some(o.stack.name());
                row.method = Some(o.method.name().to_owned());
                row.bytes = o.bytes;
                row.mb_per_s = o.rate() / 1e6;
                row.sha256 = Some(o.sha256.clone());
                row.delivery = Some(o.delivery.name());
                row.verified = match o.delivery {
                    Delivery::Acknowledged => true,
                    Delivery::Received {
                        size_checked,
                        hash_checked,
                    } => {
                        row.size_checked = Some(size_checked);
                        row.hash_checked = Some(hash_checked);
                        size_checked || hash_checked
                    }
                    _ => false,
                };
                row.verified_by = o.verified_by.map(|a| a.name());
                row.warnings = o.warnings.iter().map(|w| w.name()).collect();
                row.streamhost = o.method.streamhost().map(str::to_owned);
                row.fallback = o.fallback;
            }
            Err(e) => row.fail(&e.stage.to_string(), e.kind.chain()),
        }
        row
    }

    /// The row for an offer `xft recv` refused before any transfer: who, which file, the
    /// reason, and the answer the sender got.
    pub(crate) fn refused(
        requested: &str,
        peer: Option<String>,
        file: &str,
        reason: String,
    ) -> Self {
        let mut row = Self::from_result(
            "recv",
            requested,
            file,
            Instant::now(),
            &Timeline::default(),
            &Err(TransferError::new(
                ft_facade::Stage::Offer,
                ft_facade::ErrorKind::Declined { text: None },
            )),
        );
        row.kind = "refused";
        row.peer = peer;
        row.seconds = 0.0;
        row.offer_s = None;
        row.error = Some(reason);
        row
    }

    /// Whether this row lets the command exit 0: the transfer completed, and the receiver
    /// did not reset the bytestream after the last byte (`reset-by-receiver`: an xft
    /// receiver does that to a file whose bytes did not match the offer, so the file was
    /// rejected, not kept) nor, over IBB, refuse our close (`refused-by-receiver`, the same). A delivery that is merely unconfirmed (IBB over message, no
    /// close from the receiver) still exits 0: nothing says the receiver refused it.
    pub(crate) fn succeeded(&self) -> bool {
        self.error.is_none()
            && ![Warning::ResetByReceiver, Warning::RefusedByReceiver]
                .iter()
                .any(|w| self.warnings.contains(&w.name()))
    }

    /// Marks the row failed at `stage`.
    pub(crate) fn fail(&mut self, stage: &str, error: String) {
        self.verified = false;
        self.error = Some(error);
        self.stage = Some(stage.to_owned());
    }
}

/// Prints a row: as one JSON line on stdout with `--json`, else as words on stderr.
pub(crate) fn print(row: &Row, json: bool) {
    if json {
        println!("{}", self::json(row));
    } else if let Some(e) = &row.error {
        if row.kind == "refused" {
            eprintln!(
                "{}: offer from {} refused: {e}",
                row.file,
                row.peer.as_deref().unwrap_or("?")
            );
        } else {
            eprintln!(
                "{}: failed at {}: {e}",
                row.file,
                row.stage.as_deref().unwrap_or("?")
            );
        }
    } else {
        eprintln!(
            "{}: {} bytes by {} over {} in {:.2} s ({}; {:.1} MB/s streaming{}), {}, sha256 {}",
            row.file,
            row.bytes,
            row.method.as_deref().unwrap_or("?"),
            row.stack.unwrap_or("?"),
            row.seconds,
            stages(row),
            row.mb_per_s,
            if row.fallback { ", after fallback" } else { "" },
            delivery_words(row),
            row.sha256.as_deref().unwrap_or("")
        );
        for w in &row.warnings {
            eprintln!("{}: warning: {w}", row.file);
        }
    }
}

/// What the human line says about delivery and the checks.
fn delivery_words(row: &Row) -> String {
    match row.delivery {
        Some("unconfirmed") => "delivery UNCONFIRMED (the receiver acknowledged nothing)".into(),
        Some("acknowledged") => "acknowledged by the receiver".into(),
        _ if row.hash_checked == Some(true) => match row.verified_by {
            Some(algo) => format!("size and {algo} checked"),
            None => "size and hash checked".into(),
        },
        _ if row.size_checked == Some(true) => "size checked (no hash offered)".into(),
        _ => "nothing to check against (no size or hash offered)".into(),
    }
}

/// `offer 0.01 s, connect 0.20 s, stream 1.50 s, finish 0.01 s` (the stages timed).
fn stages(row: &Row) -> String {
    [
        ("prepare", row.prepare_s),
        ("offer", row.offer_s),
        ("connect", row.connect_s),
        ("stream", row.stream_s),
        ("finish", row.finish_s),
    ]
    .iter()
    .filter_map(|(name, t)| t.map(|t| format!("{name} {t:.2} s")))
    .collect::<Vec<_>>()
    .join(", ")
}

/// Prints rows as the demo's table.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<7} {:<13} {:>12} {:>9} {:>13}  {}\n",
        "stack", "method", "bytes", "total s", "stream MB/s", "verified"
    ));
    for r in rows {
        let verified = match (&r.error, r.verified) {
            (Some(e), _) => format!("FAILED ({}: {e})", r.stage.as_deref().unwrap_or("?")),
            (None, true) => "yes (sha256)".to_owned(),
            (None, false) => format!("unconfirmed ({})", r.delivery.unwrap_or("?")),
        };
        out.push_str(&format!(
            "{:<7} {:<13} {:>12} {:>9.3} {:>13.1}  {}\n",
            r.stack.unwrap_or("?"),
            r.requested,
            r.bytes,
            r.seconds,
            r.mb_per_s,
            verified
        ));
    }
    out
}

/// Prints a row as one JSON line.
pub(crate) fn json(row: &Row) -> String {
    serde_json::to_string(row).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use super::*;

    /// The fields docs/json.md describes: the first cell of each table row.
    fn documented() -> BTreeSet<String> {
        include_str!("../../docs/json.md")
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once('`'))
            .map(|(name, _)| name.to_owned())
            .collect()
    }

    fn keys(row: &Row) -> BTreeSet<String> {
        match serde_json::to_value(row).unwrap() {
            serde_json::Value::Object(m) => m.keys().cloned().collect(),
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn docs_json_md_describes_every_field_of_every_row_kind_and_nothing_else() {
        let failed = Row::from_result(
            "send",
            "auto",
            "f.bin",
            Instant::now(),
            &Timeline::default(),
            &Err(TransferError::new(
                ft_facade::Stage::Connect,
                ft_facade::ErrorKind::Timeout(Duration::from_secs(20)),
            )),
        );
        let refused = Row::refused("s5b,ibb", Some("a@b/c".into()), "f.bin", "x".into());
        assert_eq!(refused.kind, "refused");
        let docs = documented();
        for row in [&failed, &refused] {
            let emitted = keys(row);
            let undocumented: Vec<_> = emitted.difference(&docs).collect();
            let stale: Vec<_> = docs.difference(&emitted).collect();
            assert!(
                undocumented.is_empty(),
                "not in docs/json.md: {undocumented:?}"
            );
            assert!(
                stale.is_empty(),
                "in docs/json.md, never emitted: {stale:?}"
            );
        }
        // A refused offer: who and why, nothing timed, nothing verified.
        assert_eq!(
            (refused.side, refused.stage.as_deref()),
            ("recv", Some("offer"))
        );
        assert_eq!(refused.peer.as_deref(), Some("a@b/c"));
        assert_eq!(refused.seconds, 0.0);
        assert!(!refused.verified && refused.delivery.is_none());
        let times = [
            refused.prepare_s,
            refused.offer_s,
            refused.connect_s,
            refused.stream_s,
            refused.finish_s,
        ];
        assert_eq!(times, [None; 5]);
        // Every kind and side value the code can emit is named there too.
        let text = include_str!("../../docs/json.md");
        for word in ["`transfer`", "`refused`", "`send`", "`recv`", "`demo`"] {
            assert!(text.contains(word), "{word}");
        }
    }
}
