//! The Prometheus side, in one of two shapes (`prometheus.queryShape`), each a constant number
//! of instant queries per cycle whatever the number of Services:
//!
//! - **flat**: seven queries, sent concurrently — p95 over the short and the long window, the
//!   median over the short one, request rate over both, the rate of the latency sum (mean
//!   latency = sum rate / request rate, computed here) and CPU use over the short window, each
//!   for every revision.
//! - **tiered** (default): first the cheap figures of every revision — both request rates, the
//!   latency sum rate, CPU, the targets (`target_info` layout) and *two* buckets per revision
//!   (the largest bound within its objective, and `+Inf`); then the quantiles only for the
//!   revisions whose decision reads them ([`super::demand`]), selected by their revision labels
//!   or their scrape targets: their buckets over the short and the long window, two queries,
//!   with `histogram_quantile` computed here ([`super::quantile`]; three quantile queries when
//!   `latencyQuantile` is overridden on its own). A revision on CPU with at least 95 % of its
//!   short-window requests under that bound has a p95 at most the bound (`histogram_quantile`
//!   interpolates within the first bucket that holds the rank): it holds `within_slo`, as it
//!   would with its value, and the bound stands in for the p95. The bucket bounds (`le`
//!   values) are read from the label index every ten minutes. In the `target_info` layout the
//!   rates are asked per scrape target and joined here with the targets query
//!   (`TargetJoin`), not in PromQL. At most 9 queries a cycle (6 + 2, and 1 for the bounds;
//!   10 with an overridden quantile).
//!
//! Each answer is a vector with one sample per revision (or per pod for CPU, or per target),
//! keyed here by its labels. Any failed query fails the whole observation: the cycle then holds
//! every Service.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_http_query::response::Data;
use prometheus_http_query::{Client, Selector};
use tracing::{debug, warn};

use super::demand::{Demand, Need};
use super::quantile;
use super::{Observe, PodKey, RawObservations, RevisionKey};
use crate::Error;
use gaia_contract::queries::{
    QuerySet, QueryShape, GPU_FB_FREE, GPU_FB_USED, GPU_FIGURE, GPU_UTIL,
};

/// How long the bucket bounds read from the label index are used before being read again.
const BOUNDS_EVERY: Duration = Duration::from_secs(600);

/// A revision's share of requests under the bound must exceed 95 % by this relative margin
/// (sums in another order differ in the last bits; the margin keeps the test on the safe side).
const MARGIN: f64 = 1e-9;

type Samples = Vec<(HashMap<String, String>, f64)>;

/// The bucket bounds (`le` label value, milliseconds) and when they were read.
type Bounds = Arc<Mutex<Option<(Instant, Vec<(String, f64)>)>>>;

/// Sends the batched queries.
#[derive(Clone)]
pub struct PromObserver {
    client: Client,
    queries: QuerySet,
    short: Duration,
    long: Duration,
    timeout: Duration,
    shape: QueryShape,
    bounds: Bounds,
}

impl PromObserver {
    pub fn new(
        url: &str,
        timeout: Duration,
        queries: QuerySet,
        short: Duration,
        long: Duration,
    ) -> Result<PromObserver, Error> {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .no_proxy()
            .build()
            .map_err(|e| Error::config("prometheus.url", format!("HTTP client: {e}")))?;
        let client = Client::from(http, url)
            .map_err(|e| Error::config("prometheus.url", format!("{url:?}: {e}")))?;
        Ok(PromObserver {
            client,
            queries,
            short,
            long,
            timeout,
            shape: QueryShape::Tiered,
            bounds: Arc::new(Mutex::new(None)),
        })
    }

    /// Asks in `shape` (tiered by default); templates that cannot be asked tiered are asked
    /// flat whatever the shape.
    pub fn with_shape(mut self, shape: QueryShape) -> PromObserver {
        self.shape = shape;
        self
    }

    /// The shape the observer actually asks in.
    pub fn shape(&self) -> QueryShape {
        if self.shape == QueryShape::Tiered && self.queries.tiered() {
            QueryShape::Tiered
        } else {
            QueryShape::Flat
        }
    }

