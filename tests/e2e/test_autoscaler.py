"""gaia-autoscaler end to end on the local cluster (hack/cluster.sh).

A ``cpu_preferred`` Knative Service whose CPU revision is slow and busy is promoted: a new
Revision whose pod the real kube-scheduler puts on a GPU node; once its load drops it is demoted
back to a CPU node; an Event explains each move.

The pods are KWOK fakes, so their request and CPU metrics come from the test harness's stand-in
(tests/harness/knative_metrics_standin.py), scraped by the cluster's Prometheus like
queue-proxies and cAdvisor would be. The autoscaler and the stand-in run inside the cluster's
network namespace and only talk to addresses local to it.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import pytest

from tests.harness.autoscaler_run import (MetricsStandin, annotations, autoscaler_binary,
                                          autoscaler_config, event, ksvc_manifest, metric,
                                          netns_proc, ready_revision, revision_pod, write_config)
from tests.harness.cluster_env import Cluster
from tests.harness.kubectl import Kubectl
from tests.harness.proc import run
from tests.harness.wait import wait_until

STANDIN_PORT = 19517
METRICS_PORT = 18097


@pytest.fixture
def autoscaler_bin() -> Path:
    return autoscaler_binary()


def test_slow_busy_function_is_promoted_to_a_gpu_node_and_demoted_when_idle(
        cluster: Cluster, kubectl: Kubectl, namespace: str, autoscaler_bin: Path):
    name = "matmul"
    workdir = Path(tempfile.mkdtemp(prefix="gaia-autoscaler-e2e-"))
    pools = kubectl.nodes_by_pool()
    cpu_nodes, gpu_nodes = pools.get("cpu", set()), pools.get("gpu", set())
    assert cpu_nodes and gpu_nodes, pools

    standin = autoscaler = None
    try:
        standin = MetricsStandin(cluster, workdir, STANDIN_PORT, namespace)
        standin.scrape(namespace, name)

        kubectl.apply(ksvc_manifest(namespace, name))
        r1 = wait_until(lambda: ready_revision(kubectl, namespace, name, set()),
                        desc="first revision ready")
        pod1 = wait_until(lambda: revision_pod(kubectl, namespace, r1), desc=f"pod of {r1}")
        assert pod1["spec"]["nodeName"] in cpu_nodes, pod1["spec"]["nodeName"]
        # slow (3 s a request, SLO 500 ms) and CPU-bound (0.95 of its 1-core limit)
        standin.set({f"{namespace}/{r1}": {"rps": 5, "latency_ms": 3000, "cpu_cores": 0.95,
                                            "pods": [pod1["metadata"]["name"]]}})

        config = write_config(workdir, "autoscaler",
                              autoscaler_config(cluster, namespace, METRICS_PORT))
        autoscaler = netns_proc(cluster, "gaia-autoscaler",
                                [str(autoscaler_bin), "--config", str(config)], workdir)
        started = time.monotonic()

        def placement(want: str):
            assert autoscaler.alive(), f"autoscaler exited:\n{autoscaler.tail(6000)}"
            return annotations(kubectl, namespace, name).get("gaia.dev/desired-placement") == want

        wait_until(lambda: placement("gpu"), timeout=120, desc="promotion to gpu", interval=1)
        promoted_after = time.monotonic() - started
        ev = wait_until(lambda: event(kubectl, namespace, name, "PromotedToGpu"), timeout=30,
                        desc="PromotedToGpu Event")
        assert "p95" in ev["message"] and "SLO 500ms" in ev["message"], ev["message"]

        r2 = wait_until(lambda: ready_revision(kubectl, namespace, name, {r1}),
                        desc="GPU revision ready")
        pod2 = wait_until(lambda: revision_pod(kubectl, namespace, r2), desc=f"pod of {r2}")
        assert pod2["spec"]["nodeName"] in gpu_nodes, pod2["spec"]["nodeName"]
        limits = pod2["spec"]["containers"][0]["resources"]["limits"]
        assert limits.get("nvidia.com/gpu") == "1", limits
        # the user's CPU limit survived the move
        assert limits.get("cpu") in ("1", "1000m"), limits

        # traffic moves to the GPU revision, which is fast
        standin.set({f"{namespace}/{r2}": {"rps": 5, "latency_ms": 120, "cpu_cores": 0.3,
                                            "pods": [pod2["metadata"]["name"]]}})
        wait_until(lambda: event(kubectl, namespace, name, "GpuVerified"), timeout=90,
                   desc="GpuVerified Event")
        observed = json.loads(annotations(kubectl, namespace, name)["gaia.dev/observed"])
        assert observed["cpu"]["p95Ms"] > 2000 and observed["gpu"]["p95Ms"] < 500, observed

        # load drops to nothing: demoted after the dwell, once both windows are idle
        standin.set({})
        wait_until(lambda: placement("cpu"), timeout=150, desc="demotion to cpu", interval=1)
        ev = wait_until(lambda: event(kubectl, namespace, name, "DemotedToCpu"), timeout=30,
                        desc="DemotedToCpu Event")
        assert "idle" in ev["message"], ev["message"]
        r3 = wait_until(lambda: ready_revision(kubectl, namespace, name, {r1, r2}),
                        desc="CPU revision ready")
        pod3 = wait_until(lambda: revision_pod(kubectl, namespace, r3), desc=f"pod of {r3}")
        assert pod3["spec"]["nodeName"] in cpu_nodes, pod3["spec"]["nodeName"]
        assert "nvidia.com/gpu" not in pod3["spec"]["containers"][0]["resources"].get("limits", {})

        # its own metrics tell the same story
        text = run(cluster.in_netns("curl", "-sf", f"http://127.0.0.1:{METRICS_PORT}/metrics"),
                   timeout=20).stdout
        assert 'gaia_autoscaler_decisions_total{kind="promote",reason=""} 1' in text, text
        assert 'gaia_autoscaler_decisions_total{kind="demote",reason=""} 1' in text, text
        assert "gaia_autoscaler_leader 1" in text
        print(f"promoted {promoted_after:.0f} s after the autoscaler started")

        # graceful shutdown releases the Lease
        assert autoscaler.stop(grace=30) == 0, autoscaler.tail(6000)
        lease = kubectl.json("get", "lease", "gaia-autoscaler-e2e", "-n", namespace)
        assert not lease["spec"].get("holderIdentity"), lease["spec"]
    finally:
        if autoscaler:
            autoscaler.stop(grace=30)
        if standin:
            standin.stop()


def leader_gauge(cluster: Cluster, port: int) -> int | None:
    value = metric(cluster, port, "gaia_autoscaler_leader")
    return None if value is None else int(value)


def test_two_replicas_one_leader_and_the_standby_takes_over(
        cluster: Cluster, kubectl: Kubectl, namespace: str, autoscaler_bin: Path):
    workdir = Path(tempfile.mkdtemp(prefix="gaia-autoscaler-le-"))
    replicas = []
    try:
        for i, port in enumerate((METRICS_PORT + 1, METRICS_PORT + 2)):
            config = write_config(workdir, f"replica-{i}", autoscaler_config(cluster, namespace, port))
            replicas.append((netns_proc(cluster, f"replica-{i}", [str(autoscaler_bin), "--config",
                                                                  str(config)], workdir), port))
            if i == 0:
                wait_until(lambda: leader_gauge(cluster, port) == 1, timeout=60,
                           desc="first replica leads", interval=0.5)
        (first, p1), (second, p2) = replicas
        wait_until(lambda: leader_gauge(cluster, p2) == 0, timeout=60,
                   desc="second replica up as standby", interval=0.5)
        # never both: sample for a while
        for _ in range(10):
            assert (leader_gauge(cluster, p1), leader_gauge(cluster, p2)) == (1, 0)
            time.sleep(0.5)
        holder = kubectl.json("get", "lease", "gaia-autoscaler-e2e", "-n", namespace)["spec"]["holderIdentity"]
        # the leader dies without releasing the Lease: the standby takes over once the
        # record is older than leaseDuration (6 s) on its clock
        killed = time.monotonic()
        first.proc.kill()
        first.proc.wait(timeout=10)
        wait_until(lambda: leader_gauge(cluster, p2) == 1, timeout=30,
                   desc="standby takes over", interval=0.25)
        took = time.monotonic() - killed
        assert took <= 6 + 2 * 1 + 2 + 2, f"takeover took {took:.1f} s"  # lease + 2 retries + cycle tick + slack
        lease = kubectl.json("get", "lease", "gaia-autoscaler-e2e", "-n", namespace)["spec"]
        assert lease["holderIdentity"] != holder and lease.get("leaseTransitions", 0) >= 1, lease
        print(f"standby took over {took:.1f} s after the leader was killed")
    finally:
        for p, _ in replicas:
            p.stop(grace=30)
