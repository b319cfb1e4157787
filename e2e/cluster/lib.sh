# Shared settings of the e2e cluster scripts (sourced, not run).
# The pinned versions; go/k8s/go.mod and go/helm/go.mod must require the same ones (build.sh checks).
K8S_VERSION=v1.35.4
ETCD_VERSION=v3.6.5
HELM_VERSION=v4.1.4

CLUSTER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Binaries are cached outside the repository, keyed by the pinned versions.
CLUSTER_CACHE=${STOWAGE_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stowage/cluster}
CLUSTER_BIN=${STOWAGE_CLUSTER_BIN:-$CLUSTER_CACHE/$K8S_VERSION/bin}
CLUSTER_IMAGES=$CLUSTER_CACHE/$K8S_VERSION/images
# State of a running cluster (certificates, etcd data, containerd root, logs).
CLUSTER_RUN=${STOWAGE_CLUSTER_RUN:-${XDG_RUNTIME_DIR:-/tmp}/stowage-cluster}

die() {
  echo "cluster: $*" >&2
  exit 1
}

# now_ms prints the wall clock in milliseconds; since SECS_START prints seconds with one decimal.
now_ms() { date +%s%3N; }
since() { local d=$(($(now_ms) - $1)); printf '%d.%ds' $((d / 1000)) $((d % 1000 / 100)); }

# The node's network: a bridge that up.sh creates, with the node's address on it. Pods get
# addresses from POD_CIDR on this bridge; Services get ClusterIPs from SERVICE_CIDR. Nothing is
# routed off the machine (up.sh drops forwarded traffic that would leave the bridge).
NODE_NAME=stowage-e2e
BRIDGE=${STOWAGE_CLUSTER_BRIDGE:-stowage0}
NODE_IP=10.244.0.1
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/24
SERVICE_IP=10.96.0.1
APISERVER_PORT=6443
ETCD_CLIENT_URL=http://127.0.0.1:23790
ETCD_PEER_URL=http://127.0.0.1:23800
PAUSE_IMAGE=stowage.local/e2e/pause:v1
CONTAINERD_SOCK=$CLUSTER_RUN/containerd/containerd.sock
KUBECONFIG_ADMIN=$CLUSTER_RUN/kubeconfig/admin.conf
# kubectl's discovery cache and helm's files stay in the run directory, not in $HOME.
export KUBECACHEDIR=$CLUSTER_RUN/kube-cache
export HELM_CACHE_HOME=$CLUSTER_RUN/helm/cache HELM_CONFIG_HOME=$CLUSTER_RUN/helm/config HELM_DATA_HOME=$CLUSTER_RUN/helm/data
# The iptables chain up.sh adds to FORWARD (down.sh removes it and every KUBE-*/CNI- chain).
FORWARD_CHAIN=STOWAGE-E2E-FORWARD
# Kernel settings the kubelet changes at start (pkg/kubelet/cm setupKernelTunables); up.sh saves
# them and down.sh puts them back.
KUBELET_SYSCTLS=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes)

# The certificates of a cluster (up.sh) or a bare API server (apiserver.sh), made with openssl; errors go to LOG.
# pki_ca DIR LOG CN: a CA (EC P-256, 7 days) as DIR/ca.{key,crt}, and the service-account key pair DIR/sa.{key,pub}.
pki_ca() {
  local P=$1 log=$2
  openssl ecparam -name prime256v1 -genkey -noout -out "$P/ca.key" 2>>"$log" \
    && openssl req -x509 -new -key "$P/ca.key" -subj "/CN=$3" -days 7 -out "$P/ca.crt" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>>"$log" \
    && openssl ecparam -name prime256v1 -genkey -noout -out "$P/sa.key" 2>>"$log" \
    && openssl ec -in "$P/sa.key" -pubout -out "$P/sa.pub" 2>>"$log"
}
# pki_cert DIR LOG NAME SUBJECT EXTENSIONS: a leaf certificate DIR/NAME.{key,crt} signed by DIR's CA.
pki_cert() {
  local P=$1 log=$2
  openssl ecparam -name prime256v1 -genkey -noout -out "$P/$3.key" 2>>"$log" \
    && openssl req -new -key "$P/$3.key" -subj "$4" -out "$P/$3.csr" 2>>"$log" \
    && openssl x509 -req -in "$P/$3.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -days 7 -out "$P/$3.crt" \
      -extfile <(printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n%s\n' "$5") 2>>"$log" \
    && rm -f "$P/$3.csr"
}
