//! The policy's table tests: one row per rule, then multi-cycle scenarios.

use std::time::Duration;

use gaia_contract::{ExecutionMode, Observed, Placement, PlacementMove, RememberedLatency};
use gaia_policy::clock::secs_between;
use gaia_policy::*;
use jiff::Timestamp;

const SLO: Duration = Duration::from_millis(500);

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn on(placement: Placement) -> ServiceState {
    ServiceState {
        mode: ExecutionMode::CpuPreferred,
        placement,
        rollout: Rollout::Settled,
        slo: SLO,
        observed: Observed::default(),
        gpus_needed: 1,
        gpu_pods: 1,
        violation_streak: 0,
        created: None,
        latency_truncated: false,
        elastic_gpu_pool: None,
    }
}

/// A busy, compute-bound revision with the given short/long p95 (ms) at 10 req/s.
fn busy(p95_short: f64, p95_long: f64) -> RevisionStats {
    RevisionStats {
        p50_short_ms: Some(p95_short * 0.7),
        p95_short_ms: Some(p95_short),
        p95_long_ms: Some(p95_long),
        rps_short: Some(10.0),
        rps_long: Some(10.0),
        mean_latency_ms: Some(p95_short * 0.8),
        cpu: Some(CpuUse {
            cores: 1.9,
            capacity: 2.0,
        }),
        pods: 2,
        gpu: None,
    }
}

/// A 16-thread CPU pod answering 4 slow requests a minute: every quantile at `quantile_ms`
/// (what `histogram_quantile` reads), the true mean at `mean_ms`.
fn slow_on_cpu(quantile_ms: f64, mean_ms: f64) -> RevisionStats {
    RevisionStats {
        p50_short_ms: Some(quantile_ms),
        p95_short_ms: Some(quantile_ms),
        p95_long_ms: Some(quantile_ms),
        mean_latency_ms: Some(mean_ms),
        rps_short: Some(4.0 / 60.0),
        rps_long: Some(4.0 / 60.0),
        cpu: Some(CpuUse {
            cores: 16.0,
            capacity: 1.0,
        }),
        pods: 1,
        gpu: None,
    }
}

/// A pod that has answered nothing yet: zero rates, no latency series.
fn no_requests_yet() -> RevisionStats {
    RevisionStats {
        rps_short: Some(0.0),
        rps_long: Some(0.0),
        cpu: None,
        pods: 1,
        ..RevisionStats::default()
    }
}

fn gpu_preferred_created(at: Timestamp) -> ServiceState {
    ServiceState {
        mode: ExecutionMode::GpuPreferred,
        created: Some(at),
        ..on(Placement::Gpu)
    }
}

const FREE: GpuAvailability = GpuAvailability {
    largest_free_on_a_node: 1,
    free_total: 3,
};
const NONE_FREE: GpuAvailability = GpuAvailability {
    largest_free_on_a_node: 0,
    free_total: 0,
};

fn with_move(mut s: ServiceState, from: Placement, to: Placement, at: Timestamp) -> ServiceState {
    s.observed.last_move = Some(PlacementMove {
        from,
        to,
        at,
        reason: "test".into(),
        kind: None,
    });
    s.observed.recent_moves.push(at);
    s
}

fn promoted_at(at: Timestamp, cpu_p95: f64, cpu_rps: f64) -> ServiceState {
    let mut s = with_move(on(Placement::Gpu), Placement::Cpu, Placement::Gpu, at);
    s.observed.cpu = Some(RememberedLatency {
        p95_ms: cpu_p95,
        rps: cpu_rps,
        at,
    });
    s
}

fn verified(mut s: ServiceState, at: Timestamp, gpu_p95: f64) -> ServiceState {
    s.observed.gpu = Some(RememberedLatency {
        p95_ms: gpu_p95,
        rps: 10.0,
        at,
    });
    s
}

enum Expect {
    Hold(Hold),
    Move(MoveKind),
    Remember,
    NoGpu,
}

fn check(name: &str, out: &Outcome, expect: &Expect) {
    let ok = match (expect, &out.decision) {
        (Expect::Hold(h), Decision::Hold(got)) => h == got,
        (Expect::Move(k), Decision::Move(m)) => *k == m.kind,
        (Expect::Remember, Decision::Remember { .. }) => true,
        (Expect::NoGpu, Decision::NoGpu { .. }) => true,
        _ => false,
    };
    assert!(ok, "{name}: got {:?}", out.decision);
}

