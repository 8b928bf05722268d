//! Benchmark: one decision cycle over N Services whose series are in a real Prometheus, in both
//! query shapes, in the same run.
//!
//! `cargo bench -p gaia-autoscaler --bench cycle` (sizes from `GAIA_BENCH_SIZES`, default
//! `1000,10000`; metric generation from `GAIA_BENCH_GENERATION`, `opentelemetry` (default) or
//! `opencensus`). For each size it backfills a fresh Prometheus with one revision per Service
//! (queue-proxy histogram, `target_info`, cAdvisor CPU of the user container and the sidecar,
//! and the series the recording rules of option (b) would hold), then, alternating the shapes
//! cycle by cycle so that the machine's load falls on both alike, runs a warm-up and timed
//! cycles of the flat shape (seven queries, every quantile of every revision) and of the tiered
//! one (the default), checks that both decide the same, and prints per shape the cycle time
//! split into Prometheus and decide+act, the queries and the Prometheus CPU seconds per cycle
//! (its `process_cpu_seconds_total`). Then the cost of each flat query alone (what asking the
//! long window less often, option (c), would save), and of option (b), recording rules: what
//! Prometheus spends evaluating the rules once (every evaluation interval) and what reading the
//! recorded series costs a cycle. For comparison it also times the original prototype's access
//! pattern (4 queries per Service, one HTTP round trip each) on the first
//! `GAIA_BENCH_BASELINE` Services (default 500, 0 for none). Other knobs: `GAIA_BENCH_CYCLES`
//! (timed cycles, default 5), `GAIA_BENCH_SHAPES` (`flat` or `tiered` alone),
//! `GAIA_BENCH_PER_QUERY=0` (no per-query and recording-rule timings).
//!
//! `GAIA_BENCH_THANOS=<thanos binary>` runs it all on the sharded backend of issue 17 instead
//! (sharded/mod.rs): the revisions split over two Prometheus shards, a Thanos Sidecar beside
//! each, Thanos Query over both; "Prometheus CPU" is then the sum over the five processes.
//! `GAIA_BENCH_STEP` sets the seconds between samples (default 60, 30 through Thanos: see
//! `main`).

#[path = "../tests/common/mod.rs"]
mod common;
mod sharded;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{cpu_pods, steady, Dataset, Gen, PromServer};
use gaia_autoscaler::act::Actuator;
use gaia_autoscaler::cluster::nodes::NodeInfo;
use gaia_autoscaler::cluster::service::ManagedService;
use gaia_autoscaler::config::Config;
use gaia_autoscaler::cycle::{Cycle, CycleReport, CycleSettings, Snapshot};
use gaia_autoscaler::observe::prometheus::{install_crypto_provider, PromObserver};
use gaia_autoscaler::Error;
use gaia_contract::queries::{Generation, QueryOverrides, QuerySet, QueryShape};
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

