//! What the suite knows about the machine and about its own process: cores, memory, kernel,
//! CPU model, load average, CPU seconds and peak RSS, all read from `/proc` (no unsafe, no
//! `getrusage` binding needed).

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The machine a report was measured on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs available to this process.
    pub cores: usize,
    /// Total memory in bytes (`MemTotal` of `/proc/meminfo`), if readable.
    pub memory_bytes: Option<u64>,
    /// Kernel release (`/proc/sys/kernel/osrelease`).
    pub kernel: String,
    /// CPU model name (first `model name` of `/proc/cpuinfo`).
    pub cpu_model: String,
    /// Operating system and architecture this binary was built for.
    pub os: String,
}

impl Machine {
    /// Reads what `/proc` says about this machine; fields it cannot read are `"unknown"`.
    pub fn detect() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let memory_bytes = read("/proc/meminfo").and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kib| kib * 1024)
        });
        let kernel = read("/proc/sys/kernel/osrelease")
            .map_or_else(|| "unknown".to_owned(), |s| s.trim().to_owned());
        let cpu_model = read("/proc/cpuinfo")
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        Self {
            cores,
            memory_bytes,
            kernel,
            cpu_model,
            os: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`): other work on the machine
/// perturbs every figure, so each report records it before and after.
pub fn load_average() -> Option<[f64; 3]> {
    let s = read("/proc/loadavg")?;
    let mut it = s.split_whitespace().map(str::parse::<f64>);
    Some([it.next()?.ok()?, it.next()?.ok()?, it.next()?.ok()?])
}

/// User plus system CPU seconds this process has used so far (all threads), from
/// `/proc/self/stat`. Resolution is one clock tick (10 ms): fine for cases that run for a
/// second or more, coarse for `--quick`.
pub fn cpu_seconds() -> Option<f64> {
    stat_cpu_seconds("/proc/self/stat")
}

/// [`cpu_seconds`] of another process (a server the suite started), by its pid.
pub fn cpu_seconds_of(pid: u32) -> Option<f64> {
    stat_cpu_seconds(&format!("/proc/{pid}/stat"))
}

fn stat_cpu_seconds(path: &str) -> Option<f64> {
    let s = read(path)?;
    // The command name (field 2) may contain spaces; fields after its closing ')' are fixed.
    let rest = &s[s.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is index 0, utime is field 14 overall, i.e. index 11 here.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux architecture for /proc reporting.
    Some((utime + stime) / 100.0)
}

/// Current resident set size of this process in bytes (`VmRSS`).
pub fn rss_bytes() -> Option<u64> {
    status_kib("VmRSS:").map(|k| k * 1024)
}

/// Peak resident set size in bytes since start or since the last [`reset_peak_rss`]
/// (`VmHWM`).
pub fn peak_rss_bytes() -> Option<u64> {
    status_kib("VmHWM:").map(|k| k * 1024)
}

/// Resets the peak RSS mark to the current RSS (writes `5` to `/proc/self/clear_refs`,
/// Linux 4.0 and later), so that each case reports its own peak. Returns whether the kernel
/// accepted it; when it did not, peaks are process-wide maxima and the report says so.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn status_kib(key: &str) -> Option<u64> {
    read("/proc/self/status")?
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The current UTC time as RFC 3339 (`2026-11-22T04:10:00Z`), without a date crate.
pub fn utc_now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_formatted_as_utc_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_320_000), "2026-11-22T04:00:00Z");
    }

    #[test]
    fn process_figures_are_readable_on_linux() {
        assert!(cpu_seconds().is_some());
        assert!(cpu_seconds_of(std::process::id()).is_some());
        assert!(rss_bytes().unwrap() > 0);
        assert!(peak_rss_bytes().unwrap() >= rss_bytes().unwrap() / 2);
        assert!(Machine::detect().cores >= 1);
    }
}
