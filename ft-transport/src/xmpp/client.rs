//! Client login: tokio-xmpp connects, negotiates STARTTLS and SASL and restarts the
//! stream; we bind the resource and hand the connection to the session.

use std::borrow::Cow;
use std::io;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use jid::Jid;
use minidom::Element;
use sasl::common::Credentials;
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_xmpp::connect::{ServerConnector, StartTlsServerConnector};
use tokio_xmpp::xmlstream::{
    FallibleStreamElement, PendingFeaturesRecv, ReadError, StreamHeader, Timeouts, XmlStream,
    initiate_stream,
};
use xmpp_parsers::bind::{BindQuery, BindResponse};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::ns;

use super::session::{self, SessionConfig};
use super::{ClientInbound, ClientOptions, ClientTransport, Error, Server};
use crate::codec::XmlCodec;

/// Plaintext TCP with `TCP_NODELAY` (tokio-xmpp's own `TcpServerConnector` leaves Nagle on).
#[derive(Debug, Clone)]
pub(super) struct NoDelayTcp(Server);

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
) -> Result<(ClientTransport, ClientInbound), Error>
where
    C::Stream: 'static,
{
    let login = login_until_online(&connector, &options.jid, &options.password);
    let (stream, jid) = tokio::time::timeout(options.online_timeout, login)
        .await
        .map_err(|_| Error::OnlineTimeout(options.online_timeout))?;
    // tokio-xmpp is done: take the connection, with whatever it has buffered past the bind
    // result, and read the rest of the session with our codec. The stream header is
    // consumed, so the codec starts between top-level elements.
    let io = stream.into_inner();
    let mut config = SessionConfig::new(jid, true);
    config.queue_depth = options.queue_depth;
    Ok(session::spawn(
        io,
        XmlCodec::client().header_received(),
        config,
        None,
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
