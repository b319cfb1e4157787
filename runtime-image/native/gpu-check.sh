#!/usr/bin/env bash
# gpu-check.sh: the CUDA backend's whole check on a machine with an NVIDIA GPU, nvcc (installed or as PyPI wheels),
# CMake and Ninja, and no JVM; about 5-8 minutes. It
#   1. configures and builds the native core for this GPU's architecture only (nvidia-smi's compute capability,
#      else sm_90),
#   2. runs the whole ctest suite, the CUDA tests included (they must run, not skip: a skip here is a failure),
#   3. runs test_backend_ops under compute-sanitizer memcheck when the sanitizer is installed,
#   4. runs the GPU benchmark (stw_bench_cuda) on generated 1.1B- and 8B-shaped models, batch-1 decode with CUDA
#      graphs on and off (one summary line each),
#   5. runs llama.cpp's llama-bench on the same files when its CUDA build is there (build-llama-cpp.sh made it;
#      LLAMA_BIN=dir of llama-bench),
# and prints one summary table. Results and logs go to $OUT when set (the device runner collects it), else to
# the build directory.
#
#   ./gpu-check.sh                      # everything
#   STW_BENCH_MODELS=1b:q4_0 ./gpu-check.sh   # a shorter benchmark (SHAPE:TYPE list, see tools/bench_cuda.cpp)
#   STW_SKIP_BENCH=1 ./gpu-check.sh     # build and tests only
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${STW_BUILD_DIR:-$here/build-gpu}"
out="${OUT:-$build}"
mkdir -p "$build" "$out"
models="${STW_BENCH_MODELS:-1b:f16,1b:q8_0,1b:q4_0,1b:q4_k,8b:q4_0,8b:q8_0}"
bench_dir="${STW_BENCH_DIR:-$build/models}"
started=$SECONDS
declare -a summary=()
status=0
note() { summary+=("$(printf '| %-34s | %-8s | %s |' "$1" "$2" "$3")"); }
fail() { status=1; note "$1" FAIL "$2"; }

# A toolkit from PyPI wheels (nvidia-cuda-nvcc ...) is found by CMake itself; the libraries llama-bench and the
# sanitizer need at run time are put on the library path here.
py_nvidia="$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null)/nvidia"
if [ -d "$py_nvidia" ]; then
  for d in "$py_nvidia"/*/lib; do [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; done
fi

arch=90
if command -v nvidia-smi >/dev/null 2>&1; then
  cap="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')"
  [[ "$cap" =~ ^[0-9]+$ ]] && arch="$cap"
  nvidia-smi --query-gpu=name,uuid,memory.total,driver_version --format=csv,noheader | head -1 | tee "$out/gpu.txt"
fi
echo "gpu-check: building for sm_$arch in $build"

# 1. build
t0=$SECONDS
gen=(); command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
if cmake "${gen[@]}" -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSTW_CUDA=ON "-DSTW_CUDA_ARCHS=$arch" \
     >"$out/configure.log" 2>&1 && cmake --build "$build" --parallel >"$out/build.log" 2>&1; then
  note "build (sm_$arch)" ok "$((SECONDS - t0)) s"
else
  tail -30 "$out/configure.log" "$out/build.log" 2>/dev/null
  fail "build (sm_$arch)" "see configure.log / build.log"
  printf '%s\n' "${summary[@]}"
  exit 1
fi

# 2. ctest, the CUDA tests required to run
t0=$SECONDS
ctest --test-dir "$build" --output-on-failure --timeout 300 >"$out/ctest.log" 2>&1
rc=$?
passed="$(grep -Eo '[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$out/ctest.log" | tail -1)"
skipped="$(grep -c '\*\*\*Skipped' "$out/ctest.log")"
if [ $rc -eq 0 ] && [ "$skipped" = 0 ]; then
  note "ctest (all, CUDA included)" ok "$passed; $((SECONDS - t0)) s"
else
  grep -E 'Failed|Skipped|CHECK failed|SKIPPED' "$out/ctest.log" | head -20
  fail "ctest (all, CUDA included)" "$passed; $skipped skipped (see ctest.log)"
fi
# their per-case lines (NMSE per op, tokens per model) are kept as logs
for t in test_backend_ops test_cuda_engine; do "$build/tests/cuda/$t" >"$out/$t.log" 2>&1; done

# 3. compute-sanitizer memcheck on the op tests
sanitizer="$(command -v compute-sanitizer || true)"
for c in /usr/local/cuda/bin/compute-sanitizer "$py_nvidia"/cu*/bin/compute-sanitizer; do
  [ -z "$sanitizer" ] && [ -x "$c" ] && sanitizer="$c"