/// `n` revisions sampled every `step` seconds for six minutes, from an hour ago.
fn dataset(n: usize, step: i64) -> Dataset {
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
        steps: (360 / step) as usize,
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
                       "latestReadyRevisionName": r.revision,
                       "conditions": [{"type": "Ready", "status": "True"}]}
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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The backend's own CPU seconds so far (`process_cpu_seconds_total` on the /metrics of each
/// of its processes: one Prometheus, or the shards, Sidecars and Query).
async fn prom_cpu(http: &reqwest::Client, urls: &[String]) -> f64 {
    let mut total = 0.0;
    for url in urls {
        let text = http
            .get(format!("{url}/metrics"))
            .send()
            .await
            .expect("backend /metrics")
            .text()
            .await
            .expect("backend /metrics body");
        total += text
            .lines()
            .find_map(|l| l.strip_prefix("process_cpu_seconds_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .expect("process_cpu_seconds_total");
    }
    total
}

/// Where the cycles' queries go: one Prometheus, or Thanos Query over two shards.
enum Backend {
    One(PromServer),
    Thanos(sharded::Thanos),
}

impl Backend {
    fn url(&self) -> &str {
        match self {
            Backend::One(p) => &p.url,
            Backend::Thanos(t) => &t.url,
        }
    }

    fn cpu_urls(&self) -> Vec<String> {
        match self {
            Backend::One(p) => vec![p.url.clone()],
            Backend::Thanos(t) => t.cpu_urls.clone(),
        }
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

async fn baseline(url: &str, ds: &Dataset, count: usize, at: i64) -> (usize, Duration) {
    let client = prometheus_http_query::Client::try_from(url).expect("client");
    let started = Instant::now();
    let mut queries = 0;
    for (i, _) in ds.revisions.iter().take(count).enumerate() {
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

/// One shape's timed cycles.
#[derive(Default)]
struct Runs {
    total: Vec<Duration>,
    observing: Vec<Duration>,
    deciding: Vec<Duration>,
    cpu: Vec<f64>,
    queries: Vec<u32>,
    last: Option<CycleReport>,
}

/// Times `queries` (name, PromQL) one after the other: (name, wall, Prometheus CPU seconds).
async fn each_query(
    http: &reqwest::Client,
    url: &str,
    cpu_urls: &[String],
    queries: Vec<(String, String)>,
    at: i64,
) -> Vec<(String, Duration, f64)> {
    let client = prometheus_http_query::Client::try_from(url).expect("client");
    let mut out = Vec::new();
    for (name, q) in queries {
        let cpu0 = prom_cpu(http, cpu_urls).await;
        let t = Instant::now();
        client
            .query(q)
            .at(at)
            .timeout(60_000)
            .post()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let took = t.elapsed();
        out.push((name, took, prom_cpu(http, cpu_urls).await - cpu0));
    }
    out
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else is read from the command line.
    install_crypto_provider();
    // `RUST_LOG=gaia_autoscaler=debug` shows each query's time.
    if std::env::var_os("RUST_LOG").is_some() {
        gaia_contract::logging::init_logging(gaia_contract::logging::LogFormat::Text);
    }
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
    let timed: usize = std::env::var("GAIA_BENCH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
        .max(1);
    // Which shapes to time: both (default), or one (`flat`, `tiered`) for the largest sizes.
    let only: Option<QueryShape> = match std::env::var("GAIA_BENCH_SHAPES").as_deref() {
        Ok("flat") => Some(QueryShape::Flat),
        Ok("tiered") => Some(QueryShape::Tiered),
        _ => None,
    };
    let per_query = std::env::var("GAIA_BENCH_PER_QUERY").as_deref() != Ok("0");
    let thanos = std::env::var_os("GAIA_BENCH_THANOS").map(std::path::PathBuf::from);
    // Seconds between samples. Thanos Query evaluates PromQL as Prometheus 3 does, whose range
    // selectors are left-open: a 1 m window over samples a minute apart holds one sample and
    // `rate` has nothing (Prometheus 2 counts both ends), hence 30 s through Thanos.
    let step: i64 = std::env::var("GAIA_BENCH_STEP")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|s| (1..=60).contains(s) && 360 % s == 0)
        .unwrap_or(if thanos.is_some() { 30 } else { 60 });
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client");
    println!(
        "generation: {generation:?}; backend: {}; samples every {step} s; machine: {} CPUs; load average at start: {}",
        if thanos.is_some() {
            "Thanos Query over two Prometheus shards (Sidecars)"
        } else {
            "one Prometheus"
        },
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        load_average()
    );
    let mut tables = Vec::new();
    let mut extras = Vec::new();
    for n in sizes {
        let ds = dataset(n, step);
        let t = Instant::now();
        let gens: Vec<Gen> = if gen == Gen::OpenTelemetry && per_query {
            vec![gen, Gen::Recorded]
        } else {
            vec![gen]
        };
        let prom = match &thanos {
            Some(bin) => Backend::Thanos(sharded::Thanos::start(bin, &ds, &gens, &http).await),
            None => Backend::One(PromServer::start(&ds, &gens)),
        };
        let (url, cpu_urls) = (prom.url().to_string(), prom.cpu_urls());
        let load = t.elapsed();
        let snap = snapshot(&ds);
        let config = Config::default();
        let queries = QuerySet::new(generation, &QueryOverrides::default(), "user-container");
        let observer = |shape| {
            PromObserver::new(
                &url,
                Duration::from_secs(60),
                queries.clone(),
                config.policy.short_window,
                config.policy.long_window,
            )
            .expect("observer")
            .with_shape(shape)
        };
        let shapes = [QueryShape::Flat, QueryShape::Tiered];
        let observers = shapes.map(observer);
        let mut cycles = shapes.map(|_| Cycle::new(CycleSettings::from_config(&config)));
        let mut runs: [Runs; 2] = Default::default();
        let actuator = Counting::default();
        let t0 = jiff::Timestamp::now();
        for i in 0..=timed {
            let now = gaia_policy::clock::add(t0, Duration::from_secs(10 * i as u64));
            let mut reports = Vec::new();
            for s in 0..2 {
                if only.is_some_and(|o| o != shapes[s]) {
                    continue;
                }
                let cpu0 = prom_cpu(&http, &cpu_urls).await;
                let started = Instant::now();
                let report = cycles[s]
                    .run(&snap, &observers[s], &actuator, now, Some(ds.end()))
                    .await;
                let took = started.elapsed();
                let cpu = prom_cpu(&http, &cpu_urls).await - cpu0;
                if let Some(e) = &report.prometheus_error {
                    panic!(
                        "cycle {i} over {n} Services ({:?}): Prometheus failed: {e}",
                        shapes[s]
                    );
                }
                assert_eq!(report.services, n);
                let r = &mut runs[s];
                if i > 0 {
                    r.total.push(took);
                    r.observing.push(report.observe_duration);
                    r.deciding
                        .push(took.saturating_sub(report.observe_duration));
                    r.cpu.push(cpu);
                    r.queries.push(report.prometheus_queries);
                }
                reports.push(report.clone());
                r.last = Some(report);
            }
            if let [a, b] = &reports[..] {
                assert_eq!(
                    (&a.decisions, &a.holds),
                    (&b.decisions, &b.holds),
                    "cycle {i} over {n} Services: the shapes decided differently"
                );
            }
        }
        for (s, r) in runs.into_iter().enumerate() {
            if r.total.is_empty() {
                continue;
            }
            let (min, med, max) = stats(r.total);
            let (_, obs, _) = stats(r.observing);
            let (_, dec, _) = stats(r.deciding);
            let last = r.last.expect("cycles ran");
            let qs: BTreeMap<u32, usize> = r.queries.iter().fold(BTreeMap::new(), |mut m, q| {
                *m.entry(*q).or_default() += 1;
                m
            });
            tables.push(format!(
                "| {n} | {:?} | ~{} | {:.1} s | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.1} ms | {} | {:.2} s | {:?} {:?} |",
                shapes[s],
                n * SERIES_PER_REVISION,
                load.as_secs_f64(),
                min.as_secs_f64() * 1e3,
                med.as_secs_f64() * 1e3,
                max.as_secs_f64() * 1e3,
                obs.as_secs_f64() * 1e3,
                dec.as_secs_f64() * 1e3,
                qs.keys().map(|q| q.to_string()).collect::<Vec<_>>().join("/"),
                median(r.cpu),
                last.decisions,
                last.holds,
            ));
        }

        // Each flat query alone, and option (b): the rules' evaluation and the reads.
        let short = config.policy.short_window;
        let flat: Vec<(String, String)> = observers[0]
            .rendered()
            .into_iter()
            .map(|(n, q)| (n.to_string(), q))
            .collect();
        let mut lines = Vec::new();
        let flat = if per_query { flat } else { Vec::new() };
        for (name, took, cpu) in each_query(&http, &url, &cpu_urls, flat, ds.end()).await {
            lines.push(format!(
                "{n} Services, flat query {name}: {:.0} ms, {cpu:.2} CPU s",
                took.as_secs_f64() * 1e3
            ));
        }
        if gen == Gen::OpenTelemetry && per_query {
            let rules: Vec<(String, String)> = RULES
                .iter()
                .map(|(n, e)| {
                    (
                        n.to_string(),
                        QuerySet::render(
                            e,
                            if n.ends_with("5m") {
                                config.policy.long_window
                            } else {
                                short
                            },
                        ),
                    )
                })
                .collect();
            let reads: Vec<(String, String)> = READS
                .iter()
                .map(|(n, e)| (n.to_string(), e.to_string()))
                .collect();
            let (mut rule_ms, mut rule_cpu, mut read_ms, mut read_cpu) = (0.0, 0.0, 0.0, 0.0);
            for (_, took, cpu) in each_query(&http, &url, &cpu_urls, rules, ds.end()).await {
                rule_ms += took.as_secs_f64() * 1e3;
                rule_cpu += cpu;
            }
            for (_, took, cpu) in each_query(&http, &url, &cpu_urls, reads, ds.end()).await {
                read_ms += took.as_secs_f64() * 1e3;
                read_cpu += cpu;
            }
            lines.push(format!(
                "{n} Services, option (b) recording rules: evaluating the {} rules once (every evaluation interval) {rule_ms:.0} ms, {rule_cpu:.2} CPU s; a cycle reading the recorded series ({} queries, one after the other) {read_ms:.0} ms, {read_cpu:.2} CPU s",
                RULES.len(),
                READS.len()
            ));
        }
        if gen == Gen::OpenTelemetry && baseline_count > 0 {
            let count = baseline_count.min(n);
            let (queries, took) = baseline(&url, &ds, count, ds.end()).await;
            lines.push(format!(
                "baseline (original access pattern) in the {n}-Service Prometheus: {queries} queries for {count} Services in {:.2} s ({:.2} ms per query; {:.1} s extrapolated to all {n})",
                took.as_secs_f64(),
                took.as_secs_f64() * 1e3 / queries as f64,
                took.as_secs_f64() * n as f64 / count as f64
            ));
        }
        extras.extend(lines);
    }
    println!(
        "| Services | shape | series | backfill+start | cycle min | cycle median | cycle max | of which Prometheus (median) | decide+act (median) | queries/cycle | Prometheus CPU s/cycle (median) | decisions, holds (last cycle) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for t in tables {
        println!("{t}");
    }
    for l in extras {
        println!("{l}");
    }
    println!("load average at the end: {}", load_average());
}

/// 15 buckets + Inf, sum, count, target_info, two cAdvisor series (and the recorded series of
/// option (b), not counted).
const SERIES_PER_REVISION: usize = 21;

/// Option (b)'s recording rules: the per-revision figures the flat queries compute.
const RULES: &[(&str, &str)] = &[
    ("rule buckets 1m", "sum by (k8s_namespace_name, kn_revision_name, le) (sum by (job, instance, le) (rate(kn_serving_invocation_duration_seconds_bucket[{window}])) * on (job, instance) group_left (k8s_namespace_name, kn_revision_name) target_info)"),
    ("rule buckets 5m", "sum by (k8s_namespace_name, kn_revision_name, le) (sum by (job, instance, le) (rate(kn_serving_invocation_duration_seconds_bucket[{window}])) * on (job, instance) group_left (k8s_namespace_name, kn_revision_name) target_info)"),
    ("rule count 1m", "sum by (k8s_namespace_name, kn_revision_name) (sum by (job, instance) (rate(kn_serving_invocation_duration_seconds_count[{window}])) * on (job, instance) group_left (k8s_namespace_name, kn_revision_name) target_info)"),
    ("rule count 5m", "sum by (k8s_namespace_name, kn_revision_name) (sum by (job, instance) (rate(kn_serving_invocation_duration_seconds_count[{window}])) * on (job, instance) group_left (k8s_namespace_name, kn_revision_name) target_info)"),
    ("rule sum 1m", "sum by (k8s_namespace_name, kn_revision_name) (sum by (job, instance) (rate(kn_serving_invocation_duration_seconds_sum[{window}])) * on (job, instance) group_left (k8s_namespace_name, kn_revision_name) target_info)"),
];

/// A cycle's queries over the recorded series (CPU is read raw, as in both shapes).
const READS: &[(&str, &str)] = &[
    ("p95 1m", "histogram_quantile(0.95, gaia:kn_serving_invocation_duration_seconds_bucket:rate1m)"),
    ("p95 5m", "histogram_quantile(0.95, gaia:kn_serving_invocation_duration_seconds_bucket:rate5m)"),
    ("p50 1m", "histogram_quantile(0.5, gaia:kn_serving_invocation_duration_seconds_bucket:rate1m)"),
    ("rps 1m", "gaia:kn_serving_invocation_duration_seconds_count:rate1m"),
    ("rps 5m", "gaia:kn_serving_invocation_duration_seconds_count:rate5m"),
    ("sum 1m", "gaia:kn_serving_invocation_duration_seconds_sum:rate1m"),
    ("cpu 1m", "sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{container=\"user-container\"}[1m]))"),
];
