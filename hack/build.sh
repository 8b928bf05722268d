#!/usr/bin/env bash
# Build every component of the local cluster from Go modules (module proxy only,
# no binary downloads), caching outputs outside the repo keyed by version:
#   ${GAIA_CACHE:-$HOME/.cache/gaia}/build/<component>-<version>-r<rev>/
# A second run finds everything cached and returns at once.
# Also installs the Debian packages the cluster needs (prometheus, iproute2).
#
# Usage: hack/build.sh [component...]   components: deps etcd kwok kubernetes knative kn kingress
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

build_deps() {
  local missing=()
  command -v prometheus >/dev/null || missing+=(prometheus)
  command -v ip >/dev/null || missing+=(iproute2)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v curl >/dev/null || missing+=(curl)
  if ((${#missing[@]})); then
    gaia_log "apt-get install ${missing[*]}"
    # Do not let the package's init script start a system-wide prometheus.
    local policy=/usr/sbin/policy-rc.d created=0
    if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; created=1; fi
    run_step apt-get bash -c 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"' _ "${missing[@]}"
    if ((created)); then rm -f "$policy"; fi
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
  local out=$GAIA_K8S_DIR cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
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
  if [[ -x $out/controller && -x $out/webhook && -x $out/autoscaler && -d $out/config/core ]]; then
    gaia_log "knative serving $KNATIVE_SERVING_VERSION: cached"; return
  fi
  gaia_log "building knative serving $KNATIVE_SERVING_VERSION (controller webhook autoscaler)"
  local tmp="$out.tmp"; rm -rf "$tmp"; mkdir -p "$tmp/config"
  local v=$KNATIVE_SERVING_VERSION
  # shellcheck disable=SC2030,SC2031
  (export GOBIN="$tmp"; run_step knative-build go install -v -trimpath -ldflags "-s -w" \
    "knative.dev/serving/cmd/controller@$v" "knative.dev/serving/cmd/webhook@$v" \
    "knative.dev/serving/cmd/autoscaler@$v")
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

main() {
  local all=(deps etcd kwok kubernetes knative kn kingress) t0=$SECONDS c
  (($#)) || set -- "${all[@]}"
  gaia_log "build: cache $GAIA_CACHE ($(go version | cut -d' ' -f3), $(nproc) cores)"
  for c in "$@"; do
    case $c in
      deps|etcd|kwok|kubernetes|knative|kn|kingress) "build_$c" ;;
      *) gaia_die "unknown component $c" ;;
    esac
  done
  gaia_log "build: all done in $((SECONDS - t0))s"
}

main "$@"
