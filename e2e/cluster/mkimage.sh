#!/usr/bin/env bash
# Packs a root file system directory into a one-layer image tarball in the docker-archive format
# (manifest.json, config, layer.tar), which `ctr -n k8s.io images import` and `docker load` read.
# Usage: mkimage.sh NAME:TAG ROOTFS_DIR OUT.tar [ENTRYPOINT [ARG...]]
#   IMAGE_USER  the image's default user (uid[:gid]), e.g. 65532 for non-root images
set -euo pipefail
(($# >= 3)) || { echo "usage: mkimage.sh NAME:TAG ROOTFS_DIR OUT.tar [ENTRYPOINT [ARG...]]" >&2; exit 2; }
ref=$1 rootfs=$2 out=$3
shift 3
[[ $ref == *:* ]] || { echo "mkimage: image reference '$ref' needs a tag (NAME:TAG)" >&2; exit 2; }
[[ -d $rootfs ]] || { echo "mkimage: root file system '$rootfs' is not a directory" >&2; exit 2; }

json_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
json_arr() {
  local first=1
  printf '['
  for a in "$@"; do ((first)) || printf ','; first=0; json_str "$a"; done
  printf ']'
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mkimage.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
tar -C "$rootfs" --sort=name --numeric-owner --mtime=@0 \
  --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' --exclude='./var/cache/apt/archives/*.deb' \
  -cf "$tmp/layer.tar" .
diff_id=$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)
mkdir "$tmp/$diff_id"
mv "$tmp/layer.tar" "$tmp/$diff_id/layer.tar"
user=""
[[ -n ${IMAGE_USER:-} ]] && user=",\"User\":$(json_str "$IMAGE_USER")"
entry=""
(($# > 0)) && entry=",\"Entrypoint\":$(json_arr "$@")"
printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]%s%s},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"stowage e2e/cluster/mkimage.sh"}]}' \
  "$entry" "$user" "$diff_id" > "$tmp/config.json"
config_id=$(sha256sum "$tmp/config.json" | cut -d' ' -f1)
mv "$tmp/config.json" "$tmp/$config_id.json"
printf '[{"Config":"%s.json","RepoTags":[%s],"Layers":["%s/layer.tar"]}]' "$config_id" "$(json_str "$ref")" "$diff_id" > "$tmp/manifest.json"
tar -C "$tmp" --numeric-owner --owner=0 --group=0 --mtime=@0 -cf "$out.tmp" manifest.json "$config_id.json" "$diff_id"
mv -f "$out.tmp" "$out"
echo "mkimage: $ref -> $out ($(($(stat -c %s "$out") / 1024)) KiB)"
