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
//! The adapter owns a tokio-xmpp [`StanzaStream`] in one background task that both sends and
//! receives. It does not use `Client::split()`: the halves returned by tokio-xmpp 6.0 share a
//! `Mutex` that the receiving half polls with `try_lock` without registering a waker, so a
//! receiver polled while a send is in progress can sleep forever. Inbound stanzas are handed
//! on through a bounded queue; while it is full the task stops reading (backpressure to the
//! server) but keeps sending.
//!
//! Plaintext connections set `TCP_NODELAY`, so stop-and-wait exchanges (IBB over iq) do not
//! stall on Nagle's algorithm. tokio-xmpp reconnects by itself after a lost connection;
//! stanzas in flight then may be lost and the bound JID may change (the transport keeps the
//! first one), which breaks running transfers as any disconnect does.
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
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use jid::{BareJid, Jid};
use minidom::{Element, Node};
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_xmpp::connect::{DnsConfig, ServerConnector, StartTlsServerConnector};
use tokio_xmpp::error::AuthError;
use tokio_xmpp::stanzastream::{
    Event as StreamEventOrStanza, StanzaStage, StanzaState, StanzaStream, StanzaToken, StreamEvent,
};
use tokio_xmpp::xmlstream::{
    PendingFeaturesRecv, ReadError, StreamHeader, Timeouts, XmlStream, initiate_stream,
};
use xmpp_parsers::component::Handshake;
use xmpp_parsers::ns;
use xmpp_parsers::stanza::Stanza;

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
    /// that, tokio-xmpp is retrying (wrong password, unreachable server, TLS failure).
    pub online_timeout: Duration,
    /// Depth of tokio-xmpp's send and receive queues and of the inbound queue. Default 64:
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
    /// failure: tokio-xmpp keeps retrying in the background and does not say which).
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
    stanza: Box<Stanza>,
    queued: oneshot::Sender<StanzaToken>,
}

/// The sending side of a logged-in client; cheap to share (`Arc`) between drivers.
#[derive(Debug, Clone)]
pub struct ClientTransport {
    jid: Jid,
    commands: mpsc::Sender<Outbound>,
}

impl fmt::Debug for Outbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbound").finish_non_exhaustive()
    }
}

impl StanzaTransport for ClientTransport {
    type Error = Error;

    /// Resolves once the stanza was written to the connection.
    async fn send(&self, stanza: Stanza) -> Result<(), Error> {
        let (queued, token) = oneshot::channel();
        self.commands
            .send(Outbound {
                stanza: Box::new(stanza),
                queued,
            })
            .await
            .map_err(|_| Error::Closed)?;
        let mut token = token.await.map_err(|_| Error::Closed)?;
        match token.wait_for(StanzaStage::Sent).await {
            Some(StanzaState::Sent { .. } | StanzaState::Acked { .. }) => Ok(()),
            Some(StanzaState::Failed { error }) => Err(Error::Send(error.into_io_error())),
            Some(StanzaState::Queued | StanzaState::Dropped) | None => Err(Error::Closed),
        }
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

impl ClientInbound {
    /// The next inbound stanza; `None` once the stream is closed for good.
    pub async fn next(&mut self) -> Option<Stanza> {
        self.rx.recv().await
    }
}

/// Logs in and waits until the session is online (the bound JID is known).
///
/// The stream closes when every clone of the [`ClientTransport`] is dropped.
pub async fn connect_client(
    options: ClientOptions,
) -> Result<(ClientTransport, ClientInbound), Error> {
    let domain = options.jid.domain().as_str().to_owned();
    let depth = options.queue_depth.max(1);
    let stream = if options.plaintext {
        if !options.server.is_loopback() {
            return Err(Error::PlaintextNotLoopback(options.server.to_string()));
        }
        StanzaStream::new_c2s(
            NoDelayTcp(options.server.clone()),
            options.jid.clone(),
            options.password.clone(),
            Timeouts::default(),
            depth,
        )
    } else {
        StanzaStream::new_c2s(
            StartTlsServerConnector::from(options.server.dns_config(&domain)),
            options.jid.clone(),
            options.password.clone(),
            Timeouts::default(),
            depth,
        )
    };
    let (commands, commands_rx) = mpsc::channel(depth);
    let (inbound_tx, inbound_rx) = mpsc::channel(depth);
    let (online_tx, online_rx) = oneshot::channel();
    tokio::spawn(drive_client(stream, commands_rx, inbound_tx, online_tx));
    let jid = match tokio::time::timeout(options.online_timeout, online_rx).await {
        Ok(Ok(jid)) => jid,
        Ok(Err(_)) => return Err(Error::Closed),
        Err(_) => return Err(Error::OnlineTimeout(options.online_timeout)),
    };
    Ok((
        ClientTransport { jid, commands },
        ClientInbound { rx: inbound_rx },
    ))
}

async fn drive_client(
    mut stream: StanzaStream,
    mut commands: mpsc::Receiver<Outbound>,
    inbound: mpsc::Sender<Stanza>,
    online: oneshot::Sender<Jid>,
) {
    let mut online = Some(online);
    let mut pending: Option<Stanza> = None;
    let mut inbound_open = true;
    loop {
        tokio::select! {
            command = commands.recv() => {
                let Some(Outbound { stanza, queued }) = command else { break };
                let token = stream.send(stanza).await;
                // The sender may have given up waiting; the stanza goes out anyway.
                let _ = queued.send(token);
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
            event = stream.next(), if pending.is_none() => match event {
                Some(StreamEventOrStanza::Stanza(stanza)) => {
                    if inbound_open {
                        pending = Some(stanza);
                    }
                }
                Some(StreamEventOrStanza::Stream(StreamEvent::Reset { bound_jid, .. })) => {
                    if let Some(online) = online.take() {
                        let _ = online.send(bound_jid);
                    }
                }
                Some(StreamEventOrStanza::Stream(_)) => {}
                None => break,
            },
        }
    }
    drop(inbound);
    stream.close().await;
}

type ComponentStream = XmlStream<BufStream<TcpStream>, Element>;

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
    let component_err = |e: tokio_xmpp::Error| Error::Component(e);
    let full: Jid = jid.clone().into();
    let (mut pending, _) = NoDelayTcp(Server::Addr(addr))
        .connect(&full, ns::COMPONENT, Timeouts::default())
        .await
        .map_err(component_err)?;
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
}
