//! The receiving side's file writer: `<name>.part`, counted and hashed, renamed into place
//! only once size and hash check out.

use std::io;
use std::path::{Path, PathBuf};

use tokio::fs::{self, OpenOptions};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::error::WriteError;
use crate::hash::{Digests, Hasher};
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

/// The most `name (n).ext` candidates [`Collision::Rename`] tries.
pub const MAX_RENAME_ATTEMPTS: u32 = 999;

/// A file being received into `<dir>/<safe name>.part`.
///
/// * Every byte is counted and hashed (MD5 and SHA-256) as it is written.
/// * More bytes than the offered size are refused ([`WriteError::TooManyBytes`]).
/// * [`finish`](Self::finish) flushes and syncs, checks size and hashes, then moves the file
///   to its final name without overwriting (see [`Collision`]). On any failure there is
///   never a file under the final name.
/// * Resume: [`open`](Self::open) keeps an existing `.part`, re-reads it to seed the hasher
///   and reports its length as [`offset`](Self::offset); ask the sender for
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
/// let expected = Expected { size: 11, md5: Some(part.digests().md5), sha256: None };
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
    part_path: PathBuf,
    file: fs::File,
    size: u64,
    written: u64,
    hasher: Hasher,
    poisoned: bool,
}

impl PartFile {
    /// Starts receiving `peer_name` (made safe with [`safe_file_name`]) of `size` bytes
    /// into `dir`, resuming from an existing `.part` if there is one.
    pub async fn open(
        dir: impl AsRef<Path>,
        peer_name: &str,
        size: u64,
    ) -> Result<Self, WriteError> {
        Self::open_inner(dir.as_ref(), peer_name, size, false).await
    }

    /// Like [`open`](Self::open) but discards any existing `.part` and starts at 0.
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
        let part_path = dir.join(format!("{name}.part"));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(truncate)
            .open(&part_path)
            .await
            .map_err(|e| WriteError::io("open", &part_path, e))?;
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
        let mut hasher = Hasher::new();
        if len > 0 {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = file
                    .read(&mut buf)
                    .await
                    .map_err(|e| WriteError::io("read", &part_path, e))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            if hasher.len() != len {
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
        file.seek(io::SeekFrom::Start(len))
            .await
            .map_err(|e| WriteError::io("seek", &part_path, e))?;
        Ok(Self {
            dir: dir.to_owned(),
            name,
            part_path,
            file,
            size,
            written: len,
            hasher,
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

    /// The `.part` path.
    pub fn part_path(&self) -> &Path {
        &self.part_path
    }

    /// Writes the next bytes. Refuses (writing nothing) if they would exceed the offered size.
    pub async fn write(&mut self, buf: &[u8]) -> Result<(), WriteError> {
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
        if let Err(e) = self.file.write_all(buf).await {
            self.poisoned = true;
            return Err(WriteError::io("write", &self.part_path, e));
        }
        self.hasher.update(buf);
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
        let digests = self.hasher.clone().finish();
        if let Err(e) = check(&digests, expected) {
            let _ = fs::remove_file(&self.part_path).await;
            return Err(e);
        }
        drop(self.file);
        place(&self.dir, &self.name, &self.part_path, collision).await
    }

    /// The digests of everything written so far.
    pub fn digests(&self) -> Digests {
        self.hasher.clone().finish()
    }

    /// Deletes the `.part` file.
    pub async fn discard(self) -> Result<(), WriteError> {
        drop(self.file);
        fs::remove_file(&self.part_path)
            .await
            .map_err(|e| WriteError::io("remove", &self.part_path, e))
    }

    #[cfg(test)]
    pub(crate) fn replace_file_for_test(&mut self, file: fs::File) {
        self.file = file;
    }
}

fn poisoned(path: &Path) -> WriteError {
    WriteError::io(
        "write",
        path,
        io::Error::other("an earlier write failed; the partial file must be reopened"),
    )
}

fn check(d: &Digests, expected: &Expected) -> Result<(), WriteError> {
    if let Some(md5) = expected.md5
        && md5 != d.md5
    {
        return Err(WriteError::HashMismatch {
            algorithm: "md5",
            expected: hex::encode(md5),
            actual: d.md5_hex(),
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

/// Moves `part` to `dir/name` under the collision policy. A hard link is the no-clobber
/// primitive (it fails if the target exists, atomically); on a file system without hard
/// links it falls back to check-then-rename, which can race with another writer.
async fn place(
    dir: &Path,
    name: &str,
    part: &Path,
    collision: Collision,
) -> Result<PathBuf, WriteError> {
    if collision == Collision::Replace {
        let target = dir.join(name);
        fs::rename(part, &target)
            .await
            .map_err(|e| WriteError::io("rename", &target, e))?;
        return Ok(target);
    }
    let attempts = if collision == Collision::Rename {
        MAX_RENAME_ATTEMPTS
    } else {
        0
    };
    for n in 0..=attempts {
        let candidate = if n == 0 {
            name.to_owned()
        } else {
            numbered(name, n)
        };
        let target = dir.join(&candidate);
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
    Err(WriteError::NoFreeName(dir.join(name), attempts))
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

    #[test]
    fn numbered_names_keep_the_extension() {
        assert_eq!(numbered("a.tar.gz", 2), "a.tar (2).gz");
        assert_eq!(numbered("README", 1), "README (1)");
        assert_eq!(numbered(".x", 1), ".x (1)");
    }
}
