"""The shipped manifests (`kubectl apply -k manifests/`) on the local cluster, with RBAC for real.

The manifests' Deployments cannot run containers here (KWOK pods are fake), so the same
binaries run as processes inside the cluster's network namespace, authenticated with tokens
of the ServiceAccounts the manifests define: every API call they make goes through the RBAC
the manifests grant. The Deployments are scaled to zero and the webhook Service gets one more
EndpointSlice pointing at the process, so the apiserver reaches the webhook through the
shipped MutatingWebhookConfiguration's Service reference, not a URL.
"""
from __future__ import annotations

import base64
import json
import ssl
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from tests.harness.cluster_env import Cluster
from tests.harness.doctor import doctor_json
from tests.harness.install import NS, GaiaInstall
from tests.harness.kubectl import Kubectl
from tests.harness.paths import binaries
from tests.harness.proc import run
from tests.harness.wait import wait_until

WEBHOOK_SA = f"system:serviceaccount:{NS}:gaia-webhook"
AUTOSCALER_SA = f"system:serviceaccount:{NS}:gaia-autoscaler"
WEBHOOK_PORT = 9443  # Knative's own webhook has 8443 in the namespace


def served_certificate(cluster: Cluster, port: int) -> str:
    out = run(cluster.in_netns("sh", "-c",
              f"openssl s_client -connect 127.0.0.1:{port} -servername gaia-webhook.{NS}.svc "
              "</dev/null 2>/dev/null | openssl x509 -outform PEM"), timeout=20).stdout
    return out.strip()


@pytest.fixture(scope="module")
def installed(cluster: Cluster):
    """`kubectl apply -k manifests/` and the two components running under their own accounts
    (tests/harness/install.py), with two webhook replicas started together: they must settle
    on one certificate."""
    run(["cargo", "build", "--quiet", "--locked", "--bin", "gaia-webhook", "--bin", "gaia-autoscaler"],
        timeout=1800)
    install = GaiaInstall(cluster, Path(tempfile.mkdtemp(prefix="gaia-install-")), binaries(debug=True),
                          webhook_port=WEBHOOK_PORT, webhook_replicas=2)
    try:
        install.start()
        yield {"replicas": install.webhooks, "autoscaler": install.autoscaler, "docs": install.docs,
               "work": install.workdir}
    finally:
        install.stop(wait_namespace=False)


def can_i(kubectl: Kubectl, who: str, verb: str, resource: str, namespace: str | None = None) -> bool:
    args = ["auth", "can-i", verb, resource, "--as", who]
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    return kubectl(*args, check=False).stdout.strip() == "yes"


WEBHOOK_RIGHTS = [
    # (verb, resource, namespace, expected)
    ("get", "configmaps", "default", True),
    ("list", "configmaps", "default", False),
    ("update", "configmaps", "default", False),
    ("watch", "namespaces", None, True),
    ("update", "namespaces", None, False),
    # pull secrets and ServiceAccounts, for images (docs/image-source.md)
    ("get", "secrets", "default", True),
    ("list", "secrets", "default", False),
    ("get", "serviceaccounts", "default", True),
    ("get", "secrets/gaia-webhook-tls", NS, True),
    ("update", "secrets/gaia-webhook-tls", NS, True),
    ("update", "secrets/other", NS, False),
    ("list", "secrets", NS, False),
    ("create", "secrets", NS, True),
    ("create", "secrets", "default", False),
    ("patch", "mutatingwebhookconfigurations.admissionregistration.k8s.io/gaia-webhook", None, True),
    ("patch", "mutatingwebhookconfigurations.admissionregistration.k8s.io/other", None, False),
    ("delete", "mutatingwebhookconfigurations.admissionregistration.k8s.io/gaia-webhook", None, False),
    # a verdict that arrives after the review (an image read after the deadline)
    ("patch", "services.serving.knative.dev", "default", True),
    ("update", "services.serving.knative.dev", "default", False),
    ("delete", "services.serving.knative.dev", "default", False),
    ("create", "pods", "default", False),
]

