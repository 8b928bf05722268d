#!/usr/bin/env bash
# Benchmark: AdmissionReviews per second against gaia-webhook over HTTPS on loopback, with wrk
# (keep-alive), posting the review `kn service create` produces for a ~60-line inline function.
#
#   hack/bench/webhook.sh [seconds] [connections]     (GAIA_WEBHOOK_BIN=path skips the build)
#
# Two runs: "same source" (every review carries the same function: answered from the digest
# cache after the first) and "distinct source" (every review carries a different function, so
# each one is parsed and classified).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=hack/lib.sh
. hack/lib.sh
duration=${1:-20}
connections=${2:-16}
command -v wrk >/dev/null || gaia_die "wrk is missing: run hack/setup.sh"

# GAIA_WEBHOOK_BIN: benchmark this binary instead of building one
bin=${GAIA_WEBHOOK_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --locked --bin gaia-webhook >&2
  bin="${CARGO_TARGET_DIR:-target}/release/gaia-webhook"
fi
work=$(mktemp -d)
webhook_pid=
cleanup() { [ -n "$webhook_pid" ] && kill "$webhook_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
python3 hack/bench/review_body.py webhook/tests/fixtures/inline_function.py >"$work/review.json"

port=18443
"$bin" --listen "127.0.0.1:$port" --tls-cert "$work/tls.crt" \
  --tls-key "$work/tls.key" --kube false >"$work/webhook.log" 2>&1 &
webhook_pid=$!
for _ in $(seq 100); do
  curl -skf "https://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done

run() {
  local name=$1 script=$2
  gaia_log "$name: wrk -t1 -c$connections -d${duration}s"
  REVIEW="$work/review.json" wrk -t1 -c"$connections" -d"${duration}s" --latency \
    -s "$script" "https://127.0.0.1:$port/mutate"
}
run "same source" hack/bench/post_review.lua
run "distinct source" hack/bench/post_distinct_review.lua
echo
curl -sk "https://127.0.0.1:$port/metrics" | grep -E '^gaia_webhook_(reviews_total|classifier_cache_total)'
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
