//! The placement ladder's table tests (issue 16): one row per rule on a three-rung ladder
//! (`cpu` → `gpu-shared` → `gpu`), then multi-cycle runs with noisy latency.

use std::time::Duration;

use gaia_contract::ExecutionMode;
use gaia_policy::clock::{add, secs_between};
use gaia_policy::ladder::*;
use gaia_policy::*;
use jiff::Timestamp;

const SLO: Duration = Duration::from_millis(500);
/// An H200's memory, MiB.
const H200_MIB: f64 = 143_771.0;

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn ladder() -> LadderConfig {
    LadderConfig::cpu_shared_gpu(H200_MIB, 7)
}

const CPU: usize = 0;
const SHARED: usize = 1;
const GPU: usize = 2;

fn free(units: u32) -> Option<GpuAvailability> {
    Some(GpuAvailability {
        largest_free_on_a_node: units,
        free_total: units,
    })
}

/// Every GPU rung has room.
fn room() -> Vec<Option<GpuAvailability>> {
    vec![None, free(7), free(1)]
}

fn on(rung: usize) -> LadderState {
    LadderState {
        mode: ExecutionMode::CpuPreferred,
        rung,
        rollout: Rollout::Settled,
        slo: SLO,
        memory: LadderMemory::default(),
        pods: 1,
        violation_streak: 0,
        created: None,
        model_gpu_mib: None,
    }
}

/// A busy, compute-bound revision with the given short/long p95 (ms) at `rps` req/s.
fn stats(p95_short: f64, p95_long: f64, rps: f64) -> RevisionStats {
    RevisionStats {
        p50_short_ms: Some(p95_short * 0.7),
        p95_short_ms: Some(p95_short),
        p95_long_ms: Some(p95_long),
        rps_short: Some(rps),
        rps_long: Some(rps),
        mean_latency_ms: Some(p95_short * 0.8),
        cpu: Some(CpuUse {
            cores: 1.9,
            capacity: 2.0,
        }),
        pods: 1,
        gpu: None,
    }
}

fn decide_at(
    s: &LadderState,
    st: Option<&RevisionStats>,
    cap: &[Option<GpuAvailability>],
    now: Timestamp,
) -> LadderOutcome {
    decide_ladder(s, st, cap, &ladder(), &PolicyConfig::default(), now)
}

fn moved(out: &LadderOutcome) -> &RungChange {
    match &out.decision {
        LadderDecision::Move(m) => m,
        other => panic!("expected a move, got {other:?}"),
    }
}

fn held(out: &LadderOutcome) -> Hold {
    match &out.decision {
        LadderDecision::Hold(h) => *h,
        other => panic!("expected a hold, got {other:?}"),
    }
}

fn remembered(p95_ms: f64, rps: f64, at: Timestamp) -> gaia_contract::RememberedLatency {
    gaia_contract::RememberedLatency { p95_ms, rps, at }
}

fn with_move(
    mut s: LadderState,
    kind: LadderMoveKind,
    from: &str,
    to: &str,
    at: Timestamp,
) -> LadderState {
    s.memory.last_move = Some(RungMove {
        from: from.into(),
        to: to.into(),
        at,
        kind,
        reason: String::new(),
    });
    s.memory.recent_moves.push(at);
    s
}

// --- configuration -----------------------------------------------------------------------------

