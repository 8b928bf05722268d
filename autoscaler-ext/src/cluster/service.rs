//! Knative Services, as the autoscaler sees them: the full object (to patch it) plus what was
//! read from it once, when it changed.

use std::time::Duration;

use gaia_contract::placement::user_container_index;
use gaia_contract::{keys, ExecutionMode, Observed, Placement, ServiceView};
use gaia_policy::ladder::{LadderConfig, LadderMemory};
use gaia_policy::Rollout;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::Value;

/// Knative serving.knative.dev/v1 Service.
pub fn api_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("serving.knative.dev", "v1", "Service"),
        "services",
    )
}

/// A Service that carries `gaia.dev/mode`.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedService {
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    /// The Service as JSON, as read.
    pub object: Value,
    /// `Err(text)` when the annotation is not a concrete mode.
    pub mode: Result<ExecutionMode, String>,
    /// The placement the template asks for.
    pub placement: Placement,
    pub rollout: Rollout,
    /// The revision serving it (latest ready), if any.
    pub serving_revision: Option<String>,
    /// `None`: no `gaia.dev/latency-slo`; `Some(Err(text))`: unreadable.
    pub slo: Option<Result<Duration, String>>,
    /// `Err(message)`: `gaia.dev/observed` unreadable.
    pub observed: Result<Observed, String>,
    /// `autoscaling.knative.dev/min-scale` of the template (at least 1).
    pub min_scale: u32,
    /// Since when the Service has been as it is (`ServiceView::in_place_since`: the later of
    /// its creation and its last Ready transition).
    pub created: Option<jiff::Timestamp>,
    /// `gaia.dev/rung` on the template: the ladder rung it was placed for, if a ladder placed it.
    pub rung: Option<String>,
    /// `gaia.dev/ladder`, the ladder's memory (empty when absent); `Err(message)`: unreadable.
    pub ladder: Result<LadderMemory, String>,
}

impl ManagedService {
    /// `None` for Services without `gaia.dev/mode` (not Gaia's business).
    pub fn from_dynamic(obj: &DynamicObject, gpu_resource: &str) -> Option<ManagedService> {
        let object = serde_json::to_value(obj).ok()?;
        Self::from_value(object, gpu_resource)
    }

    pub fn from_value(object: Value, gpu_resource: &str) -> Option<ManagedService> {
        let v = ServiceView::new(&object);
        let mode = v.mode()?;
        let placement = v
            .placed_for()
            .unwrap_or_else(|| infer_placement(&object, gpu_resource));
        let own = |s: Option<&str>| s.map(str::to_string);
        Some(ManagedService {
            namespace: v.namespace().to_string(),
            name: v.name().to_string(),
            uid: own(v.uid()),
            resource_version: own(v.resource_version()),
            mode,
            placement,
            rollout: rollout(&object),
            serving_revision: own(v.serving_revision()),
            slo: v.latency_slo(),
            observed: v.observed().map_err(|e| e.to_string()),
            min_scale: v.min_scale(),
            created: v.in_place_since(),
            rung: v
                .template_annotation(keys::RUNG)
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_string),
            ladder: LadderMemory::from_annotation(v.meta_annotation(keys::LADDER))
                .map_err(|e| e.to_string()),
            object,
        })
    }
}

impl ManagedService {
    /// The ladder rung the template is on: the one `gaia.dev/rung` names; else (a template the
    /// ladder never placed, e.g. by the webhook) the highest rung whose resource the user
    /// container asks for; else the first rung for a CPU template and the top one for a GPU one.
    pub fn rung_in(&self, ladder: &LadderConfig) -> usize {
        if let Some(i) = self.rung.as_deref().and_then(|r| ladder.index_of(r)) {
            return i;
        }
        let asked = user_limits(&self.object);
        if let Some(i) = (1..ladder.rungs.len()).rev().find(|&i| {
            ladder.rungs[i]
                .resource
                .as_deref()
                .is_some_and(|r| asked.iter().any(|a| a == r))
        }) {
            return i;
        }
        match self.placement {
            Placement::Cpu => 0,
            Placement::Gpu => ladder.rungs.len().saturating_sub(1),
        }
    }
}

/// The resource names the user container's limits and requests name.
fn user_limits(object: &Value) -> Vec<String> {
    let Some(containers) = object
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
    else {
        return Vec::new();
    };
    let user = &containers[user_container_index(containers)];
    ["limits", "requests"]
        .iter()
        .filter_map(|k| user.pointer(&format!("/resources/{k}"))?.as_object())
        .flat_map(|m| m.keys().cloned())
        .collect()
}

