"""``ManagedTlsWebhook``: gaia-webhook managing its own certificate (``--tls-secret``) in a
namespace of the test's, reached by the apiserver through a Service reference, as the shipped
manifests do it (a selectorless Service whose EndpointSlice points at the process in the
cluster's network namespace). Admin kubeconfig; the manifests' RBAC is tested in
test_install.py."""
from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path

from tests.harness.cluster_env import Cluster
from tests.harness.kubectl import Kubectl
from tests.harness.paths import CARGO_TARGET
from tests.harness.proc import Proc, run
from tests.harness.wait import wait_until

PEM_END = "-----END CERTIFICATE-----"


def first_pem(bundle: str) -> str:
    return bundle[:bundle.index(PEM_END) + len(PEM_END)].strip()


def inline_ksvc(namespace: str, name: str, source: str = "import time\ntime.sleep(1)\n") -> str:
    """A Service opted in with its function inline (what `kn service create --annotation
    gaia.dev/source=...` stores), for kubectl create."""
    return json.dumps({
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace,
                     "annotations": {"gaia.dev/execution-mode": "auto", "gaia.dev/source": source}},
        "spec": {"template": {"spec": {"containers": [{"image": f"dev.local/gaia/{name}:1"}]}}},
    })


class ManagedTlsWebhook:
    def __init__(self, cluster: Cluster, kubectl: Kubectl, namespace: str, port: int,
                 check_seconds: int = 1):
        self.cluster, self.kubectl, self.namespace, self.port = cluster, kubectl, namespace, port
        self.service = "gaia-webhook-faults"
        self.secret_name = "gaia-webhook-faults-tls"
        self.configuration = f"gaia-webhook-faults-{namespace}"
        self.check_seconds = check_seconds
        self.dir = Path(tempfile.mkdtemp(prefix="gaia-managed-webhook-"))
        self.proc: Proc | None = None

    def start(self) -> "ManagedTlsWebhook":
        run(["cargo", "build", "--quiet", "--locked", "--bin", "gaia-webhook"], timeout=1200)
        binary = CARGO_TARGET / "debug" / "gaia-webhook"
        ns = self.namespace
        objects = [
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": self.service, "namespace": ns},
             "spec": {"ports": [{"name": "https", "port": 443, "targetPort": self.port}]}},
            {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
             "metadata": {"name": f"{self.service}-process", "namespace": ns,
                          "labels": {"kubernetes.io/service-name": self.service,
                                     "endpointslice.kubernetes.io/managed-by": "gaia-harness"}},
             "addressType": "IPv4",
             "endpoints": [{"addresses": [self.cluster.ns_ip], "conditions": {"ready": True}}],
             "ports": [{"name": "https", "port": self.port, "protocol": "TCP"}]},
            {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
             "metadata": {"name": self.configuration},
             "webhooks": [{
                 "name": "faults.gaia.dev",
                 "clientConfig": {"service": {"namespace": ns, "name": self.service,
                                              "path": "/mutate", "port": 443}},
                 "rules": [{"apiGroups": ["serving.knative.dev"], "apiVersions": ["v1"],
                            "resources": ["services"], "operations": ["CREATE", "UPDATE"]}],
                 "failurePolicy": "Ignore", "sideEffects": "None", "timeoutSeconds": 5,
                 "reinvocationPolicy": "IfNeeded", "admissionReviewVersions": ["v1"],
                 "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
             }]},
        ]
        for obj in objects:
            self.kubectl.apply(json.dumps(obj))
        self.proc = Proc(self.cluster.in_netns(
            str(binary), "--listen", f"0.0.0.0:{self.port}",
            "--tls-secret", f"{ns}/{self.secret_name}", "--service", self.service,
            "--webhook-configuration", self.configuration,
            "--cert-check-seconds", str(self.check_seconds)),
            self.dir / "webhook.log", self.cluster.process_env())
        wait_until(self._ready, timeout=90, desc="managed-TLS gaia-webhook /readyz", interval=0.5)
        wait_until(self.ca_bundle, timeout=30, desc="caBundle set by the webhook", interval=0.5)
        return self

    def _ready(self) -> bool:
        assert self.proc and self.proc.alive(), f"webhook exited:\n{self.proc.tail()}"
        probe = run(self.cluster.in_netns("curl", "-skf", f"https://127.0.0.1:{self.port}/readyz"),
                    check=False, timeout=10)
        return probe.returncode == 0

    def secret(self, check: bool = True) -> dict | None:
        r = self.kubectl("get", "secret", self.secret_name, "-n", self.namespace, "-o", "json",
                         check=check)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def ca_bundle(self) -> str:
        config = self.kubectl.json("get", "mutatingwebhookconfiguration", self.configuration)
        return config["webhooks"][0]["clientConfig"].get("caBundle", "")

    def new_ca_in_bundle(self, secret: dict) -> bool:
        ca = first_pem(base64.b64decode(secret["data"]["ca.crt"]).decode())
        return ca in base64.b64decode(self.ca_bundle()).decode()

    def serves(self, secret: dict) -> bool:
        """The webhook's TLS handshake verifies against the Secret's (new) CA alone, for the
        Service's DNS name the apiserver uses."""
        ca = self.dir / f"ca-{secret['metadata']['uid']}.crt"
        ca.write_text(first_pem(base64.b64decode(secret["data"]["ca.crt"]).decode()) + "\n")
        host = f"{self.service}.{self.namespace}.svc"
        probe = run(self.cluster.in_netns(
            "curl", "-sf", "-m", "3", "--cacert", str(ca), "--resolve", f"{host}:{self.port}:127.0.0.1",
            f"https://{host}:{self.port}/readyz"), check=False, timeout=10)
        return probe.returncode == 0

    def stop(self) -> None:
        self.kubectl("delete", "mutatingwebhookconfiguration", self.configuration,
                     "--ignore-not-found", check=False)
        if self.proc:
            self.proc.stop(grace=20)
