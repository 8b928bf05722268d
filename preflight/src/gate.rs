//! What the autoscaler does with a report, pure: may a move go ahead while these checks fail,
//! which checks changed state since the last run, and which Knative release was found.

use gaia_contract::queries::{
    choose_generation, choose_layout, GenerationChoice, KnativeVersion, PrometheusConfig,
};
use serde::Serialize;

use crate::checks::{Blocks, Check, CheckId, Report, Status};
use crate::facts::Facts;

/// A move the autoscaler is about to make, as far as the checks care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MoveClass {
    /// Onto a GPU (a promotion, a GPU rung of the ladder; a "no GPU free" attempt counts too).
    ToGpu,
    /// Off a GPU (a demotion, a revert, a move down the ladder).
    ToCpu,
    /// Back to the placement that served before a move that never became ready.
    Rollback,
}

/// The failing check that forbids `class`, if any (the first in report order).
///
/// - a check that fails with [`Blocks::AllMoves`] forbids every move but a rollback;
/// - one with [`Blocks::Promotions`] forbids moves onto a GPU;
/// - [`Blocks::Nothing`] and [`Blocks::Admission`] forbid no move;
/// - a rollback is never forbidden: it returns to the revision that served before and is
///   the way out of a move the cluster could not carry out;
/// - a warning forbids nothing.
pub fn blocking(report: &Report, class: MoveClass) -> Option<&Check> {
    report.failed().find(|c| match (class, c.blocks) {
        (MoveClass::Rollback, _) => false,
        (_, Blocks::AllMoves) => true,
        (MoveClass::ToGpu, Blocks::Promotions) => true,
        _ => false,
    })
}

/// One check whose status is not what it was at the last run (`before: None`: first seen).
#[derive(Debug, Clone, PartialEq)]
pub struct Change<'a> {
    pub check: &'a Check,
    pub before: Option<Status>,
}

/// The checks that changed state between two runs. On the first run (`last: None`) only the
/// checks that do not pass count as changes: a healthy start says nothing.
pub fn changes<'a>(last: Option<&Report>, now: &'a Report) -> Vec<Change<'a>> {
    now.checks
        .iter()
        .filter_map(|c| {
            let before = last.and_then(|l| status_of(l, c.id));
            let changed = match (last, before) {
                (None, _) => c.status != Status::Pass,
                (Some(_), None) => true,
                (Some(_), Some(b)) => b != c.status,
            };
            changed.then_some(Change { check: c, before })
        })
        .collect()
}

fn status_of(r: &Report, id: CheckId) -> Option<Status> {
    r.checks.iter().find(|c| c.id == id).map(|c| c.status)
}

/// The Knative Serving release the cluster says it runs, and where it says so: the
/// `knative-serving` namespace's `app.kubernetes.io/version` label (Knative's release manifests
/// stamp it, `1.21.2`), else the same label on its `controller` Deployment (an Operator
/// install); `None` when Knative could not be read or neither label is a release (`devel`, a
/// build from source).
pub fn knative_release_found(facts: &Facts) -> Option<(KnativeVersion, String)> {
    let k = facts.knative.as_ref().ok()?;
    let parse = |l: &Option<String>| l.as_deref().and_then(|t| t.parse().ok());
    if let Some(v) = parse(&k.version_label) {
        return Some((
            v,
            "the knative-serving namespace's label app.kubernetes.io/version".into(),
        ));
    }
    parse(&k.controller_version_label).map(|v| {
        (
            v,
            "Deployment knative-serving/controller's label app.kubernetes.io/version".into(),
        )
    })
}

/// The release found in the cluster (see [`knative_release_found`]).
pub fn knative_release(facts: &Facts) -> Option<KnativeVersion> {
    knative_release_found(facts).map(|(v, _)| v)
}

/// The generation to query ([`choose_generation`]): `prometheus.generation` when it names one;
/// with `auto`, `prometheus.knativeVersion` when given, else the release found in the cluster,
/// else the series Prometheus holds, else the newest.
pub fn generation_choice(facts: &Facts, prometheus: &PrometheusConfig) -> GenerationChoice {
    let configured = match prometheus.knative_release() {
        Ok(Some(v)) => Some((v, "prometheus.knativeVersion".to_string())),
        _ => None,
    };
    let found = facts.prometheus.as_ref().ok();
    let series = found.and_then(|p| p.series.clone());
    let promoted = found.and_then(|p| p.promoted_labels);
    choose_generation(
        prometheus.generation,
        configured.or_else(|| knative_release_found(facts)),
        series,
    )
    .with_layout(choose_layout(prometheus.labels, promoted))
}

