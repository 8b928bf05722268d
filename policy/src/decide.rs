//! The decision: what the policy reads about a Service, what it answers, and the rules.

use std::time::Duration;

use gaia_contract::duration::format_duration;
pub use gaia_contract::MoveKind;
use gaia_contract::{ExecutionMode, Observed, Placement, PlacementMove, RememberedLatency};
use jiff::Timestamp;

use crate::clock::{add, secs_between};
use crate::PolicyConfig;

// ---------------------------------------------------------------------------------------------
// Inputs and outputs
// ---------------------------------------------------------------------------------------------

/// Where the Service's rollout stands (from its status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollout {
    /// The latest created revision is ready and gets all the traffic.
    Settled,
    /// A newer revision is not ready yet (or the status is behind the spec).
    InProgress,
    /// The user routes traffic to a fixed revision: a placement change would not serve it.
    TrafficPinned,
}

/// What the policy knows about one Service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceState {
    pub mode: ExecutionMode,
    /// The placement the template asks for (`gaia.dev/placement` on the template).
    pub placement: Placement,
    pub rollout: Rollout,
    /// The p95 objective.
    pub slo: Duration,
    /// What we remember (`gaia.dev/observed`).
    pub observed: Observed,
    /// GPUs one pod of a GPU revision needs on one node.
    pub gpus_needed: u32,
    /// Pods the GPU revision starts with (its min-scale, at least 1).
    pub gpu_pods: u32,
    /// Consecutive cycles, up to the previous one, whose p95 violated the SLO while compute-bound.
    pub violation_streak: u32,
    /// Since when the Service has been as it is (the later of its creation and its last Ready
    /// transition: a new Service loading its model for minutes is not Ready, so not idle): a
    /// placement no move of ours set is that old. Nothing is judged idle over the long window
    /// before it has been in place that long.
    pub created: Option<Timestamp>,
    /// The cluster's queue-proxy records every latency under 1 s as 0 s (Knative 1.19.0-1.19.8,
    /// 1.20.0-1.20.1): against a sub-second objective its p95 says nothing.
    pub latency_truncated: bool,
    /// The GPU pool grows on demand (the GPU profile's `elastic`), a node joining within this
    /// deadline: no free GPU is then no reason to stay on CPU, and a GPU revision not ready
    /// within it (or `rolloutTimeout`, the longer) is rolled back. `None`: a fixed pool.
    pub elastic_gpu_pool: Option<Duration>,
}

/// CPU use of a revision's user containers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuUse {
    /// Cores used (rate of `container_cpu_usage_seconds_total`).
    pub cores: f64,
    /// Cores the containers may use (limit, else request, else the configured default).
    pub capacity: f64,
}

/// Metrics of the revision that serves a Service. `None` fields had no series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RevisionStats {
    pub p50_short_ms: Option<f64>,
    pub p95_short_ms: Option<f64>,
    pub p95_long_ms: Option<f64>,
    pub rps_short: Option<f64>,
    pub rps_long: Option<f64>,
    pub mean_latency_ms: Option<f64>,
    pub cpu: Option<CpuUse>,
    /// Pods of the revision that exist now (from the API).
    pub pods: u32,
    /// GPU utilisation and memory from DCGM (`None`: not configured, or no series for the
    /// revision's pods: the DCGM rule then does not apply).
    pub gpu: Option<GpuUse>,
}

/// What NVIDIA's DCGM exporter says about a revision's GPUs, over its pods that have series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpuUse {
    /// Mean `DCGM_FI_DEV_GPU_UTIL` over the long window, % (0-100), averaged over the pods.
    pub utilization_pct: f64,
    /// `DCGM_FI_DEV_FB_USED`, MiB, summed over the pods (`None`: no series).
    pub fb_used_mib: Option<f64>,
    /// `DCGM_FI_DEV_FB_FREE`, MiB, summed over the pods.
    pub fb_free_mib: Option<f64>,
}

impl GpuUse {
    /// `GPU 3% busy over 5m, 1200/16384 MiB used` (for notes and `kn gaia status`).
    pub fn describe(&self, window: Duration) -> String {
        let memory = match (self.fb_used_mib, self.fb_free_mib) {
            (Some(u), Some(f)) => format!(", {u:.0}/{:.0} MiB used", u + f),
            (Some(u), None) => format!(", {u:.0} MiB used"),
            _ => String::new(),
        };
        format!(
            "GPU {:.0}% busy over {}{memory}",
            self.utilization_pct,
            format_duration(window)
        )
    }
}

