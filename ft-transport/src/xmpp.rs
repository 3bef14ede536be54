//! tokio-xmpp adapters: a client and a XEP-0114 component as [`StanzaTransport`]s.
//!
//! * [`connect_client`] logs an account in (STARTTLS, or plaintext when asked and only to a
//!   loopback server), waits until the session is online, and returns a [`ClientTransport`]
//!   for sending and a [`ClientInbound`] yielding every inbound stanza.
//! * [`connect_component`] connects a XEP-0114 component and returns a
//!   [`ComponentTransport`] and a [`ComponentInbound`].
//!
//! Iq results that nobody registered with tokio-xmpp come through [`ClientInbound::next`] as
//! plain stanzas, so [`IqTracker`](crate::iq::IqTracker) and the protocol drivers match their
//! own iq ids.
//!
//! # How the client is driven
//!
//! The adapter logs in with tokio-xmpp's building blocks (its connectors for STARTTLS or
//! plaintext, stream header and features, SASL via `tokio_xmpp::client_login`, the stream
//! restart), then binds the resource itself (RFC 6120 §7; no RFC 3921 session, which
//! RFC 6120 servers mark optional) and reads the stream as raw [`Element`]s. It does not
//! use tokio-xmpp's `StanzaStream`: that parses every inbound element into a typed stanza
//! and answers one that does not parse with a stream error, tearing the whole connection
//! (and every transfer on it) down because of one peer's bad stanza.
//!
//! Here each inbound element is converted on its own:
//!
//! * a stanza xmpp-parsers accepts is handed on unchanged;
//! * one with an `<error/>` child it refuses is repaired and parsed again: Spark/Openfire's
//!   `<error code='406' type='MODIFY'>` (upper-case type, mangled condition) becomes a typed
//!   `modify`/`not-acceptable` error (the type is lower-cased, stray text dropped, a missing
//!   condition or type derived from the legacy `code` per XEP-0086);
//! * an iq request that still does not parse is answered `modify`/`bad-request` to its
//!   sender (RFC 6120 §8.3.3.1);
//! * anything else that does not parse is dropped with a `tracing` warning.
//!
//! The stream itself only ends on a stream error or footer from the server, an I/O error
//! or tokio-xmpp's hard read timeout, or when every [`ClientTransport`] is dropped.
//!
//! One background task both sends and receives. Inbound stanzas are handed on through a
//! bounded queue; while it is full the task stops reading (backpressure to the server) but
//! keeps sending. Plaintext connections set `TCP_NODELAY`, so stop-and-wait exchanges (IBB
//! over iq) do not stall on Nagle's algorithm.
//!
//! What `StanzaStream` did and this adapter keeps or drops:
//!
//! * **Keepalive: kept.** After `Timeouts::default().read_timeout` (5 min) of silence the
//!   task sends an XEP-0199 ping to the server; its answer is swallowed. A server silent for
//!   another `response_timeout` ends the stream.
//! * **Server pings: answered.** An XEP-0199 ping from the server (no `from`, our domain or
//!   our bare JID) is answered by the task and not handed on; pings from other entities go
//!   to the handlers like any iq.
//! * **Login retries: kept** until [`ClientOptions::online_timeout`]: failed attempts
//!   (refused credentials, unreachable server, TLS failure) are retried with backoff, then
//!   reported as [`Error::OnlineTimeout`].
//! * **Reconnect: dropped.** A lost connection ends [`ClientInbound`] (`next` returns
//!   `None`) and sends fail with [`Error::Closed`]; the application reconnects if it wants
//!   to. (Transfers break on a disconnect either way, and a silent reconnect could bind a
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
//! itself over tokio-xmpp's XML stream reader, translates stanzas between the wire's
//! component namespace and xmpp-parsers' client types, and drives the stream from one
//! background task like the client.
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
//! let (transport, mut inbound) = connect_client(options).await?;
//! println!("online as {}", transport.jid());
//! while let Some(stanza) = inbound.next().await {
//!     // hand it to the handlers (FileTransfer::handle_stanza, IqTracker::handle_stanza, …)
//!     let _ = stanza;
//! }
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use jid::{BareJid, Jid};
use minidom::{Element, Node};
use sasl::common::Credentials;
use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, BufStream, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_xmpp::connect::{DnsConfig, ServerConnector, StartTlsServerConnector};
use tokio_xmpp::error::AuthError;
use tokio_xmpp::xmlstream::{
    FallibleStreamElement, PendingFeaturesRecv, ReadError, StreamHeader, Timeouts, XmlStream,
    initiate_stream,
};
use xmpp_parsers::bind::{BindQuery, BindResponse};
use xmpp_parsers::component::Handshake;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::ns;
use xmpp_parsers::ping::Ping;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use crate::StanzaTransport;

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
    fn is_loopback(&self) -> bool {
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

    fn dns_config(&self, domain: &str) -> DnsConfig {
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
    /// system's roots). Only allowed to a loopback [`Server`], for tests and local setups.
    pub plaintext: bool,
    /// How long to wait until the session is online (authenticated and bound). Default 15 s:
    /// a loopback login takes milliseconds, a remote one with TLS well under a second; past
    /// that, the adapter is retrying (wrong password, unreachable server, TLS failure).
    pub online_timeout: Duration,
    /// Depth of the outbound command queue and of the inbound queue. Default 64:
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
}

/// What connecting or sending can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Plaintext was asked for a server that is not on loopback.
    #[error("plaintext refused for non-loopback server {0}")]
    PlaintextNotLoopback(String),
    /// The session did not come online in time (wrong password, unreachable server, TLS
    /// failure, refused resource binding: the adapter retries with backoff until the
    /// timeout and logs each failed attempt with `tracing`). The attempt in progress is
    /// abandoned and its connection closed.
    #[error("not online within {0:?} (wrong credentials, unreachable server or tls failure)")]
    OnlineTimeout(Duration),
    /// The stream ended (or its task stopped) before the stanza could be sent.
    #[error("xmpp stream closed")]
    Closed,
    /// Writing the stanza to the stream failed.
    #[error("sending a stanza failed: {0}")]
    Send(#[source] io::Error),
    /// The component could not connect or authenticate.
    #[error("component connection failed: {0}")]
    Component(#[source] tokio_xmpp::Error),
}

/// Plaintext TCP with `TCP_NODELAY` (tokio-xmpp's own `TcpServerConnector` leaves Nagle on).
#[derive(Debug, Clone)]
struct NoDelayTcp(Server);

impl ServerConnector for NoDelayTcp {
    type Stream = BufStream<TcpStream>;

    async fn connect(
        &self,
        jid: &Jid,
        ns: &'static str,
        timeouts: Timeouts,
    ) -> Result<
        (
            PendingFeaturesRecv<Self::Stream>,
            sasl::common::ChannelBinding,
        ),
        tokio_xmpp::Error,
    > {
        let tcp = match &self.0 {
            Server::Addr(addr) => TcpStream::connect(addr).await?,
            Server::HostPort { host, port } => TcpStream::connect((host.as_str(), *port)).await?,
            Server::Srv => TcpStream::connect((jid.domain().as_str(), 5222)).await?,
        };
        tcp.set_nodelay(true)?;
        let header = StreamHeader {
            to: Some(Cow::Borrowed(jid.domain().as_str())),
            from: None,
            id: None,
        };
        let pending = initiate_stream(BufStream::new(tcp), ns, header, timeouts).await?;
        Ok((pending, sasl::common::ChannelBinding::None))
    }
}

struct Outbound {
    element: Element,
    written: oneshot::Sender<Result<(), io::Error>>,
}

impl fmt::Debug for Outbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbound").finish_non_exhaustive()
    }
}

