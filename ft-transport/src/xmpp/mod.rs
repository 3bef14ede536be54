//! tokio-xmpp adapters: a client and a XEP-0114 component as [`StanzaTransport`]s
//! (feature `tokio-xmpp`).
//!
//! * [`connect_client`] logs an account in (STARTTLS, or plaintext when asked and only to a
//!   loopback server), waits until the session is online, and returns an [`XmppTransport`]
//!   for sending and an [`Inbound`] yielding every inbound stanza. A failed login says what
//!   happened at once ([`Error`]: the SASL condition, the untrusted certificate and why, the
//!   refused address, no STARTTLS offered).
//! * Every element in and out, the login included, can be logged to an [`XmlLog`]
//!   ([`ClientOptions::with_xml_log`], [`ComponentOptions::xml_log`]): a stanza console with
//!   SASL payloads, passwords and the component handshake redacted and IBB payloads
//!   shortened to their length. Without one nothing is formatted.
//! * [`connect_component`] connects a XEP-0114 component and returns the same two types.
//! * [`open_serverless`] runs the same session on a stream with no server at its other end
//!   (a loopback pair of entities), and [`open_serverless_halves`] on a TCP connection's
//!   lock-free halves (the benchmarks' raw-XML path).
//!
//! Iq results come through [`Inbound::next`] as plain stanzas, so
//! [`IqTracker`](crate::iq::IqTracker) and the protocol drivers match their own iq ids;
//! [`pump`](crate::pump) feeds them to a chain of [`StanzaHandler`](crate::StanzaHandler)s.
//!
//! # How the client is driven
//!
//! The adapter opens the TCP connection and does STARTTLS and the TLS handshake itself
//! (rustls with the system's roots, which `SSL_CERT_FILE` can replace, plus
//! [`ClientOptions::extra_roots`]), and uses tokio-xmpp's building blocks for the stream
//! header and features, SASL (`tokio_xmpp::client_login`) and the stream restart; then it
//! binds the resource itself (RFC 6120 §7; no RFC 3921 session, which RFC 6120 servers mark
//! optional). Then it takes the connection (TLS or TCP, with any bytes read past the bind
//! result) out of tokio-xmpp's XML stream and runs our own
//! [`XmlCodec`](crate::codec::XmlCodec) on it for the rest of the session, starting right
//! after the bind result (the stream header is already consumed, so the codec starts with
//! the stream's namespaces in scope). The codec reads IBB `<data/>` stanzas without a DOM
//! parse and writes them and their acknowledgements directly (see [`codec`](crate::codec)).
//! tokio-xmpp's `StanzaStream` is not used: it answers one element that does not parse with
//! a stream error, tearing the whole connection (and every transfer on it) down because of
//! one peer's bad stanza.
//!
//! Each inbound element is converted on its own:
//!
//! * a stanza xmpp-parsers accepts is handed on unchanged;
//! * one with an `<error/>` child it refuses is repaired and parsed again
//!   ([`lenient`](crate::lenient)): Spark/Openfire's `<error code='406' type='MODIFY'>`
//!   (upper-case type, mangled condition) becomes a typed `modify`/`not-acceptable` error;
//! * an iq request that still does not parse is answered `modify`/`bad-request` to its
//!   sender (RFC 6120 §8.3.3.1);
//! * anything else that does not parse is dropped with a `tracing` warning.
//!
//! The stream itself only ends on a stream error or footer from the server, XML that is not
//! well-formed or breaks the codec's bounds (answered with a stream error), an I/O error or
//! the read timeout, or when every [`XmppTransport`] is dropped.
//!
//! The reading side, [`Inbound`], reads the socket as it is polled: no task and no queue sit
//! between the socket and the handlers, and a handler slow to ask for the next stanza stops
//! the reading (backpressure to the server). One background task writes: it serializes
//! nothing itself (the sending task did), coalesces small stanzas into one write and sends
//! large `<data/>` stanzas with one vectored write. Plaintext client connections
//! and components set `TCP_NODELAY`, so stop-and-wait exchanges (IBB over iq) do not stall on Nagle's
//! algorithm.
//!
//! What `StanzaStream` did and this adapter keeps or drops:
//!
//! * **Keepalive: kept.** After 5 min of silence (`Timeouts::default().read_timeout`) the
//!   client sends an XEP-0199 ping to the server; its answer is swallowed. A server silent
//!   for another 5 min ends the stream.
//! * **Server pings: answered.** An XEP-0199 ping from the server (no `from`, our domain or
//!   our bare JID) is answered by the adapter and not handed on; pings from other entities
//!   go to the handlers like any iq.
//! * **Login retries: dropped.** The first definite failure is returned at once, as the
//!   [`Error`] variant that says what happened ([`Error::AuthRefused`] with the SASL
//!   condition, [`Error::Certificate`] with the name and rustls' reason,
//!   [`Error::Connect`] with the address, [`Error::NoStartTls`]); a server that stops
//!   answering is given up after [`ClientOptions::online_timeout`]
//!   ([`Error::OnlineTimeout`], naming the stage it stopped at). Retrying a refused password
//!   only delayed the answer by the whole timeout.
//! * **Reconnect: dropped.** A lost connection ends [`Inbound`] (`next` returns `None`) and
//!   sends fail with [`Error::Closed`]; the application reconnects if it wants to.
//!   (Transfers break on a disconnect either way, and a silent reconnect could bind a
//!   different JID under a running transfer.)
//! * **Stream management (XEP-0198): dropped**, as before in practice: nothing here resumes
//!   a session.
//!
//! # How the component is driven
//!
//! tokio-xmpp's own `Component` needs its `component` feature, which turns on xmpp-parsers'
//! `component` feature: that switches *every* stanza of the whole build to the
//! `jabber:component:accept` namespace, so a client built alongside (any workspace test
//! run) sends stanzas the server rejects. The adapter therefore does the XEP-0114 handshake
//! itself over tokio-xmpp's XML stream reader, then runs the codec in component mode, which
//! reads and writes the wire's component namespace as xmpp-parsers' client types.
//!
//! ```no_run
//! use ft_transport::StanzaTransport;
//! use ft_transport::xmpp::{ClientOptions, Server, connect_client};
//!
//! # #[allow(dead_code)]
//! # async fn demo() -> Result<(), ft_transport::xmpp::Error> {
//! let options = ClientOptions::new(
//!     "alice@localhost".parse().unwrap(),
//!     "password",
//!     Server::Addr("127.0.0.1:5222".parse().unwrap()),
//! )
//! .with_plaintext(true);
//! let (transport, inbound) = connect_client(options).await?;
//! println!("online as {}", transport.jid());
//! // Hand every stanza to the handlers (FileTransfer, IqTracker, closures, …) in turn.
//! ft_transport::pump(inbound, |stanza| {
//!     println!("unhandled: {stanza:?}");
//!     std::ops::ControlFlow::Break(())
//! })
//! .await;
//! # Ok(()) }
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use jid::Jid;

