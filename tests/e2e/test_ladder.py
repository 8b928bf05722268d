"""The placement ladder's rungs on the real scheduler (issue 16).

Two KWOK nodes are added to the cluster, labelled and tainted as NVIDIA's GPU operator does, one
exposing a GPU time-sliced 7 ways (`nvidia.com/gpu.shared: 7`, as the operator's time-slicing
with `renameByDefault` advertises it) and one cut into seven MIG slices
(`nvidia.com/mig-1g.18gb: 7`, the mixed strategy). Pods are placed with the rung profiles the
policy's ladder holds (`cargo run -p gaia-policy --example ladder_config -- shared|mig`: the
same nodeSelector, tolerations and limits the ladder's configuration carries), and the real
kube-scheduler decides:

* seven pods of the shared rung land on the time-sliced node, the eighth stays Pending with
  `Insufficient nvidia.com/gpu.shared`; the same for the MIG rung;
* a pod of the whole-GPU rung never lands on a sliced node (they have no `nvidia.com/gpu`);
* a pod of the CPU rung never lands on either (their taint).

So the free units the ladder counts per rung are the ones the scheduler enforces.
"""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.harness.kubectl import Kubectl
from tests.harness.wait import wait_until

REPO = Path(__file__).resolve().parents[2]
SHARED_NODE = "ladder-shared-node"
MIG_NODE = "ladder-mig-node"
SLICES = 7


def ladder(which: str) -> dict:
    out = subprocess.run(
        ["cargo", "run", "-q", "--locked", "-p", "gaia-policy", "--example", "ladder_config", "--", which],
        cwd=REPO, capture_output=True, text=True, timeout=900, check=True)
    return json.loads(out.stdout)["ladder"]


def node_yaml(name: str, resource: str, count: int) -> str:
    return f"""
apiVersion: v1
kind: Node
metadata:
  name: {name}
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: {name}
    gaia.dev/pool: gpu-sliced
    nvidia.com/gpu.present: "true"
    nvidia.com/gpu.product: NVIDIA-H200
spec:
  taints:
  - key: nvidia.com/gpu
    value: present
    effect: NoSchedule
status:
  capacity: {{cpu: "64", memory: 512Gi, pods: "110", {resource}: "{count}"}}
  allocatable: {{cpu: "64", memory: 512Gi, pods: "110", {resource}: "{count}"}}
"""


def pod_json(name: str, rung: dict) -> str:
    profile = rung.get("profile", {})
    container = {"name": "user-container", "image": "dev.local/gaia/hello:1",
                 "resources": {"requests": {"cpu": "10m"}}}
    if profile.get("limits"):
        container["resources"]["limits"] = dict(profile["limits"])
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "ladder-e2e", "rung": rung["name"]}},
        "spec": {"nodeSelector": profile.get("nodeSelector", {}),
                 "tolerations": profile.get("tolerations", []),
                 "containers": [container]},
    })


@pytest.fixture
def sliced_nodes(kubectl: Kubectl, namespace: str):
    kubectl.apply(node_yaml(SHARED_NODE, "nvidia.com/gpu.shared", SLICES)
                  + "---" + node_yaml(MIG_NODE, "nvidia.com/mig-1g.18gb", SLICES))
    yield
    # pods first (bound to nodes about to go), then the nodes
    kubectl("delete", "pods", "-n", namespace, "--all", "--grace-period=0", "--force",
            "--wait=true", check=False, timeout=120)
    kubectl("delete", "node", SHARED_NODE, MIG_NODE, "--ignore-not-found", check=False)


def placed(kubectl: Kubectl, namespace: str, rung: str) -> tuple[list[dict], list[dict]]:
    pods = kubectl.pods(namespace, f"app=ladder-e2e,rung={rung}")
    return ([p for p in pods if p["spec"].get("nodeName")],
            [p for p in pods if not p["spec"].get("nodeName")])