/// Free GPUs, as the API tells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GpuAvailability {
    /// The most GPUs free on any single GPU node (what one pod can get).
    pub largest_free_on_a_node: u32,
    pub free_total: u32,
}

/// Why nothing happens. Stable names, used as metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hold {
    Pinned,
    RolloutInProgress,
    TrafficPinned,
    MetricsUnavailable,
    NoLatencyData,
    TooFewRequests,
    WithinSlo,
    NoCpuData,
    NotComputeBound,
    Sustaining,
    Dwell,
    BackOff,
    MoveCap,
    Verifying,
    GpuInUse,
    /// Latencies under 1 s read as 0 s on this Knative release; the objective is under 1 s.
    LatencyUnreliable,
    /// A preflight check that this move needs fails (no node for the GPU placement, Knative
    /// rejecting the placement fields, Prometheus down): the move is not made.
    PreflightFailed,
}

impl Hold {
    pub fn as_str(self) -> &'static str {
        match self {
            Hold::Pinned => "pinned",
            Hold::RolloutInProgress => "rollout_in_progress",
            Hold::TrafficPinned => "traffic_pinned",
            Hold::MetricsUnavailable => "metrics_unavailable",
            Hold::NoLatencyData => "no_latency_data",
            Hold::TooFewRequests => "too_few_requests",
            Hold::WithinSlo => "within_slo",
            Hold::NoCpuData => "no_cpu_data",
            Hold::NotComputeBound => "not_compute_bound",
            Hold::Sustaining => "sustaining",
            Hold::Dwell => "dwell",
            Hold::BackOff => "back_off",
            Hold::MoveCap => "move_cap",
            Hold::Verifying => "verifying",
            Hold::GpuInUse => "gpu_in_use",
            Hold::LatencyUnreliable => "latency_unreliable",
            Hold::PreflightFailed => "preflight_failed",
        }
    }
}

/// A placement change, with the new memory to record and the human reason with its numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    pub kind: MoveKind,
    pub from: Placement,
    pub to: Placement,
    pub note: String,
    pub observed: Observed,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Nothing to do.
    Hold(Hold),
    /// Change the placement.
    Move(Move),
    /// Record what was learnt (a verified promotion) without moving.
    Remember { observed: Observed, note: String },
    /// A promotion is due but no GPU node has room: say so, try again next cycle.
    NoGpu {
        needed: u32,
        free: u32,
        note: String,
    },
}

impl Decision {
    /// Stable label for metrics: `hold`, `promote`, `demote`, `revert`, `rollback`,
    /// `remember` or `no_gpu`.
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::Hold(_) => "hold",
            Decision::Move(m) => m.kind.as_str(),
            Decision::Remember { .. } => "remember",
            Decision::NoGpu { .. } => "no_gpu",
        }
    }
}

/// The decision and the violation count to carry to the next cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub decision: Decision,
    pub violation_streak: u32,
}

// ---------------------------------------------------------------------------------------------
// The rules
// ---------------------------------------------------------------------------------------------

/// Decides what to do with one Service. Pure: same inputs, same answer.
///
/// `stats` is `None` when Prometheus could not be asked this cycle (every Service holds), and
/// `Some` with empty fields when it answered without series for this revision.
pub fn decide(
    s: &ServiceState,
    stats: Option<&RevisionStats>,
    gpu: GpuAvailability,
    cfg: &PolicyConfig,
    now: Timestamp,
) -> Outcome {
    if s.mode.is_pinned() {
        return hold(Hold::Pinned, 0);
    }
    match s.rollout {
        Rollout::TrafficPinned => return hold(Hold::TrafficPinned, 0),
        Rollout::InProgress => return rollout_in_progress(s, cfg, now),
        Rollout::Settled => {}
    }
    let Some(stats) = stats else {
        return hold(Hold::MetricsUnavailable, 0);
    };
    let stats = &beyond_ceiling(stats, cfg);
    // A p95 made of whole seconds cannot be held against an objective under one: no latency
    // rule applies. Idleness is a request rate, so an idle GPU is still freed.
    let blind = s.latency_truncated && s.slo < Duration::from_secs(1);
    match s.placement {
        Placement::Cpu if blind => hold(Hold::LatencyUnreliable, 0),
        Placement::Cpu => on_cpu(s, stats, gpu, cfg, now),
        Placement::Gpu => on_gpu(s, stats, cfg, now, blind),
    }
}

