//! Free GPUs: allocatable `nvidia.com/gpu` on schedulable GPU-pool nodes, minus what the pods
//! bound there request, minus what Pending pods and our own recent promotions will take.

use std::collections::HashMap;

use super::nodes::NodeInfo;
use super::pods::PodInfo;
use gaia_policy::GpuAvailability;

/// Free GPUs per node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GpuPool {
    free: Vec<(String, u32)>,
}

impl GpuPool {
    /// `reserved`: GPUs per pod of promotions issued whose pods the API does not show yet.
    pub fn new(nodes: &[&NodeInfo], pods: &[&PodInfo], reserved: &[u32]) -> GpuPool {
        let mut used: HashMap<&str, u32> = HashMap::new();
        let mut pending = Vec::new();
        for p in pods.iter().filter(|p| p.gpus > 0) {
            match &p.node {
                Some(n) => *used.entry(n.as_str()).or_default() += p.gpus,
                None => pending.push(p.gpus),
            }
        }
        let mut pool = GpuPool {
            free: nodes
                .iter()
                .filter(|n| n.schedulable)
                .map(|n| {
                    let u = used.get(n.name.as_str()).copied().unwrap_or(0);
                    (n.name.clone(), n.gpus_allocatable.saturating_sub(u))
                })
                .collect(),
        };
        // Pending GPU pods will take free GPUs first; so will our promotions in flight.
        for need in pending.into_iter().chain(reserved.iter().copied()) {
            pool.take(need);
        }
        pool
    }

    /// A pool of free units per node, as counted elsewhere (a ladder rung's resource).
    pub fn from_free(free: Vec<(String, u32)>) -> GpuPool {
        GpuPool { free }
    }

    pub fn availability(&self) -> GpuAvailability {
        GpuAvailability {
            largest_free_on_a_node: self.free.iter().map(|(_, f)| *f).max().unwrap_or(0),
            free_total: self.free.iter().map(|(_, f)| *f).sum(),
        }
    }

    /// Takes `n` GPUs on one node (the one with the least room that fits, keeping large holes
    /// for large pods). False when no node has room.
    pub fn take(&mut self, n: u32) -> bool {
        if n == 0 {
            return true;
        }
        let best = self
            .free
            .iter_mut()
            .filter(|(_, f)| *f >= n)
            .min_by_key(|(_, f)| *f);
        match best {
            Some((_, f)) => {
                *f -= n;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, gpus: u32, schedulable: bool) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            gpus_allocatable: gpus,
            schedulable,
        }
    }

    fn pod(node: Option<&str>, gpus: u32) -> PodInfo {
        PodInfo {
            namespace: "ns".into(),
            name: "p".into(),
            node: node.map(Into::into),
            revision: None,
            gpus,
            cpu_capacity: None,
        }
    }

    #[test]
    fn allocatable_minus_bound_pending_and_reserved() {
        let nodes = [node("a", 2, true), node("b", 4, true), node("c", 8, false)];
        let pods = [
            pod(Some("a"), 1),
            pod(Some("b"), 1),
            pod(None, 2),
            pod(Some("x"), 3),
        ];
        let n: Vec<&NodeInfo> = nodes.iter().collect();
        let p: Vec<&PodInfo> = pods.iter().collect();
        let pool = GpuPool::new(&n, &p, &[]);
        // a: 1 free; b: 3 free - 2 for the pending pod = 1; c cordoned
        assert_eq!(
            pool.availability(),
            GpuAvailability {
                largest_free_on_a_node: 1,
                free_total: 2
            }
        );
        let mut pool = GpuPool::new(&n, &p, &[1]);
        assert_eq!(pool.availability().free_total, 1);
        assert!(pool.take(1));
        assert!(!pool.take(1));
        assert_eq!(pool.availability().free_total, 0);
    }

    #[test]
    fn overcommitted_nodes_count_zero_not_negative() {
        let nodes = [node("a", 1, true)];
        let pods = [pod(Some("a"), 1), pod(Some("a"), 1)];
        let pool = GpuPool::new(
            &nodes.iter().collect::<Vec<_>>(),
            &pods.iter().collect::<Vec<_>>(),
            &[],
        );
        assert_eq!(pool.availability().free_total, 0);
    }
}
