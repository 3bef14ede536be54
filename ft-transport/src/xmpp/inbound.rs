//! The reading side of a session: [`Inbound`] decodes the stream with the codec as it is
//! polled (no task and no queue between the socket and the handlers), answers the server's
//! pings and malformed requests, keeps the connection alive, and hands every other stanza on.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use jid::Jid;
use tokio::io::AsyncRead;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tokio_util::codec::FramedRead;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::ns;
use xmpp_parsers::ping::Ping;
use xmpp_parsers::stanza::Stanza;

use super::session::SessionConfig;
use crate::codec::{CodecError, EncodedStanza, Incoming, XmlCodec};

type ReadIo = Box<dyn AsyncRead + Send + Unpin>;

/// The inbound stanzas of a session (a client's or a component's).
///
/// The stream is read while this is polled ([`Inbound::next`], or as a `futures` stream):
/// a handler that is slow to ask for the next stanza stops the reading, which is TCP
/// backpressure to the server. Dropping it hands the stream to a background task that
/// keeps reading (and answering the server's pings) and drops what arrives, so the
/// transport keeps working.
#[derive(Debug)]
pub struct Inbound {
    reader: Option<Reader>,
}

impl Inbound {
    pub(super) fn new<R: AsyncRead + Send + Unpin + 'static>(
        r: R,
        codec: XmlCodec,
        config: SessionConfig,
        own: mpsc::Sender<EncodedStanza>,
    ) -> Self {
        let read: ReadIo = Box::new(r);
        let deadline = Box::pin(tokio::time::sleep(config.read_timeout));
        Self {
            reader: Some(Reader {
                frames: FramedRead::new(read, codec.clone()),
                codec,
                config,
                own,
                deadline,
                last_read: Instant::now(),
                silent: false,
                keepalive: None,
                keepalives: 0,
            }),
        }
    }

    /// The next inbound stanza; `None` once the connection is gone (closed by us, by the
    /// server, or lost: the adapter does not reconnect). Cancel-safe.
    pub async fn next(&mut self) -> Option<Stanza> {
        poll_fn(|cx| self.poll_stanza(cx)).await
    }

    fn poll_stanza(&mut self, cx: &mut Context<'_>) -> Poll<Option<Stanza>> {
        let Some(reader) = self.reader.as_mut() else {
            return Poll::Ready(None);
        };
        let got = reader.poll_stanza(cx);
        if let Poll::Ready(None) = got {
            // Dropping the reader drops its answer queue: the writer closes the stream.
            self.reader = None;
        }
        got
    }
}

/// The same stanzas as [`Inbound::next`], as a `futures` stream.
impl Stream for Inbound {
    type Item = Stanza;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Stanza>> {
        self.get_mut().poll_stanza(cx)
    }
}

impl Drop for Inbound {
    fn drop(&mut self) {
        let Some(mut reader) = self.reader.take() else {
            return;
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { while poll_fn(|cx| reader.poll_stanza(cx)).await.is_some() {} });
        }
    }
}

/// What became of one decoded item.
#[allow(
    clippy::large_enum_variant,
    reason = "returned by value at once; boxing would cost an allocation per stanza"
)]
enum Taken {
    /// A stanza for the handlers.
    Stanza(Stanza),
    /// Answered or dropped here.
    Handled,
    /// The stream is over.
    End,
}

struct Reader {
    frames: FramedRead<ReadIo, XmlCodec>,
    /// Encodes the answers (the stream's namespace).
    codec: XmlCodec,
    config: SessionConfig,
    /// Answers the adapter writes itself; dropping it makes the writer close the stream.
    own: mpsc::Sender<EncodedStanza>,
    /// When the silence timer next looks at the stream.
    deadline: Pin<Box<Sleep>>,
    /// When the last element arrived.
    last_read: Instant,
    /// The stream has been silent for `read_timeout`.
    silent: bool,
    /// The id of our unanswered keepalive ping.
    keepalive: Option<String>,
    keepalives: u64,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("jid", &self.config.jid)
            .field("silent", &self.silent)
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// Queues an answer of the adapter's own. Best effort: with the writer's queue full
    /// (the server is not reading) it is dropped, so reading never waits on writing.
    fn answer(&self, stanza: Stanza) {
        if self.own.try_send(self.codec.encode_parts(stanza)).is_err() {
            tracing::debug!(jid = %self.config.jid, "dropped an automatic answer: the writer is busy or gone");
        }
    }

