"""Load generator (test harness): replays the paper's scenarios against the workload emulator.

Each scenario is one Knative Service and runs in its own thread(s):

| scenario | requests (full) | `--short` | how |
|---|---|---|---|
| matmul | sizes 0..20000 step 200 (101) | the same sweep | back to back, 1 client |
| image_classification | 500 ResNet-18 requests | 150 | paced at 5 req/s |
| text_generation | 20 TinyLlama requests (256 tokens) | 6 | back to back, 2 clients |
| idle_wait | 200 waits of 2 s | 40 | back to back, 1 client |

The evaluation's scenarios (tests/eval/live.py; the same as the virtual-clock replay's):

| scenario | requests (full) | `--short` | how |
|---|---|---|---|
| resnet18 | 500 ResNet-18 requests | 150 | 1 client, 0.17 s pause after each answer |
| tinyllama | 30 TinyLlama requests (256 tokens) | 6 | back to back, 1 client |
| idle | 200 waits of 2 s | 40 | back to back, 2 clients |

Every request goes to the revision that serves the Service *now*: a router thread reads the
Services' ``status.traffic`` (Knative's split; ``latestReadyRevisionName`` when it has none)
every second, and each request picks a revision by those percentages, then
``POST <emulator>/invoke/<namespace>/<revision>``. A revision with no Ready pod yet (503) is
retried. A revision the client has not been answered by yet is asked with ``?cold=fail``: while
its pod is still loading the model (425) the request goes to the revision that answered last,
as Knative keeps routing to the old revision until the new one's readiness probe passes. A
client starts once its Service has a Ready revision; its first request waits for the cold start.
One JSON line per request goes to ``--log``: ``t`` (sent, Unix seconds), ``ns``, ``fn``,
``revision``, ``placement``, ``latency_s`` (what the client saw: cold-start wait included),
``service_s`` (the function's own time, what queue-proxy measures), ``status``.

Usage: python3 -m tests.harness.loadgen --emulator http://10.210.0.1:19600 --namespace gaia-demo \
           --scenario matmul --scenario idle-wait=idle_wait --log requests.jsonl [--short]
       python3 -m tests.harness.loadgen --emulator ... --scenario ns-a/matmul --scenario ns-b/idle=idle ...
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
import urllib.error
import urllib.request

SCENARIOS = {
    # name: (full count, short count, request(i), pace in req/s or None = back to back, clients,
    #        pause after each answer in seconds)
    "matmul": (101, 101, lambda i: {"size": 200 * i}, None, 1, 0.0),
    "image_classification": (500, 150, lambda i: {"image": True}, 5.0, 1, 0.0),
    "text_generation": (20, 6, lambda i: {"new_tokens": 256}, None, 2, 0.0),
    "idle_wait": (200, 40, lambda i: {"seconds": 2}, None, 1, 0.0),
    # the evaluation's (tests/eval/live.py), as the virtual-clock replay runs them
    "resnet18": (500, 150, lambda i: {"image": True}, None, 1, 0.17),
    "tinyllama": (30, 6, lambda i: {"new_tokens": 256}, None, 1, 0.0),
    "idle": (200, 40, lambda i: {"seconds": 2}, None, 2, 0.0),
}


class Router:
    """Which revision serves each Service now, from the Services' status ("ns/name" keys)."""

    def __init__(self, kubectl: list[str], services: list[str]):
        self.kubectl, self.services = kubectl, services
        self.namespaces = sorted({s.split("/", 1)[0] for s in services})
        self.lock = threading.Lock()
        self.split: dict[str, list[tuple[str, float]]] = {}
        self.stop = threading.Event()

    def refresh(self) -> None:
        where = ["-n", self.namespaces[0]] if len(self.namespaces) == 1 else ["-A"]
        out = subprocess.run([*self.kubectl, "get", "ksvc", *where, "-o", "json"],
                             capture_output=True, text=True, timeout=20)
        if out.returncode != 0:
            return
        split = {}
        for svc in json.loads(out.stdout)["items"]:
            meta, status = svc["metadata"], svc.get("status", {})
            key = f"{meta.get('namespace')}/{meta['name']}"
            targets = [(t["revisionName"], float(t.get("percent", 0)))
                       for t in status.get("traffic", []) or [] if t.get("revisionName") and t.get("percent")]
            if not targets and status.get("latestReadyRevisionName"):
                targets = [(status["latestReadyRevisionName"], 100.0)]
            if targets:
                split[key] = targets
        with self.lock:
            self.split = split

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001
                print(f"loadgen: router: {exc}", file=sys.stderr, flush=True)
            self.stop.wait(1.0)

    def revision(self, service: str, rng: random.Random) -> str | None:
        with self.lock:
            targets = self.split.get(service)
        if not targets:
            return None
        total = sum(p for _, p in targets)
        x = rng.uniform(0, total)
        for rev, p in targets:
            x -= p
            if x <= 0:
                return rev
        return targets[-1][0]


class Log:
    def __init__(self, path: str | None):
        self.lock = threading.Lock()
        self.f = open(path, "a", buffering=1) if path else None  # noqa: SIM115

    def write(self, rec: dict) -> None:
        if self.f:
            with self.lock:
                self.f.write(json.dumps(rec) + "\n")


