//! The ladder configuration of the replay (issue 16): each paper scenario on a three-rung
//! ladder — `cpu` (16 threads), `gpu-shared` (a seventh of a time-sliced GPU: the whole GPU's
//! profile slowed by the factor measured with 7 processes on one H200, `gpu_shared` in the
//! profile) and `gpu` (whole) — static on each rung and decided by [`decide_ladder`]; and the
//! four functions together on a 2-GPU pool (one GPU time-sliced 7 ways, one whole), against
//! every static assignment of the four that fits the pool.
//!
//! Prices: the paper's CPU node 0.000038 $/s and GPU node 0.000133 $/s; a seventh of a GPU
//! 0.000019 $/s.

use gaia_contract::ExecutionMode;
use gaia_policy::ladder::{gpu_memory_estimate_mib, Dtype, LadderConfig};
use gaia_policy::{
    GpuAvailability, PolicyConfig, DEFAULT_CAPACITY_WITHOUT_LIMIT, DEFAULT_INTERVAL,
};
use serde::Serialize;

use crate::profile::{Hw, Profile, Workload};
use crate::sim::{self, LadderSpec, Platform, RunSpec};
use crate::{assumed_mode, cases, Error, Options};

/// An H200's memory, MiB (the ladder's GPU).
pub const GPU_MEMORY_MIB: f64 = 143_771.0;
/// Replicas of the time-sliced GPU.
pub const REPLICAS: u32 = 7;

/// One run of the ladder configuration.
#[derive(Debug, Clone, Serialize)]
pub struct LadderRun {
    pub scenario: String,
    pub label: String,
    pub mode: ExecutionMode,
    pub total_s: f64,
    pub p95_s: f64,
    pub slo_violation_s: f64,
    /// The first answer over the SLO among requests that did not wait for the deploy.
    pub first_violation_after_deploy_s: Option<f64>,
    pub cost_usd: f64,
    pub moves: Vec<String>,
    /// (rung, seconds its pods were held).
    pub held_s: Vec<(String, f64)>,
    /// (rung, from, until) of every pod on the whole GPU: for the pool's contention check.
    pub whole_gpu: Vec<(f64, f64)>,
}

/// A static assignment of the four functions to rungs, as the pool allows.
#[derive(Debug, Clone, Serialize)]
pub struct Assignment {
    pub rungs: Vec<(String, String)>,
    pub cost_usd: f64,
    pub slo_violation_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LadderResults {
    pub schema: &'static str,
    pub slice: Slice,
    /// The middle rung's latencies are modelled, not measured (MIG).
    pub modelled: bool,
    pub profile: String,
    pub shared_slowdown: Vec<(String, f64)>,
    pub shared_measured_on: Option<String>,
    pub runs: Vec<LadderRun>,
    /// The four functions on the pool: the ladder's total, and every static assignment.
    pub mixed_ladder_cost_usd: f64,
    pub mixed_ladder_violation_s: f64,
    /// Pairs of functions that would have held the one whole GPU at the same time (none: the
    /// independent runs are what the shared pool gives).
    pub mixed_whole_gpu_overlaps: Vec<(String, String)>,
    pub static_assignments: Vec<Assignment>,
}

fn model_gpu_mib(w: Workload) -> Option<f64> {
    match w {
        // ResNet-18: 11.7 M parameters in float32; TinyLlama-1.1B in float16 on the GPU
        Workload::ImageClassification => Some(gpu_memory_estimate_mib(11.7e6, Dtype::F32)),
        Workload::TextGeneration => Some(gpu_memory_estimate_mib(1.1e9, Dtype::F16)),
        Workload::Matmul | Workload::IdleWait => None,
    }
}

/// How the middle rung shares a GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Slice {
    /// A seventh of a time-sliced GPU (`nvidia.com/gpu.shared`): measured.
    TimeSliced,
    /// A MIG 1g slice (`nvidia.com/mig-1g.18gb`, 16 of 132 SMs, 18 GiB): modelled.
    Mig1g,
}

/// The three rungs: cpu, the slice, the whole GPU; a seventh of the GPU's price for the slice.
pub fn ladder(slice: Slice) -> LadderConfig {
    match slice {
        Slice::TimeSliced => LadderConfig::cpu_shared_gpu(GPU_MEMORY_MIB, REPLICAS),
        Slice::Mig1g => {
            LadderConfig::cpu_mig_gpu(GPU_MEMORY_MIB, "nvidia.com/mig-1g.18gb", 18_432.0, REPLICAS)
        }
    }
}

