//! `xft demo`: entities on the in-memory hub, our proxy on loopback, every method by both
//! stacks (Jingle File Transfer and SI), each file verified by its SHA-256 read back.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ft_facade::{AcceptOptions, Config, FileTransfer, Method, ProxySource, Stack};
use ft_transport::hub::{Hub, HubTransport};
use jid::Jid;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use xep0065_proxy::{Proxy, ProxyConfig};

use crate::args::StackChoice;
use crate::method::MethodSpec;
use crate::report::{self, Row};
use crate::timeline::Timeline;
use crate::{BoxError, DemoArgs};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const METHODS: [&str; 4] = ["s5b-direct", "s5b-proxy", "ibb-iq", "ibb-message"];

fn jid(s: &str) -> Result<Jid, BoxError> {
    Ok(s.parse()?)
}

/// Pseudo-random content (xorshift), written in 1 MiB pieces; returns its SHA-256.
async fn generate(path: &Path, size: u64) -> Result<String, BoxError> {
    let mut file = tokio::fs::File::create(path).await?;
    let mut sha = Sha256::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut left = size;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        for chunk in buf[..n].chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = x.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
        sha.update(&buf[..n]);
        file.write_all(&buf[..n]).await?;
        left -= n as u64;
    }
    file.flush().await?;
    Ok(hex::encode(sha.finalize()))
}

async fn sha256_of(path: &Path) -> Result<String, BoxError> {
    use tokio::io::AsyncReadExt;
    let mut f = tokio::fs::File::open(path).await?;
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
    }
    Ok(hex::encode(sha.finalize()))
}

fn entity(hub: &Hub, me: &str, config: Config) -> Result<FileTransfer<HubTransport>, BoxError> {
    let (t, mut rx) = hub.connect(jid(me)?);
    let ft = FileTransfer::new(t, config);
    let pumped = ft.clone();
    tokio::spawn(async move {
        while let Some(s) = rx.recv().await {
            // Backpressure for IBB over message (no acks): wait while bob's receiver lags.
            pumped.ready().await;
            let _ = pumped.handle_stanza(s);
        }
    });
    Ok(ft)
}