/// The sending side of a logged-in client; cheap to share (`Arc`) between drivers.
#[derive(Debug, Clone)]
pub struct ClientTransport {
    jid: Jid,
    commands: mpsc::Sender<Outbound>,
}

impl ClientTransport {
    /// Writes `element` to the stream as it is, without going through xmpp-parsers' types.
    ///
    /// For tests that must put malformed stanzas on the wire (what a broken peer sends).
    #[doc(hidden)]
    pub async fn send_raw(&self, element: Element) -> Result<(), Error> {
        let (written, result) = oneshot::channel();
        self.commands
            .send(Outbound { element, written })
            .await
            .map_err(|_| Error::Closed)?;
        match result.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Send(e)),
            Err(_) => Err(Error::Closed),
        }
    }
}

impl StanzaTransport for ClientTransport {
    type Error = Error;

    /// Resolves once the stanza was written to the connection and flushed.
    async fn send(&self, stanza: Stanza) -> Result<(), Error> {
        self.send_raw(Element::from(stanza)).await
    }

    /// The full JID the server bound.
    fn jid(&self) -> &Jid {
        &self.jid
    }
}

/// The inbound stanzas of a client.
#[derive(Debug)]
pub struct ClientInbound {
    rx: mpsc::Receiver<Stanza>,
}

/// The same stanzas as [`ClientInbound::next`], as a `futures` stream.
impl futures_util::Stream for ClientInbound {
    type Item = Stanza;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Stanza>> {
        self.rx.poll_recv(cx)
    }
}

impl ClientInbound {
    /// The next inbound stanza; `None` once the connection is gone (closed by us, by the
    /// server, or lost: the adapter does not reconnect).
    pub async fn next(&mut self) -> Option<Stanza> {
        self.rx.recv().await
    }
}

/// Logs in and waits until the session is online (authenticated and a resource bound).
///
/// Failed login attempts (refused credentials, unreachable server, TLS failure) are retried
/// with backoff until [`ClientOptions::online_timeout`], then reported as
/// [`Error::OnlineTimeout`].
///
/// The stream closes when every clone of the [`ClientTransport`] is dropped.
pub async fn connect_client(
    options: ClientOptions,
) -> Result<(ClientTransport, ClientInbound), Error> {
    if options.plaintext {
        if !options.server.is_loopback() {
            return Err(Error::PlaintextNotLoopback(options.server.to_string()));
        }
        start_client(NoDelayTcp(options.server.clone()), options).await
    } else {
        let domain = options.jid.domain().as_str().to_owned();
        let connector = StartTlsServerConnector::from(options.server.dns_config(&domain));
        start_client(connector, options).await
    }
}

