#!/usr/bin/env bash
# Regenerates the evaluation page and its plots.
#
#   tests/eval/run.sh --virtual   replay in simulated time (seconds; what docs/evaluation.md shows)
#
# Steps: the classifier's modes for the four paper functions (kn-gaia classify), the replay
# (gaia-replay, tests/eval/replay) on the calibrated profile, then tests/eval/report.py, which
# writes docs/evaluation.md and docs/eval/*.png. The replay's results stay in
# docs/eval/virtual-results.json for anyone who wants the raw numbers.
set -euo pipefail

cd "$(dirname "$0")/../.."

usage() {
  echo "usage: tests/eval/run.sh --virtual [--profile tests/eval/profiles/h100.json] [--seed N]" >&2
  echo "       (the live-cluster mode is not part of this script yet)" >&2
  exit 2
}

mode=""
profile=tests/eval/profiles/h100.json
seed=1
while [ $# -gt 0 ]; do
  case "$1" in
    --virtual) mode=virtual ;;
    --profile) profile=${2:?}; shift ;;
    --seed) seed=${2:?}; shift ;;
    *) usage ;;
  esac
  shift
done
[ "$mode" = virtual ] || usage

python3 -c 'import matplotlib' 2>/dev/null || {
  echo "matplotlib is missing: pip install -r tests/requirements.txt" >&2
  exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

examples="examples/functions/matmul examples/functions/image_classification"
examples="$examples examples/functions/text_generation examples/functions/idle_wait"
modes=()
# shellcheck disable=SC2086 # the example list is meant to split
if cargo run -q -p gaia-webhook --bin kn-gaia -- classify $examples >"$work/classify.txt"; then
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

mkdir -p docs/eval
cargo run -q -p gaia-eval --bin gaia-replay -- --source "$source_rev" \
  --profile "$profile" "${modes[@]}" --seed "$seed" --out docs/eval/virtual-results.json
python3 tests/eval/report.py docs/eval/virtual-results.json --doc docs/evaluation.md --plots docs/eval
