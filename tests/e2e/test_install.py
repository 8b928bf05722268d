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
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from conftest import CARGO_TARGET, REPO, Cluster, Kn, Kubectl, run, wait_until

NS = "gaia-system"
WEBHOOK_SA = f"system:serviceaccount:{NS}:gaia-webhook"
AUTOSCALER_SA = f"system:serviceaccount:{NS}:gaia-autoscaler"
WEBHOOK_PORT = 9443  # Knative's own webhook has 8443 in the namespace


def rendered(kubectl: Kubectl, path: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(kubectl("kustomize", str(REPO / path)).stdout) if d]


def sa_kubeconfig(cluster: Cluster, kubectl: Kubectl, sa: str, directory: Path) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount, with a token the API issues."""
    token = kubectl("create", "token", sa, "-n", NS, "--duration", "2h").stdout.strip()
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    c = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "local", "cluster": c}],
        "users": [{"name": sa, "user": {"token": token}}],
        "contexts": [{"name": sa, "context": {"cluster": "local", "user": sa}}],
        "current-context": sa,
    }
    path = directory / f"{sa}.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def config_file(docs: list[dict], name: str, directory: Path, **overrides) -> Path:
    cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name)
    data = yaml.safe_load(cm["data"]["config.yaml"])
    data.update(overrides)
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class Process:
    def __init__(self, argv: list[str], log: Path, env: dict):
        self.log = log
        with open(log, "w") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)

    def alive(self) -> bool:
        assert self.proc.poll() is None, f"process exited:\n{self.log.read_text()}"
        return True

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def served_certificate(cluster: Cluster, port: int) -> str:
    out = run(cluster.in_netns("sh", "-c",
              f"openssl s_client -connect 127.0.0.1:{port} -servername gaia-webhook.{NS}.svc "
              "</dev/null 2>/dev/null | openssl x509 -outform PEM"), timeout=20).stdout
    return out.strip()


@pytest.fixture(scope="module")
def installed(cluster: Cluster, kubectl: Kubectl):
    """`kubectl apply -k manifests/` and the two components running under their own accounts."""
    run(["cargo", "build", "--quiet", "--locked", "--bin", "gaia-webhook", "--bin", "gaia-autoscaler"],
        timeout=1800)
    kubectl("apply", "-k", str(REPO / "manifests" / "knative-features"))
    kubectl("apply", "-k", str(REPO / "manifests"))
    # nothing can run the images here: the processes below stand in for the pods
    kubectl("scale", "deployment", "gaia-webhook", "gaia-autoscaler", "-n", NS, "--replicas=0")
    kubectl("delete", "secret", "gaia-webhook-tls", "-n", NS, "--ignore-not-found")
    docs = rendered(kubectl, "manifests")
    work = Path(tempfile.mkdtemp(prefix="gaia-install-"))
    env = cluster.process_env()
    target = CARGO_TARGET / "debug"

    webhook_cfg = config_file(docs, "gaia-webhook-config", work)
    webhook_kc = sa_kubeconfig(cluster, kubectl, "gaia-webhook", work)
    webhook_args = ["--config", str(webhook_cfg), "--tls-secret", f"{NS}/gaia-webhook-tls",
                    "--service", "gaia-webhook", "--webhook-configuration", "gaia-webhook"]
    procs: list[Process] = []
    try:
        # two replicas started together: they must settle on one certificate
        replicas = [
            Process(cluster.in_netns("env", f"KUBECONFIG={webhook_kc}", str(target / "gaia-webhook"),
                                     "--listen", f"0.0.0.0:{port}", *webhook_args),
                    work / f"webhook-{port}.log", env)
            for port in (WEBHOOK_PORT, WEBHOOK_PORT + 1)
        ]
        procs.extend(replicas)

        autoscaler_cfg = config_file(docs, "gaia-autoscaler-config", work)
        autoscaler_kc = sa_kubeconfig(cluster, kubectl, "gaia-autoscaler", work)
        autoscaler = Process(
            cluster.in_netns("env", f"KUBECONFIG={autoscaler_kc}", "POD_NAMESPACE=gaia-system",
                             "POD_NAME=gaia-autoscaler-e2e", str(target / "gaia-autoscaler"),
                             "--config", str(autoscaler_cfg), "--prometheus-url", cluster.prometheus_url,
                             "--listen", "127.0.0.1:18080"),
            work / "autoscaler.log", env)
        procs.append(autoscaler)

        # the webhook Service's endpoint: the process, at the namespace's non-loopback address
        slice_ = {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "gaia-webhook-e2e-process", "namespace": NS,
                         "labels": {"kubernetes.io/service-name": "gaia-webhook",
                                    "endpointslice.kubernetes.io/managed-by": "gaia-e2e"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [cluster.ns_ip], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": WEBHOOK_PORT, "protocol": "TCP"}],
        }
        kubectl.apply(json.dumps(slice_))
        for r in replicas:
            wait_until(lambda r=r: r.alive() and run(cluster.in_netns(
                "curl", "-skf", f"https://127.0.0.1:{WEBHOOK_PORT + replicas.index(r)}/readyz"),
                check=False, timeout=10).returncode == 0, timeout=90, desc="webhook replica ready")
        yield {"replicas": replicas, "autoscaler": autoscaler, "docs": docs, "work": work}
    finally:
        for p in procs:
            p.stop()
    kubectl("delete", "endpointslice", "gaia-webhook-e2e-process", "-n", NS, "--ignore-not-found")
    kubectl("delete", "-k", str(REPO / "manifests"), "--ignore-not-found", "--wait=false", check=False)


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
    ("get", "secrets", "default", False),
    ("get", "secrets/gaia-webhook-tls", NS, True),
    ("update", "secrets/gaia-webhook-tls", NS, True),
    ("get", "secrets/other", NS, False),
    ("list", "secrets", NS, False),
    ("create", "secrets", NS, True),
    ("create", "secrets", "default", False),
    ("patch", "mutatingwebhookconfigurations.admissionregistration.k8s.io/gaia-webhook", None, True),
    ("patch", "mutatingwebhookconfigurations.admissionregistration.k8s.io/other", None, False),
    ("delete", "mutatingwebhookconfigurations.admissionregistration.k8s.io/gaia-webhook", None, False),
    ("patch", "services.serving.knative.dev", "default", False),
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
    assert svc["spec"]["template"]["metadata"]["annotations"]["gaia.dev/placement"] == "cpu"
    # the classification came from the process behind the Service reference
    assert "patched" in installed["replicas"][0].log.read_text() + installed["replicas"][1].log.read_text()


def test_autoscaler_runs_under_its_account_and_leads(installed, kubectl):
    installed["autoscaler"].alive()
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