def fill_rung(kubectl: Kubectl, namespace: str, rung: dict, node: str, resource: str) -> None:
    assert rung["resource"] == resource, rung
    assert rung["profile"]["limits"] == {resource: "1"}, rung
    for i in range(SLICES + 1):
        kubectl.apply(pod_json(f"{rung['name']}-{i}", rung), namespace=namespace)

    def seven_bound():
        bound, waiting = placed(kubectl, namespace, rung["name"])
        return (bound, waiting) if len(bound) == SLICES and len(waiting) == 1 else None
    bound, waiting = wait_until(seven_bound, timeout=90, desc=f"{SLICES} {rung['name']} pods bound")
    assert {p["spec"]["nodeName"] for p in bound} == {node}
    name = waiting[0]["metadata"]["name"]

    def scheduler_said_so():
        events = kubectl.events_for(namespace, name, reason="FailedScheduling")
        return next((e for e in events if f"Insufficient {resource}" in e.get("message", "")), None)
    event = wait_until(scheduler_said_so, timeout=60, desc=f"FailedScheduling of {name}")
    assert f"Insufficient {resource}" in event["message"]
    time.sleep(3)
    pod = kubectl.json("get", "pod", name, "-n", namespace)
    assert pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName"), pod["status"]


def test_time_sliced_rung_holds_seven_pods_per_gpu(kubectl: Kubectl, namespace: str, sliced_nodes):
    rungs = ladder("shared")["rungs"]
    assert [r["name"] for r in rungs] == ["cpu", "gpu-shared", "gpu"]
    fill_rung(kubectl, namespace, rungs[1], SHARED_NODE, "nvidia.com/gpu.shared")


def test_mig_rung_holds_seven_slices(kubectl: Kubectl, namespace: str, sliced_nodes):
    rungs = ladder("mig")["rungs"]
    assert rungs[1]["gpuMemoryMib"] == 18432
    fill_rung(kubectl, namespace, rungs[1], MIG_NODE, "nvidia.com/mig-1g.18gb")


def test_whole_gpu_and_cpu_rungs_stay_off_sliced_nodes(kubectl: Kubectl, namespace: str, sliced_nodes):
    rungs = ladder("shared")["rungs"]
    cpu, whole = rungs[0], rungs[2]
    kubectl.apply(pod_json("whole-0", whole), namespace=namespace)
    kubectl.apply(pod_json("cpu-0", cpu), namespace=namespace)
    pools = kubectl.nodes_by_pool()

    def both_bound():
        got = {p["metadata"]["name"]: p["spec"].get("nodeName")
               for p in kubectl.pods(namespace, "app=ladder-e2e")}
        return got if all(got.values()) and len(got) == 2 else None
    got = wait_until(both_bound, timeout=60, desc="the whole-GPU and the CPU pod bound")
    assert got["whole-0"] in pools["gpu"], got
    assert got["cpu-0"] in pools["cpu"], got


# ---------------------------------------------------------------------------------------------
# The webhook's first rung: a gpu_preferred function whose model fits a slice starts there, and
# a cpu_preferred one when the slice costs less a second than the CPU.
# ---------------------------------------------------------------------------------------------

