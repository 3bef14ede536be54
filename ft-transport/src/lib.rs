//! The stanza transport the xft protocol drivers send through, with an in-memory hub and
//! tokio-xmpp adapters.
//!
//! # What this crate does and does not do
//!
//! The protocol crates (`xep0047-ibb`, `xep0065-s5b`, …) never own an XMPP connection.
//! Outbound stanzas go through one small trait, [`StanzaTransport`]; inbound stanzas are
//! offered by the application to whatever handles them (usually `ft_facade::FileTransfer`),
//! which hands back any stanza that is not its own, so it chains with the application's own
//! handlers.
//!
//! Implementations:
//!
//! * [`hub::Hub`] (feature `hub`): several entities in one process, routing by JID the way a
//!   server does. The embedded default for the demo and for tests.
//! * `xmpp::XmppTransport` (feature `tokio-xmpp`): a real account on a real server, or a
//!   XEP-0114 component, logged in by tokio-xmpp and then run on our own `codec::XmlCodec`
//!   (feature `codec`), with its parser-less IBB `<data/>` path.
//! * [`channel::ChannelTransport`] (feature `tokio`): for an application that owns its
//!   connection; the drivers' stanzas queue on a bounded channel it drains onto it.
//!
//! Inbound, one trait and one loop: [`StanzaHandler`] (implemented for closures,
//! [`iq::IqTracker`], tuples and slices of handlers) and `pump` / `pump_refusing` (feature
//! `tokio`), which feed a handler chain from any `StanzaSource`. [`lenient`] repairs the
//! malformed `<error/>`s real clients send (Spark's `type='MODIFY'`); every `xmpp` session
//! applies it before anyone parses a stanza.
//!
//! # Example
//!
//! (Feature `hub`.)
//!
//! ```
//! # #[cfg(feature = "hub")] {
//! use ft_transport::{StanzaTransport, hub::Hub};
//! use xmpp_parsers::{iq::Iq, stanza::Stanza, ping::Ping};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let hub = Hub::new();
//! let (alice, _alice_rx) = hub.connect("alice@example.org/a".parse().unwrap());
//! let (_bob, mut bob_rx) = hub.connect("bob@example.org/b".parse().unwrap());
//!
//! let ping = Iq::from_get("p1", Ping).with_to("bob@example.org/b".parse().unwrap());
//! alice.send(Stanza::Iq(ping)).await.unwrap();
//!
//! let Some(Stanza::Iq(got)) = bob_rx.recv().await else { panic!() };
//! // The hub stamps `from` like a server does.
//! assert_eq!(got.from().unwrap().to_string(), "alice@example.org/a");
//! # });
//! # }
//! ```
//!
//! # Cargo features
//!
//! None is on by default: a protocol crate needs only the trait (and `tokio`).
//!
//! * `tokio`: [`iq::IqTracker`], request/response matching for iqs a driver sends itself,
//!   and the `pump`s.
//! * `hub` (implies `tokio`): the in-memory hub, for tests and demos.
//! * `codec` (implies `tokio`): `codec::XmlCodec`, the XMPP stream as a tokio-util
//!   `Decoder`/`Encoder`, strict and bounded, with the `<data/>` fast path.
//! * `tokio-xmpp` (implies `codec`): adapters over tokio-xmpp 6 (client with STARTTLS or
//!   loopback plaintext, XEP-0114 component, and a serverless loopback session).
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

use std::future::Future;
use std::ops::ControlFlow;
use std::sync::Arc;

pub use jid::{BareJid, FullJid, Jid};
pub use xmpp_parsers::stanza::Stanza;

#[cfg(feature = "tokio")]
pub mod channel;
#[cfg(feature = "codec")]
pub mod codec;
#[cfg(feature = "hub")]
pub mod hub;
#[cfg(feature = "tokio")]
pub mod iq;
pub mod lenient;
pub mod sid;
pub mod util;
pub use sid::{InvalidSid, MAX_SID_LEN, Sid};
#[cfg(feature = "tokio-xmpp")]
pub mod xmpp;

#[cfg(feature = "tokio")]
mod pump;
#[cfg(feature = "tokio")]
pub use pump::{StanzaSource, pump, pump_refusing};