#[test]
fn every_rule_in_one_table() {
    let cfg = PolicyConfig::default();
    let now = t(10_000);
    let idle_wait = RevisionStats {
        // slow (2 s sleeps) but the CPU does nothing while it waits
        p50_short_ms: Some(2040.0),
        p95_short_ms: Some(2100.0),
        p95_long_ms: Some(2100.0),
        rps_short: Some(5.0),
        rps_long: Some(5.0),
        mean_latency_ms: Some(2000.0),
        cpu: Some(CpuUse {
            cores: 0.02,
            capacity: 1.0,
        }),
        pods: 10,
        gpu: None,
    };
    let single_threaded_no_limit = RevisionStats {
        // one core busy per request, measured against an 8-core limit: 12% utilisation,
        // but 1 core per request in flight
        cpu: Some(CpuUse {
            cores: 1.0,
            capacity: 8.0,
        }),
        rps_short: Some(1.0),
        mean_latency_ms: Some(1000.0),
        ..busy(1200.0, 1100.0)
    };
    let streak = |mut s: ServiceState, n| {
        s.violation_streak = n;
        s
    };
    let rows: Vec<(
        &str,
        ServiceState,
        Option<RevisionStats>,
        GpuAvailability,
        Expect,
    )> = vec![
        (
            "pinned cpu is never moved",
            ServiceState {
                mode: ExecutionMode::Cpu,
                ..streak(on(Placement::Cpu), 9)
            },
            Some(busy(5000.0, 5000.0)),
            FREE,
            Expect::Hold(Hold::Pinned),
        ),
        (
            "pinned gpu is never moved",
            ServiceState {
                mode: ExecutionMode::Gpu,
                ..on(Placement::Gpu)
            },
            Some(RevisionStats::default()),
            FREE,
            Expect::Hold(Hold::Pinned),
        ),
        (
            "rollout in progress holds",
            ServiceState {
                rollout: Rollout::InProgress,
                ..streak(on(Placement::Cpu), 9)
            },
            Some(busy(5000.0, 5000.0)),
            FREE,
            Expect::Hold(Hold::RolloutInProgress),
        ),
        (
            "pinned traffic holds",
            ServiceState {
                rollout: Rollout::TrafficPinned,
                ..streak(on(Placement::Cpu), 9)
            },
            Some(busy(5000.0, 5000.0)),
            FREE,
            Expect::Hold(Hold::TrafficPinned),
        ),
        (
            "a stuck GPU rollout of ours is rolled back",
            ServiceState {
                rollout: Rollout::InProgress,
                ..with_move(
                    on(Placement::Gpu),
                    Placement::Cpu,
                    Placement::Gpu,
                    t(10_000 - 301),
                )
            },
            None,
            FREE,
            Expect::Move(MoveKind::Rollback),
        ),
        (
            "a young GPU rollout is waited for",
            ServiceState {
                rollout: Rollout::InProgress,
                ..with_move(
                    on(Placement::Gpu),
                    Placement::Cpu,
                    Placement::Gpu,
                    t(10_000 - 200),
                )
            },
            None,
            FREE,
            Expect::Hold(Hold::RolloutInProgress),
        ),
        (
            "prometheus unreachable holds",
            streak(on(Placement::Cpu), 9),
            None,
            FREE,
            Expect::Hold(Hold::MetricsUnavailable),
        ),
        (
            "no latency series holds",
            streak(on(Placement::Cpu), 9),
            Some(RevisionStats {
                p95_short_ms: None,
                ..busy(5000.0, 5000.0)
            }),
            FREE,
            Expect::Hold(Hold::NoLatencyData),
        ),
        (
            "too few requests hold",
            streak(on(Placement::Cpu), 9),
            Some(RevisionStats {
                rps_short: Some(0.2),
                p50_short_ms: Some(100.0),
                ..busy(5000.0, 5000.0)
            }),
            FREE,
            Expect::Hold(Hold::TooFewRequests),
        ),
        (
            "a severe violation still needs a few requests",
            streak(on(Placement::Cpu), 9),
            Some(RevisionStats {
                rps_short: Some(0.03),
                ..busy(5000.0, 5000.0)
            }),
            FREE,
            Expect::Hold(Hold::TooFewRequests),
        ),
        (
            "one cold-start outlier among few requests does not promote",
            streak(on(Placement::Cpu), 9),
            Some(RevisionStats {
                rps_short: Some(0.1),
                p50_short_ms: Some(120.0),
                ..busy(5000.0, 300.0)
            }),
            FREE,
            Expect::Hold(Hold::TooFewRequests),
        ),
        (
            "a slow function with few but all slow requests (TinyLlama) takes the severe path",
            streak(on(Placement::Cpu), 1),
            Some(RevisionStats {
                p50_short_ms: Some(14_000.0),
                p95_short_ms: Some(15_000.0),
                p95_long_ms: Some(15_000.0),
                rps_short: Some(4.0 / 60.0),
                rps_long: Some(4.0 / 60.0),
                mean_latency_ms: Some(14_400.0),
                cpu: Some(CpuUse {
                    cores: 2.0,
                    capacity: 4.0,
                }),
                pods: 1,
                gpu: None,
            }),
            FREE,
            Expect::Move(MoveKind::Promote),
        ),
        (
            "within the SLO (and its noise band) holds",
            streak(on(Placement::Cpu), 9),
            Some(busy(540.0, 700.0)),
            FREE,
            Expect::Hold(Hold::WithinSlo),
        ),
        (
            "no CPU figure holds",
            streak(on(Placement::Cpu), 9),
            Some(RevisionStats {
                cpu: None,
                ..busy(5000.0, 5000.0)
            }),
            FREE,
            Expect::Hold(Hold::NoCpuData),
        ),
        (
            "idle-wait function is never promoted",
            streak(on(Placement::Cpu), 50),
            Some(idle_wait.clone()),
            FREE,
            Expect::Hold(Hold::NotComputeBound),
        ),
        (
            "single-threaded compute under a large limit is compute-bound",
            streak(on(Placement::Cpu), 2),
            Some(single_threaded_no_limit),
            FREE,
            Expect::Move(MoveKind::Promote),
        ),
        (
            "first violating cycle only counts",
            on(Placement::Cpu),
            Some(busy(800.0, 800.0)),
            FREE,
            Expect::Hold(Hold::Sustaining),
        ),
        (
            "sustained violation without long-window confirmation holds",
            streak(on(Placement::Cpu), 5),
            Some(busy(800.0, 450.0)),
            FREE,
            Expect::Hold(Hold::Sustaining),
        ),
        (
            "sustained violation promotes on the third cycle",
            streak(on(Placement::Cpu), 2),
            Some(busy(800.0, 700.0)),
            FREE,
            Expect::Move(MoveKind::Promote),
        ),
        (
            "severe violation promotes on the second cycle, long window or not",
            streak(on(Placement::Cpu), 1),
            Some(busy(1500.0, 300.0)),
            FREE,
            Expect::Move(MoveKind::Promote),
        ),
        (
            "no free GPU says so",
            streak(on(Placement::Cpu), 2),
            Some(busy(800.0, 700.0)),
            NONE_FREE,
            Expect::NoGpu,
        ),
        (
            "min-scale 3 needs 3 free GPUs",
            ServiceState {
                gpu_pods: 3,
                ..streak(on(Placement::Cpu), 2)
            },
            Some(busy(800.0, 700.0)),
            GpuAvailability {
                largest_free_on_a_node: 1,
                free_total: 2,
            },
            Expect::NoGpu,
        ),
        (
            "free GPUs spread too thin for a 2-GPU pod say so",
            ServiceState {
                gpus_needed: 2,
                ..streak(on(Placement::Cpu), 2)
            },
            Some(busy(800.0, 700.0)),
            GpuAvailability {
                largest_free_on_a_node: 1,
                free_total: 4,
            },
            Expect::NoGpu,
        ),
        (
            "dwell after a recent demotion",
            streak(
                with_move(
                    on(Placement::Cpu),
                    Placement::Gpu,
                    Placement::Cpu,
                    t(10_000 - 120),
                ),
                5,
            ),
            Some(busy(1500.0, 1500.0)),
            FREE,
            Expect::Hold(Hold::Dwell),
        ),
        (
            "back-off after a useless promotion",
            {
                let mut s = streak(on(Placement::Cpu), 5);
                s.observed.promotion_blocked_until = Some(t(10_100));
                s
            },
            Some(busy(1500.0, 1500.0)),
            FREE,
            Expect::Hold(Hold::BackOff),
        ),
        (
            "move cap keeps room for a revert",
            {
                let mut s = streak(
                    with_move(
                        on(Placement::Cpu),
                        Placement::Gpu,
                        Placement::Cpu,
                        t(10_000 - 400),
                    ),
                    5,
                );
                s.observed.recent_moves = vec![t(10_000 - 3000), t(10_000 - 2000), t(10_000 - 400)];
                s
            },
            Some(busy(1500.0, 1500.0)),
            FREE,
            Expect::Hold(Hold::MoveCap),
        ),
        (
            "moves older than an hour do not count",
            {
                let mut s = streak(
                    with_move(
                        on(Placement::Cpu),
                        Placement::Gpu,
                        Placement::Cpu,
                        t(10_000 - 400),
                    ),
                    5,
                );
                s.observed.recent_moves = vec![t(10_000 - 4000), t(10_000 - 3700), t(10_000 - 400)];
                s
            },
            Some(busy(1500.0, 1500.0)),
            FREE,
            Expect::Move(MoveKind::Promote),
        ),
        (
            "verification waits for the revision to settle",
            promoted_at(t(10_000 - 60), 1500.0, 10.0),
            Some(busy(300.0, 300.0)),
            FREE,
            Expect::Hold(Hold::Verifying),
        ),
        (
            "verification waits for enough requests",
            promoted_at(t(10_000 - 120), 1500.0, 10.0),
            Some(RevisionStats {
                rps_short: Some(0.04),
                rps_long: Some(1.0),
                ..busy(300.0, 300.0)
            }),
            FREE,
            Expect::Hold(Hold::Verifying),
        ),
        (
            "a useful promotion is remembered",
            promoted_at(t(10_000 - 120), 1500.0, 10.0),
            Some(busy(300.0, 300.0)),
            FREE,
            Expect::Remember,
        ),
        (
            "a useless promotion is reverted at once",
            promoted_at(t(10_000 - 120), 1500.0, 10.0),
            Some(busy(1400.0, 1400.0)),
            FREE,
            Expect::Move(MoveKind::Revert),
        ),
        (
            "an idle GPU service is demoted after dwell",
            verified(
                promoted_at(t(10_000 - 900), 1500.0, 10.0),
                t(10_000 - 700),
                300.0,
            ),
            Some(RevisionStats {
                rps_short: Some(0.0),
                rps_long: Some(0.01),
                p95_short_ms: None,
                ..busy(300.0, 300.0)
            }),
            FREE,
            Expect::Move(MoveKind::Demote),
        ),
        (
            "a p95 at the histogram's ceiling is read as the mean: severe for a 7 s SLO",
            ServiceState {
                slo: Duration::from_secs(7),
                ..streak(on(Placement::Cpu), 1)
            },
            Some(slow_on_cpu(10_000.0, 14_900.0)),
            FREE,
            Expect::Move(MoveKind::Promote),
        ),
        (
            "below the ceiling the p95 stands: 9 s against a 7 s SLO is not severe",
            ServiceState {
                slo: Duration::from_secs(7),
                ..streak(on(Placement::Cpu), 1)
            },
            Some(slow_on_cpu(9_000.0, 14_900.0)),
            FREE,
            Expect::Hold(Hold::TooFewRequests),
        ),
        (
            "a new gpu_preferred Service without requests yet waits (model loading)",
            gpu_preferred_created(t(10_000 - 40)),
            Some(no_requests_yet()),
            FREE,
            Expect::Hold(Hold::Dwell),
        ),
        (
            "a gpu_preferred Service idle since its creation a long window ago is demoted",
            gpu_preferred_created(t(10_000 - 400)),
            Some(no_requests_yet()),
            FREE,
            Expect::Move(MoveKind::Demote),
        ),
        (
            "a young GPU revision busy in the short window is not idle",
            verified(
                promoted_at(t(10_000 - 900), 1500.0, 10.0),
                t(10_000 - 700),
                300.0,
            ),
            Some(RevisionStats {
                rps_short: Some(0.17),
                rps_long: Some(0.019),
                ..busy(7000.0, 7000.0)
            }),
            FREE,
            Expect::Hold(Hold::GpuInUse),
        ),
        (
            "a slow function's clear GPU success is verified on few requests",
            promoted_at(t(10_000 - 120), 15_000.0, 0.07),
            Some(RevisionStats {
                rps_short: Some(0.15),
                ..busy(6000.0, 6000.0)
            }),
            FREE,
            Expect::Remember,
        ),
        (
            "a revert is never decided on few requests",
            promoted_at(t(10_000 - 120), 15_000.0, 0.07),
            Some(RevisionStats {
                rps_short: Some(0.15),
                rps_long: Some(0.15),
                ..busy(14_000.0, 14_000.0)
            }),
            FREE,
            Expect::Hold(Hold::Verifying),
        ),
        (
            "an idle GPU service waits for its dwell",
            verified(
                promoted_at(t(10_000 - 200), 1500.0, 10.0),
                t(10_000 - 100),
                300.0,
            ),
            Some(RevisionStats {
                rps_short: Some(0.0),
                rps_long: Some(0.01),
                ..busy(300.0, 300.0)
            }),
            FREE,
            Expect::Hold(Hold::Dwell),
        ),
        (
            "a GPU service scaled to zero with no series is idle",
            verified(
                promoted_at(t(10_000 - 900), 1500.0, 10.0),
                t(10_000 - 700),
                300.0,
            ),
            Some(RevisionStats::default()),
            FREE,
            Expect::Move(MoveKind::Demote),
        ),
        (
            "no series while pods run is not idle: hold",
            verified(
                promoted_at(t(10_000 - 900), 1500.0, 10.0),
                t(10_000 - 700),
                300.0,
            ),
            Some(RevisionStats {
                pods: 1,
                ..RevisionStats::default()
            }),
            FREE,
            Expect::Hold(Hold::GpuInUse),
        ),
        (
            "gpu_preferred under light load the CPU handled within SLO is demoted",
            {
                let mut s = ServiceState {
                    mode: ExecutionMode::GpuPreferred,
                    ..on(Placement::Gpu)
                };
                s.observed.cpu = Some(RememberedLatency {
                    p95_ms: 300.0,
                    rps: 2.0,
                    at: t(0),
                });
                s
            },
            Some(RevisionStats {
                rps_long: Some(1.5),
                ..busy(100.0, 100.0)
            }),
            FREE,
            Expect::Move(MoveKind::Demote),
        ),
        (
            "gpu_preferred under more load than the CPU handled stays",
            {
                let mut s = ServiceState {
                    mode: ExecutionMode::GpuPreferred,
                    ..on(Placement::Gpu)
                };
                s.observed.cpu = Some(RememberedLatency {
                    p95_ms: 300.0,
                    rps: 2.0,
                    at: t(0),
                });
                s
            },
            Some(busy(100.0, 100.0)),
            FREE,
            Expect::Hold(Hold::GpuInUse),
        ),
        (
            "gpu_preferred that never ran on CPU stays while busy",
            ServiceState {
                mode: ExecutionMode::GpuPreferred,
                ..on(Placement::Gpu)
            },
            Some(busy(100.0, 100.0)),
            FREE,
            Expect::Hold(Hold::GpuInUse),
        ),
        (
            "a GPU that stopped giving a gain at comparable load is left",
            verified(
                promoted_at(t(10_000 - 3000), 1500.0, 10.0),
                t(10_000 - 2900),
                300.0,
            ),
            Some(busy(1450.0, 1450.0)),
            FREE,
            Expect::Move(MoveKind::Revert),
        ),
        (
            "no-gain is not judged at an incomparable load",
            verified(
                promoted_at(t(10_000 - 3000), 1500.0, 2.0),
                t(10_000 - 2900),
                300.0,
            ),
            Some(busy(1450.0, 1450.0)),
            FREE,
            Expect::Hold(Hold::GpuInUse),
        ),
        (
            "back-off does not keep a Service on a GPU",
            {
                let mut s = verified(
                    promoted_at(t(10_000 - 900), 1500.0, 10.0),
                    t(10_000 - 700),
                    300.0,
                );
                s.observed.promotion_blocked_until = Some(t(20_000));
                s
            },
            Some(RevisionStats {
                rps_long: Some(0.0),
                ..RevisionStats::default()
            }),
            FREE,
            Expect::Move(MoveKind::Demote),
        ),
    ];
    for (name, state, stats, gpu, expect) in rows {
        let out = decide(&state, stats.as_ref(), gpu, &cfg, now);
        check(name, &out, &expect);
    }
}

