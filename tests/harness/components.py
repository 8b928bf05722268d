"""One component of the running local cluster stopped, killed or started again, through
``hack/cluster.sh stop|start|restart NAME`` (the fault tests)."""
from __future__ import annotations

import time

from tests.harness.cluster_env import Cluster
from tests.harness.paths import CLUSTER_SH
from tests.harness.proc import run


def component(cluster: Cluster, verb: str, name: str, *flags: str, timeout: float = 180) -> float:
    """``hack/cluster.sh VERB NAME FLAGS``; returns how long it took (s). ``start`` and
    ``restart`` return once the component answers again."""
    t0 = time.monotonic()
    run(["bash", str(CLUSTER_SH), verb, name, *flags], env=cluster.process_env(), timeout=timeout)
    return time.monotonic() - t0
