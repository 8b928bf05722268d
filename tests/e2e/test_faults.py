"""Faults on the running cluster: what gaia-autoscaler and gaia-webhook do when Prometheus, the
apiserver, the leader or the webhook's certificate go away, under concurrent user edits and
under load. Each test asserts what a user relies on: no move from missing or stale data, no
duplicate move, no lost user edit, one leader, no failed or unclassified create.

The cluster's components are stopped and started again with ``hack/cluster.sh stop|start|
restart NAME`` (tests/harness/components.py). The KWOK pods serve nothing: request and CPU
metrics come from the harness's stand-in (tests/harness/knative_metrics_standin.py), as in
test_autoscaler.py. Table of the tests and their figures: docs/reliability.md, "Faults".
"""
from __future__ import annotations

import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.harness.api_client import ApiClient, ApiError
from tests.harness.autoscaler_run import (FAST, SLOW, AutoscalerProc, MetricsStandin,
                                          autoscaler_binary, autoscaler_config, create_on_cpu,
                                          desired_placement, events, ksvc, load, moves,
                                          ready_revision, revisions, rfc3339_to_unix)
from tests.harness.cluster_env import Cluster
from tests.harness.components import component
from tests.harness.kubectl import Kubectl
from tests.harness.managed_webhook import ManagedTlsWebhook, inline_ksvc
from tests.harness.proc import CommandError, Proc
from tests.harness.review_load import summarize
from tests.harness.wait import wait_until
from tests.harness.webhook_process import WebhookProcess

STANDIN_PORT = 19527
METRICS_PORT = 18110
NAME = "matmul"
KEYS = 20


@pytest.fixture(scope="module")
def autoscaler_bin() -> Path:
    return autoscaler_binary()


@pytest.fixture
def workdir(request: pytest.FixtureRequest) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"gaia-faults-{request.node.name[:30]}-"))


@pytest.fixture
def standin(cluster: Cluster, namespace: str, workdir: Path):
    s = MetricsStandin(cluster, workdir, STANDIN_PORT, namespace)
    s.scrape(namespace, NAME)
    yield s
    s.stop()


