#!/usr/bin/env bash
# skein's main job. The train binary is not there yet: for now this installs what is missing,
# builds, and runs the kernel benchmarks (each kernel's GFLOP/s or GB/s and its fraction of this
# machine's measured single-thread FMA peak).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target bench_kernels
./build/bench/bench_kernels --benchmark_min_time=0.2 "$@"
