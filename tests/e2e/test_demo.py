"""The live demo (hack/demo.sh) in its short mode, on the cluster the suite already runs.

`hack/demo.sh --short --use-running-cluster` installs Gaia from manifests/, deploys the four
example functions with `kn service create`, drives the paper's load through the workload
emulator and prints the decisions; here it must end by itself within a few minutes, promote at
least one function to a GPU node, and never promote the idle-wait function. It cleans up after
itself (namespace, Gaia install, its processes), which the test checks too.
"""
from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.harness import emulator as emu
from tests.harness.cluster_env import Cluster
from tests.harness.kubectl import Kubectl
from tests.harness.paths import REPO
from tests.harness.proc import run


def test_demo_short_mode_promotes_a_function_and_not_the_idle_one(cluster: Cluster, kubectl: Kubectl):
    out = Path(tempfile.mkdtemp(prefix="gaia-demo-e2e-"))
    # build first (as the other e2e tests do), so that the demo's own build is a no-op
    run(["cargo", "build", "--quiet", "--locked", "--bin", "gaia-webhook", "--bin", "gaia-autoscaler"],
        timeout=1800)
    started = time.monotonic()
    proc = subprocess.run([str(REPO / "hack" / "demo.sh"), "--short", "--use-running-cluster",
                           "--debug-build", "--out", str(out)],
                          env=cluster.process_env(), capture_output=True, text=True, timeout=600)
    took = time.monotonic() - started
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    summary = json.loads((out / "summary.json").read_text())
    fns = summary["functions"]
    print(output[-4000:])
    print(f"demo took {took:.0f} s")

    promoted = [n for n, f in fns.items() if f["promotions"] >= 1]
    assert promoted, output[-6000:]
    assert any(fns[n]["requests_gpu"] > 0 for n in promoted), fns
    assert fns["idle-wait"]["promotions"] == 0 and fns["idle-wait"]["requests_gpu"] == 0, fns["idle-wait"]
    assert fns["idle-wait"]["mode"] == "cpu", fns["idle-wait"]
    assert fns["matmul"]["mode"] == "cpu_preferred", fns["matmul"]
    assert "PROMOTED to GPU" in output and "p95" in output
    assert (out / "demo.png").stat().st_size > 10_000
    # it cleaned up after itself
    assert kubectl("get", "namespace", "gaia-demo", check=False).returncode != 0 or \
        not kubectl("get", "pods", "-n", "gaia-demo", "-o", "name").stdout.strip()
    assert kubectl("get", "mutatingwebhookconfiguration", "gaia-webhook", check=False).returncode != 0
    assert not any(p.name.startswith("gaia-demo") for p in cluster.prom_targets_dir.iterdir())
    # the demo itself (install, deploy, load, summary, clean-up), not cargo waiting for a lock
    assert summary["driver_seconds"] < 240, f"the short demo took {summary['driver_seconds']} s"


# --- the harness pieces on their own (no cluster needed) ---------------------------------

def test_emulator_profiles_follow_the_calibration():
    import random
    prof = emu.Profiles(emu.DEFAULT_PROFILE, "cpu16")
    rng = random.Random(0)

    def median(workload, placement, request):
        xs = sorted(prof.sample(workload, placement, request, rng)[0] for _ in range(51))
        return xs[25]
    s = prof.summary
    assert abs(median("matmul", "cpu", {"size": 20000}) / s["matmul"]["cpu16"]["p50_n20000_s"] - 1) < 0.3
    assert abs(median("matmul", "gpu", {"size": 20000}) / s["matmul"]["gpu"]["p50_n20000_s"] - 1) < 0.3
    # a size between measured CPU sizes comes from the fit, between its neighbours
    assert median("matmul", "cpu", {"size": 4000}) < median("matmul", "cpu", {"size": 7000}) \
        < median("matmul", "cpu", {"size": 8000})
    assert abs(median("text_generation", "gpu", {"new_tokens": 256}) - s["text_generation"]["gpu"]["p50_s"]) < 1.5
    assert median("text_generation", "cpu", {}) > 2 * median("text_generation", "gpu", {})
    assert median("idle_wait", "cpu", {"seconds": 2}) == pytest.approx(2.0, abs=0.01)
    # CPU evidence: matmul keeps cores busy, idle-wait does not
    assert prof.sample("matmul", "cpu", {"size": 8000}, rng)[1] > 4
    assert prof.sample("idle_wait", "cpu", {}, rng)[1] < 0.01
    assert prof.ready_s("text_generation", "gpu") > 20
    assert emu.Profiles(emu.DEFAULT_PROFILE, "cpu2").sample("matmul", "cpu", {"size": 4000}, rng)[0] > \
        median("matmul", "cpu", {"size": 4000})


def test_emulator_exports_queue_proxy_series():
    import argparse
    args = argparse.Namespace(profile=emu.DEFAULT_PROFILE, cpu_placement="cpu16", workload=[], seed=1,
                              kubectl="kubectl", kubeconfig=None, namespace="ns", targets_file=None,
                              listen="127.0.0.1:0", advertise=None, poll=1.0,
                              scrape_interval=None)
    e = emu.Emulator(args)
    pod = emu.Pod("ns", "fn-00001-deployment-x", "fn-00001", "fn", "fn", "cpu-node-1", "cpu", 0.0, "matmul")
    e.pods[f"ns/{pod.name}"] = pod
    for lat in (0.003, 0.3, 3.0, 30.0):
        pod.observe(lat)
    text = e.pod_metrics("ns", pod.name)
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    b = 'kn_serving_invocation_duration_seconds_bucket{http_response_status_code="200",le="%s"}'
    assert float(lines[b % "0.005"]) == 1 and float(lines[b % "0.5"]) == 2
    assert float(lines[b % "5"]) == 3 and float(lines[b % "+Inf"]) == 4
    assert float(lines['kn_serving_invocation_duration_seconds_count{http_response_status_code="200"}']) == 4
    assert any(k.startswith("target_info{") and 'kn_revision_name="fn-00001"' in k
               and 'k8s_namespace_name="ns"' in k for k in lines)
    assert "kn_serving_queue_depth" in lines
    pod.busy_cores = 8.0
    pod.last -= 2.0
    cad = e.cadvisor_metrics()
    user = [ln for ln in cad.splitlines() if 'container="user-container"' in ln][0]
    assert float(user.rsplit(" ", 1)[1]) >= 16.0
    assert e.pod_metrics("other", pod.name) is None
