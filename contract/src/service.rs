//! The one read side of a Knative Service: everything the webhook, the autoscaler and `kn gaia`
//! read from a Service (as JSON) is read here, so all three see the same thing.
//!
//! Annotations users write (`gaia.dev/execution-mode`, `gaia.dev/latency-slo`, ...) count on the
//! Service metadata, else on `spec.template.metadata` (where `kn service create --annotation`
//! also puts them). Annotations Gaia writes are read where Gaia writes them.

use std::time::Duration;

use serde_json::Value;

use crate::findings::{findings_from_annotation, Finding};
use crate::{keys, ExecutionMode, ModeSource, Observed, Placement, RequestedMode, Verdict};

/// Annotations Knative reads for the minimum scale of a revision.
const MIN_SCALE: [&str; 2] = [
    "autoscaling.knative.dev/min-scale",
    "autoscaling.knative.dev/minScale",
];

/// A Knative Service, read. Borrowing: cheap to make, nothing is parsed until asked.
#[derive(Debug, Clone, Copy)]
pub struct ServiceView<'a> {
    object: &'a Value,
}

impl<'a> ServiceView<'a> {
    pub fn new(object: &'a Value) -> ServiceView<'a> {
        ServiceView { object }
    }

    /// The Service as JSON.
    pub fn object(&self) -> &'a Value {
        self.object
    }

