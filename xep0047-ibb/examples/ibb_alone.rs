//! XEP-0047 on its own: two entities on the in-memory hub (`ft-transport`'s stand-in for a
//! server) open an In-Band Bytestream and move bytes through it, no SI, no facade.
//!
//! ```text
//! cargo run -p xep0047-ibb --example ibb_alone
//! ```
//!
//! `tests/examples.rs` runs it.

use std::error::Error;
use std::time::Duration;

use ft_transport::hub::Hub;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xep0047_ibb::{Config, Ibb, OpenOptions, Sid};

/// Sends `data` from alice to bob over IBB (`<iq/>` stanzas, 4096-byte blocks) and returns
/// what bob read.
pub async fn run(data: &[u8]) -> Result<Vec<u8>, Box<dyn Error>> {
    let hub = Hub::new();
    let mut ends = Vec::new();
    for who in ["alice@example.org/a", "bob@example.org/b"] {
        let (transport, inbox) = hub.connect(who.parse()?);
        let ibb = Ibb::new(transport, Config::default());
        // The application's receive loop: IBB takes its stanzas (other handlers would be
        // chained after it in a tuple), waiting while a reader lags.
        tokio::spawn(ft_transport::pump(inbox, ibb.clone()));
        ends.push(ibb);
    }
    let sid = Sid::new("ibb-example")?;
    // Bob expects the stream first (normally once SI agreed on the sid).
    let incoming = ends[1].expect(
        "alice@example.org/a".parse()?,
        sid.clone(),
        Duration::from_secs(10),
    );
    let mut out = ends[0]
        .open("bob@example.org/b".parse()?, sid, OpenOptions::default())
        .await?;
    let mut inc = incoming.await?;
    let (sent, received) = tokio::join!(
        async {
            out.write_all(data).await?;
            out.shutdown().await // sends <close/> once every block is acknowledged
        },
        async {
            let mut got = Vec::new();
            inc.read_to_end(&mut got).await.map(|_| got)
        }
    );
    sent?;
    Ok(received?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let got = run(&data).await?;
    println!("bob read {} bytes, equal: {}", got.len(), got == data);
    Ok(())
}
