#!/usr/bin/env bash
# Local Knative cluster from processes built by hack/build.sh (no container runtime):
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, KWOK (fake kubelet)
# with a CPU pool and a GPU pool, Knative Serving (controller, webhook, autoscaler),
# a KIngress stand-in (test harness only) and Prometheus.
#
# Usage: hack/cluster.sh up [--real-nodes]|down|restart|status|env|exec CMD...
#        hack/cluster.sh push-images: with real nodes, push what hack/build.sh made since `up`
#        (e.g. `hack/build.sh gaia-images`) and pin the Gaia overlay to the new digests
#        hack/cluster.sh stop NAME [--kill]|start NAME|restart NAME: one component (apiserver,
#        prometheus, ...) of the running cluster, for the fault tests (tests/e2e/test_faults.py)
#
# With --real-nodes (or GAIA_NODES=real) it adds real worker nodes (hack/nodes.sh): a CPU-pool
# and a GPU-pool kubelet with containerd, CNI, kube-proxy, CoreDNS, a local OCI registry,
# Knative's activator and queue-proxy from that registry, and Traefik as the KIngress; KWOK
# nodes stay (tainted gaia.dev/kwok=fake:NoSchedule then), the stand-in is not started.
#
# Network safety: every cluster process runs inside network namespaces this script
# creates. The main one ($GAIA_NETNS, default "gaia") has only lo and one veth to the
# host, addressed ${GAIA_NET_PREFIX}.0.2 (namespace) / .0.1 (host), and NO default
# route; the Knative autoscaler runs in a second namespace attached to the first the
# same way (it needs port 8080, which the Knative controller also takes). Connects to
# pod IPs (KWOK CIDR) or ClusterIPs fail inside the namespace (ENETUNREACH): nothing
# can leave the machine. The host's ip_forward is never touched.
set -euo pipefail

# shellcheck source=hack/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

STATE="$GAIA_STATE/cluster"
LOGS="$STATE/logs"
RUN="$STATE/run"
PKI="$STATE/pki"
NETNS=${GAIA_NETNS:-gaia}
# Interface names ("$NETNS-as-m", "$NETNS-w1m") must fit Linux's 15 characters.
if ((${#NETNS} > 10)) || [[ ! $NETNS =~ ^[a-z0-9][a-z0-9-]*$ ]]; then
  echo "cluster.sh: GAIA_NETNS=$NETNS: use at most 10 characters, a-z 0-9 and '-' (it prefixes interface names, which Linux limits to 15)" >&2
  exit 2
fi
NET_PREFIX=${GAIA_NET_PREFIX:-10.210}
HOST_IP="$NET_PREFIX.0.1"
NS_IP="$NET_PREFIX.0.2"
AS_NETNS="$NETNS-as"
AS_LINK_IP="$NET_PREFIX.1.1"    # main namespace's end of the autoscaler link
AS_IP="$NET_PREFIX.1.2"         # the autoscaler's "pod IP"
VETH_HOST="$NETNS-h"
VETH_NS="$NETNS-n"
VETH_AS_MAIN="$NETNS-as-m"
VETH_AS="$NETNS-as-p"
SERVICE_CIDR=10.96.0.0/16
SERVICE_API_IP=10.96.0.1
POD_CIDR=10.244.0.0/16
APISERVER="https://$NS_IP:6443"
PROM_PORT=9090
PROM_URL="http://$NS_IP:$PROM_PORT"
KUBECONFIG_FILE="$STATE/kubeconfig"
KNATIVE_NS=knative-serving
STANDIN_CLASS=gaia-standin.ingress.networking.knative.dev
# Components in start order; down stops them in reverse.
KWOK_COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok
  knative-controller knative-webhook knative-autoscaler kingress-standin prometheus)
COMPONENTS=("${KWOK_COMPONENTS[@]}")

# shellcheck source=hack/nodes.sh
. "$GAIA_ROOT/hack/nodes.sh"
# Every component either mode may have started (down, status); the running mode's set.
ALL_COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok
  "${REAL_COMPONENTS[@]}" knative-controller knative-webhook knative-autoscaler
  kingress-standin prometheus)
# Both ways: a KWOK `up` after a real-node cluster (its marker file gone with the old state)
# must not wait for the real nodes' components.
active_components() {
  if real_mode; then
    COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok
      "${REAL_COMPONENTS[@]}" knative-controller knative-webhook knative-autoscaler prometheus)
  else
    COMPONENTS=("${KWOK_COMPONENTS[@]}")
  fi
}
active_components

KUBECTL="$GAIA_K8S_DIR/kubectl"
KN="$GAIA_KN_DIR/kn"

k() { "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" "$@"; }
in_ns() { ip netns exec "$NETNS" "$@"; }
# netns_exists NAME: exactly that name (grep -w took "gaia" to exist when only "gaia-soak" did,
# so the default cluster could not start beside an isolated one).
netns_exists() { ip netns list | awk '{print $1}' | grep -qxF -- "$1"; }

