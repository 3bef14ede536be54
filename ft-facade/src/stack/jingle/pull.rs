//! Requesting a file (XEP-0234 §5, "pull"): we initiate with `senders='responder'` and a
//! `<file/>` naming what we want (name, hashes), the peer's session-accept describes the
//! file it serves (size, date, hashes), the bytestream is set up as for our own offers
//! (we are the Jingle initiator: our candidates, the race, transport-replace to IBB, the
//! IBB `<open/>` is ours as XEP-0261 has it), and the bytes land as for any receive: the
//! safe name and its `.part`, size and hash verification, progress, the session's end.
//!
//! A pull does not resume: the size is known only from the accept, after the request
//! (which is where a `<range/>` would have to go). A peer that answers with another
//! transport than ours, or fails, ends the request with the error of any transfer.

use std::sync::Arc;

use ft_transport::{Sid, StanzaTransport};
use jid::Jid;
use xep0166_jingle::Reason;
use xmpp_parsers::hashes::Hash;

use super::send::{Request, negotiate};
use crate::HashAlgo;
use crate::error::{ErrorKind, Misuse, Stage, TransferError};
use crate::event::{Event, FileInfo, Outcome};
use crate::handle::TaskSide;
use crate::options::{AcceptOptions, SendOptions};
use crate::receive::{Destination, land_prepared, prepare};
use crate::shared::Shared;
use crate::stack::{self, Stack};

/// A file asked of a peer ([`FileTransfer::request_file`](crate::FileTransfer::request_file)):
/// by name, by hash, or both (XEP-0234's file selector). A hash asked for is the one the
/// received bytes must match, whatever the peer says of its file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileRequest {
    /// The file's name as the peer knows it.
    pub name: Option<String>,
    /// Hashes of the file (algorithm, raw digest).
    pub hashes: Vec<(HashAlgo, Vec<u8>)>,
}

impl FileRequest {
    /// A request by name.
    pub fn by_name(name: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            hashes: Vec::new(),
        }
    }

    /// A request by hash (`algo`, raw digest).
    pub fn by_hash(algo: HashAlgo, digest: impl Into<Vec<u8>>) -> Self {
        Self::default().with_hash(algo, digest)
    }

    /// Adds a hash the file must have.
    #[must_use]
    pub fn with_hash(mut self, algo: HashAlgo, digest: impl Into<Vec<u8>>) -> Self {
        self.hashes.push((algo, digest.into()));
        self
    }

    /// The `<file/>` of the request (hashes of algorithms XEP-0300 does not name are left
    /// out: MD5).
    fn to_file(&self) -> xep0234_jingle_ft::FileInfo {
        let hashes: Vec<Hash> = self
            .hashes
            .iter()
            .filter_map(|(algo, value)| {
                let a = xep0300_hashes::HashAlgo::from_name(algo.name())?;
                Some(Hash::new(a.to_algo(), value.clone()))
            })
            .collect();
        xep0234_jingle_ft::FileInfo::request(hashes, self.name.clone())
    }
}

/// The requester's run: the request and its transport, the peer's accept, then the
/// receive of what it serves into `dest`.
pub(crate) async fn run<T: StanzaTransport + Clone>(
    shared: &Arc<Shared<T>>,
    side: &mut TaskSide,
    from: Jid,
    sid: Sid,
    request: FileRequest,
    dest: Destination,
    options: AcceptOptions,
) -> Result<Outcome, TransferError> {
    let config = &shared.config;
    if request.name.is_none() && request.hashes.is_empty() {
        return Err(TransferError::new(
            Stage::Prepare,
            Misuse::EmptyRequest.into(),
        ));
    }
    if config.methods.is_empty() {
        return Err(TransferError::new(Stage::Prepare, Misuse::NoMethod.into()));
    }
    // Only Jingle can pull: a peer without it (or a configuration without it) is refused
    // before anything is sent.
    let chosen = stack::choose(shared, side, &from, &config.methods).await?;
    if chosen.stack != Stack::Jingle {
        return Err(TransferError::new(Stage::Disco, ErrorKind::NoCommonMethod));
    }
    side.reporter.emit(Event::Stack(Stack::Jingle));
    let info = FileInfo::new(request.name.clone().unwrap_or_default(), 0);
    let send_options = SendOptions::default();
    let req = Request {
        to: &from,
        sid: &sid,
        info: &info,
        size: 0,
        methods: &chosen.jingle_methods,
        options: &send_options,
        sha256: None,
        hash: HashAlgo::Sha256,
        pull: Some(request.to_file()),
    };
    let (negotiated, session) = negotiate(shared, side, req).await?;
    let mut link = session.link;
    let served = link.ft.file().clone();
    let (incoming, late) = super::incoming::incoming_of(&served, &link.ft.key().peer);
    link.late = late;

    side.reporter.stage(Stage::Prepare);
    if let (Some(limit), Some(size)) = (config.policy.max_size, served.size)
        && size > limit
    {
        link.terminate(Reason::FailedApplication);
        return Err(TransferError::new(
            Stage::Prepare,
            ErrorKind::TooLarge { size, limit },
        ));
    }
    let target = match prepare(&config.policy, &incoming, dest, &options).await {
        Ok(t) => t,
        Err((e, _)) => {
            link.terminate(Reason::FailedApplication);
            return Err(e);
        }
    };
    let established = negotiated.established;
    let connect = async move |_: &mut TaskSide, _offset: u64| Ok((established, Some(link)));
    land_prepared(
        shared,
        side,
        target,
        incoming.expectations,
        (&from, &sid),
        options,
        connect,
    )
    .await
}
