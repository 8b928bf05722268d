//! The placement ladder (issue 16): more than two placements, e.g. `cpu` → `gpu-shared` (a
//! time-sliced `nvidia.com/gpu.shared` or a MIG slice `nvidia.com/mig-1g.18gb`) → `gpu` (a whole
//! GPU), and the cheapest rung that meets the objective.
//!
//! The platform team lists the rungs in the autoscaler's config, from the slowest to the
//! fastest, each with its placement profile, the extended resource that bounds it, a price per
//! second and the GPU memory a pod gets. The default ladder is today's two rungs; the controller
//! keeps calling [`crate::decide`] for it, so nothing changes for existing users.
//!
//! [`decide_ladder`] is pure, like [`crate::decide`], and uses the same thresholds
//! ([`PolicyConfig`]). The rules, in the order they are checked:
//!
//! 1. **Pinned** modes are never moved. **Rollout** in progress holds; one of ours not ready after
//!    `rolloutTimeout` is rolled back to the rung it came from (an upward one starts the back-off).
//!    **Missing data** holds.
//! 2. **Verify** every upward move once `verify.settle` has passed: a promotion needs a gain of
//!    `verify.minGain` over the latency remembered on the rung below (else **revert**, back-off);
//!    a cost move (below) must meet the objective on its new rung (else revert, back-off).
//! 3. **Idle** on a GPU rung for a whole long window: down to the first rung (the GPU slice is
//!    freed), as [`crate::decide`] does.
//! 4. **Promote** a sustained violation (the same streaks, guards and compute-bound test as
//!    [`crate::decide`], on every rung: a function that waits is not helped by a bigger GPU
//!    either) **one rung up**. Rungs whose GPU memory
//!    cannot hold the model (see [`gpu_memory_estimate_mib`]) are not rungs for this Service:
//!    they are skipped. A rung with no free unit on any node is passed over for the next one up
//!    that has one; none: [`LadderDecision::NoCapacity`].
//! 5. **Cost**: within the objective, move one rung, down or up, to a rung that costs less per
//!    request and is expected to meet the objective at the current load: the rung below only on
//!    its remembered latency (met the objective at a load at least as high as now: **demote**),
//!    the rung above (faster by the ladder's order) unless its remembered latency violated the
//!    objective at a load no higher than now (**economize**, verified as in 2).
//!
//! Hysteresis is per ladder, in one memory ([`LadderMemory`], the annotation
//! `gaia.dev/ladder`): `minDwell` before a voluntary move, `maxMovesPerHour` over every move
//! (an upward move keeps room for its revert), the back-off after a useless upward move blocks
//! upward moves only. A cost move always goes to a strictly cheaper rung, a move up for a
//! violation is followed by no move down until the rung below is remembered meeting the
//! objective at that load: no two rungs can bounce a Service between them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use gaia_contract::duration::format_duration;
use gaia_contract::placement::GPU_RESOURCE;
use gaia_contract::{ExecutionMode, PlacementProfile, RememberedLatency};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::clock::{add, secs_between};
use crate::decide::{beyond_ceiling, compute_bound, GpuAvailability, Hold, RevisionStats, Rollout};
use crate::{Error, PolicyConfig};

/// The paper's price of a CPU node, $/s.
pub const PAPER_CPU_PRICE: f64 = 0.000038;
/// The paper's price of a GPU node, $/s.
pub const PAPER_GPU_PRICE: f64 = 0.000133;
/// The extended resource of NVIDIA's time-slicing with `renameByDefault`.
pub const GPU_SHARED_RESOURCE: &str = "nvidia.com/gpu.shared";

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// One rung of the ladder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rung {
    /// Stable name (`cpu`, `gpu-shared`, `gpu`): recorded in `gaia.dev/placed-for` and in the
    /// ladder memory.
    pub name: String,
    /// nodeSelector, tolerations and limits, as the `placement` section writes them.
    #[serde(default)]
    pub profile: PlacementProfile,
    /// The extended resource whose free units bound the rung (`nvidia.com/gpu`,
    /// `nvidia.com/gpu.shared`, `nvidia.com/mig-1g.18gb`); none on a CPU rung.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Units of `resource` one pod requests.
    #[serde(default = "one")]
    pub amount: u32,
    /// What one pod on this rung costs, $/s.
    pub price_per_second: f64,
    /// GPU memory one pod can use, MiB (a MIG slice's memory; for time-slicing the GPU's memory
    /// divided by its replicas). None: not limited (a CPU rung) or not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_memory_mib: Option<f64>,
}

fn one() -> u32 {
    1
}

/// The rungs, slowest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LadderConfig {
    pub rungs: Vec<Rung>,
}

impl Rung {
    pub fn is_gpu(&self) -> bool {
        self.resource.is_some()
    }