# wait_for DESCRIPTION TIMEOUT_S CMD...: retry CMD (quietly) every 0.5 s.
wait_for() {
  local desc=$1 timeout=$2 start=$SECONDS; shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS - start >= timeout)); then
      gaia_log "timed out after ${timeout}s waiting for $desc; last attempt:"
      "$@" 2>&1 | tail -n 5 >&2 || true
      return 1
    fi
    sleep 0.5
  done
}

# pods_report NAMESPACE SELECTOR: why the pods are not ready (phase, reason, message: an
# eviction says which resource ran short) and the namespace's last warnings.
pods_report() {
  k -n "$1" get pods -l "$2" -o \
    'custom-columns=POD:.metadata.name,NODE:.spec.nodeName,PHASE:.status.phase,REASON:.status.reason,MESSAGE:.status.message' >&2 || true
  k -n "$1" get events --field-selector type=Warning --sort-by=.lastTimestamp 2>/dev/null | tail -n 8 >&2 || true
  gaia_log "disk: $(free_gib "$STATE") GiB free under $STATE"
}

pid_of() { [[ -f $RUN/$1.pid ]] && cat "$RUN/$1.pid"; }

# alive NAME: the recorded process is running and is still the binary we started.
alive() {
  local pid exe
  pid=$(pid_of "$1") || return 1
  [[ -n $pid && -d /proc/$pid ]] || return 1
  exe=$(cat "$RUN/$1.exe" 2>/dev/null) || return 1
  local cur
  cur=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [[ ${cur% (deleted)} == "$exe" ]]
}

# start NAME NETNS [VAR=VALUE...] BINARY ARGS...: start a cluster process in a
# network namespace, in its own session, with extra environment VAR=VALUE,
# logging to $LOGS/NAME.log; its PID goes to $RUN/NAME.pid.
start() {
  local name=$1 ns=$2; shift 2
  local envs=()
  while [[ ${1:-} == *=* && ${1:-} != -* ]]; do envs+=("$1"); shift; done
  local bin=$1; shift
  [[ -x $bin ]] || gaia_die "$bin missing: run hack/build.sh"
  readlink -f "$bin" >"$RUN/$name.exe"
  # what `start NAME` (component) needs to start it again the same way
  printf '%s\0' "${START_NSENTER:-0}" "$name" "$ns" "${envs[@]}" "$bin" "$@" >"$RUN/$name.args"
  # setsid (no fork: we are not a group leader) -> ip netns exec/nsenter -> bash writes
  # its PID, then execs env, which execs the binary: one PID all along.
  # ip netns exec also makes a private mount namespace with its own /sys; the real nodes'
  # processes need the host's mounts (cgroups, volumes): START_NSENTER=1 enters the netns only.
  local enter=(ip netns exec "$ns")
  [[ ${START_NSENTER:-0} != 1 ]] || enter=(nsenter --net="/var/run/netns/$ns")
  # shellcheck disable=SC2016  # expanded by the inner bash
  setsid "${enter[@]}" bash -c 'echo $$ >"$1"; shift; exec env "$@"' _ \
    "$RUN/$name.pid" "${envs[@]}" "$bin" "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  disown
  local i
  for i in $(seq 50); do [[ -s $RUN/$name.pid ]] && break; sleep 0.1; done
  gaia_log "started $name (pid $(pid_of "$name"))"
}

# ---------------------------------------------------------------- network
net_up() {
  if netns_exists "$NETNS"; then net_down; fi
  ip netns add "$NETNS"
  ip netns add "$AS_NETNS"
  ip link add "$VETH_HOST" type veth peer name "$VETH_NS" netns "$NETNS"
  ip addr add "$HOST_IP/30" dev "$VETH_HOST"
  ip link set "$VETH_HOST" up
  in_ns ip link set lo up
  in_ns ip addr add "$NS_IP/30" dev "$VETH_NS"
  in_ns ip link set "$VETH_NS" up
  # autoscaler "pod": its own namespace, linked to the main one only
  in_ns ip link add "$VETH_AS_MAIN" type veth peer name "$VETH_AS" netns "$AS_NETNS"
  in_ns ip addr add "$AS_LINK_IP/30" dev "$VETH_AS_MAIN"
  in_ns ip link set "$VETH_AS_MAIN" up
  ip netns exec "$AS_NETNS" ip link set lo up
  ip netns exec "$AS_NETNS" ip addr add "$AS_IP/30" dev "$VETH_AS"
  ip netns exec "$AS_NETNS" ip link set "$VETH_AS" up
  # the autoscaler reaches the apiserver (and Prometheus) at $NS_IP through the link
  ip netns exec "$AS_NETNS" ip route add "$NS_IP/32" via "$AS_LINK_IP"
  if in_ns ip route show default | grep -q .; then gaia_die "netns $NETNS has a default route"; fi
}