def test_the_webhook_starts_a_function_on_the_lowest_rung_that_holds_it(
        cluster, kubectl: Kubectl, kn, namespace: str, sliced_nodes):
    import tempfile

    from tests.harness.webhook_process import WebhookProcess

    # The autoscaler's configuration file is the one source of the rungs: the webhook reads its
    # `ladder:` section (--ladder-from), as the manifests mount the autoscaler's ConfigMap.
    workdir = Path(tempfile.mkdtemp(prefix="gaia-ladder-webhook-"))
    autoscaler_config = workdir / "autoscaler.yaml"
    autoscaler_config.write_text("prometheus:\n  url: http://127.0.0.1:9090\n"
                                 "ladder: " + json.dumps(ladder("shared")) + "\n")
    hook = WebhookProcess(cluster, kubectl, "gaia-webhook-ladder", 18446,
                          extra_args=("--ladder-from", str(autoscaler_config))).start()

    def create(name: str, example: str) -> dict:
        """`kn service create` of an example function (code in a ConfigMap), `auto`."""
        functions = REPO / "examples" / "functions" / example
        kubectl("create", "configmap", f"{name}-src", "-n", namespace,
                *[f"--from-file={p.name}={p}" for p in sorted(functions.glob("*.py"))])
        kn("service", "create", name, "-n", namespace, "--image", f"dev.local/gaia/{name}:1",
           "--scale-min", "1", "--wait-timeout", "180", "--mount", f"/app=cm:{name}-src",
           "--annotation", "gaia.dev/execution-mode=auto")
        return kubectl.json("get", "ksvc", name, "-n", namespace)

    try:
        svc = create("textgen", "text_generation")
        a = svc["metadata"]["annotations"]
        assert a["gaia.dev/mode"] == "gpu_preferred", a
        # TinyLlama-1.1B in float16 (`torch.float16 if device == "cuda"`): ~3.5 GiB
        assert 3000 <= int(a["gaia.dev/gpu-memory-mib"]) <= 3700, a
        assert "float16" in a["gaia.dev/rationale"], a["gaia.dev/rationale"]
        why = a["gaia.dev/rationale"]
        assert "first rung gpu-shared: the model needs ~3." in why, why
        assert "gpu-shared (20.1 GiB) is the lowest GPU rung that holds it" in why, why
        template = svc["spec"]["template"]
        tmpl = template["metadata"]["annotations"]
        # the annotation the autoscaler reads for the current rung, so the controller agrees
        assert tmpl["gaia.dev/rung"] == "gpu-shared" and tmpl["gaia.dev/placed-for"] == "gpu", tmpl
        limits = template["spec"]["containers"][0]["resources"]["limits"]
        assert limits.get("nvidia.com/gpu.shared") == "1" and "nvidia.com/gpu" not in limits, limits
        # and the real scheduler puts it on the time-sliced node
        revision = svc["status"]["latestReadyRevisionName"]

        def pod_node():
            pods = kubectl.pods(namespace, f"serving.knative.dev/revision={revision}")
            return next((p["spec"].get("nodeName") for p in pods if p["spec"].get("nodeName")), None)
        assert wait_until(pod_node, timeout=60, desc="the textgen pod bound") == SHARED_NODE

        # Device-agnostic code (cpu_preferred, ResNet-18): the slice costs half the CPU node a
        # second here, so it starts there too (the ladder's own first-rung rule).
        svc = create("imgcls", "image_classification")
        a = svc["metadata"]["annotations"]
        assert a["gaia.dev/mode"] == "cpu_preferred", a
        why = a["gaia.dev/rationale"]
        assert "first rung gpu-shared: device-agnostic code" in why, why
        assert "costs less a second" in why, why
        tmpl = svc["spec"]["template"]["metadata"]["annotations"]
        assert tmpl["gaia.dev/rung"] == "gpu-shared" and tmpl["gaia.dev/placed-for"] == "gpu", tmpl
        revision = svc["status"]["latestReadyRevisionName"]
        assert wait_until(pod_node, timeout=60, desc="the imgcls pod bound") == SHARED_NODE
    finally:
        hook.unregister()
        hook.stop()
        for name in ("textgen", "imgcls"):
            kubectl("delete", "ksvc", name, "-n", namespace, "--ignore-not-found", check=False)


# ---------------------------------------------------------------------------------------------
# The controller on the ladder: a light cpu_preferred Service moves from the CPU to the
# cheaper shared rung, once a slice is free to it.
# ---------------------------------------------------------------------------------------------

from tests.harness.autoscaler_run import (  # noqa: E402  (the autoscaler e2e's helpers)
    MetricsStandin, annotations, autoscaler_binary, autoscaler_config, event, ksvc_manifest,
    netns_proc, ready_revision, revision_pod, write_config)

STANDIN_PORT = 19517
METRICS_PORT = 18097


@pytest.fixture
def autoscaler_bin() -> Path:
    return autoscaler_binary()


@pytest.fixture
def team_tainted_shared_node(kubectl: Kubectl, namespace: str):
    """The time-sliced node, also tainted for a team the shared rung does not tolerate."""
    text = node_yaml(SHARED_NODE, "nvidia.com/gpu.shared", SLICES).replace(
        "  taints:\n", "  taints:\n  - key: team\n    value: vision\n    effect: NoSchedule\n")
    kubectl.apply(text)
    yield
    kubectl("delete", "pods", "-n", namespace, "--all", "--grace-period=0", "--force",
            "--wait=true", check=False, timeout=120)
    kubectl("delete", "node", SHARED_NODE, "--ignore-not-found", check=False)


