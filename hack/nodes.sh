# shellcheck shell=bash
# shellcheck disable=SC2034,SC2153  # variables used by / defined in cluster.sh, which sources this file
# Real worker nodes for hack/cluster.sh (up --real-nodes, or GAIA_NODES=real): sourced by
# cluster.sh, uses its variables and functions (STATE, NETNS, NET_PREFIX, start, k, ...).
#
# Two workers, each in its own network namespace, each a real kubelet with its own containerd
# (Debian 1.6.20 + runc 1.1.5) and CNI bridge:
#   cpu-worker-1  netns $NETNS-w1  node IP $NET_PREFIX.2.2  pods 10.245.1.0/24  gaia.dev/pool=cpu
#   gpu-worker-1  netns $NETNS-w2  node IP $NET_PREFIX.3.2  pods 10.245.2.0/24  gaia.dev/pool=gpu,
#                 labelled/tainted as NVIDIA's GPU operator does, nvidia.com/gpu: 1 in status
# Why one containerd per kubelet: a kubelet kills every pod sandbox of its runtime that it does
# not know ("orphaned" pods), so two kubelets on one containerd kill each other's pods; and the
# CNI bridge is created in containerd's own network namespace, so a node's pods need its own.
# Each node's netns is linked to the main one by a veth; the main namespace routes the pod
# CIDRs to the nodes. No namespace has a default route (pods have one, into their node, which
# drops what it cannot route): nothing leaves the machine.
#
# kubelet/containerd/kube-proxy are entered with `nsenter --net` (not `ip netns exec`, which
# also makes a private mount namespace and remounts /sys: the kubelet then finds no cgroup
# mounts, and containerd's mounts would be invisible to the kubelet).

REAL_POD_CIDR=10.245.0.0/16
DNS_IP=10.96.0.10
REGISTRY="$NS_IP:5000"  # NS_IP: cluster.sh
TRAEFIK_CLASS=traefik.ingress.networking.knative.dev
WORKERS=(cpu-worker-1 gpu-worker-1)
REAL_COMPONENTS=(registry coredns containerd-w1 containerd-w2 kubelet-w1 kubelet-w2
  gpu-standin-w2 kube-proxy-cp kube-proxy-w1 kube-proxy-w2 traefik)
# The GPU stand-in (the one thing that cannot exist here): a device plugin advertising
# nvidia.com/gpu on the GPU-pool worker; its containers get GAIA_GPU_STANDIN=$GAIA_GPU_PROFILE
# and the function server answers with that calibrated profile's GPU latency.
GAIA_GPU_PROFILE=${GAIA_GPU_PROFILE:-h100}
# Two devices: a GPU node with two GPUs, so that the demo's gpu_preferred function and a
# promoted one can both have a whole GPU (tests read the count from GAIA_GPU_DEVICES).
GAIA_GPU_DEVICES=${GAIA_GPU_DEVICES:-2}
# The kubelet's embedded cAdvisor labels container metrics (pod, container, namespace) only
# when it finds the node's containerd; it looks at /run/containerd/containerd.sock unless the
# kubelet's (deprecated, still registered in 1.34) cAdvisor flag --containerd says otherwise.
# Each kubelet passes its own node's socket, so no cluster uses that fixed path.
# containerd's image store of each node survives `down`/`up` (as a rebooted node's does),
# so the 1.5 GB function runtime image is pulled once, not on every `up`.
NODE_CACHE="$GAIA_STATE/node-cache"
REGISTRY_DATA="$GAIA_STATE/registry"

node_ns() { echo "$NETNS-w$1"; }
node_ip() { echo "$NET_PREFIX.$(($1 + 1)).2"; }
node_link_ip() { echo "$NET_PREFIX.$(($1 + 1)).1"; }
node_pod_cidr() { echo "10.245.$1.0/24"; }
node_name() { echo "${WORKERS[$1 - 1]}"; }
node_dir() { echo "$STATE/nodes/$(node_name "$1")"; }
node_sock() { echo "$(node_dir "$1")/containerd.sock"; }
node_cgroup_root() { echo "/$NETNS-w$1"; }
in_node() { local i=$1; shift; nsenter --net="/var/run/netns/$(node_ns "$i")" "$@"; }

real_mode() { [[ -f $STATE/real-nodes ]]; }

