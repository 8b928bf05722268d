"""Smoke tests of the local cluster itself (hack/cluster.sh): the real
kube-scheduler places Knative revisions' (KWOK) pods by node selector, taints and
GPU capacity, and Knative Services become Ready."""
from __future__ import annotations

import errno
import json
import socket
import time
import urllib.parse
import urllib.request

from tests.harness.kn import Kn
from tests.harness.kubectl import Kubectl
from tests.harness.proc import run
from tests.harness.wait import READY_TIMEOUT, wait_until

GPU_SELECTOR = "nvidia.com/gpu.present=true"
GPU_TOLERATION = "Key=nvidia.com/gpu,Operator=Exists,Effect=NoSchedule"


def kn_create_gpu_service(kn: Kn, namespace: str, name: str, *, wait: bool = True) -> None:
    kn("service", "create", name, "-n", namespace,
       "--image", f"dev.local/gaia/{name}:1",
       "--node-selector", GPU_SELECTOR,
       "--toleration", GPU_TOLERATION,
       "--limit", "nvidia.com/gpu=1",
       # hold the GPU: the fake pods get no traffic, never scale to zero
       "--scale-min", "1",
       *(["--wait-timeout", str(int(READY_TIMEOUT))] if wait else ["--no-wait"]))


def service_pods(kubectl: Kubectl, namespace: str, name: str) -> list[dict]:
    return kubectl.pods(namespace, f"serving.knative.dev/service={name}")


def ready_pod(kubectl: Kubectl, namespace: str, name: str) -> dict:
    """Wait for exactly one Running+Ready pod of a Knative Service and return it."""
    def check():
        pods = [p for p in service_pods(kubectl, namespace, name)
                if not p["metadata"].get("deletionTimestamp")]
        if len(pods) != 1 or pods[0]["status"].get("phase") != "Running":
            return None
        ready = kubectl.condition(pods[0], "Ready")
        return pods[0] if ready and ready["status"] == "True" else None
    return wait_until(check, desc=f"a Running, Ready pod of ksvc {namespace}/{name}")


def ksvc_ready(kubectl: Kubectl, namespace: str, name: str) -> dict:
    ksvc = kubectl.json("get", "ksvc", name, "-n", namespace)
    cond = kubectl.condition(ksvc, "Ready")
    assert cond and cond["status"] == "True", f"ksvc {name} not Ready: {ksvc.get('status')}"
    return ksvc


def test_nodes_model_cpu_and_gpu_pools(kubectl: Kubectl):
    nodes = {n["metadata"]["name"]: n for n in kubectl.json("get", "nodes")["items"]}
    pools = kubectl.nodes_by_pool()
    assert len(pools.get("cpu", ())) == 3 and len(pools.get("gpu", ())) == 2, pools
    for name in pools["gpu"]:
        node = nodes[name]
        labels = node["metadata"]["labels"]
        assert labels["nvidia.com/gpu.present"] == "true"
        assert labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
        assert node["status"]["allocatable"]["nvidia.com/gpu"] == "1"
        assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"} in node["spec"]["taints"]
    for name in pools["cpu"]:
        assert "nvidia.com/gpu" not in nodes[name]["status"]["allocatable"]
        assert not nodes[name]["spec"].get("taints")
    for node in nodes.values():
        assert kubectl.condition(node, "Ready")["status"] == "True", node["metadata"]["name"]


