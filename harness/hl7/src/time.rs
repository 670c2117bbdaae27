//! HL7 DTM timestamps (`YYYYMMDDHHMMSS.SSSS+ZZZZ`) to and from medtwin's
//! RFC 3339 text. IHE PCD requires the UTC offset on every time it sends
//! (refs: HL7, "Time stamps"); medtwin writes UTC (`+0000`) with
//! milliseconds, the precision of its wire times, and reads any precision
//! from the year to sub-milliseconds and any offset.

use std::time::SystemTime;

use medtwin_wire::{format_time, parse_time};

/// HL7 DTM of an RFC 3339 time (any offset), in UTC with milliseconds:
/// `2026-01-01T09:02:03.456Z` → `20260101090203.456+0000`. `None` when
/// `rfc3339` is not a time.
pub fn to_dtm(rfc3339: &str) -> Option<String> {
    Some(dtm_of(parse_time(rfc3339)?))
}

/// HL7 DTM of a time, UTC, milliseconds.
pub fn dtm_of(t: SystemTime) -> String {
    // format_time gives `YYYY-MM-DDTHH:MM:SS.mmmZ`, always this shape.
    let s = format_time(t);
    let mut out = String::with_capacity(23);
    for (i, c) in s.char_indices() {
        match c {
            '-' | ':' | 'T' if i < 19 => {}
            'Z' => out.push_str("+0000"),
            c => out.push(c),
        }
    }
    out
}

/// The time an HL7 DTM names. Precision may stop at any unit (`2026`,
/// `202601011200`); fractions of a second have up to 4 digits (more are
/// accepted and cut); a missing offset is read as UTC (medtwin's own
/// convention for text without one). The reader is the wire crate's.
pub fn parse_dtm(dtm: &str) -> Option<SystemTime> {
    medtwin_wire::parse_hl7_time(dtm)
}

/// RFC 3339 text (UTC, milliseconds) of an HL7 DTM.
pub fn from_dtm(dtm: &str) -> Option<String> {
    Some(format_time(parse_dtm(dtm)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtm_round_trips_and_reads_offsets_and_short_forms() {
        assert_eq!(
            to_dtm("2026-01-01T09:02:03.456Z").as_deref(),
            Some("20260101090203.456+0000")
        );
        assert_eq!(
            from_dtm("20260101090203.456+0000").as_deref(),
            Some("2026-01-01T09:02:03.456Z")
        );
        // 10:02:03.4567 at +01:00 is 09:02:03.456(7) UTC.
        assert_eq!(
            from_dtm("20260101100203.4567+0100").as_deref(),
            Some("2026-01-01T09:02:03.456Z")
        );
        assert_eq!(
            from_dtm("20260101033203-0530").as_deref(),
            Some("2026-01-01T09:02:03.000Z")
        );
        assert_eq!(
            from_dtm("202601011200").as_deref(),
            Some("2026-01-01T12:00:00.000Z")
        );
        assert_eq!(
            from_dtm("2026").as_deref(),
            Some("2026-01-01T00:00:00.000Z")
        );
        for bad in [
            "",
            "2026-01-01",
            "20260101T1200",
            "202601011200.5",
            "20260101120000+01",
            "20261301",
        ] {
            assert_eq!(parse_dtm(bad), None, "{bad}");
        }
        assert_eq!(to_dtm("not a time"), None);
    }
}