    /// The exact PromQL of one cycle, by name (for logs, docs and tests).
    pub fn rendered(&self) -> [(&'static str, String); 7] {
        let q = &self.queries;
        [
            ("p95_short", q.render_quantile(0.95, self.short)),
            ("p95_long", q.render_quantile(0.95, self.long)),
            ("p50_short", q.render_quantile(0.5, self.short)),
            ("rps_short", QuerySet::render(&q.request_rate, self.short)),
            ("rps_long", QuerySet::render(&q.request_rate, self.long)),
            (
                "sum_rate_short",
                QuerySet::render(&q.latency_sum_rate, self.short),
            ),
            ("cpu_short", QuerySet::render(&q.cpu_usage, self.short)),
        ]
    }

    async fn vector(
        &self,
        name: &'static str,
        promql: String,
        at: Option<i64>,
    ) -> Result<Samples, Error> {
        let mut q = self
            .client
            .query(promql)
            .timeout(self.timeout.as_millis() as i64);
        if let Some(t) = at {
            q = q.at(t);
        }
        let started = Instant::now();
        // POST: a second-tier query names its candidates and may be long.
        let result = q.post().await.map_err(|e| Error::Prometheus {
            query: name,
            message: e.to_string(),
        })?;
        let (data, _) = result.into_inner();
        debug!(
            query = name,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "prometheus answered"
        );
        match data {
            Data::Vector(v) => Ok(v
                .into_iter()
                .map(|s| {
                    let (labels, sample) = s.into_inner();
                    (labels, sample.value())
                })
                .collect()),
            Data::Matrix(_) => Err(Error::PrometheusShape {
                query: name,
                kind: "a range vector",
            }),
            Data::Scalar(_) => Err(Error::PrometheusShape {
                query: name,
                kind: "a scalar",
            }),
        }
    }
}

impl PromObserver {
    fn rev_key(&self, labels: &HashMap<String, String>) -> Option<RevisionKey> {
        Some(RevisionKey::new(
            labels.get(&self.queries.namespace_label)?.clone(),
            labels.get(&self.queries.revision_label)?.clone(),
        ))
    }

    fn pod_key(&self, labels: &HashMap<String, String>) -> Option<PodKey> {
        Some(PodKey::new(
            labels.get(&self.queries.pod_namespace_label)?.clone(),
            labels.get(&self.queries.pod_label)?.clone(),
        ))
    }

    /// The figures both shapes ask for every revision.
    fn cheap(
        &self,
        raw: &mut RawObservations,
        rps_short: Samples,
        rps_long: Samples,
        sum_rate: Samples,
        cpu: Samples,
    ) {
        let unit = self.queries.latency_unit;
        let rev = |l: &HashMap<String, String>| self.rev_key(l);
        raw.rps_short = keyed(rps_short, rev, |v| v);
        raw.mean_latency_ms = keyed(sum_rate, rev, |v| unit.to_ms(v))
            .into_iter()
            .filter_map(|(k, sum)| {
                let rate = *raw.rps_short.get(&k)?;
                (rate > 0.0).then(|| (k, sum / rate))
            })
            .collect();
        raw.rps_long = keyed(rps_long, rev, |v| v);
        raw.cpu_cores = keyed(cpu, |l| self.pod_key(l), |v| v);
    }

    /// The DCGM query (one for every pod), when configured.
    async fn gpu_figures(&self, at: Option<i64>) -> Result<Option<Samples>, Error> {
        match &self.queries.gpu_use {
            Some(g) => self
                .vector("gpu_use", QuerySet::render(&g.template, self.long), at)
                .await
                .map(Some),
            None => Ok(None),
        }
    }

