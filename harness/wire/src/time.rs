//! Timestamps on the wire: RFC 3339, written in UTC with millisecond
//! precision, read with any offset.

use std::time::{Duration, SystemTime};

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

/// A device clock's factory epoch, where a reset clock restarts.
pub const DEVICE_EPOCH_TEXT: &str = "2000-01-01T00:00:00Z";

/// A device clock's factory epoch: [`DEVICE_EPOCH_TEXT`].
pub fn device_epoch() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(946_684_800)
}

/// RFC 3339 text of a time, UTC, millisecond precision:
/// `2026-01-01T09:02:03.456Z`. Times outside jiff's range (years
/// -9999..=9999) are clamped to it.
pub fn format_time(t: SystemTime) -> String {
    let ts = Timestamp::try_from(t).unwrap_or(match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(_) => Timestamp::MAX,
        Err(_) => Timestamp::MIN,
    });
    format!("{ts:.3}")
}

/// Appends [`format_time`]'s text for `t` to `out`, without allocating:
/// the encoders' hot path. Times from 1970 to 9999 are written directly
/// (civil date from the day count, after Hinnant's `civil_from_days`);
/// any other goes through [`format_time`], so the text is always the same.
pub fn write_time(t: SystemTime, out: &mut Vec<u8>) {
    // jiff's last instant (9999-12-30T22:00:00.999999999Z, so that every
    // offset's civil time fits), past which format_time clamps.
    let max_ms = Timestamp::MAX.as_millisecond() as u128;
    let ms = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) if d.as_millis() <= max_ms => d.as_millis() as u64,
        _ => {
            out.extend_from_slice(format_time(t).as_bytes());
            return;
        }
    };
    let (days, ms_of_day) = (ms / 86_400_000, ms % 86_400_000);
    // civil_from_days, shifted to an era starting 0000-03-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let secs = ms_of_day / 1_000;
    let digits = |out: &mut Vec<u8>, v: u64, n: u32| {
        for i in (0..n).rev() {
            out.push(b'0' + (v / 10u64.pow(i) % 10) as u8);
        }
    };
    digits(out, year, 4);
    out.push(b'-');
    digits(out, month, 2);
    out.push(b'-');
    digits(out, day, 2);
    out.push(b'T');
    digits(out, secs / 3_600, 2);
    out.push(b':');
    digits(out, secs / 60 % 60, 2);
    out.push(b':');
    digits(out, secs % 60, 2);
    out.push(b'.');
    digits(out, ms_of_day % 1_000, 3);
    out.push(b'Z');
}

/// Parses an RFC 3339 time with any offset (`Z`, `+00:00`, `+01:00`,
/// `-05:30`), so a target that answers in local time is read correctly. A
/// date and time with no offset at all is read as UTC (what medtwin's own
/// files have always meant by it).
pub fn parse_time(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let ts = match text.parse::<Timestamp>() {
        Ok(ts) => ts,
        Err(_) => TimeZone::UTC
            .to_timestamp(text.parse::<DateTime>().ok()?)
            .ok()?,
    };
    SystemTime::try_from(ts).ok()
}

