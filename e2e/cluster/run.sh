#!/usr/bin/env bash
# The whole cluster e2e, as `./stowage test --cluster` runs it (as root): the cluster binaries (build.sh, cached),
# the node's images (images.sh, cached), the project's images (project-images.sh), a fresh node (up.sh), the
# scenarios (scenarios.sh), and the teardown (down.sh), which runs also when a step fails or the run is
# interrupted. Prints how long each part took. Needs the built applications (operator/ and runtime-image/
# target/quarkus-app); the launcher builds them first.
#   STOWAGE_CLUSTER_KEEP=1   leave the cluster up after the scenarios (down.sh removes it later)
# Usage: run.sh [SCENARIO...]   (scenario numbers as scenarios.sh takes them; default all)
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
((EUID == 0)) || die "the cluster e2e needs root: it creates a bridge and iptables rules and runs a kubelet and containerd"

timing=()
t_run=$(now_ms)
part() {
  local name=$1 t0 rc
  shift
  t0=$(now_ms)
  echo "e2e: ---- $name"
  "$@"
  rc=$?
  timing+=("$(printf '%-26s %8s  %s' "$name" "$(since "$t0")" "$([[ $rc == 0 ]] && echo ok || echo "FAILED (exit $rc)")")")
  return $rc
}
report() {
  echo "e2e: timings"
  printf 'e2e:   %s\n' "${timing[@]}"
  echo "e2e:   $(printf '%-26s %8s' total "$(since "$t_run")")"
}

cluster_up=false
teardown() {
  if $cluster_up; then
    if [[ ${STOWAGE_CLUSTER_KEEP:-0} == 1 ]]; then
      echo "e2e: the cluster stays up (STOWAGE_CLUSTER_KEEP=1): export KUBECONFIG=$KUBECONFIG_ADMIN; $CLUSTER_DIR/down.sh removes it"
    else
      part "down.sh" "$CLUSTER_DIR/down.sh" || true
    fi
    cluster_up=false
  fi
}
trap 'teardown; report' EXIT
trap 'echo "e2e: interrupted" >&2; exit 130' INT TERM

# A cluster left over from an interrupted run is removed first: the scenarios need a fresh one.
if [[ -d $CLUSTER_RUN ]]; then
  echo "e2e: removing the cluster state left in $CLUSTER_RUN"
  "$CLUSTER_DIR/down.sh" >/dev/null 2>&1 || true
fi
part "build.sh (binaries)" "$CLUSTER_DIR/build.sh" || exit 1
part "images.sh (node images)" "$CLUSTER_DIR/images.sh" || exit 1
part "project-images.sh" "$CLUSTER_DIR/project-images.sh" || exit 1
cluster_up=true
part "up.sh" "$CLUSTER_DIR/up.sh" || exit 1
part "scenarios.sh" "$CLUSTER_DIR/scenarios.sh" "$@"
rc=$?
exit $rc