/// `histogram_quantile` answers the largest finite bucket's bound for a quantile that falls in
/// the `+Inf` bucket: a p95 at the ceiling is a floor, not a value. The mean latency (sum over
/// count, not bounded by buckets) is then the better estimate when it is higher; without it the
/// ceiling stays (a 15 s function on CPU must not read as 10 s against a 7 s SLO).
pub(crate) fn beyond_ceiling(st: &RevisionStats, cfg: &PolicyConfig) -> RevisionStats {
    let ceiling = ms(cfg.latency_ceiling);
    let lift = |p95: Option<f64>| {
        p95.map(|p| match st.mean_latency_ms {
            Some(mean) if p >= ceiling => p.max(mean),
            _ => p,
        })
    };
    RevisionStats {
        p95_short_ms: lift(st.p95_short_ms),
        p95_long_ms: lift(st.p95_long_ms),
        ..st.clone()
    }
}

fn hold(reason: Hold, streak: u32) -> Outcome {
    Outcome {
        decision: Decision::Hold(reason),
        violation_streak: streak,
    }
}

/// Rule 2: hold during a rollout; roll back one of ours that never became ready.
fn rollout_in_progress(s: &ServiceState, cfg: &PolicyConfig, now: Timestamp) -> Outcome {
    let Some(last) = &s.observed.last_move else {
        return hold(Hold::RolloutInProgress, 0);
    };
    let age = secs_between(last.at, now);
    let timeout = rollout_timeout(s, cfg);
    if last.to != s.placement || age <= timeout.as_secs_f64() {
        return hold(Hold::RolloutInProgress, 0);
    }
    // The cap holds for rollbacks too: until an hour's moves age out, the revision that serves
    // now (Knative keeps the last ready one) goes on serving.
    if moves_in_last_hour(&s.observed, now) >= cfg.hysteresis.max_moves_per_hour {
        return hold(Hold::MoveCap, 0);
    }
    let mut observed = s.observed.clone();
    let note = format!(
        "the {} revision asked for {} ago is still not ready (timeout {}{}): back to {}",
        s.placement,
        format_duration(Duration::from_secs_f64(age.max(0.0))),
        format_duration(timeout),
        if timeout > cfg.rollout_timeout {
            ", the GPU pool's nodeJoinDeadline: no node joined in time"
        } else {
            ""
        },
        last.from
    );
    if s.placement == Placement::Gpu {
        start_backoff(&mut observed, cfg, now);
    }
    record_move(
        &mut observed,
        MoveKind::Rollback,
        (s.placement, last.from),
        &note,
        now,
    );
    Outcome {
        decision: Decision::Move(Move {
            kind: MoveKind::Rollback,
            from: s.placement,
            to: last.from,
            note,
            observed,
        }),
        violation_streak: 0,
    }
}

/// How long a rollout to the Service's placement may take: `rolloutTimeout`, or on an elastic
/// GPU pool the time a node has to join, when longer.
fn rollout_timeout(s: &ServiceState, cfg: &PolicyConfig) -> Duration {
    match (s.placement, s.elastic_gpu_pool) {
        (Placement::Gpu, Some(join)) => join.max(cfg.rollout_timeout),
        _ => cfg.rollout_timeout,
    }
}