#[test]
fn a_promotion_remembers_cpu_latency_and_explains_itself() {
    let cfg = PolicyConfig::default();
    let mut s = on(Placement::Cpu);
    s.violation_streak = 2;
    let out = decide(&s, Some(&busy(800.0, 700.0)), FREE, &cfg, t(0));
    let Decision::Move(m) = out.decision else {
        panic!("{:?}", out.decision)
    };
    assert_eq!((m.from, m.to), (Placement::Cpu, Placement::Gpu));
    assert_eq!(m.observed.cpu.as_ref().unwrap().p95_ms, 800.0);
    assert_eq!(m.observed.cpu.as_ref().unwrap().rps, 10.0);
    assert_eq!(m.observed.recent_moves, vec![t(0)]);
    for number in [
        "800ms",
        "500ms",
        "3 cycles",
        "10.00 req/s",
        "1.90/2.00 cores",
        "95%",
    ] {
        assert!(m.note.contains(number), "{number} missing from {}", m.note);
    }
    assert_eq!(out.violation_streak, 0);
}

#[test]
fn backoff_doubles_with_each_useless_promotion_and_resets_on_success() {
    let cfg = PolicyConfig::default();
    let mut s = promoted_at(t(0), 1500.0, 10.0);
    let mut blocked = vec![];
    for round in 0..4 {
        let now = t(round * 100_000 + 120);
        s.observed.last_move.as_mut().unwrap().at = t(round * 100_000);
        let out = decide(&s, Some(&busy(1450.0, 1450.0)), FREE, &cfg, now);
        let Decision::Move(m) = out.decision else {
            panic!("{:?}", out.decision)
        };
        assert_eq!(m.kind, MoveKind::Revert);
        let until = m.observed.promotion_blocked_until.unwrap();
        blocked.push(secs_between(now, until));
        s.observed = m.observed;
        s.observed.last_move = Some(PlacementMove {
            from: Placement::Cpu,
            to: Placement::Gpu,
            at: t(0),
            reason: String::new(),
            kind: None,
        });
    }
    assert_eq!(blocked, vec![600.0, 1200.0, 2400.0, 4800.0]);
    // a useful promotion resets the count
    s.observed.last_move.as_mut().unwrap().at = t(500_000);
    let out = decide(&s, Some(&busy(300.0, 300.0)), FREE, &cfg, t(500_120));
    let Decision::Remember { observed, .. } = out.decision else {
        panic!("{:?}", out.decision)
    };
    assert_eq!(observed.useless_promotions, 0);
}

