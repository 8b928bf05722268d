//! Integration tests against a real Prometheus (Debian's `prometheus` 2.42, started by the
//! tests on a free loopback port, fed by backfilling realistic Knative and cAdvisor series).
//! They fail, never skip, when Prometheus is not installed.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{close, cpu_pods, steady, Dataset, Gen, Phase, PromServer, RevisionSeries};
use gaia_autoscaler::act::{Actuator, LadderAction};
use gaia_autoscaler::cluster::nodes::{NodeInfo, NodeShape, Taint};
use gaia_autoscaler::cluster::rungs::PodUnits;
use gaia_autoscaler::cluster::service::ManagedService;
use gaia_autoscaler::config::Config;
use gaia_autoscaler::cycle::{Cycle, CycleSettings, RungSnapshot, Snapshot};
use gaia_autoscaler::observe::prometheus::PromObserver;
use gaia_autoscaler::observe::{Observe, PodKey, RevisionKey};
use gaia_autoscaler::Error;
use gaia_contract::queries::{Generation, LabelLayout, QueryOverrides, QuerySet};
use gaia_policy::ladder::{LadderConfig, LadderDecision};
use gaia_policy::Decision;
use serde_json::json;

const STEP: i64 = 15;
const SHORT: i64 = 60;
const LONG: i64 = 300;

fn revisions() -> Vec<RevisionSeries> {
    let mut burst = steady("team-b", "burst-00001", 1, 0.9, vec![]);
    burst.phases = vec![
        Phase {
            from: 0,
            mix: vec![(120.0, 30)],
        },
        // the last minute: five times the load, slower
        Phase {
            from: 36,
            mix: vec![(550.0, 140), (2600.0, 10)],
        },
    ];
    vec![
        // compute-bound on CPU, slow: 2 pods x 2 req/s
        steady(
            "team-a",
            "matmul-00001",
            2,
            0.95,
            vec![(1500.0, 27), (900.0, 3)],
        ),
        // the same function on GPU: fast
        steady(
            "team-a",
            "matmul-00002",
            1,
            0.4,
            vec![(55.0, 290), (140.0, 10)],
        ),
        // slow because it sleeps: 2 s per request, no CPU
        steady("team-b", "sleepy-00001", 2, 0.01, vec![(2050.0, 40)]),
        burst,
        // deployed, never called
        steady("team-c", "quiet-00001", 1, 0.0, vec![]),
    ]
}

fn dataset() -> Dataset {
    let now = jiff::Timestamp::now().as_second();
    Dataset {
        start: (now / STEP) * STEP - 3600,
        step: STEP,
        steps: 40,
        revisions: revisions(),
    }
}

fn observer(url: &str, generation: Generation) -> PromObserver {
    observer_for(url, generation, LabelLayout::TargetInfo)
}

fn observer_for(url: &str, generation: Generation, layout: LabelLayout) -> PromObserver {
    PromObserver::new(
        url,
        Duration::from_secs(10),
        QuerySet::with_layout(
            generation,
            layout,
            &QueryOverrides::default(),
            "user-container",
        ),
        Duration::from_secs(SHORT as u64),
        Duration::from_secs(LONG as u64),
    )
    .expect("observer")
}