/// Rule 3 and 4: on CPU, promote a sustained, compute-bound violation when a GPU is free (or
/// the GPU pool grows on demand).
fn on_cpu(
    s: &ServiceState,
    st: &RevisionStats,
    gpu: GpuAvailability,
    cfg: &PolicyConfig,
    now: Timestamp,
) -> Outcome {
    let p = &cfg.promote;
    let slo_ms = ms(s.slo);
    let (Some(p95), Some(rps)) = (st.p95_short_ms, st.rps_short) else {
        return hold(Hold::NoLatencyData, 0);
    };
    let violation = slo_ms * (1.0 + p.slo_tolerance);
    let requests = rps * cfg.short_window.as_secs_f64();
    let severe = p95 >= slo_ms * p.severe_factor;
    let all_slow = st.p50_short_ms.is_some_and(|m| m > violation);
    let enough =
        requests >= p.min_requests || (severe && all_slow && requests >= p.min_requests_severe);
    if p95 <= violation {
        return hold(Hold::WithinSlo, 0);
    }
    if !enough {
        return hold(Hold::TooFewRequests, 0);
    }
    let Some(cpu) = st.cpu else {
        return hold(Hold::NoCpuData, 0);
    };
    let (compute_bound, utilization, per_request) = compute_bound(st, cpu, rps, p);
    if !compute_bound {
        return hold(Hold::NotComputeBound, 0);
    }

    let streak = s.violation_streak.saturating_add(1);
    let long_violated = st
        .p95_long_ms
        .is_some_and(|l| l > slo_ms * (1.0 + p.slo_tolerance));
    let sustained =
        (severe && streak >= p.severe_cycles) || (long_violated && streak >= p.sustain_cycles);
    if !sustained {
        return hold(Hold::Sustaining, streak);
    }
    if let Some(h) = hysteresis(s, cfg, now, 2, true) {
        return hold(h, streak);
    }

    let why = format!(
        "p95 {p95:.0}ms > SLO {slo_ms:.0}ms for {streak} cycles ({}; {} p95 {}), {rps:.2} req/s \
         ({requests:.0} in {}), \
         CPU {:.2}/{:.2} cores ({:.0}%){}",
        if severe {
            format!("severe: ≥ {:.1}× SLO", p.severe_factor)
        } else {
            "sustained".to_string()
        },
        format_duration(cfg.long_window),
        st.p95_long_ms
            .map(|l| format!("{l:.0}ms"))
            .unwrap_or_else(|| "n/a".into()),
        format_duration(cfg.short_window),
        cpu.cores,
        cpu.capacity,
        utilization * 100.0,
        per_request
            .map(|c| format!(", {c:.2} cores per request in flight"))
            .unwrap_or_default(),
    );
    let total_needed = s.gpus_needed.saturating_mul(s.gpu_pods.max(1));
    let room = gpu.largest_free_on_a_node >= s.gpus_needed && gpu.free_total >= total_needed;
    if !room && s.elastic_gpu_pool.is_none() {
        return Outcome {
            decision: Decision::NoGpu {
                needed: total_needed,
                free: gpu.free_total,
                note: format!(
                    "{why}; but the GPU pool cannot start it ({} pod(s) × {} GPU(s) on one node; \
                     {} free, at most {} on one node): staying on CPU, retrying",
                    s.gpu_pods.max(1),
                    s.gpus_needed,
                    gpu.free_total,
                    gpu.largest_free_on_a_node
                ),
            },
            violation_streak: streak,
        };
    }
    let mut observed = s.observed.clone();
    observed.remember(Placement::Cpu, remembered(p95, rps, now));
    let note = match s.elastic_gpu_pool {
        Some(join) if !room => format!(
            "{why}; no GPU free ({} free, at most {} on one node), the GPU pool grows on demand: \
             a node has {} to join, the CPU revision serves until then → gpu",
            gpu.free_total,
            gpu.largest_free_on_a_node,
            format_duration(join.max(cfg.rollout_timeout))
        ),
        _ => format!("{why}; GPU free → gpu"),
    };
    record_move(
        &mut observed,
        MoveKind::Promote,
        (Placement::Cpu, Placement::Gpu),
        &note,
        now,
    );
    Outcome {
        decision: Decision::Move(Move {
            kind: MoveKind::Promote,
            from: Placement::Cpu,
            to: Placement::Gpu,
            note,
            observed,
        }),
        violation_streak: 0,
    }
}

/// Compute-bound: CPU use / capacity ≥ `cpuUtilization`, or CPU cores per in-flight request
/// (Little's law: requests in flight = rate × mean latency) ≥ `cpuPerRequest`. Returns the
/// verdict, the utilisation and the cores per request in flight (when there is a mean).
pub(crate) fn compute_bound(
    st: &RevisionStats,
    cpu: CpuUse,
    rps: f64,
    p: &crate::PromoteConfig,
) -> (bool, f64, Option<f64>) {
    let utilization = if cpu.capacity > 0.0 {
        cpu.cores / cpu.capacity
    } else {
        0.0
    };
    let per_request = st
        .mean_latency_ms
        .map(|mean| rps * mean / 1e3)
        .filter(|in_flight| *in_flight > 0.0)
        .map(|in_flight| cpu.cores / in_flight);
    let bound =
        utilization >= p.cpu_utilization || per_request.is_some_and(|c| c >= p.cpu_per_request);
    (bound, utilization, per_request)
}