#[test]
fn the_default_ladder_is_todays_two_placements() {
    let d = LadderConfig::default();
    assert_eq!(d.rungs.len(), 2);
    assert!(
        !d.is_ladder(),
        "two rungs are decided by decide(), as before"
    );
    assert_eq!(
        d.rungs[0].profile,
        gaia_contract::PlacementProfiles::default().cpu
    );
    assert_eq!(
        d.rungs[1].profile,
        gaia_contract::PlacementProfiles::default().gpu
    );
    d.validate().unwrap();
    let three = ladder();
    three.validate().unwrap();
    assert!(three.is_ladder());
    let shared = &three.rungs[SHARED];
    assert_eq!(shared.resource.as_deref(), Some("nvidia.com/gpu.shared"));
    assert_eq!(
        shared
            .profile
            .limits
            .get("nvidia.com/gpu.shared")
            .map(String::as_str),
        Some("1")
    );
    assert!(!shared.profile.limits.contains_key("nvidia.com/gpu"));
    assert!((shared.price_per_second - PAPER_GPU_PRICE / 7.0).abs() < 1e-12);
    assert!(shared.price_per_second < three.rungs[CPU].price_per_second);
}

#[test]
fn invalid_ladders_name_the_field() {
    let mut l = ladder();
    l.rungs[2].name = "cpu".into();
    assert!(l
        .validate()
        .unwrap_err()
        .to_string()
        .contains("ladder.rungs[2].name"));
    let mut l = ladder();
    l.rungs[0].resource = Some("nvidia.com/gpu".into());
    assert!(l
        .validate()
        .unwrap_err()
        .to_string()
        .contains("ladder.rungs[0].resource"));
    let mut l = ladder();
    l.rungs[1].resource = None;
    assert!(l
        .validate()
        .unwrap_err()
        .to_string()
        .contains("ladder.rungs[1].resource"));
    let mut l = ladder();
    l.rungs[1].price_per_second = f64::NAN;
    assert!(l
        .validate()
        .unwrap_err()
        .to_string()
        .contains("pricePerSecond"));
    let mut l = ladder();
    l.rungs.truncate(1);
    assert!(l.validate().is_err());
}

#[test]
fn a_ladder_reads_from_yaml_like_json() {
    let l: LadderConfig = serde_json::from_value(serde_json::json!({
        "rungs": [
            {"name": "cpu", "pricePerSecond": 0.000038},
            {"name": "mig-1g", "resource": "nvidia.com/mig-1g.18gb", "pricePerSecond": 0.000019,
             "gpuMemoryMib": 18432,
             "profile": {"nodeSelector": {"nvidia.com/gpu.present": "true"},
                         "limits": {"nvidia.com/mig-1g.18gb": "1"}}},
            {"name": "gpu", "resource": "nvidia.com/gpu", "pricePerSecond": 0.000133}
        ]
    }))
    .unwrap();
    l.validate().unwrap();
    assert_eq!(l.rungs[1].amount, 1);
    assert!(
        serde_json::from_value::<LadderConfig>(serde_json::json!({"rungs": [], "x": 1})).is_err()
    );
}

// --- the model's memory, the first rung --------------------------------------------------------

#[test]
fn memory_estimate_is_weights_with_headroom_and_a_context() {
    let tiny = gpu_memory_estimate_mib(1.1e9, Dtype::F16);
    assert!((3_400.0..3_700.0).contains(&tiny), "{tiny}");
    // measured on the H200: ~2,920 MiB a TinyLlama process; the estimate must not be below it
    assert!(tiny >= 2_920.0);
    let resnet = gpu_memory_estimate_mib(11.7e6, Dtype::F32);
    assert!((790.0..1_200.0).contains(&resnet), "{resnet}");
    assert!(gpu_memory_estimate_mib(7e9, Dtype::F16) > gpu_memory_estimate_mib(7e9, Dtype::Int4));
}

#[test]
fn gpu_preferred_starts_on_the_lowest_gpu_rung_that_holds_the_model() {
    let l = ladder();
    let tiny = gpu_memory_estimate_mib(1.1e9, Dtype::F16);
    let (rung, why) = initial_rung(ExecutionMode::GpuPreferred, Some(tiny), &l);
    assert_eq!(rung, SHARED, "{why}");
    assert!(
        why.contains("gpu-shared") && why.contains("lowest GPU rung"),
        "{why}"
    );
    // 30 GiB of weights do not fit a seventh of an H200 (20 GiB): the whole GPU
    let big = gpu_memory_estimate_mib(15e9, Dtype::F16);
    let (rung, why) = initial_rung(ExecutionMode::GpuPreferred, Some(big), &l);
    assert_eq!(rung, GPU, "{why}");
    // more than any rung: the largest, said so
    let (rung, why) = initial_rung(ExecutionMode::GpuPreferred, Some(1e9), &l);
    assert_eq!(rung, GPU);
    assert!(why.contains("more than any rung"), "{why}");
}

