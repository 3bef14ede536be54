//! The dashboard page (`index.html`): the latest run's goals, each goal across every
//! recorded run, the latest run's cases in groups (each case beside its peer and its
//! ceiling, one linear axis per group), latency, and every case in a table. Self-contained:
//! inline CSS, SVG drawn here, and a few lines of inline script that count the charts the
//! browser laid out (`<body data-rendered="N charts">`, checked by `tests/dashboard.rs` in
//! a headless Chromium against `data-charts`).

use std::fmt::Write as _;

use super::svg::{self, Bar, Point, esc};
use super::{fmt_latency, fmt_mbps, fmt_opt, fmt_rss, header_lines, status};
use crate::history::{self, Run};
use crate::report::{Case, MB, Outcome, Report, Verdict};

const CSS: &str = "body{font:14px system-ui,sans-serif;margin:2em;max-width:1180px;color:#222}\
h1{font-size:1.5em}h2{margin-top:2em;border-bottom:1px solid #ddd}.note{color:#666}\
figure{margin:1.2em 0}figcaption{font-weight:600;margin-bottom:4px}\
.goals{display:flex;flex-wrap:wrap;gap:0 24px}.goalh figcaption{font-weight:500;font-size:12px;max-width:470px}\
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}\
.lbl{font-size:11px;text-anchor:end}.val{font-size:10px;fill:#444}.unit{font-size:11px;fill:#444}\
.tickl{font-size:10px;fill:#666;text-anchor:middle}.ytick{font-size:10px;fill:#666;text-anchor:end}.xtick{font-size:9px;fill:#666;text-anchor:middle}\
.ours{fill:#2f6fb3}.ceil{fill:#9aa5b1}.slix{fill:#d08a2c}.pros{fill:#8c4fb0}.other{fill:#5a9e6f}\
.wh{stroke:#111;stroke-width:1}.axis{stroke:#888}.grid{stroke:#eee}.goal{stroke:#c22;stroke-dasharray:4 3}.goalt{font-size:10px;fill:#c22}\
.trend{fill:none;stroke:#2f6fb3;stroke-width:1.5}.pmet{fill:#17803d}.pmissed{fill:#b91c1c}\
.p50{fill:#2f6fb3;color:#2f6fb3}.p90{fill:#5a9e6f;color:#5a9e6f}.p99{fill:#d08a2c;color:#d08a2c}.pmax{fill:#c22;color:#c22}\
.met{color:#17803d;font-weight:bold}.missed{color:#b91c1c;font-weight:bold}.nm{color:#777}\
.legend span{display:inline-block;padding:0 6px;margin-right:6px;color:#fff;border-radius:3px}";

/// Counts the charts the browser laid out (a non-empty box) and says so on `<body>`.
const SCRIPT: &str = "(function(){var n=0;document.querySelectorAll('svg.chart').forEach(function(s){var b=s.getBBox();if(b.width>0&&b.height>0){n++;}});document.body.setAttribute('data-rendered',n+' charts');})();";

fn class_of(c: &Case) -> &'static str {
    match c.implementation.as_str() {
        _ if c.group == "ceiling" => "ceil",
        "xft" => "ours",
        "tcp" => "ceil",
        "slixmpp" => "slix",
        "prosody" => "pros",
        _ => "other",
    }
}

fn size_of(c: &Case) -> &str {
    c.id.rsplit('/').next().unwrap_or("")
}

/// The group a case is drawn in, with the rank of its kind (sockets, in process, XML stream,
/// server, CPU); ceilings referenced by a group's cases join it too.
fn group_title(c: &Case) -> Option<(u8, String)> {
    let block = c.block_size.map_or_else(String::new, |b| b.to_string());
    let title = match (c.group.as_str(), c.path.as_str()) {
        ("s5b", _) | ("ceiling", "loopback relay") => (
            0,
            format!(
                "S5B, {}: direct and through our proxy, beside Prosody's proxy65 (and slixmpp through it), raw TCP and a plain relay hop (MB/s)",
                size_of(c)
            ),
        ),
        ("ibb", "hub") => (
            1,
            format!(
                "IBB in process (hub), block {block}: each method beside its base64 ceiling (MB/s)"
            ),
        ),
        ("ibb", "raw-xml") | ("ceiling", "raw-xml") => (
            2,
            format!(
                "IBB over a loopback XML stream (no server), block {block}: each method beside the stream pump and raw TCP (MB/s)"
            ),
        ),
        ("ibb", "prosody") | ("server", _) => (
            3,
            format!(
                "IBB through Prosody, block {block}: xft and slixmpp beside Prosody's own relay rate (a raw client) (MB/s)"
            ),
        ),
        ("stack", _) => (
            4,
            format!(
                "Jingle beside SI through the facade, {}: each Jingle case beside SI's of the same run (MB/s)",
                size_of(c)
            ),
        ),
        ("setup", _) => (
            5,
            "Session setup through Prosody (1 MiB files; the times are in the goals table and the case table's latency columns) (MB/s of the file)".to_owned(),
        ),
        ("ceiling", "cpu (one core)") => (
            6,
            format!("IBB CPU ceilings, block {block}: base64 and XML per core (MB/s of payload)"),
        ),
        _ => return None,
    };
    Some(title)
}

