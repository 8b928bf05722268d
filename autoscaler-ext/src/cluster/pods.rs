//! Pods, projected to what the autoscaler needs: where they run, which revision they belong to,
//! how many GPUs they hold, and the CPU capacity of their user container.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::ResourceExt;

use super::quantity::parse_quantity;

/// Knative's label naming a pod's revision.
pub const REVISION_LABEL: &str = "serving.knative.dev/revision";

/// Field selector of the pod watch: terminal pods hold no resources.
pub const NON_TERMINAL: &str = "status.phase!=Succeeded,status.phase!=Failed";

#[derive(Debug, Clone, PartialEq)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    /// The node it is bound to; `None` while Pending unscheduled.
    pub node: Option<String>,
    /// Its Knative revision, if it is a Knative pod.
    pub revision: Option<String>,
    /// GPUs it requests (the scheduler's view: max of the init containers and the sum of the
    /// app containers).
    pub gpus: u32,
    /// CPU limit of the user container, else its request (cores).
    pub cpu_capacity: Option<f64>,
}

/// Projects a pod; `None` for terminal pods.
pub fn pod_info(pod: &Pod, gpu_resource: &str, user_container: &str) -> Option<PodInfo> {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded") | Some("Failed")) {
        return None;
    }
    let spec = pod.spec.as_ref()?;
    let app: u32 = spec
        .containers
        .iter()
        .map(|c| container_amount(c, gpu_resource))
        .map(|g| g.ceil() as u32)
        .sum();
    let init: u32 = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| container_amount(c, gpu_resource).ceil() as u32)
        .max()
        .unwrap_or(0);
    let cpu_capacity = spec
        .containers
        .iter()
        .find(|c| c.name == user_container)
        .and_then(|c| {
            let r = c.resources.as_ref()?;
            amount(r.limits.as_ref(), "cpu").or_else(|| amount(r.requests.as_ref(), "cpu"))
        })
        .filter(|c| *c > 0.0);
    Some(PodInfo {
        namespace: pod.namespace().unwrap_or_default(),
        name: pod.name_any(),
        node: spec.node_name.clone().filter(|n| !n.is_empty()),
        revision: pod.labels().get(REVISION_LABEL).cloned(),
        gpus: app.max(init),
        cpu_capacity,
    })
}

/// Units of `resource` the pod requests, as the scheduler counts them (the largest init
/// container or the sum of the app containers). 0 for a terminal pod.
pub fn requested_units(pod: &Pod, resource: &str) -> u32 {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded") | Some("Failed")) {
        return 0;
    }
    let Some(spec) = pod.spec.as_ref() else {
        return 0;
    };
    let app: u32 = spec
        .containers
        .iter()
        .map(|c| container_amount(c, resource).ceil() as u32)
        .sum();
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| container_amount(c, resource).ceil() as u32)
        .max()
        .unwrap_or(0);
    app.max(init)
}

/// Extended resources must have requests equal to limits; take the limit, else the request.
fn container_amount(c: &Container, resource: &str) -> f64 {
    c.resources
        .as_ref()
        .and_then(|r| {
            amount(r.limits.as_ref(), resource).or_else(|| amount(r.requests.as_ref(), resource))
        })
        .unwrap_or(0.0)
}

fn amount(map: Option<&BTreeMap<String, Quantity>>, resource: &str) -> Option<f64> {
    map?.get(resource).and_then(|q| parse_quantity(&q.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn projects_gpus_cpu_and_revision() {
        let p = pod(json!({
            "metadata": {"name": "f-00002-deployment-abc", "namespace": "ns",
                         "labels": {"serving.knative.dev/revision": "f-00002"}},
            "spec": {"nodeName": "gpu-1",
                "initContainers": [{"name": "init", "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
                "containers": [
                    {"name": "user-container", "resources": {"limits": {"cpu": "1500m", "nvidia.com/gpu": "2"}}},
                    {"name": "queue-proxy", "resources": {"requests": {"cpu": "25m"}}}
                ]},
            "status": {"phase": "Running"}
        }));
        let info = pod_info(&p, "nvidia.com/gpu", "user-container").unwrap();
        assert_eq!(info.gpus, 2);
        assert_eq!(info.cpu_capacity, Some(1.5));
        assert_eq!(info.revision.as_deref(), Some("f-00002"));
        assert_eq!(info.node.as_deref(), Some("gpu-1"));
    }

    #[test]
    fn units_of_any_resource_as_the_scheduler_counts_them() {
        let p = pod(json!({
            "metadata": {"name": "f", "namespace": "ns"},
            "spec": {"nodeName": "gpu-1",
                "initContainers": [{"name": "init", "resources": {"limits": {"nvidia.com/gpu.shared": "3"}}}],
                "containers": [
                    {"name": "user-container", "resources": {"limits": {"nvidia.com/gpu.shared": "1"}}},
                    {"name": "side", "resources": {"requests": {"nvidia.com/gpu.shared": "1"}}}
                ]},
            "status": {"phase": "Running"}
        }));
        assert_eq!(requested_units(&p, "nvidia.com/gpu.shared"), 3);
        assert_eq!(requested_units(&p, "nvidia.com/gpu"), 0);
        let mut done = p.clone();
        done.status.as_mut().unwrap().phase = Some("Failed".into());
        assert_eq!(requested_units(&done, "nvidia.com/gpu.shared"), 0);
    }

    #[test]
    fn terminal_pods_are_dropped_and_requests_are_the_fallback() {
        let done = pod(
            json!({"metadata": {"name": "x"}, "spec": {"containers": []},
                              "status": {"phase": "Succeeded"}}),
        );
        assert!(pod_info(&done, "nvidia.com/gpu", "user-container").is_none());
        let pending = pod(json!({"metadata": {"name": "y", "namespace": "ns"},
            "spec": {"containers": [{"name": "user-container",
                "resources": {"requests": {"cpu": "2", "nvidia.com/gpu": "1"}}}]},
            "status": {"phase": "Pending"}}));
        let info = pod_info(&pending, "nvidia.com/gpu", "user-container").unwrap();
        assert_eq!(
            (info.node, info.gpus, info.cpu_capacity),
            (None, 1, Some(2.0))
        );
    }
}