#[test]
fn other_modes_start_where_they_did_or_on_the_cheaper_rung() {
    let l = ladder();
    assert_eq!(initial_rung(ExecutionMode::Cpu, None, &l).0, CPU);
    assert_eq!(initial_rung(ExecutionMode::Gpu, None, &l).0, GPU);
    // device-agnostic code: the shared GPU costs less a second than a CPU node
    let (rung, why) = initial_rung(ExecutionMode::CpuPreferred, None, &l);
    assert_eq!(rung, SHARED, "{why}");
    assert!(why.contains("costs less"), "{why}");
    // today's two rungs: a cpu_preferred Service starts on CPU, as before
    assert_eq!(
        initial_rung(ExecutionMode::CpuPreferred, None, &LadderConfig::default()).0,
        CPU
    );
    assert_eq!(
        initial_rung(ExecutionMode::GpuPreferred, None, &LadderConfig::default()).0,
        1
    );
}

// --- rules ---------------------------------------------------------------------------------------

#[test]
fn pinned_rollout_and_missing_data_hold() {
    let mut s = on(CPU);
    s.mode = ExecutionMode::Gpu;
    assert_eq!(
        held(&decide_at(
            &s,
            Some(&stats(5000.0, 5000.0, 10.0)),
            &room(),
            t(0)
        )),
        Hold::Pinned
    );
    let mut s = on(CPU);
    s.rollout = Rollout::InProgress;
    assert_eq!(
        held(&decide_at(
            &s,
            Some(&stats(5000.0, 5000.0, 10.0)),
            &room(),
            t(0)
        )),
        Hold::RolloutInProgress
    );
    assert_eq!(
        held(&decide_at(&on(CPU), None, &room(), t(0))),
        Hold::MetricsUnavailable
    );
    let none = RevisionStats {
        pods: 1,
        ..RevisionStats::default()
    };
    assert_eq!(
        held(&decide_at(&on(CPU), Some(&none), &room(), t(0))),
        Hold::NoLatencyData
    );
}

#[test]
fn a_cpu_meeting_the_slo_moves_up_to_the_cheaper_shared_gpu() {
    let out = decide_at(&on(CPU), Some(&stats(40.0, 40.0, 5.0)), &room(), t(0));
    let m = moved(&out);
    assert_eq!(
        (m.kind, m.from, m.to),
        (LadderMoveKind::Economize, CPU, SHARED)
    );
    assert!(m.note.contains("costs less"), "{}", m.note);
    assert!(
        m.note.contains("cost per 1,000 requests: cpu $"),
        "{}",
        m.note
    );
    assert!(
        m.note.contains("gpu-shared $") && m.note.contains("(measured)"),
        "{}",
        m.note
    );
    // the CPU's latency is remembered, and the move recorded
    assert_eq!(m.memory.rungs["cpu"].p95_ms, 40.0);
    assert_eq!(
        m.memory.last_move.as_ref().unwrap().kind,
        LadderMoveKind::Economize
    );
}