AUTOSCALER_RIGHTS = [
    ("watch", "services.serving.knative.dev", None, True),
    ("patch", "services.serving.knative.dev", "default", True),
    ("delete", "services.serving.knative.dev", "default", False),
    ("create", "services.serving.knative.dev", "default", False),
    ("list", "nodes", None, True),
    ("patch", "nodes", None, False),
    ("list", "pods", None, True),
    ("delete", "pods", "default", False),
    ("create", "events.events.k8s.io", "default", True),
    ("get", "secrets", NS, False),
    ("get", "configmaps", "default", False),
    ("update", "leases.coordination.k8s.io/gaia-autoscaler", NS, True),
    ("update", "leases.coordination.k8s.io/other", NS, False),
    ("update", "leases.coordination.k8s.io/gaia-autoscaler", "default", False),
    ("create", "deployments.apps", NS, False),
    # the preflight reads these by name, and nothing more of them
    ("get", "configmaps/config-features", "knative-serving", True),
    ("get", "configmaps/config-observability", "knative-serving", True),
    ("get", "configmaps/config-deployment", "knative-serving", True),
    ("get", "configmaps/config-other", "knative-serving", False),
    ("list", "configmaps", "knative-serving", False),
    ("get", "namespaces/knative-serving", None, True),
    ("list", "namespaces", None, False),
    ("get", "customresourcedefinitions.apiextensions.k8s.io/services.serving.knative.dev", None, True),
    ("list", "customresourcedefinitions.apiextensions.k8s.io", None, False),
    ("get", "mutatingwebhookconfigurations.admissionregistration.k8s.io/gaia-webhook", None, True),
    ("patch", "mutatingwebhookconfigurations.admissionregistration.k8s.io/gaia-webhook", None, False),
]


@pytest.mark.parametrize("verb,resource,namespace,expected", WEBHOOK_RIGHTS)
def test_webhook_service_account_has_exactly_its_rights(installed, kubectl, verb, resource, namespace, expected):
    assert can_i(kubectl, WEBHOOK_SA, verb, resource, namespace) is expected


@pytest.mark.parametrize("verb,resource,namespace,expected", AUTOSCALER_RIGHTS)
def test_autoscaler_service_account_has_exactly_its_rights(installed, kubectl, verb, resource, namespace, expected):
    assert can_i(kubectl, AUTOSCALER_SA, verb, resource, namespace) is expected


def test_replicas_agree_on_one_self_managed_certificate(installed, cluster, kubectl):
    secret = kubectl.json("get", "secret", "gaia-webhook-tls", "-n", NS)
    stored = base64.b64decode(secret["data"]["tls.crt"]).decode().strip()
    for port in (WEBHOOK_PORT, WEBHOOK_PORT + 1):
        assert served_certificate(cluster, port) == stored, f"replica on {port} serves another certificate"
    mwc = kubectl.json("get", "mutatingwebhookconfiguration", "gaia-webhook")
    bundle = base64.b64decode(mwc["webhooks"][0]["clientConfig"]["caBundle"]).decode()
    assert base64.b64decode(secret["data"]["ca.crt"]).decode().strip() in bundle
    # the stored certificate verifies against the caBundle for the Service's DNS name
    ctx = ssl.create_default_context(cadata=bundle)
    assert ctx.get_ca_certs(), "caBundle holds no CA"


def test_kn_service_create_goes_through_the_installed_webhook(installed, kubectl, kn, namespace):
    kn("service", "create", "installed", "-n", namespace, "--image", "dev.local/gaia/idle:1",
       "--annotation", "gaia.dev/execution-mode=auto",
       "--annotation", "gaia.dev/source=import time\n\ndef handle(req):\n    time.sleep(2)\n",
       "--scale-min", "1", "--wait-timeout", "180")
    svc = kubectl.json("get", "ksvc", "installed", "-n", namespace)
    a = svc["metadata"]["annotations"]
    assert (a["gaia.dev/mode"], a["gaia.dev/mode-source"]) == ("cpu", "classifier"), a
    assert svc["spec"]["template"]["metadata"]["annotations"]["gaia.dev/placed-for"] == "cpu"
    # the classification came from the process behind the Service reference
    assert "patched" in installed["replicas"][0].log.read_text() + installed["replicas"][1].log.read_text()


def test_autoscaler_runs_under_its_account_and_leads(installed, kubectl):
    assert installed["autoscaler"].alive(), installed["autoscaler"].tail()
    lease = wait_until(lambda: kubectl.json("get", "lease", "gaia-autoscaler", "-n", NS),
                       timeout=60, desc="the autoscaler's Lease")
    assert lease["spec"]["holderIdentity"], lease
    time.sleep(2)
    log = installed["autoscaler"].log.read_text()
    assert "forbidden" not in log.lower(), log[-3000:]


