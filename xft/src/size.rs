//! Sizes and durations on the command line: `64MiB`, `4KiB`, `10MB`, `1000`; `30`, `2.5`,
//! `90s`, `5m`.

use std::time::Duration;

/// Parses a byte count with an optional unit (`B`, `KB`/`MB`/`GB` powers of 1000,
/// `KiB`/`MiB`/`GiB` powers of 1024; case-insensitive).
pub(crate) fn parse(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .replace('_', "")
        .parse()
        .map_err(|_| format!("not a size: {s:?}"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?} in {s:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size too large: {s:?}"))
}

/// Parses a duration in seconds (`30`, `2.5`, `90s`) or minutes (`5m`); it must be above
/// zero and at most a day.
pub(crate) fn parse_secs(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, mult) = if let Some(m) = t.strip_suffix('m') {
        (m, 60.0)
    } else {
        (t.strip_suffix('s').unwrap_or(t), 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("not a duration: {s:?} (seconds, or with s / m)"))?;
    let secs = v * mult;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(format!(
            "{s:?}: a timeout must be above 0 and at most a day"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{parse, parse_secs};

    #[test]
    fn sizes_with_binary_and_decimal_units_parse() {
        assert_eq!(parse("64MiB"), Ok(64 << 20));
        assert_eq!(parse("4mib"), Ok(4 << 20));
        assert_eq!(parse("10MB"), Ok(10_000_000));
        assert_eq!(parse("1000"), Ok(1000));
        assert!(parse("lots").is_err());
        assert!(parse("3 parsecs").is_err());
    }

    #[test]
    fn durations_in_seconds_or_minutes_parse_and_nonsense_is_refused() {
        assert_eq!(parse_secs("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_secs("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_secs("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_secs("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_secs("0").is_err());
        assert!(parse_secs("-3").is_err());
        assert!(parse_secs("NaN").is_err());
        assert!(parse_secs("2d").is_err());
        assert!(parse_secs("100000").is_err());
    }
}