#[test]
fn cost_moves_need_enough_requests_room_and_no_bad_memory() {
    // too few requests to say anything
    assert_eq!(
        held(&decide_at(
            &on(CPU),
            Some(&stats(40.0, 40.0, 0.1)),
            &room(),
            t(0)
        )),
        Hold::WithinSlo
    );
    // the shared GPU is full: stay (a cost move is never worth a warning)
    let full = vec![None, free(0), free(1)];
    assert_eq!(
        held(&decide_at(
            &on(CPU),
            Some(&stats(40.0, 40.0, 5.0)),
            &full,
            t(0)
        )),
        Hold::WithinSlo
    );
    // no capacity figure for the rung at all: nothing is known free
    assert_eq!(
        held(&decide_at(
            &on(CPU),
            Some(&stats(40.0, 40.0, 5.0)),
            &[None],
            t(0)
        )),
        Hold::WithinSlo
    );
    // the shared GPU broke the SLO at this load before: not again
    let mut s = on(CPU);
    s.memory
        .rungs
        .insert("gpu-shared".into(), remembered(900.0, 5.0, t(-7200)));
    assert_eq!(
        held(&decide_at(&s, Some(&stats(40.0, 40.0, 5.0)), &room(), t(0))),
        Hold::WithinSlo
    );
    // ... but at a higher load than now it may have been the load's fault: try
    s.memory
        .rungs
        .insert("gpu-shared".into(), remembered(900.0, 20.0, t(-7200)));
    assert_eq!(
        moved(&decide_at(&s, Some(&stats(40.0, 40.0, 5.0)), &room(), t(0))).to,
        SHARED
    );
    // a model that does not fit the slice: the cheaper rung is not a rung for it
    let mut s = on(CPU);
    s.model_gpu_mib = Some(30_000.0);
    assert_eq!(
        held(&decide_at(&s, Some(&stats(40.0, 40.0, 5.0)), &room(), t(0))),
        Hold::WithinSlo
    );
}

#[test]
fn a_sustained_violation_goes_one_rung_up() {
    let st = stats(1500.0, 1500.0, 10.0); // severe: ≥ 2× SLO
    let first = decide_at(&on(CPU), Some(&st), &room(), t(0));
    assert_eq!(held(&first), Hold::Sustaining);
    let mut s = on(CPU);
    s.violation_streak = first.violation_streak;
    let m = decide_at(&s, Some(&st), &room(), t(10));
    let m = moved(&m);
    assert_eq!(
        (m.kind, m.from, m.to),
        (LadderMoveKind::Promote, CPU, SHARED)
    );
    assert!(
        m.note.contains("severe") && m.note.contains("→ gpu-shared"),
        "{}",
        m.note
    );
    // from the shared rung, one more
    let mut s = on(SHARED);
    s.violation_streak = 1;
    let m = decide_at(&s, Some(&st), &room(), t(10));
    assert_eq!(moved(&m).to, GPU);
    // on the top rung there is nothing above
    let mut s = on(GPU);
    s.violation_streak = 1;
    assert_eq!(
        held(&decide_at(&s, Some(&st), &room(), t(10))),
        Hold::GpuInUse
    );
}

#[test]
fn every_rung_asks_for_compute_bound() {
    // a function that waits (2 s sleeps, no CPU) is promoted neither from the CPU nor from a
    // shared GPU to a whole one (the replay's forced idle wait found the latter)
    let mut st = stats(2400.0, 2400.0, 1.0);
    st.cpu = Some(CpuUse {
        cores: 0.0001,
        capacity: 1.0,
    });
    for rung in [CPU, SHARED] {
        let mut s = on(rung);
        s.violation_streak = 1;
        assert_eq!(
            held(&decide_at(&s, Some(&st), &room(), t(0))),
            Hold::NotComputeBound
        );
    }
    st.cpu = None;
    let mut s = on(SHARED);
    s.violation_streak = 1;
    assert_eq!(
        held(&decide_at(&s, Some(&st), &room(), t(0))),
        Hold::NoCpuData
    );
}

