//! The XEP-0114 component handshake, over tokio-xmpp's XML stream reader; the session then
//! runs on our codec.

use std::borrow::Cow;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::{SinkExt, StreamExt};
use jid::{BareJid, Jid};
use minidom::Element;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_xmpp::error::AuthError;
use tokio_xmpp::xmlstream::{ReadError, StreamHeader, Timeouts, XmlStream, initiate_stream};
use xmpp_parsers::component::Handshake;
use xmpp_parsers::ns;

use super::session::{self, SessionConfig};
use super::tap::Tap;
use super::{ComponentInbound, ComponentTransport, Error};
use crate::codec::{XmlCodec, XmlLog};

type ComponentStream = XmlStream<Tap<VersionedHeader<TcpStream>>, Element>;

/// How [`connect_component_with`] connects.
#[derive(Clone)]
pub struct ComponentOptions {
    /// The component's JID, a domain such as `proxy.example.org`.
    pub jid: BareJid,
    /// The shared secret.
    pub secret: String,
    /// The server's component port.
    pub addr: SocketAddr,
    /// Where every element in and out is logged (the handshake digest redacted). Default
    /// none.
    pub xml_log: Option<Arc<dyn XmlLog>>,
}

impl std::fmt::Debug for ComponentOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentOptions")
            .field("jid", &self.jid)
            .field("secret", &"<redacted>")
            .field("addr", &self.addr)
            .field("xml_log", &self.xml_log.is_some())
            .finish()
    }
}

impl ComponentOptions {
    /// Options without an XML log.
    pub fn new(jid: BareJid, secret: impl Into<String>, addr: SocketAddr) -> Self {
        Self {
            jid,
            secret: secret.into(),
            addr,
            xml_log: None,
        }
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
/// to the component namespace and so breaks clients built alongside.) Inbound stanzas are
/// read as the client's are: repaired where they can be, malformed requests answered
/// `bad-request`, anything else that does not parse dropped.
pub async fn connect_component(
    jid: &BareJid,
    secret: &str,
    addr: SocketAddr,
) -> Result<(ComponentTransport, ComponentInbound), Error> {
    connect_component_with(ComponentOptions::new(jid.clone(), secret, addr)).await
}

/// [`connect_component`] with all its options (an XML log).
pub async fn connect_component_with(
    options: ComponentOptions,
) -> Result<(ComponentTransport, ComponentInbound), Error> {
    let ComponentOptions {
        jid,
        secret,
        addr,
        xml_log,
    } = options;
    let full: Jid = jid.clone().into();
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|source| Error::Connect {
            addr: addr.to_string(),
            source,
        })?;
    tracing::debug!(%jid, %addr, "component connected, opening the stream");
    if let Some(log) = &xml_log {
        log.note(&format!("connected to {addr}"));
    }
    tcp.set_nodelay(true)
        .map_err(|e| Error::Component(e.into()))?;
    let header = StreamHeader {
        to: Some(Cow::Borrowed(jid.as_str())),
        from: None,
        id: None,
    };
    let mut pending = initiate_stream(
        Tap::new(VersionedHeader::new(tcp), xml_log.clone()),
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
    let handshake = Handshake::from_stream_id_and_password(stream_id.into_owned(), &secret);
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
    tracing::debug!(%jid, "component handshake accepted");
    // The handshake is done: the rest of the session runs on our codec, in component mode.
    let mut io = stream.into_inner();
    io.stop_logging();
    let mut config = SessionConfig::new(full, false);
    config.xml_log = xml_log;
    Ok(session::spawn(
        io,
        XmlCodec::component().header_received(),
        config,
        None,
    ))
}

/// XEP-0114 servers answer with a stream header without `version` (the protocol predates
/// RFC 6120); tokio-xmpp's stream reader requires `version='1.0'` unless its `component`
/// feature is on. This reader adds the attribute to the server's `<stream:stream>` start tag
/// and passes every other byte through unchanged.
#[derive(Debug)]
pub(super) struct VersionedHeader<S> {
    inner: S,
    /// Bytes of the header seen so far, until the start tag is complete.
    scanning: Option<Vec<u8>>,
    /// Rewritten bytes not yet handed to the reader.
    out: Vec<u8>,
    out_pos: usize,
}

/// Longest server preamble (XML declaration and stream start tag) we accept.
pub(super) const MAX_COMPONENT_HEADER: usize = 8192;

impl<S> VersionedHeader<S> {
    pub(super) fn new(inner: S) -> Self {
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
