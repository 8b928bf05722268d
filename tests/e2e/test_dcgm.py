"""DCGM evidence (issue 15): a GPU revision whose GPU idles is demoted sooner.

Two gpu_preferred Services start on the GPU nodes (one KWOK GPU each). Both remember a CPU p95
of 300 ms at 2 req/s, within their 500 ms objective (`gaia.dev/observed`, as a run on the CPU
leaves it). Both serve 4 req/s, then 1 req/s. The DCGM exporter STAND-IN
(tests/harness/dcgm_exporter_standin.py; the GPUs are fakes, nothing measures them), scraped
by the cluster's real Prometheus, says the GPU of `idle` is 3 % busy and that of `busy` 85 %.

With `prometheus.dcgm` on and the product's rules on the e2e clock (20 s / 40 s windows):

* `idle` is demoted by the DCGM rule (`DemotedToCpu`: "GPU idles: GPU 3% busy ..."), as soon as
  the short window's rate is at or below the remembered 2 req/s, while the long window's is
  still above it;
* `busy` is demoted later, by the light-load rule only, once the long window's rate is down to
  2 req/s too;
* `kn gaia status` shows the GPU figures.

The request and CPU series come from the Knative metrics STAND-IN (the pods are KWOK fakes).
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tests.harness.autoscaler_run import (AutoscalerProc, MetricsStandin, autoscaler_binary,
                                          autoscaler_config, netns_proc, ready_revision,
                                          revision_pod, rfc3339_to_unix)
from tests.harness.cluster_env import Cluster
from tests.harness.kubectl import Kubectl
from tests.harness.paths import binaries
from tests.harness.proc import run
from tests.harness.wait import wait_until

STANDIN_PORT = 19541
DCGM_PORT = 19542
METRICS_PORT = 18121
DCGM = "tests.harness.dcgm_exporter_standin"
UTIL = {"idle": 3, "busy": 85}


def gpu_ksvc(namespace: str, name: str) -> str:
    """A gpu_preferred Service placed on the GPU, remembering a CPU p95 within its objective."""
    remembered = {"cpu": {"p95Ms": 300.0, "rps": 2.0, "at": "2026-01-01T00:00:00Z"}}
    return json.dumps({
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace,
                     "annotations": {"gaia.dev/mode": "gpu_preferred",
                                     "gaia.dev/latency-slo": "500ms",
                                     "gaia.dev/observed": json.dumps(remembered)}},
        "spec": {"template": {
            "metadata": {"annotations": {"autoscaling.knative.dev/min-scale": "1",
                                         "gaia.dev/placed-for": "gpu"}},
            "spec": {
                "nodeSelector": {"nvidia.com/gpu.present": "true"},
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists",
                                 "effect": "NoSchedule"}],
                "containers": [{"image": f"dev.local/gaia/{name}:1",
                                "resources": {"limits": {"cpu": "1", "nvidia.com/gpu": "1"}}}],
            },
        }},
    })


class DcgmStandin:
    """The DCGM exporter stand-in in the netns, driven over its loopback port."""

    def __init__(self, cluster: Cluster, workdir: Path, port: int):
        self.cluster, self.port = cluster, port
        self.proc = netns_proc(cluster, "dcgm-standin",
                               [sys.executable, "-m", DCGM, "--listen", f"0.0.0.0:{port}"], workdir)
        wait_until(lambda: self._curl("GET", "/healthz") == "ok\n", timeout=30,
                   desc="DCGM stand-in", interval=0.5)

    def _curl(self, method: str, path: str, body: str | None = None) -> str:
        assert self.proc.alive(), f"DCGM stand-in exited:\n{self.proc.tail(6000)}"
        argv = ["curl", "-sf", "-X", method, f"http://127.0.0.1:{self.port}{path}"]
        if body is not None:
            argv += ["-H", "Content-Type: application/json", "--data-binary", body]
        return run(self.cluster.in_netns(*argv), check=False, timeout=20).stdout

    def set(self, pods: dict) -> None:
        self._curl("PUT", "/state", json.dumps({"pods": pods}))


def prom_query(cluster: Cluster, promql: str) -> list[dict]:
    out = run(cluster.in_netns("curl", "-sf", "-G", f"{cluster.prometheus_url}/api/v1/query",
                               "--data-urlencode", f"query={promql}"), check=False, timeout=20).stdout
    return json.loads(out or "{}").get("data", {}).get("result", [])


def test_an_idle_gpu_is_demoted_sooner_on_dcgm_evidence(cluster: Cluster, kubectl: Kubectl,
                                                        namespace: str):
    binary = autoscaler_binary()
    run(["cargo", "build", "--quiet", "--locked", "--bin", "kn-gaia"], timeout=1200)
    workdir = Path(tempfile.mkdtemp(prefix="gaia-dcgm-e2e-"))
    targets = cluster.prom_targets_dir / f"gaia-dcgm-e2e-{namespace}.json"
    standin = dcgm = autoscaler = None
    try:
        standin = MetricsStandin(cluster, workdir, STANDIN_PORT, namespace)
        dcgm = DcgmStandin(cluster, workdir, DCGM_PORT)
        for name in UTIL:
            standin.scrape(namespace, name, revisions=2)
        targets.write_text(json.dumps([
            {"targets": [f"127.0.0.1:{DCGM_PORT}"],
             "labels": {"job": "dcgm-exporter", "instance": f"dcgm-standin-{namespace}"}}]))

        for name in UTIL:
            kubectl.apply(gpu_ksvc(namespace, name))
        revs, pods = {}, {}
        for name in UTIL:
            revs[name] = wait_until(lambda n=name: ready_revision(kubectl, namespace, n),
                                    desc=f"{name}'s first revision ready")
            pods[name] = wait_until(lambda n=name: revision_pod(kubectl, namespace, revs[n]),
                                    desc=f"pod of {revs[name]}")
            limits = pods[name]["spec"]["containers"][0]["resources"]["limits"]
            assert limits.get("nvidia.com/gpu") == "1", limits

        def load(rps: float) -> None:
            standin.set({f"{namespace}/{revs[n]}": {"rps": rps, "latency_ms": 40, "cpu_cores": 0.1,
                                                     "pods": [pods[n]["metadata"]["name"]]}
                         for n in UTIL})

        load(4)
        dcgm.set({f"{namespace}/{pods[n]['metadata']['name']}":
                  {"util": UTIL[n], "fb_used": 1200, "fb_free": 80359, "node": pods[n]["spec"]["nodeName"]}
                  for n in UTIL})
        # the real Prometheus holds the stand-in's series under the exporter's pod labels
        wait_until(lambda: len(prom_query(cluster, f'DCGM_FI_DEV_GPU_UTIL{{namespace="{namespace}"}}')) == 2,
                   timeout=30, desc="DCGM series in Prometheus", interval=1)

        # the rates established over the long window first (a young series reads low: the
        # light-load rule would demote both at once)
        rates = f'sum by (instance) (rate(kn_serving_invocation_duration_seconds_count{{instance=~"{namespace}/.*"}}[40s]))'
        wait_until(lambda: len([r for r in prom_query(cluster, rates) if float(r["value"][1]) >= 3.8]) == 2,
                   timeout=90, desc="4 req/s over the long window in Prometheus", interval=2)
        config = autoscaler_config(cluster, namespace, METRICS_PORT, {
            "prometheus": {"dcgm": {"enabled": True}},
            "policy": {"demote": {"gpuIdleUtilization": 10}},
        }, lease="gaia-autoscaler-dcgm-e2e")
        autoscaler = AutoscalerProc(cluster, binary, workdir, "autoscaler-dcgm", config)

        # 4 req/s > the remembered 2: no demotion while the revisions are younger than the long
        # window and busier than the CPU handled
        wait_until(lambda: autoscaler.holds("gpu_in_use") >= 4, timeout=60,
                   desc="both held on the GPU under 4 req/s", interval=1)
        # kn gaia status, with the same configuration, shows the GPU figures the rule reads
        cm = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "gaia-autoscaler-config", "namespace": namespace},
              "data": {"config.yaml": yaml.safe_dump(config)}}
        kubectl.apply(json.dumps(cm))
        out = run([str(binaries(debug=True) / "kn-gaia"), "status", "-n", namespace, "-o", "json",
                   "--gaia-namespace", namespace, "--prometheus", cluster.prometheus_url],
                  env=cluster.process_env(), check=False, timeout=60)
        rows = {r["name"]: r for r in map(json.loads, out.stdout.splitlines())}
        for name, util in UTIL.items():
            assert rows[name]["currentGpu"] == {"utilizationPct": util, "fbUsedMib": 1200.0,
                                                "fbFreeMib": 80359.0, "window": "40s"}, (rows, out.stderr)
        table = run([str(binaries(debug=True) / "kn-gaia"), "status", "-n", namespace,
                     "--gaia-namespace", namespace, "--prometheus", cluster.prometheus_url],
                    env=cluster.process_env(), check=False, timeout=60).stdout
        assert "GPU (DCGM): 3% busy over 40s, 1200/81559 MiB used" in table, table
        # once in place a whole long window, the load drops
        created = max(rfc3339_to_unix(kubectl.json("get", "ksvc", n, "-n", namespace)["metadata"]
                                      ["creationTimestamp"]) for n in UTIL)
        time.sleep(max(0.0, created + 42 - time.time()))
        assert not kubectl.events_for(namespace, "idle", "DemotedToCpu")
        load(1)
        dropped = time.monotonic()

        ev = wait_until(lambda: autoscaler.proc.alive() and kubectl.events_for(namespace, "idle", "DemotedToCpu"),
                        timeout=60, desc="idle demoted on DCGM evidence", interval=1)
        idle_after = time.monotonic() - dropped
        msg = ev[0]["message"]
        assert "GPU idles: GPU 3% busy over 40s, 1200/81559 MiB used < 10%" in msg, msg
        assert "at which CPU p95 was 300ms ≤ SLO 500ms" in msg, msg
        # the long window's rate was still above the remembered 2 req/s: the light-load rule
        # could not have demoted it yet
        long_rate = float(msg.split("req/s over 40s)")[0].rsplit("(", 1)[1])
        assert long_rate > 2.0, msg
        assert not kubectl.events_for(namespace, "busy", "DemotedToCpu")

        ev = wait_until(lambda: kubectl.events_for(namespace, "busy", "DemotedToCpu"), timeout=60,
                        desc="busy demoted by the light-load rule", interval=1)
        busy_after = time.monotonic() - dropped
        msg = ev[0]["message"]
        assert msg.startswith("load ") and "GPU idles" not in msg, msg
        assert busy_after > idle_after, (idle_after, busy_after)

        print(f"idle demoted {idle_after:.0f} s after the load dropped, busy {busy_after:.0f} s")
    finally:
        targets.unlink(missing_ok=True)
        if autoscaler is not None:
            autoscaler.stop()
        for p in (standin, dcgm):
            if p is not None:
                p.proc.stop(grace=10)
