"""The evaluation on the live local cluster: every scenario three ways (and auto forced).

Runs on a cluster that is up (hack/cluster.sh up; tests/eval/run.sh --live brings one up):

1. installs Gaia from manifests/ (tests/harness/install.py) with the autoscaler's DEFAULT
   settings (10 s cycle, 1 min / 5 min windows, 5 min dwell: the same policy the virtual-clock
   replay drives), the autoscaler logging its per-Service holds (RUST_LOG debug for its crate);
2. adds KWOK GPU nodes so that every run finds a free GPU (each run stands alone, as in the
   replay; the runs of all scenarios go at the same time, in one namespace per run kind);
3. deploys each scenario's example function with plain `kn service create` and the
   `gaia.dev/execution-mode` of the run: `cpu` (static CPU), `gpu` (static GPU), `auto`
   (the classifier decides), `cpu_preferred` (auto, the user forcing a CPU start); SLO
   `gaia.dev/latency-slo=1s` everywhere;
4. serves the revisions with the workload emulator (tests/harness/emulator.py: latencies from
   the calibrated H100 profile by the placement of each pod's node; queue-proxy and cAdvisor
   series scraped every 15 s by the real Prometheus) and replays the paper's load with the load
   generator (tests/harness/loadgen.py, scenarios matmul, resnet18, tinyllama, idle);
5. watches pods, Services and Gaia's Events while the load runs. STAND-IN (harness only): this
   cluster's Knative autoscaler has no request metrics (no data plane), so it never scales a
   revision down; the driver does what KPA would do with metrics: a revision that no longer
   takes traffic is scaled to zero 90 s after its last request (stable window 60 s + grace
   period 30 s, Knative's defaults);
6. writes every run's requests, revisions, node-seconds (from the pods' lifetimes in the API),
   cost, moves (Gaia's Events) and the autoscaler's cycles to RESULTS (schema
   gaia-eval-live/1), which tests/eval/report.py turns into docs/evaluation.md's live section.

    python3 -m tests.eval.live [--scenarios matmul,idle] [--short] [--results FILE] [--out DIR]
                               [--ladder | --ladder-only]

THE LADDER PASS (--ladder: after the pass above, in the same invocation; --ladder-only: that
pass alone, its runs added to the existing RESULTS, whose other runs are kept). The placement
ladder (docs/ladder.md) cannot share the pass above: with a `ladder:` section the autoscaler
decides every managed Service on the ladder (and the webhook starts a gpu_preferred Service on a
slice), so the two-placement `auto` runs would no longer be today's Gaia. So Gaia is installed a
second time, its autoscaler configuration carrying the time-sliced three-rung ladder (`cargo run
-p gaia-policy --example ladder_config -- shared`: cpu -> gpu-shared -> gpu, the rung prices
and profiles), the webhook given it with `--ladder-from` as the manifests do, and each scenario
runs once more, `auto`, in namespace gaia-eval-ladder. The four runs share ONE pool, as the
issue's target puts it: one GPU time-sliced 7 ways (a KWOK node exposing `nvidia.com/gpu.shared:
7`, labelled and tainted as NVIDIA's GPU operator does, as tests/e2e/test_ladder.py) and one
whole GPU (gpu-node-1; every other GPU node is cordoned for the pass and uncordoned after). The
emulator serves a pod asking for `nvidia.com/gpu.shared` with the profile's `gpu_shared`
latencies (the whole GPU's slowed by the measured 7-process factor). Node-seconds per rung come
from the pods' lifetimes as above (a slice-second of a pod on the shared rung), each charged at
its rung's `pricePerSecond`. Written under RESULTS' key `ladder` (schema gaia-eval-live-ladder/1).

Removes what it created (namespaces, nodes, the Gaia install, its processes) at the end, also on
Ctrl-C.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.harness import loadgen
from tests.harness.driver import Driver, nearest_rank
from tests.harness.duration import parse_duration
from tests.harness.install import GaiaInstall
from tests.harness.paths import REPO, binaries
from tests.harness.proc import Proc

EMULATOR_PORT = 19610
SLO = "1s"
SLO_S = 1.0
CPU_PRICE, GPU_PRICE = 0.000038, 0.000133
DRAIN_S = 90.0           # Knative: stable window 60 s + scale-to-zero grace period 30 s
SCRAPE_INTERVAL = "15s"  # default: a production-like scrape (the local cluster's is 2 s)

# run kind -> (namespace, gaia.dev/execution-mode)
ROLES = {
    "static_cpu": ("gaia-eval-static-cpu", "cpu"),
    "static_gpu": ("gaia-eval-static-gpu", "gpu"),
    "auto": ("gaia-eval-auto", "auto"),
    "auto_forced": ("gaia-eval-auto-forced", "cpu_preferred"),
    "ladder": ("gaia-eval-ladder", "auto"),
}
ROLE_LABELS = {"static_cpu": "static CPU", "static_gpu": "static GPU", "auto": "Gaia auto",
               "auto_forced": "Gaia auto, cpu_preferred forced",
               "ladder": "Gaia ladder (cpu, gpu-shared, gpu)"}
# scenario (= Service name and loadgen scenario) -> (example directory, workload, run kinds)
SCENARIOS = {
    "matmul": ("matmul", "matmul", ["static_cpu", "static_gpu", "auto"]),
    "resnet18": ("image_classification", "image_classification", ["static_cpu", "static_gpu", "auto"]),
    "tinyllama": ("text_generation", "text_generation",
                  ["static_cpu", "static_gpu", "auto", "auto_forced"]),
    "idle": ("idle_wait", "idle_wait", ["static_cpu", "static_gpu", "auto", "auto_forced"]),
}
MOVE_REASONS = {"PromotedToGpu": ("promote", "cpu", "gpu"), "DemotedToCpu": ("demote", "gpu", "cpu"),
                "RevertedToCpu": ("revert", "gpu", "cpu"), "RolledBack": ("rollback", None, None)}
# the ladder's moves (docs/ladder.md, "Events"): the rung moved to is in the note ("→ gpu")
LADDER_MOVE_REASONS = {"PromotedOnLadder": "promote", "EconomizedOnLadder": "economize",
                       "DemotedOnLadder": "demote", "RevertedOnLadder": "revert"}
GAIA_REASONS = set(MOVE_REASONS) | set(LADDER_MOVE_REASONS) | {
    "GpuVerified", "NoGpuAvailable", "InvalidLatencySlo", "InvalidMode", "InvalidObserved",
    "RungVerified", "NoRungCapacity", "InvalidLadder", "LatencyUnreliable"}
SHARED_NODE = "eval-gpu-shared-node-1"
SLICES = 7
LADDER_NS = ROLES["ladder"][0]

T0 = time.monotonic()
STOP = threading.Event()


def say(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def ts(text: str | None) -> float | None:
    """An API or log timestamp as Unix seconds."""
    if not text:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def ladder_config() -> dict:
    """The time-sliced three-rung ladder the policy's example prints (as test_ladder.py uses)."""
    out = subprocess.run(["cargo", "run", "-q", "--locked", "-p", "gaia-policy", "--example",
                          "ladder_config", "--", "shared"], cwd=REPO, capture_output=True, text=True,
                         timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"cargo run --example ladder_config failed: {out.stderr.strip()[-800:]}")
    return json.loads(out.stdout)["ladder"]


