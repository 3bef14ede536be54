//! The goals, judged on a finished [`Report`]: ratios between cases of the same run,
//! xft's CPU per MB beside Prosody's, memory that does not grow with the file.

use crate::report::{Goal, Outcome, Report, Verdict};
use crate::suite::{MIB, Options, ibb_tcp_id, raw_tcp_id, size_label};

/// A ratio goal: `id`'s median over `of`'s median must reach `min`.
pub(crate) fn ratio_goal(report: &Report, name: &str, id: &str, of: &str, min: f64) -> Goal {
    match (report.median(id), report.median(of)) {
        (Some(a), Some(b)) if b > 0.0 => {
            let ratio = a / b;
            Goal {
                name: name.to_owned(),
                verdict: if ratio >= min {
                    Verdict::Met
                } else {
                    Verdict::Missed
                },
                detail: format!("{a:.1} / {b:.1} MB/s = {ratio:.2}× (goal {min}×)"),
            }
        }
        _ => Goal {
            name: name.to_owned(),
            verdict: Verdict::NotMeasured,
            detail: format!("needs {id} and {of}"),
        },
    }
}

/// Ejabberd 23.01's proxy65 relay on this kind of machine (PEERS.md): the fastest server
/// proxy measured, the bar our proxy has to clear.
pub const EJABBERD_PROXY_MBPS: f64 = 490.0;

/// Judges the goals on the largest size that ran.
pub fn goals(report: &Report, opts: &Options) -> Vec<Goal> {
    let big = opts.sizes.iter().copied().max().unwrap_or(32 * MIB);
    let sl = size_label(big);
    let isl = size_label(opts.ibb_size);
    let tcp = raw_tcp_id(big);
    let mut g = vec![
        ratio_goal(
            report,
            "direct S5B ≥ 0.85× raw TCP",
            &format!("s5b/direct/{sl}"),
            &tcp,
            0.85,
        ),
        ratio_goal(
            report,
            "S5B through our proxy ≥ 0.55× raw TCP",
            &format!("s5b/xft-proxy/{sl}"),
            &tcp,
            0.55,
        ),
        ratio_goal(
            report,
            "S5B through our proxy ≥ 10× Prosody's proxy65",
            &format!("s5b/xft-proxy/{sl}"),
            &format!("s5b/proxy65/{sl}"),
            10.0,
        ),
    ];
    g.push(ratio_goal(
        report,
        "S5B through our proxy ≥ 0.95× the plain relay hop",
        &format!("s5b/xft-proxy/{sl}"),
        &format!("ceiling/relay-hop/{sl}"),
        0.95,
    ));
    let proxy = format!("s5b/xft-proxy/{sl}");
    g.push(match report.median(&proxy) {
        Some(m) => Goal {
            name: format!(
                "S5B through our proxy ≥ ejabberd's proxy65 (~{EJABBERD_PROXY_MBPS} MB/s)"
            ),
            verdict: if m >= EJABBERD_PROXY_MBPS {
                Verdict::Met
            } else {
                Verdict::Missed
            },
            detail: format!(
                "{m:.1} MB/s against {EJABBERD_PROXY_MBPS} MB/s measured elsewhere (PEERS.md)"
            ),
        },
        None => Goal {
            name: format!(
                "S5B through our proxy ≥ ejabberd's proxy65 (~{EJABBERD_PROXY_MBPS} MB/s)"
            ),
            verdict: Verdict::NotMeasured,
            detail: format!("needs {proxy}"),
        },
    });
    for block in [4096, 65535] {
        g.push(ratio_goal(
            report,
            &format!("IBB through Prosody ≥ 0.8× the raw-client ceiling (iq, {block})"),
            &format!("ibb/prosody/iq-default/{block}/{isl}"),
            &format!("server/prosody/iq-32/{block}/{isl}"),
            0.8,
        ));
    }
    g.push(ratio_goal(
        report,
        "IBB through Prosody ≥ 4× slixmpp over iq at 4096",
        &format!("ibb/prosody/iq-default/4096/{isl}"),
        &format!("ibb/prosody-slixmpp/iq/4096/{isl}"),
        4.0,
    ));
    g.push(ratio_goal(
        report,
        "IBB over raw XML ≥ 0.4× raw TCP at 65535",
        &format!("ibb/raw-xml/iq-default/65535/{isl}"),
        &ibb_tcp_id(opts.ibb_size),
        0.4,
    ));
    for (block, today) in [
        (4096, TODAY_CPU_PER_MB_4096),
        (65535, TODAY_CPU_PER_MB_65535),
    ] {
        g.push(cpu_goal(
            report,
            &format!("ibb/prosody/iq-default/{block}/{isl}"),
            block,
            today,
        ));
    }
    g.push(crate::blocksize::goal(report, opts.ibb_size));
    g.push(crate::offer::goal(report));
    g.extend(crate::stacks::goals(report, opts));
    g.push(memory_goal(report, opts));
    g
}