/// What the async drivers need from an XMPP connection: a way to send a stanza, and the
/// connection's own JID.
///
/// Inbound stanzas are not part of this trait: the application pushes them into the
/// handler (for example `FileTransfer::handle_stanza`), which hands back what is not its own.
pub trait StanzaTransport: Send + Sync + 'static {
    /// The error sending can fail with.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Resolves once the stanza is queued on the stream (not when the peer has it).
    fn send(&self, stanza: Stanza) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The JID this connection is bound to (a full JID for a client, a bare domain for a
    /// component).
    fn jid(&self) -> &Jid;
}

impl<T: StanzaTransport> StanzaTransport for Arc<T> {
    type Error = T::Error;

    fn send(&self, stanza: Stanza) -> impl Future<Output = Result<(), Self::Error>> + Send {
        (**self).send(stanza)
    }

    fn jid(&self) -> &Jid {
        (**self).jid()
    }
}

/// Something that takes the inbound stanzas that are its own and hands back the rest, so
/// that handlers chain: `FileTransfer`, [`IqTracker`](iq::IqTracker), the protocol drivers,
/// closures. [`pump`] feeds a chain from an inbound stream.
///
/// `Break(())` means the stanza was taken; `Continue(stanza)` hands it, unchanged, to the
/// next handler.
pub trait StanzaHandler {
    /// Takes `stanza` if it is this handler's, or hands it back.
    fn handle_stanza(&self, stanza: Stanza) -> ControlFlow<(), Stanza>;

    /// Resolves once the handler can take another stanza: a handler whose reader lags (an
    /// IBB-over-message receiver) makes the pump stop reading the socket, so TCP flow
    /// control slows the sender. Resolves at once unless overridden.
    fn ready(&self) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }
}

/// Any closure or function with the handler's signature.
impl<F: Fn(Stanza) -> ControlFlow<(), Stanza>> StanzaHandler for F {
    fn handle_stanza(&self, stanza: Stanza) -> ControlFlow<(), Stanza> {
        self(stanza)
    }
}

/// A shared handler.
impl<H: StanzaHandler + ?Sized> StanzaHandler for Arc<H> {
    fn handle_stanza(&self, stanza: Stanza) -> ControlFlow<(), Stanza> {
        (**self).handle_stanza(stanza)
    }

    fn ready(&self) -> impl Future<Output = ()> + Send {
        (**self).ready()
    }
}

/// A chain: the first handler, then the second for what the first hands back.
impl<A: StanzaHandler, B: StanzaHandler> StanzaHandler for (A, B) {
    fn handle_stanza(&self, stanza: Stanza) -> ControlFlow<(), Stanza> {
        self.1.handle_stanza(self.0.handle_stanza(stanza)?)
    }

    fn ready(&self) -> impl Future<Output = ()> + Send {
        let (a, b) = (self.0.ready(), self.1.ready());
        async move {
            a.await;
            b.await;
        }
    }
}

/// A chain of three.
impl<A: StanzaHandler, B: StanzaHandler, C: StanzaHandler> StanzaHandler for (A, B, C) {
    fn handle_stanza(&self, stanza: Stanza) -> ControlFlow<(), Stanza> {
        self.2
            .handle_stanza(self.1.handle_stanza(self.0.handle_stanza(stanza)?)?)
    }

    fn ready(&self) -> impl Future<Output = ()> + Send {
        let (a, b, c) = (self.0.ready(), self.1.ready(), self.2.ready());
        async move {
            a.await;
            b.await;
            c.await;
        }
    }
}

/// Handlers in order, each seeing what the ones before handed back.
impl<H: StanzaHandler> StanzaHandler for [H] {
    fn handle_stanza(&self, mut stanza: Stanza) -> ControlFlow<(), Stanza> {
        for h in self {
            stanza = h.handle_stanza(stanza)?;
        }
        ControlFlow::Continue(stanza)
    }

    fn ready(&self) -> impl Future<Output = ()> + Send {
        let all: Vec<_> = self.iter().map(StanzaHandler::ready).collect();
        async move {
            for r in all {
                r.await;
            }
        }
    }
}

/// [`StanzaHandler`] for a `Vec` of handlers, in order.
impl<H: StanzaHandler> StanzaHandler for Vec<H> {
    fn handle_stanza(&self, stanza: Stanza) -> ControlFlow<(), Stanza> {
        self.as_slice().handle_stanza(stanza)
    }

    fn ready(&self) -> impl Future<Output = ()> + Send {
        self.as_slice().ready()
    }
}