/// One line for an Event or a hold: the check, what was found, its fix.
pub fn describe(c: &Check) -> String {
    match &c.fix {
        Some(fix) => format!("preflight check {} fails: {}; fix: {fix}", c.id, c.summary),
        None => format!("preflight check {}: {}", c.id, c.summary),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::KnativeFacts;

    fn check(id: CheckId, status: Status, blocks: Blocks) -> Check {
        Check {
            id,
            status,
            summary: format!("{id} is {status:?}"),
            fix: (status != Status::Pass).then(|| format!("fix {id}")),
            blocks,
        }
    }

    fn report(checks: &[(CheckId, Status, Blocks)]) -> Report {
        Report {
            checks: checks.iter().map(|(i, s, b)| check(*i, *s, *b)).collect(),
        }
    }

    #[test]
    fn which_check_forbids_which_move() {
        use Blocks::*;
        use CheckId::*;
        use MoveClass::*;
        use Status::*;
        // (checks, move, the check that forbids it)
        type Row = (Vec<(CheckId, Status, Blocks)>, MoveClass, Option<CheckId>);
        let rows: Vec<Row> = vec![
            // everything passes: every move goes ahead
            (
                vec![(GpuNodes, Pass, Promotions), (Knative, Pass, AllMoves)],
                ToGpu,
                None,
            ),
            (vec![(GpuNodes, Pass, Promotions)], ToCpu, None),
            // no GPU node: promotions held, demotions and rollbacks go ahead
            (vec![(GpuNodes, Fail, Promotions)], ToGpu, Some(GpuNodes)),
            (vec![(GpuNodes, Fail, Promotions)], ToCpu, None),
            (vec![(GpuNodes, Fail, Promotions)], Rollback, None),
            // Knative rejects the placement fields: every move held but a rollback
            (
                vec![(KnativeFeatures, Fail, AllMoves)],
                ToGpu,
                Some(KnativeFeatures),
            ),
            (
                vec![(KnativeFeatures, Fail, AllMoves)],
                ToCpu,
                Some(KnativeFeatures),
            ),
            (vec![(KnativeFeatures, Fail, AllMoves)], Rollback, None),
            // Prometheus down
            (vec![(Prometheus, Fail, AllMoves)], ToCpu, Some(Prometheus)),
            // a warning holds nothing, even one that would block
            (
                vec![(Knative, Warn, AllMoves), (GpuNodes, Warn, Promotions)],
                ToGpu,
                None,
            ),
            // checks that block nothing, or only admission, hold no move
            (
                vec![(LatencySeries, Fail, Nothing), (Webhook, Fail, Admission)],
                ToGpu,
                None,
            ),
            (vec![(Webhook, Fail, Admission)], ToCpu, None),
            // several fail: the first in report order is named
            (
                vec![(Prometheus, Fail, AllMoves), (GpuNodes, Fail, Promotions)],
                ToGpu,
                Some(Prometheus),
            ),
            (
                vec![(Webhook, Fail, Admission), (GpuNodes, Fail, Promotions)],
                ToGpu,
                Some(GpuNodes),
            ),
            // nothing checked: nothing forbidden
            (vec![], ToGpu, None),
        ];
        for (checks, class, expected) in rows {
            let r = report(&checks);
            assert_eq!(
                blocking(&r, class).map(|c| c.id),
                expected,
                "{checks:?} {class:?}"
            );
        }
    }

    #[test]
    fn a_change_is_a_new_status_and_a_healthy_start_says_nothing() {
        use Blocks::*;
        use CheckId::*;
        use Status::*;
        let healthy = report(&[(Prometheus, Pass, AllMoves), (GpuNodes, Pass, Promotions)]);
        let broken = report(&[(Prometheus, Pass, AllMoves), (GpuNodes, Fail, Promotions)]);
        let warned = report(&[(Prometheus, Warn, AllMoves), (GpuNodes, Fail, Promotions)]);
        let ids = |c: Vec<Change<'_>>| {
            c.iter()
                .map(|c| (c.check.id, c.before, c.check.status))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(changes(None, &healthy)), vec![]);
        assert_eq!(
            ids(changes(None, &broken)),
            vec![(GpuNodes, None, Fail)],
            "first run: what does not pass"
        );
        assert_eq!(ids(changes(Some(&broken), &broken)), vec![]);
        assert_eq!(
            ids(changes(Some(&healthy), &broken)),
            vec![(GpuNodes, Some(Pass), Fail)]
        );
        assert_eq!(
            ids(changes(Some(&broken), &healthy)),
            vec![(GpuNodes, Some(Fail), Pass)]
        );
        assert_eq!(
            ids(changes(Some(&broken), &warned)),
            vec![(Prometheus, Some(Pass), Warn)]
        );
        // a check that was not there before (Knative appeared) is a change
        let fewer = report(&[(GpuNodes, Fail, Promotions)]);
        assert_eq!(
            ids(changes(Some(&fewer), &broken)),
            vec![(Prometheus, None, Pass)]
        );
    }

    #[test]
    fn the_release_comes_from_the_namespace_label() {
        let facts = |label: Option<&str>| Facts {
            knative: Ok(KnativeFacts {
                serving_installed: true,
                version_label: label.map(String::from),
                ..KnativeFacts::default()
            }),
            prometheus: Err(String::new()),
            gpu_nodes: Ok(vec![]),
            webhook: Ok(None),
        };
        assert_eq!(
            knative_release(&facts(Some("1.20.1"))).map(|v| v.truncates_subsecond_latency()),
            Some(true)
        );
        assert_eq!(
            knative_release(&facts(Some("v1.21.2"))).map(|v| v.truncates_subsecond_latency()),
            Some(false)
        );
        assert_eq!(knative_release(&facts(Some("devel"))), None);
        assert_eq!(knative_release(&facts(None)), None);
        let unreadable = Facts {
            knative: Err("forbidden".into()),
            ..facts(Some("1.20.1"))
        };
        assert_eq!(knative_release(&unreadable), None);
        // an Operator install: no namespace label, the controller Deployment's
        let mut operator = facts(None);
        if let Ok(k) = operator.knative.as_mut() {
            k.controller_version_label = Some("1.19.7".into());
        }
        let (v, source) = knative_release_found(&operator).unwrap();
        assert_eq!(v.to_string(), "1.19.7");
        assert!(source.contains("controller"), "{source}");
    }

    #[test]
    fn the_generation_comes_from_the_config_then_the_release_then_the_series() {
        use gaia_contract::queries::{ChosenBy, Generation, GenerationSetting};
        let facts = |label: Option<&str>, series: Option<Vec<Generation>>| Facts {
            knative: Ok(KnativeFacts {
                serving_installed: true,
                version_label: label.map(String::from),
                ..KnativeFacts::default()
            }),
            prometheus: Ok(crate::facts::PrometheusFacts {
                series,
                ..Default::default()
            }),
            gpu_nodes: Ok(vec![]),
            webhook: Ok(None),
        };
        let auto = PrometheusConfig::default();
        let c = generation_choice(&facts(Some("1.20.0"), None), &auto);
        assert_eq!(c.generation, Generation::KnQueueProxy);
        assert!(matches!(c.by, ChosenBy::Release { .. }));
        let c = generation_choice(
            &facts(Some("devel"), Some(vec![Generation::OpenCensus])),
            &auto,
        );
        assert_eq!(
            (c.generation, c.by),
            (Generation::OpenCensus, ChosenBy::Series)
        );
        let pinned = PrometheusConfig {
            knative_version: Some("1.18.3".into()),
            ..PrometheusConfig::default()
        };
        let c = generation_choice(&facts(Some("1.21.2"), None), &pinned);
        assert_eq!(c.generation, Generation::OpenCensus);
        assert!(c.why().contains("prometheus.knativeVersion"), "{}", c.why());
        let fixed = PrometheusConfig {
            generation: GenerationSetting::OpenTelemetry,
            ..PrometheusConfig::default()
        };
        let c = generation_choice(&facts(Some("1.19.0"), None), &fixed);
        assert_eq!(
            (c.generation, c.by),
            (Generation::OpenTelemetry, ChosenBy::Configured)
        );
        let c = generation_choice(&facts(None, Some(vec![])), &auto);
        assert_eq!(
            (c.generation, c.by),
            (Generation::OpenTelemetry, ChosenBy::Default)
        );
    }

    #[test]
    fn the_label_layout_comes_from_the_config_else_the_series() {
        use gaia_contract::queries::{Generation, LabelLayout, LayoutBy, LayoutSetting};
        let facts = |promoted: Option<bool>| Facts {
            knative: Ok(KnativeFacts::default()),
            prometheus: Ok(crate::facts::PrometheusFacts {
                series: Some(vec![Generation::OpenTelemetry]),
                promoted_labels: promoted,
                ..Default::default()
            }),
            gpu_nodes: Ok(vec![]),
            webhook: Ok(None),
        };
        let auto = PrometheusConfig::default();
        let c = generation_choice(&facts(Some(true)), &auto);
        assert_eq!(
            (c.layout, c.layout_by),
            (LabelLayout::Promoted, LayoutBy::Series)
        );
        let c = generation_choice(&facts(None), &auto);
        assert_eq!(
            (c.layout, c.layout_by),
            (LabelLayout::TargetInfo, LayoutBy::Default)
        );
        let scraped = PrometheusConfig {
            labels: LayoutSetting::TargetInfo,
            ..PrometheusConfig::default()
        };
        let c = generation_choice(&facts(Some(true)), &scraped);
        assert_eq!(
            (c.layout, c.layout_by),
            (LabelLayout::TargetInfo, LayoutBy::Configured)
        );
        // Prometheus unreadable: the default layout, asked again next time
        let down = Facts {
            prometheus: Err("connection refused".into()),
            ..facts(None)
        };
        let c = generation_choice(&down, &auto);
        assert_eq!(
            (c.layout, c.layout_by),
            (LabelLayout::TargetInfo, LayoutBy::Default)
        );
    }

    #[test]
    fn a_failing_check_is_described_with_its_fix() {
        let c = check(CheckId::GpuNodes, Status::Fail, Blocks::Promotions);
        assert_eq!(
            describe(&c),
            "preflight check gpu-nodes fails: gpu-nodes is Fail; fix: fix gpu-nodes"
        );
    }
}
