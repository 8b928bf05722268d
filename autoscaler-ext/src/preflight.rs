//! The preflight in the controller: `kn gaia doctor`'s checks (gaia-preflight), run at start
//! and then every `preflight.interval` (every `preflight.failingInterval` while a check
//! fails). Each run sets the metric `gaia_autoscaler_preflight_check{check, status}`; the
//! leader records an Event on the autoscaler's Deployment for every check that changed state;
//! the cycle gets the report and holds the moves a failing check would make fail
//! ([`gaia_preflight::gate::blocking`]), and the Knative release found tells it whether
//! latencies under 1 s read as 0 s (when `prometheus.knativeVersion` does not say).

use std::sync::Arc;
use std::time::Duration;

use gaia_contract::keys;
use gaia_contract::queries::{Generation, GenerationChoice, KnativeVersion, LabelLayout};
use gaia_preflight::gate::{self, Change};
use gaia_preflight::gather::gather;
use gaia_preflight::{evaluate, Expectations, Report, Status};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::{Config, PreflightConfig};
use crate::telemetry::Metrics;

/// The Deployment the preflight's Events are about (`kubectl describe deployment
/// gaia-autoscaler -n gaia-system` shows them, whichever replica leads).
pub const DEPLOYMENT: &str = "gaia-autoscaler";

/// What the cycle needs of the last run.
#[derive(Debug, Clone)]
pub struct PreflightResult {
    pub report: Arc<Report>,
    /// The Knative release the cluster says it runs, when it says.
    pub knative: Option<KnativeVersion>,
    /// The metric generation to query, and why (`prometheus.generation`, or with `auto` the
    /// release or the series found).
    pub generation: GenerationChoice,
}

impl PreflightResult {
    /// The queue-proxy of the release found records latencies under 1 s as 0 s.
    pub fn latency_truncated(&self) -> bool {
        self.knative
            .is_some_and(KnativeVersion::truncates_subsecond_latency)
    }
}

/// Runs the preflight when due and says what changed.
pub struct Preflight {
    client: kube::Client,
    want: Expectations,
    config: Arc<Config>,
    settings: PreflightConfig,
    recorder: Recorder,
    deployment: ObjectReference,
    next: Instant,
    /// The last report whose changes were told in Events (by this replica, while leading).
    announced: Option<Report>,
    last: Option<PreflightResult>,
}

impl Preflight {
    /// `namespace`: where the autoscaler runs (its Deployment, the webhook's objects).
    pub fn new(
        client: kube::Client,
        config: Arc<Config>,
        namespace: &str,
        instance: String,
    ) -> Self {
        let mut want = Expectations::installed(config.placement.clone(), config.prometheus.clone());
        want.gaia_namespace = namespace.to_string();
        let reporter = Reporter {
            controller: keys::AUTOSCALER_FIELD_MANAGER.into(),
            instance: Some(instance),
        };
        Preflight {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            want,
            settings: config.preflight.clone(),
            config,
            deployment: ObjectReference {
                api_version: Some("apps/v1".into()),
                kind: Some("Deployment".into()),
                name: Some(DEPLOYMENT.into()),
                namespace: Some(namespace.to_string()),
                ..ObjectReference::default()
            },
            next: Instant::now(),
            announced: None,
            last: None,
        }
    }

    /// The last result (`None` before the first run, or when it could not run).
    pub fn last(&self) -> Option<&PreflightResult> {
        self.last.as_ref()
    }

    /// Runs the checks if due; records the metric, and (when `leading`) an Event per change.
    /// Returns whether it ran.
    pub async fn run_if_due(&mut self, leading: bool, metrics: &Metrics) -> bool {
        if Instant::now() < self.next {
            return false;
        }
        let config = self.config.clone();
        let queries = move |g: Generation, l: LabelLayout| config.queries_for(g, l);
        let facts = gather(&self.client, &self.want, &queries).await;
        let facts = match facts {
            Ok(f) => f,
            Err(e) => {
                // only the HTTP client's construction can fail: keep the last result
                warn!(error = %e, "preflight could not run");
                metrics.preflight_errors.inc();
                self.next = Instant::now() + self.settings.failing_interval;
                return false;
            }
        };
        let report = evaluate(&facts, &self.want);
        let knative = gate::knative_release(&facts);
        let generation = gate::generation_choice(&facts, &self.want.prometheus);
        let told = self
            .last
            .as_ref()
            .map(|l| (l.generation.generation, &l.generation.by));
        if told != Some((generation.generation, &generation.by)) {
            info!(generation = generation.generation.name(), why = %generation.why(),
                  "metric generation chosen");
        }
        metrics.record_preflight(&report);
        let failing = report.failed().count();
        for c in report.failed() {
            warn!(check = %c.id, summary = %c.summary, fix = c.fix.as_deref().unwrap_or(""),
                  blocks = ?c.blocks, "preflight check fails");
        }
        if leading {
            self.announce(&report).await;
        }
        info!(checks = report.checks.len(), failing, knative = ?knative.map(|v| format!("{}.{}.{}", v.major, v.minor, v.patch)), "preflight");
        self.next = Instant::now() + self.interval_after(&report);
        self.last = Some(PreflightResult {
            report: Arc::new(report),
            knative,
            generation,
        });
        true
    }