    /// Can a model needing `need_mib` of GPU memory run here? Unknown on either side: yes.
    pub fn fits(&self, need_mib: Option<f64>) -> bool {
        match (self.gpu_memory_mib, need_mib) {
            (Some(have), Some(need)) => need <= have,
            _ => true,
        }
    }
}

impl Default for LadderConfig {
    /// Today's two placements, at the paper's prices: the controller decides them with
    /// [`crate::decide`].
    fn default() -> Self {
        let profiles = gaia_contract::PlacementProfiles::default();
        LadderConfig {
            rungs: vec![
                Rung {
                    name: "cpu".into(),
                    profile: profiles.cpu,
                    resource: None,
                    amount: 1,
                    price_per_second: PAPER_CPU_PRICE,
                    gpu_memory_mib: None,
                },
                Rung {
                    name: "gpu".into(),
                    profile: profiles.gpu,
                    resource: Some(GPU_RESOURCE.into()),
                    amount: 1,
                    price_per_second: PAPER_GPU_PRICE,
                    gpu_memory_mib: None,
                },
            ],
        }
    }
}

impl LadderConfig {
    /// A three-rung ladder: CPU, a seventh of a GPU time-sliced (`nvidia.com/gpu.shared`, 7
    /// replicas, a seventh of the price and of the memory), the whole GPU. `gpu_memory_mib` is
    /// the whole GPU's memory.
    pub fn cpu_shared_gpu(gpu_memory_mib: f64, replicas: u32) -> LadderConfig {
        let mut ladder = LadderConfig::default();
        let whole = ladder.rungs[1].clone();
        let mut shared = whole.clone();
        shared.name = "gpu-shared".into();
        shared.resource = Some(GPU_SHARED_RESOURCE.into());
        shared.profile.limits =
            BTreeMap::from([(GPU_SHARED_RESOURCE.to_string(), "1".to_string())]);
        shared.price_per_second = whole.price_per_second / f64::from(replicas.max(1));
        shared.gpu_memory_mib = Some(gpu_memory_mib / f64::from(replicas.max(1)));
        ladder.rungs[1].gpu_memory_mib = Some(gpu_memory_mib);
        ladder.rungs.insert(1, shared);
        ladder
    }

    /// A three-rung ladder with a MIG slice in the middle: CPU, one `mig_resource` slice
    /// (e.g. `nvidia.com/mig-1g.18gb`, `mig_memory_mib` of memory, a `slices`-th of the price),
    /// the whole GPU.
    pub fn cpu_mig_gpu(
        gpu_memory_mib: f64,
        mig_resource: &str,
        mig_memory_mib: f64,
        slices: u32,
    ) -> LadderConfig {
        let mut ladder = LadderConfig::cpu_shared_gpu(gpu_memory_mib, slices);
        let r = &mut ladder.rungs[1];
        r.name = "gpu-mig".into();
        r.resource = Some(mig_resource.into());
        r.profile.limits = BTreeMap::from([(mig_resource.to_string(), "1".to_string())]);
        r.gpu_memory_mib = Some(mig_memory_mib);
        ladder
    }

    /// More than today's two rungs: the controller decides with [`decide_ladder`].
    pub fn is_ladder(&self) -> bool {
        self.rungs.len() > 2
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.rungs.iter().position(|r| r.name == name)
    }

