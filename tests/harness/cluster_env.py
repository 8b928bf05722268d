"""The local cluster's facts, as ``hack/cluster.sh env`` prints them: the one reader of them."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from tests.harness.paths import CLUSTER_SH
from tests.harness.proc import run


def read_cluster_env() -> dict[str, str]:
    """The variables `hack/cluster.sh env` exports; PATH is the caller's with the cluster's
    bin directory in front."""
    out = run(["bash", str(CLUSTER_SH), "env"]).stdout
    env: dict[str, str] = {}
    for line in out.splitlines():
        m = re.match(r'^export ([A-Z_][A-Z0-9_]*)="(.*)"$', line)
        if m and m.group(1) != "PATH":
            env[m.group(1)] = m.group(2)
    state_bin = str(Path(env["KUBECONFIG"]).parent / "bin")
    env["PATH"] = state_bin + os.pathsep + os.environ.get("PATH", "")
    return env


@dataclass(frozen=True)
class Cluster:
    env: dict[str, str]          # the variables printed by `hack/cluster.sh env`

    @classmethod
    def read(cls) -> "Cluster":
        return cls(read_cluster_env())

    @property
    def kubeconfig(self) -> str:
        return self.env["KUBECONFIG"]

    @property
    def prometheus_url(self) -> str:
        return self.env["GAIA_PROMETHEUS_URL"]

    @property
    def prom_targets_dir(self) -> Path:
        return Path(self.env["GAIA_PROM_TARGETS_DIR"])

    @property
    def netns(self) -> str:
        return self.env["GAIA_NETNS"]

    @property
    def ns_ip(self) -> str:
        """Address of the cluster's network namespace (apiserver, Prometheus), reachable from the host."""
        return self.env["GAIA_NS_IP"]

    @property
    def host_ip(self) -> str:
        """The host's address on the cluster's network (where the workload emulator listens)."""
        return self.env["GAIA_HOST_IP"]

    def process_env(self) -> dict[str, str]:
        """The caller's environment with the cluster's variables on top."""
        merged = dict(os.environ)
        merged.update(self.env)
        return merged

    def in_netns(self, *argv: str) -> list[str]:
        """argv that runs a command inside the cluster's network namespace with KUBECONFIG set."""
        return [str(CLUSTER_SH), "exec", *argv]