def test_gpu_service_lands_on_gpu_node(kubectl: Kubectl, kn: Kn, namespace: str):
    kn_create_gpu_service(kn, namespace, "gpu-fn")
    ksvc = ksvc_ready(kubectl, namespace, "gpu-fn")
    assert ksvc["status"]["url"], ksvc["status"]
    pod = ready_pod(kubectl, namespace, "gpu-fn")
    assert pod["spec"]["nodeName"] in kubectl.nodes_by_pool()["gpu"], pod["spec"]["nodeName"]
    user = next(c for c in pod["spec"]["containers"] if c["name"] != "queue-proxy")
    assert user["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}


def test_plain_service_lands_on_cpu_node(kubectl: Kubectl, kn: Kn, namespace: str):
    kn("service", "create", "cpu-fn", "-n", namespace, "--image", "dev.local/gaia/cpu-fn:1",
       "--wait-timeout", str(int(READY_TIMEOUT)))
    ksvc_ready(kubectl, namespace, "cpu-fn")
    pod = ready_pod(kubectl, namespace, "cpu-fn")
    # untolerated taint keeps it off the GPU nodes
    assert pod["spec"]["nodeName"] in kubectl.nodes_by_pool()["cpu"], pod["spec"]["nodeName"]


def test_gpu_pool_full_leaves_third_gpu_revision_pending(kubectl: Kubectl, kn: Kn, namespace: str):
    gpu_nodes = kubectl.nodes_by_pool()["gpu"]
    placed = set()
    for name in ("gpu-a", "gpu-b"):
        kn_create_gpu_service(kn, namespace, name)
        placed.add(ready_pod(kubectl, namespace, name)["spec"]["nodeName"])
    assert placed == gpu_nodes, f"two 1-GPU pods should take both GPU nodes, got {placed}"

    kn_create_gpu_service(kn, namespace, "gpu-c", wait=False)

    def unschedulable_pod():
        pods = service_pods(kubectl, namespace, "gpu-c")
        if not pods:
            return None
        cond = kubectl.condition(pods[0], "PodScheduled")
        if cond and cond["status"] == "False" and cond.get("reason") == "Unschedulable":
            return pods[0]
        return None
    pod = wait_until(unschedulable_pod, desc="gpu-c's pod to be marked Unschedulable")
    name = pod["metadata"]["name"]

    def scheduler_event():
        events = kubectl.events_for(namespace, name, reason="FailedScheduling")
        return next((e for e in events if "Insufficient nvidia.com/gpu" in e.get("message", "")), None)
    event = wait_until(scheduler_event, timeout=60, desc=f"FailedScheduling event of {name}")
    assert event["source"].get("component", event.get("reportingComponent", "")) in (
        "default-scheduler", ""), event
    assert "Insufficient nvidia.com/gpu" in event["message"]

    # It stays Pending: the scheduler really enforces the capacity.
    time.sleep(5)
    pod = kubectl.json("get", "pod", name, "-n", namespace)
    assert pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName"), pod["status"]
    ksvc = kubectl.json("get", "ksvc", "gpu-c", "-n", namespace)
    ready = kubectl.condition(ksvc, "Ready")
    assert not ready or ready["status"] != "True", ksvc["status"]


def test_prometheus_scrapes_file_sd_targets(cluster, wait_until):
    """Prometheus is up, reads the targets directory and scrapes Knative's controller."""
    assert any(cluster.prom_targets_dir.glob("*.json")), cluster.prom_targets_dir

    def controller_up():
        q = urllib.parse.urlencode({"query": 'up{job="knative-controller"}'})
        with urllib.request.urlopen(f"{cluster.prometheus_url}/api/v1/query?{q}", timeout=5) as r:
            result = json.load(r)["data"]["result"]
        return result and result[0]["value"][1] == "1"
    wait_until(controller_up, timeout=60, desc="Prometheus to scrape the Knative controller")


def test_pod_network_is_unreachable_from_cluster_netns(cluster, in_netns):
    """Network safety: inside the cluster's namespace, pod and service IPs have no route."""
    code = ("import socket,sys\n"
            "s=socket.socket(); s.settimeout(2)\n"
            "try:\n s.connect(('10.244.0.5', 9090))\n"
            "except OSError as e:\n print(e.errno); sys.exit(0)\n"
            "sys.exit('connected?!')\n")
    out = run(in_netns("python3", "-c", code)).stdout.strip()
    assert int(out) == errno.ENETUNREACH, out
    # and the host side reaches the apiserver through the veth
    with socket.create_connection((cluster.ns_ip, 6443), timeout=5):
        pass


def test_knative_webhook_is_reached_through_its_service(kubectl: Kubectl, namespace: str):
    """The apiserver calls Knative's validating webhook via its Service reference
    (selectorless Service + Endpoints, --enable-aggregator-routing)."""
    bad = f"""
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {{name: bad, namespace: {namespace}}}
spec:
  template:
    spec:
      containerConcurrency: -1
      containers: [{{image: dev.local/gaia/bad:1}}]
"""
    proc = kubectl("apply", "-f", "-", input=bad, check=False)
    assert proc.returncode != 0
    assert "validation.webhook.serving.knative.dev" in proc.stderr, proc.stderr
    assert "containerConcurrency" in proc.stderr, proc.stderr


def test_rbac_is_enforced(kubectl: Kubectl, namespace: str):
    sa = f"system:serviceaccount:{namespace}:default"
    assert kubectl("auth", "can-i", "list", "pods", "-n", namespace, f"--as={sa}",
                   check=False).stdout.strip() == "no"
    # Knative's controller runs with its own service account and the RBAC it ships
    ctl = "system:serviceaccount:knative-serving:controller"
    assert kubectl("auth", "can-i", "create", "deployments.apps", "-n", namespace, f"--as={ctl}",
                   check=False).stdout.strip() == "yes"
