"""Real worker nodes (hack/cluster.sh up --real-nodes, hack/nodes.sh): real kubelets with
containerd, images from the cluster's own registry, Knative's real data plane (activator pod,
queue-proxy sidecars, Traefik as the KIngress) and Prometheus' Kubernetes service discovery.

Skipped unless the cluster runs with real nodes (``GAIA_REAL_NODES=1`` in
``hack/cluster.sh env``). Run: ``GAIA_NODES=real hack/test-e2e.sh tests/e2e/test_real_nodes.py``.
"""
from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.harness.cluster_env import Cluster
from tests.harness.kn import Kn
from tests.harness.kubectl import Kubectl
from tests.harness.paths import REPO
from tests.harness.wait import wait_until

# The first pull of the function runtime image (about 1.5 GB, from the local registry) and
# torch's import on a loaded 2-core machine take a while.
POD_TIMEOUT = float(os.environ.get("GAIA_E2E_REAL_POD_TIMEOUT", "420"))


@pytest.fixture(autouse=True)
def real_nodes(cluster: Cluster):
    if cluster.env.get("GAIA_REAL_NODES") != "1":
        pytest.skip("the cluster has no real nodes (hack/cluster.sh up --real-nodes)")


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
    assert gpu["status"]["capacity"]["nvidia.com/gpu"] == "1"
    assert gpu["status"]["allocatable"]["nvidia.com/gpu"] == "1"


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

    series = wait_until(
        lambda: prom_query(cluster, f'kn_serving_invocation_duration_seconds_count{{namespace="{namespace}"}}'),
        timeout=90, desc="queue-proxy latency series in Prometheus")
    labels = series[0]["metric"]
    assert labels["job"] == "queue-proxy" and labels["service"] == "matmul"
    assert labels["revision"] == ksvc["status"]["latestReadyRevisionName"]
    assert sum(float(s["value"][1]) for s in series) >= 5
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
        pytest.skip("no Gaia overlay (hack/cluster.sh up --real-nodes writes it)")
    catalog = json.loads(http(f"http://{cluster.env['GAIA_REGISTRY']}/v2/_catalog")[1])
    if "gaia/gaia-webhook" not in catalog["repositories"]:
        pytest.skip("Gaia's images are not built (hack/build.sh gaia-images)")
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
