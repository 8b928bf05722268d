#!/usr/bin/env bash
# Build every component of the local cluster from Go modules (module proxy only,
# no binary downloads), caching outputs outside the repo keyed by version:
#   ${GAIA_CACHE:-$HOME/.cache/gaia}/build/<component>-<version>-r<rev>/
# A second run finds everything cached and returns at once.
# Also installs the Debian packages the cluster needs (prometheus, iproute2).
#
# Usage: hack/build.sh [--real-nodes] [component...]
#   components: deps etcd kwok kubernetes knative kn kingress
#   with --real-nodes or GAIA_NODES=real (what cluster.sh up --real-nodes needs) also:
#   node-deps traefik coredns prometheus images
#   gaia-images (on request only: cargo build --release + Gaia's two images)
#   thanos (on request only: Thanos Query and Sidecar for the sharded-backend test and bench)
set -euo pipefail

# shellcheck source=hack/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

export CGO_ENABLED=0
export GOTOOLCHAIN=local
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
LOGDIR="$GAIA_CACHE/logs"
SRCDIR="$GAIA_CACHE/src"
mkdir -p "$GAIA_OUT" "$LOGDIR" "$SRCDIR"
BUILD_DATE=1970-01-01T00:00:00Z

# run_step NAME CMD...: run CMD with its output in $LOGDIR/NAME.log, printing a
# heartbeat every 20 s; on failure show the log's tail and exit.
run_step() {
  local name=$1; shift
  local log="$LOGDIR/$name.log" start=$SECONDS pid next=$((SECONDS + 20))
  "$@" >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if ((SECONDS >= next)) && kill -0 "$pid" 2>/dev/null; then
      next=$((SECONDS + 20))
      gaia_log "  ... $name: $((SECONDS - start))s, $(wc -l <"$log") log lines, last: $(tail -n1 "$log" | cut -c1-100)"
    fi
  done
  if ! wait "$pid"; then
    tail -n 40 "$log" >&2
    gaia_die "$name failed after $((SECONDS - start))s (full log: $log)"
  fi
  gaia_log "  $name done in $((SECONDS - start))s"
}

# gomod_dir MODULE@VERSION: download a module and print its directory.
gomod_field() {
  go mod download -json "$1" | sed -n "s/^[[:space:]]*\"$2\": \"\(.*\)\",\{0,1\}$/\1/p"
}

# finish TMP OUT: publish a finished build atomically.
finish() { rm -rf "$2"; mv "$1" "$2"; }

# apt_install STEP PACKAGE...: install Debian packages (log in $LOGDIR/STEP.log) without letting
# their init scripts start system-wide services: a policy-rc.d that refuses is put in place for
# the install, unless one exists already (it is then left exactly as it was).
apt_install() {
  local step=$1; shift
  local policy=/usr/sbin/policy-rc.d created=0
  if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; created=1; fi
  run_step "$step" bash -c 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"' _ "$@"
  if ((created)); then rm -f "$policy"; fi
}