/// Every metric generation and label layout Knative has exported, fed as its own series into a
/// real Prometheus, gives the same per-revision figures. (The promoted layout has a Prometheus
/// of its own: its series share the metric name of the target_info layout.)
#[tokio::test]
async fn batched_queries_return_per_revision_values_for_every_generation_and_layout() {
    let ds = dataset();
    let scraped = PromServer::start(
        &ds,
        &[Gen::OpenCensus, Gen::KnQueueProxy, Gen::OpenTelemetry],
    );
    let pushed = PromServer::start(&ds, &[Gen::OtelPromoted]);
    for (prom, generation, layout, gen) in [
        (
            &scraped,
            Generation::OpenCensus,
            LabelLayout::TargetInfo,
            Gen::OpenCensus,
        ),
        (
            &scraped,
            Generation::KnQueueProxy,
            LabelLayout::TargetInfo,
            Gen::KnQueueProxy,
        ),
        (
            &scraped,
            Generation::OpenTelemetry,
            LabelLayout::TargetInfo,
            Gen::OpenTelemetry,
        ),
        (
            &pushed,
            Generation::OpenTelemetry,
            LabelLayout::Promoted,
            Gen::OtelPromoted,
        ),
    ] {
        let what = format!("{generation:?}/{layout:?}");
        let raw = observer_for(&prom.url, generation, layout)
            .observe(Some(ds.end()))
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(raw.queries, 7, "one query per metric per cycle");
        let with_traffic = ds.revisions.len() - 1;
        assert_eq!(
            raw.p95_short_ms.len(),
            with_traffic,
            "{what}: {:?}",
            raw.p95_short_ms
        );
        assert_eq!(raw.rps_short.len(), ds.revisions.len(), "{what}");
        for r in &ds.revisions {
            let key = RevisionKey::new(&r.namespace, &r.revision);
            for (window, p95s, rates) in [
                (SHORT, &raw.p95_short_ms, &raw.rps_short),
                (LONG, &raw.p95_long_ms, &raw.rps_long),
            ] {
                let want = ds.expected(r, window, gen);
                let got = p95s.get(&key).copied();
                match (got, want.p95_ms) {
                    (Some(g), Some(w)) => assert!(
                        close(g, w),
                        "{what} {key:?} p95[{window}s]: got {g}, want {w}"
                    ),
                    (None, None) => {}
                    (g, w) => {
                        panic!("{what} {key:?} p95[{window}s]: got {g:?}, want {w:?}")
                    }
                }
                let rate = rates.get(&key).copied().unwrap_or(f64::NAN);
                assert!(
                    close(rate, want.rps),
                    "{what} {key:?} rate[{window}s]: got {rate}, want {}",
                    want.rps
                );
            }
            let want = ds.expected(r, SHORT, gen);
            match (raw.p50_short_ms.get(&key), want.p50_ms) {
                (Some(g), Some(w)) => {
                    assert!(close(*g, w), "{what} {key:?} p50: got {g}, want {w}")
                }
                (None, None) => {}
                (g, w) => panic!("{what} {key:?} p50: got {g:?}, want {w:?}"),
            }
            match (raw.mean_latency_ms.get(&key), want.mean_ms) {
                (Some(g), Some(w)) => {
                    assert!(close(*g, w), "{what} {key:?} mean: got {g}, want {w}")
                }
                (None, None) => {}
                (g, w) => panic!("{what} {key:?} mean: got {g:?}, want {w:?}"),
            }
            for pod in &r.pods {
                let got = raw
                    .cpu_cores
                    .get(&PodKey::new(&r.namespace, &pod.name))
                    .copied();
                assert!(
                    got.is_some_and(|g| close(g, pod.cpu_cores)),
                    "{key:?} pod {}: cpu {got:?}, want {} (user container only)",
                    pod.name,
                    pod.cpu_cores
                );
            }
        }
        let pods: usize = ds.revisions.iter().map(|r| r.pods.len()).sum();
        assert_eq!(raw.cpu_cores.len(), pods);
    }

    // Spot-check the expectations themselves against hand arithmetic, so the test does not
    // only compare two implementations of the same mistake.
    let matmul = &ds.revisions[0];
    let e = ds.expected(matmul, SHORT, Gen::OpenCensus);
    // 2 pods x 30 requests per 15 s = 4 req/s; 90 % in (1000, 2000] ms, 10 % in (800, 900]:
    // rank 0.95 x 240 = 228 of which 24 are below 1000 ms -> 1000 + 1000 x (228-24)/216
    assert!(close(e.rps, 4.0));
    assert!(close(e.p95_ms.unwrap(), 1000.0 + 1000.0 * 204.0 / 216.0));
    let burst = &ds.revisions[3];
    let short = ds.expected(burst, SHORT, Gen::OpenCensus);
    let long = ds.expected(burst, LONG, Gen::OpenCensus);
    assert!(close(short.rps, 10.0) && close(long.rps, (16.0 * 30.0 + 4.0 * 150.0) / 300.0));
    assert!(
        short.p95_ms.unwrap() > long.p95_ms.unwrap(),
        "{short:?} {long:?}"
    );
}

/// `prometheus.labels: auto` and `prometheus.generation: auto` read the series probe: which
/// generations' request series exist, and whether the OpenTelemetry ones carry the revision
/// themselves (pushed with promoted attributes) or on `target_info` (scraped). OpenCensus alone
/// has no layout to tell.
#[tokio::test]
async fn the_series_probe_finds_the_generations_and_the_label_layout() {
    use gaia_preflight::gather::{series_found, SeriesFound};
    // samples up to now: the probe looks at the last 10 minutes
    let now = jiff::Timestamp::now().as_second();
    let ds = Dataset {
        start: (now / STEP) * STEP - 40 * STEP,
        ..dataset()
    };
    gaia_autoscaler::observe::prometheus::install_crypto_provider();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    for (gens, generations, promoted_labels) in [
        (
            &[Gen::OpenTelemetry][..],
            vec![Generation::OpenTelemetry],
            Some(false),
        ),
        (
            &[Gen::OtelPromoted][..],
            vec![Generation::OpenTelemetry],
            Some(true),
        ),
        (&[Gen::OpenCensus][..], vec![Generation::OpenCensus], None),
        (
            &[Gen::OpenCensus, Gen::KnQueueProxy][..],
            vec![Generation::OpenCensus, Generation::KnQueueProxy],
            Some(false),
        ),
    ] {
        let prom = PromServer::start(&ds, gens);
        let found = series_found(&http, &prom.url)
            .await
            .unwrap_or_else(|e| panic!("{gens:?}: {e}"));
        assert_eq!(
            found,
            SeriesFound {
                generations,
                promoted_labels
            },
            "{gens:?}"
        );
    }
    let empty = PromServer::start_empty();
    let none = series_found(&http, &empty.url).await.expect("empty");
    assert_eq!((none.generations.len(), none.promoted_labels), (0, None));
}

