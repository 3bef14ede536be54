//! The sender's run: prepare the source, choose the stack, let it negotiate a bytestream
//! ([`crate::stack`]), then stream over it ([`crate::send_stream`]).

use std::io::SeekFrom;
use std::sync::Arc;

use ft_transport::{Sid, StanzaTransport};
use jid::Jid;
use tokio::io::AsyncSeekExt;
use xep0096_file::{FileMeta, HashLanes};

use crate::config::Method;
use crate::copy;
use crate::error::{ErrorKind, Misuse, Stage, TransferError};
use crate::event::{FileInfo, Outcome};
use crate::handle::TaskSide;
use crate::options::{SendOptions, Source};
use crate::send_stream::{self, Prepared};
use crate::shared::Shared;
use crate::stack::{self, Stack};

fn err(stage: Stage, kind: impl Into<ErrorKind>) -> TransferError {
    TransferError::new(stage, kind.into())
}

/// Reads the metadata; hashes the file before the offer only when it is within
/// `hash_limit` bytes (see [`OfferHash`](crate::OfferHash)), so a large file's offer goes
/// out at once, without `hash`.
pub(crate) async fn prepare(source: Source, hash_limit: u64) -> Result<Prepared, TransferError> {
    let path = match source {
        Source::Reader(reader, info) => {
            return Ok(Prepared {
                reader,
                info,
                sha256: None,
                seekable: None,
                extra_hash: None,
            });
        }
        Source::Path(path) => path,
    };
    let meta = FileMeta::from_path(&path).map_err(|e| err(Stage::Prepare, e))?;
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| err(Stage::Prepare, e))?;
    let mut info = FileInfo::new(meta.name.clone(), meta.size);
    info.date = meta.to_file(None).date;
    info.mime_type = Some(meta.mime_type.to_owned());
    let mut sha256 = None;
    if meta.size <= hash_limit {
        // The offer carries the MD5 (QXmpp checks it): the file is read once before
        // offering, MD5 and SHA-256 side by side on their own threads.
        let mut hashes = HashLanes::new();
        // At most one byte past the size (a grown file is caught alike), so that the read
        // buffer fits the file: a small file does not take a 256 KiB buffer (issue 9).
        let n = copy::hash_reader(&mut file, Some(meta.size.saturating_add(1)), &mut hashes)
            .await
            .map_err(|e| err(Stage::Prepare, e))?;
        if n != meta.size {
            return Err(err(
                Stage::Prepare,
                Misuse::FileChanged {
                    path,
                    read: n,
                    size: meta.size,
                },
            ));
        }
        let digests = hashes.digests().await.map_err(|e| err(Stage::Prepare, e))?;
        sha256 = Some(digests.sha256_hex());
        info.md5 = digests.md5_hex();
        file.seek(SeekFrom::Start(0))
            .await
            .map_err(|e| err(Stage::Prepare, e))?;
    }
    Ok(Prepared {
        reader: Box::new(tokio::io::empty()),
        info,
        sha256,
        seekable: Some(file),
        extra_hash: None,
    })
}

pub(crate) async fn run<T: StanzaTransport + Clone>(
    shared: &Arc<Shared<T>>,
    side: &mut TaskSide,
    to: Jid,
    sid: Sid,
    source: Source,
    options: SendOptions,
) -> Result<Outcome, TransferError> {
    let config = &shared.config;
    let methods: Vec<Method> = options
        .methods
        .clone()
        .unwrap_or_else(|| config.methods.clone());
    if methods.is_empty() {
        return Err(err(Stage::Prepare, Misuse::NoMethod));
    }
    let cancel = side.cancel.clone();

    // Prepare: metadata, and the MD5 the offer carries when the file is small enough.
    side.reporter.stage(Stage::Prepare);
    let mut prepared = tokio::select! {
        biased;
        () = cancel.cancelled() => return Err(crate::handle::cancelled(Stage::Prepare)),
        p = prepare(source, config.offer_hash.max_size) => p?,
    };
    if let Some(desc) = options.desc.clone() {
        prepared.info.desc = Some(desc);
    }
    let size = prepared
        .info
        .size
        .ok_or_else(|| err(Stage::Prepare, Misuse::UnknownSize))?;
    side.reporter.total(Some(size));

    // Which stack (disco), then its negotiation up to an established bytestream; from
    // there on nothing depends on the stack but the session around it.
    let chosen = stack::choose(shared, side, &to, &methods).await?;
    side.reporter.emit(crate::event::Event::Stack(chosen.stack));
    match chosen.stack {
        Stack::Si => {
            let request = stack::si_send::Request {
                to: &to,
                sid: &sid,
                info: &prepared.info,
                ranged: prepared.seekable.is_some(),
                size,
                methods: &methods,
                options: &options,
            };
            let negotiated = stack::si_send::negotiate(shared, side, request).await?;
            send_stream::stream(shared, side, to, sid, prepared, negotiated, None).await
        }
        Stack::Jingle => {
            let request = stack::jingle::send::Request {
                to: &to,
                sid: &sid,
                info: &prepared.info,
                size,
                methods: &chosen.jingle_methods,
                options: &options,
                sha256: prepared.sha256.as_deref(),
                hash: chosen.hash,
                pull: None,
            };
            if chosen.hash != crate::HashAlgo::Sha256 {
                // Announced in <hash-used/>, computed while streaming, sent in <checksum/>.
                prepared.extra_hash = Some(chosen.hash);
            }
            let (negotiated, session) =
                stack::jingle::send::negotiate(shared, side, request).await?;
            stack::jingle::send::stream(shared, side, to, sid, prepared, negotiated, session).await
        }
    }
}
