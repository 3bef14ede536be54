//! A peer's session-initiate as an offer: checked (XEP-0234 description, a transport we
//! have, the policy's bounds per peer and in total, the size limit, free space for
//! auto-accept), then handed to the application as an [`IncomingOffer`]; what the data
//! path needs of it ([`incoming`]); and the session's end around the landing.

use std::sync::Arc;

use ft_transport::StanzaTransport;
use jid::Jid;
use xep0096_file::PartKey;
use xep0166_jingle::Reason;
use xep0234_jingle_ft::{Direction, FtError, FtSession};
use xep0261_jingle_ibb::NS_JINGLE_IBB;

use super::core::Initiated;
use super::link::Link;
use super::recv::{JingleOffer, reason_for};
use crate::config::Method;
use crate::error::{ErrorKind, Stage, TransferError};
use crate::event::Outcome;
use crate::manager::FileTransfer;
use crate::recv::IncomingOffer;
use crate::refused::{Refusal, RefusedOffer};
use crate::stack::{Incoming, StackOffer};
use crate::verify::{Expectations, ExpectedHash, HashAlgo, LateHashes};
use xep0234_jingle_ft::FileInfo as FtFile;

impl<T: StanzaTransport + Clone> FileTransfer<T> {
    /// A session-initiate: an offer for the application, or refused with the session's
    /// terminate (and reported to [`next_refused`](FileTransfer::next_refused)).
    pub(crate) fn jingle_offer(&self, i: Initiated) {
        let shared = self.shared();
        let Some(core) = shared.jingle.clone() else {
            return;
        };
        let from = Jid::from(i.key.peer.clone());
        let refused = |name: Option<String>, size: Option<u64>, reason: Refusal, sent: Reason| {
            RefusedOffer::jingle(from.clone(), name, size, reason, &sent)
        };
        let ft = core.with(|ep, now| FtSession::incoming(ep, now, &i.key, &i.contents, None));
        let mut ft = match ft {
            Ok(ft) => ft,
            Err(e) => {
                // What `FtSession::incoming` terminated with.
                let sent = match &e {
                    FtError::NotFileTransfer => Reason::UnsupportedApplications,
                    FtError::FileCount(_) if i.contents.len() != 1 => {
                        Reason::UnsupportedApplications
                    }
                    e => e.reason(),
                };
                let reason = Refusal::MalformedJingle(Arc::new(e));
                self.note_refused(refused(None, None, reason, sent));
                return;
            }
        };
        let name = ft.file().name.clone();
        let size = ft.file().size;
        let config = &shared.config;
        let end = |ft: &mut FtSession, reason: Reason| {
            let _ = core.with(|ep, now| ft.terminate(ep, now, reason));
        };
        let ns = ft.peer_transport().map(minidom::Element::ns);
        let transport_ok = match ns.as_deref() {
            Some(NS_JINGLE_IBB) => config.has_ibb(),
            Some(xep0260_jingle_s5b::NS) => config.methods.contains(&Method::S5b),
            _ => false,
        };
        if !transport_ok {
            end(&mut ft, Reason::UnsupportedTransports);
            let sent = Reason::UnsupportedTransports;
            self.note_refused(refused(name, size, Refusal::NoCommonMethod, sent));
            return;
        }
        let key = (from.clone(), i.key.sid.clone());
        if let Some(refusal) = self.admit(&key) {
            end(&mut ft, Reason::Busy);
            self.note_refused(refused(name, size, refusal, Reason::Busy));
            return;
        }
        if ft.direction() == Direction::Send {
            // A request (pull): the application decides what, if anything, to serve.
            let request = super::serve::pending(shared, &core, ft);
            self.deliver_request(request, refused(name, size, Refusal::Busy, Reason::Busy));
            return;
        }
        let policy = &config.policy;
        let release = || shared.release_incoming(&key);
        if let (Some(limit), Some(size)) = (policy.max_size, size)
            && size > limit
        {
            release();
            end(&mut ft, Reason::Decline);
            let reason = Refusal::TooLarge { size, limit };
            self.note_refused(refused(name, Some(size), reason, Reason::Decline));
            return;
        }
        let auto = policy
            .auto_accept_dir
            .as_ref()
            .filter(|_| policy.auto_accept_from.iter().any(|b| *b == from.to_bare()));
        if let Some(dir) = auto
            && let Err(n) = policy.check_free_space(dir, size)
        {
            release();
            end(&mut ft, Reason::Decline);
            let reason = Refusal::NoSpace {
                size: n.size,
                available: n.available,
            };
            self.note_refused(refused(name, size, reason, Reason::Decline));
            return;
        }
        let rx = core.route(&i.key);
        let offer = StackOffer::Jingle(Box::new(JingleOffer::new(ft, rx)));
        let incoming = IncomingOffer::new(shared.clone(), offer, from.clone(), key);
        let busy = refused(name, size, Refusal::Busy, Reason::Busy);
        self.deliver(incoming, auto.cloned(), busy);
    }
}

