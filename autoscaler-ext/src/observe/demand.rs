//! Which revisions' latency quantiles a cycle's decisions read, so that the tiered shape asks
//! Prometheus for the bucket histograms of those only (docs/autoscaler.md, "Observing").
//!
//! The rule mirrors `gaia_policy::decide` (rules 1–4): a pinned Service, one whose rollout is not
//! settled, one with an unreadable annotation or a truncated-latency objective reads no
//! quantile; a Service on CPU reads them only when its short-window p95 exceeds the SLO with its
//! tolerance (else it holds `within_slo` whatever the value); a Service on GPU, and every Service
//! on a ladder, reads them all. `tests` below checks the claim against `decide` itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use gaia_contract::Placement;
use gaia_policy::{PolicyConfig, Rollout};

use super::RevisionKey;
use crate::cluster::service::ManagedService;

/// What one revision's decision reads of its quantiles.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Need {
    /// Every quantile (p95 short and long, p50 short).
    Quantiles,
    /// On CPU: the quantiles matter only when the short-window p95 is above `violation_ms`
    /// (the SLO with its tolerance). A p95 known to be at most a bucket bound that is at most
    /// `violation_ms` (and below the latency ceiling) decides exactly as its value would.
    UnlessAbove { violation_ms: f64 },
}

/// The revisions a cycle decides on, and what each reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Demand {
    pub revisions: HashMap<RevisionKey, Need>,
    /// `policy.latencyCeiling` in milliseconds: a p95 at or above it is lifted to the mean, so
    /// no bound at or above it stands in for a value.
    pub ceiling_ms: f64,
}

impl Demand {
    /// Every revision in `keys` reads every quantile (the ladder; tests).
    pub fn all<'a>(keys: impl IntoIterator<Item = &'a RevisionKey>, cfg: &PolicyConfig) -> Demand {
        Demand {
            revisions: keys
                .into_iter()
                .map(|k| (k.clone(), Need::Quantiles))
                .collect(),
            ceiling_ms: ms(cfg.latency_ceiling),
        }
    }

    /// What `decide` reads for each of `services` (the two-placement cycle).
    pub fn for_decide(
        services: &[Arc<ManagedService>],
        cfg: &PolicyConfig,
        default_slo: Duration,
        latency_truncated: bool,
    ) -> Demand {
        let mut revisions = HashMap::new();
        for svc in services {
            let (Some(rev), Ok(mode), Ok(_)) = (&svc.serving_revision, &svc.mode, &svc.observed)
            else {
                continue;
            };
            if mode.is_pinned() || svc.rollout != Rollout::Settled {
                continue;
            }
            let slo = match &svc.slo {
                None => default_slo,
                Some(Ok(d)) => *d,
                Some(Err(_)) => continue,
            };
            let need = match svc.placement {
                Placement::Cpu if latency_truncated && slo < Duration::from_secs(1) => continue,
                Placement::Cpu => Need::UnlessAbove {
                    violation_ms: ms(slo) * (1.0 + cfg.promote.slo_tolerance),
                },
                Placement::Gpu => Need::Quantiles,
            };
            merge(
                &mut revisions,
                RevisionKey::new(&svc.namespace, rev.as_str()),
                need,
            );
        }
        Demand {
            revisions,
            ceiling_ms: ms(cfg.latency_ceiling),
        }
    }

    /// What the ladder reads: every quantile of every served revision.
    pub fn for_ladder(services: &[Arc<ManagedService>], cfg: &PolicyConfig) -> Demand {
        let keys: Vec<RevisionKey> = services
            .iter()
            .filter_map(|s| Some(RevisionKey::new(&s.namespace, s.serving_revision.as_ref()?)))
            .collect();
        Demand::all(&keys, cfg)
    }

    /// The largest of `bounds_ms` that may stand in for a p95 under `need`: at most the
    /// violation threshold and below the ceiling.
    pub fn bound_for(&self, need: Need, bounds_ms: &[f64]) -> Option<f64> {
        let Need::UnlessAbove { violation_ms } = need else {
            return None;
        };
        bounds_ms
            .iter()
            .copied()
            .filter(|b| b.is_finite() && *b <= violation_ms && *b < self.ceiling_ms)
            .fold(None, |best: Option<f64>, b| {
                Some(best.map_or(b, |x| x.max(b)))
            })
    }
}

