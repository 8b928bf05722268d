#!/usr/bin/env bash
# End-to-end tests through the local cluster: build (cached) -> up -> pytest tests/e2e -> down.
# The cluster is always stopped at the end (trap), unless GAIA_E2E_KEEP_CLUSTER=1.
# Arguments replace pytest's default arguments (tests/e2e), e.g.
#   hack/test-e2e.sh tests/e2e/test_cluster.py -x
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

t0=$SECONDS
hack/build.sh
t_build=$((SECONDS - t0))

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local rc=$?
  if [[ ${GAIA_E2E_KEEP_CLUSTER:-0} == 1 ]]; then
    echo "test-e2e: leaving the cluster up (GAIA_E2E_KEEP_CLUSTER=1)" >&2
  else
    hack/cluster.sh down || rc=1
  fi
  exit "$rc"
}
trap cleanup EXIT

t1=$SECONDS
hack/cluster.sh up
t_up=$((SECONDS - t1))

eval "$(hack/cluster.sh env)"
t2=$SECONDS
rc=0
(($#)) || set -- tests/e2e
GAIA_E2E_REQUIRE_CLUSTER=1 python3 -m pytest -v -p no:cacheprovider "$@" || rc=$?
t_test=$((SECONDS - t2))
echo "test-e2e: build ${t_build}s, up ${t_up}s, tests ${t_test}s (pytest exit $rc)" >&2
if ((rc != 0)); then
  echo "test-e2e: cluster logs in $GAIA_CLUSTER_LOGS" >&2
fi
exit "$rc"
