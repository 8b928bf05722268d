"""``WebhookProcess``: a gaia-webhook process in the cluster's network namespace, registered with
the apiserver by a MutatingWebhookConfiguration that points at it by URL (127.0.0.1), with a
self-signed certificate and the cluster's admin kubeconfig: the webhook without manifests/
(tests/harness/install.py installs it from the manifests, under their RBAC)."""
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


class WebhookProcess:
    """A gaia-webhook process in the cluster's netns, registered with the apiserver."""

    def __init__(self, cluster: Cluster, kubectl: Kubectl, name: str, port: int,
                 config_yaml: str | None = None, extra_args: tuple[str, ...] = ()):
        self.cluster, self.kubectl, self.name, self.port = cluster, kubectl, name, port
        self.config_yaml = config_yaml
        self.extra_args = extra_args
        self.dir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        self.log = self.dir / "webhook.log"
        self.proc: Proc | None = None

    def start(self) -> "WebhookProcess":
        run(["cargo", "build", "--quiet", "--locked", "--bin", "gaia-webhook"], timeout=1200)
        binary = CARGO_TARGET / "debug" / "gaia-webhook"
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
             "-keyout", str(self.dir / "tls.key"), "-out", str(self.dir / "tls.crt")])
        extra: list[str] = []
        if self.config_yaml is not None:
            (self.dir / "config.yaml").write_text(self.config_yaml)
            extra = ["--config", str(self.dir / "config.yaml")]
        self.proc = Proc(self.cluster.in_netns(str(binary), "--listen", f"127.0.0.1:{self.port}",
                                               "--tls-cert", str(self.dir / "tls.crt"),
                                               "--tls-key", str(self.dir / "tls.key"), *extra,
                                               *self.extra_args),
                         self.log, self.cluster.process_env())
        wait_until(self._ready, timeout=60, desc=f"{self.name} /readyz", interval=0.5)
        self.register()
        return self

    def _ready(self) -> bool:
        assert self.proc and self.proc.alive(), f"{self.name} exited:\n{self.log.read_text()}"
        probe = run(self.cluster.in_netns("curl", "-skf", f"https://127.0.0.1:{self.port}/readyz"),
                    check=False, timeout=10)
        return probe.returncode == 0

    def register(self) -> None:
        ca = base64.b64encode((self.dir / "tls.crt").read_bytes()).decode()
        config = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": self.name},
            "webhooks": [{
                "name": f"{self.name}.gaia.dev",
                "clientConfig": {"url": f"https://127.0.0.1:{self.port}/mutate", "caBundle": ca},
                "rules": [{"apiGroups": ["serving.knative.dev"], "apiVersions": ["v1"],
                           "resources": ["services"], "operations": ["CREATE", "UPDATE"]}],
                "failurePolicy": "Ignore",
                "sideEffects": "None",
                "timeoutSeconds": 5,
                "reinvocationPolicy": "IfNeeded",
                "admissionReviewVersions": ["v1"],
                "namespaceSelector": {"matchExpressions": [{
                    "key": "kubernetes.io/metadata.name", "operator": "NotIn",
                    "values": ["kube-system", "knative-serving", "gaia-system"]}]},
            }],
        }
        self.kubectl.apply(json.dumps(config))

    def stop(self) -> None:
        if self.proc:
            self.proc.stop(grace=30)

    def unregister(self) -> None:
        self.kubectl("delete", "mutatingwebhookconfiguration", self.name, "--ignore-not-found")
