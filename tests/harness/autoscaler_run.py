"""One gaia-autoscaler process on the local cluster with the Knative metrics STAND-IN
(knative_metrics_standin.py) as its data plane: what an e2e test of the running controller
needs, in one place.

* ``netns_proc``      a process inside the cluster's network namespace, logging to a file
* ``MetricsStandin``  the stand-in, started in the netns and driven over its loopback port
* ``scrape_targets``  the Prometheus file_sd targets for a Service's revisions and cAdvisor
* ``metrics_text``    the autoscaler's own /metrics
* ``ksvc_manifest``   a cpu_preferred Knative Service that keeps one (fake) pod

Plain Python (no pytest).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.harness.cluster_env import Cluster
from tests.harness.kubectl import Kubectl
from tests.harness.proc import Proc, run
from tests.harness.wait import wait_until

STANDIN = "tests.harness.knative_metrics_standin"


def netns_proc(cluster: Cluster, name: str, argv: list[str], workdir: Path) -> Proc:
    """A process in the cluster's netns, logging to workdir/NAME.log."""
    return Proc(cluster.in_netns(*argv), workdir / f"{name}.log", cluster.process_env())


class MetricsStandin:
    """The metrics stand-in, controlled over its loopback port inside the netns."""

    def __init__(self, cluster: Cluster, workdir: Path, port: int):
        self.cluster, self.port = cluster, port
        self.proc = netns_proc(cluster, "metrics-standin",
                               [sys.executable, "-m", STANDIN, "--listen", f"0.0.0.0:{port}"], workdir)
        wait_until(lambda: self._curl("GET", "/healthz") == "ok\n", timeout=30,
                   desc="metrics stand-in", interval=0.5)

    def _curl(self, method: str, path: str, body: str | None = None) -> str:
        assert self.proc.alive(), f"stand-in exited:\n{self.proc.tail(6000)}"
        argv = ["curl", "-sf", "-X", method, f"http://127.0.0.1:{self.port}{path}"]
        if body is not None:
            argv += ["-H", "Content-Type: application/json", "--data-binary", body]
        return run(self.cluster.in_netns(*argv), timeout=20).stdout

    def set(self, revisions: dict) -> None:
        self._curl("PUT", "/state", json.dumps({"revisions": revisions}))


def scrape_targets(namespace: str, service: str, port: int, revisions: int = 4) -> list[dict]:
    """One queue-proxy-like target per revision (own ``instance``, so target_info joins one to
    one) for revisions 1..N of the Service, and one cAdvisor-like target."""
    groups = [{"targets": [f"127.0.0.1:{port}"],
               "labels": {"job": "queue-proxy", "instance": f"{namespace}/{service}-{i:05d}",
                          "__metrics_path__": f"/metrics/revision/{namespace}/{service}-{i:05d}"}}
              for i in range(1, revisions + 1)]
    groups.append({"targets": [f"127.0.0.1:{port}"],
                   "labels": {"job": "kubelet-cadvisor", "instance": f"cadvisor-{namespace}",
                              "__metrics_path__": "/metrics/cadvisor"}})
    return groups


def metrics_text(cluster: Cluster, port: int) -> str:
    return run(cluster.in_netns("curl", "-s", f"http://127.0.0.1:{port}/metrics"), check=False,
               timeout=20).stdout


def metric(cluster: Cluster, port: int, series: str) -> float | None:
    """The value of one series (``name{labels}`` exactly as exposed), or None."""
    for line in metrics_text(cluster, port).splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return None


def ksvc_manifest(namespace: str, name: str, mode: str = "cpu_preferred", slo: str = "500ms",
                  template_annotations: dict | None = None) -> str:
    annotations = {
        # the fake pods get no traffic: keep one so placement can be checked
        "autoscaling.knative.dev/min-scale": "1",
        "gaia.dev/placed-for": "cpu",
    }
    annotations.update(template_annotations or {})
    return json.dumps({
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace,
                     "annotations": {"gaia.dev/mode": mode, "gaia.dev/latency-slo": slo}},
        "spec": {"template": {
            "metadata": {"annotations": annotations},
            "spec": {"containers": [{
                "image": f"dev.local/gaia/{name}:1",
                "resources": {"limits": {"cpu": "1"}},
            }]},
        }},
    })


def revision_pod(kubectl: Kubectl, namespace: str, revision: str) -> dict | None:
    """A Running, scheduled pod of the revision."""
    pods = [p for p in kubectl.pods(namespace, f"serving.knative.dev/revision={revision}")
            if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
            and p["spec"].get("nodeName")]
    return pods[0] if pods else None


def ready_revision(kubectl: Kubectl, namespace: str, name: str, not_in: set[str]) -> str | None:
    """The Service's latest revision once it is ready and serves, unless it is one of not_in."""
    status = kubectl.json("get", "ksvc", name, "-n", namespace).get("status", {})
    ready, created = status.get("latestReadyRevisionName"), status.get("latestCreatedRevisionName")
    if ready and ready == created and ready not in not_in:
        return ready
    return None


def annotations(kubectl: Kubectl, namespace: str, name: str) -> dict:
    return kubectl.json("get", "ksvc", name, "-n", namespace)["metadata"].get("annotations", {}) or {}
