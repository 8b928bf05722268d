//! What Prometheus would answer the autoscaler, computed from the simulated request log.
//!
//! Each pod exposes, as the real one does, a queue-proxy latency histogram (cumulative bucket
//! counters, sum and count; the series appears with the pod's first request) and a cAdvisor
//! CPU-seconds counter (from container start). Prometheus scrapes them every scrape interval.
//! A query at time `t` sees only the scraped samples in `(t - window, t]`, and `rate()` and
//! `histogram_quantile()` do Prometheus's arithmetic on them: the extrapolation of
//! `extrapolatedRate` (promql/functions.go) and the bucket interpolation of `bucketQuantile`
//! (promql/quantile.go), including its answer for a rank in the `+Inf` bucket (the largest
//! finite bound).

use gaia_policy::{CpuUse, RevisionStats};

/// queue-proxy latency buckets of Knative 1.19+ (`kn_serving_invocation_duration_seconds`),
/// upper bounds in seconds; `+Inf` follows. Same list as the autoscaler's Prometheus tests.
pub const BUCKETS_S: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
const NB: usize = BUCKETS_S.len() + 1;

/// A queue-proxy histogram as its counters stand now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Non-cumulative counts; the last is `+Inf`.
    counts: [u64; NB],
    pub count: u64,
    pub sum_s: f64,
}

impl Histogram {
    pub fn observe(&mut self, latency_s: f64) {
        let i = BUCKETS_S
            .iter()
            .position(|b| latency_s <= *b)
            .unwrap_or(NB - 1);
        self.counts[i] += 1;
        self.count += 1;
        self.sum_s += latency_s;
    }

    fn cumulative(&self) -> [f64; NB] {
        let mut out = [0.0; NB];
        let mut acc = 0u64;
        for (o, c) in out.iter_mut().zip(self.counts) {
            acc += c;
            *o = acc as f64;
        }
        out
    }
}

/// One scrape of a pod's histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct HistSample {
    pub t: f64,
    pub count: f64,
    pub sum_s: f64,
    pub le: [f64; NB],
}

impl HistSample {
    pub fn of(t: f64, h: &Histogram) -> Self {
        HistSample {
            t,
            count: h.count as f64,
            sum_s: h.sum_s,
            le: h.cumulative(),
        }
    }
}

/// Prometheus's `rate(counter[window])` at `now`, over samples `(t, value)` sorted by time.
/// `None` where Prometheus returns no sample (fewer than two points in the window).
pub fn rate(samples: &[(f64, f64)], now: f64, window: f64) -> Option<f64> {
    let start = now - window;
    let inside: Vec<(f64, f64)> = samples
        .iter()
        .copied()
        .filter(|(t, _)| *t > start && *t <= now)
        .collect();
    if inside.len() < 2 {
        return None;
    }
    let (first, last) = (inside[0], inside[inside.len() - 1]);
    let mut result = last.1 - first.1;
    let mut prev = 0.0;
    for (_, v) in &inside {
        if *v < prev {
            result += prev; // counter reset
        }
        prev = *v;
    }
    let sampled = last.0 - first.0;
    if sampled <= 0.0 {
        return None;
    }
    let average_step = sampled / (inside.len() - 1) as f64;
    let threshold = average_step * 1.1;
    let mut to_start = first.0 - start;
    let mut to_end = now - last.0;
    if to_start >= threshold {
        to_start = average_step / 2.0;
    }
    if result > 0.0 && first.1 >= 0.0 {
        let to_zero = sampled * (first.1 / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = average_step / 2.0;
    }
    Some(result * (sampled + to_start + to_end) / sampled / window)
}

/// Prometheus's `histogram_quantile(q, ...)` over (upper bound, cumulative rate) pairs, the
/// last bound `+Inf`. `None` where Prometheus answers NaN (no observations).
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total.is_nan() || total <= 0.0 || buckets.len() < 2 {
        return None;
    }
    // Prometheus forces monotonic counts (rates of separate series can jitter).
    let mut fixed: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    let mut max = 0.0f64;
    for (ub, c) in buckets {
        max = max.max(*c);
        fixed.push((*ub, max));
    }
    let rank = q * total;
    let i = fixed.iter().position(|(_, c)| *c >= rank)?;
    if fixed[i].0.is_infinite() {
        return Some(fixed[i - 1].0);
    }
    let (start, below) = if i == 0 { (0.0, 0.0) } else { fixed[i - 1] };
    let (end, at) = fixed[i];
    if at - below <= 0.0 {
        return Some(end);
    }
    Some(start + (end - start) * (rank - below) / (at - below))
}

