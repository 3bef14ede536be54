//! `proxy-memory`: what idle relays cost our XEP-0065 proxy (BAD-INPUT I5), what one busy
//! relay moves beside them, and a slowloris flood during a transfer (E7, E8). Linux only;
//! every socket on loopback (127.0.0.0/8).
//!
//! ```text
//! cargo run --release -p benches --bin proxy-memory -- [--relays 10000] [--flood 50000]
//!     [--flood-rounds 5] [--size-mib 256] [--out FILE]
//! ```
//!
//! The proxy runs in a child process (this binary with `--serve`), so its memory and
//! descriptors are its own; this process holds the clients. Kernel memory is system-wide
//! (/proc/meminfo Slab, /proc/net/sockstat): both ends of every connection live on this
//! host, so about half of the socket part is the proxy's, and anything else the machine
//! does at the same time shows up too.

mod child;
mod flood;
mod sys;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinSet;

use sys::{Kernel, Proc, dmib, fd_limit, mib};

/// The proxy process and its command line.
struct Ctl {
    child: Child,
    stdin: ChildStdin,
    lines: tokio::io::Lines<BufReader<ChildStdout>>,
    addr: SocketAddr,
    /// The proxy process's descriptor limit.
    limit: u64,
}

/// A reading of the proxy process.
#[derive(Debug, Clone, Copy, Default)]
struct Stat {
    proc: Proc,
    tasks: usize,
    pending: usize,
    handshakes: usize,
}

impl Ctl {
    async fn start(fds: u64) -> io::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--serve", &fds.to_string()])
            .env(
                "XFT_PROXY_RELAY_THREADS",
                std::env::var("XFT_PROXY_RELAY_THREADS").unwrap_or_else(|_| "1".into()),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| io::Error::other("stdin"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next_line().await?.unwrap_or_default();
        let addr = first
            .split_whitespace()
            .nth(1)
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| io::Error::other(format!("proxy said {first:?}")))?;
        let limit = first
            .split_whitespace()
            .nth(3)
            .and_then(|a| a.parse().ok())
            .unwrap_or(1024);
        eprintln!("proxy: {first}");
        Ok(Self {
            child,
            stdin,
            lines,
            addr,
            limit,
        })
    }

    /// Sends every command, then reads as many answers.
    async fn commands(&mut self, cmds: &[String]) -> io::Result<Vec<String>> {
        let mut all = String::new();
        for c in cmds {
            all.push_str(c);
            all.push('\n');
        }
        self.stdin.write_all(all.as_bytes()).await?;
        self.stdin.flush().await?;
        let mut out = Vec::with_capacity(cmds.len());
        for _ in cmds {
            out.push(self.lines.next_line().await?.unwrap_or_default());
        }
        Ok(out)
    }

    async fn stat(&mut self) -> io::Result<Stat> {
        let a = self.commands(&["stat".to_owned()]).await?.remove(0);
        let w: Vec<&str> = a.split_whitespace().skip(1).collect();
        let n = |i: usize| w.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(Stat {
            proc: Proc::from_words(&w).unwrap_or_default(),
            tasks: n(3),
            pending: n(4),
            handshakes: n(5),
        })
    }

    async fn quit(mut self) {
        let _ = self.stdin.write_all(b"quit\n").await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        let _ = self.child.start_kill();
    }
}

/// The `i`-th client address: 127.1.0.1 onwards, 250 per /24, never .0 or .255.
fn src(base: u8, i: usize) -> IpAddr {
    let hi = u8::try_from(i / 250 % 256).unwrap_or(0);
    let lo = u8::try_from(i % 250 + 1).unwrap_or(1);
    IpAddr::V4(Ipv4Addr::new(127, base, hi, lo))
}

fn hash(sid: &str) -> String {
    xep0065_s5b::dst_addr(
        &xep0065_s5b::Sid::new(sid).expect("sid"),
        &"alice@example.org/a".parse().expect("jid"),
        &"bob@example.org/b".parse().expect("jid"),
    )
}

