//! The slowloris flood during a legitimate transfer (E7, E8), with the CPU split.
//!
//! The flood comes from a process of its own (`proxy-memory --flood-gen N ADDR`), so that
//! its CPU time is measured apart from the proxy's (its own child) and from the legitimate
//! client's (this process): on a machine with few cores the three compete, and the report
//! says how much each took while the legitimate transfer ran. Strangers' activations (an
//! account of another domain, and one of the proxy's domain naming sessions nobody opened)
//! go to the proxy during the transfer too.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::task::JoinSet;

use super::*;

/// CPU time (user + system) of process `pid` so far, in seconds.
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|w| w.parse().unwrap_or(0))
        .collect();
    // utime and stime: fields 14 and 15 of the line, 11 and 12 after the state (index 0).
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    ticks as f64 / 100.0 // USER_HZ is 100 on Linux
}

/// The flood generator's side: `n` connections from 127.2.0.0/16 (8 per address), each
/// sending one byte of its greeting and holding on; prints `fifth` once a fifth are in,
/// then `done HELD REFUSED DISPLACED` when all were tried, then waits for a line on stdin
/// and prints `open OPEN` (those the proxy has not closed), and exits.
pub(crate) fn generate(n: usize, addr: SocketAddr) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let mut held = Vec::with_capacity(n);
        let mut set = JoinSet::new();
        let mut refused = 0usize;
        let mut displaced = 0usize;
        for i in 0..n {
            // Connections the proxy closed are dropped here too, so this process holds
            // about what the proxy holds, not every connection ever made.
            if i % 512 == 511 {
                let before = held.len();
                held.retain(|s| !run::closed(s));
                displaced += before - held.len();
            }
            if set.len() >= 256 {
                match set.join_next().await {
                    Some(Ok(Ok(s))) => held.push(s),
                    _ => refused += 1,
                }
            }
            if i == n / 5 {
                println!("fifth");
            }
            set.spawn(async move {
                let mut s = connect_from(src(2, i / 8), addr).await?;
                s.write_all(&[5]).await?;
                io::Result::Ok(s)
            });
        }
        while let Some(r) = set.join_next().await {
            match r {
                Ok(Ok(s)) => held.push(s),
                _ => refused += 1,
            }
        }
        println!("done {} {refused} {displaced}", held.len());
        // Holds every connection until the parent has read its figures.
        let _ = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        })
        .await;
        let open = held.iter().filter(|s| !run::closed(s)).count();
        println!("open {open}");
    });
}