net_down() {
  local ns
  for ns in "$AS_NETNS" "$NETNS"; do
    if netns_exists "$ns"; then
      local pids
      pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
      if [[ -n $pids ]]; then
        gaia_log "WARNING: processes not started by 'up' still run in netns $ns: $pids(not killed)"
      fi
      ip netns del "$ns"
    fi
  done
  ip link del "$VETH_HOST" 2>/dev/null || true
}

# ---------------------------------------------------------------- PKI
# cert NAME SUBJECT EXTENSIONS: an EC P-256 key and a cert signed by the cluster CA.
cert() {
  local name=$1 subj=$2 ext=$3
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$PKI/$name.key" -out "$PKI/$name.csr" -subj "$subj" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
    -CAcreateserial -out "$PKI/$name.crt" -days 30 -extfile <(printf '%s\n' "$ext") 2>/dev/null
  rm -f "$PKI/$name.csr"
}

pki() {
  rm -rf "$PKI"; mkdir -p "$PKI"; chmod 700 "$PKI"
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -days 30 -subj "/CN=gaia-local-cluster-ca" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
  local client="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
  cert apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:$NS_IP,IP:127.0.0.1,IP:$SERVICE_API_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin "/O=system:masters/CN=gaia-admin" "$client"
  cert kube-controller-manager "/CN=system:kube-controller-manager" "$client"
  cert kube-scheduler "/CN=system:kube-scheduler" "$client"
  # KWOK plays the kubelet of every node, so it cannot be one system:node:<name>.
  cert kwok "/O=system:masters/CN=gaia-kwok" "$client"
  # service-account token signing key, new for every cluster
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/sa.key" 2>/dev/null
  openssl ec -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
}

# kubeconfig FILE USER (cert USER.crt/key) | kubeconfig FILE USER TOKEN
kubeconfig() {
  local file=$1 user=$2 token=${3:-} auth
  if [[ -n $token ]]; then
    auth="    token: $token"
  else
    auth="    client-certificate-data: $(base64 -w0 <"$PKI/$user.crt")
    client-key-data: $(base64 -w0 <"$PKI/$user.key")"
  fi
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: gaia
  cluster:
    server: $APISERVER
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: $user
  user:
$auth
contexts:
- name: gaia
  context: {cluster: gaia, user: $user}
current-context: gaia
EOF
  chmod 600 "$file"
}

# ---------------------------------------------------------------- cluster objects
nodes_yaml() {
  local i
  node() { # name pool cpu memory gpu
    cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: $1
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: $1
    gaia.dev/pool: $2
EOF
    if [[ $5 -gt 0 ]]; then
      cat <<EOF
    nvidia.com/gpu.present: "true"
    nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3
    nvidia.com/gpu.count: "$5"
spec:
  taints:
  - key: nvidia.com/gpu
    value: present
    effect: NoSchedule
status:
  capacity: {cpu: "$3", memory: $4, pods: "110", nvidia.com/gpu: "$5"}
  allocatable: {cpu: "$3", memory: $4, pods: "110", nvidia.com/gpu: "$5"}
EOF
    else
      cat <<EOF
spec: {}
status:
  capacity: {cpu: "$3", memory: $4, pods: "110"}
  allocatable: {cpu: "$3", memory: $4, pods: "110"}
EOF
    fi
  }
  for i in 1 2 3; do node "cpu-node-$i" cpu 8 32Gi 0; done
  for i in 1 2; do node "gpu-node-$i" gpu 16 128Gi 1; done
}

# Our settings on top of upstream's config maps (server-side apply, own field manager).
knative_overrides_yaml() {
  cat <<EOF
apiVersion: v1
kind: ConfigMap
metadata: {name: config-features, namespace: $KNATIVE_NS}
data:
  kubernetes.podspec-nodeselector: enabled
  kubernetes.podspec-tolerations: enabled
  kubernetes.podspec-affinity: enabled
---
apiVersion: v1
kind: ConfigMap
metadata: {name: config-network, namespace: $KNATIVE_NS}
data:
  ingress-class: $STANDIN_CLASS
---
apiVersion: v1
kind: ConfigMap
metadata: {name: config-deployment, namespace: $KNATIVE_NS}
data:
  # No container runtime: KWOK fakes the pods, images are never pulled. No
  # registry is reachable either, so never try to resolve tags to digests.
  queue-sidecar-image: dev.local/knative/queue:$KNATIVE_SERVING_VERSION
  registries-skipping-tag-resolving: "kind.local,ko.local,dev.local,docker.io,index.docker.io,gcr.io,ghcr.io,quay.io,registry.k8s.io,mcr.microsoft.com,nvcr.io,public.ecr.aws,example.com"
---
apiVersion: v1
kind: ConfigMap
metadata: {name: config-observability, namespace: $KNATIVE_NS}
data:
  metrics-protocol: prometheus
  request-metrics-protocol: prometheus
EOF
}