#[test]
fn backoff_is_capped() {
    let cfg = PolicyConfig::default();
    let mut observed = Observed {
        useless_promotions: 40,
        ..Observed::default()
    };
    let until = start_backoff(&mut observed, &cfg, t(0));
    assert_eq!(secs_between(t(0), until), 6.0 * 3600.0);
}

/// Runs `decide` cycle after cycle, feeding back the streak and the memory and applying
/// moves (instantly settled), and returns the decisions.
fn simulate(
    mut s: ServiceState,
    cfg: &PolicyConfig,
    interval: i64,
    stats_at: impl Fn(i64, Placement) -> Option<RevisionStats>,
    cycles: i64,
) -> Vec<(i64, Decision)> {
    let mut out = vec![];
    for c in 0..cycles {
        let now = c * interval;
        let stats = stats_at(now, s.placement);
        let o = decide(&s, stats.as_ref(), FREE, cfg, t(now));
        s.violation_streak = o.violation_streak;
        match &o.decision {
            Decision::Move(m) => {
                s.placement = m.to;
                s.observed = m.observed.clone();
            }
            Decision::Remember { observed, .. } => s.observed = observed.clone(),
            _ => {}
        }
        out.push((now, o.decision));
    }
    out
}

fn moves(decisions: &[(i64, Decision)]) -> Vec<(i64, MoveKind)> {
    decisions
        .iter()
        .filter_map(|(t, d)| match d {
            Decision::Move(m) => Some((*t, m.kind)),
            _ => None,
        })
        .collect()
}

