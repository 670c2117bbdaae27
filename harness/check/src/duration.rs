//! Durations as people write and read them: `90s`, `5m`, `2h`, `1h30m`,
//! `250ms`. Scenario files, rules (`spo2 < 90 for 60s`) and reports share
//! this one vocabulary.

/// Parses `<number><unit>` groups, e.g. `2h`, `1h30m`, `1.5s`, `250ms`,
/// into milliseconds.
pub fn parse(text: &str) -> Result<u64, String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err("empty duration".into());
    }
    if compact.starts_with('-') {
        return Err("a duration cannot be negative".into());
    }
    let mut rest = compact.as_str();
    let mut total_ms = 0f64;
    while !rest.is_empty() {
        let n_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(n_len);
        let u_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(u_len);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("`{number}` is not a number"))?;
        let scale = match unit {
            "ms" => 1.0,
            "s" => 1_000.0,
            "m" | "min" => 60_000.0,
            "h" => 3_600_000.0,
            "d" => 86_400_000.0,
            "" => return Err(format!("`{number}` has no unit")),
            other => return Err(format!("unknown unit `{other}`")),
        };
        total_ms += value * scale;
        rest = tail;
    }
    if !total_ms.is_finite() || total_ms > u64::MAX as f64 / 2.0 {
        return Err("too long".into());
    }
    Ok(total_ms.round() as u64)
}

/// Human text of a duration, the shortest exact form: `2h`, `1h30m`, `250ms`.
pub fn format(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

/// A latency for people: `27m25s`, `4.2s`, `350ms`.
pub fn human(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        _ => format((ms + 500) / 1000 * 1000),
    }
}

/// Simulated time as `hh:mm:ss`.
pub fn clock_text(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse("90s"), Ok(90_000));
        assert_eq!(parse("5m"), Ok(300_000));
        assert_eq!(parse("2h"), Ok(7_200_000));
        assert_eq!(parse("1h30m"), Ok(5_400_000));
        assert_eq!(parse("1h 30m"), Ok(5_400_000));
        assert_eq!(parse("250ms"), Ok(250));
        assert_eq!(parse("1.5s"), Ok(1_500));
        assert_eq!(parse("1d"), Ok(86_400_000));
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        assert_eq!(parse("5"), Err("`5` has no unit".into()));
        assert_eq!(parse("5 mins"), Err("unknown unit `mins`".into()));
        assert_eq!(parse(""), Err("empty duration".into()));
        assert!(parse("h").is_err());
        assert!(parse("-5s").is_err());
    }

    #[test]
    fn formats_round_trip() {
        for ms in [
            0,
            1,
            999,
            1_000,
            90_000,
            5_400_000,
            7_200_000,
            86_400_000 + 1,
        ] {
            assert_eq!(parse(&format(ms)), Ok(ms), "{}", format(ms));
        }
        assert_eq!(format(5_400_000), "1h30m");
    }

    #[test]
    fn people_read_latencies_and_clock_times() {
        assert_eq!(human(350), "350ms");
        assert_eq!(human(4_200), "4.2s");
        assert_eq!(human(1_645_400), "27m25s");
        assert_eq!(clock_text(3_723_456), "01:02:03");
    }
}