# ---------------------------------------------------------------- network
real_net_up() {
  local i ns m n
  in_ns sysctl -qw net.ipv4.ip_forward=1   # the cluster's namespace, not the host's
  # ClusterIPs from the main namespace (Traefik, Prometheus): a connect needs a route before
  # kube-proxy's OUTPUT rules rewrite the destination to a pod. Via lo: a packet to a
  # ClusterIP that nothing rewrites is dropped right here.
  in_ns ip route add "$SERVICE_CIDR" dev lo src "$NS_IP"
  for i in 1 2; do
    ns=$(node_ns "$i"); m="$NETNS-w${i}m"; n="$NETNS-w${i}n"
    ip netns add "$ns"
    in_ns ip link add "$m" type veth peer name "$n" netns "$ns"
    in_ns ip addr add "$(node_link_ip "$i")/30" dev "$m"
    in_ns ip link set "$m" up
    ip netns exec "$ns" ip link set lo up
    ip netns exec "$ns" ip addr add "$(node_ip "$i")/30" dev "$n"
    ip netns exec "$ns" ip link set "$n" up
    # the cluster's addresses, other nodes' pods and ClusterIPs (DNATed by kube-proxy) go to
    # the main namespace; nothing else has a route
    local dst
    for dst in "$NET_PREFIX.0.0/16" "$REAL_POD_CIDR" "$SERVICE_CIDR"; do
      ip netns exec "$ns" ip route add "$dst" via "$(node_link_ip "$i")"
    done
    ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
    ip netns exec "$ns" sysctl -qw net.bridge.bridge-nf-call-iptables=1
    in_ns ip route add "$(node_pod_cidr "$i")" via "$(node_ip "$i")"
    if ip netns exec "$ns" ip route show default | grep -q .; then gaia_die "netns $ns has a default route"; fi
  done
  # the Knative autoscaler scrapes pods (queue-proxy :9090) by pod IP, and before it scales a
  # revision to zero it probes the revision's Service by name
  # (http://REVISION.NAMESPACE.svc.cluster.local/healthz, answered by the activator): ClusterIPs
  # go to the main namespace, whose kube-proxy DNATs them on the way (PREROUTING), and names to
  # the cluster DNS (ip netns exec mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf).
  # Without these, an unrouted revision with min-scale kept its pod forever ("PA is not yet
  # backed by activator, cannot scale to zero").
  ip netns exec "$AS_NETNS" ip route add "$REAL_POD_CIDR" via "$AS_LINK_IP"
  ip netns exec "$AS_NETNS" ip route add "$SERVICE_CIDR" via "$AS_LINK_IP"
  mkdir -p "/etc/netns/$AS_NETNS"
  printf 'nameserver %s\nsearch %s.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n' \
    "$DNS_IP" "$KNATIVE_NS" >"/etc/netns/$AS_NETNS/resolv.conf"
}

real_net_down() {
  local i ns
  rm -rf "/etc/netns/$AS_NETNS"
  for i in 1 2; do
    ns=$(node_ns "$i")
    if netns_exists "$ns"; then
      local pids
      pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
      [[ -z $pids ]] || gaia_log "WARNING: processes not started by 'up' still run in netns $ns: $pids(not killed)"
      ip netns del "$ns"
    fi
  done
}

# ---------------------------------------------------------------- PKI and RBAC
real_pki() {
  local client="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth" i
  for i in 1 2; do
    cert "kubelet-w$i" "/O=system:nodes/CN=system:node:$(node_name "$i")" "$client"
  done
  cert kube-proxy "/CN=system:kube-proxy" "$client"   # bound to system:node-proxier by default
  cert coredns "/CN=gaia-coredns" "$client"
  cert traefik "/CN=gaia-traefik" "$client"
  cert prometheus "/CN=gaia-prometheus" "$client"
}

real_kubeconfigs() {
  local i
  for i in 1 2; do kubeconfig "$STATE/kubelet-w$i.kubeconfig" "kubelet-w$i"; done
  kubeconfig "$STATE/kube-proxy.kubeconfig" kube-proxy
  kubeconfig "$STATE/coredns.kubeconfig" coredns
  kubeconfig "$STATE/traefik.kubeconfig" traefik
  kubeconfig "$STATE/prometheus.kubeconfig" prometheus
}

