//! GPU-pool nodes, projected to their allocatable GPUs and whether new pods may land there;
//! and, for a placement ladder, to what a rung's placement profile can use on them (its labels,
//! its NoSchedule/NoExecute taints, the allocatable units of the rungs' resources).

use std::collections::BTreeMap;

use gaia_contract::PlacementProfile;
use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;

use super::quantity::parse_quantity;

#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    pub name: String,
    pub gpus_allocatable: u32,
    /// Ready and not cordoned.
    pub schedulable: bool,
}

/// Label selector text (`k=v,k2=v2`) for the node watch.
pub fn label_selector(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

pub fn node_info(node: &Node, gpu_resource: &str) -> Option<NodeInfo> {
    let status = node.status.as_ref();
    let gpus = status
        .and_then(|s| s.allocatable.as_ref())
        .and_then(|a| a.get(gpu_resource))
        .and_then(|q| parse_quantity(&q.0))
        .unwrap_or(0.0)
        .floor() as u32;
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let cordoned = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    Some(NodeInfo {
        name: node.name_any(),
        gpus_allocatable: gpus,
        schedulable: ready && !cordoned,
    })
}

/// A taint that keeps pods off a node unless they tolerate it (`NoSchedule`, `NoExecute`;
/// `PreferNoSchedule` does not keep anything off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: String,
}

/// A node as the placement profiles see it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeShape {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// The NoSchedule and NoExecute taints only.
    pub taints: Vec<Taint>,
    /// Allocatable units of the resources asked for (whole units; absent: none).
    pub allocatable: BTreeMap<String, u32>,
    /// Ready and not cordoned.
    pub schedulable: bool,
}

fn ready_and_uncordoned(node: &Node) -> bool {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let cordoned = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    ready && !cordoned
}

/// Projects a node for the ladder: its labels, blocking taints and the allocatable units of
/// `resources`.
pub fn node_shape(node: &Node, resources: &[&str]) -> NodeShape {
    let allocatable = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
    NodeShape {
        name: node.name_any(),
        labels: node.labels().clone(),
        taints: node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .into_iter()
            .flatten()
            .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
            .map(|t| Taint {
                key: t.key.clone(),
                value: t.value.clone().unwrap_or_default(),
                effect: t.effect.clone(),
            })
            .collect(),
        allocatable: resources
            .iter()
            .filter_map(|r| {
                let q = allocatable?.get(*r)?;
                let n = parse_quantity(&q.0)?.floor();
                (n >= 1.0).then(|| (r.to_string(), n.min(f64::from(u32::MAX)) as u32))
            })
            .collect(),
        schedulable: ready_and_uncordoned(node),
    }
}

impl NodeShape {
    /// Can a pod placed with `profile` land here: the node has every label of the profile's
    /// nodeSelector, and the profile tolerates every NoSchedule/NoExecute taint of the node?
    pub fn usable_by(&self, profile: &PlacementProfile) -> bool {
        profile
            .node_selector
            .iter()
            .all(|(k, v)| self.labels.get(k) == Some(v))
            && self
                .taints
                .iter()
                .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
                .all(|t| profile.tolerations.iter().any(|tol| tolerates(tol, t)))
    }
}

/// Kubernetes' rule: an empty key with `Exists` tolerates everything; otherwise the keys must
/// be equal, the effects equal (an empty effect matches every effect) and, for `Equal` (the
/// default operator), the values equal.
pub fn tolerates(t: &gaia_contract::placement::Toleration, taint: &Taint) -> bool {
    t.tolerates(&taint.key, &taint.value, &taint.effect)
}

