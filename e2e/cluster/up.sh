#!/usr/bin/env bash
# Starts a single-node Kubernetes cluster on this machine from the binaries build.sh cached and the
# images images.sh made: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd
# (Debian's, with its own config, state and socket), kubelet and kube-proxy (iptables mode), with a
# CNI bridge (Debian's containernetworking-plugins). Everything lives under the run directory
# (STOWAGE_CLUSTER_RUN, default ${XDG_RUNTIME_DIR:-/tmp}/stowage-cluster): certificates, etcd data,
# containerd root and state, kubelet root, one log per process (logs/). Waits until the node is
# Ready and prints how long each part took. On a failure it prints the failing log's tail and runs
# down.sh (set STOWAGE_CLUSTER_KEEP=1 to keep the state for a look). Needs root.
# Then: export KUBECONFIG=$STOWAGE_CLUSTER_RUN/kubeconfig/admin.conf (printed at the end).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

((EUID == 0)) || die "up.sh needs root (it creates a bridge, iptables rules and runs the kubelet)"
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
  [[ -x $CLUSTER_BIN/$b ]] || die "$CLUSTER_BIN/$b is missing: run build.sh first"
done
for i in pause httpd debian; do
  [[ -f $CLUSTER_IMAGES/$i.tar ]] || die "$CLUSTER_IMAGES/$i.tar is missing: run images.sh first"
done
for c in containerd containerd-shim-runc-v2 runc ctr iptables ip6tables conntrack openssl ip curl; do
  command -v "$c" >/dev/null || die "$c is not installed (apt-get install containerd runc iptables conntrack openssl iproute2 curl)"
done
CNI_BIN=${STOWAGE_CNI_BIN:-/usr/lib/cni}
for p in bridge host-local loopback portmap; do
  [[ -x $CNI_BIN/$p ]] || die "CNI plugin $CNI_BIN/$p is missing (apt-get install containernetworking-plugins)"
