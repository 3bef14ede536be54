//! One session on a stream: the sending handle and its writer task; the reading side is
//! [`Inbound`].

use std::sync::Arc;
use std::time::Duration;

use jid::Jid;
use minidom::Element;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use xmpp_parsers::stanza::Stanza;

use super::Error;
use super::inbound::Inbound;
use super::outbound;
use crate::StanzaTransport;
use crate::codec::{EncodedStanza, XmlCodec, XmlLog, stream_header};

/// How a session behaves beyond reading and writing stanzas.
#[derive(Debug, Clone)]
pub(super) struct SessionConfig {
    /// Our JID (a full JID for a client, the domain for a component).
    pub(super) jid: Jid,
    /// Answer the server's pings and ping it after silence (a client).
    pub(super) client: bool,
    /// Set `from` to our JID on stanzas without one (no server does it for us).
    pub(super) stamp_from: bool,
    /// Depth of the outbound queue.
    pub(super) queue_depth: usize,
    /// Silence after which the client pings the server.
    pub(super) read_timeout: Duration,
    /// Further silence after which the stream is given up.
    pub(super) response_timeout: Duration,
    /// Where every element in and out is logged, if anywhere.
    pub(super) xml_log: Option<Arc<dyn XmlLog>>,
}

impl SessionConfig {
    pub(super) fn new(jid: Jid, client: bool) -> Self {
        let timeouts = tokio_xmpp::xmlstream::Timeouts::default();
        Self {
            jid,
            client,
            stamp_from: false,
            queue_depth: 64,
            read_timeout: timeouts.read_timeout,
            response_timeout: timeouts.response_timeout,
            xml_log: None,
        }
    }
}

/// The sending side of a session (a client's or a component's); cheap to clone and share
/// (`Arc`) between drivers. The stream is closed (`</stream:stream>`) once every clone is
/// dropped.
#[derive(Debug, Clone)]
pub struct XmppTransport {
    jid: Jid,
    stamp_from: bool,
    codec: XmlCodec,
    tx: mpsc::Sender<EncodedStanza>,
}

impl XmppTransport {
    /// Writes `element` to the stream as it is, without going through xmpp-parsers' types.
    ///
    /// For tests that must put malformed stanzas on the wire (what a broken peer sends).
    #[doc(hidden)]
    pub async fn send_raw(&self, element: Element) -> Result<(), Error> {
        let encoded = self.codec.encode_element(&element);
        self.tx.send(encoded).await.map_err(|_| Error::Closed)
    }
}

impl StanzaTransport for XmppTransport {
    type Error = Error;

    /// Serializes the stanza in the calling task and resolves once it is queued for the
    /// writer (the trait's contract: not when it is on the wire). A write failure closes
    /// the stream: later sends fail with [`Error::Closed`] and [`Inbound`] ends. A
    /// component must set `from` itself (any JID at its domain).
    async fn send(&self, mut stanza: Stanza) -> Result<(), Error> {
        if self.stamp_from && crate::util::stanza_from(&stanza).is_none() {
            crate::util::set_stanza_from(&mut stanza, Some(self.jid.clone()));
        }
        let encoded = self.codec.encode_parts(stanza);
        self.tx.send(encoded).await.map_err(|_| Error::Closed)
    }

    /// The full JID the server bound (a client), or the component's domain.
    fn jid(&self) -> &Jid {
        &self.jid
    }
}

/// Starts the session's reader and writer on `io`, decoding with `codec`; `header` is
/// written first if given.
pub(super) fn spawn<Io>(
    io: Io,
    codec: XmlCodec,
    config: SessionConfig,
    header: Option<Vec<u8>>,
) -> (XmppTransport, Inbound)
where
    Io: AsyncRead + AsyncWrite + Send + 'static,
{
    let (r, w) = tokio::io::split(io);
    spawn_halves(r, w, codec, config, header)
}

/// [`spawn`] on a stream already split into its reading and writing halves.
fn spawn_halves<R, W>(
    r: R,
    w: W,
    codec: XmlCodec,
    config: SessionConfig,
    header: Option<Vec<u8>>,
) -> (XmppTransport, Inbound)
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    let depth = config.queue_depth.max(1);
    let codec = codec.with_xml_log(config.xml_log.clone());
    let (tx, user_rx) = mpsc::channel(depth);
    let (own_tx, own_rx) = mpsc::channel(depth);
    let transport = XmppTransport {
        jid: config.jid.clone(),
        stamp_from: config.stamp_from,
        codec: codec.clone(),
        tx,
    };
    tokio::spawn(outbound::run(
        w,
        user_rx,
        own_rx,
        header,
        config.xml_log.clone(),
    ));
    (transport, Inbound::new(r, codec, config, own_tx))
}

/// Runs a client session as `jid` on a stream with no server at its other end: writes our
/// `<stream:stream>` header, expects the peer's, and from then on behaves like a
/// [`connect_client`](super::connect_client) session, except that stanzas without `from`
/// get `jid` (what a server would stamp) and no keepalive pings are sent.
///
/// For two entities joined by a TCP connection (set `TCP_NODELAY` on it first), give
/// [`open_serverless_halves`] the connection's [`into_split`](tokio::net::TcpStream::into_split)
/// halves instead, as the benchmarks' raw-XML path does: this function splits any stream
/// with [`tokio::io::split`], whose halves share one lock.
pub fn open_serverless<Io>(io: Io, jid: Jid) -> (XmppTransport, Inbound)
where
    Io: AsyncRead + AsyncWrite + Send + 'static,
{
    let (r, w) = tokio::io::split(io);
    open_serverless_halves(r, w, jid)
}

/// [`open_serverless`] on a stream already split into halves that need no lock between
/// them, such as [`TcpStream::into_split`](tokio::net::TcpStream::into_split)'s:
/// [`tokio::io::split`] guards both halves with one mutex, so a write (an acknowledgement)
/// waits for the read in progress, and the other way round.
pub fn open_serverless_halves<R, W>(r: R, w: W, jid: Jid) -> (XmppTransport, Inbound)
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    let mut config = SessionConfig::new(jid, false);
    config.stamp_from = true;
    spawn_halves(
        r,
        w,
        XmlCodec::client(),
        config,
        Some(stream_header(None).into_bytes()),
    )
}
