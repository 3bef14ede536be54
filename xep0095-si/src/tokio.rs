//! The async driver: send an offer and wait for the answer.

use std::time::Duration;

use ft_transport::StanzaTransport;
use ft_transport::iq::{IqError, IqTracker};
use jid::Jid;
use xmpp_parsers::iq::Iq;

use crate::error::{Error, Misuse, Rejection, SiError};
use crate::payload::{Si, offered_methods};
use crate::proto::{Accepted, offer_iq, parse_result_payload};

/// Sends `si` as an offer to `to` and waits at most `timeout` for the answer.
///
/// Inbound stanzas must reach `tracker.handle_stanza` meanwhile (the application's receive
/// loop does that). The iq id is the tracker's. Returns the accepted method (one we offered;
/// with several values in the answer, the first of ours the peer named), or the typed
/// rejection, [`Error::Timeout`], or [`Error::Protocol`] for an answer that breaks the XEP.
pub async fn offer<T: StanzaTransport>(
    tracker: &IqTracker,
    transport: &T,
    to: Jid,
    si: Si,
    timeout: Duration,
) -> Result<Accepted, Error> {
    let offered = si
        .form()
        .map(offered_methods)
        .transpose()
        .map_err(|_| Misuse::NoMethods)?
        .ok_or(Misuse::NoMethods)?;
    let iq: Iq = offer_iq(tracker.next_id(), to, si)?;
    match tracker.request(transport, iq, timeout).await {
        Ok(Some(payload)) => Ok(parse_result_payload(&offered, &payload)?),
        Ok(None) => Err(Error::Protocol(SiError::MissingFeature)),
        Err(IqError::Rejected(e)) => Err(Error::Rejected(Rejection::from(*e))),
        Err(IqError::Timeout(d)) => Err(Error::Timeout(d)),
        Err(e) => Err(Error::Send(Box::new(e))),
    }
}
