//! Naming and locking the `.part`: `name.part`, then `name (n).ext.part` while another
//! receiver holds the name; a held part is never truncated.

use super::*;

/// `name.part` for slot 0, `name (n).ext.part` for slot n.
pub(super) fn part_name(name: &str, slot: u32) -> String {
    if slot == 0 {
        format!("{name}.part")
    } else {
        format!("{}.part", numbered(name, slot))
    }
}

/// Opens and locks the first `.part` slot nobody holds (blocking calls: run off the async
/// threads). The lock is `flock`-style: per open file, released when the file is closed,
/// also when the process dies, so a crashed receiver's `.part` is free for a resume.
pub(super) fn lock_free_part(
    dir: &Path,
    name: &str,
    truncate: bool,
) -> Result<(std::fs::File, u32, PathBuf), WriteError> {
    'slots: for slot in 0..=MAX_RENAME_ATTEMPTS {
        let path = dir.join(part_name(name, slot));
        // The holder may remove its `.part` (finished or discarded) between our open and
        // our lock: then we hold a file that is no longer at `path`. Open again.
        for _ in 0..3 {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| WriteError::io("open", &path, e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => continue 'slots,
                // No locks on this file system (as cargo does: go on unlocked).
                Err(std::fs::TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => {}
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(WriteError::io("lock", &path, e));
                }
            }
            if !still_at(&file, &path).map_err(|e| WriteError::io("stat", &path, e))? {
                continue;
            }
            if truncate {
                file.set_len(0)
                    .map_err(|e| WriteError::io("truncate", &path, e))?;
            }
            return Ok((file, slot, path));
        }
    }
    Err(WriteError::NoFreeName(
        dir.join(part_name(name, 0)),
        MAX_RENAME_ATTEMPTS,
    ))
}

/// Whether `path` still names the open `file`.
#[cfg(unix)]
pub(super) fn still_at(file: &std::fs::File, path: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let ours = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.dev() == ours.dev() && m.ino() == ours.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
pub(super) fn still_at(_: &std::fs::File, path: &Path) -> io::Result<bool> {
    path.try_exists()
}

/// `name (n).ext` for `n` ≥ 1; the extension is what follows the last dot.
pub(super) fn numbered(name: &str, n: u32) -> String {
    match name.rfind('.') {
        Some(dot) if dot > 0 => format!("{} ({n}){}", &name[..dot], &name[dot..]),
        _ => format!("{name} ({n})"),
    }
}

/// `name` for 0, `name (n).ext` otherwise.
pub(super) fn candidate(name: &str, n: u32) -> String {
    if n == 0 {
        name.to_owned()
    } else {
        numbered(name, n)
    }
}