def test_the_controller_moves_a_light_function_from_cpu_to_the_shared_rung(
        cluster, kubectl: Kubectl, namespace: str, autoscaler_bin: Path, team_tainted_shared_node):
    import tempfile

    name = "resnet"
    workdir = Path(tempfile.mkdtemp(prefix="gaia-ladder-e2e-"))
    standin = autoscaler = None
    try:
        standin = MetricsStandin(cluster, workdir, STANDIN_PORT, namespace)
        standin.scrape(namespace, name, revisions=3)
        kubectl.apply(ksvc_manifest(namespace, name))
        r1 = wait_until(lambda: ready_revision(kubectl, namespace, name, set()),
                        desc="first revision ready")
        pod1 = wait_until(lambda: revision_pod(kubectl, namespace, r1), desc=f"pod of {r1}")
        assert pod1["spec"]["nodeName"] != SHARED_NODE
        # light and well within its 500 ms objective on the CPU: 40 ms at 5 req/s
        standin.set({f"{namespace}/{r1}": {"rps": 5, "latency_ms": 40, "cpu_cores": 0.2,
                                            "pods": [pod1["metadata"]["name"]]}})

        config = write_config(workdir, "autoscaler", autoscaler_config(
            cluster, namespace, METRICS_PORT, {"ladder": ladder("shared")}))
        autoscaler = netns_proc(cluster, "gaia-autoscaler",
                                [str(autoscaler_bin), "--config", str(config)], workdir)

        def desired(want: str) -> bool:
            assert autoscaler.alive(), f"autoscaler exited:\n{autoscaler.tail(6000)}"
            return annotations(kubectl, namespace, name).get("gaia.dev/desired-placement") == want

        # The only slices are behind a taint the rung does not tolerate: none is ours, nothing
        # moves (the autoscaler counted such a node's units as free before).
        wait_until(lambda: "placement ladder on" in autoscaler.tail(20000), timeout=60,
                   desc="autoscaler on the ladder", interval=1)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert not desired("gpu"), "moved onto a node it cannot use"
            time.sleep(1)
        assert event(kubectl, namespace, name, "EconomizedOnLadder") is None

        # The team's taint goes: the shared GPU costs half the CPU a second, so it moves there.
        kubectl("taint", "node", SHARED_NODE, "team-")
        wait_until(lambda: desired("gpu"), timeout=90, desc="move to the shared rung", interval=1)
        ev = wait_until(lambda: event(kubectl, namespace, name, "EconomizedOnLadder"), timeout=30,
                        desc="EconomizedOnLadder Event")
        msg = ev["message"]
        assert "→ gpu-shared" in msg and "cost per 1,000 requests: cpu $" in msg, msg
        assert "gpu-shared $" in msg and "(measured)" in msg, msg
        ann = annotations(kubectl, namespace, name)
        memory = json.loads(ann["gaia.dev/ladder"])
        assert memory["lastMove"]["to"] == "gpu-shared", memory
        assert memory["lastMove"]["kind"] == "economize", memory
        assert memory["rungs"]["cpu"]["p95Ms"] < 500, memory

        r2 = wait_until(lambda: ready_revision(kubectl, namespace, name, {r1}),
                        desc="shared revision ready")
        pod2 = wait_until(lambda: revision_pod(kubectl, namespace, r2), desc=f"pod of {r2}")
        assert pod2["spec"]["nodeName"] == SHARED_NODE, pod2["spec"]["nodeName"]
        limits = pod2["spec"]["containers"][0]["resources"]["limits"]
        assert limits.get("nvidia.com/gpu.shared") == "1", limits
        assert "nvidia.com/gpu" not in limits, limits
        assert limits.get("cpu") in ("1", "1000m"), limits
        ksvc = kubectl.json("get", "ksvc", name, "-n", namespace)
        tmpl = ksvc["spec"]["template"]["metadata"]["annotations"]
        assert tmpl["gaia.dev/rung"] == "gpu-shared" and tmpl["gaia.dev/placed-for"] == "gpu", tmpl

        # On the slice it still meets the objective: the move is verified and remembered.
        standin.set({f"{namespace}/{r2}": {"rps": 5, "latency_ms": 45, "cpu_cores": 0.2,
                                            "pods": [pod2["metadata"]["name"]]}})
        ev = wait_until(lambda: event(kubectl, namespace, name, "RungVerified"), timeout=90,
                        desc="RungVerified Event")
        assert "cost per 1,000 requests" in ev["message"], ev["message"]
        memory = json.loads(annotations(kubectl, namespace, name)["gaia.dev/ladder"])
        assert memory["rungs"]["gpu-shared"]["p95Ms"] < 500, memory

        assert autoscaler.stop(grace=30) == 0, autoscaler.tail(6000)
    finally:
        if autoscaler:
            autoscaler.stop(grace=30)
        if standin:
            standin.stop()