async fn connect_from(from: IpAddr, to: SocketAddr) -> io::Result<TcpStream> {
    let s = tokio::net::TcpSocket::new_v4()?;
    s.bind(SocketAddr::new(from, 0))?;
    let s = s.connect(to).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Greeting and CONNECT in one write; the proxy's two answers read back.
async fn socks(from: IpAddr, to: SocketAddr, dst: &str) -> io::Result<TcpStream> {
    let mut s = connect_from(from, to).await?;
    let mut req = vec![5, 1, 0, 5, 1, 0, 3, 40];
    req.extend_from_slice(dst.as_bytes());
    req.extend_from_slice(&[0, 0]);
    s.write_all(&req).await?;
    let mut reply = [0u8; 2 + 4 + 1 + 40 + 2];
    s.read_exact(&mut reply).await?;
    if reply[..2] != [5, 0] || reply[3] != 0 {
        return Err(io::Error::other(format!(
            "SOCKS5 refused: {:?}",
            &reply[..4]
        )));
    }
    Ok(s)
}

/// `n` relays, activated, each of which moved 16 KiB both ways.
async fn open_relays(
    ctl: &mut Ctl,
    n: usize,
    prefix: &str,
) -> io::Result<Vec<(TcpStream, TcpStream)>> {
    let addr = ctl.addr;
    let mut relays = Vec::with_capacity(n);
    let mut start = 0;
    while start < n {
        // A pair in its handshake holds a third and fourth descriptor (the proxy watches
        // it for a close), and a relay that just moved data two pipes (four descriptors)
        // for a second: near the proxy's limit, wait for earlier batches to give those
        // back, and make the batch fit what is free.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut free = 0;
        while Instant::now() < deadline {
            free = ctl
                .limit
                .saturating_sub(ctl.stat().await?.proc.fds as u64 + 64);
            if free >= 2000 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let batch = usize::try_from(free / 8).unwrap_or(1).clamp(1, 250);
        let end = (start + batch).min(n);
        let mut set = JoinSet::new();
        for i in start..end {
            let sid = format!("{prefix}-{i}");
            set.spawn(async move {
                let h = hash(&sid);
                let t = socks(src(1, i), addr, &h).await?;
                let r = socks(src(1, i), addr, &h).await?;
                io::Result::Ok((i, t, r))
            });
        }
        let mut pairs = Vec::new();
        while let Some(p) = set.join_next().await {
            pairs.push(p.map_err(io::Error::other)??);
        }
        pairs.sort_by_key(|p| p.0);
        let cmds: Vec<String> = (start..end).map(|i| format!("act {prefix}-{i}")).collect();
        for (i, a) in ctl.commands(&cmds).await?.iter().enumerate() {
            if a != "ok" {
                return Err(io::Error::other(format!("activation {}: {a}", start + i)));
            }
        }
        let mut set = JoinSet::new();
        for (_, mut t, mut r) in pairs {
            set.spawn(async move {
                let chunk = vec![0x5a; 16 * 1024];
                let mut got = vec![0; chunk.len()];
                r.write_all(&chunk).await?;
                t.read_exact(&mut got).await?;
                t.write_all(&chunk).await?;
                r.read_exact(&mut got).await?;
                io::Result::Ok((t, r))
            });
        }
        while let Some(p) = set.join_next().await {
            relays.push(p.map_err(io::Error::other)??);
        }
        start = end;
    }
    Ok(relays)
}

/// Moves `size` bytes from `w` to `r`; MB/s (10^6 bytes).
async fn pump(mut w: TcpStream, mut r: TcpStream, size: u64) -> io::Result<f64> {
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        let chunk = vec![0xa5u8; 1 << 20];
        let mut left = size;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            w.write_all(&chunk[..n]).await?;
            left -= n as u64;
        }
        w.shutdown().await?;
        io::Result::Ok(w)
    });
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0u64;
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    writer.await.map_err(io::Error::other)??;
    if got != size {
        return Err(io::Error::other(format!("{got} of {size} bytes arrived")));
    }
    Ok(size as f64 / start.elapsed().as_secs_f64() / 1e6)
}

async fn raw_tcp(size: u64) -> io::Result<f64> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let a = connect_from(IpAddr::V4(Ipv4Addr::LOCALHOST), l.local_addr()?).await?;
    let (b, _) = l.accept().await?;
    pump(a, b, size).await
}

/// One relay opened and activated from 127.0.0.1; the time that took.
async fn busy_relay(ctl: &mut Ctl, sid: &str) -> io::Result<(TcpStream, TcpStream, Duration)> {
    let start = Instant::now();
    let h = hash(sid);
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let t = socks(lo, ctl.addr, &h).await?;
    let r = socks(lo, ctl.addr, &h).await?;
    let a = ctl.commands(&[format!("act {sid}")]).await?.remove(0);
    if a != "ok" {
        return Err(io::Error::other(format!("activation: {a}")));
    }
    Ok((t, r, start.elapsed()))
}

#[derive(Debug, Clone)]
struct Args {
    relays: usize,
    flood: usize,
    /// Rounds of (alone, flooded, alone) for the flood's ratio.
    flood_rounds: usize,
    size: u64,
    out: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        relays: 10_000,
        flood: 50_000,
        flood_rounds: 5,
        size: 256 << 20,
        out: None,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut it = v.iter();
    while let Some(k) = it.next() {
        let val = it.next().cloned().unwrap_or_default();
        match k.as_str() {
            "--relays" => a.relays = val.parse().expect("--relays N"),
            "--flood" => a.flood = val.parse().expect("--flood N"),
            "--flood-rounds" => a.flood_rounds = val.parse().expect("--flood-rounds N"),
            "--size-mib" => a.size = val.parse::<u64>().expect("--size-mib N") << 20,
            "--out" => a.out = Some(val),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn main() -> io::Result<()> {
    let v: Vec<String> = std::env::args().collect();
    if v.get(1).map(String::as_str) == Some("--flood-gen") {
        let n = v.get(2).and_then(|n| n.parse().ok()).unwrap_or(0);
        let addr = v
            .get(3)
            .and_then(|a| a.parse().ok())
            .expect("--flood-gen N ADDR");
        fd_limit(n as u64 + 1024);
        flood::generate(n, addr);
        return Ok(());
    }
    if v.get(1).map(String::as_str) == Some("--serve") {
        child::serve(v.get(2).and_then(|n| n.parse().ok()).unwrap_or(65536));
        return Ok(());
    }
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let report = rt.block_on(run(a.clone()))?;
    println!("{report}");
    if let Some(out) = a.out {
        std::fs::write(out, &report)?;
    }
    Ok(())
}

mod run;
use run::run;
