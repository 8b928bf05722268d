"""Real worker nodes (hack/cluster.sh up --real-nodes, hack/nodes.sh): real kubelets with
containerd, images from the cluster's own registry, Knative's real data plane (activator pod,
queue-proxy sidecars, Traefik as the KIngress) and Prometheus' Kubernetes service discovery.

Skipped unless the cluster runs with real nodes (``GAIA_REAL_NODES=1`` in
``hack/cluster.sh env``). Run: ``GAIA_NODES=real hack/test-e2e.sh tests/e2e/test_real_nodes.py``.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.harness.cluster_env import Cluster
from tests.harness.doctor import doctor_json
from tests.harness.install import GaiaInstall
from tests.harness.kn import Kn
from tests.harness.kubectl import Kubectl
from tests.harness.paths import REPO
from tests.harness.wait import wait_until

# The first pull of the function runtime image (about 1.5 GB, from the local registry) and
# torch's import on a loaded 2-core machine take a while.
POD_TIMEOUT = float(os.environ.get("GAIA_E2E_REAL_POD_TIMEOUT", "420"))


def skip_unless_required(reason: str) -> None:
    """Skip -- or fail, where hack/test.sh runs this file on purpose (GAIA_E2E_REQUIRE_REAL_NODES=1)."""
    if os.environ.get("GAIA_E2E_REQUIRE_REAL_NODES") == "1":
        pytest.fail(f"required: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def real_nodes(cluster: Cluster):
    if cluster.env.get("GAIA_REAL_NODES") != "1":
        skip_unless_required("the cluster has no real nodes (hack/cluster.sh up --real-nodes)")


def http(url: str, *, data: bytes | None = None, headers: dict | None = None, timeout: float = 60):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, resp.read()


def prom_query(cluster: Cluster, query: str) -> list[dict]:
    url = f"{cluster.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    _, body = http(url)
    return json.loads(body)["data"]["result"]


def test_real_workers_are_ready_and_placed_like_gpu_operator_nodes(cluster: Cluster, kubectl: Kubectl):
    cpu = kubectl.json("get", "node", cluster.env["GAIA_CPU_WORKER"])
    gpu = kubectl.json("get", "node", cluster.env["GAIA_GPU_WORKER"])
    for node in (cpu, gpu):
        assert kubectl.condition(node, "Ready")["status"] == "True"
        assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
        assert node["metadata"]["labels"]["gaia.dev/node"] == "real"
    assert cpu["metadata"]["labels"]["gaia.dev/pool"] == "cpu"
    assert not cpu["spec"].get("taints")
    labels = gpu["metadata"]["labels"]
    assert labels["gaia.dev/pool"] == "gpu"
    assert labels["nvidia.com/gpu.present"] == "true"
    assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"} in gpu["spec"]["taints"]
    devices = cluster.env.get("GAIA_GPU_DEVICES", "1")
    assert gpu["status"]["capacity"]["nvidia.com/gpu"] == devices
    assert gpu["status"]["allocatable"]["nvidia.com/gpu"] == devices


def test_pod_from_local_registry_runs_on_cpu_worker_with_dns_and_clusterip(
        cluster: Cluster, kubectl: Kubectl, namespace: str):
    script = (
        "import socket, torch; "
        "ip = socket.gethostbyname('kubernetes.default.svc.cluster.local'); "
        "s = socket.create_connection(('kubernetes.default', 443), timeout=5); s.close(); "
        "print('dns', ip, 'clusterip-connect ok', 'torch', torch.__version__, "
        "'sum', int(torch.ones(3, 3).sum()))"
    )
    kubectl.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: probe}}
spec:
  restartPolicy: Never
  nodeSelector: {{gaia.dev/node: real, gaia.dev/pool: cpu}}
  containers:
  - name: c
    image: {cluster.env["GAIA_RUNTIME_IMAGE"]}
    command: [python3, -c, {json.dumps(script)}]
""", namespace)
    pod = wait_until(
        lambda: (p := kubectl.json("get", "pod", "probe", "-n", namespace))["status"].get("phase")
        in ("Succeeded", "Failed") and p,
        timeout=POD_TIMEOUT, desc="probe pod to finish")
    logs = kubectl("logs", "probe", "-n", namespace).stdout
    assert pod["status"]["phase"] == "Succeeded", logs
    assert pod["spec"]["nodeName"] == cluster.env["GAIA_CPU_WORKER"]
    assert pod["status"]["podIP"].startswith("10.245.1.")
    assert "dns 10.96.0.1 clusterip-connect ok" in logs, logs
    assert "sum 9" in logs, logs


