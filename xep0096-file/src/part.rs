//! The receiving side's file writer: `<name>.part`, held exclusively, counted and hashed,
//! renamed into place only once size and hash check out.

use std::io;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use tokio::fs;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::error::WriteError;
use crate::lanes::{HashLanes, LaneDigests, LaneGone};
use crate::name::safe_file_name;
use crate::offer::{Expected, FileOffer};
use crate::payload::Range;

/// What [`PartFile::finish`] does when the final name is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Collision {
    /// Pick the first free `name (1).ext`, `name (2).ext`, … (up to 999). The default: the
    /// user never loses an existing file and never loses the received one.
    #[default]
    Rename,
    /// Fail with [`WriteError::Exists`], keeping the verified `.part` so the caller can decide.
    Fail,
    /// Replace the existing file (atomically, by rename). Only when the user asked.
    Replace,
}

/// The most `name (n).ext` candidates [`Collision::Rename`] tries, and the most
/// `name (n).ext.part` files [`PartFile::open`] tries when others are in use.
pub const MAX_RENAME_ATTEMPTS: u32 = 999;

/// The read size when re-hashing a `.part` to resume it.
const REHASH_CHUNK: usize = 256 * 1024;

/// A file being received into `<dir>/<safe name>.part`.
///
/// * The `.part` is held exclusively (an advisory lock, `flock` on Unix) while this value
///   lives: a second receiver of the same name in the same directory, in this process or
///   another, gets `name (1).ext.part` (then `(2)`, …) and never writes into the first
///   one's file. A `.part` nobody holds (left by an earlier, interrupted transfer) is
///   taken over and resumed. On a file system without locks this is best effort.
/// * Every byte is counted and hashed (MD5 and SHA-256) as it is written; the digests run
///   on threads of their own ([`HashLanes`]) beside the disk writes, with bounded queues.
///   MD5 can be left out when the sender offered none ([`skip_md5`](Self::skip_md5)).
/// * More bytes than the offered size are refused ([`WriteError::TooManyBytes`]).
/// * [`finish`](Self::finish) flushes and syncs, checks size and hashes, then moves the file
///   to its final name without overwriting (see [`Collision`]). On any failure there is
///   never a file under the final name. A receiver that got `name (n).ext.part` starts
///   its search for a free final name at `name (n).ext`.
/// * Resume: [`open`](Self::open) keeps an existing `.part`, re-reads it to seed the
///   digests and reports its length as [`offset`](Self::offset); ask the sender for
///   [`range`](Self::range).
///
/// What is left on failure: after a write error or a short stream the `.part` stays (a later
/// [`open`](Self::open) resumes from it); after a hash mismatch it is deleted (its content
/// is wrong); [`discard`](Self::discard) deletes it explicitly.
///
/// ```
/// use xep0096_file::{Collision, Expected, PartFile};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let dir = std::env::temp_dir().join(format!("xft-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let mut part = PartFile::create(&dir, "../../report.txt", 11).await.unwrap();
/// part.write(b"hello ").await.unwrap();
/// part.write(b"world").await.unwrap();
/// let md5 = part.digests().await.unwrap().md5.unwrap();
/// let expected = Expected { size: 11, md5: Some(md5), sha256: None };
/// let path = part.finish(&expected, Collision::Replace).await.unwrap();
/// assert_eq!(path, dir.join("report.txt"));
/// assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # });
/// ```
#[derive(Debug)]
pub struct PartFile {
    dir: PathBuf,
    name: String,
    /// 0 for `name.part`, n for `name (n).ext.part`.
    slot: u32,
    part_path: PathBuf,
    file: fs::File,
    size: u64,
    written: u64,
    lanes: HashLanes,
    poisoned: bool,
}

impl PartFile {
    /// Starts receiving `peer_name` (made safe with [`safe_file_name`]) of `size` bytes
    /// into `dir`, resuming from an existing `.part` if there is one nobody holds.
    pub async fn open(
        dir: impl AsRef<Path>,
        peer_name: &str,
        size: u64,
    ) -> Result<Self, WriteError> {
        Self::open_inner(dir.as_ref(), peer_name, size, false).await
    }

