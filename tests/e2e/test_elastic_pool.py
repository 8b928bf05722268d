"""A GPU pool that grows on demand (issue 15), on the local cluster.

The autoscaler's GPU profile selects a pool no node is in yet (`gaia.dev/pool: gpu-elastic`)
and says `elastic: true`, `nodeJoinDeadline: 45s`. A cpu_preferred Service is slow and busy on
the CPU, so the policy promotes it although no GPU is free: the GPU revision gets Knative's
progress deadline of 45 s and its pod is Pending; the CPU revision goes on serving.

* With the node-provisioner STAND-IN adding a KWOK GPU node 15 s after it sees the Pending pod
  (tests/harness/node_provisioner_standin.py, standing in for Karpenter or the cluster
  autoscaler), the pod lands on the new node, the GPU revision becomes ready and takes the
  traffic.
* With a provisioner that never adds one, the autoscaler rolls back to the CPU once the join
  deadline is past (`RolledBack` naming the deadline), and backs off: no new promotion.

The request and CPU series come from the Knative metrics STAND-IN (the pods are KWOK fakes).
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from tests.harness.autoscaler_run import (MetricsStandin, annotations, autoscaler_binary,
                                          autoscaler_config, ksvc_manifest, metric, netns_proc,
                                          ready_revision, revision_pod, write_config)
from tests.harness.cluster_env import Cluster
from tests.harness.kubectl import Kubectl
from tests.harness.node_provisioner_standin import NodeProvisionerStandin
from tests.harness.wait import wait_until

STANDIN_PORT = 19537
METRICS_PORT = 18117
POOL = {"gaia.dev/pool": "gpu-elastic", "nvidia.com/gpu.present": "true"}
TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}

# The product's rules on a short clock (autoscaler_config), a 30 s rollout timeout, and a GPU
# placement on the elastic pool.
ELASTIC = {
    "policy": {"rolloutTimeout": "30s"},
    "placement": {
        "cpu": {},
        "gpu": {
            "nodeSelector": {"gaia.dev/pool": "gpu-elastic", "nvidia.com/gpu.present": "true"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "limits": {"nvidia.com/gpu": "1"},
            "elastic": True,
            "nodeJoinDeadline": "45s",
        },
    },
}


class Setup:
    """The slow, busy Service on the CPU and the autoscaler watching it."""

    def __init__(self, cluster: Cluster, kubectl: Kubectl, namespace: str, name: str):
        binary = autoscaler_binary()
        self.cluster, self.kubectl, self.ns, self.name = cluster, kubectl, namespace, name
        self.workdir = Path(tempfile.mkdtemp(prefix="gaia-elastic-e2e-"))
        self.standin = MetricsStandin(cluster, self.workdir, STANDIN_PORT, namespace)
        self.standin.scrape(namespace, name)
        kubectl.apply(ksvc_manifest(namespace, name))
        self.r1 = wait_until(lambda: ready_revision(kubectl, namespace, name, set()),
                             desc="first revision ready")
        pod1 = wait_until(lambda: revision_pod(kubectl, namespace, self.r1), desc=f"pod of {self.r1}")
        self.standin.set({f"{namespace}/{self.r1}": {"rps": 5, "latency_ms": 3000, "cpu_cores": 0.95,
                                                     "pods": [pod1["metadata"]["name"]]}})
        config = write_config(self.workdir, "autoscaler", autoscaler_config(
            cluster, namespace, METRICS_PORT, ELASTIC, lease="gaia-autoscaler-elastic-e2e"))
        self.autoscaler = netns_proc(cluster, "gaia-autoscaler",
                                     [str(binary), "--config", str(config)], self.workdir)

    def alive(self) -> bool:
        assert self.autoscaler.alive(), f"autoscaler exited:\n{self.autoscaler.tail(6000)}"
        return True

    def ksvc(self) -> dict:
        return self.kubectl.json("get", "ksvc", self.name, "-n", self.ns)

    def events(self, reason: str) -> list[dict]:
        return self.kubectl.events_for(self.ns, self.name, reason)

    def promoted_with_no_gpu_free(self) -> str:
        """Waits for the promotion; returns the GPU revision's name."""
        ev = wait_until(lambda: self.alive() and self.events("PromotedToGpu"), timeout=150,
                        desc="promotion with no GPU free", interval=1)
        msg = ev[0]["message"]
        assert "no GPU free" in msg and "grows on demand" in msg, msg
        assert not self.events("NoGpuAvailable")
        r2 = wait_until(lambda: (self.ksvc().get("status", {}).get("latestCreatedRevisionName")
                                 not in (None, self.r1)) and self.ksvc()["status"]["latestCreatedRevisionName"],
                        desc="GPU revision created")
        rev = self.kubectl.json("get", "revision", r2, "-n", self.ns)
        assert rev["metadata"]["annotations"].get("serving.knative.dev/progress-deadline") == "45s", \
            rev["metadata"]["annotations"]
        return r2

    def pending_pod(self, revision: str) -> dict:
        def pending():
            pods = self.kubectl.pods(self.ns, f"serving.knative.dev/revision={revision}")
            return [p for p in pods if p["status"].get("phase") == "Pending"
                    and not p["spec"].get("nodeName")]
        return wait_until(pending, desc=f"a Pending pod of {revision}")[0]

    def serving(self) -> set[str]:
        return {t["revisionName"] for t in self.ksvc().get("status", {}).get("traffic", [])
                if t.get("percent")}

    def stop(self) -> None:
        self.autoscaler.stop(grace=30)
        self.standin.stop()