fn bar(c: &Case) -> Option<Bar> {
    let s = c.mbps.filter(|_| c.outcome == Outcome::Ok)?;
    Some(Bar {
        label: c.id.clone(),
        value: s.median,
        min: s.min,
        max: s.max,
        class: class_of(c),
    })
}

/// The latest run's groups: titles in first-seen order, ceilings first in each.
fn groups(r: &Report) -> Vec<(String, Vec<&Case>)> {
    let mut out: Vec<(u8, String, Vec<&Case>)> = Vec::new();
    for c in &r.cases {
        let Some((rank, title)) = group_title(c) else {
            continue;
        };
        let i = match out.iter().position(|(_, t, _)| *t == title) {
            Some(i) => i,
            None => {
                out.push((rank, title, Vec::new()));
                out.len() - 1
            }
        };
        out[i].2.push(c);
    }
    out.sort_by_key(|(rank, ..)| *rank);
    for (_, _, members) in &mut out {
        let referenced: Vec<&Case> = members
            .iter()
            .filter_map(|c| c.ceiling.as_deref())
            .filter_map(|id| r.case(id))
            .collect();
        for c in referenced {
            if !members.iter().any(|m| m.id == c.id) {
                members.push(c);
            }
        }
        let rank = |c: &Case| match c.group.as_str() {
            "ceiling" => 0,
            "server" => 1,
            _ => 2,
        };
        members.sort_by_key(|c| rank(c));
    }
    out.into_iter().map(|(_, t, m)| (t, m)).collect()
}

fn short_date(date: &str) -> String {
    // 2026-12-02T01:24:14Z → 12-02 01:24
    date.get(5..16)
        .map_or_else(|| date.to_owned(), |s| s.replace('T', " "))
}

/// The history section: one chart per goal that has a figure in at least one run.
fn goal_history(runs: &[Run], charts: &mut usize) -> String {
    let mut s = String::from("<h2>Goals across runs</h2>");
    if runs.is_empty() {
        s.push_str("<p class=note>No run recorded in <code>history/</code> yet.</p>");
        return s;
    }
    let labels: Vec<String> = runs.iter().map(|r| short_date(&r.entry.date)).collect();
    let mut names: Vec<&str> = Vec::new();
    for run in runs {
        for g in &run.report.goals {
            if !names.contains(&g.name.as_str()) {
                names.push(&g.name);
            }
        }
    }
    let _ = write!(
        s,
        "<p class=note>{} full runs, oldest first; each point is one run's figure (green: met, red: missed), the dashed line the goal. Linear axes from 0. The machine is shared: compare trends, not single points.</p><div class=goals>",
        runs.len()
    );
    for name in names {
        let mut points = Vec::new();
        let mut shape = None;
        for (i, run) in runs.iter().enumerate() {
            let Some(g) = run.report.goals.iter().find(|g| g.name == name) else {
                continue;
            };
            let Some(f) = history::figure(g) else {
                continue;
            };
            shape.get_or_insert((f.target, f.unit, f.higher_is_better));
            points.push((
                i,
                Point {
                    value: f.value,
                    met: g.verdict == Verdict::Met,
                    tip: format!(
                        "{} {}: {} ({})",
                        run.entry.date,
                        run.entry.commit,
                        g.detail,
                        g.verdict.label()
                    ),
                },
            ));
        }
        let Some((target, unit, higher)) = shape else {
            continue;
        };
        let title = format!(
            "{name} ({} is better)",
            if higher { "higher" } else { "lower" }
        );
        s.push_str(&svg::history_chart(&title, unit, target, &labels, &points));
        *charts += 1;
    }
    s.push_str("</div><h3>Recorded runs</h3><table><tr><th>date</th><th>commit</th><th>machine</th><th>goals met</th><th>file</th></tr>");
    for run in runs.iter().rev() {
        let e = &run.entry;
        let _ = write!(
            s,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{} / {}</td><td><code>history/{}</code></td></tr>",
            esc(&e.date),
            esc(&e.commit),
            esc(&e.machine),
            e.goals_met,
            e.goals,
            esc(&e.file)
        );
    }
    s.push_str("</table>");
    s
}