@pytest.fixture
def procs():
    """Processes a test starts; stopped (and continued first, if stopped) at the end."""
    started: list[AutoscalerProc] = []
    yield started
    for p in started:
        if p.proc.alive():
            try:
                os.kill(p.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        p.stop()


def placement_is(kubectl: Kubectl, namespace: str, want: str, *replicas: AutoscalerProc):
    def check():
        for r in replicas:
            assert r.proc.alive(), f"{r.name} exited:\n{r.proc.tail(6000)}"
        return desired_placement(kubectl, namespace, NAME) == want
    return check


# -- Prometheus ------------------------------------------------------------------------------

def test_prometheus_killed_mid_cycle_holds_then_resumes(
        cluster: Cluster, kubectl: Kubectl, namespace: str, autoscaler_bin: Path, workdir: Path,
        standin: MetricsStandin, procs: list):
    """Prometheus is killed (SIGKILL, at an arbitrary point of a 2 s cycle: some of a cycle's
    seven queries answered, the rest refused) while a slow, CPU-bound Service builds up the
    streak that promotes it. While it is down every cycle holds with `metrics_unavailable`
    (counted on /metrics) and nothing moves; the streak does not survive the gap, so once
    Prometheus is back the promotion needs severeCycles fresh observations, then happens."""
    severe = 5
    r1, pod1 = create_on_cpu(kubectl, namespace, NAME)
    standin.set(load(namespace, r1, pod1, SLOW))
    auto = AutoscalerProc(cluster, autoscaler_bin, workdir, "autoscaler", autoscaler_config(
        cluster, namespace, METRICS_PORT,
        {"policy": {"promote": {"severeCycles": severe, "sustainCycles": severe}}}))
    procs.append(auto)
    # the streak is building: two severe cycles seen, at most one more before the kill lands
    wait_until(lambda: auto.holds("sustaining") >= 2, timeout=90, desc="a streak of severe cycles",
               interval=0.5)
    component(cluster, "stop", "prometheus", "--kill")
    killed = time.monotonic()
    try:
        assert desired_placement(kubectl, namespace, NAME) != "gpu", "moved before Prometheus was killed"
        held = auto.holds("metrics_unavailable")
        wait_until(lambda: auto.holds("metrics_unavailable") >= held + 3, timeout=30,
                   desc="cycles held for metrics_unavailable", interval=0.5)
        m = auto.metrics()
        assert m.get("gaia_autoscaler_prometheus_query_errors_total", 0) > 0, m
        assert desired_placement(kubectl, namespace, NAME) != "gpu"
        assert not events(kubectl, namespace, NAME, "PromotedToGpu")
        sustaining_at_gap = auto.holds("sustaining")
        promotes_at_gap = auto.decisions("promote")
    finally:
        down_for = time.monotonic() - killed
        component(cluster, "start", "prometheus")
    back = time.monotonic()
    wait_until(placement_is(kubectl, namespace, "gpu", auto), timeout=90,
               desc="promotion once Prometheus is back", interval=0.5)
    promoted_after = time.monotonic() - back
    # resumed from scratch: severeCycles - 1 fresh sustaining cycles before the move
    assert auto.holds("sustaining") - sustaining_at_gap >= severe - 1, auto.metrics()
    assert promotes_at_gap == 0 and auto.decisions("promote") == 1, auto.metrics()
    ev = wait_until(lambda: events(kubectl, namespace, NAME, "PromotedToGpu"), timeout=30,
                    desc="PromotedToGpu Event")
    assert len(ev) == 1 and f"for {severe} cycles" in ev[0]["message"], ev
    print(f"Prometheus down {down_for:.1f} s; promoted {promoted_after:.1f} s after it was ready again")


# -- the apiserver ---------------------------------------------------------------------------

def test_apiserver_restarted_while_the_autoscaler_acts(
        cluster: Cluster, kubectl: Kubectl, namespace: str, autoscaler_bin: Path, workdir: Path,
        standin: MetricsStandin, procs: list):
    """The apiserver is restarted (SIGTERM, started again) just as the autoscaler is due to
    promote a Service. Its patches fail while the apiserver is away (act errors counted), it
    decides again once it is back, and the move happens once: one new Revision, one Event.
    User edits made just before and just after the restart are all there at the end."""
    r1, pod1 = create_on_cpu(kubectl, namespace, NAME)
    standin.set(load(namespace, r1, pod1, SLOW))
    kubectl("label", "ksvc", NAME, "-n", namespace, "team=before-restart")
    # a Lease that outlives the restart, so the same replica acts before and after it
    auto = AutoscalerProc(cluster, autoscaler_bin, workdir, "autoscaler", autoscaler_config(
        cluster, namespace, METRICS_PORT, {
            "policy": {"promote": {"severeCycles": 3}},
            "leaderElection": {"leaseDuration": "60s", "renewDeadline": "50s"}}))
    procs.append(auto)
    # first severe cycle seen: the move is due two cycles (4 s) later, during the restart
    wait_until(lambda: auto.holds("sustaining") >= 1, timeout=90, desc="a severe cycle",
               interval=0.3)
    took = component(cluster, "restart", "apiserver")
    # a user edit right after: races with the autoscaler's retry
    for attempt in range(10):
        try:
            kubectl("annotate", "ksvc", NAME, "-n", namespace, "owner=after-restart")
            break
        except CommandError:
            time.sleep(0.5)
    wait_until(placement_is(kubectl, namespace, "gpu", auto), timeout=90,
               desc="promotion after the restart", interval=0.5)
    r2 = wait_until(lambda: ready_revision(kubectl, namespace, NAME, {r1}), desc="GPU revision ready")
    # no second move follows: a few more cycles
    time.sleep(8)
    m = auto.metrics()
    assert m.get("gaia_autoscaler_act_errors_total", 0) >= 1, f"no act failed during the restart: {m}"
    assert revisions(kubectl, namespace, NAME) == [r1, r2], revisions(kubectl, namespace, NAME)
    ev = events(kubectl, namespace, NAME, "PromotedToGpu")
    assert len(ev) == 1 and len(moves(kubectl, namespace, NAME)) == 1, ev
    svc = ksvc(kubectl, namespace, NAME)
    assert svc["metadata"]["labels"].get("team") == "before-restart", svc["metadata"]
    assert svc["metadata"]["annotations"].get("owner") == "after-restart", svc["metadata"]
    limits = svc["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits.get("nvidia.com/gpu") == "1" and limits.get("cpu") in ("1", "1000m"), limits
    print(f"apiserver restart took {took:.1f} s; promotes decided "
          f"{auto.decisions('promote'):.0f}, act errors {m['gaia_autoscaler_act_errors_total']:.0f}")


# -- a storm of user edits ---------------------------------------------------------------------

def ksvc_path(namespace: str) -> str:
    return f"/apis/serving.knative.dev/v1/namespaces/{namespace}/services/{NAME}"


def replace_with_retry(api: ApiClient, namespace: str, edit) -> int:
    """Read-modify-write as `kubectl edit` does (PUT with the resourceVersion read), retried
    on 409 as a user would; returns the number of 409s met."""
    conflicts = 0
    while True:
        obj = api.request("GET", ksvc_path(namespace))
        edit(obj)
        try:
            api.request("PUT", ksvc_path(namespace), obj)
            return conflicts
        except ApiError as e:
            if e.status != 409:
                raise
            conflicts += 1


def test_a_storm_of_user_edits_during_a_move_loses_nothing(
        cluster: Cluster, kubectl: Kubectl, namespace: str, autoscaler_bin: Path, workdir: Path,
        standin: MetricsStandin, procs: list):
    """Four writers edit the Service as fast as the apiserver answers while the autoscaler
    promotes it: merge patches of labels and of annotations (what `kubectl label|annotate`
    send), and read-modify-write replaces of labels and of annotations (`kubectl edit`'s way:
    they meet 409s and retry), each on a keep-alive connection of its own. The
    autoscaler's guarded patch fails on every edit that lands between its read and its write;
    it re-reads and recomputes. At the end every user edit is there, the Service is on the
    GPU with the user's env and CPU limit, and it moved once. (Template edits are left out of
    the storm: each is a new Revision, and the autoscaler rightly holds while one rolls out.)"""
    r1, pod1 = create_on_cpu(kubectl, namespace, NAME, env={"USER_SETTING": "kept"})
    standin.set(load(namespace, r1, pod1, SLOW))
    auto = AutoscalerProc(cluster, autoscaler_bin, workdir, "autoscaler", autoscaler_config(
        cluster, namespace, METRICS_PORT, {"policy": {"promote": {"severeCycles": 3}}}))
    procs.append(auto)
    wait_until(lambda: auto.holds("sustaining") >= 1, timeout=90, desc="a severe cycle",
               interval=0.3)

    stop = threading.Event()
    kinds = {"label": "storm-l{}", "annotation": "storm.example/a{}",
             "rmw-label": "storm-r{}", "rmw-annotation": "storm.example/r{}"}
    done: dict[str, dict[str, str]] = {k: {} for k in kinds}   # the last value each wrote
    writes = [0]
    user_conflicts = [0]
    errors: list[BaseException] = []

    def writer(kind: str):
        api = ApiClient(cluster)  # a connection each, as fast as the apiserver answers
        i = 0
        try:
            while not stop.is_set():
                # KEYS keys per writer, rewritten in turn: the object stays small
                key, value = kinds[kind].format(i % KEYS), f"v{i}"
                field = "labels" if "label" in kind else "annotations"
                if kind.startswith("rmw-"):
                    user_conflicts[0] += replace_with_retry(api, namespace, lambda o, k=key, v=value, f=field:
                                                            o["metadata"].setdefault(f, {}).__setitem__(k, v))
                else:
                    api.merge_patch(ksvc_path(namespace), {"metadata": {field: {key: value}}})
                done[kind][key] = value
                i += 1
                writes[0] += 1
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(k,), daemon=True) for k in kinds]
    for t in threads:
        t.start()
    try:
        wait_until(placement_is(kubectl, namespace, "gpu", auto), timeout=120,
                   desc="promotion during the storm", interval=0.5)
        time.sleep(4)  # the storm goes on after the move
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not errors, errors
    r2 = wait_until(lambda: ready_revision(kubectl, namespace, NAME, {r1}), timeout=120,
                    desc="the GPU revision ready")
    time.sleep(6)  # a few more cycles: no second move
    svc = ksvc(kubectl, namespace, NAME)
    meta = svc["metadata"]
    present = {**meta.get("labels", {}), **meta.get("annotations", {})}
    lost = {k: (v, present.get(k)) for last in done.values() for k, v in last.items() if present.get(k) != v}
    assert not lost, f"user edits lost (wanted, found): {lost}"
    container = svc["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"].get("nvidia.com/gpu") == "1", container
    assert container["resources"]["limits"].get("cpu") in ("1", "1000m"), container
    assert {"name": "USER_SETTING", "value": "kept"} in container.get("env", []), container
    assert svc["spec"]["template"]["spec"].get("nodeSelector") == {"nvidia.com/gpu.present": "true"}
    assert revisions(kubectl, namespace, NAME) == [r1, r2]
    assert len(moves(kubectl, namespace, NAME)) == 1, moves(kubectl, namespace, NAME)
    rereads = sum(1 for line in auto.log_lines()
                  if line.get("level") == "WARN" and line.get("fields", {}).get("code") in (409, 422))
    print(f"{writes[0]} user edits by 4 writers, "
          f"{user_conflicts[0]} user 409s retried, {rereads} autoscaler patches refused and retried, "
          f"{auto.metric('gaia_autoscaler_act_errors_total'):.0f} cycles gave up; 1 move")
    assert rereads >= 1, "the storm never made the autoscaler's patch fail: the test tests nothing"


