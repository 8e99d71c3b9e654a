//! Event timestamps as the producers send them (SPEC §4).
//!
//! RFC 3339 with `Z` or an offset is an absolute instant. ISO 8601 without an offset (the Kaifa
//! consumer's `datetime.now().isoformat()`) is a wall-clock time that the database reads in the
//! session's `TimeZone`, exactly as `'...'::timestamptz` would; that conversion happens in the
//! SQL-facing shell, because only PostgreSQL knows the session's zone.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

/// A parsed event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventTime {
    /// Microseconds since 1970-01-01 00:00:00 UTC.
    Absolute { unix_micros: i64 },
    /// A wall-clock time with no offset, to be read in the session's time zone.
    Local(NaiveDateTime),
}

impl EventTime {
    /// Parses `YYYY-MM-DD[T| ]HH:MM[:SS[.frac]][Z|z|±HH[:MM]|±HHMM]`.
    pub fn parse(text: &str) -> Result<EventTime, String> {
        let text = text.trim();
        let bad = || {
            format!(
                "\"{}\" is not a timestamp (expected e.g. \"2025-09-30T10:05:00Z\")",
                truncate_for_message(text)
            )
        };
        if text.len() < 16 || !text.is_ascii() {
            return Err(bad());
        }
        let (date_part, rest) = text.split_at(10);
        let date = NaiveDate::parse_from_str(date_part, "%Y-%m-%d").map_err(|_| bad())?;
        let rest = rest.strip_prefix(['T', 't', ' ']).ok_or_else(bad)?;

        // Split the clock from the zone designator.
        let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
        let (clock, zone) = rest.split_at(zone_at);
        let time = parse_clock(clock).ok_or_else(bad)?;
        let naive = NaiveDateTime::new(date, time);

        if zone.is_empty() {
            return Ok(EventTime::Local(naive));
        }
        let offset_seconds = parse_zone(zone).ok_or_else(bad)?;
        let utc = naive.and_utc().timestamp_micros() - i64::from(offset_seconds) * 1_000_000;
        Ok(EventTime::Absolute { unix_micros: utc })
    }
}

fn parse_clock(clock: &str) -> Option<NaiveTime> {
    let (hms, fraction) = match clock.split_once('.') {
        Some((hms, fraction)) => (hms, Some(fraction)),
        None => (clock, None),
    };
    let mut parts = hms.split(':');
    let hour = two_digits(parts.next()?)?;
    let minute = two_digits(parts.next()?)?;
    let second = match parts.next() {
        Some(s) => two_digits(s)?,
        None if fraction.is_none() => 0,
        None => return None,
    };
    if parts.next().is_some() {
        return None;
    }
    let micros = match fraction {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            // Round to microseconds, as PostgreSQL does.
            let nanos: u64 = format!("{f:0<9}").parse().ok()?;
            let micros = (nanos + 500) / 1000;
            if micros >= 1_000_000 {
                return None;
            }
            micros as u32
        }
        Some(_) => return None,
    };
    NaiveTime::from_hms_micro_opt(hour, minute, second, micros)
}

fn parse_zone(zone: &str) -> Option<i32> {
    if zone == "Z" || zone == "z" {
        return Some(0);
    }
    let sign = match zone.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits = &zone[1..];
    let (hours, minutes) = match digits.len() {
        2 => (two_digits(digits)?, 0),
        4 => (two_digits(&digits[..2])?, two_digits(&digits[2..])?),
        5 if &digits[2..3] == ":" => (two_digits(&digits[..2])?, two_digits(&digits[3..])?),
        _ => return None,
    };
    if hours > 15 || minutes > 59 {
        return None;
    }
    Some(sign * (hours as i32 * 3600 + minutes as i32 * 60))
}

fn two_digits(s: &str) -> Option<u32> {
    if s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// Keeps error messages readable when a producer sends a novel instead of a timestamp.
pub(crate) fn truncate_for_message(text: &str) -> String {
    const LIMIT: usize = 60;
    if text.chars().count() <= LIMIT {
        text.to_string()
    } else {
        let head: String = text.chars().take(LIMIT).collect();
        format!("{head}...")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(text: &str) -> i64 {
        match EventTime::parse(text).unwrap() {
            EventTime::Absolute { unix_micros } => unix_micros,
            other => panic!("expected an absolute time, got {other:?}"),
        }
    }

    #[test]
    fn reads_utc_and_offsets() {
        let base = 1_759_226_700_000_000; // 2025-09-30T10:05:00Z
        assert_eq!(micros("2025-09-30T10:05:00Z"), base);
        assert_eq!(micros("2025-09-30T13:05:00+03:00"), base);
        assert_eq!(micros("2025-09-30T13:05:00+0300"), base);
        assert_eq!(micros("2025-09-30T13:05:00+03"), base);
        assert_eq!(micros("2025-09-30T07:35:00-02:30"), base);
        assert_eq!(micros("2025-09-30 10:05:00z"), base);
        assert_eq!(micros("2025-09-30T10:05Z"), base);
        assert_eq!(micros("2025-09-30T10:05:00.915Z"), base + 915_000);
        assert_eq!(micros("2025-09-30T10:05:00.123456789Z"), base + 123_457);
    }

    #[test]
    fn naive_times_stay_local() {
        let t = EventTime::parse("2025-09-24T13:51:31.555369").unwrap();
        let expected = NaiveDate::from_ymd_opt(2025, 9, 24)
            .unwrap()
            .and_hms_micro_opt(13, 51, 31, 555_369)
            .unwrap();
        assert_eq!(t, EventTime::Local(expected));
    }

    #[test]
    fn rejects_what_is_not_a_timestamp() {
        for text in [
            "",
            "yesterday",
            "2025-13-01T00:00:00Z",
            "2025-02-30T00:00:00Z",
            "2025-09-30T25:00:00Z",
            "2025-09-30T10:60:00Z",
            "2025-09-30T10:05:00+99:00",
            "2025-09-30T10:05:00.Z",
            "2025-09-30T10:05:00.1234567890Z",
            "2025-09-30",
            "2025/09/30 10:05:00",
            "2025-09-30T10:05:00 UTC",
            "2025-09-30T10:05:00Z; DROP TABLE oms_meters",
            "２０２５-09-30T10:05:00Z",
        ] {
            assert!(EventTime::parse(text).is_err(), "accepted {text:?}");
        }
    }

    #[test]
    fn long_garbage_is_shortened_in_messages() {
        let message = EventTime::parse(&"x".repeat(500)).unwrap_err();
        assert!(message.len() < 150, "{message}");
    }
}