/// What the data path needs of a Jingle offer: the resume key (peer, name, size, date,
/// and a strong offered hash, which identifies the file without a date), the hashes offered,
/// and the algorithms of a `<checksum/>` to come (a [`LateHashes`](crate::verify::LateHashes)
/// kept in the offer for the session).
pub(crate) fn incoming(o: &JingleOffer) -> Incoming {
    let (incoming, late) = incoming_of(&o.file, &o.key.peer);
    *crate::shared::lock(&o.late) = late;
    incoming
}

/// [`incoming`] for the file `f` from `peer` (an offer's, or the one a request of ours
/// was answered with): with the [`LateHashes`] a `<checksum/>` fills, when no hash came
/// with it.
pub(crate) fn incoming_of(f: &FtFile, peer: &jid::FullJid) -> (Incoming, Option<LateHashes>) {
    let algo = |a: &xmpp_parsers::hashes::Algo| {
        xep0300_hashes::HashAlgo::from_algo(a).and_then(|a| HashAlgo::from_name(a.name()))
    };
    let hashes: Vec<ExpectedHash> = f
        .hashes
        .iter()
        .filter_map(|h| {
            algo(&h.algo).map(|algo| ExpectedHash {
                algo,
                value: h.hash.clone(),
            })
        })
        .collect();
    let mut expectations = Expectations::new(f.size, hashes.clone());
    let mut late = None;
    if hashes.is_empty() {
        // The hash comes later in a <checksum/>: computed from the first byte. Announced
        // algorithms, or (none announced) SHA-256 and Gajim's BLAKE2b-512.
        let mut later: Vec<HashAlgo> = f.hash_used.iter().filter_map(algo).collect();
        if later.is_empty() {
            later = vec![HashAlgo::Sha256, HashAlgo::Blake2b512];
        }
        late = Some(expectations.late(&later));
    }
    let mut key = PartKey::new(f.name.clone().unwrap_or_default(), f.size)
        .with_peer(peer.to_bare().to_string());
    if let Some(d) = f
        .date
        .clone()
        .and_then(minidom::IntoAttributeValue::into_attribute_value)
    {
        key = key.with_date(d);
    }
    // Without a date, a strong hash tells two versions of one name and size apart (most
    // Jingle senders offer a hash and no date): the first of the offered ones in XEP-0300's
    // preference, MD5 and SHA-1 never. With a date the key is as it always was, so that
    // the parts of earlier versions still resume.
    let dated = key.date.is_some();
    let strong = xep0300_hashes::PREFERENCE
        .iter()
        .filter(|_| !dated)
        .find_map(|want| {
            f.hashes.iter().find(|h| {
                xep0300_hashes::HashAlgo::from_algo(&h.algo) == Some(*want) && !h.hash.is_empty()
            })
        });
    if let Some(h) = strong
        && let Some(a) = xep0300_hashes::HashAlgo::from_algo(&h.algo)
    {
        key = key.with_hash(a.name(), &h.hash);
    }
    let incoming = Incoming {
        key,
        ranged: f.range.is_some(),
        expectations,
    };
    (incoming, late)
}

/// How long a cut receive waits for the sender's terminate to say why.
const PEER_END_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Lands the file while watching the session (a `<checksum/>` is taken for the
/// verification, the sender's terminate ends the receive with its reason), then ends the
/// session: `<success/>` once the file is in place, `<media-error/>` for bytes found
/// wrong, `<cancel/>` on our cancel.
pub(crate) async fn land_and_end<T, F>(
    mut link: Link<T>,
    landed: F,
) -> Result<Outcome, TransferError>
where
    T: StanzaTransport + Clone,
    F: Future<Output = Result<Outcome, TransferError>>,
{
    let watch = async {
        loop {
            let e = link.until_end().await;
            if !e.is_success() {
                return e;
            }
            // The sender may end with success before our verdict: the landing decides.
            std::future::pending::<()>().await;
        }
    };
    let r = tokio::select! {
        r = landed => r,
        e = watch => Err(e.error(Stage::Stream, std::time::Duration::ZERO)),
    };
    // A sender that cancels closes the bytestream first and terminates right after: the
    // cut is its cancel, not a truncation, when its <cancel/> follows within a moment.
    let r = match r {
        Err(e) if matches!(e.kind, ErrorKind::Truncated { .. }) && link.ended.is_none() => {
            match tokio::time::timeout(PEER_END_GRACE, link.until_end()).await {
                Ok(ended) if ended.reason == Some(Reason::Cancel) => {
                    Err(ended.error(e.stage, std::time::Duration::ZERO))
                }
                _ => Err(e),
            }
        }
        r => r,
    };
    match &r {
        Ok(_) => link.terminate(Reason::Success),
        Err(e) => link.terminate(reason_for(e)),
    }
    r.map(|mut o| {
        o.stack = crate::Stack::Jingle;
        o
    })
}
