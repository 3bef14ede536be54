//! Client login: TCP, STARTTLS and the TLS handshake here, the stream header, features and
//! SASL through tokio-xmpp's building blocks, the resource binding here; then the
//! connection goes to the session.

use std::borrow::Cow;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use jid::Jid;
use minidom::Element;
use sasl::common::{ChannelBinding, Credentials};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_xmpp::error::AuthError;
use tokio_xmpp::xmlstream::{
    FallibleStreamElement, ReadError, StreamHeader, Timeouts, XmlStream, XmppStream,
    XmppStreamElement, initiate_stream,
};
use xmpp_parsers::bind::{BindQuery, BindResponse};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::ns;
use xmpp_parsers::starttls;
use xmpp_parsers::stream_features::StreamFeatures;

use super::error::{LoginStage, kebab};
use super::session::{self, SessionConfig};
use super::tap::Tap;
use super::{ClientInbound, ClientOptions, ClientTransport, Error, Server, tls};
use crate::codec::{XmlCodec, XmlLog};

/// The connection under the login: TCP, or TLS over TCP.
pub(super) trait Conn: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Conn for T {}

type Io = Tap<Box<dyn Conn>>;

/// The SASL mechanisms tokio-xmpp tries, in its order of preference.
const OUR_MECHANISMS: [&str; 4] = ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN", "ANONYMOUS"];

/// Logs in and waits until the session is online (authenticated and a resource bound).
///
/// One attempt, failing at the first definite answer with the error that says what
/// happened ([`Error::AuthRefused`], [`Error::Certificate`], [`Error::NoStartTls`],
/// [`Error::Connect`], …); a server that stops answering is given up after
/// [`ClientOptions::online_timeout`] ([`Error::OnlineTimeout`], naming the stage).
///
/// The stream closes when every clone of the [`ClientTransport`] is dropped.
pub async fn connect_client(
    options: ClientOptions,
) -> Result<(ClientTransport, ClientInbound), Error> {
    if options.plaintext && !options.server.is_loopback() {
        return Err(Error::PlaintextNotLoopback(options.server.to_string()));
    }
    let mut stage = LoginStage::Connect;
    let mut server = options.server.to_string();
    let attempt = tokio::time::timeout(
        options.online_timeout,
        login(&options, &mut stage, &mut server),
    )
    .await;
    let (stream, jid) = match attempt {
        Ok(Ok(online)) => online,
        Ok(Err(e)) => {
            tracing::debug!(jid = %options.jid, %stage, error = %e, "xmpp login failed");
            return Err(e);
        }
        Err(_) => {
            tracing::debug!(jid = %options.jid, %stage, "xmpp login timed out");
            return Err(Error::OnlineTimeout {
                server,
                stage,
                after: options.online_timeout,
            });
        }
    };
    tracing::debug!(%jid, %server, "online");
    // tokio-xmpp is done: take the connection, with whatever it has buffered past the bind
    // result, and read the rest of the session with our codec (which logs from here on).
    // The stream header is consumed, so the codec starts between top-level elements.
    let mut io = stream.into_inner();
    io.stop_logging();
    note(
        options.xml_log.as_ref(),
        &format!("online as {jid}; the session starts"),
    );
    let mut config = SessionConfig::new(jid, true);
    config.queue_depth = options.queue_depth;
    config.xml_log = options.xml_log.clone();
    Ok(session::spawn(
        io,
        XmlCodec::client().header_received(),
        config,
        None,
    ))
}

fn note(log: Option<&Arc<dyn XmlLog>>, text: &str) {
    if let Some(log) = log {
        log.note(text);
    }
}

/// The `id` of our resource binding request.
const BIND_ID: &str = "xft-bind";

