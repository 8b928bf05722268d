"""The metric generation chosen from the cluster's Knative (issue 15), on the local cluster.

With `prometheus.generation: auto` (the default) the autoscaler's preflight reads the release
from the knative-serving namespace's `app.kubernetes.io/version` label (Knative's release
manifests stamp it; this cluster, built from source, says `devel`) and, when that is no
release, probes which request series Prometheus holds. The queue-proxy series come from the
Knative metrics STAND-IN (the pods are KWOK fakes); they are Knative 1.21's
(`kn_serving_invocation_duration_seconds`).

* `devel`: opentelemetry, chosen from the series; the Service's series are read (within_slo).
* the label says 1.20.0: kn-queueproxy, chosen from the release, said in the log and by
  `kn gaia doctor -o json`, whose knative check warns that Prometheus holds other series; that
  release records latencies under 1 s as 0 s, so the 500 ms Service is held
  (`latency_unreliable`).
* the label says 1.21.2: opentelemetry from the release, and the series are read again.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from tests.harness.autoscaler_run import (FAST, AutoscalerProc, MetricsStandin, autoscaler_binary,
                                          autoscaler_config, create_on_cpu, load)
from tests.harness.cluster_env import Cluster
from tests.harness.doctor import doctor_json
from tests.harness.kubectl import Kubectl
from tests.harness.proc import run
from tests.harness.wait import wait_until

STANDIN_PORT = 19543
METRICS_PORT = 18123
LABEL = "app.kubernetes.io/version"


def chosen(autoscaler: AutoscalerProc) -> list[dict]:
    return [line["fields"] for line in autoscaler.log_lines()
            if line.get("fields", {}).get("message") == "metric generation chosen"]


def doctor(cluster: Cluster) -> dict:
    return doctor_json(cluster, "--prometheus", cluster.prometheus_url)[1]


def test_the_generation_follows_the_knative_release_else_the_series(
        cluster: Cluster, kubectl: Kubectl, namespace: str):
    binary = autoscaler_binary()
    run(["cargo", "build", "--quiet", "--locked", "--bin", "kn-gaia"], timeout=1200)
    workdir = Path(tempfile.mkdtemp(prefix="gaia-generation-e2e-"))
    targets = cluster.prom_targets_dir / f"gaia-generation-e2e-{namespace}.json"
    ns = kubectl.json("get", "namespace", "knative-serving")
    before = (ns["metadata"].get("labels") or {}).get(LABEL)
    standin = autoscaler = None

    def label(value: str | None) -> None:
        kubectl("label", "namespace", "knative-serving", f"{LABEL}-" if value is None
                else f"{LABEL}={value}", "--overwrite")

    try:
        standin = MetricsStandin(cluster, workdir, STANDIN_PORT, namespace)
        standin.scrape(namespace, "matmul", revisions=1)
        r1, pod = create_on_cpu(kubectl, namespace, "matmul")
        standin.set(load(namespace, r1, pod, FAST))
        label("devel")
        config = autoscaler_config(cluster, namespace, METRICS_PORT, {
            "prometheus": {"generation": "auto"},
            "preflight": {"interval": "3s", "failingInterval": "3s"},
        }, lease="gaia-autoscaler-generation-e2e")
        autoscaler = AutoscalerProc(cluster, binary, workdir, "autoscaler-generation", config)

        # devel: no release; the series decide (the stand-in's need a few scrapes first)
        first = wait_until(lambda: [c for c in chosen(autoscaler) if "release unknown" in c["why"]
                                    and "series found" in c["why"]] or None,
                           timeout=60, desc="generation chosen from the series", interval=1)
        assert first[-1]["generation"] == "opentelemetry", first
        assert "kn_serving_invocation_duration_seconds_count" in first[-1]["why"], first
        wait_until(lambda: autoscaler.holds("within_slo") >= 2, timeout=60,
                   desc="the Service's series read (within_slo)", interval=1)

        # a 1.20.0 release: its queue-proxies export kn_queueproxy_app_duration_seconds
        label("1.20.0")
        c = wait_until(lambda: [c for c in chosen(autoscaler) if c["generation"] == "kn-queueproxy"] or None,
                       timeout=30, desc="kn-queueproxy chosen from the release", interval=1)
        assert "Knative Serving 1.20.0" in c[-1]["why"] and LABEL in c[-1]["why"], c
        report = doctor(cluster)
        metrics = report["metrics"]
        assert (metrics["generation"], metrics["chosenBy"], metrics["knativeVersion"]) == \
            ("kn-queueproxy", "release", "1.20.0"), metrics
        assert metrics["seriesFound"] == ["opentelemetry"], metrics
        # the scraped layout, read off the series (the revision on target_info)
        assert (metrics["labels"], metrics["labelsChosenBy"]) == ("target_info", "series"), metrics
        knative = {k["id"]: k for k in report["checks"]}["knative"]
        assert knative["status"] == "warn" and "holds only opentelemetry series" in knative["summary"], knative
        # and 1.20.0 records latencies under 1 s as 0 s: the 500 ms objective is held
        held = autoscaler.holds("latency_unreliable")
        wait_until(lambda: autoscaler.holds("latency_unreliable") > held, timeout=30,
                   desc="the sub-second objective held on 1.20.0 (latency_unreliable)", interval=1)

        # 1.21.2: opentelemetry again, from the release, and the series are read
        label("1.21.2")
        wait_until(lambda: chosen(autoscaler)[-1]["generation"] == "opentelemetry"
                   and "Knative Serving 1.21.2" in chosen(autoscaler)[-1]["why"],
                   timeout=30, desc="opentelemetry chosen from 1.21.2", interval=1)
        within = autoscaler.holds("within_slo")
        wait_until(lambda: autoscaler.holds("within_slo") > within, timeout=30,
                   desc="series read again", interval=1)
        metrics = doctor(cluster)["metrics"]
        assert (metrics["generation"], metrics["chosenBy"]) == ("opentelemetry", "release"), metrics
    finally:
        label(before)
        targets.unlink(missing_ok=True)
        if autoscaler is not None:
            autoscaler.stop()
        if standin is not None:
            standin.proc.stop(grace=10)
