//! GPU-pool nodes, projected to their allocatable GPUs and whether new pods may land there.

use std::collections::BTreeMap;

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