def test_placement_profiles_of_both_components_agree(installed):
    docs = installed["docs"]
    configs = {d["metadata"]["name"]: yaml.safe_load(d["data"]["config.yaml"])
               for d in docs if d["kind"] == "ConfigMap"}
    assert configs["gaia-webhook-config"]["placement"] == configs["gaia-autoscaler-config"]["placement"]


def doctor(cluster: Cluster, *args: str) -> dict:
    """`kn-gaia doctor -o json` as the cluster's admin: check id -> the check."""
    rc, out = doctor_json(cluster, *args)
    report = {c["id"]: c for c in out["checks"]}
    failed = [c for c in report.values() if c["status"] == "fail"]
    assert (rc == 1) == bool(failed), (rc, failed)
    return report


def test_doctor_finds_each_broken_part_and_passes_once_it_is_fixed(installed, cluster, kubectl):
    """`kn gaia doctor` on the installed cluster; then, in turn, Knative's feature flags off,
    metrics export off, Prometheus unreachable, no node for the GPU placement and a wrong
    caBundle: each fails its own check with a fix, and passes again once undone."""
    prom = ["--prometheus", cluster.prometheus_url]  # the ConfigMap's URL is an in-cluster name
    ready = ["knative-features", "metrics-exported", "prometheus", "gpu-nodes", "webhook"]
    report = doctor(cluster, *prom)
    assert all(report[c]["status"] == "pass" for c in ready), report
    # built from source, Knative's namespace says "devel": a warning, not a failure
    assert report["knative"]["status"] == "warn", report["knative"]

    def broken(check: str, *args: str) -> dict:
        r = doctor(cluster, *(args or prom))
        assert r[check]["status"] == "fail", r[check]
        assert r[check]["fix"], r[check]
        return r[check]

    def patch_cm(name: str, data: dict) -> None:
        kubectl("patch", "configmap", name, "-n", "knative-serving", "--type", "merge",
                "-p", json.dumps({"data": data}))

    features = kubectl.json("get", "configmap", "config-features", "-n", "knative-serving")["data"]
    try:
        patch_cm("config-features", {"kubernetes.podspec-tolerations": "disabled"})
        c = broken("knative-features")
        assert "kubernetes.podspec-tolerations" in c["summary"] and "manifests/knative-features" in c["fix"]
    finally:
        patch_cm("config-features", {"kubernetes.podspec-tolerations": features["kubernetes.podspec-tolerations"]})
    obs = kubectl.json("get", "configmap", "config-observability", "-n", "knative-serving")["data"]
    try:
        patch_cm("config-observability", {"request-metrics-protocol": "none"})
        assert "request-metrics-protocol" in broken("metrics-exported")["fix"]
    finally:
        patch_cm("config-observability", {"request-metrics-protocol": obs["request-metrics-protocol"]})

    assert "prometheus.url" in broken("prometheus", "--prometheus", "http://127.0.0.1:9")["fix"]

    cm = kubectl.json("get", "configmap", "gaia-autoscaler-config", "-n", NS)
    config = yaml.safe_load(cm["data"]["config.yaml"])
    config["placement"]["gpu"]["nodeSelector"] = {"example.com/accelerator": "none-here"}
    moved = {"data": {"config.yaml": yaml.safe_dump(config)}}
    try:
        kubectl("patch", "configmap", "gaia-autoscaler-config", "-n", NS, "--type", "merge",
                "-p", json.dumps(moved))
        assert "example.com/accelerator=none-here" in broken("gpu-nodes")["summary"]
    finally:
        kubectl("patch", "configmap", "gaia-autoscaler-config", "-n", NS, "--type", "merge",
                "-p", json.dumps({"data": cm["data"]}))

    mwc = kubectl.json("get", "mutatingwebhookconfiguration", "gaia-webhook")
    good = mwc["webhooks"][0]["clientConfig"]["caBundle"]
    other = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIBOTHER==\n-----END CERTIFICATE-----\n").decode()
    patch = [{"op": "replace", "path": "/webhooks/0/clientConfig/caBundle", "value": other}]
    try:
        kubectl("patch", "mutatingwebhookconfiguration", "gaia-webhook", "--type", "json",
                "-p", json.dumps(patch))
        c = broken("webhook")
        assert "does not hold the CA" in c["summary"] and "rollout restart" in c["fix"], c
    finally:
        patch[0]["value"] = good
        kubectl("patch", "mutatingwebhookconfiguration", "gaia-webhook", "--type", "json",
                "-p", json.dumps(patch))

    report = doctor(cluster, *prom)
    assert all(report[c]["status"] == "pass" for c in ready), report
