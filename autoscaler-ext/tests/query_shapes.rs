//! The tiered query shape decides exactly as the flat one, over a real Prometheus (Debian's
//! `prometheus` 2.42, backfilled): the same cycle inputs give, Service by Service, the same
//! outcome of `gaia_policy::decide` (decision, note, streak) with both shapes, for every metric
//! generation and label layout, with every rule's situation in the mix (within the objective by
//! far and just, just above it, slow and CPU-bound, slow and waiting, few slow requests, beyond
//! the buckets' ceiling, idle, on GPU, pinned, mid-rollout, other objectives). And whole cycles
//! give the same reports and acts. They fail, never skip, when Prometheus is not installed.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{cpu_pods, steady, Dataset, Gen, Phase, PromServer, RevisionSeries};
use gaia_autoscaler::act::Actuator;
use gaia_autoscaler::cluster::nodes::NodeInfo;
use gaia_autoscaler::cluster::service::ManagedService;
use gaia_autoscaler::config::Config;
use gaia_autoscaler::cycle::{Cycle, CycleSettings, Snapshot};
use gaia_autoscaler::observe::demand::Demand;
use gaia_autoscaler::observe::prometheus::PromObserver;
use gaia_autoscaler::observe::{revision_stats, Observe, RawObservations, RevisionKey};
use gaia_autoscaler::Error;
use gaia_contract::queries::{Generation, LabelLayout, QueryOverrides, QuerySet, QueryShape};
use gaia_contract::Observed;
use gaia_policy::{decide, Decision, GpuAvailability, PolicyConfig, ServiceState};
use serde_json::json;

const STEP: i64 = 15;

/// A situation: its name, the CPU cores its pods use, and (latency ms, requests per step).
type Mix = (&'static str, f64, Vec<(f64, u64)>);

/// One mix per situation.
fn mixes() -> Vec<Mix> {
    vec![
        ("fast", 0.2, vec![(40.0, 300), (180.0, 20)]),
        ("just-within", 0.5, vec![(480.0, 60), (40.0, 10)]),
        ("edge", 0.9, vec![(520.0, 60), (40.0, 3)]),
        ("tail", 0.9, vec![(40.0, 90), (900.0, 10)]),
        ("slow-busy", 0.95, vec![(1500.0, 27), (900.0, 3)]),
        ("slow-waiting", 0.01, vec![(2050.0, 40)]),
        ("few-slow", 0.95, vec![(4000.0, 1)]),
        ("few-tail", 0.95, vec![(40.0, 3), (900.0, 1)]),
        ("beyond-ceiling", 0.95, vec![(15000.0, 2), (12000.0, 3)]),
        ("idle", 0.0, vec![]),
    ]
}

fn world() -> (Vec<RevisionSeries>, Vec<(String, String, String)>) {
    let mut revisions = Vec::new();
    // (name, slo annotation or "", placement or "pinned"/"rollout")
    let mut services = Vec::new();
    let slos = ["", "100ms", "250ms", "500ms", "1s", "2s", "9500ms"];
    let placements = ["cpu", "cpu", "gpu", "pinned", "rollout"];
    let mut i = 0;
    for (what, cores, mix) in mixes() {
        for slo in slos {
            for placement in placements {
                let name = format!("{what}-{i}");
                let mut r = steady(
                    &format!("team-{}", i % 3),
                    &format!("{name}-00001"),
                    1 + i % 2,
                    cores,
                    mix.clone(),
                );
                if i % 4 == 0 {
                    // quiet for the first minutes: the long window differs from the short
                    r.phases = vec![
                        Phase {
                            from: 0,
                            mix: vec![],
                        },
                        Phase {
                            from: 32,
                            mix: mix.clone(),
                        },
                    ];
                }
                revisions.push(r);
                services.push((name, slo.to_string(), placement.to_string()));
                i += 1;
            }
        }
    }
    (revisions, services)
}

fn ksvc(r: &RevisionSeries, slo: &str, placement: &str) -> Arc<ManagedService> {
    let mut annotations = json!({"gaia.dev/mode": "cpu_preferred"});
    if placement == "pinned" {
        annotations["gaia.dev/mode"] = json!("gpu");
    }
    if !slo.is_empty() {
        annotations["gaia.dev/latency-slo"] = json!(slo);
    }
    if placement == "gpu" {
        // promoted ten minutes ago from a remembered CPU p95
        annotations["gaia.dev/observed"] = json!(format!(
            r#"{{"cpu":{{"p95Ms":1900,"rps":2,"at":"2026-12-01T11:50:00Z"}},"lastMove":{{"from":"cpu","to":"gpu","at":"{}","reason":"x","kind":"promote"}}}}"#,
            jiff::Timestamp::now() - jiff::SignedDuration::from_mins(10)
        ));
    }
    let ready = if placement == "rollout" {
        "none-00000"
    } else {
        &r.revision
    };
    let on = if placement == "gpu" { "gpu" } else { "cpu" };
    let v = json!({
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": r.service, "namespace": r.namespace, "generation": 1,
                     "resourceVersion": "1", "annotations": annotations},
        "spec": {"template": {"metadata": {"annotations": {"gaia.dev/placement": on}},
                              "spec": {"containers": [{"image": "x",
                                       "resources": {"limits": {"cpu": "1"}}}]}}},
        "status": {"observedGeneration": 1, "latestCreatedRevisionName": r.revision,
                   "latestReadyRevisionName": ready,
                   "conditions": [{"type": "Ready", "status": "True"}]}
    });
    Arc::new(ManagedService::from_value(v, "nvidia.com/gpu").expect("managed"))
}