/// Activations from strangers while the transfer runs: every 2 ms, one from an account of
/// another domain and one from the proxy's domain for a session nobody opened. Returns
/// how many were sent and how many the proxy refused.
async fn strangers(ctl: &mut Ctl, stop: tokio::sync::watch::Receiver<bool>) -> (usize, usize) {
    let (mut sent, mut refused) = (0, 0);
    let mut i = 0u64;
    while !*stop.borrow() {
        let cmds = [
            format!("act-as mallory@evil.example/x stranger-{i}"),
            format!("act-as eve@example.org/e nobody-{i}"),
        ];
        i += 1;
        let Ok(answers) = ctl.commands(&cmds).await else {
            break;
        };
        sent += answers.len();
        refused += answers.iter().filter(|a| a.starts_with("err")).count();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    (sent, refused)
}

/// The flood: `n` connections from the generator process while a legitimate relay is
/// opened and moves `size` bytes; `quiet_rate` is the same relay's rate without the flood
/// just before (MB/s), `quiet_cpu` the proxy's CPU seconds for it. Writes its figures to
/// `md` when `detail`; returns the legitimate transfer's rate (MB/s).
pub(crate) async fn flood(
    ctl: &mut Ctl,
    md: &mut String,
    detail: bool,
    n: usize,
    size: u64,
    quiet_rate: f64,
    quiet_cpu: f64,
) -> io::Result<f64> {
    let proxy_pid = ctl.child.id().unwrap_or(0);
    let me = std::process::id();
    let mut gen_child = Command::new(std::env::current_exe()?)
        .args(["--flood-gen", &n.to_string(), &ctl.addr.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let gen_pid = gen_child.id().unwrap_or(0);
    let mut gen_in = gen_child
        .stdin
        .take()
        .ok_or_else(|| io::Error::other("stdin"))?;
    let mut gen_out = BufReader::new(
        gen_child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("stdout"))?,
    )
    .lines();
    let cpu = |pid| cpu_seconds(pid);
    let (p0, g0) = (cpu(proxy_pid), cpu(gen_pid));
    let flood_start = Instant::now();
    // A fifth of the flood is in: the legitimate pair comes, and the strangers.
    let first = gen_out.next_line().await?.unwrap_or_default();
    if first != "fifth" {
        return Err(io::Error::other(format!("flood generator said {first:?}")));
    }
    let (p1, g1, m1) = (cpu(proxy_pid), cpu(gen_pid), cpu(me));
    let start = Instant::now();
    let (t, r, setup) = busy_relay(ctl, "legit").await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (rate, (sent, refused)) = {
        let transfer = async {
            let rate = pump(r, t, size).await;
            let _ = stop_tx.send(true);
            rate
        };
        let (rate, s) = tokio::join!(transfer, strangers(ctl, stop_rx));
        (rate?, s)
    };
    let legit = start.elapsed();
    let (p2, g2, m2) = (cpu(proxy_pid), cpu(gen_pid), cpu(me));
    let done = gen_out.next_line().await?.unwrap_or_default();
    let flood_secs = flood_start.elapsed().as_secs_f64();
    let (p3, g3) = (cpu(proxy_pid), cpu(gen_pid));
    let w: Vec<usize> = done
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let (held, refused_conn, displaced) = (
        w.first().copied().unwrap_or(0),
        w.get(1).copied().unwrap_or(0),
        w.get(2).copied().unwrap_or(0),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    gen_in.write_all(b"go\n").await?;
    let open_line = gen_out.next_line().await?.unwrap_or_default();
    let open: usize = open_line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let s = ctl.stat().await?;
    let sockstat = tcp_sockstat();
    let _ = gen_child.wait().await;
    if !detail {
        return Ok(rate);
    }
    let wall = legit.as_secs_f64();
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let _ = writeln!(
        md,
        "### Slowloris flood during a transfer\n\n{n} connections from 127.2.0.0/16 (8 per \
         address, under the per-IP cap of 32) made by a process of their own, each sending \
         one byte of its greeting and then nothing; the legitimate pair (127.0.0.1, from \
         this process) started once a fifth were in; while it moved its bytes, strangers \
         activated: an account of another domain and one of the proxy's domain naming \
         sessions nobody opened, two every 2 ms.\n\n\
         | | |\n|---|---|\n| legitimate pair: both SOCKS5 handshakes + activation | {:.1} ms |\n\
         | legitimate transfer ({} MiB) | {rate:.0} MB/s, **{:.2}×** the same relay without \
         the flood, just before ({quiet_rate:.0} MB/s); {wall:.2} s in all |\n\
         | strangers' activations during it | {sent} sent, {refused} refused |\n\
         | flood connections not (yet) closed at the end (in the handshake table or the \
         listen backlog) | {open} (the proxy's table: {} handshakes) |\n\
         | handshakes held off (closed by the proxy: displaced oldest first) | {} |\n\
         | flood connections that failed to connect | {refused_conn} |\n\
         | proxy RSS / descriptors at the end | {} MiB / {} |\n\
         | TCP sockets on the host at the end (both ends), /proc/net/sockstat | {sockstat} |\n",
        setup.as_secs_f64() * 1e3,
        size >> 20,
        rate / quiet_rate,
        s.handshakes,
        displaced + held.saturating_sub(open),
        mib(s.proc.rss),
        s.proc.fds
    );
    let pct = |c: f64| c / wall * 100.0;
    let _ = writeln!(
        md,
        "CPU while the legitimate transfer ran ({wall:.2} s of wall time, {cores} cores: \
         {:.0} % of CPU available), user + system from /proc/PID/stat (10 ms ticks):\n\n\
         | process | CPU seconds | share of one core |\n|---|---|---|\n\
         | the proxy | {:.2} | {:.0} % |\n| the flood generator | {:.2} | {:.0} % |\n\
         | the legitimate client (+ the strangers' commands) | {:.2} | {:.0} % |\n\n\
         Without the flood the proxy took {quiet_cpu:.2} CPU seconds for the same transfer. \
         Over the whole flood ({flood_secs:.1} s): the proxy {:.2} CPU s (**{:.0} µs per \
         flood connection**, the legitimate relay's share included), the generator {:.2} \
         CPU s ({:.0} µs per connection). Before the legitimate pair came (a fifth of the \
         flood): the proxy {:.2} s, the generator {:.2} s.\n",
        cores as f64 * 100.0,
        p2 - p1,
        pct(p2 - p1),
        g2 - g1,
        pct(g2 - g1),
        m2 - m1,
        pct(m2 - m1),
        p3 - p0,
        (p3 - p0) / n as f64 * 1e6,
        g3 - g0,
        (g3 - g0) / n as f64 * 1e6,
        p1 - p0,
        g1 - g0,
    );
    Ok(rate)
}

/// The TCP line of /proc/net/sockstat: sockets in use, orphans (closed by their process,
/// still closing: FIN_WAIT and the like), TIME_WAIT, and pages of buffers.
fn tcp_sockstat() -> String {
    std::fs::read_to_string("/proc/net/sockstat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("TCP: "))
                .map(str::to_owned)
        })
        .unwrap_or_default()
}
