"""Summary statistics and small least-squares fits for the calibration data.

Pure Python on purpose: the same code summarises on the GPU machine and merges/prints on a
developer machine that has neither torch nor numpy.
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarise(samples: Sequence[float]) -> dict:
    """n, mean, min, p50, p95, max, stdev of latency samples (seconds)."""
    n = len(samples)
    if n == 0:
        return {"n": 0}
    mean = sum(samples) / n
    stdev = math.sqrt(sum((x - mean) ** 2 for x in samples) / (n - 1)) if n > 1 else 0.0
    return {
        "n": n,
        "mean": round_sig(mean),
        "min": round_sig(min(samples)),
        "p50": round_sig(percentile(samples, 50)),
        "p95": round_sig(percentile(samples, 95)),
        "max": round_sig(max(samples)),
        "stdev": round_sig(stdev),
    }


def round_sig(x: float, digits: int = 5) -> float:
    """Round to a number of significant digits (keeps the data file small and readable)."""
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, digits - 1 - int(math.floor(math.log10(abs(x)))))


def _solve(matrix: list[list[float]], rhs: list[float]) -> list[float] | None:
    """Gaussian elimination with partial pivoting; None when the system is singular."""
    size = len(rhs)
    a = [row[:] + [rhs[i]] for i, row in enumerate(matrix)]
    for col in range(size):
        pivot = max(range(col, size), key=lambda r: abs(a[r][col]))
        if abs(a[pivot][col]) < 1e-300:
            return None
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(col + 1, size):
            factor = a[r][col] / a[col][col]
            for c in range(col, size + 1):
                a[r][c] -= factor * a[col][c]
    solution = [0.0] * size
    for r in reversed(range(size)):
        solution[r] = (a[r][size] - sum(a[r][c] * solution[c] for c in range(r + 1, size))) / a[r][r]
    return solution


def fit_nonnegative(xs: Sequence[float], ys: Sequence[float], powers: Sequence[int]) -> dict | None:
    """Fit y = sum_k coef_k * x**power_k with non-negative coefficients, minimising the squared
    *relative* error (weights 1/y), so that millisecond points matter as much as minute ones.

    With three or four terms an exhaustive search over the subsets of terms is exact and cheap:
    every subset is solved by weighted least squares and the best one whose coefficients are all
    non-negative wins (terms left out get coefficient 0).
    """
    points = [(x, y) for x, y in zip(xs, ys) if y > 0]
    best = None
    for size in range(1, len(powers) + 1):
        for subset in itertools.combinations(range(len(powers)), size):
            if len(points) < len(subset):
                continue
            # scale each basis function to ~1 at the largest x to keep the normal equations sane
            xmax = max(x for x, _ in points)
            scale = [float(xmax) ** powers[k] if xmax > 0 else 1.0 for k in subset]
            rows = [[(x ** powers[k]) / s / y for k, s in zip(subset, scale)] for x, y in points]
            normal = [[sum(r[i] * r[j] for r in rows) for j in range(len(subset))] for i in range(len(subset))]
            rhs = [sum(r[i] for r in rows) for i in range(len(subset))]  # target y/y = 1
            solution = _solve(normal, rhs)
            if solution is None or any(c < 0 for c in solution):
                continue
            coefs = [0.0] * len(powers)
            for k, c, s in zip(subset, solution, scale):
                coefs[k] = c / s
            sse = sum((predict(coefs, powers, x) / y - 1.0) ** 2 for x, y in points)
            if best is None or sse < best[0]:
                best = (sse, coefs)
    if best is None:
        return None
    coefs = best[1]
    rel_errors = [predict(coefs, powers, x) / y - 1.0 for x, y in points]
    return {
        "powers": list(powers),
        "coefficients": [float(f"{c:.6e}") for c in coefs],
        "max_abs_rel_error": round_sig(max(abs(e) for e in rel_errors), 3),
        "mean_abs_rel_error": round_sig(sum(abs(e) for e in rel_errors) / len(rel_errors), 3),
        "points_used": len(points),
    }


def predict(coefs: Sequence[float], powers: Sequence[int], x: float) -> float:
    return sum(c * (x ** p) for c, p in zip(coefs, powers))
