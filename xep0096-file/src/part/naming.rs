//! Naming and taking the `.part`: `name.part`, then `name (n).ext.part` while the name is
//! held by another receiver or taken by a file that is not ours. A part is ours only with
//! its sidecar ([`sidecar`](super::sidecar)); a held part is never touched, a file we did
//! not create is never opened for writing.

use std::fs::File;

use super::fsx;
use super::sidecar::{Meta, sidecar_path};
use super::*;

/// `name.part` for slot 0, `name (n).ext.part` for slot n.
pub(super) fn part_name(name: &str, slot: u32) -> String {
    if slot == 0 {
        format!("{name}.part")
    } else {
        format!("{}.part", numbered(name, slot))
    }
}

/// A part taken for writing.
pub(super) struct Taken {
    pub(super) file: File,
    pub(super) sidecar: File,
    pub(super) meta: Meta,
    /// Where the search for a free final name starts: the number of lower slots that other
    /// receivers held (a slot skipped for a file that is not ours does not count, so a
    /// user's own `movie.mkv.part` does not push our file to `movie (1).mkv`).
    pub(super) final_slot: u32,
    pub(super) path: PathBuf,
}

/// Takes the first slot that is free or holds a part of ours nobody holds (blocking calls:
/// run off the async threads), and locks it. The lock is `flock`-style: per open file,
/// released when the file is closed, also when the process dies, so a crashed receiver's
/// `.part` is free for a resume.
///
/// A part of ours is resumed (cut back to its verified length) when `resume` is asked and
/// its sidecar says it holds the file `key` identifies ([`Meta::resumable_for`]);
/// otherwise it is started over (emptied, its sidecar rewritten).
pub(super) fn take_part(
    dir: &Path,
    name: &str,
    key: &PartKey,
    resume: bool,
) -> Result<Taken, WriteError> {
    let mut held_below = 0;
    for slot in 0..=MAX_RENAME_ATTEMPTS {
        let path = dir.join(part_name(name, slot));
        let side = sidecar_path(&path);
        match fsx::create_new(&path) {
            Ok(file) => {
                if let Some(t) = fresh(file, &path, &side, key, name)? {
                    return Ok(Taken {
                        final_slot: held_below,
                        ..t
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                match adopt(&path, &side).map_err(|e| WriteError::io("open", &path, e))? {
                    Adopt::Held => held_below += 1,
                    Adopt::Foreign => {}
                    Adopt::Ours(file, mut sidecar, old) => {
                        let len = file
                            .metadata()
                            .map_err(|e| WriteError::io("stat", &path, e))?
                            .len();
                        let keep = if resume && old.resumable_for(key, name) && len >= old.verified
                        {
                            old.verified
                        } else {
                            0
                        };
                        // Anything past the verified length (a crash's unsynced tail) goes.
                        file.set_len(keep)
                            .map_err(|e| WriteError::io("truncate", &path, e))?;
                        file.sync_all()
                            .map_err(|e| WriteError::io("sync", &path, e))?;
                        let meta = Meta {
                            verified: keep,
                            ..Meta::new(key, name)
                        };
                        meta.write(&mut sidecar)
                            .map_err(|e| WriteError::io("write", &side, e))?;
                        return Ok(Taken {
                            file,
                            sidecar,
                            meta,
                            final_slot: held_below,
                            path,
                        });
                    }
                }
            }
            Err(e) => return Err(WriteError::io("create", &path, e)),
        }
    }
    Err(WriteError::NoFreeName(
        dir.join(part_name(name, 0)),
        MAX_RENAME_ATTEMPTS,
    ))
}

/// A part we just created: lock it and create its sidecar. `None` when the sidecar's name
/// is taken by a file that is not ours (the part is removed again, the slot skipped).
fn fresh(
    file: File,
    path: &Path,
    side: &Path,
    key: &PartKey,
    name: &str,
) -> Result<Option<Taken>, WriteError> {
    if !lock(&file, path)? {
        let _ = fsx::remove_if_same(path, &file);
        return Ok(None);
    }
    let mut sidecar = match fsx::create_new(side) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // Ours, left by a crash between removing a part and its sidecar: replace it.
            let stale = fsx::open_ours(side)
                .ok()
                .flatten()
                .and_then(|mut f| Meta::read(&mut f).ok().flatten().map(|_| f));
            let again = match stale {
                Some(f) => fsx::remove_if_same(side, &f).and_then(|()| fsx::create_new(side)),
                None => Err(e),
            };
            match again {
                Ok(s) => s,
                Err(_) => {
                    let _ = fsx::remove_if_same(path, &file);
                    return Ok(None);
                }
            }
        }
        Err(e) => {
            let _ = fsx::remove_if_same(path, &file);
            return Err(WriteError::io("create", side, e));
        }
    };
    let meta = Meta::new(key, name);
    if let Err(e) = meta.write(&mut sidecar) {
        let _ = fsx::remove_if_same(side, &sidecar);
        let _ = fsx::remove_if_same(path, &file);
        return Err(WriteError::io("write", side, e));
    }
    Ok(Some(Taken {
        file,
        sidecar,
        meta,
        final_slot: 0,
        path: path.to_owned(),
    }))
}

enum Adopt {
    /// Another receiver holds it.
    Held,
    /// Not a part of ours (a user's file, a symlink, a hard link, no sidecar, another
    /// user's): never opened for writing.
    Foreign,
    /// Ours and free: the part, its sidecar and what the sidecar says.
    Ours(File, File, Meta),
}

fn adopt(path: &Path, side: &Path) -> io::Result<Adopt> {
    let Some(file) = fsx::open_ours(path)? else {
        return Ok(Adopt::Foreign);
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(Adopt::Held),
        // No locks on this file system (as cargo does: go on unlocked).
        Err(std::fs::TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => {}
        Err(std::fs::TryLockError::Error(e)) => return Err(e),
    }
    // The holder may have removed its part (finished or discarded) between our open and
    // our lock: then we hold a file that is no longer at `path`.
    if !still_at(&file, path)? {
        return Ok(Adopt::Foreign);
    }
    let Some(mut sidecar) = fsx::open_ours(side)? else {
        return Ok(Adopt::Foreign);
    };
    Ok(match Meta::read(&mut sidecar)? {
        Some(meta) => Adopt::Ours(file, sidecar, meta),
        None => Adopt::Foreign,
    })
}

/// Locks a part we have just created. Its sidecar is created only after this, so another
/// receiver that opened it meanwhile (to adopt it) finds no sidecar and lets go at once:
/// wait for that, briefly. `false`: still held after that.
fn lock(file: &File, path: &Path) -> Result<bool, WriteError> {
    for _ in 0..100 {
        match file.try_lock() {
            Ok(()) => return Ok(true),
            Err(std::fs::TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => {
                return Ok(true);
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(WriteError::io("lock", path, e)),
        }
    }
    Ok(false)
}

/// Whether `path` still names the open `file` (without following a symlink).
pub(super) fn still_at(file: &File, path: &Path) -> io::Result<bool> {
    let ours = file.metadata()?;
    match std::fs::symlink_metadata(path) {
        Ok(m) => Ok(fsx::same_file(&m, &ours)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
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
