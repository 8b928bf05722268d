//! The ladder's promises on three rungs (`cpu` → `gpu-shared` → `gpu`), checked on arbitrary
//! runs (proptest), as `properties.rs` checks them for today's two placements.
//!
//! A run is a Service (either adaptive mode, on any rung, with or without a model too large for
//! the shared slice) and up to 80 cycles: the clock advances 1 s to 10 min, an observation
//! (Prometheus down, any mix of present and missing figures, or a busy slow one), free units
//! per GPU rung (none to a few, or no figure at all), a rollout that settles or not, a leader
//! restart that loses the streak. Properties:
//!
//! 1. no move without data: with Prometheus down only a rollback;
//! 2. never more moves in any hour than `maxMovesPerHour`;
//! 3. never two moves within `minDwell`, unless the second is a revert or a rollback;
//! 4. a Service is never moved up or sideways onto a rung that cannot hold its model, nor onto
//!    a GPU rung without a free unit;
//! 5. one rung at a time: a promotion passes over only rungs that cannot hold the model or
//!    have no free unit; a cost move or a demotion for load goes to the nearest rung that holds
//!    the model, and a cost move always to a cheaper one;
//! 6. the memory written back (`gaia.dev/ladder`) always parses back to itself;
//! 7. losing the streak never makes a move that keeping it would not.
//!
//! `PROPTEST_CASES` sets the number of runs (default 10,000 here).

use std::time::Duration;

use gaia_contract::ExecutionMode;
use gaia_policy::clock::{add, secs_between};
use gaia_policy::ladder::*;
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

fn ladder() -> LadderConfig {
    LadderConfig::cpu_shared_gpu(143_771.0, 7)
}

#[derive(Debug, Clone)]
struct Cycle {
    dt_s: u64,
    stats: Option<RevisionStats>,
    capacity: Vec<Option<GpuAvailability>>,
    settles: bool,
    restart: bool,
}

fn opt<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    prop_oneof![1 => Just(None), 4 => s.prop_map(Some)].boxed()
}

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
    )
        .prop_map(
            |(p50, p95s, p95l, rps_s, rps_l, mean, cpu, pods)| RevisionStats {
                p50_short_ms: p50,
                p95_short_ms: p95s,
                p95_long_ms: p95l,
                rps_short: rps_s,
                rps_long: rps_l,
                mean_latency_ms: mean,
                cpu: cpu.map(|(cores, capacity)| CpuUse { cores, capacity }),
                pods,
                gpu: None,
            },
        )
}

