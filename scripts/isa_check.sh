#!/usr/bin/env bash
# Compile-only check of the other instruction sets: every object file of skein's libraries and
# apps built under -Werror with GCC for each x86-64 target below, whatever CPU this machine has.
# Tests and benchmarks hold no code of their own for an instruction set (no intrinsics, no target
# attributes: checked below), so they are compiled natively only, by the suite's own builds; that
# halves this check's time. Nothing is linked or run (the host may not execute the code), so it
# proves that the build is warning-free there, not that the code is right there.
#   scripts/isa_check.sh [--skip-host] [target...]
#   default: haswell skylake-avx512 sapphirerapids sapphirerapids+asan
# --skip-host (scripts/test.sh): leave out the target of this machine's own class (and its +asan
# twin), which the suite's native -Werror builds (Release and ASan+UBSan) compile already.
# haswell: AVX2 + FMA only (like AMD Zen 3); skylake-avx512: AVX-512 F/BW/DQ/VL without bf16;
# sapphirerapids: AVX-512 with avx512_bf16 (like AMD Zen 4 and Zen 5). MARCH+asan: the same
# with the ASan+UBSan build's flags (GCC warns differently there).
# Build folders: build-isa/<target>/ (kept, so a second run recompiles only what changed).
set -euo pipefail
cd "$(dirname "$0")/.."

skip_host=false
if [[ "${1:-}" == "--skip-host" ]]; then
  skip_host=true
  shift
fi
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(haswell skylake-avx512 sapphirerapids sapphirerapids+asan)
host=""
if $skip_host; then
  flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
  if [[ " $flags " == *" avx512_bf16 "* ]]; then
    host=sapphirerapids
  elif [[ " $flags " == *" avx512f "* ]]; then
    host=skylake-avx512
  elif [[ " $flags " == *" avx2 "* && " $flags " == *" fma "* ]]; then
    host=haswell
  fi
fi
jobs=$(nproc)

# The premise of leaving tests and benchmarks out: all instruction-set-specific code is in the
# libraries.
if grep -rlE 'immintrin|__m(256|512)|target\(|target_clones' tests bench --include='*.cc' \
  --include='*.h'; then
  echo "isa_check: the files above use intrinsics or target attributes: compile tests and" \
    "benchmarks here too (SKEIN_BUILD_TESTS/BENCH)" >&2
  exit 1
fi

for target in "${targets[@]}"; do
  march=${target%+asan}
  if [[ -n $host && $march == "$host" ]]; then
    echo "isa_check: $target: skipped, this CPU is of that class (the suite's native builds compile it)"
    continue
  fi
  dir=build-isa/$target
  start=$SECONDS
  flavour=(-DCMAKE_BUILD_TYPE=Release)
  [[ $target == *+asan ]] && flavour=(-DCMAKE_BUILD_TYPE=RelWithDebInfo
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="${SKEIN_SANITIZER_OPT:-"-O1 -g1 -DNDEBUG"}"
    -DSKEIN_SANITIZE="${SKEIN_UB_SANITIZERS:-address,undefined,float-cast-overflow}")
  cmake -S . -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=g++ -DSKEIN_WERROR=ON \
    -DSKEIN_MARCH="$march" -DSKEIN_BUILD_TESTS=OFF -DSKEIN_BUILD_BENCH=OFF "${flavour[@]}" \
    >/dev/null
  # Every object file ninja knows of; protoc's generated sources come with them.
  mapfile -t objects < <(ninja -C "$dir" -t targets all | sed -n 's/^\([^:]*\.o\): .*/\1/p')
  if [[ ${#objects[@]} -eq 0 ]]; then
    echo "isa_check: no object files found in $dir" >&2
    exit 1
  fi
  if ! ninja -C "$dir" -j "$jobs" "${objects[@]}" >"$dir/compile.log" 2>&1; then
    grep -E 'error|FAILED' "$dir/compile.log" | head -40 >&2
    echo "isa_check: $target does not compile warning-free (log: $dir/compile.log)" >&2
    exit 1
  fi
  echo "isa_check: $target: ${#objects[@]} object files compile under -Werror ($((SECONDS - start)) s)"
done
