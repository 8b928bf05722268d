#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/, cargo-fuzz + libFuzzer, AddressSanitizer) for a
# given time each, on a corpus kept in ${GAIA_CACHE:-~/.cache/gaia}/fuzz/ and seeded from the
# project's own code (the Python of examples/functions and the classifier's fixtures; for
# admission_review and image_layer, the reviews and image layers fuzz/seeds.py makes of them),
# then prints one line per target: seconds, executions, executions/s, crashes. A crash leaves its
# input in fuzz/artifacts/TARGET/ and makes the script exit 1: turn it into a regression test.
# A campaign on a larger machine: fuzz/campaign.sh.
#
# Usage: hack/fuzz.sh [SECONDS_PER_TARGET (default 60)] [TARGET...]
# Needs the nightly toolchain (rustup); installs cargo-fuzz from crates.io when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=hack/lib.sh
. hack/lib.sh

secs=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(classify_bytes classify_grammar placement_patch admission_review image_layer)

rustup toolchain list 2>/dev/null | grep -q '^nightly' \
  || gaia_die "the nightly toolchain is needed (rustup toolchain install nightly)"
command -v cargo-fuzz >/dev/null 2>&1 || {
  gaia_log "installing cargo-fuzz"
  cargo install --locked cargo-fuzz
}

root="$GAIA_CACHE/fuzz"
seeds="$root/seeds/python"
rm -rf "$seeds"
mkdir -p "$seeds"
i=0
while IFS= read -r -d '' f; do
  cp "$f" "$seeds/$i.py"
  i=$((i + 1))
done < <(find examples/functions classifier/tests webhook/tests/fixtures -name '*.py' -print0)
gaia_log "seed corpus: $i Python files"
python3 fuzz/seeds.py "$root/seeds" | while read -r line; do gaia_log "seed corpus: $line"; done

summary=()
failed=0
for t in "${targets[@]}"; do
  corpus="$root/corpus/$t"
  mkdir -p "$corpus"
  extra=()
  case $t in
    classify_*) extra=("$seeds") ;;
    admission_review | image_layer) extra=("$root/seeds/$t") ;;
  esac
  log="$root/$t.log"
  gaia_log "fuzzing $t for ${secs}s (log: $log)"
  rc=0
  (cd fuzz && cargo +nightly fuzz run "$t" "$corpus" "${extra[@]}" -- \
    -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048) >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  crashes=$(find "fuzz/artifacts/$t" -type f 2>/dev/null | wc -l)
  if ((rc != 0)); then
    failed=1
    tail -n 30 "$log" >&2
  fi
  summary+=("$(printf '%-18s %5ss %12s execs %9s/s %3s crash file(s) exit %s' "$t" "$secs" \
    "${execs:-?}" "$(( ${execs:-0} / (secs > 0 ? secs : 1) ))" "$crashes" "$rc")")
done
printf '%s\n' "${summary[@]}"
exit "$failed"
