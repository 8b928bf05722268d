//! What Prometheus says about revisions, in a constant number of batched queries per cycle.
//!
//! [`gaia_contract::queries`] holds the PromQL templates (defaults for both Knative metric
//! generations, every one replaceable from the config); [`prometheus`] sends them, one query per metric per cycle
//! for all revisions at once, and keys the answers by revision; [`revision_stats`] joins the
//! answers for one revision with its pods (CPU use is per pod in cAdvisor and is summed over the
//! revision's pods, which the API names). [`demand`] says which revisions' decisions read
//! their latency quantiles, so that the tiered shape asks for those only.

pub mod demand;
pub mod prometheus;
pub mod quantile;

use std::collections::HashMap;
use std::future::Future;

use crate::cluster::pods::PodInfo;
use crate::Error;
use gaia_policy::{CpuUse, GpuUse, RevisionStats};

/// A revision, as Prometheus labels and the API both name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RevisionKey {
    pub namespace: String,
    pub revision: String,
}

impl RevisionKey {
    pub fn new(namespace: impl Into<String>, revision: impl Into<String>) -> Self {
        RevisionKey {
            namespace: namespace.into(),
            revision: revision.into(),
        }
    }
}

/// A pod, as cAdvisor labels it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodKey {
    pub namespace: String,
    pub pod: String,
}

impl PodKey {
    pub fn new(namespace: impl Into<String>, pod: impl Into<String>) -> Self {
        PodKey {
            namespace: namespace.into(),
            pod: pod.into(),
        }
    }
}

/// One cycle's answers, for every revision Prometheus knows. Latencies are in milliseconds
/// whatever unit the metric uses. Series whose value is NaN or infinite (a quantile over no
/// requests, a mean over none) are left out: they are missing data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawObservations {
    pub p95_short_ms: HashMap<RevisionKey, f64>,
    pub p95_long_ms: HashMap<RevisionKey, f64>,
    pub p50_short_ms: HashMap<RevisionKey, f64>,
    pub rps_short: HashMap<RevisionKey, f64>,
    pub rps_long: HashMap<RevisionKey, f64>,
    pub mean_latency_ms: HashMap<RevisionKey, f64>,
    /// CPU cores used, per pod (user container only).
    pub cpu_cores: HashMap<PodKey, f64>,
    /// GPU figures per pod from DCGM (`prometheus.dcgm`; empty when off).
    pub gpu: HashMap<PodKey, PodGpu>,
    /// HTTP queries this observation cost.
    pub queries: u32,
    /// Tiered shape: revisions whose short-window p95 is a bucket bound within their objective
    /// (at most it, so they hold `within_slo` as with the value), not a quantile.
    pub bounded: usize,
    /// Tiered shape: revisions whose quantiles were asked in the second tier.
    pub candidates: usize,
}

/// One pod's DCGM figures (each `None` without its series).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PodGpu {
    /// Mean utilisation over the long window, %.
    pub utilization_pct: Option<f64>,
    pub fb_used_mib: Option<f64>,
    pub fb_free_mib: Option<f64>,
}

/// Something that observes all revisions at once: Prometheus in production, a table in tests.
pub trait Observe {
    /// Every figure of every revision. `at`: evaluation time (Unix seconds); `None` means now.
    fn observe(
        &self,
        at: Option<i64>,
    ) -> impl Future<Output = Result<RawObservations, Error>> + Send;

    /// The figures `demand`'s decisions read (the tiered shape asks the quantiles of the
    /// revisions whose decision reads them only); by default every figure.
    fn observe_for(
        &self,
        at: Option<i64>,
        demand: &demand::Demand,
    ) -> impl Future<Output = Result<RawObservations, Error>> + Send {
        let _ = demand;
        self.observe(at)
    }
}