#[tokio::test]
async fn an_unreachable_or_failing_prometheus_is_an_error_never_empty_data() {
    let mut prom = PromServer::start_empty();
    // a bad template: Prometheus answers 400
    let bad = PromObserver::new(
        &prom.url,
        Duration::from_secs(5),
        QuerySet::new(
            Generation::OpenCensus,
            &QueryOverrides {
                latency_quantile: Some("histogram_quantile({quantile}, rate(x[{window}]".into()),
                ..QueryOverrides::default()
            },
            "user-container",
        ),
        Duration::from_secs(60),
        Duration::from_secs(300),
    )
    .unwrap();
    match bad.observe(None).await {
        // p50 and p95 both use the broken quantile template and run concurrently: either may
        // be the one reported
        Err(Error::Prometheus { query, .. }) => assert!(
            query.starts_with("p95") || query.starts_with("p50"),
            "{query}"
        ),
        other => panic!("expected a Prometheus error, got {other:?}"),
    }
    // healthy but empty: empty maps, not an error
    let raw = observer(&prom.url, Generation::OpenTelemetry)
        .observe(None)
        .await
        .unwrap();
    assert!(raw.p95_short_ms.is_empty() && raw.cpu_cores.is_empty());
    // down
    prom.stop();
    let err = observer(&prom.url, Generation::OpenTelemetry)
        .observe(None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Prometheus { .. }), "{err}");
}

include!("common/recording.rs");

fn ksvc(ns: &str, name: &str, revision: &str, placement: &str) -> Arc<ManagedService> {
    let v = json!({
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "generation": 1, "resourceVersion": "1",
                     "annotations": {"gaia.dev/mode": "cpu_preferred"}},
        "spec": {"template": {"metadata": {"annotations": {"gaia.dev/placement": placement}},
                              "spec": {"containers": [{"image": "x"}]}}},
        "status": {"observedGeneration": 1, "latestCreatedRevisionName": revision,
                   "latestReadyRevisionName": revision,
                   "conditions": [{"type": "Ready", "status": "True"}]}
    });
    Arc::new(ManagedService::from_value(v, "nvidia.com/gpu").expect("managed"))
}

#[tokio::test]
async fn a_cycle_over_real_prometheus_promotes_the_busy_function_not_the_sleepy_one() {
    let ds = dataset();
    let prom = PromServer::start(&ds, &[Gen::OpenTelemetry]);
    let pods = ds.revisions.iter().flat_map(cpu_pods).collect();
    let snap = Snapshot {
        services: vec![
            ksvc("team-a", "matmul", "matmul-00001", "cpu"),
            ksvc("team-b", "sleepy", "sleepy-00001", "cpu"),
            ksvc("team-b", "burst", "burst-00001", "cpu"),
            ksvc("team-c", "quiet", "quiet-00001", "cpu"),
        ],
        pods,
        nodes: vec![Arc::new(NodeInfo {
            name: "gpu-1".into(),
            gpus_allocatable: 1,
            schedulable: true,
        })],
    };
    let observer = observer(&prom.url, Generation::OpenTelemetry);
    let actuator = Recording::default();
    let mut cycle = Cycle::new(CycleSettings::from_config(&Config::default()));
    let t0 = jiff::Timestamp::now();
    let mut reports = Vec::new();
    for i in 0..3 {
        let now = gaia_policy::clock::add(t0, Duration::from_secs(10 * i));
        reports.push(
            cycle
                .run(&snap, &observer, &actuator, now, Some(ds.end()))
                .await,
        );
    }
    for r in &reports {
        assert!(
            r.prometheus_queries <= 10,
            "bounded, whatever the number of Services: {r:?}"
        );
        assert!(r.prometheus_error.is_none(), "{r:?}");
        assert_eq!(r.holds.get("not_compute_bound"), Some(&1), "sleepy: {r:?}");
    }
    assert_eq!(
        actuator.0.lock().unwrap().clone(),
        vec![
            // severe (p95 ~1.9 s vs SLO 500 ms) and CPU-bound: promoted on the second cycle
            ("matmul".to_string(), "promote"),
            // sustained three cycles, but matmul took the only GPU
            ("burst".to_string(), "no_gpu"),
        ]
    );
}

