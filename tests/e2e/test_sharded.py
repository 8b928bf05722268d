"""gaia-autoscaler on a sharded metrics backend (issue 17).

Two real Prometheus servers, each scraping half of the revisions (shard ``b`` also scrapes the
cAdvisor target), a real Thanos Sidecar beside each and a real Thanos Query over both
(``hack/build.sh thanos``): the autoscaler, unchanged, decides through Thanos Query exactly as
through one Prometheus scraping everything (the cluster's).

Four ``cpu_preferred`` Services with KWOK pods; the metrics stand-in
(tests/harness/knative_metrics_standin.py, the queue-proxies' and cAdvisor's part) makes one slow
and CPU-bound, one slow and waiting, one fast, and leaves one without requests. Two autoscalers
run ``--dry-run`` (they decide, log and count; they patch nothing), one on each backend, with
debug JSON logs; once both windows are filled, the decisions each one logs per Service (kind and
hold reason) must be the same, and the expected ones. Everything runs in the cluster's network
namespace, on its loopback.
"""
from __future__ import annotations

import calendar
import json
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pytest

from tests.harness.cluster_env import Cluster
from tests.harness.kubectl import Kubectl
from tests.harness.paths import CARGO_TARGET, REPO
from tests.harness.proc import Proc, run
from tests.harness.wait import wait_until

STANDIN = "tests.harness.knative_metrics_standin"
STANDIN_PORT = 19531
PROM_PORTS = {"a": 19532, "b": 19533}
SIDECAR_GRPC = {"a": 19534, "b": 19535}
SIDECAR_HTTP = {"a": 19536, "b": 19537}
QUERY_HTTP, QUERY_GRPC = 19538, 19539
METRICS_PORTS = {"single": 18111, "thanos": 18112}

CONFIG = """
namespace: {namespace}
prometheus:
  url: {prom}
  timeout: 5s
  generation: opentelemetry
interval: 2s
defaultSlo: 500ms
policy:
  shortWindow: 20s
  longWindow: 40s
  promote: {{minRequests: 10}}
listen: 127.0.0.1:{metrics_port}
noGpuEventEvery: 1m
"""

# name -> (stand-in state, the decisions (kind or hold reason) it must get)
SERVICES = {
    "busy": ({"rps": 5, "latency_ms": 3000, "cpu_cores": 0.95}, {"sustaining", "promote"}),
    "sleepy": ({"rps": 5, "latency_ms": 2000, "cpu_cores": 0.01}, {"not_compute_bound"}),
    "fast": ({"rps": 5, "latency_ms": 80, "cpu_cores": 0.2}, {"within_slo"}),
    "quiet": (None, {"no_latency_data"}),
}


def thanos_bin() -> Path:
    """The Thanos binary hack/build.sh thanos built (on request: ~25 min on 2 cores).

    Opt-in (GAIA_E2E_SHARDED=1): hack/build.sh does not build Thanos by default (a cold build
    is ~25 min on 2 cores, a third of the suite's budget), so a default run would only skip."""
    if os.environ.get("GAIA_E2E_SHARDED") != "1":
        pytest.skip("opt-in: GAIA_E2E_SHARDED=1 (needs hack/build.sh thanos, not built by default)")
    env = run(["bash", "-c", f". {REPO}/hack/lib.sh && echo $GAIA_THANOS_DIR"]).stdout.strip()
    binary = Path(env) / "thanos"
    tags = Path(env) / "tags"
    msg = None
    if not binary.exists():
        msg = f"{binary} is missing: build it with hack/build.sh thanos"
    elif "slicelabels" not in (tags.read_text() if tags.exists() else ""):
        # built without thanos' release tags, its Sidecar answers Query with garbage (it
        # panics); hack/build.sh thanos rebuilds such a binary
        msg = f"{binary} was built without -tags slicelabels: rebuild it with hack/build.sh thanos"
    if msg:
        if os.environ.get("GAIA_E2E_REQUIRE_THANOS") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return binary


