//! [`FtSession`]: one file's negotiation on top of an `xep0166_jingle::Endpoint`, for both
//! roles and both directions. It owns no I/O and no session table: the caller passes the
//! `Endpoint` to each command and feeds it every `Event` (it takes those of its session).

use std::time::Instant;

use minidom::Element;
use xep0166_jingle::{
    Content, ContentId, Creator, EndCause, Endpoint, Event, Misuse, Reason, Role, Senders,
    SessionKey, Sid,
};
use xmpp_parsers::hashes::Hash;
use xmpp_parsers::jingle_ft::Range;

use crate::NS_FT;
pub use crate::event::{Direction, FtEvent, FtState, Verdict};
use crate::file::{FileInfo, FtError};
use crate::info::{Checksum, FtInfo, Received};

/// One file's Jingle FT session.
#[derive(Debug)]
pub struct FtSession {
    key: SessionKey,
    role: Role,
    direction: Direction,
    content: Content,
    file: FileInfo,
    peer_transport: Option<Element>,
    state: FtState,
    hashes: Vec<Hash>,
}

impl FtSession {
    /// Offers a file (push, XEP-0234 §4): session-initiate with one content named
    /// `content_name`, `senders='initiator'`.
    pub fn offer(
        ep: &mut Endpoint,
        now: Instant,
        peer: jid::FullJid,
        sid: Sid,
        content_name: &str,
        file: FileInfo,
        transport: Element,
    ) -> Result<Self, Misuse> {
        Self::initiate(
            ep,
            now,
            peer,
            sid,
            content_name,
            file,
            transport,
            Senders::Initiator,
        )
    }