#[test]
fn noisy_latency_around_the_slo_never_flaps() {
    let cfg = PolicyConfig::default();
    // p95 wanders ±25% around the SLO, with single-cycle spikes to 1.3×; long window at SLO.
    let noise = |now: i64| {
        let phase = (now / 10) as f64;
        let wobble = (phase * 1.7).sin() * 0.12 + (phase * 0.31).cos() * 0.08;
        let spike = if (now / 10) % 7 == 3 { 0.3 } else { 0.0 };
        500.0 * (1.0 + wobble + spike)
    };
    let decisions = simulate(
        on(Placement::Cpu),
        &cfg,
        10,
        |now, _| Some(busy(noise(now), 505.0)),
        2000,
    );
    assert_eq!(moves(&decisions), vec![]);
}

#[test]
fn severe_sustained_violation_promotes_within_two_cycles() {
    let cfg = PolicyConfig::default();
    let decisions = simulate(
        on(Placement::Cpu),
        &cfg,
        10,
        |now, placement| match placement {
            Placement::Cpu if now >= 30 => Some(busy(4000.0, 900.0)),
            Placement::Cpu => Some(busy(300.0, 300.0)),
            Placement::Gpu => Some(busy(250.0, 250.0)),
        },
        30,
    );
    assert_eq!(moves(&decisions), vec![(40, MoveKind::Promote)]);
    // verified after the settle time, then stays
    assert!(decisions
        .iter()
        .any(|(t, d)| *t == 130 && matches!(d, Decision::Remember { .. })));
}

#[test]
fn useless_promotion_is_reverted_and_not_retried_during_backoff() {
    let cfg = PolicyConfig::default();
    // Compute-bound on CPU but the GPU is no faster (e.g. the code never uses it).
    let decisions = simulate(
        on(Placement::Cpu),
        &cfg,
        10,
        |_, _| Some(busy(1500.0, 1500.0)),
        360, // one hour
    );
    let m = moves(&decisions);
    // promote at 10 s, revert at settle (90 s later), promote again only after dwell and
    // the 10 min back-off, revert, then the 20 min back-off; never more than the cap.
    assert_eq!(m[0], (10, MoveKind::Promote));
    assert_eq!(m[1], (100, MoveKind::Revert));
    assert_eq!(m[2], (700, MoveKind::Promote));
    assert_eq!(m[3], (790, MoveKind::Revert));
    assert!(m.len() <= 4, "{m:?}");
    assert!(decisions
        .iter()
        .any(|(_, d)| matches!(d, Decision::Hold(Hold::BackOff))));
}

