//! The policy's promises, checked on arbitrary runs rather than hand-picked rows (proptest).
//!
//! A run is a Service (either adaptive mode, on either placement) and a sequence of cycles; each
//! cycle advances the clock by 1 s to 10 min, brings an observation (Prometheus down, a revision
//! without series, or any mix of present and missing figures), a GPU availability, whether a
//! rollout in progress settles, and whether the leader restarts (losing the in-memory streak).
//! The run feeds every decision back as the controller does. Properties:
//!
//! 1. no move without data: with Prometheus down, nothing moves but a rollback of a revision
//!    that never became ready (which the API, not Prometheus, tells); no promotion without a
//!    p95, a request rate and a CPU figure;
//! 2. never more moves in any hour than `maxMovesPerHour`;
//! 3. never a promotion of a Service whose CPU use says it waits;
//! 4. never two moves within `minDwell`, unless the second reverts a failed verification or
//!    rolls back a revision that never became ready;
//! 5. the memory written back (`gaia.dev/observed`) always parses back to itself;
//! 6. a restart that loses the streak only delays: whatever moves with the streak lost also
//!    moves, the same way, with the streak kept.
//!
//! `PROPTEST_CASES` sets the number of runs (default 10,000 here).

use std::time::Duration;

use gaia_contract::{ExecutionMode, Observed, Placement};
use gaia_policy::clock::{add, secs_between};
use gaia_policy::*;
use jiff::Timestamp;
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

fn start() -> Timestamp {
    Timestamp::from_second(1_800_000_000).expect("a valid timestamp")
}

#[derive(Debug, Clone)]
struct Cycle {
    dt_s: u64,
    stats: Option<RevisionStats>,
    gpu: GpuAvailability,
    settles: bool,
    restart: bool,
}

fn opt<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    prop_oneof![1 => Just(None), 4 => s.prop_map(Some)].boxed()
}

/// Any observation: every figure present or not, latencies from fast to far over any SLO.
fn revision_stats() -> impl Strategy<Value = RevisionStats> {
    (
        opt(1.0f64..5_000.0),
        opt(1.0f64..20_000.0),
        opt(1.0f64..20_000.0),
        opt(0.0f64..50.0),
        opt(0.0f64..50.0),
        opt(1.0f64..10_000.0),
        opt((0.0f64..8.0, 0.25f64..8.0)),
        0u32..4,
        opt(0.0f64..100.0),
    )
        .prop_map(
            |(p50, p95s, p95l, rps_s, rps_l, mean, cpu, pods, util)| RevisionStats {
                p50_short_ms: p50,
                p95_short_ms: p95s,
                p95_long_ms: p95l,
                rps_short: rps_s,
                rps_long: rps_l,
                mean_latency_ms: mean,
                cpu: cpu.map(|(cores, capacity)| CpuUse { cores, capacity }),
                pods,
                // DCGM evidence present or not (the DCGM rule under every property)
                gpu: util.map(|u| GpuUse {
                    utilization_pct: u,
                    fb_used_mib: Some(1000.0),
                    fb_free_mib: None,
                }),
            },
        )
}

/// Most cycles bring the same kind of busy, slow observation, so runs do promote and move.
fn slow_and_busy() -> impl Strategy<Value = RevisionStats> {
    (
        400.0f64..3_000.0,
        0.5f64..1.2,
        0.5f64..30.0,
        1.0f64..2.0,
        0u32..3,
    )
        .prop_map(|(p95, long_factor, rps, cores, pods)| RevisionStats {
            p50_short_ms: Some(p95 * 0.8),
            p95_short_ms: Some(p95),
            p95_long_ms: Some(p95 * long_factor),
            rps_short: Some(rps),
            rps_long: Some(rps),
            mean_latency_ms: Some(p95 * 0.8),
            cpu: Some(CpuUse {
                cores,
                capacity: 2.0,
            }),
            pods,
            gpu: None,
        })
}

