//! Finding where each top-level element of the stream ends, without parsing it: tags,
//! quoted attribute values and CDATA are skipped over; comments, processing instructions and
//! DTDs are refused.

use super::CodecError as XmlStreamError;

/// Where the scanner stands in the buffer, kept across reads so a large element is scanned
/// once.
#[derive(Debug, Default, Clone)]
pub(super) struct Scan {
    /// Where the current element starts, once its `<` was seen.
    pub(super) start: Option<usize>,
    /// Next byte to look at.
    pub(super) pos: usize,
    /// Open elements inside the current top-level one.
    pub(super) depth: usize,
}

/// What the scanner found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Found {
    /// A complete element in `start..end`.
    Element(usize, usize),
    /// `</stream:stream>` ending at `end`.
    StreamEnd(usize),
    /// Read more.
    Incomplete,
}

pub(super) fn is_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='
}

/// Whether every byte is in the base64 alphabet; written branch-free per block so that the
/// compiler vectorizes it.
pub(super) fn all_b64(s: &[u8]) -> bool {
    let mut chunks = s.chunks_exact(64);
    for c in &mut chunks {
        if !c.iter().fold(true, |ok, &b| ok & is_b64(b)) {
            return false;
        }
    }
    chunks.remainder().iter().all(|&b| is_b64(b))
}

/// The first `needle` in `hay` (element text is long: 87 kB per IBB chunk at block-size
/// 65535, so this is `memchr`'s vectorized search).
pub(super) fn find_byte(needle: u8, hay: &[u8]) -> Option<usize> {
    memchr::memchr(needle, hay)
}

/// The first occurrence of `needle` (short) in `hay`.
pub(super) fn find_seq(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// Finds the `>` closing the tag whose `<` is at `from - 1`, skipping quoted values.
pub(super) fn tag_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    loop {
        let j = i + memchr::memchr3(b'>', b'"', b'\'', &buf[i..])?;
        match buf[j] {
            b'>' => return Some(j),
            q => {
                i = j + 1 + memchr::memchr(q, &buf[j + 1..])? + 1;
            }
        }
    }
}

/// Finds the next top-level element in `buf`, continuing where `st` stopped; an element
/// nested deeper than `max_depth` is refused.
pub(super) fn scan(
    buf: &[u8],
    st: &mut Scan,
    consumed: u64,
    max_depth: usize,
) -> Result<Found, XmlStreamError> {
    loop {
        if st.start.is_none() {
            let ws = buf[st.pos..]
                .iter()
                .take_while(|b| b.is_ascii_whitespace())
                .count();
            st.pos += ws;
            if st.pos == buf.len() {
                return Ok(Found::Incomplete);
            }
            if buf[st.pos] != b'<' {
                return Err(XmlStreamError::NotWellFormed(format!(
                    "text between stanzas at byte {}",
                    consumed + st.pos as u64
                )));
            }
            st.start = Some(st.pos);
        }
        let Some(lt) = find_byte(b'<', &buf[st.pos..]).map(|i| st.pos + i) else {
            st.pos = buf.len();
            return Ok(Found::Incomplete);
        };
        st.pos = lt;
        let Some(&next) = buf.get(lt + 1) else {
            return Ok(Found::Incomplete);
        };
        match next {
            b'/' => {
                let Some(gt) = memchr::memchr(b'>', &buf[lt..]).map(|i| lt + i) else {
                    return Ok(Found::Incomplete);
                };
                st.pos = gt + 1;
                if st.depth == 0 {
                    if buf[lt..=gt].starts_with(b"</stream:stream") {
                        return Ok(Found::StreamEnd(gt + 1));
                    }
                    return Err(XmlStreamError::NotWellFormed(format!(
                        "unbalanced end tag at byte {}",
                        consumed + lt as u64
                    )));
                }
                st.depth -= 1;
                if st.depth == 0 {
                    return Ok(Found::Element(st.start.unwrap_or(lt), gt + 1));
                }
            }
            b'!' => {
                const CDATA: &[u8] = b"<![CDATA[";
                let avail = &buf[lt..];
                if avail.len() < CDATA.len() && CDATA.starts_with(avail) {
                    return Ok(Found::Incomplete);
                }
                if !avail.starts_with(CDATA) || st.depth == 0 {
                    return Err(XmlStreamError::Restricted {
                        offset: consumed + lt as u64,
                    });
                }
                let Some(end) = find_seq(&avail[CDATA.len()..], b"]]>") else {
                    return Ok(Found::Incomplete);
                };
                st.pos = lt + CDATA.len() + end + 3;
            }
            b'?' => {
                return Err(XmlStreamError::Restricted {
                    offset: consumed + lt as u64,
                });
            }
            _ => {
                let Some(gt) = tag_end(buf, lt + 1) else {
                    return Ok(Found::Incomplete);
                };
                st.pos = gt + 1;
                if buf[gt - 1] == b'/' {
                    if st.depth == 0 {
                        return Ok(Found::Element(st.start.unwrap_or(lt), gt + 1));
                    }
                } else {
                    st.depth += 1;
                    if st.depth > max_depth {
                        return Err(XmlStreamError::TooDeep { limit: max_depth });
                    }
                }
            }
        }
    }
}