standin_rbac_yaml() {
  cat <<EOF
# RBAC of the KIngress stand-in (hack/standins/kingress; test harness only)
apiVersion: v1
kind: ServiceAccount
metadata: {name: kingress-standin, namespace: $KNATIVE_NS}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: gaia-kingress-standin}
rules:
- apiGroups: [networking.internal.knative.dev]
  resources: [ingresses]
  verbs: [get, list, watch]
- apiGroups: [networking.internal.knative.dev]
  resources: [ingresses/status]
  verbs: [update, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: gaia-kingress-standin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: gaia-kingress-standin}
subjects:
- {kind: ServiceAccount, name: kingress-standin, namespace: $KNATIVE_NS}
EOF
}

# The webhook Service is selectorless (render-knative.py); point it at the process.
webhook_endpoints_yaml() {
  cat <<EOF
apiVersion: v1
kind: Endpoints
metadata:
  name: webhook
  namespace: $KNATIVE_NS
  labels: {app.kubernetes.io/managed-by: gaia-cluster-sh}
subsets:
- addresses: [{ip: $NS_IP}]
  ports:
  - {name: https-webhook, port: 8443, protocol: TCP}
  - {name: http-metrics, port: 19091, protocol: TCP}
  - {name: http-profiling, port: 18009, protocol: TCP}
EOF
}

probe_ksvc_yaml() {
  cat <<EOF
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: gaia-webhook-probe, namespace: default}
spec:
  template:
    spec:
      containers:
      - image: dev.local/gaia/probe:1
EOF
}

prometheus_config() {
  local dir="$STATE/prometheus"
  mkdir -p "$dir/targets" "$dir/data"
  cat >"$dir/prometheus.yml" <<EOF
# Generated by hack/cluster.sh. Add scrape targets by dropping Prometheus
# file_sd files (*.json or *.yaml) into $dir/targets/ ; they are re-read every 2 s.
# A target group's labels may set job, __metrics_path__ and __scheme__.
global:
  scrape_interval: 2s
  scrape_timeout: 2s
  evaluation_interval: 2s
scrape_configs:
- job_name: prometheus
  static_configs:
  - targets: ["127.0.0.1:$PROM_PORT"]
- job_name: file_sd
  file_sd_configs:
  - files: ["$dir/targets/*.json", "$dir/targets/*.yaml", "$dir/targets/*.yml"]
    refresh_interval: 2s
EOF
  cat >"$dir/targets/knative.json" <<EOF
[
  {"targets": ["$NS_IP:19090"], "labels": {"job": "knative-controller"}},
  {"targets": ["$NS_IP:19091"], "labels": {"job": "knative-webhook"}},
  {"targets": ["$AS_IP:9090"], "labels": {"job": "knative-autoscaler"}}
]
EOF
}

# ---------------------------------------------------------------- up / down
check_built() {
  local f
  for f in "$GAIA_ETCD_DIR/etcd" "$GAIA_K8S_DIR/kube-apiserver" "$GAIA_KWOK_DIR/kwok" \
    "$GAIA_KNATIVE_DIR/controller" "$GAIA_KN_DIR/kn" "$GAIA_KINGRESS_DIR/kingress-standin"; do
    [[ -x $f ]] || gaia_die "$f is missing: run hack/build.sh first"
  done
  command -v prometheus >/dev/null || gaia_die "prometheus missing: run hack/build.sh first"
  [[ $(id -u) == 0 ]] || gaia_die "cluster.sh needs root (network namespaces)"
}

any_alive() { local c; for c in "${ALL_COMPONENTS[@]}"; do alive "$c" && return 0; done; return 1; }
all_alive() { local c; for c in "${COMPONENTS[@]}"; do alive "$c" || return 1; done; }