    /// Keys the DCGM answers by pod (and counts their query in `raw.queries`).
    fn gpu_into(&self, raw: &mut RawObservations, gpu: Option<Samples>) {
        let (Some(samples), Some(q)) = (gpu, &self.queries.gpu_use) else {
            return;
        };
        raw.queries += 1;
        for (labels, value) in samples {
            let (Some(ns), Some(pod), Some(figure)) = (
                labels.get(&q.namespace_label),
                labels.get(&q.pod_label),
                labels.get(GPU_FIGURE),
            ) else {
                continue;
            };
            if !value.is_finite() || value < 0.0 {
                continue;
            }
            let entry = raw.gpu.entry(PodKey::new(ns, pod)).or_default();
            match figure.as_str() {
                GPU_UTIL => entry.utilization_pct = Some(value),
                GPU_FB_USED => entry.fb_used_mib = Some(value),
                GPU_FB_FREE => entry.fb_free_mib = Some(value),
                _ => {}
            }
        }
    }

    async fn observe_flat(&self, at: Option<i64>) -> Result<RawObservations, Error> {
        let [(n1, q1), (n2, q2), (n7, q7), (n3, q3), (n4, q4), (n5, q5), (n6, q6)] =
            self.rendered();
        let (p95_short, p95_long, p50_short, rps_short, rps_long, sum_rate, cpu, gpu) = futures::try_join!(
            self.vector(n1, q1, at),
            self.vector(n2, q2, at),
            self.vector(n7, q7, at),
            self.vector(n3, q3, at),
            self.vector(n4, q4, at),
            self.vector(n5, q5, at),
            self.vector(n6, q6, at),
            self.gpu_figures(at),
        )?;
        let unit = self.queries.latency_unit;
        let rev = |l: &HashMap<String, String>| self.rev_key(l);
        let mut raw = RawObservations {
            p95_short_ms: keyed(p95_short, rev, |v| unit.to_ms(v)),
            p95_long_ms: keyed(p95_long, rev, |v| unit.to_ms(v)),
            p50_short_ms: keyed(p50_short, rev, |v| unit.to_ms(v)),
            queries: 7,
            ..RawObservations::default()
        };
        self.cheap(&mut raw, rps_short, rps_long, sum_rate, cpu);
        self.gpu_into(&mut raw, gpu);
        Ok(raw)
    }

    /// The bucket bounds (`le` values and their milliseconds), from the label index, read again
    /// every [`BOUNDS_EVERY`]. Counts a query when it reads them. A failed read gives none (every
    /// revision is then a candidate this cycle), never a wrong bound.
    async fn bucket_bounds(&self, at: i64, queries: &mut u32) -> Vec<(String, f64)> {
        if let Ok(guard) = self.bounds.lock() {
            if let Some((when, b)) = guard.as_ref() {
                if when.elapsed() < BOUNDS_EVERY {
                    return b.clone();
                }
            }
        }
        let Some(metric) = self.queries.bucket_metric() else {
            return Vec::new();
        };
        *queries += 1;
        let selector = Selector::new().metric(metric);
        let window = self.long.as_secs() as i64 + 60;
        let read = self
            .client
            .label_values("le")
            .selectors([&selector])
            .start(at - window)
            .end(at)
            .get()
            .await;
        match read {
            Ok(values) => {
                let unit = self.queries.latency_unit;
                let bounds: Vec<(String, f64)> = values
                    .into_iter()
                    .filter_map(|le| {
                        let v: f64 = le.parse().ok()?;
                        v.is_finite().then(|| (le, unit.to_ms(v)))
                    })
                    .collect();
                if let Ok(mut guard) = self.bounds.lock() {
                    *guard = Some((Instant::now(), bounds.clone()));
                }
                bounds
            }
            Err(e) => {
                warn!(error = %e, "cannot read the latency buckets' bounds: every revision's quantiles are asked this cycle");
                Vec::new()
            }
        }
    }