#[test]
fn load_drop_demotes_after_dwell_and_load_return_promotes_again() {
    let cfg = PolicyConfig::default();
    let decisions = simulate(
        on(Placement::Cpu),
        &cfg,
        10,
        |now, placement| {
            let busy_phase = !(600..1500).contains(&now);
            match (placement, busy_phase) {
                (Placement::Cpu, true) => Some(busy(3000.0, 3000.0)),
                (Placement::Gpu, true) => Some(busy(200.0, 200.0)),
                (_, false) => Some(RevisionStats {
                    rps_short: Some(0.0),
                    rps_long: Some(0.0),
                    p95_short_ms: None,
                    p95_long_ms: None,
                    ..busy(200.0, 200.0)
                }),
            }
        },
        240,
    );
    let m = moves(&decisions);
    assert_eq!(
        m,
        vec![
            (10, MoveKind::Promote),
            (600, MoveKind::Demote),
            (1510, MoveKind::Promote)
        ]
    );
}

#[test]
fn defaults_validate() {
    PolicyConfig::default().validate().unwrap();
}

/// Found by `tests/properties.rs`: a demotion during a promotion back-off skipped the
/// moves-per-hour cap (the back-off check returned before the cap was counted).
#[test]
fn a_demotion_during_a_back_off_still_respects_the_cap() {
    let cfg = PolicyConfig::default();
    // On GPU since 10 minutes (dwell over), four moves in the last hour, promotions blocked.
    let mut s = with_move(on(Placement::Gpu), Placement::Cpu, Placement::Gpu, t(0));
    s.observed.recent_moves = vec![t(-1800), t(-1200), t(-600), t(0)];
    s.observed.promotion_blocked_until = Some(t(7200));
    s.observed.cpu = Some(RememberedLatency {
        p95_ms: 400.0,
        rps: 10.0,
        at: t(-1800),
    });
    let s = verified(s, t(100), 390.0);
    // The CPU met the SLO at this load: a demotion is due, but the hour's four moves are used.
    let out = decide(&s, Some(&busy(390.0, 390.0)), FREE, &cfg, t(600));
    check(
        "cap full during back-off",
        &out,
        &Expect::Hold(Hold::MoveCap),
    );
    // An hour after the first of them, it goes.
    let out = decide(&s, Some(&busy(390.0, 390.0)), FREE, &cfg, t(1800));
    check("cap freed", &out, &Expect::Move(MoveKind::Demote));
}

/// Found by `tests/properties.rs`: a rollback to the GPU (the CPU revision of a revert never
/// became ready) was verified as if it were a promotion, reverted at once, rolled back again:
/// a loop past the cap. A rollback is not a promotion, and a rollback waits for the cap too.
#[test]
fn a_rollback_is_not_verified_as_a_promotion_and_waits_for_the_cap() {
    let cfg = PolicyConfig::default();
    let mut s = on(Placement::Gpu);
    s.observed.last_move = Some(PlacementMove {
        from: Placement::Cpu,
        to: Placement::Gpu,
        at: t(0),
        reason: "rolled back".into(),
        kind: Some(MoveKind::Rollback),
    });
    s.observed.recent_moves = vec![t(-500), t(-400), t(0)];
    s.observed.cpu = Some(RememberedLatency {
        p95_ms: 400.0,
        rps: 10.0,
        at: t(-500),
    });
    // 2 minutes later, no gain over the CPU: no verification revert (dwell holds instead).
    let out = decide(&s, Some(&busy(400.0, 400.0)), FREE, &cfg, t(120));
    check("rollback not verified", &out, &Expect::Hold(Hold::Dwell));

    // A rollback itself holds while the hour's moves are used up.
    let mut stuck = with_move(on(Placement::Cpu), Placement::Gpu, Placement::Cpu, t(0));
    stuck.rollout = Rollout::InProgress;
    stuck.observed.recent_moves = vec![t(-900), t(-600), t(-300), t(0)];
    let late = t(cfg.rollout_timeout.as_secs() as i64 + 1);
    let out = decide(&stuck, None, FREE, &cfg, late);
    check("rollback at the cap", &out, &Expect::Hold(Hold::MoveCap));
    stuck.observed.recent_moves = vec![t(0)];
    let out = decide(&stuck, None, FREE, &cfg, late);
    check(
        "rollback with room",
        &out,
        &Expect::Move(MoveKind::Rollback),
    );
}

/// On a Knative release whose queue-proxy records latencies under 1 s as 0 s, a sub-second
/// objective is never judged: no promotion, no verification, no latency-based demotion; an
/// idle GPU is still freed (idleness is a request rate). Objectives of 1 s and more are judged.
#[test]
fn whole_second_latencies_hold_sub_second_objectives() {
    let cfg = PolicyConfig::default();
    let truncated = |mut s: ServiceState| {
        s.latency_truncated = true;
        s
    };
    // On CPU, slow and busy: held, with the streak not counted.
    let cpu = truncated(on(Placement::Cpu));
    let out = decide(&cpu, Some(&busy(2000.0, 2000.0)), FREE, &cfg, t(0));
    check(
        "cpu, 500ms SLO",
        &out,
        &Expect::Hold(Hold::LatencyUnreliable),
    );
    assert_eq!(out.violation_streak, 0);
    // A 2 s objective is judged as usual (sustaining, then promoted).
    let two_s = ServiceState {
        slo: Duration::from_secs(2),
        ..cpu.clone()
    };
    let out = decide(&two_s, Some(&busy(5000.0, 5000.0)), FREE, &cfg, t(0));
    check("cpu, 2s SLO", &out, &Expect::Hold(Hold::Sustaining));
    // On GPU after a promotion: not verified, not demoted on latency, but freed when idle.
    let gpu = truncated(promoted_at(t(0), 2000.0, 10.0));
    let out = decide(&gpu, Some(&busy(0.0, 0.0)), FREE, &cfg, t(600));
    check("gpu busy", &out, &Expect::Hold(Hold::LatencyUnreliable));
    let idle = RevisionStats {
        rps_short: Some(0.0),
        rps_long: Some(0.0),
        ..RevisionStats::default()
    };
    let out = decide(&gpu, Some(&idle), FREE, &cfg, t(900));
    check("gpu idle", &out, &Expect::Move(MoveKind::Demote));
}