async fn start_client<C: ServerConnector>(
    connector: C,
    options: ClientOptions,
) -> Result<(ClientTransport, ClientInbound), Error> {
    let login = login_until_online(&connector, &options.jid, &options.password);
    let (stream, jid) = tokio::time::timeout(options.online_timeout, login)
        .await
        .map_err(|_| Error::OnlineTimeout(options.online_timeout))?;
    let depth = options.queue_depth.max(1);
    let (commands, commands_rx) = mpsc::channel(depth);
    let (inbound_tx, inbound_rx) = mpsc::channel(depth);
    tokio::spawn(drive_client(stream, jid.clone(), commands_rx, inbound_tx));
    Ok((
        ClientTransport { jid, commands },
        ClientInbound { rx: inbound_rx },
    ))
}

/// First pause between failed login attempts; doubled up to [`LOGIN_BACKOFF_MAX`].
const LOGIN_BACKOFF_START: Duration = Duration::from_millis(250);
/// Longest pause between login attempts.
const LOGIN_BACKOFF_MAX: Duration = Duration::from_secs(4);
/// The `id` of our resource binding request.
const BIND_ID: &str = "xft-bind";

async fn login_until_online<C: ServerConnector>(
    connector: &C,
    jid: &Jid,
    password: &str,
) -> (XmlStream<C::Stream, Element>, Jid) {
    let mut backoff = LOGIN_BACKOFF_START;
    loop {
        match login_once(connector, jid, password).await {
            Ok(online) => return online,
            Err(e) => {
                tracing::warn!(%jid, error = %e, "xmpp login failed, retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(LOGIN_BACKOFF_MAX);
            }
        }
    }
}

/// Connects, authenticates, restarts the stream and binds a resource (RFC 6120 §6, §7).
/// Session establishment (RFC 3921) is not done: RFC 6120 servers, Prosody included,
/// mark it optional or do not offer it.
async fn login_once<C: ServerConnector>(
    connector: &C,
    jid: &Jid,
    password: &str,
) -> Result<(XmlStream<C::Stream, Element>, Jid), tokio_xmpp::Error> {
    let Some(node) = jid.node() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the account jid has no local part",
        )
        .into());
    };
    let (pending, binding) = connector
        .connect(jid, ns::JABBER_CLIENT, Timeouts::default())
        .await?;
    let (features, stream) = pending.recv_features::<FallibleStreamElement>().await?;
    let creds = Credentials::default()
        .with_username(node.as_str())
        .with_password(password)
        .with_channel_binding(binding);
    let stream = tokio_xmpp::client_login(stream, features.sasl_mechanisms, creds).await?;
    let pending = stream
        .send_header(StreamHeader {
            to: Some(Cow::Borrowed(jid.domain().as_str())),
            from: None,
            id: None,
        })
        .await?;
    let (_features, mut stream) = pending.recv_features::<Element>().await?;
    let resource = jid.resource().map(|r| r.as_str().to_owned());
    let bind = Iq::from_set(BIND_ID, BindQuery::new(resource));
    stream.send(&Element::from(bind)).await?;
    loop {
        match stream.next().await {
            Some(Ok(el)) if el.is("iq", ns::JABBER_CLIENT) && el.attr("id") == Some(BIND_ID) => {
                let bound = match Iq::try_from(el) {
                    Ok(Iq::Result {
                        payload: Some(payload),
                        ..
                    }) => BindResponse::try_from(payload).ok(),
                    _ => None,
                };
                return match bound {
                    Some(bound) => Ok((stream, Jid::from(bound))),
                    None => Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the server refused resource binding",
                    )
                    .into()),
                };
            }
            Some(Ok(el)) if el.is("error", ns::STREAM) => {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "stream error during resource binding",
                )
                .into());
            }
            Some(Ok(_) | Err(ReadError::SoftTimeout | ReadError::ParseError(_))) => {}
            Some(Err(ReadError::HardError(e))) => return Err(e.into()),
            Some(Err(ReadError::StreamFooterReceived)) | None => {
                return Err(tokio_xmpp::Error::Disconnected);
            }
        }
    }
}

/// What becomes of one element read from the client stream.
#[derive(Debug)]
enum Inbound {
    /// A stanza for the handlers (possibly repaired).
    Stanza(Stanza),
    /// A request that does not parse: this `bad-request` error goes back to its sender.
    Refuse(Iq),
    /// Not a stanza we can read, and nothing to answer (logged).
    Dropped,
}

/// Turns an element from the wire into a [`Stanza`], without ever failing the stream.
///
/// Strict xmpp-parsers first. If that refuses an element with an `<error/>` child, the error
/// is repaired as [`lenient::repair_error_element`] describes (Spark/Openfire's
/// `type='MODIFY'`) and parsed again. If it still fails: an iq request is answered with
/// `modify/bad-request` (RFC 6120 §8.3.3.1), anything else is dropped with a warning.
fn convert_inbound(el: Element) -> Inbound {
    let name = el.name().to_owned();
    let type_ = el.attr("type").map(str::to_owned);
    let id = el.attr("id").map(str::to_owned);
    let from = el.attr("from").map(str::to_owned);
    // Cloned only when a repair may be needed: error stanzas are rare and small.
    let repairable = el.get_child("error", ns::JABBER_CLIENT).map(|_| el.clone());
    let strict = match Stanza::try_from(el) {
        Ok(stanza) => return Inbound::Stanza(stanza),
        Err(e) => e,
    };
    if let Some(mut el) = repairable {
        if let Some(error) = el.get_child_mut("error", ns::JABBER_CLIENT) {
            lenient::repair_error_element(error);
        }
        if let Ok(stanza) = Stanza::try_from(el) {
            tracing::debug!(?from, ?id, "repaired a malformed <error/> from a peer");
            return Inbound::Stanza(stanza);
        }
    }
    let is_request = name == "iq" && matches!(type_.as_deref(), Some("get" | "set"));
    if let (true, Some(id)) = (is_request, id.as_ref()) {
        let to = match from.as_deref().map(str::parse::<Jid>) {
            Some(Ok(jid)) => Some(jid),
            None => None,
            Some(Err(_)) => {
                tracing::warn!(?from, %id, error = %strict, "dropped a malformed iq from an invalid jid");
                return Inbound::Dropped;
            }
        };
        tracing::warn!(?from, %id, error = %strict, "answering a malformed iq with bad-request");
        let mut reply = Iq::from_error(
            id.clone(),
            StanzaError::new(
                ErrorType::Modify,
                DefinedCondition::BadRequest,
                "en",
                "malformed stanza",
            ),
        );
        *reply.to_mut() = to;
        return Inbound::Refuse(reply);
    }
    tracing::warn!(element = %name, ?type_, ?from, ?id, error = %strict, "dropped an inbound element that does not parse");
    Inbound::Dropped
}