def rung_of_pod(pod: dict, node_pool: str | None, rungs: list[dict]) -> str:
    """The ladder rung a pod holds: the highest rung whose resource a container asks for, else
    the first (CPU) rung; a whole-GPU pod on a GPU-pool node without a rung of its own: `gpu`."""
    asked = set()
    for c in pod.get("spec", {}).get("containers") or []:
        res = c.get("resources") or {}
        for part in ("limits", "requests"):
            for k, v in (res.get(part) or {}).items():
                if str(v).strip() not in ("", "0"):
                    asked.add(k)
    for r in reversed(rungs[1:]):
        if r.get("resource") in asked:
            return r["name"]
    return "gpu" if node_pool == "gpu" and "nvidia.com/gpu" in asked else rungs[0]["name"]


class Live(Driver):
    def __init__(self, args: argparse.Namespace, ladder: dict | None = None):
        super().__init__(Path(args.out) / "ladder" if ladder else Path(args.out), STOP, say)
        self.args = args
        self.ladder = ladder       # the ladder pass: the `ladder:` section it installs
        self.scenarios = [s for s in args.scenarios.split(",") if s]
        for s in self.scenarios:
            if s not in SCENARIOS:
                raise SystemExit(f"unknown scenario {s!r} (known: {', '.join(SCENARIOS)})")
        if ladder:
            self.runs = [(s, "ladder") for s in self.scenarios]
        else:
            self.runs = [(s, role) for s in self.scenarios for role in SCENARIOS[s][2]]
        self.prices = ({r["name"]: r["pricePerSecond"] for r in ladder["rungs"]} if ladder
                       else {"cpu": CPU_PRICE, "gpu": GPU_PRICE})
        self.cordoned: list[str] = []
        self.roles = sorted({role for _, role in self.runs}, key=list(ROLES).index)
        self.install: GaiaInstall | None = None
        self.extra_nodes: list[str] = []
        self.targets = self.cluster.prom_targets_dir / "gaia-eval-live.json"
        self.pods: dict[str, dict] = {}          # "ns/name" -> what we saw of it
        self.services: dict[str, dict] = {}      # "ns/name" -> last Service object
        self.events: dict[str, dict] = {}        # uid -> Event
        self.unrouted_since: dict[str, float] = {}
        self.scaled_down: dict[str, float] = {}  # "ns/revision" -> when the stand-in did it
        self.revisions: dict[str, dict] = {}

    # --- setup --------------------------------------------------------------------------
    def add_gpu_nodes(self) -> None:
        """One GPU per run that may use one, beyond the cluster's own two GPU nodes; for the
        ladder pass, the shared pool instead (add_ladder_pool)."""
        if self.ladder:
            return self.add_ladder_pool()
        need = sum(1 for _, role in self.runs if role != "static_cpu")
        have = len([n for n in self.kubectl.json("get", "nodes", "-l", "gaia.dev/pool=gpu")["items"]])
        template = self.kubectl.json("get", "node", "gpu-node-1")
        for i in range(1, max(0, need - have) + 1):
            name = f"eval-gpu-node-{i}"
            node = {"apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": name, "annotations": template["metadata"]["annotations"],
                                 "labels": {**template["metadata"]["labels"],
                                            "kubernetes.io/hostname": name}},
                    "spec": {"taints": template["spec"].get("taints", [])},
                    "status": {"capacity": template["status"]["capacity"],
                               "allocatable": template["status"]["allocatable"]}}
            node["metadata"]["annotations"] = {k: v for k, v in node["metadata"]["annotations"].items()
                                               if k.startswith(("kwok.", "node.alpha"))}
            self.kubectl("apply", "--server-side", "--field-manager=gaia-eval", "-f", "-",
                         input=json.dumps(node))
            self.extra_nodes.append(name)
        if self.extra_nodes:
            self.wait(f"{len(self.extra_nodes)} extra GPU nodes to be Ready", self.extra_nodes_ready, 90)
            say(f"added {len(self.extra_nodes)} KWOK GPU nodes ({have + len(self.extra_nodes)} in all): "
                "every run finds a free GPU, as each replay run does")

    def add_ladder_pool(self) -> None:
        """The 2-GPU pool of the ladder pass: one GPU time-sliced 7 ways, one whole GPU."""
        gpu_nodes = sorted(n["metadata"]["name"] for n in self.kubectl.json(
            "get", "nodes", "-l", "nvidia.com/gpu.present=true")["items"])
        whole = [n for n in gpu_nodes if n.startswith("gpu-node-")][:1]
        if not whole:
            raise RuntimeError(f"no gpu-node-* to keep as the pool's whole GPU (GPU nodes: {gpu_nodes})")
        for name in gpu_nodes:
            if name not in whole:
                self.kubectl("cordon", name)
                self.cordoned.append(name)
        template = self.kubectl.json("get", "node", whole[0])
        cap = {**template["status"]["capacity"]}
        cap.pop("nvidia.com/gpu", None)
        cap["nvidia.com/gpu.shared"] = str(SLICES)
        labels = {**template["metadata"]["labels"], "kubernetes.io/hostname": SHARED_NODE,
                  "gaia.dev/pool": "gpu-shared", "nvidia.com/gpu.replicas": str(SLICES)}
        labels.pop("nvidia.com/gpu.count", None)
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": SHARED_NODE, "labels": labels,
                             "annotations": {k: v for k, v in template["metadata"]["annotations"].items()
                                             if k.startswith(("kwok.", "node.alpha"))}},
                "spec": {"taints": template["spec"].get("taints", [])},
                "status": {"capacity": cap, "allocatable": dict(cap)}}
        self.kubectl("apply", "--server-side", "--field-manager=gaia-eval", "-f", "-",
                     input=json.dumps(node))
        self.extra_nodes.append(SHARED_NODE)
        self.wait("the time-sliced GPU node to be Ready", self.extra_nodes_ready, 90)
        say(f"ladder pool: {SHARED_NODE} (one GPU time-sliced {SLICES} ways: nvidia.com/gpu.shared: "
            f"{SLICES}) and {whole[0]} (one whole GPU); cordoned for this pass: "
            f"{', '.join(self.cordoned) or 'none'}")

    def extra_nodes_ready(self) -> bool:
        nodes = self.kubectl.json("get", "nodes")["items"]
        ready = {n["metadata"]["name"] for n in nodes
                 if any(c["type"] == "Ready" and c["status"] == "True"
                        for c in n.get("status", {}).get("conditions", []))}
        return all(n in ready for n in self.extra_nodes)

    def install_gaia(self) -> None:
        os.environ["RUST_LOG"] = "info,gaia_autoscaler=debug"   # its per-Service holds
        overrides = {"ladder": self.ladder} if self.ladder else None
        self.install = GaiaInstall(self.cluster, self.out / "gaia", binaries(self.args.debug_build),
                                   autoscaler_overrides=overrides, say=lambda m: say(m))
        self.install.start()
        say("gaia-autoscaler runs with its default settings (10 s cycle, 1 min / 5 min windows, "
            "5 min dwell, 90 s verification)"
            + (", a `ladder:` section (" + " -> ".join(
                f"{r['name']} ${r['pricePerSecond']:.6f}/s" for r in self.ladder["rungs"])
               + "); gaia-webhook --ladder-from the same file" if self.ladder else ""))

    def namespaces(self) -> None:
        for role in self.roles:
            self.fresh_namespace(ROLES[role][0])
        for scenario, role in self.runs:
            ns = ROLES[role][0]
            src = REPO / "examples" / "functions" / SCENARIOS[scenario][0]
            cm = self.kubectl("create", "configmap", f"{scenario}-src", "-n", ns, f"--from-file={src}",
                              "--dry-run=client", "-o", "yaml").stdout
            self.kubectl("apply", "-f", "-", input=cm)

    def start_emulator(self) -> None:
        extra = ["--cpu-placement", "cpu16", "--scrape-interval", self.args.scrape_interval,
                 "--seed", str(self.args.seed)]
        for scenario in self.scenarios:
            extra += ["--workload", f"{scenario}={SCENARIOS[scenario][1]}"]
        super().start_emulator(EMULATOR_PORT, [ROLES[r][0] for r in self.roles], self.targets, *extra)
        say(f"workload emulator up (H100 profile: CPU nodes 16 threads, GPU nodes the H100; "
            f"Prometheus scrapes it every {self.args.scrape_interval})")

    def start_load(self) -> Proc:
        argv = [sys.executable, "-m", "tests.harness.loadgen",
                "--emulator", f"http://{self.cluster.host_ip}:{EMULATOR_PORT}",
                "--log", str(self.req_log), "--duration", str(self.args.timeout),
                "--kubectl", self.env["GAIA_KUBECTL"], "--kubeconfig", self.env["KUBECONFIG"]]
        for scenario, role in self.runs:
            argv += ["--scenario", f"{ROLES[role][0]}/{scenario}={scenario}"]
        if self.args.short:
            argv.append("--short")
        p = Proc(argv, self.out / "loadgen.log", self.cluster.process_env())
        self.procs.append(p)
        return p

    def deploy(self) -> None:
        kn = self.env["GAIA_KN"]
        say(f"kn service create x{len(self.runs)} (each run's client starts when its Service is Ready)")
        running = {}
        for scenario, role in self.runs:
            ns, mode = ROLES[role]
            argv = [kn, "--kubeconfig", self.env["KUBECONFIG"], "service", "create", scenario, "-n", ns,
                    "--image", f"dev.local/gaia/{scenario}", "--mount", f"/app=cm:{scenario}-src",
                    "--annotation", f"gaia.dev/execution-mode={mode}",
                    "--annotation", f"gaia.dev/latency-slo={SLO}", "--wait-timeout", "300"]
            running[(scenario, role)] = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                                         stderr=subprocess.STDOUT, text=True,
                                                         start_new_session=True)
        last = time.monotonic()
        while any(p.poll() is None for p in running.values()):
            if STOP.wait(1):
                for p in running.values():
                    p.terminate()
                raise KeyboardInterrupt
            if time.monotonic() - last >= 10:
                last = time.monotonic()
                waiting = [f"{ROLES[r][0]}/{s}" for (s, r), p in running.items() if p.poll() is None]
                if waiting:
                    say(f"  ... kn waiting for {len(waiting)} Services to be Ready")
        for (scenario, role), p in running.items():
            out = p.stdout.read() if p.stdout else ""
            if p.returncode != 0:
                raise RuntimeError(f"kn service create {scenario} -n {ROLES[role][0]} failed: "
                                   f"{out.strip()[-400:]}")
        for scenario, role in self.runs:
            svc = self.kubectl.json("get", "ksvc", scenario, "-n", ROLES[role][0])
            a = svc["metadata"].get("annotations", {})
            ta = svc["spec"]["template"].get("metadata", {}).get("annotations", {}) or {}
            say(f"{ROLE_LABELS[role]:>31} {scenario:<9}: mode {a.get('gaia.dev/mode')} "
                f"({a.get('gaia.dev/mode-source')}), starts on "
                f"{(ta.get('gaia.dev/placed-for') or a.get('gaia.dev/desired-placement') or '?').upper()}"
                + (f" (rung {ta['gaia.dev/rung']})" if ta.get("gaia.dev/rung") else ""))

    # --- watching -----------------------------------------------------------------------
    def watch_pods(self) -> None:
        now = time.time()
        items = self.kubectl.json("get", "pods", "-A", "-l", "serving.knative.dev/revision")["items"]
        nodes = {n["metadata"]["name"]: n["metadata"].get("labels", {}).get("gaia.dev/pool", "cpu")
                 for n in self.kubectl.json("get", "nodes")["items"]}
        rungs = self.ladder["rungs"] if self.ladder else None
        seen = set()
        for p in items:
            meta = p["metadata"]
            if meta["namespace"] not in {ROLES[r][0] for r in self.roles}:
                continue
            key = f"{meta['namespace']}/{meta['name']}"
            seen.add(key)
            rec = self.pods.setdefault(key, {
                "ns": meta["namespace"], "name": meta["name"],
                "service": meta.get("labels", {}).get("serving.knative.dev/service"),
                "revision": meta.get("labels", {}).get("serving.knative.dev/revision"),
                "created": ts(meta["creationTimestamp"]), "first_seen": now, "node": None,
                "pool": None, "deleted": None, "gone": None})
            node = p["spec"].get("nodeName")
            if node and rec["node"] is None:
                rec["node"], rec["pool"] = node, nodes.get(node, "cpu")
                if rungs:   # the ladder pass: a pod's "pool" is its rung
                    rec["pool"] = rung_of_pod(p, nodes.get(node), rungs)
            rec["last_seen"] = now
            if meta.get("deletionTimestamp") and rec["deleted"] is None:
                rec["deleted"] = ts(meta["deletionTimestamp"])
        for key, rec in self.pods.items():
            if key not in seen and rec["gone"] is None:
                rec["gone"] = now

    def watch_services(self) -> None:
        for role in self.roles:
            ns = ROLES[role][0]
            for svc in self.kubectl.json("get", "ksvc", "-n", ns)["items"]:
                self.services[f"{ns}/{svc['metadata']['name']}"] = svc

    def watch_events(self) -> None:
        for role in self.roles:
            ns = ROLES[role][0]
            for e in self.kubectl.json("get", "events", "-n", ns)["items"]:
                if e.get("reason") in GAIA_REASONS and e["metadata"]["uid"] not in self.events:
                    self.events[e["metadata"]["uid"]] = e
                    name = e.get("involvedObject", {}).get("name", "?")
                    say(f"{ns}/{name}: {e['reason']}: {e.get('message', '')}")

    def scale_to_zero_standin(self) -> None:
        """STAND-IN for Knative's KPA (it has no metrics here): unrouted revisions go to zero
        90 s after their last request."""
        now = time.time()
        last_req: dict[str, float] = {}
        for r in self.requests:
            key = f"{r['ns']}/{r['revision']}"
            last_req[key] = max(last_req.get(key, 0.0), r["t"] + r["latency_s"])
        live_revs = {f"{p['ns']}/{p['revision']}" for p in self.pods.values() if p["gone"] is None}
        for key in sorted(live_revs):
            ns, rev = key.split("/", 1)
            svc = next((s for k, s in self.services.items() if k.startswith(ns + "/")
                        and rev.startswith(s["metadata"]["name"] + "-")), None)
            if svc is None or key in self.scaled_down:
                continue
            routed = {t.get("revisionName") for t in svc.get("status", {}).get("traffic", []) or []
                      if t.get("percent")}
            if rev in routed or not routed:
                self.unrouted_since.pop(key, None)
                continue
            since = self.unrouted_since.setdefault(key, now)
            idle_from = max(since, last_req.get(key, 0.0))
            if now - idle_from >= DRAIN_S:
                self.kubectl("scale", "deployment", f"{rev}-deployment", "-n", ns, "--replicas=0",
                             check=False)
                self.scaled_down[key] = now
                say(f"{key}: no traffic for {DRAIN_S:.0f} s and not routed: scaled to zero "
                    "(stand-in for Knative's KPA)")

    def progress(self) -> None:
        parts = []
        for scenario, role in self.runs:
            ns = ROLES[role][0]
            reqs = [r for r in self.requests if r["ns"] == ns and r["fn"] == scenario]
            last = reqs[-1]["placement"] if reqs else None
            pl = (last or "-").upper()
            parts.append(f"{scenario}/{role.replace('static_', 's').replace('auto_forced', 'forced')} "
                         f"{pl} {len(reqs)}")
        say("requests: " + ", ".join(parts))

    def monitor(self, loadgen: Proc) -> None:
        last_progress = last_events = 0.0
        deadline = time.monotonic() + self.args.timeout
        while not STOP.is_set():
            self.read_requests()
            try:
                self.watch_pods()
                self.watch_services()
                if time.monotonic() - last_events >= 5:
                    self.watch_events()
                    last_events = time.monotonic()
                self.scale_to_zero_standin()
            except Exception as exc:  # noqa: BLE001 - keep watching
                say(f"(could not read the cluster: {exc})")
            if time.monotonic() - last_progress >= 20:
                self.progress()
                last_progress = time.monotonic()
            if not loadgen.alive():
                say("load generator finished every run")
                break
            if time.monotonic() > deadline:
                say(f"--timeout {self.args.timeout:.0f} s reached: stopping the load")
                break
            STOP.wait(2)
        self.read_requests()
        self.watch_pods()
        self.watch_services()
        self.watch_events()
        for role in self.roles:
            ns = ROLES[role][0]
            for rev in self.kubectl.json("get", "revisions", "-n", ns)["items"]:
                self.revisions[f"{ns}/{rev['metadata']['name']}"] = rev

    # --- results ------------------------------------------------------------------------
    def autoscaler_cycles(self) -> list[dict]:
        """(time, ns, name, outcome) per Service per cycle, from the autoscaler's log."""
        if not self.install or not self.install.autoscaler:
            return []
        text = re.sub(r"\x1b\[[0-9;]*m", "", self.install.autoscaler.log.read_text(errors="replace"))
        out = []
        for line in text.splitlines():
            m = re.match(r"^(\S+Z)\s+(?:DEBUG|INFO)\s.*?\b(hold|decided)\b.*?namespace=(\S+) name=(\S+) "
                         r"decision=\"?(\w+)\"?(?:.*?hold=\"?(\w+)\"?)?", line)
            if not m:
                continue
            when, _, ns, name, kind, hold = m.groups()
            out.append({"t": ts(when), "ns": ns, "name": name,
                        "outcome": f"hold:{hold}" if kind == "hold" and hold else kind})
        return out

    def results(self) -> dict:
        cycles = self.autoscaler_cycles()
        virtual = {}
        vpath = REPO / "docs" / "eval" / "virtual-results.json"
        if vpath.exists():
            vres = json.loads(vpath.read_text())
            virtual = {s["name"]: s for s in vres["scenarios"]}
            assumptions = vres["assumptions"]
        else:
            assumptions = {}
        assumptions = json.loads(json.dumps(assumptions))
        assumptions.setdefault("platform", {}).update({
            "scrape_interval_s": parse_duration(self.args.scrape_interval), "drain_s": DRAIN_S,
            "cpu_price_per_s": CPU_PRICE, "gpu_price_per_s": GPU_PRICE})
        assumptions["interval_s"] = 10.0
        scenarios = []
        for scenario in self.scenarios:
            v = virtual.get(scenario, {})
            runs = [self.run_result(scenario, role, cycles) for role in SCENARIOS[scenario][2]
                    if any(r == role for s, r in self.runs if s == scenario)]
            auto = next((r for r in runs if r["role"] == "auto"), None)
            s = {"name": scenario, "title": v.get("title", scenario), "note": v.get("note", ""),
                 "slo_s": SLO_S, "concurrent": v.get("concurrent", False),
                 "think_s": v.get("think_s", 0.0), "workload": SCENARIOS[scenario][1],
                 "requests": self.expected(scenario), "clients": v.get("clients"),
                 "classifier": {"mode": auto["mode"] if auto else None,
                                "source": "the webhook, at kn service create"},
                 "profile": v.get("profile", {}), "runs": runs, "seed_spread": []}
            gpu = next((r for r in runs if r["role"] == "static_gpu"), None)
            if gpu and gpu["revisions"] and gpu["revisions"][0]["serving_from_s"] is not None:
                first = gpu["revisions"][0]
                s["gpu_start_s"] = round(first["warm_s"] - first["created_s"], 3)
            scenarios.append(s)
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=REPO).stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "autoscaler-ext", "contract", "webhook"],
                               capture_output=True, text=True, cwd=REPO).stdout.strip()
        return {"schema": "gaia-eval-live/1",
                "source": head + (" + uncommitted changes" if dirty else ""),
                "profile": "h100.json", "machine": "NVIDIA H100 80GB HBM3, 16 vCPUs",
                "cluster": "the local cluster (hack/cluster.sh): real kube-apiserver, Knative Serving, "
                           "Prometheus, gaia-webhook and gaia-autoscaler; KWOK nodes; emulated data plane",
                "host": f"{os.cpu_count()} cores",
                "short": self.args.short, "seed": self.args.seed,
                "started_unix_s": round(self.started_wall, 1), "assumptions": assumptions,
                "scenarios": scenarios}

    def ladder_results(self) -> dict:
        """The ladder pass, for RESULTS' key `ladder` (schema gaia-eval-live-ladder/1)."""
        cycles = self.autoscaler_cycles()
        scenarios = []
        for scenario in self.scenarios:
            run = self.run_result(scenario, "ladder", cycles)
            scenarios.append({"name": scenario, "requests": self.expected(scenario), "runs": [run]})
        runs = [s["runs"][0]["summary"] for s in scenarios]
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=REPO).stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "autoscaler-ext", "contract",
                                "webhook", "policy"], capture_output=True, text=True, cwd=REPO).stdout.strip()
        return {"schema": "gaia-eval-live-ladder/1",
                "source": head + (" + uncommitted changes" if dirty else ""),
                "host": f"{os.cpu_count()} cores", "short": self.args.short, "seed": self.args.seed,
                "started_unix_s": round(self.started_wall, 1),
                "command": "python3 -m tests.eval.live " + " ".join(sys.argv[1:]),
                "ladder": self.ladder,
                "pool": {"shared_node": SHARED_NODE, "slices": SLICES,
                         "whole_gpus": 1, "cordoned": self.cordoned,
                         "note": "one GPU time-sliced 7 ways (nvidia.com/gpu.shared: 7) and one "
                                 "whole GPU, shared by the four runs (KWOK nodes)"},
                "scrape_interval_s": parse_duration(self.args.scrape_interval), "drain_s": DRAIN_S,
                "slo_s": SLO_S,
                "total": {"cost_usd": sum(m["cost_usd"] for m in runs),
                          "slo_violation_s": round(sum(m["slo_violation_s"] for m in runs), 3),
                          "moves": sum(m["moves"] for m in runs),
                          "complete": all(m["complete"] for m in runs)},
                "scenarios": scenarios}

    def run_result(self, scenario: str, role: str, cycles: list[dict]) -> dict:
        ns, mode_asked = ROLES[role]
        svc = self.services.get(f"{ns}/{scenario}", {})
        ann = svc.get("metadata", {}).get("annotations", {}) or {}
        reqs = sorted((r for r in self.requests if r["ns"] == ns and r["fn"] == scenario),
                      key=lambda r: r["t"])
        t0 = reqs[0]["t"] if reqs else self.started_wall
        end = max((r["t"] + r["latency_s"] for r in reqs), default=t0) - t0
        # revisions, oldest first
        names = sorted({k.split("/", 1)[1] for k in self.revisions if k.startswith(ns + "/")
                        and self.revisions[k]["metadata"].get("labels", {}).get(
                            "serving.knative.dev/service") == scenario})
        pods = [p for p in self.pods.values() if p["ns"] == ns and p["service"] == scenario
                and p["created"] - t0 <= end]
        revisions = []
        index = {}
        # revisions created after the run's last answer (an idle demotion once its load
        # stopped, while other runs went on) are not part of the run
        names = [n for n in names
                 if ts(self.revisions[f"{ns}/{n}"]["metadata"]["creationTimestamp"]) - t0 <= end]
        for i, name in enumerate(names):
            rev = self.revisions[f"{ns}/{name}"]
            index[name] = i
            rp = [p for p in pods if p["revision"] == name]
            placement = next((p["pool"] for p in rp if p["pool"]), None) or "cpu"
            mine = [r for r in reqs if r["revision"] == name]
            created = ts(rev["metadata"]["creationTimestamp"]) - t0
            ends = [self.pod_end(p) - t0 for p in rp]
            first = mine[0] if mine else None
            revisions.append({
                "id": i, "name": name, "placement": placement,
                "hw": {"gpu": "gpu", "gpu-shared": "gpu_shared"}.get(placement, "cpu16"),
                "created_s": round(created, 3),
                "serving_from_s": round(first["t"] - t0, 3) if first else None,
                "warm_s": round(first["t"] - t0 + first["latency_s"] - (first.get("service_s") or 0.0), 3)
                if first else None,
                "serving_until_s": round(max(r["t"] + r["latency_s"] for r in mine) - t0, 3) if mine else None,
                "deleted_s": round(min(ends), 3) if ends and all(e < end for e in ends) else None,
                "held_until_s": round(min(max(ends, default=end), end), 3),
                "requests": len(mine), "pods": len(rp),
                "scaled_by_standin": f"{ns}/{name}" in self.scaled_down,
            })
        # node-seconds: every pod from its creation (not before the run's first request) to its
        # deletion (not after the run's last answer)
        # (the ladder pass: per rung, a pod on the shared rung holding one slice)
        held = {k: 0.0 for k in self.prices}
        for p in pods:
            if not p["pool"]:
                continue
            a, b = max(p["created"], t0), min(self.pod_end(p), t0 + end)
            held[p["pool"] if p["pool"] in held else "cpu"] += max(0.0, b - a)
        requests = []
        for r in reqs:
            requests.append({"client": 0, "sent_s": round(r["t"] - t0, 3),
                             "received_s": round(r["t"] - t0 + r["latency_s"], 3),
                             "latency_s": r["latency_s"], "queue_proxy_s": r.get("service_s"),
                             "placement": r.get("placement"), "revision": index.get(r["revision"]),
                             "cold": bool(r.get("cold_wait_s"))})
        lat = [r["latency_s"] for r in requests]
        bad = [(r["sent_s"], r["received_s"]) for r in requests if r["latency_s"] > SLO_S]
        deploy_wait = [r for r in requests if r["cold"] and r["revision"] == 0]
        first_violation = next((r["received_s"] for r in requests
                                if r["latency_s"] > SLO_S and r not in deploy_wait), None)
        # moves: Gaia's Events, timed by the autoscaler's "decided" log line when there is one
        my_cycles = [c for c in cycles if c["ns"] == ns and c["name"] == scenario]
        decided = [c for c in my_cycles if not c["outcome"].startswith("hold")]
        moves = []
        rung = revisions[0]["placement"] if revisions else "cpu"
        for e in sorted((e for e in self.events.values()
                         if e.get("involvedObject", {}).get("name") == scenario
                         and e["metadata"]["namespace"] == ns
                         and (e.get("reason") in MOVE_REASONS or e.get("reason") in LADDER_MOVE_REASONS)),
                        key=lambda e: ts(e.get("eventTime") or e.get("firstTimestamp")
                                         or e["metadata"]["creationTimestamp"])):
            if e["reason"] in LADDER_MOVE_REASONS or (self.ladder and e["reason"] == "RolledBack"):
                # the rung moved to ends the rule's text: "... → gpu-shared; cost per 1,000 ..."
                to_m = re.search(r"→ ([A-Za-z0-9][A-Za-z0-9._-]*)", e.get("message", ""))
                kind = LADDER_MOVE_REASONS.get(e["reason"], "rollback")
                frm, to = rung, (to_m.group(1).rstrip(".,;") if to_m else None)
                rung = to or rung
            else:
                kind, frm, to = MOVE_REASONS[e["reason"]]
            when = ts(e.get("eventTime") or e.get("firstTimestamp") or e["metadata"]["creationTimestamp"])
            match = [c["t"] for c in decided if c["outcome"] == kind and abs(c["t"] - when) < 5]
            moves.append({"t_s": round((match[0] if match else when) - t0, 1), "kind": kind,
                          "from": frm, "to": to, "note": e.get("message", "")})
        # the runs go side by side: what the autoscaler did after this run's last answer
        # (an idle demotion once its load stopped) is not part of the run
        after = [m for m in moves if m["t_s"] > end]
        moves = [m for m in moves if m["t_s"] <= end]
        gpu_revs = [rv for rv in revisions if rv["placement"] == "gpu" and rv["serving_from_s"] is not None]
        on_gpu_from_start = bool(revisions) and revisions[0]["placement"] == "gpu"
        if first_violation is None:
            ttg = None
        elif on_gpu_from_start:
            ttg = 0.0
        else:
            later = [rv["serving_from_s"] for rv in gpu_revs if rv["serving_from_s"] >= 0]
            ttg = round(later[0] - first_violation, 3) if later else None
        promotes = [m for m in moves if m["kind"] == "promote"]
        summary = {
            "requests": len(requests), "total_s": round(end, 3),
            "first_response_s": requests[0]["received_s"] if requests else None,
            "mean_latency_s": sum(lat) / len(lat) if lat else None,
            "p95_latency_s": nearest_rank(lat, 95),
            "slo_violation_s": round(union(bad), 3),
            "cpu_node_s": round(held["cpu"], 3), "gpu_node_s": round(held.get("gpu", 0.0), 3),
            "cost_usd": sum(held[k] * self.prices[k] for k in held),
            "moves": len(moves), "first_violation_s": first_violation, "time_to_gpu_s": ttg,
            "gpu_served_from_start": on_gpu_from_start,
            "promoted_at_s": promotes[0]["t_s"] if promotes else None,
            "requests_on_gpu": sum(1 for r in requests if r["placement"] == "gpu"),
            "complete": len(requests) == self.expected(scenario),
        }
        if self.ladder:
            summary["rung_s"] = {k: round(v, 3) for k, v in held.items()}
            summary["cost_by_rung_usd"] = {k: v * self.prices[k] for k, v in held.items()}
            # the rungs that served, in order (a rung that held a pod but served nothing: not held)
            order: list[str] = []
            for rv in revisions:
                if rv["requests"] and (not order or order[-1] != rv["placement"]):
                    order.append(rv["placement"])
            summary["rungs_held"] = order
            summary["requests_by_rung"] = {k: sum(1 for r in requests if r["placement"] ==
                                                  {"gpu-shared": "gpu_shared"}.get(k, k))
                                           for k in held}
        return {"group": "headline", "role": role, "variant": "default",
                "description": ROLE_LABELS[role], "label": ROLE_LABELS[role],
                "mode": ann.get("gaia.dev/mode", mode_asked), "mode_asked": mode_asked,
                "mode_source": ann.get("gaia.dev/mode-source"), "rationale": ann.get("gaia.dev/rationale"),
                "namespace": ns, "t0_unix_s": round(t0, 3), "cpu_hw": "cpu16", "seed": self.args.seed,
                "summary": summary,
                "moves": moves, "moves_after_run": after,
                "decisions": spans([c for c in my_cycles if c["t"] - t0 <= end], t0, revisions, moves),
                "revisions": revisions, "requests": requests}

    def expected(self, scenario: str) -> int:
        full, short = loadgen.SCENARIOS[scenario][:2]
        return short if self.args.short else full

    def pod_end(self, p: dict) -> float:
        """When a pod stopped holding its node: deleted, gone from the API, or still there."""
        for t in (p["deleted"], p["gone"]):
            if t is not None:
                return t
        return time.time()

    # --- the end ------------------------------------------------------------------------
    def cleanup(self) -> None:
        for p in reversed(self.procs):
            p.stop(grace=10)
        self.targets.unlink(missing_ok=True)
        if self.args.keep:
            say("--keep: leaving the namespaces, nodes and the Gaia install")
            if self.install:
                for p in self.install.procs:
                    p.stop()
            return
        say("deleting the namespaces, the extra nodes, and uninstalling Gaia")
        self.delete_namespaces([ROLES[role][0] for role in self.roles], 120)
        for name in self.extra_nodes:
            self.kubectl("delete", "node", name, "--wait=false", check=False)
        for name in self.cordoned:
            self.kubectl("uncordon", name, check=False)
        if self.install:
            self.install.stop()


