//! The one duration syntax of Gaia: `gaia.dev/latency-slo`, both ConfigMaps and the command
//! lines all read `250us`, `500ms`, `1.5s`, `10s`, `2m`, `6h`: a non-negative decimal number
//! and one unit (`us` or `µs`, `ms`, `s`, `m`, `h`). A bare number is rejected (a duration
//! without a unit is a mistake waiting to happen), and so are exponents and compound forms.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

use crate::ContractError;

/// Longest duration anything in Gaia is configured with (30 days).
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 86_400);
/// Longest latency objective: Knative's longest request timeout (`max-revision-timeout-seconds`,
/// 10 minutes by default); a p95 objective past it can never be observed.
pub const MAX_LATENCY: Duration = Duration::from_secs(600);

/// The p95 objective of a Service without `gaia.dev/latency-slo`, unless the autoscaler's
/// `defaultSlo` says otherwise.
pub const DEFAULT_LATENCY_SLO: Duration = Duration::from_millis(500);

/// Parses a duration in Gaia's syntax, from 0 up to [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, ContractError> {
    let bad = |why: String| ContractError::InvalidDuration {
        text: text.to_string(),
        why,
    };
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| bad("no unit (use us, ms, s, m or h)".into()))?;
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| bad("not a number with a unit".into()))?;
    let seconds = match unit.trim() {
        "us" | "µs" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(bad(format!(
                "unknown unit {other:?} (use us, ms, s, m or h)"
            )))
        }
    };
    if !seconds.is_finite() || !(0.0..=MAX_DURATION.as_secs_f64()).contains(&seconds) {
        return Err(bad("out of range (0 to 30 days)".into()));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Parses a latency objective (`gaia.dev/latency-slo`): a duration over 0 and at most
/// [`MAX_LATENCY`].
pub fn parse_latency(text: &str) -> Result<Duration, ContractError> {
    let bad = || ContractError::InvalidLatency(text.to_string());
    let d = parse_duration(text).map_err(|_| bad())?;
    if d.is_zero() || d > MAX_LATENCY {
        return Err(bad());
    }
    Ok(d)
}

/// Formats a duration the way [`parse_duration`] reads it and PromQL range selectors want it:
/// whole milliseconds, in the largest exact unit.
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

/// Formats a latency in milliseconds (`750ms`, `1500ms`, `0.3ms`), as tables and Events show it;
/// [`parse_latency`] reads it back.
pub fn format_latency(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if (ms - ms.round()).abs() < 1e-9 {
        format!("{}ms", ms.round() as u64)
    } else {
        format!("{ms:.1}ms")
    }
}

/// `#[serde(with = "gaia_contract::duration::serde_duration")]` for configuration fields.
pub mod serde_duration {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).map_err(serde::de::Error::custom)
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_units_users_write() {
        assert_eq!(parse_latency("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_latency("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_latency(" 2m "), Ok(Duration::from_secs(120)));
        assert_eq!(parse_latency("250us"), Ok(Duration::from_micros(250)));
    }

    #[test]
    fn rejects_missing_units_zero_and_garbage() {
        for bad in [
            "500", "0ms", "ms", "", "1.2.3s", "5h", "-1s", "1e9s", "nan s",
        ] {
            assert!(parse_latency(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn formats_round_trip() {
        let d = parse_latency("750ms").unwrap();
        assert_eq!(format_latency(d), "750ms");
        assert_eq!(parse_latency(&format_latency(d)), Ok(d));
    }

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
        for bad in [
            "10", "s", "10d", "-1s", "1.2.3s", "", "1e3s", "1m30s", "31d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("721h").is_err(), "over 30 days");
    }

    #[test]
    fn one_syntax_for_objectives_and_configuration() {
        for text in ["250us", "500ms", "1.5s", "2m"] {
            assert_eq!(
                parse_latency(text).ok(),
                parse_duration(text).ok(),
                "{text}"
            );
        }
    }
}
