//! `gaia-eval`: the virtual-clock mode of the evaluation (issue 7).
//!
//! It replays the paper's four scenarios three ways (static CPU, static GPU, Gaia auto) in
//! simulated time, with the latency profiles measured on a real GPU host
//! (`tests/eval/profiles/*.json`) and the product's own policy
//! ([`gaia_policy::decide`] with the defaults of
//! the autoscaler, [`gaia_policy::DEFAULT_INTERVAL`] included). The model of the platform around the policy is in
//! [`sim`]; the Prometheus arithmetic in [`prom`]; the profile's use in [`profile`].
//! docs/evaluation.md lists every assumption with its number.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod error;
pub mod ladder;
pub mod profile;
pub mod prom;
pub mod rng;
pub mod sim;

use std::collections::BTreeMap;

use gaia_contract::ExecutionMode;
use gaia_policy::{PolicyConfig, DEFAULT_CAPACITY_WITHOUT_LIMIT, DEFAULT_INTERVAL};
use serde::Serialize;

pub use error::Error;
use profile::{Hw, Profile, Request, Workload};
use sim::{Platform, RunResult, RunSpec, Scenario};

/// The SLO of every scenario: the original's single promotion rule (p95 > 1000 ms).
pub const SLO_S: f64 = 1.0;
/// TinyLlama requests in the scenario (one user, back to back, 256 new tokens each).
pub const TINYLLAMA_REQUESTS: usize = 30;
/// Pause between ResNet-18 requests: the paper's 500 requests took ~95 s of node time
/// (mean latency 192 ms, $0.0036 at 0.000038 $/s), one request about every 0.19 s; the
/// H100 profile answers in ~20 ms, so back to back the run would last 10 s, shorter than the
/// autoscaler needs to see any data.
pub const RESNET_THINK_S: f64 = 0.17;

/// A scenario and the example function it exercises.
#[derive(Debug, Clone)]
pub struct Case {
    pub workload: Workload,
    pub scenario: Scenario,
}

/// The paper's four scenarios.
pub fn cases() -> Vec<Case> {
    let matmul: Vec<Request> = (0..=100)
        .map(|k| Request::Matmul { size: k * 200 })
        .collect();
    let idle: Vec<Request> = vec![Request::Idle { seconds: 2.0 }; 100];
    vec![
        Case {
            workload: Workload::Matmul,
            scenario: Scenario {
                name: "matmul".into(),
                title: "Matrix multiplication, sizes 0..20000 step 200, back to back (101 requests)"
                    .into(),
                note: "As in the paper: one client, each size once, in ascending order, the next \
                       request as soon as the previous answer arrives."
                    .into(),
                slo_s: SLO_S,
                clients: vec![matmul],
                concurrent: false,
                think_s: 0.0,
            },
        },
        Case {
            workload: Workload::ImageClassification,
            scenario: Scenario {
                name: "resnet18".into(),
                title: format!(
                    "ResNet-18 image classification, 500 requests, one user pausing {RESNET_THINK_S} s between them"
                ),
                note: format!(
                    "The paper's 500 requests held a CPU node for ~95 s (mean 192 ms, $0.0036): one \
                     request about every 0.19 s. The H100 profile answers in ~20 ms, so back to back \
                     the run would end in ~10 s, before the autoscaler sees two scrapes; a \
                     {RESNET_THINK_S} s pause keeps the paper's request rate."
                ),
                slo_s: SLO_S,
                clients: vec![vec![Request::Image; 500]],
                concurrent: false,
                think_s: RESNET_THINK_S,
            },
        },
        Case {
            workload: Workload::TextGeneration,
            scenario: Scenario {
                name: "tinyllama".into(),
                title: format!(
                    "TinyLlama-1.1B, {TINYLLAMA_REQUESTS} requests of 256 new tokens, one user back to back"
                ),
                note: format!(
                    "The paper states neither count nor pacing. One chat user sends \
                     {TINYLLAMA_REQUESTS} prompts back to back: a few minutes on every placement \
                     (~6 s an answer on the GPU, ~14 s on 16 CPU threads), several short windows, \
                     and past the verification time after a promotion."
                ),
                slo_s: SLO_S,
                clients: vec![vec![Request::Text { tokens: 256 }; TINYLLAMA_REQUESTS]],
                concurrent: false,
                think_s: 0.0,
            },
        },
        Case {
            workload: Workload::IdleWait,
            scenario: Scenario {
                name: "idle".into(),
                title: "Idle wait, 200 waits of 2 s from two users back to back".into(),
                note: "The paper's static-CPU cost ($0.0084, ~220 s of node time for 400 s of \
                       waiting) means its waits overlapped: two users, 100 waits each."
                    .into(),
                slo_s: SLO_S,
                clients: vec![idle.clone(), idle],
                concurrent: true,
                think_s: 0.0,
            },
        },
    ]
}

