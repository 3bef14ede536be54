//! The `.part` of a failed transfer: kept or removed as the policy says.

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
    keep: bool,
    id: Option<FileId>,
    armed: bool,
}

impl PartCleanup {
    pub(crate) fn new(path: &Path, keep: bool) -> Self {
        Self {
            path: path.to_owned(),
            keep,
            id: file_id(path),
            armed: true,
        }
    }

    /// The transfer failed; `wrong` when the content is known to be bad.
    pub(crate) fn failed(&mut self, wrong: bool) {
        if !self.armed {
            return;
        }
        self.armed = false;
        let empty = std::fs::metadata(&self.path).is_ok_and(|m| m.len() == 0);
        if (wrong || !self.keep || empty) && file_id(&self.path) == self.id {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for PartCleanup {
    fn drop(&mut self) {
        if self.armed {
            self.failed(false);
        }
    }
}

#[cfg(unix)]
type FileId = (u64, u64);

#[cfg(unix)]
fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
type FileId = ();

#[cfg(not(unix))]
fn file_id(path: &Path) -> Option<FileId> {
    path.exists().then_some(())
}