/// Connects, negotiates TLS (unless plaintext), authenticates, restarts the stream and
/// binds a resource (RFC 6120 §5–§7), keeping `stage` and `server` up to date for the
/// timeout's message. Session establishment (RFC 3921) is not done: RFC 6120 servers,
/// Prosody included, mark it optional or do not offer it.
async fn login(
    options: &ClientOptions,
    stage: &mut LoginStage,
    server: &mut String,
) -> Result<(XmlStream<Io, Element>, Jid), Error> {
    let jid = &options.jid;
    let domain = jid.domain().as_str();
    let node = jid
        .node()
        .ok_or_else(|| Error::NoLocalPart(jid.to_string()))?;
    let log = options.xml_log.clone();

    *stage = LoginStage::Connect;
    let (tcp, addr) = connect_tcp(&options.server, domain, options.online_timeout).await?;
    server.clone_from(&addr);
    // Stop-and-wait exchanges (IBB over iq) must not stall on Nagle's algorithm.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
    tracing::debug!(%jid, %addr, tls = !options.plaintext, "connected, opening the stream");
    note(log.as_ref(), &format!("connected to {addr}"));

    *stage = LoginStage::Stream;
    let conn: Box<dyn Conn> = Box::new(tcp);
    let (mut features, mut stream) = open(Tap::new(conn, log.clone()), domain, *stage).await?;
    let mut binding = ChannelBinding::None;
    if !options.plaintext {
        if features.starttls.is_none() {
            return Err(Error::NoStartTls {
                server: addr,
                domain: domain.to_owned(),
            });
        }
        *stage = LoginStage::StartTls;
        let conn = request_tls(stream, &addr).await?;
        *stage = LoginStage::TlsHandshake;
        let (tls, cb) = tls::handshake(conn, domain, &addr, &options.extra_roots).await?;
        binding = cb;
        note(
            log.as_ref(),
            &format!("tls established with {addr} for {domain}"),
        );
        *stage = LoginStage::TlsStream;
        let conn: Box<dyn Conn> = Box::new(tls);
        (features, stream) = open(Tap::new(conn, log.clone()), domain, *stage).await?;
    }

    *stage = LoginStage::Authentication;
    let offered = features.sasl_mechanisms.clone();
    // With channel-binding data, tokio-xmpp asks for SCRAM-*-PLUS only: when the server
    // offers no -PLUS mechanism it would then fall to PLAIN and send the password. Plain
    // SCRAM ("n", no binding) keeps the password off the wire.
    if !offered.iter().any(|m| m.ends_with("-PLUS")) {
        binding = ChannelBinding::None;
    }
    let plus = !matches!(binding, ChannelBinding::None);
    let mechanism = OUR_MECHANISMS
        .iter()
        .map(|m| {
            if plus && m.starts_with("SCRAM") {
                format!("{m}-PLUS")
            } else {
                (*m).to_owned()
            }
        })
        .find(|m| offered.contains(m));
    tracing::debug!(?offered, ?mechanism, "authenticating");
    let creds = Credentials::default()
        .with_username(node.as_str())
        .with_password(options.password.as_str())
        .with_channel_binding(binding);
    let stream = tokio_xmpp::client_login(stream, features.sasl_mechanisms, creds)
        .await
        .map_err(|e| match e {
            tokio_xmpp::Error::Auth(AuthError::Fail(condition)) => Error::AuthRefused {
                jid: jid.to_bare().to_string(),
                condition: kebab(&format!("{condition:?}")),
            },
            tokio_xmpp::Error::Auth(AuthError::NoMechanism) => Error::NoMechanism {
                offered: if offered.is_empty() {
                    "none".to_owned()
                } else {
                    offered.iter().cloned().collect::<Vec<_>>().join(", ")
                },
                hint: if features.starttls.as_ref().is_some_and(|s| s.required) {
                    "; the server requires tls first"
                } else {
                    ""
                },
            },
            e => Error::login(LoginStage::Authentication, e),
        })?;
    tracing::debug!(%jid, "authenticated");

    *stage = LoginStage::Bind;
    let bind_err = |e: io::Error| Error::login(LoginStage::Bind, e.into());
    let pending = stream.send_header(header(domain)).await.map_err(bind_err)?;
    let (_features, mut stream) = pending
        .recv_features::<Element>()
        .await
        .map_err(|e| Error::login(LoginStage::Bind, e.into()))?;
    let resource = jid.resource().map(|r| r.as_str().to_owned());
    let bind = Iq::from_set(BIND_ID, BindQuery::new(resource));
    stream.send(&Element::from(bind)).await.map_err(bind_err)?;
    loop {
        match stream.next().await {
            Some(Ok(el)) if el.is("iq", ns::JABBER_CLIENT) && el.attr("id") == Some(BIND_ID) => {
                return match Iq::try_from(el) {
                    Ok(Iq::Result {
                        payload: Some(payload),
                        ..
                    }) => match BindResponse::try_from(payload) {
                        Ok(bound) => Ok((stream, Jid::from(bound))),
                        Err(e) => Err(Error::BindRefused(format!("unreadable answer: {e}"))),
                    },
                    Ok(Iq::Error { error, .. }) => Err(Error::BindRefused(kebab(&format!(
                        "{:?}",
                        error.defined_condition
                    )))),
                    _ => Err(Error::BindRefused("unreadable answer".to_owned())),
                };
            }
            Some(Ok(el)) if el.is("error", ns::STREAM) => {
                let condition = el
                    .children()
                    .next()
                    .map_or_else(|| "undefined".to_owned(), |c| c.name().to_owned());
                return Err(Error::StreamError {
                    stage: LoginStage::Bind,
                    condition,
                });
            }
            Some(Ok(_) | Err(ReadError::SoftTimeout | ReadError::ParseError(_))) => {}
            Some(Err(ReadError::HardError(e))) => return Err(bind_err(e)),
            Some(Err(ReadError::StreamFooterReceived)) | None => {
                return Err(Error::login(
                    LoginStage::Bind,
                    tokio_xmpp::Error::Disconnected,
                ));
            }
        }
    }
}

