//! The receiving side's file writer: `<name>.part`, created by us and held exclusively,
//! counted, hashed and synced as it grows, renamed into place only once size and hash
//! check out.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::fs;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::task::JoinHandle;

use crate::error::WriteError;
use crate::hash::LaneDigest;
use crate::lanes::{HashLanes, LaneDigests, LaneGone};
use crate::name::safe_file_name;
use crate::offer::{Expected, FileOffer};
use crate::payload::Range;

mod checkpoint;
mod fsx;
mod key;
mod naming;
mod sidecar;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_safety;
mod verify;

use checkpoint::{Checkpoints, Syncer};
pub use fsx::available_space;
pub use key::PartKey;
use naming::{candidate, part_name, take_part};
use sidecar::{Meta, sidecar_path};
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

/// A checkpoint (the part synced, its verified length recorded) at least every this many
/// bytes ...
pub const CHECKPOINT_BYTES: u64 = 64 * 1024 * 1024;
/// ... and at least this often while bytes arrive.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(2);

/// A file being received into `<dir>/<safe name>.part`.
///
/// * **Only files we created.** The `.part` is created with `create_new` (`O_EXCL`: never
///   through a symlink, never into an existing file), mode `0600`, with a sidecar beside
///   it, `<part>.xft` (also `create_new`, `0600`), that records whose file it holds: the
///   peer's bare JID, the (safe) name, size, date and MD5 the offer gave, and the
///   *verified length*, the bytes known to be synced to disk. A `.part` name that is taken
///   by anything else (a browser's `movie.mkv.part`, a symlink, a hard link, another
///   user's file, a part without a readable sidecar) is never opened for writing: the next
///   name, `name (1).ext.part`, is used, and the final name is still `name.ext` when free.
///   An existing part is reopened only if it is a regular file with one link, owned by us,
///   opened with `O_NOFOLLOW` and checked to be the file `lstat` saw.
/// * **Held exclusively** (an advisory lock, `flock` on Unix) while this value lives: a
///   second receiver of the same name gets `name (1).ext.part` (then `(2)`, …) and never
///   writes into the first one's file; its final name search starts at `name (1).ext`.
/// * **Resume** ([`open`](Self::open) with a [`PartKey`]): a part of ours nobody holds is
///   resumed only when its sidecar matches the offer (peer, name, size, date, hash) *and*
///   the offer identifies the file beyond name and size (a `hash` or a `date`,
///   [`PartKey::identifies`]): two versions of a file with the same name and size are
///   otherwise indistinguishable, and a prefix of one must never be joined to the tail of
///   the other. The part is cut back to its verified length (a crash's unsynced tail is
///   dropped) and re-read to seed the digests; ask the sender for [`range`](Self::range).
///   A part of ours that does not match is started over (emptied).
/// * **Synced as it grows**: every [`CHECKPOINT_BYTES`] or [`CHECKPOINT_INTERVAL`] the part
///   is synced and the verified length recorded, on a blocking thread beside the writes
///   (the writes do not wait for it); [`checkpoint`](Self::checkpoint) does it now.
/// * Every byte is counted and hashed (MD5 and SHA-256) as it is written; the digests run
///   on threads of their own ([`HashLanes`]) beside the disk writes, with bounded queues.
///   MD5 can be left out when the sender offered none ([`skip_md5`](Self::skip_md5)).
/// * More bytes than the offered size are refused ([`WriteError::TooManyBytes`]).
/// * [`finish`](Self::finish): `fsync` of the file, size and hash checked, the mode set,
///   then a rename that never overwrites (a hard link and an unlink of the part, or
///   `renameat2(NOREPLACE)`; see [`Collision`]), the sidecar removed, `fsync` of the
///   directory. On any failure there is never a file under the final name.
///
/// **Permissions**: the `.part` and its sidecar are `0600` (only you) while receiving; the
/// finished file gets the mode any new file of yours gets, `0666 & !umask` (`0644` with the
/// usual umask `022`), read from `/proc/self/status` and never changed; where the umask
/// cannot be read without changing it (not Linux) the file stays `0600`.
///
/// What is left on failure: after a write error or a short stream the `.part` and its
/// sidecar stay (a later [`open`](Self::open) of the same offer resumes from them); after a
/// hash mismatch both are deleted (the content is wrong); [`discard`](Self::discard)
/// deletes them explicitly.
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
    /// Where the final name search starts (see `naming::Taken::final_slot`).
    final_slot: u32,
    part_path: PathBuf,
    sidecar_path: PathBuf,
    file: fs::File,
    /// `None`: the offer gave no size (nothing is resumed, any length is taken).
    size: Option<u64>,
    written: u64,
    lanes: HashLanes,
    poisoned: bool,
    sync: Checkpoints,
}