/// Two Services serving one revision: the stricter need wins.
fn merge(revisions: &mut HashMap<RevisionKey, Need>, key: RevisionKey, need: Need) {
    let merged = match (revisions.get(&key), need) {
        (None, n) => n,
        (Some(Need::Quantiles), _) | (_, Need::Quantiles) => Need::Quantiles,
        (Some(Need::UnlessAbove { violation_ms: a }), Need::UnlessAbove { violation_ms: b }) => {
            Need::UnlessAbove {
                violation_ms: a.min(b),
            }
        }
    };
    revisions.insert(key, merged);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;
    use gaia_contract::{ExecutionMode, Observed, PlacementMove, RememberedLatency};
    use gaia_policy::{decide, CpuUse, GpuAvailability, RevisionStats, ServiceState};

    /// xorshift: the same pseudo-random inputs every run.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
            xs[(self.next() % xs.len() as u64) as usize]
        }
        fn maybe(&mut self, v: f64) -> Option<f64> {
            (!self.next().is_multiple_of(5)).then_some(v)
        }
    }

    const BOUNDS_MS: &[f64] = &[
        5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
        10000.0,
    ];

    /// The claim the tiered shape rests on, over 200,000 arbitrary Services on CPU and GPU:
    /// wherever the p95 is at most the bound `bound_for` picks, `decide` with the bound in
    /// place of the p95 and without the other quantiles gives the same outcome (decision,
    /// note and streak) as with every figure; and a Service `for_decide` leaves out decides
    /// the same without any quantile.
    #[test]
    fn a_bound_within_the_objective_decides_exactly_as_the_quantiles() {
        let cfg = PolicyConfig::default();
        let now: jiff::Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut substituted = 0;
        for _ in 0..200_000 {
            let slo = Duration::from_millis(rng.pick(&[100, 250, 500, 800, 1000, 2000, 9500]));
            let placement = rng.pick(&[Placement::Cpu, Placement::Cpu, Placement::Gpu]);
            let mut observed = Observed::default();
            if rng.next().is_multiple_of(2) {
                observed.cpu = Some(RememberedLatency {
                    p95_ms: rng.pick(&[300.0, 900.0, 2000.0]),
                    rps: rng.pick(&[0.5, 2.0, 10.0]),
                    at: now,
                });
                observed.last_move = Some(PlacementMove {
                    from: Placement::Cpu,
                    to: placement,
                    at: jiff::Timestamp::from_second(now.as_second() - rng.pick(&[30, 400, 4000]))
                        .unwrap(),
                    reason: String::new(),
                    kind: None,
                });
            }
            let state = ServiceState {
                mode: rng.pick(&[ExecutionMode::CpuPreferred, ExecutionMode::GpuPreferred]),
                placement,
                rollout: Rollout::Settled,
                slo,
                observed,
                gpus_needed: 1,
                gpu_pods: 1,
                violation_streak: rng.pick(&[0, 1, 2, 5]),
                created: None,
                latency_truncated: rng.next().is_multiple_of(4),
                elastic_gpu_pool: None,
            };
            let p95 = rng.pick(BOUNDS_MS) * rng.pick(&[0.3, 0.8, 0.99, 1.0, 1.2]);
            let long = p95 * rng.pick(&[0.5, 1.0, 2.0]);
            let short_rate = rng.pick(&[0.0, 0.01, 0.1, 1.0, 5.0]);
            let long_rate = rng.pick(&[0.0, 0.01, 1.0, 5.0]);
            let mean = p95 * rng.pick(&[0.3, 1.0, 3.0]);
            let full = RevisionStats {
                p50_short_ms: rng.maybe(p95 * 0.6),
                p95_short_ms: rng.maybe(p95),
                p95_long_ms: rng.maybe(long),
                rps_short: rng.maybe(short_rate),
                rps_long: rng.maybe(long_rate),
                mean_latency_ms: rng.maybe(mean),
                cpu: (!rng.next().is_multiple_of(4)).then_some(CpuUse {
                    cores: rng.pick(&[0.01, 0.5, 0.95]),
                    capacity: 1.0,
                }),
                pods: rng.pick(&[0, 1, 2]),
                gpu: None,
            };
            let gpu = GpuAvailability {
                largest_free_on_a_node: rng.pick(&[0, 1]),
                free_total: rng.pick(&[0, 1, 4]),
            };
            let want = decide(&state, Some(&full), gpu, &cfg, now);
            let svc_demand = match placement {
                Placement::Cpu if state.latency_truncated && slo < Duration::from_secs(1) => None,
                Placement::Cpu => Some(Need::UnlessAbove {
                    violation_ms: ms(slo) * (1.0 + cfg.promote.slo_tolerance),
                }),
                Placement::Gpu => Some(Need::Quantiles),
            };
            let demand = Demand {
                revisions: HashMap::new(),
                ceiling_ms: ms(cfg.latency_ceiling),
            };
            let bare = RevisionStats {
                p50_short_ms: None,
                p95_short_ms: None,
                p95_long_ms: None,
                ..full.clone()
            };
            match svc_demand {
                None => assert_eq!(decide(&state, Some(&bare), gpu, &cfg, now), want),
                Some(need) => {
                    let Some(bound) = demand.bound_for(need, BOUNDS_MS) else {
                        continue;
                    };
                    if full.p95_short_ms.is_some_and(|p| p <= bound) {
                        substituted += 1;
                        let tiered = RevisionStats {
                            p95_short_ms: Some(bound),
                            ..bare
                        };
                        assert_eq!(
                            decide(&state, Some(&tiered), gpu, &cfg, now),
                            want,
                            "{state:?} {full:?} bound {bound}"
                        );
                    }
                }
            }
        }
        assert!(substituted > 10_000, "only {substituted} cases exercised");
    }

    #[test]
    fn the_bound_is_the_largest_bucket_within_the_objective_and_below_the_ceiling() {
        let d = Demand {
            revisions: HashMap::new(),
            ceiling_ms: 10_000.0,
        };
        let within = |v: f64| d.bound_for(Need::UnlessAbove { violation_ms: v }, BOUNDS_MS);
        assert_eq!(within(550.0), Some(500.0));
        assert_eq!(within(500.0), Some(500.0));
        assert_eq!(within(4.0), None);
        assert_eq!(within(1e6), Some(7500.0));
        assert_eq!(d.bound_for(Need::Quantiles, BOUNDS_MS), None);
    }
}
