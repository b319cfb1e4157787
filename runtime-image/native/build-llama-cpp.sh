#!/usr/bin/env bash
# build-llama-cpp.sh: builds llama.cpp's llama-bench with CUDA for one GPU architecture (default sm_90), the peer
# gpu-check.sh compares stowage with, from the llama.cpp git bundle inside the npm package node-llama-cpp, against
# the CUDA toolkit and cuBLAS from NVIDIA's PyPI wheels. Meant for a build machine: the binary (statically linked
# against ggml, dynamically against libcudart/libcublas) is carried to the GPU machine, whose Python environment
# provides matching libcublas/libcudart (gpu-check.sh puts them on LD_LIBRARY_PATH).
#
#   ./build-llama-cpp.sh                 # sources, wheels, configure, build; installs llama-cuda/bin/llama-bench
#   ./build-llama-cpp.sh --configure-only
# Environment: STW_LLAMA_CACHE (default ~/.cache/stowage/llama-cuda), STW_LLAMA_CUDA_ARCH (90), STW_LLAMA_DEST
# (runtime-image/native/llama-cuda). Compiling ggml's CUDA kernels takes about an hour or more on 2 cores.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version=3.21.1 # node-llama-cpp, pinned (newer releases' locks may not install everywhere)
cublas=nvidia-cublas==13.10.0.20
cache="${STW_LLAMA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stowage/llama-cuda}"
arch="${STW_LLAMA_CUDA_ARCH:-90}"
dest="${STW_LLAMA_DEST:-$here/llama-cuda}"
configure_only=
[ "${1:-}" = "--configure-only" ] && configure_only=1
for tool in npm git python3 cmake; do
  command -v "$tool" >/dev/null 2>&1 || { echo "build-llama-cpp: $tool is needed and not on PATH" >&2; exit 1; }
done
mkdir -p "$cache"

# 1. llama.cpp's sources: node-llama-cpp's tarball (npm pack fetches it alone, no dependencies) holds a git bundle
if [ ! -d "$cache/src/.git" ]; then
  [ -f "$cache/node-llama-cpp-$version.tgz" ] || (cd "$cache" && npm pack --silent "node-llama-cpp@$version" >/dev/null)
  tar xzf "$cache/node-llama-cpp-$version.tgz" -C "$cache" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json
  git clone -q "$cache/package/llama/gitRelease.bundle" "$cache/src"
fi
echo "build-llama-cpp: llama.cpp $(cat "$cache/package/llama/llama.cpp.info.json" 2>/dev/null | tr -d '\n ' ) at $cache/src"

# 2. toolkit and cuBLAS wheels into the cache (not the system's Python), pinned; nothing to do when present
wheels="$cache/wheels"
root="$wheels/nvidia/cu13"
if [ ! -x "$root/bin/nvcc" ] || [ ! -x "$root/nvvm/bin/cicc" ] || [ ! -e "$root/lib/libcublas.so.13" ]; then
  python3 -m pip install -q --disable-pip-version-check --no-deps --target "$wheels" \
    -r "$here/cmake/cuda-wheels.txt" "$cublas"
fi
# the wheels ship versioned libraries only; the linker looks for the plain names
for l in cudart cublas cublasLt; do
  [ -e "$root/lib/lib$l.so" ] || ln -s "lib$l.so.13" "$root/lib/lib$l.so"
done

# 3. configure: CUDA for one architecture, no VMM (the wheels carry no libcuda stub to link the driver API against),
# only the tools, llama-bench among them
gen=(); command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
cmake "${gen[@]}" -S "$cache/src" -B "$cache/build-sm$arch" -DCMAKE_BUILD_TYPE=Release \
  -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" -DCMAKE_CUDA_COMPILER="$root/bin/nvcc" \
  -DCUDAToolkit_ROOT="$root" -DGGML_CUDA_NO_VMM=ON -DGGML_CUDA_NCCL=OFF -DGGML_NATIVE=OFF \
  -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=ON
[ -n "$configure_only" ] && { echo "build-llama-cpp: configured $cache/build-sm$arch"; exit 0; }

# 4. build llama-bench and install it where gpu-check.sh looks (LLAMA_BIN overrides)
cmake --build "$cache/build-sm$arch" --target llama-bench --parallel
install -D -m 755 "$cache/build-sm$arch/bin/llama-bench" "$dest/bin/llama-bench"
echo "build-llama-cpp: $dest/bin/llama-bench ($(du -h "$dest/bin/llama-bench" | cut -f1))"
# the device runner carries at most 64 MiB: a stripped, xz-compressed copy (about 41 MB for sm_90) that
# gpu-check.sh unpacks when bin/llama-bench is not there
if command -v strip >/dev/null 2>&1 && command -v xz >/dev/null 2>&1; then
  strip -o "$dest/llama-bench.stripped" "$dest/bin/llama-bench"
  xz -T0 -6 -c "$dest/llama-bench.stripped" >"$dest/llama-bench.xz"
  rm -f "$dest/llama-bench.stripped"
  echo "build-llama-cpp: $dest/llama-bench.xz ($(du -h "$dest/llama-bench.xz" | cut -f1)) to carry to the GPU machine"
fi
