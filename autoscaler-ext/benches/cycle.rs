//! Benchmark: one decision cycle over N Services whose series are in a real Prometheus.
//!
//! `cargo bench -p gaia-autoscaler --bench cycle` (sizes from `GAIA_BENCH_SIZES`, default
//! `1000,10000`; metric generation from `GAIA_BENCH_GENERATION`, `opentelemetry` (default) or
//! `opencensus`). For each size it backfills a fresh Prometheus with one revision per Service
//! (queue-proxy histogram, `target_info`, cAdvisor CPU of the user container and the sidecar),
//! runs a warm-up cycle and then timed cycles, and prints the cycle duration and the number of
//! Prometheus queries. For comparison it also times the original prototype's access pattern
//! (4 queries per Service, one HTTP round trip each) on the first `GAIA_BENCH_BASELINE`
//! Services (default 500).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{cpu_pods, steady, Dataset, Gen, PromServer};
use gaia_autoscaler::act::Actuator;
use gaia_autoscaler::cluster::nodes::NodeInfo;
use gaia_autoscaler::cluster::service::ManagedService;
use gaia_autoscaler::config::Config;
use gaia_autoscaler::cycle::{Cycle, CycleSettings, Snapshot};
use gaia_autoscaler::observe::prometheus::{install_crypto_provider, PromObserver};
use gaia_autoscaler::Error;
use gaia_contract::queries::{Generation, QueryOverrides, QuerySet};
use gaia_policy::Decision;
use serde_json::json;

#[derive(Default)]
struct Counting(AtomicU64);

impl Actuator for Counting {
    async fn act(&self, _: &ManagedService, _: &Decision) -> Result<(), Error> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    async fn warn(&self, _: &ManagedService, _: &'static str, _: String) -> Result<(), Error> {
        Ok(())
    }
}

fn dataset(n: usize) -> Dataset {
    let step = 60;
    let now = jiff::Timestamp::now().as_second();
    let revisions = (0..n)
        .map(|i| {
            let ns = format!("team-{}", i % 50);
            let rev = format!("fn{i}-00001");
            // one Service in ten slow and CPU-bound, the rest comfortably within the SLO
            if i % 10 == 0 {
                steady(&ns, &rev, 1, 0.95, vec![(1500.0, 120), (900.0, 12)])
            } else {
                steady(&ns, &rev, 1, 0.2, vec![(40.0, 300), (180.0, 20)])
            }
        })
        .collect();
    Dataset {
        start: (now / step) * step - 3600,
        step,
        steps: 6,
        revisions,
    }
}

fn snapshot(ds: &Dataset) -> Snapshot {
    let mut services = Vec::with_capacity(ds.revisions.len());
    let mut pods = Vec::with_capacity(ds.revisions.len());
    for r in &ds.revisions {
        let v = json!({
            "apiVersion": "serving.knative.dev/v1", "kind": "Service",
            "metadata": {"name": r.service, "namespace": r.namespace, "generation": 1,
                         "resourceVersion": "1", "uid": format!("uid-{}", r.revision),
                         "annotations": {"gaia.dev/mode": "cpu_preferred",
                                         "gaia.dev/latency-slo": "500ms"}},
            "spec": {"template": {"metadata": {"annotations": {"gaia.dev/placement": "cpu"}},
                                  "spec": {"containers": [{"image": "registry.example/fn:1",
                                           "resources": {"limits": {"cpu": "1"}}}]}}},
            "status": {"observedGeneration": 1, "latestCreatedRevisionName": r.revision,
                       "latestReadyRevisionName": r.revision}
        });
        services.push(Arc::new(
            ManagedService::from_value(v, "nvidia.com/gpu").expect("managed"),
        ));
        pods.extend(cpu_pods(r));
    }
    let nodes = (0..10)
        .map(|i| {
            Arc::new(NodeInfo {
                name: format!("gpu-{i}"),
                gpus_allocatable: 4,
                schedulable: true,
            })
        })
        .collect();
    Snapshot {
        services,
        pods,
        nodes,
    }
}

