//! XEP-0065 on its own: two entities signal over the in-memory hub (`ft-transport`'s
//! stand-in for a server) and the bytes go through a real SOCKS5 connection on loopback,
//! straight to the requester's own streamhost. No SI, no proxy, no facade.
//!
//! ```text
//! cargo run -p xep0065-s5b --example s5b_alone
//! ```
//!
//! `tests/examples.rs` runs it.

use std::error::Error;
use std::ops::ControlFlow;
use std::time::Duration;

use ft_transport::hub::Hub;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xep0065_s5b::{Config, DialPolicy, S5b, Sid};

/// Sends `data` from alice to bob over SOCKS5 and returns what bob read, with the
/// streamhost used.
pub async fn run(data: &[u8]) -> Result<(Vec<u8>, String), Box<dyn Error + Send + Sync>> {
    let hub = Hub::new();
    let mut config = Config::default();
    config.listen(vec!["127.0.0.1".parse()?]);
    // Both ends are on this host: loopback allowed on purpose (the default refuses it).
    config.dial_policy(DialPolicy::allow_all());
    let mut ends = Vec::new();
    for who in ["alice@example.org/a", "bob@example.org/b"] {
        let (transport, mut inbox) = hub.connect(who.parse()?);
        let s5b = S5b::new(transport, config.clone());
        let feed = s5b.clone();
        tokio::spawn(async move {
            while let Some(stanza) = inbox.recv().await {
                if let ControlFlow::Continue(_not_s5b) = feed.handle_stanza(stanza) {}
            }
        });
        ends.push(s5b);
    }
    let sid = Sid::new("s5b-example")?;
    // Bob (the target) authorises the stream first, normally once SI agreed on it.
    let target = tokio::spawn(ends[1].expect(
        "alice@example.org/a".parse()?,
        sid.clone(),
        Duration::from_secs(10),
    ));
    let mut alice = ends[0]
        .connect("bob@example.org/b".parse()?, sid, &[])
        .await?;
    let streamhost = format!("{}:{}", alice.streamhost.host, alice.streamhost.port);
    let payload = data.to_vec();
    let writer = tokio::spawn(async move {
        alice.stream.write_all(&payload).await?;
        alice.stream.shutdown().await // half-close: the end of the data
    });
    let mut bob = target.await??;
    let mut got = Vec::new();
    bob.stream.read_to_end(&mut got).await?;
    writer.await??;
    Ok((got, streamhost))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    let data = vec![0x5b; 1 << 20];
    let (got, streamhost) = run(&data).await?;
    println!(
        "bob read {} bytes via {streamhost}, equal: {}",
        got.len(),
        got == data
    );
    Ok(())
}
