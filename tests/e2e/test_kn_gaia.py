"""`kn gaia status` and `kn gaia explain` against the local cluster, through the real kn's plugin
mechanism (kn runs `kn-gaia` from PATH) and standalone.

Two ways a Service gets Gaia's annotations here:
* written with kubectl, as the webhook and the autoscaler would have (every field, known values;
  opted in as by a namespace label, so no webhook on the shared cluster rewrites them);
* through the real gaia-webhook (tests/harness/webhook_process.py), registered for this test's
  namespace only, so that other engineers' namespaces on the shared cluster are not touched.

The decision history is an events.k8s.io/v1 Event shaped like the autoscaler's
(`autoscaler-ext/src/act.rs`: reason PromotedToGpu, action Promote, reportingController
gaia-autoscaler).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.harness.cluster_env import Cluster
from tests.harness.kubectl import Kubectl
from tests.harness.paths import CARGO_TARGET
from tests.harness.proc import run
from tests.harness.wait import wait_until
from tests.harness.webhook_process import WebhookProcess

FINDINGS = [
    {"kind": "device_use", "file": "func.py", "line": 7, "detail": ".to(device)", "guarded": True},
    {"kind": "framework_import", "file": "func.py", "line": 1, "detail": "import torch", "guarded": False},
]
OBSERVED = {
    "cpu": {"p95Ms": 1234.5, "rps": 2.0, "at": "2026-11-22T20:00:00Z"},
    "gpu": {"p95Ms": 80, "rps": 2.5, "at": "2026-11-22T20:10:00Z"},
    "lastMove": {"from": "cpu", "to": "gpu", "at": "2026-11-22T20:05:00Z",
                 "reason": "p95 1235ms > SLO 300ms"},
}
GPU_SOURCE = """\
import torch

def handle(req):
    device = "cuda" if torch.cuda.is_available() else "cpu"
    x = torch.randn(2048, 2048)
    y = torch.randn(2048, 2048)
    return (x.to(device) @ y.to(device)).sum().item()
