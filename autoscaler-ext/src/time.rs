//! Durations as people write them (`500ms`, `10s`, `5m`, `6h`) and timestamp arithmetic.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serializer};

/// Parses `250ms`, `10s`, `1.5m`, `6h`. A bare number is rejected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("{text:?} has no unit (use ms, s, m or h)"))?;
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a number with a unit"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use ms, s, m or h)"
            ))
        }
    };
    if !seconds.is_finite() || !(0.0..=30.0 * 86_400.0).contains(&seconds) {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Formats a duration the way [`parse_duration`] reads it, and the way PromQL range selectors
/// want it (whole milliseconds, largest exact unit).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0s".into()
    } else if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

pub(crate) mod serde_duration {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).map_err(serde::de::Error::custom)
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }
}

/// Seconds from `earlier` to `later` (negative when `later` is before `earlier`).
pub fn secs_between(earlier: Timestamp, later: Timestamp) -> f64 {
    (later.as_millisecond() - earlier.as_millisecond()) as f64 / 1e3
}

/// `t + d`, saturating at the end of jiff's range.
pub fn add(t: Timestamp, d: Duration) -> Timestamp {
    let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    Timestamp::from_millisecond(t.as_millisecond().saturating_add(ms)).unwrap_or(Timestamp::MAX)
}

/// `t - d`, saturating at the start of jiff's range.
pub fn sub(t: Timestamp, d: Duration) -> Timestamp {
    let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    Timestamp::from_millisecond(t.as_millisecond().saturating_sub(ms)).unwrap_or(Timestamp::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip() {
        for (text, secs) in [
            ("250ms", 0.25),
            ("10s", 10.0),
            ("5m", 300.0),
            ("6h", 21600.0),
        ] {
            let d = parse_duration(text).unwrap();
            assert_eq!(d.as_secs_f64(), secs);
            assert_eq!(format_duration(d), text);
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        for bad in ["10", "s", "10d", "-1s", "1.2.3s", ""] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamp_arithmetic() {
        let t: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let later = add(t, Duration::from_secs(90));
        assert_eq!(secs_between(t, later), 90.0);
        assert_eq!(sub(later, Duration::from_secs(90)), t);
        assert_eq!(secs_between(later, t), -90.0);
    }
}