/// Joins the answers for one revision with its pods.
///
/// CPU use is the sum over the revision's pods that have a CPU series, measured against the sum
/// of the same pods' capacity (limit, else request, else `capacity_without_limit`). No pod with
/// a series: no CPU figure (and so no promotion).
pub fn revision_stats(
    raw: &RawObservations,
    key: &RevisionKey,
    pods: &[&PodInfo],
    capacity_without_limit: f64,
) -> RevisionStats {
    let mut cores = 0.0;
    let mut capacity = 0.0;
    let mut measured = 0;
    for pod in pods {
        if let Some(c) = raw.cpu_cores.get(&PodKey::new(&pod.namespace, &pod.name)) {
            cores += c;
            capacity += pod.cpu_capacity.unwrap_or(capacity_without_limit);
            measured += 1;
        }
    }
    RevisionStats {
        p50_short_ms: raw.p50_short_ms.get(key).copied(),
        p95_short_ms: raw.p95_short_ms.get(key).copied(),
        p95_long_ms: raw.p95_long_ms.get(key).copied(),
        rps_short: raw.rps_short.get(key).copied(),
        rps_long: raw.rps_long.get(key).copied(),
        mean_latency_ms: raw.mean_latency_ms.get(key).copied(),
        cpu: (measured > 0).then_some(CpuUse { cores, capacity }),
        pods: pods.len() as u32,
        gpu: gpu_use(raw, pods),
    }
}

/// The revision's GPU figures: utilisation averaged over its pods that have a utilisation
/// series, memory summed over the same pods. No such pod: `None` (the DCGM rule then does not
/// apply).
fn gpu_use(raw: &RawObservations, pods: &[&PodInfo]) -> Option<GpuUse> {
    let figures: Vec<&PodGpu> = pods
        .iter()
        .filter_map(|p| raw.gpu.get(&PodKey::new(&p.namespace, &p.name)))
        .filter(|g| g.utilization_pct.is_some())
        .collect();
    if figures.is_empty() {
        return None;
    }
    let sum = |f: fn(&PodGpu) -> Option<f64>| -> Option<f64> {
        figures.iter().map(|g| f(g)).sum::<Option<f64>>()
    };
    Some(GpuUse {
        utilization_pct: sum(|g| g.utilization_pct)? / figures.len() as f64,
        fb_used_mib: sum(|g| g.fb_used_mib),
        fb_free_mib: sum(|g| g.fb_free_mib),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, cpu: Option<f64>) -> PodInfo {
        PodInfo {
            namespace: "ns".into(),
            name: name.into(),
            node: Some("n".into()),
            revision: Some("f-00001".into()),
            gpus: 0,
            cpu_capacity: cpu,
        }
    }

    #[test]
    fn cpu_is_summed_over_the_revisions_pods_that_have_series() {
        let key = RevisionKey::new("ns", "f-00001");
        let mut raw = RawObservations::default();
        raw.p95_short_ms.insert(key.clone(), 800.0);
        raw.cpu_cores.insert(PodKey::new("ns", "a"), 0.9);
        raw.cpu_cores.insert(PodKey::new("ns", "b"), 0.5);
        raw.cpu_cores.insert(PodKey::new("other", "a"), 7.0);
        let (a, b, c) = (pod("a", Some(1.0)), pod("b", None), pod("c", Some(4.0)));
        let s = revision_stats(&raw, &key, &[&a, &b, &c], 2.0);
        assert_eq!(s.p95_short_ms, Some(800.0));
        assert_eq!(s.p95_long_ms, None);
        assert_eq!(
            s.cpu,
            Some(CpuUse {
                cores: 1.4,
                capacity: 3.0
            })
        );
        assert_eq!(s.pods, 3);
        let s = revision_stats(&raw, &key, &[&c], 2.0);
        assert_eq!(s.cpu, None);
    }

    #[test]
    fn gpu_use_is_averaged_over_the_pods_with_dcgm_series_and_missing_without() {
        let key = RevisionKey::new("ns", "f-00001");
        let mut raw = RawObservations::default();
        let (a, b, c) = (pod("a", None), pod("b", None), pod("c", None));
        assert_eq!(revision_stats(&raw, &key, &[&a, &b], 1.0).gpu, None);
        let figures = |u: Option<f64>, used: f64| PodGpu {
            utilization_pct: u,
            fb_used_mib: Some(used),
            fb_free_mib: Some(1000.0 - used),
        };
        raw.gpu
            .insert(PodKey::new("ns", "a"), figures(Some(4.0), 300.0));
        raw.gpu
            .insert(PodKey::new("ns", "b"), figures(Some(10.0), 500.0));
        // memory without utilisation: the pod does not count
        raw.gpu.insert(PodKey::new("ns", "c"), figures(None, 900.0));
        let g = revision_stats(&raw, &key, &[&a, &b, &c], 1.0).gpu.unwrap();
        assert_eq!(g.utilization_pct, 7.0);
        assert_eq!((g.fb_used_mib, g.fb_free_mib), (Some(800.0), Some(1200.0)));
        assert_eq!(revision_stats(&raw, &key, &[&c], 1.0).gpu, None);
    }
}