fn cycle(stats: BoxedStrategy<RevisionStats>) -> impl Strategy<Value = Cycle> {
    (
        prop_oneof![8 => 1u64..=30, 2 => 31u64..=600],
        prop_oneof![1 => Just(None), 9 => stats.prop_map(Some)],
        (0u32..3, 0u32..3),
        any::<bool>(),
        prop::bool::weighted(0.05),
    )
        .prop_map(|(dt_s, stats, (largest, more), settles, restart)| Cycle {
            dt_s,
            stats,
            gpu: GpuAvailability {
                largest_free_on_a_node: largest,
                free_total: largest + more,
            },
            settles,
            restart,
        })
}

fn service() -> impl Strategy<Value = ServiceState> {
    (
        prop_oneof![
            Just(ExecutionMode::CpuPreferred),
            Just(ExecutionMode::GpuPreferred)
        ],
        prop_oneof![Just(Placement::Cpu), Just(Placement::Gpu)],
        prop_oneof![
            Just(Duration::from_millis(200)),
            Just(Duration::from_millis(500)),
            Just(Duration::from_secs(2))
        ],
        prop::bool::weighted(0.2),
    )
        .prop_map(|(mode, placement, slo, latency_truncated)| ServiceState {
            mode,
            placement,
            rollout: Rollout::Settled,
            slo,
            observed: Observed::default(),
            gpus_needed: 1,
            gpu_pods: 1,
            violation_streak: 0,
            created: Some(start()),
            latency_truncated,
            elastic_gpu_pool: None,
        })
}

fn runs() -> impl Strategy<Value = (ServiceState, Vec<Cycle>)> {
    let any_stats = revision_stats().boxed();
    let slow = prop_oneof![1 => revision_stats(), 3 => slow_and_busy()].boxed();
    (
        service(),
        prop_oneof![
            prop::collection::vec(cycle(any_stats), 1..80),
            prop::collection::vec(cycle(slow), 1..80),
        ],
    )
}

/// One decided cycle: when, what was decided, and from what.
struct Step {
    at: Timestamp,
    decision: Decision,
}

/// Runs the cycles as the controller does, checking the per-cycle properties on the way.
fn run(mut s: ServiceState, cycles: &[Cycle], cfg: &PolicyConfig) -> Vec<Step> {
    let mut now = start();
    let mut steps = Vec::with_capacity(cycles.len());
    for c in cycles {
        now = add(now, Duration::from_secs(c.dt_s));
        if c.restart {
            s.violation_streak = 0;
        }
        if s.rollout == Rollout::InProgress && c.settles {
            s.rollout = Rollout::Settled;
        }
        let out = decide(&s, c.stats.as_ref(), c.gpu, cfg, now);
        check_cycle(&s, c, &out.decision, cfg, now);
        s.violation_streak = out.violation_streak;
        match &out.decision {
            Decision::Move(m) => {
                s.placement = m.to;
                s.observed = m.observed.clone();
                s.rollout = Rollout::InProgress;
            }
            Decision::Remember { observed, .. } => s.observed = observed.clone(),
            Decision::Hold(_) | Decision::NoGpu { .. } => {}
        }
        steps.push(Step {
            at: now,
            decision: out.decision,
        });
    }
    steps
}

fn check_cycle(s: &ServiceState, c: &Cycle, d: &Decision, cfg: &PolicyConfig, now: Timestamp) {
    // 1. No move without data.
    if c.stats.is_none() {
        assert!(
            matches!(d, Decision::Hold(_))
                || matches!(d, Decision::Move(m) if m.kind == MoveKind::Rollback),
            "Prometheus down, yet {d:?}"
        );
    }
    if let Decision::Move(m) = d {
        if m.kind == MoveKind::Promote {
            let st = c.stats.as_ref().expect("a promotion has an observation");
            assert!(
                st.p95_short_ms.is_some() && st.rps_short.is_some() && st.cpu.is_some(),
                "promoted on missing data: {st:?}"
            );
        }
        // 5. The memory written back parses back to itself.
        let text = m.observed.to_annotation();
        assert_eq!(
            Observed::from_annotation(Some(&text)).expect("parses"),
            m.observed,
            "{text}"
        );
    }
    if let Decision::Remember { observed, .. } = d {
        let text = observed.to_annotation();
        assert_eq!(
            Observed::from_annotation(Some(&text)).expect("parses"),
            *observed
        );
    }
    // 6. Losing the streak never makes a move that keeping it would not.
    if s.violation_streak > 0 {
        let forgot = ServiceState {
            violation_streak: 0,
            ..s.clone()
        };
        let after_restart = decide(&forgot, c.stats.as_ref(), c.gpu, cfg, now).decision;
        if let Decision::Move(m) = &after_restart {
            assert!(
                matches!(d, Decision::Move(k) if k.kind == m.kind && k.to == m.to),
                "with the streak lost: {after_restart:?}; kept: {d:?}"
            );
        }
    }
}

