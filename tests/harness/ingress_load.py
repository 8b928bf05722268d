"""Load through the cluster's real ingress, for the demo on real nodes (tests/harness/demo.py).

Each scenario is one or more client threads sending a function's JSON request to Traefik (the
KIngress) with the Knative Service's host name, back to back or at a fixed rate, as users
would. Every answer is one line of the request log, in the format the emulated load generator
(loadgen.py) writes, so the demo's status lines, summary and plot read both:

    {"fn", "t" (wall-clock start), "latency_s", "placement" ("gpu" when the GPU stand-in
     answered, else "cpu"), "status", "request", "error"?}

A pod on the GPU-pool worker of the local cluster answers through the function server's GPU
stand-in mode (header ``X-Gaia-Standin: gpu``); every other answer was computed by the real
function on the real CPU worker. Test harness only.
"""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Scenario:
    fn: str
    host: str
    body: dict
    clients: int = 1
    rate: float | None = None  # requests/s per client; None: back to back
    timeout: float = 60.0
    stats: dict = field(default_factory=lambda: {"ok": 0, "errors": 0})


class IngressLoad:
    def __init__(self, ingress_url: str, log: Path):
        self.url = ingress_url
        self.log = log
        self.lock = threading.Lock()
        self.running = threading.Event()
        self.threads: list[threading.Thread] = []
        self.scenarios: list[Scenario] = []

    def add(self, scenario: Scenario) -> None:
        self.scenarios.append(scenario)

    def start(self) -> None:
        self.running.set()
        for s in self.scenarios:
            for i in range(s.clients):
                t = threading.Thread(target=self._client, args=(s,), name=f"load-{s.fn}-{i}", daemon=True)
                t.start()
                self.threads.append(t)

    def alive(self) -> bool:
        return self.running.is_set() and any(t.is_alive() for t in self.threads)

    def stop(self) -> None:
        self.running.clear()
        for t in self.threads:
            t.join(timeout=90)

    def _client(self, s: Scenario) -> None:
        data = json.dumps(s.body).encode()
        headers = {"Host": s.host, "Content-Type": "application/json"}
        next_at = time.monotonic()
        while self.running.is_set():
            if s.rate:
                pause = next_at - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                next_at = max(next_at + 1 / s.rate, time.monotonic() - 1)
            started, t0 = time.time(), time.monotonic()
            record = {"fn": s.fn, "t": started, "request": s.body}
            try:
                req = urllib.request.Request(self.url, data=data, headers=headers)
                with urllib.request.urlopen(req, timeout=s.timeout) as resp:  # noqa: S310 - the cluster's ingress
                    answer = json.loads(resp.read() or b"{}")
                    standin = resp.headers.get("X-Gaia-Standin") == "gpu" or answer.get("standin") == "gpu"
                    record.update(status=resp.status, placement="gpu" if standin else "cpu")
                    s.stats["ok"] += 1
            except (urllib.error.URLError, OSError, ValueError) as exc:
                record.update(status=getattr(exc, "code", 0), placement="?", error=str(exc)[:200])
                s.stats["errors"] += 1
            record["latency_s"] = time.monotonic() - t0
            if record.get("error"):
                # the ingress has no route yet, or the revision is being replaced: do not spin
                time.sleep(0.5)
            with self.lock, open(self.log, "a") as f:
                f.write(json.dumps(record) + "\n")