def union(intervals: list[tuple[float, float]]) -> float:
    total, cur = 0.0, None
    for a, b in sorted(intervals):
        if cur is None or a > cur[1]:
            if cur:
                total += cur[1] - cur[0]
            cur = [a, b]
        else:
            cur[1] = max(cur[1], b)
    if cur:
        total += cur[1] - cur[0]
    return total


def spans(cycles: list[dict], t0: float, revisions: list[dict], moves: list[dict]) -> list[dict]:
    """Consecutive autoscaler cycles with the same outcome, as the replay reports them."""
    placement0 = revisions[0]["placement"] if revisions else "cpu"
    out: list[dict] = []
    for c in cycles:
        t = round(c["t"] - t0, 1)
        placement = placement0
        for mv in moves:
            if mv["t_s"] < t and mv["to"]:
                placement = mv["to"]
        if out and out[-1]["outcome"] == c["outcome"] and out[-1]["placement"] == placement:
            out[-1]["to_s"], out[-1]["cycles"] = t, out[-1]["cycles"] + 1
        else:
            out.append({"from_s": t, "to_s": t, "cycles": 1, "outcome": c["outcome"],
                        "placement": placement})
    return out


def scrape_interval(text: str) -> str:
    """--scrape-interval as given (Prometheus reads it), once it reads as a duration."""
    parse_duration(text)
    return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated (default: all)")
    ap.add_argument("--short", action="store_true", help="fewer requests (loadgen --short)")
    ap.add_argument("--results", default=str(REPO / "docs" / "eval" / "live-results.json"))
    ap.add_argument("--out", default=str(REPO / "target" / "eval-live"), help="logs and raw data")
    ap.add_argument("--timeout", type=float, default=1500.0, help="seconds of load at most")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scrape-interval", default=SCRAPE_INTERVAL, type=scrape_interval,
                    help="Prometheus scrape interval of the emulated pods, a duration (e.g. 15s)")
    ap.add_argument("--debug-build", action="store_true", help="use target/debug binaries")
    ap.add_argument("--keep", action="store_true", help="leave namespaces, nodes and Gaia installed")
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--ladder", action="store_true",
                       help="then the ladder pass: Gaia reinstalled with the three-rung ladder, each "
                            "scenario once more (auto) on a pool of one time-sliced and one whole GPU")
    which.add_argument("--ladder-only", action="store_true",
                       help="only the ladder pass, added to the existing --results (its runs kept)")
    args = ap.parse_args()

    def on_signal(signum, _frame):
        if not STOP.is_set():
            say(f"{signal.Signals(signum).name}: stopping (cleaning up)")
        STOP.set()
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    results_path = Path(args.results)
    previous = None
    if args.ladder_only:
        if not results_path.exists():
            raise SystemExit(f"--ladder-only adds the ladder runs to {results_path}, which does not "
                             "exist: run without --ladder-only (or with --ladder) first")
        previous = json.loads(results_path.read_text())
        if previous.get("schema") != "gaia-eval-live/1":
            raise SystemExit(f"{results_path}: not a gaia-eval-live/1 results file")
    elif results_path.exists():
        try:
            previous = json.loads(results_path.read_text())
        except ValueError:
            previous = None
    ladder = None
    if args.ladder or args.ladder_only:
        ladder = ladder_config()   # before anything is installed: a build error stops here

    results = None
    rc = 0
    if not args.ladder_only:
        rc, results = run_pass(Live(args))
    if ladder and rc == 0 and not STOP.is_set():
        rc, ladder_res = run_pass(Live(args, ladder))
        if ladder_res is not None:
            results = results or previous
            results["ladder"] = ladder_res
    elif ladder and not STOP.is_set():
        say("the two-placement pass did not complete: the ladder pass is not run")
    elif results is not None and previous and previous.get("ladder"):
        # a two-placement run alone keeps the ladder pass of an earlier invocation (its own
        # started_unix_s and source say which)
        results["ladder"] = previous["ladder"]
    if results is not None and rc in (0, 1):
        results_path.parent.mkdir(parents=True, exist_ok=True)
        results_path.write_text(json.dumps(results, indent=1) + "\n")
        say(f"results: {results_path}")
    return rc