def test_gpu_pod_runs_on_gpu_worker(cluster: Cluster, kubectl: Kubectl, namespace: str):
    """A pod that tolerates the GPU taint and asks for nvidia.com/gpu: 1 runs on the GPU-pool
    worker (the only schedulable GPU node: KWOK's are tainted gaia.dev/kwok with real nodes)."""
    kubectl.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: gpu-probe}}
spec:
  restartPolicy: Never
  nodeSelector: {{nvidia.com/gpu.present: "true"}}
  tolerations: [{{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}}]
  containers:
  - name: c
    image: {cluster.env["GAIA_RUNTIME_IMAGE"]}
    command: [python3, -c, "print('gpu pool pod ran')"]
    resources: {{limits: {{nvidia.com/gpu: 1}}}}
""", namespace)
    pod = wait_until(
        lambda: (p := kubectl.json("get", "pod", "gpu-probe", "-n", namespace))["status"].get("phase")
        in ("Succeeded", "Failed") and p,
        timeout=POD_TIMEOUT, desc="gpu-probe pod to finish")
    assert pod["status"]["phase"] == "Succeeded"
    assert pod["spec"]["nodeName"] == cluster.env["GAIA_GPU_WORKER"]
    assert "gpu pool pod ran" in kubectl("logs", "gpu-probe", "-n", namespace).stdout


def test_knative_service_runs_example_function_from_configmap(
        cluster: Cluster, kubectl: Kubectl, kn: Kn, namespace: str):
    """kn service create with the function code in a ConfigMap mounted at /app: Ready on the
    real CPU worker, a request through Traefik returns the function's real answer, and
    Prometheus (Kubernetes service discovery) holds the queue-proxy's latency series."""
    code = (REPO / "examples" / "functions" / "matmul" / "func.py").read_text()
    kubectl("create", "configmap", "matmul-src", "-n", namespace, f"--from-literal=func.py={code}")
    kn("service", "create", "matmul", "-n", namespace, "--image", cluster.env["GAIA_RUNTIME_IMAGE"],
       "--mount", "/app=cm:matmul-src", "--scale-min", "1", "--no-wait")
    ksvc = wait_until(
        lambda: (s := kubectl.json("get", "ksvc", "matmul", "-n", namespace))
        and (kubectl.condition(s, "Ready") or {}).get("status") == "True" and s,
        timeout=POD_TIMEOUT, desc="Knative Service matmul Ready")
    # Knative resolved the tag against the local registry (the revision pins a digest)
    rev = kubectl.json("get", "revision", ksvc["status"]["latestReadyRevisionName"], "-n", namespace)
    assert "@sha256:" in rev["status"]["containerStatuses"][0]["imageDigest"]
    pods = kubectl.pods(namespace, "serving.knative.dev/service=matmul")
    assert pods and all(p["spec"]["nodeName"] == cluster.env["GAIA_CPU_WORKER"] for p in pods)
    assert {c["name"] for c in pods[0]["spec"]["containers"]} == {"user-container", "queue-proxy"}

    host = urllib.parse.urlparse(ksvc["status"]["url"]).hostname
    status, body = wait_until(
        lambda: http(cluster.env["GAIA_INGRESS_URL"], data=b'{"size": 256}',
                     headers={"Host": host, "Content-Type": "application/json"}),
        timeout=120, desc=f"an answer from {host} through the ingress")
    answer = json.loads(body)
    assert status == 200
    assert answer["size"] == 256 and answer["device"] == "cpu"
    assert answer["trace"] > 0 and answer["seconds"] > 0  # computed by torch in the pod
    for _ in range(4):
        http(cluster.env["GAIA_INGRESS_URL"], data=b'{"size": 128}', headers={"Host": host})

    # every request counted, once a scrape after the last one has happened (a scrape between
    # the requests showed 2 of the 5)
    series = wait_until(
        lambda: (r := prom_query(cluster, f'kn_serving_invocation_duration_seconds_count{{namespace="{namespace}"}}'))
        and sum(float(s["value"][1]) for s in r) >= 5 and r,
        timeout=90, desc="queue-proxy latency series in Prometheus counting the 5 requests")
    labels = series[0]["metric"]
    assert labels["job"] == "queue-proxy" and labels["service"] == "matmul"
    assert labels["revision"] == ksvc["status"]["latestReadyRevisionName"]
    # the autoscaler extension's default (OpenTelemetry) join: revision identity from
    # target_info of the same scrape target (autoscaler-ext/src/observe/queries.rs)
    joined = wait_until(
        lambda: [r for r in prom_query(
            cluster,
            "sum by (k8s_namespace_name, kn_revision_name) (sum by (job, instance) "
            "(increase(kn_serving_invocation_duration_seconds_count[5m])) * on (job, instance) "
            "group_left (k8s_namespace_name, kn_revision_name) target_info)")
            if r["metric"].get("k8s_namespace_name") == namespace],
        timeout=60, desc="the autoscaler's target_info join to find the revision")
    assert joined[0]["metric"]["kn_revision_name"] == ksvc["status"]["latestReadyRevisionName"]
    # cAdvisor of the real kubelet labels the user container
    cpu = wait_until(
        lambda: prom_query(cluster, f'container_cpu_usage_seconds_total{{namespace="{namespace}",'
                                    f'container="user-container"}}'),
        timeout=90, desc="cAdvisor CPU series of the user container")
    assert cpu[0]["metric"]["job"] == "kubernetes-cadvisor"


