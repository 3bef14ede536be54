//! What identifies an offered file for a resume: [`PartKey`].

use crate::offer::FileOffer;

/// The offered file a `.part` holds: who offered it and what the offer said. A part is
/// resumed only for an equal key that [identifies](Self::identifies) the file.
///
/// ```
/// use xep0096_file::PartKey;
///
/// let name_and_size = PartKey::new("movie.mkv", 1_000);
/// assert!(!name_and_size.identifies(), "two versions of equal size look alike");
/// let dated = name_and_size.with_peer("alice@example.org").with_date("2026-11-30T10:00:00Z");
/// assert!(dated.identifies());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PartKey {
    /// The sender's bare JID (a resume from another account is another file).
    pub peer: Option<String>,
    /// The offered name, as the peer sent it (made safe when the part is opened).
    pub name: String,
    /// The offered size.
    pub size: Option<u64>,
    /// The offered `date` (XEP-0082 text, compared as text).
    pub date: Option<String>,
    /// The offered MD5 (`hash`).
    pub md5: Option<[u8; 16]>,
    /// A strong hash of the file the offer carried (XEP-0300, e.g. Jingle's `<hash/>`),
    /// as `algo:hex` ([`with_hash`](Self::with_hash)). The caller decides which algorithms
    /// are strong enough to tell two versions apart (not MD5, not SHA-1).
    pub hash: Option<String>,
}

impl PartKey {
    /// A key of only a name and a size (which never identifies a file for a resume).
    pub fn new(name: impl Into<String>, size: impl Into<Option<u64>>) -> Self {
        Self {
            name: name.into(),
            size: size.into(),
            ..Self::default()
        }
    }

    /// The key of `offer`: the sender's bare JID, name, size, date, MD5.
    pub fn of_offer(offer: &FileOffer) -> Self {
        let f = &offer.file;
        Self {
            peer: offer.offer.from.as_ref().map(|j| j.to_bare().to_string()),
            name: f.name.clone(),
            size: f.size,
            date: f.date.clone(),
            md5: f.md5().ok().flatten(),
            hash: None,
        }
    }

    /// Sets the sender (its bare JID).
    #[must_use]
    pub fn with_peer(mut self, peer: impl Into<String>) -> Self {
        self.peer = Some(peer.into());
        self
    }

    /// Sets the date.
    #[must_use]
    pub fn with_date(mut self, date: impl Into<String>) -> Self {
        self.date = Some(date.into());
        self
    }

    /// Sets the MD5.
    #[must_use]
    pub fn with_md5(mut self, md5: [u8; 16]) -> Self {
        self.md5 = Some(md5);
        self
    }

    /// Sets a strong hash of the file: `algo` is its XEP-0300 name (`sha-256`,
    /// `blake2b-512`, …), `digest` the raw value. An offer with such a hash identifies the
    /// file without a date: v1 and v2 of one name and size have different hashes.
    ///
    /// ```
    /// use xep0096_file::PartKey;
    ///
    /// let k = PartKey::new("movie.mkv", 1_000).with_hash("sha-256", &[0xab; 32]);
    /// assert!(k.identifies());
    /// assert_eq!(k.hash.as_deref(), Some(format!("sha-256:{}", "ab".repeat(32)).as_str()));
    /// ```
    #[must_use]
    pub fn with_hash(mut self, algo: &str, digest: &[u8]) -> Self {
        self.hash = Some(format!("{algo}:{}", hex::encode(digest)));
        self
    }

    /// Whether this key tells one version of a file from another: a size, and a hash (the
    /// MD5 or a strong one) or a date. The rule for a resume: without either, v1 and v2 of a file with equal name
    /// and size cannot be told apart, so a part is never resumed (the transfer starts over)
    /// rather than risk v1's prefix joined to v2's tail under the final name (most senders
    /// offer no hash, and then nothing would catch it).
    pub fn identifies(&self) -> bool {
        self.size.is_some()
            && (self.md5.is_some() || self.usable_date().is_some() || self.usable_hash().is_some())
    }

    /// The hash, when it is something to compare (`algo:hex`, nothing else).
    pub(super) fn usable_hash(&self) -> Option<&str> {
        self.hash.as_deref().filter(|h| {
            h.split_once(':').is_some_and(|(a, v)| {
                !a.is_empty()
                    && a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !v.is_empty()
                    && v.bytes().all(|b| b.is_ascii_hexdigit())
            })
        })
    }

    /// The date, when it is something to compare (not blank, no control characters).
    pub(super) fn usable_date(&self) -> Option<&str> {
        self.date
            .as_deref()
            .filter(|d| !d.trim().is_empty() && super::sidecar::plain(d))
    }
}