def run_pass(live: Live) -> tuple[int, dict | None]:
    """One install of Gaia, its runs, its clean-up: (exit status, results or None)."""
    live.started_wall = time.time()
    rc = 0
    results = None
    try:
        live.add_gpu_nodes()
        live.install_gaia()
        live.namespaces()
        live.start_emulator()
        loadgen = live.start_load()
        live.started_wall = time.time()
        live.deploy()
        live.monitor(loadgen)
        if STOP.is_set():
            raise KeyboardInterrupt
        results = live.ladder_results() if live.ladder else live.results()
        (live.out / "pods.json").write_text(json.dumps(live.pods, indent=1))
        (live.out / "events.json").write_text(json.dumps(list(live.events.values()), indent=1))
        for s in results["scenarios"]:
            for r in s["runs"]:
                m = r["summary"]
                rungs = (f", rungs {' -> '.join(m['rungs_held'])}, shared-GPU slice "
                         f"{m['rung_s'].get('gpu-shared', 0.0):6.1f} s" if "rungs_held" in m else "")
                say(f"{s['name']:<9} {r['label']:<32} {m['requests']:>4} req "
                    f"{'' if m['complete'] else '(INCOMPLETE) '}total {m['total_s']:7.1f} s, "
                    f"p95 {m['p95_latency_s'] or 0:6.3f} s, CPU {m['cpu_node_s']:6.1f} s, "
                    f"GPU {m['gpu_node_s']:6.1f} s{rungs}, ${m['cost_usd']:.5f}, "
                    f"SLO violated {m['slo_violation_s']:.1f} s, {m['moves']} move(s)")
        say(f"raw data and logs: {live.out}")
        if not all(r["summary"]["complete"] for s in results["scenarios"] for r in s["runs"]):
            say("some runs did not complete every request (see above)")
            rc = 1
    except KeyboardInterrupt:
        rc = 130
    except Exception as exc:  # noqa: BLE001 - report, clean up
        say(f"live evaluation failed: {exc}")
        rc = 1
    finally:
        live.cleanup()
    return rc, results


if __name__ == "__main__":
    sys.exit(main())
