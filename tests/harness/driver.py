"""What the demo (demo.py) and the live evaluation (tests/eval/live.py) both do on the cluster.

A ``Driver`` holds the cluster (``Cluster``, from ``hack/cluster.sh env``), a ``Kubectl`` for it,
an output folder and the processes it started; it waits for conditions while saying what it waits
for, makes a fresh namespace, starts the workload emulator (emulator.py) and reads the load
generator's request log (loadgen.py) as it grows. Test harness only.
"""
from __future__ import annotations

import json
import math
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Callable

from tests.harness.cluster_env import Cluster
from tests.harness.kubectl import Kubectl
from tests.harness.proc import Proc


class Driver:
    def __init__(self, out: Path, stop: threading.Event, say: Callable[[str], None]):
        self.cluster = Cluster.read()
        self.env = self.cluster.env
        self.kubectl = Kubectl(self.cluster)
        self.out = Path(out).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.stop, self.say = stop, say
        self.procs: list[Proc] = []
        self.requests: list[dict] = []
        self.req_log = self.out / "requests.jsonl"
        self.req_log.unlink(missing_ok=True)
        self.req_pos = 0

    @staticmethod
    def cluster_has_real_nodes() -> bool:
        """Whether the running cluster was brought up with real nodes (hack/cluster.sh env)."""
        return Cluster.read().env.get("GAIA_REAL_NODES") == "1"

    # --- the cluster --------------------------------------------------------------------
    def wait(self, what: str, fn, timeout: float, every: float = 5.0):
        """fn() until it is truthy; says every few seconds what it waits for."""
        start = last = time.monotonic()
        while not self.stop.is_set():
            v = fn()
            if v:
                return v
            now = time.monotonic()
            if now - start > timeout:
                raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
            if now - last >= every:
                self.say(f"  ... still waiting for {what} ({now - start:.0f} s)")
                last = now
            self.stop.wait(1)
        raise KeyboardInterrupt

    def fresh_namespace(self, ns: str) -> None:
        """Deletes what an earlier run left, creates the namespace, waits for its ServiceAccount."""
        if self.kubectl("get", "namespace", ns, check=False).returncode == 0:
            self.say(f"namespace {ns} exists from an earlier run: deleting it")
            self.kubectl("delete", "namespace", ns, "--wait=false", check=False)
            self.wait(f"namespace {ns} to go",
                      lambda: self.kubectl("get", "namespace", ns, check=False).returncode != 0, 180)
        self.kubectl("create", "namespace", ns)
        self.wait(f"{ns}'s default ServiceAccount",
                  lambda: self.kubectl("get", "serviceaccount", "default", "-n", ns,
                                       check=False).returncode == 0, 60)

    def delete_namespaces(self, namespaces: list[str], timeout: float) -> None:
        """Deletes the namespaces and waits (at most timeout) until no Revision pod is left in them."""
        for ns in namespaces:
            self.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = self.kubectl("get", "pods", "-A", "-l", "serving.knative.dev/revision", "-o",
                                "jsonpath={range .items[*]}{.metadata.namespace}{'\\n'}{end}",
                                check=False).stdout.split()
            if not set(left) & set(namespaces):
                return
            time.sleep(2)

    # --- the emulated data plane --------------------------------------------------------
    def start_emulator(self, port: int, namespaces: list[str], targets: Path, *extra: str) -> Proc:
        """emulator.py on the host side of the cluster's network, healthy, scraped via targets."""
        host = self.cluster.host_ip
        argv = [sys.executable, "-m", "tests.harness.emulator", "--listen", f"{host}:{port}",
                "--targets-file", str(targets), "--kubectl", self.env["GAIA_KUBECTL"],
                "--kubeconfig", self.env["KUBECONFIG"], *extra]
        for ns in namespaces:
            argv += ["--namespace", ns]
        p = Proc(argv, self.out / "emulator.log", self.cluster.process_env())
        self.procs.append(p)

        def healthy():
            if not p.alive():
                raise RuntimeError(f"emulator exited:\n{p.tail()}")
            try:
                with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=2) as r:  # noqa: S310
                    return r.status == 200
            except OSError:
                return False
        self.wait("the emulator", healthy, 30)
        return p

    def read_requests(self) -> None:
        """Appends the request log's new complete lines to self.requests."""
        if not self.req_log.exists():
            return
        with open(self.req_log) as f:
            f.seek(self.req_pos)
            for line in f:
                if not line.endswith("\n"):
                    break
                self.req_pos += len(line.encode())
                try:
                    self.requests.append(json.loads(line))
                except ValueError:
                    pass


def nearest_rank(xs: list[float], q: float) -> float | None:
    """The q-th percentile by nearest rank (None for no values)."""
    if not xs:
        return None
    xs = sorted(xs)
    return xs[max(0, min(len(xs) - 1, math.ceil(q / 100 * len(xs)) - 1))]
