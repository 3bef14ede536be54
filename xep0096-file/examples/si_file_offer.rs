//! XEP-0095 with XEP-0096 on their own: alice offers a file over the in-memory hub
//! (`ft-transport`'s stand-in for a server), bob reads the offer, makes its name safe and
//! accepts it over IBB asking for the bytes he lacks; alice's SI driver gets the answer.
//! What then carries the bytes is `xep0047-ibb` or `xep0065-s5b`.
//!
//! ```text
//! cargo run -p xep0096-file --example si_file_offer
//! ```
//!
//! `tests/examples.rs` runs it.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use ft_transport::hub::Hub;
use ft_transport::iq::IqTracker;
use ft_transport::{Stanza, StanzaTransport};
use tokio::sync::mpsc;
use xep0095_si::{Sid, method};
use xep0096_file::{File, FileOffer, Hasher, Range, answer_range};

/// What each side saw.
#[derive(Debug)]
pub struct Seen {
    /// The name bob would write, made safe.
    pub safe_name: String,
    /// The size in the offer.
    pub size: Option<u64>,
    /// The method alice's driver read from bob's answer.
    pub method: String,
    /// The range bob asked for, as alice's driver read it.
    pub range: Option<Range>,
}

/// Alice offers `name` (`content`, MD5 in the offer, ranged) to bob, who already holds
/// `have` bytes of it.
pub async fn run(name: &str, content: &[u8], have: u64) -> Result<Seen, Box<dyn Error>> {
    let hub = Hub::new();
    let (alice, mut alice_rx) = hub.connect("alice@example.org/a".parse()?);
    let (bob, mut bob_rx) = hub.connect("bob@example.org/b".parse()?);

    // Alice's receive loop feeds her iq tracker (the SI driver waits on it).
    let tracker = Arc::new(IqTracker::new("si"));
    let t = tracker.clone();
    tokio::spawn(async move {
        while let Some(stanza) = alice_rx.recv().await {
            let _ = t.handle_stanza(stanza);
        }
    });

    // Bob reads each offer and accepts it over IBB from offset `have`.
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(stanza) = bob_rx.recv().await {
            let Stanza::Iq(iq) = stanza else { continue };
            let Ok(offer) = FileOffer::from_iq(&iq) else {
                continue;
            };
            let safe = offer.safe_name().unwrap_or_else(|_| "unnamed".into());
            let _ = seen_tx.send((safe, offer.file.size));
            let answer = offer
                .accept(method::IBB, Some(Range::from_offset(have)))
                .expect("IBB was offered");
            let _ = bob.send(Stanza::Iq(answer)).await;
        }
    });

    let mut h = Hasher::new();
    h.update(content);
    let file = File::new(name, content.len() as u64)
        .with_md5(h.finish().md5)
        .with_ranged();
    let si = FileOffer::si(
        &Sid::new("si-example")?,
        file,
        Some("text/plain"),
        &[method::BYTESTREAMS, method::IBB],
    );
    let accepted = xep0095_si::offer(
        &tracker,
        &alice,
        "bob@example.org/b".parse()?,
        si,
        Duration::from_secs(10),
    )
    .await?;
    let (safe_name, size) = seen_rx.recv().await.ok_or("bob saw no offer")?;
    Ok(Seen {
        safe_name,
        size,
        range: answer_range(&accepted)?,
        method: accepted.method,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let seen = run("../notes.txt", b"hello, bob", 4).await?;
    println!("{seen:?}");
    Ok(())
}
