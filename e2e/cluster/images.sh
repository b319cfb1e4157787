#!/usr/bin/env bash
# Makes the e2e cluster's images as docker-archive tarballs in the cache (mkimage.sh), from the
# binaries build.sh made and a Debian root file system from debootstrap:
#   stowage.local/e2e/pause:v1    the sandbox image (our static pause program), user 65535
#   stowage.local/e2e/httpd:v1    a static HTTP server on :8080, user 65532
#   stowage.local/e2e/debian:trixie  `debootstrap --variant=minbase trixie` (Debian's mirror)
# An image whose inputs did not change is kept. up.sh imports them into the node's containerd.
#   STOWAGE_DEBIAN_MIRROR  Debian mirror for debootstrap (default http://deb.debian.org/debian)
# Usage: images.sh [pause|httpd|debian...]   (default: all)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mkdir -p "$CLUSTER_IMAGES"

# scratch NAME BINARY USER: a one-file image whose entrypoint is /NAME.
scratch() {
  local name=$1 bin=$CLUSTER_BIN/$2 user=$3 out=$CLUSTER_IMAGES/$1.tar
  [[ -x $bin ]] || die "$bin is missing: run build.sh first"
  if [[ -f $out && $out -nt $bin && $out -nt $CLUSTER_DIR/mkimage.sh ]]; then
    echo "image $name: cached ($out)"
    return
  fi
  local root t0
  t0=$(now_ms)
  root=$(mktemp -d "${TMPDIR:-/tmp}/stowage-image.XXXXXX")
  install -m 0755 "$bin" "$root/$name"
  mkdir -m 1777 "$root/tmp"
  IMAGE_USER=$user "$CLUSTER_DIR/mkimage.sh" "stowage.local/e2e/$name:v1" "$root" "$out" "/$name" >/dev/null \
    || { rm -rf "$root"; die "could not pack image $name"; }
  rm -rf "$root"
  echo "image $name: made in $(since "$t0") ($out)"
}

debian() {
  local out=$CLUSTER_IMAGES/debian.tar rootfs=$CLUSTER_IMAGES/rootfs-trixie
  if [[ -f $out && $out -nt $CLUSTER_DIR/mkimage.sh ]]; then
    echo "image debian: cached ($out)"
    return
  fi
  command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
  local t0
  t0=$(now_ms)
  if [[ ! -f $rootfs/etc/os-release ]]; then
    rm -rf "$rootfs.tmp"
    debootstrap --variant=minbase trixie "$rootfs.tmp" "${STOWAGE_DEBIAN_MIRROR:-http://deb.debian.org/debian}" \
      >"$CLUSTER_IMAGES/debootstrap.log" 2>&1 \
      || die "debootstrap failed; see $CLUSTER_IMAGES/debootstrap.log"
    mv "$rootfs.tmp" "$rootfs"
  fi
  "$CLUSTER_DIR/mkimage.sh" stowage.local/e2e/debian:trixie "$rootfs" "$out" >/dev/null \
    || die "could not pack the debian image"
  echo "image debian: made in $(since "$t0") ($out, $(($(stat -c %s "$out") / 1048576)) MiB)"
}

todo=("$@")
((${#todo[@]})) || todo=(pause httpd debian)
for i in "${todo[@]}"; do
  case $i in
    pause) scratch pause pause 65535 ;;
    httpd) scratch httpd httpd 65532 ;;
    debian) debian ;;
    *) die "unknown image '$i' (known: pause httpd debian)" ;;
  esac
done
