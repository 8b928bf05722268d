"""The live demo's driver (run by hack/demo.sh, on a cluster that is already up).

    python3 -m tests.harness.demo [--data-plane real|emulated] [--short] [--duration S]
                                  [--out DIR] [--debug-build] [--keep]

Deploys the four example functions with plain `kn service create ... --annotation
gaia.dev/execution-mode=auto`, drives load, and prints the decisions as they happen: each
function's mode and rationale, every placement move with the numbers behind it, and a status
line every few seconds. Ends after the load (--duration), when the short scenario is done
(--short), or on Ctrl-C; prints a summary table, writes a PNG plot and summary.json, and
removes what it created (namespace, Gaia install, its processes).

Two data planes (the default follows the cluster: real when it has real nodes):

- real (``hack/cluster.sh up --real-nodes``): Gaia installed as pods with ``kubectl apply -k``
  of the local overlay; the functions run from the function runtime image on the real CPU
  worker, with their code in ConfigMaps; requests go through Traefik (the KIngress) and
  Knative's queue-proxies; Prometheus scrapes the real queue-proxy and cAdvisor series. The GPU
  is the one stand-in: a pod on the GPU-pool worker answers with the latency the calibrated
  H100 profile gives (tests/harness/ingress_load.py marks those answers). Real CPU work on
  this 2-core machine scales the paper's load down (``REAL_LOAD``).
- emulated (the KWOK cluster): Gaia's binaries as host processes, the workload emulator
  (tests/harness/emulator.py) and its load generator (tests/harness/loadgen.py) in place of the
  data plane, with the paper's full load.
"""
from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.harness.driver import Driver, nearest_rank
from tests.harness.duration import parse_duration
from tests.harness.ingress_load import IngressLoad, Scenario
from tests.harness.install import GaiaInstall
from tests.harness.paths import REPO, binaries
from tests.harness.proc import Proc

EMULATOR_PORT = 19600
# Service name -> (example directory, its latency objective for the demo)
FUNCTIONS = {
    "matmul": ("matmul", "500ms"),
    "image-classification": ("image_classification", "500ms"),
    "text-generation": ("text_generation", "7s"),
    "idle-wait": ("idle_wait", "500ms"),
}
GAIA_REASONS = {"PromotedToGpu", "DemotedToCpu", "RevertedToCpu", "RolledBack", "GpuVerified",
                "NoGpuAvailable", "InvalidLatencySlo", "InvalidMode", "InvalidObserved"}
MOVES = {"PromotedToGpu": "gpu", "DemotedToCpu": "cpu", "RevertedToCpu": "cpu", "RolledBack": None}

# Demo-friendly autoscaler settings: the product's rules on a shorter clock (the defaults are a
# 10 s cycle over 1 min / 5 min windows, 5 min dwell; see docs/autoscaler.md and docs/demo.md).
AUTOSCALER_DEMO = {
    "interval": "2s",
    "policy": {
        "shortWindow": "60s",
        "longWindow": "90s",
        "promote": {"minRequests": 10},
        "verify": {"settle": "15s", "minRequests": 5},
        "hysteresis": {"minDwell": "60s"},
        "rolloutTimeout": "3m",
    },
}

# The real data plane on this 2-core machine: what each function gets (Knative Service flags,
# the load), scaled down from the emulated demo where real CPU work would take too long.
# matmul: n=1024 back to back (the emulated demo sweeps n up to 20,000: n=20,000 takes minutes
# on one core), which one throttled core serves in about 1 s, twice its SLO.
# image-classification: 2 requests/s (the paper: 5/s), random weights (nothing can be
# downloaded here: the same compute). text-generation: TinyLlama with 2 of its 22 layers and
# random weights (GAIA_MODEL_LAYERS): it starts on the GPU-pool worker, where the stand-in
# answers with the whole model's H100 latency, and the smaller model loads in seconds instead of
# minutes; one client (the paper: 2). idle-wait: one client, 2 s waits.
REAL_LOAD = {
    "matmul": {"body": {"size": 1024}, "env": {}},
    "image-classification": {"body": {}, "rate": 2.0, "env": {"GAIA_RANDOM_WEIGHTS": "1"}},
    "text-generation": {"body": {"prompt": "Explain serverless computing in one paragraph."},
                        "env": {"GAIA_RANDOM_WEIGHTS": "1", "GAIA_MODEL_LAYERS": "2"}},
    "idle-wait": {"body": {"seconds": 2}, "env": {}},
}
# Real pods: the CPU worker has 2 cores for everything; each function may use one.
REAL_RESOURCES = ["--request", "cpu=250m", "--limit", "cpu=1", "--scale-min", "1"]

