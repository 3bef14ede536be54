//! What the kernel and a process hold: /proc readings (Linux).

use std::collections::HashMap;

/// One process's resident memory and descriptors.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Proc {
    pub(crate) rss: u64,
    pub(crate) fds: usize,
    pub(crate) pipes: usize,
}

impl Proc {
    pub(crate) fn of_self() -> Self {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        let pages: u64 = statm
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let mut fds = 0;
        let mut pipes = 0;
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            for e in dir.flatten() {
                fds += 1;
                if std::fs::read_link(e.path())
                    .is_ok_and(|l| l.to_string_lossy().starts_with("pipe:"))
                {
                    pipes += 1;
                }
            }
        }
        Self {
            rss: pages * 4096,
            fds,
            pipes,
        }
    }

    pub(crate) fn to_line(self) -> String {
        format!("{} {} {}", self.rss, self.fds, self.pipes)
    }

    pub(crate) fn from_words(w: &[&str]) -> Option<Self> {
        Some(Self {
            rss: w.first()?.parse().ok()?,
            fds: w.get(1)?.parse().ok()?,
            pipes: w.get(2)?.parse().ok()?,
        })
    }
}

/// System-wide kernel memory, bytes: slab (socket, file, pipe structures), its
/// unreclaimable part, TCP socket buffers, and free memory.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Kernel {
    pub(crate) slab: u64,
    pub(crate) sunreclaim: u64,
    pub(crate) tcp_buffers: u64,
    pub(crate) tcp_sockets: u64,
    pub(crate) mem_free: u64,
}

impl Kernel {
    pub(crate) fn now() -> Self {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kb: HashMap<&str, u64> = meminfo
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                Some((k, v.split_whitespace().next()?.parse().ok()?))
            })
            .collect();
        let sockstat = std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
        let tcp = sockstat
            .lines()
            .find(|l| l.starts_with("TCP:"))
            .unwrap_or_default();
        let field = |name: &str| {
            let mut it = tcp.split_whitespace();
            while let Some(w) = it.next() {
                if w == name {
                    return it.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                }
            }
            0
        };
        Self {
            slab: kb.get("Slab").copied().unwrap_or(0) * 1024,
            sunreclaim: kb.get("SUnreclaim").copied().unwrap_or(0) * 1024,
            tcp_buffers: field("mem") * 4096,
            tcp_sockets: field("alloc"),
            mem_free: kb.get("MemFree").copied().unwrap_or(0) * 1024,
        }
    }
}

/// MiB with one decimal.
pub(crate) fn mib(b: u64) -> String {
    format!("{:.1}", b as f64 / (1024.0 * 1024.0))
}

/// A signed difference in MiB.
pub(crate) fn dmib(after: u64, before: u64) -> String {
    let d = after as f64 - before as f64;
    format!("{:+.1}", d / (1024.0 * 1024.0))
}

/// The soft and hard descriptor limits set to at least `want` (above the hard limit only
/// with the privilege to raise it); returns the limit in force.
pub(crate) fn fd_limit(want: u64) -> u64 {
    let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap_or((1024, 1024));
    if soft >= want {
        return soft;
    }
    if hard < want && rlimit::Resource::NOFILE.set(want, want).is_ok() {
        return want;
    }
    rlimit::increase_nofile_limit(want).unwrap_or(soft)
}