/// xft's CPU seconds per MB through Prosody (IBB over iq, sender and receiver together)
/// before the codec shipped in the client, at block size 4096 (issue 13).
pub const TODAY_CPU_PER_MB_4096: f64 = 0.077;
/// The same at block size 65535.
pub const TODAY_CPU_PER_MB_65535: f64 = 0.038;

/// xft's own CPU per MB in case `id` (both ends run in this process) at most a quarter of
/// `today`, with Prosody's CPU per MB from the same runs beside it.
fn cpu_goal(report: &Report, id: &str, block: u32, today: f64) -> Goal {
    let limit = today / 4.0;
    let name = format!(
        "xft CPU through Prosody ≤ ¼ of {today} s/MB (IBB iq, {block}; both ends, Prosody beside)"
    );
    let case = report
        .case(id)
        .filter(|c| c.outcome == Outcome::Ok && c.bytes > 0);
    let Some((case, cpu)) = case.and_then(|c| c.cpu_seconds.map(|s| (c, s))) else {
        return Goal {
            name,
            verdict: Verdict::NotMeasured,
            detail: format!("needs {id} with CPU seconds"),
        };
    };
    let mb = case.bytes as f64 / crate::report::MB;
    let ours = cpu / mb;
    let server = case.server_cpu_seconds.map_or_else(
        || "not measured".to_owned(),
        |s| format!("{:.4} s/MB", s / mb),
    );
    Goal {
        name,
        verdict: if ours <= limit {
            Verdict::Met
        } else {
            Verdict::Missed
        },
        detail: format!(
            "xft {ours:.4} s/MB (sender + receiver), Prosody {server}; goal ≤ {limit:.4} s/MB \
             (CPU ticks are 10 ms: coarse on short runs)"
        ),
    }
}

/// Memory is bounded when, for every transfer case that ran at both the smallest and the
/// largest size, the peak RSS at the largest is at most 1.25× the smallest plus 16 MiB.
fn memory_goal(report: &Report, opts: &Options) -> Goal {
    let name = "memory bounded (peak RSS independent of file size)".to_owned();
    let (Some(&small), Some(&big)) = (opts.sizes.iter().min(), opts.sizes.iter().max()) else {
        return Goal {
            name,
            verdict: Verdict::NotMeasured,
            detail: "no sizes".to_owned(),
        };
    };
    let (ss, bs) = (size_label(small), size_label(big));
    let mut checked = Vec::new();
    let mut worst_ok = true;
    for c in report
        .cases
        .iter()
        .filter(|c| c.group != "ceiling" && c.id.ends_with(&bs))
    {
        let small_id = format!("{}{ss}", &c.id[..c.id.len() - bs.len()]);
        let (Some(pb), Some(ps)) = (
            c.peak_rss_bytes,
            report.case(&small_id).and_then(|s| s.peak_rss_bytes),
        ) else {
            continue;
        };
        if small == big {
            continue;
        }
        let ok = pb as f64 <= ps as f64 * 1.25 + 16.0 * MIB as f64;
        worst_ok &= ok;
        checked.push(format!(
            "{}: {:.0} → {:.0} MiB",
            &c.id[..c.id.len() - bs.len() - 1],
            ps as f64 / MIB as f64,
            pb as f64 / MIB as f64
        ));
    }
    if checked.is_empty() {
        return Goal {
            name,
            verdict: Verdict::NotMeasured,
            detail: "needs transfer cases at two sizes".to_owned(),
        };
    }
    Goal {
        name,
        verdict: if worst_ok {
            Verdict::Met
        } else {
            Verdict::Missed
        },
        detail: format!("peak RSS {ss} → {bs}: {}", checked.join("; ")),
    }
}
