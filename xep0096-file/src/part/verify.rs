//! Verification and placement: size and hash checked, then linked into place without
//! clobbering (or renamed over the old file when asked).

use super::*;
use super::{Syncer, fsx};

pub(super) fn check(d: &LaneDigests, expected: &Expected) -> Result<(), WriteError> {
    if let (Some(md5), Some(got)) = (expected.md5, d.md5)
        && md5 != got
    {
        return Err(WriteError::HashMismatch {
            algorithm: "md5",
            expected: hex::encode(md5),
            actual: hex::encode(got),
        });
    }
    if let Some(sha) = expected.sha256
        && sha != d.sha256
    {
        return Err(WriteError::HashMismatch {
            algorithm: "sha-256",
            expected: hex::encode(sha),
            actual: d.sha256_hex(),
        });
    }
    Ok(())
}

/// Moves `part` to `dir/name` (or `name (n).ext` from `from_slot` on) under the collision
/// policy, finalizing as BAD-INPUT G11 says: the part is synced already (the caller's
/// checkpoint); its mode is set to the final one, it is renamed without overwriting (a hard
/// link then an unlink, or `renameat2(NOREPLACE)`; [`Collision::Replace`] renames over),
/// its sidecar removed, and the directory synced. On failure the part and sidecar stay
/// (verified, resumable) and nothing is under the final name.
pub(super) async fn place(
    dir: &Path,
    name: &str,
    from_slot: u32,
    part: &Path,
    syncer: Box<Syncer>,
    collision: Collision,
) -> Result<PathBuf, WriteError> {
    let (dir, name, part) = (dir.to_owned(), name.to_owned(), part.to_owned());
    let err_path = part.clone();
    tokio::task::spawn_blocking(move || {
        place_blocking(&dir, &name, from_slot, &part, &syncer, collision)
    })
    .await
    .map_err(|e| WriteError::io("rename", err_path, io::Error::other(e)))?
}

fn place_blocking(
    dir: &Path,
    name: &str,
    from_slot: u32,
    part: &Path,
    syncer: &Syncer,
    collision: Collision,
) -> Result<PathBuf, WriteError> {
    fsx::set_final_mode(&syncer.part).map_err(|e| WriteError::io("chmod", part, e))?;
    let target = place_name(dir, name, from_slot, part, collision)?;
    // The part's name is gone: its sidecar goes too (only while it is still ours).
    let side = sidecar_path(part);
    let _ = fsx::remove_if_same(&side, &syncer.sidecar);
    fsx::sync_dir(dir).map_err(|e| WriteError::io("sync", dir, e))?;
    Ok(target)
}

fn place_name(
    dir: &Path,
    name: &str,
    from_slot: u32,
    part: &Path,
    collision: Collision,
) -> Result<PathBuf, WriteError> {
    if collision == Collision::Replace {
        let target = dir.join(candidate(name, from_slot));
        std::fs::rename(part, &target).map_err(|e| WriteError::io("rename", &target, e))?;
        return Ok(target);
    }
    let last = if collision == Collision::Rename {
        MAX_RENAME_ATTEMPTS.max(from_slot)
    } else {
        from_slot
    };
    for n in from_slot..=last {
        let target = dir.join(candidate(name, n));
        match fsx::rename_no_clobber(part, &target) {
            Ok(()) => return Ok(target),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if collision == Collision::Fail {
                    return Err(WriteError::Exists(target));
                }
            }
            Err(e) => return Err(WriteError::io("rename", &target, e)),
        }
    }
    Err(WriteError::NoFreeName(dir.join(name), last - from_slot))
}
