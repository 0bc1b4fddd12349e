#!/usr/bin/env bash
# Builds skein and runs the whole test suite: a Release build, then an ASan+UBSan build.
# Installs missing dependencies first. -Werror is on when CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

jobs=$(nproc)
werror=OFF
[[ "${CI:-}" == "true" ]] && werror=ON

run_suite() {  # build-dir, extra cmake args...
  local dir=$1
  shift
  echo "== $dir: configure and build"
  cmake -S . -B "$dir" -G Ninja -DSKEIN_WERROR=$werror "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  echo "== $dir: ctest"
  (cd "$dir" && ctest -j "$jobs" --output-on-failure --timeout 600)
}

run_suite build -DCMAKE_BUILD_TYPE=Release
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  run_suite build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSKEIN_SANITIZE=address,undefined \
  -DSKEIN_BUILD_BENCH=OFF
echo "== all test suites passed"