/// [`node_info`] for the two-placement path: a node the GPU profile cannot use (a label of its
/// nodeSelector missing, or a NoSchedule/NoExecute taint it does not tolerate) has no GPU a
/// promotion could get, so it counts none.
pub fn gpu_node_info(node: &Node, gpu_resource: &str, gpu: &PlacementProfile) -> Option<NodeInfo> {
    let mut info = node_info(node, gpu_resource)?;
    if !node_shape(node, &[]).usable_by(gpu) {
        info.gpus_allocatable = 0;
    }
    Some(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gpu_node(taints: serde_json::Value, labels: serde_json::Value) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": "gpu-1", "labels": labels},
            "spec": {"taints": taints},
            "status": {"allocatable": {"nvidia.com/gpu": "4", "nvidia.com/gpu.shared": "7"},
                       "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap()
    }

    #[test]
    fn a_tainted_node_the_gpu_profile_does_not_tolerate_has_no_free_gpu() {
        let gpu = gaia_contract::PlacementProfiles::default().gpu;
        let present = json!({"nvidia.com/gpu.present": "true"});
        // the GPU operator's taint: tolerated by the default GPU profile
        let ok = gpu_node(
            json!([{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]),
            present.clone(),
        );
        assert_eq!(
            gpu_node_info(&ok, "nvidia.com/gpu", &gpu)
                .unwrap()
                .gpus_allocatable,
            4
        );
        // a team's taint nobody tolerates: before, its 4 GPUs were counted as free
        let reserved = gpu_node(
            json!([{"key": "nvidia.com/gpu", "effect": "NoSchedule"},
                   {"key": "team", "value": "vision", "effect": "NoSchedule"}]),
            present.clone(),
        );
        assert_eq!(
            gpu_node_info(&reserved, "nvidia.com/gpu", &gpu)
                .unwrap()
                .gpus_allocatable,
            0
        );
        // NoExecute keeps pods off too; PreferNoSchedule does not
        let evicting = gpu_node(
            json!([{"key": "maint", "effect": "NoExecute"}]),
            present.clone(),
        );
        assert_eq!(
            gpu_node_info(&evicting, "nvidia.com/gpu", &gpu)
                .unwrap()
                .gpus_allocatable,
            0
        );
        let soft = gpu_node(
            json!([{"key": "maint", "effect": "PreferNoSchedule"}]),
            present.clone(),
        );
        assert_eq!(
            gpu_node_info(&soft, "nvidia.com/gpu", &gpu)
                .unwrap()
                .gpus_allocatable,
            4
        );
        // a node without the profile's label is no GPU node for it
        let unlabelled = gpu_node(json!([]), json!({}));
        assert_eq!(
            gpu_node_info(&unlabelled, "nvidia.com/gpu", &gpu)
                .unwrap()
                .gpus_allocatable,
            0
        );
    }

    #[test]
    fn tolerations_follow_the_kubernetes_rules() {
        use gaia_contract::placement::Toleration;
        let taint = Taint {
            key: "k".into(),
            value: "v".into(),
            effect: "NoSchedule".into(),
        };
        let tol =
            |key: Option<&str>, op: Option<&str>, value: Option<&str>, effect: Option<&str>| {
                Toleration {
                    key: key.map(Into::into),
                    operator: op.map(Into::into),
                    value: value.map(Into::into),
                    effect: effect.map(Into::into),
                    toleration_seconds: None,
                }
            };
        assert!(tolerates(
            &tol(Some("k"), Some("Exists"), None, None),
            &taint
        ));
        assert!(tolerates(
            &tol(Some("k"), None, Some("v"), Some("NoSchedule")),
            &taint
        ));
        assert!(tolerates(
            &tol(Some("k"), Some("Equal"), Some("v"), None),
            &taint
        ));
        assert!(!tolerates(
            &tol(Some("k"), Some("Equal"), Some("w"), None),
            &taint
        ));
        assert!(!tolerates(
            &tol(Some("k"), Some("Exists"), None, Some("NoExecute")),
            &taint
        ));
        assert!(!tolerates(
            &tol(Some("other"), Some("Exists"), None, None),
            &taint
        ));
        assert!(tolerates(&tol(None, Some("Exists"), None, None), &taint));
        assert!(!tolerates(&tol(None, None, None, None), &taint));
    }

    #[test]
    fn a_node_shape_reads_labels_blocking_taints_and_units() {
        let n = gpu_node(
            json!([{"key": "nvidia.com/gpu", "effect": "NoSchedule"},
                   {"key": "soft", "effect": "PreferNoSchedule"}]),
            json!({"nvidia.com/gpu.present": "true"}),
        );
        let shape = node_shape(&n, &["nvidia.com/gpu.shared", "nvidia.com/mig-1g.18gb"]);
        assert_eq!(shape.taints.len(), 1);
        assert_eq!(
            shape.allocatable,
            BTreeMap::from([("nvidia.com/gpu.shared".to_string(), 7)])
        );
        assert!(shape.schedulable);
        let mut shared = gaia_contract::PlacementProfiles::default().gpu;
        assert!(shape.usable_by(&shared));
        shared.tolerations.clear();
        assert!(!shape.usable_by(&shared));
    }

    #[test]
    fn reads_allocatable_and_readiness() {
        let n: Node = serde_json::from_value(json!({
            "metadata": {"name": "gpu-1"},
            "status": {"allocatable": {"nvidia.com/gpu": "4"},
                       "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        let info = node_info(&n, "nvidia.com/gpu").unwrap();
        assert_eq!((info.gpus_allocatable, info.schedulable), (4, true));
        let cordoned: Node = serde_json::from_value(json!({
            "metadata": {"name": "gpu-2"}, "spec": {"unschedulable": true},
            "status": {"allocatable": {"nvidia.com/gpu": "4"},
                       "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        assert!(!node_info(&cordoned, "nvidia.com/gpu").unwrap().schedulable);
        assert_eq!(
            label_selector(&[("a".into(), "1".into()), ("b".into(), "2".into())].into()),
            "a=1,b=2"
        );
    }
}