def ksvc_manifest(namespace: str, name: str) -> str:
    return json.dumps({
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace,
                     "annotations": {"gaia.dev/mode": "cpu_preferred",
                                     "gaia.dev/latency-slo": "500ms"}},
        "spec": {"template": {
            "metadata": {"annotations": {"autoscaling.knative.dev/min-scale": "1",
                                         "gaia.dev/placed-for": "cpu"}},
            "spec": {"containers": [{"image": f"dev.local/gaia/{name}:1",
                                     "resources": {"limits": {"cpu": "1"}}}]}}},
    })


def ready_pod(kubectl: Kubectl, namespace: str, name: str) -> tuple[str, str] | None:
    status = kubectl.json("get", "ksvc", name, "-n", namespace).get("status", {})
    rev = status.get("latestReadyRevisionName")
    if not rev or rev != status.get("latestCreatedRevisionName"):
        return None
    pods = [p for p in kubectl.pods(namespace, f"serving.knative.dev/revision={rev}")
            if p["status"].get("phase") == "Running" and p["spec"].get("nodeName")]
    return (rev, pods[0]["metadata"]["name"]) if pods else None


def decisions(log: Path, since: float) -> dict[str, set[str]]:
    """Per Service, the decisions (a hold's reason, else the kind) logged after `since`."""
    out: dict[str, set[str]] = defaultdict(set)
    for line in log.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        f = rec.get("fields", {})
        if "decision" not in f or "name" not in f:
            continue
        stamp = rec.get("timestamp", "")
        t = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
        if t < since:
            continue
        kind = f.get("hold") or f["decision"]
        # a promotion decided, whether the GPUs the dry runs reserve are used up yet or not
        out[f["name"]].add("promote" if kind == "no_gpu" else kind)
    return dict(out)


