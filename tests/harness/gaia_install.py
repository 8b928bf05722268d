"""Install Gaia on the local cluster from `manifests/`, the way tests/e2e/test_install.py does.

The shipped Deployments cannot run containers here (KWOK pods are fakes), so after
``kubectl apply -k manifests/`` they are scaled to zero and the real ``gaia-webhook`` and
``gaia-autoscaler`` binaries run as processes inside the cluster's network namespace
(``hack/cluster.sh exec``), each with a token of the ServiceAccount the manifests define, so
every API call goes through the manifests' RBAC. The webhook Service gets one more
EndpointSlice pointing at the process (the namespace's address), so the apiserver reaches the
webhook through the shipped MutatingWebhookConfiguration's Service reference.

Plain Python (no pytest): used by the demo (tests/harness/demo.py); test_install.py could use it
too. ``env`` is the output of ``hack/cluster.sh env`` as a dict (see read_cluster_env).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Callable

import yaml

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SH = REPO / "hack" / "cluster.sh"
NS = "gaia-system"
SLICE = "gaia-webhook-harness-process"


def read_cluster_env() -> dict[str, str]:
    out = subprocess.run(["bash", str(CLUSTER_SH), "env"], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    env: dict[str, str] = {}
    for line in out.splitlines():
        m = re.match(r'^export ([A-Z_][A-Z0-9_]*)="(.*)"$', line)
        if m and m.group(1) != "PATH":
            env[m.group(1)] = m.group(2)
    env["PATH"] = str(Path(env["KUBECONFIG"]).parent / "bin") + os.pathsep + os.environ.get("PATH", "")
    return env


class Proc:
    """A process logging to a file, stopped with SIGTERM (then KILL after a grace period)."""

    def __init__(self, argv: list[str], log: Path, env: dict):
        self.argv, self.log = argv, log
        with open(log, "w") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:]

    def stop(self, grace: float = 20) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode


class GaiaInstall:
    """apply -k manifests/, then the webhook and autoscaler binaries as processes."""

    def __init__(self, env: dict[str, str], workdir: Path, binaries: Path,
                 autoscaler_overrides: dict | None = None, webhook_port: int = 9443,
                 autoscaler_listen: str = "127.0.0.1:18080",
                 say: Callable[[str], None] = print):
        self.env, self.workdir, self.binaries = env, Path(workdir), Path(binaries)
        self.autoscaler_overrides = autoscaler_overrides or {}
        self.webhook_port, self.autoscaler_listen = webhook_port, autoscaler_listen
        self.say = say
        self.procs: list[Proc] = []
        self.webhook: Proc | None = None
        self.autoscaler: Proc | None = None
        self.workdir.mkdir(parents=True, exist_ok=True)

    # helpers
    def proc_env(self) -> dict[str, str]:
        merged = dict(os.environ)
        merged.update(self.env)
        return merged

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 120) -> subprocess.CompletedProcess:
        p = subprocess.run([self.env["GAIA_KUBECTL"], "--kubeconfig", self.env["KUBECONFIG"], *args],
                           input=input, capture_output=True, text=True, timeout=timeout,
                           env=self.proc_env())
        if check and p.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed:\n{p.stdout}{p.stderr}")
        return p

    def in_netns(self, *argv: str) -> list[str]:
        return [str(CLUSTER_SH), "exec", *argv]

    def rendered(self) -> list[dict]:
        return [d for d in yaml.safe_load_all(self.kubectl("kustomize", str(REPO / "manifests")).stdout) if d]

    def sa_kubeconfig(self, sa: str) -> Path:
        token = self.kubectl("create", "token", sa, "-n", NS, "--duration", "2h").stdout.strip()
        admin = yaml.safe_load(Path(self.env["KUBECONFIG"]).read_text())
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

    # the steps
    def start(self) -> None:
        self.say("applying manifests/knative-features and manifests/ (kubectl apply -k)")
        self.kubectl("apply", "-k", str(REPO / "manifests" / "knative-features"))
        self.kubectl("apply", "-k", str(REPO / "manifests"))
        # nothing can run the images here: the processes below stand in for the pods
        self.kubectl("scale", "deployment", "gaia-webhook", "gaia-autoscaler", "-n", NS, "--replicas=0")
        self.kubectl("delete", "secret", "gaia-webhook-tls", "-n", NS, "--ignore-not-found")
        docs = self.rendered()
        env = self.proc_env()

        self.say(f"starting gaia-webhook as ServiceAccount {NS}/gaia-webhook "
                 f"(in the cluster's network namespace, :{self.webhook_port})")
        wh_cfg = self.config_file(docs, "gaia-webhook-config", {})
        wh_kc = self.sa_kubeconfig("gaia-webhook")
        self.webhook = Proc(self.in_netns(
            "env", f"KUBECONFIG={wh_kc}", str(self.binaries / "gaia-webhook"),
            "--listen", f"0.0.0.0:{self.webhook_port}", "--config", str(wh_cfg),
            "--tls-secret", f"{NS}/gaia-webhook-tls", "--service", "gaia-webhook",
            "--webhook-configuration", "gaia-webhook"), self.workdir / "gaia-webhook.log", env)
        self.procs.append(self.webhook)

        self.say(f"starting gaia-autoscaler as ServiceAccount {NS}/gaia-autoscaler")
        overrides = {"prometheus": {"url": self.env["GAIA_PROMETHEUS_URL"]},
                     "listen": self.autoscaler_listen}
        _merge(overrides, self.autoscaler_overrides)
        as_cfg = self.config_file(docs, "gaia-autoscaler-config", overrides)
        as_kc = self.sa_kubeconfig("gaia-autoscaler")
        self.autoscaler = Proc(self.in_netns(
            "env", f"KUBECONFIG={as_kc}", f"POD_NAMESPACE={NS}", "POD_NAME=gaia-autoscaler-harness",
            str(self.binaries / "gaia-autoscaler"), "--config", str(as_cfg)),
            self.workdir / "gaia-autoscaler.log", env)
        self.procs.append(self.autoscaler)

        slice_ = {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": SLICE, "namespace": NS,
                         "labels": {"kubernetes.io/service-name": "gaia-webhook",
                                    "endpointslice.kubernetes.io/managed-by": "gaia-harness"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [self.env["GAIA_NS_IP"]], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": self.webhook_port, "protocol": "TCP"}],
        }
        self.kubectl("apply", "-f", "-", input=json.dumps(slice_))
        deadline = time.monotonic() + 90
        while True:
            for p in self.procs:
                if not p.alive():
                    raise RuntimeError(f"{p.log.name} exited:\n{p.tail()}")
            ok = subprocess.run(self.in_netns("curl", "-skf", f"https://127.0.0.1:{self.webhook_port}/readyz"),
                                capture_output=True, timeout=15, env=env).returncode == 0
            if ok:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"gaia-webhook not ready after 90 s:\n{self.webhook.tail()}")
            time.sleep(1)
        self.say("gaia-webhook ready (caBundle in place); gaia-autoscaler running")

    def stop(self, wait_namespace: bool = True) -> None:
        """Uninstall first (so no webhook registration outlives its process), then stop."""
        self.kubectl("delete", "endpointslice", SLICE, "-n", NS, "--ignore-not-found", check=False)
        self.kubectl("delete", "-k", str(REPO / "manifests"), "--ignore-not-found", "--wait=false",
                     check=False)
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