/// Rules 5 and 6: on GPU, verify our promotion, then demote when the GPU is not needed.
/// Rules 5 and 6 on GPU. `blind`: the latencies cannot be read against the objective, so only the
/// idle rule applies.
fn on_gpu(
    s: &ServiceState,
    st: &RevisionStats,
    cfg: &PolicyConfig,
    now: Timestamp,
    blind: bool,
) -> Outcome {
    let slo_ms = ms(s.slo);
    let v = &cfg.verify;
    let short = cfg.short_window.as_secs_f64();
    let judged = match (st.p95_short_ms, st.rps_short) {
        (Some(p95), Some(rps)) if !blind && rps * short >= v.min_requests => Some((p95, rps)),
        _ => None,
    };
    // A clear success may be judged on fewer requests (slow functions); a revert may not.
    let few = match (st.p95_short_ms, st.rps_short) {
        (Some(p95), Some(rps)) if !blind && rps * short >= cfg.promote.min_requests_severe => {
            Some((p95, rps))
        }
        _ => None,
    };

    // Rule 5: verify a promotion of ours that nothing has confirmed yet.
    let unverified = s
        .observed
        .last_move
        .as_ref()
        .filter(|m| m.is_promotion() && s.observed.gpu.as_ref().is_none_or(|g| g.at <= m.at));
    if blind && !is_idle(st, cfg) {
        return hold(Hold::LatencyUnreliable, 0);
    }
    if let (Some(m), Some(cpu_memory)) = (unverified, s.observed.cpu.as_ref()) {
        let age = secs_between(m.at, now);
        if age < v.settle.as_secs_f64() {
            return hold(Hold::Verifying, 0);
        }
        let clear_success = few.filter(|(p95, _)| 1.0 - p95 / cpu_memory.p95_ms >= v.min_gain);
        if let Some((p95, rps)) = judged.or(clear_success) {
            let gain = 1.0 - p95 / cpu_memory.p95_ms;
            let mut observed = s.observed.clone();
            observed.remember(Placement::Gpu, remembered(p95, rps, now));
            if gain < v.min_gain {
                // A promotion keeps room for its revert; should the cap be full anyway (a
                // rollback since), the revert waits like any move.
                if moves_in_last_hour(&s.observed, now) >= cfg.hysteresis.max_moves_per_hour {
                    return hold(Hold::MoveCap, 0);
                }
                let note = format!(
                    "GPU did not help: p95 {p95:.0}ms on GPU vs {:.0}ms remembered on CPU \
                     (gain {:.0}% < {:.0}%) at {rps:.2} req/s → cpu; ",
                    cpu_memory.p95_ms,
                    gain * 100.0,
                    v.min_gain * 100.0
                );
                let until = start_backoff(&mut observed, cfg, now);
                let note = format!(
                    "{note}useless promotion #{}, next try not before {until}",
                    observed.useless_promotions
                );
                record_move(
                    &mut observed,
                    MoveKind::Revert,
                    (Placement::Gpu, Placement::Cpu),
                    &note,
                    now,
                );
                return Outcome {
                    decision: Decision::Move(Move {
                        kind: MoveKind::Revert,
                        from: Placement::Gpu,
                        to: Placement::Cpu,
                        note,
                        observed,
                    }),
                    violation_streak: 0,
                };
            }
            observed.useless_promotions = 0;
            return Outcome {
                decision: Decision::Remember {
                    observed,
                    note: format!(
                        "GPU verified: p95 {p95:.0}ms on GPU vs {:.0}ms remembered on CPU \
                         (gain {:.0}% ≥ {:.0}%) at {rps:.2} req/s",
                        cpu_memory.p95_ms,
                        gain * 100.0,
                        v.min_gain * 100.0
                    ),
                },
                violation_streak: 0,
            };
        }
        // Too little traffic to judge: only the idle rule below may still apply.
    }
    let verified = unverified.is_none();

    // Rule 6: demotion candidates. Idle means idle for a whole long window: a placement in
    // place for less (a new Service still loading its model, a fresh move) is not judged so.
    let in_place_since = s.observed.last_move.as_ref().map(|m| m.at).or(s.created);
    let long_in_place =
        in_place_since.is_none_or(|at| secs_between(at, now) >= cfg.long_window.as_secs_f64());
    let idle = is_idle(st, cfg);
    if idle && !long_in_place {
        return hold(Hold::Dwell, 0);
    }
    let candidate: Option<(MoveKind, String)> = if idle {
        Some((
            MoveKind::Demote,
            match st.rps_long {
                Some(rate) => format!(
                    "idle: {rate:.3} req/s over {} < {} req/s → cpu, the GPU is freed",
                    format_duration(cfg.long_window),
                    cfg.demote.idle_rps
                ),
                None => format!(
                    "idle: scaled to zero, no requests for {} → cpu, the GPU is freed",
                    format_duration(cfg.long_window)
                ),
            },
        ))
    } else if let Some(cpu_memory) = s.observed.cpu.as_ref() {
        let light = st
            .rps_long
            .filter(|rate| cpu_memory.p95_ms <= slo_ms && *rate <= cpu_memory.rps);
        let no_gain = judged.filter(|(p95, rps)| {
            let c = cfg.demote.comparable_load;
            verified
                && *rps >= cpu_memory.rps / c
                && *rps <= cpu_memory.rps * c
                && 1.0 - p95 / cpu_memory.p95_ms < v.min_gain
        });
        if let Some(rate) = light {
            Some((
                MoveKind::Demote,
                format!(
                    "load {rate:.2} req/s ≤ {:.2} req/s at which CPU p95 was {:.0}ms ≤ SLO {slo_ms:.0}ms → cpu",
                    cpu_memory.rps, cpu_memory.p95_ms
                ),
            ))
        } else {
            no_gain.map(|(p95, rps)| {
                (
                    MoveKind::Revert,
                    format!(
                        "GPU gives no significant gain: p95 {p95:.0}ms on GPU vs {:.0}ms on CPU at a \
                         comparable load ({rps:.2} vs {:.2} req/s) → cpu",
                        cpu_memory.p95_ms, cpu_memory.rps
                    ),
                )
            })
        }
    } else {
        None
    };
    let candidate = candidate
        .or_else(|| gpu_idles(s, st, cfg, long_in_place).map(|note| (MoveKind::Demote, note)));

    let Some((kind, note)) = candidate else {
        return hold(
            if verified {
                Hold::GpuInUse
            } else {
                Hold::Verifying
            },
            0,
        );
    };
    // Back-off only restrains promotions; dwell and the cap restrain every move.
    if let Some(h) = hysteresis(s, cfg, now, 1, false) {
        return hold(h, 0);
    }
    let mut observed = s.observed.clone();
    if let (Some(p95), Some(rps)) = (st.p95_short_ms, st.rps_short) {
        observed.remember(Placement::Gpu, remembered(p95, rps, now));
    }
    let note = if kind == MoveKind::Revert {
        let until = start_backoff(&mut observed, cfg, now);
        format!("{note}; next promotion not before {until}")
    } else {
        note
    };
    record_move(
        &mut observed,
        kind,
        (Placement::Gpu, Placement::Cpu),
        &note,
        now,
    );
    Outcome {
        decision: Decision::Move(Move {
            kind,
            from: Placement::Gpu,
            to: Placement::Cpu,
            note,
            observed,
        }),
        violation_streak: 0,
    }
}

