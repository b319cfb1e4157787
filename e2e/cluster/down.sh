#!/usr/bin/env bash
# Stops the e2e cluster that up.sh started and removes all of its state, also after a failed or
# half-finished up.sh: the processes it started (by the pid files in the run directory, and the
# containerd shims and containers of its containerd socket), the mounts under the run directory,
# the bridge, the iptables chains (ours, kube-proxy's KUBE-* and the CNI plugins' CNI-*), the
# kubelet's cgroups, and the run directory. Safe to run twice; says what it could not remove.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
((EUID == 0)) || die "down.sh needs root"
R=$CLUSTER_RUN
t0=$(now_ms)
problems=0
warn() { echo "cluster: down: $*" >&2; problems=$((problems + 1)); }

# stop NAME: TERM the process of pids/NAME.pid, KILL it after 10 s.
stop() {
  local f=$R/pids/$1.pid pid i
  [[ -f $f ]] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 20; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid" 2>/dev/null; sleep 0.5; }
  fi
  rm -f "$f"
}

if [[ -d $R ]]; then
  # The kubelet and kube-proxy first, so that nothing restarts what goes next.
  stop kubelet
  stop kube-proxy
  # Every container and sandbox of our containerd: killed and deleted while containerd still runs.
  if [[ -S $CONTAINERD_SOCK ]]; then
    c=(ctr --address "$CONTAINERD_SOCK" -n k8s.io)
    for id in $(timeout 20 "${c[@]}" tasks ls -q 2>/dev/null); do
      timeout 20 "${c[@]}" tasks kill -s SIGKILL "$id" >/dev/null 2>&1
      timeout 20 "${c[@]}" tasks delete -f "$id" >/dev/null 2>&1
    done
    for id in $(timeout 20 "${c[@]}" tasks ls -q 2>/dev/null); do
      warn "container task $id is still there after kill and delete"
    done
    for id in $(timeout 20 "${c[@]}" containers ls -q 2>/dev/null); do
      timeout 20 "${c[@]}" containers rm "$id" >/dev/null 2>&1 || warn "could not remove container $id"
    done
  fi
  stop containerd
  # Shims of our containerd that outlived it (they name its socket on their command line).
  for pid in $(pgrep -f -- "containerd-shim.*-address $CONTAINERD_SOCK"); do
    kill -KILL "$pid" 2>/dev/null
  done
  # The kernel settings as they were before the kubelet started.
  if [[ -f $R/sysctl.saved ]]; then
    while read -r s v; do
      [[ -n $s && -n $v ]] && { echo "$v" >"/proc/sys/$s" || warn "could not restore $s to $v"; }
    done <"$R/sysctl.saved"
  fi
  stop kube-scheduler
  stop kube-controller-manager
  stop kube-apiserver
  stop etcd
  # Mounts under the run directory (pod volumes, container root file systems, network namespaces),
  # deepest first.
  for i in 1 2 3; do
    mapfile -t mounts < <(awk -v r="$R/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r)
    ((${#mounts[@]})) || break
    for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
  done
  awk -v r="$R/" 'index($2, r) == 1 {print $2}' /proc/mounts | while read -r m; do warn "still mounted: $m"; done
fi

# The bridge (the pods' veth ends went with their network namespaces).
if ip link show "$BRIDGE" >/dev/null 2>&1; then
  ip link delete "$BRIDGE" || warn "could not delete interface $BRIDGE"
fi
for v in $(ip -o link show type veth 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
  [[ $(cat "/sys/class/net/$v/master/uevent" 2>/dev/null) == *"INTERFACE=$BRIDGE"* ]] && ip link delete "$v"
done

# iptables: our chain, kube-proxy's and the kubelet's KUBE-*, the CNI plugins' CNI-*. Rules that
# jump to them from the built-in chains go first, then the chains themselves.
for ipt in iptables ip6tables; do
  for table in filter nat mangle raw; do
    saved=$($ipt-save -t "$table" 2>/dev/null) || continue
    mapfile -t chains < <(grep -oE "^:($FORWARD_CHAIN|KUBE-[A-Z0-9-]+|CNI-[A-Za-z0-9-]+) " <<<"$saved" | tr -d ': ')
    ((${#chains[@]})) || continue
    pat=$(printf '%s|' "${chains[@]}")
    grep -E "^-A (INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) .*-j (${pat%|})( |\$)" <<<"$saved" | while read -r rule; do
      eval "$ipt -w -t $table -D ${rule#-A }" 2>/dev/null || warn "$ipt -t $table: could not delete rule '$rule'"
    done
    for ch in "${chains[@]}"; do $ipt -w -t "$table" -F "$ch" 2>/dev/null; done
    for ch in "${chains[@]}"; do $ipt -w -t "$table" -X "$ch" 2>/dev/null || warn "$ipt -t $table: could not delete chain $ch"; done
  done
done

# The kubelet's cgroups (empty once its pods are gone), deepest first.
for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/*/kubepods.slice; do
  [[ -d $d ]] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
  [[ -d $d ]] && warn "cgroup $d is left (a process still in it?)"
done
# The kubelet's links in /var/log/containers to logs under the run directory.
for l in /var/log/containers/*.log; do
  [[ -L $l && $(readlink "$l") == "$R"/* ]] && rm -f "$l"
done
# libcni's cache of our network's results (always in /var/lib/cni), with the loopback results of
# the same containers; the directories go if empty.
for f in /var/lib/cni/results/stowage-e2e-*-eth0; do
  [[ -f $f ]] || continue
  id=${f#/var/lib/cni/results/stowage-e2e-}
  id=${id%-eth0}
  rm -f "$f" "/var/lib/cni/results/cni-loopback-$id-lo"
done
rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null
rmdir /var/log/containers 2>/dev/null
# The kubelet's device-plugin socket, which it always puts in /var/lib/kubelet/device-plugins
# (not under --root-dir); the directories go if empty.
rm -f /var/lib/kubelet/device-plugins/kubelet.sock
rmdir /var/lib/kubelet/device-plugins /var/lib/kubelet 2>/dev/null
# Directories the shims create under /run/containerd, if empty.
rmdir /run/containerd/s /run/containerd/runc/k8s.io /run/containerd/runc /run/containerd/fifo /run/containerd 2>/dev/null

if [[ -d $R ]]; then
  rm -rf "$R" 2>/dev/null || warn "could not remove $R"
fi
if ((problems)); then
  echo "cluster: down with $problems problem(s) in $(since "$t0")" >&2
  exit 1
fi
echo "cluster: down in $(since "$t0")"
