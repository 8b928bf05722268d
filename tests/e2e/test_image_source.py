"""The webhook reading a Service's code from its container image (docs/image-source.md), through
the real apiserver: the image is built with hack/images/oci.py and pushed to a CNCF distribution
registry (Debian's docker-registry) listening on 127.0.0.1 inside the cluster's network
namespace, where the webhook process also runs; `kubectl apply` of a Service with no inline
source and no ConfigMap is classified from the image, and its pod lands where the verdict says.
"""
from __future__ import annotations

import json
import shutil
import socket
import tempfile
import textwrap
from pathlib import Path

import pytest

from tests.harness.cluster_env import Cluster
from tests.harness.kubectl import Kubectl
from tests.harness.paths import REPO
from tests.harness.proc import Proc, run
from tests.harness.wait import wait_until
from tests.harness.webhook_process import WebhookProcess

OCI = REPO / "hack" / "images" / "oci.py"
REGISTRY_BIN = Path("/usr/bin/docker-registry")
PORT = 18571  # inside the cluster's network namespace only


def start_registry(cluster: Cluster, work: Path, port: int) -> Proc:
    """docker-registry on 127.0.0.1:PORT in the cluster's netns, storage under WORK."""
    (work / f"config-{port}.yml").write_text(textwrap.dedent(f"""\
        version: 0.1
        log: {{level: error}}
        storage: {{filesystem: {{rootdirectory: {work / 'data'}}}}}
        http: {{addr: 127.0.0.1:{port}}}
        """))
    proc = Proc(cluster.in_netns(str(REGISTRY_BIN), "serve", str(work / f"config-{port}.yml")),
                work / f"registry-{port}.log", cluster.process_env())
    wait_until(lambda: run(cluster.in_netns("curl", "-sf", f"http://127.0.0.1:{port}/v2/"),
                           check=False, timeout=10).returncode == 0,
               timeout=30, desc="registry in the cluster's netns")
    return proc


@pytest.fixture(scope="module")
def registry(cluster: Cluster):
    if not REGISTRY_BIN.exists():
        pytest.skip("docker-registry missing (hack/setup.sh installs it)")
    work = Path(tempfile.mkdtemp(prefix="gaia-e2e-registry-"))
    proc = start_registry(cluster, work, PORT)
    yield f"127.0.0.1:{PORT}", work
    proc.stop(grace=5)
    shutil.rmtree(work, ignore_errors=True)


def push_function(cluster: Cluster, registry: tuple[str, Path], repo_tag: str, files: dict[str, str]) -> str:
    addr, work = registry
    root = work / repo_tag.replace("/", "_").replace(":", "_")
    for path, text in files.items():
        (root / "tree" / path).parent.mkdir(parents=True, exist_ok=True)
        (root / "tree" / path).write_text(text)
    run(["python3", str(OCI), "layer-dir", str(root / "code.tar"), str(root / "tree")])
    run(["python3", str(OCI), "image", str(root / "layout"), "--layer", str(root / "code.tar"),
         "--workdir", "/app", "--cmd", '["python3", "func.py"]'])
    out = run(cluster.in_netns("python3", str(OCI), "push", str(root / "layout"), addr, repo_tag)).stdout
    return out.split("@", 1)[1].split()[0]


@pytest.fixture(scope="module")
def image_webhook(cluster: Cluster, kubectl: Kubectl, registry):
    addr, _ = registry
    hook = WebhookProcess(cluster, kubectl, "gaia-webhook-image-e2e", 18444,
                          config_yaml=f"image:\n  registries:\n    plainHttp: [\"{addr}\", \"127.0.0.1:{PORT + 1}\"]\n").start()
    yield hook
    hook.unregister()
    hook.stop()


def service(name: str, image: str) -> str:
    return json.dumps({
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": name, "annotations": {"gaia.dev/execution-mode": "auto"}},
        "spec": {"template": {
            "metadata": {"annotations": {"autoscaling.knative.dev/min-scale": "1"}},
            "spec": {"containers": [{"image": image}]}}},
    })