/// The DCGM rule (rule 6, with `prometheus.dcgm`): the GPU idles — its mean utilisation over
/// the long window is under `gpuIdleUtilization` while the revision has been in place that whole
/// window — and the CPU met the SLO at a load at least the current one (the remembered CPU p95
/// ≤ SLO at a rate ≥ the short window's). Sooner than the light-load rule, which waits for the
/// long window's rate to come down to the remembered CPU load (up to a whole long window after
/// the load drops): here the short window's rate is the load, the GPU's idleness over the long
/// window showing it had little to do. Missing DCGM data (or no CPU memory): `None`, the other
/// rules decide alone.
fn gpu_idles(
    s: &ServiceState,
    st: &RevisionStats,
    cfg: &PolicyConfig,
    long_in_place: bool,
) -> Option<String> {
    let gpu = st.gpu.filter(|g| g.utilization_pct.is_finite())?;
    let cpu_memory = s.observed.cpu.as_ref()?;
    let rate = st.rps_short?;
    let slo_ms = ms(s.slo);
    let idle = gpu.utilization_pct < cfg.demote.gpu_idle_utilization;
    (idle && long_in_place && cpu_memory.p95_ms <= slo_ms && rate <= cpu_memory.rps).then(|| {
        format!(
            "GPU idles: {} < {}%; load {rate:.2} req/s over {} ({} over {}) ≤ {:.2} req/s at \
             which CPU p95 was {:.0}ms ≤ SLO {slo_ms:.0}ms → cpu, the GPU is freed",
            gpu.describe(cfg.long_window),
            cfg.demote.gpu_idle_utilization,
            format_duration(cfg.short_window),
            st.rps_long
                .map(|r| format!("{r:.2} req/s"))
                .unwrap_or_else(|| "n/a".into()),
            format_duration(cfg.long_window),
            cpu_memory.rps,
            cpu_memory.p95_ms
        )
    })
}