# Real pods compute on 2 shared cores: fewer requests per window are enough to judge (the same
# rules; a request to matmul takes seconds there).
AUTOSCALER_DEMO_REAL = {**AUTOSCALER_DEMO, "policy": {
    **AUTOSCALER_DEMO["policy"], "promote": {"minRequests": 5}, "verify": {"settle": "15s", "minRequests": 5}}}

T0 = time.monotonic()
STOP = threading.Event()


def say(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


class Demo(Driver):
    def __init__(self, args: argparse.Namespace):
        super().__init__(Path(args.out), STOP, say)
        self.args = args
        self.ns = args.namespace
        self.install: GaiaInstall | None = None
        self.services: dict[str, dict] = {}
        self.placement: dict[str, str] = {}
        self.events: list[dict] = []
        self.seen_events: set[str] = set()
        self.load_started = 0.0
        self.load_wall = 0.0
        self.targets = self.cluster.prom_targets_dir / f"gaia-demo-{self.ns}.json"
        self.real = args.data_plane == "real"
        self.load: IngressLoad | None = None

    # --- steps --------------------------------------------------------------------------
    def install_gaia(self) -> None:
        if self.real:
            # as the README tells platform teams: kubectl apply -k of an overlay that only sets
            # the images (here: to the cluster's registry), both Deployments as pods
            self.install = GaiaInstall(self.cluster, self.out / "gaia", None,
                                       autoscaler_overrides={**AUTOSCALER_DEMO_REAL, "namespace": self.ns},
                                       say=lambda m: say(m))
            self.install.start_as_pods(Path(self.env["GAIA_LOCAL_OVERLAY"]))
        else:
            self.install = GaiaInstall(self.cluster, self.out / "gaia", binaries(self.args.debug_build),
                                       autoscaler_overrides=AUTOSCALER_DEMO, say=lambda m: say(m))
            self.install.start()
        say("autoscaler settings for the demo: 2 s cycles, 60 s / 90 s windows, 60 s dwell, "
            "15 s verification (defaults: 10 s, 1 min / 5 min, 5 min, 90 s)"
            + ("; 5 requests per window suffice (default 10)" if self.real else ""))

    def start_emulator(self) -> None:
        if self.real:
            say(f"data plane: real pods on {self.env['GAIA_CPU_WORKER']} (real CPU work) and "
                f"{self.env['GAIA_GPU_WORKER']} (GPU STAND-IN: answers with the calibrated H100 "
                f"latency, computes nothing); requests through Traefik at {self.env['GAIA_INGRESS_URL']}")
            return
        super().start_emulator(EMULATOR_PORT, [self.ns], self.targets, "--cpu-placement", "cpu16")
        say(f"workload emulator up on {self.cluster.host_ip}:{EMULATOR_PORT} (CPU nodes: the H100 "
            "host's 16-thread CPU profile; GPU nodes: its H100 profile); Prometheus scrapes it through "
            f"{self.targets.name}")

    def deploy(self) -> None:
        kn = self.env["GAIA_KN"]
        for name, (directory, _) in FUNCTIONS.items():
            src = REPO / "examples" / "functions" / directory
            cm = self.kubectl("create", "configmap", f"{name}-src", "-n", self.ns,
                              f"--from-file={src}", "--dry-run=client", "-o", "yaml").stdout
            self.kubectl("apply", "-f", "-", input=cm)
        say("ConfigMaps with the functions' sources created; kn service create x4:")
        running = {}
        for name, (_, slo) in FUNCTIONS.items():
            image = self.env["GAIA_RUNTIME_IMAGE"] if self.real else f"dev.local/gaia/{name}"
            argv = [kn, "--kubeconfig", self.env["KUBECONFIG"], "service", "create", name, "-n", self.ns,
                    "--image", image, "--mount", f"/app=cm:{name}-src",
                    "--annotation", "gaia.dev/execution-mode=auto",
                    "--annotation", f"gaia.dev/latency-slo={slo}",
                    "--wait-timeout", "420" if self.real else "150"]
            if self.real:
                argv += REAL_RESOURCES
                for k, v in REAL_LOAD[name]["env"].items():
                    argv += ["--env", f"{k}={v}"]
            print("    $ kn service create " + " ".join(argv[5:]), flush=True)
            running[name] = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                             text=True, start_new_session=True)
        start = last = time.monotonic()
        while any(p.poll() is None for p in running.values()):
            if STOP.wait(1):
                for p in running.values():
                    p.terminate()
                raise KeyboardInterrupt
            if time.monotonic() - last >= 4:
                last = time.monotonic()
                waiting = [n for n, p in running.items() if p.poll() is None]
                if waiting:
                    say(f"  ... kn waiting for {', '.join(waiting)} to be Ready ({last - start:.0f} s)")
        for name, p in running.items():
            out = p.stdout.read() if p.stdout else ""
            if p.returncode != 0:
                say(f"  kn service create {name} failed ({p.returncode}): {out.strip()[-400:]}")
        self.refresh_services(initial=True)

    def refresh_services(self, initial: bool = False) -> None:
        items = self.kubectl.json("get", "ksvc", "-n", self.ns)["items"]
        for svc in items:
            name = svc["metadata"]["name"]
            a = svc["metadata"].get("annotations", {}) or {}
            ta = svc["spec"]["template"].get("metadata", {}).get("annotations", {}) or {}
            placement = a.get("gaia.dev/desired-placement") or ta.get("gaia.dev/placed-for") or "?"
            status = svc.get("status", {})
            self.services[name] = {
                "mode": a.get("gaia.dev/mode", "?"), "source": a.get("gaia.dev/mode-source", "?"),
                "rationale": a.get("gaia.dev/rationale", ""), "slo": a.get("gaia.dev/latency-slo", ""),
                "placement": placement, "observed": a.get("gaia.dev/observed"),
                "ready_revision": status.get("latestReadyRevisionName"),
                "created_revision": status.get("latestCreatedRevisionName"),
            }
            if initial:
                s = self.services[name]
                say(f"{name}: mode {s['mode']} ({s['source']}), starts on {placement.upper()}, "
                    f"SLO {s['slo']}, revision {s['ready_revision']}")
                print(f"           why: {s['rationale']}", flush=True)
            elif self.placement.get(name) not in (None, placement):
                say(f"{name}: gaia.dev/desired-placement {self.placement[name]} -> {placement}: Knative rolls out "
                    f"a new revision on a {placement.upper()} node")
            self.placement[name] = placement

    def refresh_events(self) -> None:
        items = self.kubectl.json("get", "events", "-n", self.ns)["items"]
        items.sort(key=lambda e: e.get("eventTime") or e.get("lastTimestamp") or e["metadata"]["creationTimestamp"])
        for e in items:
            reason = e.get("reason", "")
            uid = e["metadata"]["uid"]
            if reason not in GAIA_REASONS or uid in self.seen_events:
                continue
            self.seen_events.add(uid)
            name = e.get("involvedObject", e.get("regarding", {})).get("name", "?")
            msg = e.get("message") or e.get("note") or ""
            t = time.monotonic() - self.load_started if self.load_started else 0.0
            self.events.append({"t": round(t, 1), "fn": name, "reason": reason, "message": msg})
            marker = {"PromotedToGpu": ">>> PROMOTED to GPU", "DemotedToCpu": "<<< DEMOTED to CPU",
                      "RevertedToCpu": "<<< REVERTED to CPU", "GpuVerified": "=== GPU VERIFIED"}.get(reason, reason)
            say(f"{name}: {marker}: {msg}")

    def status_line(self) -> None:
        now = time.time()
        parts = []
        for name in FUNCTIONS:
            reqs = [r for r in self.requests if r["fn"] == name]
            recent = [r["latency_s"] for r in reqs if now - r["t"] - r["latency_s"] <= 60]
            p95 = nearest_rank(recent, 95)
            last = reqs[-1] if reqs else None
            extra = f" last {fmt_s(last['latency_s'])}" if last else ""
            if last and last["request"].get("size") is not None:
                extra += f" (n={last['request']['size']})"
            parts.append(f"{name} {self.placement.get(name, '?')} {len(reqs)} req{extra}"
                         + (f", 1m p95 {fmt_s(p95)}" if recent else ""))
        say("load: " + " | ".join(parts))

    def run_load(self):
        if self.real:
            return self.run_ingress_load()
        argv = [sys.executable, "-m", "tests.harness.loadgen", "--emulator",
                f"http://{self.cluster.host_ip}:{EMULATOR_PORT}", "--namespace", self.ns,
                "--log", str(self.req_log), "--duration", str(self.args.duration),
                "--kubectl", self.env["GAIA_KUBECTL"], "--kubeconfig", self.env["KUBECONFIG"]]
        for name, (directory, _) in FUNCTIONS.items():
            argv += ["--scenario", f"{name}={directory}"]
        if self.args.short:
            argv.append("--short")
        p = Proc(argv, self.out / "loadgen.log", self.cluster.process_env())
        self.procs.append(p)
        self.load_started, self.load_wall = time.monotonic(), time.time()
        say("load generator started: matmul sizes 0..20000 step 200 back to back; ResNet-18 at "
            "5 req/s; TinyLlama 256-token requests, 2 clients; idle waits of 2 s "
            f"({'short' if self.args.short else 'full'} counts; ends after {self.args.duration:.0f} s at most)")
        return p

    def run_ingress_load(self) -> IngressLoad:
        self.load = IngressLoad(self.env["GAIA_INGRESS_URL"], self.req_log)
        for name in FUNCTIONS:
            ksvc = self.kubectl.json("get", "ksvc", name, "-n", self.ns)
            host = ksvc.get("status", {}).get("url", "").split("://")[-1]
            if not host:
                raise RuntimeError(f"{name} has no URL (not Ready): {ksvc.get('status', {}).get('conditions')}")
            spec = REAL_LOAD[name]
            self.load.add(Scenario(name, host, spec["body"], rate=spec.get("rate")))
        self.load.start()
        self.load_started, self.load_wall = time.monotonic(), time.time()
        say("load through the ingress started (scaled down for real CPU work on 2 cores): matmul "
            "n=1024 back to back; ResNet-18 at 2 req/s; TinyLlama 256-token requests, 1 client; "
            f"idle waits of 2 s ({'until matmul is promoted and verified' if self.args.short else 'for'} "
            f"{self.args.duration:.0f} s{' at most' if self.args.short else ''})")
        return self.load

    def monitor(self, loadgen) -> None:
        if self.real:
            return self.monitor_real(loadgen)
        self.monitor_emulated(loadgen)

    def monitor_real(self, load: IngressLoad) -> None:
        """Load for --duration s (--short: until a promotion is verified), then watch for the
        idle demotions (--watch s; --short: not at all)."""
        end_load = self.load_started + self.args.duration
        last_status = 0.0
        stopped_at = None
        watch = 0.0 if self.args.short else self.args.watch
        while not STOP.is_set():
            self.read_requests()
            try:
                self.refresh_events()
                self.refresh_services()
            except Exception as exc:  # noqa: BLE001 - keep showing
                say(f"(could not read the cluster: {exc})")
            if time.monotonic() - last_status >= 5:
                self.status_line()
                last_status = time.monotonic()
            verified = any(e["reason"] == "GpuVerified" for e in self.events)
            if stopped_at is None and (time.monotonic() >= end_load or (self.args.short and verified)):
                load.stop()
                stopped_at = time.monotonic()
                say("load stopped" + ("" if watch == 0 else
                                      f"; watching {watch:.0f} s more (functions idle on a GPU are demoted)"))
            if stopped_at is not None:
                promoted = {e["fn"] for e in self.events if e["reason"] == "PromotedToGpu"}
                back = all(self.placement.get(f) == "cpu" for f in promoted)
                if time.monotonic() - stopped_at >= watch or (promoted and back and watch > 0):
                    break
            STOP.wait(2)
        load.stop()
        self.read_requests()
        self.refresh_events()
        self.refresh_services()

    def monitor_emulated(self, loadgen: Proc) -> None:
        end = self.load_started + self.args.duration
        last_status = 0.0
        done_at = None
        while not STOP.is_set() and time.monotonic() < end:
            self.read_requests()
            try:
                self.refresh_events()
                self.refresh_services()
            except Exception as exc:  # noqa: BLE001 - keep showing
                say(f"(could not read the cluster: {exc})")
            if time.monotonic() - last_status >= 5:
                self.status_line()
                last_status = time.monotonic()
            if not loadgen.alive() and done_at is None:
                done_at = time.monotonic()
                say("load generator finished its scenarios"
                    + ("" if self.args.short else "; watching until the end (idle functions on a GPU are demoted)"))
            if done_at is not None and self.args.short and time.monotonic() - done_at > 4:
                break
            STOP.wait(2)
        self.read_requests()
        self.refresh_events()
        self.refresh_services()

    # --- the end ------------------------------------------------------------------------
    def summary(self) -> dict:
        rows = {}
        for name in FUNCTIONS:
            s = self.services.get(name, {})
            reqs = [r for r in self.requests if r["fn"] == name]
            by = {pl: [r["latency_s"] for r in reqs if r["placement"] == pl] for pl in ("cpu", "gpu")}
            evs = [e for e in self.events if e["fn"] == name]
            rows[name] = {
                "mode": s.get("mode"), "mode_source": s.get("source"), "slo": s.get("slo"),
                "final_placement": s.get("placement"), "requests": len(reqs),
                "requests_cpu": len(by["cpu"]), "requests_gpu": len(by["gpu"]),
                "errors": sum(1 for r in reqs if r.get("error")),
                "p95_cpu_s": nearest_rank(by["cpu"], 95), "p95_gpu_s": nearest_rank(by["gpu"], 95),
                "mean_s": (sum(r["latency_s"] for r in reqs) / len(reqs)) if reqs else None,
                "promotions": sum(e["reason"] == "PromotedToGpu" for e in evs),
                "demotions": sum(e["reason"] in ("DemotedToCpu", "RevertedToCpu") for e in evs),
                "events": evs, "rationale": s.get("rationale"),
            }
        return {"namespace": self.ns, "short": self.args.short, "data_plane": self.args.data_plane,
                "driver_seconds": round(time.monotonic() - T0, 1),
                "load_seconds": round(time.monotonic() - self.load_started, 1) if self.load_started else 0,
                "functions": rows}

    def print_table(self, summ: dict) -> None:
        hdr = ("function", "mode (source)", "SLO", "reqs cpu/gpu", "p95 cpu", "p95 gpu", "moves", "now on")
        rows = []
        for name, r in summ["functions"].items():
            moves = f"+{r['promotions']} -{r['demotions']}"
            rows.append((name, f"{r['mode']} ({r['mode_source']})", r["slo"] or "",
                         f"{r['requests_cpu']}/{r['requests_gpu']}", fmt_s(r["p95_cpu_s"]),
                         fmt_s(r["p95_gpu_s"]), moves, (r["final_placement"] or "?").upper()))
        widths = [max(len(str(x)) for x in col) for col in zip(hdr, *rows)]
        line = "  ".join(h.ljust(w) for h, w in zip(hdr, widths))
        print("\n" + line + "\n" + "-" * len(line))
        for row in rows:
            print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())
        print(flush=True)

    def plot(self, summ: dict) -> Path | None:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            say("matplotlib missing: no plot (pip install -r tests/requirements.txt)")
            return None
        names = list(FUNCTIONS)
        fig, axes = plt.subplots(len(names), 1, figsize=(10, 2.6 * len(names)), sharex=True)
        colors = {"cpu": "tab:blue", "gpu": "tab:green"}
        for ax, name in zip(axes, names):
            reqs = [r for r in self.requests if r["fn"] == name]
            for pl in ("cpu", "gpu"):
                xs = [r["t"] - self.load_wall for r in reqs if r["placement"] == pl]
                ys = [max(r["latency_s"], 1e-4) for r in reqs if r["placement"] == pl]
                if xs:
                    ax.scatter(xs, ys, s=8, color=colors[pl], label=f"on {pl.upper()} node")
            slo = parse_duration(FUNCTIONS[name][1])
            ax.axhline(slo, color="gray", ls="--", lw=1, label=f"SLO {FUNCTIONS[name][1]}")
            for e in summ["functions"][name]["events"]:
                c = {"PromotedToGpu": "red", "DemotedToCpu": "orange", "RevertedToCpu": "orange",
                     "GpuVerified": "purple"}.get(e["reason"], "black")
                ax.axvline(e["t"], color=c, lw=1.2)
                ax.annotate(e["reason"], (e["t"], 1), xycoords=("data", "axes fraction"),
                            rotation=90, va="top", ha="right", fontsize=7, color=c)
            r = summ["functions"][name]
            ax.set_yscale("log")
            ax.set_ylabel("latency (s)")
            ax.set_title(f"{name}: {r['mode']} ({r['mode_source']})", fontsize=9, loc="left")
            ax.legend(fontsize=7, loc="upper left")
        axes[-1].set_xlabel("seconds since the load started")
        fig.suptitle("Gaia live demo: request latency by placement, placement moves marked", fontsize=10)
        fig.tight_layout()
        path = self.out / "demo.png"
        fig.savefig(path, dpi=110)
        return path

    def save_autoscaler_metrics(self) -> None:
        """The autoscaler's own /metrics (decisions by kind and reason, holds included)."""
        if not (self.install and self.install.autoscaler and self.install.autoscaler.alive()):
            return
        try:
            p = subprocess.run(self.cluster.in_netns("curl", "-sf", f"http://{self.install.autoscaler_listen}/metrics"),
                               capture_output=True, text=True, timeout=15, env=self.cluster.process_env())
            (self.out / "autoscaler-metrics.txt").write_text(p.stdout)
        except (OSError, subprocess.TimeoutExpired):
            pass

    def cleanup(self) -> None:
        if self.load:
            self.load.stop()
        self.save_autoscaler_metrics()
        for p in reversed(self.procs):
            p.stop(grace=10)
        self.targets.unlink(missing_ok=True)
        if self.args.keep:
            say(f"--keep: leaving namespace {self.ns} and the Gaia install")
            if self.install:
                for p in self.install.procs:
                    p.stop()
            return
        say(f"deleting namespace {self.ns} and uninstalling Gaia")
        self.delete_namespaces([self.ns], 90)
        if self.install:
            self.install.stop()


def fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x * 1e3:.0f}ms" if x < 1 else f"{x:.2f}s"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-plane", choices=("real", "emulated"), default=None,
                    help="real pods through the real ingress, or the workload emulator "
                         "(default: real when the cluster has real nodes)")
    ap.add_argument("--short", action="store_true", help="short scenarios (for tests)")
    ap.add_argument("--duration", type=float, default=None,
                    help="seconds of load and watching (default 240, --short 150; real data "
                         "plane: seconds of load, default 240, --short 300 at most)")
    ap.add_argument("--watch", type=float, default=150.0,
                    help="real data plane: seconds to watch after the load (idle demotions)")
    ap.add_argument("--out", default=str(REPO / "target" / "demo"), help="plot, summary, logs")
    ap.add_argument("--namespace", default="gaia-demo")
    ap.add_argument("--debug-build", action="store_true", help="use target/debug binaries")
    ap.add_argument("--keep", action="store_true", help="keep the namespace and the install")
    args = ap.parse_args()
    if args.data_plane is None:
        args.data_plane = "real" if Driver.cluster_has_real_nodes() else "emulated"
    if args.duration is None:
        if args.data_plane == "real":
            args.duration = 300.0 if args.short else 240.0
        else:
            args.duration = 150.0 if args.short else 240.0

    def on_signal(signum, _frame):
        if not STOP.is_set():
            print(flush=True)
            say(f"{signal.Signals(signum).name}: stopping (cleaning up, a few seconds)")
        STOP.set()
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    demo = Demo(args)
    rc = 0
    try:
        demo.install_gaia()
        demo.fresh_namespace(demo.ns)
        demo.start_emulator()
        demo.deploy()
        loadgen = demo.run_load()
        demo.monitor(loadgen)
    except KeyboardInterrupt:
        rc = 130
    except Exception as exc:  # noqa: BLE001 - report, clean up
        say(f"demo failed: {exc}")
        rc = 1
    finally:
        try:
            summ = demo.summary()
            (demo.out / "summary.json").write_text(json.dumps(summ, indent=1))
            demo.print_table(summ)
            png = demo.plot(summ) if demo.requests else None
            if png:
                say(f"plot: {png}")
            say(f"summary: {demo.out / 'summary.json'}; requests: {demo.req_log}; logs: {demo.out}")
        finally:
            demo.cleanup()
    if rc == 0 and STOP.is_set():
        rc = 130
    return rc


if __name__ == "__main__":
    sys.exit(main())
