"""The soak (hack/soak.sh; not in CI): Gaia installed from manifests/ (tests/harness/install.py)
and N ``cpu_preferred`` Services on the local KWOK cluster for a duration, under random load
through the workload emulator (emulator.py: calibrated latencies and CPU, Prometheus series per
pod). Every ``--sample`` seconds it records both components' resident memory, the Services not
Ready (stuck: not Ready for longer than the autoscaler's rolloutTimeout), the move Events, and
the autoscaler's decision counters; at the end it prints a summary and writes it, with every
sample, to OUT/soak.json.

Load: one client per Service; every 1-6 minutes each client draws a new phase -- idle, light
(one request every 10 s), steady (1/s) or heavy (back to back) -- and, for matmul, a matrix size.
Workloads: matmul (promoted when heavy with big matrices), image_classification, idle_wait
(waits: never promoted). The cluster has two GPUs, so most promotions meet NoGpuAvailable.

Usage: python3 -m tests.harness.soak --services 100 --duration 1h --out DIR [--binaries DIR]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from pathlib import Path

from tests.harness.autoscaler_run import parse_metrics, rfc3339_to_unix
from tests.harness.driver import Driver
from tests.harness.duration import parse_duration
from tests.harness.install import GaiaInstall
from tests.harness.loadgen import Router, invoke
from tests.harness.paths import binaries
from tests.harness.proc import run

NS = "gaia-soak"
EMULATOR_PORT = 19640
WORKLOADS = ["matmul", "matmul", "image_classification", "idle_wait"]
MOVES = ("PromotedToGpu", "DemotedToCpu", "RevertedToCpu", "RolledBack")
PHASES = [("idle", None), ("light", 10.0), ("steady", 1.0), ("heavy", 0.0)]  # pause between requests


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def service_manifest(name: str) -> str:
    return json.dumps({
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": name, "namespace": NS,
                     "annotations": {"gaia.dev/execution-mode": "cpu_preferred",
                                     "gaia.dev/latency-slo": "1s"}},
        "spec": {"template": {
            "metadata": {"annotations": {"autoscaling.knative.dev/min-scale": "1"}},
            "spec": {"containers": [{"image": f"dev.local/gaia/{name}:1",
                                     # a small request: 100 of them fit the 3 CPU nodes
                                     "resources": {"requests": {"cpu": "100m"},
                                                   "limits": {"cpu": "1"}}}]}}},
    })


def client(emulator: str, router: Router, name: str, workload: str, stop: threading.Event,
           rng: random.Random, counts: dict) -> None:
    key = f"{NS}/{name}"
    while not stop.is_set():
        phase, pause = rng.choice(PHASES)
        size = rng.choice([1000, 4000, 8000, 12000])
        until = time.monotonic() + rng.uniform(60, 360)
        while not stop.is_set() and time.monotonic() < until:
            if pause is None:
                stop.wait(5)
                continue
            rev = router.revision(key, rng)
            if not rev:
                stop.wait(2)
                continue
            body = ({"size": size} if workload == "matmul" else
                    {"image": True} if workload == "image_classification" else {"seconds": 2})
            status, _ = invoke(emulator, NS, rev, body, timeout=120)
            counts[status] = counts.get(status, 0) + 1
            stop.wait(pause if status == 200 else 2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=100)
    ap.add_argument("--duration", default="1h")
    ap.add_argument("--sample", type=float, default=30)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--binaries", type=Path, default=binaries(debug=True))
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    duration = parse_duration(args.duration)
    stop = threading.Event()
    say = lambda m: print(f"[soak {time.strftime('%H:%M:%S')}] {m}", flush=True)  # noqa: E731
    d = Driver(args.out, stop, say)
    rng = random.Random(args.seed)
    gaia = GaiaInstall(d.cluster, args.out / "gaia", args.binaries, say=say,
                       autoscaler_overrides={"namespace": NS})
    samples: list[dict] = []
    moves: dict[str, dict] = {}
    counts: dict[int, int] = {}
    threads: list[threading.Thread] = []
    router = None
    try:
        d.fresh_namespace(NS)
        gaia.start()
        names = [f"s{i:03d}-{WORKLOADS[i % len(WORKLOADS)].replace('_', '-')}" for i in range(args.services)]
        workloads = {n: WORKLOADS[i % len(WORKLOADS)] for i, n in enumerate(names)}
        targets = d.cluster.prom_targets_dir / "gaia-soak-emulator.json"
        d.start_emulator(EMULATOR_PORT, [NS], targets,
                         *[a for n, w in workloads.items() for a in ("--workload", f"{n}={w}")])
        say(f"creating {len(names)} Services")
        for n in names:
            d.kubectl.apply(service_manifest(n))
        router = Router([d.env["GAIA_KUBECTL"], "--kubeconfig", d.env["KUBECONFIG"]],
                        [f"{NS}/{n}" for n in names])
        threading.Thread(target=router.run, daemon=True).start()
        emulator = f"http://{d.cluster.host_ip}:{EMULATOR_PORT}"
        for n in names:
            t = threading.Thread(target=client, daemon=True, args=(
                emulator, router, n, workloads[n], stop, random.Random(rng.random()), counts))
            t.start()
            threads.append(t)
        t0 = time.monotonic()
        not_ready_since: dict[str, float] = {}
        say(f"load running for {duration:.0f} s; a sample every {args.sample:.0f} s")
        while time.monotonic() - t0 < duration:
            now = time.monotonic()
            svcs = d.kubectl.json("get", "ksvc", "-n", NS)["items"]
            for s in svcs:
                ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                            for c in s.get("status", {}).get("conditions", []) or [])
                n = s["metadata"]["name"]
                if ready:
                    not_ready_since.pop(n, None)
                else:
                    not_ready_since.setdefault(n, now)
            for e in d.kubectl.json("get", "events", "-n", NS)["items"]:
                if e.get("reason") in MOVES:
                    moves[e["metadata"]["uid"]] = {"service": e["involvedObject"]["name"],
                                                   "reason": e["reason"],
                                                   "time": e.get("eventTime") or e.get("lastTimestamp")}
            metrics = parse_metrics(run(d.cluster.in_netns(
                "curl", "-s", "-m", "5", f"http://{gaia.autoscaler_listen}/metrics"),
                check=False, timeout=20).stdout)
            sample = {
                "t": round(now - t0, 1),
                "webhook_rss_mib": rss_mib(gaia.webhook.pid), "autoscaler_rss_mib": rss_mib(gaia.autoscaler.pid),
                "services": len(svcs), "not_ready": len(not_ready_since),
                "stuck": sorted(n for n, since in not_ready_since.items() if now - since > 300),
                "moves": len(moves), "requests": sum(counts.values()),
                "decisions": {k: v for k, v in metrics.items() if k.startswith("gaia_autoscaler_decisions_total")},
            }
            samples.append(sample)
            say(f"t={sample['t']:.0f}s webhook {sample['webhook_rss_mib']:.1f} MiB, autoscaler "
                f"{sample['autoscaler_rss_mib']:.1f} MiB, {sample['not_ready']} not Ready "
                f"({len(sample['stuck'])} stuck), {sample['moves']} moves, {sample['requests']} requests")
            for p in gaia.procs:
                if not p.alive():
                    raise RuntimeError(f"{p.log.name} exited:\n{p.tail()}")
            stop.wait(args.sample)
    except KeyboardInterrupt:
        say("interrupted")
    finally:
        stop.set()
        if router:
            router.stop.set()
        for t in threads:
            t.join(timeout=5)
        summary = summarize(samples, moves, counts, args)
        (args.out / "soak.json").write_text(json.dumps({"summary": summary, "samples": samples,
                                                        "moves": list(moves.values())}, indent=1))
        print(json.dumps(summary, indent=1))
        gaia.stop()
        for p in d.procs:
            p.stop()
        d.delete_namespaces([NS], timeout=120)
    return 0 if summary.get("ok") else 1


WINDOW_S = 600  # the first and the last 10 minutes of a run, compared for memory growth


def slope_per_hour(pts: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MiB) points, in MiB per hour; None under 3 points."""
    if len(pts) < 3:
        return None
    n = len(pts)
    mt = sum(t for t, _ in pts) / n
    mv = sum(v for _, v in pts) / n
    var = sum((t - mt) ** 2 for t, _ in pts)
    if var == 0:
        return None
    return round(sum((t - mt) * (v - mv) for t, v in pts) / var * 3600, 3)


