//! The reader task: decodes the stream with the codec, answers the server's pings and
//! malformed requests, keeps the connection alive, and hands every other stanza on.

use futures_util::StreamExt;
use jid::Jid;
use tokio::io::AsyncRead;
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::ns;
use xmpp_parsers::ping::Ping;
use xmpp_parsers::stanza::Stanza;

use super::session::SessionConfig;
use crate::codec::{CodecError, EncodedStanza, Incoming, XmlCodec};

/// Reads until the stream ends, fails, or stays silent too long. Stanzas go to `inbound`
/// (waiting while it is full: backpressure); answers the adapter writes itself go to
/// `own`. Ending drops `own`, which makes the writer close the stream.
pub(super) async fn run<R: AsyncRead + Unpin>(
    mut frames: FramedRead<R, XmlCodec>,
    codec: XmlCodec,
    config: SessionConfig,
    own: mpsc::Sender<EncodedStanza>,
    inbound: mpsc::Sender<Stanza>,
) {
    let jid = &config.jid;
    let send_own = |stanza: Stanza| own.send(codec.encode_parts(stanza));
    let mut inbound_open = true;
    // The id of our unanswered keepalive ping, if the stream has gone silent once.
    let mut keepalive: Option<String> = None;
    let mut silent = false;
    let mut keepalives: u64 = 0;
    loop {
        let wait = if silent {
            config.response_timeout
        } else {
            config.read_timeout
        };
        let item = match tokio::time::timeout(wait, frames.next()).await {
            Err(_) if silent => {
                tracing::warn!(%jid, "the xmpp stream stayed silent, giving up");
                break;
            }
            Err(_) => {
                silent = true;
                if config.client {
                    // Silence: ping the server, whose answer (or anything else) ends it.
                    keepalives += 1;
                    let id = format!("xft-keepalive-{keepalives}");
                    let ping =
                        Iq::from_get(id.clone(), Ping).with_to(Jid::from(jid.domain().to_owned()));
                    keepalive = Some(id);
                    if send_own(ping.into()).await.is_err() {
                        break;
                    }
                }
                continue;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                fail(&own, jid, &e).await;
                break;
            }
            Ok(Some(Ok(item))) => item,
        };
        silent = false;
        match item {
            Incoming::Stanza(stanza) => {
                if config.client {
                    if let Some(answer) = answer_server_ping(&stanza, jid) {
                        if send_own(answer.into()).await.is_err() {
                            break;
                        }
                        continue;
                    }
                    if is_keepalive_answer(&stanza, keepalive.as_deref()) {
                        keepalive = None;
                        continue;
                    }
                }
                if inbound_open && inbound.send(stanza).await.is_err() {
                    // Nobody reads any more; keep the stream (and its sends) going.
                    inbound_open = false;
                }
            }
            Incoming::Malformed(m) => match m.bad_request() {
                Some(reply) => {
                    tracing::warn!(from = ?m.from, id = ?m.id, error = %m.reason, "answering a malformed iq with bad-request");
                    if send_own(reply.into()).await.is_err() {
                        break;
                    }
                }
                None => {
                    tracing::warn!(element = %m.name, type_ = ?m.type_, from = ?m.from, id = ?m.id, error = %m.reason, "dropped an inbound element that does not parse");
                }
            },
            Incoming::Element(el) => {
                tracing::debug!(%jid, element = %el.name(), ns = %el.ns(), "skipped a top-level element that is no stanza");
            }
            Incoming::End => break,
        }
    }
}

/// Logs why the stream ended and, where RFC 6120 calls for one, sends the stream error.
async fn fail(own: &mpsc::Sender<EncodedStanza>, jid: &Jid, e: &CodecError) {
    match e {
        CodecError::StreamError(condition) => {
            tracing::warn!(%jid, %condition, "the server closed the stream with an error");
        }
        CodecError::Io(e) => tracing::warn!(%jid, error = %e, "the xmpp connection broke"),
        e => {
            tracing::warn!(%jid, error = %e, "the xmpp stream broke");
            if let Some(condition) = e.condition() {
                let _ = own.send(EncodedStanza::stream_error(condition)).await;
            }
        }
    }
}

/// Whether `from` is the server itself (absent, our domain, or our own bare JID).
pub(super) fn from_server(from: Option<&Jid>, own: &Jid) -> bool {
    match from {
        None => true,
        Some(from) => {
            from.resource().is_none()
                && (from.node().is_none() && from.domain() == own.domain()
                    || from.to_bare() == own.to_bare())
        }
    }
}

/// The answer to a server's XEP-0199 ping, if `stanza` is one.
pub(super) fn answer_server_ping(stanza: &Stanza, own: &Jid) -> Option<Iq> {
    let Stanza::Iq(Iq::Get {
        from, id, payload, ..
    }) = stanza
    else {
        return None;
    };
    if !payload.is("ping", ns::PING) || !from_server(from.as_ref(), own) {
        return None;
    }
    Some(Iq::Result {
        from: None,
        to: from.clone(),
        id: id.clone(),
        payload: None,
    })
}

/// Whether `stanza` answers our keepalive ping `id`.
pub(super) fn is_keepalive_answer(stanza: &Stanza, id: Option<&str>) -> bool {
    match (stanza, id) {
        (Stanza::Iq(iq @ (Iq::Result { .. } | Iq::Error { .. })), Some(id)) => iq.id() == id,
        _ => false,
    }
}