real_rbac_yaml() {
  cat <<EOF
# Identities of the cluster's own processes (client certificates, hack/nodes.sh)
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: gaia-coredns}
rules:
- apiGroups: [""]
  resources: [services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: gaia-coredns}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: gaia-coredns}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: gaia-coredns}]
---
# Traefik's Knative provider (what its documentation's RBAC grants)
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: gaia-traefik}
rules:
- apiGroups: [""]
  resources: [services, endpoints, secrets, namespaces]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
- apiGroups: [networking.internal.knative.dev]
  resources: [ingresses]
  verbs: [get, list, watch]
- apiGroups: [networking.internal.knative.dev]
  resources: [ingresses/status]
  verbs: [update, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: gaia-traefik}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: gaia-traefik}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: gaia-traefik}]
---
# Prometheus' Kubernetes service discovery
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: gaia-prometheus}
rules:
- apiGroups: [""]
  resources: [nodes, pods, services, endpoints]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: gaia-prometheus}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: gaia-prometheus}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: gaia-prometheus}]
---
# Cluster DNS: the kube-dns Service (ClusterIP $DNS_IP) points at the CoreDNS process.
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  clusterIP: $DNS_IP
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
  - {name: metrics, port: 9153, protocol: TCP, targetPort: 9153}
---
apiVersion: v1
kind: Endpoints
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
subsets:
- addresses: [{ip: $NS_IP}]
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
  - {name: metrics, port: 9153, protocol: TCP}
---
# Traefik's entry points, as Services (Knative's KIngress status names them)
apiVersion: v1
kind: Service
metadata: {name: traefik, namespace: $KNATIVE_NS}
spec:
  ports: [{name: http, port: 80, protocol: TCP, targetPort: 80}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: traefik, namespace: $KNATIVE_NS}
subsets:
- addresses: [{ip: $NS_IP}]
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: traefik-private, namespace: $KNATIVE_NS}
spec:
  ports: [{name: http, port: 80, protocol: TCP, targetPort: 8081}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: traefik-private, namespace: $KNATIVE_NS}
subsets:
- addresses: [{ip: $NS_IP}]
  ports: [{name: http, port: 8081, protocol: TCP}]
---
# The Knative autoscaler runs as a process (netns $AS_NETNS): the activator reaches it here.
apiVersion: v1
kind: Endpoints
metadata: {name: autoscaler, namespace: $KNATIVE_NS}
subsets:
- addresses: [{ip: $AS_IP}]
  ports:
  - {name: http, port: 8080, protocol: TCP}
  - {name: http-metrics, port: 9090, protocol: TCP}
  - {name: http-profiling, port: 8008, protocol: TCP}
EOF
}

# Our config-map settings for the real data plane (applied after knative_overrides_yaml).
real_knative_overrides_yaml() {
  cat <<EOF
apiVersion: v1
kind: ConfigMap
metadata: {name: config-network, namespace: $KNATIVE_NS}
data:
  ingress-class: $TRAEFIK_CLASS
---
apiVersion: v1
kind: ConfigMap
metadata: {name: config-deployment, namespace: $KNATIVE_NS}
data:
  queue-sidecar-image: $REGISTRY/knative/queue:$KNATIVE_SERVING_VERSION
  # Tags of $REGISTRY are resolved to digests against the registry, as in production
  # (over HTTP: go-containerregistry uses plain HTTP for RFC 1918 addresses). Only the
  # KWOK-only names below are never resolved.
  registries-skipping-tag-resolving: "kind.local,ko.local,dev.local,example.com"
---
# Public routes (Traefik's public entry point, :80) get NAME.NAMESPACE.example.com; without a
# domain Knative uses svc.cluster.local.
apiVersion: v1
kind: ConfigMap
metadata: {name: config-domain, namespace: $KNATIVE_NS}
data:
  example.com: ""
EOF
}

# ---------------------------------------------------------------- cgroups
# mount points of the cgroup (v1) and cgroup2 file systems (mountinfo: fstype after "-")
cgroup_mounts() {
  awk '{for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i+1) ~ /^cgroup2?$/) print $5; break }}' /proc/self/mountinfo | sort -u
}