/// The classifier's mode of an example function, and where it was read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ModeOf {
    pub mode: ExecutionMode,
    /// `kn-gaia classify` (read from its output) or `assumed` (built-in, output not given).
    pub source: &'static str,
}

/// What `kn-gaia classify examples/functions/*` printed when this harness was written; used
/// only when no classifier output is given.
pub fn assumed_mode(w: Workload) -> ExecutionMode {
    match w {
        Workload::Matmul | Workload::ImageClassification => ExecutionMode::CpuPreferred,
        Workload::TextGeneration => ExecutionMode::GpuPreferred,
        Workload::IdleWait => ExecutionMode::Cpu,
    }
}

/// Reads `kn-gaia classify` output: lines `<path>/<example>: <mode>`; other lines are
/// rationale and are skipped.
pub fn parse_classifier_output(text: &str) -> Result<BTreeMap<Workload, ModeOf>, Error> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with(char::is_whitespace) {
            continue;
        }
        let Some((path, mode)) = line.rsplit_once(": ") else {
            continue;
        };
        let name = path
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(path);
        let Some(w) = Workload::ALL.into_iter().find(|w| w.key() == name) else {
            continue;
        };
        let mode: ExecutionMode = mode.trim().parse().map_err(|e| Error::Input {
            what: format!("classifier output for {name}"),
            message: format!("{e}"),
        })?;
        out.insert(
            w,
            ModeOf {
                mode,
                source: "kn-gaia classify",
            },
        );
    }
    Ok(out)
}

/// One run as reported.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// `headline` or `sensitivity`.
    pub group: &'static str,
    /// `static_cpu`, `static_gpu`, `auto` (classifier's mode) or `auto_forced`.
    pub role: &'static str,
    /// Short name of the variant (`default` for the headline).
    pub variant: String,
    pub description: String,
    #[serde(flatten)]
    pub run: RunResult,
}

/// Spread of one auto run's figures over seeds (latency draws and cold-start records).
#[derive(Debug, Clone, Serialize)]
pub struct Spread {
    pub role: &'static str,
    pub mode: ExecutionMode,
    pub seeds: Vec<u64>,
    pub total_s: [f64; 3],
    pub cost_usd: [f64; 3],
    pub gpu_node_s: [f64; 3],
    pub moves: [f64; 3],
    /// Over the seeds that reached a GPU after a violation; `None` if none did.
    pub time_to_gpu_s: Option<[f64; 3]>,
    pub seeds_promoted: usize,
}

/// What the profile says about a scenario on one placement, without any platform around it.
#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    /// Mean time from process start to ready over the cold-start records.
    pub ready_s: f64,
    /// Mean extra time of a fresh process's first request.
    pub warmup_s: f64,
    /// Sum of the p50 handler times of one client's requests (compute only).
    pub compute_s: f64,
    /// p50 handler time of the scenario's last request (matmul: the largest size).
    pub last_request_p50_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    #[serde(flatten)]
    pub scenario: Scenario,
    pub workload: Workload,
    pub requests: usize,
    pub clients: usize,
    pub classifier: ModeOf,
    pub profile: BTreeMap<Hw, Facts>,
    pub runs: Vec<Entry>,
    pub seed_spread: Vec<Spread>,
}

/// Every number the replay assumes, as written into the results.
#[derive(Debug, Clone, Serialize)]
pub struct Assumptions {
    /// Unix time of the replay's t = 0 (the policy's notes print absolute times).
    pub epoch_unix_s: i64,
    pub platform: Platform,
    pub interval_s: f64,
    pub capacity_without_limit: f64,
    pub headline_cpu: Hw,
    pub headline_cpu_limit: Option<f64>,
    pub policy: PolicyConfig,
    pub latency_buckets_s: Vec<f64>,
    pub slo_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub schema: &'static str,
    /// Which source the policy was built from (given by the caller, e.g. a git revision).
    pub source: String,
    pub profile: String,
    pub machine: String,
    pub seed: u64,
    pub assumptions: Assumptions,
    pub scenarios: Vec<ScenarioReport>,
}

