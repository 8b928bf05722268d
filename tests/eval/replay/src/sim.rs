//! The virtual-clock replay of one run: one Knative Service, its revisions (one pod each),
//! closed-loop clients, Prometheus scrapes, and the autoscaler's decision cycles calling
//! [`gaia_policy::decide`], all in simulated time.
//!
//! What happens, in order of simulated time:
//!
//! - **Deploy** at t = 0: the first revision's pod is created on the mode's initial placement.
//!   It is ready after `pod_start_s` plus the profile's ready time, and takes traffic
//!   `route_switch_s` later. Requests sent before that wait in the activator.
//! - **Requests**: a client sends, the request reaches the queue-proxy after half the platform
//!   overhead outside the pod, waits for the pod if it is busy (one request at a time, or all
//!   at once for a function that only waits), runs for a latency drawn from the profile (plus
//!   the cold-start warm-up on a pod's first request), and the answer reaches the client after
//!   the other half. The queue-proxy histogram records the time the request spent in the pod.
//! - **Scrapes** every `scrape_interval_s`: each pod's histogram (once it has a request) and its
//!   CPU-seconds counter (from container start; `startup_cores` while it starts).
//! - **Cycles** every `interval_s` (the autoscaler's `interval`): the Service's state and the
//!   serving revision's Prometheus answers go to `decide`; a move creates a revision on the
//!   other placement. The old revision keeps serving until the new one is ready and the route
//!   switched; then it finishes what it has in flight and keeps its pod for `drain_s` more
//!   (Knative scales an unrouted revision to zero after its stable window and grace period).
//! - **Accounting**: a pod holds one node of its placement from creation until deletion (or the
//!   end of the run for pods still serving). During a rollout both node types are held.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use gaia_contract::{ExecutionMode, Observed, Placement};
use gaia_policy::ladder::{
    decide_ladder, initial_rung, LadderConfig, LadderDecision, LadderMemory, LadderState,
};
use gaia_policy::{self, Decision, GpuAvailability, PolicyConfig, Rollout, ServiceState};
use jiff::Timestamp;
use serde::Serialize;

use crate::profile::{ColdStart, Hw, Profile, Request};
use crate::prom::{self, HistSample, Histogram};
use crate::rng::Rng;
use crate::Error;

/// The platform around the policy: every number the replay assumes that is not in the profile
/// or the policy configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Platform {
    /// Client-observed time of a request beyond the handler (ingress, activator or not,
    /// queue-proxy, HTTP on the cluster network).
    pub client_overhead_s: f64,
    /// The part of it inside the queue-proxy's own latency measurement.
    pub queue_proxy_overhead_s: f64,
    /// From a revision's creation to its container starting: scheduling, pod sandbox,
    /// container creation with the image already on the node, readiness probing.
    pub pod_start_s: f64,
    /// From a revision's readiness to the route sending it traffic.
    pub route_switch_s: f64,
    /// How long an unrouted revision keeps its pod after its last request: Knative's stable
    /// window (60 s) plus scale-to-zero grace period (30 s).
    pub drain_s: f64,
    pub scrape_interval_s: f64,
    /// First scrape and first cycle, after the deploy (phases are arbitrary but fixed).
    pub scrape_offset_s: f64,
    pub cycle_offset_s: f64,
    /// Cores a container uses while it starts (imports are single-threaded).
    pub startup_cores: f64,
    /// GPU nodes with one free GPU each.
    pub gpu_nodes: u32,
    /// The paper's prices per node-second.
    pub cpu_price_per_s: f64,
    pub gpu_price_per_s: f64,
}

impl Default for Platform {
    fn default() -> Self {
        Platform {
            client_overhead_s: 0.005,
            queue_proxy_overhead_s: 0.001,
            pod_start_s: 2.0,
            route_switch_s: 1.0,
            drain_s: 90.0,
            scrape_interval_s: 15.0,
            scrape_offset_s: 7.0,
            cycle_offset_s: 3.0,
            startup_cores: 1.0,
            gpu_nodes: 1,
            cpu_price_per_s: 0.000038,
            gpu_price_per_s: 0.000133,
        }
    }
}

/// One paper scenario: its clients' requests and its SLO.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    pub name: String,
    pub title: String,
    /// Why the scenario is paced as it is.
    pub note: String,
    /// The p95 objective (`gaia.dev/latency-slo`).
    pub slo_s: f64,
    /// Closed-loop clients, each sending its list back to back.
    #[serde(skip)]
    pub clients: Vec<Vec<Request>>,
    /// The pod serves its requests at once (a function that only waits) rather than one by one.
    pub concurrent: bool,
    /// A client's pause between an answer and its next request.
    pub think_s: f64,
}

