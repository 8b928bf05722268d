"""STAND-IN for a cloud node provisioner (Karpenter, the cluster autoscaler), for end-to-end
tests only: the local cluster cannot buy a GPU machine.

It watches (polls, every ``poll`` seconds) for Pending, unscheduled pods that ask for the GPU
resource and whose nodeSelector contains every label of ``selector``; for each new one it waits
``delay`` seconds, as a real provisioner waits for a machine to boot, and then adds one KWOK fake
node that can run it: the pod's nodeSelector as labels (plus KWOK's), the ``taint``, and
``gpus`` of the resource allocatable. The real kube-scheduler then binds the pod and KWOK marks it
Running. ``delay=None`` never adds a node (a pool that does not grow). ``stop()`` ends the
thread and deletes the nodes it added.

Plain Python (no pytest); runs as a thread of the test.
"""
from __future__ import annotations

import json
import threading
import time

from tests.harness.kubectl import Kubectl

NAME_PREFIX = "standin-provisioned-gpu"


def node_manifest(name: str, labels: dict[str, str], taint: dict | None, resource: str,
                  gpus: int) -> str:
    all_labels = {"type": "kwok", "kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux",
                  "kubernetes.io/hostname": name, "gaia.dev/provisioned-by": "node-provisioner-standin"}
    all_labels.update(labels)
    capacity = {"cpu": "32", "memory": "256Gi", "pods": "110", resource: str(gpus)}
    return json.dumps({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": all_labels,
                     "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"}},
        "spec": {"taints": [taint] if taint else []},
        "status": {"capacity": capacity, "allocatable": capacity},
    })


def wants_a_node(pod: dict, selector: dict[str, str], resource: str) -> bool:
    spec = pod.get("spec", {})
    if spec.get("nodeName") or pod.get("status", {}).get("phase") != "Pending":
        return False
    node_selector = spec.get("nodeSelector") or {}
    if any(node_selector.get(k) != v for k, v in selector.items()):
        return False
    return any(resource in ((c.get("resources") or {}).get("limits") or {})
               for c in spec.get("containers", []))


class NodeProvisionerStandin:
    def __init__(self, kubectl: Kubectl, selector: dict[str, str], delay: float | None,
                 resource: str = "nvidia.com/gpu", gpus: int = 1,
                 taint: dict | None = None, poll: float = 1.0):
        self.kubectl, self.selector, self.delay = kubectl, dict(selector), delay
        self.resource, self.gpus, self.taint, self.poll = resource, gpus, taint, poll
        self.seen: dict[str, float] = {}     # pod uid -> when first seen Pending
        self.added: list[str] = []           # node names
        self.log: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="node-provisioner-standin", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception as exc:  # noqa: BLE001 - keep watching; the test sees the log
                self.log.append(f"error: {exc}")
            self._stop.wait(self.poll)

    def _step(self) -> None:
        pods = self.kubectl.json("get", "pods", "-A", "--field-selector", "status.phase=Pending")["items"]
        now = time.monotonic()
        for pod in pods:
            if not wants_a_node(pod, self.selector, self.resource):
                continue
            uid = pod["metadata"]["uid"]
            first = self.seen.setdefault(uid, now)
            if first == now:
                self.log.append(f"{now:.0f} pending: {pod['metadata']['namespace']}/{pod['metadata']['name']}")
            if self.delay is None or now - first < self.delay or first < 0:
                continue
            name = f"{NAME_PREFIX}-{len(self.added) + 1}"
            labels = dict(pod["spec"].get("nodeSelector") or {})
            self.kubectl.apply(node_manifest(name, labels, self.taint, self.resource, self.gpus))
            self.added.append(name)
            self.seen[uid] = -1.0  # served
            self.log.append(f"{time.monotonic():.0f} added node {name} after {now - first:.0f} s")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        for name in self.added:
            self.kubectl("delete", "node", name, "--ignore-not-found", "--wait=false", check=False)