def test_gaia_installed_from_local_registry_runs_as_pods_and_classifies(
        cluster: Cluster, kubectl: Kubectl, kn: Kn, namespace: str):
    """`kubectl apply -k` of the overlay that only sets the images to the local registry
    (GAIA_LOCAL_OVERLAY): both Deployments Ready as real pods (uid 65532, read-only root file
    system), and the webhook, reached by the apiserver through its Service, classifies a
    Knative Service's real code from its ConfigMap."""
    overlay = cluster.env["GAIA_LOCAL_OVERLAY"]
    if not any(Path(overlay).glob("kustomization.yaml")):
        skip_unless_required("no Gaia overlay (hack/cluster.sh up --real-nodes writes it)")
    catalog = json.loads(http(f"http://{cluster.env['GAIA_REGISTRY']}/v2/_catalog")[1])
    if "gaia/gaia-webhook" not in catalog["repositories"]:
        skip_unless_required("Gaia's images are not built (hack/build.sh gaia-images)")
    installed_before = kubectl("get", "deployment", "gaia-webhook", "-n", "gaia-system",
                               check=False).returncode == 0
    kubectl("apply", "-k", overlay)
    try:
        for name in ("gaia-webhook", "gaia-autoscaler"):
            kubectl("rollout", "status", f"deployment/{name}", "-n", "gaia-system", "--timeout=180s",
                    timeout=200)
        pods = kubectl.json("get", "pods", "-n", "gaia-system")["items"]
        running = [p for p in pods if p["status"].get("phase") == "Running"]
        assert len(running) >= 4
        for p in running:
            assert p["spec"]["nodeName"] == cluster.env["GAIA_CPU_WORKER"]
            assert p["spec"]["containers"][0]["image"].startswith(cluster.env["GAIA_REGISTRY"] + "/gaia/")
            assert p["spec"]["securityContext"]["runAsUser"] == 65532
            assert p["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
        code = (REPO / "examples" / "functions" / "matmul" / "func.py").read_text()
        kubectl("create", "configmap", "mm-src", "-n", namespace, f"--from-literal=func.py={code}")
        kn("service", "create", "mm", "-n", namespace, "--image", cluster.env["GAIA_RUNTIME_IMAGE"],
           "--mount", "/app=cm:mm-src", "--annotation", "gaia.dev/execution-mode=auto", "--no-wait")
        ann = kubectl.json("get", "ksvc", "mm", "-n", namespace)["metadata"]["annotations"]
        assert ann["gaia.dev/mode"] == "cpu_preferred", ann
        assert "torch" in ann["gaia.dev/rationale"]
    finally:
        if not installed_before:
            kubectl("delete", "-k", overlay, "--wait=false", check=False)


def test_gpu_standin_device_plugin_allocates_and_the_kubelet_enforces_capacity(
        cluster: Cluster, kubectl: Kubectl, namespace: str):
    """The GPU stand-in's device plugin (hack/standins/gpu-device-plugin) advertises the
    worker's nvidia.com/gpu through the kubelet: an allocated container sees its device ID and
    GAIA_GPU_STANDIN, and once every device is taken a further GPU pod waits until one is free."""
    gpu = kubectl.json("get", "node", cluster.env["GAIA_GPU_WORKER"])
    devices = int(gpu["status"]["allocatable"]["nvidia.com/gpu"])
    assert devices == int(cluster.env.get("GAIA_GPU_DEVICES", "1")) >= 1

    def pod(name: str, command: str) -> str:
        return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  nodeSelector: {{nvidia.com/gpu.present: "true"}}
  tolerations: [{{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}}]
  containers:
  - name: c
    image: {cluster.env["GAIA_RUNTIME_IMAGE"]}
    command: [sh, -c, {json.dumps(command)}]
    resources: {{limits: {{nvidia.com/gpu: 1}}}}
"""
    holders = [f"holder-{i}" for i in range(devices)]
    for name in holders:
        kubectl.apply(pod(name, 'echo "devices=$NVIDIA_VISIBLE_DEVICES standin=$GAIA_GPU_STANDIN"; sleep 600'),
                      namespace)
    seen = set()
    for name in holders:
        wait_until(lambda: kubectl.json("get", "pod", name, "-n", namespace)["status"].get("phase") == "Running",
                   timeout=POD_TIMEOUT, desc=f"GPU holder pod {name} running")
        logs = wait_until(lambda: (t := kubectl("logs", name, "-n", namespace).stdout) and t,
                          timeout=30, desc=f"{name}'s log")
        assert "standin=h100" in logs, logs
        seen.add(logs.split("devices=")[1].split()[0])
    # each holder got a device of its own, with the ID NVIDIA's plugin would give
    assert seen == {f"GPU-standin-{cluster.env['GAIA_GPU_WORKER']}-{i}" for i in range(devices)}, seen

    kubectl.apply(pod("waiter", "echo got the gpu"), namespace)
    unschedulable = wait_until(
        lambda: [c for c in kubectl.json("get", "pod", "waiter", "-n", namespace)["status"].get("conditions", [])
                 if c["type"] == "PodScheduled" and c["status"] == "False"],
        timeout=60, desc="the GPU pod beyond the node's devices unschedulable")
    assert "nvidia.com/gpu" in unschedulable[0].get("message", ""), unschedulable
    kubectl("delete", "pod", holders[0], "-n", namespace, "--wait=true", timeout=120)
    done = wait_until(
        lambda: (p := kubectl.json("get", "pod", "waiter", "-n", namespace))["status"].get("phase")
        in ("Succeeded", "Failed") and p,
        timeout=POD_TIMEOUT, desc="the waiting GPU pod to run once a device is free")
    assert done["status"]["phase"] == "Succeeded"
    assert done["spec"]["nodeName"] == cluster.env["GAIA_GPU_WORKER"]


# The product's rules with a shorter clock, as in tests/e2e/test_autoscaler.py, but windows
# long enough for real cAdvisor data: the kubelet's cAdvisor stamps its CPU samples every
# 10-15 s (housekeeping), so a 20 s rate() often holds one sample and no rate.
FAST_AUTOSCALER = {
    "interval": "2s",
    "policy": {"shortWindow": "40s", "longWindow": "80s", "promote": {"minRequests": 10},
               "verify": {"settle": "20s", "minRequests": 10}, "hysteresis": {"minDwell": "30s"},
               "rolloutTimeout": "5m"},
    "leaderElection": {"leaseDuration": "6s", "renewDeadline": "4s", "retryPeriod": "1s"},
}


class Load:
    """Back-to-back requests through the ingress in a thread: how real users would load it."""

    def __init__(self, cluster: Cluster, host: str, body: dict):
        self.url, self.host, self.body = cluster.env["GAIA_INGRESS_URL"], host, json.dumps(body).encode()
        self.answers: list[dict] = []
        self.errors = 0
        self.running = threading.Event()
        self.running.set()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running.is_set():
            try:
                _, body = http(self.url, data=self.body, timeout=30,
                               headers={"Host": self.host, "Content-Type": "application/json"})
                self.answers.append(json.loads(body))
            except Exception:  # noqa: BLE001 -- a failed request is counted, the load goes on
                self.errors += 1
                time.sleep(0.2)

    def stop(self) -> None:
        self.running.clear()
        self.thread.join(timeout=60)


def test_promotion_and_demotion_on_real_pods(cluster: Cluster, kubectl: Kubectl, kn: Kn, namespace: str):
    """Gaia installed as pods; a cpu_preferred function (the matmul example, its code in a
    ConfigMap) pushed past its SLO by real CPU work on the CPU worker is promoted: the new
    revision's pod runs on the GPU-pool worker (the stand-in answers there), takes the traffic
    and is verified; once idle it is demoted to a CPU pod again. An Event explains each step."""
    overlay = Path(cluster.env["GAIA_LOCAL_OVERLAY"])
    if not (overlay / "kustomization.yaml").exists():
        skip_unless_required("no Gaia overlay (hack/cluster.sh up --real-nodes writes it)")
    install = GaiaInstall(cluster, Path(tempfile.mkdtemp(prefix="gaia-real-promote-")), None,
                          autoscaler_overrides={**FAST_AUTOSCALER, "namespace": namespace})
    load = None
    try:
        install.start_as_pods(overlay)
        code = (REPO / "examples" / "functions" / "matmul" / "func.py").read_text()
        kubectl("create", "configmap", "matmul-src", "-n", namespace, f"--from-literal=func.py={code}")
        kn("service", "create", "matmul", "-n", namespace, "--image", cluster.env["GAIA_RUNTIME_IMAGE"],
           "--mount", "/app=cm:matmul-src", "--scale-min", "1", "--request", "cpu=250m", "--limit", "cpu=1",
           "--annotation", "gaia.dev/execution-mode=auto", "--annotation", "gaia.dev/latency-slo=200ms",
           "--no-wait")
        ann = kubectl.json("get", "ksvc", "matmul", "-n", namespace)["metadata"]["annotations"]
        assert ann["gaia.dev/mode"] == "cpu_preferred", ann

        def ready(not_in: set[str]) -> str | None:
            st = kubectl.json("get", "ksvc", "matmul", "-n", namespace).get("status", {})
            r = st.get("latestReadyRevisionName")
            return r if r and r == st.get("latestCreatedRevisionName") and r not in not_in else None

        def node_of(revision: str) -> str:
            pods = [p for p in kubectl.pods(namespace, f"serving.knative.dev/revision={revision}")
                    if p["status"].get("phase") == "Running"]
            return pods[0]["spec"]["nodeName"] if pods else ""

        r1 = wait_until(lambda: ready(set()), timeout=POD_TIMEOUT, desc="the CPU revision Ready")
        assert node_of(r1) == cluster.env["GAIA_CPU_WORKER"]
        host = urllib.parse.urlparse(kubectl.json("get", "ksvc", "matmul", "-n", namespace)["status"]["url"]).hostname
        load = Load(cluster, host, {"size": 1024})  # about 1 s on one throttled core here

        def desired(want: str) -> bool:
            a = kubectl.json("get", "ksvc", "matmul", "-n", namespace)["metadata"]["annotations"]
            return a.get("gaia.dev/desired-placement") == want

        wait_until(lambda: desired("gpu"), timeout=300, desc="promotion to gpu", interval=2)
        assert any(a.get("device") == "cpu" for a in load.answers)  # the real CPU computed first
        ev = kubectl.events_for(namespace, "matmul", "PromotedToGpu")
        assert ev and "SLO 200ms" in ev[0]["message"], ev
        r2 = wait_until(lambda: ready({r1}), timeout=POD_TIMEOUT, desc="the GPU revision Ready")
        assert node_of(r2) == cluster.env["GAIA_GPU_WORKER"]
        # the traffic moved: answers now come from the GPU stand-in
        n = len(load.answers)
        wait_until(lambda: any(a.get("standin") == "gpu" for a in load.answers[n:]), timeout=120,
                   desc="answers from the GPU revision")
        wait_until(lambda: kubectl.events_for(namespace, "matmul", "GpuVerified"), timeout=180,
                   desc="GpuVerified Event")
        # The metric generation: this cluster is stamped like a release install (render-knative.py
        # --release), the autoscaler picks the generation from that release, and it is the one
        # whose series Knative's real queue-proxies export.
        release = kubectl.json("get", "namespace", "knative-serving")["metadata"]["labels"].get(
            "app.kubernetes.io/version")
        assert release and release != "devel", release
        _, report = doctor_json(cluster, "--prometheus", cluster.prometheus_url)
        m = report["metrics"]
        assert (m["generation"], m["chosenBy"], m["knativeVersion"]) == ("opentelemetry", "release", release), m
        assert m["generation"] in m["seriesFound"], m

        load.stop()
        wait_until(lambda: desired("cpu"), timeout=400, desc="demotion to cpu once idle", interval=2)
        ev = kubectl.events_for(namespace, "matmul", "DemotedToCpu")
        assert ev and "idle" in ev[0]["message"], ev
        r3 = wait_until(lambda: ready({r1, r2}), timeout=POD_TIMEOUT, desc="the new CPU revision Ready")
        assert node_of(r3) == cluster.env["GAIA_CPU_WORKER"]
    finally:
        if load:
            load.stop()
        install.stop()


@pytest.fixture
def gaia_pods(cluster: Cluster):
    """Gaia installed as pods from the overlay (2 replicas each), with the fast lease of
    FAST_AUTOSCALER; uninstalled afterwards."""
    overlay = Path(cluster.env["GAIA_LOCAL_OVERLAY"])
    if not (overlay / "kustomization.yaml").exists():
        skip_unless_required("no Gaia overlay (hack/cluster.sh up --real-nodes writes it)")
    install = GaiaInstall(cluster, Path(tempfile.mkdtemp(prefix="gaia-real-pods-")), None,
                          autoscaler_overrides=FAST_AUTOSCALER)
    try:
        install.start_as_pods(overlay)
        yield install
    finally:
        install.stop()


def test_the_standby_autoscaler_pod_leads_within_the_lease_when_the_leader_is_deleted(
        cluster: Cluster, kubectl: Kubectl, gaia_pods: GaiaInstall):
    def holder() -> str:
        lease = kubectl.json("get", "lease", "gaia-autoscaler", "-n", "gaia-system")
        return lease["spec"].get("holderIdentity") or ""

    leader = wait_until(holder, timeout=60, desc="a leader")
    pods = {p["metadata"]["name"] for p in kubectl.pods("gaia-system", "app.kubernetes.io/name=gaia-autoscaler")}
    leader_pod = next(p for p in pods if leader.startswith(p))
    # no graceful release: the standby must take over by the lease running out (6 s here)
    kubectl("delete", "pod", leader_pod, "-n", "gaia-system", "--grace-period=0", "--force", "--wait=false")
    t0 = time.monotonic()
    new = wait_until(lambda: (h := holder()) and not h.startswith(leader_pod) and h, timeout=60,
                     desc="the standby to lead", interval=0.5)
    took = time.monotonic() - t0
    assert any(new.startswith(p) for p in pods - {leader_pod}), (new, pods)
    assert took < 6 + 4, f"the standby took {took:.1f} s (lease 6 s, retry 1 s)"


def test_no_service_goes_unclassified_while_the_webhook_pods_are_replaced(
        cluster: Cluster, kubectl: Kubectl, kn: Kn, namespace: str, gaia_pods: GaiaInstall):
    """`kn service create` in a loop while both webhook pods are deleted, one after the other
    (the second once the first one's replacement is Ready): every create succeeds and every
    Service is classified. The webhook's failurePolicy is Ignore, so a review that reached no
    webhook would admit the Service silently unclassified; the apiserver keeps its connection to
    one pod, and deleting both makes sure the one it talks to goes."""
    code = (REPO / "examples" / "functions" / "idle_wait" / "func.py").read_text()
    kubectl("create", "configmap", "idle-src", "-n", namespace, f"--from-literal=func.py={code}")
    selector = "app.kubernetes.io/name=gaia-webhook"
    webhooks = [p["metadata"]["name"] for p in kubectl.pods("gaia-system", selector)]
    assert len(webhooks) == 2, webhooks

    def ready_replacements() -> int:
        return sum(1 for p in kubectl.pods("gaia-system", selector)
                   if p["metadata"]["name"] not in webhooks and not p["metadata"].get("deletionTimestamp")
                   and (kubectl.condition(p, "Ready") or {}).get("status") == "True")

    names = [f"f{i:02d}" for i in range(16)]
    for i, name in enumerate(names):
        if i == 3:
            kubectl("delete", "pod", webhooks[0], "-n", "gaia-system", "--wait=false")
        if i == 9:
            wait_until(lambda: ready_replacements() >= 1, timeout=120, desc="the first replacement Ready")
            kubectl("delete", "pod", webhooks[1], "-n", "gaia-system", "--wait=false")
        # --no-wait: the Services need not become Ready, only be admitted
        kn("service", "create", name, "-n", namespace, "--image", cluster.env["GAIA_RUNTIME_IMAGE"],
           "--mount", "/app=cm:idle-src", "--annotation", "gaia.dev/execution-mode=auto",
           "--scale-max", "1", "--no-wait")
        time.sleep(0.2)
    modes = {}
    for name in names:
        ann = kubectl.json("get", "ksvc", name, "-n", namespace)["metadata"].get("annotations", {})
        modes[name] = ann.get("gaia.dev/mode")
    assert all(m == "cpu" for m in modes.values()), modes
    # both original pods are gone: whichever the apiserver was talking to was replaced
    left = {p["metadata"]["name"] for p in kubectl.pods("gaia-system", selector)
            if not p["metadata"].get("deletionTimestamp")}
    assert not left & set(webhooks), left


def test_the_demo_runs_on_the_real_data_plane(cluster: Cluster, kubectl: Kubectl):
    """`hack/demo.sh --short --use-running-cluster` on the cluster with real nodes: Gaia installed
    as pods, the four example functions as real pods from the runtime image (code in
    ConfigMaps), every request through Traefik; the CPU worker computes for real, the GPU-pool
    worker's stand-in answers for the gpu_preferred function, a promotion happens, the idle
    function never reaches a GPU, and everything is removed afterwards."""
    overlay = Path(cluster.env["GAIA_LOCAL_OVERLAY"])
    if not (overlay / "kustomization.yaml").exists():
        skip_unless_required("no Gaia overlay (hack/cluster.sh up --real-nodes writes it)")
    out = Path(tempfile.mkdtemp(prefix="gaia-demo-real-"))
    proc = subprocess.run([str(REPO / "hack" / "demo.sh"), "--short", "--use-running-cluster",
                           "--debug-build", "--out", str(out)],
                          env=cluster.process_env(), capture_output=True, text=True, timeout=1200)
    output = proc.stdout + proc.stderr
    print(output[-5000:])
    assert proc.returncode == 0, output[-6000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data_plane"] == "real"
    assert "data plane: real" in output and "GPU STAND-IN" in output
    fns = summary["functions"]
    # each function answered through the ingress
    assert all(f["requests"] > 0 for f in fns.values()), fns
    # the real CPU worker computed; the stand-in answered the function that starts on a GPU
    assert fns["matmul"]["mode"] == "cpu_preferred" and fns["matmul"]["requests_cpu"] > 0, fns["matmul"]
    tg = fns["text-generation"]
    assert tg["mode"] == "gpu_preferred" and tg["requests_gpu"] > 0, tg
    promoted = [n for n, f in fns.items() if f["promotions"] >= 1]
    assert promoted and any(fns[n]["requests_gpu"] > 0 for n in promoted), fns
    assert fns["idle-wait"]["mode"] == "cpu" and fns["idle-wait"]["requests_gpu"] == 0, fns["idle-wait"]
    assert (out / "demo.png").stat().st_size > 10_000
    # cleaned up: no demo pod, no Gaia install
    assert not kubectl("get", "pods", "-n", "gaia-demo", "-o", "name", check=False).stdout.strip()
    assert kubectl("get", "mutatingwebhookconfiguration", "gaia-webhook", check=False).returncode != 0
