use std::collections::BTreeMap;

use gaia_contract::placement::PlacementProfiles;
use gaia_contract::queries::{Generation, KnativeVersion, PrometheusConfig};

use super::*;
use crate::facts::PrometheusFacts;

const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBCA==\n-----END CERTIFICATE-----\n";
const OTHER_CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBOTHER==\n-----END CERTIFICATE-----\n";

fn want() -> Expectations {
    Expectations::installed(PlacementProfiles::default(), PrometheusConfig::default())
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn gpu_node() -> NodeFacts {
    NodeFacts {
        name: "gpu-1".into(),
        ready: true,
        unschedulable: false,
        taints: vec![(
            "nvidia.com/gpu".into(),
            Some("present".into()),
            "NoSchedule".into(),
        )],
        allocatable: map(&[("nvidia.com/gpu", "1")]),
    }
}

/// A cluster where everything is in order (the default profiles: the GPU one selects
/// nvidia.com/gpu.present=true, tolerates nvidia.com/gpu, asks for nvidia.com/gpu: 1).
fn healthy() -> Facts {
    Facts {
        knative: Ok(KnativeFacts {
            serving_installed: true,
            version_label: Some("1.21.2".into()),
            controller_version_label: None,
            features: Some(map(&[
                ("kubernetes.podspec-nodeselector", "enabled"),
                ("kubernetes.podspec-tolerations", "Enabled"),
            ])),
            observability: Some(map(&[("request-metrics-protocol", "prometheus")])),
            deployment: Some(BTreeMap::new()),
        }),
        prometheus: Ok(PrometheusFacts {
            revisions_with_requests: 3,
            knative_services: 2,
            series: Some(vec![Generation::OpenTelemetry]),
            promoted_labels: Some(false),
        }),
        gpu_nodes: Ok(vec![gpu_node()]),
        webhook: Ok(Some(WebhookFacts {
            ca_bundles: vec![Some(format!("{CA}{OTHER_CA}"))],
            secret_ca: Some(CA.into()),
        })),
    }
}

fn status(report: &Report, id: CheckId) -> &Check {
    report
        .checks
        .iter()
        .find(|c| c.id == id)
        .expect("check present")
}

#[test]
fn a_healthy_cluster_passes_every_check() {
    let r = evaluate(&healthy(), &want());
    assert!(
        r.checks.iter().all(|c| c.status == Status::Pass),
        "{:#?}",
        r.checks
    );
    assert_eq!(r.checks.len(), 7);
    assert!(!r.blocks_promotions() && !r.blocks_all_moves());
}

#[test]
fn each_broken_part_fails_its_own_check_with_a_fix() {
    type Break = fn(&mut Facts);
    let cases: [(CheckId, Break, &str, Blocks); 9] = [
        (
            CheckId::KnativeFeatures,
            |f| {
                f.knative.as_mut().unwrap().features =
                    Some(map(&[("kubernetes.podspec-tolerations", "enabled")]))
            },
            "kubernetes.podspec-nodeselector",
            Blocks::AllMoves,
        ),
        (
            CheckId::KnativeFeatures,
            |f| f.knative.as_mut().unwrap().features = None,
            "manifests/knative-features",
            Blocks::AllMoves,
        ),
        (
            CheckId::MetricsExported,
            |f| {
                f.knative.as_mut().unwrap().observability =
                    Some(map(&[("request-metrics-protocol", "none")]))
            },
            "request-metrics-protocol",
            Blocks::AllMoves,
        ),
        (
            CheckId::MetricsExported,
            |f| f.knative.as_mut().unwrap().observability = Some(BTreeMap::new()),
            "config-observability",
            Blocks::AllMoves,
        ),
        (
            CheckId::Prometheus,
            |f| f.prometheus = Err("connection refused".into()),
            "prometheus.url",
            Blocks::AllMoves,
        ),
        (
            CheckId::LatencySeries,
            |f| f.prometheus.as_mut().unwrap().revisions_with_requests = 0,
            "http-usermetric",
            Blocks::Nothing,
        ),
        (
            CheckId::GpuNodes,
            |f| f.gpu_nodes = Ok(vec![]),
            "nvidia.com/gpu.present=true",
            Blocks::Promotions,
        ),
        (
            CheckId::Webhook,
            |f| {
                f.webhook.as_mut().unwrap().as_mut().unwrap().ca_bundles =
                    vec![Some(OTHER_CA.into())]
            },
            "rollout restart",
            Blocks::Admission,
        ),
        (
            CheckId::Webhook,
            |f| f.webhook = Ok(None),
            "kubectl apply -k manifests/",
            Blocks::Admission,
        ),
    ];
    for (id, breaker, fix_has, blocks) in cases {
        let mut facts = healthy();
        breaker(&mut facts);
        let r = evaluate(&facts, &want());
        let c = status(&r, id);
        assert_eq!(c.status, Status::Fail, "{id}: {c:#?}");
        assert_eq!(c.blocks, blocks, "{id}");
        let fix = c.fix.as_deref().unwrap_or_default();
        assert!(
            fix.contains(fix_has),
            "{id}: fix {fix:?} should mention {fix_has:?}"
        );
        // only that check fails
        let others: Vec<_> = r.failed().filter(|o| o.id != id).collect();
        assert!(others.is_empty(), "{id} also failed {others:#?}");
    }
}

#[test]
fn gpu_nodes_that_cannot_take_the_pod_are_named_with_the_reason() {
    type Break = fn(&mut NodeFacts);
    let cases: [(Break, &str); 4] = [
        (|n| n.ready = false, "not Ready"),
        (|n| n.unschedulable = true, "cordoned"),
        (
            |n| {
                n.taints.push((
                    "gaia.dev/kwok".into(),
                    Some("fake".into()),
                    "NoSchedule".into(),
                ))
            },
            "taint gaia.dev/kwok:NoSchedule not tolerated",
        ),
        (|n| n.allocatable.clear(), "nvidia.com/gpu allocatable 0"),
    ];
    for (breaker, reason) in cases {
        let mut node = gpu_node();
        breaker(&mut node);
        let mut facts = healthy();
        facts.gpu_nodes = Ok(vec![node]);
        let c = status(&evaluate(&facts, &want()), CheckId::GpuNodes).clone();
        assert_eq!(c.status, Status::Fail);
        assert!(
            c.summary.contains(reason),
            "{} should say {reason:?}",
            c.summary
        );
    }
    // a PreferNoSchedule taint does not keep a pod off
    let mut node = gpu_node();
    node.taints
        .push(("spot".into(), None, "PreferNoSchedule".into()));
    let mut facts = healthy();
    facts.gpu_nodes = Ok(vec![node]);
    assert_eq!(
        status(&evaluate(&facts, &want()), CheckId::GpuNodes).status,
        Status::Pass
    );
}

#[test]
fn the_release_found_must_match_the_metric_generation_queried() {
    let with_version = |v: &str| {
        let mut f = healthy();
        f.knative.as_mut().unwrap().version_label = Some(v.into());
        // Prometheus holds the series that release exports
        if let (Ok(p), Ok(r)) = (f.prometheus.as_mut(), v.parse::<KnativeVersion>()) {
            p.series = Some(vec![Generation::of_knative(r)]);
        }
        f
    };
    let fixed = |g: Generation| {
        let mut w = want();
        w.prometheus.generation = g.into();
        w
    };
    // 1.18 exports OpenCensus metrics; a configuration fixed on OpenTelemetry fails
    let c = status(
        &evaluate(&with_version("1.18.2"), &fixed(Generation::OpenTelemetry)),
        CheckId::Knative,
    )
    .clone();
    assert_eq!(c.status, Status::Fail, "{c:#?}");
    assert!(c.fix.unwrap().contains("prometheus.generation: opencensus"));
    // auto (the default) chooses OpenCensus from the release, and so does the metrics check
    let mut f = with_version("v1.18.2");
    f.knative.as_mut().unwrap().observability = Some(BTreeMap::new()); // Prometheus by default then
    for w in [want(), fixed(Generation::OpenCensus)] {
        let r = evaluate(&f, &w);
        let c = status(&r, CheckId::Knative);
        assert_eq!(c.status, Status::Pass, "{c:#?}");
        assert!(c.summary.contains("opencensus"), "{}", c.summary);
        assert_eq!(status(&r, CheckId::MetricsExported).status, Status::Pass);
    }
    // 1.20.0: the sub-second bug: a warning saying what is held
    let c = status(
        &evaluate(&with_version("1.20.0"), &want()),
        CheckId::Knative,
    )
    .clone();
    assert_eq!(c.status, Status::Warn, "{c:#?}");
    assert!(c.summary.contains("kn-queueproxy") && c.summary.contains("latency_unreliable"));
    assert!(c.fix.unwrap().contains("upgrade"));
    // a build from source says devel: unknown release, a warning naming what was chosen
    let mut f = with_version("devel");
    f.prometheus.as_mut().unwrap().series = Some(vec![Generation::OpenTelemetry]);
    let c = status(&evaluate(&f, &want()), CheckId::Knative).clone();
    assert_eq!((c.status, c.blocks), (Status::Warn, Blocks::Nothing));
    assert!(
        c.summary
            .contains("kn_serving_invocation_duration_seconds_count"),
        "{}",
        c.summary
    );
    // the release says one generation, Prometheus holds only another's series
    let mut f = with_version("1.21.2");
    f.prometheus.as_mut().unwrap().series = Some(vec![Generation::KnQueueProxy]);
    let c = status(&evaluate(&f, &want()), CheckId::Knative).clone();
    assert_eq!(c.status, Status::Warn, "{c:#?}");
    assert!(c
        .fix
        .unwrap()
        .contains("prometheus.generation: kn-queueproxy"));
}

#[test]
fn knative_missing_fails_once_and_blocks_every_move() {
    let mut f = healthy();
    f.knative = Ok(KnativeFacts::default());
    let r = evaluate(&f, &want());
    let knative: Vec<_> = r
        .checks
        .iter()
        .filter(|c| c.id == CheckId::Knative)
        .collect();
    assert_eq!(knative.len(), 1);
    assert_eq!(knative[0].status, Status::Fail);
    assert!(r.blocks_all_moves());
    assert!(!r.checks.iter().any(|c| c.id == CheckId::KnativeFeatures));
}

#[test]
fn no_service_yet_is_a_warning_not_a_failure() {
    let mut f = healthy();
    f.prometheus = Ok(PrometheusFacts {
        revisions_with_requests: 0,
        knative_services: 0,
        series: Some(vec![]),
        promoted_labels: None,
    });
    let c = status(&evaluate(&f, &want()), CheckId::LatencySeries).clone();
    assert_eq!((c.status, c.blocks), (Status::Warn, Blocks::Nothing));
}

#[test]
fn a_bundle_is_only_compared_with_the_secret_when_the_secret_was_readable() {
    let mut f = healthy();
    f.webhook = Ok(Some(WebhookFacts {
        ca_bundles: vec![Some(OTHER_CA.into())],
        secret_ca: None,
    }));
    let c = status(&evaluate(&f, &want()), CheckId::Webhook).clone();
    assert_eq!(c.status, Status::Pass);
    assert!(c.summary.contains("not readable"), "{}", c.summary);
    f.webhook = Ok(Some(WebhookFacts {
        ca_bundles: vec![None],
        secret_ca: None,
    }));
    assert_eq!(
        status(&evaluate(&f, &want()), CheckId::Webhook).status,
        Status::Fail
    );
}

#[test]
fn an_elastic_gpu_pool_without_a_node_yet_is_a_warning_that_holds_nothing() {
    let mut f = healthy();
    f.gpu_nodes = Ok(vec![]);
    let mut w = want();
    w.placement.gpu.elastic = true;
    let c = status(&evaluate(&f, &w), CheckId::GpuNodes).clone();
    assert_eq!(
        (c.status, c.blocks),
        (Status::Warn, Blocks::Nothing),
        "{c:#?}"
    );
    assert!(
        c.summary.contains("grows on demand") && c.summary.contains("10m"),
        "{}",
        c.summary
    );
    // a fixed pool without a node fails
    let c = status(&evaluate(&f, &want()), CheckId::GpuNodes).clone();
    assert_eq!(c.status, Status::Fail);
}

#[test]
fn an_elastic_pool_wants_knative_to_wait_for_unschedulable_pods() {
    let mut w = want();
    w.placement.gpu.elastic = true;
    let c = status(&evaluate(&healthy(), &w), CheckId::KnativeFeatures).clone();
    assert_eq!(
        (c.status, c.blocks),
        (Status::Warn, Blocks::Nothing),
        "{c:#?}"
    );
    assert!(c
        .fix
        .unwrap_or_default()
        .contains("pod-is-always-schedulable"));
    let mut f = healthy();
    f.knative.as_mut().unwrap().deployment = Some(map(&[("pod-is-always-schedulable", "true")]));
    assert_eq!(
        status(&evaluate(&f, &w), CheckId::KnativeFeatures).status,
        Status::Pass
    );
    // a fixed pool does not care
    assert_eq!(
        status(&evaluate(&healthy(), &want()), CheckId::KnativeFeatures).status,
        Status::Pass
    );
}
