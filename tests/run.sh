#!/usr/bin/env bash
# Builds maas and runs the whole test suite twice: a Release build, then the
# same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
# Set MAAS_SKIP_SANITIZE=1 to run the Release pass only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash cmake/install-deps.sh --tests

jobs=$(nproc)
start=$(date +%s)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$jobs"
(cd build && ctest -j"$jobs" --output-on-failure)
echo "tests/run.sh: Release build and suite took $(( $(date +%s) - start )) s"

if [ "${MAAS_SKIP_SANITIZE:-0}" != 1 ]; then
  start=$(date +%s)
  # Examples are built: their end-to-end tests (tests/examples/) run here too.
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMAAS_SANITIZE=ON -DMAAS_BUILD_EXAMPLES=ON -DMAAS_BUILD_BENCH=OFF
  cmake --build build-asan -j"$jobs"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest -j"$jobs" --output-on-failure)
  echo "tests/run.sh: sanitizer build and suite took $(( $(date +%s) - start )) s"
fi