/// How to run the evaluation.
#[derive(Debug, Clone)]
pub struct Options {
    pub profile_name: String,
    pub source: String,
    pub seed: u64,
    /// Extra seeds for the spread of the auto runs (0: none).
    pub spread_seeds: u64,
    pub modes: BTreeMap<Workload, ModeOf>,
}

struct Variant {
    name: &'static str,
    description: &'static str,
    /// Which roles it re-runs.
    roles: &'static [&'static str],
    /// Which scenarios (empty: all).
    only: &'static [&'static str],
    apply: fn(&mut RunSpec),
}

fn variants() -> Vec<Variant> {
    vec![
        Variant {
            name: "cpu2",
            description: "CPU pods behave like the 2-thread calibration and have a 2-core limit",
            roles: &["static_cpu", "auto", "auto_forced"],
            only: &[],
            apply: |s| {
                s.cpu_hw = Hw::Cpu2;
                s.cpu_limit = Some(2.0);
            },
        },
        Variant {
            name: "interval30",
            description: "autoscaler interval 30 s (the original's) instead of the default",
            roles: &["auto", "auto_forced"],
            only: &[],
            apply: |s| s.interval_s = 30.0,
        },
        Variant {
            name: "scrape30",
            description: "Prometheus scrapes every 30 s instead of 15 s",
            roles: &["auto", "auto_forced"],
            only: &[],
            apply: |s| s.platform.scrape_interval_s = 30.0,
        },
        Variant {
            name: "drain0",
            description: "an unrouted revision's pod is deleted as soon as its last request ends (no stable window, no grace period)",
            roles: &["auto", "auto_forced"],
            only: &[],
            apply: |s| s.platform.drain_s = 0.0,
        },
        Variant {
            name: "guards1",
            description: "NOT the product defaults: promote.minRequests, promote.minRequestsSevere and verify.minRequests at 1, to show what the request-count guards cost",
            roles: &["auto", "auto_forced"],
            only: &["matmul", "tinyllama"],
            apply: |s| guards_off(&mut s.policy),
        },
        Variant {
            name: "cpu2+guards1",
            description: "`cpu2` and `guards1` together (NOT the product defaults)",
            roles: &["auto_forced"],
            only: &["tinyllama"],
            apply: |s| {
                s.cpu_hw = Hw::Cpu2;
                s.cpu_limit = Some(2.0);
                guards_off(&mut s.policy);
            },
        },
    ]
}

fn guards_off(p: &mut PolicyConfig) {
    p.promote.min_requests = 1.0;
    p.promote.min_requests_severe = 1.0;
    p.verify.min_requests = 1.0;
}