def test_promotion_with_no_free_gpu_waits_for_a_node_to_join_and_moves_the_traffic(
        cluster: Cluster, kubectl: Kubectl, namespace: str):
    provisioner = NodeProvisionerStandin(kubectl, POOL, delay=15, taint=TAINT)
    setup = None
    try:
        setup = Setup(cluster, kubectl, namespace, "matmul")
        r2 = setup.promoted_with_no_gpu_free()
        setup.pending_pod(r2)
        # the CPU revision serves while the node is on its way
        assert setup.serving() == {setup.r1}, setup.ksvc().get("status")
        ready = wait_until(lambda: setup.alive() and ready_revision(kubectl, namespace, "matmul", {setup.r1}),
                           timeout=120, desc="GPU revision ready once a node joined", interval=1)
        assert ready == r2
        assert provisioner.added, provisioner.log
        pod2 = wait_until(lambda: revision_pod(kubectl, namespace, r2), desc=f"pod of {r2}")
        assert pod2["spec"]["nodeName"] in provisioner.added, (pod2["spec"]["nodeName"], provisioner.log)
        wait_until(lambda: setup.serving() == {r2}, timeout=60, desc="traffic on the GPU revision")
        assert annotations(kubectl, namespace, "matmul").get("gaia.dev/desired-placement") == "gpu"
        assert not setup.events("RolledBack")
    finally:
        provisioner.stop()
        if setup:
            setup.stop()


def test_no_node_joins_so_it_rolls_back_and_backs_off(
        cluster: Cluster, kubectl: Kubectl, namespace: str):
    provisioner = NodeProvisionerStandin(kubectl, POOL, delay=None, taint=TAINT)
    setup = None
    try:
        setup = Setup(cluster, kubectl, namespace, "matmul")
        r2 = setup.promoted_with_no_gpu_free()
        promoted = time.monotonic()
        setup.pending_pod(r2)
        assert setup.serving() == {setup.r1}
        ev = wait_until(lambda: setup.alive() and setup.events("RolledBack"), timeout=150,
                        desc="rollback after the join deadline", interval=1)
        waited = time.monotonic() - promoted
        msg = ev[0]["message"]
        assert "nodeJoinDeadline" in msg and "back to cpu" in msg, msg
        assert waited >= 40, f"rolled back {waited:.0f} s after the promotion, before the 45 s deadline"
        assert annotations(kubectl, namespace, "matmul").get("gaia.dev/desired-placement") == "cpu"
        observed = json.loads(annotations(kubectl, namespace, "matmul")["gaia.dev/observed"])
        assert observed.get("promotionBlockedUntil"), observed
        # the CPU revision the rollback made serves, still slow and busy: held by the back-off,
        # not promoted again
        r3 = wait_until(lambda: ready_revision(kubectl, namespace, "matmul", {setup.r1, r2}),
                        desc="CPU revision of the rollback ready")
        pod3 = wait_until(lambda: revision_pod(kubectl, namespace, r3), desc=f"pod of {r3}")
        assert "nvidia.com/gpu" not in pod3["spec"]["containers"][0]["resources"].get("limits", {})
        setup.standin.set({f"{namespace}/{r3}": {"rps": 5, "latency_ms": 3000, "cpu_cores": 0.95,
                                                  "pods": [pod3["metadata"]["name"]]}})
        wait_until(lambda: (metric(cluster, METRICS_PORT,
                                   'gaia_autoscaler_decisions_total{kind="hold",reason="back_off"}') or 0) >= 1,
                   timeout=90, desc="held by the back-off", interval=1)
        assert len(setup.events("PromotedToGpu")) == 1
        assert annotations(kubectl, namespace, "matmul").get("gaia.dev/desired-placement") == "cpu"
        assert setup.serving() == {r3}, setup.ksvc().get("status")
        assert not provisioner.added and any("pending" in line for line in provisioner.log), provisioner.log
    finally:
        provisioner.stop()
        if setup:
            setup.stop()
