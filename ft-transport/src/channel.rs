//! A [`StanzaTransport`] for an application that owns its XMPP connection (feature `tokio`).
//!
//! An application that already has a connection (a tokio-xmpp `Client` it logged in itself,
//! a component, any other XMPP library) cannot hand it over to `ft-transport`'s own
//! adapters. [`ChannelTransport::new`] gives it the two ends of a bounded queue instead:
//!
//! * the [`ChannelTransport`], to hand to `ft_facade::FileTransfer` (or any protocol driver)
//!   as its transport: each stanza a driver sends is queued;
//! * an [`Outbound`] receiver, which the application drains onto its own connection (for
//!   a tokio-xmpp `Client`: `client.send_stanza(stanza)` in the task that owns the client).
//!
//! Inbound is unchanged: the application offers each stanza it reads to the handler
//! (`FileTransfer::handle_stanza`) and keeps what comes back.
//!
//! The queue is bounded: when the application stops draining it, senders wait (an IBB
//! sender slows down) instead of piling stanzas up in memory. When the [`Outbound`] end is
//! dropped, sends fail with [`ChannelClosed`] and the transfers on it end.
//!
//! # Example
//!
//! ```
//! use ft_transport::channel::ChannelTransport;
//! use ft_transport::{Stanza, StanzaTransport};
//! use xmpp_parsers::{iq::Iq, ping::Ping};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let (transport, mut outbound) = ChannelTransport::new("alice@example.org/app".parse().unwrap(), 64);
//! // What a driver sends...
//! let ping = Iq::from_get("p1", Ping).with_to("example.org".parse().unwrap());
//! transport.send(Stanza::Iq(ping)).await.unwrap();
//! // ...the application writes on its own connection.
//! let Some(Stanza::Iq(queued)) = outbound.recv().await else { panic!() };
//! assert_eq!(queued.id(), "p1");
//! drop(outbound);
//! assert!(transport.send(Stanza::Iq(queued)).await.is_err());
//! # });
//! ```

use std::future::Future;

use jid::Jid;
use tokio::sync::mpsc;

use crate::{Stanza, StanzaTransport};

/// The sending side handed to the drivers: queues every stanza for the application.
/// Cheap to clone (every clone feeds the same queue).
#[derive(Debug, Clone)]
pub struct ChannelTransport {
    tx: mpsc::Sender<Stanza>,
    jid: Jid,
}

/// The stanzas the drivers sent, in order, for the application to write on its connection.
pub type Outbound = mpsc::Receiver<Stanza>;

/// The application dropped its [`Outbound`] end: nothing can be sent any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the application no longer takes outbound stanzas (its connection is gone)")]
pub struct ChannelClosed;

impl ChannelTransport {
    /// A transport for the connection bound to `jid` (the full JID the server bound for a
    /// client, the domain for a component), and the receiver of what it sends. At most
    /// `depth` stanzas wait (at least 1); a sender waits beyond that.
    pub fn new(jid: Jid, depth: usize) -> (Self, Outbound) {
        let (tx, rx) = mpsc::channel(depth.max(1));
        (Self { tx, jid }, rx)
    }
}

impl StanzaTransport for ChannelTransport {
    type Error = ChannelClosed;

    fn send(&self, stanza: Stanza) -> impl Future<Output = Result<(), ChannelClosed>> + Send {
        let tx = self.tx.clone();
        async move { tx.send(stanza).await.map_err(|_| ChannelClosed) }
    }

    fn jid(&self) -> &Jid {
        &self.jid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_parsers::{iq::Iq, ping::Ping};

    fn chat(n: u32) -> Stanza {
        Stanza::Iq(Iq::from_get(n.to_string(), Ping))
    }

    #[tokio::test]
    async fn a_full_queue_makes_the_sender_wait_until_the_application_drains_it() {
        let (t, mut out) = ChannelTransport::new("a@b/c".parse().unwrap(), 2);
        t.send(chat(1)).await.unwrap();
        t.send(chat(2)).await.unwrap();
        let third = t.send(chat(3));
        tokio::pin!(third);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), &mut third)
                .await
                .is_err(),
            "a third stanza must wait while two are queued"
        );
        assert!(out.recv().await.is_some());
        third.await.unwrap();
        assert_eq!(t.jid().to_string(), "a@b/c");
    }
}