def test_thanos_query_over_two_shards_decides_as_one_prometheus(
        cluster: Cluster, kubectl: Kubectl, namespace: str):
    thanos = thanos_bin()
    prometheus = shutil.which("prometheus")
    assert prometheus, "prometheus is missing: hack/build.sh installs it"
    run(["cargo", "build", "--quiet", "--bin", "gaia-autoscaler"], timeout=1800)
    autoscaler_bin = CARGO_TARGET / "debug" / "gaia-autoscaler"
    workdir = Path(tempfile.mkdtemp(prefix="gaia-sharded-e2e-"))
    env = cluster.process_env()
    procs: list[Proc] = []

    def start(name: str, argv: list[str], extra: dict | None = None) -> Proc:
        p = Proc(cluster.in_netns(*argv), workdir / f"{name}.log", {**env, **(extra or {})})
        procs.append(p)
        return p

    def http_ok(port: int, path: str) -> bool:
        return run(cluster.in_netns("curl", "-sf", f"http://127.0.0.1:{port}{path}"),
                   check=False, timeout=10).returncode == 0

    single_targets = cluster.prom_targets_dir / f"gaia-sharded-e2e-{namespace}.json"
    try:
        start("standin", [sys.executable, "-m", STANDIN, "--listen", f"0.0.0.0:{STANDIN_PORT}"])
        wait_until(lambda: http_ok(STANDIN_PORT, "/healthz"), timeout=30, desc="stand-in")
        for name in SERVICES:
            kubectl.apply(ksvc_manifest(namespace, name))
        pods = {n: wait_until(lambda n=n: ready_pod(kubectl, namespace, n), desc=f"{n} ready")
                for n in SERVICES}
        state = {f"{namespace}/{rev}": {**load, "pods": [pod]}
                 for n, (rev, pod) in pods.items() if (load := SERVICES[n][0])}
        run(cluster.in_netns("curl", "-sf", "-X", "PUT", f"http://127.0.0.1:{STANDIN_PORT}/state",
                             "-H", "Content-Type: application/json",
                             "--data-binary", json.dumps({"revisions": state})), timeout=20)

        def group(rev: str) -> dict:
            return {"targets": [f"127.0.0.1:{STANDIN_PORT}"],
                    "labels": {"job": "queue-proxy", "instance": f"{namespace}/{rev}",
                               "__metrics_path__": f"/metrics/revision/{namespace}/{rev}"}}
        cadvisor = {"targets": [f"127.0.0.1:{STANDIN_PORT}"],
                    "labels": {"job": "kubelet-cadvisor", "instance": f"cadvisor-{namespace}",
                               "__metrics_path__": "/metrics/cadvisor"}}
        revs = [rev for rev, _ in pods.values()]
        shards = {"a": [group(r) for r in revs[0::2]],
                  "b": [group(r) for r in revs[1::2]] + [cadvisor]}
        # the single backend: the cluster's Prometheus, scraping every target
        single_targets.write_text(json.dumps([group(r) for r in revs] + [cadvisor]))

        for shard, groups in shards.items():
            d = workdir / f"prom-{shard}"
            (d / "data").mkdir(parents=True)
            (d / "targets.json").write_text(json.dumps(groups))
            (d / "prometheus.yml").write_text(
                "global:\n  scrape_interval: 2s\n  scrape_timeout: 2s\n"
                f"  external_labels: {{shard: {shard}}}\n"
                "scrape_configs:\n- job_name: file_sd\n  file_sd_configs:\n"
                f"  - files: ['{d / 'targets.json'}']\n    refresh_interval: 2s\n")
            start(f"prometheus-{shard}", [prometheus, f"--config.file={d / 'prometheus.yml'}",
                                          f"--storage.tsdb.path={d / 'data'}",
                                          f"--web.listen-address=127.0.0.1:{PROM_PORTS[shard]}"])
            wait_until(lambda s=shard: http_ok(PROM_PORTS[s], "/-/ready"), timeout=60,
                       desc=f"prometheus {shard}")
            start(f"sidecar-{shard}", [str(thanos), "sidecar",
                                       f"--prometheus.url=http://127.0.0.1:{PROM_PORTS[shard]}",
                                       f"--tsdb.path={d / 'data'}",
                                       f"--grpc-address=127.0.0.1:{SIDECAR_GRPC[shard]}",
                                       f"--http-address=127.0.0.1:{SIDECAR_HTTP[shard]}"])
        for shard in shards:
            wait_until(lambda s=shard: http_ok(SIDECAR_HTTP[s], "/-/ready"), timeout=60,
                       desc=f"sidecar {shard}")
        start("query", [str(thanos), "query", f"--http-address=127.0.0.1:{QUERY_HTTP}",
                        f"--grpc-address=127.0.0.1:{QUERY_GRPC}",
                        *[f"--endpoint=127.0.0.1:{SIDECAR_GRPC[s]}" for s in shards]])
        wait_until(lambda: http_ok(QUERY_HTTP, "/-/ready"), timeout=60, desc="thanos query")

        logs = {}
        for backend, url in (("single", cluster.prometheus_url),
                             ("thanos", f"http://127.0.0.1:{QUERY_HTTP}")):
            config = workdir / f"autoscaler-{backend}.yaml"
            config.write_text(CONFIG.format(prom=url, namespace=namespace,
                                            metrics_port=METRICS_PORTS[backend]))
            p = start(f"autoscaler-{backend}",
                      [str(autoscaler_bin), "--config", str(config), "--dry-run",
                       "--no-leader-election", "--log-format", "json"],
                      {"RUST_LOG": "gaia_autoscaler=debug"})
            logs[backend] = p
        # both windows (40 s) filled with the loads, then 30 s of cycles to compare
        since = time.time() + 45
        time.sleep(75)
        for p in procs:
            assert p.alive(), f"{p.argv[2:4]} exited:\n{p.tail(4000)}"
        got = {b: decisions(p.log, since) for b, p in logs.items()}
        for name, (_, want) in SERVICES.items():
            single, sharded = got["single"].get(name), got["thanos"].get(name)
            assert single and single <= want, f"{name} on one Prometheus: {single}, want {want}"
            assert sharded == single, f"{name}: through Thanos {sharded}, one Prometheus {single}"
        # the tiered shape's second tier went through Thanos too (the busy one is a candidate)
        assert "promote" in got["thanos"]["busy"], got
        for backend, p in logs.items():
            assert "Prometheus failed" not in p.log.read_text(errors="replace"), p.tail(4000)
    finally:
        single_targets.unlink(missing_ok=True)
        for p in reversed(procs):
            p.stop(grace=20)
        shutil.rmtree(workdir, ignore_errors=True)