# -- the leader stopped ------------------------------------------------------------------------

def cycle_times(replica: AutoscalerProc) -> list[float]:
    """When the replica finished a cycle as leader (Unix seconds, from its JSON log)."""
    return [rfc3339_to_unix(line["timestamp"]) for line in replica.log_lines()
            if line.get("fields", {}).get("message") == "cycle"]


def test_a_stopped_leader_is_replaced_and_does_not_come_back_as_a_second_leader(
        cluster: Cluster, kubectl: Kubectl, namespace: str, autoscaler_bin: Path, workdir: Path,
        standin: MetricsStandin, procs: list):
    """The leader is frozen (SIGSTOP: a network cut, as seen by the apiserver; the Lease is
    not released). The standby takes the Lease within the lease duration and acts: the
    Service that turned slow meanwhile is promoted, the Event reported by the standby, which
    holds the Lease. The old leader is then continued (SIGCONT): its watches and memory are
    stale and it still believes it leads; it must not run a single cycle as leader."""
    r1, pod1 = create_on_cpu(kubectl, namespace, NAME)
    standin.set(load(namespace, r1, pod1, FAST))
    a = AutoscalerProc(cluster, autoscaler_bin, workdir, "replica-a",
                       autoscaler_config(cluster, namespace, METRICS_PORT + 1))
    procs.append(a)
    wait_until(lambda: a.leading() == 1, timeout=60, desc="replica-a leads", interval=0.5)
    b = AutoscalerProc(cluster, autoscaler_bin, workdir, "replica-b",
                       autoscaler_config(cluster, namespace, METRICS_PORT + 2))
    procs.append(b)
    wait_until(lambda: b.leading() == 0, timeout=60, desc="replica-b up as standby", interval=0.5)
    wait_until(lambda: a.holds("within_slo") >= 1, timeout=60, desc="replica-a deciding")
    id_a, id_b = a.identity(), b.identity()
    lease = lambda: kubectl.json("get", "lease", "gaia-autoscaler-e2e", "-n", namespace)["spec"]  # noqa: E731
    assert lease()["holderIdentity"] == id_a

    # frozen just after a cycle, so that no cycle of its is half done when it is continued
    n = len(cycle_times(a))
    wait_until(lambda: len(cycle_times(a)) > n, timeout=10, desc="a cycle of replica-a", interval=0.05)
    os.kill(a.pid, signal.SIGSTOP)
    stopped = time.monotonic()
    standin.set(load(namespace, r1, pod1, SLOW))
    wait_until(lambda: b.leading() == 1, timeout=30, desc="replica-b takes over", interval=0.25)
    took = time.monotonic() - stopped
    # leaseDuration (6 s) on the standby's clock + one retry period (1 s) + one 2 s cycle
    # to show it on the gauge + slack for the loaded machine
    assert took <= 6 + 1 + 2 + 3, f"takeover took {took:.1f} s"
    assert lease()["holderIdentity"] == id_b
    wait_until(placement_is(kubectl, namespace, "gpu", b), timeout=60,
               desc="the new leader promotes", interval=0.5)
    acted = time.monotonic() - stopped
    ev = wait_until(lambda: events(kubectl, namespace, NAME, "PromotedToGpu"), timeout=30,
                    desc="PromotedToGpu Event")
    assert [e.get("reportingInstance") for e in ev] == [id_b], ev

    continued = time.time()
    os.kill(a.pid, signal.SIGCONT)
    samples = []
    for _ in range(16):
        samples.append((a.leading(), b.leading()))
        time.sleep(0.5)
    assert all(s == (0, 1) for s in samples[2:]), samples
    late = [t for t in cycle_times(a) if t > continued]
    assert not late, f"replica-a ran {len(late)} cycles as leader after it was continued"
    assert lease()["holderIdentity"] == id_b
    assert len(moves(kubectl, namespace, NAME)) == 1, moves(kubectl, namespace, NAME)
    assert all(e.get("reportingInstance") == id_b for e in moves(kubectl, namespace, NAME))
    print(f"standby took over {took:.1f} s after the leader was stopped, promoted after {acted:.1f} s; "
          f"the continued leader's gauge: {[s[0] for s in samples]}")