/// The stacks the demo runs, in order: both unless `--stack` names one.
fn stacks(chosen: &[StackChoice]) -> Vec<Stack> {
    let mut out = Vec::new();
    for c in chosen {
        for s in c.stacks() {
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    if out.is_empty() || chosen.contains(&StackChoice::Auto) {
        out = vec![Stack::Jingle, Stack::Si];
    }
    out
}

fn config(block_size: Option<u16>, stacks: &[Stack]) -> Config {
    let mut c = Config::default();
    c.stacks(stacks);
    c.methods(&[Method::S5b, Method::Ibb]);
    c.proxies(ProxySource::Discover);
    if let Some(b) = block_size {
        c.block_size(b);
    }
    c.cap_timeouts(Duration::from_secs(30));
    c.s5b.listen(vec![LOOPBACK]);
    // Both entities and the proxy are on this host: the demo dials loopback on purpose.
    c.s5b.dial_policy(ft_facade::s5b::DialPolicy::allow_all());
    c.ibb.max_in_flight(64).initial_window(64);
    c
}

pub(crate) async fn run(args: DemoArgs) -> Result<ExitCode, BoxError> {
    let methods: Vec<MethodSpec> = if args.methods.is_empty() {
        METHODS
            .iter()
            .map(|m| MethodSpec::parse(m))
            .collect::<Result<_, _>>()?
    } else {
        args.methods
            .iter()
            .map(|m| MethodSpec::parse(m))
            .collect::<Result<_, _>>()?
    };
    let hub = Hub::new();

    // Our proxy, as proxy.localhost on the hub, listening on 127.0.0.1 only.
    let mut pc = ProxyConfig::new(jid("proxy.localhost")?);
    pc.listen = vec![SocketAddr::new(LOOPBACK, 0)];
    pc.allowed_domains = vec!["localhost".into()];
    let proxy = Proxy::bind(pc).await?;
    let (pt, mut prx) = hub.connect(jid("proxy.localhost")?);
    proxy.serve(pt);
    let p2 = proxy.clone();
    tokio::spawn(async move {
        while let Some(s) = prx.recv().await {
            let _ = p2.handle_stanza(s);
        }
    });

    // One sender per stack, each preferring only its own; bob receives both.
    let stacks = stacks(&args.stacks);
    let mut senders = Vec::new();
    for &stack in &stacks {
        let me = format!("alice@localhost/{}", stack.name());
        senders.push((stack, entity(&hub, &me, config(args.block_size, &[stack]))?));
    }
    let bob = entity(
        &hub,
        "bob@localhost/demo",
        config(args.block_size, &[Stack::Jingle, Stack::Si]),
    )?;

    let work = tempfile::tempdir()?;
    let src = work.path().join("demo.bin");
    if !args.json {
        eprintln!(
            "xft demo: {} bytes, alice@localhost -> bob@localhost on the in-memory hub by {}, proxy.localhost on {}",
            args.size,
            stacks
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(" and "),
            proxy
                .streamhosts()
                .iter()
                .map(|s| format!("{}:{}", s.host, s.port))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let want = generate(&src, args.size).await?;

    let mut rows = Vec::new();
    for (stack, alice) in &senders {
        for &m in &methods {
            let dst = work.path().join(stack.name()).join(m.name);
            tokio::fs::create_dir_all(&dst).await?;
            let row = one(alice, &bob, *stack, m, &src, &dst, &want).await;
            if args.json {
                println!("{}", report::json(&row));
            }
            rows.push(row);
        }
    }
    if !args.json {
        print!("{}", report::table(&rows));
        println!(
            "total s: offer to verified file on disk; stream MB/s: the bytes over the \
             streaming phase alone (hashing runs beside it; the sender's pre-offer hash pass \
             and the final check are outside it)"
        );
    }
    drop(proxy);
    Ok(if rows.iter().all(|r| r.verified) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn one(
    alice: &FileTransfer<HubTransport>,
    bob: &FileTransfer<HubTransport>,
    stack: Stack,
    method: MethodSpec,
    src: &Path,
    dst: &Path,
    want: &str,
) -> Row {
    let started = Instant::now();
    let sending = alice.send_file(bob.jid().clone(), src, method.send_options(alice.config()));
    let receiving = match tokio::time::timeout(Duration::from_secs(30), bob.next_offer()).await {
        Ok(Some(offer)) => offer.accept_into_dir(dst, AcceptOptions::new()),
        _ => {
            sending.cancel();
            let waited = ft_facade::TransferError::new(
                ft_facade::Stage::Offer,
                ft_facade::ErrorKind::Timeout(Duration::from_secs(30)),
            );
            let mut row = Row::from_result(
                "demo",
                method.name,
                "demo.bin",
                started,
                &Timeline::default(),
                &Err(waited),
            );
            row.stack = Some(stack.name());
            return row;
        }
    };
    // The receiver's events time the stages (no bar: the demo prints a table).
    let (sent, (received, timeline)) = tokio::join!(
        sending.outcome(),
        crate::progress::follow(receiving, "demo.bin", false, false)
    );
    let r = sent.and(received);
    let mut row = Row::from_result("demo", method.name, "demo.bin", started, &timeline, &r);
    row.stack.get_or_insert(stack.name());
    if let Ok(o) = &r {
        if o.stack != stack {
            row.fail(
                "offer",
                format!("negotiated by {}, not {}", o.stack.name(), stack.name()),
            );
            return row;
        }
        // Verified means here: the file on disk has the source's SHA-256, read back.
        let on_disk = match &o.path {
            Some(p) => sha256_of(p).await.ok(),
            None => None,
        };
        row.verified = on_disk.as_deref() == Some(want);
        if !row.verified {
            row.fail("verify", "sha-256 on disk differs".into());
        }
        row.sha256 = on_disk;
    }
    row
}
