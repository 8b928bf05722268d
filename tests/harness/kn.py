"""``Kn``: the kn that hack/build.sh builds, bound to the cluster's kubeconfig."""
from __future__ import annotations

import subprocess

from tests.harness.cluster_env import Cluster
from tests.harness.proc import run


class Kn:
    """kn (built by hack/build.sh) bound to the cluster's kubeconfig."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.binary = cluster.env["GAIA_KN"]

    def __call__(self, *args: str, check: bool = True, timeout: float = 240) -> subprocess.CompletedProcess:
        return run([self.binary, "--kubeconfig", self.cluster.kubeconfig, *args],
                   env=self.cluster.process_env(), check=check, timeout=timeout)
