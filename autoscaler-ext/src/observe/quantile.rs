//! PromQL's `histogram_quantile` over classic buckets, computed here from the bucket rates the
//! second tier reads, so that one query per window serves every quantile of that window.
//!
//! A line-by-line port of Prometheus's `BucketQuantile` (promql/quantile.go, v2.55 to v3.x;
//! Thanos Query evaluates with the same code): sort by upper bound, `+Inf` required, buckets of
//! equal bound added up, counts made monotonic (relative differences under 1e-12 are ignored
//! first), the rank `q × count(+Inf)` found by binary search among all but the `+Inf` bucket,
//! linear interpolation inside the bucket found, the second-highest bound when it is the `+Inf`
//! one, and NaN for no observations. The arithmetic is the same, in the same order, so the
//! value is Prometheus's to the bit for the same bucket values (`tests/query_shapes.rs`
//! compares the two against a real Prometheus).

/// Relative difference under which two successive bucket counts are taken as equal
/// (Prometheus's `smallDeltaTolerance`).
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

/// The φ-quantile of the buckets `(upper bound, count)`, in the buckets' unit; NaN when
/// Prometheus answers NaN (no `+Inf` bucket, fewer than two buckets, no observations).
pub fn bucket_quantile(q: f64, mut buckets: Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    match buckets.last() {
        Some((bound, _)) if *bound == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    let mut buckets = coalesce(buckets);
    ensure_monotonic(&mut buckets);
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let n = buckets.len();
    let observations = buckets[n - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    // Go's sort.Search over the first n - 1 buckets: the first whose count reaches the rank.
    let b = buckets[..n - 1].partition_point(|(_, count)| *count < rank);
    if b == n - 1 {
        return buckets[n - 2].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let bucket_end = buckets[b].0;
    let mut count = buckets[b].1;
    let mut bucket_start = 0.0;
    if b > 0 {
        bucket_start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    bucket_start + (bucket_end - bucket_start) * (rank / count)
}

/// Buckets of the same upper bound (sorted) added up into one.
fn coalesce(buckets: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for (bound, count) in buckets {
        match out.last_mut() {
            Some(last) if last.0 == bound => last.1 += count,
            _ => out.push((bound, count)),
        }
    }
    out
}

/// Prometheus's `ensureMonotonicAndIgnoreSmallDeltas`: a count within the tolerance of the
/// previous one, or below it, becomes the previous one.
fn ensure_monotonic(buckets: &mut [(f64, f64)]) {
    let Some(first) = buckets.first() else {
        return;
    };
    let mut prev = first.1;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.1;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, SMALL_DELTA_TOLERANCE) || curr < prev {
            b.1 = prev;
            continue;
        }
        prev = curr;
    }
}

/// Prometheus's `almost.Equal` (without its stale-marker case: rates are never stale markers).
fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < f64::MIN_POSITIVE {
        return diff < epsilon * f64::MIN_POSITIVE;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

#[cfg(test)]
mod tests {
    use super::*;

    const INF: f64 = f64::INFINITY;

    #[test]
    fn interpolates_inside_the_bucket_that_holds_the_rank() {
        // 100 requests: 50 under 0.1, 90 under 0.5, all under 1
        let b = vec![(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (INF, 100.0)];
        assert_eq!(bucket_quantile(0.5, b.clone()), 0.1);
        // rank 95 lies halfway through (0.5, 1]
        assert_eq!(bucket_quantile(0.95, b.clone()), 0.75);
        // rank 25 in the first bucket, which starts at 0
        assert_eq!(bucket_quantile(0.25, b), 0.05);
    }

    #[test]
    fn the_order_of_the_buckets_does_not_matter() {
        let b = vec![(INF, 10.0), (1.0, 10.0), (0.25, 4.0), (0.5, 8.0)];
        assert_eq!(bucket_quantile(0.5, b), 0.3125);
    }

    #[test]
    fn a_rank_in_the_inf_bucket_gives_the_highest_finite_bound() {
        let b = vec![(0.5, 10.0), (1.0, 80.0), (INF, 100.0)];
        assert_eq!(bucket_quantile(0.95, b), 1.0);
    }

    #[test]
    fn nan_when_prometheus_answers_nan() {
        assert!(bucket_quantile(0.95, vec![(0.5, 1.0), (1.0, 2.0)]).is_nan()); // no +Inf
        assert!(bucket_quantile(0.95, vec![(INF, 3.0)]).is_nan()); // one bucket
        assert!(bucket_quantile(0.95, vec![(0.5, 0.0), (INF, 0.0)]).is_nan()); // no requests
        assert!(bucket_quantile(0.95, vec![]).is_nan());
        assert!(bucket_quantile(f64::NAN, vec![(0.5, 1.0), (INF, 1.0)]).is_nan());
        assert_eq!(bucket_quantile(-0.1, vec![(INF, 1.0)]), f64::NEG_INFINITY);
        assert_eq!(bucket_quantile(1.1, vec![(INF, 1.0)]), INF);
    }

    #[test]
    fn equal_bounds_are_added_and_decreases_flattened() {
        // "1" and "1.0" are one bucket
        let b = vec![(0.5, 2.0), (1.0, 3.0), (1.0, 3.0), (INF, 10.0)];
        assert_eq!(bucket_quantile(0.5, b), 0.875);
        // a decrease (inconsistent data) is raised to the count before it
        let b = vec![(0.5, 6.0), (1.0, 4.0), (2.0, 8.0), (INF, 8.0)];
        assert_eq!(bucket_quantile(0.5, b), 0.5 * (4.0 / 6.0));
        // a difference within 1e-12 is ignored in either direction
        let b = vec![(0.5, 5.0), (1.0, 5.0 + 1e-14), (INF, 10.0)];
        assert_eq!(bucket_quantile(0.5, b), 0.5);
    }

    #[test]
    fn a_first_bound_at_or_below_zero_is_the_answer() {
        let b = vec![(0.0, 5.0), (1.0, 10.0), (INF, 10.0)];
        assert_eq!(bucket_quantile(0.2, b), 0.0);
    }
}
