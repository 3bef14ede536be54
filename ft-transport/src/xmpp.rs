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
use tokio::io::{AsyncRead, AsyncWrite, BufStream, ReadBuf};
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
    /// failure: tokio-xmpp retries with backoff and does not say which). tokio-xmpp 6.0's
    /// login task keeps retrying until it succeeds once or the runtime shuts down.
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

/// The same stanzas as [`ClientInbound::next`], as a `futures` stream.
impl futures_util::Stream for ClientInbound {
    type Item = Stanza;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Stanza>> {
        self.rx.poll_recv(cx)
    }
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
}
