//! The measurement: idle relays, busy relay beside them, then the flood.

use std::fmt::Write as _;
use std::io;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::*;

/// Relays release their pipes after 1 s without data; wait a little longer.
const QUIET: Duration = Duration::from_millis(2500);

pub(super) async fn run(mut a: Args) -> io::Result<String> {
    let client_fds = fd_limit(2 * a.relays as u64 + 4096);
    let mut ctl = Ctl::start(2 * a.relays as u64 + 8192).await?;
    let mut md = String::new();
    // Two descriptors per relay on each side, plus a few of each process's own.
    let most = usize::try_from((client_fds.min(ctl.limit)).saturating_sub(128) / 2).unwrap_or(0);
    if a.relays > most {
        let _ = writeln!(
            md,
            "The descriptor limit ({} here, a hard limit this process may not raise) holds \
             at most {most} relays per process (two sockets each): measuring {most} instead \
             of {}, and giving the per-relay figure times 10,000.\n",
            client_fds.min(ctl.limit),
            a.relays
        );
        a.relays = most;
    }
    let now = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let _ = writeln!(md, "Run {now}; client descriptor limit {client_fds}.\n");

    // Warm up: one relay through, so the baseline has the runtime at its working size.
    let (t, r, _) = busy_relay(&mut ctl, "warm").await?;
    pump(r, t, 8 << 20).await?;
    tokio::time::sleep(QUIET).await;
    let s0 = ctl.stat().await?;
    let k0 = Kernel::now();

    eprintln!("opening {} relays", a.relays);
    let start = Instant::now();
    let relays = open_relays(&mut ctl, a.relays, "idle").await?;
    let opened = start.elapsed();
    let s_busy = ctl.stat().await?;
    tokio::time::sleep(QUIET).await;
    let s1 = ctl.stat().await?;
    let k1 = Kernel::now();
    let n = a.relays as u64;
    let rss = s1.proc.rss.saturating_sub(s0.proc.rss);
    let slab = k1.slab.saturating_sub(k0.slab);
    let tcpbuf = k1.tcp_buffers.saturating_sub(k0.tcp_buffers);
    let proxy_share = rss + slab / 2 + tcpbuf / 2;
    let _ = writeln!(
        md,
        "### {} idle relays\n\nOpened, activated and moved 16 KiB each way in {:.1} s, then \
         quiet for {} s.\n",
        a.relays,
        opened.as_secs_f64(),
        QUIET.as_secs_f64()
    );
    let _ = writeln!(md, "| | before | after | delta | per relay |");
    let _ = writeln!(md, "|---|---|---|---|---|");
    let row = |md: &mut String, what: &str, b: u64, af: u64| {
        let _ = writeln!(
            md,
            "| {what} | {} MiB | {} MiB | {} MiB | {:.0} B |",
            mib(b),
            mib(af),
            dmib(af, b),
            (af as f64 - b as f64) / n as f64
        );
    };
    row(&mut md, "proxy RSS", s0.proc.rss, s1.proc.rss);
    row(&mut md, "kernel Slab (both ends)", k0.slab, k1.slab);
    row(
        &mut md,
        "kernel SUnreclaim (both ends)",
        k0.sunreclaim,
        k1.sunreclaim,
    );
    row(
        &mut md,
        "TCP socket buffers (sockstat mem)",
        k0.tcp_buffers,
        k1.tcp_buffers,
    );
    row(
        &mut md,
        "MemFree (whole machine, noisy)",
        k1.mem_free,
        k0.mem_free,
    );
    let _ = writeln!(
        md,
        "\nProxy descriptors {} → {} ({:.2} per relay); pipes {} right after the traffic, \
         {} once quiet; TCP sockets on the host {} → {}; proxy tasks {}, waiting connections {}.\n",
        s0.proc.fds,
        s1.proc.fds,
        (s1.proc.fds as f64 - s0.proc.fds as f64) / n as f64,
        s_busy.proc.pipes,
        s1.proc.pipes,
        k0.tcp_sockets,
        k1.tcp_sockets,
        s1.tasks,
        s1.pending
    );
    let _ = writeln!(
        md,
        "**Memory per idle relay, the proxy's share: {:.1} KiB** (its RSS delta + half the \
         slab and socket-buffer deltas, the other half being the clients' ends on this host); \
         {} relays: **{} MiB**; times 10,000: **{:.0} MiB** (target: 10,000 in under \
         256 MiB).\n",
        proxy_share as f64 / n as f64 / 1024.0,
        a.relays,
        mib(proxy_share),
        proxy_share as f64 / n as f64 * 10_000.0 / (1024.0 * 1024.0)
    );

    // One busy relay, with the idle ones present, beside raw TCP: three rounds each,
    // alternating, medians.
    let size = a.size;
    let (relay1, raw1) = busy_vs_raw(&mut ctl, "busy-1", size).await?;
    let s_peak = ctl.stat().await?;
    drop(relays);
    tokio::time::sleep(QUIET).await;
    let (relay0, raw0) = busy_vs_raw(&mut ctl, "busy-0", size).await?;
    let _ = writeln!(
        md,
        "### One busy relay ({} MiB, median of 3, alternating with raw TCP)\n\n| | relay MB/s | raw TCP MB/s (same moment) | ratio |\n\
         |---|---|---|---|\n| with {} idle relays | {relay1:.0} | {raw1:.0} | {:.2} |\n\
         | without | {relay0:.0} | {raw0:.0} | {:.2} |\n\nProxy RSS right after the busy \
         relay: {} MiB. Other work shares this machine (six builds ran alongside): the ratios \
         to raw TCP measured at the same moment are the figures to read.\n",
        size >> 20,
        a.relays,
        relay1 / raw1,
        relay0 / raw0,
        mib(s_peak.proc.rss)
    );

    if a.flood > 0 {
        // Rounds of (the relay without the flood, the relay during a flood, the relay
        // without it again): on a shared machine the rate of one transfer varies by 2x
        // from one moment to the next, so each flooded transfer is set against the quiet
        // ones around it, and the median round is the figure.
        let pid = ctl.child.id().unwrap_or(0);
        let size = size.min(256 << 20);
        let mut rounds = Vec::new();
        for round in 0..a.flood_rounds.max(1) {
            let c0 = flood::cpu_seconds(pid);
            let (t, r, _) = busy_relay(&mut ctl, &format!("quiet-{round}")).await?;
            let before = pump(r, t, size).await?;
            let quiet_cpu = flood::cpu_seconds(pid) - c0;
            let last = round + 1 == a.flood_rounds.max(1);
            let flooded =
                flood::flood(&mut ctl, &mut md, last, a.flood, size, before, quiet_cpu).await?;
            tokio::time::sleep(QUIET).await;
            let (t, r, _) = busy_relay(&mut ctl, &format!("after-{round}")).await?;
            let after = pump(r, t, size).await?;
            let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
            let load = load
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ");
            rounds.push((
                before,
                flooded,
                after,
                flooded * 2.0 / (before + after),
                load,
            ));
        }
        let _ = writeln!(
            md,
            "### The legitimate relay with and without the flood, round by round\n\n\
             Each round: the relay alone ({} MiB), the relay during a flood of {} \
             connections (as above), the relay alone again; the ratio is the flooded rate \
             to the mean of the two around it. Target: at least 0.5 (within twice the \
             unloaded time).\n\n| round | alone before MB/s | during the flood MB/s | \
             alone after MB/s | ratio | /proc/loadavg after |\n|---|---|---|---|---|---|",
            size >> 20,
            a.flood
        );
        for (i, (b, f, af, ratio, load)) in rounds.iter().enumerate() {
            let _ = writeln!(
                md,
                "| {} | {b:.0} | {f:.0} | {af:.0} | {ratio:.2} | {load} |",
                i + 1
            );
        }
        let mut ratios: Vec<f64> = rounds.iter().map(|r| r.3).collect();
        ratios.sort_by(f64::total_cmp);
        let _ = writeln!(
            md,
            "\n**Median ratio over {} rounds: {:.2}×** (lowest {:.2}, highest {:.2}).\n",
            ratios.len(),
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1]
        );
    }
    ctl.quit().await;
    Ok(md)
}

/// Three rounds of (relay, raw TCP) moving `size` bytes; the medians, MB/s.
async fn busy_vs_raw(ctl: &mut Ctl, sid: &str, size: u64) -> io::Result<(f64, f64)> {
    let mut relay = Vec::new();
    let mut raw = Vec::new();
    for i in 0..3 {
        let (t, r, _) = busy_relay(ctl, &format!("{sid}-{i}")).await?;
        relay.push(pump(r, t, size).await?);
        raw.push(raw_tcp(size).await?);
    }
    relay.sort_by(f64::total_cmp);
    raw.sort_by(f64::total_cmp);
    Ok((relay[1], raw[1]))
}

/// Whether the proxy has closed `s`, without waiting.
pub(crate) fn closed(s: &TcpStream) -> bool {
    // Closed (a FIN: reads 0) or reset (the proxy resets a displaced handshake: the peek
    // fails with ECONNRESET); only "would block" means it is still open.
    let mut b = [std::mem::MaybeUninit::<u8>::uninit(); 1];
    match socket2::SockRef::from(s).peek(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}
