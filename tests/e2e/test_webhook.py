"""gaia-webhook through the real apiserver: registered by a MutatingWebhookConfiguration,
called for `kn service create/update`, its patch accepted by Knative's own webhook, and the
revisions' pods placed by the real kube-scheduler on GPU or CPU nodes.

The webhook runs as a process inside the cluster's network namespace (so the apiserver reaches
it on 127.0.0.1) with the cluster's admin kubeconfig (tests/harness/webhook_process.py); the
shipped manifests and their RBAC are tested separately.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import pytest

from tests.harness.cluster_env import Cluster
from tests.harness.kn import Kn
from tests.harness.kubectl import Kubectl
from tests.harness.paths import REPO
from tests.harness.wait import wait_until
from tests.harness.webhook_process import WebhookProcess

FUNCTIONS = REPO / "examples" / "functions"


@pytest.fixture(scope="module")
def gaia_webhook(cluster: Cluster, kubectl: Kubectl):
    # config-features read every second (30 s by default), for the test that changes it
    hook = WebhookProcess(cluster, kubectl, "gaia-webhook-e2e", 18443,
                          extra_args=("--knative-features-seconds", "1")).start()
    yield hook
    hook.unregister()
    hook.stop()


def ksvc(kubectl: Kubectl, namespace: str, name: str) -> dict:
    return kubectl.json("get", "ksvc", name, "-n", namespace)


def annotations(obj: dict) -> dict:
    return obj["metadata"].get("annotations", {}) or {}


def running_pod_nodes(kubectl: Kubectl, namespace: str, name: str, revision: str | None = None) -> set[str]:
    selector = f"serving.knative.dev/service={name}"
    if revision:
        selector = f"serving.knative.dev/revision={revision}"
    pods = kubectl.pods(namespace, selector)
    return {p["spec"].get("nodeName") for p in pods
            if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")}


def configmap_from(kubectl: Kubectl, namespace: str, name: str, directory: Path) -> None:
    files = [f"--from-file={p.name}={p}" for p in sorted(directory.glob("*.py"))]
    kubectl("create", "configmap", name, "-n", namespace, *files)


def kn_create(kn: Kn, namespace: str, name: str, *extra: str) -> str:
    return kn("service", "create", name, "-n", namespace, "--image", f"dev.local/gaia/{name}:1",
              "--scale-min", "1", "--wait-timeout", "180", *extra).stdout


def test_gpu_heavy_function_from_a_configmap_is_placed_on_a_gpu_node(gaia_webhook, kubectl, kn, namespace):
    pools = kubectl.nodes_by_pool()
    configmap_from(kubectl, namespace, "textgen-src", FUNCTIONS / "text_generation")
    kn_create(kn, namespace, "textgen", "--mount", "/app=cm:textgen-src",
              "--annotation", "gaia.dev/execution-mode=auto")

    svc = ksvc(kubectl, namespace, "textgen")
    a = annotations(svc)
    assert a["gaia.dev/mode"] == "gpu_preferred", a
    assert a["gaia.dev/mode-source"] == "classifier"
    assert "1.1B" in a["gaia.dev/rationale"] or "TinyLlama" in a["gaia.dev/rationale"], a
    assert a["gaia.dev/source-digest"].startswith("sha256:")
    findings = json.loads(a["gaia.dev/findings"])
    assert any(f["file"] == "model.py" for f in findings), findings
    template = svc["spec"]["template"]
    assert template["metadata"]["annotations"]["gaia.dev/placed-for"] == "gpu"
    # Knative's own webhook accepted the injected fields, and the revision became Ready
    assert template["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert kubectl.condition(svc, "Ready")["status"] == "True"
    nodes = wait_until(lambda: running_pod_nodes(kubectl, namespace, "textgen"),
                       desc="a running textgen pod")
    assert nodes <= pools["gpu"], f"textgen pod on {nodes}, GPU nodes are {pools['gpu']}"

    # `kn service update --env` keeps the placement; the new revision is on a GPU node too
    kn("service", "update", "textgen", "-n", namespace, "--env", "X=Y", "--wait-timeout", "180")
    svc = ksvc(kubectl, namespace, "textgen")
    assert annotations(svc)["gaia.dev/mode"] == "gpu_preferred"
    assert svc["spec"]["template"]["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    revision = svc["status"]["latestReadyRevisionName"]
    assert revision.endswith("00002"), revision
    nodes = wait_until(lambda: running_pod_nodes(kubectl, namespace, "textgen", revision),
                       desc="a running pod of the updated revision")
    assert nodes <= pools["gpu"], nodes


def test_a_placement_knative_would_reject_is_left_out_and_the_service_is_still_created(
        gaia_webhook, kubectl, namespace):
    """With config-features leaving tolerations off (Knative's default), Knative's own webhook
    would reject the GPU placement Gaia injects, and with it the Service. The Service is created
    anyway: mode and rationale written, the placement left out, and the user told why and how
    to fix it. Once the flag is on again, the next Service is placed as usual."""
    def features() -> dict:
        return kubectl.json("get", "configmap", "config-features", "-n", "knative-serving")["data"]

    def set_tolerations(value: str) -> None:
        kubectl("patch", "configmap", "config-features", "-n", "knative-serving", "--type", "merge",
                "-p", json.dumps({"data": {"kubernetes.podspec-tolerations": value}}))
        time.sleep(3)  # the webhook reads config-features every second here

    configmap_from(kubectl, namespace, "textgen-src", FUNCTIONS / "text_generation")

    def create(name: str):
        return kubectl("create", "-n", namespace, "-f", "-", input=json.dumps({
            "apiVersion": "serving.knative.dev/v1", "kind": "Service",
            "metadata": {"name": name, "annotations": {"gaia.dev/execution-mode": "auto"}},
            "spec": {"template": {"spec": {
                "containers": [{"image": f"dev.local/gaia/{name}:1",
                                "volumeMounts": [{"name": "src", "mountPath": "/app"}]}],
                "volumes": [{"name": "src", "configMap": {"name": "textgen-src"}}]}}},
        }))

    before = features().get("kubernetes.podspec-tolerations", "disabled")
    set_tolerations("disabled")
    try:
        out = create("textgen-gated")
        assert "placement not injected" in out.stderr and "kubernetes.podspec-tolerations" in out.stderr, out.stderr
        assert "manifests/knative-features" in out.stderr, out.stderr
        svc = ksvc(kubectl, namespace, "textgen-gated")
        a = annotations(svc)
        assert a["gaia.dev/mode"] == "gpu_preferred", a
        assert "placement not injected" in a["gaia.dev/rationale"], a
        spec = svc["spec"]["template"]["spec"]
        assert "nodeSelector" not in spec and "tolerations" not in spec, spec
        assert "gaia.dev/placed-for" not in (svc["spec"]["template"]["metadata"].get("annotations") or {})
    finally:
        set_tolerations(before)
    assert before.lower() in ("enabled", "allowed"), before  # the local cluster enables it
    create("textgen-placed")
    spec = ksvc(kubectl, namespace, "textgen-placed")["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}, spec


def test_idle_function_is_cpu_and_runs_on_a_cpu_node(gaia_webhook, kubectl, kn, namespace):
    pools = kubectl.nodes_by_pool()
    configmap_from(kubectl, namespace, "idle-src", FUNCTIONS / "idle_wait")
    kn_create(kn, namespace, "idle", "--mount", "/app=cm:idle-src",
              "--annotation", "gaia.dev/execution-mode=auto")
    svc = ksvc(kubectl, namespace, "idle")
    a = annotations(svc)
    assert (a["gaia.dev/mode"], a["gaia.dev/mode-source"]) == ("cpu", "classifier"), a
    spec = svc["spec"]["template"]["spec"]
    assert "nodeSelector" not in spec and "tolerations" not in spec
    assert "nvidia.com/gpu" not in (spec["containers"][0].get("resources", {}).get("limits") or {})
    nodes = wait_until(lambda: running_pod_nodes(kubectl, namespace, "idle"), desc="a running idle pod")
    assert nodes <= pools["cpu"], nodes


def test_services_without_the_annotation_are_untouched(gaia_webhook, kubectl, kn, namespace):
    kn_create(kn, namespace, "plain")
    a = annotations(ksvc(kubectl, namespace, "plain"))
    assert not [k for k in a if k.startswith("gaia.dev/")], a


def test_a_namespace_label_opts_every_service_in(gaia_webhook, kubectl, kn, namespace):
    kubectl("label", "namespace", namespace, "gaia.dev/inject=enabled")
    # the webhook learns labels from a watch: give it a moment
    def labelled_create():
        kn("service", "delete", "labelled", "-n", namespace, check=False)
        kn_create(kn, namespace, "labelled", "--annotation", "gaia.dev/source=import time\ntime.sleep(1)\n")
        return annotations(ksvc(kubectl, namespace, "labelled")).get("gaia.dev/mode")
    assert wait_until(labelled_create, timeout=60, desc="namespace opt-in") == "cpu"


def test_invalid_utf8_source_is_admitted_with_the_default_mode(gaia_webhook, kubectl, kn, namespace):
    junk = Path(tempfile.mkdtemp()) / "func.py"
    junk.write_bytes(b"import torch\n\xff\xfe\x00 not utf-8 \x80\n")
    kubectl("create", "configmap", "junk-src", "-n", namespace, f"--from-file=func.py={junk}")
    cm = kubectl.json("get", "configmap", "junk-src", "-n", namespace)
    assert "func.py" in (cm.get("binaryData") or {}), "kubectl stores non-UTF-8 files as binaryData"
    out = kn_create(kn, namespace, "junk", "--mount", "/app=cm:junk-src",
                    "--annotation", "gaia.dev/execution-mode=auto")
    a = annotations(ksvc(kubectl, namespace, "junk"))
    assert a["gaia.dev/mode"] in ("cpu_preferred", "cpu"), a
    assert a["gaia.dev/rationale"], a
    print(out)


def test_a_stopped_webhook_with_failure_policy_ignore_does_not_block_deploys(
        gaia_webhook, cluster, kubectl, kn, namespace):
    gaia_webhook.unregister()  # only the stopped one is registered during this test
    hook = WebhookProcess(cluster, kubectl, "gaia-webhook-stopped", 18444).start()
    try:
        hook.stop()
        kn_create(kn, namespace, "unblocked", "--annotation", "gaia.dev/execution-mode=auto")
        svc = ksvc(kubectl, namespace, "unblocked")
        assert kubectl.condition(svc, "Ready")["status"] == "True"
        assert "gaia.dev/mode" not in annotations(svc)
    finally:
        hook.unregister()
        hook.stop()
        gaia_webhook.register()
