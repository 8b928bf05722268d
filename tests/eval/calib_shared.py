"""Measure the example functions on one GPU shared by 1, 2, 4 and 7 processes (issue 16).

Time-slicing (the GPU operator advertising one GPU as several `nvidia.com/gpu.shared`) lets
several pods' processes use one GPU at once, each with its own CUDA context, the driver
switching between them: no MPS, no MIG. That is what this script does on purpose: it starts
`--processes` (the largest count) workers, each a fresh interpreter that loads one example
function onto the GPU, then runs the same phases with the first 1, 2, 4 and 7 of them at the
same time. It changes no GPU setting (no MPS daemon, no MIG, no clocks, no compute mode); it only
reads `nvidia-smi` before and after.

    python3 -m tests.eval.calib_shared run --workloads image_classification,matmul --out shared-a.json
    python3 -m tests.eval.calib_shared run --workloads text_generation --out shared-b.json
    python3 -m tests.eval.calib_shared run --smoke --workloads idle_wait --out smoke.json  # no GPU

A phase is back to back (`rate` none: each worker sends its next request when its answer
arrives) or paced (`rate` requests/s per worker, arrivals at fixed intervals, open loop: a
request that arrives while the previous one runs waits, and that wait is part of its latency).
Each worker records, per request, the latency from its arrival and the service time (the wall
time around `handle(request)`), its process CPU time, and the GPU memory its CUDA context
allocated (torch's allocator: `memory_allocated`, `max_memory_allocated`, `memory_reserved`).

Output (`schema: gaia-calibration-shared/1`, merged into a profile by `calibrate.py
merge-shared`): machine, per workload the workers' cold starts and memory, and per phase and
process count the per-worker samples. Times are seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.eval import calib_stats
from tests.eval.calib_worker import LIBRARY_IMPORTS, load_function

SCHEMA = "gaia-calibration-shared/1"
REPO = Path(__file__).resolve().parents[2]
COUNTS = (1, 2, 4, 7)
PROMPT = "Explain serverless computing in one paragraph."

# workload -> [(phase name, request, rate per worker or None, seconds)]
PHASES = {
    "image_classification": [
        ("paced_5rps_jpeg", "jpeg", 5.0, 20.0),
        ("back_to_back_jpeg", "jpeg", None, 10.0),
        ("back_to_back_no_image", {}, None, 8.0),
    ],
    "matmul": [
        ("back_to_back_n1000", {"size": 1000}, None, 5.0),
        ("back_to_back_n4000", {"size": 4000}, None, 6.0),
        ("back_to_back_n10000", {"size": 10000}, None, 8.0),
    ],
    "text_generation": [
        ("back_to_back_64_tokens", {"prompt": PROMPT, "new_tokens": 64}, None, 18.0),
        ("paced_0.2rps_64_tokens", {"prompt": PROMPT, "new_tokens": 64}, 0.2, 25.0),
    ],
    # no GPU: only for trying the orchestration on a machine without torch (--smoke)
    "idle_wait": [
        ("back_to_back", {"seconds": 0.05}, None, 0.5),
        ("paced_10rps", {"seconds": 0.05}, 10.0, 0.6),
    ],
}
FIRST_REQUEST = {
    "image_classification": "jpeg",
    "matmul": {"size": 1000},
    "text_generation": {"prompt": PROMPT, "new_tokens": 64},
    "idle_wait": {"seconds": 0.05},
}
WARMUP = {"image_classification": 20, "matmul": 5, "text_generation": 1, "idle_wait": 1}


# ---------------------------------------------------------------------------------------------
# Worker: one process, one CUDA context, commands on stdin, one JSON line per answer on stdout
# ---------------------------------------------------------------------------------------------


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def worker(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    cold = {"interpreter_s": max(0.0, time.time() - args.spawned_at)}
    torch = None
    if args.workload != "idle_wait":
        t = time.perf_counter()
        import torch  # noqa: PLC0415

        cold["torch_import_s"] = time.perf_counter() - t
        if args.threads:
            torch.set_num_threads(args.threads)
    library = LIBRARY_IMPORTS.get(args.workload)
    if library:
        t = time.perf_counter()
        package = __import__(library[0])
        for name in library[1]:
            getattr(package, name)
        cold["library_import_s"] = time.perf_counter() - t
    t = time.perf_counter()
    module = load_function(args.workload)
    cold["module_load_s"] = time.perf_counter() - t
    jpeg = Path(args.jpeg).read_text() if args.jpeg else None

    def request_of(spec) -> dict:
        if spec == "jpeg":
            return {"image": jpeg} if jpeg else {}
        spec = dict(spec)
        tokens = spec.pop("new_tokens", None)
        if tokens is not None:
            module.MAX_NEW_TOKENS = tokens
        return spec

    def call(request: dict) -> tuple[float, float, dict]:
        c0, w0 = time.process_time(), time.perf_counter()
        response = module.handle(request)
        w1, c1 = time.perf_counter(), time.process_time()
        if "error" in response:
            raise SystemExit(f"request failed: {response['error']}")
        return w1 - w0, c1 - c0, response

    first = request_of(FIRST_REQUEST[args.workload])
    cold["first_request_s"], _, response = call(first)
    cold["total_s"] = time.perf_counter() - started + cold["interpreter_s"]
    device = response.get("device")
    if args.expect_device and device not in (None, args.expect_device):
        raise SystemExit(f"{args.workload} ran on {device!r}, expected {args.expect_device!r}")
    for _ in range(WARMUP[args.workload]):
        call(first)

    def memory() -> dict:
        if torch is None or not torch.cuda.is_available():
            return {}
        return {
            "allocated_mib": torch.cuda.memory_allocated() / 2**20,
            "max_allocated_mib": torch.cuda.max_memory_allocated() / 2**20,
            "reserved_mib": torch.cuda.memory_reserved() / 2**20,
        }

    runtime = {"python": sys.version.split()[0], "device": device}
    if torch is not None:
        runtime.update(torch=torch.__version__, intra_op_threads=torch.get_num_threads())
        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            runtime.update(gpu=props.name, gpu_memory_mib=props.total_memory // 2**20,
                           gpu_multiprocessors=props.multi_processor_count)
    _emit({"ready": True, "cold_start": cold, "memory_after_load": memory(), "runtime": runtime})

    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("quit"):
            break
        request = request_of(cmd["request"])
        rate, duration = cmd.get("rate"), cmd["duration_s"]
        if torch is not None and torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        while time.time() < cmd["start_at"]:
            time.sleep(min(0.01, max(0.0, cmd["start_at"] - time.time())))
        t0 = time.perf_counter()
        latencies, services, cpu_s = [], [], 0.0
        k = 0
        while True:
            arrival = t0 + k / rate if rate else time.perf_counter()
            if arrival - t0 >= duration:
                break
            now = time.perf_counter()
            if rate and now < arrival:
                time.sleep(arrival - now)
            service, cpu, _ = call(request)
            latencies.append(time.perf_counter() - arrival)
            services.append(service)
            cpu_s += cpu
            k += 1
        wall = time.perf_counter() - t0
        _emit({"latencies": latencies, "services": services, "cpu_s": cpu_s, "wall_s": wall,
               "memory": memory()})
    return 0


# ---------------------------------------------------------------------------------------------
# Orchestrator
# ---------------------------------------------------------------------------------------------


def _nvidia_smi() -> str | None:
    try:
        return subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,memory.used,utilization.gpu,"
             "compute_mode,mig.mode.current,clocks.max.sm", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=False).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _stats(xs: list[float]) -> dict:
    return calib_stats.summarise(xs) if xs else {"n": 0}


def run(args: argparse.Namespace) -> int:
    from tests.eval.calibrate import machine_info, make_jpeg_payload  # noqa: PLC0415

    out = Path(args.out)
    deadline = time.time() + args.budget_s
    counts = [int(c) for c in args.counts.split(",")]
    data = {"schema": SCHEMA, "units": "seconds", "command": " ".join(sys.argv[1:]),
            "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "how": "time-slicing as concurrent processes, one CUDA context each, no MPS, no MIG; "
                   "GPU settings left as found",
            "threads_per_process": args.threads, "smoke": args.smoke,
            "nvidia_smi_before": _nvidia_smi(), "machine": machine_info(), "workloads": {}}

    def save() -> None:
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, out)

    save()
    workdir = out.parent / (out.stem + "-work")
    workdir.mkdir(parents=True, exist_ok=True)
    jpeg = make_jpeg_payload(workdir)
    for workload in args.workloads.split(","):
        entry = data["workloads"][workload] = {"phases": {}, "workers": []}
        env = {**os.environ, "GAIA_RANDOM_WEIGHTS": "1", "PYTHONUNBUFFERED": "1",
               "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
        procs = []
        t_spawn = time.time()
        for _ in range(max(counts)):
            cmd = [sys.executable, "-m", "tests.eval.calib_shared", "worker", "--workload", workload,
                   "--threads", str(args.threads), "--spawned-at", str(time.time())]
            if jpeg:
                cmd += ["--jpeg", str(jpeg)]
            if not args.smoke:
                cmd += ["--expect-device", "cuda"]
            procs.append(subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                          text=True, cwd=REPO))
        for p in procs:
            line = p.stdout.readline()
            if not line:
                entry["error"] = f"a worker exited while loading (rc {p.wait()})"
                break
            entry["workers"].append(json.loads(line))
        entry["all_ready_s"] = time.time() - t_spawn
        entry["nvidia_smi_loaded"] = _nvidia_smi()
        save()
        if "error" not in entry:
            for name, request, rate, duration in PHASES[workload]:
                if args.smoke:
                    duration = min(duration, 0.6)
                phase = entry["phases"][name] = {"request": request if request != "jpeg" else
                                                 "jpeg, base64", "rate_per_process": rate,
                                                 "duration_s": duration, "by_processes": {}}
                for n in counts:
                    if time.time() + duration + 5 > deadline:
                        phase["stopped"] = f"time budget before {n} processes"
                        break
                    start_at = time.time() + 0.5
                    for p in procs[:n]:
                        p.stdin.write(json.dumps({"request": request, "rate": rate, "duration_s": duration,
                                                  "start_at": start_at}) + "\n")
                        p.stdin.flush()
                    per_worker = [json.loads(p.stdout.readline()) for p in procs[:n]]
                    lat = [x for w in per_worker for x in w["latencies"]]
                    svc = [x for w in per_worker for x in w["services"]]
                    cpu = sum(w["cpu_s"] for w in per_worker)
                    wall = max(w["wall_s"] for w in per_worker)
                    phase["by_processes"][str(n)] = {
                        "latency": _stats(lat), "service": _stats(svc),
                        "throughput_rps": len(lat) / wall if wall > 0 else None,
                        "cores_busy_per_process": cpu / n / wall if wall > 0 else None,
                        "workers": [{"latencies": [round(x, 6) for x in w["latencies"]],
                                     "memory": w["memory"], "wall_s": w["wall_s"], "cpu_s": w["cpu_s"]}
                                    for w in per_worker],
                    }
                    print(f"{workload} {name} x{n}: p50 {phase['by_processes'][str(n)]['latency'].get('p50')}"
                          f" p95 {phase['by_processes'][str(n)]['latency'].get('p95')}", flush=True)
                    save()
        for p in procs:
            try:
                p.stdin.write(json.dumps({"quit": True}) + "\n")
                p.stdin.flush()
            except (BrokenPipeError, OSError):
                pass
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        save()
    data["nvidia_smi_after"] = _nvidia_smi()
    data["elapsed_s"] = time.time() - (deadline - args.budget_s)
    save()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--workloads", default="image_classification,matmul")
    r.add_argument("--counts", default=",".join(map(str, COUNTS)))
    r.add_argument("--threads", type=int, default=2, help="torch threads per process (a 2-CPU pod)")
    r.add_argument("--budget-s", type=float, default=540)
    r.add_argument("--smoke", action="store_true", help="short phases, no GPU check")
    r.add_argument("--out", required=True)
    w = sub.add_parser("worker")
    w.add_argument("--workload", required=True, choices=sorted(PHASES))
    w.add_argument("--threads", type=int, default=2)
    w.add_argument("--spawned-at", type=float, required=True)
    w.add_argument("--jpeg")
    w.add_argument("--expect-device")
    args = parser.parse_args()
    return run(args) if args.cmd == "run" else worker(args)


if __name__ == "__main__":
    raise SystemExit(main())
