"""Where things are: the repository, hack/cluster.sh, and the binaries cargo builds."""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SH = REPO / "hack" / "cluster.sh"
# where cargo puts the binaries the tests run (honours CARGO_TARGET_DIR, as cargo does)
CARGO_TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")


def binaries(debug: bool) -> Path:
    """The directory of cargo's debug or release binaries."""
    return CARGO_TARGET / ("debug" if debug else "release")