/// Parses an HL7 v2 `DTM` (`YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]`),
/// the one DTM reader (the HL7 crate and the alert mappings use it).
/// Without an offset the time is read as UTC (HL7 leaves it to the
/// sender's local time, which medtwin cannot know).
pub fn parse_hl7_time(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let (stamp, offset) = match text.find(['+', '-']) {
        Some(i) => (&text[..i], Some(&text[i..])),
        None => (text, None),
    };
    let (digits, fraction) = match stamp.split_once('.') {
        Some((d, f)) => (d, Some(f)),
        None => (stamp, None),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit())
        || !matches!(digits.len(), 4 | 6 | 8 | 10 | 12 | 14)
        || (fraction.is_some() && digits.len() != 14)
    {
        return None;
    }
    let field = |from: usize, to: usize, default: i64| -> i64 {
        digits
            .get(from..to)
            .and_then(|d| d.parse().ok())
            .unwrap_or(default)
    };
    // HL7 allows four fraction digits; more are read and cut at the
    // nanosecond, as senders do write them.
    let nanos: i64 = match fraction {
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{:0<9}", &f[..f.len().min(9)]).parse().ok()?
        }
        Some(_) => return None,
        None => 0,
    };
    let civil = DateTime::new(
        i16::try_from(field(0, 4, 0)).ok()?,
        i8::try_from(field(4, 6, 1)).ok()?,
        i8::try_from(field(6, 8, 1)).ok()?,
        i8::try_from(field(8, 10, 0)).ok()?,
        i8::try_from(field(10, 12, 0)).ok()?,
        i8::try_from(field(12, 14, 0)).ok()?,
        i32::try_from(nanos).ok()?,
    )
    .ok()?;
    let offset_secs = match offset {
        None => 0,
        Some(o) if o.len() == 5 && o[1..].bytes().all(|b| b.is_ascii_digit()) => {
            let hours: i32 = o[1..3].parse().ok()?;
            let minutes: i32 = o[3..5].parse().ok()?;
            let secs = hours * 3600 + minutes * 60;
            if o.starts_with('-') { -secs } else { secs }
        }
        Some(_) => return None,
    };
    let tz = TimeZone::fixed(jiff::tz::Offset::from_seconds(offset_secs).ok()?);
    let ts = tz.to_timestamp(civil).ok()?;
    SystemTime::try_from(ts).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hl7_times_read_with_and_without_offsets() {
        let t = |s| parse_hl7_time(s).map(format_time);
        assert_eq!(t("20260101083000"), Some("2026-01-01T08:30:00.000Z".into()));
        assert_eq!(
            t("20260101083000.25+0100"),
            Some("2026-01-01T07:30:00.250Z".into())
        );
        assert_eq!(
            t("202601010830-0530"),
            Some("2026-01-01T14:00:00.000Z".into())
        );
        assert_eq!(t("2026"), Some("2026-01-01T00:00:00.000Z".into()));
        assert_eq!(t("2026013"), None);
        assert_eq!(t("20261301"), None);
        assert_eq!(t("20260101083000+01"), None);
        assert_eq!(t("202601010830.5"), None);
    }

    #[test]
    fn times_round_trip_at_millisecond_precision() {
        let start = parse_time("2026-01-01T08:00:00Z").unwrap();
        let t = start + Duration::from_millis(3_723_456);
        let text = format_time(t);
        assert_eq!(text, "2026-01-01T09:02:03.456Z");
        assert_eq!(parse_time(&text), Some(t));
        assert_eq!(parse_time("2026-01-01T09:02:03.456+00:00"), Some(t));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(format_time(device_epoch()), "2000-01-01T00:00:00.000Z");
        assert_eq!(parse_time(DEVICE_EPOCH_TEXT), Some(device_epoch()));
    }

    #[test]
    fn write_time_writes_what_format_time_formats() {
        // Days across leap years and centuries, both ends of the fast
        // path, sub-millisecond parts (truncated, as jiff does), and the
        // times outside it (before 1970, past 9999, clamped).
        let mut z = 0x006d_6564_7477_696e_u64;
        let mut times = vec![
            SystemTime::UNIX_EPOCH,
            device_epoch(),
            SystemTime::UNIX_EPOCH + Duration::from_millis(253_402_300_799_999),
            SystemTime::UNIX_EPOCH + Duration::from_millis(253_402_300_800_000),
            SystemTime::UNIX_EPOCH - Duration::from_millis(1),
            SystemTime::UNIX_EPOCH - Duration::from_secs(86_400 * 800_000),
            SystemTime::UNIX_EPOCH + Duration::from_secs(86_400 * 4_000_000),
            parse_time("2000-02-29T23:59:59.999Z").unwrap(),
            parse_time("2100-03-01T00:00:00Z").unwrap(),
        ];
        for _ in 0..20_000 {
            z = z
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            // Nanoseconds to 2262, milliseconds to 9999.
            let ns = z >> 1;
            times.push(SystemTime::UNIX_EPOCH + Duration::from_nanos(ns));
            times.push(
                SystemTime::UNIX_EPOCH + Duration::from_millis((z >> 20) % 253_402_300_800_000),
            );
        }
        let mut out = Vec::new();
        for t in times {
            out.clear();
            write_time(t, &mut out);
            assert_eq!(std::str::from_utf8(&out).unwrap(), format_time(t), "{t:?}");
        }
    }

    #[test]
    fn offsets_are_honoured_not_dropped() {
        // 10:02:03.456 at +01:00 is 09:02:03.456 UTC.
        let utc = parse_time("2026-01-01T09:02:03.456Z").unwrap();
        assert_eq!(parse_time("2026-01-01T10:02:03.456+01:00"), Some(utc));
        assert_eq!(parse_time("2026-01-01T03:32:03.456-05:30"), Some(utc));
        // No offset at all: UTC.
        assert_eq!(parse_time("2026-01-01T09:02:03.456"), Some(utc));
    }
}
