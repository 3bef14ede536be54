//! Incoming `<open/>`s before a session exists, and the stanzas no session claims.

use super::*;

/// An incoming `<open/>` not yet accepted or rejected.
#[derive(Debug, Clone)]
pub struct IncomingOpen {
    /// Who sent it.
    pub peer: Jid,
    /// The iq id to answer.
    pub id: String,
    /// What it asks for.
    pub open: Open,
}

impl IncomingOpen {
    /// Recognises an `<iq type='set'><open/></iq>`: `None` if the stanza is something else,
    /// `Some(Err(reply))` if it is a malformed open (the reply is `modify/bad-request`).
    pub fn parse(stanza: &Stanza) -> Option<Result<Self, Stanza>> {
        let Stanza::Iq(Iq::Set {
            from, id, payload, ..
        }) = stanza
        else {
            return None;
        };
        if !payload.is("open", NS_IBB) {
            return None;
        }
        let peer = from.clone()?;
        Some(match Open::parse(payload) {
            Ok(open) => Ok(Self {
                peer,
                id: id.clone(),
                open,
            }),
            Err(_) => Err(iq_error(
                Some(peer),
                id.clone(),
                err(ErrorType::Modify, DefinedCondition::BadRequest),
            )),
        })
    }

    /// Checks the open against the local limit: above [`Config::max_block_size`] it is
    /// [`ProtocolError::BlockSizeTooLarge`] (`modify/resource-constraint`).
    pub fn check(&self, config: &Config) -> Result<(), ProtocolError> {
        if self.open.block_size > config.max_block_size {
            return Err(ProtocolError::BlockSizeTooLarge {
                requested: self.open.block_size,
                limit: config.max_block_size,
            });
        }
        Ok(())
    }

    /// The error answer to this open.
    pub fn reject(&self, error: StanzaError) -> Stanza {
        iq_error(Some(self.peer.clone()), self.id.clone(), error)
    }
}

/// The answer to an IBB `<data/>` or `<close/>` that no session claimed:
/// `cancel/item-not-found` (XEP-0047 §2.2, §2.3). `None` if the stanza is not one.
pub fn reply_unknown_session(stanza: &Stanza) -> Option<Stanza> {
    let e = StanzaError::from(&ProtocolError::UnknownSession);
    match stanza {
        Stanza::Iq(Iq::Set {
            from, id, payload, ..
        }) if payload.has_ns(NS_IBB) && !payload.is("open", NS_IBB) => {
            Some(iq_error(from.clone(), id.clone(), e))
        }
        Stanza::Message(m)
            if m.type_ != MessageType::Error && m.payloads.iter().any(|p| p.is("data", NS_IBB)) =>
        {
            Some(Stanza::Message(message_error(m, e)))
        }
        _ => None,
    }
}

/// The sid of the IBB payload of a stanza, if it has one.
pub fn stanza_sid(stanza: &Stanza) -> Option<Sid> {
    match stanza {
        Stanza::Iq(Iq::Set { payload, .. }) => crate::payload::peek_sid(payload),
        Stanza::Message(m) => m.payloads.iter().find_map(crate::payload::peek_sid),
        _ => None,
    }
}

/// Parses any IBB payload carried by a stanza (for tests and tools).
pub fn stanza_payload(stanza: &Stanza) -> Option<Result<Payload, PayloadError>> {
    let elem = match stanza {
        Stanza::Iq(Iq::Set { payload, .. }) => payload,
        Stanza::Message(m) => m.payloads.iter().find(|p| p.has_ns(NS_IBB))?,
        _ => return None,
    };
    Payload::parse(elem).transpose()
}