    async fn observe_tiered(
        &self,
        at: Option<i64>,
        demand: &Demand,
    ) -> Result<RawObservations, Error> {
        let q = &self.queries;
        let Some(buckets) = q.latency_buckets.as_deref() else {
            return self.observe_flat(at).await;
        };
        // Both tiers are evaluated at one instant.
        let at = at.unwrap_or_else(|| jiff::Timestamp::now().as_second());
        let mut queries = 0u32;
        let bounds = self.bucket_bounds(at, &mut queries).await;
        let all_ms: Vec<f64> = bounds.iter().map(|(_, v)| *v).collect();
        // The bound each revision may be judged on, and every `le` spelling of those bounds.
        let chosen: HashMap<&RevisionKey, f64> = demand
            .revisions
            .iter()
            .filter_map(|(k, need)| Some((k, demand.bound_for(*need, &all_ms)?)))
            .collect();
        let wanted: HashSet<u64> = chosen.values().map(|v| v.to_bits()).collect();
        let mut les: BTreeSet<String> = bounds
            .iter()
            .filter(|(_, v)| wanted.contains(&v.to_bits()))
            .map(|(le, _)| le.clone())
            .collect();
        les.insert("+Inf".into());
        let within_selector = format!("{{le=~\"{}\"}}", alternation(les.iter()));

        let (short, long) = (self.short, self.long);
        // The `target_info` join done here, from the targets query, when the templates allow.
        let per_target = q
            .per_target
            .as_ref()
            .filter(|_| q.revision_targets.is_some());
        let (rate_t, sum_t, buckets) = match per_target {
            Some(p) => (
                &p.request_rate,
                &p.latency_sum_rate,
                p.latency_buckets.as_str(),
            ),
            None => (&q.request_rate, &q.latency_sum_rate, buckets),
        };
        let targets = async {
            match &q.revision_targets {
                Some(t) => self.vector("targets", t.clone(), Some(at)).await.map(Some),
                None => Ok(None),
            }
        };
        let (rps_short, rps_long, sum_rate, cpu, within, targets, gpu) = futures::try_join!(
            self.vector("rps_short", QuerySet::render(rate_t, short), Some(at)),
            self.vector("rps_long", QuerySet::render(rate_t, long), Some(at)),
            self.vector("sum_rate_short", QuerySet::render(sum_t, short), Some(at)),
            self.vector("cpu_short", QuerySet::render(&q.cpu_usage, short), Some(at)),
            self.vector(
                "buckets_within",
                QuerySet::render_selected(buckets, short, &within_selector),
                Some(at)
            ),
            targets,
            self.gpu_figures(Some(at)),
        )?;
        queries += 5 + u32::from(targets.is_some());
        let join = match (per_target, &targets) {
            (Some(_), Some(t)) => Some(TargetJoin::new(t, |l| self.rev_key(l))),
            _ => None,
        };
        let joined = |samples: Samples| match &join {
            Some(j) => j.relabel(samples, &q.namespace_label, &q.revision_label),
            None => samples,
        };
        let (rps_short, rps_long, sum_rate, within) = (
            joined(rps_short),
            joined(rps_long),
            joined(sum_rate),
            joined(within),
        );
        let mut raw = RawObservations::default();
        self.cheap(&mut raw, rps_short, rps_long, sum_rate, cpu);
        self.gpu_into(&mut raw, gpu);
        queries += raw.queries;

        // Per revision: the +Inf bucket's rate and the rate under each bound asked.
        let unit = q.latency_unit;
        let mut total: HashMap<RevisionKey, f64> = HashMap::new();
        let mut under: HashMap<(RevisionKey, u64), f64> = HashMap::new();
        for (labels, value) in within {
            let (Some(k), Some(le)) = (self.rev_key(&labels), labels.get("le")) else {
                continue;
            };
            if !value.is_finite() {
                continue;
            }
            match le.parse::<f64>() {
                Ok(v) if v.is_infinite() && v > 0.0 => *total.entry(k).or_insert(0.0) += value,
                Ok(v) if v.is_finite() => {
                    *under.entry((k, unit.to_ms(v).to_bits())).or_insert(0.0) += value
                }
                _ => {}
            }
        }
        let mut candidates: Vec<&RevisionKey> = Vec::new();
        for (k, need) in &demand.revisions {
            // No request in the short window: every quantile is NaN, i.e. missing.
            let Some(t) = total.get(k).copied().filter(|t| *t > 0.0) else {
                continue;
            };
            let proven = match (need, chosen.get(k)) {
                (Need::UnlessAbove { .. }, Some(b)) => under
                    .get(&(k.clone(), b.to_bits()))
                    .is_some_and(|c| *c >= 0.95 * t * (1.0 + MARGIN))
                    .then_some(*b),
                _ => None,
            };
            match proven {
                Some(b) => {
                    raw.p95_short_ms.insert(k.clone(), b);
                    raw.bounded += 1;
                }
                None => candidates.push(k),
            }
        }
        raw.candidates = candidates.len();

        let selector = match &targets {
            Some(targets) => {
                let wanted: HashSet<&RevisionKey> = candidates.iter().copied().collect();
                let instances: BTreeSet<&str> = targets
                    .iter()
                    .filter(|(l, _)| self.rev_key(l).is_some_and(|k| wanted.contains(&k)))
                    .filter_map(|(l, _)| l.get("instance").map(String::as_str))
                    .collect();
                (!instances.is_empty())
                    .then(|| format!("{{instance=~\"{}\"}}", alternation(instances.iter())))
            }
            None if candidates.is_empty() => None,
            None => {
                let ns: BTreeSet<&str> = candidates.iter().map(|k| k.namespace.as_str()).collect();
                let revs: BTreeSet<&str> = candidates.iter().map(|k| k.revision.as_str()).collect();
                Some(format!(
                    "{{{}=~\"{}\",{}=~\"{}\"}}",
                    q.namespace_label,
                    alternation(ns.iter()),
                    q.revision_label,
                    alternation(revs.iter())
                ))
            }
        };
        let wanted: HashSet<&RevisionKey> = candidates.iter().copied().collect();
        match selector {
            None => {}
            // Two bucket reads, the quantiles computed here.
            Some(sel) if q.quantiles_from_buckets => {
                let (short_b, long_b) = futures::try_join!(
                    self.vector(
                        "buckets_short",
                        QuerySet::render_selected(buckets, short, &sel),
                        Some(at)
                    ),
                    self.vector(
                        "buckets_long",
                        QuerySet::render_selected(buckets, long, &sel),
                        Some(at)
                    ),
                )?;
                queries += 2;
                let short_b = self.histograms(joined(short_b), &wanted);
                let long_b = self.histograms(joined(long_b), &wanted);
                let ms = |h: &Histogram, quantile: f64| {
                    let v = quantile::bucket_quantile(quantile, h.clone());
                    v.is_finite().then(|| unit.to_ms(v))
                };
                for (k, h) in &short_b {
                    if let Some(v) = ms(h, 0.95) {
                        raw.p95_short_ms.insert(k.clone(), v);
                    }
                    if let Some(v) = ms(h, 0.5) {
                        raw.p50_short_ms.insert(k.clone(), v);
                    }
                }
                for (k, h) in &long_b {
                    if let Some(v) = ms(h, 0.95) {
                        raw.p95_long_ms.insert(k.clone(), v);
                    }
                }
            }
            Some(sel) => queries += self.quantiles(&mut raw, &sel, &wanted, at).await?,
        }
        raw.queries = queries;
        debug!(
            revisions = demand.revisions.len(),
            bounded = raw.bounded,
            candidates = raw.candidates,
            queries,
            "tiered observation"
        );
        Ok(raw)
    }