/// A template never placed by Gaia: GPU if its user container asks for a GPU.
fn infer_placement(object: &Value, gpu_resource: &str) -> Placement {
    let Some(containers) = object
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
    else {
        return Placement::Cpu;
    };
    if containers.is_empty() {
        return Placement::Cpu;
    }
    let user = &containers[user_container_index(containers)];
    let asks = ["limits", "requests"].iter().any(|k| {
        user.pointer(&format!("/resources/{k}"))
            .and_then(|m| m.get(gpu_resource))
            .is_some()
    });
    if asks {
        Placement::Gpu
    } else {
        Placement::Cpu
    }
}

/// Settled when the status has caught up with the spec, the latest created revision is the
/// ready one, the Service is Ready, and all traffic follows the latest revision.
///
/// Ready matters: Knative bumps `observedGeneration` after every reconcile, also the first one
/// after a patch, before the Configuration has made the new revision; the status then still
/// names the old revision as both created and ready, with Ready Unknown. Taken as settled, a
/// promotion looked done before its pod existed, its GPU reservation was dropped, and the next
/// cycle promoted another Service onto the same GPU (the soak: six promotions onto two GPUs).
fn rollout(object: &Value) -> Rollout {
    let pinned = object
        .pointer("/spec/traffic")
        .and_then(Value::as_array)
        .is_some_and(|targets| {
            targets.iter().any(|t| {
                t.get("percent").and_then(Value::as_i64).unwrap_or(0) > 0
                    && t.get("latestRevision").and_then(Value::as_bool) != Some(true)
            })
        });
    if pinned {
        return Rollout::TrafficPinned;
    }
    let generation = object
        .pointer("/metadata/generation")
        .and_then(Value::as_i64);
    let observed = object
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64);
    let created = object
        .pointer("/status/latestCreatedRevisionName")
        .and_then(Value::as_str);
    let ready = object
        .pointer("/status/latestReadyRevisionName")
        .and_then(Value::as_str);
    let is_ready = ServiceView::new(object).ready() == Some("True");
    match (generation, observed, created, ready) {
        (Some(g), Some(o), Some(c), Some(r)) if g == o && c == r && is_ready => Rollout::Settled,
        _ => Rollout::InProgress,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn ksvc(mode: &str, placement: Option<&str>) -> Value {
        let mut tmpl_ann = serde_json::Map::new();
        if let Some(p) = placement {
            tmpl_ann.insert(gaia_contract::keys::PLACED_FOR.into(), json!(p));
        }
        json!({
            "apiVersion": "serving.knative.dev/v1", "kind": "Service",
            "metadata": {"name": "f", "namespace": "ns", "uid": "u1", "resourceVersion": "7",
                         "generation": 2, "annotations": {"gaia.dev/mode": mode}},
            "spec": {"template": {"metadata": {"annotations": tmpl_ann},
                                  "spec": {"containers": [{"image": "x"}]}}},
            "status": {"observedGeneration": 2, "latestCreatedRevisionName": "f-00002",
                       "latestReadyRevisionName": "f-00002",
                       "conditions": [{"type": "Ready", "status": "True"}]}
        })
    }

    #[test]
    fn reads_mode_placement_rollout_and_memory() {
        let s = ManagedService::from_value(ksvc("cpu_preferred", Some("gpu")), "nvidia.com/gpu")
            .unwrap();
        assert_eq!(s.mode, Ok(ExecutionMode::CpuPreferred));
        assert_eq!(s.placement, Placement::Gpu);
        assert_eq!(s.rollout, Rollout::Settled);
        assert_eq!(s.serving_revision.as_deref(), Some("f-00002"));
        assert_eq!(s.observed, Ok(Observed::default()));
        assert_eq!((s.min_scale, s.slo.clone()), (1, None));
        assert_eq!(s.resource_version.as_deref(), Some("7"));
    }

    #[test]
    fn services_without_mode_are_not_managed() {
        let mut v = ksvc("cpu", None);
        v["metadata"]["annotations"] = json!({});
        assert!(ManagedService::from_value(v, "nvidia.com/gpu").is_none());
    }

    #[test]
    fn rollouts_in_progress_and_pinned_traffic() {
        let mut v = ksvc("cpu_preferred", None);
        v["status"]["latestCreatedRevisionName"] = json!("f-00003");
        assert_eq!(
            ManagedService::from_value(v.clone(), "g").unwrap().rollout,
            Rollout::InProgress
        );
        let mut v = ksvc("cpu_preferred", None);
        v["metadata"]["generation"] = json!(3);
        assert_eq!(
            ManagedService::from_value(v, "g").unwrap().rollout,
            Rollout::InProgress
        );
        // the first reconcile after a patch: observedGeneration bumped, the Configuration not
        // yet caught up (the old revision still created and ready), Ready Unknown
        let mut v = ksvc("cpu_preferred", None);
        v["metadata"]["generation"] = json!(3);
        v["status"]["observedGeneration"] = json!(3);
        v["status"]["conditions"] = json!([{"type": "ConfigurationsReady", "status": "Unknown"},
                                           {"type": "Ready", "status": "Unknown"}]);
        assert_eq!(
            ManagedService::from_value(v, "g").unwrap().rollout,
            Rollout::InProgress
        );
        let mut v = ksvc("cpu_preferred", None);
        v["status"]["conditions"] = json!([{"type": "Ready", "status": "False"}]);
        assert_eq!(
            ManagedService::from_value(v, "g").unwrap().rollout,
            Rollout::InProgress
        );
        let mut v = ksvc("cpu_preferred", None);
        v["spec"]["traffic"] = json!([{"revisionName": "f-00001", "percent": 100}]);
        assert_eq!(
            ManagedService::from_value(v, "g").unwrap().rollout,
            Rollout::TrafficPinned
        );
        let mut v = ksvc("cpu_preferred", None);
        v["spec"]["traffic"] = json!([{"latestRevision": true, "percent": 100}]);
        assert_eq!(
            ManagedService::from_value(v, "g").unwrap().rollout,
            Rollout::Settled
        );
    }

    #[test]
    fn bad_annotations_are_reported_not_guessed() {
        let mut v = ksvc("fast", None);
        v["metadata"]["annotations"]["gaia.dev/latency-slo"] = json!("soon");
        v["metadata"]["annotations"]["gaia.dev/observed"] = json!("{not json");
        v["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] =
            json!("3");
        let s = ManagedService::from_value(v, "g").unwrap();
        assert_eq!(s.mode, Err("fast".into()));
        assert_eq!(s.slo, Some(Err("soon".into())));
        assert!(s.observed.is_err());
        assert_eq!(s.min_scale, 3);
    }

    #[test]
    fn the_rung_is_read_from_the_template_or_inferred() {
        let ladder = LadderConfig::cpu_shared_gpu(143_771.0, 7);
        let mut v = ksvc("cpu_preferred", Some("gpu"));
        v["spec"]["template"]["metadata"]["annotations"]["gaia.dev/rung"] = json!("gpu-shared");
        v["metadata"]["annotations"]["gaia.dev/ladder"] = json!("{\"uselessPromotions\":2}");
        let s = ManagedService::from_value(v.clone(), "nvidia.com/gpu").unwrap();
        assert_eq!(s.rung.as_deref(), Some("gpu-shared"));
        assert_eq!(s.rung_in(&ladder), 1);
        assert_eq!(s.ladder.as_ref().unwrap().useless_promotions, 2);
        // a rung no longer configured: from the limits
        v["spec"]["template"]["metadata"]["annotations"]["gaia.dev/rung"] = json!("gone");
        v["spec"]["template"]["spec"]["containers"][0]["resources"] =
            json!({"limits": {"nvidia.com/gpu.shared": "1"}});
        let s = ManagedService::from_value(v.clone(), "nvidia.com/gpu").unwrap();
        assert_eq!(s.rung_in(&ladder), 1);
        // placed by the webhook for a whole GPU: the top rung
        let mut w = ksvc("gpu_preferred", Some("gpu"));
        w["spec"]["template"]["spec"]["containers"][0]["resources"] =
            json!({"limits": {"nvidia.com/gpu": "1"}});
        let s = ManagedService::from_value(w, "nvidia.com/gpu").unwrap();
        assert_eq!(s.rung_in(&ladder), 2);
        let s = ManagedService::from_value(ksvc("cpu_preferred", Some("cpu")), "g").unwrap();
        assert_eq!((s.rung_in(&ladder), s.rung.clone()), (0, None));
        v["metadata"]["annotations"]["gaia.dev/ladder"] = json!("{oops");
        assert!(ManagedService::from_value(v, "g").unwrap().ladder.is_err());
    }

    #[test]
    fn unplaced_templates_are_read_from_their_gpu_limit() {
        let mut v = ksvc("gpu_preferred", None);
        v["spec"]["template"]["spec"]["containers"][0]["resources"] =
            json!({"limits": {"nvidia.com/gpu": "1"}});
        assert_eq!(
            ManagedService::from_value(v, "nvidia.com/gpu")
                .unwrap()
                .placement,
            Placement::Gpu
        );
        let v = ksvc("gpu_preferred", None);
        assert_eq!(
            ManagedService::from_value(v, "nvidia.com/gpu")
                .unwrap()
                .placement,
            Placement::Cpu
        );
    }
}