/// Dwell, back-off (for a promotion) and the moves-per-hour cap. `room` is how many moves must
/// still fit in the hour: 2 for a promotion (it may need a revert), 1 for a demotion.
fn hysteresis(
    s: &ServiceState,
    cfg: &PolicyConfig,
    now: Timestamp,
    room: u32,
    promotion: bool,
) -> Option<Hold> {
    let h = &cfg.hysteresis;
    if let Some(last) = &s.observed.last_move {
        if secs_between(last.at, now) < h.min_dwell.as_secs_f64() {
            return Some(Hold::Dwell);
        }
    }
    if promotion && s.observed.promotion_blocked_until.is_some_and(|t| now < t) {
        return Some(Hold::BackOff);
    }
    if moves_in_last_hour(&s.observed, now) + room > h.max_moves_per_hour {
        return Some(Hold::MoveCap);
    }
    None
}

/// Idle: no requests to speak of in either window, or scaled to zero with no series.
fn is_idle(st: &RevisionStats, cfg: &PolicyConfig) -> bool {
    match st.rps_long {
        // Both windows: a revision younger than the long window has a long-window rate
        // diluted by the time it did not exist; its short-window rate shows it is busy.
        Some(rate) => {
            rate < cfg.demote.idle_rps && st.rps_short.is_none_or(|r| r < cfg.demote.idle_rps)
        }
        // No series at all: idle only if the revision has no pod (scaled to zero).
        None => st.pods == 0,
    }
}

/// Moves recorded in the hour before `now`.
fn moves_in_last_hour(observed: &Observed, now: Timestamp) -> u32 {
    let n = observed
        .recent_moves
        .iter()
        .filter(|t| secs_between(**t, now) < 3600.0)
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Counts a useless promotion and blocks the next one for `base × 2^(n-1)`, at most `max`.
/// Starts the back-off after a promotion that did not pay: counts it and blocks promotions
/// until the returned time.
pub fn start_backoff(observed: &mut Observed, cfg: &PolicyConfig, now: Timestamp) -> Timestamp {
    let h = &cfg.hysteresis;
    observed.useless_promotions = observed.useless_promotions.saturating_add(1);
    let factor = 2f64.powi(observed.useless_promotions.saturating_sub(1).min(30) as i32);
    let secs = (h.backoff_base.as_secs_f64() * factor).min(h.backoff_max.as_secs_f64());
    let until = add(now, Duration::from_secs_f64(secs));
    observed.promotion_blocked_until = Some(until);
    until
}

fn record_move(
    observed: &mut Observed,
    kind: MoveKind,
    (from, to): (Placement, Placement),
    note: &str,
    now: Timestamp,
) {
    observed.last_move = Some(PlacementMove {
        from,
        to,
        at: now,
        reason: note.to_string(),
        kind: Some(kind),
    });
    observed
        .recent_moves
        .retain(|t| secs_between(*t, now) < 3600.0);
    observed.recent_moves.push(now);
}

fn remembered(p95_ms: f64, rps: f64, at: Timestamp) -> RememberedLatency {
    RememberedLatency {
        p95_ms: (p95_ms * 10.0).round() / 10.0,
        rps: (rps * 1000.0).round() / 1000.0,
        at,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