real_cgroups_up() {
  local i mnt root
  for i in 1 2; do
    root=$(node_cgroup_root "$i")
    if [[ -d /sys/fs/cgroup/memory$root ]] \
      && find "/sys/fs/cgroup/memory$root" -name tasks -exec cat {} + 2>/dev/null | grep -q .; then
      gaia_die "cgroup $root has processes: another cluster with GAIA_NETNS=$NETNS runs real nodes; use another GAIA_NETNS"
    fi
    while read -r mnt; do
      mkdir -p "$mnt$root"
      if [[ -f $mnt/cpuset.cpus ]]; then
        cat "$mnt/cpuset.cpus" >"$mnt$root/cpuset.cpus"
        cat "$mnt/cpuset.mems" >"$mnt$root/cpuset.mems"
      fi
    done < <(cgroup_mounts)
  done
}

real_cgroups_down() {
  local i mnt root
  for i in 1 2; do
    root=$(node_cgroup_root "$i")
    while read -r mnt; do
      [[ -d $mnt$root ]] || continue
      find "$mnt$root" -depth -type d -exec rmdir {} + 2>/dev/null || true
      [[ ! -d $mnt$root ]] || gaia_log "WARNING: cgroup $mnt$root not empty (left in place)"
    done < <(cgroup_mounts)
  done
}

# ---------------------------------------------------------------- per-node config
containerd_config() { # i
  local i=$1 d; d=$(node_dir "$i")
  local cache; cache="$NODE_CACHE/$(node_name "$i")"
  mkdir -p "$d/cni/net.d" "$d/certs.d/$REGISTRY" "$cache/containerd"
  cat >"$d/certs.d/$REGISTRY/hosts.toml" <<EOF
server = "http://$REGISTRY"
[host."http://$REGISTRY"]
  capabilities = ["pull", "resolve"]
EOF
  cat >"$d/cni/net.d/10-gaia.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "gaia-pods",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$(node_pod_cidr "$i")"}]],
              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$d/cni/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  cat >"$d/containerd.toml" <<EOF
# containerd of $(node_name "$i") (hack/nodes.sh)
version = 2
root = "$cache/containerd"
state = "$d/containerd-state"
[grpc]
  address = "$(node_sock "$i")"
[ttrpc]
  address = "$d/containerd-ttrpc.sock"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$REGISTRY/gaia/pause:$GAIA_PAUSE_TAG"
  # Writing a negative oom_score_adj is denied on this VM; the sandbox's -998 would make
  # every runc create fail ("can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$d/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$d/certs.d"
EOF
}

kubelet_config() { # i
  local i=$1 d; d=$(node_dir "$i")
  mkdir -p "$d/kubelet" "$d/pod-logs"
  : >"$d/resolv.conf"   # no upstream resolvers: pods get only the cluster DNS
  cat >"$d/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $(node_ip "$i")
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://$(node_sock "$i")
cgroupDriver: cgroupfs
cgroupRoot: $(node_cgroup_root "$i")
# This VM has cgroup v1 hierarchies (kubelet 1.34 refuses them unless told otherwise).
failCgroupV1: false
failSwapOn: false
enforceNodeAllocatable: []
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
resolvConf: $d/resolv.conf
podLogsDir: $d/pod-logs
serializeImagePulls: false
# Absolute reserves, not percentages: these nodes share the host's disk with everything else,
# and 2% of a 250 GB disk (5 GB) evicted the activator while GBs were still free (CI, stop 22).
evictionHard: {memory.available: 100Mi, nodefs.available: 1Gi, imagefs.available: 1Gi}
imageGCHighThresholdPercent: 95
imageGCLowThresholdPercent: 90
maxPods: 110
nodeStatusUpdateFrequency: 10s
EOF
}

kube_proxy_config() { # name file
  cat >"$2" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $STATE/kube-proxy.kubeconfig}
hostnameOverride: $1
mode: iptables
clusterCIDR: $REAL_POD_CIDR
detectLocalMode: ClusterCIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# conntrack table sizes are global (not per network namespace): leave them alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
}

corefile() {
  cat >"$STATE/Corefile" <<EOF
.:53 {
    errors
    health 127.0.0.1:18181
    ready 127.0.0.1:18182
    prometheus $NS_IP:9153
    cache 30
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $STATE/coredns.kubeconfig gaia
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
}
EOF
}