/// Whether `from` is the server itself (absent, our domain, or our own bare JID).
fn from_server(from: Option<&Jid>, own: &Jid) -> bool {
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
fn answer_server_ping(stanza: &Stanza, own: &Jid) -> Option<Iq> {
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

async fn drive_client<Io>(
    mut stream: XmlStream<Io, Element>,
    jid: Jid,
    mut commands: mpsc::Receiver<Outbound>,
    inbound: mpsc::Sender<Stanza>,
) where
    Io: AsyncBufRead + AsyncWrite + Unpin + Send,
{
    let mut pending: Option<Stanza> = None;
    let mut inbound_open = true;
    let mut keepalive: Option<String> = None;
    let mut keepalives: u64 = 0;
    loop {
        tokio::select! {
            command = commands.recv() => {
                let Some(Outbound { element, written }) = command else { break };
                let result = stream.send(&element).await;
                let failed = result.is_err();
                // The sender may have given up waiting; the stanza went out anyway.
                let _ = written.send(result);
                if failed {
                    break;
                }
            }
            permit = inbound.reserve(), if pending.is_some() => match permit {
                Ok(permit) => {
                    if let Some(stanza) = pending.take() {
                        permit.send(stanza);
                    }
                }
                Err(_) => {
                    inbound_open = false;
                    pending = None;
                }
            },
            item = stream.next(), if pending.is_none() => match item {
                Some(Ok(el)) if el.is("error", ns::STREAM) => {
                    tracing::warn!(%jid, error = ?String::from(&el), "the server closed the stream with an error");
                    break;
                }
                Some(Ok(el)) => match convert_inbound(el) {
                    Inbound::Stanza(stanza) => {
                        if let Some(answer) = answer_server_ping(&stanza, &jid) {
                            if stream.send(&Element::from(answer)).await.is_err() {
                                break;
                            }
                        } else if is_keepalive_answer(&stanza, keepalive.as_deref()) {
                            keepalive = None;
                        } else if inbound_open {
                            pending = Some(stanza);
                        }
                    }
                    Inbound::Refuse(reply) => {
                        if stream.send(&Element::from(reply)).await.is_err() {
                            break;
                        }
                    }
                    Inbound::Dropped => {}
                },
                Some(Err(ReadError::SoftTimeout)) => {
                    // Silence for `Timeouts::read_timeout`: ping the server, whose answer
                    // (or anything else) resets tokio-xmpp's hard timeout.
                    keepalives += 1;
                    let id = format!("xft-keepalive-{keepalives}");
                    let ping = Iq::from_get(id.clone(), Ping)
                        .with_to(Jid::from(jid.domain().to_owned()));
                    keepalive = Some(id);
                    if stream.send(&Element::from(ping)).await.is_err() {
                        break;
                    }
                }
                Some(Err(ReadError::ParseError(e))) => {
                    tracing::warn!(%jid, error = %e, "skipped an inbound element that does not parse");
                }
                Some(Err(ReadError::HardError(e))) => {
                    tracing::warn!(%jid, error = %e, "the client connection broke");
                    break;
                }
                Some(Err(ReadError::StreamFooterReceived)) | None => break,
            },
        }
    }
    drop(inbound);
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.shutdown()).await;
}

/// Whether `stanza` answers our keepalive ping `id`.
fn is_keepalive_answer(stanza: &Stanza, id: Option<&str>) -> bool {
    match (stanza, id) {
        (Stanza::Iq(iq @ (Iq::Result { .. } | Iq::Error { .. })), Some(id)) => iq.id() == id,
        _ => false,
    }
}

type ComponentStream = XmlStream<BufStream<VersionedHeader<TcpStream>>, Element>;

/// XEP-0114 servers answer with a stream header without `version` (the protocol predates
/// RFC 6120); tokio-xmpp's stream reader requires `version='1.0'` unless its `component`
/// feature is on. This reader adds the attribute to the server's `<stream:stream>` start tag
/// and passes every other byte through unchanged.
#[derive(Debug)]
struct VersionedHeader<S> {
    inner: S,
    /// Bytes of the header seen so far, until the start tag is complete.
    scanning: Option<Vec<u8>>,
    /// Rewritten bytes not yet handed to the reader.
    out: Vec<u8>,
    out_pos: usize,
}

/// Longest server preamble (XML declaration and stream start tag) we accept.
const MAX_COMPONENT_HEADER: usize = 8192;

impl<S> VersionedHeader<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            scanning: Some(Vec::new()),
            out: Vec::new(),
            out_pos: 0,
        }
    }

    /// Rewrites the start tag once it is complete; `Ok(false)` while more bytes are needed.
    fn try_finish_header(&mut self) -> io::Result<bool> {
        let Some(seen) = self.scanning.as_ref() else {
            return Ok(true);
        };
        let Some(start) = find(seen, b"<stream:stream") else {
            return self.check_len(seen.len()).map(|()| false);
        };
        let Some(end) = seen[start..]
            .iter()
            .position(|&b| b == b'>')
            .map(|i| start + i)
        else {
            return self.check_len(seen.len()).map(|()| false);
        };
        let tag = &seen[start..end];
        let mut out = Vec::with_capacity(seen.len() + 16);
        out.extend_from_slice(&seen[..end]);
        if find(tag, b" version=").is_none() {
            out.extend_from_slice(b" version='1.0'");
        }
        out.extend_from_slice(&seen[end..]);
        self.out = out;
        self.out_pos = 0;
        self.scanning = None;
        Ok(true)
    }

    fn check_len(&self, len: usize) -> io::Result<()> {
        if len > MAX_COMPONENT_HEADER {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "component stream header too long",
            ))
        } else {
            Ok(())
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl<S: AsyncRead + Unpin> AsyncRead for VersionedHeader<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.out_pos < this.out.len() {
                let n = buf.remaining().min(this.out.len() - this.out_pos);
                buf.put_slice(&this.out[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                if this.out_pos == this.out.len() {
                    this.out = Vec::new();
                    this.out_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.scanning.is_none() {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            let mut chunk = [0u8; 1024];
            let mut chunk_buf = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut chunk_buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    let got = chunk_buf.filled();
                    if got.is_empty() {
                        // EOF inside the header: hand over what we have, the parser reports it.
                        if let Some(seen) = this.scanning.take() {
                            this.out = seen;
                            this.out_pos = 0;
                        }
                        if this.out.is_empty() {
                            return Poll::Ready(Ok(()));
                        }
                        continue;
                    }
                    if let Some(seen) = this.scanning.as_mut() {
                        seen.extend_from_slice(got);
                    }
                    if let Err(e) = this.try_finish_header() {
                        return Poll::Ready(Err(e));
                    }
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for VersionedHeader<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

struct ComponentOutbound {
    element: Element,
    written: oneshot::Sender<Result<(), io::Error>>,
}

impl fmt::Debug for ComponentOutbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ComponentOutbound").finish_non_exhaustive()
    }
}

/// The sending side of a XEP-0114 component; cheap to share (`Arc`) between drivers.
#[derive(Debug, Clone)]
pub struct ComponentTransport {
    jid: Jid,
    commands: mpsc::Sender<ComponentOutbound>,
}

impl StanzaTransport for ComponentTransport {
    type Error = Error;

    /// Resolves once the stanza was written and flushed. A component must set `from` itself
    /// (any JID at its domain).
    async fn send(&self, stanza: Stanza) -> Result<(), Error> {
        let element = renamespace(Element::from(stanza), ns::JABBER_CLIENT, ns::COMPONENT);
        let (written, result) = oneshot::channel();
        self.commands
            .send(ComponentOutbound { element, written })
            .await
            .map_err(|_| Error::Closed)?;
        match result.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Send(e)),
            Err(_) => Err(Error::Closed),
        }
    }

    /// The component's domain.
    fn jid(&self) -> &Jid {
        &self.jid
    }
}

/// The inbound stanzas of a component.
#[derive(Debug)]
pub struct ComponentInbound {
    rx: mpsc::Receiver<Stanza>,
}

/// The same stanzas as [`ComponentInbound::next`], as a `futures` stream.
impl futures_util::Stream for ComponentInbound {
    type Item = Stanza;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Stanza>> {
        self.rx.poll_recv(cx)
    }
}

impl ComponentInbound {
    /// The next inbound stanza; `None` once the stream is closed (or broke).
    pub async fn next(&mut self) -> Option<Stanza> {
        self.rx.recv().await
    }
}

/// Connects a XEP-0114 component `jid` (a domain such as `proxy.example.org`) with the
/// shared `secret` to the server's component port at `addr`, over plaintext TCP with
/// `TCP_NODELAY` (XEP-0114 has no TLS; run it on loopback or a private link).
///
/// The stream is closed when every clone of the [`ComponentTransport`] is dropped.
///
/// Stanzas travel in the `jabber:component:accept` namespace on the wire and are translated
/// to and from xmpp-parsers' `jabber:client` types here. (tokio-xmpp's own `Component`
/// needs xmpp-parsers' `component` feature, which switches every stanza of the whole build
/// to the component namespace and so breaks clients built alongside.) Inbound stanzas that
/// do not parse are dropped.
pub async fn connect_component(
    jid: &BareJid,
    secret: &str,
    addr: SocketAddr,
) -> Result<(ComponentTransport, ComponentInbound), Error> {
    let full: Jid = jid.clone().into();
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| Error::Component(e.into()))?;
    tcp.set_nodelay(true)
        .map_err(|e| Error::Component(e.into()))?;
    let header = StreamHeader {
        to: Some(Cow::Borrowed(jid.as_str())),
        from: None,
        id: None,
    };
    let mut pending = initiate_stream(
        BufStream::new(VersionedHeader::new(tcp)),
        ns::COMPONENT,
        header,
        Timeouts::default(),
    )
    .await
    .map_err(|e| Error::Component(e.into()))?;
    let header = pending.take_header();
    let Some(stream_id) = header.id else {
        return Err(Error::Component(
            io::Error::new(
                io::ErrorKind::InvalidData,
                "component stream header has no id",
            )
            .into(),
        ));
    };
    let mut stream: ComponentStream = pending.skip_features();
    let handshake = Handshake::from_stream_id_and_password(stream_id.into_owned(), secret);
    stream
        .send(&Element::from(handshake))
        .await
        .map_err(|e| Error::Component(e.into()))?;
    loop {
        match stream.next().await {
            Some(Ok(el)) if el.is("handshake", ns::COMPONENT) => break,
            Some(Ok(_)) => return Err(Error::Component(AuthError::ComponentFail.into())),
            Some(Err(ReadError::SoftTimeout)) => continue,
            Some(Err(ReadError::HardError(e))) => return Err(Error::Component(e.into())),
            Some(Err(ReadError::ParseError(e))) => {
                return Err(Error::Component(
                    io::Error::new(io::ErrorKind::InvalidData, e).into(),
                ));
            }
            Some(Err(ReadError::StreamFooterReceived)) | None => {
                return Err(Error::Component(tokio_xmpp::Error::Disconnected));
            }
        }
    }
    let (commands, commands_rx) = mpsc::channel(64);
    let (inbound_tx, inbound_rx) = mpsc::channel(64);
    tokio::spawn(drive_component(stream, commands_rx, inbound_tx));
    Ok((
        ComponentTransport {
            jid: full,
            commands,
        },
        ComponentInbound { rx: inbound_rx },
    ))
}

async fn drive_component(
    mut stream: ComponentStream,
    mut commands: mpsc::Receiver<ComponentOutbound>,
    inbound: mpsc::Sender<Stanza>,
) {
    let mut pending: Option<Stanza> = None;
    let mut inbound_open = true;
    loop {
        tokio::select! {
            command = commands.recv() => {
                let Some(ComponentOutbound { element, written }) = command else { break };
                let result = stream.send(&element).await;
                let _ = written.send(result);
            }
            permit = inbound.reserve(), if pending.is_some() => match permit {
                Ok(permit) => {
                    if let Some(stanza) = pending.take() {
                        permit.send(stanza);
                    }
                }
                Err(_) => {
                    inbound_open = false;
                    pending = None;
                }
            },
            item = stream.next(), if pending.is_none() => match item {
                Some(Ok(el)) => {
                    let el = renamespace(el, ns::COMPONENT, ns::JABBER_CLIENT);
                    if inbound_open && let Ok(stanza) = Stanza::try_from(el) {
                        pending = Some(stanza);
                    }
                }
                Some(Err(ReadError::SoftTimeout | ReadError::ParseError(_))) => {}
                Some(Err(ReadError::HardError(_) | ReadError::StreamFooterReceived)) | None => {
                    break;
                }
            },
        }
    }
    drop(inbound);
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.shutdown()).await;
}