use tokio_xmpp::connect::DnsConfig;

#[cfg(doc)]
use crate::StanzaTransport;

mod client;
mod component;
mod error;
mod inbound;
mod outbound;
mod session;
mod tap;
#[cfg(test)]
mod tests;
mod tls;

pub use crate::codec::{Direction, XmlLog};
pub use client::connect_client;
pub use component::{ComponentOptions, connect_component, connect_component_with};
pub use error::{Error, LoginStage};
pub use inbound::Inbound;
pub use session::{XmppTransport, open_serverless, open_serverless_halves};

/// The client's sending side (the same type as a component's).
pub type ClientTransport = XmppTransport;
/// A component's sending side (the same type as a client's).
pub type ComponentTransport = XmppTransport;
/// The client's inbound stanzas (the same type as a component's).
pub type ClientInbound = Inbound;
/// A component's inbound stanzas (the same type as a client's).
pub type ComponentInbound = Inbound;

/// Where the server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Server {
    /// A socket address (no DNS).
    Addr(SocketAddr),
    /// A host name and port, resolved with A/AAAA records (no SRV).
    HostPort {
        /// Host name or address literal.
        host: String,
        /// TCP port.
        port: u16,
    },
    /// RFC 6120 SRV lookup on the JID's domain (`_xmpp-client._tcp`), falling back to the
    /// domain on port 5222.
    Srv,
}