#[test]
fn a_rung_that_cannot_hold_the_model_is_skipped() {
    let mut s = on(CPU);
    s.violation_streak = 1;
    s.model_gpu_mib = Some(gpu_memory_estimate_mib(15e9, Dtype::F16));
    let out = decide_at(&s, Some(&stats(1500.0, 1500.0, 10.0)), &room(), t(0));
    let m = moved(&out);
    assert_eq!((m.from, m.to), (CPU, GPU));
    assert!(
        m.note.contains("gpu-shared cannot hold the model"),
        "{}",
        m.note
    );
}

#[test]
fn a_full_rung_is_passed_over_and_no_room_at_all_says_so() {
    let mut s = on(CPU);
    s.violation_streak = 1;
    let st = stats(1500.0, 1500.0, 10.0);
    let out = decide_at(&s, Some(&st), &[None, free(0), free(1)], t(0));
    let m = moved(&out);
    assert_eq!(m.to, GPU);
    assert!(m.note.contains("gpu-shared has no free unit"), "{}", m.note);
    let out = decide_at(&s, Some(&st), &[None, free(0), free(0)], t(0));
    match &out.decision {
        LadderDecision::NoCapacity { rung, note } => {
            assert_eq!(*rung, SHARED);
            assert!(note.contains("staying on cpu"), "{note}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(out.violation_streak, 2, "the streak is kept for the retry");
    // two pods need two units
    let mut s2 = s.clone();
    s2.pods = 2;
    let out = decide_at(&s2, Some(&st), &[None, free(1), free(1)], t(0));
    assert!(
        matches!(out.decision, LadderDecision::NoCapacity { .. }),
        "{out:?}"
    );
}

#[test]
fn a_promotion_is_verified_against_the_rung_below() {
    let mut s = with_move(
        on(SHARED),
        LadderMoveKind::Promote,
        "cpu",
        "gpu-shared",
        t(0),
    );
    s.memory
        .rungs
        .insert("cpu".into(), remembered(1500.0, 10.0, t(0)));
    // before the settle time
    assert_eq!(
        held(&decide_at(
            &s,
            Some(&stats(300.0, 300.0, 10.0)),
            &room(),
            t(30)
        )),
        Hold::Verifying
    );
    // a good gain is remembered
    let out = decide_at(&s, Some(&stats(300.0, 300.0, 10.0)), &room(), t(100));
    match &out.decision {
        LadderDecision::Remember { memory, note } => {
            assert_eq!(memory.rungs["gpu-shared"].p95_ms, 300.0);
            assert!(memory.verified_at.is_some());
            assert!(note.contains("verified"), "{note}");
        }
        other => panic!("{other:?}"),
    }
    // no gain: back down, back-off starts
    let out = decide_at(&s, Some(&stats(1400.0, 1400.0, 10.0)), &room(), t(100));
    let m = moved(&out);
    assert_eq!((m.kind, m.to), (LadderMoveKind::Revert, CPU));
    assert_eq!(m.memory.useless_promotions, 1);
    assert!(m.memory.promotion_blocked_until.is_some());
    assert!(m.note.contains("did not pay"), "{}", m.note);
    // back on CPU and still violating: the back-off blocks the next move up
    let mut back = on(CPU);
    back.memory = m.memory.clone();
    back.violation_streak = 1;
    let later = add(t(100), Duration::from_secs(400));
    assert_eq!(
        held(&decide_at(
            &back,
            Some(&stats(1500.0, 1500.0, 10.0)),
            &room(),
            later
        )),
        Hold::BackOff
    );
}

#[test]
fn a_cost_move_is_verified_against_the_slo() {
    let mut s = with_move(
        on(SHARED),
        LadderMoveKind::Economize,
        "cpu",
        "gpu-shared",
        t(0),
    );
    s.memory
        .rungs
        .insert("cpu".into(), remembered(40.0, 5.0, t(0)));
    assert!(matches!(
        decide_at(&s, Some(&stats(45.0, 45.0, 5.0)), &room(), t(100)).decision,
        LadderDecision::Remember { .. }
    ));
    let out = decide_at(&s, Some(&stats(700.0, 700.0, 5.0)), &room(), t(100));
    let m = moved(&out);
    assert_eq!((m.kind, m.to), (LadderMoveKind::Revert, CPU));
    assert_eq!(
        m.memory.rungs["gpu-shared"].p95_ms, 700.0,
        "the bad latency is remembered"
    );
    // back on CPU, within the SLO: the shared rung is not tried again at this load
    let mut back = on(CPU);
    back.memory = m.memory.clone();
    let much_later = add(t(100), Duration::from_secs(7 * 3600));
    assert_eq!(
        held(&decide_at(
            &back,
            Some(&stats(40.0, 40.0, 5.0)),
            &room(),
            much_later
        )),
        Hold::WithinSlo
    );
}

#[test]
fn demote_one_rung_when_the_rung_below_met_the_slo_at_this_load() {
    let mut s = with_move(on(GPU), LadderMoveKind::Promote, "gpu-shared", "gpu", t(0));
    s.memory.verified_at = Some(t(100));
    s.memory
        .rungs
        .insert("gpu-shared".into(), remembered(300.0, 8.0, t(-100)));
    let later = t(1000);
    // load now 10 > 8: the remembered figure says nothing about it
    assert_eq!(
        held(&decide_at(
            &s,
            Some(&stats(100.0, 100.0, 10.0)),
            &room(),
            later
        )),
        Hold::GpuInUse
    );
    // load 6 ≤ 8, where the shared rung met the SLO: one rung down (not to the CPU)
    let out = decide_at(&s, Some(&stats(100.0, 100.0, 6.0)), &room(), later);
    let m = moved(&out);
    assert_eq!(
        (m.kind, m.from, m.to),
        (LadderMoveKind::Demote, GPU, SHARED)
    );
    assert!(m.note.contains("met the SLO there"), "{}", m.note);
    // dwell holds a demotion too
    assert_eq!(
        held(&decide_at(
            &s,
            Some(&stats(100.0, 100.0, 6.0)),
            &room(),
            t(200)
        )),
        Hold::Dwell
    );
}

#[test]
fn idle_on_a_gpu_rung_frees_it_after_a_long_window() {
    let idle = RevisionStats {
        rps_short: Some(0.0),
        rps_long: Some(0.0),
        pods: 1,
        ..RevisionStats::default()
    };
    let mut s = on(SHARED);
    s.created = Some(t(0));
    assert_eq!(
        held(&decide_at(&s, Some(&idle), &room(), t(100))),
        Hold::Dwell
    );
    let m = decide_at(&s, Some(&idle), &room(), t(400));
    let m = moved(&m);
    assert_eq!((m.kind, m.to), (LadderMoveKind::Demote, CPU));
    assert!(m.note.contains("idle"), "{}", m.note);
}

#[test]
fn the_cap_and_a_stuck_rollout() {
    let mut s = on(CPU);
    for k in 0..3 {
        s.memory.recent_moves.push(t(k * 60));
    }
    s.memory.last_move = Some(RungMove {
        from: "gpu-shared".into(),
        to: "cpu".into(),
        at: t(180),
        kind: LadderMoveKind::Demote,
        reason: String::new(),
    });
    // 3 moves this hour: a move up needs room for its revert too
    assert_eq!(
        held(&decide_at(
            &s,
            Some(&stats(40.0, 40.0, 5.0)),
            &room(),
            t(900)
        )),
        Hold::MoveCap
    );
    // a revision of ours that never became ready goes back where it came from
    let mut r = with_move(
        on(SHARED),
        LadderMoveKind::Economize,
        "cpu",
        "gpu-shared",
        t(0),
    );
    r.rollout = Rollout::InProgress;
    assert_eq!(
        held(&decide_at(&r, None, &room(), t(100))),
        Hold::RolloutInProgress
    );
    let out = decide_at(&r, None, &room(), t(400));
    let m = moved(&out);
    assert_eq!((m.kind, m.to), (LadderMoveKind::Rollback, CPU));
    assert!(
        m.memory.promotion_blocked_until.is_some(),
        "an upward move that never started backs off"
    );
}

#[test]
fn the_memory_round_trips_through_its_annotation() {
    let out = decide_at(&on(CPU), Some(&stats(40.0, 40.0, 5.0)), &room(), t(0));
    let m = moved(&out);
    let text = m.memory.to_annotation();
    assert_eq!(
        LadderMemory::from_annotation(Some(&text)).unwrap(),
        m.memory
    );
    assert_eq!(
        LadderMemory::from_annotation(None).unwrap(),
        LadderMemory::default()
    );
    assert!(LadderMemory::from_annotation(Some("{not json")).is_err());
}

#[test]
fn cost_per_1000_requests_is_measured_where_known() {
    let l = ladder();
    let mut mem = LadderMemory::default();
    mem.rungs.insert("cpu".into(), remembered(40.0, 5.0, t(0)));
    let c = costs_per_1000(&l, &mem, Some(10.0), 1);
    assert!(c[0].measured && !c[1].measured && !c[2].measured);
    // cpu: 0.000038 $/s at 5 req/s = $0.0076 per 1,000
    assert!((c[0].usd_per_1000.unwrap() - 0.0076).abs() < 1e-9);
    // gpu at the current 10 req/s: 0.000133 / 10 × 1000
    assert!((c[2].usd_per_1000.unwrap() - 0.0133).abs() < 1e-9);
    let line = cost_line(&c);
    assert!(
        line.starts_with("cost per 1,000 requests: cpu $0.0076 (measured), gpu-shared $0."),
        "{line}"
    );
    assert!(cost_line(&costs_per_1000(&l, &LadderMemory::default(), None, 1)).contains("n/a"));
}

// --- runs ------------------------------------------------------------------------------------------

/// A deterministic noise source (no dependency): xorshift.
struct Noise(u64);
impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Runs the ladder for `cycles` of 10 s, feeding every decision back as the controller does.
/// `p95_of(rung, noise)` gives each cycle's short-window p95; the long window is the mean of
/// the last 30 cycles' p95 on the same rung. Returns the moves: (time s, from, to, kind).
fn run(
    start_rung: usize,
    cycles: usize,
    rps: f64,
    mut p95_of: impl FnMut(usize, &mut Noise) -> f64,
) -> Vec<(f64, usize, usize, LadderMoveKind)> {
    let l = ladder();
    let cfg = PolicyConfig::default();
    let mut s = on(start_rung);
    s.created = Some(t(0));
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    let mut history: Vec<f64> = Vec::new();
    let mut moves = Vec::new();
    for k in 0..cycles {
        let now = t(k as i64 * 10);
        let p95 = p95_of(s.rung, &mut noise);
        history.push(p95);
        let recent = &history[history.len().saturating_sub(30)..];
        let long = recent.iter().sum::<f64>() / recent.len() as f64;
        let st = stats(p95, long, rps);
        let out = decide_ladder(&s, Some(&st), &room(), &l, &cfg, now);
        s.violation_streak = out.violation_streak;
        match out.decision {
            LadderDecision::Move(m) => {
                moves.push((secs_between(t(0), now), m.from, m.to, m.kind));
                s.rung = m.to;
                s.memory = m.memory;
                history.clear();
            }
            LadderDecision::Remember { memory, .. } => s.memory = memory,
            _ => {}
        }
    }
    moves
}

/// What "never oscillates" means: at most `cap` moves in any hour; a pair of rungs is crossed
/// back only by a revert of a move that did not pay, a rollback, or an idle demotion; and a
/// move up that is tried again after its revert waits at least twice as long as the last time
/// (the back-off doubles).
fn assert_no_oscillation(moves: &[(f64, usize, usize, LadderMoveKind)], cap: usize) {
    for (i, m) in moves.iter().enumerate() {
        let in_hour = moves[i..].iter().filter(|o| o.0 - m.0 < 3600.0).count();
        assert!(
            in_hour <= cap,
            "more than {cap} moves within an hour: {moves:?}"
        );
    }
    for w in moves.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if a.3.is_upward() && (b.1, b.2) == (a.2, a.1) {
            assert!(
                matches!(b.3, LadderMoveKind::Revert | LadderMoveKind::Rollback),
                "{a:?} undone by {b:?}: {moves:?}"
            );
        }
    }
    let mut waits = std::collections::BTreeMap::<(usize, usize), (f64, f64)>::new();
    for w in moves.windows(2) {
        let (revert, retry) = (&w[0], &w[1]);
        if revert.3 == LadderMoveKind::Revert && retry.3.is_upward() {
            let key = (retry.1, retry.2);
            let wait = retry.0 - revert.0;
            if let Some((_, last)) = waits.get(&key) {
                assert!(
                    wait >= 1.9 * last,
                    "retry after {wait}s, last after {last}s: {moves:?}"
                );
            }
            waits.insert(key, (retry.0, wait));
        }
    }
}

#[test]
fn noisy_latency_around_the_slo_on_three_rungs_never_oscillates() {
    // every rung answers around the SLO (±40 %): nothing is clearly better anywhere
    let moves = run(CPU, 6 * 360, 10.0, |_, n| 500.0 * (0.6 + 0.8 * n.next()));
    assert_no_oscillation(&moves, 4);
    // the first cycles find the shared GPU cheaper; the tries of the whole GPU that do not pay
    // back off: 10 min, 20 min, 40 min, ...
    assert!(moves.len() <= 8, "{moves:?}");
    assert_eq!(moves[0].3, LadderMoveKind::Economize, "{moves:?}");
}

#[test]
fn a_slow_cpu_climbs_to_the_rung_that_meets_the_slo_and_stays() {
    // cpu ~1.5 s, the shared GPU ~700 ms (still over), the whole GPU ~150 ms; noisy
    let moves = run(CPU, 6 * 360, 10.0, |rung, n| {
        let base = [1500.0, 700.0, 150.0][rung];
        base * (0.85 + 0.3 * n.next())
    });
    assert_no_oscillation(&moves, 4);
    let path: Vec<(usize, usize)> = moves.iter().map(|m| (m.1, m.2)).collect();
    assert_eq!(path, vec![(CPU, SHARED), (SHARED, GPU)], "{moves:?}");
    assert!(moves.iter().all(|m| m.3 == LadderMoveKind::Promote));
}

#[test]
fn a_light_function_settles_on_the_cheaper_shared_gpu() {
    // ResNet-like: ~40 ms on CPU, ~12 ms on a seventh of a GPU, 5 req/s
    let moves = run(CPU, 6 * 360, 5.0, |rung, n| {
        [40.0, 12.0, 9.0][rung] * (0.8 + 0.4 * n.next())
    });
    assert_eq!(moves.len(), 1, "{moves:?}");
    assert_eq!(
        (moves[0].1, moves[0].2, moves[0].3),
        (CPU, SHARED, LadderMoveKind::Economize)
    );
}

#[test]
fn a_shared_gpu_that_breaks_the_slo_is_left_once_and_not_retried() {
    // CPU meets the SLO (300 ms); the shared GPU is crowded (900 ms): one try, one revert
    let moves = run(CPU, 6 * 360, 5.0, |rung, n| {
        [300.0, 900.0, 100.0][rung] * (0.9 + 0.2 * n.next())
    });
    assert_no_oscillation(&moves, 4);
    let kinds: Vec<LadderMoveKind> = moves.iter().map(|m| m.3).collect();
    assert_eq!(
        kinds,
        vec![LadderMoveKind::Economize, LadderMoveKind::Revert],
        "{moves:?}"
    );
}