done
if [ -n "$sanitizer" ]; then
  t0=$SECONDS
  if timeout 240 "$sanitizer" --tool memcheck --error-exitcode 3 "$build/tests/cuda/test_backend_ops" >"$out/memcheck.log" 2>&1; then
    note "compute-sanitizer memcheck (ops)" ok "$(grep -Eo 'ERROR SUMMARY: [0-9]+ errors?' "$out/memcheck.log" | tail -1); $((SECONDS - t0)) s"
  else
    tail -20 "$out/memcheck.log"
    fail "compute-sanitizer memcheck (ops)" "$(grep -Eo 'ERROR SUMMARY: [0-9]+ errors?' "$out/memcheck.log" | tail -1) (memcheck.log)"
  fi
else
  note "compute-sanitizer memcheck (ops)" skipped "compute-sanitizer not installed"
fi

# 4. the benchmark, 5. llama-bench on the same files
if [ -z "${STW_SKIP_BENCH:-}" ]; then
  mkdir -p "$bench_dir"
  t0=$SECONDS
  if "$build/stw_bench_cuda" --dir "$bench_dir" --models "$models" --keep >"$out/bench.log" 2>&1; then
    note "stw_bench_cuda" ok "$((SECONDS - t0)) s (table below)"
  else
    tail -5 "$out/bench.log"
    fail "stw_bench_cuda" "see bench.log"
  fi
  # "graphs: MODEL decode batch 1: on X tok/s, off Y tok/s (Rx); ..." per model -> one line each for on and off
  if grep -q '^graphs:' "$out/bench.log"; then
    graphs_on="$(awk '/^graphs:/ { r = $12; gsub(/[();]/, "", r); printf "%s%s %s (%s)", sep, $2, $7, r; sep = ", " }' "$out/bench.log")"
    graphs_off="$(awk '/^graphs:/ { printf "%s%s %s", sep, $2, $10; sep = ", " }' "$out/bench.log")"
    if grep -q 'GRAPHS WENT OFF' "$out/bench.log"; then
      fail "decode b1 tok/s, CUDA graphs on" "$graphs_on; $(grep -o 'GRAPHS WENT OFF.*' "$out/bench.log" | head -1)"
    else
      note "decode b1 tok/s, CUDA graphs on" ok "$graphs_on"
    fi
    note "decode b1 tok/s, CUDA graphs off" ok "$graphs_off"
  fi
  llama_bench="${LLAMA_BIN:-$here/llama-cuda/bin}/llama-bench"
  # carried compressed (build-llama-cpp.sh writes llama-cuda/llama-bench.xz): unpacked into the build directory
  if [ ! -x "$llama_bench" ] && [ -z "${LLAMA_BIN:-}" ] && [ -f "$here/llama-cuda/llama-bench.xz" ]; then
    xz -dc "$here/llama-cuda/llama-bench.xz" >"$build/llama-bench" && chmod 755 "$build/llama-bench" &&
      llama_bench="$build/llama-bench"
  fi
  if [ -x "$llama_bench" ]; then
    t0=$SECONDS
    : >"$out/llama-bench.log"
    for f in "$bench_dir"/stowage-bench-*.gguf; do
      [ -f "$f" ] || continue
      timeout 120 "$llama_bench" -m "$f" -p 512 -n 64 -ngl 99 -r 2 -o md >>"$out/llama-bench.log" 2>&1 ||
        echo "llama-bench failed on $f" >>"$out/llama-bench.log"
    done
    note "llama-bench (same files)" ok "$((SECONDS - t0)) s (llama-bench.log)"
  else
    note "llama-bench (same files)" skipped "no $llama_bench (build-llama-cpp.sh builds it)"
  fi
  [ -z "${STW_KEEP_MODELS:-}" ] && rm -f "$bench_dir"/stowage-bench-*.gguf
fi

echo
echo "gpu-check summary ($((SECONDS - started)) s)"
echo "| step | result | detail |"
echo "|---|---|---|"
printf '%s\n' "${summary[@]}"
if [ -f "$out/bench.log" ]; then
  echo
  grep -E '^device|^\|' "$out/bench.log"
fi
if [ -s "$out/llama-bench.log" ]; then
  echo
  grep -E '^\|' "$out/llama-bench.log" | awk '!seen[$0]++'
fi
exit $status
