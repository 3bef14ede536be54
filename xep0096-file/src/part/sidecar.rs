//! The sidecar beside a `.part`: `<part>.xft`, created with the part (`create_new`, mode
//! `0600`), removed with it. It says whose file the part holds and how much of it is known
//! to be on disk:
//!
//! ```text
//! xft-part 1
//! peer alice@example.org
//! name movie.mkv
//! size 734003200
//! date 2026-11-30T10:00:00Z
//! md5 9e107d9d372bb6826bd81d3542a419d6
//! verified 00000000000104857600
//! ```
//!
//! A part whose offer carried a strong hash ([`PartKey::hash`]) has a sidecar of version 2:
//! `xft-part 2`, and a `hash sha-256:<hex>` line after `md5`. Version 1 is still written for
//! every other part, so parts of earlier versions resume as before.
//!
//! `-` stands for a value the offer did not have. `verified` is fixed-width so that each
//! update rewrites the file in place (one small write, the same length): it is written only
//! after the part's bytes up to it were synced, so after a crash the part is cut back to it.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::PartKey;

const MAGIC: &str = "xft-part 1";
/// The sidecar of a part keyed by a strong hash.
const MAGIC_2: &str = "xft-part 2";
/// The most a sidecar may hold; anything longer is not ours.
const MAX_LEN: u64 = 4096;

/// `<part>.xft`.
pub(super) fn sidecar_path(part: &Path) -> PathBuf {
    let mut s = part.as_os_str().to_owned();
    s.push(".xft");
    PathBuf::from(s)
}

/// What a sidecar records: the offer's identity (with the safe name) and the verified
/// length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Meta {
    pub(super) peer: Option<String>,
    pub(super) name: String,
    pub(super) size: Option<u64>,
    pub(super) date: Option<String>,
    pub(super) md5: Option<[u8; 16]>,
    pub(super) hash: Option<String>,
    pub(super) verified: u64,
}

impl Meta {
    /// The record for `key`, stored under the safe `name`, nothing verified yet.
    pub(super) fn new(key: &PartKey, name: &str) -> Self {
        Self {
            peer: key.peer.clone().filter(|p| plain(p)),
            name: name.to_owned(),
            size: key.size,
            date: key.usable_date().map(str::to_owned),
            md5: key.md5,
            hash: key.usable_hash().map(str::to_owned),
            verified: 0,
        }
    }

    /// Whether this part holds the file `key` offers (the same peer, name, size, date and
    /// hash), and `key` identifies it beyond name and size (see [`PartKey::identifies`]).
    pub(super) fn resumable_for(&self, key: &PartKey, name: &str) -> bool {
        key.identifies() && {
            let want = Self::new(key, name);
            Self {
                verified: self.verified,
                ..want
            } == *self
        }
    }

    pub(super) fn encode(&self) -> String {
        fn opt(v: Option<&str>) -> &str {
            v.unwrap_or("-")
        }
        let (magic, hash) = match &self.hash {
            Some(h) => (MAGIC_2, format!("hash {h}\n")),
            None => (MAGIC, String::new()),
        };
        format!(
            "{magic}\npeer {}\nname {}\nsize {}\ndate {}\nmd5 {}\n{hash}verified {:020}\n",
            opt(self.peer.as_deref()),
            self.name,
            self.size.map_or_else(|| "-".to_owned(), |s| s.to_string()),
            opt(self.date.as_deref()),
            self.md5.map_or_else(|| "-".to_owned(), hex::encode),
            self.verified,
        )
    }

    /// Parses a sidecar; `None` for anything not written by [`encode`](Self::encode).
    pub(super) fn decode(text: &str) -> Option<Self> {
        let mut lines = text.strip_suffix('\n')?.split('\n');
        let v2 = match lines.next()? {
            MAGIC => false,
            MAGIC_2 => true,
            _ => return None,
        };
        let mut field = |key: &str| -> Option<Option<String>> {
            let v = lines.next()?.strip_prefix(key)?.strip_prefix(' ')?;
            Some((v != "-").then(|| v.to_owned()))
        };
        let peer = field("peer")?;
        let name = field("name")??;
        let size = match field("size")? {
            Some(s) => Some(s.parse().ok().filter(|_| digits(&s))?),
            None => None,
        };
        let date = field("date")?;
        let md5 = match field("md5")? {
            Some(h) => {
                let mut raw = [0u8; 16];
                hex::decode_to_slice(&h, &mut raw).ok()?;
                Some(raw)
            }
            None => None,
        };
        let hash = if v2 {
            let h = field("hash")??;
            let key = PartKey {
                hash: Some(h),
                ..PartKey::default()
            };
            Some(key.usable_hash()?.to_owned())
        } else {
            None
        };
        let verified = field("verified")??;
        if verified.len() != 20 || !digits(&verified) {
            return None;
        }
        let verified = verified.parse().ok()?;
        if lines.next().is_some() || size.is_some_and(|s| verified > s) {
            return None;
        }
        Some(Self {
            peer,
            name,
            size,
            date,
            md5,
            hash,
            verified,
        })
    }

