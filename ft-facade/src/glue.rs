//! The seams to the bytestream crates: one boxed `AsyncRead + AsyncWrite` whatever the
//! method, and the IBB driver calls in one place.

use std::ops::ControlFlow;
use std::pin::Pin;
use std::time::Duration;

use ft_transport::{Sid, Stanza, StanzaTransport};
use jid::Jid;
use tokio::io::{AsyncRead, AsyncWrite};
use xep0047_ibb::{OpenOptions, StanzaKind};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

/// Either bytestream, as the copy loops see it.
pub(crate) trait ByteStream: AsyncRead + AsyncWrite + Send {
    /// Ends the stream at once, without flushing what is buffered (a cancel). Returns
    /// whether that told the peer; if not, shut the stream down instead.
    fn abort(self: Pin<&mut Self>) -> bool;

    /// After a clean shutdown: `Some(unanswered)` for IBB (whether our `<close/>` went
    /// unanswered although everything had gone out), `None` for a socket.
    fn ibb_close_unanswered(&self) -> Option<bool>;

    /// After a clean shutdown, IBB: the receiver answered our `<close/>` with an error (it
    /// did not keep the file). `false` for a socket.
    fn ibb_close_refused(&self) -> bool {
        false
    }

    /// The receiver found the bytes wrong (hash mismatch, overrun, a write that failed):
    /// make the coming close say so. S5B: `SO_LINGER` 0, so dropping the stream sends a
    /// reset instead of a FIN, and the sender reports `reset-by-receiver`, never
    /// `acknowledged`. IBB: the peer's `<close/>`, held by the session until now
    /// ([`xep0047_ibb::Config::hold_close_answer`]), is answered `not-acceptable`, and the
    /// sender reports `refused-by-receiver`.
    fn reject(self: Pin<&mut Self>);
}

impl ByteStream for xep0047_ibb::IbbStream {
    /// `<close/>` now, buffered data dropped ([`xep0047_ibb::IbbStream::abort`]).
    fn abort(self: Pin<&mut Self>) -> bool {
        Self::abort(&self);
        true
    }

    fn ibb_close_unanswered(&self) -> Option<bool> {
        Some(self.close_unanswered())
    }

    fn ibb_close_refused(&self) -> bool {
        self.close_refused().is_some()
    }

    fn reject(self: Pin<&mut Self>) {
        self.answer_close(Err(StanzaError::new(
            ErrorType::Cancel,
            DefinedCondition::NotAcceptable,
            "en",
            "the receiver did not keep the file (found wrong, or it could not be written)",
        )));
    }
}

impl ByteStream for xep0065_s5b::S5bStream {
    /// A socket has nothing to drop that the shutdown would send: shut it down.
    fn abort(self: Pin<&mut Self>) -> bool {
        false
    }

    fn ibb_close_unanswered(&self) -> Option<bool> {
        None
    }

    fn reject(self: Pin<&mut Self>) {
        if let Err(e) = self.get_ref().set_zero_linger() {
            tracing::debug!("ft-facade: SO_LINGER 0 on a rejected bytestream: {e}");
        }
    }
}

/// An in-memory bytestream for the data path's tests: a socket-like stream without the
/// socket's close semantics.
#[cfg(test)]
impl ByteStream for tokio::io::DuplexStream {
    fn abort(self: Pin<&mut Self>) -> bool {
        false
    }

    fn ibb_close_unanswered(&self) -> Option<bool> {
        None
    }

    fn reject(self: Pin<&mut Self>) {}
}

/// A bytestream of any method.
pub(crate) type BoxStream = Pin<Box<dyn ByteStream>>;

/// The IBB driver as the facade uses it.
#[derive(Debug)]
pub(crate) struct Ibb<T: StanzaTransport> {
    ibb: xep0047_ibb::Ibb<T>,
    /// Rejects opens nobody expects (an IBB open is only accepted on a sid SI agreed).
    drain: tokio::task::AbortHandle,
}

impl<T: StanzaTransport> Drop for Ibb<T> {
    fn drop(&mut self) {
        self.drain.abort();
    }
}

impl<T: StanzaTransport + Clone> Ibb<T> {
    pub(crate) fn new(transport: T, mut config: xep0047_ibb::Config) -> Self {
        // A file is checked before the sender hears that its close was answered: the
        // receive path answers it (`ByteStream::reject` or dropping the stream).
        config.hold_close_answer(true);
        let ibb = xep0047_ibb::Ibb::new(transport, config);
        let drainer = ibb.clone();
        let drain = tokio::spawn(async move {
            while let Some(open) = drainer.next_incoming().await {
                tracing::debug!(
                    "ft-facade: rejecting an unexpected ibb open {} from {}",
                    open.sid(),
                    open.peer()
                );
                open.reject();
            }
        })
        .abort_handle();
        Self { ibb, drain }
    }

    pub(crate) fn handle_stanza(&self, stanza: Stanza) -> ControlFlow<(), Stanza> {
        self.ibb.handle_stanza(stanza)
    }

    /// See [`xep0047_ibb::Ibb::ready`].
    pub(crate) async fn ready(&self) {
        self.ibb.ready().await;
    }

    /// Opens an IBB session to `peer` on `sid`. The driver times the open out itself
    /// ([`xep0047_ibb::Config::open_timeout`]).
    pub(crate) async fn open(
        &self,
        peer: Jid,
        sid: Sid,
        options: OpenOptions,
    ) -> Result<BoxStream, xep0047_ibb::Error> {
        let options = OpenOptions {
            block_size: options.block_size.max(1),
            ..options
        };
        let s = self.ibb.open(peer, sid, options).await?;
        Ok(Box::pin(s))
    }

    /// Pre-authorises an incoming open on `sid` from `peer` for `within`.
    pub(crate) fn expect(
        &self,
        peer: Jid,
        sid: Sid,
        within: Duration,
    ) -> impl Future<Output = Result<(BoxStream, StanzaKind), xep0047_ibb::Error>> + Send + 'static
    {
        let f = self.ibb.expect(peer, sid, within);
        async move {
            let s = f.await?;
            let k = s.stanza();
            Ok((Box::pin(s) as BoxStream, k))
        }
    }
}
