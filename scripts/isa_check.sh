#!/usr/bin/env bash
# Compile-only check of the other instruction sets: every object file of skein (libraries,
# apps, tests, benchmarks) built under -Werror with GCC for each x86-64 target below, whatever
# CPU this machine has. Nothing is linked or run (the host may not execute the code), so it
# proves that the build is warning-free there, not that the code is right there.
#   scripts/isa_check.sh [march...]   default: haswell skylake-avx512 sapphirerapids
# haswell: AVX2 + FMA only (like AMD Zen 3); skylake-avx512: AVX-512 F/BW/DQ/VL without bf16;
# sapphirerapids: AVX-512 with avx512_bf16 (like AMD Zen 4 and Zen 5).
# Build folders: build-isa/<march>/ (kept, so a second run recompiles only what changed).
set -euo pipefail
cd "$(dirname "$0")/.."

targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(haswell skylake-avx512 sapphirerapids)
jobs=$(nproc)

for march in "${targets[@]}"; do
  dir=build-isa/$march
  start=$SECONDS
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ \
    -DSKEIN_WERROR=ON -DSKEIN_MARCH="$march" >/dev/null
  # Every object file ninja knows of; protoc's generated sources come with them.
  mapfile -t objects < <(ninja -C "$dir" -t targets all | sed -n 's/^\([^:]*\.o\): .*/\1/p')
  if [[ ${#objects[@]} -eq 0 ]]; then
    echo "isa_check: no object files found in $dir" >&2
    exit 1
  fi
  if ! ninja -C "$dir" -j "$jobs" "${objects[@]}" >"$dir/compile.log" 2>&1; then
    grep -E 'error|FAILED' "$dir/compile.log" | head -40 >&2
    echo "isa_check: -march=$march does not compile warning-free (log: $dir/compile.log)" >&2
    exit 1
  fi
  echo "isa_check: -march=$march: ${#objects[@]} object files compile under -Werror ($((SECONDS - start)) s)"
done