build_deps() {
  local missing=()
  command -v prometheus >/dev/null || missing+=(prometheus)
  command -v ip >/dev/null || missing+=(iproute2)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v curl >/dev/null || missing+=(curl)
  if ((${#missing[@]})); then
    gaia_log "apt-get install ${missing[*]}"
    # Do not let the package's init script start a system-wide prometheus.
    apt_install apt-get "${missing[@]}"
  else
    gaia_log "debian packages: present (prometheus $(prometheus --version 2>&1 | sed -n '1s/^prometheus, version \([^ ]*\).*/\1/p'))"
  fi
}

build_etcd() {
  local out=$GAIA_ETCD_DIR
  if [[ -x $out/etcd ]]; then gaia_log "etcd $ETCD_VERSION: cached"; return; fi
  gaia_log "building etcd $ETCD_VERSION"
  local src="$SRCDIR/etcd-$ETCD_VERSION" tmp="$out.tmp"
  rm -rf "$src" "$tmp"; mkdir -p "$src" "$tmp"
  printf 'module gaia.local/build/etcd\n\ngo 1.25\n' >"$src/go.mod"
  (cd "$src" && run_step etcd-get go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION")
  (cd "$src" && run_step etcd-build go build -v -trimpath \
    -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" \
    -o "$tmp/etcd" go.etcd.io/etcd/server/v3)
  finish "$tmp" "$out"
}

build_kwok() {
  local out=$GAIA_KWOK_DIR
  if [[ -x $out/kwok ]]; then gaia_log "kwok $KWOK_VERSION: cached"; return; fi
  gaia_log "building kwok $KWOK_VERSION"
  local tmp="$out.tmp"; rm -rf "$tmp"; mkdir -p "$tmp"
  # shellcheck disable=SC2030,SC2031
  (export GOBIN="$tmp"; run_step kwok-build go install -v -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION")
  finish "$tmp" "$out"
}

build_kubernetes() {
  # kubelet and kube-proxy are for the real worker nodes (cluster.sh up --real-nodes); they
  # share most packages with the control plane, so one go build of all six is the cheapest.
  local out=$GAIA_K8S_DIR cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)
  local c ok=1
  for c in "${cmds[@]}"; do [[ -x $out/$c ]] || ok=0; done
  if ((ok)); then gaia_log "kubernetes $K8S_VERSION: cached"; return; fi
  gaia_log "building kubernetes $K8S_VERSION (${cmds[*]}) -- the longest step"
  local src="$SRCDIR/kubernetes-$K8S_VERSION" tmp="$out.tmp" gomod
  rm -rf "$src" "$tmp"; mkdir -p "$src" "$tmp"
  gomod=$(gomod_field "k8s.io/kubernetes@$K8S_VERSION" GoMod)
  [[ -f $gomod ]] || gaia_die "cannot download k8s.io/kubernetes@$K8S_VERSION"
  # Wrapper module: the staging modules (replace => ./staging/src/...) are
  # replaced with their published v0.<minor>.<patch> versions.
  local staging="v0.${K8S_VERSION#v1.}"
  {
    echo "module gaia.local/build/kubernetes"
    echo
    grep -E '^go [0-9]' "$gomod"
    grep -E '^godebug ' "$gomod" || true
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/.*#\t\1 => \1 '"$staging"'#p' "$gomod"
    echo ")"
  } >"$src/go.mod"
  local pkgs=()
  for c in "${cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  (cd "$src" && run_step kubernetes-get go get "${pkgs[@]/%/@$K8S_VERSION}")
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local ld="-s -w"
  local p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ld+=" -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.gitTreeState=clean -X $p.buildDate=$BUILD_DATE"
  done
  (cd "$src" && run_step kubernetes-build go build -v -trimpath -ldflags "$ld" -o "$tmp/" "${pkgs[@]}")
  finish "$tmp" "$out"
}

build_knative() {
  local out=$GAIA_KNATIVE_DIR
  if [[ -x $out/controller && -x $out/webhook && -x $out/autoscaler && -x $out/queue && -x $out/activator \
    && -d $out/config/core ]]; then
    gaia_log "knative serving $KNATIVE_SERVING_VERSION: cached"; return
  fi
  gaia_log "building knative serving $KNATIVE_SERVING_VERSION (controller webhook autoscaler queue activator)"
  local tmp="$out.tmp"; rm -rf "$tmp"; mkdir -p "$tmp/config"
  local v=$KNATIVE_SERVING_VERSION
  # shellcheck disable=SC2030,SC2031
  (export GOBIN="$tmp"; run_step knative-build go install -v -trimpath -ldflags "-s -w" \
    "knative.dev/serving/cmd/controller@$v" "knative.dev/serving/cmd/webhook@$v" \
    "knative.dev/serving/cmd/autoscaler@$v" "knative.dev/serving/cmd/queue@$v" \
    "knative.dev/serving/cmd/activator@$v")
  # YAML: config/core from the module; its symlinks into vendor/ are not in
  # the module zip, so take those files from networking/caching at the versions
  # serving's go.mod requires.
  local dir gomod netv cachev netdir cachedir
  dir=$(gomod_field "knative.dev/serving@$v" Dir)
  gomod=$(gomod_field "knative.dev/serving@$v" GoMod)
  netv=$(awk '$1=="knative.dev/networking"{print $2; exit}' "$gomod")
  cachev=$(awk '$1=="knative.dev/caching"{print $2; exit}' "$gomod")
  netdir=$(gomod_field "knative.dev/networking@$netv" Dir)
  cachedir=$(gomod_field "knative.dev/caching@$cachev" Dir)
  cp -r "$dir/config/core" "$tmp/config/core"
  chmod -R u+w "$tmp/config"
  cp "$cachedir/config/image.yaml" "$tmp/config/core/300-imagecache.yaml"
  local f
  for f in certificate domain-claim ingress serverlessservice; do
    cp "$netdir/config/$f.yaml" "$tmp/config/core/300-resources/$f.yaml"
  done
  cp "$netdir/config/config-network.yaml" "$tmp/config/core/configmaps/network.yaml"
  chmod -R u+w "$tmp/config"
  printf 'knative.dev/serving %s\nknative.dev/networking %s\nknative.dev/caching %s\n' \
    "$v" "$netv" "$cachev" >"$tmp/config/VERSIONS"
  finish "$tmp" "$out"
}

build_kn() {
  local out=$GAIA_KN_DIR
  if [[ -x $out/kn ]]; then gaia_log "kn $KN_CLIENT_VERSION: cached"; return; fi
  gaia_log "building kn $KN_CLIENT_VERSION"
  local src="$SRCDIR/kn-$KN_CLIENT_VERSION" tmp="$out.tmp"
  rm -rf "$src" "$tmp"; mkdir -p "$src" "$tmp"
  local gomod goline clientdir
  gomod=$(gomod_field "knative.dev/client@$KN_CLIENT_VERSION" GoMod)
  clientdir=$(gomod_field "knative.dev/client@$KN_CLIENT_VERSION" Dir)
  goline=$(grep -E '^go [0-9]' "$gomod")
  cat >"$src/go.mod" <<EOM
module gaia.local/build/kn

$goline

require (
	knative.dev/client $KN_CLIENT_VERSION
	knative.dev/client/pkg $KN_CLIENT_PKG_VERSION
)
EOM
  # go.sum: the client module's own go.sum (the module itself is verified against
  # the checksum database) plus the pinned hashes of knative.dev/client/pkg. Some of
  # its dependencies (knative.dev/eventing v0.48.0) have no entry in the checksum
  # database reachable here, so they are verified through this go.sum instead.
  {
    cat "$clientdir/go.sum"
    echo "knative.dev/client/pkg $KN_CLIENT_PKG_VERSION $KN_CLIENT_PKG_SUM"
    echo "knative.dev/client/pkg $KN_CLIENT_PKG_VERSION/go.mod $KN_CLIENT_PKG_GOMOD_SUM"
  } >"$src/go.sum"
  (cd "$src" && run_step kn-get go get "knative.dev/client/cmd/kn@$KN_CLIENT_VERSION")
  local p=knative.dev/client/pkg/commands/version
  (cd "$src" && run_step kn-build go build -v -trimpath \
    -ldflags "-s -w -X $p.Version=$KN_CLIENT_VERSION -X $p.BuildDate=$BUILD_DATE -X $p.GitRevision=${KN_CLIENT_PKG_VERSION##*-}" \
    -o "$tmp/kn" knative.dev/client/cmd/kn)
  finish "$tmp" "$out"
}

build_kingress() {
  local out=$GAIA_KINGRESS_DIR
  if [[ -x $out/kingress-standin ]]; then gaia_log "kingress stand-in: cached"; return; fi
  gaia_log "building kingress stand-in (hack/standins/kingress)"
  local tmp="$out.tmp"; rm -rf "$tmp"; mkdir -p "$tmp"
  (cd "$GAIA_ROOT/hack/standins/kingress" && run_step kingress-build go build -v -trimpath -mod=readonly \
    -ldflags "-s -w" -o "$tmp/kingress-standin" .)
  finish "$tmp" "$out"
}

# ---------------------------------------------------------------- real worker nodes
# (hack/build.sh --real-nodes, or the components by name; cluster.sh up --real-nodes)

# The GPU stand-in: a device plugin that advertises fake nvidia.com/gpu devices on the
# GPU-pool worker (hack/standins/gpu-device-plugin/main.go says why and how).
build_gpu-standin() {
  local out=$GAIA_GPU_STANDIN_DIR
  if [[ -x $out/gpu-device-plugin ]]; then gaia_log "GPU stand-in device plugin: cached"; return; fi
  gaia_log "building the GPU stand-in device plugin (hack/standins/gpu-device-plugin)"
  local tmp="$out.tmp"; rm -rf "$tmp"; mkdir -p "$tmp"
  (cd "$GAIA_ROOT/hack/standins/gpu-device-plugin" && run_step gpu-standin-build go build -v -trimpath \
    -mod=readonly -ldflags "-s -w" -o "$tmp/gpu-device-plugin" .)
  finish "$tmp" "$out"
}

build_node-deps() {
  # containerd + runc (Debian: 1.6.20 / 1.1.5), CNI plugins, the OCI registry, mmdebstrap
  # (function runtime rootfs), iptables + conntrack (kube-proxy, iptables mode).
  local missing=() pair
  for pair in containerd:containerd runc:runc docker-registry:docker-registry \
    mmdebstrap:mmdebstrap iptables:iptables conntrack:conntrack nsenter:util-linux; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair##*:}")
  done
  [[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
  if ((${#missing[@]})); then
    gaia_log "apt-get install ${missing[*]}"
    # Do not let the packages' init scripts start a system-wide registry or containerd.
    apt_install apt-get-nodes "${missing[@]}"
  else
    gaia_log "debian packages for real nodes: present (containerd $(containerd --version | cut -d' ' -f3), runc $(runc --version | sed -n '1s/runc version //p'))"
  fi
}

build_traefik() {
  local out=$GAIA_TRAEFIK_DIR
  if [[ -x $out/traefik ]]; then gaia_log "traefik $TRAEFIK_VERSION: cached"; return; fi
  gaia_log "building traefik $TRAEFIK_VERSION"
  local src="$SRCDIR/traefik-$TRAEFIK_VERSION" tmp="$out.tmp" gomod
  rm -rf "$src" "$tmp"; mkdir -p "$src" "$tmp"
  gomod=$(gomod_field "github.com/traefik/traefik/v3@$TRAEFIK_VERSION" GoMod)
  [[ -f $gomod ]] || gaia_die "cannot download traefik $TRAEFIK_VERSION"
  # Wrapper module: traefik's go.mod has replace/exclude directives (forks of three
  # modules, an ambiguous tencentcloud module), which `go install mod@v` refuses.
  {
    echo "module gaia.local/build/traefik"
    echo
    grep -E '^go [0-9]' "$gomod"
    echo
    echo "require github.com/traefik/traefik/v3 $TRAEFIK_VERSION"
    echo
    sed -n '/^replace (/,/^)/p' "$gomod"
    grep -E '^exclude ' "$gomod" || true
  } >"$src/go.mod"
  (cd "$src" && run_step traefik-get go get "github.com/traefik/traefik/v3/cmd/traefik@$TRAEFIK_VERSION")
  local p=github.com/traefik/traefik/v3/pkg/version
  (cd "$src" && run_step traefik-build go build -v -trimpath \
    -ldflags "-s -w -X $p.Version=$TRAEFIK_VERSION -X $p.BuildDate=$BUILD_DATE -X $p.Codename=gaia" \
    -o "$tmp/traefik" github.com/traefik/traefik/v3/cmd/traefik)
  finish "$tmp" "$out"
}

build_coredns() {
  local out=$GAIA_COREDNS_DIR
  if [[ -x $out/coredns ]]; then gaia_log "coredns $COREDNS_VERSION: cached"; return; fi
  gaia_log "building coredns $COREDNS_VERSION (plugins: kubernetes, cache, errors, health, ready, log, prometheus)"
  local src="$SRCDIR/coredns-$COREDNS_VERSION" tmp="$out.tmp" gomod
  rm -rf "$src" "$tmp"; mkdir -p "$src" "$tmp"
  gomod=$(gomod_field "github.com/coredns/coredns@$COREDNS_VERSION" GoMod)
  [[ -f $gomod ]] || gaia_die "cannot download coredns $COREDNS_VERSION"
  printf 'module gaia.local/build/coredns\n\n%s\n' "$(grep -E '^go [0-9]' "$gomod")" >"$src/go.mod"
  # Only the plugins the cluster uses (CoreDNS' documented way to build a custom server:
  # set dnsserver.Directives, import the plugins): a fraction of the full build.
  cat >"$src/main.go" <<'EOM'
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
)

// Plugin order of the request chain, a subset of CoreDNS' plugin.cfg order.
var directives = []string{"log", "errors", "health", "ready", "prometheus", "cache", "kubernetes"}

func init() { dnsserver.Directives = directives }

func main() { coremain.Run() }
EOM
  (cd "$src" && run_step coredns-get go get "github.com/coredns/coredns@$COREDNS_VERSION" && go mod tidy)
  (cd "$src" && run_step coredns-build go build -v -trimpath \
    -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" \
    -o "$tmp/coredns" .)
  finish "$tmp" "$out"
}

# Prometheus with Kubernetes service discovery. Debian's prometheus 2.42 is built without it
# (its kubernetes_sd_configs are "field not found"), so the real-node cluster builds 2.55.1
# from its module: a copy of the module (replace => ./prometheus) whose plugins/plugins.go,
# which imports all 20-odd discovery mechanisms, is replaced by one importing only kubernetes
# (file and http are always in) -- a go build -overlay may not replace files of the module
# cache. prometheus' own replace/exclude lines are copied into the wrapper. No web UI assets
# (the HTTP API, which is all the project uses, works without them).
build_prometheus() {
  local out=$GAIA_PROMETHEUS_DIR
  if [[ -x $out/prometheus ]]; then gaia_log "prometheus $PROMETHEUS_VERSION: cached"; return; fi
  gaia_log "building prometheus $PROMETHEUS_VERSION (discovery: kubernetes, file, http)"
  local src="$SRCDIR/prometheus-$PROMETHEUS_VERSION" tmp="$out.tmp" gomod dir
  rm -rf "$src" "$tmp"; mkdir -p "$src" "$tmp"
  gomod=$(gomod_field "github.com/prometheus/prometheus@$PROMETHEUS_VERSION" GoMod)
  dir=$(gomod_field "github.com/prometheus/prometheus@$PROMETHEUS_VERSION" Dir)
  [[ -f $gomod && -d $dir ]] || gaia_die "cannot download prometheus $PROMETHEUS_VERSION"
  cp -r "$dir" "$src/prometheus"
  chmod -R u+w "$src/prometheus"
  cat >"$src/prometheus/plugins/plugins.go" <<'EOM'
// Replaced by gaia's hack/build.sh: only the discovery mechanism the local cluster uses.
package plugins

import (
	// Register kubernetes plugin.
	_ "github.com/prometheus/prometheus/discovery/kubernetes"
)
EOM
  {
    echo "module gaia.local/build/prometheus"
    echo
    grep -E '^go [0-9]' "$gomod"
    echo
    echo "require github.com/prometheus/prometheus $PROMETHEUS_VERSION"
    echo
    echo "replace github.com/prometheus/prometheus => ./prometheus"
    echo
    sed -n '/^replace (/,/^)/p' "$gomod"
    sed -n '/^exclude [^(]/p;/^exclude (/,/^)/p' "$gomod"
  } >"$src/go.mod"
  cp "$dir/go.sum" "$src/go.sum"
  (cd "$src" && run_step prometheus-get go get "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION")
  local p=github.com/prometheus/common/version
  (cd "$src" && run_step prometheus-build go build -v -trimpath \
    -ldflags "-s -w -X $p.Version=2.${PROMETHEUS_VERSION#v0.} -X $p.Revision=$PROMETHEUS_VERSION -X $p.Branch=gaia -X $p.BuildUser=gaia -X $p.BuildDate=$BUILD_DATE" \
    -o "$tmp/prometheus" github.com/prometheus/prometheus/cmd/prometheus)
  finish "$tmp" "$out"
}

# Thanos (Query and Sidecar: the sharded metrics backend of tests/e2e/test_sharded.py and the
# 100,000-Service benchmark), built from its module like prometheus above: a copy of the module
# (replace => ./thanos) in a wrapper whose replace/exclude lines are thanos' own. No web UI
# assets. On request only (hack/build.sh thanos).
# Built with thanos' release tags (its .promu.yml): slicelabels is required, not an option. Since
# Prometheus 3 (module v0.300+) labels.Labels is a string-backed struct unless slicelabels is set,
# and thanos' labelpb casts labels.Labels to []ZLabel through unsafe.Pointer; without the tag
# every Sidecar/Store gRPC answer is encoded from garbage (Size() is a random number: the Sidecar
# panics "makeslice: len out of range" in grpc's buffer pool on Query's first Info call). The
# tags are recorded beside the binary: a cached binary built without them is rebuilt.
THANOS_TAGS=netgo,slicelabels
build_thanos() {
  local out=$GAIA_THANOS_DIR
  if [[ -x $out/thanos && $(cat "$out/tags" 2>/dev/null) == "$THANOS_TAGS" ]]; then
    gaia_log "thanos $THANOS_VERSION: cached"; return
  fi
  gaia_log "building thanos $THANOS_VERSION"
  local src="$SRCDIR/thanos-$THANOS_VERSION" tmp="$out.tmp" gomod dir
  rm -rf "$src" "$tmp"; mkdir -p "$src" "$tmp"
  gomod=$(gomod_field "github.com/thanos-io/thanos@$THANOS_VERSION" GoMod)
  dir=$(gomod_field "github.com/thanos-io/thanos@$THANOS_VERSION" Dir)
  [[ -f $gomod && -d $dir ]] || gaia_die "cannot download thanos $THANOS_VERSION"
  cp -r "$dir" "$src/thanos"
  chmod -R u+w "$src/thanos"
  {
    echo "module gaia.local/build/thanos"
    echo
    grep -E '^go [0-9]' "$gomod"
    echo
    echo "require github.com/thanos-io/thanos $THANOS_VERSION"
    echo
    echo "replace github.com/thanos-io/thanos => ./thanos"
    echo
    sed -n '/^replace (/,/^)/p;/^replace [^(]/p' "$gomod"
    sed -n '/^exclude [^(]/p;/^exclude (/,/^)/p' "$gomod"
  } >"$src/go.mod"
  cp "$dir/go.sum" "$src/go.sum"
  (cd "$src" && run_step thanos-get go get "github.com/thanos-io/thanos/cmd/thanos@$THANOS_VERSION")
  local p=github.com/prometheus/common/version
  (cd "$src" && run_step thanos-build go build -v -trimpath -tags "$THANOS_TAGS" \
    -ldflags "-s -w -X $p.Version=${THANOS_VERSION#v} -X $p.Revision=$THANOS_VERSION -X $p.Branch=gaia -X $p.BuildUser=gaia -X $p.BuildDate=$BUILD_DATE" \
    -o "$tmp/thanos" github.com/thanos-io/thanos/cmd/thanos)
  echo "$THANOS_TAGS" >"$tmp/tags"
  finish "$tmp" "$out"
}

# Images (OCI layouts, hack/images/oci.py), each rebuilt when the hash of its inputs changes.
image_done() { [[ -f $1/index.json && $(cat "$1/inputs" 2>/dev/null) == "$2" ]]; }

# static_image NAME:TAG INPUTS_HASH USER BINARY...: an image of static binaries in /ko-app
# (where Knative's own ko-built images put them) plus CA certificates.
static_image() {
  local ref=$1 hash=$2 user=$3; shift 3
  local dir="$GAIA_IMAGES_DIR/${ref//[:\/]/_}"
  if image_done "$dir" "$hash"; then IMAGES+=("$ref $dir"); return; fi
  local root="$dir.root" b
  rm -rf "$root"; mkdir -p "$root/ko-app" "$root/etc/ssl/certs"
  for b in "$@"; do cp "$b" "$root/ko-app/"; done
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
  python3 "$IMAGES_PY" layer-dir "$dir.layer.tar" "$root"
  python3 "$IMAGES_PY" image "$dir" --layer "$dir.layer.tar" --user "$user" \
    --entrypoint "[\"/ko-app/$(basename "$1")\"]" --name "$ref" >/dev/null
  echo "$hash" >"$dir/inputs"
  rm -rf "$root" "$dir.layer.tar"
  IMAGES+=("$ref $dir")
}

build_images() {
  IMAGES_PY="$GAIA_ROOT/hack/images/oci.py"
  export SOURCE_DATE_EPOCH=$GAIA_SOURCE_DATE_EPOCH
  mkdir -p "$GAIA_IMAGES_DIR"
  IMAGES=()
  local h
  build_runtime_image
  # pause: the pod sandbox image containerd's CRI needs (sandbox_image).
  h=$(cat "$GAIA_ROOT/hack/images/pause/pause.go" "$IMAGES_PY" | sha256sum | cut -c1-16)
  if ! image_done "$GAIA_IMAGES_DIR/gaia_pause_$GAIA_PAUSE_TAG" "$h"; then
    go build -trimpath -ldflags "-s -w" -o "$GAIA_IMAGES_DIR/pause.bin" "$GAIA_ROOT/hack/images/pause/pause.go"
  fi
  static_image "gaia/pause:$GAIA_PAUSE_TAG" "$h" 65535 "$GAIA_IMAGES_DIR/pause.bin"
  rm -f "$GAIA_IMAGES_DIR/pause.bin"
  # Knative's data plane, from the binaries build_knative made.
  [[ -x $GAIA_KNATIVE_DIR/queue ]] || gaia_die "knative queue missing: hack/build.sh knative"
  local c
  for c in queue activator; do
    h=$(cat "$GAIA_KNATIVE_DIR/$c" "$IMAGES_PY" | sha256sum | cut -c1-16)
    static_image "knative/$c:$KNATIVE_SERVING_VERSION" "$h" 65532 "$GAIA_KNATIVE_DIR/$c"
  done
  printf '%s\n' "${IMAGES[@]}" >"$GAIA_IMAGES_DIR/images.list.tmp"
  # keep what build_gaia-images listed
  grep '^gaia/gaia-' "$GAIA_IMAGES_DIR/images.list" >>"$GAIA_IMAGES_DIR/images.list.tmp" 2>/dev/null || true
  mv "$GAIA_IMAGES_DIR/images.list.tmp" "$GAIA_IMAGES_DIR/images.list"
  gaia_log "images: ${#IMAGES[@]} OCI layouts in $GAIA_IMAGES_DIR ($(du -sh "$GAIA_IMAGES_DIR" | cut -f1))"
}

# Gaia's own images, as the root Dockerfile describes them (tests/e2e/test_images.py checks
# that both agree): Debian bookworm (here: mmdebstrap minbase + ca-certificates), the binary at
# /usr/local/bin/BIN, ENV GAIA_BIN, USER 65532:65532, ENTRYPOINT ["/bin/sh", "-c",
# "exec \"$GAIA_BIN\" \"$@\"", "gaia"]. The binaries come from the workspace's cargo build.
build_gaia-images() {
  IMAGES_PY="$GAIA_ROOT/hack/images/oci.py"
  export SOURCE_DATE_EPOCH=$GAIA_SOURCE_DATE_EPOCH
  mkdir -p "$GAIA_IMAGES_DIR"
  # shellcheck disable=SC2016  # the hook is run by mmdebstrap's sh, $1 = the chroot
  local mm=(mmdebstrap --mode=root --variant=minbase --format=tar --include=ca-certificates
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*'
    --customize-hook='rm -f "$1/etc/resolv.conf" "$1/etc/hostname"' bookworm)
  local h base
  h=$(printf '%s\n' "${mm[@]}" "$SOURCE_DATE_EPOCH" | sha256sum | cut -c1-16)
  base="$GAIA_IMAGES_DIR/rootfs-gaia-base-$h.tar"
  if [[ ! -f $base ]]; then
    gaia_log "gaia base rootfs: mmdebstrap bookworm minbase + ca-certificates"
    run_step gaia-base-rootfs "${mm[@]}" "$base.tmp" /etc/apt/sources.list.d/debian.sources
    mv "$base.tmp" "$base"
  fi
  local target="${CARGO_TARGET_DIR:-$GAIA_ROOT/target}" version bin
  version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$GAIA_ROOT/Cargo.toml")
  # GAIA_IMAGE_PROFILE=debug: the binaries the tests build anyway (hack/test.sh), which saves
  # a release build of the workspace (about 20 minutes on 2 cores); the image's label says so.
  local profile=${GAIA_IMAGE_PROFILE:-release} flags=(--locked --bin gaia-webhook --bin gaia-autoscaler)
  case $profile in
    release) flags+=(--release) ;;
    debug) ;;
    *) gaia_die "GAIA_IMAGE_PROFILE must be release or debug, not $profile" ;;
  esac
  (cd "$GAIA_ROOT" && run_step gaia-cargo-build cargo build "${flags[@]}")
  [[ -f $GAIA_IMAGES_DIR/images.list ]] || : >"$GAIA_IMAGES_DIR/images.list"
  for bin in gaia-webhook gaia-autoscaler; do
    local ref="gaia/$bin:$version" dir
    dir="$GAIA_IMAGES_DIR/${ref//[:\/]/_}"
    h=$(cat "$target/$profile/$bin" "$IMAGES_PY" "$base" | sha256sum | cut -c1-16)
    if ! image_done "$dir" "$h"; then
      local root="$dir.root"
      rm -rf "$root"; mkdir -p "$root/usr/local/bin"
      install -m 0755 "$target/$profile/$bin" "$root/usr/local/bin/$bin"
      python3 "$IMAGES_PY" layer-dir "$dir.bin.tar" "$root"
      # shellcheck disable=SC2016  # the entrypoint's shell expands $GAIA_BIN, not this one
      python3 "$IMAGES_PY" image "$dir" --layer "$base" --layer "$dir.bin.tar" \
        --env "GAIA_BIN=/usr/local/bin/$bin" --user 65532:65532 \
        --entrypoint '["/bin/sh", "-c", "exec \"$GAIA_BIN\" \"$@\"", "gaia"]' --name "$ref" \
        --label "dev.gaia.build-profile=$profile" >/dev/null
      echo "$h" >"$dir/inputs"
      rm -rf "$root" "$dir.bin.tar"
    fi
    grep -v "^$ref " "$GAIA_IMAGES_DIR/images.list" >"$GAIA_IMAGES_DIR/images.list.tmp" || true
    echo "$ref $dir" >>"$GAIA_IMAGES_DIR/images.list.tmp"
    mv "$GAIA_IMAGES_DIR/images.list.tmp" "$GAIA_IMAGES_DIR/images.list"
  done
  gaia_log "gaia images: gaia/gaia-webhook:$version, gaia/gaia-autoscaler:$version ($profile build)"
}

# The function runtime: a Debian bookworm rootfs made by mmdebstrap from Debian packages
# (hack/images/runtime/packages.txt) -- reproducible with SOURCE_DATE_EPOCH for the same
# package versions -- plus the function server. Two layers: the big rootfs changes only with
# the package list, the server layer with the server.
build_runtime_image() {
  local pkgs rfs_hash rootfs srv_hash dir ref="gaia/function-runtime:$GAIA_RUNTIME_TAG"
  pkgs=$(grep -v '^#' "$GAIA_ROOT/hack/images/runtime/packages.txt" | paste -sd, -)
  # shellcheck disable=SC2016  # the hooks are run by mmdebstrap's sh, $1 = the chroot
  local mm=(mmdebstrap --mode=root --variant=essential --format=tar --include="$pkgs"
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-exclude=/usr/share/info/*'
    --customize-hook='rm -f "$1/etc/resolv.conf" "$1/etc/hostname"'
    --customize-hook='mkdir -p "$1/usr/local/share/gaia"'
    --customize-hook='chroot "$1" dpkg-query -W -f "\${Package} \${Version}\n" > "$1/usr/local/share/gaia/packages.txt"'
    bookworm)
  rfs_hash=$(printf '%s\n' "${mm[@]}" "$SOURCE_DATE_EPOCH" | sha256sum | cut -c1-16)
  rootfs="$GAIA_IMAGES_DIR/rootfs-python-$rfs_hash.tar"
  if [[ ! -f $rootfs ]]; then
    gaia_log "function runtime rootfs: mmdebstrap bookworm + $pkgs"
    # The chroot's apt sources are this machine's own (the archive it is allowed to reach).
    run_step runtime-rootfs "${mm[@]}" "$rootfs.tmp" /etc/apt/sources.list.d/debian.sources
    mv "$rootfs.tmp" "$rootfs"
  fi
  # Python packages Debian does not have (transformers, ...): exact versions and hashes from
  # hack/images/runtime/wheels.txt, binary wheels for bookworm's CPython 3.11, downloaded once
  # (pip download checks every hash) and unpacked by oci.py into /usr/local's dist-packages,
  # which Debian's python3 searches before its own. A layer of their own: it changes only with
  # the list.
  local reqs="$GAIA_ROOT/hack/images/runtime/wheels.txt" whl_hash wheels
  whl_hash=$(cat "$reqs" "$IMAGES_PY" | sha256sum | cut -c1-16)
  wheels="$GAIA_IMAGES_DIR/wheels-$whl_hash"
  if [[ ! -f $wheels/layer.tar ]]; then
    gaia_log "function runtime wheels: $(grep -c '^[a-z]' "$reqs") packages from hack/images/runtime/wheels.txt"
    rm -rf "$wheels"; mkdir -p "$wheels/dl"
    run_step runtime-wheels python3 -m pip download --quiet --no-deps --only-binary=:all: \
      --require-hashes --implementation cp --python-version 3.11 --platform manylinux2014_x86_64 \
      -r "$reqs" -d "$wheels/dl"
    python3 "$IMAGES_PY" unpack-wheels "$wheels/root/usr/local/lib/python3.11/dist-packages" "$wheels"/dl/*.whl
    python3 "$IMAGES_PY" layer-dir "$wheels/layer.tar.tmp" "$wheels/root"
    mv "$wheels/layer.tar.tmp" "$wheels/layer.tar"
    rm -rf "$wheels/root"
  fi
  local srv="$GAIA_ROOT/hack/images/runtime/function_server.py"
  # the GPU stand-in's sampler and the calibrated profiles it answers with
  local standin=("$GAIA_ROOT/tests/harness/gpu_profile.py" "$GAIA_ROOT"/tests/eval/profiles/*.json)
  srv_hash=$(cat "$srv" "${standin[@]}" "$IMAGES_PY" | sha256sum | cut -c1-8)
  dir="$GAIA_IMAGES_DIR/${ref//[:\/]/_}"
  if ! image_done "$dir" "$rfs_hash-$whl_hash-$srv_hash"; then
    local root="$dir.root"
    rm -rf "$root"; mkdir -p "$root/usr/local/lib/gaia" "$root/usr/local/share/gaia/profiles" "$root/app"
    cp "$srv" "$root/usr/local/lib/gaia/function_server.py"
    cp "$GAIA_ROOT/tests/harness/gpu_profile.py" "$root/usr/local/lib/gaia/gpu_profile.py"
    cp "$GAIA_ROOT"/tests/eval/profiles/*.json "$root/usr/local/share/gaia/profiles/"
    python3 "$IMAGES_PY" layer-dir "$dir.server.tar" "$root"
    python3 "$IMAGES_PY" image "$dir" --layer "$rootfs" --layer "$wheels/layer.tar" --layer "$dir.server.tar" \
      --entrypoint '["python3", "/usr/local/lib/gaia/function_server.py"]' \
      --env PYTHONUNBUFFERED=1 --env PYTHONDONTWRITEBYTECODE=1 --workdir /app \
      --name "$ref" >/dev/null
    echo "$rfs_hash-$whl_hash-$srv_hash" >"$dir/inputs"
    rm -rf "$root" "$dir.server.tar"
  fi
  IMAGES+=("$ref $dir")
}

main() {
  local all=(deps etcd kwok kubernetes knative kn kingress) t0=$SECONDS c
  local real=(node-deps traefik coredns prometheus gpu-standin images)
  if [[ ${1:-} == --real-nodes ]]; then shift; (($#)) || set -- "${all[@]}" "${real[@]}"; fi
  if (($# == 0)) && [[ ${GAIA_NODES:-} == real ]]; then set -- "${all[@]}" "${real[@]}"; fi
  (($#)) || set -- "${all[@]}"
  gaia_log "build: cache $GAIA_CACHE ($(go version | cut -d' ' -f3), $(nproc) cores)"
  for c in "$@"; do
    case $c in
      deps|etcd|kwok|kubernetes|knative|kn|kingress|node-deps|traefik|coredns|prometheus|gpu-standin|images|gaia-images|thanos) "build_$c" ;;
      *) gaia_die "unknown component $c" ;;
    esac
  done
  gaia_log "build: all done in $((SECONDS - t0))s"
}

main "$@"