/// Everything that makes one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    pub label: String,
    /// `cpu` and `gpu` are the static runs (pinned: the policy holds); the others are Gaia.
    pub mode: ExecutionMode,
    /// The calibrated placement a CPU pod behaves like.
    pub cpu_hw: Hw,
    /// CPU limit of a CPU pod; `None`: no limit, measured against `capacity_without_limit`.
    pub cpu_limit: Option<f64>,
    /// The autoscaler's `cpu.capacityWithoutLimit`.
    pub capacity_without_limit: f64,
    /// The autoscaler's `interval`.
    pub interval_s: f64,
    pub policy: PolicyConfig,
    pub platform: Platform,
    pub seed: u64,
    /// Decide on a placement ladder ([`decide_ladder`]) instead of CPU/GPU ([`gaia_policy::decide`]).
    pub ladder: Option<LadderSpec>,
}

/// A ladder run: the rungs, what each behaves like, and the free units each has.
#[derive(Debug, Clone, PartialEq)]
pub struct LadderSpec {
    pub config: LadderConfig,
    /// The calibrated placement a pod of each rung behaves like.
    pub hw: Vec<Hw>,
    /// Free units of each rung's resource (the run's own pods are not taken from it: one
    /// Service holds at most one unit of a rung).
    pub capacity: Vec<Option<GpuAvailability>>,
    /// Start on this rung (a static run); `None`: the classifier's mode chooses
    /// ([`initial_rung`]).
    pub start: Option<usize>,
    /// Never move (a static run on one rung).
    pub pinned: bool,
    /// The model's GPU memory estimate, MiB.
    pub model_gpu_mib: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestRecord {
    pub client: usize,
    pub sent_s: f64,
    pub received_s: f64,
    pub latency_s: f64,
    /// What the queue-proxy histogram recorded.
    pub queue_proxy_s: f64,
    pub placement: Placement,
    pub revision: usize,
    /// Sent before the first revision could serve (waited for the deploy's cold start).
    pub cold: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RevisionRecord {
    pub id: usize,
    pub placement: Placement,
    pub hw: Hw,
    pub created_s: f64,
    pub ready_s: f64,
    pub serving_from_s: Option<f64>,
    pub serving_until_s: Option<f64>,
    /// Pod deleted (drained); `None`: still there when the run ended.
    pub deleted_s: Option<f64>,
    /// Until when its node is charged.
    pub held_until_s: f64,
    pub requests: usize,
    pub cold_start: ColdStart,
    /// Ladder runs: the rung and what its pod costs a second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rung: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_per_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MoveRecord {
    pub t_s: f64,
    pub kind: String,
    pub from: Placement,
    pub to: Placement,
    pub note: String,
}

/// Consecutive cycles with the same outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionSpan {
    pub from_s: f64,
    pub to_s: f64,
    pub cycles: u32,
    /// `hold:<reason>`, or the decision kind (`promote`, `remember`, `no_gpu`, ...).
    pub outcome: String,
    pub placement: Placement,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub requests: usize,
    /// Deploy to the last answer.
    pub total_s: f64,
    pub first_response_s: f64,
    pub mean_latency_s: f64,
    /// Nearest-rank 95th percentile of client-observed latencies.
    pub p95_latency_s: f64,
    /// Wall-clock seconds covered by requests whose latency exceeded the SLO.
    pub slo_violation_s: f64,
    pub cpu_node_s: f64,
    pub gpu_node_s: f64,
    pub cost_usd: f64,
    pub moves: usize,
    /// The first answer over the SLO, among requests that did not wait for the deploy.
    pub first_violation_s: Option<f64>,
    /// From that answer to a GPU revision taking traffic; 0 if one already served.
    pub time_to_gpu_s: Option<f64>,
    pub gpu_served_from_start: bool,
    pub promoted_at_s: Option<f64>,
    pub requests_on_gpu: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunResult {
    pub label: String,
    pub mode: ExecutionMode,
    pub cpu_hw: Hw,
    pub seed: u64,
    pub summary: Summary,
    pub moves: Vec<MoveRecord>,
    pub decisions: Vec<DecisionSpan>,
    pub revisions: Vec<RevisionRecord>,
    /// Left empty (and out of the JSON) for sensitivity runs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<RequestRecord>,
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Ev {
    Send { client: usize },
    Arrive { req: usize },
    HandlerDone { req: usize },
    Answer { req: usize },
    Ready { rev: usize },
    Route { rev: usize },
    Scrape,
    Cycle,
}

#[derive(Debug, Clone, Copy)]
struct Queued {
    t: f64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    /// Reversed: the heap pops the earliest event first, ties in insertion order.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .t
            .total_cmp(&self.t)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

#[derive(Debug, Clone)]
struct Req {
    client: usize,
    request: Request,
    sent: f64,
    at_queue_proxy: f64,
    in_pod: f64,
    received: f64,
    rev: usize,
    cold: bool,
}

#[derive(Debug, Clone)]
struct Rev {
    placement: Placement,
    hw: Hw,
    rung: Option<usize>,
    cold: ColdStart,
    capacity: f64,
    created: f64,
    ready: f64,
    serving_from: Option<f64>,
    serving_until: Option<f64>,
    deleted: Option<f64>,
    in_flight: usize,
    started: usize,
    busy: bool,
    queue: VecDeque<usize>,
    /// Requests buffered in the activator until the revision serves.
    pending: Vec<usize>,
    hist: Histogram,
    hist_samples: Vec<HistSample>,
    /// (from, to, cores) intervals of CPU use.
    cpu_busy: Vec<(f64, f64, f64)>,
    cpu_samples: Vec<(f64, f64)>,
}

impl Rev {
    fn alive(&self, t: f64) -> bool {
        self.created <= t && self.deleted.is_none_or(|d| t < d)
    }

    fn cpu_seconds(&self, t: f64) -> f64 {
        self.cpu_busy
            .iter()
            .map(|(a, b, c)| (b.min(t) - a).max(0.0) * c)
            .sum()
    }
}

/// Unix time of the replay's t = 0 (any fixed instant; the policy only takes differences).
pub const EPOCH_S: i64 = 1_800_000_000;

fn ts(t: f64) -> Result<Timestamp, Error> {
    Timestamp::from_millisecond(EPOCH_S * 1000 + (t * 1000.0).round() as i64).map_err(|e| {
        Error::Input {
            what: "simulated time".into(),
            message: format!("{t} s: {e}"),
        }
    })
}

struct Sim<'a> {
    profile: &'a Profile,
    scenario: &'a Scenario,
    spec: &'a RunSpec,
    rng: Rng,
    queue: BinaryHeap<Queued>,
    seq: u64,
    reqs: Vec<Req>,
    revs: Vec<Rev>,
    next_of_client: Vec<usize>,
    clients_done: usize,
    routed: Option<usize>,
    // the Service as the API shows it
    placement: Placement,
    observed: Observed,
    streak: u32,
    rung: usize,
    ladder_memory: LadderMemory,
    moves: Vec<MoveRecord>,
    decisions: Vec<DecisionSpan>,
    finished: Option<f64>,
}

/// Replays one run.
pub fn run(profile: &Profile, scenario: &Scenario, spec: &RunSpec) -> Result<RunResult, Error> {
    if scenario.clients.iter().all(Vec::is_empty) {
        return Err(Error::Input {
            what: format!("scenario {}", scenario.name),
            message: "no requests".into(),
        });
    }
    if !(spec.interval_s > 0.0 && spec.platform.scrape_interval_s > 0.0) {
        return Err(Error::Input {
            what: spec.label.clone(),
            message: "interval and scrape interval must be positive".into(),
        });
    }
    let first_rung = spec.ladder.as_ref().map(|l| {
        l.start
            .unwrap_or_else(|| initial_rung(spec.mode, l.model_gpu_mib, &l.config).0)
    });
    let mut sim = Sim {
        profile,
        scenario,
        spec,
        rng: Rng::new(spec.seed),
        queue: BinaryHeap::new(),
        seq: 0,
        reqs: vec![],
        revs: vec![],
        next_of_client: vec![0; scenario.clients.len()],
        clients_done: 0,
        routed: None,
        placement: spec.mode.initial_placement(),
        observed: Observed::default(),
        streak: 0,
        rung: first_rung.unwrap_or(0),
        ladder_memory: LadderMemory::default(),
        moves: vec![],
        decisions: vec![],
        finished: None,
    };
    match first_rung {
        Some(r) => {
            sim.placement = rung_placement(r);
            sim.create_rung_revision(r, 0.0)?;
        }
        None => {
            sim.create_revision(spec.mode.initial_placement(), 0.0)?;
        }
    }
    for c in 0..scenario.clients.len() {
        sim.push(0.0, Ev::Send { client: c });
    }
    sim.push(spec.platform.scrape_offset_s, Ev::Scrape);
    sim.push(spec.platform.cycle_offset_s, Ev::Cycle);
    while let Some(Queued { t, ev, .. }) = sim.queue.pop() {
        sim.handle(t, ev)?;
        if sim.finished.is_some() {
            break;
        }
    }
    sim.result()
}

impl Sim<'_> {
    fn push(&mut self, t: f64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Queued {
            t,
            seq: self.seq,
            ev,
        });
    }

    fn hw_of(&self, placement: Placement) -> Hw {
        match placement {
            Placement::Cpu => self.spec.cpu_hw,
            Placement::Gpu => Hw::Gpu,
        }
    }

    fn workload(&self) -> crate::profile::Workload {
        self.scenario
            .clients
            .iter()
            .flatten()
            .next()
            .map(Request::workload)
            .unwrap_or(crate::profile::Workload::IdleWait)
    }

    fn create_rung_revision(&mut self, rung: usize, t: f64) -> Result<usize, Error> {
        let hw = self
            .spec
            .ladder
            .as_ref()
            .and_then(|l| l.hw.get(rung).copied())
            .ok_or_else(|| Error::Input {
                what: self.spec.label.clone(),
                message: format!("no calibrated placement for rung {rung}"),
            })?;
        self.create(rung_placement(rung), hw, Some(rung), t)
    }

    fn create_revision(&mut self, placement: Placement, t: f64) -> Result<usize, Error> {
        let hw = self.hw_of(placement);
        self.create(placement, hw, None, t)
    }

    fn create(
        &mut self,
        placement: Placement,
        hw: Hw,
        rung: Option<usize>,
        t: f64,
    ) -> Result<usize, Error> {
        let prof = self.profile.get(self.workload(), hw)?;
        let cold = *self.rng.pick(&prof.cold);
        let p = &self.spec.platform;
        let container_start = t + p.pod_start_s;
        let ready = container_start + cold.ready_s;
        let capacity = match placement {
            Placement::Cpu => self.spec.cpu_limit,
            Placement::Gpu => None,
        }
        .unwrap_or(self.spec.capacity_without_limit);
        let id = self.revs.len();
        self.revs.push(Rev {
            placement,
            hw,
            rung,
            cold,
            capacity,
            created: t,
            ready,
            serving_from: None,
            serving_until: None,
            deleted: None,
            in_flight: 0,
            started: 0,
            busy: false,
            queue: VecDeque::new(),
            pending: vec![],
            hist: Histogram::default(),
            hist_samples: vec![],
            cpu_busy: vec![(container_start, ready, p.startup_cores)],
            cpu_samples: vec![],
        });
        self.push(ready, Ev::Ready { rev: id });
        Ok(id)
    }

    /// Half the overhead outside the queue-proxy, each way.
    fn network_s(&self) -> f64 {
        let p = &self.spec.platform;
        ((p.client_overhead_s - p.queue_proxy_overhead_s) / 2.0).max(0.0)
    }

    fn handle(&mut self, t: f64, ev: Ev) -> Result<(), Error> {
        match ev {
            Ev::Send { client } => {
                let i = self.next_of_client[client];
                let Some(request) = self.scenario.clients[client].get(i).copied() else {
                    return Ok(());
                };
                self.next_of_client[client] += 1;
                let id = self.reqs.len();
                self.reqs.push(Req {
                    client,
                    request,
                    sent: t,
                    at_queue_proxy: f64::NAN,
                    in_pod: f64::NAN,
                    received: f64::NAN,
                    rev: 0,
                    cold: false,
                });
                let at = t + self.network_s();
                self.push(at, Ev::Arrive { req: id });
            }
            Ev::Arrive { req } => match self.routed {
                Some(rev) => self.deliver(req, rev, t)?,
                None => {
                    // Nothing serves yet: the activator holds it for the first revision.
                    let rev = self.revs.len() - 1;
                    self.reqs[req].cold = true;
                    self.revs[rev].pending.push(req);
                }
            },
            Ev::HandlerDone { req } => {
                let rev = self.reqs[req].rev;
                let in_pod = t - self.reqs[req].at_queue_proxy;
                self.reqs[req].in_pod = in_pod;
                let drain = self.spec.platform.drain_s;
                let r = &mut self.revs[rev];
                r.hist.observe(in_pod);
                r.in_flight -= 1;
                if !self.scenario.concurrent {
                    r.busy = false;
                    if let Some(next) = r.queue.pop_front() {
                        self.start(next, rev, t)?;
                    }
                }
                let r = &mut self.revs[rev];
                if r.serving_until.is_some() && r.in_flight == 0 && r.deleted.is_none() {
                    r.deleted = Some(t + drain);
                }
                let at = t + self.network_s();
                self.push(at, Ev::Answer { req });
            }
            Ev::Answer { req } => {
                self.reqs[req].received = t;
                let client = self.reqs[req].client;
                if self.next_of_client[client] < self.scenario.clients[client].len() {
                    self.push(t + self.scenario.think_s, Ev::Send { client });
                } else {
                    self.clients_done += 1;
                    if self.clients_done == self.scenario.clients.len() {
                        self.finished = Some(t);
                    }
                }
            }
            Ev::Ready { rev } => {
                // Only the latest revision gets the route (an older one was superseded).
                if rev + 1 == self.revs.len() {
                    let at = t + self.spec.platform.route_switch_s;
                    self.push(at, Ev::Route { rev });
                }
            }
            Ev::Route { rev } => {
                let drain = self.spec.platform.drain_s;
                if let Some(old) = self.routed {
                    let o = &mut self.revs[old];
                    o.serving_until = Some(t);
                    if o.in_flight == 0 {
                        o.deleted = Some(t + drain);
                    }
                }
                self.routed = Some(rev);
                self.revs[rev].serving_from = Some(t);
                let pending = std::mem::take(&mut self.revs[rev].pending);
                for req in pending {
                    self.deliver(req, rev, t)?;
                }
            }
            Ev::Scrape => {
                for r in self.revs.iter_mut().filter(|r| r.alive(t)) {
                    let cpu = r.cpu_seconds(t);
                    r.cpu_samples.push((t, cpu));
                    if t >= r.ready && r.hist.count > 0 {
                        r.hist_samples.push(HistSample::of(t, &r.hist));
                    }
                }
                self.push(t + self.spec.platform.scrape_interval_s, Ev::Scrape);
            }
            Ev::Cycle => {
                self.cycle(t)?;
                self.push(t + self.spec.interval_s, Ev::Cycle);
            }
        }
        Ok(())
    }

    fn deliver(&mut self, req: usize, rev: usize, t: f64) -> Result<(), Error> {
        self.reqs[req].rev = rev;
        self.reqs[req].at_queue_proxy = t;
        let r = &mut self.revs[rev];
        r.in_flight += 1;
        if self.scenario.concurrent || !r.busy {
            self.start(req, rev, t)
        } else {
            r.queue.push_back(req);
            Ok(())
        }
    }

    fn start(&mut self, req: usize, rev: usize, t: f64) -> Result<(), Error> {
        let request = self.reqs[req].request;
        let hw = self.revs[rev].hw;
        let service = self
            .profile
            .get(request.workload(), hw)?
            .draw(&request, &mut self.rng);
        let r = &mut self.revs[rev];
        let warmup = if r.started == 0 { r.cold.warmup_s } else { 0.0 };
        r.started += 1;
        r.busy = true;
        let end = t + service.latency_s + warmup;
        r.cpu_busy.push((t, end, service.cores));
        let at = end + self.spec.platform.queue_proxy_overhead_s;
        self.push(at, Ev::HandlerDone { req });
        Ok(())
    }

    /// One autoscaler cycle: the Service's state and the serving revision's answers to
    /// `decide`, and the decision carried out.
    fn cycle(&mut self, t: f64) -> Result<(), Error> {
        let spec = self.spec;
        let latest = self.revs.len() - 1;
        let rollout = if self.revs[latest].ready <= t {
            Rollout::Settled
        } else {
            Rollout::InProgress
        };
        // status.latestReadyRevisionName
        let serving = self.revs.iter().rposition(|r| r.ready <= t);
        let stats = serving.map(|i| {
            let r = &self.revs[i];
            prom::revision_stats(
                &r.hist_samples,
                &r.cpu_samples,
                t,
                spec.policy.short_window.as_secs_f64(),
                spec.policy.long_window.as_secs_f64(),
                r.capacity,
                u32::from(r.alive(t)),
            )
        });
        let gpu_pods = self
            .revs
            .iter()
            .filter(|r| r.placement == Placement::Gpu && r.alive(t))
            .count() as u32;
        let free = spec.platform.gpu_nodes.saturating_sub(gpu_pods);
        let gpu = GpuAvailability {
            largest_free_on_a_node: free.min(1),
            free_total: free,
        };
        let state = ServiceState {
            mode: spec.mode,
            placement: self.placement,
            rollout,
            slo: Duration::from_secs_f64(self.scenario.slo_s),
            observed: self.observed.clone(),
            gpus_needed: 1,
            gpu_pods: 1,
            violation_streak: self.streak,
            created: Some(ts(0.0)?),
            latency_truncated: false,
            elastic_gpu_pool: None,
        };
        // As the controller does: a Prometheus answer exists, possibly without series.
        let stats = stats.unwrap_or_default();
        if let Some(ladder) = &spec.ladder {
            return self.ladder_cycle(ladder, rollout, &stats, t);
        }
        let out = gaia_policy::decide(&state, Some(&stats), gpu, &spec.policy, ts(t)?);
        self.streak = out.violation_streak;
        let outcome = match &out.decision {
            Decision::Hold(h) => format!("hold:{}", h.as_str()),
            d => d.kind().to_string(),
        };
        match out.decision {
            Decision::Move(m) => {
                self.placement = m.to;
                self.observed = m.observed;
                self.moves.push(MoveRecord {
                    t_s: t,
                    kind: m.kind.as_str().into(),
                    from: m.from,
                    to: m.to,
                    note: m.note,
                });
                self.create_revision(m.to, t)?;
            }
            Decision::Remember { observed, .. } => self.observed = observed,
            Decision::Hold(_) | Decision::NoGpu { .. } => {}
        }
        match self.decisions.last_mut() {
            Some(span) if span.outcome == outcome && span.placement == state.placement => {
                span.to_s = t;
                span.cycles += 1;
            }
            _ => self.decisions.push(DecisionSpan {
                from_s: t,
                to_s: t,
                cycles: 1,
                outcome,
                placement: state.placement,
            }),
        }
        Ok(())
    }

    fn ladder_cycle(
        &mut self,
        ladder: &LadderSpec,
        rollout: Rollout,
        stats: &gaia_policy::RevisionStats,
        t: f64,
    ) -> Result<(), Error> {
        let spec = self.spec;
        let state = LadderState {
            mode: if ladder.pinned {
                ExecutionMode::Gpu
            } else {
                spec.mode
            },
            rung: self.rung,
            rollout,
            slo: Duration::from_secs_f64(self.scenario.slo_s),
            memory: self.ladder_memory.clone(),
            pods: 1,
            violation_streak: self.streak,
            created: Some(ts(0.0)?),
            model_gpu_mib: ladder.model_gpu_mib,
        };
        let out = decide_ladder(
            &state,
            Some(stats),
            &ladder.capacity,
            &ladder.config,
            &spec.policy,
            ts(t)?,
        );
        self.streak = out.violation_streak;
        let outcome = match &out.decision {
            LadderDecision::Hold(h) => format!("hold:{}", h.as_str()),
            d => d.kind().to_string(),
        };
        let placement = rung_placement(self.rung);
        match out.decision {
            LadderDecision::Move(m) => {
                self.rung = m.to;
                self.placement = rung_placement(m.to);
                self.ladder_memory = m.memory;
                self.moves.push(MoveRecord {
                    t_s: t,
                    kind: m.kind.as_str().into(),
                    from: rung_placement(m.from),
                    to: rung_placement(m.to),
                    note: format!(
                        "{} → {}: {}",
                        ladder.config.rungs[m.from].name, ladder.config.rungs[m.to].name, m.note
                    ),
                });
                self.create_rung_revision(m.to, t)?;
            }
            LadderDecision::Remember { memory, .. } => self.ladder_memory = memory,
            LadderDecision::Hold(_) | LadderDecision::NoCapacity { .. } => {}
        }
        let label = format!("{outcome}@{}", ladder.config.rungs[state.rung].name);
        match self.decisions.last_mut() {
            Some(span) if span.outcome == label => {
                span.to_s = t;
                span.cycles += 1;
            }
            _ => self.decisions.push(DecisionSpan {
                from_s: t,
                to_s: t,
                cycles: 1,
                outcome: label,
                placement,
            }),
        }
        Ok(())
    }

    fn result(self) -> Result<RunResult, Error> {
        let end = self.finished.ok_or_else(|| Error::Input {
            what: self.spec.label.clone(),
            message: "the run ended before every request was answered".into(),
        })?;
        let requests: Vec<RequestRecord> = self
            .reqs
            .iter()
            .map(|r| RequestRecord {
                client: r.client,
                sent_s: micro(r.sent),
                received_s: micro(r.received),
                latency_s: micro(r.received - r.sent),
                queue_proxy_s: micro(r.in_pod),
                placement: self.revs[r.rev].placement,
                revision: r.rev,
                cold: r.cold,
            })
            .collect();
        let revisions: Vec<RevisionRecord> = self
            .revs
            .iter()
            .enumerate()
            .map(|(id, r)| RevisionRecord {
                id,
                placement: r.placement,
                hw: r.hw,
                created_s: r.created,
                ready_s: r.ready,
                serving_from_s: r.serving_from,
                serving_until_s: r.serving_until,
                deleted_s: r.deleted,
                held_until_s: r.deleted.unwrap_or(end),
                requests: requests.iter().filter(|q| q.revision == id).count(),
                cold_start: r.cold,
                rung: r.rung.and_then(|i| {
                    self.spec
                        .ladder
                        .as_ref()
                        .map(|l| l.config.rungs[i].name.clone())
                }),
                price_per_s: r.rung.and_then(|i| {
                    self.spec
                        .ladder
                        .as_ref()
                        .map(|l| l.config.rungs[i].price_per_second)
                }),
            })
            .collect();
        let summary = summarise(
            &requests,
            &revisions,
            &self.moves,
            end,
            self.scenario.slo_s,
            &self.spec.platform,
        );
        Ok(RunResult {
            label: self.spec.label.clone(),
            mode: self.spec.mode,
            cpu_hw: self.spec.cpu_hw,
            seed: self.spec.seed,
            summary,
            moves: self.moves,
            decisions: self.decisions,
            revisions,
            requests,
        })
    }
}

/// Rung 0 is the CPU; every rung above it is a GPU placement (whole or shared).
fn rung_placement(rung: usize) -> Placement {
    if rung == 0 {
        Placement::Cpu
    } else {
        Placement::Gpu
    }
}

/// Rounds to the microsecond (the request log is written as JSON; the summary is computed
/// from the rounded log, so both agree).
fn micro(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// The run's figures from its request log and revisions.
pub fn summarise(
    requests: &[RequestRecord],
    revisions: &[RevisionRecord],
    moves: &[MoveRecord],
    end: f64,
    slo_s: f64,
    platform: &Platform,
) -> Summary {
    let mut latencies: Vec<f64> = requests.iter().map(|r| r.latency_s).collect();
    latencies.sort_by(f64::total_cmp);
    let n = latencies.len();
    let mean = if n > 0 {
        latencies.iter().sum::<f64>() / n as f64
    } else {
        0.0
    };
    let p95 = if n > 0 {
        latencies[((0.95 * n as f64).ceil() as usize).clamp(1, n) - 1]
    } else {
        0.0
    };
    // union of the violating requests' [sent, received]
    let mut spans: Vec<(f64, f64)> = requests
        .iter()
        .filter(|r| r.latency_s > slo_s)
        .map(|r| (r.sent_s, r.received_s))
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut violation = 0.0;
    let mut cur: Option<(f64, f64)> = None;
    for (a, b) in spans {
        cur = match cur {
            Some((ca, cb)) if a <= cb => Some((ca, cb.max(b))),
            Some((ca, cb)) => {
                violation += cb - ca;
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    if let Some((ca, cb)) = cur {
        violation += cb - ca;
    }
    let held = |p: Placement| -> f64 {
        revisions
            .iter()
            .filter(|r| r.placement == p)
            .map(|r| (r.held_until_s - r.created_s).max(0.0))
            .fold(0.0, |a, b| a + b)
    };
    let (cpu_node_s, gpu_node_s) = (held(Placement::Cpu), held(Placement::Gpu));
    let mut answered: Vec<&RequestRecord> = requests.iter().collect();
    answered.sort_by(|a, b| a.received_s.total_cmp(&b.received_s));
    let first_violation_s = answered
        .iter()
        .find(|r| !r.cold && r.latency_s > slo_s)
        .map(|r| r.received_s);
    let gpu_serving: Vec<(f64, f64)> = revisions
        .iter()
        .filter(|r| r.placement == Placement::Gpu)
        .filter_map(|r| {
            r.serving_from_s
                .map(|f| (f, r.serving_until_s.unwrap_or(f64::MAX)))
        })
        .collect();
    let time_to_gpu_s = first_violation_s.and_then(|v| {
        if gpu_serving.iter().any(|(f, u)| *f <= v && v < *u) {
            return Some(0.0);
        }
        gpu_serving
            .iter()
            .filter(|(f, _)| *f > v)
            .map(|(f, _)| f - v)
            .min_by(f64::total_cmp)
    });
    Summary {
        requests: n,
        total_s: end,
        first_response_s: answered.first().map(|r| r.received_s).unwrap_or(0.0),
        mean_latency_s: mean,
        p95_latency_s: p95,
        slo_violation_s: violation,
        cpu_node_s,
        gpu_node_s,
        // Ladder runs price each pod by its rung; the others by node type, as always.
        cost_usd: if revisions.iter().all(|r| r.price_per_s.is_some()) && !revisions.is_empty() {
            revisions
                .iter()
                .map(|r| (r.held_until_s - r.created_s).max(0.0) * r.price_per_s.unwrap_or(0.0))
                .sum()
        } else {
            cpu_node_s * platform.cpu_price_per_s + gpu_node_s * platform.gpu_price_per_s
        },
        moves: moves.len(),
        first_violation_s,
        time_to_gpu_s,
        gpu_served_from_start: revisions
            .first()
            .is_some_and(|r| r.placement == Placement::Gpu),
        promoted_at_s: moves.iter().find(|m| m.to == Placement::Gpu).map(|m| m.t_s),
        requests_on_gpu: requests
            .iter()
            .filter(|r| r.placement == Placement::Gpu)
            .count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{PlacementProfile, Workload};

    /// CPU: 1.5 s a request, 2 cores busy; GPU: 0.125 s. Ready after 3 s (CPU) and 5 s (GPU).
    fn profile() -> Profile {
        Profile::from_parts(
            "test",
            vec![
                (
                    (Workload::Matmul, Hw::Cpu16),
                    PlacementProfile::constant(1.5, 2.0, 3.0),
                ),
                (
                    (Workload::Matmul, Hw::Gpu),
                    PlacementProfile::constant(0.125, 1.0, 5.0),
                ),
            ],
        )
    }

    fn scenario(requests: usize) -> Scenario {
        Scenario {
            name: "t".into(),
            title: "t".into(),
            note: String::new(),
            slo_s: 0.5,
            clients: vec![vec![Request::Matmul { size: 1 }; requests]],
            concurrent: false,
            think_s: 0.0,
        }
    }

    /// No overheads, so every time is a sum of exact binary fractions.
    fn spec(mode: ExecutionMode) -> RunSpec {
        RunSpec {
            label: "t".into(),
            mode,
            cpu_hw: Hw::Cpu16,
            cpu_limit: None,
            capacity_without_limit: 1.0,
            interval_s: 10.0,
            policy: PolicyConfig::default(),
            platform: Platform {
                client_overhead_s: 0.0,
                queue_proxy_overhead_s: 0.0,
                ..Platform::default()
            },
            seed: 1,
            ladder: None,
        }
    }

    #[test]
    fn a_static_run_holds_one_node_for_exactly_the_run() {
        let p = Platform::default();
        let r = run(&profile(), &scenario(10), &spec(ExecutionMode::Cpu)).unwrap();
        let s = &r.summary;
        // pod start 2 + ready 3 + route switch 1, then 10 requests of 1.5 s back to back
        assert_eq!(s.total_s, 2.0 + 3.0 + 1.0 + 15.0);
        assert_eq!(s.cpu_node_s, s.total_s);
        assert_eq!(s.gpu_node_s, 0.0);
        assert_eq!(s.cost_usd, s.total_s * p.cpu_price_per_s);
        assert_eq!((s.moves, s.requests_on_gpu), (0, 0));
        // the first request waited for the deploy; the others are warm
        assert!(r.requests[0].cold && !r.requests[1].cold);
        assert_eq!(r.requests[0].latency_s, 6.0 + 1.5);
        assert_eq!(s.first_violation_s, Some(6.0 + 3.0));
        assert_eq!(s.time_to_gpu_s, None);
        let g = run(&profile(), &scenario(10), &spec(ExecutionMode::Gpu)).unwrap();
        assert_eq!(g.summary.total_s, 2.0 + 5.0 + 1.0 + 1.25);
        assert_eq!(g.summary.gpu_node_s, g.summary.total_s);
        assert_eq!(g.summary.cost_usd, g.summary.total_s * p.gpu_price_per_s);
        assert_eq!(g.summary.cpu_node_s, 0.0);
    }

    #[test]
    fn a_rollout_holds_both_node_types_until_the_old_pod_drains() {
        let mut sp = spec(ExecutionMode::CpuPreferred);
        sp.policy.promote.min_requests = 1.0;
        let r = run(&profile(), &scenario(200), &sp).unwrap();
        let s = &r.summary;
        assert_eq!(r.moves.len(), 1, "{:?}", r.decisions);
        let t_move = r.moves[0].t_s;
        let (cpu, gpu) = (&r.revisions[0], &r.revisions[1]);
        assert_eq!(
            (cpu.placement, gpu.placement),
            (Placement::Cpu, Placement::Gpu)
        );
        // the GPU pod exists from the move; the CPU revision serves until the GPU one is
        // ready and routed, then keeps its pod for the drain after its last request
        assert_eq!(gpu.created_s, t_move);
        assert_eq!(gpu.ready_s, t_move + 2.0 + 5.0);
        assert_eq!(cpu.serving_until_s, Some(gpu.ready_s + 1.0));
        assert_eq!(gpu.serving_from_s, cpu.serving_until_s);
        let last_on_cpu = r
            .requests
            .iter()
            .filter(|q| q.revision == 0)
            .map(|q| q.received_s)
            .fold(0.0, f64::max);
        let deleted = cpu.deleted_s.unwrap();
        assert_eq!(deleted, last_on_cpu + Platform::default().drain_s);
        assert!(deleted > gpu.serving_from_s.unwrap());
        // node time: CPU from deploy to the drained deletion, GPU from the move to the end;
        // both are held over [move, deletion]
        assert_eq!(s.cpu_node_s, deleted);
        assert_eq!(s.gpu_node_s, s.total_s - t_move);
        let overlap = deleted.min(s.total_s) - t_move;
        assert!(s.cpu_node_s + s.gpu_node_s >= s.total_s + overlap - 1e-9);
        assert_eq!(
            s.cost_usd,
            s.cpu_node_s * 0.000038 + s.gpu_node_s * 0.000133
        );
        assert_eq!(s.promoted_at_s, Some(t_move));
        assert_eq!(
            s.time_to_gpu_s,
            Some(gpu.serving_from_s.unwrap() - s.first_violation_s.unwrap())
        );
        // no request was lost or served twice
        assert_eq!(r.requests.len(), 200);
        assert_eq!(cpu.requests + gpu.requests, 200);
    }

    #[test]
    fn violation_time_is_the_union_of_violating_requests() {
        let rec = |sent: f64, received: f64| RequestRecord {
            client: 0,
            sent_s: sent,
            received_s: received,
            latency_s: received - sent,
            queue_proxy_s: received - sent,
            placement: Placement::Cpu,
            revision: 0,
            cold: false,
        };
        // two overlapping 2 s requests, one fast one, one more slow one
        let reqs = vec![rec(0.0, 2.0), rec(1.0, 3.0), rec(3.0, 3.1), rec(4.0, 6.0)];
        let s = summarise(&reqs, &[], &[], 6.0, 1.0, &Platform::default());
        assert_eq!(s.slo_violation_s, 3.0 + 2.0);
        assert_eq!(s.first_violation_s, Some(2.0));
        assert_eq!(s.p95_latency_s, 2.0);
        assert_eq!((s.cpu_node_s, s.gpu_node_s, s.cost_usd), (0.0, 0.0, 0.0));
    }
}
