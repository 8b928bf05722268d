"""Fixtures for end-to-end tests against the local cluster (hack/cluster.sh).

Reusable pieces for every e2e test in this directory (the helpers behind them live in
tests/harness and are imported from there):

* ``cluster``      session-wide facts read from ``hack/cluster.sh env``
                   (kubeconfig, apiserver and Prometheus URLs, netns, binaries):
                   ``tests.harness.cluster_env.Cluster``.
* ``kubectl``      a ``Kubectl`` helper bound to that kubeconfig (``tests.harness.kubectl``).
* ``kn``           a ``Kn`` helper running the kn built by hack/build.sh (``tests.harness.kn``).
* ``namespace``    a fresh namespace per test, deleted (and waited for) afterwards.
* ``wait_until``   ``wait_until(fn, timeout, desc)``: poll until fn() is truthy
                   (``tests.harness.wait``).
* ``in_netns``     argv prefix that runs a command inside the cluster's network
                   namespace (e.g. a webhook server the apiserver must reach).

When no cluster is up the tests are skipped, unless GAIA_E2E_REQUIRE_CLUSTER=1
(set by hack/test-e2e.sh), in which case they fail.
"""
from __future__ import annotations

import os
import re
import uuid
from typing import Any, Callable

import pytest

from tests.harness.cluster_env import Cluster
from tests.harness.kn import Kn
from tests.harness.kubectl import Kubectl
from tests.harness.proc import run
from tests.harness.wait import DELETE_TIMEOUT, wait_until


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    require = os.environ.get("GAIA_E2E_REQUIRE_CLUSTER") == "1"
    try:
        c = Cluster.read()
        run([c.env["GAIA_KUBECTL"], "--kubeconfig", c.kubeconfig, "get", "--raw", "/readyz"],
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
