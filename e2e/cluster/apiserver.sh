#!/usr/bin/env bash
# A bare control plane for benchmarks: etcd and kube-apiserver (the binaries build.sh cached) bound to
# 127.0.0.1, no kubelet, scheduler or controller manager, no root needed.
#
#   apiserver.sh check         exit 0 when the cached binaries and openssl are there, else say what is missing
#   apiserver.sh start DIR     start both with their state in DIR (created; must not exist or be empty); writes
#                              DIR/admin.conf (a system:masters kubeconfig), DIR/url, DIR/logs/*.log
#   apiserver.sh stop DIR      stop both and remove DIR (only a DIR that start made)
#
# Ports: etcd client/peer from 23890/23900 and the API server from 16443 (STOWAGE_BENCH_ETCD_PORT,
# STOWAGE_BENCH_ETCD_PEER_PORT, STOWAGE_BENCH_APISERVER_PORT), each moved up to the next free one; never the
# ports of up.sh's cluster. Pods never run: Nodes are objects only, and nothing garbage-collects.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

MARK=.stowage-apiserver
usage() {
  echo "usage: e2e/cluster/apiserver.sh check | start DIR | stop DIR" >&2
  exit 2
}

check() {
  local b
  for b in etcd kube-apiserver; do
    [ -x "$CLUSTER_BIN/$b" ] || {
      echo "$b is not built in $CLUSTER_BIN (run e2e/cluster/build.sh etcd kube-apiserver)"
      return 1
    }
  done
  command -v openssl >/dev/null || {
    echo "openssl is not installed"
    return 1
  }
}

# The ports of up.sh's cluster (and the kubelet's), never taken here.
RESERVED=" 6443 23790 23800 10248 10249 10250 10251 10252 10253 10254 10255 10256 "
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# free_port FROM [TAKEN...]: the first port from FROM up that is free, not reserved and not in TAKEN.
free_port() {
  local p=$1 i
  shift
  for ((i = 0; i < 200; i++, p++)); do
    [[ $RESERVED == *" $p "* ]] && continue
    [[ " $* " == *" $p "* ]] && continue
    in_use "$p" && continue
    echo "$p"
    return 0
  done
  die "no free port from $1 to $p on 127.0.0.1"
}

stop() {
  local dir=$1 f pid i
  [ -d "$dir" ] || return 0
  [ -f "$dir/$MARK" ] || die "$dir was not made by apiserver.sh start; not touching it"
  for f in "$dir"/pids/kube-apiserver.pid "$dir"/pids/etcd.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || continue
    for ((i = 0; i < 40; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$dir"
}

start() {
  local dir=$1 reason
  reason=$(check) || die "$reason"
  if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
    die "$dir exists and is not empty; give start a new directory"
  fi
  mkdir -p "$dir"/{pki,logs,pids,etcd}
  dir=$(cd "$dir" && pwd)
  touch "$dir/$MARK"
  chmod 0700 "$dir" "$dir/pki"
  ok=false
  # shellcheck disable=SC2064
  trap "[ \$ok = true ] || { tail -n 20 '$dir'/logs/*.log >&2 2>/dev/null || true; stop '$dir'; }" EXIT

  local etcd_port peer_port api_port
  etcd_port=$(free_port "${STOWAGE_BENCH_ETCD_PORT:-23890}")
  peer_port=$(free_port "${STOWAGE_BENCH_ETCD_PEER_PORT:-23900}" "$etcd_port")
  api_port=$(free_port "${STOWAGE_BENCH_APISERVER_PORT:-16443}" "$etcd_port" "$peer_port")

  # Certificates as up.sh makes them: our own CA (EC P-256, 7 days), the serving cert, an admin client cert.
  local P=$dir/pki log=$dir/logs/openssl.log
  pki_ca "$P" "$log" stowage-bench-ca || die "openssl failed; see $log"
  pki_cert "$P" "$log" apiserver "/CN=kube-apiserver" "extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost" || die "openssl failed; see $log"
  pki_cert "$P" "$log" admin "/O=system:masters/CN=kubernetes-admin" "extendedKeyUsage=clientAuth" \
    || die "openssl failed; see $log"

  local url=https://127.0.0.1:$api_port
  # The kubeconfig carries the certificates inline, so it works from any working directory.
  b64() { base64 -w0 <"$1"; }
  cat >"$dir/admin.conf" <<KC
apiVersion: v1
kind: Config
clusters:
- name: stowage-bench
  cluster:
    server: $url
    certificate-authority-data: $(b64 "$P/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $(b64 "$P/admin.crt")
    client-key-data: $(b64 "$P/admin.key")
contexts:
- name: stowage-bench
  context:
    cluster: stowage-bench
    user: admin
current-context: stowage-bench
KC
  chmod 0600 "$dir/admin.conf"
  echo "$url" >"$dir/url"

  run() {
    local name=$1
    shift
    setsid "$@" >"$dir/logs/$name.log" 2>&1 </dev/null &
    echo $! >"$dir/pids/$name.pid"
  }
  wait_for() {
    local what=$1 secs=$2 i p
    shift 2
    for ((i = 0; i < secs * 2; i++)); do
      "$@" >/dev/null 2>&1 && return 0
      for p in "$dir"/pids/*.pid; do
        kill -0 "$(cat "$p")" 2>/dev/null || die "$(basename "$p" .pid) exited while waiting for $what (log: $dir/logs/$(basename "$p" .pid).log)"
      done
      sleep 0.5
    done
    die "$what not ready after ${secs}s"
  }
  local etcd_url=http://127.0.0.1:$etcd_port
  run etcd "$CLUSTER_BIN/etcd" --data-dir "$dir/etcd" --listen-client-url "$etcd_url" \
    --listen-peer-url "http://127.0.0.1:$peer_port"
  wait_for etcd 60 curl -fsS "$etcd_url/health"
  # A /16 of Service addresses: the bench makes a Service per LlmDeployment (a /24 is full after 254, and the next
  # create waits). Two admission plugins are off because no controller manager follows them up: ServiceAccount (nothing makes
  # the namespaces' default accounts) and TaintNodesByCondition (its node.kubernetes.io/not-ready taint on a new
  # Node is removed by the node lifecycle controller only).
  run kube-apiserver "$CLUSTER_BIN/kube-apiserver" \
    --etcd-servers="$etcd_url" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
    --service-cluster-ip-range=10.98.0.0/16 --endpoint-reconciler-type=none \
    --client-ca-file="$P/ca.crt" --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" \
    --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --authorization-mode=RBAC \
    --disable-admission-plugins=ServiceAccount,TaintNodesByCondition \
    --profiling=false --v=1
  wait_for kube-apiserver 300 curl -fsS --cacert "$P/ca.crt" --cert "$P/admin.crt" --key "$P/admin.key" "$url/readyz"
  ok=true
  echo "apiserver: $url (etcd $etcd_url); KUBECONFIG=$dir/admin.conf" >&2
}

[ $# -ge 1 ] || usage
case "$1" in
  check)
    [ $# -eq 1 ] || usage
    check
    ;;
  start)
    [ $# -eq 2 ] || usage
    start "$2"
    ;;
  stop)
    [ $# -eq 2 ] || usage
    stop "$2"
    ;;
  *) usage ;;
esac