fn spec(
    label: &str,
    mode: ExecutionMode,
    w: Workload,
    start: Option<usize>,
    seed: u64,
    slice: Slice,
) -> RunSpec {
    RunSpec {
        label: label.into(),
        mode,
        cpu_hw: Hw::Cpu16,
        cpu_limit: None,
        capacity_without_limit: DEFAULT_CAPACITY_WITHOUT_LIMIT,
        interval_s: DEFAULT_INTERVAL.as_secs_f64(),
        policy: PolicyConfig::default(),
        platform: Platform::default(),
        seed,
        ladder: Some(LadderSpec {
            config: ladder(slice),
            hw: vec![
                Hw::Cpu16,
                match slice {
                    Slice::TimeSliced => Hw::GpuShared,
                    Slice::Mig1g => Hw::Mig1g,
                },
                Hw::Gpu,
            ],
            capacity: vec![
                None,
                Some(GpuAvailability {
                    largest_free_on_a_node: REPLICAS,
                    free_total: REPLICAS,
                }),
                Some(GpuAvailability {
                    largest_free_on_a_node: 1,
                    free_total: 1,
                }),
            ],
            start,
            pinned: start.is_some(),
            model_gpu_mib: model_gpu_mib(w),
        }),
    }
}

/// Every scenario static on each rung and on the ladder; then the pool of the four.
pub fn evaluate_ladder(
    profile: &Profile,
    opts: &Options,
    slice: Slice,
) -> Result<LadderResults, Error> {
    if profile.shared_slowdown.is_empty() {
        return Err(Error::Input {
            what: "profile".into(),
            message: "no gpu_shared section (schema gaia-calibration/2): run calibrate.py \
                      merge-shared first"
                .into(),
        });
    }
    let config = ladder(slice);
    let names: Vec<&str> = config.rungs.iter().map(|r| r.name.as_str()).collect();
    let mut runs = Vec::new();
    for case in cases() {
        let w = case.workload;
        let mode = opts
            .modes
            .get(&w)
            .map(|m| m.mode)
            .unwrap_or_else(|| assumed_mode(w));
        let mut specs: Vec<(String, RunSpec)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    format!("static {n}"),
                    spec(
                        &format!("static {n}"),
                        ExecutionMode::Gpu,
                        w,
                        Some(i),
                        opts.seed,
                        slice,
                    ),
                )
            })
            .collect();
        specs.push((
            format!("ladder ({mode})"),
            spec("ladder", mode, w, None, opts.seed, slice),
        ));
        if mode == ExecutionMode::CpuPreferred {
            // As a Service created before the ladder: on the CPU, the rules alone move it.
            let mut from_cpu = spec("ladder from cpu", mode, w, Some(0), opts.seed, slice);
            if let Some(l) = from_cpu.ladder.as_mut() {
                l.pinned = false;
            }
            specs.push(("ladder, started on cpu".into(), from_cpu));
        }
        if mode.is_pinned() || mode == ExecutionMode::GpuPreferred {
            specs.push((
                "ladder, cpu_preferred forced".into(),
                spec(
                    "ladder forced",
                    ExecutionMode::CpuPreferred,
                    w,
                    None,
                    opts.seed,
                    slice,
                ),
            ));
        }
        for (label, s) in specs {
            let r = sim::run(profile, &case.scenario, &s)?;
            let mut held: Vec<(String, f64)> = Vec::new();
            let mut whole = Vec::new();
            for rev in &r.revisions {
                let name = rev.rung.clone().unwrap_or_default();
                let secs = (rev.held_until_s - rev.created_s).max(0.0);
                if name == "gpu" {
                    whole.push((rev.created_s, rev.held_until_s));
                }
                match held.iter_mut().find(|(n, _)| *n == name) {
                    Some(h) => h.1 += secs,
                    None => held.push((name, secs)),
                }
            }
            runs.push(LadderRun {
                scenario: case.scenario.name.clone(),
                label,
                mode: s.mode,
                total_s: r.summary.total_s,
                p95_s: r.summary.p95_latency_s,
                slo_violation_s: r.summary.slo_violation_s,
                first_violation_after_deploy_s: r.summary.first_violation_s,
                cost_usd: r.summary.cost_usd,
                moves: r
                    .moves
                    .iter()
                    .map(|m| format!("{:.0}s {}: {}", m.t_s, m.kind, m.note))
                    .collect(),
                held_s: held,
                whole_gpu: whole,
            });
        }
    }

    // The pool: the four functions at once, each from its classifier mode.
    let scenarios: Vec<String> = cases().iter().map(|c| c.scenario.name.clone()).collect();
    let ladder_runs: Vec<&LadderRun> = scenarios
        .iter()
        .filter_map(|n| {
            runs.iter()
                .find(|r| &r.scenario == n && r.label.starts_with("ladder ("))
        })
        .collect();
    let mixed_cost = ladder_runs.iter().map(|r| r.cost_usd).sum();
    let mixed_violation = ladder_runs.iter().map(|r| r.slo_violation_s).sum();
    let mut overlaps = Vec::new();
    for (i, a) in ladder_runs.iter().enumerate() {
        for b in &ladder_runs[i + 1..] {
            let clash = a
                .whole_gpu
                .iter()
                .any(|x| b.whole_gpu.iter().any(|y| x.0 < y.1 && y.0 < x.1));
            if clash {
                overlaps.push((a.scenario.clone(), b.scenario.clone()));
            }
        }
    }
    // Static assignments: each function on one rung; the pool has two GPUs, so at most two
    // whole GPUs, or one whole GPU and one GPU time-sliced for up to seven.
    let mut assignments = Vec::new();
    let n = scenarios.len() as u32;
    for code in 0..3u32.pow(n) {
        let choice: Vec<usize> = (0..n).map(|k| (code / 3u32.pow(k) % 3) as usize).collect();
        let whole = choice.iter().filter(|&&c| c == 2).count();
        let shared = choice.iter().filter(|&&c| c == 1).count();
        let gpus = whole + usize::from(shared > 0);
        if gpus > 2 || shared > REPLICAS as usize {
            continue;
        }
        let mut cost = 0.0;
        let mut violation = 0.0;
        let mut rungs = Vec::new();
        for (name, &c) in scenarios.iter().zip(&choice) {
            let label = format!("static {}", names[c]);
            let Some(r) = runs
                .iter()
                .find(|r| &r.scenario == name && r.label == label)
            else {
                continue;
            };
            cost += r.cost_usd;
            violation += r.slo_violation_s;
            rungs.push((name.clone(), names[c].to_string()));
        }
        assignments.push(Assignment {
            rungs,
            cost_usd: cost,
            slo_violation_s: violation,
        });
    }
    assignments.sort_by(|a, b| a.cost_usd.total_cmp(&b.cost_usd));
    Ok(LadderResults {
        schema: "gaia-eval-ladder/1",
        slice,
        modelled: slice == Slice::Mig1g,
        profile: opts.profile_name.clone(),
        shared_slowdown: match slice {
            Slice::TimeSliced => &profile.shared_slowdown,
            Slice::Mig1g => &profile.mig_slowdown,
        }
        .iter()
        .map(|(w, f)| (w.key().to_string(), *f))
        .collect(),
        shared_measured_on: profile.shared_machine.clone(),
        runs,
        mixed_ladder_cost_usd: mixed_cost,
        mixed_ladder_violation_s: mixed_violation,
        mixed_whole_gpu_overlaps: overlaps,
        static_assignments: assignments,
    })
}

