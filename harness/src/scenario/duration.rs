//! Durations as scenario files write them: `90s`, `5m`, `2h`, `1h30m`, `250ms`.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A non-negative duration in milliseconds, parsed from text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dur(pub u64);

impl Dur {
    /// Milliseconds.
    pub fn ms(self) -> u64 {
        self.0
    }

    /// As a `std` duration.
    pub fn std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0)
    }
}

/// Parses `<number><unit>` groups, e.g. `2h`, `1h30m`, `1.5s`, `250ms`.
pub fn parse(text: &str) -> Result<Dur, String> {
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
    Ok(Dur(total_ms.round() as u64))
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

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format(self.0))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Dur, D::Error> {
        struct DurVisitor;
        impl Visitor<'_> for DurVisitor {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"90s\", \"5m\" or \"2h\"")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Dur, E> {
                parse(text).map_err(|why| {
                    E::custom(format!(
                        "invalid duration \"{text}\": {why}; write a number and a unit (ms, s, m, h, d), e.g. \"90s\", \"5m\", \"2h\""
                    ))
                })
            }
        }
        deserializer.deserialize_str(DurVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse("90s"), Ok(Dur(90_000)));
        assert_eq!(parse("5m"), Ok(Dur(300_000)));
        assert_eq!(parse("2h"), Ok(Dur(7_200_000)));
        assert_eq!(parse("1h30m"), Ok(Dur(5_400_000)));
        assert_eq!(parse("1h 30m"), Ok(Dur(5_400_000)));
        assert_eq!(parse("250ms"), Ok(Dur(250)));
        assert_eq!(parse("1.5s"), Ok(Dur(1_500)));
        assert_eq!(parse("1d"), Ok(Dur(86_400_000)));
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        assert_eq!(parse("5"), Err("`5` has no unit".into()));
        assert_eq!(parse("5 mins"), Err("unknown unit `mins`".into()));
        assert_eq!(parse(""), Err("empty duration".into()));
        assert!(parse("h").is_err());
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
            assert_eq!(parse(&format(ms)), Ok(Dur(ms)), "{}", format(ms));
        }
        assert_eq!(format(5_400_000), "1h30m");
    }
}