/// Records ladder actions: (name, kind, rung moved to, note).
#[derive(Default)]
struct LadderRecording(std::sync::Mutex<Vec<LadderActed>>);

/// (Service, decision kind or warning reason, rung moved to, note).
type LadderActed = (String, &'static str, Option<usize>, String);

impl Actuator for LadderRecording {
    async fn act(&self, _: &ManagedService, _: &Decision) -> Result<(), Error> {
        panic!("a ladder cycle decided with decide")
    }
    async fn act_ladder(&self, svc: &ManagedService, a: &LadderAction) -> Result<(), Error> {
        let to = match &a.decision {
            LadderDecision::Move(m) => Some(m.to),
            _ => None,
        };
        self.0
            .lock()
            .unwrap()
            .push((svc.name.clone(), a.decision.kind(), to, a.note.clone()));
        Ok(())
    }
    async fn warn(
        &self,
        svc: &ManagedService,
        reason: &'static str,
        n: String,
    ) -> Result<(), Error> {
        self.0
            .lock()
            .unwrap()
            .push((svc.name.clone(), reason, None, n));
        Ok(())
    }
}

fn sliced(name: &str, taints: &[(&str, &str)]) -> Arc<NodeShape> {
    Arc::new(NodeShape {
        name: name.into(),
        labels: [("nvidia.com/gpu.present".to_string(), "true".to_string())].into(),
        taints: taints
            .iter()
            .map(|(k, e)| Taint {
                key: (*k).into(),
                value: String::new(),
                effect: (*e).into(),
            })
            .collect(),
        allocatable: [("nvidia.com/gpu.shared".to_string(), 7)].into(),
        schedulable: true,
    })
}

#[tokio::test]
async fn a_ladder_cycle_over_real_prometheus_promotes_one_rung_onto_the_one_free_slice() {
    let ds = dataset();
    let prom = PromServer::start(&ds, &[Gen::OpenTelemetry]);
    let pods = ds.revisions.iter().flat_map(cpu_pods).collect();
    let snap = Snapshot {
        services: vec![
            ksvc("team-a", "matmul", "matmul-00001", "cpu"),
            ksvc("team-b", "sleepy", "sleepy-00001", "cpu"),
            ksvc("team-b", "burst", "burst-00001", "cpu"),
            ksvc("team-c", "quiet", "quiet-00001", "cpu"),
        ],
        pods,
        nodes: vec![],
    };
    // Two time-sliced nodes of 7 slices: on the first, 6 are taken; the second carries a
    // taint the shared rung does not tolerate, so its 7 free slices are none of ours. No node
    // has a whole GPU.
    let rungs = RungSnapshot {
        nodes: vec![
            sliced("sliced-1", &[("nvidia.com/gpu", "NoSchedule")]),
            sliced(
                "sliced-2",
                &[("nvidia.com/gpu", "NoSchedule"), ("team", "NoSchedule")],
            ),
        ],
        pods: (0..6)
            .map(|_| {
                Arc::new(PodUnits {
                    node: Some("sliced-1".into()),
                    units: vec![0, 1, 0],
                })
            })
            .collect(),
    };
    let config = Config {
        ladder: Some(LadderConfig::cpu_shared_gpu(143_771.0, 7)),
        ..Config::default()
    };
    config.validate().expect("valid");
    let observer = observer(&prom.url, Generation::OpenTelemetry);
    let actuator = LadderRecording::default();
    let mut cycle = Cycle::new(CycleSettings::from_config(&config));
    let t0 = jiff::Timestamp::now();
    for i in 0..3 {
        let now = gaia_policy::clock::add(t0, Duration::from_secs(10 * i));
        let r = cycle
            .run_ladder(&snap, &rungs, &observer, &actuator, now, Some(ds.end()))
            .await;
        assert!(
            r.prometheus_queries <= 10,
            "bounded, whatever the number of Services: {r:?}"
        );
        assert!(r.prometheus_error.is_none(), "{r:?}");
        assert_eq!(r.holds.get("not_compute_bound"), Some(&1), "sleepy: {r:?}");
    }
    let acted = actuator.0.lock().unwrap().clone();
    let kinds: Vec<(&str, &str, Option<usize>)> = acted
        .iter()
        .map(|(n, k, to, _)| (n.as_str(), *k, *to))
        .collect();
    assert_eq!(
        kinds,
        vec![
            // severe and CPU-bound: one rung up, onto the last free slice
            ("matmul", "promote", Some(1)),
            // sustained, but the slice is taken and no rung above has room
            ("burst", "no_capacity", None),
        ],
        "{acted:?}"
    );
    assert!(acted[0].3.contains("→ gpu-shared"), "{}", acted[0].3);
    for (_, _, _, note) in &acted {
        assert!(note.contains("cost per 1,000 requests: cpu $"), "{note}");
    }
}