# -- the webhook's certificate Secret ---------------------------------------------------------

def test_the_webhook_certificate_secret_deleted_is_reissued_without_a_failed_create(
        cluster: Cluster, kubectl: Kubectl, namespace: str):
    """gaia-webhook manages its own certificate (--tls-secret). The Secret is deleted while
    Services are being created: a new CA and certificate are issued into a new Secret, the
    MutatingWebhookConfiguration's caBundle follows, the webhook serves the new certificate,
    and every create meanwhile succeeded and was classified (a review the apiserver could not
    make would, with failurePolicy Ignore, store the Service unclassified)."""
    hook = ManagedTlsWebhook(cluster, kubectl, namespace, port=18453).start()
    try:
        first = hook.secret()
        bundle0 = hook.ca_bundle()
        stop = threading.Event()
        created: list[str] = []
        failures: list[str] = []

        def creator(worker: int):
            i = 0
            while not stop.is_set():
                name = f"c{worker}-{i}"
                r = kubectl("create", "-f", "-", input=inline_ksvc(namespace, name), check=False)
                (created if r.returncode == 0 else failures).append(name if r.returncode == 0
                                                                     else f"{name}: {r.stderr}")
                i += 1

        threads = [threading.Thread(target=creator, args=(w,), daemon=True) for w in range(2)]
        for t in threads:
            t.start()
        try:
            time.sleep(2)
            kubectl("delete", "secret", hook.secret_name, "-n", namespace)
            deleted = time.monotonic()
            second = wait_until(lambda: (s := hook.secret(check=False)) and
                                s["metadata"]["uid"] != first["metadata"]["uid"] and s,
                                timeout=30, desc="a new certificate Secret", interval=0.2)
            reissued = time.monotonic() - deleted
            assert second["data"]["tls.crt"] != first["data"]["tls.crt"]
            wait_until(lambda: hook.ca_bundle() != bundle0, timeout=30, desc="caBundle updated",
                       interval=0.2)
            assert hook.new_ca_in_bundle(second), "the new CA is not in the caBundle"
            wait_until(lambda: hook.serves(second), timeout=30,
                       desc="the webhook serving the new certificate", interval=0.2)
            served = time.monotonic() - deleted
            time.sleep(3)  # creates go on after the switch
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)
        assert not failures, failures
        unclassified = [n for n in created if "gaia.dev/mode" not in
                        (ksvc(kubectl, namespace, n)["metadata"].get("annotations") or {})]
        assert not unclassified, f"{len(unclassified)} of {len(created)} created unclassified: {unclassified}"
        print(f"{len(created)} Services created, all classified; new Secret {reissued:.1f} s and "
              f"new certificate served {served:.1f} s after the deletion")
    finally:
        hook.stop()


