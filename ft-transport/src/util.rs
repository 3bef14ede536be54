//! Small helpers over xmpp-parsers stanzas shared by every xft crate.

use jid::Jid;
use xmpp_parsers::{
    iq::Iq,
    message::Message,
    stanza::Stanza,
    stanza_error::{DefinedCondition, ErrorType, StanzaError},
};

/// The `from` of any stanza.
pub fn stanza_from(stanza: &Stanza) -> Option<&Jid> {
    match stanza {
        Stanza::Iq(iq) => iq.from(),
        Stanza::Message(m) => m.from.as_ref(),
        Stanza::Presence(p) => p.from.as_ref(),
    }
}

/// The `to` of any stanza.
pub fn stanza_to(stanza: &Stanza) -> Option<&Jid> {
    match stanza {
        Stanza::Iq(iq) => iq.to(),
        Stanza::Message(m) => m.to.as_ref(),
        Stanza::Presence(p) => p.to.as_ref(),
    }
}

/// Sets the `from` of any stanza.
pub fn set_stanza_from(stanza: &mut Stanza, from: Option<Jid>) {
    match stanza {
        Stanza::Iq(iq) => *iq.from_mut() = from,
        Stanza::Message(m) => m.from = from,
        Stanza::Presence(p) => p.from = from,
    }
}

/// A stanza error with no text, in the form every xft crate sends.
pub fn stanza_error(type_: ErrorType, condition: DefinedCondition) -> StanzaError {
    StanzaError::new(type_, condition, "en", "")
}

/// The error reply to a request iq, addressed back to its sender, or `None` if `iq` is itself
/// a result or an error (those are never answered).
pub fn iq_error_reply(iq: &Iq, error: StanzaError) -> Option<Iq> {
    match iq {
        Iq::Get { .. } | Iq::Set { .. } => {
            let mut reply = Iq::from_error(iq.id().to_owned(), error);
            *reply.to_mut() = iq.from().cloned();
            Some(reply)
        }
        _ => None,
    }
}

/// The error reply to a message, or `None` if it is already an error.
pub fn message_error_reply(message: &Message, error: StanzaError) -> Option<Message> {
    use xmpp_parsers::message::MessageType;
    if message.type_ == MessageType::Error {
        return None;
    }
    let mut reply = Message::new(message.from.clone());
    reply.type_ = MessageType::Error;
    reply.id = message.id.clone();
    reply.payloads.push(error.into());
    Some(reply)
}

/// The error reply to any stanza (iq request or message), or `None` where none is due.
pub fn error_reply(stanza: &Stanza, error: StanzaError) -> Option<Stanza> {
    match stanza {
        Stanza::Iq(iq) => iq_error_reply(iq, error).map(Stanza::Iq),
        Stanza::Message(m) => message_error_reply(m, error).map(Stanza::Message),
        Stanza::Presence(_) => None,
    }
}