    /// Like [`open`](Self::open) but discards the content of the `.part` it takes and
    /// starts at 0.
    pub async fn create(
        dir: impl AsRef<Path>,
        peer_name: &str,
        size: u64,
    ) -> Result<Self, WriteError> {
        Self::open_inner(dir.as_ref(), peer_name, size, true).await
    }

    /// Starts receiving what `offer` offers into `dir`: resumes an existing `.part` when the
    /// sender announced ranged transfers (then ask for [`range`](Self::range) in the
    /// answer), and starts over otherwise (the sender will send the whole file).
    pub async fn for_offer(dir: impl AsRef<Path>, offer: &FileOffer) -> Result<Self, WriteError> {
        let truncate = !offer.file.supports_ranges();
        Self::open_inner(dir.as_ref(), &offer.file.name, offer.file.size, truncate).await
    }

    async fn open_inner(
        dir: &Path,
        peer_name: &str,
        size: u64,
        truncate: bool,
    ) -> Result<Self, WriteError> {
        let name = safe_file_name(peer_name)?;
        let (file, slot, part_path) = {
            let (dir, name) = (dir.to_owned(), name.clone());
            let first = dir.join(part_name(&name, 0));
            tokio::task::spawn_blocking(move || lock_free_part(&dir, &name, truncate))
                .await
                .map_err(|e| WriteError::io("open", first, io::Error::other(e)))??
        };
        let mut file = fs::File::from_std(file);
        let len = file
            .metadata()
            .await
            .map_err(|e| WriteError::io("stat", &part_path, e))?
            .len();
        if len > size {
            return Err(WriteError::PartTooLong {
                path: part_path,
                len,
                size,
            });
        }
        let mut lanes = HashLanes::new();
        if len > 0 {
            let mut buf = BytesMut::with_capacity(REHASH_CHUNK);
            loop {
                let n = file
                    .read_buf(&mut buf)
                    .await
                    .map_err(|e| WriteError::io("read", &part_path, e))?;
                if n == 0 {
                    break;
                }
                if buf.capacity() == buf.len() {
                    lanes
                        .update(buf.split().freeze())
                        .await
                        .map_err(|e| lane_error(&part_path, e))?;
                    buf.reserve(REHASH_CHUNK);
                }
            }
            lanes
                .update(buf.split().freeze())
                .await
                .map_err(|e| lane_error(&part_path, e))?;
            if lanes.len() != len {
                return Err(WriteError::io(
                    "read",
                    &part_path,
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "partial file changed while read",
                    ),
                ));
            }
        }
        if len > 0 {
            file.seek(io::SeekFrom::Start(len))
                .await
                .map_err(|e| WriteError::io("seek", &part_path, e))?;
        }
        Ok(Self {
            dir: dir.to_owned(),
            name,
            slot,
            part_path,
            file,
            size,
            written: len,
            lanes,
            poisoned: false,
        })
    }

    /// Bytes on disk so far (for a resumed file, including what was there before).
    pub fn offset(&self) -> u64 {
        self.written
    }

    /// The range to ask the sender for: `None` for a fresh file, otherwise from
    /// [`offset`](Self::offset) to the end.
    pub fn range(&self) -> Option<Range> {
        (self.written > 0).then(|| Range::from_offset(self.written))
    }

    /// The offered size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The safe name the file gets (before any collision suffix).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `.part` path: `<name>.part`, or `<name (n).ext>.part` when other receivers held
    /// the lower ones.
    pub fn part_path(&self) -> &Path {
        &self.part_path
    }

    /// Empties the `.part` (keeping it held) and starts again at 0: for a sender that
    /// cannot resume.
    pub async fn start_over(&mut self) -> Result<(), WriteError> {
        self.file
            .set_len(0)
            .await
            .map_err(|e| WriteError::io("truncate", &self.part_path, e))?;
        self.file
            .seek(io::SeekFrom::Start(0))
            .await
            .map_err(|e| WriteError::io("seek", &self.part_path, e))?;
        self.lanes = HashLanes::new();
        self.written = 0;
        self.poisoned = false;
        Ok(())
    }

    /// Writes the next bytes (copying them once; see [`write_bytes`](Self::write_bytes)).
    /// Refuses (writing nothing) if they would exceed the offered size.
    pub async fn write(&mut self, buf: &[u8]) -> Result<(), WriteError> {
        self.write_bytes(Bytes::copy_from_slice(buf)).await
    }

    /// Writes the next bytes, sharing `buf` with the digest threads instead of copying it.
    /// Refuses (writing nothing) if they would exceed the offered size.
    pub async fn write_bytes(&mut self, buf: Bytes) -> Result<(), WriteError> {
        if self.poisoned {
            return Err(poisoned(&self.part_path));
        }
        let received = self.written.saturating_add(buf.len() as u64);
        if received > self.size {
            return Err(WriteError::TooManyBytes {
                expected: self.size,
                received,
            });
        }
        if let Err(e) = self.file.write_all(&buf).await {
            self.poisoned = true;
            return Err(WriteError::io("write", &self.part_path, e));
        }
        if let Err(e) = self.lanes.update(buf).await {
            self.poisoned = true;
            return Err(lane_error(&self.part_path, e));
        }
        self.written = received;
        Ok(())
    }

    /// Flushes, syncs, verifies against `expected`, and moves the file to its final name in
    /// the directory. Returns the final path.
    pub async fn finish(
        mut self,
        expected: &Expected,
        collision: Collision,
    ) -> Result<PathBuf, WriteError> {
        if self.poisoned {
            return Err(poisoned(&self.part_path));
        }
        self.file
            .flush()
            .await
            .map_err(|e| WriteError::io("flush", &self.part_path, e))?;
        self.file
            .sync_all()
            .await
            .map_err(|e| WriteError::io("sync", &self.part_path, e))?;
        if self.written != expected.size || self.written != self.size {
            return Err(WriteError::SizeMismatch {
                expected: expected.size,
                received: self.written,
            });
        }
        let digests = self.digests().await?;
        if expected.md5.is_some() && digests.md5.is_none() {
            // The caller's mistake, not the content's: the part stays.
            return Err(WriteError::io(
                "verify",
                &self.part_path,
                io::Error::other("an MD5 is expected but was not computed (skip_md5)"),
            ));
        }
        if let Err(e) = check(&digests, expected) {
            // Removed while still held, so no other receiver can have taken it over.
            let _ = fs::remove_file(&self.part_path).await;
            return Err(e);
        }
        // The file stays open (and locked) until the `.part` name is gone.
        let placed = place(&self.dir, &self.name, self.slot, &self.part_path, collision).await;
        drop(self.file);
        placed
    }

    /// The digests of everything written so far (waits for the digest threads to catch
    /// up with the writes).
    pub async fn digests(&self) -> Result<LaneDigests, WriteError> {
        self.lanes
            .digests()
            .await
            .map_err(|e| lane_error(&self.part_path, e))
    }

    /// Stops computing MD5: for an offer without a `hash`, where nobody checks it.
    /// [`finish`](Self::finish) with an expected MD5 then fails instead of passing unchecked.
    pub fn skip_md5(&mut self) {
        self.lanes.skip_md5();
    }

    /// Deletes the `.part` file.
    pub async fn discard(self) -> Result<(), WriteError> {
        // Removed before the file (and its lock) is let go: nobody can take it over between.
        let removed = fs::remove_file(&self.part_path)
            .await
            .map_err(|e| WriteError::io("remove", &self.part_path, e));
        drop(self.file);
        removed
    }

    #[cfg(test)]
    pub(crate) fn replace_file_for_test(&mut self, file: fs::File) {
        self.file = file;
    }
}

