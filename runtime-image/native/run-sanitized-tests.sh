#!/usr/bin/env bash
# Builds the native core with AddressSanitizer + UBSan (STW_SANITIZE=ON) in build/asan and runs ctest there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cmake -S "$here" -B "$here/build/asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSTW_SANITIZE=ON
cmake --build "$here/build/asan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir "$here/build/asan" --output-on-failure
