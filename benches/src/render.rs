//! Turning a [`Report`] into `results.json`, `latest.md` and a self-contained `index.html`
//! (inline SVG and CSS, no script, nothing fetched).

use std::fmt::Write as _;
use std::path::Path;

use crate::report::{Case, MB, Outcome, Report, Verdict};
use crate::suite::SuiteError;

const MIB: f64 = 1_048_576.0;

/// Writes `results.json`, `latest.md` and `index.html` into `dir` (created if missing).
pub fn write_all(report: &Report, dir: &Path) -> Result<(), SuiteError> {
    let write = |name: &str, body: String| {
        let path = dir.join(name);
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&path, body))
            .map_err(|source| SuiteError::Write {
                path: path.display().to_string(),
                source,
            })
    };
    let json = serde_json::to_string_pretty(report).map_err(|e| SuiteError::Write {
        path: dir.join("results.json").display().to_string(),
        source: std::io::Error::other(e),
    })?;
    write("results.json", json + "\n")?;
    write("latest.md", markdown(report))?;
    write("index.html", html(report))
}

fn fmt_mbps(c: &Case) -> String {
    match (&c.outcome, c.mbps) {
        (Outcome::Ok, Some(s)) if c.runs_mbps.len() > 1 => {
            format!("{:.1} ({:.1}–{:.1})", s.median, s.min, s.max)
        }
        (Outcome::Ok, Some(s)) => format!("{:.1}", s.median),
        (Outcome::Failed(_), _) => "failed".to_owned(),
        (Outcome::Skipped(_), _) => "skipped".to_owned(),
        _ => "–".to_owned(),
    }
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.digits$}"))
}

fn fmt_rss(c: &Case) -> String {
    match (c.rss_start_bytes, c.peak_rss_bytes) {
        (Some(a), Some(b)) => format!("{:.0} → {:.0}", a as f64 / MIB, b as f64 / MIB),
        (None, Some(b)) => format!("{:.0}", b as f64 / MIB),
        _ => "–".to_owned(),
    }
}

fn fmt_latency(c: &Case) -> String {
    c.ack_latency_us.map_or_else(
        || "–".to_owned(),
        |p| format!("{} / {} / {} / {}", p.p50, p.p90, p.p99, p.max),
    )
}

fn status(c: &Case) -> String {
    match &c.outcome {
        Outcome::Ok => "ok".to_owned(),
        Outcome::Failed(r) => format!("failed: {r}"),
        Outcome::Skipped(r) => format!("skipped: {r}"),
    }
}

fn load(l: Option<[f64; 3]>) -> String {
    l.map_or_else(
        || "unknown".to_owned(),
        |[a, b, c]| format!("{a:.2} {b:.2} {c:.2}"),
    )
}

fn header_lines(r: &Report) -> Vec<String> {
    let m = &r.machine;
    vec![
        format!("Run {} with `{}`{}.", r.date, r.command, if r.quick { " (quick: small sizes, one run; not a measurement)" } else { "" }),
        format!(
            "Machine: {} cores, {} memory, {}, kernel {}, {}.",
            m.cores,
            m.memory_bytes
                .map_or_else(|| "unknown".to_owned(), |b| format!("{:.1} GiB", b as f64 / MIB / 1024.0)),
            m.cpu_model,
            m.kernel,
            m.os
        ),
        format!(
            "Versions: xft {}; {}; Prosody {}; slixmpp {}.",
            r.versions.xft,
            r.versions.rustc.as_deref().unwrap_or("rustc unknown"),
            r.versions.prosody.as_deref().unwrap_or("not run"),
            r.versions.slixmpp.as_deref().unwrap_or("not run")
        ),
        format!(
            "Load average (1/5/15 min) before: {}, after: {}. The machine is shared: other work perturbs every figure, and every ratio compares figures from the same run.",
            load(r.load_average.before),
            load(r.load_average.after)
        ),
        "MB = 10^6 bytes. Ratios compare medians with the case's ceiling from the same run; CPU is this process's user + system seconds (peers such as Prosody are not counted).".to_owned(),
    ]
}

