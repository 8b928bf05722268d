//! Free units per rung of a placement ladder: for each rung with a resource, allocatable units
//! of that resource minus what the pods bound there request, on the nodes the rung's placement
//! profile can use (its nodeSelector matches, every NoSchedule/NoExecute taint tolerated), minus
//! what Pending pods and our own moves in flight will take. The same counting as
//! [`super::gpu::GpuPool`] for `nvidia.com/gpu`, per rung.

use std::collections::HashMap;

use gaia_policy::ladder::LadderConfig;
use gaia_policy::GpuAvailability;

use super::gpu::GpuPool;
use super::nodes::NodeShape;

/// A pod's use of the ladder's resources.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PodUnits {
    /// The node it is bound to; `None` while Pending unscheduled.
    pub node: Option<String>,
    /// Units of rung `i`'s resource it requests (0 for the CPU rung).
    pub units: Vec<u32>,
}

impl PodUnits {
    pub fn uses_any(&self) -> bool {
        self.units.iter().any(|u| *u > 0)
    }
}

/// Free units per rung (`None` for a rung without a resource: the CPU).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RungPools {
    pools: Vec<Option<GpuPool>>,
}

impl RungPools {
    /// `reserved`: (rung, units per pod) of moves issued whose pods the API does not show yet.
    pub fn new(
        ladder: &LadderConfig,
        nodes: &[&NodeShape],
        pods: &[&PodUnits],
        reserved: &[(usize, u32)],
    ) -> RungPools {
        let pools = ladder
            .rungs
            .iter()
            .enumerate()
            .map(|(i, rung)| {
                let resource = rung.resource.as_deref()?;
                let mut used: HashMap<&str, u32> = HashMap::new();
                let mut pending = Vec::new();
                for p in pods {
                    let n = p.units.get(i).copied().unwrap_or(0);
                    if n == 0 {
                        continue;
                    }
                    match &p.node {
                        Some(node) => {
                            let u = used.entry(node.as_str()).or_default();
                            *u = u.saturating_add(n);
                        }
                        None => pending.push(n),
                    }
                }
                let free = nodes
                    .iter()
                    .filter(|n| n.schedulable && n.usable_by(&rung.profile))
                    .map(|n| {
                        let have = n.allocatable.get(resource).copied().unwrap_or(0);
                        let u = used.get(n.name.as_str()).copied().unwrap_or(0);
                        (n.name.clone(), have.saturating_sub(u))
                    })
                    .collect();
                let mut pool = GpuPool::from_free(free);
                let mine = reserved.iter().filter(|(r, _)| *r == i).map(|(_, n)| *n);
                for need in pending.into_iter().chain(mine) {
                    pool.take(need);
                }
                Some(pool)
            })
            .collect();
        RungPools { pools }
    }

    /// What [`gaia_policy::ladder::decide_ladder`] reads: per rung, the largest free on one node
    /// and the free total (`None` for the CPU rung).
    pub fn availability(&self) -> Vec<Option<GpuAvailability>> {
        self.pools
            .iter()
            .map(|p| p.as_ref().map(GpuPool::availability))
            .collect()
    }

    /// Takes `n` units of rung `rung` on one node. False when no node has room (or the rung has
    /// no resource).
    pub fn take(&mut self, rung: usize, n: u32) -> bool {
        match self.pools.get_mut(rung) {
            Some(Some(pool)) => pool.take(n),
            _ => n == 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::cluster::nodes::Taint;

    fn ladder() -> LadderConfig {
        LadderConfig::cpu_shared_gpu(143_771.0, 7)
    }

    fn node(name: &str, shared: u32, gpus: u32, taints: &[(&str, &str)]) -> NodeShape {
        let mut allocatable = BTreeMap::new();
        if shared > 0 {
            allocatable.insert("nvidia.com/gpu.shared".to_string(), shared);
        }
        if gpus > 0 {
            allocatable.insert("nvidia.com/gpu".to_string(), gpus);
        }
        NodeShape {
            name: name.into(),
            labels: BTreeMap::from([("nvidia.com/gpu.present".into(), "true".into())]),
            taints: taints
                .iter()
                .map(|(k, e)| Taint {
                    key: (*k).into(),
                    value: String::new(),
                    effect: (*e).into(),
                })
                .collect(),
            allocatable,
            schedulable: true,
        }
    }

    fn pod(node: Option<&str>, shared: u32, gpus: u32) -> PodUnits {
        PodUnits {
            node: node.map(Into::into),
            units: vec![0, shared, gpus],
        }
    }

    fn avail(largest: u32, total: u32) -> Option<GpuAvailability> {
        Some(GpuAvailability {
            largest_free_on_a_node: largest,
            free_total: total,
        })
    }

    #[test]
    fn free_units_per_rung_minus_bound_pending_and_reserved() {
        let nodes = [
            node("sliced", 7, 0, &[("nvidia.com/gpu", "NoSchedule")]),
            node("whole", 0, 2, &[("nvidia.com/gpu", "NoSchedule")]),
        ];
        let pods = [
            pod(Some("sliced"), 1, 0),
            pod(Some("sliced"), 1, 0),
            pod(None, 1, 0),
            pod(Some("whole"), 0, 1),
        ];
        let n: Vec<&NodeShape> = nodes.iter().collect();
        let p: Vec<&PodUnits> = pods.iter().collect();
        let pools = RungPools::new(&ladder(), &n, &p, &[]);
        // cpu: not bounded; shared: 7 - 2 bound - 1 pending; whole: 2 - 1
        assert_eq!(pools.availability(), vec![None, avail(4, 4), avail(1, 1)]);
        let mut pools = RungPools::new(&ladder(), &n, &p, &[(1, 1), (2, 1)]);
        assert_eq!(pools.availability(), vec![None, avail(3, 3), avail(0, 0)]);
        assert!(pools.take(1, 3));
        assert!(!pools.take(1, 1));
        assert!(!pools.take(2, 1));
        assert!(pools.take(0, 0));
    }

    #[test]
    fn only_nodes_the_rung_profile_can_use_count() {
        let mut unlabelled = node("plain", 7, 0, &[]);
        unlabelled.labels.clear();
        let mut cordoned = node("cordoned", 7, 0, &[]);
        cordoned.schedulable = false;
        let nodes = [
            // a taint the rung does not tolerate: none of its 7 slices are free to us
            node(
                "team",
                7,
                0,
                &[("nvidia.com/gpu", "NoSchedule"), ("team", "NoSchedule")],
            ),
            node("evicting", 7, 0, &[("maint", "NoExecute")]),
            unlabelled,
            cordoned,
            // a soft taint keeps nothing off
            node("ok", 2, 0, &[("soft", "PreferNoSchedule")]),
        ];
        let n: Vec<&NodeShape> = nodes.iter().collect();
        let pools = RungPools::new(&ladder(), &n, &[], &[]);
        assert_eq!(pools.availability(), vec![None, avail(2, 2), avail(0, 0)]);
        // tolerating the team's taint opens its node
        let mut l = ladder();
        l.rungs[1]
            .profile
            .tolerations
            .push(gaia_contract::placement::Toleration {
                key: Some("team".into()),
                operator: Some("Exists".into()),
                value: None,
                effect: None,
                toleration_seconds: None,
            });
        let pools = RungPools::new(&l, &n, &[], &[]);
        assert_eq!(pools.availability()[1], avail(7, 9));
    }
}
