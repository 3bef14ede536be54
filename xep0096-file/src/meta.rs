//! File metadata for an offer, from a path.

use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use xmpp_parsers::date::DateTime;

use crate::hash::Digests;
use crate::payload::File;

/// What an offer says about a local file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileMeta {
    /// The file's name (its last path component, lossily UTF-8).
    pub name: String,
    /// The size in bytes.
    pub size: u64,
    /// The modification time, if the platform reports one.
    pub date: Option<DateTime>,
    /// A MIME type guessed from the extension (see [`guess_mime_type`]).
    pub mime_type: &'static str,
}

impl FileMeta {
    /// Reads name, size, mtime and a MIME guess. Does not read the content (see
    /// [`Digests::of_path`] for the hash an offer should carry).
    pub fn from_path(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let md = std::fs::metadata(path)?;
        if !md.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", path.display()),
            ));
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
        Ok(Self {
            mime_type: guess_mime_type(&name),
            date: md.modified().ok().and_then(xep0082_date),
            size: md.len(),
            name,
        })
    }

    /// The `<file/>` for this file, with `digests`' MD5 as the `hash` if given.
    pub fn to_file(&self, digests: Option<&Digests>) -> File {
        let mut f = File::new(self.name.clone(), self.size);
        if let Some(d) = &self.date {
            f = f.with_date(d);
        }
        if let Some(d) = digests {
            f = f.with_md5(d.md5);
        }
        f
    }
}

/// `t` as an XEP-0082 DateTime in UTC with millisecond precision (`2009-07-14T04:52:25.650Z`,
/// as QXmpp writes it). `None` before 1970.
pub fn xep0082_date(t: SystemTime) -> Option<DateTime> {
    let d = t.duration_since(UNIX_EPOCH).ok()?;
    let secs = d.as_secs();
    let days = i64::try_from(secs / 86_400).ok()?;
    let rem = secs % 86_400;
    let (y, m, dd) = civil_from_days(days);
    let s = format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    );
    s.parse().ok()
}

/// Howard Hinnant's days-to-civil: days since 1970-01-01 to (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A MIME type from a file name's extension, from a small built-in table of common types
/// (documents, images, audio, video, archives, text); `application/octet-stream` for
/// anything else. The type is advisory: SI says so, and receivers must not trust it.
pub fn guess_mime_type(name: &str) -> &'static str {
    let ext = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
        _ => return "application/octet-stream",
    };
    match ext.as_str() {
        "txt" | "log" => "text/plain",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "csv" => "text/csv",
        "md" => "text/markdown",
        "xml" => "application/xml",
        "json" => "application/json",
        "js" => "text/javascript",
        "pdf" => "application/pdf",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "ppt" => "application/vnd.ms-powerpoint",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "odt" => "application/vnd.oasis.opendocument.text",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "bmp" => "image/bmp",
        "ico" => "image/vnd.microsoft.icon",
        "tif" | "tiff" => "image/tiff",
        "mp3" => "audio/mpeg",
        "ogg" | "oga" => "audio/ogg",
        "opus" => "audio/opus",
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "m4a" => "audio/mp4",
        "mp4" | "m4v" => "video/mp4",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "avi" => "video/x-msvideo",
        "mov" => "video/quicktime",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "bz2" => "application/x-bzip2",
        "xz" => "application/x-xz",
        "zst" => "application/zstd",
        "7z" => "application/x-7z-compressed",
        "tar" => "application/x-tar",
        "rar" => "application/vnd.rar",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_are_xep0082_utc_with_milliseconds() {
        let t = UNIX_EPOCH + Duration::from_millis(1_247_547_145_650);
        let d = xep0082_date(t).unwrap();
        assert_eq!(d, "2009-07-14T04:52:25.650Z".parse().unwrap());
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(
            xep0082_date(t).unwrap(),
            "2000-02-29T00:00:00Z".parse().unwrap()
        );
    }

    #[test]
    fn mime_types_come_from_the_extension() {
        assert_eq!(guess_mime_type("File (2).pdf"), "application/pdf");
        assert_eq!(guess_mime_type("IMG.JPG"), "image/jpeg");
        assert_eq!(guess_mime_type("RunSpark.lnk"), "application/octet-stream");
        assert_eq!(guess_mime_type(".png"), "application/octet-stream");
        assert_eq!(guess_mime_type("noext"), "application/octet-stream");
    }

    #[test]
    fn from_path_reads_name_size_date_and_type() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("notes.txt");
        std::fs::write(&p, b"hello").unwrap();
        let m = FileMeta::from_path(&p).unwrap();
        assert_eq!(m.name, "notes.txt");
        assert_eq!(m.size, 5);
        assert_eq!(m.mime_type, "text/plain");
        assert!(m.date.is_some());
        let d = Digests::of_path(&p).unwrap();
        let f = m.to_file(Some(&d));
        assert_eq!(f.hash.as_deref(), Some("5d41402abc4b2a76b9719d911017c592"));
        assert!(FileMeta::from_path(dir.path()).is_err());
    }
}
