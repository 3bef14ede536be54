//! The application's side of one transfer: events, progress, cancel, the outcome.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ft_transport::Sid;
use jid::Jid;
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::{ErrorKind, Misuse, Side, Stage, TransferError};
use crate::event::{Event, Outcome, Progress};

/// One transfer in progress, sending or receiving.
///
/// The transfer runs on its own task: dropping the handle does not stop it (call
/// [`cancel`](Self::cancel) for that). Events are kept until read; progress events are
/// emitted at most every [`PROGRESS_INTERVAL`], so an unread handle costs little.
#[derive(Debug)]
pub struct TransferHandle {
    sid: Sid,
    peer: Jid,
    events: mpsc::UnboundedReceiver<Event>,
    progress: watch::Receiver<Progress>,
    cancel: Canceller,
    result: oneshot::Receiver<Result<Outcome, TransferError>>,
}

/// How often at most a [`Event::Progress`] is emitted.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

impl TransferHandle {
    /// The stream id (the SI `id`, reused by the bytestream).
    pub fn sid(&self) -> &Sid {
        &self.sid
    }

    /// The peer.
    pub fn peer(&self) -> &Jid {
        &self.peer
    }

    /// Cancels the transfer at whatever stage it is; the peer is told in the XEP's terms.
    /// The outcome becomes `Err` with [`ErrorKind::Cancelled`]`(`[`Side::Local`]`)`.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// A cloneable way to cancel from elsewhere.
    pub fn canceller(&self) -> Canceller {
        self.cancel.clone()
    }

    /// The next diagnostic event; `None` once the transfer has ended and every event was read.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// An event if one is waiting.
    pub fn try_next_event(&mut self) -> Option<Event> {
        self.events.try_recv().ok()
    }

    /// The latest progress.
    pub fn progress(&self) -> Progress {
        self.progress.borrow().clone()
    }

    /// Waits for the progress to change; `false` once the transfer has ended.
    pub async fn progress_changed(&mut self) -> bool {
        self.progress.changed().await.is_ok()
    }

    /// Waits for the end of the transfer.
    pub async fn outcome(self) -> Result<Outcome, TransferError> {
        match self.result.await {
            Ok(r) => r,
            Err(_) => Err(TransferError::new(
                Stage::Stream,
                ErrorKind::Misuse(Misuse::TaskEnded),
            )),
        }
    }
}

/// Cancels one transfer. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Canceller(Arc<watch::Sender<bool>>);

impl Canceller {
    /// Cancels the transfer.
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }
}

/// The transfer task's view of cancellation.
#[derive(Debug, Clone)]
pub(crate) struct CancelToken(watch::Receiver<bool>);

impl CancelToken {
    /// Resolves once cancelled (never if the handle's canceller is gone without cancelling).
    pub(crate) async fn cancelled(&self) {
        let mut rx = self.0.clone();
        if rx.wait_for(|c| *c).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The transfer task's reporting side.
#[derive(Debug)]
pub(crate) struct Reporter {
    events: mpsc::UnboundedSender<Event>,
    progress: watch::Sender<Progress>,
    pub(crate) start: Instant,
    last_progress: Option<Instant>,
    first_byte: Option<Instant>,
}

impl Reporter {
    pub(crate) fn at(&self) -> Duration {
        self.start.elapsed()
    }

    pub(crate) fn emit(&self, event: Event) {
        // Progress comes ten times a second: trace (`-vv`), the stages debug (`-v`).
        if matches!(event, Event::Progress(_)) {
            tracing::trace!(?event, "transfer event");
        } else {
            tracing::debug!(?event, "transfer event");
        }
        let _ = self.events.send(event);
    }

    pub(crate) fn stage(&mut self, stage: Stage) {
        self.progress.send_modify(|p| p.stage = stage);
    }

    pub(crate) fn total(&mut self, total: Option<u64>) {
        self.progress.send_modify(|p| p.total = total);
    }

    /// Starts the streaming clock.
    pub(crate) fn streaming(&mut self) {
        self.first_byte.get_or_insert_with(Instant::now);
        self.stage(Stage::Stream);
    }

    pub(crate) fn streaming_time(&self) -> Duration {
        self.first_byte.map(|t| t.elapsed()).unwrap_or_default()
    }

    /// Records the byte count; emits a progress event at most every [`PROGRESS_INTERVAL`]
    /// (and always when `force`).
    pub(crate) fn bytes(&mut self, bytes: u64, force: bool) {
        let rate = {
            let s = self.streaming_time().as_secs_f64();
            if s > 0.0 { bytes as f64 / s } else { 0.0 }
        };
        self.progress.send_modify(|p| {
            p.bytes = bytes;
            p.rate = rate;
        });
        let now = Instant::now();
        if force
            || self
                .last_progress
                .is_none_or(|t| now.duration_since(t) >= PROGRESS_INTERVAL)
        {
            self.last_progress = Some(now);
            let p = self.progress.borrow().clone();
            self.emit(Event::Progress(p));
        }
    }
}

/// Everything one transfer task needs to talk to its handle.
#[derive(Debug)]
pub(crate) struct TaskSide {
    pub(crate) reporter: Reporter,
    pub(crate) cancel: CancelToken,
    pub(crate) result: oneshot::Sender<Result<Outcome, TransferError>>,
}

impl TaskSide {
    /// Sends the final result, with the matching final event.
    pub(crate) fn finish(self, result: Result<Outcome, TransferError>) {
        match &result {
            Ok(o) => self.reporter.emit(Event::Completed(Box::new(o.clone()))),
            Err(e) => {
                let copy = TransferError::new(e.stage, e.kind.copy());
                self.reporter.emit(Event::Failed(Arc::new(copy)));
            }
        }
        let _ = self.result.send(result);
    }
}

/// A new handle and the task side that goes with it.
pub(crate) fn pair(sid: Sid, peer: Jid, total: Option<u64>) -> (TransferHandle, TaskSide) {
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (progress_tx, progress_rx) = watch::channel(Progress {
        bytes: 0,
        total,
        rate: 0.0,
        stage: Stage::Prepare,
    });
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let (result_tx, result_rx) = oneshot::channel();
    (
        TransferHandle {
            sid,
            peer,
            events: events_rx,
            progress: progress_rx,
            cancel: Canceller(Arc::new(cancel_tx)),
            result: result_rx,
        },
        TaskSide {
            reporter: Reporter {
                events: events_tx,
                progress: progress_tx,
                start: Instant::now(),
                last_progress: None,
                first_byte: None,
            },
            cancel: CancelToken(cancel_rx),
            result: result_tx,
        },
    )
}

/// A local cancel at `stage`.
pub(crate) fn cancelled(stage: Stage) -> TransferError {
    TransferError::new(stage, ErrorKind::Cancelled(Side::Local))
}
