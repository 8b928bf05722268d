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
gaia_log "all tests passed in $((SECONDS - started)) s"
