#!/usr/bin/env bash
# Builds the e2e cluster's binaries from pinned upstream sources (Go module proxy) and caches them
# outside the repository: kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
# kube-proxy, kubectl (k8s.io/kubernetes), etcd (go.etcd.io/etcd/server/v3 embed), helm
# (helm.sh/helm/v4), and the pause and httpd programs for the images (images.sh).
# A binary whose cache stamp matches its inputs is skipped, so a second run takes seconds.
#   STOWAGE_CLUSTER_CACHE  cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/stowage/cluster)
#   STOWAGE_CLUSTER_JOBS   go build -p and GOMAXPROCS (default 2)
# Usage: build.sh [binary...]   (default: all)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v go >/dev/null || die "go is not on PATH; the cluster is built from Go sources (Go 1.25 or later)"
jobs=${STOWAGE_CLUSTER_JOBS:-2}
[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "STOWAGE_CLUSTER_JOBS must be a positive number, not '$jobs'"
grep -q "k8s.io/kubernetes $K8S_VERSION\( \|$\)" "$CLUSTER_DIR/go/k8s/go.mod" || die "go/k8s/go.mod does not require k8s.io/kubernetes $K8S_VERSION (lib.sh pins it)"
grep -q "go.etcd.io/etcd/server/v3 $ETCD_VERSION\( \|$\)" "$CLUSTER_DIR/go/k8s/go.mod" || die "go/k8s/go.mod does not require etcd $ETCD_VERSION (lib.sh pins it)"
grep -q "helm.sh/helm/v4 $HELM_VERSION\( \|$\)" "$CLUSTER_DIR/go/helm/go.mod" || die "go/helm/go.mod does not require helm $HELM_VERSION (lib.sh pins it)"

export GOFLAGS=-mod=mod GOTOOLCHAIN=local GOMAXPROCS=$jobs CGO_ENABLED=0
mkdir -p "$CLUSTER_BIN"
# One build at a time per cache: a second run waits for the first, then finds its binaries cached.
exec 9>"$CLUSTER_BIN/.lock"
flock -n 9 || { echo "build.sh: another build.sh is running on $CLUSTER_BIN; waiting for it"; flock 9; }

# Version stamps as hack/lib/version.sh sets them, so the binaries report the pinned release.
minor=${K8S_VERSION#v1.}
minor=${minor%%.*}
kver=""
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  kver+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  kver+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

# build NAME MODULE_DIR PACKAGE [extra ldflags]: go build unless the stamp matches.
build() {
  local name=$1 dir=$CLUSTER_DIR/go/$2 pkg=$3 extra=${4:-}
  local out=$CLUSTER_BIN/$name stamp=$CLUSTER_BIN/.$name.stamp key
  key=$( (go version; echo "$K8S_VERSION $ETCD_VERSION $HELM_VERSION $pkg $extra"; cat "$dir/go.mod" "$dir/go.sum" 2>/dev/null; if [[ $pkg == ./* ]]; then find "$dir/${pkg#./}" -name '*.go' -print0 | sort -z | xargs -0 -r cat; fi) | sha256sum | cut -c1-16)
  if [[ -x $out && -f $stamp && $(cat "$stamp") == "$key" ]]; then
    printf '%-24s cached   %6s MiB\n' "$name" "$(($(stat -c %s "$out") / 1048576))"
    return
  fi
  local t0
  t0=$(now_ms)
  rm -f "$stamp"
  (cd "$dir" && go build -p "$jobs" -trimpath -ldflags "-s -w$extra" -o "$out.tmp.$$" "$pkg") \
    || { rm -f "$out.tmp.$$"; die "go build of $name ($pkg) failed"; }
  mv -f "$out.tmp.$$" "$out"
  echo "$key" > "$stamp"
  printf '%-24s built    %6s MiB  in %s\n' "$name" "$(($(stat -c %s "$out") / 1048576))" "$(since "$t0")"
}

declare -A what=(
  [etcd]="k8s ./cmd/etcd"
  [kube-apiserver]="k8s k8s.io/kubernetes/cmd/kube-apiserver"
  [kube-controller-manager]="k8s k8s.io/kubernetes/cmd/kube-controller-manager"
  [kube-scheduler]="k8s k8s.io/kubernetes/cmd/kube-scheduler"
  [kubelet]="k8s k8s.io/kubernetes/cmd/kubelet"
  [kube-proxy]="k8s k8s.io/kubernetes/cmd/kube-proxy"
  [kubectl]="k8s k8s.io/kubernetes/cmd/kubectl"
  [helm]="helm helm.sh/helm/v4/cmd/helm"
  [pause]="images ./pause"
  [httpd]="images ./httpd"
)
order=(pause httpd etcd kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet helm)
(($# > 0)) && order=("$@")
t0=$(now_ms)
for name in "${order[@]}"; do
  [[ -n ${what[$name]:-} ]] || die "unknown binary '$name' (known: ${!what[*]})"
  read -r mod pkg <<<"${what[$name]}"
  case $mod in
    k8s) build "$name" "$mod" "$pkg" "$kver" ;;
    helm) build "$name" "$mod" "$pkg" " -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" ;;
    *) build "$name" "$mod" "$pkg" ;;
  esac
done
echo "binaries in $CLUSTER_BIN ($(du -sh "$CLUSTER_BIN" | cut -f1)), $(since "$t0")"