impl Server {
    pub(crate) fn is_loopback(&self) -> bool {
        match self {
            Self::Addr(addr) => addr.ip().is_loopback(),
            Self::HostPort { host, .. } => {
                host == "localhost"
                    || host
                        .trim_matches(|c| c == '[' || c == ']')
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
            Self::Srv => false,
        }
    }

    pub(crate) fn dns_config(&self, domain: &str) -> DnsConfig {
        match self {
            Self::Addr(addr) => DnsConfig::addr(&addr.to_string()),
            Self::HostPort { host, port } => DnsConfig::no_srv(host, *port),
            Self::Srv => DnsConfig::srv_default_client(domain),
        }
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Addr(addr) => write!(f, "{addr}"),
            Self::HostPort { host, port } => write!(f, "{host}:{port}"),
            Self::Srv => f.write_str("(SRV lookup)"),
        }
    }
}

/// How [`connect_client`] logs in.
#[derive(Clone)]
pub struct ClientOptions {
    /// The account: a bare JID (the server picks the resource) or a full JID (asks for that
    /// resource).
    pub jid: Jid,
    /// The account's password.
    pub password: String,
    /// Where the server is.
    pub server: Server,
    /// Plaintext TCP, no TLS. Default `false` (STARTTLS, certificate checked against the
    /// system's roots and [`Self::extra_roots`]). Only allowed to a loopback [`Server`], for
    /// tests and local setups.
    pub plaintext: bool,
    /// Certificates (DER) trusted as roots besides the system's. Default none. (The
    /// system's roots come from `rustls-native-certs`: `SSL_CERT_FILE` replaces them.)
    pub extra_roots: Vec<Vec<u8>>,
    /// Where every element in and out is logged, the login included. Default none.
    pub xml_log: Option<Arc<dyn XmlLog>>,
    /// How long to wait until the session is online (authenticated and bound). Default 15 s:
    /// a loopback login takes milliseconds, a remote one with TLS well under a second; past
    /// that, the server has stopped answering (refusals are reported at once).
    pub online_timeout: Duration,
    /// Depth of the outbound queue (stanzas serialized, not yet written). Default 64:
    /// enough for an IBB window of outstanding chunks plus their acknowledgements.
    pub queue_depth: usize,
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("jid", &self.jid)
            .field("password", &"<redacted>")
            .field("server", &self.server)
            .field("plaintext", &self.plaintext)
            .field("extra_roots", &self.extra_roots.len())
            .field("xml_log", &self.xml_log.is_some())
            .field("online_timeout", &self.online_timeout)
            .field("queue_depth", &self.queue_depth)
            .finish()
    }
}

impl ClientOptions {
    /// Options with the defaults documented on each field.
    pub fn new(jid: Jid, password: impl Into<String>, server: Server) -> Self {
        Self {
            jid,
            password: password.into(),
            server,
            plaintext: false,
            extra_roots: Vec::new(),
            xml_log: None,
            online_timeout: Duration::from_secs(15),
            queue_depth: 64,
        }
    }

    /// Plaintext TCP (loopback only) instead of STARTTLS.
    #[must_use]
    pub fn with_plaintext(mut self, plaintext: bool) -> Self {
        self.plaintext = plaintext;
        self
    }

    /// How long to wait for the session to be online.
    #[must_use]
    pub fn with_online_timeout(mut self, timeout: Duration) -> Self {
        self.online_timeout = timeout;
        self
    }

    /// Trusts `der` (a CA certificate, DER) as a root besides the system's.
    #[must_use]
    pub fn with_root_certificate_der(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.extra_roots.push(der.into());
        self
    }

    /// Logs every element in and out, the login included, to `log`.
    #[must_use]
    pub fn with_xml_log(mut self, log: Option<Arc<dyn XmlLog>>) -> Self {
        self.xml_log = log;
        self
    }
}
