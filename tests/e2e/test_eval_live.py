"""The evaluation's live-cluster mode (tests/eval/live.py), short scenarios, on the suite's cluster.

Two of the paper's scenarios (idle wait and ResNet-18, `--short` counts) run as static CPU,
static GPU, Gaia auto (and auto with `cpu_preferred` forced) through the real webhook,
autoscaler, Knative and Prometheus, with the emulated data plane. The results must say what a
user of the evaluation relies on: every request answered, node-seconds on the right pools, the
idle function never on a GPU, ResNet-18 kept on CPU, the autoscaler's cycles recorded, and the
report's live section and plots written. The driver must clean up after itself.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.eval import live
from tests.harness.cluster_env import Cluster
from tests.harness.kubectl import Kubectl
from tests.harness.paths import REPO
from tests.harness.proc import run


def test_live_eval_short(cluster: Cluster, kubectl: Kubectl):
    out = Path(tempfile.mkdtemp(prefix="gaia-eval-live-e2e-"))
    run(["cargo", "build", "--quiet", "--locked", "--bin", "gaia-webhook", "--bin", "gaia-autoscaler"],
        timeout=1800)
    results_path = out / "live-results.json"
    proc = subprocess.run([sys.executable, "-m", "tests.eval.live", "--scenarios",
                           "idle,resnet18", "--short", "--debug-build", "--results", str(results_path),
                           "--out", str(out / "raw"), "--timeout", "400",
                           # short runs (~40 s): scrapes every 2 s (the cluster's own) give the
                           # autoscaler data for several cycles of each run (15 s: one, or none)
                           "--scrape-interval", "2s"],
                          env=cluster.process_env(), capture_output=True, text=True, timeout=900,
                          cwd=REPO)
    output = proc.stdout + proc.stderr
    print(output[-3000:])
    assert proc.returncode == 0, output[-6000:]
    res = json.loads(results_path.read_text())
    assert res["schema"] == "gaia-eval-live/1"
    runs = {(s["name"], r["role"]): r for s in res["scenarios"] for r in s["runs"]}
    assert set(runs) == {("idle", "static_cpu"), ("idle", "static_gpu"), ("idle", "auto"),
                         ("idle", "auto_forced"), ("resnet18", "static_cpu"),
                         ("resnet18", "static_gpu"), ("resnet18", "auto")}
    for key, r in runs.items():
        m = r["summary"]
        assert m["complete"] and m["requests"] == (40 if key[0] == "idle" else 150), (key, m)
        assert r["decisions"], f"{key}: no autoscaler cycle recorded"
    # the modes the webhook gave
    assert runs[("idle", "auto")]["mode"] == "cpu" and runs[("idle", "auto")]["mode_source"] == "classifier"
    assert runs[("resnet18", "auto")]["mode"] == "cpu_preferred"
    assert runs[("idle", "static_gpu")]["mode"] == "gpu"
    # node-seconds on the pool each mode asks for, over the whole run
    for name in ("idle", "resnet18"):
        cpu, gpu = runs[(name, "static_cpu")]["summary"], runs[(name, "static_gpu")]["summary"]
        assert cpu["gpu_node_s"] == 0 and cpu["cpu_node_s"] >= 0.9 * cpu["total_s"] > 20, cpu
        assert gpu["cpu_node_s"] == 0 and gpu["gpu_node_s"] >= 0.9 * gpu["total_s"] > 20, gpu
        assert gpu["cost_usd"] > 3 * cpu["cost_usd"]
        assert all(q["placement"] == "gpu" for q in runs[(name, "static_gpu")]["requests"])
    # idle wait: never on a GPU, whatever the SLO says (p95 2 s against 1 s)
    for role in ("auto", "auto_forced"):
        m = runs[("idle", role)]["summary"]
        assert m["gpu_node_s"] == 0 and m["moves"] == 0 and m["p95_latency_s"] > 1.0, m
    holds = {d["outcome"] for d in runs[("idle", "auto_forced")]["decisions"]}
    assert "hold:not_compute_bound" in holds, holds
    assert holds <= {"hold:rollout_in_progress", "hold:no_latency_data", "hold:too_few_requests",
                     "hold:not_compute_bound"}, holds
    assert {d["outcome"] for d in runs[("idle", "auto")]["decisions"]} == {"hold:pinned"}
    # ResNet-18 within its SLO on CPU: stays there
    m = runs[("resnet18", "auto")]["summary"]
    assert m["gpu_node_s"] == 0 and m["moves"] == 0 and m["p95_latency_s"] < 1.0, m
    holds = {d["outcome"] for d in runs[("resnet18", "auto")]["decisions"]}
    assert "hold:within_slo" in holds, holds
    assert holds <= {"hold:rollout_in_progress", "hold:no_latency_data", "hold:too_few_requests",
                     "hold:within_slo"}, holds

    # the report's live section
    doc = out / "evaluation.md"
    run([sys.executable, "-m", "tests.eval.report",
         str(REPO / "docs" / "eval" / "virtual-results.json"), "--live", str(results_path),
         "--doc", str(doc), "--plots", str(out / "plots")], timeout=300)
    text = doc.read_text()
    assert "## Live cluster runs" in text and "### Targets on the live runs" in text
    assert "idle: Gaia auto (cpu)" in text
    assert (out / "plots" / "live-idle.png").stat().st_size > 10_000

    # it cleaned up after itself
    names = kubectl("get", "nodes", "-o", "name").stdout
    assert "eval-gpu-node" not in names
    assert kubectl("get", "mutatingwebhookconfiguration", "gaia-webhook", check=False).returncode != 0
    left = kubectl("get", "pods", "-A", "-o", "jsonpath={.items[*].metadata.namespace}").stdout.split()
    assert not [ns for ns in left if ns.startswith("gaia-eval-")]
    assert not (cluster.prom_targets_dir / "gaia-eval-live.json").exists()


def test_live_summaries():
    assert live.union([(0, 2), (1, 3), (5, 6)]) == 4
    assert live.union([]) == 0
    assert live.nearest_rank([3.0, 1.0, 2.0], 95) == 3.0
    assert live.nearest_rank(list(range(1, 101)), 95) == 95
    assert live.nearest_rank([], 95) is None
    revisions = [{"placement": "cpu"}]
    moves = [{"t_s": 50.0, "to": "gpu"}]
    cycles = [{"t": 100 + t, "outcome": o} for t, o in
              [(10, "hold:no_latency_data"), (20, "hold:no_latency_data"), (30, "hold:sustaining"),
               (50, "promote"), (60, "hold:verifying"), (70, "hold:verifying")]]
    got = live.spans(cycles, 100.0, revisions, moves)
    assert [(s["outcome"], s["cycles"], s["placement"]) for s in got] == [
        ("hold:no_latency_data", 2, "cpu"), ("hold:sustaining", 1, "cpu"), ("promote", 1, "cpu"),
        ("hold:verifying", 2, "gpu")]


# --- the ladder pass's harness pieces (no cluster needed) -----------------------------------

LADDER_RUNGS = [
    {"name": "cpu", "pricePerSecond": 0.000038, "profile": {"limits": {}}},
    {"name": "gpu-shared", "resource": "nvidia.com/gpu.shared", "pricePerSecond": 0.000019,
     "profile": {"limits": {"nvidia.com/gpu.shared": "1"}}},
    {"name": "gpu", "resource": "nvidia.com/gpu", "pricePerSecond": 0.000133,
     "profile": {"limits": {"nvidia.com/gpu": "1"}}},
]


def _pod(limits: dict) -> dict:
    return {"spec": {"containers": [
        {"name": "user-container", "resources": {"requests": {"cpu": "10m"}, "limits": limits}},
        {"name": "queue-proxy", "resources": {"requests": {"cpu": "25m"}}}]}}


def test_a_pod_on_the_shared_rung_is_served_and_charged_as_a_slice():
    import random

    from tests.harness import emulator as emu
    from tests.harness.gpu_profile import Profiles

    shared = _pod({"cpu": "1", "nvidia.com/gpu.shared": "1"})
    whole = _pod({"cpu": "1", "nvidia.com/gpu": "1"})
    cpu = _pod({"cpu": "1"})
    # the emulator: a slice is a slice whatever the node's pool label; a whole GPU needs the pool
    assert emu.placement_of(shared, "gpu-shared") == "gpu_shared"
    assert emu.placement_of(shared, "gpu") == "gpu_shared"
    assert emu.placement_of(whole, "gpu") == "gpu"
    assert emu.placement_of(cpu, "cpu") == "cpu"
    assert emu.placement_of(_pod({"nvidia.com/gpu.shared": "0"}), "cpu") == "cpu"
    # the live eval's accounting: the rung whose resource the pod asks for
    assert live.rung_of_pod(shared, "gpu-shared", LADDER_RUNGS) == "gpu-shared"
    assert live.rung_of_pod(whole, "gpu", LADDER_RUNGS) == "gpu"
    assert live.rung_of_pod(cpu, "cpu", LADDER_RUNGS) == "cpu"

    # the latencies: the whole GPU's, slowed by the factor measured with 7 processes on one GPU
    prof = Profiles(emu.DEFAULT_PROFILE, "cpu16")
    factors = {w: v["slowdown_7_processes"]["factor"]
               for w, v in json.loads(emu.DEFAULT_PROFILE.read_text())["gpu_shared"]["workloads"].items()}
    for workload, request in (("image_classification", {}), ("matmul", {"size": 10000}),
                              ("text_generation", {"new_tokens": 256})):
        a, b = random.Random(7), random.Random(7)
        for _ in range(20):
            on_slice, busy = prof.sample(workload, "gpu_shared", request, a)
            alone, busy_alone = prof.sample(workload, "gpu", request, b)
            assert on_slice == pytest.approx(alone * factors[workload]) and busy == busy_alone
        assert factors[workload] > 1.0
        assert prof.ready_s(workload, "gpu_shared") == prof.ready_s(workload, "gpu")
    # the idle wait uses no GPU: not slowed
    assert prof.sample("idle_wait", "gpu_shared", {"seconds": 2}, random.Random(1))[0] == \
        pytest.approx(prof.sample("idle_wait", "gpu", {"seconds": 2}, random.Random(1))[0])
    assert prof.key("gpu_shared") == "gpu_shared"


def test_a_profile_without_a_shared_section_cannot_serve_a_slice(tmp_path):
    import random

    from tests.harness import emulator as emu
    from tests.harness.gpu_profile import Profiles

    data = json.loads(emu.DEFAULT_PROFILE.read_text())
    data.pop("gpu_shared")
    data["schema"] = "gaia-calibration/1"
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    prof = Profiles(path)
    assert prof.sample("image_classification", "gpu", {}, random.Random(1))[0] > 0
    with pytest.raises(ValueError, match="no gpu_shared section"):
        prof.sample("image_classification", "gpu_shared", {}, random.Random(1))
    with pytest.raises(ValueError, match="no gpu_shared section"):
        prof.ready_s("image_classification", "gpu_shared")
