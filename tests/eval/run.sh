#!/usr/bin/env bash
# Regenerates the evaluation page (docs/evaluation.md) and its plots (docs/eval/*.png).
#
#   tests/eval/run.sh --virtual   replay in simulated time (seconds once built)
#   tests/eval/run.sh --live      every scenario on the local cluster (~15 min; brings the
#                                 cluster up and down if it is not running)
#   tests/eval/run.sh --all       both: everything on the page
#
# --virtual: the classifier's modes for the four paper functions (kn-gaia classify), the replay
# (gaia-replay, tests/eval/replay) on the calibrated profile -> docs/eval/virtual-results.json.
# --live: `python3 -m tests.eval.live` with the release binaries -> docs/eval/live-results.json.
# Then `python3 -m tests.eval.report` writes the page from both results files (the live section
# is kept from docs/eval/live-results.json when only --virtual runs).
# Options for --live: --scenarios matmul,idle  --short  --ladder  --ladder-only  --debug-build
# (passed to tests/eval/live.py; --ladder adds the ladder pass, Gaia reinstalled with the
# three-rung ladder, ~10 min more; --ladder-only runs that pass alone and keeps the other runs of
# docs/eval/live-results.json; --debug-build uses target/debug instead of a release build).
# --virtual also writes the replay's ladder runs (gaia-replay --ladder) to
# docs/eval/ladder-replay.json, which the report compares with the live ladder runs.
set -euo pipefail

cd "$(dirname "$0")/../.."

usage() {
  echo "usage: tests/eval/run.sh --virtual|--live|--all [--profile FILE] [--seed N]" >&2
  echo "                         [--scenarios LIST] [--short] [--ladder|--ladder-only]" >&2
  echo "                         [--debug-build]   (live only)" >&2
  exit 2
}

virtual=false
live=false
profile=tests/eval/profiles/h100.json
seed=1
live_args=()
debug_build=false
while [ $# -gt 0 ]; do
  case "$1" in
    --virtual) virtual=true ;;
    --live) live=true ;;
    --all) virtual=true; live=true ;;
    --profile) profile=${2:?}; shift ;;
    --seed) seed=${2:?}; shift ;;
    --scenarios) live_args+=(--scenarios "${2:?}"); shift ;;
    --short) live_args+=(--short) ;;
    --ladder) live_args+=(--ladder) ;;
    --ladder-only) live_args+=(--ladder-only) ;;
    --debug-build) live_args+=(--debug-build); debug_build=true ;;
    *) usage ;;
  esac
  shift
done
[ "$virtual" = true ] || [ "$live" = true ] || usage

python3 -c 'import matplotlib, yaml' 2>/dev/null || {
  echo "matplotlib or PyYAML is missing: pip install -r tests/requirements.txt" >&2
  exit 1
}

work=$(mktemp -d)
cluster_started=false
cleanup() {
  rm -rf "$work"
  if [ "$cluster_started" = true ]; then
    hack/cluster.sh down || true
  fi
}
trap cleanup EXIT
mkdir -p docs/eval

if [ "$live" = true ]; then
  if [ "$debug_build" = true ]; then
    echo "== live: building the debug binaries"
    cargo build --locked --bin gaia-webhook --bin gaia-autoscaler
  else
    echo "== live: building the release binaries"
    cargo build --release --locked --bin gaia-webhook --bin gaia-autoscaler
  fi
  hack/build.sh
  eval "$(hack/cluster.sh env)"
  if ! "$GAIA_KUBECTL" --kubeconfig "$KUBECONFIG" get --raw /readyz >/dev/null 2>&1; then
    echo "== live: starting the local cluster (hack/cluster.sh up)"
    cluster_started=true
    hack/cluster.sh up
  fi
  echo "== live: python3 -m tests.eval.live ${live_args[*]-}"
  python3 -m tests.eval.live ${live_args[@]+"${live_args[@]}"} --results docs/eval/live-results.json
fi

if [ "$virtual" = true ]; then
  examples="examples/functions/matmul examples/functions/image_classification"
  examples="$examples examples/functions/text_generation examples/functions/idle_wait"
  modes=()
  # shellcheck disable=SC2086 # the example list is meant to split
  if cargo run -q -p kn-gaia -- classify $examples >"$work/classify.txt"; then
    modes=(--modes "$work/classify.txt")
    grep -v '^ ' "$work/classify.txt"
  else
    echo "kn-gaia classify failed: the replay uses the modes it records as assumed" >&2
  fi

  # Which policy the figures come from: the commit, and whether the autoscaler's or the
  # contract's sources differ from it.
  source_rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  if [ -n "$(git status --porcelain -- autoscaler-ext contract 2>/dev/null)" ]; then
    source_rev="$source_rev + uncommitted autoscaler/contract changes"
  fi
  cargo run -q -p gaia-eval --bin gaia-replay -- --source "$source_rev" \
    --profile "$profile" "${modes[@]}" --seed "$seed" --out docs/eval/virtual-results.json
  # the replay's ladder runs (docs/ladder.md), for the live ladder section
  cargo run -q -p gaia-eval --bin gaia-replay -- --ladder --source "$source_rev" \
    --profile "$profile" --seed "$seed" --out docs/eval/ladder-replay.json >/dev/null
fi

live_results=()
if [ -f docs/eval/live-results.json ]; then
  live_results=(--live docs/eval/live-results.json)
fi
if [ -f docs/eval/ladder-replay.json ]; then
  live_results+=(--ladder-replay docs/eval/ladder-replay.json)
fi
python3 -m tests.eval.report docs/eval/virtual-results.json "${live_results[@]}" \
  --doc docs/evaluation.md --plots docs/eval
