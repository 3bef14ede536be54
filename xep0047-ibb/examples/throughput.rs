//! IBB throughput over the in-memory hub (no server: the XML-object and base64 cost only).
//!
//! ```text
//! cargo run --release -p xep0047-ibb --example throughput -- [MiB] [block-size] [iq|message] [window...]
//! ```
//!
//! Prints MB/s (10^6 bytes) for each window size given (default 1 4 16 64).

use std::time::{Duration, Instant};

use ft_transport::hub::{Hub, HubReceiver, HubTransport};
use jid::Jid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xep0047_ibb::{Config, Ibb, OpenOptions, Sid, StanzaKind};

fn pump(ibb: Ibb<HubTransport>, rx: HubReceiver) {
    tokio::spawn(ft_transport::pump(rx, ibb));
}

async fn run(mib: usize, block_size: u16, stanza: StanzaKind, window: u16) -> f64 {
    let hub = Hub::new();
    let a_jid: Jid = "alice@example.org/a".parse().unwrap();
    let b_jid: Jid = "bob@example.org/b".parse().unwrap();
    let (at, arx) = hub.connect(a_jid.clone());
    let (bt, brx) = hub.connect(b_jid.clone());
    let mut config = Config::default();
    config
        .max_in_flight(window)
        .initial_window(window)
        .send_buffer(4 << 20)
        .recv_buffer(4 << 20)
        // Message mode has no acknowledgements: the hub's inbox (1024 stanzas, 64 MiB at this
        // block-size) can get ahead of the reader by more than the default 16 MiB cap.
        .message_overrun(128 << 20);
    let a = Ibb::new(at, config.clone());
    let b = Ibb::new(bt, config);
    pump(a.clone(), arx);
    pump(b.clone(), brx);
    let sid = Sid::new("bench").unwrap();
    let accept = b.expect(a_jid, sid.clone(), Duration::from_secs(5));
    let (sa, sb) = tokio::join!(
        a.open(b_jid, sid, OpenOptions { block_size, stanza }),
        accept
    );
    let (mut sa, mut sb) = (sa.unwrap(), sb.unwrap());
    let total = mib << 20;
    let block = vec![0x5au8; 1 << 20];
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        let mut left = total;
        while left > 0 {
            let n = left.min(block.len());
            sa.write_all(&block[..n]).await.unwrap();
            left -= n;
        }
        sa.shutdown().await.unwrap();
    });
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0usize;
    loop {
        let n = sb.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got += n;
    }
    writer.await.unwrap();
    assert_eq!(got, total);
    total as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mib: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(256);
    let block: u16 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(65535);
    let stanza = match args.get(2).map(String::as_str) {
        Some("message") => StanzaKind::Message,
        _ => StanzaKind::Iq,
    };
    let mut windows: Vec<u16> = args.iter().skip(3).filter_map(|s| s.parse().ok()).collect();
    if windows.is_empty() {
        windows = vec![1, 4, 16, 64];
    }
    // IBB_RT=multi uses two worker threads; the default is one thread, which avoids
    // cross-thread wake-ups between the pump, the drivers, the reader and the writer.
    let rt = if std::env::var("IBB_RT").as_deref() == Ok("multi") {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .unwrap();
    for w in windows {
        let mbs = rt.block_on(run(mib, block, stanza, w));
        println!(
            "{mib} MiB, block-size {block}, {}, window {w}: {mbs:.0} MB/s",
            stanza.as_str()
        );
    }
}