registry_config() {
  mkdir -p "$REGISTRY_DATA"
  cat >"$STATE/registry.yml" <<EOF
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $REGISTRY_DATA}
  delete: {enabled: true}
http:
  addr: $REGISTRY
EOF
}

# ---------------------------------------------------------------- up
real_check_built() {
  local f
  for f in "$GAIA_K8S_DIR/kubelet" "$GAIA_K8S_DIR/kube-proxy" "$GAIA_TRAEFIK_DIR/traefik" \
    "$GAIA_COREDNS_DIR/coredns" "$GAIA_PROMETHEUS_DIR/prometheus" "$GAIA_IMAGES_DIR/images.list" \
    "$GAIA_GPU_STANDIN_DIR/gpu-device-plugin"; do
    [[ -e $f ]] || gaia_die "$f is missing: run hack/build.sh --real-nodes first"
  done
  local c
  for c in containerd runc docker-registry nsenter iptables; do
    command -v "$c" >/dev/null || gaia_die "$c missing: run hack/build.sh --real-nodes first"
  done
}

# real_registry_up: the registry, and every image of images.list pushed to it.
real_registry_up() {
  registry_config
  start registry "$NETNS" "$(command -v docker-registry)" serve "$STATE/registry.yml"
  wait_for "registry" 30 curl -sf "http://$REGISTRY/v2/"
  real_push_images
}

# Every image hack/build.sh made (images.list) into the registry; blobs it has are skipped.
real_push_images() {
  local ref dir t=$SECONDS
  while read -r ref dir; do
    python3 "$GAIA_ROOT/hack/images/oci.py" push "$dir" "$REGISTRY" "$ref" >>"$LOGS/registry-push.log"
  done <"$GAIA_IMAGES_DIR/images.list"
  gaia_log "registry $REGISTRY: $(wc -l <"$GAIA_IMAGES_DIR/images.list") images pushed in $((SECONDS - t))s"
}

# start_node NAME I BINARY ARGS...: start like start(), in node I's network namespace (nsenter).
start_node() {
  local name=$1 i=$2; shift 2
  START_NSENTER=1 start "$name" "$(node_ns "$i")" "$@"
}

real_nodes_up() {
  local i d
  real_cgroups_up
  for i in 1 2; do
    d=$(node_dir "$i"); mkdir -p "$d"
    containerd_config "$i"
    start_node "containerd-w$i" "$i" "$(command -v containerd)" --config "$d/containerd.toml" --log-level warn
  done
  for i in 1 2; do
    wait_for "containerd of $(node_name "$i")" 30 ctr --address "$(node_sock "$i")" version
  done
  for i in 1 2; do
    d=$(node_dir "$i")
    kubelet_config "$i"
    local labels="gaia.dev/pool=cpu,gaia.dev/node=real" taints=()
    if [[ $i == 2 ]]; then
      labels="gaia.dev/pool=gpu,gaia.dev/node=real,nvidia.com/gpu.present=true,nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3,nvidia.com/gpu.count=1"
      taints=(--register-with-taints=nvidia.com/gpu=present:NoSchedule)
    fi
    start_node "kubelet-w$i" "$i" "$GAIA_K8S_DIR/kubelet" --config="$d/kubelet.yaml" \
      --kubeconfig="$STATE/kubelet-w$i.kubeconfig" --root-dir="$d/kubelet" --cert-dir="$d/kubelet/pki" \
      --hostname-override="$(node_name "$i")" --node-ip="$(node_ip "$i")" \
      --node-labels="$labels" "${taints[@]}" --containerd="$(node_sock "$i")" --v=1
  done
  # The kubelet's plugin watcher finds the stand-in's socket in <root-dir>/plugins_registry.
  d=$(node_dir 2)
  start_node gpu-standin-w2 2 "$GAIA_GPU_STANDIN_DIR/gpu-device-plugin" \
    --registry-dir="$d/kubelet/plugins_registry" --resource=nvidia.com/gpu \
    --devices="$GAIA_GPU_DEVICES" --node="$(node_name 2)" --profile="$GAIA_GPU_PROFILE"
  kube_proxy_config gaia-control-plane "$STATE/kube-proxy-cp.yaml"
  start kube-proxy-cp "$NETNS" "$GAIA_K8S_DIR/kube-proxy" --config="$STATE/kube-proxy-cp.yaml" --v=1
  for i in 1 2; do
    kube_proxy_config "$(node_name "$i")" "$(node_dir "$i")/kube-proxy.yaml"
    start_node "kube-proxy-w$i" "$i" "$GAIA_K8S_DIR/kube-proxy" --config="$(node_dir "$i")/kube-proxy.yaml" --v=1
  done
  corefile
  start coredns "$NETNS" "$GAIA_COREDNS_DIR/coredns" -conf "$STATE/Corefile"
}