/// Busy, and slow or fast: runs that climb, verify, revert and move to cheaper rungs.
fn busy() -> impl Strategy<Value = RevisionStats> {
    (
        10.0f64..3_000.0,
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

fn units() -> BoxedStrategy<Option<GpuAvailability>> {
    prop_oneof![
        1 => Just(None),
        6 => (0u32..3, 0u32..3).prop_map(|(largest, more)| Some(GpuAvailability {
            largest_free_on_a_node: largest,
            free_total: largest + more,
        })),
    ]
    .boxed()
}

fn cycle(stats: BoxedStrategy<RevisionStats>) -> impl Strategy<Value = Cycle> {
    (
        prop_oneof![8 => 1u64..=30, 2 => 31u64..=600],
        prop_oneof![1 => Just(None), 9 => stats.prop_map(Some)],
        (units(), units()),
        any::<bool>(),
        prop::bool::weighted(0.05),
    )
        .prop_map(|(dt_s, stats, (shared, whole), settles, restart)| Cycle {
            dt_s,
            stats,
            capacity: vec![None, shared, whole],
            settles,
            restart,
        })
}

fn service() -> impl Strategy<Value = LadderState> {
    (
        prop_oneof![
            Just(ExecutionMode::CpuPreferred),
            Just(ExecutionMode::GpuPreferred)
        ],
        0usize..3,
        prop_oneof![
            Just(Duration::from_millis(200)),
            Just(Duration::from_millis(500)),
            Just(Duration::from_secs(2))
        ],
        prop_oneof![Just(None), Just(Some(3_500.0)), Just(Some(40_000.0))],
        1u32..3,
    )
        .prop_map(|(mode, rung, slo, model, pods)| LadderState {
            mode,
            rung,
            rollout: Rollout::Settled,
            slo,
            memory: LadderMemory::default(),
            pods,
            violation_streak: 0,
            created: Some(start()),
            model_gpu_mib: model,
        })
}

fn runs() -> impl Strategy<Value = (LadderState, Vec<Cycle>)> {
    let any_stats = revision_stats().boxed();
    let busy = prop_oneof![1 => revision_stats(), 3 => busy()].boxed();
    (
        service(),
        prop_oneof![
            prop::collection::vec(cycle(any_stats), 1..80),
            prop::collection::vec(cycle(busy), 1..80),
        ],
    )
}

fn room(l: &LadderConfig, cap: &[Option<GpuAvailability>], i: usize, pods: u32) -> bool {
    let r = &l.rungs[i];
    if !r.is_gpu() {
        return true;
    }
    matches!(cap.get(i), Some(Some(c)) if c.largest_free_on_a_node >= r.amount
        && c.free_total >= r.amount * pods.max(1))
}

fn check_cycle(s: &LadderState, c: &Cycle, d: &LadderDecision, cfg: &PolicyConfig, now: Timestamp) {
    let l = ladder();
    if c.stats.is_none() {
        assert!(
            matches!(d, LadderDecision::Hold(_))
                || matches!(d, LadderDecision::Move(m) if m.kind == LadderMoveKind::Rollback),
            "Prometheus down, yet {d:?}"
        );
    }
    let fits = |i: usize| l.rungs[i].fits(s.model_gpu_mib);
    if let LadderDecision::Move(m) = d {
        assert_eq!(m.from, s.rung);
        match m.kind {
            LadderMoveKind::Promote => {
                assert!(
                    m.to > m.from && fits(m.to) && room(&l, &c.capacity, m.to, s.pods),
                    "{m:?}"
                );
                for i in m.from + 1..m.to {
                    assert!(
                        !fits(i) || !room(&l, &c.capacity, i, s.pods),
                        "promotion passed over rung {i}, which holds the model and has room: {m:?}"
                    );
                }
            }
            LadderMoveKind::Economize => {
                assert!(
                    m.to > m.from && fits(m.to) && room(&l, &c.capacity, m.to, s.pods),
                    "{m:?}"
                );
                assert!((m.from + 1..m.to).all(|i| !fits(i)), "{m:?}");
                assert!(l.rungs[m.to].price_per_second < l.rungs[m.from].price_per_second);
            }
            LadderMoveKind::Demote if m.to != 0 => {
                assert!(m.to < m.from && fits(m.to), "{m:?}");
                assert!((m.to + 1..m.from).all(|i| !fits(i)), "{m:?}");
                assert!(l.rungs[m.to].price_per_second < l.rungs[m.from].price_per_second);
            }
            _ => {}
        }
        let text = m.memory.to_annotation();
        assert_eq!(
            LadderMemory::from_annotation(Some(&text)).expect("parses"),
            m.memory,
            "{text}"
        );
    }
    if let LadderDecision::Remember { memory, .. } = d {
        let text = memory.to_annotation();
        assert_eq!(
            LadderMemory::from_annotation(Some(&text)).expect("parses"),
            *memory
        );
    }
    if s.violation_streak > 0 {
        let forgot = LadderState {
            violation_streak: 0,
            ..s.clone()
        };
        let after = decide_ladder(&forgot, c.stats.as_ref(), &c.capacity, &l, cfg, now).decision;
        if let LadderDecision::Move(m) = &after {
            assert!(
                matches!(d, LadderDecision::Move(k) if k.kind == m.kind && k.to == m.to),
                "with the streak lost: {after:?}; kept: {d:?}"
            );
        }
    }
}

fn run(
    mut s: LadderState,
    cycles: &[Cycle],
    cfg: &PolicyConfig,
) -> Vec<(Timestamp, LadderMoveKind)> {
    let l = ladder();
    let mut now = start();
    let mut moves = Vec::new();
    for c in cycles {
        now = add(now, Duration::from_secs(c.dt_s));
        if c.restart {
            s.violation_streak = 0;
        }
        if s.rollout == Rollout::InProgress && c.settles {
            s.rollout = Rollout::Settled;
        }
        let out = decide_ladder(&s, c.stats.as_ref(), &c.capacity, &l, cfg, now);
        check_cycle(&s, c, &out.decision, cfg, now);
        s.violation_streak = out.violation_streak;
        match out.decision {
            LadderDecision::Move(m) => {
                moves.push((now, m.kind));
                s.rung = m.to;
                s.memory = m.memory;
                s.rollout = Rollout::InProgress;
            }
            LadderDecision::Remember { memory, .. } => s.memory = memory,
            _ => {}
        }
    }
    moves
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn three_rungs_never_over_the_cap_never_twice_within_the_dwell((s, cycles) in runs()) {
        let cfg = PolicyConfig::default();
        let moves = run(s, &cycles, &cfg);
        for (i, (at, _)) in moves.iter().enumerate() {
            let in_hour = moves[i..]
                .iter()
                .take_while(|(t, _)| secs_between(*at, *t) < 3600.0)
                .count();
            prop_assert!(
                in_hour as u32 <= cfg.hysteresis.max_moves_per_hour,
                "{in_hour} moves within an hour from {at}: {moves:?}"
            );
        }
        for w in moves.windows(2) {
            let ((a, _), (b, kind)) = (w[0], w[1]);
            if secs_between(a, b) < cfg.hysteresis.min_dwell.as_secs_f64() {
                prop_assert!(
                    matches!(kind, LadderMoveKind::Revert | LadderMoveKind::Rollback),
                    "{kind:?} {}s after the previous move: {moves:?}",
                    secs_between(a, b)
                );
            }
        }
    }
}
