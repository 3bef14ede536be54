//! The one inbound loop: every stanza from a source through a chain of handlers.

use std::future::Future;
use std::ops::ControlFlow;

use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

use crate::util::{iq_error_reply, stanza_error};
use crate::{StanzaHandler, StanzaTransport};

/// Somewhere inbound stanzas come from, one at a time, until the stream ends: an
/// [`xmpp::Inbound`](crate::xmpp::Inbound), a [`hub::HubReceiver`](crate::hub::HubReceiver),
/// a tokio channel.
pub trait StanzaSource: Send {
    /// The next stanza; `None` once the stream is gone.
    fn next_stanza(&mut self) -> impl Future<Output = Option<Stanza>> + Send;
}

impl StanzaSource for tokio::sync::mpsc::Receiver<Stanza> {
    fn next_stanza(&mut self) -> impl Future<Output = Option<Stanza>> + Send {
        self.recv()
    }
}

impl StanzaSource for tokio::sync::mpsc::UnboundedReceiver<Stanza> {
    fn next_stanza(&mut self) -> impl Future<Output = Option<Stanza>> + Send {
        self.recv()
    }
}

#[cfg(feature = "hub")]
impl StanzaSource for crate::hub::HubReceiver {
    fn next_stanza(&mut self) -> impl Future<Output = Option<Stanza>> + Send {
        self.recv()
    }
}

#[cfg(feature = "tokio-xmpp")]
impl StanzaSource for crate::xmpp::Inbound {
    fn next_stanza(&mut self) -> impl Future<Output = Option<Stanza>> + Send {
        self.next()
    }
}

/// Feeds every stanza from `source` to `handlers` (one handler, or a tuple, slice or `Vec`
/// of them, tried in order) until the source ends, waiting for
/// [`StanzaHandler::ready`] before each. A stanza no handler takes is logged at
/// debug level (feature `tokio-xmpp`) and dropped; put a closure last to do otherwise.
///
/// ```
/// use std::ops::ControlFlow;
/// use std::sync::Mutex;
/// use ft_transport::pump;
/// use xmpp_parsers::{iq::Iq, ping::Ping, presence::Presence, stanza::Stanza};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let (tx, rx) = tokio::sync::mpsc::channel(4);
/// tx.send(Stanza::Iq(Iq::from_get("p1", Ping))).await.unwrap();
/// tx.send(Stanza::Presence(Presence::available())).await.unwrap();
/// drop(tx);
///
/// let ignore_presence = |s: Stanza| match s {
///     Stanza::Presence(_) => ControlFlow::Break(()),
///     other => ControlFlow::Continue(other),
/// };
/// let seen = Mutex::new(Vec::new());
/// let record = |s: Stanza| {
///     seen.lock().unwrap().push(s);
///     ControlFlow::Break(())
/// };
/// pump(rx, (ignore_presence, record)).await;
/// assert_eq!(seen.lock().unwrap().len(), 1);
/// # });
/// ```
pub async fn pump<S: StanzaSource, H: StanzaHandler>(mut source: S, handlers: H) {
    while let Some(stanza) = source.next_stanza().await {
        handlers.ready().await;
        if let ControlFlow::Continue(_unhandled) = handlers.handle_stanza(stanza) {
            #[cfg(feature = "tokio-xmpp")]
            tracing::debug!(stanza = ?_unhandled, "no handler took an inbound stanza");
        }
    }
}

/// [`pump`], answering every iq request no handler takes with `cancel`/`service-unavailable`
/// through `transport`, as RFC 6120 §8.4 asks of every entity. When `transport` is a
/// component (its JID a bare domain), the answer's `from` is the request's `to`, since a
/// component sets `from` itself.
pub async fn pump_refusing<S, H, T>(mut source: S, handlers: H, transport: &T)
where
    S: StanzaSource,
    H: StanzaHandler,
    T: StanzaTransport,
{
    let component = transport.jid().node().is_none() && transport.jid().resource().is_none();
    while let Some(stanza) = source.next_stanza().await {
        handlers.ready().await;
        match handlers.handle_stanza(stanza) {
            ControlFlow::Break(()) => {}
            ControlFlow::Continue(Stanza::Iq(iq)) => {
                let e = stanza_error(ErrorType::Cancel, DefinedCondition::ServiceUnavailable);
                if let Some(mut reply) = iq_error_reply(&iq, e) {
                    if component {
                        *reply.from_mut() = iq.to().cloned();
                    }
                    // A failed send means the stream is gone; the source ends next.
                    let _ = transport.send(Stanza::Iq(reply)).await;
                }
            }
            ControlFlow::Continue(_unhandled) => {
                #[cfg(feature = "tokio-xmpp")]
                tracing::debug!(stanza = ?_unhandled, "no handler took an inbound stanza");
            }
        }
    }
}