def invoke(emulator: str, namespace: str, revision: str, body: dict, timeout: float,
           wait_cold: bool = True) -> tuple[int, dict]:
    query = "" if wait_cold else "?cold=fail"
    req = urllib.request.Request(f"{emulator}/invoke/{namespace}/{revision}{query}", method="POST",
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - local emulator
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except (urllib.error.URLError, OSError) as exc:
        return 599, {"error": str(exc)}


def client(args, service: str, scenario: str, indices: list[int], router: Router, log: Log,
           deadline: float, stop: threading.Event, seed: int) -> None:
    _, _, make, pace, _, pause = SCENARIOS[scenario]
    namespace, name = service.split("/", 1)
    rng = random.Random(seed)
    # start once the Service has a Ready revision (Knative's route exists from then on)
    while router.revision(service, rng) is None:
        if stop.wait(0.2) or time.monotonic() >= deadline:
            return
    started = time.monotonic()
    answered_by: str | None = None     # the revision that answered this client last
    for k, i in enumerate(indices):
        if stop.is_set() or time.monotonic() >= deadline:
            return
        if pace:
            due = started + k / (pace * args.pace_scale)
            if stop.wait(max(0.0, due - time.monotonic())):
                return
        body = make(i)
        t0, wall0 = time.monotonic(), time.time()
        status, resp, rev = 0, {}, None
        while not stop.is_set() and time.monotonic() < deadline:
            rev = router.revision(service, rng)
            if rev is None:
                stop.wait(0.5)
                continue
            if answered_by is not None and rev != answered_by:
                # a new revision: while its pod is still loading, the old one keeps serving
                status, resp = invoke(args.emulator, namespace, rev, body, timeout=600, wait_cold=False)
                if status in (425, 503):   # still loading, or not seen Ready by the emulator yet
                    old = answered_by
                    status, resp = invoke(args.emulator, namespace, old, body, timeout=600)
                    if status == 200:
                        rev = old
                        break
            else:
                status, resp = invoke(args.emulator, namespace, rev, body, timeout=600)
            if status == 200:
                break
            stop.wait(0.5)   # no Ready pod yet, or a revision just replaced: ask the router again
        if status != 200:
            return
        answered_by = rev
        log.write({"t": round(wall0, 3), "ns": namespace, "fn": name, "scenario": scenario, "i": i,
                   "request": body, "revision": rev, "placement": resp.get("placement"),
                   "pod": resp.get("pod"), "latency_s": round(time.monotonic() - t0, 6),
                   "service_s": resp.get("latency_s"), "cold_wait_s": resp.get("cold_wait_s"),
                   "status": status})
        if pause and stop.wait(pause):
            return


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--emulator", required=True, help="the emulator's URL")
    ap.add_argument("--namespace", help="namespace of Services given without one")
    ap.add_argument("--scenario", action="append", required=True, metavar="[NS/]SERVICE[=SCENARIO]",
                    help="a Service and its scenario (default: the Service name with - as _)")
    ap.add_argument("--short", action="store_true", help="fewer requests (see the table above)")
    ap.add_argument("--duration", type=float, default=3600, help="stop after this many seconds")
    ap.add_argument("--pace-scale", type=float, default=1.0, help="multiply paced rates")
    ap.add_argument("--log", help="JSON lines, one per request")
    ap.add_argument("--kubectl", default=os.environ.get("GAIA_KUBECTL", "kubectl"))
    ap.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    args = ap.parse_args()

    kubectl = [args.kubectl] + (["--kubeconfig", args.kubeconfig] if args.kubeconfig else [])
    pairs = []
    for s in args.scenario:
        service, _, scenario = s.partition("=")
        scenario = scenario or service.rsplit("/", 1)[-1].replace("-", "_")
        if scenario not in SCENARIOS:
            ap.error(f"unknown scenario {scenario!r} (known: {', '.join(SCENARIOS)})")
        if "/" not in service:
            if not args.namespace:
                ap.error(f"{service}: give it as NS/SERVICE or pass --namespace")
            service = f"{args.namespace}/{service}"
        pairs.append((service, scenario))
    router = Router(kubectl, [p[0] for p in pairs])
    router.refresh()
    threading.Thread(target=router.run, daemon=True).start()
    log = Log(args.log)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    deadline = time.monotonic() + args.duration
    threads = []
    for n, (service, scenario) in enumerate(pairs):
        full, short, _, _, clients, _ = SCENARIOS[scenario]
        count = short if args.short else full
        for c in range(clients):
            idx = list(range(c, count, clients))
            t = threading.Thread(target=client, args=(args, service, scenario, idx, router, log,
                                                      deadline, stop, 100 * n + c), daemon=True)
            t.start()
            threads.append(t)
    print(f"loadgen: {len(pairs)} scenarios started ({'short' if args.short else 'full'})", flush=True)
    for t in threads:
        while t.is_alive() and not stop.is_set():
            t.join(0.5)
    stop.set()
    router.stop.set()
    print("loadgen: done", flush=True)


if __name__ == "__main__":
    main()
