//! Checkpoints: the part synced and its verified length recorded in the sidecar, on a
//! blocking thread beside the writes.

use super::*;

/// The part's second handle and its sidecar, for checkpoints on a blocking thread.
#[derive(Debug)]
pub(super) struct Syncer {
    pub(super) part: std::fs::File,
    pub(super) sidecar: std::fs::File,
    pub(super) meta: Meta,
}

impl Syncer {
    /// Syncs the part (everything handed to the kernel so far, at least `len` bytes), then
    /// records `len` as verified.
    pub(super) fn commit(&mut self, len: u64) -> io::Result<()> {
        self.part.sync_data()?;
        if self.meta.verified != len {
            self.meta.verified = len;
            self.meta.write(&mut self.sidecar)?;
        }
        Ok(())
    }
}

#[derive(Debug)]
pub(super) struct Checkpoints {
    pub(super) idle: Option<Box<Syncer>>,
    pub(super) pending: Option<JoinHandle<(Box<Syncer>, io::Result<()>)>>,
    /// The length of the last checkpoint started.
    pub(super) mark: u64,
    pub(super) at: Instant,
    /// [`CHECKPOINT_BYTES`] (smaller in tests).
    pub(super) every: u64,
}

impl PartFile {
    /// Starts a checkpoint on a blocking thread when one is due and none is running.
    pub(super) async fn maybe_checkpoint(&mut self) -> Result<(), WriteError> {
        let c = &mut self.sync;
        let due = self.written - c.mark >= c.every
            || (self.written > c.mark && c.at.elapsed() >= CHECKPOINT_INTERVAL);
        if !due || c.pending.as_ref().is_some_and(|p| !p.is_finished()) {
            return Ok(());
        }
        self.collect().await?;
        // Everything written so far reaches the kernel before the sync is started.
        self.flush().await?;
        let Some(mut s) = self.sync.idle.take() else {
            return Ok(());
        };
        let len = self.written;
        self.sync.mark = len;
        self.sync.at = Instant::now();
        self.sync.pending = Some(tokio::task::spawn_blocking(move || {
            let r = s.commit(len);
            (s, r)
        }));
        Ok(())
    }

    /// Waits for a running checkpoint; its failure fails the part.
    pub(super) async fn collect(&mut self) -> Result<(), WriteError> {
        let Some(p) = self.sync.pending.take() else {
            return Ok(());
        };
        match p.await {
            Ok((s, r)) => {
                self.sync.idle = Some(s);
                r.map_err(|e| {
                    self.poisoned = true;
                    WriteError::io("sync", &self.part_path, e)
                })
            }
            Err(e) => {
                self.poisoned = true;
                Err(WriteError::io("sync", &self.part_path, io::Error::other(e)))
            }
        }
    }

    pub(super) async fn flush(&mut self) -> Result<(), WriteError> {
        self.file.flush().await.map_err(|e| {
            self.poisoned = true;
            WriteError::io("flush", &self.part_path, e)
        })
    }

    /// Records what is written so far as verified, now (after waiting for a running
    /// checkpoint): the part is synced first.
    pub(super) async fn commit_now(&mut self) -> Result<(), WriteError> {
        let Some(mut s) = self.sync.idle.take() else {
            return Err(poisoned(&self.part_path));
        };
        let len = self.written;
        let (s, r) = tokio::task::spawn_blocking(move || {
            let r = s.commit(len);
            (s, r)
        })
        .await
        .map_err(|e| WriteError::io("sync", &self.part_path, io::Error::other(e)))?;
        self.sync.idle = Some(s);
        self.sync.mark = len;
        self.sync.at = Instant::now();
        r.map_err(|e| {
            self.poisoned = true;
            WriteError::io("sync", &self.part_path, e)
        })
    }

    /// Syncs the part and records everything written so far as its verified length: what
    /// a later [`open`](Self::open) keeps. Call it before letting go of a part that is to
    /// be resumed (a cut stream); checkpoints happen on their own while writing.
    pub async fn checkpoint(&mut self) -> Result<(), WriteError> {
        if self.poisoned {
            return Err(poisoned(&self.part_path));
        }
        self.flush().await?;
        self.collect().await?;
        self.commit_now().await
    }
}
