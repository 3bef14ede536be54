//! An incoming open nobody pre-authorised, for the application to accept or reject.

use super::*;

pub(super) type Decide = Box<dyn FnOnce(bool) -> Result<IbbStream, Error> + Send>;

/// An incoming open that was not pre-authorised. Dropping it rejects it.
pub struct IncomingOpen {
    pub(super) peer: Jid,
    pub(super) sid: Sid,
    pub(super) block_size: u16,
    pub(super) stanza: StanzaKind,
    pub(super) decide: Option<Decide>,
}

impl fmt::Debug for IncomingOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncomingOpen")
            .field("peer", &self.peer.to_string())
            .field("sid", &self.sid)
            .field("block_size", &self.block_size)
            .field("stanza", &self.stanza)
            .finish()
    }
}

impl IncomingOpen {
    /// Who asks.
    pub fn peer(&self) -> &Jid {
        &self.peer
    }

    /// The sid.
    pub fn sid(&self) -> &Sid {
        &self.sid
    }

    /// The proposed block-size.
    pub fn block_size(&self) -> u16 {
        self.block_size
    }

    /// The proposed stanza kind.
    pub fn stanza(&self) -> StanzaKind {
        self.stanza
    }

    /// Accepts: answers the open and returns the stream.
    pub fn accept(mut self) -> Result<IbbStream, Error> {
        match self.decide.take() {
            Some(f) => f(true),
            None => Err(MisuseError::SidInUse.into()),
        }
    }

    /// Rejects with `cancel/not-acceptable`.
    pub fn reject(mut self) {
        if let Some(f) = self.decide.take() {
            let _ = f(false);
        }
    }
}

impl Drop for IncomingOpen {
    fn drop(&mut self) {
        if let Some(f) = self.decide.take() {
            let _ = f(false);
        }
    }
}
