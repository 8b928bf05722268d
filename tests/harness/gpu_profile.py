"""Latency and CPU use of the example workloads from a calibration profile (gaia-calibration/1
or /2, tests/eval/profiles/*.json, measured on real machines: docs/calibration.md).

Placements: ``gpu`` (a whole GPU), the CPU (``cpu16`` or ``cpu2``), and ``gpu_shared`` (a GPU
time-sliced 7 ways, the /2 profiles' ``gpu_shared`` section): the whole GPU's latencies slowed by
the measured ``slowdown_7_processes`` factor of the workload, its cold start the whole GPU's, as
the replay's ``Hw::GpuShared`` (tests/eval/replay) applies them; a workload with no factor (the
idle wait, which uses no GPU) is not slowed.

Standard library only: besides the emulator (tests/harness/emulator.py), this module ships in
the function runtime image (hack/build.sh), where the GPU STAND-IN mode of the function server
(hack/images/runtime/function_server.py) answers a request on the GPU-pool worker with the
profile's GPU latency instead of computing: a GPU is the one thing the local cluster cannot
have.
"""
from __future__ import annotations

import bisect
import json
import random
from pathlib import Path


SHARED = "gpu_shared"


class Profiles:
    """Latency and CPU use per (workload, placement) from a gaia-calibration/1 or /2 file."""

    def __init__(self, path: Path, cpu_placement: str = "cpu16"):
        data = json.loads(Path(path).read_text())
        self.path = Path(path)
        self.workloads = data["workloads"]
        self.summary = data["summary"]
        self.cpu_placement = cpu_placement
        shared = (data.get("gpu_shared") or {}).get("workloads")
        # workload -> slowdown on a GPU time-sliced 7 ways; None: the profile has no such section
        self.shared_slowdown: dict[str, float] | None = None if shared is None else {
            w: float(v["slowdown_7_processes"]["factor"]) for w, v in shared.items()
            if isinstance(v, dict) and "slowdown_7_processes" in v}

    def key(self, placement: str) -> str:
        if placement == SHARED:
            return SHARED
        return "gpu" if placement == "gpu" else self.cpu_placement

    def shared_factor(self, workload: str) -> float:
        """The slowdown of the workload on a GPU time-sliced 7 ways."""
        if self.shared_slowdown is None:
            raise ValueError(f"{self.path}: no gpu_shared section (a gaia-calibration/2 profile "
                             "has it): cannot serve a pod on a shared GPU")
        return self.shared_slowdown.get(workload, 1.0)

    def _rec(self, workload: str, placement: str) -> dict:
        return self.workloads[workload]["placements"][self.key(placement)]

    def ready_s(self, workload: str, placement: str) -> float:
        if placement == SHARED:
            self.shared_factor(workload)   # a clear error without the section
            placement = "gpu"
        return float(self.summary[workload][self.key(placement)].get("ready_s", 0.0))

    def sample(self, workload: str, placement: str, request: dict, rng: random.Random) -> tuple[float, float]:
        """(latency in seconds, CPU cores busy while it runs) for one request."""
        if placement == SHARED:
            factor = self.shared_factor(workload)
            latency, busy = self.sample(workload, "gpu", request, rng)
            return latency * factor, busy
        rec = self._rec(workload, placement)
        busy = float(rec.get("cpu_utilisation", {}).get("cores_busy", 1.0))
        if workload == "matmul":
            return self._matmul(rec, int(request.get("size", 1000)), busy, rng)
        if workload == "text_generation":
            pts = rec["points"]
            want = int(request.get("new_tokens", 256))
            exact = [p for p in pts if p["new_tokens"] == want]
            if exact:
                p = exact[0]
                return rng.choice(p["samples"]), float(p.get("cores_busy", busy))
            c = rec["fit"]["coefficients"]
            return c[0] + c[1] * want, busy
        if workload == "image_classification" and not request.get("image", True):
            rec = rec.get("no_image", rec)
        return rng.choice(rec["samples"]), busy

    @staticmethod
    def _matmul(rec: dict, n: int, busy: float, rng: random.Random) -> tuple[float, float]:
        pts = rec["points"]
        sizes = [p["size"] for p in pts]
        i = bisect.bisect_left(sizes, n)
        if i < len(sizes) and sizes[i] == n:
            p = pts[i]
            return rng.choice(p["samples"]), float(p.get("cores_busy", busy))
        # between measured sizes: the fitted t = c0 + c2 n^2 + c3 n^3, with the spread
        # (sample / p50) of the nearest measured size
        near = pts[min(max(i, 0), len(pts) - 1)] if i < len(pts) else pts[-1]
        if i > 0 and i < len(pts) and abs(sizes[i - 1] - n) < abs(sizes[i] - n):
            near = pts[i - 1]
        fit = rec["fit"]
        t = sum(c * n ** pw for pw, c in zip(fit["powers"], fit["coefficients"]))
        noise = rng.choice(near["samples"]) / near["p50"] if near.get("p50") else 1.0
        return t * noise, float(near.get("cores_busy", busy))