/// `name.part` for slot 0, `name (n).ext.part` for slot n.
fn part_name(name: &str, slot: u32) -> String {
    if slot == 0 {
        format!("{name}.part")
    } else {
        format!("{}.part", numbered(name, slot))
    }
}

/// Opens and locks the first `.part` slot nobody holds (blocking calls: run off the async
/// threads). The lock is `flock`-style: per open file, released when the file is closed,
/// also when the process dies, so a crashed receiver's `.part` is free for a resume.
fn lock_free_part(
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
fn still_at(file: &std::fs::File, path: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let ours = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.dev() == ours.dev() && m.ino() == ours.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn still_at(_: &std::fs::File, path: &Path) -> io::Result<bool> {
    path.try_exists()
}

fn lane_error(path: &Path, e: LaneGone) -> WriteError {
    WriteError::io("hash", path, io::Error::other(e))
}

fn poisoned(path: &Path) -> WriteError {
    WriteError::io(
        "write",
        path,
        io::Error::other("an earlier write failed; the partial file must be reopened"),
    )
}

fn check(d: &LaneDigests, expected: &Expected) -> Result<(), WriteError> {
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

/// `name (n).ext` for `n` ≥ 1; the extension is what follows the last dot.
fn numbered(name: &str, n: u32) -> String {
    match name.rfind('.') {
        Some(dot) if dot > 0 => format!("{} ({n}){}", &name[..dot], &name[dot..]),
        _ => format!("{name} ({n})"),
    }
}

/// `name` for 0, `name (n).ext` otherwise.
fn candidate(name: &str, n: u32) -> String {
    if n == 0 {
        name.to_owned()
    } else {
        numbered(name, n)
    }
}

/// Moves `part` to `dir/name` (or `name (slot).ext` for a receiver whose `.part` had a
/// number) under the collision policy. A hard link is the no-clobber primitive (it fails if
/// the target exists, atomically); on a file system without hard links it falls back to
/// check-then-rename, which can race with another writer.
async fn place(
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

async fn link_no_clobber(from: &Path, to: &Path) -> io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Hasher;
    use tokio::fs::OpenOptions;

    fn expected_for(data: &[u8]) -> Expected {
        let mut h = Hasher::new();
        h.update(data);
        let d = h.finish();
        Expected {
            size: data.len() as u64,
            md5: Some(d.md5),
            sha256: Some(d.sha256),
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn a_verified_file_lands_under_its_name_with_identical_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        let mut p = PartFile::open(dir.path(), "report.pdf", data.len() as u64)
            .await
            .unwrap();
        assert_eq!(p.offset(), 0);
        assert_eq!(p.range(), None);
        for c in data.chunks(999) {
            p.write(c).await.unwrap();
        }
        let path = p
            .finish(&expected_for(&data), Collision::Rename)
            .await
            .unwrap();
        assert_eq!(path, dir.path().join("report.pdf"));
        assert_eq!(std::fs::read(&path).unwrap(), data);
        assert_eq!(names(dir.path()), ["report.pdf"]);
    }

    #[tokio::test]
    async fn more_bytes_than_offered_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = PartFile::open(dir.path(), "a.bin", 4).await.unwrap();
        p.write(b"abc").await.unwrap();
        let err = p.write(b"de").await.unwrap_err();
        assert!(matches!(
            err,
            WriteError::TooManyBytes {
                expected: 4,
                received: 5
            }
        ));
        assert_eq!(p.offset(), 3);
    }

    #[tokio::test]
    async fn a_short_stream_is_a_size_mismatch_and_keeps_the_part_for_resume() {
        let dir = tempfile::tempdir().unwrap();
        let data = b"0123456789";
        let mut p = PartFile::open(dir.path(), "a.bin", 10).await.unwrap();
        p.write(&data[..6]).await.unwrap();
        let err = p
            .finish(&expected_for(data), Collision::Rename)
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            WriteError::SizeMismatch {
                expected: 10,
                received: 6
            }
        ));
        assert_eq!(names(dir.path()), ["a.bin.part"]);

        // Resume: the offset is what is on disk and the hash covers it.
        let mut p = PartFile::open(dir.path(), "a.bin", 10).await.unwrap();
        assert_eq!(p.offset(), 6);
        assert_eq!(p.range(), Some(Range::from_offset(6)));
        p.write(&data[6..]).await.unwrap();
        let path = p
            .finish(&expected_for(data), Collision::Rename)
            .await
            .unwrap();
        assert_eq!(std::fs::read(path).unwrap(), data);
        assert_eq!(names(dir.path()), ["a.bin"]);
    }

    #[tokio::test]
    async fn a_hash_mismatch_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = PartFile::open(dir.path(), "a.bin", 3).await.unwrap();
        p.write(b"abd").await.unwrap();
        let err = p
            .finish(&expected_for(b"abc"), Collision::Rename)
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            WriteError::HashMismatch {
                algorithm: "md5",
                ..
            }
        ));
        assert!(names(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn a_sha256_mismatch_is_caught_without_an_md5() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = PartFile::open(dir.path(), "a.bin", 3).await.unwrap();
        p.write(b"abd").await.unwrap();
        let mut e = expected_for(b"abc");
        e.md5 = None;
        let err = p.finish(&e, Collision::Rename).await.unwrap_err();
        assert!(matches!(
            err,
            WriteError::HashMismatch {
                algorithm: "sha-256",
                ..
            }
        ));
    }

    #[tokio::test]
    async fn an_existing_file_is_never_overwritten_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), b"old").unwrap();
        std::fs::write(dir.path().join("a (1).txt"), b"old1").unwrap();

        let mut p = PartFile::open(dir.path(), "a.txt", 3).await.unwrap();
        p.write(b"new").await.unwrap();
        let path = p
            .finish(&expected_for(b"new"), Collision::Rename)
            .await
            .unwrap();
        assert_eq!(path, dir.path().join("a (2).txt"));
        assert_eq!(std::fs::read(dir.path().join("a.txt")).unwrap(), b"old");

        let mut p = PartFile::open(dir.path(), "a.txt", 3).await.unwrap();
        p.write(b"new").await.unwrap();
        let err = p
            .finish(&expected_for(b"new"), Collision::Fail)
            .await
            .unwrap_err();
        assert!(matches!(err, WriteError::Exists(ref p) if p.ends_with("a.txt")));
        assert_eq!(std::fs::read(dir.path().join("a.txt")).unwrap(), b"old");

        let mut p = PartFile::open(dir.path(), "a.txt", 3).await.unwrap();
        assert_eq!(p.offset(), 3, "the verified part was kept");
        let path = p
            .finish(&expected_for(b"new"), Collision::Replace)
            .await
            .unwrap();
        assert_eq!(std::fs::read(path).unwrap(), b"new");
        p = PartFile::open(dir.path(), "b", 0).await.unwrap();
        p.discard().await.unwrap();
        assert_eq!(names(dir.path()), ["a (1).txt", "a (2).txt", "a.txt"]);
    }

    #[tokio::test]
    async fn a_full_disk_fails_the_transfer_and_leaves_no_final_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = PartFile::open(dir.path(), "a.bin", 1 << 20).await.unwrap();
        let full = OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .await
            .unwrap();
        p.replace_file_for_test(full);
        let chunk = vec![0u8; 64 * 1024];
        let mut err = None;
        for _ in 0..16 {
            if let Err(e) = p.write(&chunk).await {
                err = Some(e);
                break;
            }
        }
        let err = match err {
            Some(e) => e,
            None => p
                .finish(
                    &Expected {
                        size: 1 << 20,
                        md5: None,
                        sha256: None,
                    },
                    Collision::Rename,
                )
                .await
                .unwrap_err(),
        };
        let WriteError::Io { source, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(source.kind(), io::ErrorKind::StorageFull);
        assert!(!dir.path().join("a.bin").exists());
    }

    #[tokio::test]
    async fn a_full_disk_on_flush_fails_finish() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = PartFile::open(dir.path(), "a.bin", 3).await.unwrap();
        let full = OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .await
            .unwrap();
        p.replace_file_for_test(full);
        // tokio buffers the write and reports the error on the next operation.
        let r = p.write(b"abc").await;
        let err = match r {
            Err(e) => e,
            Ok(()) => p
                .finish(&expected_for(b"abc"), Collision::Rename)
                .await
                .unwrap_err(),
        };
        assert!(
            matches!(err, WriteError::Io { ref source, .. } if source.kind() == io::ErrorKind::StorageFull)
        );
        assert!(!dir.path().join("a.bin").exists());
    }

    #[tokio::test]
    async fn traversal_names_stay_in_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("in");
        std::fs::create_dir(&inner).unwrap();
        let mut p = PartFile::open(&inner, "../../escape.txt", 2).await.unwrap();
        p.write(b"hi").await.unwrap();
        let path = p
            .finish(&expected_for(b"hi"), Collision::Rename)
            .await
            .unwrap();
        assert_eq!(path, inner.join("escape.txt"));
        assert_eq!(names(dir.path()), ["in"]);
        assert!(matches!(
            PartFile::open(&inner, "..", 1).await,
            Err(WriteError::Name(crate::NameError::DotName(_)))
        ));
    }

    #[tokio::test]
    async fn a_part_longer_than_the_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.part"), b"12345").unwrap();
        let err = PartFile::open(dir.path(), "a", 3).await.unwrap_err();
        assert!(matches!(
            err,
            WriteError::PartTooLong {
                len: 5,
                size: 3,
                ..
            }
        ));
        // create() starts over.
        let p = PartFile::create(dir.path(), "a", 3).await.unwrap();
        assert_eq!(p.offset(), 0);
    }

    #[tokio::test]
    async fn an_empty_file_is_received_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        let p = PartFile::open(dir.path(), "empty", 0).await.unwrap();
        let path = p
            .finish(&expected_for(b""), Collision::Rename)
            .await
            .unwrap();
        assert_eq!(std::fs::read(path).unwrap(), b"");
        assert_eq!(names(dir.path()), ["empty"]);
    }

    #[tokio::test]
    async fn two_receivers_of_one_name_at_once_get_their_own_part_and_both_files_land_intact() {
        let dir = tempfile::tempdir().unwrap();
        let one: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
        let two: Vec<u8> = (0..300_000u32).map(|i| (i * 13 + 5) as u8).collect();
        let mut a = PartFile::open(dir.path(), "photo.jpg", one.len() as u64)
            .await
            .unwrap();
        let mut b = PartFile::open(dir.path(), "photo.jpg", two.len() as u64)
            .await
            .unwrap();
        assert_eq!(a.part_path(), dir.path().join("photo.jpg.part"));
        assert_eq!(b.part_path(), dir.path().join("photo (1).jpg.part"));
        assert_eq!(
            b.offset(),
            0,
            "the second one does not resume the first one's bytes"
        );
        // Interleaved, as two concurrent streams would arrive.
        for (x, y) in one.chunks(4096).zip(two.chunks(4096)) {
            a.write(x).await.unwrap();
            b.write(y).await.unwrap();
        }
        // The second finishes first.
        let pb = b
            .finish(&expected_for(&two), Collision::Rename)
            .await
            .unwrap();
        let pa = a
            .finish(&expected_for(&one), Collision::Rename)
            .await
            .unwrap();
        assert_eq!(pa, dir.path().join("photo.jpg"));
        assert_eq!(pb, dir.path().join("photo (1).jpg"));
        assert_eq!(std::fs::read(&pa).unwrap(), one);
        assert_eq!(std::fs::read(&pb).unwrap(), two);
        assert_eq!(names(dir.path()), ["photo (1).jpg", "photo.jpg"]);
    }

    #[tokio::test]
    async fn a_held_part_is_never_truncated_by_a_second_create() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = PartFile::create(dir.path(), "a.bin", 6).await.unwrap();
        a.write(b"abc").await.unwrap();
        let b = PartFile::create(dir.path(), "a.bin", 6).await.unwrap();
        assert_eq!(b.part_path(), dir.path().join("a (1).bin.part"));
        a.write(b"def").await.unwrap();
        let path = a
            .finish(&expected_for(b"abcdef"), Collision::Rename)
            .await
            .unwrap();
        assert_eq!(std::fs::read(path).unwrap(), b"abcdef");
        b.discard().await.unwrap();
        assert_eq!(names(dir.path()), ["a.bin"]);
    }

    #[tokio::test]
    async fn a_part_nobody_holds_is_resumed_and_a_held_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let data = b"0123456789";
        let mut a = PartFile::open(dir.path(), "a.bin", 10).await.unwrap();
        a.write(&data[..4]).await.unwrap();
        // While `a` holds a.bin.part, a second receiver starts its own part.
        let b = PartFile::open(dir.path(), "a.bin", 10).await.unwrap();
        assert_eq!(b.offset(), 0);
        assert_eq!(b.part_path(), dir.path().join("a (1).bin.part"));
        drop(b);
        // `a` is cut (dropped, as a failed transfer does): its part is free for a resume.
        drop(a);
        let mut c = PartFile::open(dir.path(), "a.bin", 10).await.unwrap();
        assert_eq!(c.part_path(), dir.path().join("a.bin.part"));
        assert_eq!(c.offset(), 4);
        c.write(&data[4..]).await.unwrap();
        let path = c
            .finish(&expected_for(data), Collision::Rename)
            .await
            .unwrap();
        assert_eq!(path, dir.path().join("a.bin"));
        assert_eq!(std::fs::read(path).unwrap(), data);
    }

    #[tokio::test]
    async fn a_numbered_part_replaces_its_own_numbered_name_not_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let a = PartFile::open(dir.path(), "r.txt", 2).await.unwrap();
        let mut b = PartFile::open(dir.path(), "r.txt", 2).await.unwrap();
        std::fs::write(dir.path().join("r.txt"), b"old").unwrap();
        b.write(b"hi").await.unwrap();
        let path = b
            .finish(&expected_for(b"hi"), Collision::Replace)
            .await
            .unwrap();
        assert_eq!(path, dir.path().join("r (1).txt"));
        assert_eq!(std::fs::read(dir.path().join("r.txt")).unwrap(), b"old");
        a.discard().await.unwrap();
    }

    #[tokio::test]
    async fn start_over_empties_the_held_part() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.bin.part"), b"stale").unwrap();
        let mut p = PartFile::open(dir.path(), "s.bin", 8).await.unwrap();
        assert_eq!(p.offset(), 5);
        p.start_over().await.unwrap();
        assert_eq!((p.offset(), p.range()), (0, None));
        p.write(b"newbytes").await.unwrap();
        let path = p
            .finish(&expected_for(b"newbytes"), Collision::Rename)
            .await
            .unwrap();
        assert_eq!(std::fs::read(path).unwrap(), b"newbytes");
        assert_eq!(names(dir.path()), ["s.bin"]);
    }

    #[tokio::test]
    async fn without_md5_sha256_is_still_verified_and_an_expected_md5_is_never_passed() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = PartFile::open(dir.path(), "n.bin", 3).await.unwrap();
        p.skip_md5();
        p.write(b"abc").await.unwrap();
        assert_eq!(p.digests().await.unwrap().md5, None);
        let mut e = expected_for(b"abc");
        e.md5 = None;
        let path = p.finish(&e, Collision::Rename).await.unwrap();
        assert_eq!(std::fs::read(path).unwrap(), b"abc");

        let mut p = PartFile::open(dir.path(), "m.bin", 3).await.unwrap();
        p.skip_md5();
        p.write(b"abc").await.unwrap();
        let err = p
            .finish(&expected_for(b"abc"), Collision::Rename)
            .await
            .unwrap_err();
        assert!(matches!(err, WriteError::Io { op: "verify", .. }), "{err}");
        assert!(!dir.path().join("m.bin").exists());
        assert!(
            dir.path().join("m.bin.part").exists(),
            "the content is not known bad"
        );
    }

    #[test]
    fn numbered_names_keep_the_extension() {
        assert_eq!(numbered("a.tar.gz", 2), "a.tar (2).gz");
        assert_eq!(numbered("README", 1), "README (1)");
        assert_eq!(numbered(".x", 1), ".x (1)");
    }
}