    /// Reads the sidecar `file` (at most [`MAX_LEN`] bytes).
    pub(super) fn read(file: &mut File) -> io::Result<Option<Self>> {
        let mut text = String::new();
        file.seek(SeekFrom::Start(0))?;
        if file.take(MAX_LEN + 1).read_to_string(&mut text).is_err() {
            return Ok(None);
        }
        if text.len() as u64 > MAX_LEN {
            return Ok(None);
        }
        Ok(Self::decode(&text))
    }

    /// Writes the whole record at the start of `file`, in place, and syncs it. The record
    /// of one part always has the same length (only `verified` changes, fixed-width), so
    /// the write never leaves an old tail behind.
    pub(super) fn write(&self, file: &mut File) -> io::Result<()> {
        let text = self.encode();
        file.seek(SeekFrom::Start(0))?;
        file.write_all(text.as_bytes())?;
        file.set_len(text.len() as u64)?;
        file.sync_data()
    }
}

/// No line breaks or other control characters (they would break the line format).
pub(super) fn plain(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_anything_else_is_not_ours() {
        let key = PartKey::new("x.bin", 10)
            .with_peer("a@example.org")
            .with_date("2026-01-01T00:00:00Z")
            .with_md5([7; 16]);
        let mut m = Meta::new(&key, "x.bin");
        m.verified = 4;
        let text = m.encode();
        assert_eq!(Meta::decode(&text), Some(m.clone()));
        assert!(m.resumable_for(&key, "x.bin"));
        assert!(!m.resumable_for(&PartKey::new("x.bin", 10), "x.bin"));
        assert!(!m.resumable_for(&key.with_date("2026-01-02T00:00:00Z"), "x.bin"));
        for bad in [
            "",
            "hello\n",
            &text.replace("verified 0000", "verified 00"),
            &text.replace("size 10", "size +10"),
            &text.replace(
                "verified 00000000000000000004",
                "verified 00000000000000000011",
            ),
            &format!("{text}extra\n"),
        ] {
            assert_eq!(Meta::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_strong_hash_identifies_a_dateless_part_and_two_hashes_never_join() {
        let v1 = PartKey::new("x.bin", 10)
            .with_peer("a@example.org")
            .with_hash("sha-256", &[1; 32]);
        let v2 = PartKey::new("x.bin", 10)
            .with_peer("a@example.org")
            .with_hash("sha-256", &[2; 32]);
        let mut m = Meta::new(&v1, "x.bin");
        m.verified = 4;
        let text = m.encode();
        assert!(text.starts_with("xft-part 2\n"), "{text}");
        assert_eq!(Meta::decode(&text), Some(m.clone()));
        assert!(m.resumable_for(&v1, "x.bin"));
        assert!(!m.resumable_for(&v2, "x.bin"));
        assert!(!m.resumable_for(
            &PartKey::new("x.bin", 10).with_peer("a@example.org"),
            "x.bin"
        ));
        // Without a hash the record stays version 1, as earlier versions wrote it.
        let plain = Meta::new(&PartKey::new("x.bin", 10).with_date("d"), "x.bin").encode();
        assert!(plain.starts_with("xft-part 1\n") && !plain.contains("hash"));
        for bad in [
            text.replace("hash sha-256:", "hash sha-256:zz"),
            text.replace("hash sha-256:", "hash :"),
            text.replace("xft-part 2", "xft-part 1"),
        ] {
            assert_eq!(Meta::decode(&bad), None, "{bad:?}");
        }
        // A hash that is no `algo:hex` identifies nothing.
        let mut odd = PartKey::new("x.bin", 10);
        odd.hash = Some("sha-256 zz\nverified".into());
        assert!(!odd.identifies());
    }
}
