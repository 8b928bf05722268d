//! The Prometheus side: seven instant queries per cycle, sent concurrently, whatever the number
//! of Services — p95 over the short and the long window, the median over the short one, request
//! rate over both, the rate of
//! the latency sum (mean latency = sum rate / request rate, computed here) and CPU use over the
//! short window. Each answer is a vector with one sample per revision (or
//! per pod for CPU), keyed here by its labels.
//!
//! Any failed query fails the whole observation: the cycle then holds every Service.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use prometheus_http_query::response::Data;
use prometheus_http_query::Client;

use super::{Observe, PodKey, RawObservations, RevisionKey};
use crate::Error;
use gaia_contract::queries::QuerySet;

/// Sends the batched queries.
#[derive(Clone)]
pub struct PromObserver {
    client: Client,
    queries: QuerySet,
    short: Duration,
    long: Duration,
    timeout: Duration,
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
        })
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
    ) -> Result<Vec<(HashMap<String, String>, f64)>, Error> {
        let mut q = self
            .client
            .query(promql)
            .timeout(self.timeout.as_millis() as i64);
        if let Some(t) = at {
            q = q.at(t);
        }
        let result = q.get().await.map_err(|e| Error::Prometheus {
            query: name,
            message: e.to_string(),
        })?;
        let (data, _) = result.into_inner();
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

impl Observe for PromObserver {
    async fn observe(&self, at: Option<i64>) -> Result<RawObservations, Error> {
        let q = &self.queries;
        let [(n1, q1), (n2, q2), (n7, q7), (n3, q3), (n4, q4), (n5, q5), (n6, q6)] =
            self.rendered();
        let (p95_short, p95_long, p50_short, rps_short, rps_long, sum_rate, cpu) = futures::try_join!(
            self.vector(n1, q1, at),
            self.vector(n2, q2, at),
            self.vector(n7, q7, at),
            self.vector(n3, q3, at),
            self.vector(n4, q4, at),
            self.vector(n5, q5, at),
            self.vector(n6, q6, at),
        )?;
        let rev = |labels: &HashMap<String, String>| {
            Some(RevisionKey::new(
                labels.get(&q.namespace_label)?.clone(),
                labels.get(&q.revision_label)?.clone(),
            ))
        };
        let pod = |labels: &HashMap<String, String>| {
            Some(PodKey::new(
                labels.get(&q.pod_namespace_label)?.clone(),
                labels.get(&q.pod_label)?.clone(),
            ))
        };
        let unit = q.latency_unit;
        let rps_short = keyed(rps_short, rev, |v| v);
        let mean_latency_ms = keyed(sum_rate, rev, |v| unit.to_ms(v))
            .into_iter()
            .filter_map(|(k, sum)| {
                let rate = *rps_short.get(&k)?;
                (rate > 0.0).then(|| (k, sum / rate))
            })
            .collect();
        Ok(RawObservations {
            p95_short_ms: keyed(p95_short, rev, |v| unit.to_ms(v)),
            p95_long_ms: keyed(p95_long, rev, |v| unit.to_ms(v)),
            p50_short_ms: keyed(p50_short, rev, |v| unit.to_ms(v)),
            rps_short,
            rps_long: keyed(rps_long, rev, |v| v),
            mean_latency_ms,
            cpu_cores: keyed(cpu, pod, |v| v),
            queries: 7,
        })
    }
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