done
# Unix socket paths are limited to 107 bytes; the longest under the run directory is the kubelet's
# pod-resources/kubelet.sock.
longest=/kubelet/pod-resources/kubelet.sock
((${#CLUSTER_RUN} + ${#longest} <= 107)) || die "run directory $CLUSTER_RUN is too long for the sockets under it (at most $((107 - ${#longest})) characters); set STOWAGE_CLUSTER_RUN to a shorter path"
[[ ! -e $CLUSTER_RUN ]] || die "$CLUSTER_RUN exists: a cluster is up or was left over; run down.sh first"
! ip link show "$BRIDGE" >/dev/null 2>&1 || die "network interface $BRIDGE exists: run down.sh first"

R=$CLUSTER_RUN
K=$CLUSTER_BIN
step=""
failed() {
  local rc=$?
  trap - ERR EXIT
  ((rc == 0)) && return
  echo "cluster: up failed during '$step' (exit $rc)" >&2
  for l in "$R"/logs/*.log; do
    [[ $l == */openssl.log || $l == */images.log ]] && continue
    [[ -f $l ]] || continue
    echo "---- last lines of $l" >&2
    tail -n 15 "$l" >&2
  done
  if [[ ${STOWAGE_CLUSTER_KEEP:-0} == 1 ]]; then
    echo "cluster: state kept in $R (STOWAGE_CLUSTER_KEEP=1); run down.sh to remove it" >&2
  else
    "$CLUSTER_DIR/down.sh" >&2 || true
  fi
  exit "$rc"
}
trap failed EXIT

mkdir -p "$R"/{pki,logs,pids,kubeconfig,etcd,containerd,kubelet,cni/net.d,cni/ipam,pod-logs,proxy}
chmod 0700 "$R" "$R/pki"
t_all=$(now_ms)
timing=()
begin() { step=$1; t_step=$(now_ms); }
end() { timing+=("$(printf '%-32s %s' "$step" "$(since "$t_step")")"); echo "cluster: $step: $(since "$t_step")"; }

# start NAME CMD...: runs a process in its own session, its output in logs/NAME.log.
start() {
  local name=$1
  shift
  setsid "$@" >"$R/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$R/pids/$name.pid"
}
# wait_for WHAT SECONDS CMD...: retries CMD every half second; fails with WHAT after SECONDS.
wait_for() {
  local what=$1 secs=$2 i
  shift 2
  for ((i = 0; i < secs * 2; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    for p in "$R"/pids/*.pid; do
      kill -0 "$(cat "$p")" 2>/dev/null || { echo "cluster: $(basename "$p" .pid) exited while waiting for $what" >&2; return 1; }
    done
    sleep 0.5
  done
  echo "cluster: $what not ready after ${secs}s" >&2
  return 1
}

# ---- certificates: our own CA, the API server's serving cert, one client cert per component.
begin certificates
P=$R/pki
pki_ca "$P" "$R/logs/openssl.log" stowage-e2e-ca || die "openssl failed; see $R/logs/openssl.log"
# cert NAME SUBJECT EXTENSIONS: a leaf certificate signed by the CA.
cert() { pki_cert "$P" "$R/logs/openssl.log" "$@" || die "openssl failed for $1; see $R/logs/openssl.log"; }
cert apiserver "/CN=kube-apiserver" \
  "extendedKeyUsage=serverAuth
subjectAltName=IP:$NODE_IP,IP:$SERVICE_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
cert admin "/O=system:masters/CN=kubernetes-admin" "extendedKeyUsage=clientAuth"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth"
cert controller-manager "/CN=system:kube-controller-manager" "extendedKeyUsage=clientAuth"
cert scheduler "/CN=system:kube-scheduler" "extendedKeyUsage=clientAuth"
cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" "extendedKeyUsage=clientAuth"
cert kube-proxy "/CN=system:kube-proxy" "extendedKeyUsage=clientAuth"
server=https://$NODE_IP:$APISERVER_PORT
for c in admin controller-manager scheduler kubelet kube-proxy; do
  cat >"$R/kubeconfig/$c.conf" <<KC
apiVersion: v1
kind: Config
clusters:
- name: stowage-e2e
  cluster:
    server: $server
    certificate-authority: $P/ca.crt
users:
- name: $c
  user:
    client-certificate: $P/$c.crt
    client-key: $P/$c.key
contexts:
- name: stowage-e2e
  context:
    cluster: stowage-e2e
    user: $c
current-context: stowage-e2e
KC
done
end

# ---- network: the bridge with the node's address; forwarding only between the bridge's ports.
begin network
ip link add "$BRIDGE" type bridge
echo 1 >"/proc/sys/net/ipv6/conf/$BRIDGE/disable_ipv6"
ip addr add "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
ip link set "$BRIDGE" up
echo 1 >"/proc/sys/net/ipv4/conf/$BRIDGE/forwarding"
# The Service range is reached through the bridge, never through the machine's default route.
ip route add "$SERVICE_CIDR" dev "$BRIDGE" src "$NODE_IP"
iptables -w -N "$FORWARD_CHAIN"
iptables -w -A "$FORWARD_CHAIN" -i "$BRIDGE" -o "$BRIDGE" -j RETURN
iptables -w -A "$FORWARD_CHAIN" -i "$BRIDGE" -j DROP
iptables -w -A "$FORWARD_CHAIN" -o "$BRIDGE" -j DROP
iptables -w -I FORWARD 1 -j "$FORWARD_CHAIN"
# Pods get no default route: only their subnet and the Service range, through the node.
cat >"$R/cni/net.d/10-stowage-e2e.conflist" <<CNI
{
  "cniVersion": "1.0.0",
  "name": "stowage-e2e",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$R/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "$SERVICE_CIDR"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}, "snat": false}
  ]
}
CNI
# Pods resolve nothing outside: their resolver is the pod's own loopback.
printf 'nameserver 127.0.0.1\noptions ndots:1\n' >"$R/resolv.conf"
end

# ---- etcd
begin etcd
start etcd "$K/etcd" --data-dir "$R/etcd" --listen-client-url "$ETCD_CLIENT_URL" --listen-peer-url "$ETCD_PEER_URL"
wait_for etcd 60 curl -fsS "$ETCD_CLIENT_URL/health"
end

# ---- kube-apiserver
begin kube-apiserver
start kube-apiserver "$K/kube-apiserver" \
  --etcd-servers="$ETCD_CLIENT_URL" \
  --bind-address="$NODE_IP" --advertise-address="$NODE_IP" --secure-port="$APISERVER_PORT" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --client-ca-file="$P/ca.crt" --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" \
  --kubelet-client-certificate="$P/apiserver-kubelet-client.crt" --kubelet-client-key="$P/apiserver-kubelet-client.key" \
  --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --authorization-mode=Node,RBAC \
  --kubelet-preferred-address-types=InternalIP \
  --enable-admission-plugins=NodeRestriction,PodSecurity \
  --allow-privileged=true --profiling=false --v=1
wait_for kube-apiserver 180 curl -fsS --cacert "$P/ca.crt" --cert "$P/admin.crt" --key "$P/admin.key" "$server/readyz"
end

export KUBECONFIG=$KUBECONFIG_ADMIN
kc() { "$K/kubectl" "$@"; }

# ---- controller manager and scheduler (no serving ports of their own: --secure-port=0)
begin controller-manager+scheduler
start kube-controller-manager "$K/kube-controller-manager" \
  --kubeconfig="$R/kubeconfig/controller-manager.conf" \
  --authentication-kubeconfig="$R/kubeconfig/controller-manager.conf" \
  --authorization-kubeconfig="$R/kubeconfig/controller-manager.conf" \
  --secure-port=0 --leader-elect=false --use-service-account-credentials=true \
  --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt" \
  --cluster-signing-cert-file="$P/ca.crt" --cluster-signing-key-file="$P/ca.key" \
  --allocate-node-cidrs=true --cluster-cidr="$POD_CIDR" --node-cidr-mask-size="${POD_CIDR#*/}" \
  --service-cluster-ip-range="$SERVICE_CIDR" --flex-volume-plugin-dir="$R/controller-manager/volume-plugins" --v=1
start kube-scheduler "$K/kube-scheduler" \
  --kubeconfig="$R/kubeconfig/scheduler.conf" \
  --authentication-kubeconfig="$R/kubeconfig/scheduler.conf" \
  --authorization-kubeconfig="$R/kubeconfig/scheduler.conf" \
  --secure-port=0 --leader-elect=false --v=1
wait_for "the default ServiceAccount" 120 kc get serviceaccount default -n default
end

# ---- containerd, with the images imported into its k8s.io namespace
begin containerd
C=$R/containerd
cat >"$C/config.toml" <<TOML
version = 2
root = "$C/root"
state = "$C/state"
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$C/containerd.sock.ttrpc"
[debug]
  address = "$C/debug.sock"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$C/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # Keeps containers' oom_score_adj at or above containerd's own: the kubelet asks -998 for
  # sandboxes, which runc cannot set without CAP_SYS_RESOURCE ("failed to update
  # /proc/self/oom_score_adj: Permission denied", seen as "can't get final child's PID from pipe").
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$C/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$R/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = ""
TOML
start containerd containerd --config "$C/config.toml"
wait_for containerd 60 ctr --address "$CONTAINERD_SOCK" version
for i in pause httpd debian; do
  ctr --address "$CONTAINERD_SOCK" -n k8s.io images import --no-unpack=false "$CLUSTER_IMAGES/$i.tar" >>"$R/logs/images.log" 2>&1 \
    || die "ctr could not import $CLUSTER_IMAGES/$i.tar (see $R/logs/images.log)"
done
end

# ---- kubelet and kube-proxy
begin kubelet+kube-proxy
cat >"$R/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $P/ca.crt}
authorization: {mode: Webhook}
clusterDomain: cluster.local
resolvConf: $R/resolv.conf
podCIDR: $POD_CIDR
podLogsDir: $R/pod-logs
volumePluginDir: $R/kubelet/volume-plugins
maxPods: 50
failSwapOn: false
registerNode: true
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
serializeImagePulls: false
YAML
for s in "${KUBELET_SYSCTLS[@]}"; do echo "$s $(cat "/proc/sys/$s")"; done >"$R/sysctl.saved"
start kubelet "$K/kubelet" --config="$R/kubelet/config.yaml" --kubeconfig="$R/kubeconfig/kubelet.conf" \
  --root-dir="$R/kubelet" --cert-dir="$R/kubelet/pki" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --v=1
cat >"$R/proxy/config.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $R/kubeconfig/kube-proxy.conf}
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
clusterCIDR: $POD_CIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$NODE_IP/32"]
iptables: {localhostNodePorts: false, masqueradeAll: false}
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
start kube-proxy "$K/kube-proxy" --config="$R/proxy/config.yaml" --v=1
wait_for "node $NODE_NAME registered" 120 kc get node "$NODE_NAME"
kc wait --for=condition=Ready "node/$NODE_NAME" --timeout=180s >/dev/null
end

trap - EXIT
echo "cluster: up in $(since "$t_all")"
printf '  %s\n' "${timing[@]}"
echo "export KUBECONFIG=$KUBECONFIG_ADMIN"