    /// The silence timer fired: ping the server once, give up the second time. `false`
    /// once the stream is given up.
    fn on_silence(&mut self) -> bool {
        let quiet_for = self.last_read.elapsed();
        let limit = if self.silent {
            self.config.response_timeout
        } else {
            self.config.read_timeout
        };
        if quiet_for < limit && !self.silent {
            // Something arrived since the timer was set: look again later.
            self.rearm(limit - quiet_for);
            return true;
        }
        if self.silent {
            tracing::warn!(jid = %self.config.jid, "the xmpp stream stayed silent, giving up");
            return false;
        }
        self.silent = true;
        if self.config.client {
            // Silence: ping the server, whose answer (or anything else) ends it.
            self.keepalives += 1;
            let id = format!("xft-keepalive-{}", self.keepalives);
            let ping = Iq::from_get(id.clone(), Ping)
                .with_to(Jid::from(self.config.jid.domain().to_owned()));
            self.keepalive = Some(id);
            self.answer(ping.into());
        }
        self.rearm(self.config.response_timeout);
        true
    }

    fn rearm(&mut self, after: Duration) {
        self.deadline.as_mut().reset(Instant::now() + after);
    }

    fn poll_stanza(&mut self, cx: &mut Context<'_>) -> Poll<Option<Stanza>> {
        loop {
            let item = match Pin::new(&mut self.frames).poll_next(cx) {
                Poll::Pending => {
                    if self.deadline.as_mut().poll(cx).is_ready() {
                        if !self.on_silence() {
                            return Poll::Ready(None);
                        }
                        // Poll the re-armed timer so that it wakes us.
                        continue;
                    }
                    return Poll::Pending;
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(e))) => {
                    self.fail(&e);
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Ok(item))) => item,
            };
            self.last_read = Instant::now();
            if self.silent {
                self.silent = false;
                self.rearm(self.config.read_timeout);
            }
            match self.take(item) {
                Taken::Stanza(stanza) => return Poll::Ready(Some(stanza)),
                Taken::Handled => {}
                Taken::End => return Poll::Ready(None),
            }
        }
    }

    /// What becomes of one decoded item.
    fn take(&mut self, item: Incoming) -> Taken {
        let jid = &self.config.jid;
        match item {
            Incoming::Stanza(stanza) => {
                if self.config.client {
                    if let Some(answer) = answer_server_ping(&stanza, jid) {
                        self.answer(answer.into());
                        return Taken::Handled;
                    }
                    if is_keepalive_answer(&stanza, self.keepalive.as_deref()) {
                        self.keepalive = None;
                        return Taken::Handled;
                    }
                }
                return Taken::Stanza(stanza);
            }
            Incoming::Malformed(m) => match m.bad_request() {
                Some(reply) => {
                    tracing::warn!(from = ?m.from, id = ?m.id, error = %m.reason, "answering a malformed iq with bad-request");
                    self.answer(reply.into());
                }
                None => {
                    tracing::warn!(element = %m.name, type_ = ?m.type_, from = ?m.from, id = ?m.id, error = %m.reason, "dropped an inbound element that does not parse");
                }
            },
            Incoming::Element(el) => {
                tracing::debug!(%jid, element = %el.name(), ns = %el.ns(), "skipped a top-level element that is no stanza");
            }
            Incoming::End => return Taken::End,
        }
        Taken::Handled
    }

    /// Logs why the stream ended and, where RFC 6120 calls for one, sends the stream error.
    fn fail(&self, e: &CodecError) {
        let jid = &self.config.jid;
        match e {
            CodecError::StreamError(condition) => {
                tracing::warn!(%jid, %condition, "the server closed the stream with an error");
            }
            CodecError::Io(e) => tracing::warn!(%jid, error = %e, "the xmpp connection broke"),
            e => {
                tracing::warn!(%jid, error = %e, "the xmpp stream broke");
                if let Some(condition) = e.condition() {
                    let _ = self.own.try_send(EncodedStanza::stream_error(condition));
                }
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
