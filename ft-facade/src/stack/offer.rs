//! An incoming offer of any stack ([`StackOffer`], behind the public
//! [`IncomingOffer`](crate::IncomingOffer)), and what the data path needs of it
//! ([`Incoming`]). A stack adds its variant here and its arms to each method.

use std::sync::Arc;

use ft_transport::{Sid, Stanza, StanzaTransport};
use jid::Jid;
use xep0096_file::{FileOffer, PartKey};

use crate::error::{Stage, TransferError};
use crate::event::FileInfo;
use crate::handle::TaskSide;
use crate::shared::Shared;
use crate::stack::Established;
use crate::verify::{Expectations, ExpectedHash, HashAlgo};

/// An offer as its stack parsed it, not answered yet. [`IncomingOffer`]
/// (crate::IncomingOffer) holds one whatever the stack.
#[derive(Debug)]
pub(crate) enum StackOffer {
    /// An XEP-0095 offer with the XEP-0096 file profile.
    Si(Box<FileOffer>),
    /// An XEP-0234 session-initiate (push).
    Jingle(Box<super::jingle::recv::JingleOffer>),
}

/// How an unanswered offer is refused.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Refuse<'a> {
    /// Declined (SI `forbidden`, Jingle `<decline/>`), with a reason for the user.
    Decline(Option<&'a str>),
    /// Too many offers wait (SI `wait/resource-constraint`, Jingle `<busy/>`).
    Busy,
}

/// What the data path needs of an accepted offer, whatever the stack.
#[derive(Debug)]
pub(crate) struct Incoming {
    /// What identifies the file for a resume (peer, name, size, date, hash).
    pub(crate) key: PartKey,
    /// Whether the sender can start at an offset (a resume is asked for only then).
    pub(crate) ranged: bool,
    /// What the bytes must match (size, hashes, hashes to come).
    pub(crate) expectations: Expectations,
}

impl StackOffer {
    /// The stack it came by.
    pub(crate) fn stack(&self) -> super::Stack {
        match self {
            Self::Si(_) => super::Stack::Si,
            Self::Jingle(_) => super::Stack::Jingle,
        }
    }

    /// The stream id.
    pub(crate) fn sid(&self) -> &Sid {
        match self {
            Self::Si(o) => &o.offer.sid,
            Self::Jingle(o) => o.sid(),
        }
    }

    /// The methods offered, in the peer's order (SI namespaces).
    pub(crate) fn methods(&self) -> Vec<String> {
        match self {
            Self::Si(o) => o.offer.methods.clone(),
            Self::Jingle(o) => vec![o.transport_ns.clone()],
        }
    }

    /// The file as the peer describes it (not yet sanitised; see `recv::file_info`).
    pub(crate) fn file_info(&self) -> FileInfo {
        match self {
            Self::Si(o) => {
                let f = &o.file;
                FileInfo {
                    name: f.name.clone(),
                    size: f.size,
                    md5: f.md5().ok().flatten().map(hex::encode),
                    date: f.date.clone(),
                    desc: f.desc.clone(),
                    mime_type: Some(o.offer.mime_type.clone()),
                }
            }
            Self::Jingle(o) => {
                let f = &o.file;
                FileInfo {
                    name: f.name.clone().unwrap_or_default(),
                    size: f.size,
                    md5: None,
                    date: f
                        .date
                        .clone()
                        .and_then(minidom::IntoAttributeValue::into_attribute_value),
                    desc: f.desc.clone(),
                    mime_type: f.media_type.clone(),
                }
            }
        }
    }

    /// The offered hash, as the peer wrote it, when it is unusable (BAD-INPUT B10).
    pub(crate) fn bad_hash(&self) -> Option<&str> {
        match self {
            Self::Si(o) => o
                .file
                .md5()
                .is_err()
                .then(|| o.file.hash.as_deref().unwrap_or_default()),
            Self::Jingle(_) => None,
        }
    }

    /// Refuses this offer in its stack's terms and sends the refusal; returns the SI
    /// answer sent (Jingle's session-terminate goes out through the session core).
    pub(crate) fn refuse<T: StanzaTransport + Clone>(
        &self,
        shared: &Arc<Shared<T>>,
        how: Refuse<'_>,
    ) -> Option<Stanza> {
        match self {
            Self::Si(o) => {
                let answer = match how {
                    Refuse::Decline(reason) => o.decline(reason),
                    Refuse::Busy => {
                        let e = ft_transport::util::stanza_error(
                            xmpp_parsers::stanza_error::ErrorType::Wait,
                            xmpp_parsers::stanza_error::DefinedCondition::ResourceConstraint,
                        );
                        let mut iq = xmpp_parsers::iq::Iq::from_error(o.offer.iq_id.clone(), e);
                        *iq.to_mut() = o.offer.from.clone();
                        iq
                    }
                };
                crate::shared::spawn_send(shared, Stanza::Iq(answer.clone()));
                Some(Stanza::Iq(answer))
            }
            Self::Jingle(o) => {
                let reason = match how {
                    Refuse::Decline(_) => xep0166_jingle::Reason::Decline,
                    Refuse::Busy => xep0166_jingle::Reason::Busy,
                };
                o.refuse(shared, reason);
                None
            }
        }
    }

    /// What the data path needs: the resume key, the expected size and hashes.
    pub(crate) fn incoming(&self) -> Result<Incoming, TransferError> {
        match self {
            Self::Si(o) => {
                let expected = o
                    .expected()
                    .map_err(|e| TransferError::new(Stage::Offer, e.into()))?;
                let hashes = expected
                    .md5
                    .map(|m| ExpectedHash {
                        algo: HashAlgo::Md5,
                        value: m.to_vec(),
                    })
                    .into_iter()
                    .collect();
                Ok(Incoming {
                    key: PartKey::of_offer(o),
                    ranged: o.file.supports_ranges(),
                    expectations: Expectations::new(expected.size, hashes),
                })
            }
            Self::Jingle(o) => Ok(super::jingle::incoming::incoming(o)),
        }
    }

    /// Answers (asking for the bytes from `offset` on) and waits for the bytestream.
    pub(crate) async fn answer_and_wait<T: StanzaTransport + Clone>(
        &self,
        shared: &Arc<Shared<T>>,
        side: &mut TaskSide,
        from: &Jid,
        offset: u64,
    ) -> Result<(Established, Option<super::jingle::link::Link<T>>), TransferError> {
        match self {
            Self::Si(o) => super::si_recv::answer_and_wait(shared, side, o, from, offset)
                .await
                .map(|e| (e, None)),
            Self::Jingle(o) => super::jingle::recv::answer_and_wait(shared, side, o, from, offset)
                .await
                .map(|(e, l)| (e, Some(l))),
        }
    }
}
