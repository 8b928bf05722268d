"""gaia-autoscaler as a process in the cluster's network namespace, with the metrics stand-in
behind a Knative Service: what the autoscaler, fault, preflight, elastic-pool and ladder e2e tests
(tests/e2e/) and the soak (hack/soak.sh) drive.

* ``autoscaler_config``  the fast e2e config (2 s cycles over 20 s / 40 s windows), with
                         overrides merged in; ``write_config`` puts it in a file
* ``autoscaler_binary``  the debug gaia-autoscaler, built if needed
* ``AutoscalerProc``     one replica: its /metrics parsed, its JSON log read, its identity
* ``MetricsStandin``     the queue-proxy/cAdvisor stand-in (knative_metrics_standin.py), driven
                         over its loopback port, and the file_sd targets that make the
                         cluster's Prometheus scrape it (``scrape``)
* ``netns_proc``, ``metric``, ``slow_service`` ...   a process in the netns, one series of a
                         /metrics page, the cpu_preferred Service, its revisions, pods and Events
"""
from __future__ import annotations

import json
import re
import sys
from datetime import datetime
from pathlib import Path

import yaml

from tests.harness.cluster_env import Cluster
from tests.harness.kubectl import Kubectl
from tests.harness.paths import CARGO_TARGET
from tests.harness.proc import Proc, run
from tests.harness.wait import wait_until

STANDIN = "tests.harness.knative_metrics_standin"


def autoscaler_binary() -> Path:
    """The debug gaia-autoscaler, built if needed."""
    run(["cargo", "build", "--quiet", "--bin", "gaia-autoscaler"], timeout=1800)
    binary = CARGO_TARGET / "debug" / "gaia-autoscaler"
    assert binary.exists(), binary
    return binary


def merge(base: dict, over: dict) -> dict:
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = v
    return base


def autoscaler_config(cluster: Cluster, namespace: str, port: int, overrides: dict | None = None,
                      lease: str = "gaia-autoscaler-e2e") -> dict:
    """The product's rules on a short clock: 2 s cycles, 20 s / 40 s windows (the cluster's
    Prometheus scrapes every 2 s), a 6 s Lease."""
    config = {
        "namespace": namespace,
        "prometheus": {"url": cluster.prometheus_url, "timeout": "2s",
                       "generation": "opentelemetry"},
        "interval": "2s",
        "defaultSlo": "500ms",
        "policy": {
            "shortWindow": "20s", "longWindow": "40s",
            "promote": {"minRequests": 10},
            "verify": {"settle": "12s", "minRequests": 10},
            "hysteresis": {"minDwell": "20s"},
            "rolloutTimeout": "3m",
        },
        "leaderElection": {"namespace": namespace, "name": lease, "leaseDuration": "6s",
                           "renewDeadline": "4s", "retryPeriod": "1s"},
        "listen": f"127.0.0.1:{port}",
        "noGpuEventEvery": "1m",
    }
    return merge(config, overrides or {})


def write_config(workdir: Path, name: str, config: dict) -> Path:
    """The config as workdir/NAME.yaml, for ``--config``."""
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text exposition to {'name{labels}': value} (labels as written)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        try:
            out[key] = float(value)
        except ValueError:
            continue
    return out