fn header(domain: &str) -> StreamHeader<'_> {
    StreamHeader {
        to: Some(Cow::Borrowed(domain)),
        from: None,
        id: None,
    }
}

/// Sends our stream header and reads the server's header and features.
async fn open(
    io: Io,
    domain: &str,
    stage: LoginStage,
) -> Result<(StreamFeatures, XmppStream<Io>), Error> {
    let pending = initiate_stream(io, ns::JABBER_CLIENT, header(domain), Timeouts::default())
        .await
        .map_err(|e| Error::login(stage, e.into()))?;
    let (features, stream) = pending
        .recv_features::<FallibleStreamElement>()
        .await
        .map_err(|e| Error::login(stage, e.into()))?;
    tracing::debug!(
        starttls = features.starttls.is_some(),
        mechanisms = ?features.sasl_mechanisms,
        "stream features"
    );
    Ok((features, stream))
}

/// `<starttls/>`, then `<proceed/>`: the connection, ready for the TLS handshake.
async fn request_tls(mut stream: XmppStream<Io>, server: &str) -> Result<Box<dyn Conn>, Error> {
    let stage = LoginStage::StartTls;
    let request = XmppStreamElement::Starttls(starttls::Nonza::Request(starttls::Request));
    stream
        .send(&request)
        .await
        .map_err(|e| Error::login(stage, e.into()))?;
    loop {
        match stream
            .next()
            .await
            .map(|r| r.and_then(|el| el.into_read_error()))
        {
            Some(Ok(XmppStreamElement::Starttls(starttls::Nonza::Proceed(_)))) => break,
            Some(Ok(XmppStreamElement::Starttls(starttls::Nonza::Failure(_)))) => {
                return Err(Error::StartTlsRefused {
                    server: server.to_owned(),
                });
            }
            Some(Ok(XmppStreamElement::StreamError(e))) => {
                return Err(Error::StreamError {
                    stage,
                    condition: e.0.to_string(),
                });
            }
            Some(Ok(_) | Err(ReadError::SoftTimeout)) => {}
            Some(Err(ReadError::HardError(e))) => return Err(Error::login(stage, e.into())),
            Some(Err(ReadError::ParseError(e))) => {
                return Err(Error::login(
                    stage,
                    io::Error::new(io::ErrorKind::InvalidData, e).into(),
                ));
            }
            Some(Err(ReadError::StreamFooterReceived)) | None => {
                return Err(Error::login(stage, tokio_xmpp::Error::Disconnected));
            }
        }
    }
    Ok(stream.into_inner().into_inner())
}

/// Opens the TCP connection: every address the server's name resolves to in turn, each
/// given its share of `budget`. Returns the connection and the address it reached.
async fn connect_tcp(
    server: &Server,
    domain: &str,
    budget: Duration,
) -> Result<(TcpStream, String), Error> {
    let addrs: Vec<SocketAddr> = match server {
        Server::Addr(addr) => vec![*addr],
        Server::HostPort { host, port } => tokio::net::lookup_host((host.as_str(), *port))
            .await
            .map_err(|e| Error::Resolve {
                host: format!("{host}:{port}"),
                source: e,
            })?
            .collect(),
        Server::Srv => {
            // tokio-xmpp's resolver does the SRV lookup and its fallback, and connects.
            let tcp = server
                .dns_config(domain)
                .resolve()
                .await
                .map_err(|e| Error::Connect {
                    addr: format!("{domain} (srv lookup)"),
                    source: io::Error::other(e),
                })?;
            let addr = tcp
                .peer_addr()
                .map_or_else(|_| domain.to_owned(), |a| a.to_string());
            return Ok((tcp, addr));
        }
    };
    let Some(count) = std::num::NonZeroUsize::new(addrs.len()) else {
        return Err(Error::Resolve {
            host: server.to_string(),
            source: io::Error::new(io::ErrorKind::NotFound, "no address"),
        });
    };
    let share = (budget / count.get() as u32).max(Duration::from_secs(2));
    let mut last = None;
    for addr in &addrs {
        let err = match tokio::time::timeout(share, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => return Ok((tcp, addr.to_string())),
            Ok(Err(e)) => e,
            Err(_) => io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {share:?}"),
            ),
        };
        tracing::debug!(%addr, error = %err, "tcp connect failed");
        last = Some(err);
    }
    Err(Error::Connect {
        addr: addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        source: last.unwrap_or_else(|| io::Error::other("no address")),
    })
}
