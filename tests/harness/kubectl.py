"""``Kubectl``: the cluster's kubectl bound to its kubeconfig, with the helpers the tests, the
installer and the drivers use."""
from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.harness.cluster_env import Cluster
from tests.harness.proc import run


class Kubectl:
    """kubectl bound to the cluster's kubeconfig; a failing command raises CommandError."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.binary = cluster.env["GAIA_KUBECTL"]

    def __call__(self, *args: str, input: str | None = None, check: bool = True,
                 timeout: float = 120) -> subprocess.CompletedProcess:
        return run([self.binary, "--kubeconfig", self.cluster.kubeconfig, *args],
                   env=self.cluster.process_env(), input=input, check=check, timeout=timeout)

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json").stdout)

    def apply(self, manifest: str, namespace: str | None = None) -> str:
        args = ["apply", "-f", "-"] + (["-n", namespace] if namespace else [])
        return self(*args, input=manifest).stdout

    def condition(self, obj: dict, cond_type: str) -> dict | None:
        for cond in obj.get("status", {}).get("conditions", []) or []:
            if cond.get("type") == cond_type:
                return cond
        return None

    def pods(self, namespace: str, selector: str) -> list[dict]:
        return self.json("get", "pods", "-n", namespace, "-l", selector)["items"]

    def events_for(self, namespace: str, name: str, reason: str | None = None) -> list[dict]:
        sel = f"involvedObject.name={name}" + (f",reason={reason}" if reason else "")
        return self.json("get", "events", "-n", namespace, "--field-selector", sel)["items"]

    def nodes_by_pool(self) -> dict[str, set[str]]:
        pools: dict[str, set[str]] = {}
        for node in self.json("get", "nodes")["items"]:
            pool = node["metadata"].get("labels", {}).get("gaia.dev/pool", "")
            pools.setdefault(pool, set()).add(node["metadata"]["name"])
        return pools
