//! One decision cycle: observe every revision at once, decide for every Service, act.
//!
//! The cycle is generic over where observations come from ([`Observe`]) and how decisions are
//! carried out ([`Actuator`]), so the same code runs in the controller, in the benchmark (real
//! Prometheus, counting actuator) and in tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use gaia_contract::Placement;
use jiff::Timestamp;
use tracing::{debug, info, info_span, warn, Instrument};

use crate::act::{Actuator, LadderAction};
use crate::cluster::gpu::GpuPool;
use crate::cluster::nodes::{NodeInfo, NodeShape};
use crate::cluster::pods::PodInfo;
use crate::cluster::rungs::{PodUnits, RungPools};
use crate::cluster::service::ManagedService;
use crate::config::Config;
use crate::observe::demand::Demand;
use crate::observe::{revision_stats, Observe, RawObservations, RevisionKey};
use crate::preflight::PreflightResult;
use gaia_policy::clock::{add, secs_between};
use gaia_policy::ladder::{
    self, cost_line, costs_per_1000, LadderConfig, LadderDecision, LadderState,
};
use gaia_policy::{
    self as policy, Decision, GpuAvailability, Hold, PolicyConfig, Rollout, ServiceState,
};
use gaia_preflight::gate::{self, MoveClass};

/// What the API said, at the start of the cycle.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub services: Vec<Arc<ManagedService>>,
    pub pods: Vec<Arc<PodInfo>>,
    pub nodes: Vec<Arc<NodeInfo>>,
}

/// The parts of the configuration a cycle reads.
#[derive(Debug, Clone)]
pub struct CycleSettings {
    pub policy: PolicyConfig,
    pub default_slo: Duration,
    pub gpus_per_pod: u32,
    pub cpu_capacity_without_limit: f64,
    /// Warnings (no GPU, unreadable annotations) for one Service at most this often.
    pub warn_every: Duration,
    /// API writes in flight at once.
    pub concurrency: usize,
    /// The cluster's queue-proxy records latencies under 1 s as 0 s (`prometheus.knativeVersion`).
    pub latency_truncated: bool,
    /// `prometheus.knativeVersion` is given: it, not the release the preflight finds, says
    /// whether latencies are truncated.
    pub knative_version_configured: bool,
    /// The GPU profile's pool grows on demand (`placement.gpu.elastic`): a node's join deadline.
    pub elastic_gpu_pool: Option<Duration>,
    /// The placement ladder, when one is configured: [`Cycle::run_ladder`] decides with it.
    pub ladder: Option<Arc<LadderConfig>>,
}

/// What the API said about the ladder's resources, at the start of the cycle.
#[derive(Debug, Clone, Default)]
pub struct RungSnapshot {
    pub nodes: Vec<Arc<NodeShape>>,
    pub pods: Vec<Arc<PodUnits>>,
}

impl CycleSettings {
    pub fn from_config(c: &Config) -> Self {
        CycleSettings {
            policy: c.policy.clone(),
            default_slo: c.default_slo,
            gpus_per_pod: c.gpus_per_pod(),
            cpu_capacity_without_limit: c.cpu.capacity_without_limit,
            warn_every: c.no_gpu_event_every,
            concurrency: 8,
            latency_truncated: c.prometheus.latency_truncated(),
            knative_version_configured: c.prometheus.knative_version.is_some(),
            elastic_gpu_pool: c
                .placement
                .gpu
                .elastic
                .then_some(c.placement.gpu.node_join_deadline),
            ladder: c.ladder.clone().map(Arc::new),
        }
    }
}

/// What happened in one cycle (for metrics and logs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CycleReport {
    /// Services carrying `gaia.dev/mode`.
    pub services: usize,
    /// Decisions by kind (`hold`, `promote`, ...).
    pub decisions: BTreeMap<&'static str, u64>,
    /// Holds by reason.
    pub holds: BTreeMap<&'static str, u64>,
    /// HTTP queries sent to Prometheus.
    pub prometheus_queries: u32,
    /// Set when Prometheus failed (every Service held).
    pub prometheus_error: Option<String>,
    /// Decisions that could not be carried out.
    pub act_errors: u64,
    /// Free GPUs at the start of the cycle.
    pub gpu: GpuAvailability,
    /// Time spent waiting for Prometheus.
    pub observe_duration: Duration,
    pub duration: Duration,
}

type ServiceKey = (String, String);

/// State carried from cycle to cycle, in memory only (see [`gaia_policy`] for why that is
/// safe to lose).
#[derive(Debug)]
pub struct Cycle {
    settings: CycleSettings,
    streaks: HashMap<ServiceKey, u32>,
    /// GPUs promised to promotions whose revision is not settled yet.
    reservations: HashMap<ServiceKey, (u32, Timestamp)>,
    last_warning: HashMap<(ServiceKey, &'static str), Timestamp>,
    /// Ladder moves issued whose revision has not settled: (rung, units per pod, pods, until).
    rung_reservations: HashMap<ServiceKey, (usize, u32, u32, Timestamp)>,
    /// The preflight's last result: moves a failing check would make fail are held.
    preflight: Option<PreflightResult>,
}

impl Cycle {
    pub fn new(settings: CycleSettings) -> Self {
        Cycle {
            settings,
            streaks: HashMap::new(),
            reservations: HashMap::new(),
            last_warning: HashMap::new(),
            rung_reservations: HashMap::new(),
            preflight: None,
        }
    }

    /// The preflight's last result (`None`: no preflight, nothing held for it).
    pub fn set_preflight(&mut self, result: Option<PreflightResult>) {
        self.preflight = result;
    }

    /// Latencies under 1 s read as 0 s: as `prometheus.knativeVersion` says, or, when it says
    /// nothing, as the release the preflight found says.
    fn latency_truncated(&self) -> bool {
        if self.settings.knative_version_configured {
            self.settings.latency_truncated
        } else {
            self.preflight
                .as_ref()
                .is_some_and(PreflightResult::latency_truncated)
        }
    }

    /// The check that forbids this move while it fails, with the hold's note; `None`: go ahead.
    fn preflight_blocks(&self, class: MoveClass, what: &str) -> Option<String> {
        let report = &self.preflight.as_ref()?.report;
        let c = gate::blocking(report, class)?;
        Some(format!(
            "{what} held: {}; Gaia moves it once the check passes",
            gate::describe(c)
        ))
    }