    fn interval_after(&self, report: &Report) -> Duration {
        if report.failed().next().is_some() {
            self.settings.failing_interval
        } else {
            self.settings.interval
        }
    }

    async fn announce(&mut self, report: &Report) {
        let changes = gate::changes(self.announced.as_ref(), report);
        for change in &changes {
            let (type_, reason, note) = event_for(change);
            let event = Event {
                type_,
                reason: reason.into(),
                note: Some(note),
                // one Event series per check: the recorder folds Events of one object with the
                // same type, reason and action into one series and keeps its first note, so a
                // second failing check's note never showed
                action: format!("Preflight-{}", change.check.id),
                secondary: None,
            };
            if let Err(e) = self.recorder.publish(&event, &self.deployment).await {
                warn!(error = %e, check = %change.check.id, "preflight Event not recorded");
            }
        }
        self.announced = Some(report.clone());
    }
}

/// The Event for a check's change: Warning `PreflightCheckFailed` / `PreflightCheckWarning`
/// with the fix, Normal `PreflightCheckPassed`.
pub fn event_for(change: &Change<'_>) -> (EventType, &'static str, String) {
    let c = change.check;
    let was = match change.before {
        Some(s) => format!(" (was {})", status_name(s)),
        None => String::new(),
    };
    match c.status {
        Status::Pass => (
            EventType::Normal,
            "PreflightCheckPassed",
            format!("preflight check {} passes{was}: {}", c.id, c.summary),
        ),
        Status::Warn => (
            EventType::Warning,
            "PreflightCheckWarning",
            format!(
                "preflight check {} warns{was}: {}; fix: {}",
                c.id,
                c.summary,
                c.fix.as_deref().unwrap_or("-")
            ),
        ),
        Status::Fail => (
            EventType::Warning,
            "PreflightCheckFailed",
            format!(
                "preflight check {} fails{was}: {}; fix: {}; {}",
                c.id,
                c.summary,
                c.fix.as_deref().unwrap_or("-"),
                held(c.blocks)
            ),
        ),
    }
}

fn held(blocks: gaia_preflight::Blocks) -> &'static str {
    match blocks {
        gaia_preflight::Blocks::Promotions => "moves onto a GPU are held until it passes",
        gaia_preflight::Blocks::AllMoves => "every move but a rollback is held until it passes",
        gaia_preflight::Blocks::Admission => "new Services are not classified until it passes",
        gaia_preflight::Blocks::Nothing => "no move is held for it",
    }
}

pub fn status_name(s: Status) -> &'static str {
    match s {
        Status::Pass => "pass",
        Status::Warn => "warn",
        Status::Fail => "fail",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gaia_preflight::{Blocks, Check, CheckId};

    #[test]
    fn a_failing_check_says_what_is_held_and_how_to_fix_it() {
        let c = Check {
            id: CheckId::GpuNodes,
            status: Status::Fail,
            summary: "no node has the GPU placement's labels (nvidia.com/gpu.present=true)".into(),
            fix: Some("label the GPU nodes nvidia.com/gpu.present=true".into()),
            blocks: Blocks::Promotions,
        };
        let (t, reason, note) = event_for(&Change {
            check: &c,
            before: Some(Status::Pass),
        });
        assert_eq!((t, reason), (EventType::Warning, "PreflightCheckFailed"));
        assert_eq!(
            note,
            "preflight check gpu-nodes fails (was pass): no node has the GPU placement's labels \
             (nvidia.com/gpu.present=true); fix: label the GPU nodes nvidia.com/gpu.present=true; \
             moves onto a GPU are held until it passes"
        );
        let fixed = Check {
            status: Status::Pass,
            summary: "1 node(s) for the GPU placement".into(),
            fix: None,
            ..c
        };
        let (t, reason, note) = event_for(&Change {
            check: &fixed,
            before: Some(Status::Fail),
        });
        assert_eq!((t, reason), (EventType::Normal, "PreflightCheckPassed"));
        assert!(note.contains("passes (was fail)"), "{note}");
    }
}
