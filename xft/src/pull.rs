//! XEP-0234 pull in `xft recv`: `--serve FILE` answers peers' requests for those files (by
//! file name or SHA-256), `--get NAME --from PEER` asks a peer for files instead of
//! waiting for offers. Jingle only; every request not for a served file is declined
//! (`<failed-application/>`, "file not available"): nothing is served by itself.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ft_facade::{AcceptOptions, FileRequest, FileTransfer, HashAlgo, IncomingRequest, SendOptions};
use ft_transport::StanzaTransport;
use jid::Jid;
use sha2::{Digest, Sha256};

use crate::progress::follow;
use crate::report::Row;

/// A file `--serve` names: its name (what a request by name must say) and SHA-256.
#[derive(Debug)]
pub(crate) struct Served {
    path: PathBuf,
    name: String,
    sha256: Vec<u8>,
}

/// The `--serve` files, each read once for its SHA-256 (so a request by hash finds it).
pub(crate) fn served(paths: &[PathBuf]) -> std::io::Result<Vec<Served>> {
    paths
        .iter()
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut f = std::fs::File::open(p)?;
            let mut h = Sha256::new();
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            Ok(Served {
                path: p.clone(),
                name,
                sha256: h.finalize().to_vec(),
            })
        })
        .collect()
}

/// The served file a request asks for: every name and SHA-256 it gives must match (a
/// request with neither matches nothing).
fn find<'a>(served: &'a [Served], request: &FileRequest) -> Option<&'a Served> {
    if request.name.is_none() && request.hashes.is_empty() {
        return None;
    }
    served.iter().find(|s| {
        request.name.as_ref().is_none_or(|n| *n == s.name)
            && request
                .hashes
                .iter()
                .all(|(algo, v)| *algo == HashAlgo::Sha256 && *v == s.sha256)
    })
}

/// Answers one request: served when `allowed` and it names a `--serve` file (the row of
/// that send), else declined (a `refused` row).
pub(crate) async fn answer<T: StanzaTransport + Clone>(
    request: IncomingRequest<T>,
    served: &[Served],
    allowed: bool,
    show: bool,
) -> Row {
    let peer = request.from().to_string();
    let asked = request
        .request()
        .name
        .clone()
        .unwrap_or_else(|| "(by hash)".to_owned());
    let file = find(served, request.request()).filter(|_| allowed);
    let Some(file) = file else {
        request.decline();
        let why = if allowed {
            "no such file is served"
        } else {
            "not served to this peer"
        };
        let mut row = Row::refused(
            "request",
            Some(peer),
            &asked,
            format!("{why}; answered session-terminate <failed-application/>"),
        );
        row.stack = Some("jingle");
        return row;
    };
    let name = file.path.display().to_string();
    let started = Instant::now();
    let handle = request.accept_file(&file.path, SendOptions::default());
    let (r, timeline) = follow(handle, &name, show, true).await;
    let mut row = Row::from_result("send", "request", &name, started, &timeline, &r);
    row.peer.get_or_insert(peer);
    row
}

/// `--get`: asks `peer` for each name in turn and receives it into `dir`.
pub(crate) async fn get<T: StanzaTransport + Clone>(
    ft: &FileTransfer<T>,
    peer: &Jid,
    names: &[String],
    dir: &Path,
    overwrite: bool,
    show: bool,
) -> Vec<Row> {
    let mut rows = Vec::new();
    for name in names {
        let started = Instant::now();
        let options = AcceptOptions::new().with_overwrite(overwrite);
        let handle = ft.request_file(peer.clone(), FileRequest::by_name(name), dir, options);
        let (r, timeline) = follow(handle, name, show, false).await;
        let mut row = Row::from_result("recv", "request", name, started, &timeline, &r);
        row.peer.get_or_insert_with(|| peer.to_string());
        if let Ok(o) = &r
            && let Some(p) = &o.path
        {
            row.file = p.display().to_string();
        }
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_finds_a_served_file_by_name_or_sha256_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        std::fs::write(&p, b"hello").unwrap();
        let s = served(&[p]).unwrap();
        let sha = Sha256::digest(b"hello").to_vec();
        assert!(find(&s, &FileRequest::by_name("a.txt")).is_some());
        assert!(find(&s, &FileRequest::by_hash(HashAlgo::Sha256, sha.clone())).is_some());
        assert!(
            find(
                &s,
                &FileRequest::by_name("a.txt").with_hash(HashAlgo::Sha256, sha)
            )
            .is_some()
        );
        assert!(find(&s, &FileRequest::by_name("b.txt")).is_none());
        assert!(find(&s, &FileRequest::by_hash(HashAlgo::Sha256, vec![0; 32])).is_none());
        assert!(find(&s, &FileRequest::by_hash(HashAlgo::Blake2b512, vec![0; 64])).is_none());
        assert!(find(&s, &FileRequest::default()).is_none());
    }
}