/// The dashboard (`index.html`) for the latest run `r` and the recorded `runs`.
pub fn html(r: &Report, runs: &[Run]) -> String {
    let mut charts = 0usize;
    let mut body = String::new();
    for l in header_lines(r) {
        let _ = write!(body, "<p class=note>{}</p>", esc(&l));
    }
    body.push_str("<p class=legend><span style='background:#2f6fb3'>xft</span><span style='background:#9aa5b1'>ceiling</span><span style='background:#d08a2c'>slixmpp</span><span style='background:#8c4fb0'>Prosody</span><span style='background:#5a9e6f'>other</span></p>");
    body.push_str(
        "<h2>Goals, latest run</h2><table><tr><th>goal</th><th>verdict</th><th>measured</th></tr>",
    );
    for g in &r.goals {
        let cls = match g.verdict {
            Verdict::Met => "met",
            Verdict::Missed => "missed",
            Verdict::NotMeasured => "nm",
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td class={cls}>{}</td><td>{}</td></tr>",
            esc(&g.name),
            g.verdict.label(),
            esc(&g.detail)
        );
    }
    body.push_str("</table>");
    body.push_str(&goal_history(runs, &mut charts));

    body.push_str("<h2>Latest run, case by case</h2><p class=note>Each group on its own linear axis from 0; each case beside its peer and the ceiling it is compared to (grey). Whiskers: min–max of the runs.</p>");
    for (title, members) in groups(r) {
        let bars: Vec<Bar> = members.iter().filter_map(|c| bar(c)).collect();
        let not_ok: Vec<String> = members
            .iter()
            .filter(|c| c.outcome != Outcome::Ok)
            .map(|c| format!("{}: {}", c.id, status(c)))
            .collect();
        if bars.is_empty() {
            let _ = write!(
                body,
                "<h3>{}</h3><p class=note>No completed case.</p>",
                esc(&title)
            );
        } else {
            body.push_str(&svg::bar_chart(&title, "MB/s", &bars));
            charts += 1;
        }
        if !not_ok.is_empty() {
            let _ = write!(body, "<p class=note>{}</p>", esc(&not_ok.join("; ")));
        }
    }
    let latency: Vec<(String, [u64; 4])> = r
        .cases
        .iter()
        .filter(|c| c.outcome == Outcome::Ok)
        .filter_map(|c| {
            let p = c.ack_latency_us?;
            Some((c.id.clone(), [p.p50, p.p90, p.p99, p.max]))
        })
        .collect();
    if !latency.is_empty() {
        body.push_str(&svg::latency_chart(&latency));
        charts += 1;
    }
    body.push_str(&case_table(r));

    let mut s = format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>xft benchmarks</title><style>{CSS}</style></head><body data-charts='{charts}'><h1>xft benchmarks</h1>"
    );
    s.push_str(&body);
    let _ = writeln!(s, "<script>{SCRIPT}</script></body></html>");
    s
}

fn case_table(r: &Report) -> String {
    let mut s = String::from(
        "<h2>Every case</h2><table><tr><th>case</th><th>method</th><th>by</th><th>path</th><th>MB/s median (min–max)</th><th>× ceiling</th><th>ack µs P50/P90/P99/max</th><th>RSS MiB start → peak</th><th>× ceiling RSS</th><th>CPU s</th><th>server CPU s</th><th>× ceiling CPU/MB</th><th>status</th></tr>",
    );
    for c in &r.cases {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.id),
            esc(&c.method),
            esc(&c.implementation),
            esc(&c.path),
            fmt_mbps(c),
            fmt_opt(c.ratio_to_ceiling, 2),
            fmt_latency(c),
            fmt_rss(c),
            fmt_opt(c.peak_rss_ratio, 2),
            fmt_opt(c.cpu_seconds, 2),
            fmt_opt(c.server_cpu_seconds, 2),
            fmt_opt(c.cpu_per_mb_ratio, 2),
            esc(&status(c)),
        );
        if let Some(n) = &c.note {
            let _ = write!(
                s,
                "<tr><td></td><td colspan=12 class=note>{}</td></tr>",
                esc(n)
            );
        }
    }
    let total_mb: f64 = r
        .cases
        .iter()
        .map(|c| c.bytes as f64 * c.runs_mbps.len() as f64 / MB)
        .sum();
    let _ = write!(
        s,
        "</table><p class=note>{total_mb:.0} MB moved and verified byte for byte. Generated by <code>benches/src/render/html.rs</code> from results.json and history/.</p>"
    );
    s
}