/// The figures as Markdown tables (for docs/evaluation.md's ladder section).
pub fn markdown(r: &LadderResults) -> String {
    let mut out = format!(
        "Middle rung: {} ({}); slowdown over the whole GPU: {}\n\n",
        match r.slice {
            Slice::TimeSliced => "a seventh of a time-sliced GPU",
            Slice::Mig1g => "a MIG 1g slice",
        },
        if r.modelled {
            "modelled"
        } else {
            "measured on an H200"
        },
        r.shared_slowdown
            .iter()
            .map(|(w, f)| format!("{w} {f:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    out.push_str(
        "| scenario | run | total time | p95 | SLO violation | first violation after deploy | cost | held (rung: s) | moves |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for run in &r.runs {
        let held: Vec<String> = run
            .held_s
            .iter()
            .map(|(n, s)| format!("{n}: {s:.0}"))
            .collect();
        let moves: Vec<String> = run
            .moves
            .iter()
            .map(|m| m.split(": ").next().unwrap_or(m).to_string())
            .collect();
        out.push_str(&format!(
            "| {} | {} | {:.1} s | {:.3} s | {:.1} s | {} | ${:.5} | {} | {} |\n",
            run.scenario,
            run.label,
            run.total_s,
            run.p95_s,
            run.slo_violation_s,
            run.first_violation_after_deploy_s
                .map(|t| format!("{t:.1} s"))
                .unwrap_or_else(|| "none".into()),
            run.cost_usd,
            held.join(", "),
            if moves.is_empty() {
                "none".into()
            } else {
                moves.join("; ")
            }
        ));
    }
    out.push_str(&format!(
        "\nMixed pool (the four functions at once, each on its classifier mode's ladder run): \
         ${:.5}, SLO violation {:.1} s; whole-GPU overlaps: {}\n\n",
        r.mixed_ladder_cost_usd,
        r.mixed_ladder_violation_s,
        if r.mixed_whole_gpu_overlaps.is_empty() {
            "none".to_string()
        } else {
            format!("{:?}", r.mixed_whole_gpu_overlaps)
        }
    ));
    out.push_str("| static assignment (matmul, resnet18, tinyllama, idle) | cost | SLO violation | vs ladder |\n|---|---|---|---|\n");
    for a in &r.static_assignments {
        let which: Vec<&str> = a.rungs.iter().map(|(_, n)| n.as_str()).collect();
        let verdict = if a.cost_usd < r.mixed_ladder_cost_usd
            && a.slo_violation_s <= r.mixed_ladder_violation_s
        {
            "cheaper and no worse: ladder dominated"
        } else if a.cost_usd < r.mixed_ladder_cost_usd {
            "cheaper, more violation"
        } else if a.slo_violation_s < r.mixed_ladder_violation_s {
            "dearer, less violation"
        } else {
            "dearer and no better"
        };
        out.push_str(&format!(
            "| {} | ${:.5} | {:.1} s | {verdict} |\n",
            which.join(", "),
            a.cost_usd,
            a.slo_violation_s
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::Path;

    fn results() -> LadderResults {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/h100.json");
        let profile = Profile::load(&path).expect("the committed profile loads");
        let opts = Options {
            profile_name: "h100.json".into(),
            source: "test".into(),
            seed: 1,
            spread_seeds: 0,
            modes: BTreeMap::new(),
        };
        evaluate_ladder(&profile, &opts, Slice::TimeSliced).expect("the ladder runs")
    }

    fn find<'a>(r: &'a LadderResults, scenario: &str, label: &str) -> &'a LadderRun {
        r.runs
            .iter()
            .find(|x| x.scenario == scenario && x.label.starts_with(label))
            .unwrap_or_else(|| panic!("{scenario} {label}"))
    }

    #[test]
    fn resnet18_settles_on_the_shared_gpu_for_less_than_static_cpu() {
        let r = results();
        let ladder = find(&r, "resnet18", "ladder (");
        let cpu = find(&r, "resnet18", "static cpu");
        assert!(ladder.moves.is_empty(), "{:?}", ladder.moves);
        assert_eq!(ladder.held_s.len(), 1);
        assert_eq!(ladder.held_s[0].0, "gpu-shared");
        assert!(
            ladder.cost_usd < cpu.cost_usd * 0.6,
            "{} vs {}",
            ladder.cost_usd,
            cpu.cost_usd
        );
    }

    #[test]
    fn a_function_that_waits_never_climbs() {
        let r = results();
        let forced = find(&r, "idle", "ladder, cpu_preferred forced");
        assert!(forced.moves.is_empty(), "{:?}", forced.moves);
        assert!(forced.whole_gpu.is_empty());
    }

    #[test]
    fn the_pool_never_holds_more_than_it_has() {
        let r = results();
        assert!(
            r.mixed_whole_gpu_overlaps.is_empty(),
            "{:?}",
            r.mixed_whole_gpu_overlaps
        );
        // 3 rungs, 4 functions: every assignment with at most 2 GPUs in use
        assert!(r.static_assignments.len() < 81);
        assert!(r.static_assignments.iter().all(|a| {
            let whole = a.rungs.iter().filter(|(_, n)| n == "gpu").count();
            let shared = a.rungs.iter().any(|(_, n)| n == "gpu-shared");
            whole + usize::from(shared) <= 2
        }));
    }
}