# After the nodes registered: the GPU worker's nvidia.com/gpu, advertised by the stand-in's
# device plugin through the kubelet (as NVIDIA's device plugin does); KWOK nodes tainted so
# that only pods that ask for them (scale tests: toleration gaia.dev/kwok) land there.
real_nodes_ready() {
  wait_for "real nodes Ready" 120 real_nodes_are_ready
  local n
  for n in cpu-node-1 cpu-node-2 cpu-node-3 gpu-node-1 gpu-node-2; do
    k taint node "$n" gaia.dev/kwok=fake:NoSchedule --overwrite >/dev/null
  done
  wait_for "nvidia.com/gpu allocatable on $(node_name 2)" 60 gpu_allocatable
}

real_nodes_are_ready() {
  local i s
  for i in 1 2; do
    s=$(k get node "$(node_name "$i")" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)
    [[ $s == True ]] || return 1
  done
}

gpu_allocatable() {
  [[ $(k get node "$(node_name 2)" -o jsonpath='{.status.allocatable.nvidia\.com/gpu}') == "$GAIA_GPU_DEVICES" ]]
}

real_traefik_up() {
  start traefik "$NETNS" KUBECONFIG="$STATE/traefik.kubeconfig" "$GAIA_TRAEFIK_DIR/traefik" \
    --experimental.knative=true --providers.knative=true \
    --providers.knative.publicEntrypoints=web --providers.knative.privateEntrypoints=private \
    --providers.knative.publicService.name=traefik --providers.knative.publicService.namespace="$KNATIVE_NS" \
    --providers.knative.privateService.name=traefik-private --providers.knative.privateService.namespace="$KNATIVE_NS" \
    --entryPoints.web.address=:80 --entryPoints.private.address=:8081 \
    --entryPoints.traefik.address=127.0.0.1:18090 --ping=true --ping.entryPoint=traefik \
    --metrics.prometheus=true --metrics.prometheus.entryPoint=traefik \
    --log.level=INFO --global.checknewversion=false --global.sendanonymoususage=false
}

# Prometheus: Kubernetes service discovery of queue-proxies and the kubelets' cAdvisor.
real_prometheus_jobs() {
  cat <<EOF
- job_name: queue-proxy
  kubernetes_sd_configs:
  - role: pod
    kubeconfig_file: $STATE/prometheus.kubeconfig
  relabel_configs:
  # Knative's queue-proxy request metrics: container port "http-usermetric" (9091)
  - source_labels: [__meta_kubernetes_pod_container_port_name]
    regex: http-usermetric
    action: keep
  - source_labels: [__meta_kubernetes_pod_phase]
    regex: Running
    action: keep
  # only pods of the real nodes (KWOK's fake pods have addresses nothing can reach)
  - source_labels: [__meta_kubernetes_pod_ip]
    regex: '10\.245\..*'
    action: keep
  - source_labels: [__meta_kubernetes_namespace]
    target_label: namespace
  - source_labels: [__meta_kubernetes_pod_name]
    target_label: pod
  - source_labels: [__meta_kubernetes_pod_node_name]
    target_label: node
  - action: labelmap
    regex: __meta_kubernetes_pod_label_serving_knative_dev_(service|configuration|revision)
    replacement: \${1}
- job_name: kubernetes-cadvisor
  scheme: https
  tls_config: {insecure_skip_verify: true}
  metrics_path: /metrics/cadvisor
  kubernetes_sd_configs:
  - role: node
    kubeconfig_file: $STATE/prometheus.kubeconfig
  relabel_configs:
  - source_labels: [__meta_kubernetes_node_label_gaia_dev_node]
    regex: real
    action: keep
  - source_labels: [__meta_kubernetes_node_name]
    target_label: node
EOF
}