fn moves(steps: &[Step]) -> Vec<(Timestamp, MoveKind, &str)> {
    steps
        .iter()
        .filter_map(|s| match &s.decision {
            Decision::Move(m) => Some((s.at, m.kind, m.note.as_str())),
            _ => None,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn never_over_the_cap_never_twice_within_the_dwell((s, cycles) in runs()) {
        let cfg = PolicyConfig::default();
        let steps = run(s, &cycles, &cfg);
        let moves = moves(&steps);
        // 2. At most maxMovesPerHour moves in any hour (every window that starts at a move).
        for (i, (at, _, _)) in moves.iter().enumerate() {
            let in_hour = moves[i..]
                .iter()
                .take_while(|(t, _, _)| secs_between(*at, *t) < 3600.0)
                .count();
            prop_assert!(
                in_hour as u32 <= cfg.hysteresis.max_moves_per_hour,
                "{in_hour} moves within an hour from {at}: {moves:#?}"
            );
        }
        // 4. Two moves within the dwell only when the second undoes a failed step.
        for w in moves.windows(2) {
            let ((a, _, _), (b, kind, _)) = (w[0], w[1]);
            if secs_between(a, b) < cfg.hysteresis.min_dwell.as_secs_f64() {
                prop_assert!(
                    matches!(kind, MoveKind::Revert | MoveKind::Rollback),
                    "{kind:?} {}s after the previous move: {moves:?}",
                    secs_between(a, b)
                );
            }
        }
    }

    /// 3. A Service slow because it waits (its CPU use is low, per container and per request
    /// in flight) is never promoted, whatever its latency.
    #[test]
    fn a_service_that_waits_is_never_promoted(
        slo_ms in 100u64..2_000,
        obs in prop::collection::vec(
            (500.0f64..60_000.0, 0.5f64..50.0, 200.0f64..5_000.0, 0.25f64..4.0, 0.0f64..1.0,
             1u64..60),
            1..60),
    ) {
        let cfg = PolicyConfig::default();
        let mut s = ServiceState {
            mode: ExecutionMode::CpuPreferred,
            placement: Placement::Cpu,
            rollout: Rollout::Settled,
            slo: Duration::from_millis(slo_ms),
            observed: Observed::default(),
            gpus_needed: 1,
            gpu_pods: 1,
            violation_streak: 0,
            created: Some(start()),
            latency_truncated: false,
            elastic_gpu_pool: None,
        };
        let mut now = start();
        let gpu = GpuAvailability { largest_free_on_a_node: 2, free_total: 2 };
        for (p95, rps, mean, capacity, fraction, dt) in obs {
            now = add(now, Duration::from_secs(dt));
            let in_flight = rps * mean / 1e3;
            let ceiling = (cfg.promote.cpu_utilization * capacity)
                .min(cfg.promote.cpu_per_request * in_flight);
            let stats = RevisionStats {
                p50_short_ms: Some(p95),
                p95_short_ms: Some(p95),
                p95_long_ms: Some(p95),
                rps_short: Some(rps),
                rps_long: Some(rps),
                mean_latency_ms: Some(mean),
                cpu: Some(CpuUse { cores: ceiling * fraction * 0.99, capacity }),
                pods: 1,
                gpu: None,
            };
            let out = decide(&s, Some(&stats), gpu, &cfg, now);
            prop_assert!(
                !matches!(&out.decision, Decision::Move(m) if m.kind == MoveKind::Promote),
                "promoted a waiting Service: {stats:?}"
            );
            s.violation_streak = out.violation_streak;
        }
    }
}