/// Moves an element in namespace `from` (and its descendants in `from`) to namespace `to`.
fn renamespace(mut el: Element, from: &str, to: &str) -> Element {
    if el.ns() != from {
        return el;
    }
    let nodes = el.take_nodes();
    let mut out = Element::bare(el.name(), to);
    *out.attrs_mut() = el.attrs().clone();
    for node in nodes {
        match node {
            Node::Element(child) => {
                out.append_child(renamespace(child, from, to));
            }
            Node::Text(text) => out.append_text(text),
        }
    }
    out
}

/// Repair of the `<error/>` elements real clients send and strict xmpp-parsers refuses.
///
/// Spark/Openfire refuse a file offer with `<error code="406" type="MODIFY">` (upper-case
/// type) and, in captured traffic, the condition element mangled into text
/// (`not-acceptable xmlns="…"/>` without its `<`). xmpp-parsers 0.23 matches the error
/// `type` case-sensitively and requires a defined condition, so such a stanza would not
/// parse at all. The same logic as `xep0095_si::compat` (copied: ft-transport depends on no
/// XEP crate):
///
/// * the `type` attribute is lower-cased (a missing one comes from the legacy `code`);
/// * stray text inside `<error/>` is dropped;
/// * a missing defined condition is derived from the legacy `code` with the XEP-0086 table
///   (`406` → `not-acceptable`), or `undefined-condition` when there is no usable code.
mod lenient {
    use minidom::{Element, Node};

