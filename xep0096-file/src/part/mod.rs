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

mod naming;
#[cfg(test)]
mod tests;
mod verify;

use naming::{candidate, lock_free_part, part_name};
use verify::{check, place};

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
/// let expected = Expected { size: Some(11), md5: Some(md5), sha256: None };
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
    /// `None`: the offer gave no size (nothing is resumed, any length is taken).
    size: Option<u64>,
    written: u64,
    lanes: HashLanes,
    poisoned: bool,
}

impl PartFile {
    /// Starts receiving `peer_name` (made safe with [`safe_file_name`]) of `size` bytes
    /// into `dir`, resuming from an existing `.part` if there is one nobody holds. A size of
    /// `None` (an offer without one) never resumes: without a size nobody can tell a
    /// `.part` of this file from another.
    pub async fn open(
        dir: impl AsRef<Path>,
        peer_name: &str,
        size: impl Into<Option<u64>>,
    ) -> Result<Self, WriteError> {
        let size = size.into();
        Self::open_inner(dir.as_ref(), peer_name, size, size.is_none()).await
    }

    /// Like [`open`](Self::open) but discards the content of the `.part` it takes and
    /// starts at 0.
    pub async fn create(
        dir: impl AsRef<Path>,
        peer_name: &str,
        size: impl Into<Option<u64>>,
    ) -> Result<Self, WriteError> {
        Self::open_inner(dir.as_ref(), peer_name, size.into(), true).await
    }

    /// Starts receiving what `offer` offers into `dir`: resumes an existing `.part` when the
    /// sender announced ranged transfers (then ask for [`range`](Self::range) in the
    /// answer), and starts over otherwise (the sender will send the whole file).
    pub async fn for_offer(dir: impl AsRef<Path>, offer: &FileOffer) -> Result<Self, WriteError> {
        let truncate = !offer.file.supports_ranges() || offer.file.size.is_none();
        Self::open_inner(dir.as_ref(), &offer.file.name, offer.file.size, truncate).await
    }

    async fn open_inner(
        dir: &Path,
        peer_name: &str,
        size: Option<u64>,
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
        if let Some(size) = size
            && len > size
        {
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

    /// The offered size (`None`: the offer had none).
    pub fn size(&self) -> Option<u64> {
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
        if let Some(size) = self.size
            && received > size
        {
            return Err(WriteError::TooManyBytes {
                expected: size,
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
        for size in [expected.size, self.size].into_iter().flatten() {
            if self.written != size {
                return Err(WriteError::SizeMismatch {
                    expected: size,
                    received: self.written,
                });
            }
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
