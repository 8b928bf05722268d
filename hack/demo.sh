#!/usr/bin/env bash
# The live demo, in one command: build what is missing, start the local cluster with real
# worker nodes, install Gaia as pods (kubectl apply -k, as the README tells platform teams),
# deploy the example functions with plain `kn service create`, drive load through the real
# ingress, show Gaia's decisions as they happen, print a summary table and write a PNG plot;
# then stop everything (cluster down) -- also on Ctrl-C.
#
# The functions run as real pods from the function runtime image: on the CPU worker they
# compute for real; on the GPU-pool worker a GPU STAND-IN answers with the latency measured on
# a real H100 (this machine has no GPU). See docs/demo.md and docs/real-nodes.md.
#
#   hack/demo.sh                         real nodes: ~4 min of load after the build and `up`
#   hack/demo.sh --emulated              the KWOK cluster and the workload emulator instead of a
#                                        data plane (the paper's full load; quicker to start)
#   hack/demo.sh --duration 360          longer load
#   hack/demo.sh --short                 short scenarios (tests)
#   hack/demo.sh --use-running-cluster   use the cluster that is up (its kind decides the data
#                                        plane); leave it up (tests)
#   hack/demo.sh --out DIR               plot, summary.json, requests.jsonl, logs (default target/demo)
#   hack/demo.sh --debug-build           use debug binaries (cargo build, not --release)
#
# See docs/demo.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=hack/lib.sh
. hack/lib.sh

use_running=false
debug=false
emulated=false
args=()
for a in "$@"; do
  case "$a" in
    --use-running-cluster) use_running=true ;;
    --debug-build) debug=true; args+=("$a") ;;
    --emulated) emulated=true ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) args+=("$a") ;;
  esac
done
# the cluster's kind: real nodes unless --emulated (an existing cluster's own kind wins below)
if [ "$emulated" = true ]; then export GAIA_NODES=kwok; else export GAIA_NODES=real; fi

started=$SECONDS
cluster_started=false
# shellcheck disable=SC2317  # invoked by the traps
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "${heartbeat_pid:-}" ]; then kill "$heartbeat_pid" 2>/dev/null || true; fi
  if [ "$cluster_started" = true ]; then
    gaia_log "demo: stopping the local cluster (hack/cluster.sh down)"
    hack/cluster.sh down || rc=1
  fi
  gaia_log "demo: finished in $((SECONDS - started)) s (exit $rc)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$use_running" = false ]; then
  gaia_log "demo: step 1/4: setting up the machine (hack/setup.sh)"
  hack/setup.sh
  if [ "$emulated" = true ]; then
    gaia_log "demo: step 2/4: building the local cluster's components (hack/build.sh; first time 20-40 min)"
  else
    gaia_log "demo: step 2/4: building the local cluster's components and images (hack/build.sh --real-nodes; first time 45-80 min)"
  fi
  hack/build.sh
fi
# cargo_build ARGS...: cargo build, with a line every 15 s while it runs (a release build of the
# webhook takes minutes on 2 cores, and cargo shows no progress bar when stderr is no terminal).
# cargo stays in the foreground, so that Ctrl-C reaches it; the heartbeat runs beside it.
heartbeat_pid=
cargo_build() {
  (
    n=0
    while sleep 1; do
      n=$((n + 1))
      if ((n % 15 == 0)); then gaia_log "  ... cargo build: ${n} s"; fi
    done
  ) &
  heartbeat_pid=$!
  local rc=0
  cargo build "$@" || rc=$?
  kill "$heartbeat_pid" 2>/dev/null || true
  heartbeat_pid=
  return "$rc"
}
if [ "$debug" = true ]; then
  gaia_log "demo: building gaia-webhook and gaia-autoscaler (cargo build)"
  cargo_build --locked --bin gaia-webhook --bin gaia-autoscaler
  profile=debug
else
  gaia_log "demo: building gaia-webhook and gaia-autoscaler (cargo build --release)"
  cargo_build --release --locked --bin gaia-webhook --bin gaia-autoscaler
  profile=release
fi
if [ "$use_running" = false ] && [ "$emulated" = false ]; then
  # Gaia's two images from those binaries, pushed to the cluster's registry by `up`
  GAIA_IMAGE_PROFILE=$profile hack/build.sh gaia-images
fi
cluster_ready() {
  eval "$(hack/cluster.sh env)"
  "$GAIA_KUBECTL" --kubeconfig "$KUBECONFIG" get --raw /readyz >/dev/null 2>&1
}
if [ "$use_running" = false ] && cluster_ready; then
  gaia_log "demo: a local cluster is already running: using it, and leaving it up at the end"
  use_running=true
elif [ "$use_running" = false ]; then
  if [ "$emulated" = true ]; then
    gaia_log "demo: step 3/4: starting the local cluster (hack/cluster.sh up)"
  else
    gaia_log "demo: step 3/4: starting the local cluster with real nodes (hack/cluster.sh up --real-nodes)"
  fi
  cluster_started=true
  hack/cluster.sh up
else
  if ! cluster_ready; then
    gaia_die "--use-running-cluster: the local cluster is not running (hack/cluster.sh up)"
  fi
  gaia_log "demo: using the running cluster"
fi
# the data plane follows the cluster that runs: real pods when it has real nodes
unset GAIA_REAL_NODES
eval "$(hack/cluster.sh env)"
plane=emulated
if [ "${GAIA_REAL_NODES:-}" = 1 ]; then plane=real; fi
if [ "$emulated" = true ] && [ "$plane" = real ]; then
  gaia_die "--emulated needs the KWOK cluster; the running one has real nodes (hack/cluster.sh down first)"
fi
if [ "$plane" = emulated ] && [ "$emulated" = false ]; then
  gaia_log "demo: the running cluster has no real nodes: the workload emulator stands in for the data plane"
fi
gaia_log "demo: step 4/4: the demo, data plane: $plane (Ctrl-C ends it early; everything is cleaned up)"
# the driver handles SIGINT itself: it stops its processes and uninstalls before exiting
python3 -m tests.harness.demo --data-plane "$plane" ${args[@]+"${args[@]}"}
