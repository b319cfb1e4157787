#!/usr/bin/env bash
# Builds the project's two images from its own Dockerfiles, on a Java 21 base image made here, and saves them as
# docker-archive tarballs that the node's containerd imports (scenarios.sh does):
#   stowage.local/e2e/jre21:trixie       `debootstrap --variant=minbase --include=openjdk-21-jre-headless,...
#                                        trixie`, imported with `docker import`
#   stowage.local/stowage/operator:e2e   ./Dockerfile               --build-arg BASE_IMAGE=the image above
#   stowage.local/stowage/runtime:e2e    runtime-image/Dockerfile   --build-arg BASE_IMAGE=the image above
#   stowage.local/stowage/runtime-cuda:e2e  the same, --build-arg VARIANT=cuda (the GPU hosts' variant)
# It needs the built applications (operator/target/quarkus-app and runtime-image/target/quarkus-app; `./stowage
# test --cluster` builds them first). The builds run with --network none: nothing is downloaded.
#
# Docker: the daemon at DOCKER_HOST (or /var/run/docker.sock) when one answers; else Debian's dockerd
# (apt-get install docker.io) is started for the duration of this script, with its own socket, its data root in
# the cache (so a second run reuses the base image and the layers), no bridge and no iptables rules, and stopped
# at the end.
#   STOWAGE_DEBIAN_MIRROR  Debian mirror for debootstrap (default http://deb.debian.org/debian)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROOT=$(cd "$CLUSTER_DIR/../.." && pwd)
mkdir -p "$CLUSTER_IMAGES"

for app in operator runtime-image; do
  [[ -f $ROOT/$app/target/quarkus-app/quarkus-run.jar ]] \
    || die "$app/target/quarkus-app is missing: build it first (./mvnw -pl operator,runtime-image -am package -DskipTests)"
done

# ---- docker: an answering daemon, or our own dockerd for the duration
DOCKER_STATE=$CLUSTER_CACHE/docker
own_dockerd=false
if ! docker version >/dev/null 2>&1; then
  ((EUID == 0)) || die "no docker daemon answers and starting one needs root"
  command -v dockerd >/dev/null || die "dockerd is not installed (apt-get install docker.io)"
  mkdir -p "$DOCKER_STATE/data" "$DOCKER_STATE/run"
  export DOCKER_HOST=unix://$DOCKER_STATE/run/docker.sock
  if ! docker version >/dev/null 2>&1; then
    rm -f "$DOCKER_STATE/run/docker.sock" "$DOCKER_STATE/run/docker.pid"
    dockerd --data-root "$DOCKER_STATE/data" --exec-root "$DOCKER_STATE/run/exec" --pidfile "$DOCKER_STATE/run/docker.pid" \
      -H "$DOCKER_HOST" --bridge=none --iptables=false --ip-forward=false --ip-masq=false --userland-proxy=false \
      --storage-driver=overlay2 >"$DOCKER_STATE/dockerd.log" 2>&1 &
    own_dockerd=true
    stop_dockerd() {
      local pid
      pid=$(cat "$DOCKER_STATE/run/docker.pid" 2>/dev/null || true)
      [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 150); do
        [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
      done
    }
    trap stop_dockerd EXIT
    for _ in $(seq 1 150); do
      docker version >/dev/null 2>&1 && break
      sleep 0.2
    done
    docker version >/dev/null 2>&1 || die "dockerd did not start; see $DOCKER_STATE/dockerd.log"
  fi
fi
echo "images: docker $(docker version --format '{{.Server.Version}}') ($($own_dockerd && echo "started here, data in $DOCKER_STATE" || echo "${DOCKER_HOST:-the system daemon}"))"
# The classic builder: Debian's docker.io has no buildx plugin, and it needs no network for these Dockerfiles.
export DOCKER_BUILDKIT=0

# ---- the base: Debian trixie with a Java 21 JRE
BASE=stowage.local/e2e/jre21:trixie
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  rootfs=$CLUSTER_IMAGES/rootfs-jre21
  t0=$(now_ms)
  if [[ ! -f $rootfs/.complete ]]; then
    command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
    rm -rf "$rootfs.tmp"
    echo "images: debootstrap of trixie with openjdk-21-jre-headless (a few minutes)"
    debootstrap --variant=minbase --include=openjdk-21-jre-headless,ca-certificates trixie "$rootfs.tmp" \
      "${STOWAGE_DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$CLUSTER_IMAGES/debootstrap-jre21.log" 2>&1 \
      || die "debootstrap failed; see $CLUSTER_IMAGES/debootstrap-jre21.log"
    rm -rf "$rootfs.tmp"/var/cache/apt/archives/*.deb "$rootfs.tmp"/var/lib/apt/lists/*
    touch "$rootfs.tmp/.complete"
    mv "$rootfs.tmp" "$rootfs"
  fi
  tar -C "$rootfs" --exclude=./.complete -c . | docker import - "$BASE" >/dev/null || die "docker import of $rootfs failed"
  echo "images: $BASE imported in $(since "$t0")"
fi

# ---- the project's images, from its Dockerfiles
build() {
  local name=$1 dockerfile=$2 context=$3 tag=stowage.local/stowage/$1:e2e out=$CLUSTER_IMAGES/$1.tar t0 id
  shift 3
  t0=$(now_ms)
  docker build --network none --build-arg "BASE_IMAGE=$BASE" "$@" -f "$dockerfile" -t "$tag" "$context" \
    >"$CLUSTER_IMAGES/build-$name.log" 2>&1 \
    || { tail -n 20 "$CLUSTER_IMAGES/build-$name.log" >&2; die "docker build of $tag failed; see $CLUSTER_IMAGES/build-$name.log"; }
  id=$(docker image inspect --format '{{.Id}}' "$tag")
  if [[ -f $out && $(cat "$out.id" 2>/dev/null) == "$id" ]]; then
    echo "images: $tag unchanged ($(since "$t0"))"
    return
  fi
  docker save -o "$out.tmp" "$tag" || die "docker save of $tag failed"
  mv "$out.tmp" "$out"
  echo "$id" >"$out.id"
  echo "images: $tag built from ${dockerfile#"$ROOT"/} in $(since "$t0") ($(($(stat -c %s "$out") / 1048576)) MiB, $out)"
}
build operator "$ROOT/Dockerfile" "$ROOT"
build runtime "$ROOT/runtime-image/Dockerfile" "$ROOT/runtime-image"
# The GPU hosts' variant: the same layers on the same base (the node has no GPU; a CUDA base cannot be pulled here),
# with the NVIDIA runtime's variables set as on nvidia/cuda; the operator's GPU host pods use this tag.
build runtime-cuda "$ROOT/runtime-image/Dockerfile" "$ROOT/runtime-image" --build-arg VARIANT=cuda --build-arg NVIDIA_VISIBLE_DEVICES=all