class AutoscalerProc:
    """One gaia-autoscaler replica in the cluster's netns, JSON logs to workdir/NAME.log."""

    def __init__(self, cluster: Cluster, binary: Path, workdir: Path, name: str, config: dict,
                 env: dict[str, str] | None = None):
        self.cluster, self.name = cluster, name
        self.port = int(config["listen"].rsplit(":", 1)[1])
        path = write_config(workdir, name, config)
        extra = [f"{k}={v}" for k, v in (env or {}).items()]
        self.proc = Proc(cluster.in_netns("env", f"POD_NAME={name}", *extra, str(binary),
                                          "--config", str(path), "--log-format", "json"),
                         workdir / f"{name}.log", cluster.process_env())

    @property
    def pid(self) -> int:
        return self.proc.pid

    def metrics(self) -> dict[str, float]:
        assert self.proc.alive(), f"{self.name} exited:\n{self.proc.tail(6000)}"
        out = run(self.cluster.in_netns("curl", "-s", "-m", "3", f"http://127.0.0.1:{self.port}/metrics"),
                  check=False, timeout=20).stdout
        return parse_metrics(out)

    def metric(self, key: str) -> float:
        return self.metrics().get(key, 0.0)

    def decisions(self, kind: str, reason: str = "") -> float:
        return self.metric(f'gaia_autoscaler_decisions_total{{kind="{kind}",reason="{reason}"}}')

    def holds(self, reason: str) -> float:
        return self.decisions("hold", reason)

    def leading(self) -> int | None:
        m = self.metrics().get("gaia_autoscaler_leader")
        return None if m is None else int(m)

    def log_lines(self) -> list[dict]:
        lines = []
        for raw in self.proc.log.read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue
        return lines

    def identity(self) -> str:
        """The Lease identity it logged at start."""
        def find():
            for line in self.log_lines():
                ident = line.get("fields", {}).get("identity")
                if ident:
                    return ident
            return None
        return wait_until(find, timeout=30, desc=f"{self.name}'s identity in its log", interval=0.3)

    def stop(self) -> int | None:
        return self.proc.stop(grace=30)


def netns_proc(cluster: Cluster, name: str, argv: list[str], workdir: Path) -> Proc:
    """A process in the cluster's netns, logging to workdir/NAME.log."""
    return Proc(cluster.in_netns(*argv), workdir / f"{name}.log", cluster.process_env())


def revision_targets(namespace: str, service: str, port: int, revisions: int) -> list[dict]:
    """One queue-proxy-like target per revision (own ``instance``, so target_info joins one to
    one) for revisions 1..N of the Service."""
    return [{"targets": [f"127.0.0.1:{port}"],
             "labels": {"job": "queue-proxy", "instance": f"{namespace}/{service}-{i:05d}",
                        "__metrics_path__": f"/metrics/revision/{namespace}/{service}-{i:05d}"}}
            for i in range(1, revisions + 1)]


def metrics_text(cluster: Cluster, port: int) -> str:
    return run(cluster.in_netns("curl", "-s", f"http://127.0.0.1:{port}/metrics"), check=False,
               timeout=20).stdout


def metric(cluster: Cluster, port: int, series: str) -> float | None:
    """The value of one series (``name{labels}`` exactly as exposed), or None."""
    for line in metrics_text(cluster, port).splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return None


class MetricsStandin:
    """The metrics stand-in (a stand-in for queue-proxies and cAdvisor, test harness only) in
    the netns, controlled over its loopback port, and the file_sd targets that make the
    cluster's Prometheus scrape it: one cAdvisor-like target from the start, and per
    ``scrape``d Service one queue-proxy-like target per revision. ``tag`` (a test's namespace)
    names its targets file."""

    def __init__(self, cluster: Cluster, workdir: Path, port: int, tag: str):
        self.cluster, self.port = cluster, port
        self.targets = cluster.prom_targets_dir / f"gaia-standin-{tag}.json"
        self.groups: list[dict] = [{
            "targets": [f"127.0.0.1:{port}"],
            "labels": {"job": "kubelet-cadvisor", "instance": f"cadvisor-{tag}",
                       "__metrics_path__": "/metrics/cadvisor"}}]
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

    def scrape(self, namespace: str, name: str, revisions: int = 4) -> None:
        """Prometheus scrapes revisions 1..N of the Service from the stand-in."""
        self.groups += revision_targets(namespace, name, self.port, revisions)
        self.targets.write_text(json.dumps(self.groups))

    def set(self, revisions: dict) -> None:
        self._curl("PUT", "/state", json.dumps({"revisions": revisions}))

    def stop(self) -> None:
        self.targets.unlink(missing_ok=True)
        self.proc.stop(grace=10)


# -- the Service under test -------------------------------------------------------------------

def ksvc_manifest(namespace: str, name: str, slo: str = "500ms", env: dict | None = None) -> str:
    container = {"image": f"dev.local/gaia/{name}:1", "resources": {"limits": {"cpu": "1"}}}
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return json.dumps({
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace,
                     "annotations": {"gaia.dev/mode": "cpu_preferred",
                                     "gaia.dev/latency-slo": slo}},
        "spec": {"template": {
            "metadata": {"annotations": {
                # the fake pods get no traffic: keep one so placement can be checked
                "autoscaling.knative.dev/min-scale": "1",
                "gaia.dev/placed-for": "cpu"}},
            "spec": {"containers": [container]},
        }},
    })