impl PartFile {
    /// Starts receiving the file `key` describes into `dir` (its name made safe with
    /// [`safe_file_name`]), resuming a `.part` of ours for the same file if there is one
    /// nobody holds and `key` [identifies](PartKey::identifies) the file; otherwise a fresh
    /// part (see the type's docs).
    pub async fn open(dir: impl AsRef<Path>, key: &PartKey) -> Result<Self, WriteError> {
        Self::open_inner(dir.as_ref(), key.clone(), true).await
    }

    /// A fresh `.part` for `peer_name` of `size` bytes, starting at 0: never resumes.
    pub async fn create(
        dir: impl AsRef<Path>,
        peer_name: &str,
        size: impl Into<Option<u64>>,
    ) -> Result<Self, WriteError> {
        Self::open_inner(dir.as_ref(), PartKey::new(peer_name, size), false).await
    }

    /// Starts receiving what `offer` offers into `dir` ([`PartKey::of_offer`]): resumes a
    /// part of ours for the same file when the sender announced ranged transfers (then ask
    /// for [`range`](Self::range) in the answer), and starts over otherwise (the sender
    /// will send the whole file).
    pub async fn for_offer(dir: impl AsRef<Path>, offer: &FileOffer) -> Result<Self, WriteError> {
        let resume = offer.file.supports_ranges();
        Self::open_inner(dir.as_ref(), PartKey::of_offer(offer), resume).await
    }

    /// Like [`open`](Self::open) (`resume`) or a fresh part under the whole `key`
    /// (recorded for a later resume) when not, computing `digests` beside MD5 and SHA-256
    /// from the first byte (a resumed part's bytes included; see
    /// [`HashLanes::add_digest`]). Their values: [`extra_digests`](Self::extra_digests).
    pub async fn open_with(
        dir: impl AsRef<Path>,
        key: &PartKey,
        resume: bool,
        digests: Vec<Box<dyn LaneDigest>>,
    ) -> Result<Self, WriteError> {
        Self::open_hashing(dir.as_ref(), key.clone(), resume, digests).await
    }

    async fn open_inner(dir: &Path, key: PartKey, resume: bool) -> Result<Self, WriteError> {
        Self::open_hashing(dir, key, resume, Vec::new()).await
    }

