//! A XEP-0114 component that owns its connection and plugs `FileTransfer` into it.
//!
//! The component connects with `ft_transport::xmpp::connect_component` (tokio-xmpp's own
//! `Component` needs its `component` feature, which switches every stanza of the whole build
//! to the component namespace: a client in the same build would then send stanzas servers
//! reject). It keeps its own handler (it answers pings and echoes messages, from the address
//! they were sent to) and hands every stanza to `FileTransfer` first. A component has no
//! resource: peers send files to its domain (or any JID at it).
//!
//! ```text
//! cargo run -p ft-facade --example embed_component -- 127.0.0.1:5347 files.localhost SECRET DIR [bob@localhost/pc FILE]
//! ```
//!
//! `ft-facade/tests/embed.rs` runs this code against a real Prosody.

use std::error::Error;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::path::PathBuf;

use ft_facade::{AcceptOptions, Config, FileTransfer, SendOptions};
use ft_transport::xmpp::{Inbound, XmppTransport, connect_component};
use ft_transport::{BareJid, Stanza, StanzaTransport};
use tokio::task::JoinHandle;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::{Lang, Message};

type BoxError = Box<dyn Error + Send + Sync>;

/// The running component: its file-transfer manager and the task that reads its stream.
#[derive(Debug)]
pub struct App {
    /// File transfer on the component's connection.
    pub ft: FileTransfer<XmppTransport>,
    /// The task that reads the stream; ends with the connection.
    pub driver: JoinHandle<()>,
}

/// Connects the component, then hands its stanzas to `FileTransfer` and its own handler.
pub async fn start(
    domain: &BareJid,
    secret: &str,
    server: SocketAddr,
    config: Config,
) -> Result<App, BoxError> {
    let (transport, inbound) = connect_component(domain, secret, server).await?;
    let ft = FileTransfer::new(transport.clone(), config);
    let driver = tokio::spawn(drive(inbound, transport, ft.clone()));
    Ok(App { ft, driver })
}

/// Offers each inbound stanza to `FileTransfer` (after `ready()`), then to the component's
/// own handler.
async fn drive(mut inbound: Inbound, transport: XmppTransport, ft: FileTransfer<XmppTransport>) {
    while let Some(stanza) = inbound.next().await {
        ft.ready().await;
        if let ControlFlow::Continue(stanza) = ft.handle_stanza(stanza)
            && let Some(reply) = own_handler(stanza)
            && transport.send(reply).await.is_err()
        {
            return;
        }
    }
}

/// The component's own handler: answers pings (XEP-0199) and echoes messages, each from
/// the address it was sent to.
fn own_handler(stanza: Stanza) -> Option<Stanza> {
    match stanza {
        Stanza::Iq(Iq::Get {
            from: Some(from),
            to: Some(to),
            id,
            payload,
        }) if payload.is("ping", "urn:xmpp:ping") => {
            Some(Iq::empty_result(from, id).with_from(to).into())
        }
        Stanza::Message(m) => {
            let (_, body) = m.get_best_body(vec![])?;
            let mut reply = Message::new_with_type(m.type_.clone(), m.from.clone()?)
                .with_body(Lang::default(), format!("echo: {body}"));
            reply.from = m.to.clone();
            Some(reply.into())
        }
        _ => None,
    }
}

/// Accepts every offer into `dir`, printing each outcome.
pub fn accept_all(ft: FileTransfer<XmppTransport>, dir: PathBuf) -> JoinHandle<()> {
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
    let [server, domain, secret, dir, rest @ ..] = args.as_slice() else {
        return Err("usage: embed_component SERVER-ADDR DOMAIN SECRET DIR [PEER FILE]".into());
    };
    let app = start(&domain.parse()?, secret, server.parse()?, Config::default()).await?;
    println!("connected as {}", app.ft.jid());
    accept_all(app.ft.clone(), dir.into());
    if let [peer, file] = rest {
        let sent = app
            .ft
            .send_file(peer.parse()?, file, SendOptions::default());
        let outcome = sent.outcome().await?;
        println!("sent {} bytes, sha-256 {}", outcome.bytes, outcome.sha256);
    }
    app.driver.await?;
    Ok(())
}