    fn text(&self, pointer: &str) -> Option<&'a str> {
        self.object.pointer(pointer).and_then(Value::as_str)
    }

    /// `metadata.namespace`, or "".
    pub fn namespace(&self) -> &'a str {
        self.text("/metadata/namespace").unwrap_or_default()
    }

    /// `metadata.name`, or "".
    pub fn name(&self) -> &'a str {
        self.text("/metadata/name").unwrap_or_default()
    }

    pub fn uid(&self) -> Option<&'a str> {
        self.text("/metadata/uid")
    }

    pub fn resource_version(&self) -> Option<&'a str> {
        self.text("/metadata/resourceVersion")
    }

    /// `metadata.creationTimestamp`.
    pub fn created(&self) -> Option<jiff::Timestamp> {
        self.text("/metadata/creationTimestamp")?.parse().ok()
    }

    /// Since when the Service has been as it is: the later of its creationTimestamp and the
    /// last transition of its `Ready` condition. A new Service is not Ready while its first pod
    /// pulls the image and loads the model (minutes for a large image), and no one can call it
    /// before; a user's update that rolls out a revision moves it too.
    pub fn in_place_since(&self) -> Option<jiff::Timestamp> {
        let ready = self
            .ready_condition()
            .and_then(|c| c.get("lastTransitionTime")?.as_str()?.parse().ok());
        match (self.created(), ready) {
            (Some(c), Some(r)) => Some(c.max(r)),
            (c, r) => c.or(r),
        }
    }

    /// The status of the Service's `Ready` condition (`"True"`, `"False"`, `"Unknown"`), if any.
    /// Knative bumps `status.observedGeneration` on every reconcile, even one that has not yet
    /// made the new generation's revision (Ready is then Unknown), so a rollout is done only
    /// when this is `"True"` as well.
    pub fn ready(&self) -> Option<&'a str> {
        self.ready_condition()?.get("status")?.as_str()
    }

    fn ready_condition(&self) -> Option<&'a Value> {
        self.object
            .pointer("/status/conditions")?
            .as_array()?
            .iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
    }

    /// A raw annotation value on the Service metadata (`None` when absent or not a string).
    pub fn meta_annotation_value(&self, key: &str) -> Option<&'a Value> {
        self.object.pointer("/metadata/annotations")?.get(key)
    }

    /// An annotation on the Service metadata, as written.
    pub fn meta_annotation(&self, key: &str) -> Option<&'a str> {
        self.meta_annotation_value(key)?.as_str()
    }

    /// An annotation on the revision template's metadata, as written.
    pub fn template_annotation(&self, key: &str) -> Option<&'a str> {
        self.object
            .pointer("/spec/template/metadata/annotations")?
            .get(key)?
            .as_str()
    }

    /// A user's annotation: on the Service metadata, else on the template; trimmed, and `None`
    /// when empty.
    pub fn annotation(&self, key: &str) -> Option<&'a str> {
        [self.meta_annotation(key), self.template_annotation(key)]
            .into_iter()
            .flatten()
            .map(str::trim)
            .find(|s| !s.is_empty())
    }

    /// `gaia.dev/execution-mode`: `None` when absent; `Err(why)` when it is not a mode (or not a
    /// string).
    pub fn requested_mode(&self) -> Option<Result<RequestedMode, String>> {
        let raw = [
            "/metadata/annotations",
            "/spec/template/metadata/annotations",
        ]
        .iter()
        .find_map(|p| self.object.pointer(p)?.get(keys::EXECUTION_MODE))?;
        Some(match raw {
            Value::String(text) => text
                .parse::<RequestedMode>()
                .map_err(|e| format!("{}: {e}", keys::EXECUTION_MODE)),
            other => Err(format!(
                "{}: expected a string, got {other}",
                keys::EXECUTION_MODE
            )),
        })
    }

    /// Opted in: the user asked for a mode, or Gaia's webhook already wrote one. (A namespace
    /// label opts Services in too; that needs the Namespace, not the Service.)
    pub fn opted_in(&self) -> bool {
        self.annotation(keys::EXECUTION_MODE).is_some()
            || self.meta_annotation(keys::MODE).is_some()
    }

    /// `gaia.dev/mode`: `None` when absent; `Err(text)` when it is not a concrete mode.
    pub fn mode(&self) -> Option<Result<ExecutionMode, String>> {
        let text = self.annotation(keys::MODE)?;
        Some(text.parse::<ExecutionMode>().map_err(|_| text.to_string()))
    }

    /// The verdict the webhook recorded (mode, its source and rationale are all needed).
    pub fn verdict(&self) -> Option<Verdict> {
        Some(Verdict {
            mode: self.meta_annotation(keys::MODE)?.parse().ok()?,
            source: self
                .meta_annotation(keys::MODE_SOURCE)?
                .parse::<ModeSource>()
                .ok()?,
            rationale: self.meta_annotation(keys::RATIONALE)?.to_string(),
            findings: self.meta_annotation(keys::FINDINGS).map(str::to_string),
            digest: self
                .meta_annotation(keys::SOURCE_DIGEST)
                .map(str::to_string),
            origin: self
                .meta_annotation(keys::SOURCE_ORIGIN)
                .map(str::to_string),
            image_digest: self.meta_annotation(keys::IMAGE_DIGEST).map(str::to_string),
            gpu_memory_mib: self.gpu_memory_mib(),
        })
    }

    /// `gaia.dev/gpu-memory-mib`: `None` when absent or not a whole number of MiB above 0.
    pub fn gpu_memory_mib(&self) -> Option<u64> {
        self.meta_annotation(keys::GPU_MEMORY)?
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|m| *m > 0)
    }

    /// `gaia.dev/findings`, read tolerantly: `None` when absent, `Err` when not a JSON list.
    pub fn findings(&self) -> Option<Result<Vec<Finding<String>>, String>> {
        self.meta_annotation(keys::FINDINGS)
            .map(findings_from_annotation)
    }

    /// `gaia.dev/latency-slo`: `None` when absent; `Err(text)` when unreadable.
    pub fn latency_slo(&self) -> Option<Result<Duration, String>> {
        let text = self.annotation(keys::LATENCY_SLO)?;
        Some(crate::parse_latency(text).map_err(|_| text.to_string()))
    }

    /// `gaia.dev/observed`, the autoscaler's memory (empty when absent).
    pub fn observed(&self) -> Result<Observed, serde_json::Error> {
        Observed::from_annotation(self.meta_annotation(keys::OBSERVED))
    }

    /// Where the autoscaler wants the Service (`gaia.dev/desired-placement`, or the legacy key
    /// on the metadata).
    pub fn desired_placement(&self) -> Option<Placement> {
        [keys::DESIRED_PLACEMENT, keys::LEGACY_PLACEMENT]
            .iter()
            .find_map(|k| self.meta_annotation(k))
            .and_then(|p| p.parse().ok())
    }

    /// The placement the template was last rewritten for (`gaia.dev/placed-for`, or the legacy
    /// key on the template).
    pub fn placed_for(&self) -> Option<Placement> {
        [keys::PLACED_FOR, keys::LEGACY_PLACEMENT]
            .iter()
            .find_map(|k| self.template_annotation(k))
            .and_then(|p| p.parse().ok())
    }

    /// The revision the autoscaler decides on: `status.latestReadyRevisionName`.
    pub fn serving_revision(&self) -> Option<&'a str> {
        self.text("/status/latestReadyRevisionName")
    }

    /// Revisions with a share of the traffic (`status.traffic`), else the latest ready one.
    pub fn traffic_revisions(&self) -> Vec<&'a str> {
        let mut revs: Vec<&str> = self
            .object
            .pointer("/status/traffic")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|t| t.get("percent").and_then(Value::as_i64).unwrap_or(0) > 0)
            .filter_map(|t| t.get("revisionName").and_then(Value::as_str))
            .collect();
        revs.dedup();
        if revs.is_empty() {
            revs.extend(self.serving_revision().filter(|r| !r.is_empty()));
        }
        revs
    }

    /// `autoscaling.knative.dev/min-scale` of the template (at least 1).
    pub fn min_scale(&self) -> u32 {
        MIN_SCALE
            .iter()
            .find_map(|k| self.template_annotation(k)?.trim().parse::<u32>().ok())
            .unwrap_or(1)
            .max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn user_annotations_count_on_the_service_then_on_the_template() {
        let s = json!({
            "metadata": {"name": "f", "namespace": "ns", "annotations": {
                "gaia.dev/latency-slo": " 300ms ", "gaia.dev/execution-mode": ""}},
            "spec": {"template": {"metadata": {"annotations": {
                "gaia.dev/latency-slo": "2s", "gaia.dev/execution-mode": "auto",
                "autoscaling.knative.dev/min-scale": "3"}}}}
        });
        let v = ServiceView::new(&s);
        assert_eq!((v.namespace(), v.name()), ("ns", "f"));
        assert_eq!(v.annotation(keys::LATENCY_SLO), Some("300ms"));
        assert_eq!(v.latency_slo(), Some(Ok(Duration::from_millis(300))));
        // an empty value on the metadata does not hide the template's
        assert_eq!(v.annotation(keys::EXECUTION_MODE), Some("auto"));
        assert!(v.opted_in());
        assert_eq!(v.min_scale(), 3);
        assert_eq!(ServiceView::new(&json!({})).min_scale(), 1);
    }

    #[test]
    fn in_place_since_is_the_later_of_creation_and_the_last_ready_transition() {
        let created = json!({"metadata": {"creationTimestamp": "2026-12-01T10:00:00Z"}});
        let at = |t: &str| t.parse::<jiff::Timestamp>().ok();
        assert_eq!(
            ServiceView::new(&created).in_place_since(),
            at("2026-12-01T10:00:00Z")
        );
        // Ready 3 minutes after creation (the image pulled, the model loaded)
        let mut ready = created.clone();
        ready["status"] = json!({"conditions": [
            {"type": "ConfigurationsReady", "status": "True", "lastTransitionTime": "2026-12-01T10:09:00Z"},
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-01T10:03:00Z"}]});
        assert_eq!(
            ServiceView::new(&ready).in_place_since(),
            at("2026-12-01T10:03:00Z")
        );
        // a transition recorded before the creation (clock skew) does not count
        ready["status"]["conditions"][1]["lastTransitionTime"] = json!("2026-12-01T09:00:00Z");
        assert_eq!(
            ServiceView::new(&ready).in_place_since(),
            at("2026-12-01T10:00:00Z")
        );
        // unreadable times are left out
        ready["status"]["conditions"][1]["lastTransitionTime"] = json!("soon");
        assert_eq!(
            ServiceView::new(&ready).in_place_since(),
            at("2026-12-01T10:00:00Z")
        );
        assert_eq!(ServiceView::new(&json!({})).in_place_since(), None);
    }

    #[test]
    fn requested_mode_says_what_is_wrong() {
        let with = |v: Value| json!({"metadata": {"annotations": {"gaia.dev/execution-mode": v}}});
        assert_eq!(ServiceView::new(&json!({})).requested_mode(), None);
        assert_eq!(
            ServiceView::new(&with(json!("gpu"))).requested_mode(),
            Some(Ok(RequestedMode::Explicit(ExecutionMode::Gpu)))
        );
        assert!(matches!(
            ServiceView::new(&with(json!("fast"))).requested_mode(),
            Some(Err(m)) if m.contains("fast")
        ));
        assert!(matches!(
            ServiceView::new(&with(json!(3))).requested_mode(),
            Some(Err(m)) if m.contains("expected a string")
        ));
    }

    #[test]
    fn placements_have_two_names_and_the_legacy_one_is_still_read() {
        let new = json!({
            "metadata": {"annotations": {"gaia.dev/desired-placement": "gpu"}},
            "spec": {"template": {"metadata": {"annotations": {"gaia.dev/placed-for": "cpu"}}}}
        });
        let v = ServiceView::new(&new);
        assert_eq!(v.desired_placement(), Some(Placement::Gpu));
        assert_eq!(v.placed_for(), Some(Placement::Cpu));
        let legacy = json!({
            "metadata": {"annotations": {"gaia.dev/placement": "cpu"}},
            "spec": {"template": {"metadata": {"annotations": {"gaia.dev/placement": "gpu"}}}}
        });
        let v = ServiceView::new(&legacy);
        assert_eq!(v.desired_placement(), Some(Placement::Cpu));
        assert_eq!(v.placed_for(), Some(Placement::Gpu));
    }

    #[test]
    fn verdict_and_findings_round_trip() {
        let s = json!({"metadata": {"annotations": {
            "gaia.dev/mode": "gpu_preferred", "gaia.dev/mode-source": "classifier",
            "gaia.dev/rationale": "big model", "gaia.dev/source-digest": "sha256:a",
            "gaia.dev/findings": r#"[{"kind":"model_load","file":"func.py","line":3,"heavy":true},{"kind":"from_the_future","file":"a.py","line":1,"x":1},{"file":"b.py"}]"#}}});
        let v = ServiceView::new(&s);
        let verdict = v.verdict().expect("verdict");
        assert_eq!(verdict.mode, ExecutionMode::GpuPreferred);
        assert_eq!(verdict.digest.as_deref(), Some("sha256:a"));
        let findings = v.findings().expect("present").expect("a list");
        assert_eq!(findings.len(), 2, "{findings:?}");
        assert_eq!(findings[0].kind, "model_load");
        assert!(findings[0].heavy);
        assert_eq!(findings[1].kind, "from_the_future");
        assert_eq!(v.mode(), Some(Ok(ExecutionMode::GpuPreferred)));
    }

    #[test]
    fn revisions_the_autoscaler_and_the_traffic_name() {
        let s = json!({"status": {"latestReadyRevisionName": "f-2", "traffic": [
            {"revisionName": "f-1", "percent": 20}, {"revisionName": "f-2", "percent": 80},
            {"revisionName": "f-0", "percent": 0}]}});
        let v = ServiceView::new(&s);
        assert_eq!(v.serving_revision(), Some("f-2"));
        assert_eq!(v.traffic_revisions(), ["f-1", "f-2"]);
        let idle = json!({"status": {"latestReadyRevisionName": "f-1"}});
        assert_eq!(ServiceView::new(&idle).traffic_revisions(), ["f-1"]);
    }
}
