//! The receiver: an incoming offer of any stack, accepted into a directory or a writer, or
//! declined. The transfer itself runs in [`crate::receive`].

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use ft_transport::{Sid, Stanza, StanzaTransport};
use jid::Jid;
use tokio::io::AsyncWrite;

use crate::error::{ErrorKind, Misuse, Stage, TransferError};
use crate::event::FileInfo;
use crate::handle::{TransferHandle, pair};
use crate::options::AcceptOptions;
use crate::receive::{Destination, receive};
use crate::shared::Shared;
use crate::stack::{Refuse, StackOffer};

/// An offer the application has not answered yet (or one the policy auto-accepted: see
/// [`take_auto_accepted`](Self::take_auto_accepted)). Dropping it unanswered declines it.
pub struct IncomingOffer<T: StanzaTransport + Clone> {
    shared: Arc<Shared<T>>,
    /// The offer of whichever stack brought it; `None` once answered.
    offer: Option<StackOffer>,
    from: Jid,
    key: (Jid, Sid),
    info: FileInfo,
    stack: crate::Stack,
    auto: Option<TransferHandle>,
}

impl<T: StanzaTransport + Clone> fmt::Debug for IncomingOffer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncomingOffer")
            .field("from", &self.from.to_string())
            .field("sid", &self.key.1)
            .field("file", &self.info)
            .field("auto_accepted", &self.auto.is_some())
            .finish()
    }
}

impl<T: StanzaTransport + Clone> IncomingOffer<T> {
    pub(crate) fn new(
        shared: Arc<Shared<T>>,
        offer: StackOffer,
        from: Jid,
        key: (Jid, Sid),
    ) -> Self {
        if let Some(bad) = offer.bad_hash() {
            // BAD-INPUT B10: not 32 hex digits; treated as absent.
            tracing::warn!(
                "ft-facade: the offer's hash {:?} is not an MD5; ignored",
                cap(bad, 64)
            );
        }
        let mut info = offer.file_info();
        // BAD-INPUT B11: a description is for display; more than 1 KiB is cut.
        info.desc = info.desc.as_deref().map(|d| cap(d, MAX_DESC).to_owned());
        let stack = offer.stack();
        Self {
            shared,
            offer: Some(offer),
            from,
            key,
            info,
            stack,
            auto: None,
        }
    }

    /// Who offers.
    pub fn from(&self) -> &Jid {
        &self.from
    }

    /// The stream id.
    pub fn sid(&self) -> &Sid {
        &self.key.1
    }

    /// The file as offered (the name is the peer's; it is made safe on accept).
    pub fn file(&self) -> &FileInfo {
        &self.info
    }

    /// The stack the offer came by: [`Stack::Si`](crate::Stack::Si) or
    /// [`Stack::Jingle`](crate::Stack::Jingle).
    pub fn stack(&self) -> crate::Stack {
        self.stack
    }

    /// The methods the peer offered (SI namespaces, in its order; for Jingle the
    /// transport namespaces).
    pub fn methods(&self) -> Vec<String> {
        self.offer
            .as_ref()
            .map(StackOffer::methods)
            .unwrap_or_default()
    }

    /// Whether the policy already accepted this offer; if so, its handle (once).
    pub fn take_auto_accepted(&mut self) -> Option<TransferHandle> {
        self.auto.take()
    }

    pub(crate) fn auto_accept(&mut self, dir: PathBuf) {
        if let Some(offer) = self.offer.take() {
            self.auto = Some(self.start(offer, Destination::Dir(dir), AcceptOptions::new()));
        }
    }

    /// Declines: SI with `cancel/forbidden` (XEP-0095 §3.2) and an optional reason, Jingle
    /// with session-terminate `<decline/>`.
    pub fn decline(mut self, reason: Option<&str>) {
        // An auto-accepted offer is the running transfer's: cancel its handle instead.
        if let Some(offer) = self.offer.take() {
            offer.refuse(&self.shared, Refuse::Decline(reason));
            self.release();
        }
    }

    /// Declined because too many offers wait (`wait/resource-constraint`).
    /// Refuses with `wait/resource-constraint`; returns the answer sent.
    pub(crate) fn refuse_busy(mut self) -> Option<Stanza> {
        let offer = self.offer.take()?;
        let answer = offer.refuse(&self.shared, Refuse::Busy);
        self.release();
        answer
    }

    fn release(&self) {
        self.shared.release_incoming(&self.key);
    }

    /// Accepts into `dir`: the peer's name made safe, written to `<name>.part`, checked
    /// (size, and the offered hash, MD5 for SI), then renamed into place (see
    /// [`AcceptOptions`]).
    pub fn accept_into_dir(
        mut self,
        dir: impl Into<PathBuf>,
        options: AcceptOptions,
    ) -> TransferHandle {
        match self.offer.take() {
            Some(offer) => self.start(offer, Destination::Dir(dir.into()), options),
            None => self.already_answered(),
        }
    }

    /// Accepts into any writer. With [`AcceptOptions::offset`] the sender is asked for the
    /// bytes from there on (if it announced ranges). The size is checked; the MD5 only for a
    /// whole file.
    pub fn accept_into<W>(mut self, writer: W, options: AcceptOptions) -> TransferHandle
    where
        W: AsyncWrite + Send + Unpin + 'static,
    {
        match self.offer.take() {
            Some(offer) => self.start(offer, Destination::Writer(Box::pin(writer)), options),
            None => self.already_answered(),
        }
    }

    fn already_answered(&mut self) -> TransferHandle {
        let (handle, side) = pair(self.key.1.clone(), self.from.clone(), self.info.size);
        side.finish(Err(TransferError::new(
            Stage::Offer,
            ErrorKind::Misuse(Misuse::AlreadyAnswered),
        )));
        handle
    }

    fn start(
        &mut self,
        offer: StackOffer,
        sink: Destination,
        options: AcceptOptions,
    ) -> TransferHandle {
        let (handle, side) = pair(self.key.1.clone(), self.from.clone(), self.info.size);
        let shared = self.shared.clone();
        let from = self.from.clone();
        let key = self.key.clone();
        tokio::spawn(async move {
            let mut side = side;
            let r = receive(&shared, &mut side, offer, from, sink, options).await;
            shared.release_incoming(&key);
            side.finish(r);
        });
        handle
    }
}

impl<T: StanzaTransport + Clone> Drop for IncomingOffer<T> {
    fn drop(&mut self) {
        if let Some(offer) = self.offer.take() {
            offer.refuse(&self.shared, Refuse::Decline(None));
            self.release();
        }
    }
}

/// The longest offer description kept for display (BAD-INPUT B11), in bytes.
pub(crate) const MAX_DESC: usize = 1024;

/// `s` cut to at most `max` bytes, at a character boundary.
pub(crate) fn cap(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