/// An elastic GPU pool: no free GPU is no reason to stay; a GPU revision gets the node's join
/// deadline (or rolloutTimeout, the longer) before it is rolled back, and the rollback backs off.
#[test]
fn an_elastic_gpu_pool_promotes_without_a_free_gpu_then_rolls_back_and_backs_off() {
    let cfg = PolicyConfig::default(); // rolloutTimeout 5m, minDwell 5m, backoffBase 10m
    let join = Duration::from_secs(600);
    let streak = |mut s: ServiceState, n: u32| {
        s.violation_streak = n;
        s
    };
    let elastic = |s: ServiceState| ServiceState {
        elastic_gpu_pool: Some(join),
        ..s
    };
    let gpu_rollout = |s: ServiceState, ago: i64| ServiceState {
        rollout: Rollout::InProgress,
        ..with_move(s, Placement::Cpu, Placement::Gpu, t(10_000 - ago))
    };
    let now = t(10_000);
    let rows: Vec<(&str, ServiceState, Option<RevisionStats>, GpuAvailability, Expect)> = vec![
        (
            "elastic, no GPU free: promoted all the same",
            elastic(streak(on(Placement::Cpu), 2)),
            Some(busy(800.0, 700.0)),
            NONE_FREE,
            Expect::Move(MoveKind::Promote),
        ),
        (
            "fixed, no GPU free: says so and stays",
            streak(on(Placement::Cpu), 2),
            Some(busy(800.0, 700.0)),
            NONE_FREE,
            Expect::NoGpu,
        ),
        (
            "elastic, within the SLO: nothing to do",
            elastic(streak(on(Placement::Cpu), 2)),
            Some(busy(300.0, 300.0)),
            NONE_FREE,
            Expect::Hold(Hold::WithinSlo),
        ),
        (
            "elastic, the GPU revision pending past rolloutTimeout but within the join deadline: waited for",
            gpu_rollout(elastic(on(Placement::Gpu)), 301),
            None,
            NONE_FREE,
            Expect::Hold(Hold::RolloutInProgress),
        ),
        (
            "fixed, the same: rolled back",
            gpu_rollout(on(Placement::Gpu), 301),
            None,
            NONE_FREE,
            Expect::Move(MoveKind::Rollback),
        ),
        (
            "elastic, no node joined within the deadline: rolled back",
            gpu_rollout(elastic(on(Placement::Gpu)), 601),
            None,
            NONE_FREE,
            Expect::Move(MoveKind::Rollback),
        ),
        (
            "elastic with a join deadline shorter than rolloutTimeout: rolloutTimeout counts",
            ServiceState {
                elastic_gpu_pool: Some(Duration::from_secs(60)),
                ..gpu_rollout(on(Placement::Gpu), 120)
            },
            None,
            NONE_FREE,
            Expect::Hold(Hold::RolloutInProgress),
        ),
        (
            "elastic, a CPU rollout (demotion) keeps rolloutTimeout",
            ServiceState {
                rollout: Rollout::InProgress,
                ..with_move(
                    elastic(on(Placement::Cpu)),
                    Placement::Gpu,
                    Placement::Cpu,
                    t(10_000 - 301),
                )
            },
            None,
            NONE_FREE,
            Expect::Move(MoveKind::Rollback),
        ),
    ];
    for (name, s, stats, gpu, expect) in rows {
        let out = decide(&s, stats.as_ref(), gpu, &cfg, now);
        check(name, &out, &expect);
    }

    // the notes say why
    let out = decide(
        &elastic(streak(on(Placement::Cpu), 2)),
        Some(&busy(800.0, 700.0)),
        NONE_FREE,
        &cfg,
        now,
    );
    let Decision::Move(m) = out.decision else {
        panic!("{:?}", out.decision)
    };
    assert!(
        m.note.contains("no GPU free (0 free, at most 0 on one node), the GPU pool grows on demand: a node has 10m to join"),
        "{}",
        m.note
    );
    let out = decide(
        &elastic(streak(on(Placement::Cpu), 2)),
        Some(&busy(800.0, 700.0)),
        FREE,
        &cfg,
        now,
    );
    let Decision::Move(m) = out.decision else {
        panic!("{:?}", out.decision)
    };
    assert!(m.note.ends_with("GPU free → gpu"), "{}", m.note);

    // the rollback backs off: once the dwell is over, promotions wait for the back-off
    let out = decide(
        &gpu_rollout(elastic(on(Placement::Gpu)), 601),
        None,
        NONE_FREE,
        &cfg,
        now,
    );
    let Decision::Move(rollback) = out.decision else {
        panic!("{:?}", out.decision)
    };
    assert!(
        rollback.note.contains("nodeJoinDeadline"),
        "{}",
        rollback.note
    );
    let back = ServiceState {
        observed: rollback.observed.clone(),
        ..elastic(streak(on(Placement::Cpu), 2))
    };
    for (after, expect) in [
        (60, Hold::Dwell),
        (400, Hold::BackOff),
        (590, Hold::BackOff),
    ] {
        let out = decide(
            &back,
            Some(&busy(800.0, 700.0)),
            NONE_FREE,
            &cfg,
            t(10_000 + after),
        );
        check(
            &format!("{after} s after the rollback"),
            &out,
            &Expect::Hold(expect),
        );
    }
    let out = decide(
        &back,
        Some(&busy(800.0, 700.0)),
        NONE_FREE,
        &cfg,
        t(10_000 + 700),
    );
    check("after the back-off", &out, &Expect::Move(MoveKind::Promote));
}