SLOW = {"rps": 5, "latency_ms": 3000, "cpu_cores": 0.95}   # 6x a 500 ms SLO, CPU-bound
FAST = {"rps": 5, "latency_ms": 100, "cpu_cores": 0.3}


def ready_revision(kubectl: Kubectl, namespace: str, name: str, not_in: set[str] = frozenset()) -> str | None:
    status = kubectl.json("get", "ksvc", name, "-n", namespace).get("status", {})
    ready, created = status.get("latestReadyRevisionName"), status.get("latestCreatedRevisionName")
    # Ready too: right after a patch Knative's status still names the old revision as created
    # and ready, with Ready Unknown (the autoscaler's rollout() has the same rule)
    is_ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in status.get("conditions", []))
    if ready and ready == created and is_ready and ready not in not_in:
        return ready
    return None


def revision_pod(kubectl: Kubectl, namespace: str, revision: str) -> dict | None:
    pods = [p for p in kubectl.pods(namespace, f"serving.knative.dev/revision={revision}")
            if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
            and p["spec"].get("nodeName")]
    return pods[0] if pods else None


def create_on_cpu(kubectl: Kubectl, namespace: str, name: str,
                  env: dict | None = None) -> tuple[str, dict]:
    """Creates the Service and waits for its first revision's pod: (revision, pod)."""
    kubectl.apply(ksvc_manifest(namespace, name, env=env))
    r1 = wait_until(lambda: ready_revision(kubectl, namespace, name), desc=f"{name}'s first revision ready")
    pod = wait_until(lambda: revision_pod(kubectl, namespace, r1), desc=f"pod of {r1}")
    return r1, pod


def load(namespace: str, revision: str, pod: dict, shape: dict) -> dict:
    """A stand-in state entry: the revision serving ``shape`` from ``pod``."""
    return {f"{namespace}/{revision}": dict(shape, pods=[pod["metadata"]["name"]])}


def ksvc(kubectl: Kubectl, namespace: str, name: str) -> dict:
    return kubectl.json("get", "ksvc", name, "-n", namespace)


def desired_placement(kubectl: Kubectl, namespace: str, name: str) -> str | None:
    meta = ksvc(kubectl, namespace, name)["metadata"]
    return (meta.get("annotations") or {}).get("gaia.dev/desired-placement")


def events(kubectl: Kubectl, namespace: str, name: str, reason: str) -> list[dict]:
    return kubectl.events_for(namespace, name, reason)


def event(kubectl: Kubectl, namespace: str, name: str, reason: str) -> dict | None:
    """The Service's first Event of this reason, or None."""
    items = events(kubectl, namespace, name, reason)
    return items[0] if items else None


def moves(kubectl: Kubectl, namespace: str, name: str) -> list[dict]:
    """Every move Event of the Service."""
    return [e for r in ("PromotedToGpu", "DemotedToCpu", "RevertedToCpu", "RolledBack")
            for e in events(kubectl, namespace, name, r)]


def revisions(kubectl: Kubectl, namespace: str, name: str) -> list[str]:
    items = kubectl.json("get", "revisions", "-n", namespace,
                         "-l", f"serving.knative.dev/service={name}")["items"]
    return sorted(i["metadata"]["name"] for i in items)


def rfc3339_to_unix(ts: str) -> float:
    """'2026-12-01T14:03:05.123456789Z' (tracing's JSON timestamps) to Unix seconds."""
    m = re.match(r"([^.Z+]+)(\.\d+)?(Z|[+-]\d\d:\d\d)$", ts)
    if not m:
        raise ValueError(f"not an RFC 3339 timestamp: {ts!r}")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(m.group(1) + zone).timestamp() + float(m.group(2) or 0)


def annotations(kubectl: Kubectl, namespace: str, name: str) -> dict:
    return kubectl.json("get", "ksvc", name, "-n", namespace)["metadata"].get("annotations", {}) or {}
