//! The file system calls the `.part` needs beyond `std::fs`: create without following,
//! reopen only a regular file of ours that is where its name says, the mode of a finished
//! file, the directory sync, the free space. Blocking: run them off the async threads.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// The mode of a `.part` and its sidecar while receiving: only the user.
pub(super) const PART_MODE: u32 = 0o600;

/// Creates `path`, failing if anything (a file, a symlink, even a dangling one) is there:
/// `O_CREAT | O_EXCL` never follows a symlink. Mode [`PART_MODE`].
pub(super) fn create_new(path: &Path) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(PART_MODE);
    }
    o.open(path)
}

/// Opens an existing `path` for reading and writing only if it is a regular file with one
/// link, owned by us, and the file opened is the one `lstat` saw (no symlink is followed:
/// `O_NOFOLLOW`; no swap between the check and the open is taken). `Ok(None)`: something
/// else is there (not ours, or gone).
pub(super) fn open_ours(path: &Path) -> io::Result<Option<File>> {
    let seen = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !seen.file_type().is_file() || !owned_single(&seen) {
        return Ok(None);
    }
    let mut o = OpenOptions::new();
    o.read(true).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // No symlink, and never block opening a FIFO swapped in after the lstat.
        o.custom_flags(
            rustix::fs::OFlags::NOFOLLOW.bits() as i32 | rustix::fs::OFlags::NONBLOCK.bits() as i32,
        );
    }
    let file = match o.open(path) {
        Ok(f) => f,
        // ELOOP: a symlink appeared after the lstat; NotFound: gone.
        Err(e) if e.kind() == io::ErrorKind::NotFound || is_loop(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let opened = file.metadata()?;
    if !opened.file_type().is_file() || !owned_single(&opened) || !same_file(&seen, &opened) {
        return Ok(None);
    }
    Ok(Some(file))
}

#[cfg(unix)]
fn is_loop(e: &io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())
}

#[cfg(not(unix))]
fn is_loop(_: &io::Error) -> bool {
    false
}

/// One link (a hard link to a user's file has two) and our own user.
#[cfg(unix)]
fn owned_single(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    m.nlink() == 1 && m.uid() == rustix::process::geteuid().as_raw()
}

#[cfg(not(unix))]
fn owned_single(_: &std::fs::Metadata) -> bool {
    true
}

#[cfg(unix)]
pub(super) fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
pub(super) fn same_file(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    true
}

/// Removes `path` only while it still names `file` (a file we hold): never someone else's
/// file that took the name meanwhile.
pub(super) fn remove_if_same(path: &Path, file: &File) -> io::Result<()> {
    let ours = file.metadata()?;
    match std::fs::symlink_metadata(path) {
        Ok(m) if same_file(&m, &ours) => std::fs::remove_file(path),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes a rename or unlink in `dir` durable (`fsync` of the directory). A no-op where a
/// directory cannot be opened as a file (Windows).
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// The mode a finished file gets: what a new file gets from the process umask
/// (`0o666 & !umask`: `0o644` with the usual `022`). The umask is read from
/// `/proc/self/status` (Linux ≥ 4.7), never set; where it cannot be read the file keeps
/// [`PART_MODE`] (`0o600`), the safe side.
pub(super) fn final_mode() -> u32 {
    umask().map_or(PART_MODE, |m| 0o666 & !m)
}

fn umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}

/// Sets the finished file's mode ([`final_mode`]) on the open file.
pub(super) fn set_final_mode(file: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(final_mode()))
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        Ok(())
    }
}

/// Bytes an unprivileged user may still write in the file system of `dir` (`statvfs`:
/// `f_bavail × f_frsize`). `Unsupported` off Unix.
pub fn available_space(dir: impl AsRef<Path>) -> io::Result<u64> {
    #[cfg(unix)]
    {
        let s = rustix::fs::statvfs(dir.as_ref())?;
        Ok(s.f_bavail.saturating_mul(s.f_frsize))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// Renames `from` to `to` only if `to` does not exist, atomically: a hard link then an
/// unlink of `from`, or where the file system has no hard links `renameat2(NOREPLACE)`
/// (Linux). `AlreadyExists` when `to` is taken.
pub(super) fn rename_no_clobber(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::hard_link(from, to) {
        Ok(()) => {
            // Placed; a part name that cannot be removed is left over, not an error.
            let _ = std::fs::remove_file(from);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(e) => rename_noreplace(from, to).map_err(|e2| {
            if e2.kind() == io::ErrorKind::AlreadyExists {
                e2
            } else {
                e
            }
        }),
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE).map_err(io::Error::from)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    // No atomic no-clobber rename here: check, then rename (a race with another writer of
    // the same name remains on such file systems).
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(io::ErrorKind::AlreadyExists.into());
    }
    std::fs::rename(from, to)
}
