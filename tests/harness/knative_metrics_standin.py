"""STAND-IN for the Knative data plane's metrics, for end-to-end tests only.

The local cluster's pods are KWOK fakes: no queue-proxy runs, no request is served, no cAdvisor
measures anything. This small HTTP server plays their part for Prometheus. It serves, per
revision the test configures, the series a real cluster would have:

* ``/metrics/revision/<namespace>/<revision>`` -- what one queue-proxy target of Knative >= 1.19
  exports: ``kn_serving_invocation_duration_seconds_{bucket,sum,count}`` (seconds, Knative's
  buckets) and ``target_info`` carrying the revision as OpenTelemetry resource attributes
  (``k8s_namespace_name``, ``kn_revision_name``...). Scrape one target per revision, with its
  own ``instance`` label, as Prometheus would scrape one queue-proxy per pod.
* ``/metrics/cadvisor`` -- ``container_cpu_usage_seconds_total`` for the user container and
  the queue-proxy sidecar of every configured pod.

Counters grow continuously at the configured rate; a ``PUT /state`` (JSON) changes the load:

    {"revisions": {"ns/rev": {"rps": 5, "latency_ms": 3000, "cpu_cores": 0.95,
                              "pods": ["pod-a"]}}}

Revisions absent from a new state keep their counters but stop growing. ``GET /state`` returns
the state; ``GET /healthz`` answers ok. It binds the address given on the command line and
never connects anywhere.

Usage: python3 -m tests.harness.knative_metrics_standin --listen 10.210.0.2:19500
"""
from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import ThreadingHTTPServer

from tests.harness.queue_proxy_series import (BUCKETS_S, CPU_USAGE_TYPE, MetricsHandler, cpu_usage,
                                              exposition, invocation_histogram, observe, target_info)


class Revision:
    def __init__(self, namespace: str, name: str):
        self.namespace = namespace
        self.name = name
        self.service = name.rsplit("-", 1)[0]
        self.rps = 0.0
        self.latency_s = 0.1
        self.cpu_cores = 0.0
        self.pods: list[str] = []
        self.count = 0.0
        self.sum = 0.0
        self.buckets = [0.0] * (len(BUCKETS_S) + 1)
        self.cpu: dict[str, float] = {}
        self.sidecar: dict[str, float] = {}

    def advance(self, dt: float) -> None:
        n = self.rps * dt
        self.count += n
        self.sum += n * self.latency_s
        observe(self.buckets, self.latency_s, n)
        per_pod = self.cpu_cores * dt
        for pod in self.pods:
            self.cpu[pod] = self.cpu.get(pod, 1000.0) + per_pod
            self.sidecar[pod] = self.sidecar.get(pod, 500.0) + 0.02 * dt


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.revisions: dict[str, Revision] = {}
        self.last = time.monotonic()

    def _advance(self) -> None:
        now = time.monotonic()
        dt, self.last = now - self.last, now
        for r in self.revisions.values():
            r.advance(dt)

    def configure(self, spec: dict) -> None:
        with self.lock:
            self._advance()
            wanted = spec.get("revisions", {})
            for key, r in self.revisions.items():
                if key not in wanted:
                    r.rps, r.cpu_cores = 0.0, 0.0
            for key, cfg in wanted.items():
                ns, name = key.split("/", 1)
                r = self.revisions.setdefault(key, Revision(ns, name))
                r.rps = float(cfg.get("rps", 0))
                r.latency_s = float(cfg.get("latency_ms", 100)) / 1e3
                r.cpu_cores = float(cfg.get("cpu_cores", 0))
                r.pods = list(cfg.get("pods", []))

    def describe(self) -> dict:
        with self.lock:
            return {"revisions": {k: {"rps": r.rps, "latency_ms": r.latency_s * 1e3,
                                      "cpu_cores": r.cpu_cores, "pods": r.pods,
                                      "count": r.count}
                                  for k, r in self.revisions.items()}}

    def revision_metrics(self, key: str) -> str | None:
        with self.lock:
            self._advance()
            r = self.revisions.get(key)
            if r is None:
                return None
            out = invocation_histogram(r.buckets, r.sum, r.count)
            out += target_info(r.namespace, r.service, r.service, r.name)
            return exposition(out)

    def cadvisor_metrics(self) -> str:
        with self.lock:
            self._advance()
            out = [CPU_USAGE_TYPE]
            for r in self.revisions.values():
                for pod, v in r.cpu.items():
                    out.append(cpu_usage("user-container", r.namespace, pod, v))
                for pod, v in r.sidecar.items():
                    out.append(cpu_usage("queue-proxy", r.namespace, pod, v))
            return exposition(out)


STATE = State()


class Handler(MetricsHandler):
    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/healthz":
            return self._send(200, "ok\n")
        if self.path == "/state":
            return self._send(200, json.dumps(STATE.describe()), "application/json")
        if self.path == "/metrics/cadvisor":
            return self._send(200, STATE.cadvisor_metrics())
        prefix = "/metrics/revision/"
        if self.path.startswith(prefix):
            body = STATE.revision_metrics(self.path[len(prefix):])
            if body is not None:
                return self._send(200, body)
        self._send(404, "not found\n")

    def do_PUT(self) -> None:  # noqa: N802
        if self.path != "/state":
            return self._send(404, "not found\n")
        length = int(self.headers.get("Content-Length", "0"))
        try:
            STATE.configure(json.loads(self.rfile.read(length) or b"{}"))
        except (ValueError, KeyError, TypeError) as exc:
            return self._send(400, f"bad state: {exc}\n")
        self._send(200, json.dumps(STATE.describe()), "application/json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", required=True, help="HOST:PORT to bind")
    args = ap.parse_args()
    host, port = args.listen.rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