# memory charged to each node's cgroup root (its pods' containers, not the kubelet itself)
real_status_memory() {
  local i f
  for i in 1 2; do
    f="/sys/fs/cgroup/memory$(node_cgroup_root "$i")/memory.usage_in_bytes"
    if [[ -f $f ]]; then
      echo "  pods on $(node_name "$i"): $(($(cat "$f") / 1048576)) MiB incl. page cache (cgroup $(node_cgroup_root "$i"))"
    fi
  done
}

# A kustomize overlay of manifests/ that only sets Gaia's images to the local registry, as
# the README tells platform teams to do (kubectl apply -k "$STATE/gaia-overlay").
real_gaia_overlay() {
  local dir="$STATE/gaia-overlay" version rel
  version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$GAIA_ROOT/Cargo.toml")
  mkdir -p "$dir"
  rel=$(realpath --relative-to="$dir" "$GAIA_ROOT/manifests")
  cat >"$dir/kustomization.yaml" <<EOF
# Generated by hack/cluster.sh up --real-nodes: Gaia from manifests/, images from $REGISTRY.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $rel
images:
$(real_gaia_image gaia-webhook "$version")
$(real_gaia_image gaia-autoscaler "$version")
EOF
}

# One kustomize image entry: pinned to the digest pushed (a tag moves when the image is rebuilt,
# and a kubelet that has the tag already would not pull it again), else the tag.
real_gaia_image() { # name version
  local dir="$GAIA_IMAGES_DIR/gaia_$1_$2" digest
  if [[ -f $dir/index.json ]] && digest=$(python3 "$GAIA_ROOT/hack/images/oci.py" digest "$dir"); then
    echo "  - {name: gaia/$1, newName: $REGISTRY/gaia/$1, digest: \"$digest\"}"
  else
    echo "  - {name: gaia/$1, newName: $REGISTRY/gaia/$1, newTag: \"$2\"}"
  fi
}

# ---------------------------------------------------------------- down
# Pods first (the kubelets stop their sandboxes: CNI DEL, netns and mounts removed), then the
# processes (cluster.sh), then what containerd's shims and the kubelets leave behind.
real_drain() {
  local i n
  for i in 1 2; do
    n=$(node_name "$i")
    alive "kubelet-w$i" || continue
    k cordon "$n" >/dev/null 2>&1 || true
    k delete pods -A --field-selector "spec.nodeName=$n" --grace-period=2 --wait=false >/dev/null 2>&1 || true
  done
  local deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    local left=0
    for i in 1 2; do
      alive "kubelet-w$i" || continue
      left=$((left + $(k get pods -A --field-selector "spec.nodeName=$(node_name "$i")" --no-headers 2>/dev/null | wc -l)))
    done
    ((left == 0)) && return 0
    sleep 1
  done
  gaia_log "WARNING: pods still on the real nodes after 30 s; stopping anyway"
}

# Shims of our containerds (found by their -address argument), killed by PID.
kill_shims() {
  local i sock pid
  for i in 1 2; do
    sock=$(node_sock "$i")
    for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $sock( |$)" || true); do
      kill -KILL "$pid" 2>/dev/null || true
    done
  done
}

# Tasks still running in a containerd that is being stopped (a kubelet that died first).
kill_tasks() {
  local i sock t
  for i in 1 2; do
    alive "containerd-w$i" || continue
    sock=$(node_sock "$i")
    for t in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$sock" -n k8s.io tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
    done
    sleep 0.5
    for t in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$sock" -n k8s.io tasks delete -f "$t" >/dev/null 2>&1 || true
    done
  done
}

# mounts left under the nodes' directories (kubelet volumes, container root file systems)
real_unmount() {
  local m
  while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done < <(awk -v a="$STATE/nodes/" -v b="$NODE_CACHE/" 'index($5, a) == 1 || index($5, b) == 1 {print $5}' /proc/self/mountinfo | sort -r)
}

real_cleanup() {
  kill_shims
  real_unmount
  local f
  # the kubelets' links in /var/log/containers that point into our pod log directories
  for f in /var/log/containers/*.log; do
    [[ -L $f ]] || continue
    [[ $(readlink "$f") == "$STATE/nodes/"* ]] && rm -f "$f"
  done
  real_cgroups_down
}