cmd_up() {
  local want_real=0 have_real=0
  [[ ${1:-} != --real-nodes && ${GAIA_NODES:-} != real ]] || want_real=1
  check_built
  ((want_real == 0)) || real_check_built
  if real_mode; then have_real=1; fi
  if any_alive; then
    if all_alive && k get --raw /readyz >/dev/null 2>&1 && ((want_real == have_real)); then
      gaia_log "cluster already up (hack/cluster.sh restart for a fresh one)"
      return 0
    fi
    gaia_log "cluster partially up: stopping it first"
    cmd_down
  fi
  if ((want_real)); then
    local free
    free=$(free_gib "$STATE")
    ((free >= GAIA_REAL_NODES_DISK_GIB)) ||
      gaia_die "real nodes need about $GAIA_REAL_NODES_DISK_GIB GiB free under $STATE (registry, two containerd stores, the kubelets' reserve); $free GiB are free"
  fi
  local t0=$SECONDS
  # On any failure, stop what was started (GAIA_KEEP_FAILED=1 keeps it for debugging).
  trap 'up_failed' EXIT
  # A fresh cluster every time: new data, new keys. (Never into a mount a crashed real
  # node left behind: kubelet volumes, container root file systems.)
  if real_mode; then real_unmount; fi
  rm -rf --one-file-system "$STATE"
  mkdir -p "$LOGS" "$RUN" "$STATE/bin" "$STATE/knative"
  if ((want_real)); then touch "$STATE/real-nodes"; fi
  active_components
  ln -sf "$KUBECTL" "$STATE/bin/kubectl"
  ln -sf "$KN" "$STATE/bin/kn"
  net_up
  if real_mode; then real_net_up; fi
  pki
  if real_mode; then real_pki; fi
  kubeconfig "$KUBECONFIG_FILE" admin
  kubeconfig "$STATE/kube-controller-manager.kubeconfig" kube-controller-manager
  kubeconfig "$STATE/kube-scheduler.kubeconfig" kube-scheduler
  kubeconfig "$STATE/kwok.kubeconfig" kwok
  if real_mode; then real_kubeconfigs; fi
  local apiserver_extra=()
  # kubectl logs/exec: dial the kubelet at its InternalIP (the node names are not in DNS)
  if real_mode; then apiserver_extra=(--kubelet-preferred-address-types=InternalIP); fi
  gaia_log "network namespace $NETNS ($NS_IP), certificates: done"

  start etcd "$NETNS" "$GAIA_ETCD_DIR/etcd" --name=gaia --data-dir="$STATE/etcd" \
    --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
    --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
    --initial-cluster=gaia=http://127.0.0.1:2380 --unsafe-no-fsync --log-level=warn
  start kube-apiserver "$NETNS" "$GAIA_K8S_DIR/kube-apiserver" \
    --etcd-servers=http://127.0.0.1:2379 \
    --bind-address=0.0.0.0 --secure-port=6443 --advertise-address="$NS_IP" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NodeRestriction,MutatingAdmissionWebhook,ValidatingAdmissionWebhook \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --enable-aggregator-routing=true \
    --allow-privileged=true --profiling=false --v=1 "${apiserver_extra[@]}"
  wait_for "etcd" 30 in_ns curl -sf http://127.0.0.1:2379/health
  wait_for "kube-apiserver /readyz" 60 k get --raw /readyz
  gaia_log "kube-apiserver ready ($((SECONDS - t0))s)"

  start kube-controller-manager "$NETNS" "$GAIA_K8S_DIR/kube-controller-manager" \
    --kubeconfig="$STATE/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig="$STATE/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig="$STATE/kube-controller-manager.kubeconfig" \
    --use-service-account-credentials=true \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --controllers='*' --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port=10257 --profiling=false --v=1
  start kube-scheduler "$NETNS" "$GAIA_K8S_DIR/kube-scheduler" \
    --kubeconfig="$STATE/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig="$STATE/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig="$STATE/kube-scheduler.kubeconfig" \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port=10259 --profiling=false --v=1
  start kwok "$NETNS" "$GAIA_KWOK_DIR/kwok" --kubeconfig="$STATE/kwok.kubeconfig" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --cidr="$POD_CIDR" --node-ip=10.244.0.1 --server-address=127.0.0.1:10247 \
    --node-lease-duration-seconds=40
  if real_mode; then
    real_registry_up
    real_nodes_up
  fi

  # Knative: CRDs, RBAC, config, Services (no Deployments), then our overrides.
  local render_args=()
  if real_mode; then
    render_args=(--real-nodes "$REGISTRY/knative/activator:$KNATIVE_SERVING_VERSION" --release "$KNATIVE_SERVING_RELEASE")
  fi
  python3 "$GAIA_ROOT/hack/render-knative.py" "${render_args[@]}" "$GAIA_KNATIVE_DIR/config/core" "$STATE/knative" >/dev/null
  knative_overrides_yaml >"$STATE/knative/overrides.yaml"
  if real_mode; then
    { echo "---"; real_knative_overrides_yaml; } >>"$STATE/knative/overrides.yaml"
    real_rbac_yaml >"$STATE/knative/real-nodes.yaml"
  fi
  standin_rbac_yaml >"$STATE/knative/kingress-standin-rbac.yaml"
  nodes_yaml >"$STATE/nodes.yaml"
  k apply --server-side --field-manager=gaia-cluster -f "$STATE/nodes.yaml" >/dev/null
  k apply --server-side --field-manager=gaia-cluster -f "$STATE/knative/crds.yaml" >/dev/null
  k wait --for=condition=Established --timeout=60s crd --all >/dev/null
  k apply --server-side --field-manager=gaia-cluster -f "$STATE/knative/base.yaml" >/dev/null
  k apply --server-side --field-manager=gaia-cluster-overrides --force-conflicts \
    -f "$STATE/knative/overrides.yaml" >/dev/null
  k apply --server-side --field-manager=gaia-cluster -f "$STATE/knative/kingress-standin-rbac.yaml" >/dev/null
  webhook_endpoints_yaml | k apply --server-side --field-manager=gaia-cluster -f - >/dev/null 2>&1
  if real_mode; then
    # (selectorless Services with v1 Endpoints, mirrored into EndpointSlices: the warning
    # that v1 Endpoints are deprecated is expected)
    k apply --server-side --field-manager=gaia-cluster --force-conflicts \
      -f "$STATE/knative/real-nodes.yaml" >"$LOGS/apply-real-nodes.log" 2>&1 \
      || { cat "$LOGS/apply-real-nodes.log" >&2; gaia_die "applying real-nodes.yaml failed"; }
  fi
  gaia_log "Knative CRDs and config applied ($((SECONDS - t0))s)"

  # Knative runs with its own service account's token, so its RBAC is exercised.
  # Its ClusterRole is aggregated by kube-controller-manager: wait for that.
  local as_ctl=system:serviceaccount:$KNATIVE_NS:controller
  wait_for "RBAC for Knative's controller service account" 60 \
    k auth can-i --as="$as_ctl" -n "$KNATIVE_NS" get configmaps
  wait_for "RBAC for Knative's controller service account" 60 \
    k auth can-i --as="$as_ctl" create deployments.apps -n default
  local token
  token=$(k -n "$KNATIVE_NS" create token controller --duration=720h)
  kubeconfig "$STATE/knative.kubeconfig" knative-controller "$token"
  token=$(k -n "$KNATIVE_NS" create token kingress-standin --duration=720h)
  kubeconfig "$STATE/kingress-standin.kubeconfig" kingress-standin "$token"
  local kenv=(SYSTEM_NAMESPACE="$KNATIVE_NS" CONFIG_LOGGING_NAME=config-logging
    CONFIG_OBSERVABILITY_NAME=config-observability KUBECONFIG="$STATE/knative.kubeconfig")
  start knative-controller "$NETNS" "${kenv[@]}" POD_NAME=controller-local \
    METRICS_PROMETHEUS_PORT=19090 PROFILING_PORT=18008 \
    "$GAIA_KNATIVE_DIR/controller" --kubeconfig="$STATE/knative.kubeconfig"
  start knative-webhook "$NETNS" "${kenv[@]}" POD_NAME=webhook-local \
    METRICS_PROMETHEUS_PORT=19091 PROFILING_PORT=18009 WEBHOOK_NAME=webhook WEBHOOK_PORT=8443 \
    "$GAIA_KNATIVE_DIR/webhook" --kubeconfig="$STATE/knative.kubeconfig"
  start knative-autoscaler "$AS_NETNS" "${kenv[@]}" POD_NAME=autoscaler-local \
    POD_IP="$AS_IP" METRICS_PROMETHEUS_PORT=9090 PROFILING_PORT=8008 \
    "$GAIA_KNATIVE_DIR/autoscaler" --kubeconfig="$STATE/knative.kubeconfig"
  if real_mode; then
    real_traefik_up
  else
    start kingress-standin "$NETNS" "$GAIA_KINGRESS_DIR/kingress-standin" \
      --kubeconfig="$STATE/kingress-standin.kubeconfig" --ingress-class="$STANDIN_CLASS"
  fi
  prometheus_config
  if real_mode; then
    real_prometheus_jobs >>"$STATE/prometheus/prometheus.yml"
    real_gaia_overlay
  fi
  local prom_bin; prom_bin=$(command -v prometheus)
  # Debian's prometheus has no Kubernetes service discovery; the real nodes need it
  if real_mode; then prom_bin="$GAIA_PROMETHEUS_DIR/prometheus"; fi
  start prometheus "$NETNS" "$prom_bin" \
    --config.file="$STATE/prometheus/prometheus.yml" --storage.tsdb.path="$STATE/prometheus/data" \
    --storage.tsdb.retention.time=1d --web.listen-address="0.0.0.0:$PROM_PORT" --log.level=warn

  k apply --server-side --field-manager=gaia-cluster -f "$STATE/knative/webhooks.yaml" >/dev/null
  probe_ksvc_yaml >"$STATE/knative/probe-ksvc.yaml"
  wait_for "5 Ready nodes" 60 nodes_ready 5
  if real_mode; then real_nodes_ready; fi
  gaia_log "nodes ready ($((SECONDS - t0))s)"
  wait_for "Knative webhook (server dry-run of a Knative Service)" 90 \
    k create --dry-run=server -f "$STATE/knative/probe-ksvc.yaml"
  wait_for "Prometheus" 30 curl -sf "$PROM_URL/-/ready"
  if real_mode; then
    k apply --server-side --field-manager=gaia-cluster -f "$STATE/knative/activator.yaml" >/dev/null
    wait_for "Knative activator pod (image from $REGISTRY)" 180 \
      k -n "$KNATIVE_NS" rollout status deployment/activator --timeout=5s ||
      { pods_report "$KNATIVE_NS" app=activator; exit 1; }
  fi
  for c in "${COMPONENTS[@]}"; do alive "$c" || gaia_die "$c exited; see $LOGS/$c.log"; done
  trap - EXIT
  gaia_log "cluster up in $((SECONDS - t0))s. Use: eval \"\$(hack/cluster.sh env)\""
}