/// Evaluates the autoscaler's queries for one pod's scraped samples at `now` and makes of the
/// answers the revision's stats, as the autoscaler's `observe::revision_stats` does (latencies
/// in milliseconds; `capacity` and `pods` come from the API, not from Prometheus).
pub fn revision_stats(
    hist: &[HistSample],
    cpu: &[(f64, f64)],
    now: f64,
    short: f64,
    long: f64,
    capacity: f64,
    pods: u32,
) -> RevisionStats {
    let series = |f: &dyn Fn(&HistSample) -> f64| -> Vec<(f64, f64)> {
        hist.iter().map(|s| (s.t, f(s))).collect()
    };
    let count = series(&|s| s.count);
    let sum = series(&|s| s.sum_s);
    let quantile = |q: f64, window: f64| -> Option<f64> {
        let mut buckets = Vec::with_capacity(NB);
        for i in 0..NB {
            let ub = BUCKETS_S.get(i).copied().unwrap_or(f64::INFINITY);
            buckets.push((ub, rate(&series(&|s| s.le[i]), now, window)?));
        }
        histogram_quantile(q, &buckets).map(|s| s * 1e3)
    };
    let rps_short = rate(&count, now, short);
    let mean_latency_ms = match (rate(&sum, now, short), rps_short) {
        (Some(s), Some(r)) if r > 0.0 => Some(s / r * 1e3),
        _ => None,
    };
    RevisionStats {
        p50_short_ms: quantile(0.5, short),
        p95_short_ms: quantile(0.95, short),
        p95_long_ms: quantile(0.95, long),
        rps_short,
        rps_long: rate(&count, now, long),
        mean_latency_ms,
        cpu: rate(cpu, now, short).map(|cores| CpuUse { cores, capacity }),
        pods,
        gpu: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_of_a_steady_counter_is_exact() {
        // 2 per second, scraped every 15 s, a 60 s window aligned with the scrapes
        let s: Vec<(f64, f64)> = (0..=20)
            .map(|k| (15.0 * k as f64, 30.0 * k as f64))
            .collect();
        let r = rate(&s, 300.0, 60.0).unwrap();
        assert!((r - 2.0).abs() < 1e-9, "{r}");
        // and between scrapes (extrapolated to the window's edges)
        let r = rate(&s, 307.0, 60.0).unwrap();
        assert!((r - 2.0).abs() < 1e-9, "{r}");
        assert_eq!(rate(&s[..1], 10.0, 60.0), None);
    }

    #[test]
    fn a_new_series_is_not_extrapolated_below_zero() {
        // starts at 30 at t=100 (first scrape after its first requests), +30 every 15 s
        let s = vec![(100.0, 30.0), (115.0, 60.0), (130.0, 90.0)];
        let r = rate(&s, 130.0, 60.0).unwrap();
        // increase 60 over 30 s; the window starts 30 s before the first sample, more than
        // 1.1 steps, so the series is taken to start half a step (7.5 s) before it: 75 / 60
        assert!((r - 1.25).abs() < 1e-9, "{r}");
        // a window that starts just before the first sample extrapolates to the zero point
        let r = rate(&s, 130.0, 31.0).unwrap();
        assert!((r - 60.0 * (30.0 + 1.0) / 30.0 / 31.0).abs() < 1e-9, "{r}");
    }

    #[test]
    fn quantiles_interpolate_and_stop_at_the_largest_bound() {
        let b = [(1.0, 0.0), (2.5, 10.0), (f64::INFINITY, 10.0)];
        assert!((histogram_quantile(0.95, &b).unwrap() - 2.425).abs() < 1e-9);
        let slow = [(1.0, 0.0), (10.0, 0.0), (f64::INFINITY, 5.0)];
        assert_eq!(histogram_quantile(0.95, &slow), Some(10.0));
        assert_eq!(
            histogram_quantile(0.95, &[(1.0, 0.0), (f64::INFINITY, 0.0)]),
            None
        );
    }

    #[test]
    fn answers_from_scrapes() {
        let mut h = Histogram::default();
        let mut hist = vec![];
        let mut cpu = vec![];
        for k in 0..=8 {
            let t = 15.0 * k as f64;
            for _ in 0..15 {
                h.observe(0.2);
            }
            hist.push(HistSample::of(t, &h));
            cpu.push((t, 2.0 * t));
        }
        let a = revision_stats(&hist, &cpu, 120.0, 60.0, 300.0, 4.0, 1);
        assert!((a.rps_short.unwrap() - 1.0).abs() < 1e-9);
        assert!((a.mean_latency_ms.unwrap() - 200.0).abs() < 1e-6);
        let cpu = a.cpu.unwrap();
        assert!((cpu.cores - 2.0).abs() < 1e-9 && cpu.capacity == 4.0 && a.pods == 1);
        // every observation in (0.1, 0.25]: the 95th percentile interpolates to 0.2425 s
        assert!((a.p95_short_ms.unwrap() - 242.5).abs() < 1e-6);
        assert!((a.p50_short_ms.unwrap() - 175.0).abs() < 1e-6);
    }
}
