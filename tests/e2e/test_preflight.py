"""The preflight in the running autoscaler (issue 15), on the local cluster.

A cpu_preferred Service is slow and busy on the CPU, so the policy wants it on a GPU. The GPU
pool's nodes lose their `nvidia.com/gpu.present` label before the autoscaler starts: its
preflight's `gpu-nodes` check fails at start, the metric `gaia_autoscaler_preflight_check` says
so, a Warning Event on the autoscaler's Deployment gives the fix, and the promotion is held with
the reason `preflight_failed` (a `PreflightBlocked` Warning Event on the Service naming the check,
not the "no GPU free" Event), never made. The labels come back: the check passes (a Normal
Event), and the Service is promoted onto a GPU node.

The request and CPU series come from the Knative metrics STAND-IN (the pods are KWOK fakes),
scraped by the cluster's real Prometheus.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tests.harness.autoscaler_run import (MetricsStandin, annotations, autoscaler_binary,
                                          autoscaler_config, ksvc_manifest, metric, netns_proc,
                                          ready_revision, revision_pod, write_config)
from tests.harness.cluster_env import Cluster
from tests.harness.kubectl import Kubectl
from tests.harness.wait import wait_until

STANDIN_PORT = 19527
METRICS_PORT = 18107
GPU_LABEL = "nvidia.com/gpu.present"

# The product's rules on a short clock (autoscaler_config), and a preflight that looks again
# every 3 s while a check fails.
PREFLIGHT = {"preflight": {"interval": "1m", "failingInterval": "3s"}}


def check_gauge(cluster: Cluster, check: str, status: str) -> float | None:
    return metric(cluster, METRICS_PORT,
                  f'gaia_autoscaler_preflight_check{{check="{check}",status="{status}"}}')


def events(kubectl: Kubectl, namespace: str, name: str, reason: str) -> list[dict]:
    return kubectl.events_for(namespace, name, reason)


def test_a_failing_gpu_nodes_check_holds_the_promotion_until_it_is_fixed(
        cluster: Cluster, kubectl: Kubectl, namespace: str):
    binary = autoscaler_binary()
    name = "matmul"
    workdir = Path(tempfile.mkdtemp(prefix="gaia-preflight-e2e-"))
    gpu_nodes = kubectl("get", "nodes", "-l", f"{GPU_LABEL}=true", "-o", "name").stdout.split()
    pools = kubectl.nodes_by_pool()
    assert gpu_nodes and pools.get("gpu"), pools
    standin = autoscaler = None
    relabelled = False
    try:
        standin = MetricsStandin(cluster, workdir, STANDIN_PORT, namespace)
        standin.scrape(namespace, name)
        kubectl.apply(ksvc_manifest(namespace, name))
        r1 = wait_until(lambda: ready_revision(kubectl, namespace, name, set()),
                        desc="first revision ready")
        pod1 = wait_until(lambda: revision_pod(kubectl, namespace, r1), desc=f"pod of {r1}")
        # slow (3 s a request, SLO 500 ms) and CPU-bound: the policy wants a GPU
        standin.set({f"{namespace}/{r1}": {"rps": 5, "latency_ms": 3000, "cpu_cores": 0.95,
                                            "pods": [pod1["metadata"]["name"]]}})

        # break it: no node carries the GPU placement's label
        for node in gpu_nodes:
            kubectl("label", node, f"{GPU_LABEL}-")
        relabelled = True

        config = write_config(workdir, "autoscaler", autoscaler_config(
            cluster, namespace, METRICS_PORT, PREFLIGHT, lease="gaia-autoscaler-preflight-e2e"))
        autoscaler = netns_proc(cluster, "gaia-autoscaler", [str(binary), "--config", str(config)],
                                workdir)

        def alive():
            assert autoscaler.alive(), f"autoscaler exited:\n{autoscaler.tail(6000)}"
            return True

        wait_until(lambda: alive() and check_gauge(cluster, "gpu-nodes", "fail") == 1,
                   timeout=60, desc="gpu-nodes fails in the metric", interval=1)
        assert check_gauge(cluster, "gpu-nodes", "pass") == 0
        assert check_gauge(cluster, "prometheus", "pass") == 1
        # other checks may fail too at first (latency-series, until Prometheus has scraped the
        # stand-in): the gpu-nodes one is looked for
        failed = wait_until(lambda: [e for e in events(kubectl, namespace, "gaia-autoscaler",
                                                       "PreflightCheckFailed")
                                     if "check gpu-nodes" in e["message"]],
                            timeout=60, desc="gpu-nodes' PreflightCheckFailed Event on the Deployment")
        msg = failed[0]["message"]
        assert failed[0]["involvedObject"]["kind"] == "Deployment", failed[0]["involvedObject"]
        assert "gpu-nodes" in msg and f"{GPU_LABEL}=true" in msg and "moves onto a GPU are held" in msg, msg

        # the policy wants the GPU; the preflight holds it, with the reason
        blocked = wait_until(lambda: alive() and events(kubectl, namespace, name, "PreflightBlocked"),
                             timeout=150, desc="PreflightBlocked Event on the Service", interval=1)
        msg = blocked[0]["message"]
        assert "promote → gpu held" in msg and "preflight check gpu-nodes fails" in msg, msg
        assert f"fix: label the GPU nodes {GPU_LABEL}=true" in msg, msg
        held = metric(cluster, METRICS_PORT,
                      'gaia_autoscaler_decisions_total{kind="hold",reason="preflight_failed"}')
        assert held and held >= 1, held
        # held for a while: still on the CPU, no move, and not told "no GPU free"
        time.sleep(8)
        assert annotations(kubectl, namespace, name).get("gaia.dev/desired-placement") in (None, "cpu")
        assert not events(kubectl, namespace, name, "PromotedToGpu")
        assert not events(kubectl, namespace, name, "NoGpuAvailable")

        # fixed: the check passes, the promotion goes ahead
        fixed_at = time.monotonic()
        for node in gpu_nodes:
            kubectl("label", node, f"{GPU_LABEL}=true", "--overwrite")
        relabelled = False
        wait_until(lambda: alive() and check_gauge(cluster, "gpu-nodes", "pass") == 1,
                   timeout=60, desc="gpu-nodes passes in the metric", interval=1)
        # one Event series per check: latency-series may pass (was fail) too, once series exist
        passed = wait_until(lambda: [e for e in events(kubectl, namespace, "gaia-autoscaler", "PreflightCheckPassed")
                                     if "gpu-nodes" in e["message"]],
                            timeout=30, desc="PreflightCheckPassed Event of gpu-nodes")
        assert "gpu-nodes passes (was fail)" in passed[0]["message"], passed[0]["message"]
        wait_until(lambda: alive() and annotations(kubectl, namespace, name)
                   .get("gaia.dev/desired-placement") == "gpu",
                   timeout=60, desc="promotion to gpu once fixed", interval=1)
        promoted_after = time.monotonic() - fixed_at
        wait_until(lambda: events(kubectl, namespace, name, "PromotedToGpu"), timeout=30,
                   desc="PromotedToGpu Event")
        r2 = wait_until(lambda: ready_revision(kubectl, namespace, name, {r1}),
                        desc="GPU revision ready")
        pod2 = wait_until(lambda: revision_pod(kubectl, namespace, r2), desc=f"pod of {r2}")
        assert pod2["spec"]["nodeName"] in pools["gpu"], pod2["spec"]["nodeName"]
        print(f"promoted {promoted_after:.0f} s after the labels came back")
    finally:
        if relabelled:
            for node in gpu_nodes:
                kubectl("label", node, f"{GPU_LABEL}=true", "--overwrite", check=False)
        if autoscaler:
            autoscaler.stop(grace=30)
        if standin:
            standin.stop()
