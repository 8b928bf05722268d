//! Timestamp arithmetic the policy (and the controller around it) does with the clock it is
//! given: never the system clock, so the replay can run it on a virtual one.

use std::time::Duration;

use jiff::Timestamp;

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
    fn timestamp_arithmetic() {
        let t: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let later = add(t, Duration::from_secs(90));
        assert_eq!(secs_between(t, later), 90.0);
        assert_eq!(sub(later, Duration::from_secs(90)), t);
        assert_eq!(secs_between(later, t), -90.0);
    }
}