# shellcheck disable=SC2317  # invoked by the EXIT trap of cmd_up
up_failed() {
  local rc=$?
  trap - EXIT
  if [[ ${GAIA_KEEP_FAILED:-0} == 1 ]]; then
    gaia_log "up failed (exit $rc); GAIA_KEEP_FAILED=1: leaving it running. Logs: $LOGS"
  else
    gaia_log "up failed (exit $rc): stopping what was started. Logs: $LOGS"
    cmd_down || true
  fi
  exit "$rc"
}

nodes_ready() {
  local n
  n=$(k get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True)
  ((n >= $1))
}

# stop_group NAME...: TERM the running ones, wait up to 5 s, then KILL what is left.
stop_group() {
  local c pid s group=()
  for c in "$@"; do
    if alive "$c"; then
      pid=$(pid_of "$c")
      kill -TERM "$pid" 2>/dev/null || true
      group+=("$c:$pid")
      STOPPED+=("$c:$pid")
    fi
  done
  local deadline=$((SECONDS + 5))
  for s in "${group[@]}"; do
    c=${s%%:*}; pid=${s##*:}
    while alive "$c" && ((SECONDS < deadline)); do sleep 0.1; done
    if alive "$c"; then
      gaia_log "$c (pid $pid) still running 5 s after TERM: KILL"
      kill -KILL "$pid" 2>/dev/null || true
      while alive "$c"; do sleep 0.1; done
    fi
  done
}

cmd_down() {
  STOPPED=()
  # real nodes: their pods go first, while the kubelets and the apiserver still run
  if alive kube-apiserver; then real_drain; fi
  # clients first, so that the apiserver has no watches to drain; etcd last
  local i clients=()
  for ((i = ${#ALL_COMPONENTS[@]} - 1; i >= 0; i--)); do
    case ${ALL_COMPONENTS[i]} in kube-apiserver|etcd|containerd-*) ;; *) clients+=("${ALL_COMPONENTS[i]}") ;; esac
  done
  stop_group "${clients[@]}"
  if real_mode; then
    kill_tasks
    stop_group containerd-w1 containerd-w2
    real_cleanup
  fi
  stop_group kube-apiserver
  stop_group etcd
  rm -f "$RUN"/*.pid "$RUN"/*.exe 2>/dev/null || true
  if real_mode; then real_net_down; fi
  net_down
  gaia_log "cluster down (stopped: ${STOPPED[*]:-nothing}); logs kept in $LOGS"
}

cmd_status() {
  local c up=0
  local rss total=0
  for c in "${COMPONENTS[@]}"; do
    if alive "$c"; then
      rss=$(awk '/^VmRSS:/ {print int($2 / 1024)}' "/proc/$(pid_of "$c")/status" 2>/dev/null || echo 0)
      total=$((total + rss))
      printf '  %-24s running (pid %s, %s MiB)\n' "$c" "$(pid_of "$c")" "$rss"; up=1
    else printf '  %-24s stopped\n' "$c"; fi
  done
  ((up)) || { echo "cluster: down"; return 1; }
  echo "  processes: $total MiB resident in all"
  if real_mode; then real_status_memory; fi
  if ! k get --raw /readyz >/dev/null 2>&1; then echo "apiserver: not ready"; return 1; fi
  echo "apiserver: $APISERVER ready; prometheus: $PROM_URL"
  if real_mode; then echo "real nodes: registry http://$REGISTRY, ingress http://$NS_IP:80 (Traefik)"; fi
  k get nodes -L gaia.dev/pool,nvidia.com/gpu.product --no-headers 2>/dev/null | sed 's/^/  /'
  echo "pods by namespace/phase:"
  k get pods -A --no-headers -o custom-columns=NS:.metadata.namespace,PHASE:.status.phase 2>/dev/null \
    | sort | uniq -c | sed 's/^/  /'
  echo "knative services:"
  k get ksvc -A --no-headers 2>/dev/null | sed 's/^/  /' || true
}

cmd_env() {
  cat <<EOF
export GAIA_STATE="$GAIA_STATE"
export GAIA_CACHE="$GAIA_CACHE"
export KUBECONFIG="$KUBECONFIG_FILE"
export GAIA_KUBECONFIG="$KUBECONFIG_FILE"
export GAIA_APISERVER="$APISERVER"
export GAIA_NETNS="$NETNS"
export GAIA_NET_PREFIX="$NET_PREFIX"
export GAIA_NS_IP="$NS_IP"
export GAIA_HOST_IP="$HOST_IP"
export GAIA_AUTOSCALER_IP="$AS_IP"
export GAIA_PROMETHEUS_URL="$PROM_URL"
export GAIA_PROM_TARGETS_DIR="$STATE/prometheus/targets"
export GAIA_CLUSTER_LOGS="$LOGS"
export GAIA_KUBECTL="$KUBECTL"
export GAIA_KN="$KN"
export GAIA_KNATIVE_NAMESPACE="$KNATIVE_NS"
export GAIA_POD_CIDR="$POD_CIDR"
export GAIA_SERVICE_CIDR="$SERVICE_CIDR"
export PATH="$STATE/bin:\$PATH"
EOF
  if real_mode; then
    cat <<EOF
export GAIA_REAL_NODES="1"
export GAIA_REGISTRY="$REGISTRY"
export GAIA_RUNTIME_IMAGE="$REGISTRY/gaia/function-runtime:$GAIA_RUNTIME_TAG"
export GAIA_INGRESS_URL="http://$NS_IP:80"
export GAIA_REAL_POD_CIDR="$REAL_POD_CIDR"
export GAIA_CPU_WORKER="$(node_name 1)"
export GAIA_GPU_WORKER="$(node_name 2)"
export GAIA_GPU_DEVICES="$GAIA_GPU_DEVICES"
export GAIA_LOCAL_OVERLAY="$STATE/gaia-overlay"
EOF
  fi
}

cmd_exec() {
  (($#)) || gaia_die "usage: cluster.sh exec CMD [ARGS...]"
  netns_exists "$NETNS" || gaia_die "cluster is down"
  exec ip netns exec "$NETNS" env KUBECONFIG="$KUBECONFIG_FILE" PATH="$STATE/bin:$PATH" "$@"
}

# ---------------------------------------------------------------- one component (fault tests)
# stop NAME [--kill] | start NAME | restart NAME: one component of the running cluster, started
# again with the command line `up` gave it (its log so far is appended to
# NAME.before-restart.log); `apiserver` is kube-apiserver. stop sends TERM (KILL after 5 s), or
# KILL at once with --kill; start waits until the component answers (the apiserver's /readyz,
# Prometheus's /-/ready).
component_name() {
  local name=$1
  [[ $name != apiserver ]] || name=kube-apiserver
  [[ -f $RUN/$name.args ]] || gaia_die "no component $name in this cluster (is it up?)"
  echo "$name"
}

cmd_stop_component() {
  local name; name=$(component_name "${1:-}")
  STOPPED=()
  if [[ ${2:-} == --kill ]]; then
    if alive "$name"; then
      kill -KILL "$(pid_of "$name")"
      while alive "$name"; do sleep 0.1; done
      gaia_log "killed $name"
    fi
  else
    stop_group "$name"
    gaia_log "stopped $name"
  fi
}

cmd_start_component() {
  local name; name=$(component_name "${1:-}")
  if alive "$name"; then gaia_log "$name is running"; return 0; fi
  local args=()
  mapfile -d '' args <"$RUN/$name.args"
  local log="$LOGS/$name.log"
  [[ ! -f $log ]] || cat "$log" >>"$LOGS/$name.before-restart.log"
  START_NSENTER=${args[0]} start "${args[@]:1}"
  case $name in
    kube-apiserver) wait_for "kube-apiserver /readyz" 90 k get --raw /readyz ;;
    prometheus) wait_for "Prometheus" 60 curl -sf "$PROM_URL/-/ready" ;;
    *) sleep 1 ;;
  esac
  alive "$name" || gaia_die "$name exited; see $log"
  gaia_log "$name up again"
}

cmd_push_images() {
  { real_mode && alive registry; } || gaia_die "push-images: no cluster with real nodes is running (hack/cluster.sh up --real-nodes)"
  real_push_images
  real_gaia_overlay
  gaia_log "Gaia overlay $STATE/gaia-overlay pinned to the pushed digests"
}

case ${1:-} in
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  restart) if [[ -n ${2:-} ]]; then cmd_stop_component "$2"; cmd_start_component "$2"; exit; fi
    real=(); if real_mode; then real=(--real-nodes); fi; cmd_down; cmd_up "${real[@]}" ;;
  stop) cmd_stop_component "${2:-}" "${3:-}" ;;
  start) cmd_start_component "${2:-}" ;;
  status) cmd_status ;;
  env) cmd_env ;;
  exec) shift; cmd_exec "$@" ;;
  push-images) cmd_push_images ;;
  *) echo "usage: $0 up [--real-nodes]|down|restart [COMPONENT]|stop COMPONENT [--kill]|start COMPONENT|status|env|exec CMD...|push-images" >&2; exit 2 ;;
esac
