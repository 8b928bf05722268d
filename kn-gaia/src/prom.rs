//! `kn gaia status --prometheus URL`: current p95 latency and request rate per revision, with
//! the autoscaler's own PromQL templates (`gaia_contract::queries`, configured as in its
//! ConfigMap), so the numbers are the ones it decides on. Two instant queries, whatever the
//! number of Services:
//!
//! - p95: `QuerySet::latency_quantile` at 0.95 over `--window` (default 1m),
//! - request rate: `QuerySet::request_rate` over the same window.

use std::collections::HashMap;
use std::time::Duration;

use gaia_contract::queries::{
    GpuUseQuery, QuerySet, GPU_FB_FREE, GPU_FB_USED, GPU_FIGURE, GPU_UTIL,
};
use serde_json::Value;

use crate::status::GpuView;
use crate::Error;

/// (namespace, revision) → value.
pub type ByRevision = HashMap<(String, String), f64>;

/// What Prometheus said: p95 in milliseconds and requests per second, per revision.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Current {
    pub p95_ms: ByRevision,
    pub rps: ByRevision,
    /// DCGM's figures per revision (`prometheus.dcgm` on).
    pub gpu: HashMap<(String, String), GpuView>,
}

/// The two queries, rendered.
pub fn queries(set: &QuerySet, window: Duration) -> (String, String) {
    let p95 = set.render_quantile(0.95, window);
    let rps = QuerySet::render(&set.request_rate, window);
    (p95, rps)
}

/// Asks Prometheus both queries, and the DCGM one when configured (`pods`: (namespace, pod,
/// revision) of the revisions' pods; `long`: the autoscaler's long window, DCGM's mean).
pub async fn current(
    url: &str,
    set: &QuerySet,
    window: Duration,
    long: Duration,
    pods: &[(String, String, String)],
) -> Result<Current, Error> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .map_err(|e| Error::Prometheus(format!("HTTP client: {e}")))?;
    let (p95, rps) = queries(set, window);
    let p95 = vector(&http, url, &p95).await?;
    let rps = vector(&http, url, &rps).await?;
    let key = |labels: &Value| {
        let l = |k: &str| {
            labels
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        (l(&set.namespace_label), l(&set.revision_label))
    };
    let gpu = match &set.gpu_use {
        Some(g) => {
            let answer = vector(&http, url, &QuerySet::render(&g.template, long)).await?;
            gpu_by_revision(&answer, g, pods, long)
        }
        None => HashMap::new(),
    };
    Ok(Current {
        gpu,
        p95_ms: p95
            .iter()
            .map(|(m, v)| (key(m), set.latency_unit.to_ms(*v)))
            .collect(),
        rps: rps.iter().map(|(m, v)| (key(m), *v)).collect(),
    })
}

/// DCGM's per-pod answers summed up per revision as the autoscaler does: utilisation averaged
/// over the pods with a utilisation series, memory summed over them.
pub fn gpu_by_revision(
    answer: &[(Value, f64)],
    q: &GpuUseQuery,
    pods: &[(String, String, String)],
    long: Duration,
) -> HashMap<(String, String), GpuView> {
    let revision: HashMap<(&str, &str), &str> = pods
        .iter()
        .map(|(ns, pod, rev)| ((ns.as_str(), pod.as_str()), rev.as_str()))
        .collect();
    // (namespace, revision) -> pod -> (util, used, free)
    type Figures = (Option<f64>, Option<f64>, Option<f64>);
    let mut per: HashMap<(String, String), HashMap<String, Figures>> = HashMap::new();
    for (m, v) in answer {
        let l = |k: &str| m.get(k).and_then(Value::as_str);
        let (Some(ns), Some(pod), Some(figure)) =
            (l(&q.namespace_label), l(&q.pod_label), l(GPU_FIGURE))
        else {
            continue;
        };
        let Some(rev) = revision.get(&(ns, pod)) else {
            continue;
        };
        let f = per
            .entry((ns.to_string(), rev.to_string()))
            .or_default()
            .entry(pod.to_string())
            .or_default();
        match figure {
            GPU_UTIL => f.0 = Some(*v),
            GPU_FB_USED => f.1 = Some(*v),
            GPU_FB_FREE => f.2 = Some(*v),
            _ => {}
        }
    }
    per.into_iter()
        .filter_map(|(key, pods)| {
            let with: Vec<&Figures> = pods.values().filter(|f| f.0.is_some()).collect();
            let n = with.len() as f64;
            let util = with.iter().map(|f| f.0).sum::<Option<f64>>()? / n;
            Some((
                key,
                GpuView {
                    utilization_pct: util,
                    fb_used_mib: with.iter().map(|f| f.1).sum(),
                    fb_free_mib: with.iter().map(|f| f.2).sum(),
                    window: gaia_contract::format_duration(long),
                },
            ))
        })
        .collect()
}

async fn vector(
    http: &reqwest::Client,
    url: &str,
    promql: &str,
) -> Result<Vec<(Value, f64)>, Error> {
    let endpoint = format!("{}/api/v1/query", url.trim_end_matches('/'));
    let endpoint = reqwest::Url::parse_with_params(&endpoint, &[("query", promql)])
        .map_err(|e| Error::Prometheus(format!("{url:?}: {e}")))?;
    let body = http
        .get(endpoint)
        .send()
        .await
        .map_err(|e| Error::Prometheus(format!("{url}: {}", e.without_url())))?
        .text()
        .await
        .map_err(|e| Error::Prometheus(format!("{url}: {}", e.without_url())))?;
    parse_vector(&body)
}

/// Reads an instant-vector answer of `/api/v1/query`; NaN samples (no requests) are dropped.
pub fn parse_vector(body: &str) -> Result<Vec<(Value, f64)>, Error> {
    let v: Value = serde_json::from_str(body)
        .map_err(|e| Error::Prometheus(format!("not a Prometheus answer: {e}")))?;
    if v.get("status").and_then(Value::as_str) != Some("success") {
        let msg = v
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown error");
        return Err(Error::Prometheus(msg.to_string()));
    }
    let results = v
        .pointer("/data/result")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Prometheus("answer without data.result".into()))?;
    Ok(results
        .iter()
        .filter_map(|r| {
            let value = r.pointer("/value/1")?.as_str()?.parse::<f64>().ok()?;
            value
                .is_finite()
                .then(|| (r.get("metric").cloned().unwrap_or(Value::Null), value))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vectors_and_drops_nan() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"k8s_namespace_name":"a","kn_revision_name":"f-00001"},"value":[1,"0.25"]},
            {"metric":{"k8s_namespace_name":"a","kn_revision_name":"g-00001"},"value":[1,"NaN"]}]}}"#;
        let v = parse_vector(body).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].1, 0.25);
        assert!(parse_vector(r#"{"status":"error","error":"bad query"}"#).is_err());
        assert!(parse_vector("<html>").is_err());
    }

    #[test]
    fn queries_are_the_autoscalers() {
        use gaia_contract::queries::{Generation, QueryOverrides};
        let set = QuerySet::new(
            Generation::OpenTelemetry,
            &QueryOverrides::default(),
            "user-container",
        );
        let (p95, rps) = queries(&set, Duration::from_secs(60));
        assert!(p95.starts_with("histogram_quantile(0.95"), "{p95}");
        assert!(p95.contains("[1m]") && rps.contains("[1m]"), "{p95} {rps}");
        assert_eq!(set.revision_label, "kn_revision_name");
    }
}