    /// Runs one cycle. `at`: Prometheus evaluation time (`None`: now).
    pub async fn run<O: Observe, A: Actuator>(
        &mut self,
        snap: &Snapshot,
        observer: &O,
        actuator: &A,
        now: Timestamp,
        at: Option<i64>,
    ) -> CycleReport {
        let started = Instant::now();
        let mut report = CycleReport {
            services: snap.services.len(),
            ..CycleReport::default()
        };
        let demand = Demand::for_decide(
            &snap.services,
            &self.settings.policy,
            self.settings.default_slo,
            self.settings.latency_truncated,
        );
        let observed = observer.observe_for(at, &demand).await;
        report.observe_duration = started.elapsed();
        let raw: Option<RawObservations> = match observed {
            Ok(raw) => {
                report.prometheus_queries = raw.queries;
                Some(raw)
            }
            Err(e) => {
                warn!(error = %e, "Prometheus failed: holding every Service this cycle");
                report.prometheus_error = Some(e.to_string());
                None
            }
        };

        let mut pods_by_revision: HashMap<RevisionKey, Vec<&PodInfo>> = HashMap::new();
        for p in &snap.pods {
            if let Some(rev) = &p.revision {
                pods_by_revision
                    .entry(RevisionKey::new(&p.namespace, rev))
                    .or_default()
                    .push(p);
            }
        }

        // Reservations end when the revision settled (its pods now count) or timed out.
        let by_key: HashMap<ServiceKey, &Arc<ManagedService>> = snap
            .services
            .iter()
            .map(|s| ((s.namespace.clone(), s.name.clone()), s))
            .collect();
        self.reservations.retain(|k, (_, until)| {
            now < *until
                && by_key.get(k).is_some_and(|s| {
                    !(s.rollout == Rollout::Settled && s.placement == Placement::Gpu)
                })
        });
        let reserved: Vec<u32> = self.reservations.values().map(|(g, _)| *g).collect();
        let nodes: Vec<&NodeInfo> = snap.nodes.iter().map(|n| n.as_ref()).collect();
        let pods: Vec<&PodInfo> = snap.pods.iter().map(|p| p.as_ref()).collect();
        let mut pool = GpuPool::new(&nodes, &pods, &reserved);
        report.gpu = pool.availability();

        // Decide, Service by Service, in a stable order (GPU contention resolves the same way).
        let mut order: Vec<&Arc<ManagedService>> = snap.services.iter().collect();
        order.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        let mut actions: Vec<(Arc<ManagedService>, Decision)> = Vec::new();
        let mut warnings: Vec<(Arc<ManagedService>, &'static str, String)> = Vec::new();
        for svc in order {
            let key = (svc.namespace.clone(), svc.name.clone());
            let (decision, mut streak) = self.decide_one(
                svc,
                raw.as_ref(),
                &pods_by_revision,
                &pool,
                now,
                &mut warnings,
            );
            let decision = self.gate(svc, decision, now, &mut warnings);
            if decision == Decision::Hold(Hold::PreflightFailed) {
                streak = self.held_streak(&key, streak);
            }
            *report.decisions.entry(decision.kind()).or_default() += 1;
            if let Decision::Hold(h) = &decision {
                *report.holds.entry(h.as_str()).or_default() += 1;
            }
            if streak > 0 {
                self.streaks.insert(key.clone(), streak);
            } else {
                self.streaks.remove(&key);
            }
            match &decision {
                Decision::Hold(h) => {
                    debug!(namespace = %svc.namespace, name = %svc.name, decision = decision.kind(),
                           hold = h.as_str(), streak, "hold");
                    continue;
                }
                Decision::Move(m) if m.to == Placement::Gpu => {
                    let per_pod = self.settings.gpus_per_pod;
                    for _ in 0..svc.min_scale.max(1) {
                        pool.take(per_pod);
                    }
                    let settles_within = self
                        .settings
                        .elastic_gpu_pool
                        .map_or(self.settings.policy.rollout_timeout, |join| {
                            join.max(self.settings.policy.rollout_timeout)
                        });
                    self.reservations.insert(
                        key.clone(),
                        (
                            per_pod.saturating_mul(svc.min_scale.max(1)),
                            add(now, settles_within),
                        ),
                    );
                }
                Decision::NoGpu { .. } if !self.may_warn(&key, "NoGpu", now) => continue,
                _ => {}
            }
            info!(namespace = %svc.namespace, name = %svc.name, decision = decision.kind(),
                  note = decision_note(&decision), "decided");
            actions.push((svc.clone(), decision));
        }

        // Act, a few Services at a time.
        let errors = futures::stream::iter(actions)
            .map(|(svc, decision)| {
                let span = info_span!("act", namespace = %svc.namespace, name = %svc.name);
                async move {
                    let result = actuator.act(&svc, &decision).await;
                    if let Err(e) = &result {
                        warn!(error = %e, decision = decision.kind(), "could not act");
                    }
                    (svc, decision, result.is_err())
                }
                .instrument(span)
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        for (svc, decision, failed) in errors {
            if failed {
                report.act_errors += 1;
                if matches!(&decision, Decision::Move(m) if m.to == Placement::Gpu) {
                    self.reservations
                        .remove(&(svc.namespace.clone(), svc.name.clone()));
                }
            }
        }
        for (svc, reason, note) in warnings {
            if let Err(e) = actuator.warn(&svc, reason, note).await {
                warn!(namespace = %svc.namespace, name = %svc.name, error = %e, "warning Event not recorded");
            }
        }

        // Forget Services that are gone.
        self.streaks.retain(|k, _| by_key.contains_key(k));
        self.last_warning.retain(|(k, _), _| by_key.contains_key(k));
        report.duration = started.elapsed();
        report
    }

    /// Runs one cycle on the placement ladder (`settings.ladder`; without one, [`Cycle::run`]).
    /// The same steps as [`Cycle::run`]: observe, decide every Service with
    /// [`gaia_policy::ladder::decide_ladder`] in a stable order, taking the units of a rung from
    /// its pool as moves onto it are decided, act.
    pub async fn run_ladder<O: Observe, A: Actuator>(
        &mut self,
        snap: &Snapshot,
        rungs: &RungSnapshot,
        observer: &O,
        actuator: &A,
        now: Timestamp,
        at: Option<i64>,
    ) -> CycleReport {
        let Some(ladder) = self.settings.ladder.clone() else {
            return self.run(snap, observer, actuator, now, at).await;
        };
        let started = Instant::now();
        let mut report = CycleReport {
            services: snap.services.len(),
            ..CycleReport::default()
        };
        let demand = Demand::for_ladder(&snap.services, &self.settings.policy);
        let observed = observer.observe_for(at, &demand).await;
        report.observe_duration = started.elapsed();
        let raw: Option<RawObservations> = match observed {
            Ok(raw) => {
                report.prometheus_queries = raw.queries;
                Some(raw)
            }
            Err(e) => {
                warn!(error = %e, "Prometheus failed: holding every Service this cycle");
                report.prometheus_error = Some(e.to_string());
                None
            }
        };
        let mut pods_by_revision: HashMap<RevisionKey, Vec<&PodInfo>> = HashMap::new();
        for p in &snap.pods {
            if let Some(rev) = &p.revision {
                pods_by_revision
                    .entry(RevisionKey::new(&p.namespace, rev))
                    .or_default()
                    .push(p);
            }
        }
        let by_key: HashMap<ServiceKey, &Arc<ManagedService>> = snap
            .services
            .iter()
            .map(|s| ((s.namespace.clone(), s.name.clone()), s))
            .collect();
        // A reservation ends when the revision settled on its rung (its pods now count) or
        // timed out.
        self.rung_reservations.retain(|k, (rung, _, _, until)| {
            now < *until
                && by_key.get(k).is_some_and(|s| {
                    !(s.rollout == Rollout::Settled && s.rung_in(&ladder) == *rung)
                })
        });
        let reserved: Vec<(usize, u32)> = self
            .rung_reservations
            .values()
            .flat_map(|(rung, units, pods, _)| (0..*pods).map(move |_| (*rung, *units)))
            .collect();
        let shapes: Vec<&NodeShape> = rungs.nodes.iter().map(|n| n.as_ref()).collect();
        let units: Vec<&PodUnits> = rungs.pods.iter().map(|p| p.as_ref()).collect();
        let mut pools = RungPools::new(&ladder, &shapes, &units, &reserved);
        {
            let nodes: Vec<&NodeInfo> = snap.nodes.iter().map(|n| n.as_ref()).collect();
            let pods: Vec<&PodInfo> = snap.pods.iter().map(|p| p.as_ref()).collect();
            report.gpu = GpuPool::new(&nodes, &pods, &[]).availability();
        }

        let mut order: Vec<&Arc<ManagedService>> = snap.services.iter().collect();
        order.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        let mut actions: Vec<(Arc<ManagedService>, LadderAction)> = Vec::new();
        let mut warnings: Vec<(Arc<ManagedService>, &'static str, String)> = Vec::new();
        for svc in order {
            let key = (svc.namespace.clone(), svc.name.clone());
            let (action, mut streak) = self.decide_one_on_ladder(
                svc,
                raw.as_ref(),
                &pods_by_revision,
                &pools,
                &ladder,
                now,
                &mut warnings,
            );
            let action = self.gate_ladder(svc, action, &ladder, now, &mut warnings);
            if action.decision == LadderDecision::Hold(Hold::PreflightFailed) {
                streak = self.held_streak(&key, streak);
            }
            let decision = &action.decision;
            *report.decisions.entry(decision.kind()).or_default() += 1;
            if let LadderDecision::Hold(h) = decision {
                *report.holds.entry(h.as_str()).or_default() += 1;
            }
            if streak > 0 {
                self.streaks.insert(key.clone(), streak);
            } else {
                self.streaks.remove(&key);
            }
            match decision {
                LadderDecision::Hold(h) => {
                    debug!(namespace = %svc.namespace, name = %svc.name, decision = decision.kind(),
                           hold = h.as_str(), streak, "hold");
                    continue;
                }
                LadderDecision::Move(m) if ladder.rungs[m.to].is_gpu() => {
                    let per_pod = ladder.rungs[m.to].amount;
                    let n = svc.min_scale.max(1);
                    for _ in 0..n {
                        pools.take(m.to, per_pod);
                    }
                    self.rung_reservations.insert(
                        key.clone(),
                        (
                            m.to,
                            per_pod,
                            n,
                            add(now, self.settings.policy.rollout_timeout),
                        ),
                    );
                }
                LadderDecision::Move(_) => {
                    self.rung_reservations.remove(&key);
                }
                LadderDecision::NoCapacity { .. } if !self.may_warn(&key, "NoCapacity", now) => {
                    continue
                }
                _ => {}
            }
            info!(namespace = %svc.namespace, name = %svc.name, decision = decision.kind(),
                  note = %action.note, "decided");
            actions.push((svc.clone(), action));
        }

        let results = futures::stream::iter(actions)
            .map(|(svc, action)| {
                let span = info_span!("act", namespace = %svc.namespace, name = %svc.name);
                async move {
                    let result = actuator.act_ladder(&svc, &action).await;
                    if let Err(e) = &result {
                        warn!(error = %e, decision = action.decision.kind(), "could not act");
                    }
                    (svc, action, result.is_err())
                }
                .instrument(span)
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        for (svc, action, failed) in results {
            if failed {
                report.act_errors += 1;
                if matches!(&action.decision, LadderDecision::Move(_)) {
                    self.rung_reservations
                        .remove(&(svc.namespace.clone(), svc.name.clone()));
                }
            }
        }
        for (svc, reason, note) in warnings {
            if let Err(e) = actuator.warn(&svc, reason, note).await {
                warn!(namespace = %svc.namespace, name = %svc.name, error = %e, "warning Event not recorded");
            }
        }
        self.streaks.retain(|k, _| by_key.contains_key(k));
        self.last_warning.retain(|(k, _), _| by_key.contains_key(k));
        self.rung_reservations.retain(|k, _| by_key.contains_key(k));
        report.duration = started.elapsed();
        report
    }

    /// Builds the ladder's inputs for one Service and asks it; the note of an acting decision
    /// ends with the cost of 1,000 requests per rung.
    #[allow(clippy::too_many_arguments)]
    fn decide_one_on_ladder(
        &mut self,
        svc: &ManagedService,
        raw: Option<&RawObservations>,
        pods_by_revision: &HashMap<RevisionKey, Vec<&PodInfo>>,
        pools: &RungPools,
        ladder: &LadderConfig,
        now: Timestamp,
        warnings: &mut Vec<(Arc<ManagedService>, &'static str, String)>,
    ) -> (LadderAction, u32) {
        let key = (svc.namespace.clone(), svc.name.clone());
        let held = |h: Hold| {
            (
                LadderAction {
                    decision: LadderDecision::Hold(h),
                    note: String::new(),
                },
                0,
            )
        };
        let mut warn_once = |this: &mut Self, reason: &'static str, note: String| {
            if this.may_warn(&key, reason, now) {
                warn!(namespace = %svc.namespace, name = %svc.name, %note, "cannot manage");
                warnings.push((Arc::new(svc.clone()), reason, note));
            }
        };
        let mode = match &svc.mode {
            Ok(m) => *m,
            Err(text) => {
                warn_once(
                    self,
                    "InvalidMode",
                    format!(
                        "gaia.dev/mode {text:?} is not cpu, cpu_preferred, gpu_preferred or gpu"
                    ),
                );
                return held(Hold::Pinned);
            }
        };
        if mode.is_pinned() {
            return held(Hold::Pinned);
        }
        let memory = match &svc.ladder {
            Ok(m) => m.clone(),
            Err(e) => {
                warn_once(
                    self,
                    "InvalidLadder",
                    format!(
                        "gaia.dev/ladder is unreadable ({e}); not moving it until fixed or removed"
                    ),
                );
                return held(Hold::MetricsUnavailable);
            }
        };
        let slo = match &svc.slo {
            None => self.settings.default_slo,
            Some(Ok(d)) => *d,
            Some(Err(text)) => {
                warn_once(self, "InvalidLatencySlo", format!("gaia.dev/latency-slo {text:?} is not a latency such as 500ms; not moving it until fixed"));
                return held(Hold::NoLatencyData);
            }
        };
        let pods = svc.min_scale.max(1);
        let state = LadderState {
            mode,
            rung: svc.rung_in(ladder),
            rollout: svc.rollout,
            slo,
            memory,
            pods,
            violation_streak: self.streaks.get(&key).copied().unwrap_or(0),
            created: svc.created,
            // The webhook's estimate (`gaia.dev/gpu-memory-mib`, the classifier's parameters
            // and dtype); absent: unknown, every rung is taken to hold the model.
            model_gpu_mib: gaia_contract::ServiceView::new(&svc.object)
                .gpu_memory_mib()
                .map(|m| m as f64),
        };
        // A p95 made of whole seconds cannot be held against an objective under one: the
        // latencies are dropped, so only the rates (idle) can move the Service.
        let blind = self.latency_truncated() && slo < Duration::from_secs(1);
        let stats = raw.map(|raw| {
            let mut st = match &svc.serving_revision {
                Some(rev) => {
                    let rk = RevisionKey::new(&svc.namespace, rev);
                    let pods = pods_by_revision.get(&rk).map(Vec::as_slice).unwrap_or(&[]);
                    revision_stats(raw, &rk, pods, self.settings.cpu_capacity_without_limit)
                }
                None => Default::default(),
            };
            if blind {
                st.p95_short_ms = None;
                st.p95_long_ms = None;
                st.p50_short_ms = None;
            }
            st
        });
        let out = ladder::decide_ladder(
            &state,
            stats.as_ref(),
            &pools.availability(),
            ladder,
            &self.settings.policy,
            now,
        );
        let mut decision = out.decision;
        if blind && decision == LadderDecision::Hold(Hold::NoLatencyData) {
            decision = LadderDecision::Hold(Hold::LatencyUnreliable);
            warn_once(
                self,
                "LatencyUnreliable",
                format!(
                    "this Knative release records latencies under 1 s as 0 s: the {} objective \
                     cannot be judged, so Gaia holds (upgrade Knative to 1.19.9, 1.20.2, 1.21 or \
                     later, or set an objective of 1s or more)",
                    gaia_contract::duration::format_latency(slo)
                ),
            );
        }
        let rps = stats.as_ref().and_then(|s| s.rps_short);
        let note = ladder_note(&decision, &state, ladder, rps);
        (LadderAction { decision, note }, out.violation_streak)
    }

    /// A move (or a promotion with no GPU free) that a failing preflight check forbids becomes
    /// a `preflight_failed` hold, told in a Warning Event `PreflightBlocked` (at most every
    /// `noGpuEventEvery` per Service). The streak is kept: the move is made once it passes.
    fn gate(
        &mut self,
        svc: &ManagedService,
        decision: Decision,
        now: Timestamp,
        warnings: &mut Vec<(Arc<ManagedService>, &'static str, String)>,
    ) -> Decision {
        let class = match &decision {
            Decision::Move(m) if m.kind == policy::MoveKind::Rollback => None,
            Decision::Move(m) if m.to == Placement::Gpu => {
                Some((MoveClass::ToGpu, m.kind.as_str()))
            }
            Decision::Move(m) => Some((MoveClass::ToCpu, m.kind.as_str())),
            Decision::NoGpu { .. } => Some((MoveClass::ToGpu, "promote")),
            Decision::Hold(_) | Decision::Remember { .. } => None,
        };
        let Some((class, what)) = class else {
            return decision;
        };
        let Some(note) = self.preflight_blocks(class, &format!("{what} → {}", target(class)))
        else {
            return decision;
        };
        self.held_by_preflight(svc, note, now, warnings);
        Decision::Hold(Hold::PreflightFailed)
    }

    /// [`Cycle::gate`] for a ladder decision: a move onto a GPU rung (or no room on one) is
    /// a move onto a GPU, one onto the CPU rung a move off it.
    fn gate_ladder(
        &mut self,
        svc: &ManagedService,
        action: LadderAction,
        ladder: &LadderConfig,
        now: Timestamp,
        warnings: &mut Vec<(Arc<ManagedService>, &'static str, String)>,
    ) -> LadderAction {
        let class = match &action.decision {
            LadderDecision::Move(m) if m.kind == ladder::LadderMoveKind::Rollback => None,
            LadderDecision::Move(m) => {
                let rung = &ladder.rungs[m.to];
                let class = if rung.is_gpu() {
                    MoveClass::ToGpu
                } else {
                    MoveClass::ToCpu
                };
                Some((class, format!("{} → {}", m.kind.as_str(), rung.name)))
            }
            LadderDecision::NoCapacity { .. } => {
                Some((MoveClass::ToGpu, "promote → gpu".to_string()))
            }
            LadderDecision::Hold(_) | LadderDecision::Remember { .. } => None,
        };
        let Some((class, what)) = class else {
            return action;
        };
        let Some(note) = self.preflight_blocks(class, &what) else {
            return action;
        };
        self.held_by_preflight(svc, note, now, warnings);
        LadderAction {
            decision: LadderDecision::Hold(Hold::PreflightFailed),
            note: Hold::PreflightFailed.as_str().to_string(),
        }
    }

    /// The streak of a move held by the preflight: a move resets it (0), but it was not made,
    /// so the cycles that led to it still count and the move is made once the check passes.
    fn held_streak(&self, key: &ServiceKey, streak: u32) -> u32 {
        if streak > 0 {
            return streak;
        }
        self.streaks
            .get(key)
            .copied()
            .unwrap_or(0)
            .saturating_add(1)
    }

    fn held_by_preflight(
        &mut self,
        svc: &ManagedService,
        note: String,
        now: Timestamp,
        warnings: &mut Vec<(Arc<ManagedService>, &'static str, String)>,
    ) {
        let key = (svc.namespace.clone(), svc.name.clone());
        if self.may_warn(&key, "PreflightBlocked", now) {
            warn!(namespace = %svc.namespace, name = %svc.name, %note, "move held by the preflight");
            warnings.push((Arc::new(svc.clone()), "PreflightBlocked", note));
        }
    }

    fn may_warn(&mut self, key: &ServiceKey, what: &'static str, now: Timestamp) -> bool {
        let every = self.settings.warn_every.as_secs_f64();
        let slot = (key.clone(), what);
        match self.last_warning.get(&slot) {
            Some(last) if secs_between(*last, now) < every => false,
            _ => {
                self.last_warning.insert(slot, now);
                true
            }
        }
    }

    /// Builds the policy's inputs for one Service and asks it.
    fn decide_one(
        &mut self,
        svc: &ManagedService,
        raw: Option<&RawObservations>,
        pods_by_revision: &HashMap<RevisionKey, Vec<&PodInfo>>,
        pool: &GpuPool,
        now: Timestamp,
        warnings: &mut Vec<(Arc<ManagedService>, &'static str, String)>,
    ) -> (Decision, u32) {
        let key = (svc.namespace.clone(), svc.name.clone());
        let mut warn_once = |this: &mut Self, reason: &'static str, note: String| {
            if this.may_warn(&key, reason, now) {
                warn!(namespace = %svc.namespace, name = %svc.name, %note, "cannot manage");
                warnings.push((Arc::new(svc.clone()), reason, note));
            }
        };
        let mode = match &svc.mode {
            Ok(m) => *m,
            Err(text) => {
                warn_once(
                    self,
                    "InvalidMode",
                    format!(
                        "gaia.dev/mode {text:?} is not cpu, cpu_preferred, gpu_preferred or gpu"
                    ),
                );
                return (Decision::Hold(Hold::Pinned), 0);
            }
        };
        if mode.is_pinned() {
            return (Decision::Hold(Hold::Pinned), 0);
        }
        let observed = match &svc.observed {
            Ok(o) => o.clone(),
            Err(e) => {
                warn_once(self, "InvalidObserved", format!("gaia.dev/observed is unreadable ({e}); not moving it until fixed or removed"));
                return (Decision::Hold(Hold::MetricsUnavailable), 0);
            }
        };
        let slo = match &svc.slo {
            None => self.settings.default_slo,
            Some(Ok(d)) => *d,
            Some(Err(text)) => {
                warn_once(self, "InvalidLatencySlo", format!("gaia.dev/latency-slo {text:?} is not a latency such as 500ms; not moving it until fixed"));
                return (Decision::Hold(Hold::NoLatencyData), 0);
            }
        };
        let state = ServiceState {
            mode,
            placement: svc.placement,
            rollout: svc.rollout,
            slo,
            observed,
            gpus_needed: self.settings.gpus_per_pod,
            gpu_pods: svc.min_scale.max(1),
            violation_streak: self.streaks.get(&key).copied().unwrap_or(0),
            created: svc.created,
            latency_truncated: self.latency_truncated(),
            elastic_gpu_pool: self.settings.elastic_gpu_pool,
        };
        let stats = raw.map(|raw| match &svc.serving_revision {
            Some(rev) => {
                let rk = RevisionKey::new(&svc.namespace, rev);
                let pods = pods_by_revision.get(&rk).map(Vec::as_slice).unwrap_or(&[]);
                revision_stats(raw, &rk, pods, self.settings.cpu_capacity_without_limit)
            }
            None => Default::default(),
        });
        let out = policy::decide(
            &state,
            stats.as_ref(),
            pool.availability(),
            &self.settings.policy,
            now,
        );
        if out.decision == Decision::Hold(Hold::LatencyUnreliable) {
            warn_once(
                self,
                "LatencyUnreliable",
                format!(
                    "this Knative release records latencies under 1 s as 0 s: the {} objective \
                     cannot be judged, so Gaia holds (upgrade Knative to 1.19.9, 1.20.2, 1.21 or \
                     later, or set an objective of 1s or more)",
                    gaia_contract::duration::format_latency(state.slo)
                ),
            );
        }
        (out.decision, out.violation_streak)
    }
}

/// The note of a ladder decision, ending with the cost of 1,000 requests per rung (the rules
/// put it in most notes; the others get it here, from the memory written back).
fn ladder_note(
    d: &LadderDecision,
    s: &LadderState,
    ladder: &LadderConfig,
    rps: Option<f64>,
) -> String {
    let (note, memory) = match d {
        LadderDecision::Hold(h) => return h.as_str().to_string(),
        LadderDecision::Move(m) => (m.note.as_str(), &m.memory),
        LadderDecision::Remember { memory, note } => (note.as_str(), memory),
        LadderDecision::NoCapacity { note, .. } => (note.as_str(), &s.memory),
    };
    if note.contains("cost per 1,000 requests") {
        return note.to_string();
    }
    let costs = cost_line(&costs_per_1000(ladder, memory, rps, s.pods));
    if note.is_empty() {
        costs
    } else {
        format!("{note}; {costs}")
    }
}

fn target(class: MoveClass) -> &'static str {
    match class {
        MoveClass::ToGpu => "gpu",
        MoveClass::ToCpu | MoveClass::Rollback => "cpu",
    }
}

fn decision_note(d: &Decision) -> &str {
    match d {
        Decision::Hold(h) => h.as_str(),
        Decision::Move(m) => &m.note,
        Decision::Remember { note, .. } | Decision::NoGpu { note, .. } => note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::PodKey;
    use crate::Error;
    use serde_json::json;

    struct Table(Result<RawObservations, String>);

    impl Observe for Table {
        async fn observe(&self, _at: Option<i64>) -> Result<RawObservations, Error> {
            self.0.clone().map_err(|message| Error::Prometheus {
                query: "test",
                message,
            })
        }
    }

    include!("../tests/common/recording.rs");

    fn svc(name: &str, mode: &str) -> Arc<ManagedService> {
        let v = json!({
            "metadata": {"name": name, "namespace": "ns", "generation": 1, "resourceVersion": "1",
                         "annotations": {"gaia.dev/mode": mode}},
            "spec": {"template": {"metadata": {"annotations": {"gaia.dev/placement": "cpu"}},
                                  "spec": {"containers": [{"image": "x"}]}}},
            "status": {"observedGeneration": 1, "latestCreatedRevisionName": format!("{name}-1"),
                       "latestReadyRevisionName": format!("{name}-1"),
                       "conditions": [{"type": "Ready", "status": "True"}]}
        });
        Arc::new(ManagedService::from_value(v, "nvidia.com/gpu").unwrap())
    }

    fn pod(rev: &str) -> Arc<PodInfo> {
        Arc::new(PodInfo {
            namespace: "ns".into(),
            name: format!("{rev}-pod"),
            node: Some("cpu-1".into()),
            revision: Some(rev.into()),
            gpus: 0,
            cpu_capacity: Some(1.0),
        })
    }

    fn slow_and_busy(names: &[&str]) -> RawObservations {
        let mut raw = RawObservations {
            queries: 7,
            ..Default::default()
        };
        for n in names {
            let rev = RevisionKey::new("ns", format!("{n}-1"));
            raw.p95_short_ms.insert(rev.clone(), 3000.0);
            raw.p95_long_ms.insert(rev.clone(), 3000.0);
            raw.rps_short.insert(rev.clone(), 5.0);
            raw.rps_long.insert(rev.clone(), 5.0);
            raw.mean_latency_ms.insert(rev.clone(), 2500.0);
            raw.cpu_cores
                .insert(PodKey::new("ns", format!("{n}-1-pod")), 0.95);
        }
        raw
    }

    fn settings() -> CycleSettings {
        CycleSettings::from_config(&Config::default())
    }

    #[tokio::test]
    async fn the_last_gpu_goes_to_one_service_and_the_other_is_told() {
        let snap = Snapshot {
            services: vec![
                svc("a", "cpu_preferred"),
                svc("b", "cpu_preferred"),
                svc("c", "cpu"),
            ],
            pods: vec![pod("a-1"), pod("b-1"), pod("c-1")],
            nodes: vec![Arc::new(NodeInfo {
                name: "gpu-1".into(),
                gpus_allocatable: 1,
                schedulable: true,
            })],
        };
        let observer = Table(Ok(slow_and_busy(&["a", "b", "c"])));
        let act = Recording::default();
        let mut cycle = Cycle::new(settings());
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let r1 = cycle.run(&snap, &observer, &act, t0, None).await;
        assert_eq!(r1.holds.get("sustaining"), Some(&2));
        assert_eq!(r1.holds.get("pinned"), Some(&1));
        let r2 = cycle
            .run(
                &snap,
                &observer,
                &act,
                add(t0, Duration::from_secs(10)),
                None,
            )
            .await;
        assert_eq!(r2.decisions.get("promote"), Some(&1));
        assert_eq!(r2.decisions.get("no_gpu"), Some(&1));
        assert_eq!(r2.prometheus_queries, 7);
        let acted = act.0.lock().unwrap().clone();
        assert_eq!(
            acted,
            vec![("a".to_string(), "promote"), ("b".to_string(), "no_gpu")]
        );
        // next cycle: the reservation keeps the GPU taken; the no-GPU warning is not repeated
        let r3 = cycle
            .run(
                &snap,
                &observer,
                &act,
                add(t0, Duration::from_secs(20)),
                None,
            )
            .await;
        assert_eq!(r3.gpu.free_total, 0);
        assert_eq!(
            act.0.lock().unwrap().len(),
            2,
            "{:?}",
            act.0.lock().unwrap()
        );
    }

    /// `name` the moment after Gaia's promotion patch, as Knative's first reconcile leaves it:
    /// the template on the GPU, `observedGeneration` bumped, the Configuration not yet caught up
    /// (the CPU revision still created and ready), Ready Unknown; no GPU pod yet.
    fn svc_just_promoted(name: &str) -> Arc<ManagedService> {
        let v = json!({
            "metadata": {"name": name, "namespace": "ns", "generation": 2, "resourceVersion": "2",
                         "annotations": {"gaia.dev/mode": "cpu_preferred"}},
            "spec": {"template": {"metadata": {"annotations": {"gaia.dev/placement": "gpu"}},
                                  "spec": {"containers": [{"image": "x"}]}}},
            "status": {"observedGeneration": 2, "latestCreatedRevisionName": format!("{name}-1"),
                       "latestReadyRevisionName": format!("{name}-1"),
                       "conditions": [{"type": "ConfigurationsReady", "status": "Unknown"},
                                      {"type": "Ready", "status": "Unknown"}]}
        });
        Arc::new(ManagedService::from_value(v, "nvidia.com/gpu").unwrap())
    }

    #[tokio::test]
    async fn a_promotion_keeps_its_gpu_while_knative_has_not_made_the_gpu_revision() {
        // The soak's finding (docs/reliability.md): six promotions onto two GPUs in 30 s.
        let nodes = vec![Arc::new(NodeInfo {
            name: "gpu-1".into(),
            gpus_allocatable: 1,
            schedulable: true,
        })];
        let snap = Snapshot {
            services: vec![svc("a", "cpu_preferred"), svc("b", "cpu_preferred")],
            pods: vec![pod("a-1"), pod("b-1")],
            nodes: nodes.clone(),
        };
        let observer = Table(Ok(slow_and_busy(&["a", "b"])));
        let act = Recording::default();
        let mut cycle = Cycle::new(settings());
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        cycle.run(&snap, &observer, &act, t0, None).await;
        let r2 = cycle
            .run(
                &snap,
                &observer,
                &act,
                add(t0, Duration::from_secs(10)),
                None,
            )
            .await;
        assert_eq!(r2.decisions.get("promote"), Some(&1));
        // a is patched and Knative has reconciled once; b is still slow and busy
        let after = Snapshot {
            services: vec![svc_just_promoted("a"), svc("b", "cpu_preferred")],
            pods: vec![pod("a-1"), pod("b-1")],
            nodes,
        };
        let r3 = cycle
            .run(
                &after,
                &observer,
                &act,
                add(t0, Duration::from_secs(20)),
                None,
            )
            .await;
        assert_eq!(
            r3.gpu.free_total, 0,
            "the GPU a was promoted onto is still taken"
        );
        assert_eq!(r3.decisions.get("promote"), None, "{:?}", r3.decisions);
        let promoted: Vec<String> = act
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, kind)| *kind == "promote")
            .map(|(name, _)| name.clone())
            .collect();
        assert_eq!(promoted, vec!["a".to_string()]);
    }

    #[tokio::test]
    async fn prometheus_down_holds_everything_and_resets_streaks() {
        let snap = Snapshot {
            services: vec![svc("a", "cpu_preferred")],
            pods: vec![pod("a-1")],
            nodes: vec![],
        };
        let act = Recording::default();
        let mut cycle = Cycle::new(settings());
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        cycle
            .run(&snap, &Table(Ok(slow_and_busy(&["a"]))), &act, t0, None)
            .await;
        let r = cycle
            .run(
                &snap,
                &Table(Err("connection refused".into())),
                &act,
                add(t0, Duration::from_secs(10)),
                None,
            )
            .await;
        assert!(r.prometheus_error.is_some());
        assert_eq!(r.holds.get("metrics_unavailable"), Some(&1));
        assert!(act.0.lock().unwrap().is_empty());
        assert!(cycle.streaks.is_empty());
    }

    /// Records ladder actions: (name, kind, note).
    #[derive(Default)]
    struct LadderRecording(std::sync::Mutex<Vec<(String, &'static str, String)>>);

    impl Actuator for LadderRecording {
        async fn act(&self, _: &ManagedService, _: &Decision) -> Result<(), Error> {
            panic!("a ladder cycle decided with decide")
        }
        async fn act_ladder(&self, svc: &ManagedService, a: &LadderAction) -> Result<(), Error> {
            self.0
                .lock()
                .unwrap()
                .push((svc.name.clone(), a.decision.kind(), a.note.clone()));
            Ok(())
        }
        async fn warn(
            &self,
            svc: &ManagedService,
            reason: &'static str,
            n: String,
        ) -> Result<(), Error> {
            self.0.lock().unwrap().push((svc.name.clone(), reason, n));
            Ok(())
        }
    }

    fn ladder_settings() -> CycleSettings {
        CycleSettings::from_config(&Config {
            ladder: Some(LadderConfig::cpu_shared_gpu(143_771.0, 7)),
            ..Config::default()
        })
    }

    fn within_slo(names: &[&str]) -> RawObservations {
        let mut raw = RawObservations {
            queries: 7,
            ..Default::default()
        };
        for n in names {
            let rev = RevisionKey::new("ns", format!("{n}-1"));
            raw.p95_short_ms.insert(rev.clone(), 40.0);
            raw.p95_long_ms.insert(rev.clone(), 40.0);
            raw.p50_short_ms.insert(rev.clone(), 30.0);
            raw.rps_short.insert(rev.clone(), 5.0);
            raw.rps_long.insert(rev.clone(), 5.0);
            raw.mean_latency_ms.insert(rev.clone(), 35.0);
            raw.cpu_cores
                .insert(PodKey::new("ns", format!("{n}-1-pod")), 0.2);
        }
        raw
    }

    fn sliced_node(free: u32, taints: &[(&str, &str)]) -> Arc<NodeShape> {
        use crate::cluster::nodes::Taint;
        Arc::new(NodeShape {
            name: "sliced".into(),
            labels: [("nvidia.com/gpu.present".to_string(), "true".to_string())].into(),
            taints: taints
                .iter()
                .map(|(k, e)| Taint {
                    key: (*k).into(),
                    value: String::new(),
                    effect: (*e).into(),
                })
                .collect(),
            allocatable: [("nvidia.com/gpu.shared".to_string(), free)].into(),
            schedulable: true,
        })
    }

    #[tokio::test]
    async fn a_ladder_moves_a_light_function_to_the_cheaper_shared_gpu_while_a_unit_is_free() {
        let snap = Snapshot {
            services: vec![svc("a", "cpu_preferred"), svc("b", "cpu_preferred")],
            pods: vec![pod("a-1"), pod("b-1")],
            nodes: vec![],
        };
        let rungs = RungSnapshot {
            nodes: vec![sliced_node(1, &[("nvidia.com/gpu", "NoSchedule")])],
            pods: vec![],
        };
        let act = LadderRecording::default();
        let mut cycle = Cycle::new(ladder_settings());
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let r = cycle
            .run_ladder(
                &snap,
                &rungs,
                &Table(Ok(within_slo(&["a", "b"]))),
                &act,
                t0,
                None,
            )
            .await;
        // one free slice: a takes it, b (decided after a) finds none and stays on the CPU
        assert_eq!(r.decisions.get("economize"), Some(&1), "{r:?}");
        assert_eq!(r.holds.get("within_slo"), Some(&1), "{r:?}");
        let acted = act.0.lock().unwrap().clone();
        assert_eq!(acted.len(), 1, "{acted:?}");
        let (name, kind, note) = &acted[0];
        assert_eq!((name.as_str(), *kind), ("a", "economize"));
        assert!(note.contains("→ gpu-shared"), "{note}");
        assert!(
            note.contains("cost per 1,000 requests: cpu $0.0076 (measured), gpu-shared $0.0038 (estimated), gpu $0.0266 (estimated)"),
            "{note}"
        );
        // next cycle: the slice is promised to a (its pod is not there yet): b still holds
        let r = cycle
            .run_ladder(
                &snap,
                &rungs,
                &Table(Ok(within_slo(&["a", "b"]))),
                &act,
                add(t0, Duration::from_secs(10)),
                None,
            )
            .await;
        assert_eq!(r.decisions.get("economize"), None, "{r:?}");
    }

    #[tokio::test]
    async fn a_slice_on_a_node_the_rung_does_not_tolerate_is_not_free() {
        let snap = Snapshot {
            services: vec![svc("a", "cpu_preferred")],
            pods: vec![pod("a-1")],
            nodes: vec![],
        };
        let rungs = RungSnapshot {
            nodes: vec![sliced_node(
                7,
                &[("nvidia.com/gpu", "NoSchedule"), ("team", "NoExecute")],
            )],
            pods: vec![],
        };
        let act = LadderRecording::default();
        let mut cycle = Cycle::new(ladder_settings());
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let r = cycle
            .run_ladder(
                &snap,
                &rungs,
                &Table(Ok(within_slo(&["a"]))),
                &act,
                t0,
                None,
            )
            .await;
        assert_eq!(r.holds.get("within_slo"), Some(&1), "{r:?}");
        assert!(act.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_ladder_promotes_a_slow_busy_function_one_rung_or_says_there_is_no_room() {
        let snap = Snapshot {
            services: vec![svc("a", "cpu_preferred")],
            pods: vec![pod("a-1")],
            nodes: vec![],
        };
        let full = RungSnapshot {
            nodes: vec![sliced_node(1, &[])],
            pods: vec![Arc::new(PodUnits {
                node: Some("sliced".into()),
                units: vec![0, 1, 0],
            })],
        };
        let act = LadderRecording::default();
        let mut cycle = Cycle::new(ladder_settings());
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let observer = Table(Ok(slow_and_busy(&["a"])));
        for i in 0..2 {
            cycle
                .run_ladder(
                    &snap,
                    &full,
                    &observer,
                    &act,
                    add(t0, Duration::from_secs(10 * i)),
                    None,
                )
                .await;
        }
        let acted = act.0.lock().unwrap().clone();
        assert_eq!(acted.len(), 1, "{acted:?}");
        assert_eq!(acted[0].1, "no_capacity");
        assert!(
            acted[0].2.contains("cost per 1,000 requests"),
            "{}",
            acted[0].2
        );
        // a slice frees up: promoted one rung, to the shared GPU
        let free = RungSnapshot {
            nodes: vec![sliced_node(1, &[])],
            pods: vec![],
        };
        let r = cycle
            .run_ladder(
                &snap,
                &free,
                &observer,
                &act,
                add(t0, Duration::from_secs(20)),
                None,
            )
            .await;
        assert_eq!(r.decisions.get("promote"), Some(&1), "{r:?}");
        let acted = act.0.lock().unwrap().clone();
        assert!(acted[1].2.contains("→ gpu-shared"), "{}", acted[1].2);
    }

    #[tokio::test]
    async fn the_webhooks_memory_estimate_keeps_a_big_model_off_a_slice_it_does_not_fit() {
        // gaia.dev/gpu-memory-mib (the classifier's estimate, written by the webhook): 35,000
        // MiB, more than a seventh of the H200 (20,538): the slice is not a rung for it.
        let mut v = svc("a", "cpu_preferred").object.clone();
        v["metadata"]["annotations"]["gaia.dev/gpu-memory-mib"] = json!("35000");
        let big = Arc::new(ManagedService::from_value(v, "nvidia.com/gpu").unwrap());
        let snap = Snapshot {
            services: vec![big],
            pods: vec![pod("a-1")],
            nodes: vec![],
        };
        let rungs = RungSnapshot {
            nodes: vec![sliced_node(7, &[])],
            pods: vec![],
        };
        let act = LadderRecording::default();
        let mut cycle = Cycle::new(ladder_settings());
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let observer = Table(Ok(slow_and_busy(&["a"])));
        for i in 0..2 {
            cycle
                .run_ladder(
                    &snap,
                    &rungs,
                    &observer,
                    &act,
                    add(t0, Duration::from_secs(10 * i)),
                    None,
                )
                .await;
        }
        // seven free slices, no whole GPU: no room for it, not a promotion onto a slice
        let acted = act.0.lock().unwrap().clone();
        assert_eq!(acted.len(), 1, "{acted:?}");
        assert_eq!(acted[0].1, "no_capacity", "{acted:?}");
        assert!(
            acted[0]
                .2
                .contains("gpu-shared cannot hold the model (~34.2 GiB)"),
            "{}",
            acted[0].2
        );
    }

    #[tokio::test]
    async fn without_a_ladder_run_ladder_is_run() {
        let snap = Snapshot {
            services: vec![svc("a", "cpu_preferred")],
            pods: vec![pod("a-1")],
            nodes: vec![],
        };
        let act = Recording::default();
        let mut cycle = Cycle::new(settings());
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let r = cycle
            .run_ladder(
                &snap,
                &RungSnapshot::default(),
                &Table(Ok(slow_and_busy(&["a"]))),
                &act,
                t0,
                None,
            )
            .await;
        assert_eq!(r.holds.get("sustaining"), Some(&1), "{r:?}");
    }

    fn preflight(gpu_nodes: gaia_preflight::Status, knative: Option<&str>) -> PreflightResult {
        use gaia_preflight::{Blocks, Check, CheckId, Report};
        PreflightResult {
            report: Arc::new(Report {
                checks: vec![Check {
                    id: CheckId::GpuNodes,
                    status: gpu_nodes,
                    summary: "no node has the GPU placement's labels (nvidia.com/gpu.present=true)"
                        .into(),
                    fix: Some("label the GPU nodes nvidia.com/gpu.present=true".into()),
                    blocks: Blocks::Promotions,
                }],
            }),
            knative: knative.map(|v| v.parse().unwrap()),
            generation: gaia_contract::queries::choose_generation(Default::default(), None, None),
        }
    }

    #[tokio::test]
    async fn a_failing_gpu_nodes_check_holds_the_promotion_with_its_reason_until_it_passes() {
        let snap = Snapshot {
            services: vec![svc("a", "cpu_preferred")],
            pods: vec![pod("a-1")],
            nodes: vec![Arc::new(NodeInfo {
                name: "gpu-1".into(),
                gpus_allocatable: 1,
                schedulable: true,
            })],
        };
        let observer = Table(Ok(slow_and_busy(&["a"])));
        let act = Recording::default();
        let mut cycle = Cycle::new(settings());
        cycle.set_preflight(Some(preflight(gaia_preflight::Status::Fail, None)));
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut held = Vec::new();
        for i in 0..3 {
            let r = cycle
                .run(
                    &snap,
                    &observer,
                    &act,
                    add(t0, Duration::from_secs(10 * i)),
                    None,
                )
                .await;
            held.push(r.holds.get("preflight_failed").copied());
        }
        // sustaining on the first cycle; then promote, held by the preflight
        assert_eq!(held, vec![None, Some(1), Some(1)]);
        assert_eq!(
            act.0.lock().unwrap().clone(),
            vec![("a".to_string(), "PreflightBlocked")],
            "one Warning, no move"
        );
        // the check passes: the promotion goes ahead at once (the streak was kept)
        cycle.set_preflight(Some(preflight(gaia_preflight::Status::Pass, None)));
        let r = cycle
            .run(
                &snap,
                &observer,
                &act,
                add(t0, Duration::from_secs(30)),
                None,
            )
            .await;
        assert_eq!(r.decisions.get("promote"), Some(&1), "{r:?}");
        // a warning holds nothing either
        let mut fresh = Cycle::new(settings());
        fresh.set_preflight(Some(preflight(gaia_preflight::Status::Warn, None)));
        let act = Recording::default();
        fresh.run(&snap, &observer, &act, t0, None).await;
        let r = fresh
            .run(
                &snap,
                &observer,
                &act,
                add(t0, Duration::from_secs(10)),
                None,
            )
            .await;
        assert_eq!(r.decisions.get("promote"), Some(&1), "{r:?}");
    }

    #[tokio::test]
    async fn the_release_the_preflight_finds_holds_sub_second_objectives_unless_configured() {
        let snap = Snapshot {
            services: vec![svc("a", "cpu_preferred")],
            pods: vec![pod("a-1")],
            nodes: vec![],
        };
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let observer = Table(Ok(slow_and_busy(&["a"])));
        // found 1.20.1 (truncates), nothing configured: held latency_unreliable, one Warning
        let act = Recording::default();
        let mut cycle = Cycle::new(settings());
        cycle.set_preflight(Some(preflight(
            gaia_preflight::Status::Pass,
            Some("1.20.1"),
        )));
        let r = cycle.run(&snap, &observer, &act, t0, None).await;
        assert_eq!(r.holds.get("latency_unreliable"), Some(&1), "{r:?}");
        assert_eq!(
            act.0.lock().unwrap().clone(),
            vec![("a".to_string(), "LatencyUnreliable")]
        );
        // found 1.21.2: judged as usual
        let mut cycle = Cycle::new(settings());
        cycle.set_preflight(Some(preflight(
            gaia_preflight::Status::Pass,
            Some("1.21.2"),
        )));
        let r = cycle.run(&snap, &observer, &act, t0, None).await;
        assert_eq!(r.holds.get("sustaining"), Some(&1), "{r:?}");
        // prometheus.knativeVersion given: it wins over what the cluster says
        let configured = CycleSettings::from_config(&Config {
            prometheus: gaia_contract::queries::PrometheusConfig {
                knative_version: Some("1.21.0".into()),
                ..Default::default()
            },
            ..Config::default()
        });
        let mut cycle = Cycle::new(configured);
        cycle.set_preflight(Some(preflight(
            gaia_preflight::Status::Pass,
            Some("1.20.1"),
        )));
        let r = cycle.run(&snap, &observer, &act, t0, None).await;
        assert_eq!(r.holds.get("sustaining"), Some(&1), "{r:?}");
    }

    #[tokio::test]
    async fn an_elastic_gpu_pool_is_promoted_to_with_no_gpu_node_at_all() {
        let snap = Snapshot {
            services: vec![svc("a", "cpu_preferred")],
            pods: vec![pod("a-1")],
            nodes: vec![],
        };
        let mut config = Config::default();
        config.placement.gpu.elastic = true;
        config.placement.gpu.node_join_deadline = Duration::from_secs(480);
        let act = Recording::default();
        let mut cycle = Cycle::new(CycleSettings::from_config(&config));
        let observer = Table(Ok(slow_and_busy(&["a"])));
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        cycle.run(&snap, &observer, &act, t0, None).await;
        let r = cycle
            .run(
                &snap,
                &observer,
                &act,
                add(t0, Duration::from_secs(10)),
                None,
            )
            .await;
        assert_eq!(r.decisions.get("promote"), Some(&1), "{r:?}");
        // the GPU it will get is promised until the join deadline, not rolloutTimeout
        let (_, until) = cycle.reservations[&("ns".to_string(), "a".to_string())];
        assert_eq!(until, add(t0, Duration::from_secs(490)));
        // a fixed pool: told there is no GPU
        let act = Recording::default();
        let mut fixed = Cycle::new(settings());
        fixed.run(&snap, &observer, &act, t0, None).await;
        let r = fixed
            .run(
                &snap,
                &observer,
                &act,
                add(t0, Duration::from_secs(10)),
                None,
            )
            .await;
        assert_eq!(r.decisions.get("no_gpu"), Some(&1), "{r:?}");
    }

    #[tokio::test]
    async fn unreadable_annotations_warn_once_and_hold() {
        let mut bad = (*svc("a", "cpu_preferred")).clone();
        bad.slo = Some(Err("fast".into()));
        let snap = Snapshot {
            services: vec![Arc::new(bad)],
            ..Snapshot::default()
        };
        let act = Recording::default();
        let mut cycle = Cycle::new(settings());
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        for i in 0..3 {
            cycle
                .run(
                    &snap,
                    &Table(Ok(slow_and_busy(&["a"]))),
                    &act,
                    add(t0, Duration::from_secs(10 * i)),
                    None,
                )
                .await;
        }
        assert_eq!(
            act.0.lock().unwrap().clone(),
            vec![("a".to_string(), "InvalidLatencySlo")]
        );
    }
}
