//! XEP-0030 on its own: over the in-memory hub (`ft-transport`'s stand-in for a server), a
//! client finds the SOCKS5 proxy among its server's items and checks that a peer does SI
//! file transfer; the proxy and the peer answer with `DiscoResponder`.
//!
//! ```text
//! cargo run -p xep0030-disco --example disco_alone
//! ```
//!
//! `tests/examples.rs` runs it.

use std::error::Error;
use std::ops::ControlFlow;
use std::sync::Arc;

use ft_transport::hub::Hub;
use ft_transport::iq::IqTracker;
use ft_transport::{Jid, StanzaTransport};
use xep0030_disco::{Disco, DiscoConfig, DiscoResponder, features, identity};

/// Connects `jid` to the hub and answers every disco request to it with `responder`.
fn serve(hub: &Hub, jid: &str, responder: DiscoResponder) -> Result<(), Box<dyn Error>> {
    let (transport, mut inbox) = hub.connect(jid.parse()?);
    tokio::spawn(async move {
        while let Some(stanza) = inbox.recv().await {
            if let ControlFlow::Break(Some(reply)) = responder.handle_stanza(stanza) {
                let _ = transport.send(reply).await;
            }
        }
    });
    Ok(())
}

/// The proxies found under `example.org`, and whether bob does SI file transfer.
pub async fn run() -> Result<(Vec<Jid>, bool), Box<dyn Error>> {
    let hub = Hub::new();
    serve(
        &hub,
        "proxy.example.org",
        DiscoResponder::new(identity("proxy", "bytestreams")),
    )?;
    serve(
        &hub,
        "bob@example.org/pc",
        DiscoResponder::file_transfer_client(),
    )?;

    let (me, mut inbox) = hub.connect("alice@example.org/home".parse()?);
    let tracker = Arc::new(IqTracker::new("disco"));
    let t = tracker.clone();
    tokio::spawn(async move {
        while let Some(stanza) = inbox.recv().await {
            let _ = t.handle_stanza(stanza);
        }
    });
    let disco = Disco::new(me, tracker, DiscoConfig::default());
    let proxies = disco.find_proxies(&"example.org".parse()?).await?;
    let si = disco
        .supports(&"bob@example.org/pc".parse()?, features::SI_FILE_TRANSFER)
        .await?;
    Ok((proxies, si))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let (proxies, si) = run().await?;
    println!("proxies: {proxies:?}; bob does SI file transfer: {si}");
    Ok(())
}