# -- the webhook under load -------------------------------------------------------------------

USUAL_REVIEWS_PER_S = 5     # a busy cluster's Service creates/updates, all namespaces together
LOAD_SECONDS = float(os.environ.get("GAIA_FAULTS_LOAD_SECONDS", "60"))


def test_the_webhook_under_ten_times_its_usual_review_rate(
        cluster: Cluster, kubectl: Kubectl, kn, namespace: str):
    """AdmissionReviews at 10x the usual rate (50/s, one in ten with new source to parse) for
    a minute, straight to the webhook, while Services are created through the apiserver with
    kn and kubectl: no create fails, every one is classified, and the p99 of the load's
    reviews is printed (docs/webhook.md records it)."""
    hook = WebhookProcess(cluster, kubectl, f"gaia-webhook-load-{namespace[-5:]}", 18454)
    hook.start()
    try:
        out = Path(tempfile.mkdtemp(prefix="gaia-review-load-")) / "load.json"
        rate = 10 * USUAL_REVIEWS_PER_S
        gen = Proc(cluster.in_netns(sys.executable, "-m", "tests.harness.review_load",
                                    "--url", f"https://127.0.0.1:{hook.port}/mutate",
                                    "--rate", str(rate), "--seconds", str(LOAD_SECONDS),
                                    "--distinct", "0.1", "--out", str(out)),
                   out.with_suffix(".log"), cluster.process_env())
        t0 = time.monotonic()
        created, failures, i = [], [], 0
        while time.monotonic() - t0 < LOAD_SECONDS - 5:
            name = f"load-{i}"
            if i % 4 == 0:
                r = kn("service", "create", name, "-n", namespace, "--image", f"dev.local/gaia/{name}:1",
                       "--annotation", "gaia.dev/execution-mode=auto",
                       "--annotation", "gaia.dev/source=import time\ntime.sleep(1)\n",
                       "--wait-timeout", "60", check=False)
            else:
                r = kubectl("create", "-f", "-", input=inline_ksvc(namespace, name), check=False)
            (created if r.returncode == 0 else failures).append(name if r.returncode == 0
                                                                 else f"{name}: {r.stderr[-500:]}")
            i += 1
            time.sleep(random.uniform(0.5, 1.5))
        gen.proc.wait(timeout=LOAD_SECONDS + 60)
        assert gen.proc.returncode == 0, gen.tail()
        result = json.loads(out.read_text())
        assert not failures, failures
        unclassified = [n for n in created if "gaia.dev/mode" not in
                        (ksvc(kubectl, namespace, n)["metadata"].get("annotations") or {})]
        assert not unclassified, unclassified
        assert result["errors"] == 0, result
        assert result["sent"] >= 0.9 * rate * LOAD_SECONDS, result
        print(f"{LOAD_SECONDS:.0f} s at {rate}/s: {summarize(result)}; "
              f"{len(created)} Services created through the apiserver meanwhile, all classified")
    finally:
        hook.unregister()
        hook.stop()