"""


@pytest.fixture(scope="module")
def plugin_path(cluster: Cluster) -> str:
    """A directory holding only kn-gaia, built from this tree, for kn to find on PATH."""
    run(["cargo", "build", "--quiet", "--locked", "--bin", "kn-gaia"], timeout=1200)
    d = Path(os.environ.get("TMPDIR", "/tmp")) / f"kn-gaia-plugin-{os.getpid()}"
    d.mkdir(exist_ok=True)
    link = d / "kn-gaia"
    if not link.exists():
        link.symlink_to(CARGO_TARGET / "debug" / "kn-gaia")
    return str(d)


def plugin_env(cluster: Cluster, plugin_path: str, prometheus: str | None = None) -> dict[str, str]:
    env = cluster.process_env()
    env["PATH"] = plugin_path + os.pathsep + env["PATH"]
    env.pop("GAIA_PROMETHEUS_URL", None)
    if prometheus:
        env["GAIA_PROMETHEUS_URL"] = prometheus
    return env


def kn_gaia(cluster: Cluster, plugin_path: str, *args: str, prometheus: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
    """`kn gaia ARGS`: the real kn, which execs kn-gaia from PATH."""
    return run([cluster.env["GAIA_KN"], "gaia", *args],
               env=plugin_env(cluster, plugin_path, prometheus), check=check)


def standalone(cluster: Cluster, plugin_path: str, *args: str,
               check: bool = True) -> subprocess.CompletedProcess:
    return run([str(Path(plugin_path) / "kn-gaia"), *args],
               env=plugin_env(cluster, plugin_path), check=check)


def create_simulated(kubectl: Kubectl, namespace: str) -> None:
    """A Service with what the webhook and the autoscaler write, and one not opted in.

    No `gaia.dev/execution-mode` (as in a namespace opted in by label): a Gaia webhook that
    another test registers on the shared cluster leaves such a Service alone. Mode `gpu`: a
    gaia-autoscaler another test runs manages only *_preferred Services. So what is written here
    stays as written.
    """
    annotations = {
        "gaia.dev/mode": "gpu",
        "gaia.dev/mode-source": "classifier",
        "gaia.dev/rationale": "GPU use with a CPU fallback: gpu",
        "gaia.dev/findings": json.dumps(FINDINGS, separators=(",", ":")),
        "gaia.dev/source-digest": "sha256:0123",
        "gaia.dev/desired-placement": "gpu",
        "gaia.dev/latency-slo": "300ms",
        "gaia.dev/observed": json.dumps(OBSERVED, separators=(",", ":")),
    }
    services = [
        {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
         "metadata": {"name": "matmul", "annotations": annotations},
         "spec": {"template": {"metadata": {"annotations": {"gaia.dev/placed-for": "gpu"}},
                               "spec": {"containers": [{"image": "dev.local/gaia/matmul:1"}]}}}},
        {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
         "metadata": {"name": "plain"},
         "spec": {"template": {"spec": {"containers": [{"image": "dev.local/gaia/plain:1"}]}}}},
    ]
    for s in services:
        kubectl.apply(json.dumps(s), namespace)


def create_autoscaler_event(kubectl: Kubectl, namespace: str, name: str) -> None:
    uid = kubectl.json("get", "ksvc", name, "-n", namespace)["metadata"]["uid"]
    event = {
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": f"{name}.{uuid.uuid4().hex[:16]}", "namespace": namespace},
        "eventTime": "2026-11-22T20:05:00.000000Z",
        "reportingController": "gaia-autoscaler",
        "reportingInstance": "gaia-autoscaler-e2e",
        "action": "Promote",
        "reason": "PromotedToGpu",
        "type": "Normal",
        "note": "p95 1235ms > SLO 300ms over 1m and 5m; 1 GPU free",
        "regarding": {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                      "name": name, "namespace": namespace, "uid": uid},
    }
    kubectl("create", "-f", "-", input=json.dumps(event))


def test_status_through_kn_and_standalone(cluster, kubectl, namespace, plugin_path):
    create_simulated(kubectl, namespace)

    # The real kn finds kn-gaia on PATH; the cluster's Prometheus answers (no traffic: "-").
    out = kn_gaia(cluster, plugin_path, "status", "-n", namespace,
                  prometheus=cluster.prometheus_url)
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["NAME", "MODE", "SOURCE", "PLACEMENT", "SLO", "P95", "RPS",
                                "P95@CPU", "P95@GPU"], out.stdout
    assert lines[1].split() == ["matmul", "gpu", "classifier", "gpu", "300ms", "-", "-",
                                "1.23s", "80ms"], out.stdout
    assert "last move cpu->gpu" in lines[2] and "p95 1235ms > SLO 300ms" in lines[2]
    assert "plain" not in out.stdout, "a Service without Gaia's annotations is not listed"
    assert "unavailable" not in out.stderr, out.stderr
    assert all(len(l) <= 100 for l in lines), out.stdout

    # kn passes its own flags first: `kn --kubeconfig X gaia ...` -> `kn-gaia --kubeconfig X ...`.
    env = plugin_env(cluster, plugin_path)
    env.pop("KUBECONFIG", None)
    out = run([cluster.env["GAIA_KN"], "--kubeconfig", cluster.kubeconfig, "gaia", "status",
               "matmul", "-n", namespace, "-o", "json"], env=env)
    assert json.loads(out.stdout)["name"] == "matmul"

    # Standalone, JSON: one object per Service, stable names.
    out = standalone(cluster, plugin_path, "status", "-n", namespace, "-o", "json")
    rows = [json.loads(l) for l in out.stdout.splitlines()]
    assert [r["name"] for r in rows] == ["matmul"]
    row = rows[0]
    assert row["namespace"] == namespace and row["optedIn"] is True
    assert (row["mode"], row["modeSource"], row["requestedMode"]) == ("gpu", "classifier", None)
    assert row["placement"] == {"desired": "gpu", "template": "gpu"}
    assert row["latencySlo"] == {"value": "300ms", "source": "annotation"}
    assert row["rememberedP95"]["cpu"]["p95Ms"] == 1234.5
    assert row["rememberedP95"]["gpu"]["p95Ms"] == 80
    assert row["lastMove"]["reason"] == "p95 1235ms > SLO 300ms"
    assert row["currentP95Ms"] is None and row["currentRps"] is None

    # -A lists it with its namespace, within 100 columns although this namespace's name is long:
    # in a NAMESPACE column with its middle elided, or, when the namespaces are too long for a
    # column, as a `namespace NS:` line above the namespace's rows. JSON keeps the whole name.
    out = standalone(cluster, plugin_path, "status", "-A")
    lines = out.stdout.splitlines()
    assert all(len(l) <= 100 for l in lines), out.stdout
    assert len(namespace) > 40

    def elided(cell: str) -> bool:
        head, sep, tail = cell.partition("\u2026")
        return cell == namespace or (sep and namespace.startswith(head) and namespace.endswith(tail))

    in_column = any(len(l.split()) > 1 and l.split()[1] == "matmul" and elided(l.split()[0])
                    for l in lines)
    group = lines[lines.index(f"namespace {namespace}:") + 1:] \
        if f"namespace {namespace}:" in lines else []
    group = group[:next((i for i, l in enumerate(group) if l.startswith("namespace ")), len(group))]
    assert in_column or any(l.split()[:1] == ["matmul"] for l in group), out.stdout
    rows = [json.loads(l) for l in
            standalone(cluster, plugin_path, "status", "-A", "-o", "json").stdout.splitlines()]
    assert {"namespace": namespace, "name": "matmul"}.items() <= next(
        r for r in rows if r["namespace"] == namespace).items()


def test_status_degrades_clearly(cluster, kubectl, namespace, plugin_path):
    create_simulated(kubectl, namespace)
    # Not opted in: says so, with the annotation to add.
    out = kn_gaia(cluster, plugin_path, "status", "plain", "-n", namespace)
    assert f"Service {namespace}/plain is not opted in to Gaia" in out.stdout
    assert "gaia.dev/execution-mode=auto" in out.stdout
    # Prometheus unreachable: "-", one warning line, exit 0.
    out = kn_gaia(cluster, plugin_path, "status", "-n", namespace,
                  prometheus="http://127.0.0.1:9")
    assert out.returncode == 0
    warnings = [l for l in out.stderr.splitlines() if "p95 and request rate unavailable" in l]
    assert len(warnings) == 1, out.stderr
    assert out.stdout.splitlines()[1].split()[5:7] == ["-", "-"]
    # Unknown Service: exit 1, one line.
    out = kn_gaia(cluster, plugin_path, "status", "nope", "-n", namespace, check=False)
    assert out.returncode == 1 and f"{namespace}/nope not found" in out.stderr
    # An empty namespace: says how to opt in.
    kubectl("delete", "ksvc", "matmul", "-n", namespace)
    out = standalone(cluster, plugin_path, "status", "-n", namespace)
    assert f"No Service in namespace {namespace} is opted in to Gaia" in out.stdout


def test_explain_shows_findings_and_decisions(cluster, kubectl, namespace, plugin_path):
    create_simulated(kubectl, namespace)
    create_autoscaler_event(kubectl, namespace, "matmul")

    def explained():
        out = kn_gaia(cluster, plugin_path, "explain", "matmul", "-n", namespace).stdout
        return out if "PromotedToGpu" in out else None

    out = wait_until(explained, timeout=30, desc="the autoscaler's Event in explain")
    assert "Mode: gpu (source: classifier; requested: -)" in out
    assert "Rationale: GPU use with a CPU fallback: gpu" in out
    assert "  - device_use func.py:7: .to(device) [guarded]" in out
    assert "  - framework_import func.py:1: import torch" in out
    assert "2026-11-22T20:05:00" in out and "[gaia-autoscaler]" in out
    assert "p95 1235ms > SLO 300ms over 1m and 5m; 1 GPU free" in out
    # Knative's own Events about the Service are part of the history, after ours by time.
    assert out.index("PromotedToGpu") < out.index("Created"), out

    data = json.loads(standalone(cluster, plugin_path, "explain", "matmul", "-n", namespace,
                                 "-o", "json").stdout)
    assert data["findings"][0] == {"kind": "device_use", "file": "func.py", "line": 7,
                                   "detail": ".to(device)", "guarded": True, "heavy": False}
    reasons = [e["reason"] for e in data["events"]]
    assert reasons.count("PromotedToGpu") == 1, "one Event seen through both APIs is shown once"
    promoted = next(e for e in data["events"] if e["reason"] == "PromotedToGpu")
    assert promoted["source"] == "gaia-autoscaler" and promoted["type"] == "Normal"
    times = [e["time"] for e in data["events"]]
    assert times == sorted(times), times

    out = kn_gaia(cluster, plugin_path, "explain", "plain", "-n", namespace).stdout
    assert "not opted in to Gaia" in out and "Decisions" in out


class NamespaceWebhook(WebhookProcess):
    """WebhookProcess registered for one namespace only (the cluster is shared)."""

    def __init__(self, cluster: Cluster, kubectl: Kubectl, name: str, port: int, namespace: str):
        super().__init__(cluster, kubectl, name, port)
        self.namespace = namespace

    def register(self) -> None:
        super().register()
        config = self.kubectl.json("get", "mutatingwebhookconfiguration", self.name)
        config["webhooks"][0]["namespaceSelector"] = {
            "matchLabels": {"kubernetes.io/metadata.name": self.namespace}}
        self.kubectl.apply(json.dumps(config))


def test_through_the_real_webhook(cluster, kubectl, kn, namespace, plugin_path):
    hook = NamespaceWebhook(cluster, kubectl, "gaia-webhook-kn-e2e", 18453, namespace).start()
    try:
        kn("service", "create", "gpu-fn", "-n", namespace, "--image", "dev.local/gaia/gpu-fn:1",
           "--annotation", "gaia.dev/execution-mode=auto",
           "--annotation", f"gaia.dev/source={GPU_SOURCE}",
           "--no-wait")
        svc = kubectl.json("get", "ksvc", "gpu-fn", "-n", namespace)
        assert svc["metadata"]["annotations"].get("gaia.dev/mode-source") == "classifier", svc
        mode = svc["metadata"]["annotations"]["gaia.dev/mode"]

        row = json.loads(standalone(cluster, plugin_path, "status", "gpu-fn", "-n", namespace,
                                    "-o", "json").stdout)
        assert (row["mode"], row["modeSource"]) == (mode, "classifier")
        assert row["latencySlo"]["source"] == "default"
        status = kn_gaia(cluster, plugin_path, "status", "gpu-fn", "-n", namespace)
        assert "not installed" not in status.stderr, status.stderr
        assert status.stdout.splitlines()[1].split()[:3] == ["gpu-fn", mode, "classifier"]

        out = kn_gaia(cluster, plugin_path, "explain", "gpu-fn", "-n", namespace).stdout
        assert f"Mode: {mode} (source: classifier; requested: auto)" in out, out
        # The inline source's findings point into it by line: torch is imported on line 1.
        assert re.search(r"^  - framework_import \S+\.py:1: ", out, re.M), out
    finally:
        hook.unregister()
        hook.stop()
