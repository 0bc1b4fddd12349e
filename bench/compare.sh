#!/usr/bin/env bash
# Side by side: skein's bench_step and PyTorch (bench/pytorch_gpt.py) on the same config and
# thread count, alternating, ROUNDS times each (default 3); medians of each side's medians.
#   bench/compare.sh CONFIG [THREADS]      e.g. bench/compare.sh configs/char.textproto 2
# PyTorch runs in its best form on this machine: Debian's OpenMP build of OpenBLAS, the OpenBLAS
# core type forced to the widest kernels the CPU has, OMP_PROC_BIND=true — set for that command
# only. Ends with the line "ratio skein/pytorch tokens/s: X.XX".
# PRECISION=BF16 (or BF16_EMULATED) runs skein's side with that run.precision (PyTorch stays fp32).
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:?usage: bench/compare.sh CONFIG [THREADS]}
threads=${2:-$(nproc)}
rounds=${ROUNDS:-3}
steps=${STEPS:-10}
precision=${PRECISION:-FP32}
./scripts/setup.sh --torch
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target bench_step >/dev/null

if grep -qw avx512f /proc/cpuinfo; then coretype=SkylakeX; else coretype=Haswell; fi
torch_env=(env LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp OPENBLAS_CORETYPE=$coretype
           OMP_PROC_BIND=true OMP_NUM_THREADS=$threads)

skein=() torch=()
for ((i = 0; i < rounds; i++)); do
  s=$(./build/bench/bench_step --config "$config" --threads "$threads" --steps "$steps" \
    --set run.precision="$precision" --json)
  echo "skein   $s"
  skein+=("$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["tokens_per_s"])' "$s")")
  t=$("${torch_env[@]}" /usr/bin/python3 bench/pytorch_gpt.py --config "$config" --threads "$threads" --steps "$steps" --json)
  echo "pytorch $t"
  torch+=("$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["tokens_per_s"])' "$t")")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ms=$(median "${skein[@]}")
mt=$(median "${torch[@]}")
echo "median tokens/s: skein $ms ($precision)  pytorch $mt  (OPENBLAS_CORETYPE=$coretype, $threads threads)"
echo "ratio skein/pytorch tokens/s: $(awk -v a="$ms" -v b="$mt" 'BEGIN {printf "%.2f", a / b}')"
