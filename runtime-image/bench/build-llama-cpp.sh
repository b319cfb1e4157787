#!/usr/bin/env bash
# Builds llama.cpp's llama-bench natively (-DGGML_NATIVE=ON, CPU only) from the source that node-llama-cpp
# bundles (node_modules/node-llama-cpp/llama/gitRelease.bundle, a git bundle), so that
# `./stowage bench-engine --llama-cpp` compares against a build tuned for this CPU rather than the generic
# prebuilt binaries. The build is cached under CACHE_DIR/<commit>-<cpu flags digest>/; a second run only
# prints the binary's path. Prints the path of llama-bench as its last line of stdout.
#
#   runtime-image/bench/build-llama-cpp.sh CACHE_DIR      (e.g. .stowage/llama-cpp at the repository root)
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: build-llama-cpp.sh CACHE_DIR" >&2
    exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bundle="$here/node_modules/node-llama-cpp/llama/gitRelease.bundle"
if [[ ! -f "$bundle" ]]; then
    echo "build-llama-cpp: $bundle not found; run \`npm install\` in $here first" >&2
    exit 3
fi
for tool in git cmake c++; do
    if ! command -v "$tool" >/dev/null; then
        echo "build-llama-cpp: '$tool' is not on the PATH; it is needed to build llama.cpp" >&2
        exit 3
    fi
done
commit="$(git bundle list-heads "$bundle" | awk '$2 == "HEAD" {print $1}')"
if [[ -z "$commit" ]]; then
    echo "build-llama-cpp: $bundle has no HEAD; is it a git bundle?" >&2
    exit 3
fi
# A native build is only valid on a CPU with the same instruction set: key the cache by the CPU flags too.
flags_digest="$( (grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || uname -m) | cksum | cut -d' ' -f1)"
mkdir -p "$1"
dir="$(cd "$1" && pwd)/${commit:0:12}-$flags_digest"
bin="$dir/build/bin/llama-bench"
if [[ -x "$bin" ]]; then
    echo "$bin"
    exit 0
fi
echo "build-llama-cpp: building llama.cpp ${commit:0:12} natively into $dir (once; several minutes)" >&2
# Build in a temporary directory and move it into place only when it is complete: an interrupted build
# leaves no half-built cache entry behind.
tmp="$dir.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
rm -rf "$tmp"
git clone -q "$bundle" "$tmp/src" >&2
git -C "$tmp/src" -c advice.detachedHead=false checkout -q "$commit" >&2
jobs="$(nproc 2>/dev/null || echo 2)"
cmake -S "$tmp/src" -B "$tmp/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DGGML_CUDA=OFF \
    -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DGGML_OPENMP=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=OFF -DBUILD_SHARED_LIBS=OFF >&2
cmake --build "$tmp/build" --target llama-bench -j "$jobs" >&2
# The sources are not needed once llama-bench is linked.
rm -rf "$tmp/src"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "$bin"