/// The DCGM rule (`gpu_idles` in decide.rs): a GPU whose mean utilisation over the long window
/// is under `gpuIdleUtilization`, in place that whole window, with a remembered CPU p95 within
/// the SLO at a load at least the short window's, is demoted; missing DCGM data never moves
/// anything (the other rules decide as without it).
#[test]
fn dcgm_an_idle_gpu_is_demoted_on_the_short_windows_load_and_missing_data_changes_nothing() {
    let now = t(3600);
    // a gpu_preferred Service on the GPU for an hour, remembering 300 ms on CPU at 2 req/s
    let service = |cpu_p95: f64| {
        let mut s = gpu_preferred_created(t(0));
        s.observed.cpu = Some(RememberedLatency {
            p95_ms: cpu_p95,
            rps: 2.0,
            at: t(0),
        });
        s
    };
    // the load dropped a moment ago: 1 req/s in the short window, still 3 in the long one
    let after_drop = |util: Option<f64>| RevisionStats {
        rps_short: Some(1.0),
        rps_long: Some(3.0),
        gpu: util.map(|u| GpuUse {
            utilization_pct: u,
            fb_used_mib: Some(1200.0),
            fb_free_mib: Some(80359.0),
        }),
        ..busy(60.0, 60.0)
    };
    let cfg = PolicyConfig::default();
    let rows: Vec<(&str, ServiceState, RevisionStats, Expect)> = vec![
        (
            "idle GPU, CPU met the SLO at a higher load: demoted now",
            service(300.0),
            after_drop(Some(3.0)),
            Expect::Move(MoveKind::Demote),
        ),
        (
            "a busy GPU is in use (the light-load rule waits for the long window)",
            service(300.0),
            after_drop(Some(85.0)),
            Expect::Hold(Hold::GpuInUse),
        ),
        (
            "at the threshold is not under it",
            service(300.0),
            after_drop(Some(10.0)),
            Expect::Hold(Hold::GpuInUse),
        ),
        (
            "no DCGM data: the existing rules alone",
            service(300.0),
            after_drop(None),
            Expect::Hold(Hold::GpuInUse),
        ),
        (
            "a NaN utilisation is no data",
            service(300.0),
            after_drop(Some(f64::NAN)),
            Expect::Hold(Hold::GpuInUse),
        ),
        (
            "the CPU did not meet the SLO: the GPU stays, idle or not",
            service(900.0),
            after_drop(Some(3.0)),
            Expect::Hold(Hold::GpuInUse),
        ),
        (
            "no CPU memory: nothing says the CPU would do",
            gpu_preferred_created(t(0)),
            after_drop(Some(3.0)),
            Expect::Hold(Hold::GpuInUse),
        ),
        (
            "more load now than the CPU handled: stays",
            service(300.0),
            RevisionStats {
                rps_short: Some(2.5),
                ..after_drop(Some(3.0))
            },
            Expect::Hold(Hold::GpuInUse),
        ),
        (
            "no short-window rate: no data",
            service(300.0),
            RevisionStats {
                rps_short: None,
                p95_short_ms: None,
                ..after_drop(Some(3.0))
            },
            Expect::Hold(Hold::GpuInUse),
        ),
        (
            "in place for less than the long window: the mean covers too little",
            {
                let mut s = service(300.0);
                s.created = Some(t(3600 - 100));
                s
            },
            after_drop(Some(3.0)),
            Expect::Hold(Hold::GpuInUse),
        ),
    ];
    for (name, s, st, expect) in &rows {
        let out = decide(s, Some(st), FREE, &cfg, now);
        check(name, &out, expect);
    }
    // the note carries the numbers
    let out = decide(
        &service(300.0),
        Some(&after_drop(Some(3.0))),
        FREE,
        &cfg,
        now,
    );
    let Decision::Move(m) = out.decision else {
        panic!("{:?}", out.decision)
    };
    assert_eq!(
        m.note,
        "GPU idles: GPU 3% busy over 5m, 1200/81559 MiB used < 10%; load 1.00 req/s over 1m \
         (3.00 req/s over 5m) ≤ 2.00 req/s at which CPU p95 was 300ms ≤ SLO 500ms → cpu, the \
         GPU is freed"
    );
    // the same Service without DCGM: the light-load rule demotes only once the long window's
    // rate is down to the remembered load
    let later = RevisionStats {
        rps_long: Some(2.0),
        ..after_drop(None)
    };
    check(
        "light load, long window down",
        &decide(&service(300.0), Some(&later), FREE, &cfg, now),
        &Expect::Move(MoveKind::Demote),
    );
    // a threshold of 0 turns the rule off
    let off = PolicyConfig {
        demote: DemoteConfig {
            gpu_idle_utilization: 0.0,
            ..cfg.demote.clone()
        },
        ..cfg.clone()
    };
    check(
        "threshold 0",
        &decide(
            &service(300.0),
            Some(&after_drop(Some(0.0))),
            FREE,
            &off,
            now,
        ),
        &Expect::Hold(Hold::GpuInUse),
    );
}