/// The Markdown summary (`latest.md`).
pub fn markdown(r: &Report) -> String {
    let mut s = String::from("# xft benchmark results\n\n");
    for l in header_lines(r) {
        let _ = writeln!(s, "{l}  ");
    }
    s.push_str("\n## Goals\n\n| goal | verdict | measured |\n|---|---|---|\n");
    for g in &r.goals {
        let mark = match g.verdict {
            Verdict::Met => "✅ met",
            Verdict::Missed => "❌ missed",
            Verdict::NotMeasured => "⚪ not measured",
        };
        let _ = writeln!(s, "| {} | {mark} | {} |", g.name, g.detail);
    }
    s.push_str(
        "\n## Cases\n\n| case | MB/s median (min–max) | × ceiling | ceiling | ack µs P50/P90/P99/max | RSS MiB start → peak | CPU s | status |\n|---|---|---|---|---|---|---|---|\n",
    );
    for c in &r.cases {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
            c.id,
            fmt_mbps(c),
            fmt_opt(c.ratio_to_ceiling, 2),
            c.ceiling
                .as_deref()
                .map_or_else(|| "–".to_owned(), |id| format!("`{id}`")),
            fmt_latency(c),
            fmt_rss(c),
            fmt_opt(c.cpu_seconds, 2),
            status(c).replace('|', "/"),
        );
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One bar: label, median, min, max, CSS class.
struct Bar {
    label: String,
    value: f64,
    min: f64,
    max: f64,
    class: &'static str,
}

fn class_of(c: &Case) -> &'static str {
    match c.implementation.as_str() {
        "xft" => "ours",
        "tcp" => "ceil",
        "slixmpp" => "slix",
        "prosody" => "pros",
        _ => "other",
    }
}

fn bars<'a>(cases: impl Iterator<Item = &'a Case>) -> Vec<Bar> {
    cases
        .filter(|c| c.outcome == Outcome::Ok)
        .filter_map(|c| {
            let s = c.mbps?;
            Some(Bar {
                label: c.id.clone(),
                value: s.median,
                min: s.min,
                max: s.max,
                class: if c.group == "ceiling" {
                    "ceil"
                } else {
                    class_of(c)
                },
            })
        })
        .collect()
}

/// A horizontal bar chart with min–max whiskers; `log` uses a log10 axis.
fn hbar_chart(title: &str, unit: &str, rows: &[Bar], log: bool, marks: &[(f64, &str)]) -> String {
    if rows.is_empty() {
        return format!(
            "<h3>{}</h3><p class=note>No completed case.</p>",
            esc(title)
        );
    }
    let (label_w, plot_w, row_h) = (360.0, 520.0, 22.0);
    let height = rows.len() as f64 * row_h + 40.0;
    let top = rows
        .iter()
        .map(|b| b.max.max(b.value))
        .chain(marks.iter().map(|m| m.0))
        .fold(0.0f64, f64::max)
        * 1.1;
    let bottom = if log {
        rows.iter()
            .map(|b| b.min.min(b.value))
            .fold(f64::INFINITY, f64::min)
            .max(1e-3)
            / 2.0
    } else {
        0.0
    };
    let x = |v: f64| -> f64 {
        if log {
            let (lo, hi) = (bottom.log10(), top.max(bottom * 10.0).log10());
            label_w + (v.max(bottom).log10() - lo) / (hi - lo) * plot_w
        } else {
            label_w + v / top.max(1e-9) * plot_w
        }
    };
    let mut s = format!(
        "<h3>{}</h3><svg role=img viewBox='0 0 {} {height}' width='{}' height='{height}'>",
        esc(title),
        label_w + plot_w + 90.0,
        label_w + plot_w + 90.0
    );
    for (i, b) in rows.iter().enumerate() {
        let y = 10.0 + i as f64 * row_h;
        let _ = write!(
            s,
            "<text x='{}' y='{}' class=lbl>{}</text><rect class='{}' x='{label_w}' y='{}' width='{:.1}' height='{}'><title>{}: {:.2} {unit}</title></rect>\
             <line class=wh x1='{:.1}' x2='{:.1}' y1='{}' y2='{}'/><text x='{:.1}' y='{}' class=val>{:.1}</text>",
            label_w - 6.0,
            y + 14.0,
            esc(&b.label),
            b.class,
            y + 3.0,
            (x(b.value) - label_w).max(1.0),
            row_h - 6.0,
            esc(&b.label),
            b.value,
            x(b.min),
            x(b.max),
            y + row_h / 2.0,
            y + row_h / 2.0,
            x(b.max.max(b.value)) + 4.0,
            y + 14.0,
            b.value
        );
    }
    let axis_y = 10.0 + rows.len() as f64 * row_h + 4.0;
    for (v, name) in marks {
        let _ = write!(
            s,
            "<line class=goal x1='{:.1}' x2='{:.1}' y1='6' y2='{axis_y}'/><text class=goalt x='{:.1}' y='{}'>{}</text>",
            x(*v),
            x(*v),
            x(*v) + 3.0,
            axis_y + 14.0,
            esc(name)
        );
    }
    let _ = write!(
        s,
        "<line class=axis x1='{label_w}' x2='{}' y1='{axis_y}' y2='{axis_y}'/><text class=val x='{}' y='{}'>{}{}</text></svg>",
        label_w + plot_w,
        label_w + plot_w + 4.0,
        axis_y + 4.0,
        esc(unit),
        if log { " (log)" } else { "" }
    );
    s
}