def summarize(samples: list[dict], moves: dict, counts: dict, args) -> dict:
    if not samples:
        return {"ok": False, "error": "no samples"}

    def mem(key: str) -> dict:
        pts = [(s["t"], s[key]) for s in samples if s[key] is not None]
        if not pts:
            return {}
        xs = [v for _, v in pts]
        half = xs[len(xs) // 2:]
        end = pts[-1][0]
        first = [v for t, v in pts if t < WINDOW_S]
        last = [v for t, v in pts if t >= end - WINDOW_S]
        settled = [(t, v) for t, v in pts if t >= WINDOW_S]
        return {"first": round(xs[0], 1), "last": round(xs[-1], 1), "max": round(max(xs), 1),
                "second_half_min": round(min(half), 1), "second_half_max": round(max(half), 1),
                "first_10min_mean": round(sum(first) / len(first), 2),
                "last_10min_mean": round(sum(last) / len(last), 2),
                "slope_mib_per_h": slope_per_hour(pts),
                "slope_after_10min_mib_per_h": slope_per_hour(settled)}

    by_service: dict[str, list[float]] = {}
    for m in moves.values():
        if m["time"]:
            by_service.setdefault(m["service"], []).append(rfc3339_to_unix(m["time"]))
    worst = 0
    for ts in by_service.values():
        ts.sort()
        worst = max(worst, max(sum(1 for u in ts if t <= u < t + 3600) for t in ts))
    reasons: dict[str, int] = {}
    for m in moves.values():
        reasons[m["reason"]] = reasons.get(m["reason"], 0) + 1
    last = samples[-1]
    summary = {
        "services": args.services, "duration_s": last["t"], "samples": len(samples),
        "requests": sum(counts.values()), "requests_by_status": {str(k): v for k, v in counts.items()},
        "webhook_rss_mib": mem("webhook_rss_mib"), "autoscaler_rss_mib": mem("autoscaler_rss_mib"),
        "stuck_at_end": last["stuck"], "not_ready_at_end": last["not_ready"],
        "moves": reasons, "services_moved": len(by_service),
        "max_moves_of_a_service_in_an_hour": worst, "cap": 4,
        "decisions": last["decisions"],
    }
    summary["ok"] = not last["stuck"] and worst <= 4
    return summary


if __name__ == "__main__":
    sys.exit(main())