    /// The three quantile queries of an overridden `latencyQuantile`, for the candidates.
    async fn quantiles(
        &self,
        raw: &mut RawObservations,
        sel: &str,
        wanted: &HashSet<&RevisionKey>,
        at: i64,
    ) -> Result<u32, Error> {
        let (q, short, long) = (&self.queries, self.short, self.long);
        let (p95_short, p95_long, p50_short) = futures::try_join!(
            self.vector(
                "p95_short",
                q.render_quantile_selected(0.95, short, sel),
                Some(at)
            ),
            self.vector(
                "p95_long",
                q.render_quantile_selected(0.95, long, sel),
                Some(at)
            ),
            self.vector(
                "p50_short",
                q.render_quantile_selected(0.5, short, sel),
                Some(at)
            ),
        )?;
        let unit = q.latency_unit;
        // Only the candidates: a revision that shares a target name with one is not all there.
        let only = |l: &HashMap<String, String>| self.rev_key(l).filter(|k| wanted.contains(k));
        raw.p95_short_ms
            .extend(keyed(p95_short, only, |v| unit.to_ms(v)));
        raw.p95_long_ms = keyed(p95_long, only, |v| unit.to_ms(v));
        raw.p50_short_ms = keyed(p50_short, only, |v| unit.to_ms(v));
        Ok(3)
    }

