"""Workload EMULATOR: a stand-in for the Knative data plane, for the demo and tests only.

The local cluster's pods are KWOK fakes: nothing runs in them and no request is served. This
process plays the data plane of the Revisions of one namespace:

* it watches the Revision pods of its namespaces (``kubectl get pods -l
  serving.knative.dev/revision``; ``--namespace`` may be repeated) and the nodes; a pod that is Ready, bound and not terminating serves its revision's requests
  as the node's pool (label ``gaia.dev/pool``: ``cpu`` or ``gpu``) would, and a pod whose
  container asks for a slice of a time-sliced GPU (``nvidia.com/gpu.shared``, the placement
  ladder's shared rung, docs/ladder.md) as a seventh of a GPU would: ``gpu_shared``, the whole
  GPU's latencies slowed by the profile's measured ``gpu_shared`` factor (placement_of);
* ``POST /invoke/<namespace>/<revision>`` with a JSON request body (e.g. ``{"size": 4000}``)
  is served by one of the revision's Ready pods: the emulator holds the request for a latency
  drawn from the calibrated profile (tests/eval/profiles/h100.json, measured on an H100 host) of
  the revision's workload and its pod's placement -- ``gpu`` on a GPU node, ``cpu16`` (or
  ``--cpu-placement cpu2``) on a CPU node -- and answers ``{"latency_s", "placement", "pod", ...}``.
  A pod's first request waits for the profile's cold start (``ready_s``: import and model load)
  counted from the moment the pod became Ready; ``503`` when the revision has no Ready pod.
  With ``?cold=fail`` a request that would wait for a cold start is answered ``425`` at once
  with ``{"warming_s": ...}``: the load generator then keeps sending to the revision that
  served before, as Knative does while a new revision's readiness probe has not passed yet
  (KWOK marks pods Ready at once, so the model load the probe would wait for happens here);
* per pod, ``/metrics/pod/<namespace>/<pod>`` serves what Knative 1.21's queue-proxy exports
  with ``request-metrics-protocol: prometheus`` (hack/README.md): the histogram
  ``kn_serving_invocation_duration_seconds_{bucket,sum,count}`` (seconds, Knative's buckets,
  ``http_response_status_code``), the gauge ``kn_serving_queue_depth``, and ``target_info``
  carrying the resource attributes (``k8s_namespace_name``, ``k8s_pod_name``,
  ``kn_service_name``, ``kn_configuration_name``, ``kn_revision_name``);
* ``/metrics/cadvisor`` serves ``container_cpu_usage_seconds_total`` per pod for the
  ``user-container`` (the profile's busy cores while a request runs) and ``queue-proxy``;
* it writes a Prometheus file_sd file (``--targets-file``) with one target per pod (own
  ``instance``, so ``target_info`` joins one to one) and one cAdvisor target, and removes it on
  exit (SIGTERM/SIGINT).

Workload of a revision: its Service name with ``-`` read as ``_`` (``image-classification`` ->
``image_classification``), unless ``--workload SERVICE=WORKLOAD`` says otherwise.
It binds ``--listen`` and connects to nothing but the API server (through kubectl).

Usage: python3 -m tests.harness.emulator --listen 10.210.0.1:19600 --namespace gaia-demo \
           --targets-file $GAIA_PROM_TARGETS_DIR/gaia-demo-emulator.json
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.harness.gpu_profile import Profiles
from tests.harness.paths import REPO
from tests.harness.queue_proxy_series import (BUCKETS_S, CPU_USAGE_TYPE, MetricsHandler, cpu_usage,
                                              exposition, invocation_histogram, observe, target_info)

DEFAULT_PROFILE = REPO / "tests" / "eval" / "profiles" / "h100.json"
QUEUE_PROXY_OVERHEAD_S = 0.0005


SHARED_RESOURCE = "nvidia.com/gpu.shared"


def placement_of(pod: dict, node_pool: str | None) -> str:
    """The profile placement a Revision pod is served with: ``gpu_shared`` when a container asks
    for a time-sliced GPU's slice (the scheduler bound it where one is free), else ``gpu`` on a
    node of the GPU pool, else ``cpu``."""
    for c in (pod.get("spec", {}).get("containers") or []):
        res = c.get("resources") or {}
        for part in ("limits", "requests"):
            amount = str((res.get(part) or {}).get(SHARED_RESOURCE, "0")).strip()
            if amount not in ("", "0"):
                return "gpu_shared"
    return "gpu" if node_pool == "gpu" else "cpu"


class Pod:
    def __init__(self, namespace: str, name: str, revision: str, service: str, configuration: str,
                 node: str, placement: str, ready_at: float, workload: str):
        self.namespace, self.name, self.revision = namespace, name, revision
        self.service, self.configuration = service, configuration
        self.node, self.placement, self.workload = node, placement, workload
        self.ready_at = ready_at          # monotonic time the emulator saw it Ready
        self.gone = False
        self.count = 0
        self.sum = 0.0
        self.buckets = [0] * (len(BUCKETS_S) + 1)
        self.in_flight = 0
        self.busy_cores = 0.0             # sum over running requests
        self.cpu_s = 0.0
        self.sidecar_s = 0.0
        self.last = time.monotonic()

    def advance(self, now: float) -> None:
        dt = max(0.0, now - self.last)
        self.last = now
        self.cpu_s += self.busy_cores * dt + 0.002 * dt   # an idle interpreter is not free
        self.sidecar_s += (0.01 + 0.02 * min(self.in_flight, 1)) * dt

    def observe(self, latency_s: float) -> None:
        self.count += 1
        self.sum += latency_s
        observe(self.buckets, latency_s)


class Emulator:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.profiles = Profiles(args.profile, args.cpu_placement)
        self.workload_of = dict(w.split("=", 1) for w in args.workload)
        self.lock = threading.Lock()
        self.pods: dict[str, Pod] = {}          # "ns/name" -> Pod (Ready ones, and gone ones kept)
        ns = args.namespace
        self.namespaces = [ns] if isinstance(ns, str) else list(dict.fromkeys(ns))
        self.rr: dict[str, int] = {}
        self.rng = random.Random(args.seed)
        self.node_pool: dict[str, str] = {}
        self.nodes_read = 0.0
        self.stopping = threading.Event()
        self.kubectl = [args.kubectl] + (["--kubeconfig", args.kubeconfig] if args.kubeconfig else [])

    # --- the cluster ------------------------------------------------------------------
    def _get(self, *argv: str) -> dict | None:
        try:
            out = subprocess.run([*self.kubectl, "get", *argv, "-o", "json"], capture_output=True,
                                 text=True, timeout=20)
        except subprocess.TimeoutExpired:
            return None
        if out.returncode != 0:
            print(f"emulator: kubectl get {' '.join(argv)}: {out.stderr.strip()}", file=sys.stderr)
            return None
        return json.loads(out.stdout)

    def workload(self, service: str) -> str:
        return self.workload_of.get(service, service.replace("-", "_"))

    def refresh(self) -> None:
        now = time.monotonic()
        if now - self.nodes_read > 15 or not self.node_pool:
            nodes = self._get("nodes")
            if nodes:
                self.node_pool = {n["metadata"]["name"]: n["metadata"].get("labels", {}).get("gaia.dev/pool", "cpu")
                                  for n in nodes["items"]}
                self.nodes_read = now
        where = ["-n", self.namespaces[0]] if len(self.namespaces) == 1 else ["-A"]
        pods = self._get("pods", *where, "-l", "serving.knative.dev/revision")
        if pods is None:
            return
        ready: dict[str, dict] = {}
        for p in pods["items"]:
            meta, spec, status = p["metadata"], p["spec"], p.get("status", {})
            if meta.get("namespace") not in self.namespaces:
                continue
            conds = {c["type"]: c["status"] for c in status.get("conditions", []) or []}
            if meta.get("deletionTimestamp") or not spec.get("nodeName") or conds.get("Ready") != "True":
                continue
            ready[f"{meta['namespace']}/{meta['name']}"] = p
        changed = False
        with self.lock:
            for name, pod in self.pods.items():
                if not pod.gone and name not in ready:
                    pod.advance(now)
                    pod.gone, changed = True, True
                    print(f"emulator: pod {name} ({pod.revision}) gone", flush=True)
            for key, p in ready.items():
                if key in self.pods and not self.pods[key].gone:
                    continue
                name = p["metadata"]["name"]
                labels = p["metadata"].get("labels", {})
                service = labels.get("serving.knative.dev/service", "")
                node = p["spec"]["nodeName"]
                placement = placement_of(p, self.node_pool.get(node))
                workload = self.workload(service)
                if workload not in self.profiles.workloads:
                    print(f"emulator: no profile for workload {workload!r} (service {service}); "
                          "serving it as idle_wait", file=sys.stderr, flush=True)
                    workload = "idle_wait"
                self.pods[key] = Pod(p["metadata"]["namespace"], name, labels["serving.knative.dev/revision"],
                                      service, labels.get("serving.knative.dev/configuration", service),
                                      node, placement, now, workload)
                changed = True
                print(f"emulator: pod {key} of {labels['serving.knative.dev/revision']} Ready on "
                      f"{node} ({placement}): serving {workload} from the "
                      f"{self.profiles.key(placement)} profile after a "
                      f"{self.profiles.ready_s(workload, placement):.1f} s cold start", flush=True)
            # forget pods gone for a while (Prometheus has their last samples)
            for name in [n for n, p in self.pods.items() if p.gone and now - p.last > 300]:
                del self.pods[name]
        if changed:
            self.write_targets()

    def write_targets(self) -> None:
        if not self.args.targets_file:
            return
        listen = self.args.advertise or self.args.listen
        # Prometheus honours a target's own __scrape_interval__ (the cluster's default is 2 s)
        every = {"__scrape_interval__": self.args.scrape_interval} if self.args.scrape_interval else {}
        with self.lock:
            groups = [{"targets": [listen],
                       "labels": {"job": "queue-proxy", "instance": f"{p.namespace}/{p.name}",
                                  "__metrics_path__": f"/metrics/pod/{p.namespace}/{p.name}", **every}}
                      for p in self.pods.values() if not p.gone]
        groups.append({"targets": [listen],
                       "labels": {"job": "kubelet-cadvisor", "instance": f"cadvisor-{'+'.join(self.namespaces)}",
                                  "__metrics_path__": "/metrics/cadvisor", **every}})
        path = Path(self.args.targets_file)
        tmp = path.with_name("." + path.name + ".tmp")
        tmp.write_text(json.dumps(groups, indent=1))
        os.replace(tmp, path)

    def watch(self) -> None:
        while not self.stopping.is_set():
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - keep serving
                print(f"emulator: refresh failed: {exc}", file=sys.stderr, flush=True)
            self.stopping.wait(self.args.poll)

    # --- requests -----------------------------------------------------------------------
    def pick(self, namespace: str, revision: str) -> Pod | None:
        with self.lock:
            pods = [p for p in self.pods.values()
                    if p.namespace == namespace and p.revision == revision and not p.gone]
            if not pods:
                return None
            pods.sort(key=lambda p: p.name)
            key = f"{namespace}/{revision}"
            i = self.rr.get(key, 0)
            self.rr[key] = i + 1
            return pods[i % len(pods)]

    def invoke(self, namespace: str, revision: str, request: dict,
               wait_cold: bool = True) -> tuple[int, dict]:
        pod = self.pick(namespace, revision)
        if pod is None:
            return 503, {"error": f"revision {namespace}/{revision} has no Ready pod"}
        arrived = time.monotonic()
        with self.lock:
            cold_until = pod.ready_at + self.profiles.ready_s(pod.workload, pod.placement)
            if not wait_cold and cold_until > arrived:
                return 425, {"warming_s": round(cold_until - arrived, 3), "pod": pod.name}
            latency, busy = self.profiles.sample(pod.workload, pod.placement, request, self.rng)
        cold_wait = max(0.0, cold_until - arrived)
        if cold_wait:
            time.sleep(cold_wait)   # the container is still importing / loading its model
        latency += QUEUE_PROXY_OVERHEAD_S
        with self.lock:
            pod.advance(time.monotonic())
            pod.in_flight += 1
            pod.busy_cores += busy
        time.sleep(latency)
        with self.lock:
            pod.advance(time.monotonic())
            pod.in_flight -= 1
            pod.busy_cores = max(0.0, pod.busy_cores - busy)
            pod.observe(latency)
        return 200, {"latency_s": latency, "cold_wait_s": cold_wait, "placement": pod.placement,
                     "profile": self.profiles.key(pod.placement), "pod": pod.name,
                     "node": pod.node, "revision": pod.revision, "cpu_cores": busy}

    # --- metrics ------------------------------------------------------------------------
    def pod_metrics(self, namespace: str, name: str) -> str | None:
        with self.lock:
            p = self.pods.get(f"{namespace}/{name}")
            if p is None:
                return None
            out = []
            # OpenTelemetry exports a histogram's series from its first recording on: before
            # the pod's first answer there is none (as with the real queue-proxy)
            if p.count:
                out += invocation_histogram(p.buckets, p.sum, p.count, with_help=True)
            out.append("# HELP kn_serving_queue_depth Number of current items in the queue proxy queue")
            out.append("# TYPE kn_serving_queue_depth gauge")
            out.append(f"kn_serving_queue_depth {p.in_flight}")
            out += target_info(p.namespace, p.service, p.configuration, p.revision, pod=p.name)
            return exposition(out)

    def cadvisor_metrics(self) -> str:
        now = time.monotonic()
        with self.lock:
            out = [CPU_USAGE_TYPE]
            for p in self.pods.values():
                if not p.gone:
                    p.advance(now)
                out.append(cpu_usage("user-container", p.namespace, p.name, f"{p.cpu_s:.6f}"))
                out.append(cpu_usage("queue-proxy", p.namespace, p.name, f"{p.sidecar_s:.6f}"))
            return exposition(out)

    def describe(self) -> dict:
        with self.lock:
            return {"pods": {n: {"namespace": p.namespace, "revision": p.revision, "service": p.service, "node": p.node,
                                 "placement": p.placement, "workload": p.workload, "gone": p.gone,
                                 "count": p.count, "in_flight": p.in_flight}
                             for n, p in self.pods.items()}}


def handler_for(emu: Emulator) -> type[BaseHTTPRequestHandler]:
    class Handler(MetricsHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/healthz":
                return self._send(200, "ok\n")
            if self.path == "/state":
                return self._send(200, json.dumps(emu.describe()), "application/json")
            if self.path == "/metrics/cadvisor":
                return self._send(200, emu.cadvisor_metrics())
            prefix = "/metrics/pod/"
            if self.path.startswith(prefix) and self.path.count("/") == 4:
                ns, name = self.path[len(prefix):].split("/", 1)
                body = emu.pod_metrics(ns, name)
                if body is not None:
                    return self._send(200, body)
            self._send(404, "not found\n")

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length) if length else b""
            prefix = "/invoke/"
            if not self.path.startswith(prefix):
                return self._send(404, "not found\n")
            path, _, query = self.path.partition("?")
            if path.count("/") != 3:
                return self._send(404, "not found\n")
            ns, rev = path[len(prefix):].split("/", 1)
            try:
                request = json.loads(raw or b"{}")
            except ValueError:
                return self._send(400, "bad JSON\n")
            code, body = emu.invoke(ns, rev, request if isinstance(request, dict) else {},
                                    wait_cold="cold=fail" not in query.split("&"))
            self._send(code, json.dumps(body), "application/json")

    return Handler


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", required=True, help="HOST:PORT to bind")
    ap.add_argument("--advertise", help="HOST:PORT Prometheus scrapes (default: --listen)")
    ap.add_argument("--namespace", required=True, action="append",
                    help="namespace whose Revisions are emulated (repeat for several)")
    ap.add_argument("--targets-file", help="Prometheus file_sd file to write (and remove on exit)")
    ap.add_argument("--profile", type=Path, default=DEFAULT_PROFILE)
    ap.add_argument("--cpu-placement", choices=["cpu16", "cpu2"], default="cpu16",
                    help="profile a CPU node's pod gets (default cpu16: 16 threads)")
    ap.add_argument("--workload", action="append", default=[], metavar="SERVICE=WORKLOAD")
    ap.add_argument("--kubectl", default=os.environ.get("GAIA_KUBECTL", "kubectl"))
    ap.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    ap.add_argument("--poll", type=float, default=1.0, help="seconds between pod listings")
    ap.add_argument("--scrape-interval", default=None,
                    help="Prometheus scrape interval for these targets, e.g. 15s (default: the job's)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    emu = Emulator(args)
    host, port = args.listen.rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), handler_for(emu))
    server.daemon_threads = True

    def stop(*_):
        emu.stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    emu.refresh()
    emu.write_targets()
    threading.Thread(target=emu.watch, daemon=True).start()
    print(f"emulator: serving {', '.join(emu.namespaces)} on {args.listen} (CPU nodes: {args.cpu_placement} "
          "profile, GPU nodes: gpu profile)", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        if args.targets_file:
            Path(args.targets_file).unlink(missing_ok=True)
        print("emulator: stopped", flush=True)


if __name__ == "__main__":
    main()
