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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn offsets_are_honoured_not_dropped() {
        // 10:02:03.456 at +01:00 is 09:02:03.456 UTC.
        let utc = parse_time("2026-01-01T09:02:03.456Z").unwrap();
        assert_eq!(parse_time("2026-01-01T10:02:03.456+01:00"), Some(utc));
        assert_eq!(parse_time("2026-01-01T03:32:03.456-05:30"), Some(utc));
        // No offset at all: UTC.
        assert_eq!(parse_time("2026-01-01T09:02:03.456"), Some(utc));
    }
}
