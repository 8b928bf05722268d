"""STAND-IN for NVIDIA's DCGM exporter, for end-to-end tests only.

The local cluster has no GPU: its GPU nodes are KWOK fakes advertising ``nvidia.com/gpu``, so
no DCGM runs and nothing measures a GPU. This small HTTP server plays the exporter's part for
the cluster's real Prometheus. ``/metrics`` serves, per pod the test configures, what
dcgm-exporter (default counters, Kubernetes pod mapping on) exports for the GPU the pod holds:

* ``DCGM_FI_DEV_GPU_UTIL`` gauge, GPU utilisation in % (0-100),
* ``DCGM_FI_DEV_FB_USED`` / ``DCGM_FI_DEV_FB_FREE`` gauges, frame-buffer memory in MiB,

each with the exporter's labels: ``gpu``, ``UUID``, ``device``, ``modelName``, ``Hostname`` and
the pod's ``namespace``, ``pod``, ``container`` (``exported_*`` are what Prometheus makes of
these behind the Helm chart's ServiceMonitor; scraped here through file_sd they stay as they
are). The model name says ``STAND-IN``. The real exporter samples every 30 s by default; this
one answers the configured values at every scrape.

``PUT /state`` (JSON) sets the pods; pods absent from a new state are no longer exported:

    {"pods": {"ns/pod-a": {"util": 3, "fb_used": 1200, "fb_free": 80000, "node": "gpu-1"}}}

``GET /state`` returns it; ``GET /healthz`` answers ok. It binds the address given on the
command line and never connects anywhere.

Usage: python3 -m tests.harness.dcgm_exporter_standin --listen 10.210.0.2:19600
"""
from __future__ import annotations

import argparse
import json
import threading
from http.server import ThreadingHTTPServer

from tests.harness.queue_proxy_series import MetricsHandler, exposition

FIELDS = (
    ("DCGM_FI_DEV_GPU_UTIL", "util", "GPU utilization (in %)."),
    ("DCGM_FI_DEV_FB_USED", "fb_used", "Framebuffer memory used (in MiB)."),
    ("DCGM_FI_DEV_FB_FREE", "fb_free", "Framebuffer memory free (in MiB)."),
)


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pods: dict[str, dict] = {}

    def configure(self, spec: dict) -> None:
        pods = {}
        for key, cfg in spec.get("pods", {}).items():
            namespace, pod = key.split("/", 1)
            pods[key] = {"namespace": namespace, "pod": pod,
                         "util": float(cfg["util"]),
                         "fb_used": float(cfg.get("fb_used", 0)),
                         "fb_free": float(cfg.get("fb_free", 81559)),
                         "node": str(cfg.get("node", "gpu-node")),
                         "container": str(cfg.get("container", "user-container"))}
        with self.lock:
            self.pods = pods

    def describe(self) -> dict:
        with self.lock:
            return {"pods": dict(self.pods)}

    def metrics(self) -> str:
        with self.lock:
            pods = list(self.pods.values())
        out = []
        for name, field, help_text in FIELDS:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} gauge")
            for i, p in enumerate(pods):
                labels = (f'gpu="0",UUID="GPU-standin-{i:04d}",device="nvidia0",'
                          f'modelName="STAND-IN (no GPU here)",Hostname="{p["node"]}",'
                          f'container="{p["container"]}",namespace="{p["namespace"]}",pod="{p["pod"]}"')
                out.append(f"{name}{{{labels}}} {p[field]}")
        return exposition(out)


STATE = State()


class Handler(MetricsHandler):
    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/healthz":
            return self._send(200, "ok\n")
        if self.path == "/state":
            return self._send(200, json.dumps(STATE.describe()), "application/json")
        if self.path == "/metrics":
            return self._send(200, STATE.metrics())
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
    ThreadingHTTPServer((host, int(port)), Handler).serve_forever()


if __name__ == "__main__":
    main()
