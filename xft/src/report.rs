//! Results: the demo's table and one JSON object per transfer.

use std::time::Instant;

use ft_facade::{Delivery, Outcome, TransferError};
use serde::Serialize;

/// One transfer's result as `--json` prints it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    /// The method asked for (demo) or `auto`.
    pub(crate) requested: String,
    /// `transfer`, or `refused` for an offer `xft recv` refused (declined, or answered
    /// with an error before any transfer began).
    pub(crate) kind: &'static str,
    /// The peer: the receiver (send) or the sender (recv).
    pub(crate) peer: Option<String>,
    /// The method that carried the bytes.
    pub(crate) method: Option<String>,
    /// The file name.
    pub(crate) file: String,
    /// Bytes carried.
    pub(crate) bytes: u64,
    /// Seconds from offer to end.
    pub(crate) seconds: f64,
    /// Megabytes (10^6) per second while streaming.
    pub(crate) mb_per_s: f64,
    /// SHA-256 of the file.
    pub(crate) sha256: Option<String>,
    /// Receiver: the byte count equals the offered size (and the MD5 the offered one, when
    /// there was one). Sender: the receiver acknowledged every byte (`delivery` is
    /// `acknowledged`); never `true` for an unconfirmed delivery.
    pub(crate) verified: bool,
    /// `acknowledged` or `unconfirmed` (sender), `received` (receiver); `null` on failure.
    pub(crate) delivery: Option<&'static str>,
    /// Receiver: whether the size and the hash were checked against the offer.
    pub(crate) size_checked: Option<bool>,
    /// Receiver: see `size_checked`.
    pub(crate) hash_checked: Option<bool>,
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
    /// The row for one transfer that started at `started` and ended with `r`.
    pub(crate) fn from_result(
        requested: &str,
        file: &str,
        started: Instant,
        r: &Result<Outcome, TransferError>,
    ) -> Self {
        let mut row = Self {
            requested: requested.to_owned(),
            kind: "transfer",
            peer: None,
            method: None,
            file: file.to_owned(),
            bytes: 0,
            seconds: started.elapsed().as_secs_f64(),
            mb_per_s: 0.0,
            sha256: None,
            verified: false,
            delivery: None,
            size_checked: None,
            hash_checked: None,
            warnings: Vec::new(),
            streamhost: None,
            fallback: false,
            error: None,
            stage: None,
        };
        match r {
            Ok(o) => {
                row.peer = Some(o.peer.to_string());
                row.method = Some(o.method.name().to_owned());
                row.bytes = o.bytes;
                row.mb_per_s = o.rate() / 1e6;
                row.sha256 = Some(o.sha256.clone());
                row.verified = o.delivery != Delivery::Unconfirmed;
                row.delivery = Some(o.delivery.name());
                if let Delivery::Received {
                    size_checked,
                    hash_checked,
                } = o.delivery
                {
                    row.size_checked = Some(size_checked);
                    row.hash_checked = Some(hash_checked);
                }
                row.warnings = o.warnings.iter().map(|w| w.name()).collect();
                row.streamhost = o.method.streamhost().map(str::to_owned);
                row.fallback = o.fallback;
            }
            Err(e) => row.fail(&e.stage.to_string(), e.kind.chain()),
        }
        row
    }

    /// The row for an offer refused before any transfer: who, which file, the reason, and
    /// the answer the sender got.
    pub(crate) fn refused(
        requested: &str,
        peer: Option<String>,
        file: &str,
        reason: String,
    ) -> Self {
        let mut row = Self::from_result(
            requested,
            file,
            Instant::now(),
            &Err(TransferError::new(
                ft_facade::Stage::Offer,
                ft_facade::ErrorKind::Declined { text: None },
            )),
        );
        row.kind = "refused";
        row.peer = peer;
        row.seconds = 0.0;
        row.error = Some(reason);
        row
    }

    /// Marks the row failed at `stage`.
    pub(crate) fn fail(&mut self, stage: &str, error: String) {
        self.verified = false;
        self.error = Some(error);
        self.stage = Some(stage.to_owned());
    }
}

/// Prints rows as the demo's table.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<13} {:>12} {:>9} {:>13}  {}\n",
        "method", "bytes", "total s", "stream MB/s", "verified"
    ));
    for r in rows {
        let verified = match (&r.error, r.verified) {
            (Some(e), _) => format!("FAILED ({}: {e})", r.stage.as_deref().unwrap_or("?")),
            (None, true) => "yes (sha256)".to_owned(),
            (None, false) => format!("unconfirmed ({})", r.delivery.unwrap_or("?")),
        };
        out.push_str(&format!(
            "{:<13} {:>12} {:>9.3} {:>13.1}  {}\n",
            r.requested, r.bytes, r.seconds, r.mb_per_s, verified
        ));
    }
    out
}

/// Prints a row as one JSON line.
pub(crate) fn json(row: &Row) -> String {
    serde_json::to_string(row).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}