    async fn open_hashing(
        dir: &Path,
        key: PartKey,
        resume: bool,
        digests: Vec<Box<dyn LaneDigest>>,
    ) -> Result<Self, WriteError> {
        let name = safe_file_name(&key.name)?;
        let taken = {
            let (dir, name) = (dir.to_owned(), name.clone());
            let first = dir.join(part_name(&name, 0));
            let key = key.clone();
            tokio::task::spawn_blocking(move || take_part(&dir, &name, &key, resume))
                .await
                .map_err(|e| WriteError::io("open", first, io::Error::other(e)))??
        };
        let part_path = taken.path;
        let len = taken.meta.verified;
        let second = taken
            .file
            .try_clone()
            .map_err(|e| WriteError::io("open", &part_path, e))?;
        let mut file = fs::File::from_std(taken.file);
        let mut lanes = HashLanes::new();
        for d in digests {
            // A fresh `HashLanes` takes every digest.
            let _ = lanes.add_digest(d);
        }
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
            file.seek(io::SeekFrom::Start(len))
                .await
                .map_err(|e| WriteError::io("seek", &part_path, e))?;
        }
        Ok(Self {
            dir: dir.to_owned(),
            name,
            final_slot: taken.final_slot,
            sidecar_path: sidecar_path(&part_path),
            part_path,
            file,
            size: key.size,
            written: len,
            lanes,
            poisoned: false,
            sync: Checkpoints {
                idle: Some(Box::new(Syncer {
                    part: second,
                    sidecar: taken.sidecar,
                    meta: taken.meta,
                })),
                pending: None,
                mark: len,
                at: Instant::now(),
                every: CHECKPOINT_BYTES,
            },
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

    /// The `.part` path: `<name>.part`, or `<name (n).ext>.part` when that name was held by
    /// another receiver or taken by a file that is not ours.
    pub fn part_path(&self) -> &Path {
        &self.part_path
    }

    /// The sidecar's path: [`part_path`](Self::part_path) + `.xft`.
    pub fn sidecar_path(&self) -> &Path {
        &self.sidecar_path
    }

    /// Empties the `.part` (keeping it held) and starts again at 0: for a sender that
    /// cannot resume.
    pub async fn start_over(&mut self) -> Result<(), WriteError> {
        // A checkpoint still running must not record a length after the truncation.
        self.collect().await?;
        self.file
            .set_len(0)
            .await
            .map_err(|e| WriteError::io("truncate", &self.part_path, e))?;
        self.file
            .seek(io::SeekFrom::Start(0))
            .await
            .map_err(|e| WriteError::io("seek", &self.part_path, e))?;
        self.lanes = self.lanes.restarted();
        self.written = 0;
        self.poisoned = false;
        self.commit_now().await
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
        self.maybe_checkpoint().await
    }

    /// Syncs, verifies against `expected`, and moves the file to its final name in the
    /// directory (`fsync` of the file, rename without overwriting, `fsync` of the
    /// directory). Returns the final path.
    pub async fn finish(
        mut self,
        expected: &Expected,
        collision: Collision,
    ) -> Result<PathBuf, WriteError> {
        // Synced and recorded first: a short stream leaves a part that resumes.
        self.checkpoint().await?;
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
            let _ = self.remove_files().await;
            return Err(e);
        }
        let Some(s) = self.sync.idle.take() else {
            return Err(poisoned(&self.part_path));
        };
        // The file stays open (and locked) until the `.part` name is gone.
        let placed = place(
            &self.dir,
            &self.name,
            self.final_slot,
            &self.part_path,
            s,
            collision,
        )
        .await;
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

    /// The digests given to [`open_with`](Self::open_with), of everything written so far,
    /// in the order given.
    pub async fn extra_digests(&self) -> Result<Vec<Vec<u8>>, WriteError> {
        self.lanes
            .extra_digests()
            .await
            .map_err(|e| lane_error(&self.part_path, e))
    }

    /// Stops computing MD5: for an offer without a `hash`, where nobody checks it.
    /// [`finish`](Self::finish) with an expected MD5 then fails instead of passing unchecked.
    pub fn skip_md5(&mut self) {
        self.lanes.skip_md5();
    }

    /// Deletes the `.part` file and its sidecar.
    pub async fn discard(mut self) -> Result<(), WriteError> {
        // Removed before the file (and its lock) is let go: nobody can take it over between.
        let removed = self.remove_files().await;
        drop(self.file);
        removed
    }

    /// Removes the part and the sidecar (each only while its name is still ours).
    async fn remove_files(&mut self) -> Result<(), WriteError> {
        let _ = self.collect().await;
        let Some(s) = self.sync.idle.take() else {
            return Err(poisoned(&self.part_path));
        };
        let (part, side) = (self.part_path.clone(), self.sidecar_path.clone());
        tokio::task::spawn_blocking(move || {
            fsx::remove_if_same(&part, &s.part).map_err(|e| WriteError::io("remove", &part, e))?;
            fsx::remove_if_same(&side, &s.sidecar).map_err(|e| WriteError::io("remove", &side, e))
        })
        .await
        .map_err(|e| WriteError::io("remove", &self.part_path, io::Error::other(e)))?
    }

    #[cfg(test)]
    pub(crate) fn checkpoint_every_for_test(&mut self, bytes: u64) {
        self.sync.every = bytes;
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
