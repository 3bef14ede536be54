//! The dashboard's charts, drawn as inline SVG: horizontal bars on a linear axis (one group of
//! cases), a goal's figure across runs, and latency percentiles on a log axis. Every chart is
//! an `<svg class=chart>`, which the page's script counts once laid out.

use std::fmt::Write as _;

/// Escapes text for HTML and SVG.
pub(super) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// One bar: label, median, min, max, CSS class.
#[derive(Debug, Clone)]
pub(super) struct Bar {
    pub(super) label: String,
    pub(super) value: f64,
    pub(super) min: f64,
    pub(super) max: f64,
    pub(super) class: &'static str,
}

/// Round ticks from 0 to at least `top`: steps of 1, 2 or 5 × 10^k, about five of them.
pub(super) fn ticks(top: f64) -> Vec<f64> {
    if !(top.is_finite() && top > 0.0) {
        return vec![0.0, 1.0];
    }
    let raw = top / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let mut t = vec![0.0];
    while *t.last().unwrap_or(&0.0) < top {
        let next = t.len() as f64 * step;
        t.push(next);
    }
    t
}

fn fmt_tick(v: f64) -> String {
    if v == 0.0 {
        "0".to_owned()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}").trim_end_matches(".0").to_owned()
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    }
}

/// A measured value: three significant digits or so.
fn fmt_value(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 || a == 0.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// Horizontal bars with min–max whiskers on a linear axis from 0, with round ticks and
/// grid lines.
pub(super) fn bar_chart(title: &str, unit: &str, rows: &[Bar]) -> String {
    let (label_w, plot_w, row_h) = (330.0, 560.0, 22.0);
    let top = rows
        .iter()
        .map(|b| b.max.max(b.value))
        .fold(0.0f64, f64::max);
    let ticks = ticks(top);
    let scale = ticks.last().copied().unwrap_or(1.0).max(1e-12);
    let x = |v: f64| label_w + v.max(0.0) / scale * plot_w;
    let axis_y = 10.0 + rows.len() as f64 * row_h + 4.0;
    let (w, h) = (label_w + plot_w + 70.0, axis_y + 34.0);
    let mut s = format!(
        "<figure><figcaption>{}</figcaption><svg class=chart role=img viewBox='0 0 {w} {h}' width='{w}' height='{h}'>",
        esc(title)
    );
    for t in &ticks {
        let _ = write!(
            s,
            "<line class=grid x1='{x:.1}' x2='{x:.1}' y1='6' y2='{axis_y}'/><text class=tickl x='{x:.1}' y='{}'>{}</text>",
            axis_y + 14.0,
            fmt_tick(*t),
            x = x(*t),
        );
    }
    for (i, b) in rows.iter().enumerate() {
        let y = 10.0 + i as f64 * row_h;
        let _ = write!(
            s,
            "<text x='{}' y='{}' class=lbl>{}</text><rect class='{}' x='{label_w}' y='{}' width='{:.1}' height='{}'><title>{}: {:.2} {unit} (runs {:.2}–{:.2})</title></rect>\
             <line class=wh x1='{:.1}' x2='{:.1}' y1='{}' y2='{}'/><text x='{:.1}' y='{}' class=val>{}</text>",
            label_w - 6.0,
            y + 14.0,
            esc(&b.label),
            b.class,
            y + 3.0,
            (x(b.value) - label_w).max(1.0),
            row_h - 6.0,
            esc(&b.label),
            b.value,
            b.min,
            b.max,
            x(b.min),
            x(b.max),
            y + row_h / 2.0,
            y + row_h / 2.0,
            x(b.max.max(b.value)) + 4.0,
            y + 14.0,
            fmt_value(b.value),
        );
    }
    let _ = write!(
        s,
        "<line class=axis x1='{label_w}' x2='{}' y1='{axis_y}' y2='{axis_y}'/><text class=unit x='{}' y='{}'>{}</text></svg></figure>",
        label_w + plot_w,
        label_w + plot_w + 6.0,
        axis_y + 28.0,
        esc(unit),
    );
    s
}

/// One point of a goal's history.
#[derive(Debug, Clone)]
pub(super) struct Point {
    /// The figure.
    pub(super) value: f64,
    /// Whether the goal was met then.
    pub(super) met: bool,
    /// Tooltip.
    pub(super) tip: String,
}

/// A goal's figure across runs on a linear axis from 0, with the target as a dashed line.
/// `runs` is the number of runs on the x axis; `points` are `(run index, point)`.
pub(super) fn history_chart(
    title: &str,
    unit: &str,
    target: f64,
    runs: &[String],
    points: &[(usize, Point)],
) -> String {
    let (left, plot_w, plot_h, top_pad) = (46.0, 420.0, 120.0, 12.0);
    let top = points.iter().map(|(_, p)| p.value).fold(target, f64::max) * 1.1;
    let ticks = ticks(top);
    let scale = ticks.last().copied().unwrap_or(1.0).max(1e-12);
    let y = |v: f64| top_pad + plot_h - v.max(0.0) / scale * plot_h;
    let n = runs.len().max(1);
    let x = |i: usize| left + (i as f64 + 0.5) * plot_w / n as f64;
    let (w, h) = (left + plot_w + 10.0, top_pad + plot_h + 46.0);
    let mut s = format!(
        "<figure class=goalh><figcaption>{}</figcaption><svg class=chart role=img viewBox='0 0 {w} {h}' width='{w}' height='{h}'>",
        esc(title)
    );
    for t in &ticks {
        let _ = write!(
            s,
            "<line class=grid x1='{left}' x2='{}' y1='{yy:.1}' y2='{yy:.1}'/><text class=ytick x='{}' y='{:.1}'>{}</text>",
            left + plot_w,
            left - 4.0,
            y(*t) + 3.0,
            fmt_tick(*t),
            yy = y(*t),
        );
    }
    let _ = write!(
        s,
        "<line class=goal x1='{left}' x2='{}' y1='{ty:.1}' y2='{ty:.1}'/><text class=goalt x='{}' y='{:.1}'>goal {} {}</text>",
        left + plot_w,
        left + 4.0,
        y(target) + 11.0,
        fmt_value(target),
        esc(unit),
        ty = y(target),
    );
    for (i, label) in runs.iter().enumerate() {
        let _ = write!(
            s,
            "<text class=xtick x='{:.1}' y='{}'>{}</text>",
            x(i),
            top_pad + plot_h + 14.0,
            esc(label)
        );
    }
    let path: Vec<String> = points
        .iter()
        .map(|(i, p)| format!("{:.1},{:.1}", x(*i), y(p.value)))
        .collect();
    if path.len() > 1 {
        let _ = write!(s, "<polyline class=trend points='{}'/>", path.join(" "));
    }
    for (i, p) in points {
        let _ = write!(
            s,
            "<circle class='{}' cx='{:.1}' cy='{:.1}' r='4'><title>{}</title></circle>",
            if p.met { "pmet" } else { "pmissed" },
            x(*i),
            y(p.value),
            esc(&p.tip),
        );
        let _ = write!(
            s,
            "<text class=val x='{:.1}' y='{:.1}' text-anchor=middle>{}</text>",
            x(*i),
            y(p.value) - 7.0,
            fmt_value(p.value),
        );
    }
    let _ = write!(
        s,
        "<line class=axis x1='{left}' x2='{}' y1='{b}' y2='{b}'/><text class=unit x='{left}' y='{}'>{}</text></svg></figure>",
        left + plot_w,
        top_pad + plot_h + 32.0,
        esc(unit),
        b = top_pad + plot_h,
    );
    s
}

/// Latency percentiles (P50, P90, P99, max) per case on a log axis, microseconds: they
/// span four orders of magnitude within one case.
pub(super) fn latency_chart(rows: &[(String, [u64; 4])]) -> String {
    let (label_w, plot_w, row_h) = (330.0, 560.0, 22.0);
    let hi = rows.iter().map(|(_, p)| p[3]).max().unwrap_or(1).max(10) as f64 * 1.5;
    let x = |v: u64| label_w + (v.max(1) as f64).log10() / hi.log10() * plot_w;
    let axis_y = 10.0 + rows.len() as f64 * row_h + 4.0;
    let (w, h) = (label_w + plot_w + 70.0, axis_y + 24.0);
    let mut s = format!(
        "<figure><figcaption>IBB per-chunk acknowledgement latency, µs (log axis): <span class=p50>P50</span> <span class=p90>P90</span> <span class=p99>P99</span> <span class=pmax>max</span></figcaption>\
         <svg class=chart role=img viewBox='0 0 {w} {h}' width='{w}' height='{h}'>"
    );
    for (i, (label, p)) in rows.iter().enumerate() {
        let y = 10.0 + i as f64 * row_h + row_h / 2.0;
        let _ = write!(
            s,
            "<text x='{}' y='{}' class=lbl>{}</text><line class=wh x1='{:.1}' x2='{:.1}' y1='{y}' y2='{y}'/>",
            label_w - 6.0,
            y + 4.0,
            esc(label),
            x(p[0]),
            x(p[3])
        );
        for (v, cls) in p.iter().zip(["p50", "p90", "p99", "pmax"]) {
            let _ = write!(
                s,
                "<circle class={cls} cx='{:.1}' cy='{y}' r='4'><title>{cls}: {v} µs</title></circle>",
                x(*v)
            );
        }
    }
    let mut t = 1u64;
    while (t as f64) < hi {
        let _ = write!(
            s,
            "<line class=grid x1='{xx:.1}' x2='{xx:.1}' y1='6' y2='{axis_y}'/><text class=tickl x='{xx:.1}' y='{}'>{}</text>",
            axis_y + 16.0,
            if t >= 1_000_000 {
                format!("{}s", t / 1_000_000)
            } else if t >= 1000 {
                format!("{}ms", t / 1000)
            } else {
                format!("{t}µs")
            },
            xx = x(t),
        );
        t *= 10;
    }
    let _ = write!(
        s,
        "<line class=axis x1='{label_w}' x2='{}' y1='{axis_y}' y2='{axis_y}'/></svg></figure>",
        label_w + plot_w
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_top() {
        assert_eq!(ticks(1495.3), vec![0.0, 500.0, 1000.0, 1500.0]);
        assert_eq!(ticks(9.2), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(ticks(0.0), vec![0.0, 1.0]);
        let t = ticks(0.0207);
        assert!(*t.last().unwrap() >= 0.0207 && t.len() <= 7, "{t:?}");
    }

    #[test]
    fn a_bar_chart_is_linear_from_zero() {
        let bar = |label: &str, v: f64| Bar {
            label: label.into(),
            value: v,
            min: v,
            max: v,
            class: "ours",
        };
        let s = bar_chart("t", "MB/s", &[bar("a", 100.0), bar("b", 50.0)]);
        // 100 fills the 560-pixel plot, 50 half of it.
        assert!(
            s.contains("width='560.0'") && s.contains("width='280.0'"),
            "{s}"
        );
    }
}
