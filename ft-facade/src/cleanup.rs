//! The `.part` of a failed transfer (and its sidecar): kept or removed as the policy says.

use std::path::{Path, PathBuf};

/// The `.part` of a transfer that failed: removed unless the policy keeps partial files,
/// and always when its content is known to be wrong or it is empty (nothing to resume).
/// Works from the path, so it also applies when the part file itself was lost (a hung
/// writer abandoned after a cancel); on Unix it removes the path only while it still names
/// the same file. Dropped while armed (the receiving task itself was dropped), it applies
/// the policy too.
#[derive(Debug)]
pub(crate) struct PartCleanup {
    path: PathBuf,
    /// The part's sidecar (`<part>.xft`): it goes with the part.
    sidecar: PathBuf,
    keep: bool,
    id: Option<FileId>,
    sidecar_id: Option<FileId>,
    armed: bool,
}

impl PartCleanup {
    pub(crate) fn new(path: &Path, sidecar: &Path, keep: bool) -> Self {
        Self {
            path: path.to_owned(),
            sidecar: sidecar.to_owned(),
            keep,
            id: file_id(path),
            sidecar_id: file_id(sidecar),
            armed: true,
        }
    }

    /// The transfer failed; `wrong` when the content is known to be bad. The removal runs
    /// on a blocking thread and is waited for at most [`REMOVE_GRACE`]: on a hung disk
    /// (a frozen file system) `unlink` waits until the disk comes back, and that must hold
    /// up neither the failure nor the runtime's threads (issue 9, `tests/disk_faults.rs`);
    /// it then completes in the background.
    pub(crate) async fn failed(&mut self, wrong: bool) {
        if !self.armed {
            return;
        }
        self.armed = false;
        let job = self.job();
        let removal = tokio::task::spawn_blocking(move || job.apply(wrong));
        let _ = tokio::time::timeout(REMOVE_GRACE, removal).await;
    }

    fn job(&self) -> Removal {
        Removal {
            path: self.path.clone(),
            sidecar: self.sidecar.clone(),
            keep: self.keep,
            id: self.id,
            sidecar_id: self.sidecar_id,
        }
    }

    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for PartCleanup {
    fn drop(&mut self) {
        if self.armed {
            // The receiving task itself was dropped (no runtime to wait on, perhaps):
            // applied here and now.
            self.armed = false;
            self.job().apply(false);
        }
    }
}

/// How long a failed transfer waits for its `.part` to be removed before it reports.
const REMOVE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// What [`PartCleanup`] removes, on whichever thread does it.
struct Removal {
    path: PathBuf,
    sidecar: PathBuf,
    keep: bool,
    id: Option<FileId>,
    sidecar_id: Option<FileId>,
}

impl Removal {
    fn apply(self, wrong: bool) {
        let empty = std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.len() == 0);
        if (wrong || !self.keep || empty) && self.id.is_some() && file_id(&self.path) == self.id {
            let _ = std::fs::remove_file(&self.path);
            if self.sidecar_id.is_some() && file_id(&self.sidecar) == self.sidecar_id {
                let _ = std::fs::remove_file(&self.sidecar);
            }
        }
    }
}

#[cfg(unix)]
type FileId = (u64, u64);

#[cfg(unix)]
fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
type FileId = ();

#[cfg(not(unix))]
fn file_id(path: &Path) -> Option<FileId> {
    path.exists().then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// The part file itself may be lost (a hung writer abandoned after a cancel): the
    /// policy is applied by path, to the part and its sidecar, and never to a file that
    /// took the name meanwhile.
    #[tokio::test]
    async fn a_lost_part_goes_with_its_sidecar_by_path_and_never_a_file_that_took_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let (part, side) = (dir.path().join("a.part"), dir.path().join("a.part.xft"));
        std::fs::write(&part, b"abc").unwrap();
        std::fs::write(&side, b"meta").unwrap();
        PartCleanup::new(&part, &side, true).failed(false).await;
        assert_eq!(
            names(dir.path()),
            ["a.part", "a.part.xft"],
            "kept for a resume"
        );
        PartCleanup::new(&part, &side, false).failed(false).await;
        assert!(names(dir.path()).is_empty(), "keep_partial off: both gone");

        std::fs::write(&part, b"abc").unwrap();
        std::fs::write(&side, b"meta").unwrap();
        let mut c = PartCleanup::new(&part, &side, false);
        // Someone else's file takes the part's name.
        let theirs = dir.path().join("theirs");
        std::fs::write(&theirs, b"theirs").unwrap();
        std::fs::rename(&theirs, &part).unwrap();
        c.failed(true).await;
        assert_eq!(std::fs::read(&part).unwrap(), b"theirs");
        assert_eq!(names(dir.path()), ["a.part", "a.part.xft"]);
        // Dropped while armed: the policy applies too.
        let c = PartCleanup::new(&part, &side, false);
        drop(c);
        assert!(names(dir.path()).is_empty());
    }
}
