#!/usr/bin/env bash
# All of Gaia's tests, as CI runs them: lint, unit and integration tests, then the end-to-end
# tests on the local Knative cluster (built from source on first use).
#
#   hack/test.sh            everything
#   hack/test.sh --unit     lint + cargo tests only (no cluster)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=hack/lib.sh
. hack/lib.sh

unit_only=false
[ "${1:-}" = "--unit" ] && unit_only=true

started=$SECONDS
hack/setup.sh

gaia_log "cargo fmt --check"
cargo fmt --all -- --check
gaia_log "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
gaia_log "cargo test (unit and integration tests)"
cargo test --workspace --locked

if [ "$unit_only" = true ]; then
  gaia_log "unit tests passed in $((SECONDS - started)) s"
  exit 0
fi

gaia_log "end-to-end tests on the local cluster"
hack/test-e2e.sh

# Then the real-node tests (tests/e2e/test_real_nodes.py): the same cluster with real kubelets,
# containerd, the registry, Knative's real data plane and Gaia installed as pods
# (hack/nodes.sh, docs/real-nodes.md). They run by default (auto): auto runs them unless what is
# left of CI's time (GAIA_CI_BUDGET_S, 90 minutes, counted from this script's start) cannot
# cover them: their cold build (Traefik, CoreDNS, Prometheus with Kubernetes discovery, the
# function runtime's rootfs, hack/README.md's table: 43 min at load 6-10) is taken as 45 minutes
# on 2 cores, Gaia's debug images (a cargo build) and the tests as 20. A skip says so
# loudly; it happens only on a machine whose caches are empty and whose first part already took
# most of the time. GAIA_TEST_REAL_NODES=1 runs them always, 0 never.
real_nodes=${GAIA_TEST_REAL_NODES:-auto}
if [ "$real_nodes" = auto ]; then
  need=$((20 * 60))
  [ -x "$GAIA_TRAEFIK_DIR/traefik" ] || need=$((need + 45 * 60))
  left=$((${GAIA_CI_BUDGET_S:-5400} - (SECONDS - started)))
  free=$(free_gib "$GAIA_STATE")
  if [ "$need" -gt "$left" ]; then
    gaia_log "SKIPPED: the real-node tests need about $((need / 60)) min here, $((left / 60)) min of the budget are left (GAIA_TEST_REAL_NODES=1 runs them anyway)"
    real_nodes=0
  elif [ "$free" -lt "$GAIA_REAL_NODES_DISK_GIB" ]; then
    gaia_log "SKIPPED: the real-node tests need about $GAIA_REAL_NODES_DISK_GIB GiB of disk, $free GiB are free (GAIA_TEST_REAL_NODES=1 runs them anyway)"
    real_nodes=0
  else
    real_nodes=1
  fi
fi
if [ "$real_nodes" = 1 ]; then
  gaia_log "real-node tests: building what they need, then a cluster with real nodes"
  GAIA_NODES=real hack/build.sh
  # Gaia's images from the debug binaries cargo test just built (no release build)
  GAIA_IMAGE_PROFILE=debug hack/build.sh gaia-images
  GAIA_NODES=real GAIA_E2E_REQUIRE_REAL_NODES=1 hack/test-e2e.sh tests/e2e/test_real_nodes.py
fi
gaia_log "all tests passed in $((SECONDS - started)) s"
