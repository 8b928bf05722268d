"""Calibrate the evaluation's workload emulator on real hardware.

Runs the paper's four workloads through the project's own example functions
(examples/functions/*, imported by file path, GAIA_RANDOM_WEIGHTS=1 so models are built from
their architectures with random weights) on three placements -- the CPU with 2 threads, the CPU
with 16 threads, the GPU -- and writes latency profiles, cold-start times and CPU utilisation to
one JSON file (schema: docs/calibration.md).

Each (workload, placement) runs in a fresh subprocess (calib_worker.py), so each starts cold; CPU
placements hide the GPU with CUDA_VISIBLE_DEVICES="" so the functions pick the CPU themselves.
The whole run keeps to --budget-s: stages share it by weight, time a stage leaves unused passes
to the next, and the output file is rewritten after every stage, so a run cut short still leaves
everything measured up to then.

From the repository's root (``calibrate`` below is ``python3 -m tests.eval.calibrate``):

  calibrate run --placements gpu,cpu16 --budget-s 540 --out h100-a.json
  calibrate run --placements cpu2 --budget-s 540 --out h100-b.json
  calibrate run --cold-only --budget-s 360 --out h100-cold.json   # a repeat of each cold start
  calibrate merge h100-a.json h100-b.json h100-cold.json --out tests/eval/profiles/h100.json
  calibrate summary tests/eval/profiles/h100.json     # Markdown tables
  calibrate run --dry-run                              # print the plan, measure nothing
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.eval.calib_stats import fit_nonnegative, predict, round_sig, summarise
from tests.harness.paths import REPO

HERE = Path(__file__).resolve().parent
SCHEMA = "gaia-calibration/2"
# /2 adds the optional `gpu_shared` section (merge-shared); /1 files read the same otherwise.
READABLE_SCHEMAS = ("gaia-calibration/1", "gaia-calibration/2")

# placement -> torch intra-op threads (0: the GPU placement keeps torch's default)
PLACEMENTS = {"cpu2": 2, "cpu16": 16, "gpu": 0}
WORKLOADS = ["idle_wait", "matmul", "image_classification", "text_generation"]

# The paper's matrix sweep: sizes 0..20000 step 200, back to back.
SWEEP_SIZES = list(range(0, 20001, 200))
CPU_MATMUL_SIZES = [0, 200, 400, 600, 800, 1000, 1200, 1600, 2000, 2400, 3000, 4000, 5000, 6000,
                    8000, 10000, 12000, 14000, 16000, 18000, 20000]
LLM_TOKENS = 256  # text_generation/model.py's MAX_NEW_TOKENS (recorded as function_max_new_tokens)

# Share of the time budget per stage (a stage's share of what is left, by weight).
WEIGHTS = {
    "gpu": {"idle_wait": 1, "matmul": 4, "image_classification": 2, "text_generation": 7},
    "cpu16": {"idle_wait": 1, "matmul": 9, "image_classification": 3, "text_generation": 8},
    "cpu2": {"idle_wait": 1, "matmul": 10, "image_classification": 3, "text_generation": 14},
}

REQUESTS = {
    "matmul": '{"size": n}: two random n x n float32 matrices created per request, multiplied',
    "image_classification": '{"image": base64 JPEG}: one image per request, ResNet-18 (random weights)',
    "text_generation": "{\"prompt\": ...}: TinyLlama-1.1B architecture (random weights), greedy, "
                       "a fixed number of new tokens (256 in the function)",
    "idle_wait": '{"seconds": 2}: sleeps',
}


def stage_options(workload: str, placement: str, smoke: bool) -> dict:
    gpu = placement == "gpu"
    if workload == "matmul":
        if smoke:
            sizes = [0, 200, 2000, 20000] if gpu else [0, 200, 1000, 2000]
            return {"first_size": 200, "sizes": sizes, "min_samples": 2, "max_samples": 3,
                    "target_s": 0.0, "cap_s": 5.0}
        if gpu:
            return {"first_size": 200, "sizes": SWEEP_SIZES, "min_samples": 3, "max_samples": 10,
                    "target_s": 0.1, "cap_s": 3.0}
        return {"first_size": 200, "sizes": CPU_MATMUL_SIZES, "min_samples": 3, "max_samples": 30,
                "target_s": 1.0, "cap_s": 20.0}
    if workload == "image_classification":
        return {"requests": 5 if smoke else 500, "requests_no_image": 3 if smoke else 50}
    if workload == "text_generation":
        if smoke:
            return ({"first_tokens": LLM_TOKENS, "plan": [[16, 1]], "checkpoint_load": True} if gpu
                    else {"first_tokens": 4, "plan": [[8, 1]], "checkpoint_load": placement == "cpu2"})
        if gpu:
            return {"first_tokens": LLM_TOKENS, "plan": [[16, 3], [64, 3], [LLM_TOKENS, 5]],
                    "checkpoint_load": True}
        return {"first_tokens": 16, "plan": [[16, 2], [64, 2], [LLM_TOKENS, 2]], "checkpoint_load": True}
    if workload == "idle_wait":
        return {"seconds": 0.2, "requests": 1} if smoke else {"seconds": 2.0, "requests": 3}
    raise ValueError(workload)


# -- machine description ---------------------------------------------------------------------

def _command(*argv: str) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_info() -> dict:
    info: dict = {"logical_cpus": os.cpu_count(), "kernel": platform.release(),
                  "python": platform.python_version()}
    lscpu = dict(
        (k.strip(), v.strip())
        for k, _, v in (line.partition(":") for line in _command("lscpu").splitlines())
        if v
    )
    info["cpu_model"] = lscpu.get("Model name")
    for key, name in [("Thread(s) per core", "threads_per_core"), ("Core(s) per socket", "cores_per_socket"),
                      ("Socket(s)", "sockets"), ("L3 cache", "l3_cache")]:
        if key in lscpu:
            info[name] = lscpu[key]
    flags = lscpu.get("Flags", "").split()
    info["cpu_vector_extensions"] = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        match = re.search(r"MemTotal:\s+(\d+) kB", meminfo.read_text())
        if match:
            info["memory_gib_at_start"] = round(int(match.group(1)) / 2**20, 1)
    gpus = _command("nvidia-smi", "--query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm",
                    "--format=csv,noheader")
    if gpus.strip():
        name, driver, memory, power, clock = [x.strip() for x in gpus.splitlines()[0].split(",")]
        info["gpu"] = {"name": name, "driver": driver, "memory": memory, "power_limit": power,
                       "max_sm_clock": clock, "count": len(gpus.strip().splitlines())}
        match = re.search(r"CUDA Version:\s*([\d.]+)", _command("nvidia-smi"))
        if match:
            info["gpu"]["driver_cuda_version"] = match.group(1)
    packages = {}
    for package in ("torch", "torchvision", "transformers", "numpy", "pillow"):
        try:
            packages[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            packages[package] = None
    info["packages"] = packages
    return info


def make_jpeg_payload(directory: Path) -> Path | None:
    """A 500x375 JPEG (ImageNet's typical size) with smooth gradients and mild noise, base64."""
    try:
        import base64
        import io

        from PIL import Image, ImageChops
    except ImportError:
        return None
    size = (500, 375)
    red = Image.linear_gradient("L").resize(size)
    green = Image.radial_gradient("L").resize(size)
    blue = ImageChops.add(red.rotate(90).resize(size), Image.effect_noise(size, 24), scale=2.0)
    buffer = io.BytesIO()
    Image.merge("RGB", (red, green, blue)).save(buffer, format="JPEG", quality=90)
    path = directory / "image.jpg.b64"
    path.write_text(base64.b64encode(buffer.getvalue()).decode())
    return path


# -- running the stages ----------------------------------------------------------------------

def worker_env(placement: str) -> dict:
    env = dict(os.environ)
    env.update(GAIA_RANDOM_WEIGHTS="1", PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    threads = PLACEMENTS[placement]
    if threads:
        env.update(CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def run_stage(workload: str, placement: str, options: dict, deadline: float, hard_stop: float,
              workdir: Path) -> dict:
    out = workdir / f"{workload}-{placement}.json"
    err = workdir / f"{workload}-{placement}.stderr"
    spawned_at = time.time()
    argv = [sys.executable, "-m", "tests.eval.calib_worker", "--workload", workload,
            "--placement", placement, "--threads", str(PLACEMENTS[placement]),
            "--deadline", f"{deadline:.3f}", "--spawned-at", f"{spawned_at:.3f}",
            "--options", json.dumps(options), "--out", str(out)]
    with err.open("w") as stderr:
        process = subprocess.Popen(argv, env=worker_env(placement), stderr=stderr, cwd=REPO)
        try:
            returncode = process.wait(timeout=max(1.0, hard_stop - time.time()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            returncode = None
    stderr_tail = err.read_text()[-3000:]
    if stderr_tail.strip():
        print(f"  [{workload}/{placement} stderr]\n" + stderr_tail, flush=True)
    raw = json.loads(out.read_text()) if out.exists() else {"workload": workload, "placement": placement}
    if returncode is None:
        raw["stopped"] = "killed at the stage's hard stop"
        raw["complete"] = False
    elif returncode != 0:
        raw["complete"] = False
        raw["error"] = f"exit status {returncode}: " + stderr_tail[-800:]
    raw["elapsed_s"] = time.time() - spawned_at
    return raw


def process_stage(workload: str, raw: dict, cold_only: bool = False) -> dict:
    """Turn a worker's raw record into the data file's per-placement entry."""
    entry = {"cold_only": True} if cold_only else {}
    entry["complete"] = bool(raw.get("complete"))
    for key in ("stopped", "error", "device_seen", "input", "function_max_new_tokens"):
        if raw.get(key) is not None:
            entry[key] = raw[key]
    entry["stage_elapsed_s"] = round_sig(raw.get("elapsed_s", 0.0), 4)
    entry["runtime"] = raw.get("runtime", {})
    entry["cold_start"] = {k: (round_sig(v, 4) if isinstance(v, float) else v)
                           for k, v in raw.get("cold_start", {}).items()}
    util = raw.get("cpu_utilisation")
    if util and util.get("cores_busy") is not None:
        threads = entry["runtime"].get("intra_op_threads")
        entry["cpu_utilisation"] = {
            "cores_busy": round_sig(util["cores_busy"], 3),
            "cpu_s": round_sig(util["cpu_s"], 4),
            "wall_s": round_sig(util["wall_s"], 4),
        }
        if threads:
            entry["cpu_utilisation"]["of_threads"] = round_sig(util["cores_busy"] / threads, 3)

    if cold_only:
        return entry
    if workload == "matmul":
        points = []
        for point in raw.get("points", []):
            samples = point["samples"]
            wall = sum(samples)
            points.append({"size": point["size"], **summarise(samples),
                           "cores_busy": round_sig(point["cpu_s"] / wall, 3) if wall > 0 else None,
                           "samples": [round_sig(x) for x in samples]})
        entry["points"] = points
    elif workload == "text_generation":
        points = []
        for point in raw.get("points", []):
            samples = point["samples"]
            wall = sum(samples)
            points.append({"new_tokens": point["new_tokens"], **summarise(samples),
                           "cores_busy": round_sig(point["cpu_s"] / wall, 3) if wall > 0 else None,
                           "samples": [round_sig(x) for x in samples]})
        entry["points"] = points
    else:
        samples = raw.get("samples", [])
        entry.update(summarise(samples))
        entry["samples"] = [round_sig(x) for x in samples]
        if raw.get("samples_no_image"):
            no_image = raw["samples_no_image"]
            entry["no_image"] = {**summarise(no_image), "samples": [round_sig(x) for x in no_image]}
    derive(workload, entry)
    return entry


def derive(workload: str, entry: dict) -> None:
    """The fits and totals computed from an entry's points (again on merge, so that files
    measured by an older version of this script get the current derivations)."""
    points = entry.get("points", [])
    if workload == "matmul":
        measured = [(p["size"], p["p50"]) for p in points if p["size"] > 0]
        if len(measured) >= 3:
            fit = fit_nonnegative([n for n, _ in measured], [t for _, t in measured], [0, 2, 3])
            if fit:
                fit["model"] = "t = c0 + c2*n^2 + c3*n^3 (seconds), fitted to the p50 per size, relative error"
                entry["fit"] = fit
                entry["sweep_total_s"] = sweep_totals(points, fit)
    elif workload == "text_generation":
        if len({p["new_tokens"] for p in points}) >= 2:
            fit = fit_nonnegative([p["new_tokens"] for p in points], [p["p50"] for p in points], [0, 1])
            if fit:
                per_token = fit["coefficients"][1]
                fit["model"] = "t = c0 + c1*new_tokens (seconds), fitted to the p50 per token count"
                fit["tokens_per_s"] = round_sig(1.0 / per_token, 4) if per_token > 0 else None
                fit[f"latency_{LLM_TOKENS}_tokens_s"] = round_sig(predict(fit["coefficients"], [0, 1], LLM_TOKENS), 4)
                entry["fit"] = fit
        if points and not any(p["new_tokens"] == LLM_TOKENS for p in points):
            entry["note"] = (f"no {LLM_TOKENS}-token request measured here (too slow for the time budget): "
                             f"use fit.latency_{LLM_TOKENS}_tokens_s, extrapolated from fewer tokens")


def sweep_totals(points: list[dict], fit: dict) -> dict:
    """Total time of the paper's sweep (0..20000 step 200, one request each, back to back), from
    the p50s: 'measured' where every size was measured; 'interpolated' uses measured sizes as
    they are, a power law through the two measured neighbours between them, and the fit's shape
    anchored at the nearest measured size beyond them; 'from_fit' uses the fit alone."""
    by_size = {p["size"]: p["p50"] for p in points}
    positive = sorted(n for n in by_size if n > 0)
    coefs, powers = fit["coefficients"], fit["powers"]

    def interpolated(n: int) -> float:
        if n in by_size:
            return by_size[n]
        lower = max((m for m in positive if m < n), default=None)
        upper = min((m for m in positive if m > n), default=None)
        if lower and upper:
            exponent = math.log(by_size[upper] / by_size[lower]) / math.log(upper / lower)
            return by_size[lower] * (n / lower) ** exponent
        anchor = lower or upper
        return by_size[anchor] * predict(coefs, powers, n) / predict(coefs, powers, anchor)

    at_zero = by_size.get(0, coefs[0])
    totals = {
        "from_fit": round_sig(at_zero + sum(predict(coefs, powers, n) for n in SWEEP_SIZES if n > 0), 4),
        "interpolated": round_sig(at_zero + sum(interpolated(n) for n in SWEEP_SIZES if n > 0), 4),
        "largest_size_measured": positive[-1] if positive else None,
    }
    if all(n in by_size for n in SWEEP_SIZES):
        totals["measured"] = round_sig(sum(by_size[n] for n in SWEEP_SIZES), 4)
    return totals


# -- the data file ---------------------------------------------------------------------------

def empty_profile(machine: dict) -> dict:
    return {
        "schema": SCHEMA,
        "units": "seconds unless a key says otherwise",
        "machine": machine,
        "runs": [],
        "workloads": {w: {"request": REQUESTS[w], "placements": {}} for w in WORKLOADS},
        "summary": {},
    }


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def summary_of(data: dict) -> dict:
    """Headline numbers per workload and placement, for the docs and the emulator's defaults."""
    summary: dict = {}
    for workload, block in data["workloads"].items():
        for placement, entry in block["placements"].items():
            repeats = [c.get("total_s") for c in entry.get("cold_start_repeats", [])]
            row: dict = {"cold_start_s": entry.get("cold_start", {}).get("total_s"),
                         **({"cold_start_repeats_s": repeats} if repeats else {}),
                         "ready_s": round_sig(entry.get("cold_start", {}).get("total_s", 0.0)
                                              - entry.get("cold_start", {}).get("first_request_s", 0.0), 4),
                         "cpu_cores_busy": entry.get("cpu_utilisation", {}).get("cores_busy")}
            if workload == "matmul":
                fit = entry.get("fit")
                by_size = {p["size"]: p["p50"] for p in entry.get("points", [])}
                for n in (1000, 4000, 10000, 20000):
                    if n in by_size:
                        row[f"p50_n{n}_s"] = by_size[n]
                    elif fit:
                        row[f"p50_n{n}_s"] = round_sig(predict(fit["coefficients"], fit["powers"], n), 4)
                        row.setdefault("fitted", []).append(f"p50_n{n}_s")
                if "sweep_total_s" in entry:
                    sweep = entry["sweep_total_s"]
                    row["sweep_total_s"] = sweep.get("measured", sweep.get("interpolated", sweep["from_fit"]))
                    if "measured" not in sweep:
                        row.setdefault("fitted", []).append("sweep_total_s")
            elif workload == "text_generation":
                at_full = [p for p in entry.get("points", []) if p["new_tokens"] == LLM_TOKENS]
                fit = entry.get("fit", {})
                if at_full:
                    row["p50_s"], row["p95_s"] = at_full[0]["p50"], at_full[0]["p95"]
                elif fit:
                    row["p50_s"], row["fitted"] = fit[f"latency_{LLM_TOKENS}_tokens_s"], ["p50_s"]
                if fit.get("tokens_per_s"):
                    row["tokens_per_s"] = fit["tokens_per_s"]
            else:
                for key in ("p50", "p95", "mean"):
                    if key in entry:
                        row[f"{key}_s"] = entry[key]
            summary.setdefault(workload, {})[placement] = row
    return summary


def markdown_summary(data: dict) -> str:
    s = data["summary"]
    order = ("cpu2", "cpu16", "gpu")

    def cell(workload, placement, key, digits=3):
        row = s.get(workload, {}).get(placement, {})
        if row.get(key) is None:
            return "-"
        return f"{row[key]:.{digits}g}" + ("*" if key in row.get("fitted", []) else "")

    def speedup(workload, key, base):
        try:
            return f"{s[workload][base][key] / s[workload]['gpu'][key]:.3g}x"
        except (KeyError, TypeError, ZeroDivisionError):
            return "-"

    rows = [("matmul n=1000", "matmul", "p50_n1000_s"), ("matmul n=4000", "matmul", "p50_n4000_s"),
            ("matmul n=10000", "matmul", "p50_n10000_s"), ("matmul n=20000", "matmul", "p50_n20000_s"),
            ("matmul sweep 0..20000/200 (total)", "matmul", "sweep_total_s"),
            ("ResNet-18, 1 image", "image_classification", "p50_s"),
            (f"TinyLlama, {LLM_TOKENS} new tokens", "text_generation", "p50_s"),
            ("idle wait 2 s", "idle_wait", "p50_s")]
    lines = ["| request (p50 latency, s) | cpu2 | cpu16 | gpu | cpu2/gpu | cpu16/gpu |",
             "|---|---|---|---|---|---|"]
    for label, workload, key in rows:
        lines.append(f"| {label} | " + " | ".join(cell(workload, p, key) for p in order)
                     + f" | {speedup(workload, key, 'cpu2')} | {speedup(workload, key, 'cpu16')} |")
    lines += ["", "| cold start (s) = ready (import + model build) + first request | cpu2 | cpu16 | gpu |", "|---|---|---|---|"]
    for workload in WORKLOADS:
        cells = []
        for p in order:
            row = s.get(workload, {}).get(p, {})
            if row.get("cold_start_s") is None:
                cells.append("-")
                continue
            first = row["cold_start_s"] - row["ready_s"]
            again = "".join(f"; again {r:.3g}" for r in row.get("cold_start_repeats_s", []))
            cells.append(f"{row['cold_start_s']:.3g} = {row['ready_s']:.3g} + {first:.2g}{again}")
        lines.append(f"| {workload} | " + " | ".join(cells) + " |")
    lines += ["", "| CPU cores busy while serving | cpu2 | cpu16 | gpu |", "|---|---|---|---|"]
    for workload in WORKLOADS:
        lines.append(f"| {workload} | " + " | ".join(cell(workload, p, "cpu_cores_busy") for p in order) + " |")
    lines.append("\n(* not measured at that size: from the fit, or for the sweep measured sizes + interpolation)")
    return "\n".join(lines)


# -- commands --------------------------------------------------------------------------------

def portable_command(argv: list[str]) -> str:
    """The command line as recorded in the data file: absolute paths cut to their file names."""
    return " ".join(shlex.quote(Path(a).name if a.startswith("/") else a) for a in argv)


def cmd_run(args: argparse.Namespace) -> int:
    placements = [p for p in args.placements.split(",") if p]
    workloads = [w for w in args.workloads.split(",") if w]
    for p in placements:
        if p not in PLACEMENTS:
            raise SystemExit(f"unknown placement {p!r}; choose from {', '.join(PLACEMENTS)}")
    for w in workloads:
        if w not in WORKLOADS:
            raise SystemExit(f"unknown workload {w!r}; choose from {', '.join(WORKLOADS)}")
    stages = [(p, w, stage_options(w, p, args.smoke)) for p in placements for w in workloads]
    total_weight = sum(WEIGHTS[p][w] for p, w, _ in stages)
    if args.dry_run:
        print(f"plan: {len(stages)} stages within {args.budget_s:.0f} s (smoke={args.smoke})")
        for p, w, options in stages:
            share = args.budget_s * WEIGHTS[p][w] / total_weight
            print(f"  {p:6} {w:21} threads={PLACEMENTS[p] or 'default':<8} ~{share:5.0f} s  {json.dumps(options)[:110]}")
        return 0

    started = time.time()
    end = started + args.budget_s
    out = Path(args.out)
    data = empty_profile(machine_info())
    run_record = {"command": portable_command(sys.argv),
                  "started_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                  "placements": placements, "workloads": workloads, "budget_s": args.budget_s,
                  "smoke": args.smoke}
    data["runs"].append(run_record)
    print(json.dumps(data["machine"], indent=1), flush=True)

    with tempfile.TemporaryDirectory(prefix="gaia-calibration-") as tmp:
        workdir = Path(tmp)
        jpeg = make_jpeg_payload(workdir)
        # Read the libraries once so that every stage's cold start sees the same warm file cache.
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch, torchvision, transformers"],
                       env=worker_env("cpu2"), capture_output=True)
        run_record["library_prewarm_s"] = round_sig(time.perf_counter() - t0, 3)
        remaining_weight = total_weight
        for placement, workload, options in stages:
            weight = WEIGHTS[placement][workload]
            now = time.time()
            allot = max(0.0, (end - now) * weight / remaining_weight)
            remaining_weight -= weight
            if workload == "image_classification" and jpeg:
                options = {**options, "jpeg_base64_file": str(jpeg)}
            if args.cold_only:
                options = {**options, "cold_only": True}
            deadline = now + allot
            hard_stop = min(deadline + max(30.0, 0.25 * allot), end + 30.0)
            if args.cold_only:  # a cold start cannot be cut short: only the run's end bounds it
                hard_stop = end + 30.0
            print(f"== {placement}/{workload}: {allot:.0f} s allotted", flush=True)
            raw = run_stage(workload, placement, options, deadline, hard_stop, workdir)
            entry = process_stage(workload, raw, args.cold_only)
            data["workloads"][workload]["placements"][placement] = entry
            if placement == "gpu" and entry["runtime"].get("torch_cuda"):
                data["machine"]["torch_cuda_runtime"] = entry["runtime"]["torch_cuda"]
            print(f"   done in {raw['elapsed_s']:.1f} s: complete={entry['complete']} "
                  f"cold_start={entry['cold_start'].get('total_s')} stopped={entry.get('stopped')} "
                  f"error={entry.get('error', '')[:300]}", flush=True)
            run_record["elapsed_s"] = round_sig(time.time() - started, 4)
            data["summary"] = summary_of(data)
            write_json(out, data)
    print(markdown_summary(data))
    print(f"wrote {out} ({out.stat().st_size} bytes) in {time.time() - started:.0f} s")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    """Combine runs made in separate commands (e.g. GPU + cpu16, then cpu2) into one file."""
    merged = None
    for path in args.files:
        data = json.loads(Path(path).read_text())
        if data.get("schema") not in READABLE_SCHEMAS:
            raise SystemExit(f"{path}: schema {data.get('schema')!r}, expected one of {READABLE_SCHEMAS}")
        if merged is None:
            merged = data
            continue
        for key in ("cpu_model", "logical_cpus"):
            if data["machine"].get(key) != merged["machine"].get(key):
                print(f"warning: {path} was measured on a different machine ({key})", file=sys.stderr)
        for key, value in data["machine"].items():
            merged["machine"].setdefault(key, value)
        merged["runs"].extend(data["runs"])
        for workload, block in data["workloads"].items():
            merged["workloads"].setdefault(workload, {"request": block["request"], "placements": {}})
            placements = merged["workloads"][workload]["placements"]
            for placement, entry in block["placements"].items():
                existing = placements.get(placement)
                if entry.get("cold_only") and existing and not existing.get("cold_only"):
                    # a later cold-start-only run adds a repeat of the cold start, keeps the rest
                    existing.setdefault("cold_start_repeats", []).append(entry["cold_start"])
                else:
                    placements[placement] = entry
    for workload, block in merged["workloads"].items():
        for entry in block["placements"].values():
            derive(workload, entry)
    for run in merged["runs"]:
        run["command"] = portable_command(shlex.split(run["command"]))
    merged["schema"] = SCHEMA
    merged["summary"] = summary_of(merged)
    write_json(Path(args.out), merged)
    print(markdown_summary(merged))
    print(f"wrote {args.out} ({Path(args.out).stat().st_size} bytes)")
    return 0

# The phase whose 7-process slowdown stands for each workload on a shared GPU: the request the
# replay sends (matmul: the largest size measured, the sweep's cost is in its large sizes).
SHARED_PHASES = {
    "image_classification": ["paced_5rps_jpeg", "back_to_back_jpeg"],
    "matmul": ["back_to_back_n10000"],
    "text_generation": ["back_to_back_64_tokens", "paced_0.2rps_64_tokens"],
}
# MIG 1g on an H100/H200: 16 of the 132 SMs and 18 GB (H200: mig-1g.18gb; H100 80GB:
# mig-1g.10gb) of the memory, isolated.
MIG_1G = {"profile": "mig-1g.18gb", "sms": 16, "of_sms": 132, "memory_gib": 18}
MAX_SHARED_SAMPLES = 300


def _subsample(values: list[float], n: int) -> list[float]:
    if len(values) <= n:
        return values
    step = len(values) / n
    return [values[int(i * step)] for i in range(n)]


def cmd_merge_shared(args: argparse.Namespace) -> int:
    """Add one or more calib_shared.py runs to a profile as its `gpu_shared` section (schema /2):
    per workload and phase the statistics with 1, 2, 4 and 7 processes on the GPU, up to 300
    latency samples each, the GPU memory a process used, the slowdown the replay applies (p50
    with 7 processes over p50 alone, the worst of the workload's phases in SHARED_PHASES), and a
    MIG 1g slice modelled from its SM fraction (labelled modelled: nothing ran on MIG)."""
    profile = json.loads(Path(args.profile).read_text())
    if profile.get("schema") not in READABLE_SCHEMAS:
        raise SystemExit(f"{args.profile}: schema {profile.get('schema')!r}")
    section = {"measured_on": None, "how": None, "threads_per_process": None, "runs": [],
               "workloads": {}, "mig_1g": None}
    for path in args.files:
        data = json.loads(Path(path).read_text())
        if data.get("schema") != "gaia-calibration-shared/1":
            raise SystemExit(f"{path}: schema {data.get('schema')!r}, expected 'gaia-calibration-shared/1'")
        section["measured_on"] = data["machine"]
        section["how"] = data["how"]
        section["threads_per_process"] = data["threads_per_process"]
        section["runs"].append({"command": "python3 -m tests.eval.calib_shared "
                                           + portable_command(shlex.split(data["command"])),
                                "started_utc": data["started_utc"], "elapsed_s": data.get("elapsed_s"),
                                "nvidia_smi_before": data.get("nvidia_smi_before"),
                                "nvidia_smi_after": data.get("nvidia_smi_after")})
        for workload, entry in data["workloads"].items():
            workers = entry.get("workers", [])
            used = entry.get("nvidia_smi_loaded") or ""
            fields = [x.strip() for x in used.split(",")]
            smi_mib = float(fields[3].split()[0]) if len(fields) > 3 and fields[3].split() else None
            out = {"processes_loaded": len(workers), "all_ready_s": round_sig(entry.get("all_ready_s", 0.0)),
                   "cold_start": [w["cold_start"] for w in workers],
                   "gpu_memory_mib": {
                       "torch_allocated_per_process": workers[0]["memory_after_load"].get("allocated_mib") if workers else None,
                       "torch_reserved_per_process": workers[0]["memory_after_load"].get("reserved_mib") if workers else None,
                       "nvidia_smi_used_all_processes": smi_mib,
                       "nvidia_smi_used_per_process": round_sig(smi_mib / len(workers)) if smi_mib and workers else None},
                   "phases": {}}
            for name, phase in entry["phases"].items():
                by = {}
                for n, b in phase["by_processes"].items():
                    pooled = [x for w in b["workers"] for x in w["latencies"]]
                    by[n] = {"latency": b["latency"], "service": b["service"],
                             "throughput_rps": round_sig(b["throughput_rps"]) if b["throughput_rps"] else None,
                             "cores_busy_per_process": round_sig(b["cores_busy_per_process"]) if b["cores_busy_per_process"] else None,
                             "max_allocated_mib_per_process": max((w["memory"].get("max_allocated_mib", 0) for w in b["workers"]), default=None),
                             "samples": [round_sig(x) for x in _subsample(pooled, MAX_SHARED_SAMPLES)]}
                out["phases"][name] = {"request": phase["request"], "rate_per_process": phase["rate_per_process"],
                                       "duration_s": phase["duration_s"], "by_processes": by}
            ratios = []
            for name in SHARED_PHASES.get(workload, []):
                by = out["phases"].get(name, {}).get("by_processes", {})
                if "1" in by and "7" in by and by["1"]["latency"].get("p50"):
                    ratios.append((by["7"]["latency"]["p50"] / by["1"]["latency"]["p50"], name))
            if ratios:
                factor, phase_name = max(ratios)
                gpu_share = 1.0 / 7.0
                mig_share = MIG_1G["sms"] / MIG_1G["of_sms"]
                out["slowdown_7_processes"] = {"factor": round_sig(factor), "phase": phase_name,
                                               "rule": "p50 with 7 processes / p50 alone, worst phase"}
                out["mig_1g_modelled"] = {
                    "modelled": True,
                    "factor": round_sig(1.0 + (factor - 1.0) * gpu_share / mig_share),
                    "rule": "the time-sliced slowdown's excess over 1, scaled from a seventh of the GPU's "
                            "time to 16/132 of its SMs: 1 + (s7 - 1) * (1/7) / (16/132)"}
            section["workloads"][workload] = out
    section["mig_1g"] = {**MIG_1G, "modelled": True,
                         "note": "no MIG instance was created (the GPU's settings were left as found); "
                                 "a 1g slice is modelled from its SM and memory fraction"}
    profile["gpu_shared"] = section
    profile["schema"] = SCHEMA
    write_json(Path(args.out), profile)
    for workload, out in section["workloads"].items():
        s7 = out.get("slowdown_7_processes", {})
        print(f"{workload}: 7-process slowdown {s7.get('factor')} ({s7.get('phase')}), "
              f"MIG 1g modelled {out.get('mig_1g_modelled', {}).get('factor')}, "
              f"GPU memory per process {out['gpu_memory_mib']['nvidia_smi_used_per_process']} MiB")
    print(f"wrote {args.out} ({Path(args.out).stat().st_size} bytes)")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    data = json.loads(Path(args.file).read_text())
    data["summary"] = summary_of(data)
    print(markdown_summary(data))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="measure on this machine")
    run.add_argument("--placements", default="gpu,cpu16,cpu2")
    run.add_argument("--workloads", default=",".join(WORKLOADS))
    run.add_argument("--budget-s", type=float, default=480.0,
                     help="wall-clock budget for the whole run (stages share it by weight)")
    run.add_argument("--out", default=str(HERE / "profiles" / "calibration.json"))
    run.add_argument("--smoke", action="store_true", help="tiny sizes and few requests, to catch bugs")
    run.add_argument("--cold-only", action="store_true",
                     help="measure only each stage's cold start (merge adds it as a repeat)")
    run.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    merge = sub.add_parser("merge", help="combine data files from separate runs")
    merge.add_argument("files", nargs="+")
    merge.add_argument("--out", required=True)
    shared = sub.add_parser("merge-shared", help="add calib_shared.py runs to a profile (gpu_shared)")
    shared.add_argument("profile")
    shared.add_argument("files", nargs="+")
    shared.add_argument("--out", required=True)
    summary = sub.add_parser("summary", help="print a data file's summary as Markdown")
    summary.add_argument("file")
    args = parser.parse_args()
    return {"run": cmd_run, "merge": cmd_merge, "merge-shared": cmd_merge_shared,
            "summary": cmd_summary}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