    const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

    const CONDITIONS: &[&str] = &[
        "bad-request",
        "conflict",
        "feature-not-implemented",
        "forbidden",
        "gone",
        "internal-server-error",
        "item-not-found",
        "jid-malformed",
        "not-acceptable",
        "not-allowed",
        "not-authorized",
        "policy-violation",
        "recipient-unavailable",
        "redirect",
        "registration-required",
        "remote-server-not-found",
        "remote-server-timeout",
        "resource-constraint",
        "service-unavailable",
        "subscription-required",
        "undefined-condition",
        "unexpected-request",
    ];

    /// The defined condition XEP-0086 §3 maps a legacy error code to.
    fn condition_for_code(code: u16) -> Option<&'static str> {
        Some(match code {
            302 => "redirect",
            400 => "bad-request",
            401 => "not-authorized",
            402 | 407 => "registration-required",
            403 => "forbidden",
            404 => "item-not-found",
            405 => "not-allowed",
            406 => "not-acceptable",
            408 | 504 => "remote-server-timeout",
            409 => "conflict",
            500 => "internal-server-error",
            501 => "feature-not-implemented",
            502 | 503 => "service-unavailable",
            _ => return None,
        })
    }

    /// The error type XEP-0086 §3 gives a legacy error code, used only when `type` is missing.
    fn type_for_code(code: u16) -> &'static str {
        match code {
            302 | 400 | 405 | 406 | 409 => "modify",
            401 | 402 | 403 | 407 => "auth",
            500 | 502 | 503 | 504 => "wait",
            _ => "cancel",
        }
    }

    /// Repairs an `<error/>` element in place as described in the module docs.
    pub(super) fn repair_error_element(error: &mut Element) {
        let code = error
            .attr("code")
            .and_then(|c| c.trim().parse::<u16>().ok());
        let mut has_type = false;
        for ((ns, name), value) in error.attrs_mut() {
            if ns.is_none() && name.as_str() == "type" {
                has_type = true;
                *value = value.trim().to_ascii_lowercase();
            }
        }
        let elements: Vec<Element> = error
            .take_nodes()
            .into_iter()
            .filter_map(|n| match n {
                Node::Element(e) => Some(e),
                Node::Text(_) => None,
            })
            .collect();
        let has_condition = elements
            .iter()
            .any(|c| c.ns() == NS_STANZAS && CONDITIONS.contains(&c.name()));
        if !has_condition {
            // The condition comes first for readers that look at the first child.
            let name = code
                .and_then(condition_for_code)
                .unwrap_or("undefined-condition");
            error.append_child(Element::bare(name, NS_STANZAS));
        }
        for e in elements {
            error.append_child(e);
        }
        if !has_type {
            error.set_attr(
                minidom::rxml::Namespace::NONE,
                minidom::rxml::xml_ncname!("type").to_owned(),
                type_for_code(code.unwrap_or(0)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_is_only_for_loopback_servers() {
        assert!(Server::Addr("127.0.0.1:5222".parse().unwrap()).is_loopback());
        assert!(Server::Addr("[::1]:5222".parse().unwrap()).is_loopback());
        assert!(
            Server::HostPort {
                host: "localhost".into(),
                port: 5222
            }
            .is_loopback()
        );
        assert!(!Server::Addr("192.0.2.1:5222".parse().unwrap()).is_loopback());
        assert!(
            !Server::HostPort {
                host: "example.org".into(),
                port: 5222
            }
            .is_loopback()
        );
        assert!(!Server::Srv.is_loopback());
    }

    #[tokio::test]
    async fn plaintext_to_a_remote_server_is_refused_before_connecting() {
        let options = ClientOptions::new(
            "a@example.org".parse().unwrap(),
            "pw",
            Server::Addr("192.0.2.1:5222".parse().unwrap()),
        )
        .with_plaintext(true);
        let err = connect_client(options).await.unwrap_err();
        assert!(matches!(err, Error::PlaintextNotLoopback(ref s) if s == "192.0.2.1:5222"));
    }

    #[test]
    fn options_debug_hides_the_password() {
        let options = ClientOptions::new("a@localhost".parse().unwrap(), "hunter2", Server::Srv);
        assert!(!format!("{options:?}").contains("hunter2"));
    }

    async fn read_through_versioned_header(input: &[u8], chunk: usize) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut builder = tokio_test::io::Builder::new();
        for part in input.chunks(chunk) {
            builder.read(part);
        }
        let mut reader = VersionedHeader::new(builder.build());
        let mut out = Vec::new();
        reader.read_to_end(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn component_header_without_version_gets_one_at_every_split_point() {
        let input = b"<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='abc' from='c.localhost'><handshake/>";
        let expected = b"<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='abc' from='c.localhost' version='1.0'><handshake/>";
        for chunk in 1..=input.len() {
            assert_eq!(
                read_through_versioned_header(input, chunk).await,
                expected.to_vec(),
                "chunk size {chunk}"
            );
        }
    }

    #[tokio::test]
    async fn component_header_with_a_version_and_later_bytes_pass_unchanged() {
        let input = b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' version='1.0' id='x'><iq/>stream:stream>";
        assert_eq!(
            read_through_versioned_header(input, 7).await,
            input.to_vec()
        );
    }

    #[tokio::test]
    async fn component_header_that_never_ends_is_invalid_data() {
        use tokio::io::AsyncReadExt;
        // The reader takes 1 KiB at a time; one chunk past the limit is refused.
        let junk = [b'a'; 1024];
        let mut builder = tokio_test::io::Builder::new();
        for _ in 0..=MAX_COMPONENT_HEADER / 1024 {
            builder.read(&junk);
        }
        let mut reader = VersionedHeader::new(builder.build());
        let mut out = Vec::new();
        let err = reader.read_to_end(&mut out).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn stanzas_move_between_client_and_component_namespaces_and_back() {
        let wire: Element = "<iq xmlns='jabber:component:accept' type='error' id='1' from='a@b/c' to='p.b'><query xmlns='http://jabber.org/protocol/bytestreams'/><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
            .parse()
            .unwrap();
        let client = renamespace(wire.clone(), ns::COMPONENT, ns::JABBER_CLIENT);
        assert!(client.is("iq", ns::JABBER_CLIENT));
        assert!(client.get_child("error", ns::JABBER_CLIENT).is_some());
        assert!(
            client
                .get_child("query", "http://jabber.org/protocol/bytestreams")
                .is_some()
        );
        assert_eq!(client.attr("from"), Some("a@b/c"));
        assert!(Stanza::try_from(client.clone()).is_ok());
        assert_eq!(renamespace(client, ns::JABBER_CLIENT, ns::COMPONENT), wire);
    }

    fn wire(xml: &str) -> Element {
        xml.parse().unwrap()
    }

    #[test]
    fn sparks_upper_case_modify_refusal_is_repaired_into_a_typed_iq_error() {
        // Seed 000: Spark refusing a file offer.
        let el = wire(
            "<iq xmlns='jabber:client' id='file_33fe4dbdf2364' to='lxy@user-20160421db/8xz8uslghx' from='lxy2@user-20160421db/Spark' type='error'>\n\t<error code='406' type='MODIFY'>\n\t\tnot-acceptable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>\n\t</error>\n</iq>",
        );
        assert!(
            Stanza::try_from(el.clone()).is_err(),
            "strict parser refuses it"
        );
        let Inbound::Stanza(Stanza::Iq(Iq::Error {
            id, from, error, ..
        })) = convert_inbound(el)
        else {
            panic!("not repaired")
        };
        assert_eq!(id, "file_33fe4dbdf2364");
        assert_eq!(from.unwrap().to_string(), "lxy2@user-20160421db/Spark");
        assert_eq!(error.type_, ErrorType::Modify);
        assert_eq!(error.defined_condition, DefinedCondition::NotAcceptable);
    }

    #[test]
    fn a_malformed_iq_request_is_answered_bad_request_to_its_sender() {
        // No payload: RFC 6120 §8.2.3 requires exactly one child in a get.
        let el = wire(
            "<iq xmlns='jabber:client' type='get' id='j1' from='bob@localhost/x' to='alice@localhost/y'/>",
        );
        let Inbound::Refuse(reply) = convert_inbound(el) else {
            panic!("not refused")
        };
        let Iq::Error { id, to, error, .. } = reply else {
            panic!("not an error")
        };
        assert_eq!(id, "j1");
        assert_eq!(to.unwrap().to_string(), "bob@localhost/x");
        assert_eq!(error.type_, ErrorType::Modify);
        assert_eq!(error.defined_condition, DefinedCondition::BadRequest);
    }

    #[test]
    fn a_malformed_message_or_result_is_dropped_without_an_answer() {
        for xml in [
            "<message xmlns='jabber:client' type='bogus' from='bob@localhost/x'><body>hi</body></message>",
            "<iq xmlns='jabber:client' type='result' from='bob@localhost/x'/>",
            "<iq xmlns='jabber:client' type='get' id='r' from='not a jid@@'/>",
            "<message xmlns='jabber:client' from='bob@localhost/x'><thread>a</thread><thread>b</thread></message>",
            "<presence xmlns='jabber:client' type='nonsense'/>",
            "<junk xmlns='jabber:client'/>",
        ] {
            assert!(
                matches!(convert_inbound(wire(xml)), Inbound::Dropped),
                "{xml}"
            );
        }
    }

    #[test]
    fn well_formed_stanzas_pass_unchanged() {
        let xml = "<iq xmlns='jabber:client' type='error' id='e' from='bob@localhost/x'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>";
        let Inbound::Stanza(stanza) = convert_inbound(wire(xml)) else {
            panic!()
        };
        assert_eq!(Element::from(stanza), wire(xml));
    }

    #[test]
    fn only_the_servers_pings_are_answered_by_the_adapter() {
        let own: Jid = "alice@localhost/r".parse().unwrap();
        let ping = |from: &str| {
            let xml = format!(
                "<iq xmlns='jabber:client' type='get' id='p' {from}><ping xmlns='urn:xmpp:ping'/></iq>"
            );
            let Inbound::Stanza(stanza) = convert_inbound(wire(&xml)) else {
                panic!()
            };
            answer_server_ping(&stanza, &own)
        };
        let Some(Iq::Result {
            id, to, payload, ..
        }) = ping("from='localhost'")
        else {
            panic!("server ping not answered")
        };
        assert_eq!(
            (id.as_str(), to.unwrap().to_string(), payload),
            ("p", "localhost".into(), None)
        );
        assert!(ping("").is_some());
        assert!(ping("from='alice@localhost'").is_some());
        assert!(
            ping("from='bob@localhost/x'").is_none(),
            "peers' pings go to the handlers"
        );
        assert!(ping("from='other.example'").is_none());
    }

    #[test]
    fn repair_keeps_the_error_children_and_derives_missing_type_and_condition() {
        let mut error = wire(
            "<error xmlns='jabber:client' code='404'><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>gone</text></error>",
        );
        lenient::repair_error_element(&mut error);
        let parsed = StanzaError::try_from(error).unwrap();
        assert_eq!(parsed.type_, ErrorType::Cancel);
        assert_eq!(parsed.defined_condition, DefinedCondition::ItemNotFound);
        assert_eq!(parsed.texts.get("").map(String::as_str), Some("gone"));
    }
}