fn observer(
    url: &str,
    generation: Generation,
    layout: LabelLayout,
    shape: QueryShape,
) -> PromObserver {
    let cfg = PolicyConfig::default();
    PromObserver::new(
        url,
        Duration::from_secs(10),
        QuerySet::with_layout(
            generation,
            layout,
            &QueryOverrides::default(),
            "user-container",
        ),
        cfg.short_window,
        cfg.long_window,
    )
    .expect("observer")
    .with_shape(shape)
}

/// Records every act with its whole decision.
#[derive(Default)]
struct Acts(Mutex<Vec<(String, Decision)>>);

impl Actuator for Acts {
    async fn act(&self, svc: &ManagedService, d: &Decision) -> Result<(), Error> {
        self.0.lock().unwrap().push((svc.name.clone(), d.clone()));
        Ok(())
    }
    async fn warn(&self, _: &ManagedService, _: &'static str, _: String) -> Result<(), Error> {
        Ok(())
    }
}

/// `decide` for every Service of `snap` on `raw`, at every streak a cycle could carry.
fn outcomes(
    snap: &Snapshot,
    raw: &RawObservations,
    now: jiff::Timestamp,
) -> Vec<(String, u32, gaia_policy::Outcome)> {
    let cfg = PolicyConfig::default();
    let mut out = Vec::new();
    for svc in &snap.services {
        let (Ok(mode), Ok(observed)) = (&svc.mode, &svc.observed) else {
            continue;
        };
        let pods: Vec<_> = snap
            .pods
            .iter()
            .filter(|p| p.revision == svc.serving_revision)
            .map(|p| &**p)
            .collect();
        let stats = svc
            .serving_revision
            .as_ref()
            .map(|rev| revision_stats(raw, &RevisionKey::new(&svc.namespace, rev), &pods, 1.0));
        for streak in 0..4 {
            let state = ServiceState {
                mode: *mode,
                placement: svc.placement,
                rollout: svc.rollout,
                slo: match &svc.slo {
                    Some(Ok(d)) => *d,
                    _ => Config::default().default_slo,
                },
                observed: Observed::clone(observed),
                gpus_needed: 1,
                gpu_pods: 1,
                violation_streak: streak,
                created: None,
                latency_truncated: false,
                elastic_gpu_pool: None,
            };
            let gpu = GpuAvailability {
                largest_free_on_a_node: 1,
                free_total: 1,
            };
            let o = decide(
                &state,
                Some(&stats.clone().unwrap_or_default()),
                gpu,
                &cfg,
                now,
            );
            out.push((svc.name.clone(), streak, o));
        }
    }
    out
}