def test_code_only_in_the_image_is_classified_and_placed(image_webhook, cluster, registry, kubectl, namespace):
    addr, _ = registry
    digest = push_function(cluster, registry, "fn/imggpu:v1", {
        "app/func.py": "from model import net\n\ndef handle(req):\n    return net(req)\n",
        "app/model.py": "import torch\nnet = torch.nn.Linear(8, 8).cuda()\n",
        "app/tests/test_func.py": "import tensorflow\n",
    })
    image = f"{addr}/fn/imggpu:v1"
    kubectl.apply(service("imggpu", image), namespace=namespace)
    svc = kubectl.json("get", "ksvc", "imggpu", "-n", namespace)
    a = svc["metadata"]["annotations"]
    assert a["gaia.dev/mode"] == "gpu", a
    assert a["gaia.dev/mode-source"] == "classifier", a
    assert a["gaia.dev/source-origin"] == f"image:{image}", a
    assert a["gaia.dev/image-digest"] == digest, a
    findings = json.loads(a["gaia.dev/findings"])
    assert {f["file"] for f in findings} == {"app/model.py"}, findings
    assert svc["spec"]["template"]["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    pools = kubectl.nodes_by_pool()

    def gpu_pod_nodes():
        pods = kubectl.pods(namespace, "serving.knative.dev/service=imggpu")
        return {p["spec"].get("nodeName") for p in pods if p["status"].get("phase") == "Running"}

    nodes = wait_until(gpu_pod_nodes, timeout=180, desc="a running imggpu pod")
    assert nodes <= pools["gpu"], f"imggpu pod on {nodes}, GPU nodes are {pools['gpu']}"


def test_an_unreachable_registry_admits_with_the_default_mode(image_webhook, kubectl, namespace):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = kubectl("apply", "-n", namespace, "-f", "-",
                  input=service("imgdown", f"127.0.0.1:{port}/fn/nothing:v1")).stderr
    svc = kubectl.json("get", "ksvc", "imgdown", "-n", namespace)
    a = svc["metadata"]["annotations"]
    assert a["gaia.dev/mode"] == "cpu_preferred", a
    assert a["gaia.dev/mode-source"] == "default", a
    assert "registry" in a["gaia.dev/rationale"], a
    assert "gaia:" in out, out


def test_the_verdict_arrives_once_the_registry_is_back(image_webhook, cluster, registry, kubectl, namespace):
    """Registry down at create: default mode and a warning, the create succeeds; the webhook's
    follow-up loop patches the verdict on once the registry answers again."""
    _, work = registry
    port = PORT + 1
    second = start_registry(cluster, work, port)
    push_function(cluster, (f"127.0.0.1:{port}", work), "fn/later:v1", {
        "app/func.py": "import torch\nx = torch.ones(4).cuda()\n\ndef handle(req):\n    return {}\n",
    })
    second.stop(grace=5)
    image = f"127.0.0.1:{port}/fn/later:v1"
    kubectl.apply(service("later", image), namespace=namespace)
    a = kubectl.json("get", "ksvc", "later", "-n", namespace)["metadata"]["annotations"]
    assert a["gaia.dev/mode-source"] == "default", a
    second = start_registry(cluster, work, port)
    try:
        def classified():
            a = kubectl.json("get", "ksvc", "later", "-n", namespace)["metadata"]["annotations"]
            return a if a.get("gaia.dev/mode-source") == "classifier" else None

        a = wait_until(classified, timeout=150, desc="the verdict written after the review")
        assert a["gaia.dev/mode"] == "gpu", a
        assert a["gaia.dev/source-origin"] == f"image:{image}", a
        svc = kubectl.json("get", "ksvc", "later", "-n", namespace)
        assert svc["spec"]["template"]["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    finally:
        second.stop(grace=5)


def test_a_service_created_just_after_its_tag_moved_is_classified_from_the_new_image(
        image_webhook, cluster, registry, kubectl, namespace):
    """A tag the webhook resolved lately answers the next review without asking the registry
    (docs/image-source.md, image.tagTtl); the registry is asked in the background, and a Service
    admitted from the tag's old digest is classified again by the follow-up loop."""
    addr, _ = registry
    image = f"{addr}/fn/moving:v1"
    old = push_function(cluster, registry, "fn/moving:v1", {
        "app/func.py": "import json\n\ndef handle(req):\n    return json.dumps(req)\n",
    })
    kubectl.apply(service("tagfirst", image), namespace=namespace)
    a = kubectl.json("get", "ksvc", "tagfirst", "-n", namespace)["metadata"]["annotations"]
    assert (a["gaia.dev/mode"], a["gaia.dev/image-digest"]) == ("cpu", old), a
    new = push_function(cluster, registry, "fn/moving:v1", {
        "app/func.py": "import torch\nx = torch.ones(4).cuda()\n\ndef handle(req):\n    return {}\n",
    })
    assert new != old
    kubectl.apply(service("tagnext", image), namespace=namespace)

    def from_new_image():
        a = kubectl.json("get", "ksvc", "tagnext", "-n", namespace)["metadata"]["annotations"]
        return a if a.get("gaia.dev/image-digest") == new else None

    a = wait_until(from_new_image, timeout=60, desc="tagnext classified from the moved tag")
    assert a["gaia.dev/mode"] == "gpu", a
    assert a["gaia.dev/mode-source"] == "classifier", a
