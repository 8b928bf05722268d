# shellcheck shell=bash
# shellcheck disable=SC2034  # variables are used by the scripts that source this file
# Common settings for hack/*.sh. Source it; it defines paths only (no side effects).

GAIA_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=hack/versions.env
. "$GAIA_ROOT/hack/versions.env"

GAIA_CACHE=${GAIA_CACHE:-$HOME/.cache/gaia}
GAIA_STATE=${GAIA_STATE:-$HOME/.local/state/gaia}
GAIA_OUT="$GAIA_CACHE/build"

# Build output directories, keyed by version (and the recipe revision).
GAIA_K8S_DIR="$GAIA_OUT/kubernetes-$K8S_VERSION-r$GAIA_BUILD_REV"
GAIA_ETCD_DIR="$GAIA_OUT/etcd-$ETCD_VERSION-r$GAIA_BUILD_REV"
GAIA_KWOK_DIR="$GAIA_OUT/kwok-$KWOK_VERSION-r$GAIA_BUILD_REV"
GAIA_KNATIVE_DIR="$GAIA_OUT/knative-serving-$KNATIVE_SERVING_VERSION-r$GAIA_BUILD_REV"
GAIA_KN_DIR="$GAIA_OUT/kn-$KN_CLIENT_VERSION-r$GAIA_BUILD_REV"

GAIA_TRAEFIK_DIR="$GAIA_OUT/traefik-$TRAEFIK_VERSION-r$GAIA_BUILD_REV"
GAIA_COREDNS_DIR="$GAIA_OUT/coredns-$COREDNS_VERSION-r$GAIA_BUILD_REV"
GAIA_PROMETHEUS_DIR="$GAIA_OUT/prometheus-$PROMETHEUS_VERSION-r$GAIA_BUILD_REV"
# Thanos Query + Sidecar (hack/build.sh thanos; the sharded-backend test and benchmark).
GAIA_THANOS_DIR="$GAIA_OUT/thanos-$THANOS_VERSION-r$GAIA_BUILD_REV"
# OCI image layouts (hack/images); images.list there names what cluster.sh pushes.
GAIA_IMAGES_DIR=${GAIA_IMAGES_DIR:-$GAIA_OUT/images-r$GAIA_BUILD_REV}

gaia_standin_hash() {
  (cd "$GAIA_ROOT/hack/standins/kingress" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-12)
}
GAIA_KINGRESS_DIR="$GAIA_OUT/kingress-standin-$(gaia_standin_hash 2>/dev/null || echo none)-r$GAIA_BUILD_REV"
# The GPU stand-in's device plugin (real nodes: the GPU-pool worker's nvidia.com/gpu).
gaia_gpu_standin_hash() {
  (cd "$GAIA_ROOT/hack/standins/gpu-device-plugin" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-12)
}
GAIA_GPU_STANDIN_DIR="$GAIA_OUT/gpu-standin-$(gaia_gpu_standin_hash 2>/dev/null || echo none)-r$GAIA_BUILD_REV"

gaia_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
gaia_die() { gaia_log "ERROR: $*"; exit 1; }
# free_gib PATH: whole GiB free to this user on PATH's file system (PATH's nearest existing parent).
free_gib() {
  local p=$1
  while [ ! -e "$p" ]; do p=$(dirname "$p"); done
  df -P -k "$p" | awk 'NR == 2 {print int($4 / 1048576)}'
}
# What a real-node cluster writes (docs/real-nodes.md): the registry's blobs (2 GB), what two
# containerd stores unpack (3 GB) and the kubelets' eviction reserve (1 GiB), with room to spare.
GAIA_REAL_NODES_DISK_GIB=${GAIA_REAL_NODES_DISK_GIB:-8}