    /// The candidates' buckets, per revision: the rates of equal `le` added up (as PromQL's
    /// `sum by (namespace, revision, le)`), then `(upper bound, rate)`. A `le` that is no
    /// number is left out, as `histogram_quantile` leaves it out.
    fn histograms(
        &self,
        samples: Samples,
        wanted: &HashSet<&RevisionKey>,
    ) -> HashMap<RevisionKey, Histogram> {
        let mut by_le: HashMap<RevisionKey, Vec<(String, f64)>> = HashMap::new();
        for (labels, value) in samples {
            let (Some(k), Some(le)) = (self.rev_key(&labels), labels.get("le")) else {
                continue;
            };
            if !wanted.contains(&k) {
                continue;
            }
            let buckets = by_le.entry(k).or_default();
            match buckets.iter_mut().find(|(l, _)| l == le) {
                Some((_, sum)) => *sum += value,
                None => buckets.push((le.clone(), value)),
            }
        }
        by_le
            .into_iter()
            .map(|(k, buckets)| {
                let h = buckets
                    .into_iter()
                    .filter_map(|(le, v)| Some((le.parse::<f64>().ok()?, v)))
                    .collect();
                (k, h)
            })
            .collect()
    }
}

/// A revision's buckets: `(upper bound, rate)`.
type Histogram = Vec<(f64, f64)>;

/// The `target_info` join, done here: each scrape target (`job`, `instance`) and the revision
/// its `target_info` names. A target named by two revisions at once (PromQL's join would fail
/// the whole query: many-to-many) is left out, so its revisions have no data this cycle.
struct TargetJoin {
    revisions: HashMap<(String, String), Option<RevisionKey>>,
}

impl TargetJoin {
    fn new(
        targets: &Samples,
        rev: impl Fn(&HashMap<String, String>) -> Option<RevisionKey>,
    ) -> Self {
        let mut revisions: HashMap<(String, String), Option<RevisionKey>> = HashMap::new();
        for (labels, _) in targets {
            let (Some(job), Some(instance), Some(k)) =
                (labels.get("job"), labels.get("instance"), rev(labels))
            else {
                continue;
            };
            revisions
                .entry((job.clone(), instance.clone()))
                .and_modify(|seen| {
                    if seen.as_ref() != Some(&k) {
                        *seen = None;
                    }
                })
                .or_insert(Some(k));
        }
        TargetJoin { revisions }
    }

    /// Per-target samples as the joined query answers them: the revision's labels (and `le`)
    /// instead of the target's; samples of a target without its revision are dropped.
    fn relabel(&self, samples: Samples, namespace_label: &str, revision_label: &str) -> Samples {
        samples
            .into_iter()
            .filter_map(|(labels, value)| {
                let job = labels.get("job")?;
                let instance = labels.get("instance")?;
                let k = self
                    .revisions
                    .get(&(job.clone(), instance.clone()))?
                    .as_ref()?;
                let mut out = HashMap::with_capacity(3);
                out.insert(namespace_label.to_string(), k.namespace.clone());
                out.insert(revision_label.to_string(), k.revision.clone());
                if let Some(le) = labels.get("le") {
                    out.insert("le".to_string(), le.clone());
                }
                Some((out, value))
            })
            .collect()
    }
}

impl Observe for PromObserver {
    async fn observe(&self, at: Option<i64>) -> Result<RawObservations, Error> {
        self.observe_flat(at).await
    }

