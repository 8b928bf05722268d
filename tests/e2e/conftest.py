"""Fixtures for end-to-end tests against the local cluster (hack/cluster.sh).

Reusable pieces for every e2e test in this directory:

* ``cluster``      session-wide facts read from ``hack/cluster.sh env``
                   (kubeconfig, apiserver and Prometheus URLs, netns, binaries).
* ``kubectl``      a ``Kubectl`` helper bound to that kubeconfig.
* ``kn``           a ``Kn`` helper running the kn built by hack/build.sh.
* ``namespace``    a fresh namespace per test, deleted (and waited for) afterwards.
* ``wait_until``   ``wait_until(fn, timeout, desc)``: poll until fn() is truthy.
* ``in_netns``     argv prefix that runs a command inside the cluster's network
                   namespace (e.g. a webhook server the apiserver must reach).

When no cluster is up the tests are skipped, unless GAIA_E2E_REQUIRE_CLUSTER=1
(set by hack/test-e2e.sh), in which case they fail.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SH = REPO / "hack" / "cluster.sh"
# where cargo puts the binaries the tests run (honours CARGO_TARGET_DIR, as cargo does)
CARGO_TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")

# Default time limits (seconds); generous for a loaded 2-core machine.
READY_TIMEOUT = float(os.environ.get("GAIA_E2E_READY_TIMEOUT", "120"))
DELETE_TIMEOUT = float(os.environ.get("GAIA_E2E_DELETE_TIMEOUT", "90"))


class CommandError(AssertionError):
    pass


def run(argv: list[str], *, env: dict[str, str] | None = None, input: str | None = None,
        check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run a command, capturing text output; raise CommandError with its output on failure."""
    proc = subprocess.run(argv, env=env, input=input, text=True, capture_output=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise CommandError(
            f"command failed ({proc.returncode}): {shlex.join(argv)}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def wait_until(fn: Callable[[], Any], timeout: float = READY_TIMEOUT, desc: str = "condition",
               interval: float = 1.0) -> Any:
    """Poll fn() until it returns a truthy value, which is returned.

    Exceptions raised by fn count as 'not yet'; the last one is reported on timeout.
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    last_val: Any = None
    while True:
        try:
            last_val = fn()
            if last_val:
                return last_val
        except Exception as exc:  # noqa: BLE001 - reported on timeout
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f"; last error: {last_exc}" if last_exc else f"; last value: {last_val!r}"
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {desc}{detail}")
        time.sleep(interval)


@dataclass(frozen=True)
class Cluster:
    env: dict[str, str]          # the variables printed by `hack/cluster.sh env`

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

    def process_env(self) -> dict[str, str]:
        merged = dict(os.environ)
        merged.update(self.env)
        return merged

    def in_netns(self, *argv: str) -> list[str]:
        """argv that runs a command inside the cluster's network namespace with KUBECONFIG set."""
        return [str(CLUSTER_SH), "exec", *argv]


def _read_cluster_env() -> dict[str, str]:
    out = run(["bash", str(CLUSTER_SH), "env"]).stdout
    env: dict[str, str] = {}
    for line in out.splitlines():
        m = re.match(r'^export ([A-Z_][A-Z0-9_]*)="(.*)"$', line)
        if m and m.group(1) != "PATH":
            env[m.group(1)] = m.group(2)
    state_bin = str(Path(env["KUBECONFIG"]).parent / "bin")
    env["PATH"] = state_bin + os.pathsep + os.environ.get("PATH", "")
    return env


class Kubectl:
    """kubectl bound to the cluster's kubeconfig."""

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


class Kn:
    """kn (built by hack/build.sh) bound to the cluster's kubeconfig."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.binary = cluster.env["GAIA_KN"]

    def __call__(self, *args: str, check: bool = True, timeout: float = 240) -> subprocess.CompletedProcess:
        return run([self.binary, "--kubeconfig", self.cluster.kubeconfig, *args],
                   env=self.cluster.process_env(), check=check, timeout=timeout)


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    require = os.environ.get("GAIA_E2E_REQUIRE_CLUSTER") == "1"
    try:
        env = _read_cluster_env()
        c = Cluster(env)
        run([env["GAIA_KUBECTL"], "--kubeconfig", env["KUBECONFIG"], "get", "--raw", "/readyz"],
            timeout=15)
    except Exception as exc:  # noqa: BLE001
        msg = f"local cluster not reachable (hack/cluster.sh up): {exc}"
        if require:
            pytest.fail(msg)
        pytest.skip(msg)
    return c


@pytest.fixture(scope="session")
def kubectl(cluster: Cluster) -> Kubectl:
    return Kubectl(cluster)


@pytest.fixture(scope="session")
def kn(cluster: Cluster) -> Kn:
    return Kn(cluster)


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Callable[..., Any]:
    return wait_until


@pytest.fixture
def in_netns(cluster: Cluster) -> Callable[..., list[str]]:
    return cluster.in_netns


@pytest.fixture
def namespace(request: pytest.FixtureRequest, kubectl: Kubectl) -> str:
    """A fresh namespace for one test; deleted afterwards, waiting until its pods are
    gone so that what they held (GPUs on the fake nodes) is free for the next test.
    (The namespace object itself disappears a few seconds later.)"""
    base = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-")
    name = f"e2e-{base}-{uuid.uuid4().hex[:5]}"
    kubectl("create", "namespace", name)
    # The ServiceAccount admission plugin needs the namespace's default SA
    # (created by kube-controller-manager) before pods can be created.
    wait_until(lambda: kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
               timeout=60, desc=f"default ServiceAccount in {name}")
    yield name
    if os.environ.get("GAIA_E2E_KEEP_NAMESPACES") == "1":
        return
    kubectl("delete", "namespace", name, "--wait=false", check=False)
    wait_until(lambda: not kubectl("get", "pods", "-n", name, "-o", "name", check=False).stdout.strip(),
               timeout=DELETE_TIMEOUT, desc=f"pods of namespace {name} to be deleted")