/// Runs every scenario: the headline runs, the sensitivity variants and the seed spread.
pub fn evaluate(profile: &Profile, opts: &Options) -> Result<Results, Error> {
    let base = RunSpec {
        label: String::new(),
        mode: ExecutionMode::Cpu,
        cpu_hw: Hw::Cpu16,
        cpu_limit: None,
        capacity_without_limit: DEFAULT_CAPACITY_WITHOUT_LIMIT,
        interval_s: DEFAULT_INTERVAL.as_secs_f64(),
        policy: PolicyConfig::default(),
        platform: Platform::default(),
        seed: opts.seed,
        ladder: None,
    };
    let mut scenarios = vec![];
    for case in cases() {
        let classifier = opts.modes.get(&case.workload).copied().unwrap_or(ModeOf {
            mode: assumed_mode(case.workload),
            source: "assumed",
        });
        let mut roles: Vec<(&'static str, ExecutionMode, String)> = vec![
            ("static_cpu", ExecutionMode::Cpu, "static CPU".into()),
            ("static_gpu", ExecutionMode::Gpu, "static GPU".into()),
            (
                "auto",
                classifier.mode,
                format!("Gaia auto ({})", classifier.mode),
            ),
        ];
        if classifier.mode != ExecutionMode::CpuPreferred {
            roles.push((
                "auto_forced",
                ExecutionMode::CpuPreferred,
                "Gaia auto (cpu_preferred forced)".into(),
            ));
        }
        let mut runs = vec![];
        for (role, mode, label) in &roles {
            let spec = RunSpec {
                label: label.clone(),
                mode: *mode,
                ..base.clone()
            };
            runs.push(Entry {
                group: "headline",
                role,
                variant: "default".into(),
                description: label.clone(),
                run: sim::run(profile, &case.scenario, &spec)?,
            });
        }
        for v in variants() {
            if !v.only.is_empty() && !v.only.contains(&case.scenario.name.as_str()) {
                continue;
            }
            for (role, mode, label) in roles.iter().filter(|r| v.roles.contains(&r.0)) {
                let mut spec = RunSpec {
                    label: format!("{label} [{}]", v.name),
                    mode: *mode,
                    ..base.clone()
                };
                (v.apply)(&mut spec);
                let mut run = sim::run(profile, &case.scenario, &spec)?;
                run.requests.clear();
                runs.push(Entry {
                    group: "sensitivity",
                    role,
                    variant: v.name.into(),
                    description: v.description.into(),
                    run,
                });
            }
        }
        let mut seed_spread = vec![];
        if opts.spread_seeds > 0 {
            for (role, mode, label) in roles.iter().filter(|r| r.0.starts_with("auto")) {
                let seeds: Vec<u64> = (0..opts.spread_seeds).map(|k| opts.seed + k).collect();
                let mut results = vec![];
                for seed in &seeds {
                    let spec = RunSpec {
                        label: label.clone(),
                        mode: *mode,
                        seed: *seed,
                        ..base.clone()
                    };
                    results.push(sim::run(profile, &case.scenario, &spec)?.summary);
                }
                let pick = |f: &dyn Fn(&sim::Summary) -> Option<f64>| -> Option<[f64; 3]> {
                    let mut v: Vec<f64> = results.iter().filter_map(f).collect();
                    v.sort_by(f64::total_cmp);
                    (!v.is_empty()).then(|| [v[0], v[v.len() / 2], v[v.len() - 1]])
                };
                let all =
                    |f: &dyn Fn(&sim::Summary) -> f64| pick(&|s| Some(f(s))).unwrap_or([0.0; 3]);
                seed_spread.push(Spread {
                    role,
                    mode: *mode,
                    seeds,
                    total_s: all(&|s| s.total_s),
                    cost_usd: all(&|s| s.cost_usd),
                    gpu_node_s: all(&|s| s.gpu_node_s),
                    moves: all(&|s| s.moves as f64),
                    time_to_gpu_s: pick(&|s| s.time_to_gpu_s.filter(|_| s.promoted_at_s.is_some())),
                    seeds_promoted: results.iter().filter(|s| s.promoted_at_s.is_some()).count(),
                });
            }
        }
        let mut facts = BTreeMap::new();
        for hw in Hw::ALL {
            let p = profile.get(case.workload, hw)?;
            let n = p.cold.len().max(1) as f64;
            let client = case
                .scenario
                .clients
                .first()
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            facts.insert(
                hw,
                Facts {
                    ready_s: p.cold.iter().map(|c| c.ready_s).sum::<f64>() / n,
                    warmup_s: p.cold.iter().map(|c| c.warmup_s).sum::<f64>() / n,
                    compute_s: client.iter().map(|r| p.p50(r)).sum(),
                    last_request_p50_s: client.last().map(|r| p.p50(r)).unwrap_or(0.0),
                },
            );
        }
        scenarios.push(ScenarioReport {
            profile: facts,
            requests: case.scenario.clients.iter().map(Vec::len).sum(),
            clients: case.scenario.clients.len(),
            scenario: case.scenario,
            workload: case.workload,
            classifier,
            runs,
            seed_spread,
        });
    }
    Ok(Results {
        schema: "gaia-eval-virtual/1",
        source: opts.source.clone(),
        profile: opts.profile_name.clone(),
        machine: profile.machine.clone(),
        seed: opts.seed,
        assumptions: Assumptions {
            epoch_unix_s: sim::EPOCH_S,
            platform: base.platform.clone(),
            interval_s: base.interval_s,
            capacity_without_limit: base.capacity_without_limit,
            headline_cpu: base.cpu_hw,
            headline_cpu_limit: base.cpu_limit,
            policy: base.policy.clone(),
            latency_buckets_s: prom::BUCKETS_S.to_vec(),
            slo_s: SLO_S,
        },
        scenarios,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifier_output_is_read_and_rationale_skipped() {
        let text = "examples/functions/idle_wait: cpu\n  nothing that can use a GPU\n\
                    examples/functions/matmul: cpu_preferred\n  - framework_import func.py:10: torch\n\
                    examples/functions/text_generation/: gpu_preferred\n";
        let m = parse_classifier_output(text).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[&Workload::IdleWait].mode, ExecutionMode::Cpu);
        assert_eq!(
            m[&Workload::TextGeneration].mode,
            ExecutionMode::GpuPreferred
        );
        assert!(parse_classifier_output("examples/functions/matmul: fast\n").is_err());
    }
}
