"""`kn-gaia doctor -o json` against a cluster, as its admin (the e2e tests' one way to run it)."""
from __future__ import annotations

import json

from tests.harness.cluster_env import Cluster
from tests.harness.paths import binaries
from tests.harness.proc import run


def doctor_json(cluster: Cluster, *args: str) -> tuple[int, dict]:
    """Its exit status (0: every check passes or warns, 1: one fails) and its JSON report
    (`checks`, `metrics`). Builds kn-gaia first (a no-op when cargo already has)."""
    run(["cargo", "build", "--quiet", "--locked", "--bin", "kn-gaia"], timeout=1200)
    binary = binaries(debug=True) / "kn-gaia"
    out = run([str(binary), "doctor", "-o", "json", *args], env=cluster.process_env(), check=False)
    assert out.returncode in (0, 1), out.stderr
    return out.returncode, json.loads(out.stdout)
