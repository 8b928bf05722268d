"""Latency and CPU use of the example workloads from a calibration profile (gaia-calibration/1,
tests/eval/profiles/*.json, measured on real machines: docs/calibration.md).

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


class Profiles:
    """Latency and CPU use per (workload, placement) from a gaia-calibration/1 file."""

    def __init__(self, path: Path, cpu_placement: str = "cpu16"):
        data = json.loads(Path(path).read_text())
        self.workloads = data["workloads"]
        self.summary = data["summary"]
        self.cpu_placement = cpu_placement

    def key(self, placement: str) -> str:
        return "gpu" if placement == "gpu" else self.cpu_placement

    def _rec(self, workload: str, placement: str) -> dict:
        return self.workloads[workload]["placements"][self.key(placement)]

    def ready_s(self, workload: str, placement: str) -> float:
        return float(self.summary[workload][self.key(placement)].get("ready_s", 0.0))

    def sample(self, workload: str, placement: str, request: dict, rng: random.Random) -> tuple[float, float]:
        """(latency in seconds, CPU cores busy while it runs) for one request."""
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