    /// Checks what types cannot; the error names the field.
    pub fn validate(&self) -> Result<(), Error> {
        if self.rungs.len() < 2 {
            return Err(Error::config("ladder.rungs", "needs at least two rungs"));
        }
        for (i, r) in self.rungs.iter().enumerate() {
            let at = |f: &str| format!("ladder.rungs[{i}].{f}");
            if r.name.trim().is_empty() || r.name.len() > 63 {
                return Err(Error::config(at("name"), "must be 1 to 63 characters"));
            }
            if self.rungs[..i].iter().any(|o| o.name == r.name) {
                return Err(Error::config(
                    at("name"),
                    format!("{:?} appears twice", r.name),
                ));
            }
            if !(r.price_per_second.is_finite() && r.price_per_second >= 0.0) {
                return Err(Error::config(at("pricePerSecond"), "must be a number ≥ 0"));
            }
            if r.amount == 0 {
                return Err(Error::config(at("amount"), "must be at least 1"));
            }
            if r.gpu_memory_mib
                .is_some_and(|m| !(m.is_finite() && m > 0.0))
            {
                return Err(Error::config(at("gpuMemoryMib"), "must be a number > 0"));
            }
            match (i, &r.resource) {
                (0, Some(_)) => {
                    return Err(Error::config(
                        at("resource"),
                        "the first rung is the CPU: no GPU resource",
                    ))
                }
                (i, None) if i > 0 => {
                    return Err(Error::config(
                        at("resource"),
                        "every rung above the first names the GPU resource that bounds it",
                    ))
                }
                (_, Some(name)) if name.trim().is_empty() => {
                    return Err(Error::config(at("resource"), "empty resource name"))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The model's GPU memory, and the first rung
// ---------------------------------------------------------------------------------------------

pub use gaia_contract::gpu_memory::{
    gpu_memory_estimate_mib, Dtype, ACTIVATION_HEADROOM, CONTEXT_MIB,
};

/// The rung a new Service starts on, and why. `cpu` stays on the first rung; `gpu` (never moved)
/// takes the top rung, a whole GPU, as today; `gpu_preferred` the lowest GPU rung whose memory
/// fits the model; `cpu_preferred` (device-agnostic code) the cheapest of the first rung and
/// that lowest fitting GPU rung: with today's two rungs that is the CPU, as today.
pub fn initial_rung(
    mode: ExecutionMode,
    model_gpu_mib: Option<f64>,
    ladder: &LadderConfig,
) -> (usize, String) {
    let rungs = &ladder.rungs;
    let top = rungs.len().saturating_sub(1);
    let need = model_gpu_mib
        .map(|m| format!("the model needs ~{:.1} GiB of GPU memory", m / 1024.0))
        .unwrap_or_else(|| "the model's GPU memory is unknown".into());
    let lowest_gpu = (1..rungs.len()).find(|&i| rungs[i].fits(model_gpu_mib));
    let size = |i: usize| {
        rungs[i]
            .gpu_memory_mib
            .map(|m| format!(" ({:.1} GiB)", m / 1024.0))
            .unwrap_or_default()
    };
    match mode {
        ExecutionMode::Cpu => (0, format!("{}: nothing here uses a GPU", rungs[0].name)),
        ExecutionMode::Gpu => (
            top,
            format!(
                "{}: the code needs a GPU and is never moved",
                rungs[top].name
            ),
        ),
        ExecutionMode::GpuPreferred => match lowest_gpu {
            Some(i) => (
                i,
                format!(
                    "{}: {need}; {}{} is the lowest GPU rung that holds it",
                    rungs[i].name,
                    rungs[i].name,
                    size(i)
                ),
            ),
            None => (
                top,
                format!(
                    "{}: {need}, more than any rung has; the largest",
                    rungs[top].name
                ),
            ),
        },
        ExecutionMode::CpuPreferred => match lowest_gpu {
            Some(i) if rungs[i].price_per_second < rungs[0].price_per_second => (
                i,
                format!(
                    "{}: device-agnostic code, {need}; {}{} costs less a second ({}) than {} ({})",
                    rungs[i].name,
                    rungs[i].name,
                    size(i),
                    price(rungs[i].price_per_second),
                    rungs[0].name,
                    price(rungs[0].price_per_second)
                ),
            ),
            _ => (
                0,
                format!(
                    "{}: device-agnostic code, the cheapest rung first",
                    rungs[0].name
                ),
            ),
        },
    }
}

fn price(p: f64) -> String {
    format!("${p:.6}/s")
}

// ---------------------------------------------------------------------------------------------
// Memory, inputs, outputs
// ---------------------------------------------------------------------------------------------

/// Which rule moved a Service between rungs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LadderMoveKind {
    /// Up, for a sustained violation.
    Promote,
    /// Up to a rung that costs less per request (a shared GPU cheaper than a CPU node).
    Economize,
    /// Down: idle, or the rung below is remembered meeting the objective at this load.
    Demote,
    /// Back down after an upward move that did not verify.
    Revert,
    /// Back to where it came from after a revision that never became ready.
    Rollback,
}

impl LadderMoveKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LadderMoveKind::Promote => "promote",
            LadderMoveKind::Economize => "economize",
            LadderMoveKind::Demote => "demote",
            LadderMoveKind::Revert => "revert",
            LadderMoveKind::Rollback => "rollback",
        }
    }

    /// Upward moves are verified, and a useless one starts the back-off.
    pub fn is_upward(self) -> bool {
        matches!(self, LadderMoveKind::Promote | LadderMoveKind::Economize)
    }
}

/// One move between rungs, by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RungMove {
    pub from: String,
    pub to: String,
    pub at: Timestamp,
    pub kind: LadderMoveKind,
    pub reason: String,
}

