#!/usr/bin/env bash
# Soak (not in CI): N Services (default 100) for a duration (default 1h) on the local KWOK
# cluster, Gaia installed from manifests/ with its binaries as processes, random load through
# the workload emulator; samples both components' memory, stuck Services, moves against the
# cap, and prints a summary (tests/harness/soak.py; figures in docs/reliability.md, "Soak").
#
# Usage: hack/soak.sh [SERVICES] [DURATION]      e.g. hack/soak.sh 20 15m
#   GAIA_SOAK_OUT (default $GAIA_STATE/soak), GAIA_SOAK_RELEASE=1 for release binaries,
#   GAIA_SOAK_KEEP_CLUSTER=1 to leave a cluster it brought up running.
# Brings the cluster up (hack/cluster.sh up) when it is not, and down again afterwards.
set -euo pipefail
# shellcheck source=hack/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
cd "$GAIA_ROOT"

services=${1:-100}
duration=${2:-1h}
out=${GAIA_SOAK_OUT:-$GAIA_STATE/soak}
export CARGO_INCREMENTAL=0
profile=(); bindir=debug
if [[ ${GAIA_SOAK_RELEASE:-0} == 1 ]]; then profile=(--release); bindir=release; fi
cargo build --quiet --locked "${profile[@]}" --bin gaia-webhook --bin gaia-autoscaler

brought_up=0
if ! hack/cluster.sh status >/dev/null 2>&1; then
  hack/cluster.sh up
  brought_up=1
fi
cleanup() {
  if ((brought_up)) && [[ ${GAIA_SOAK_KEEP_CLUSTER:-0} != 1 ]]; then hack/cluster.sh down; fi
}
trap cleanup EXIT

mkdir -p "$out"
gaia_log "soak: $services Services for $duration; output in $out"
python3 -m tests.harness.soak --services "$services" --duration "$duration" --out "$out" \
  --binaries "${CARGO_TARGET_DIR:-$GAIA_ROOT/target}/$bindir"