#[tokio::test]
async fn both_shapes_decide_the_same_for_every_generation_and_layout() {
    let (revisions, services) = world();
    let now = jiff::Timestamp::now().as_second();
    let ds = Dataset {
        start: (now / STEP) * STEP - 3600,
        step: STEP,
        steps: 40,
        revisions,
    };
    let snap = Snapshot {
        services: ds
            .revisions
            .iter()
            .zip(&services)
            .map(|(r, (_, slo, placement))| ksvc(r, slo, placement))
            .collect(),
        pods: ds.revisions.iter().flat_map(cpu_pods).collect(),
        nodes: vec![Arc::new(NodeInfo {
            name: "gpu-1".into(),
            gpus_allocatable: 2,
            schedulable: true,
        })],
    };
    let cfg = Config::default();
    let demand = Demand::for_decide(&snap.services, &cfg.policy, cfg.default_slo, false);
    let scraped = PromServer::start(&ds, &[Gen::OpenCensus, Gen::OpenTelemetry]);
    let pushed = PromServer::start(&ds, &[Gen::OtelPromoted]);
    for (prom, generation, layout) in [
        (&scraped, Generation::OpenCensus, LabelLayout::TargetInfo),
        (&scraped, Generation::OpenTelemetry, LabelLayout::TargetInfo),
        (&pushed, Generation::OpenTelemetry, LabelLayout::Promoted),
    ] {
        let what = format!("{generation:?}/{layout:?}");
        let flat = observer(&prom.url, generation, layout, QueryShape::Flat);
        let tiered = observer(&prom.url, generation, layout, QueryShape::Tiered);
        assert_eq!(tiered.shape(), QueryShape::Tiered);
        let a = flat
            .observe_for(Some(ds.end()), &demand)
            .await
            .expect("flat");
        let b = tiered
            .observe_for(Some(ds.end()), &demand)
            .await
            .expect("tiered");
        assert_eq!(a.queries, 7, "{what}");
        assert!(b.queries <= 10, "{what}: {} queries", b.queries);
        assert!(b.bounded > 0, "{what}: no revision judged on its bound");
        assert!(
            b.candidates > 0 && b.candidates < demand.revisions.len(),
            "{what}: {b:?}"
        );
        // what both ask of every revision is the same
        assert_eq!(a.rps_short, b.rps_short, "{what}");
        assert_eq!(a.rps_long, b.rps_long, "{what}");
        assert_eq!(a.mean_latency_ms, b.mean_latency_ms, "{what}");
        assert_eq!(a.cpu_cores, b.cpu_cores, "{what}");
        // a candidate's quantiles are the flat ones, to the bit (computed here from two bucket
        // reads, the `target_info` join done here too for that layout)
        assert_eq!(
            b.queries,
            1 + 5
                + u32::from(
                    layout == LabelLayout::TargetInfo && generation != Generation::OpenCensus
                )
                + 2,
            "{what}: the bounds, the first tier, the two bucket reads"
        );
        assert!(!b.p50_short_ms.is_empty(), "{what}");
        for (k, v) in &b.p95_long_ms {
            assert_eq!(a.p95_long_ms.get(k), Some(v), "{what}: {k:?}");
        }
        for (k, v) in &b.p50_short_ms {
            assert_eq!(a.p50_short_ms.get(k), Some(v), "{what}: {k:?}");
            assert_eq!(
                a.p95_short_ms.get(k),
                b.p95_short_ms.get(k),
                "{what}: {k:?}"
            );
        }
        let at = jiff::Timestamp::now();
        let (x, y) = (outcomes(&snap, &a, at), outcomes(&snap, &b, at));
        assert_eq!(x.len(), y.len());
        let mut kinds = std::collections::BTreeSet::new();
        for (p, q) in x.iter().zip(&y) {
            assert_eq!(p, q, "{what}");
            kinds.insert(match &p.2.decision {
                Decision::Hold(h) => h.as_str(),
                d => d.kind(),
            });
        }
        for k in [
            "within_slo",
            "promote",
            "not_compute_bound",
            "no_latency_data",
            "pinned",
            "rollout_in_progress",
            "too_few_requests",
            "sustaining",
        ] {
            assert!(kinds.contains(k), "{what}: no {k} among {kinds:?}");
        }

        // Whole cycles, four in a row (streaks carried), same reports and acts.
        let (acts_a, acts_b) = (Acts::default(), Acts::default());
        let settings = CycleSettings::from_config(&cfg);
        let (mut ca, mut cb) = (Cycle::new(settings.clone()), Cycle::new(settings));
        let t0 = jiff::Timestamp::now();
        for i in 0..4 {
            let t = gaia_policy::clock::add(t0, Duration::from_secs(10 * i));
            let ra = ca.run(&snap, &flat, &acts_a, t, Some(ds.end())).await;
            let rb = cb.run(&snap, &tiered, &acts_b, t, Some(ds.end())).await;
            assert!(ra.prometheus_error.is_none() && rb.prometheus_error.is_none());
            assert_eq!(
                (&ra.decisions, &ra.holds),
                (&rb.decisions, &rb.holds),
                "{what} cycle {i}"
            );
        }
        assert_eq!(
            *acts_a.0.lock().unwrap(),
            *acts_b.0.lock().unwrap(),
            "{what}"
        );
        assert!(
            !acts_a.0.lock().unwrap().is_empty(),
            "{what}: nothing acted"
        );
    }
}
