//! An application that owns its tokio-xmpp client stream and plugs `FileTransfer` into it.
//!
//! The application logs in itself, with tokio-xmpp, and keeps its own handlers (here: it
//! answers XEP-0199 pings and echoes chat messages). File transfer shares the connection:
//!
//! * outbound, `FileTransfer` sends through a [`ChannelTransport`]; the task that owns the
//!   stream drains its queue with `stream.send`;
//! * inbound, the same task offers every stanza to `FileTransfer::handle_stanza` first
//!   (after `ready()`, so that a lagging IBB receiver slows the sender down) and handles what
//!   comes back itself.
//!
//! Run it against a server (plaintext on a loopback address, STARTTLS otherwise); it
//! accepts every offered file into DIR and, when given a peer and a file, sends it:
//!
//! ```text
//! cargo run -p ft-facade --example embed_client -- 127.0.0.1:5222 alice@localhost PASSWORD DIR [bob@localhost/pc FILE]
//! ```
//!
//! `ft-facade/tests/embed.rs` runs this code against a real Prosody.
//!
//! The stream is tokio-xmpp's `StanzaStream` (what its `Client` is built on: login,
//! STARTTLS, resource binding, reconnection), owned whole by one task. Not its `Client`:
//! in tokio-xmpp 6.0.0 the `Client`'s background worker reads the stream through
//! `StanzaReceiver::poll_next`, which returns `Pending` without registering a waker when a
//! send holds the stream's lock, so on a multi-threaded runtime the worker can miss its
//! wakeup and inbound stanzas stop while they sit on the socket (with `Client`, about one
//! run of `tests/embed.rs` in four stalled, before the first stanza or in the middle of the
//! IBB transfer, with Prosody's log showing the stanzas sent to it; none in 10 runs with
//! the stream owned whole).

use std::error::Error;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Duration;

use ft_facade::{AcceptOptions, Config, FileTransfer, SendOptions};
use ft_transport::channel::{ChannelTransport, Outbound};
use ft_transport::{Jid, Stanza};
use futures_util::StreamExt;
use tokio::task::JoinHandle;
use tokio_xmpp::connect::{
    DnsConfig, ServerConnector, StartTlsServerConnector, TcpServerConnector,
};
use tokio_xmpp::stanzastream::{Event, StanzaStream, StreamEvent};
use tokio_xmpp::xmlstream::Timeouts;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::{Lang, Message, MessageType};
use xmpp_parsers::presence::Presence;

type BoxError = Box<dyn Error + Send + Sync>;

/// How long logging in may take.
const ONLINE_TIMEOUT: Duration = Duration::from_secs(15);

/// The running application: its file-transfer manager and the task that owns the stream.
#[derive(Debug)]
pub struct App {
    /// File transfer on the application's connection.
    pub ft: FileTransfer<ChannelTransport>,
    /// The full JID the server bound.
    pub jid: Jid,
    /// The task that owns the stream; ends with the connection.
    pub driver: JoinHandle<Result<(), BoxError>>,
}

/// Logs in with tokio-xmpp (plaintext to a loopback address, STARTTLS otherwise), then
/// hands the connection's stanzas to `FileTransfer` and the application's own handler.
pub async fn start(
    jid: Jid,
    password: &str,
    server: SocketAddr,
    config: Config,
) -> Result<App, BoxError> {
    let dns = DnsConfig::addr(&server.to_string());
    if server.ip().is_loopback() {
        start_with(TcpServerConnector::from(dns), jid, password, config).await
    } else {
        start_with(StartTlsServerConnector::from(dns), jid, password, config).await
    }
}

async fn start_with<C: ServerConnector>(
    connector: C,
    jid: Jid,
    password: &str,
    config: Config,
) -> Result<App, BoxError> {
    let mut stream =
        StanzaStream::new_c2s(connector, jid, password.into(), Timeouts::default(), 64);
    let online = tokio::time::timeout(ONLINE_TIMEOUT, async {
        loop {
            match stream.next().await {
                Some(Event::Stream(StreamEvent::Reset { bound_jid, .. })) => return Ok(bound_jid),
                // tokio-xmpp retries failed attempts itself; the timeout bounds them.
                Some(_) => {}
                None => return Err("the stream ended before it was online"),
            }
        }
    });
    let bound = online.await.map_err(|_| "not online within 15 s")??;
    stream.send(Box::new(Presence::available().into())).await;

    let (transport, outbound) = ChannelTransport::new(bound.clone(), 64);
    let ft = FileTransfer::new(transport, config);
    let driver = tokio::spawn(drive(stream, outbound, ft.clone()));
    Ok(App {
        ft,
        jid: bound,
        driver,
    })
}

/// The one task that owns the stream: reads its events and writes what `FileTransfer`
/// queued. It ends when the stream is lost: tokio-xmpp reconnects, maybe to another
/// resource, under running transfers; this application stops instead.
async fn drive(
    mut stream: StanzaStream,
    mut outbound: Outbound,
    ft: FileTransfer<ChannelTransport>,
) -> Result<(), BoxError> {
    loop {
        tokio::select! {
            event = stream.next() => match event {
                Some(Event::Stanza(stanza)) => {
                    ft.ready().await;
                    if let ControlFlow::Continue(stanza) = ft.handle_stanza(stanza)
                        && let Some(reply) = own_handler(stanza)
                    {
                        stream.send(Box::new(reply)).await;
                    }
                }
                Some(Event::Stream(StreamEvent::Suspended)) => return Err("connection lost".into()),
                Some(Event::Stream(_)) => {}
                None => return Ok(()),
            },
            Some(stanza) = outbound.recv() => {
                stream.send(Box::new(stanza)).await;
            }
        }
    }
}

/// The application's own handler, for what `FileTransfer` handed back: answers pings
/// (XEP-0199) and echoes chat messages.
fn own_handler(stanza: Stanza) -> Option<Stanza> {
    match stanza {
        Stanza::Iq(Iq::Get {
            from: Some(from),
            id,
            payload,
            ..
        }) if payload.is("ping", "urn:xmpp:ping") => Some(Iq::empty_result(from, id).into()),
        Stanza::Message(m) if m.type_ == MessageType::Chat => {
            let (_, body) = m.get_best_body(vec![])?;
            let reply =
                Message::chat(m.from.clone()?).with_body(Lang::default(), format!("echo: {body}"));
            Some(reply.into())
        }
        _ => None,
    }
}

/// Accepts every offer into `dir`, printing each outcome.
pub fn accept_all(ft: FileTransfer<ChannelTransport>, dir: PathBuf) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(offer) = ft.next_offer().await {
            println!("offer of {} from {}", offer.file().name, offer.from());
            let transfer = offer.accept_into_dir(&dir, AcceptOptions::new());
            tokio::spawn(async move {
                match transfer.outcome().await {
                    Ok(o) => println!("received {:?}, sha-256 {}", o.path, o.sha256),
                    Err(e) => println!("receive failed: {e}"),
                }
            });
        }
    })
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [server, jid, password, dir, rest @ ..] = args.as_slice() else {
        return Err("usage: embed_client SERVER-ADDR JID PASSWORD DIR [PEER FILE]".into());
    };
    let app = start(jid.parse()?, password, server.parse()?, Config::default()).await?;
    println!("online as {}", app.jid);
    accept_all(app.ft.clone(), dir.into());
    if let [peer, file] = rest {
        let sent = app
            .ft
            .send_file(peer.parse()?, file, SendOptions::default());
        let outcome = sent.outcome().await?;
        println!("sent {} bytes, sha-256 {}", outcome.bytes, outcome.sha256);
    }
    app.driver.await?
}