/// Latency percentiles per case as dots on a log axis.
fn latency_chart(r: &Report) -> String {
    let rows: Vec<&Case> = r
        .cases
        .iter()
        .filter(|c| c.outcome == Outcome::Ok && c.ack_latency_us.is_some())
        .collect();
    if rows.is_empty() {
        return "<h3>IBB acknowledgement latency</h3><p class=note>No IBB-over-iq case completed.</p>".to_owned();
    }
    let (label_w, plot_w, row_h) = (360.0, 520.0, 22.0);
    let hi = rows
        .iter()
        .filter_map(|c| c.ack_latency_us.map(|p| p.max))
        .max()
        .unwrap_or(1)
        .max(10) as f64
        * 1.5;
    let lo = 1.0f64;
    let x = |v: u64| {
        label_w + ((v.max(1) as f64).log10() - lo.log10()) / (hi.log10() - lo.log10()) * plot_w
    };
    let height = rows.len() as f64 * row_h + 50.0;
    let mut s = format!(
        "<h3>IBB per-chunk acknowledgement latency (µs, log): <span class=p50>P50</span> <span class=p90>P90</span> <span class=p99>P99</span> <span class=pmax>max</span></h3>\
         <svg role=img viewBox='0 0 {w} {height}' width='{w}' height='{height}'>",
        w = label_w + plot_w + 90.0
    );
    for (i, c) in rows.iter().enumerate() {
        let Some(p) = c.ack_latency_us else { continue };
        let y = 10.0 + i as f64 * row_h + row_h / 2.0;
        let _ = write!(
            s,
            "<text x='{}' y='{}' class=lbl>{}</text><line class=wh x1='{:.1}' x2='{:.1}' y1='{y}' y2='{y}'/>",
            label_w - 6.0,
            y + 4.0,
            esc(&c.id),
            x(p.p50),
            x(p.max)
        );
        for (v, cls) in [
            (p.p50, "p50"),
            (p.p90, "p90"),
            (p.p99, "p99"),
            (p.max, "pmax"),
        ] {
            let _ = write!(
                s,
                "<circle class={cls} cx='{:.1}' cy='{y}' r='4'><title>{cls}: {v} µs</title></circle>",
                x(v)
            );
        }
    }
    let axis_y = 10.0 + rows.len() as f64 * row_h + 4.0;
    let _ = write!(
        s,
        "<line class=axis x1='{label_w}' x2='{}' y1='{axis_y}' y2='{axis_y}'/>",
        label_w + plot_w
    );
    let mut t = 1u64;
    while (t as f64) < hi {
        let _ = write!(
            s,
            "<line class=tick x1='{:.1}' x2='{:.1}' y1='{axis_y}' y2='{}'/><text class=val x='{:.1}' y='{}'>{}</text>",
            x(t),
            x(t),
            axis_y + 4.0,
            x(t) - 8.0,
            axis_y + 16.0,
            if t >= 1_000_000 {
                format!("{}s", t / 1_000_000)
            } else if t >= 1000 {
                format!("{}ms", t / 1000)
            } else {
                format!("{t}µs")
            }
        );
        t *= 10;
    }
    s.push_str("</svg>");
    s
}