/// What the ladder remembers on a Service (`gaia.dev/ladder`): per rung the last p95 and its
/// load, the last move, the moves of the last hour, the back-off. Keyed by rung name, so a
/// reordered ladder reads the same memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LadderMemory {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rungs: BTreeMap<String, RememberedLatency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_move: Option<RungMove>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recent_moves: Vec<Timestamp>,
    #[serde(skip_serializing_if = "is_zero")]
    pub useless_promotions: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion_blocked_until: Option<Timestamp>,
    /// When the last upward move was judged (verified or reverted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<Timestamp>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl LadderMemory {
    pub fn from_annotation(text: Option<&str>) -> Result<LadderMemory, serde_json::Error> {
        match text {
            None => Ok(LadderMemory::default()),
            Some(t) if t.trim().is_empty() => Ok(LadderMemory::default()),
            Some(t) => serde_json::from_str(t),
        }
    }

    pub fn to_annotation(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

/// What the ladder knows about one Service.
#[derive(Debug, Clone, PartialEq)]
pub struct LadderState {
    pub mode: ExecutionMode,
    /// Index of the rung the template asks for.
    pub rung: usize,
    pub rollout: Rollout,
    pub slo: Duration,
    pub memory: LadderMemory,
    /// Pods a revision starts with (min-scale, at least 1).
    pub pods: u32,
    pub violation_streak: u32,
    pub created: Option<Timestamp>,
    /// The model's GPU memory estimate (MiB), if the classifier found its size.
    pub model_gpu_mib: Option<f64>,
}

/// A move between rungs, with the memory to write back and the reason with its numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct RungChange {
    pub kind: LadderMoveKind,
    pub from: usize,
    pub to: usize,
    pub note: String,
    pub memory: LadderMemory,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LadderDecision {
    Hold(Hold),
    Move(RungChange),
    /// Record what was learnt (a verified upward move) without moving.
    Remember {
        memory: LadderMemory,
        note: String,
    },
    /// A promotion is due but no rung above that fits has a free unit on a node.
    NoCapacity {
        rung: usize,
        note: String,
    },
}

impl LadderDecision {
    /// Stable label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            LadderDecision::Hold(_) => "hold",
            LadderDecision::Move(m) => m.kind.as_str(),
            LadderDecision::Remember { .. } => "remember",
            LadderDecision::NoCapacity { .. } => "no_capacity",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LadderOutcome {
    pub decision: LadderDecision,
    pub violation_streak: u32,
}

// ---------------------------------------------------------------------------------------------
// Cost
// ---------------------------------------------------------------------------------------------

/// Cost of 1,000 requests on one rung, and whether it comes from a load measured there.
#[derive(Debug, Clone, PartialEq)]
pub struct RungCost {
    pub rung: String,
    pub usd_per_1000: Option<f64>,
    pub measured: bool,
}

/// Per rung, what 1,000 requests cost: `pods × price per second / requests per second`, at the
/// load remembered on that rung (measured) or, where none is, at the current load (estimated).
pub fn costs_per_1000(
    ladder: &LadderConfig,
    memory: &LadderMemory,
    rps_now: Option<f64>,
    pods: u32,
) -> Vec<RungCost> {
    ladder
        .rungs
        .iter()
        .map(|r| {
            let remembered = memory
                .rungs
                .get(&r.name)
                .map(|m| m.rps)
                .filter(|x| *x > 0.0);
            let rps = remembered.or(rps_now.filter(|x| *x > 0.0));
            RungCost {
                rung: r.name.clone(),
                usd_per_1000: rps.map(|q| r.price_per_second * f64::from(pods.max(1)) / q * 1000.0),
                measured: remembered.is_some(),
            }
        })
        .collect()
}

/// `cost per 1,000 requests: cpu $0.0079 (measured), gpu-shared $0.0038 (estimated), ...`
pub fn cost_line(costs: &[RungCost]) -> String {
    let mut out = String::from("cost per 1,000 requests:");
    for (i, c) in costs.iter().enumerate() {
        let sep = if i == 0 { " " } else { ", " };
        match c.usd_per_1000 {
            Some(v) => {
                let _ = write!(
                    out,
                    "{sep}{} ${v:.4} ({})",
                    c.rung,
                    if c.measured { "measured" } else { "estimated" }
                );
            }
            None => {
                let _ = write!(out, "{sep}{} n/a (no load)", c.rung);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The rules
// ---------------------------------------------------------------------------------------------

fn hold(h: Hold, streak: u32) -> LadderOutcome {
    LadderOutcome {
        decision: LadderDecision::Hold(h),
        violation_streak: streak,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Free units of each rung's resource. `capacity[i]` for rung `i`; a CPU rung is not bounded
/// (its entry is ignored); a GPU rung without an entry has nothing free.
fn has_room(
    ladder: &LadderConfig,
    capacity: &[Option<GpuAvailability>],
    i: usize,
    pods: u32,
) -> bool {
    let r = &ladder.rungs[i];
    if !r.is_gpu() {
        return true;
    }
    let Some(Some(c)) = capacity.get(i) else {
        return false;
    };
    c.largest_free_on_a_node >= r.amount && c.free_total >= r.amount.saturating_mul(pods.max(1))
}

/// Decides what to do with one Service on a ladder. Pure: same inputs, same answer.
/// `capacity[i]`: free units of rung `i`'s resource (`None` or missing: nothing known free).
pub fn decide_ladder(
    s: &LadderState,
    stats: Option<&RevisionStats>,
    capacity: &[Option<GpuAvailability>],
    ladder: &LadderConfig,
    cfg: &PolicyConfig,
    now: Timestamp,
) -> LadderOutcome {
    if s.mode.is_pinned() {
        return hold(Hold::Pinned, 0);
    }
    let top = ladder.rungs.len().saturating_sub(1);
    let r = s.rung.min(top);
    match s.rollout {
        Rollout::TrafficPinned => return hold(Hold::TrafficPinned, 0),
        Rollout::InProgress => return rollout(s, r, ladder, cfg, now),
        Rollout::Settled => {}
    }
    let Some(stats) = stats else {
        return hold(Hold::MetricsUnavailable, 0);
    };
    let st = &beyond_ceiling(stats, cfg);
    let rung = &ladder.rungs[r];
    let slo_ms = ms(s.slo);
    let tolerated = slo_ms * (1.0 + cfg.promote.slo_tolerance);
    let short = cfg.short_window.as_secs_f64();

    // Rule 2: verify the upward move that brought the Service here.
    let unverified = s.memory.last_move.as_ref().filter(|m| {
        m.kind.is_upward() && m.to == rung.name && s.memory.verified_at.is_none_or(|v| v <= m.at)
    });
    if let Some(m) = unverified {
        if let Some(out) = verify(s, r, m, st, ladder, cfg, now) {
            return out;
        }
    }

    // Rule 3: idle on a GPU rung for a whole long window frees the GPU.
    if r > 0 && is_idle(st, cfg) {
        let since = s.memory.last_move.as_ref().map(|m| m.at).or(s.created);
        if since.is_some_and(|at| secs_between(at, now) < cfg.long_window.as_secs_f64()) {
            return hold(Hold::Dwell, 0);
        }
        if let Some(h) = hysteresis(&s.memory, cfg, now, 1, false) {
            return hold(h, 0);
        }
        let note = format!(
            "idle: {} over {} < {} req/s → {}, the {} is freed",
            st.rps_long
                .map(|x| format!("{x:.3} req/s"))
                .unwrap_or_else(|| "scaled to zero".into()),
            format_duration(cfg.long_window),
            cfg.demote.idle_rps,
            ladder.rungs[0].name,
            rung.name
        );
        return change(s, r, 0, LadderMoveKind::Demote, note, st, ladder, now);
    }
    if unverified.is_some() {
        return hold(Hold::Verifying, 0);
    }

    let (Some(p95), Some(rps)) = (st.p95_short_ms, st.rps_short) else {
        return hold(Hold::NoLatencyData, 0);
    };
    let requests = rps * short;
    // The rung it is on is measured now.
    let mut seen = s.memory.clone();
    seen.rungs
        .insert(rung.name.clone(), remembered(p95, rps, now));
    let costs = cost_line(&costs_per_1000(ladder, &seen, Some(rps), s.pods));

    // Rule 4: a sustained violation goes one rung up.
    if p95 > tolerated {
        let p = &cfg.promote;
        let severe = p95 >= slo_ms * p.severe_factor;
        let all_slow = st.p50_short_ms.is_some_and(|m| m > tolerated);
        let enough =
            requests >= p.min_requests || (severe && all_slow && requests >= p.min_requests_severe);
        if !enough {
            return hold(Hold::TooFewRequests, 0);
        }
        // On every rung: a function slow because it waits uses no CPU while it waits, on a
        // GPU rung as on the CPU (a GPU-bound request keeps its host thread busy: ~1 core per
        // request in flight for matmul and TinyLlama on the GPU, docs/calibration.md).
        let Some(cpu) = st.cpu else {
            return hold(Hold::NoCpuData, 0);
        };
        let (bound, utilization, per_request) = compute_bound(st, cpu, rps, p);
        if !bound {
            return hold(Hold::NotComputeBound, 0);
        }
        let cpu_note = format!(
            ", CPU {:.2}/{:.2} cores ({:.0}%){}",
            cpu.cores,
            cpu.capacity,
            utilization * 100.0,
            per_request
                .map(|c| format!(", {c:.2} cores per request in flight"))
                .unwrap_or_default()
        );
        let streak = s.violation_streak.saturating_add(1);
        let long_violated = st.p95_long_ms.is_some_and(|l| l > tolerated);
        let sustained =
            (severe && streak >= p.severe_cycles) || (long_violated && streak >= p.sustain_cycles);
        if !sustained {
            return hold(Hold::Sustaining, streak);
        }
        let above: Vec<usize> = (r + 1..=top)
            .filter(|&i| ladder.rungs[i].fits(s.model_gpu_mib))
            .collect();
        let Some(&next) = above.first() else {
            // Nothing faster that holds the model: the top of this Service's ladder.
            return hold(Hold::GpuInUse, streak);
        };
        if let Some(h) = hysteresis(&s.memory, cfg, now, 2, true) {
            return hold(h, streak);
        }
        let why = format!(
            "p95 {p95:.0}ms > SLO {slo_ms:.0}ms for {streak} cycles ({}; {} p95 {}), \
             {rps:.2} req/s{cpu_note}",
            if severe {
                format!("severe: ≥ {:.1}× SLO", p.severe_factor)
            } else {
                "sustained".to_string()
            },
            format_duration(cfg.long_window),
            st.p95_long_ms
                .map(|l| format!("{l:.0}ms"))
                .unwrap_or_else(|| "n/a".into()),
        );
        let skipped: Vec<&str> = (r + 1..next)
            .map(|i| ladder.rungs[i].name.as_str())
            .collect();
        let skip_note = if skipped.is_empty() {
            String::new()
        } else {
            format!(
                "; {} cannot hold the model (~{:.1} GiB)",
                skipped.join(", "),
                s.model_gpu_mib.unwrap_or(0.0) / 1024.0
            )
        };
        let Some(&target) = above
            .iter()
            .find(|&&i| has_room(ladder, capacity, i, s.pods))
        else {
            return LadderOutcome {
                decision: LadderDecision::NoCapacity {
                    rung: next,
                    note: format!(
                        "{why}{skip_note}; but no rung above has a free unit ({} of {} per pod \
                         on one node): staying on {}, retrying; {costs}",
                        ladder.rungs[next].resource.as_deref().unwrap_or("?"),
                        ladder.rungs[next].amount,
                        rung.name
                    ),
                },
                violation_streak: streak,
            };
        };
        let full_note = if target != next {
            format!("; {} has no free unit", ladder.rungs[next].name)
        } else {
            String::new()
        };
        let note = format!(
            "{why}{skip_note}{full_note} → {}; {costs}",
            ladder.rungs[target].name
        );
        return change(s, r, target, LadderMoveKind::Promote, note, st, ladder, now);
    }

    // Rule 5: within the objective, one rung to a cheaper one expected to meet it.
    if requests < cfg.promote.min_requests {
        return hold(within(r), 0);
    }
    let price_now = rung.price_per_second;
    let below = (0..r)
        .rev()
        .find(|&i| ladder.rungs[i].fits(s.model_gpu_mib));
    let above = (r + 1..=top).find(|&i| ladder.rungs[i].fits(s.model_gpu_mib));
    let demote = below.filter(|&i| {
        ladder.rungs[i].price_per_second < price_now
            && s.memory
                .rungs
                .get(&ladder.rungs[i].name)
                .is_some_and(|m| m.p95_ms <= slo_ms && rps <= m.rps)
    });
    let economize = above.filter(|&i| {
        ladder.rungs[i].price_per_second < price_now
            && !s
                .memory
                .rungs
                .get(&ladder.rungs[i].name)
                .is_some_and(|m| m.p95_ms > tolerated && m.rps <= rps)
    });
    let cheaper = match (demote, economize) {
        (Some(d), Some(e)) => Some(
            if ladder.rungs[e].price_per_second < ladder.rungs[d].price_per_second {
                (e, LadderMoveKind::Economize)
            } else {
                (d, LadderMoveKind::Demote)
            },
        ),
        (Some(d), None) => Some((d, LadderMoveKind::Demote)),
        (None, Some(e)) => Some((e, LadderMoveKind::Economize)),
        (None, None) => None,
    };
    let Some((target, kind)) = cheaper else {
        return hold(within(r), 0);
    };
    if kind == LadderMoveKind::Economize && !has_room(ladder, capacity, target, s.pods) {
        return hold(within(r), 0);
    }
    let upward = kind.is_upward();
    if let Some(h) = hysteresis(&s.memory, cfg, now, if upward { 2 } else { 1 }, upward) {
        return hold(h, 0);
    }
    let t = &ladder.rungs[target];
    let basis = match s.memory.rungs.get(&t.name) {
        Some(m) if !upward => format!(
            "{} met the SLO there (p95 {:.0}ms at {:.2} req/s)",
            t.name, m.p95_ms, m.rps
        ),
        _ => format!("{} is faster by the ladder's order", t.name),
    };
    let note = format!(
        "p95 {p95:.0}ms ≤ SLO {slo_ms:.0}ms at {rps:.2} req/s on {}; {} costs less \
         ({} vs {} a pod) and {basis} → {}; {costs}",
        rung.name,
        t.name,
        price(t.price_per_second),
        price(price_now),
        t.name
    );
    change(s, r, target, kind, note, st, ladder, now)
}

fn within(r: usize) -> Hold {
    if r == 0 {
        Hold::WithinSlo
    } else {
        Hold::GpuInUse
    }
}

/// Rule 2. `None`: too little traffic to judge yet (the idle rule may still apply).
fn verify(
    s: &LadderState,
    r: usize,
    m: &RungMove,
    st: &RevisionStats,
    ladder: &LadderConfig,
    cfg: &PolicyConfig,
    now: Timestamp,
) -> Option<LadderOutcome> {
    let v = &cfg.verify;
    if secs_between(m.at, now) < v.settle.as_secs_f64() {
        return Some(hold(Hold::Verifying, 0));
    }
    let (Some(p95), Some(rps)) = (st.p95_short_ms, st.rps_short) else {
        return None;
    };
    let requests = rps * cfg.short_window.as_secs_f64();
    let slo_ms = ms(s.slo);
    let tolerated = slo_ms * (1.0 + cfg.promote.slo_tolerance);
    let from = ladder.index_of(&m.from).unwrap_or(0);
    let below = s.memory.rungs.get(&m.from);
    let (ok, judged, what) = match m.kind {
        LadderMoveKind::Promote => {
            let Some(b) = below else {
                // Nothing remembered below: nothing to compare, take it as it is.
                return Some(remember(
                    s,
                    p95,
                    rps,
                    now,
                    "no latency remembered below".into(),
                ));
            };
            let gain = 1.0 - p95 / b.p95_ms;
            let ok = gain >= v.min_gain;
            // A clear success may be judged on few requests; a revert may not.
            let judged =
                requests >= v.min_requests || (ok && requests >= cfg.promote.min_requests_severe);
            (
                ok,
                judged,
                format!(
                    "p95 {p95:.0}ms on {} vs {:.0}ms remembered on {} (gain {:.0}% {} {:.0}%)",
                    ladder.rungs[r].name,
                    b.p95_ms,
                    m.from,
                    gain * 100.0,
                    if ok { "≥" } else { "<" },
                    v.min_gain * 100.0
                ),
            )
        }
        _ => {
            let ok = p95 <= tolerated;
            (
                ok,
                requests >= v.min_requests,
                format!(
                    "p95 {p95:.0}ms on {} {} SLO {slo_ms:.0}ms",
                    ladder.rungs[r].name,
                    if ok { "meets" } else { "breaks" }
                ),
            )
        }
    };
    if !judged {
        return None;
    }
    if ok {
        return Some(remember(
            s,
            p95,
            rps,
            now,
            format!("{} verified: {what}", ladder.rungs[r].name),
        ));
    }
    if moves_in_last_hour(&s.memory, now) >= cfg.hysteresis.max_moves_per_hour {
        return Some(hold(Hold::MoveCap, 0));
    }
    let mut note = format!(
        "{} did not pay: {what} at {rps:.2} req/s → {}",
        ladder.rungs[r].name, m.from
    );
    let mut out = change(
        s,
        r,
        from,
        LadderMoveKind::Revert,
        String::new(),
        st,
        ladder,
        now,
    );
    if let LadderDecision::Move(c) = &mut out.decision {
        c.memory.verified_at = Some(now);
        let until = start_backoff(&mut c.memory, cfg, now);
        let _ = write!(
            note,
            "; useless move #{}, next move up not before {until}",
            c.memory.useless_promotions
        );
        note.push_str("; ");
        note.push_str(&cost_line(&costs_per_1000(
            ladder,
            &c.memory,
            Some(rps),
            s.pods,
        )));
        if let Some(last) = c.memory.last_move.as_mut() {
            last.reason = note.clone();
        }
        c.note = note;
    }
    Some(out)
}

fn remember(s: &LadderState, p95: f64, rps: f64, now: Timestamp, what: String) -> LadderOutcome {
    let mut memory = s.memory.clone();
    if let Some(m) = &s.memory.last_move {
        memory.rungs.insert(m.to.clone(), remembered(p95, rps, now));
    }
    memory.verified_at = Some(now);
    memory.useless_promotions = 0;
    LadderOutcome {
        decision: LadderDecision::Remember { memory, note: what },
        violation_streak: 0,
    }
}

/// A move from `r` to `to`: remembers the latency seen on `r`, records the move.
#[allow(clippy::too_many_arguments)]
fn change(
    s: &LadderState,
    r: usize,
    to: usize,
    kind: LadderMoveKind,
    note: String,
    st: &RevisionStats,
    ladder: &LadderConfig,
    now: Timestamp,
) -> LadderOutcome {
    let mut memory = s.memory.clone();
    if let (Some(p95), Some(rps)) = (st.p95_short_ms, st.rps_short) {
        if rps > 0.0 {
            memory
                .rungs
                .insert(ladder.rungs[r].name.clone(), remembered(p95, rps, now));
        }
    }
    record(
        &mut memory,
        kind,
        &ladder.rungs[r].name,
        &ladder.rungs[to].name,
        &note,
        now,
    );
    LadderOutcome {
        decision: LadderDecision::Move(RungChange {
            kind,
            from: r,
            to,
            note,
            memory,
        }),
        violation_streak: 0,
    }
}

fn record(
    memory: &mut LadderMemory,
    kind: LadderMoveKind,
    from: &str,
    to: &str,
    note: &str,
    now: Timestamp,
) {
    memory.last_move = Some(RungMove {
        from: from.to_string(),
        to: to.to_string(),
        at: now,
        kind,
        reason: note.to_string(),
    });
    memory
        .recent_moves
        .retain(|t| secs_between(*t, now) < 3600.0);
    memory.recent_moves.push(now);
}

fn rollout(
    s: &LadderState,
    r: usize,
    ladder: &LadderConfig,
    cfg: &PolicyConfig,
    now: Timestamp,
) -> LadderOutcome {
    let Some(last) = &s.memory.last_move else {
        return hold(Hold::RolloutInProgress, 0);
    };
    let age = secs_between(last.at, now);
    if last.to != ladder.rungs[r].name || age <= cfg.rollout_timeout.as_secs_f64() {
        return hold(Hold::RolloutInProgress, 0);
    }
    if moves_in_last_hour(&s.memory, now) >= cfg.hysteresis.max_moves_per_hour {
        return hold(Hold::MoveCap, 0);
    }
    let back = ladder.index_of(&last.from).unwrap_or(0);
    let note = format!(
        "the {} revision asked for {} ago is still not ready (timeout {}): back to {}",
        last.to,
        format_duration(Duration::from_secs_f64(age.max(0.0))),
        format_duration(cfg.rollout_timeout),
        ladder.rungs[back].name
    );
    let mut memory = s.memory.clone();
    if last.kind.is_upward() {
        start_backoff(&mut memory, cfg, now);
        memory.verified_at = Some(now);
    }
    record(
        &mut memory,
        LadderMoveKind::Rollback,
        &last.to,
        &ladder.rungs[back].name,
        &note,
        now,
    );
    LadderOutcome {
        decision: LadderDecision::Move(RungChange {
            kind: LadderMoveKind::Rollback,
            from: r,
            to: back,
            note,
            memory,
        }),
        violation_streak: 0,
    }
}

/// Dwell, back-off (upward moves only) and the cap, with `room` moves left in the hour.
fn hysteresis(
    memory: &LadderMemory,
    cfg: &PolicyConfig,
    now: Timestamp,
    room: u32,
    upward: bool,
) -> Option<Hold> {
    let h = &cfg.hysteresis;
    if let Some(last) = &memory.last_move {
        if secs_between(last.at, now) < h.min_dwell.as_secs_f64() {
            return Some(Hold::Dwell);
        }
    }
    if upward && memory.promotion_blocked_until.is_some_and(|t| now < t) {
        return Some(Hold::BackOff);
    }
    if moves_in_last_hour(memory, now) + room > h.max_moves_per_hour {
        return Some(Hold::MoveCap);
    }
    None
}

fn is_idle(st: &RevisionStats, cfg: &PolicyConfig) -> bool {
    match st.rps_long {
        Some(rate) => {
            rate < cfg.demote.idle_rps && st.rps_short.is_none_or(|r| r < cfg.demote.idle_rps)
        }
        None => st.pods == 0,
    }
}

fn moves_in_last_hour(memory: &LadderMemory, now: Timestamp) -> u32 {
    let n = memory
        .recent_moves
        .iter()
        .filter(|t| secs_between(**t, now) < 3600.0)
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn start_backoff(memory: &mut LadderMemory, cfg: &PolicyConfig, now: Timestamp) -> Timestamp {
    let h = &cfg.hysteresis;
    memory.useless_promotions = memory.useless_promotions.saturating_add(1);
    let factor = 2f64.powi(memory.useless_promotions.saturating_sub(1).min(30) as i32);
    let secs = (h.backoff_base.as_secs_f64() * factor).min(h.backoff_max.as_secs_f64());
    let until = add(now, Duration::from_secs_f64(secs));
    memory.promotion_blocked_until = Some(until);
    until
}

fn remembered(p95_ms: f64, rps: f64, at: Timestamp) -> RememberedLatency {
    RememberedLatency {
        p95_ms: (p95_ms * 10.0).round() / 10.0,
        rps: (rps * 1000.0).round() / 1000.0,
        at,
    }
}
