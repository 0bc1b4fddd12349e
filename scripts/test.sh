#!/usr/bin/env bash
# Builds skein and runs the whole test suite: a Release build, a compile-only -Werror check of
# the other x86-64 instruction sets (scripts/isa_check.sh), an ASan+UBSan build, a
# ThreadSanitizer build of the concurrent code (data_test, trainer_test) with clang and LLVM's
# libomp, and a bounded run of the libFuzzer targets (scripts/fuzz.sh).
# Installs missing dependencies first. -Werror is on when CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

jobs=$(nproc)
# ccache (setup.sh installs it): a second run of the suite on this machine recompiles only what
# changed. One cache per CPU (model name and flags): a -march=native object must never be reused
# on another CPU. CMake takes the launcher from this variable when it configures a build folder
# for the first time (also in isa_check.sh and fuzz.sh, which inherit it).
if command -v ccache >/dev/null && [[ -z ${CMAKE_CXX_COMPILER_LAUNCHER:-} ]]; then
  cpu_id=$({
    grep -m1 '^model name' /proc/cpuinfo || true
    grep -m1 '^flags' /proc/cpuinfo || true
  } | md5sum | cut -c1-12)
  export CCACHE_DIR=${CCACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/skein/ccache/$cpu_id}
  export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-6G}
  # Paths inside this checkout are hashed relative to it, and the working directory not at all,
  # so a fresh clone elsewhere (CI clones into a new folder each time) hits the same entries.
  export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
  export CMAKE_CXX_COMPILER_LAUNCHER=ccache
fi
werror=OFF
# The sanitizer builds (ASan+UBSan, TSan; fuzz.sh and isa_check.sh's +asan use the same): -O1 with
# line tables only compiles 2.8x faster than RelWithDebInfo's -O2 -g (84.7 -> 30.7 s of CPU for
# tests/engine/import_test.cc under ASan) and still names file and line in every report. The
# Release build compiles everything at -O3, where GCC's flow-based warnings are strictest.
export SKEIN_SANITIZER_OPT="-O1 -g1 -DNDEBUG"
# UBSan's "undefined" leaves out float-cast-overflow (a float to int conversion of NaN or of a
# value out of the type's range, undefined in C++; it once hid in exp_approx for a NaN input).
export SKEIN_UB_SANITIZERS="address,undefined,float-cast-overflow"
suite_start=$SECONDS
stage() { echo "== [$((SECONDS - suite_start)) s] $*"; }
[[ "${CI:-}" == "true" ]] && werror=ON

run_suite() {  # build-dir, extra cmake args...
  local dir=$1
  shift
  stage "$dir: configure and build"
  cmake -S . -B "$dir" -G Ninja -DSKEIN_WERROR=$werror "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  stage "$dir: ctest"
  (cd "$dir" && ctest -j "$jobs" --output-on-failure --timeout 600)
}

# ThreadSanitizer: data_test (RingBuffer, Loader, the parallel tokenizer and BPE trainer) and
# trainer_test (the thread teams and the data-parallel step), the project's concurrent code, so
# the build stays short. TSan does not see the
# synchronisation inside an OpenMP runtime; LLVM's libomp reports it through its Archer tool
# (OMP_TOOL_LIBRARIES), so this build uses clang, which links libomp, never GCC's libgomp.
run_tsan() {  # build-dir
  local dir=$1
  local llvm archer
  llvm=$(dirname "$(dirname "$(readlink -f "$(command -v clang++)")")")
  archer=$llvm/lib/libarcher.so
  if [[ ! -f $archer ]]; then
    echo "error: $archer not found (Debian package libomp-dev)" >&2
    exit 1
  fi
  stage "$dir: configure and build data_test, trainer_test (clang, ThreadSanitizer, libomp + Archer)"
  # SKEIN_NATIVE=OFF: TSan does not instrument 32-byte (AVX) loads and stores, so the
  # auto-vectorised loops are kept to 16-byte vectors, which it does see (CMake compiles no
  # AVX2/AVX-512 clones of the hot loops under TSan either: base/multiversion.h). And since
  # ignore_noninstrumented_modules (needed for libomp) also hides libc's memcpy/memmove, the
  # shared-buffer copies in the trainer and its test Comm are plain loops.
  cmake -S . -B "$dir" -G Ninja -DSKEIN_WERROR=$werror -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$SKEIN_SANITIZER_OPT" \
    -DSKEIN_SANITIZE=thread -DSKEIN_BUILD_BENCH=OFF \
    -DSKEIN_NATIVE=OFF >/dev/null
  cmake --build "$dir" -j "$jobs" --target data_test trainer_test
  for t in data_test trainer_test; do
    # ldd's output captured first: grep -q stops reading at the first match, and under pipefail
    # the SIGPIPE that ldd may then get would fail the check at random
    local libs
    libs=$(ldd "$dir/tests/$t")
    if [[ $libs != *"$llvm/lib/libomp"* ]]; then
      echo "error: $dir/tests/$t is not linked with LLVM's libomp; Archer needs it" >&2
      exit 1
    fi
  done
  stage "$dir: ctest -L 'data_test|trainer_test'"
  (cd "$dir" && OMP_TOOL_LIBRARIES=$archer \
    TSAN_OPTIONS='ignore_noninstrumented_modules=1 halt_on_error=1' \
    ctest -j "$jobs" --output-on-failure --timeout 600 -L '^(data_test|trainer_test)$')
}

run_suite build -DCMAKE_BUILD_TYPE=Release
# The other instruction sets, compile only, always under -Werror (the host may lack them).
stage "build-isa: compile-only check for haswell, skylake-avx512, sapphirerapids"
./scripts/isa_check.sh --skip-host
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  run_suite build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$SKEIN_SANITIZER_OPT" -DSKEIN_SANITIZE="$SKEIN_UB_SANITIZERS" \
  -DSKEIN_BUILD_BENCH=OFF
run_tsan build-tsan
# libFuzzer on every reader of untrusted bytes (configs, checkpoints, shards, tokenizer files),
# ASan+UBSan, 15 s per target.
stage "fuzz: build and run"
./scripts/fuzz.sh 15
stage "all test suites passed"
