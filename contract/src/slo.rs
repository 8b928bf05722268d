//! Latency values as users write them in `gaia.dev/latency-slo`.

use std::time::Duration;

use crate::ContractError;

/// Parses `500ms`, `1.5s`, `2m`, `250us` into a duration. A bare number is rejected: a latency
/// objective without a unit is a mistake waiting to happen.
pub fn parse_latency(text: &str) -> Result<Duration, ContractError> {
    let bad = || ContractError::InvalidLatency(text.to_string());
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(bad)?;
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit.trim() {
        "us" | "µs" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(bad()),
    };
    if !(seconds.is_finite() && seconds > 0.0 && seconds < 86_400.0) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Formats a duration the way [`parse_latency`] reads it, in milliseconds.
pub fn format_latency(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if (ms - ms.round()).abs() < 1e-9 {
        format!("{}ms", ms.round() as u64)
    } else {
        format!("{ms:.1}ms")
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
}