fn stats(mut v: Vec<Duration>) -> (Duration, Duration, Duration) {
    v.sort();
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

async fn baseline(url: &str, ds: &Dataset, count: usize, at: i64) -> (usize, Duration) {
    let client = prometheus_http_query::Client::try_from(url).expect("client");
    let started = Instant::now();
    let mut queries = 0;
    for (i, r) in ds.revisions.iter().take(count).enumerate() {
        let _ = r;
        // the original sends p95 over two windows and the rate over two windows, per Service,
        // filtered by the revision (here: its queue-proxy target)
        let sel = format!(
            "{{instance=\"10.{}.{}.{}:9091\"}}",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255
        );
        for q in [
            format!("histogram_quantile(0.95, sum by (le) (rate(kn_serving_invocation_duration_seconds_bucket{sel}[1m])))"),
            format!("histogram_quantile(0.95, sum by (le) (rate(kn_serving_invocation_duration_seconds_bucket{sel}[5m])))"),
            format!("sum(rate(kn_serving_invocation_duration_seconds_count{sel}[1m]))"),
            format!("sum(rate(kn_serving_invocation_duration_seconds_count{sel}[5m]))"),
        ] {
            client.query(q).at(at).get().await.expect("baseline query");
            queries += 1;
        }
    }
    (queries, started.elapsed())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else is read from the command line.
    install_crypto_provider();
    let sizes: Vec<usize> = std::env::var("GAIA_BENCH_SIZES")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let (generation, gen) = match std::env::var("GAIA_BENCH_GENERATION").as_deref() {
        Ok("opencensus") => (Generation::OpenCensus, Gen::OpenCensus),
        _ => (Generation::OpenTelemetry, Gen::OpenTelemetry),
    };
    let baseline_count: usize = std::env::var("GAIA_BENCH_BASELINE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let timed = 5;
    println!(
        "generation: {generation:?}; machine: {} CPUs",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "| Services | series | backfill+start | cycle min | cycle median | cycle max | of which Prometheus (median) | decide+act (median) | Prometheus queries/cycle | decisions (last cycle) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut baselines = Vec::new();
    for n in sizes {
        let ds = dataset(n);
        let t = Instant::now();
        let prom = PromServer::start(&ds, &[gen]);
        let load = t.elapsed();
        let snap = snapshot(&ds);
        let config = Config::default();
        let observer = PromObserver::new(
            &prom.url,
            Duration::from_secs(30),
            QuerySet::new(generation, &QueryOverrides::default(), "user-container"),
            config.policy.short_window,
            config.policy.long_window,
        )
        .expect("observer");
        let actuator = Counting::default();
        let mut cycle = Cycle::new(CycleSettings::from_config(&config));
        let t0 = jiff::Timestamp::now();
        let mut durations = Vec::new();
        let mut observing = Vec::new();
        let mut deciding = Vec::new();
        let mut last = None;
        for i in 0..=timed {
            let now = gaia_policy::clock::add(t0, Duration::from_secs(10 * i as u64));
            let started = Instant::now();
            let report = cycle
                .run(&snap, &observer, &actuator, now, Some(ds.end()))
                .await;
            let took = started.elapsed();
            if let Some(e) = &report.prometheus_error {
                panic!("cycle {i} over {n} Services: Prometheus failed: {e}");
            }
            assert_eq!(report.services, n);
            if i > 0 {
                durations.push(took);
                observing.push(report.observe_duration);
                deciding.push(took.saturating_sub(report.observe_duration));
            }
            last = Some(report);
        }
        let report = last.expect("cycles ran");
        let (min, med, max) = stats(durations);
        let (_, obs_med, _) = stats(observing);
        let (_, dec_med, _) = stats(deciding);
        let series = n * (OTEL_SERIES_PER_REVISION);
        println!(
            "| {n} | ~{series} | {:.1} s | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.1} ms | {} | {:?} |",
            load.as_secs_f64(),
            min.as_secs_f64() * 1e3,
            med.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3,
            obs_med.as_secs_f64() * 1e3,
            dec_med.as_secs_f64() * 1e3,
            report.prometheus_queries,
            report.decisions
        );
        if gen == Gen::OpenTelemetry && baseline_count > 0 {
            let count = baseline_count.min(n);
            let (queries, took) = baseline(&prom.url, &ds, count, ds.end()).await;
            baselines.push((n, count, queries, took));
        }
    }
    for (n, count, queries, took) in baselines {
        println!(
            "baseline (original access pattern) in the {n}-Service Prometheus: {queries} queries for {count} Services in {:.2} s ({:.2} ms per query; {:.1} s extrapolated to all {n})",
            took.as_secs_f64(),
            took.as_secs_f64() * 1e3 / queries as f64,
            took.as_secs_f64() * n as f64 / count as f64
        );
    }
}

/// 15 buckets + Inf, sum, count, target_info, two cAdvisor series.
const OTEL_SERIES_PER_REVISION: usize = 21;
