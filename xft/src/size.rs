//! Sizes on the command line: `64MiB`, `4KiB`, `10MB`, `1000`.

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

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn sizes_with_binary_and_decimal_units_parse() {
        assert_eq!(parse("64MiB"), Ok(64 << 20));
        assert_eq!(parse("4mib"), Ok(4 << 20));
        assert_eq!(parse("10MB"), Ok(10_000_000));
        assert_eq!(parse("1000"), Ok(1000));
        assert!(parse("lots").is_err());
        assert!(parse("3 parsecs").is_err());
    }
}