    async fn observe_for(
        &self,
        at: Option<i64>,
        demand: &Demand,
    ) -> Result<RawObservations, Error> {
        match self.shape() {
            QueryShape::Flat => self.observe_flat(at).await,
            QueryShape::Tiered => self.observe_tiered(at, demand).await,
        }
    }
}

/// A regular expression matching exactly `values`, as the body of a PromQL string.
fn alternation(values: impl Iterator<Item = impl AsRef<str>>) -> String {
    let mut out = String::new();
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.push('|');
        }
        for c in v.as_ref().chars() {
            match c {
                '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^'
                | '$' => {
                    // a regex escape, itself escaped for the PromQL string
                    out.push_str("\\\\");
                    out.push(c);
                }
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
    }
    out
}

/// Keys samples by their labels, dropping samples without the labels and non-finite values
/// (a quantile or a mean over no requests is NaN: missing data, not a number).
fn keyed<K: Hash + Eq>(
    samples: Vec<(HashMap<String, String>, f64)>,
    key: impl Fn(&HashMap<String, String>) -> Option<K>,
    convert: impl Fn(f64) -> f64,
) -> HashMap<K, f64> {
    let mut out = HashMap::with_capacity(samples.len());
    for (labels, value) in samples {
        if !value.is_finite() {
            continue;
        }
        if let Some(k) = key(&labels) {
            // `sum by` makes keys unique; should a custom template not, add them up.
            *out.entry(k).or_insert(0.0) += convert(value);
        }
    }
    out
}

/// reqwest is built with rustls but without a bundled crypto provider; use ring, as kube does.
pub fn install_crypto_provider() {
    // Err means one is installed already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternation_escapes_for_the_regex_and_the_promql_string() {
        assert_eq!(alternation(["0.5", "+Inf"].iter()), r"0\\.5|\\+Inf");
        assert_eq!(
            alternation(["10.0.0.1:9091", "a\"b"].iter()),
            r#"10\\.0\\.0\\.1:9091|a\"b"#
        );
        assert_eq!(alternation(std::iter::empty::<&str>()), "");
    }

    fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_target_join_names_each_targets_revision_and_drops_ambiguous_targets() {
        let rev = |l: &HashMap<String, String>| {
            Some(RevisionKey::new(
                l.get("ns")?.clone(),
                l.get("rev")?.clone(),
            ))
        };
        let target = |instance: &str, rev: &str| {
            (
                labels(&[
                    ("job", "qp"),
                    ("instance", instance),
                    ("ns", "a"),
                    ("rev", rev),
                ]),
                1.0,
            )
        };
        let join = TargetJoin::new(
            &vec![
                target("10.0.0.1:9091", "x-1"),
                target("10.0.0.2:9091", "x-1"),
                // the same target named by two revisions: which one its series belong to is unknown
                target("10.0.0.3:9091", "y-1"),
                target("10.0.0.3:9091", "z-1"),
            ],
            rev,
        );
        let sample = |instance: &str, le: Option<&str>, v: f64| {
            let mut l = labels(&[("job", "qp"), ("instance", instance)]);
            if let Some(le) = le {
                l.insert("le".into(), le.into());
            }
            (l, v)
        };
        let out = join.relabel(
            vec![
                sample("10.0.0.1:9091", Some("0.5"), 2.0),
                sample("10.0.0.2:9091", None, 3.0),
                sample("10.0.0.3:9091", None, 4.0),
                sample("10.0.0.9:9091", None, 5.0),
            ],
            "ns",
            "rev",
        );
        assert_eq!(
            out,
            vec![
                (labels(&[("ns", "a"), ("rev", "x-1"), ("le", "0.5")]), 2.0),
                (labels(&[("ns", "a"), ("rev", "x-1")]), 3.0),
            ]
        );
    }

    #[test]
    fn keyed_drops_nan_and_unlabelled_samples() {
        let s = |rev: Option<&str>, v: f64| {
            let mut l = HashMap::new();
            l.insert("ns".to_string(), "a".to_string());
            if let Some(r) = rev {
                l.insert("rev".to_string(), r.to_string());
            }
            (l, v)
        };
        let out = keyed(
            vec![
                s(Some("x"), 0.5),
                s(Some("y"), f64::NAN),
                s(None, 1.0),
                s(Some("z"), f64::INFINITY),
            ],
            |l| {
                Some(RevisionKey::new(
                    l.get("ns")?.clone(),
                    l.get("rev")?.clone(),
                ))
            },
            |v| v * 1e3,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[&RevisionKey::new("a", "x")], 500.0);
    }
}
