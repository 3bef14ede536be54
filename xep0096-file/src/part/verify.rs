//! Verification and placement: size and hash checked, then linked into place without
//! clobbering (or renamed over the old file when asked).

use super::*;

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

/// Moves `part` to `dir/name` (or `name (slot).ext` for a receiver whose `.part` had a
/// number) under the collision policy. A hard link is the no-clobber primitive (it fails if
/// the target exists, atomically); on a file system without hard links it falls back to
/// check-then-rename, which can race with another writer.
pub(super) async fn place(
    dir: &Path,
    name: &str,
    slot: u32,
    part: &Path,
    collision: Collision,
) -> Result<PathBuf, WriteError> {
    if collision == Collision::Replace {
        let target = dir.join(candidate(name, slot));
        fs::rename(part, &target)
            .await
            .map_err(|e| WriteError::io("rename", &target, e))?;
        return Ok(target);
    }
    let last = if collision == Collision::Rename {
        MAX_RENAME_ATTEMPTS.max(slot)
    } else {
        slot
    };
    for n in slot..=last {
        let target = dir.join(candidate(name, n));
        match link_no_clobber(part, &target).await {
            Ok(()) => {
                let _ = fs::remove_file(part).await;
                return Ok(target);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if collision == Collision::Fail {
                    return Err(WriteError::Exists(target));
                }
            }
            Err(e) => return Err(WriteError::io("rename", &target, e)),
        }
    }
    Err(WriteError::NoFreeName(dir.join(name), last - slot))
}

pub(super) async fn link_no_clobber(from: &Path, to: &Path) -> io::Result<()> {
    match fs::hard_link(from, to).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) => {
            if fs::try_exists(to).await? {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            fs::rename(from, to).await
        }
    }
}
