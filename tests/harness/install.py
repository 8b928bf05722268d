"""Install Gaia on the local cluster from `manifests/`: the one installer, used by the e2e tests
(test_install.py), the demo (demo.py) and the live evaluation (tests/eval/live.py).

The shipped Deployments cannot run containers here (KWOK pods are fakes), so after
``kubectl apply -k manifests/`` they are scaled to zero and the real ``gaia-webhook`` and
``gaia-autoscaler`` binaries run as processes inside the cluster's network namespace
(``hack/cluster.sh exec``), each with a token of the ServiceAccount the manifests define, so
every API call goes through the manifests' RBAC. The webhook gets
``--ladder-from`` the autoscaler's configuration file, as the manifests pass it the mounted
ConfigMap (docs/ladder.md, "The first rung": without a ``ladder:`` section it places as
before). The webhook Service gets one more
EndpointSlice pointing at the process (the namespace's address), so the apiserver reaches the
webhook through the shipped MutatingWebhookConfiguration's Service reference.

On a cluster with real nodes (``hack/cluster.sh up --real-nodes``), ``start_as_pods`` installs
Gaia as the README tells platform teams: ``kubectl apply -k`` of the overlay that only sets the
images to the cluster's registry (``GAIA_LOCAL_OVERLAY``); both Deployments run as real pods,
and the apiserver reaches the webhook through its Service.

Plain Python (no pytest).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import yaml

from tests.harness.cluster_env import Cluster
from tests.harness.kubectl import Kubectl
from tests.harness.paths import REPO
from tests.harness.proc import Proc, run

NS = "gaia-system"
SLICE = "gaia-webhook-harness-process"


class GaiaInstall:
    """apply -k manifests/, then the webhook (``webhook_replicas`` of it, on consecutive ports
    from ``webhook_port``) and the autoscaler binaries as processes."""

    def __init__(self, cluster: Cluster, workdir: Path, binaries: Path | None,
                 autoscaler_overrides: dict | None = None, webhook_port: int = 9443,
                 webhook_replicas: int = 1, autoscaler_listen: str = "127.0.0.1:18080",
                 say: Callable[[str], None] = print):
        self.cluster, self.workdir = cluster, Path(workdir)
        self.binaries = Path(binaries) if binaries else None  # None: only start_as_pods
        self.kubectl = Kubectl(cluster)
        self.autoscaler_overrides = autoscaler_overrides or {}
        self.webhook_port, self.webhook_replicas = webhook_port, webhook_replicas
        self.autoscaler_listen = autoscaler_listen
        self.say = say
        self.procs: list[Proc] = []
        self.webhooks: list[Proc] = []
        self.webhook: Proc | None = None      # the first of self.webhooks
        self.autoscaler: Proc | None = None
        self.docs: list[dict] = []            # manifests/ as kustomize renders it
        self.overlay: Path | None = None      # set by start_as_pods
        self.workdir.mkdir(parents=True, exist_ok=True)

    # helpers
    def rendered(self, kustomization: Path = REPO / "manifests") -> list[dict]:
        return [d for d in yaml.safe_load_all(self.kubectl("kustomize", str(kustomization)).stdout) if d]

    def sa_kubeconfig(self, sa: str) -> Path:
        """A kubeconfig that authenticates as the ServiceAccount, with a token the API issues."""
        token = self.kubectl("create", "token", sa, "-n", NS, "--duration", "2h").stdout.strip()
        admin = yaml.safe_load(Path(self.cluster.kubeconfig).read_text())
        config = {
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "local", "cluster": admin["clusters"][0]["cluster"]}],
            "users": [{"name": sa, "user": {"token": token}}],
            "contexts": [{"name": sa, "context": {"cluster": "local", "user": sa}}],
            "current-context": sa,
        }
        path = self.workdir / f"{sa}.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def config_file(self, docs: list[dict], name: str, overrides: dict) -> Path:
        cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name)
        data = yaml.safe_load(cm["data"]["config.yaml"])
        _merge(data, overrides)
        path = self.workdir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def webhook_ready(self, port: int) -> bool:
        probe = self.cluster.in_netns("curl", "-skf", f"https://127.0.0.1:{port}/readyz")
        return run(probe, env=self.cluster.process_env(), check=False, timeout=15).returncode == 0

    # the steps
    def start(self) -> None:
        self.say("applying manifests/knative-features and manifests/ (kubectl apply -k)")
        self.kubectl("apply", "-k", str(REPO / "manifests" / "knative-features"))
        self.kubectl("apply", "-k", str(REPO / "manifests"))
        # nothing can run the images here: the processes below stand in for the pods
        self.kubectl("scale", "deployment", "gaia-webhook", "gaia-autoscaler", "-n", NS, "--replicas=0")
        self.kubectl("delete", "secret", "gaia-webhook-tls", "-n", NS, "--ignore-not-found")
        self.docs = docs = self.rendered()
        env = self.cluster.process_env()

        # the autoscaler's configuration first: the webhook reads its `ladder:` section from the
        # same file (--ladder-from), as the manifests mount the autoscaler's ConfigMap into it
        overrides = {"prometheus": {"url": self.cluster.prometheus_url},
                     "listen": self.autoscaler_listen}
        _merge(overrides, self.autoscaler_overrides)
        as_cfg = self.config_file(docs, "gaia-autoscaler-config", overrides)

        ports = [self.webhook_port + i for i in range(self.webhook_replicas)]
        self.say(f"starting gaia-webhook as ServiceAccount {NS}/gaia-webhook "
                 f"(in the cluster's network namespace, :{', :'.join(map(str, ports))})")
        wh_cfg = self.config_file(docs, "gaia-webhook-config", {})
        wh_kc = self.sa_kubeconfig("gaia-webhook")
        # several replicas start together: they must settle on one certificate
        for i, port in enumerate(ports):
            log = self.workdir / ("gaia-webhook.log" if i == 0 else f"gaia-webhook-{i + 1}.log")
            self.webhooks.append(Proc(self.cluster.in_netns(
                "env", f"KUBECONFIG={wh_kc}", str(self.binaries / "gaia-webhook"),
                "--listen", f"0.0.0.0:{port}", "--config", str(wh_cfg),
                "--tls-secret", f"{NS}/gaia-webhook-tls", "--service", "gaia-webhook",
                "--webhook-configuration", "gaia-webhook", "--ladder-from", str(as_cfg)), log, env))
        self.webhook = self.webhooks[0]
        self.procs.extend(self.webhooks)

        self.say(f"starting gaia-autoscaler as ServiceAccount {NS}/gaia-autoscaler")
        as_kc = self.sa_kubeconfig("gaia-autoscaler")
        self.autoscaler = Proc(self.cluster.in_netns(
            "env", f"KUBECONFIG={as_kc}", f"POD_NAMESPACE={NS}", "POD_NAME=gaia-autoscaler-harness",
            str(self.binaries / "gaia-autoscaler"), "--config", str(as_cfg)),
            self.workdir / "gaia-autoscaler.log", env)
        self.procs.append(self.autoscaler)

        # the webhook Service's endpoint: the process, at the namespace's non-loopback address
        slice_ = {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": SLICE, "namespace": NS,
                         "labels": {"kubernetes.io/service-name": "gaia-webhook",
                                    "endpointslice.kubernetes.io/managed-by": "gaia-harness"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [self.cluster.ns_ip], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": self.webhook_port, "protocol": "TCP"}],
        }
        self.kubectl("apply", "-f", "-", input=json.dumps(slice_))
        deadline = time.monotonic() + 90
        waiting = list(zip(self.webhooks, ports))
        while True:
            for p in self.procs:
                if not p.alive():
                    raise RuntimeError(f"{p.log.name} exited:\n{p.tail()}")
            waiting = [(p, port) for p, port in waiting if not self.webhook_ready(port)]
            if not waiting:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"gaia-webhook not ready after 90 s:\n{waiting[0][0].tail()}")
            time.sleep(1)
        self.say("gaia-webhook ready (caBundle in place); gaia-autoscaler running")

    def start_as_pods(self, overlay: Path, timeout: float = 300) -> None:
        """Gaia as real pods: apply -k OVERLAY (manifests/ with only the images set), the
        autoscaler's config merged with the overrides, and both Deployments rolled out."""
        self.overlay = Path(overlay)
        # an uninstall that did not wait leaves the namespace Terminating for a while
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ns = self.kubectl("get", "namespace", NS, "-o", "jsonpath={.status.phase}", check=False)
            if ns.returncode != 0 or ns.stdout.strip() != "Terminating":
                break
            time.sleep(1)
        self.say(f"applying manifests/knative-features and {self.overlay} (kubectl apply -k)")
        self.kubectl("apply", "-k", str(REPO / "manifests" / "knative-features"))
        self.kubectl("apply", "-k", str(self.overlay))
        self.docs = docs = self.rendered(self.overlay)
        overrides: dict = {"prometheus": {"url": self.cluster.prometheus_url}}
        _merge(overrides, self.autoscaler_overrides)
        config = self.config_file(docs, "gaia-autoscaler-config", overrides)
        cm = self.kubectl("create", "configmap", "gaia-autoscaler-config", "-n", NS,
                          f"--from-file=config.yaml={config}", "--dry-run=client", "-o", "json").stdout
        self.kubectl("apply", "-f", "-", input=cm)
        self.kubectl("rollout", "restart", "deployment/gaia-autoscaler", "-n", NS)
        for name in ("gaia-webhook", "gaia-autoscaler"):
            self.kubectl("rollout", "status", f"deployment/{name}", "-n", NS,
                         f"--timeout={int(timeout)}s", timeout=timeout + 30)
        self.say("gaia-webhook and gaia-autoscaler rolled out as pods")

    def stop(self, wait_namespace: bool = True) -> None:
        """Uninstall first (so no webhook registration outlives its process), then stop."""
        self.kubectl("delete", "endpointslice", SLICE, "-n", NS, "--ignore-not-found", check=False)
        self.kubectl("delete", "-k", str(self.overlay or REPO / "manifests"), "--ignore-not-found",
                     "--wait=false", check=False)
        for p in reversed(self.procs):
            p.stop()
        if wait_namespace:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                if self.kubectl("get", "namespace", NS, check=False).returncode != 0:
                    break
                time.sleep(1)


def _merge(base: dict, over: dict) -> None:
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v