    /// Requests a file the peer hosts (pull, XEP-0234 §5): `senders='responder'`.
    pub fn request(
        ep: &mut Endpoint,
        now: Instant,
        peer: jid::FullJid,
        sid: Sid,
        content_name: &str,
        file: FileInfo,
        transport: Element,
    ) -> Result<Self, Misuse> {
        Self::initiate(
            ep,
            now,
            peer,
            sid,
            content_name,
            file,
            transport,
            Senders::Responder,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn initiate(
        ep: &mut Endpoint,
        now: Instant,
        peer: jid::FullJid,
        sid: Sid,
        content_name: &str,
        file: FileInfo,
        transport: Element,
        senders: Senders,
    ) -> Result<Self, Misuse> {
        let content = Content::new(Creator::Initiator, content_name)
            .with_senders(senders.clone())
            .with_description(file.to_description())
            .with_transport(transport);
        let key = SessionKey::new(peer.clone(), sid.clone());
        ep.initiate(now, peer, sid, vec![content.clone()])?;
        Ok(Self {
            key,
            role: Role::Initiator,
            direction: if senders == Senders::Initiator {
                Direction::Send
            } else {
                Direction::Receive
            },
            hashes: file.hashes.clone(),
            content,
            file,
            peer_transport: None,
            state: FtState::Offered,
        })
    }

    /// A peer's session-initiate ([`Event::Initiated`]) as a file transfer. A session that
    /// is not one (no file-transfer content: `unsupported-applications`; more than one
    /// content, or an unreadable or unacceptable description: the [`FtError::reason`]) is
    /// terminated here with that reason, and the error returned.
    ///
    /// `max_size` bounds an offer's size (a request names no size).
    pub fn incoming(
        ep: &mut Endpoint,
        now: Instant,
        key: &SessionKey,
        contents: &[Content],
        max_size: Option<u64>,
    ) -> Result<Self, FtError> {
        let checked = (|| {
            let [c] = contents else {
                return Err((
                    Reason::UnsupportedApplications,
                    FtError::FileCount(contents.len()),
                ));
            };
            let d = c
                .description
                .as_ref()
                .filter(|d| d.is("description", NS_FT));
            let d = d.ok_or((Reason::UnsupportedApplications, FtError::NotFileTransfer))?;
            let file = FileInfo::from_description(d).map_err(|e| (e.reason(), e))?;
            let direction = match c.senders {
                Senders::Initiator => {
                    file.check_offer(max_size).map_err(|e| (e.reason(), e))?;
                    Direction::Receive
                }
                Senders::Responder if file.hashes.is_empty() && file.name.is_none() => {
                    return Err((Reason::FailedApplication, FtError::Missing("hash or name")));
                }
                Senders::Responder => Direction::Send,
                _ => return Err((Reason::FailedApplication, FtError::BadAttr("senders"))),
            };
            Ok((c.clone(), file, direction))
        })();
        match checked {
            Ok((content, file, direction)) => Ok(Self {
                key: key.clone(),
                role: Role::Responder,
                direction,
                hashes: file.hashes.clone(),
                peer_transport: content.transport.clone(),
                content,
                file,
                state: FtState::Incoming,
            }),
            Err((reason, e)) => {
                let _ = ep.terminate(now, key, reason, None);
                Err(e)
            }
        }
    }

    /// Accepts a peer's offer or request with our `<transport/>`; `range` asks for part of
    /// an offered file (resume from `offset`).
    pub fn accept(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        transport: Element,
        range: Option<Range>,
    ) -> Result<String, Misuse> {
        let mut file = self.file.clone();
        if range.is_some() {
            file.range = range;
        }
        let c = self
            .bare_content()
            .with_description(file.to_description())
            .with_transport(transport);
        let id = ep.accept(now, &self.key, vec![c])?;
        self.file = file;
        self.state = FtState::Accepted;
        Ok(id)
    }

    /// Declines a peer's offer or request (`<decline/>`).
    pub fn decline(&mut self, ep: &mut Endpoint, now: Instant) -> Result<String, Misuse> {
        self.terminate(ep, now, Reason::Decline)
    }

    /// Ends the session with `reason`: `success` after the bytes (and `<received/>`),
    /// `cancel` by the user, `failed-transport` when no transport worked,
    /// `failed-application` / `media-error` for a bad description or file, `timeout`,
    /// `busy`.
    pub fn terminate(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        reason: Reason,
    ) -> Result<String, Misuse> {
        self.state = FtState::Ended;
        ep.terminate(now, &self.key, reason, None)
    }

    /// Sends transport-info with `transport`.
    pub fn transport_info(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        transport: Element,
    ) -> Result<String, Misuse> {
        ep.transport_info(
            now,
            &self.key,
            self.bare_content().with_transport(transport),
        )
    }

    /// Proposes another transport (the fallback from S5B to IBB).
    pub fn replace_transport(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        transport: Element,
    ) -> Result<String, Misuse> {
        ep.transport_replace(
            now,
            &self.key,
            self.bare_content().with_transport(transport),
        )
    }

    /// Accepts the peer's transport-replace, with our transport element.
    pub fn accept_transport(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        transport: Element,
    ) -> Result<String, Misuse> {
        ep.transport_accept(
            now,
            &self.key,
            self.bare_content().with_transport(transport),
        )
    }

    /// Rejects the peer's transport-replace (echoing its transport element).
    pub fn reject_transport(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        transport: Element,
    ) -> Result<String, Misuse> {
        ep.transport_reject(
            now,
            &self.key,
            self.bare_content().with_transport(transport),
        )
    }

    /// Sends the file's hashes in session-info `<checksum/>` (after an offer that named
    /// them in `<hash-used/>`).
    pub fn send_checksum(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        hashes: Vec<Hash>,
    ) -> Result<String, Misuse> {
        let c = Checksum::new(
            self.content.creator.clone(),
            self.content.name.clone(),
            hashes,
        );
        ep.session_info(now, &self.key, Some(Element::from(&c)))
    }

    /// Sends session-info `<received/>` (we have the whole file).
    pub fn send_received(&mut self, ep: &mut Endpoint, now: Instant) -> Result<String, Misuse> {
        let r = Received {
            creator: Some(self.content.creator.clone()),
            name: Some(self.content.name.clone()),
        };
        ep.session_info(now, &self.key, Some(Element::from(&r)))
    }

    /// Takes the core's event if it is this session's; `None` for other sessions' events
    /// (and for the acks of our own iqs).
    pub fn handle(&mut self, ev: &Event) -> Option<FtEvent> {
        let (key, out) = match ev {
            Event::Accepted { key, contents } if key == &self.key => {
                let c = contents
                    .iter()
                    .find(|c| c.is(&self.content.creator, &self.content.name));
                self.peer_transport = c.and_then(|c| c.transport.clone());
                let described = c
                    .and_then(|c| c.description.as_ref())
                    .and_then(|d| FileInfo::from_description(d).ok());
                if self.role == Role::Initiator
                    && self.direction == Direction::Receive
                    && let Some(f) = &described
                {
                    // Our request: the responder's accept describes the file it serves.
                    self.take_served(f);
                }
                let range = described
                    .and_then(|f| f.range)
                    // an echoed empty <range/> asks for the whole file
                    .filter(|r| r.offset > 0 || r.length.is_some());
                self.state = FtState::Accepted;
                let transport = self.peer_transport.clone();
                (key, FtEvent::Accepted { transport, range })
            }
            Event::TransportInfo { key, content, .. } => {
                (key, FtEvent::TransportInfo(content.transport.clone()?))
            }
            Event::TransportReplace { key, content } => {
                (key, FtEvent::TransportReplace(content.transport.clone()?))
            }
            Event::TransportAccepted { key, content } => {
                (key, FtEvent::TransportAccepted(content.transport.clone()))
            }
            Event::TransportRejected { key, .. } => (key, FtEvent::TransportRejected),
            Event::SessionInfo { key, payload } if key == &self.key => {
                let info = FtInfo::parse(payload).ok()?;
                if !info.is_for(&self.content.creator, &self.content.name) {
                    return None;
                }
                match info {
                    FtInfo::Checksum(c) => {
                        for h in &c.hashes {
                            self.hashes.retain(|x| x.algo != h.algo);
                            self.hashes.push(h.clone());
                        }
                        (key, FtEvent::Checksum(c))
                    }
                    FtInfo::Received(_) => (key, FtEvent::Received),
                }
            }
            Event::RequestFailed {
                key, action, error, ..
            } => (
                key,
                FtEvent::RequestFailed {
                    action: action.clone(),
                    error: error.clone(),
                },
            ),
            Event::Ended { key, cause } => {
                let reason = match cause {
                    EndCause::ByPeer(r) => r.as_ref().map(|r| r.reason.clone()),
                    EndCause::ByUs(r) => Some(r.clone()),
                    EndCause::Timeout => Some(Reason::Timeout),
                    _ => None,
                };
                if key == &self.key {
                    self.state = FtState::Ended;
                }
                (
                    key,
                    FtEvent::Ended {
                        reason,
                        cause: cause.clone(),
                    },
                )
            }
            _ => return None,
        };
        (key == &self.key).then_some(out)
    }

    /// Compares the digests we computed while streaming with every hash the peer
    /// announced (in the description and in `<checksum/>`s).
    pub fn verify(&self, computed: &[Hash]) -> Verdict {
        let mut any = false;
        for h in &self.hashes {
            if let Some(c) = computed.iter().find(|c| c.algo == h.algo) {
                if c.hash != h.hash {
                    return Verdict::Mismatch(h.clone());
                }
                any = true;
            }
        }
        if any {
            Verdict::Match
        } else {
            Verdict::Unverified
        }
    }

    /// For a peer's request (we are the responder and send): the file we serve, described
    /// in full (name, size, date, hashes) in our session-accept, so that the requester
    /// learns its size and can check what it receives. Call before [`FtSession::accept`].
    pub fn serve(&mut self, file: FileInfo) {
        self.file = file;
    }

    /// What the responder's session-accept says of the file we requested: its size, date,
    /// media type and hashes complete the request (the name stays ours when it has none).
    /// A hash we asked for stays the one the bytes must match: the responder's own hash
    /// of that algorithm does not replace it.
    fn take_served(&mut self, f: &FileInfo) {
        let mut file = f.clone();
        if file.name.is_none() {
            file.name = self.file.name.clone();
        }
        file.range = None;
        for h in &f.hashes {
            if !self.hashes.iter().any(|x| x.algo == h.algo) {
                self.hashes.push(h.clone());
            }
        }
        file.hashes = self.hashes.clone();
        self.file = file;
    }

    fn bare_content(&self) -> Content {
        Content::new(self.content.creator.clone(), self.content.name.0.clone())
            .with_senders(self.content.senders.clone())
    }

    /// The session.
    pub fn key(&self) -> &SessionKey {
        &self.key
    }
    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }
    /// Which way the bytes go.
    pub fn direction(&self) -> Direction {
        self.direction
    }
    /// Where the negotiation is.
    pub fn state(&self) -> FtState {
        self.state
    }
    /// The file as offered or requested (after [`FtSession::accept`], with our range).
    pub fn file(&self) -> &FileInfo {
        &self.file
    }
    /// The content's name.
    pub fn content_name(&self) -> &ContentId {
        &self.content.name
    }
    /// The peer's latest `<transport/>` (its offer's, then its accept's).
    pub fn peer_transport(&self) -> Option<&Element> {
        self.peer_transport.as_ref()
    }
    /// Every hash the peer announced so far (one per algorithm, the latest).
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }
}