const CSS: &str = "body{font:14px system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}\
h1{font-size:1.5em}h3{margin-top:2em}.note{color:#666}\
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}\
.lbl{font-size:11px;text-anchor:end}.val{font-size:10px;fill:#444}\
.ours{fill:#2f6fb3}.ceil{fill:#9aa5b1}.slix{fill:#d08a2c}.pros{fill:#8c4fb0}.other{fill:#5a9e6f}\
.wh{stroke:#111;stroke-width:1}.axis,.tick{stroke:#888}.goal{stroke:#c22;stroke-dasharray:4 3}.goalt{font-size:10px;fill:#c22}\
.p50{fill:#2f6fb3;color:#2f6fb3}.p90{fill:#5a9e6f;color:#5a9e6f}.p99{fill:#d08a2c;color:#d08a2c}.pmax{fill:#c22;color:#c22}\
.met{color:#17803d;font-weight:bold}.missed{color:#b91c1c;font-weight:bold}.nm{color:#777}\
.legend span{display:inline-block;padding:0 6px;margin-right:6px;color:#fff;border-radius:3px}";

/// The dashboard (`index.html`).
pub fn html(r: &Report) -> String {
    let mut s = format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>xft benchmarks</title><style>{CSS}</style></head><body><h1>xft benchmarks</h1>"
    );
    for l in header_lines(r) {
        let _ = write!(s, "<p class=note>{}</p>", esc(&l));
    }
    s.push_str("<p class=legend><span style='background:#2f6fb3'>xft</span><span style='background:#9aa5b1'>ceiling</span><span style='background:#d08a2c'>slixmpp</span><span style='background:#8c4fb0'>Prosody</span><span style='background:#5a9e6f'>other</span></p>");
    s.push_str("<h2>Goals</h2><table><tr><th>goal</th><th>verdict</th><th>measured</th></tr>");
    for g in &r.goals {
        let cls = match g.verdict {
            Verdict::Met => "met",
            Verdict::Missed => "missed",
            Verdict::NotMeasured => "nm",
        };
        let _ = write!(
            s,
            "<tr><td>{}</td><td class={cls}>{}</td><td>{}</td></tr>",
            esc(&g.name),
            g.verdict.label(),
            esc(&g.detail)
        );
    }
    s.push_str("</table>");

    let sockets = bars(r.cases.iter().filter(|c| {
        c.bytes > 0
            && (c.group == "s5b"
                || c.id.starts_with("ceiling/raw-tcp")
                || c.id.starts_with("ceiling/relay-hop"))
    }));
    s.push_str(&hbar_chart(
        "Sockets: S5B against raw TCP, a relay hop and Prosody's proxy65 (MB/s)",
        "MB/s",
        &sockets,
        false,
        &[(crate::suite::EJABBERD_PROXY_MBPS, "ejabberd proxy65")],
    ));
    let ibb = bars(r.cases.iter().filter(|c| {
        c.group == "ibb" || c.group == "server" || c.id.starts_with("ceiling/raw-xml-pump")
    }));
    s.push_str(&hbar_chart(
        "IBB per method, path and block size, with slixmpp and Prosody's own relay rate (MB/s)",
        "MB/s",
        &ibb,
        true,
        &[],
    ));
    let cpu = bars(r.cases.iter().filter(|c| c.path == "cpu (one core)"));
    s.push_str(&hbar_chart(
        "IBB CPU ceilings: base64 and XML per core (MB/s of payload)",
        "MB/s",
        &cpu,
        true,
        &[],
    ));
    let ratios: Vec<Bar> = r
        .cases
        .iter()
        .filter_map(|c| {
            let v = c.ratio_to_ceiling?;
            Some(Bar {
                label: format!("{} ÷ {}", c.id, c.ceiling.as_deref().unwrap_or("?")),
                value: v,
                min: v,
                max: v,
                class: class_of(c),
            })
        })
        .collect();
    s.push_str(&hbar_chart(
        "Ratio to the ceiling measured in the same run",
        "×",
        &ratios,
        false,
        &[(1.0, "1×"), (0.85, "0.85"), (0.55, "0.55"), (0.4, "0.4")],
    ));
    s.push_str(&latency_chart(r));

    s.push_str("<h2>Every case</h2><table><tr><th>case</th><th>method</th><th>by</th><th>path</th><th>MB/s median (min–max)</th><th>× ceiling</th><th>ack µs P50/P90/P99/max</th><th>RSS MiB start → peak</th><th>× ceiling RSS</th><th>CPU s</th><th>server CPU s</th><th>× ceiling CPU/MB</th><th>status</th></tr>");
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
        "</table><p class=note>{:.0} MB moved and verified byte for byte. Generated by <code>benches/src/bin/transfer.rs</code> from results.json.</p></body></html>",
        total_mb
    );
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::Machine;
    use crate::report::{Goal, LoadAverage, Percentiles, Spread, Versions};

    fn case(id: &str, mbps: f64, outcome: Outcome) -> Case {
        Case {
            id: id.into(),
            group: "ibb".into(),
            method: "IBB <iq>".into(),
            implementation: "xft".into(),
            path: "hub".into(),
            block_size: Some(4096),
            bytes: 1_000_000,
            outcome,
            runs_mbps: vec![mbps],
            mbps: Spread::of(&[mbps]),
            ceiling: None,
            ratio_to_ceiling: Some(0.5),
            ack_latency_us: Some(Percentiles {
                count: 3,
                p50: 10,
                p90: 20,
                p99: 30,
                max: 40,
            }),
            peak_rss_bytes: Some(8 << 20),
            rss_start_bytes: Some(6 << 20),
            peak_rss_ratio: None,
            cpu_seconds: Some(0.5),
            server_cpu_seconds: None,
            cpu_per_mb_ratio: None,
            note: None,
        }
    }

    fn report() -> Report {
        Report {
            schema: 1,
            date: "2026-11-22T04:00:00Z".into(),
            command: "transfer --quick".into(),
            quick: true,
            machine: Machine::detect(),
            versions: Versions::default(),
            load_average: LoadAverage::default(),
            peak_rss_per_case: true,
            cases: vec![
                case("ibb/hub/iq-default/4096/1MiB", 12.5, Outcome::Ok),
                case("ibb/x", 0.0, Outcome::Skipped("no <prosody> here".into())),
            ],
            goals: vec![Goal {
                name: "a <goal>".into(),
                verdict: Verdict::Missed,
                detail: "1 < 2".into(),
            }],
        }
    }

    #[test]
    fn the_dashboard_is_self_contained_and_escapes_what_it_shows() {
        let h = html(&report());
        assert!(h.contains("<svg"));
        assert!(!h.contains("<script") && !h.contains("http://") && !h.contains("https://"));
        assert!(h.contains("a &lt;goal&gt;") && h.contains("no &lt;prosody&gt; here"));
        assert!(h.contains("class=missed>missed"));
    }

    #[test]
    fn the_markdown_table_has_one_row_per_case_and_per_goal() {
        let m = markdown(&report());
        assert!(m.contains("| `ibb/hub/iq-default/4096/1MiB` | 12.5 | 0.50 | – | 10 / 20 / 30 / 40 | 6 → 8 | 0.50 | ok |"));
        assert!(m.contains("| a <goal> | ❌ missed | 1 < 2 |"));
        assert!(m.contains("skipped: no <prosody> here"));
    }

    #[test]
    fn results_round_trip_through_json() {
        let r = report();
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), r);
    }
}
