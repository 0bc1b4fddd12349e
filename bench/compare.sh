#!/usr/bin/env bash
# Side by side: skein's bench_step and PyTorch (bench/pytorch_gpt.py) on the same config and
# thread count, alternating, ROUNDS times each (default 3); medians of each side's medians.
#   bench/compare.sh CONFIG [THREADS] [--set path=value]...
#   e.g. bench/compare.sh configs/char.textproto 2
#        STEPS=3 bench/compare.sh configs/gpt2_finetune.textproto 2 --set run.grad_accum_steps=1
# --set overrides reach both sides (pytorch_gpt.py takes the model's shape and run.batch_size
# from them; skein's bench_step any field). Both sides start from random weights: a config's
# model.init_from is not read, the speed does not depend on the values.
# PyTorch runs in its best form on this machine: Debian's OpenMP build of OpenBLAS, the OpenBLAS
# core type forced to the widest kernels the CPU has, OMP_PROC_BIND=true — set for that command
# only. Ends with the line "ratio skein/pytorch tokens/s: X.XX"; the line before it names the
# precision each side ran and the kernel skein's matmuls ran on (SKEIN_SGEMM_KERNEL=name picks
# another of sgemm_kernels(), e.g. avx512bf16_12x32 where the AMX one would be chosen).
# PRECISION=BF16 runs skein with run.precision: BF16 and PyTorch under bf16 autocast
# (pytorch_gpt.py --precision bf16: bf16 matmul operands, fp32 parameters and optimizer, as in
# skein); if skein falls back to fp32 (no avx512_bf16, or its self-check fails) the line says so.
# PRECISION=BF16_EMULATED runs skein with bf16's numerics at fp32 speed and PyTorch in fp32: a
# numerics check, not a speed mode, which the output says.
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:?usage: bench/compare.sh CONFIG [THREADS]}
threads=${2:-$(nproc)}
shift $(($# < 2 ? $# : 2))
sets=()
while [[ $# -gt 0 ]]; do
  [[ $1 == --set && $# -ge 2 ]] || { echo "error: expected --set path=value, got: $*" >&2; exit 2; }
  sets+=(--set "$2")
  shift 2
done
rounds=${ROUNDS:-3}
steps=${STEPS:-10}
precision=${PRECISION:-FP32}
case $precision in
  FP32) torch_precision=fp32 torch_label="" ;;
  BF16) torch_precision=bf16 torch_label=" (bf16 autocast)" ;;
  BF16_EMULATED) torch_precision=fp32 torch_label=" (fp32)" ;;
  *)
    echo "error: PRECISION=$precision: expected FP32, BF16 or BF16_EMULATED (run.precision)" >&2
    exit 2
    ;;
esac
./scripts/setup.sh --torch
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target bench_step >/dev/null

if grep -qw avx512f /proc/cpuinfo; then coretype=SkylakeX; else coretype=Haswell; fi
torch_env=(env LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp OPENBLAS_CORETYPE=$coretype
           OMP_PROC_BIND=true OMP_NUM_THREADS=$threads)

err=$(mktemp)
trap 'rm -f "$err"' EXIT
skein_label=$precision
skein=() torch=()
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }  # JSON line, key
for ((i = 0; i < rounds; i++)); do
  # bench_step's stderr is kept to see whether BF16 fell back to fp32 (engine/config.cc,
  # matmul_precision_for, writes "run.precision = BF16: <why>, so the matmuls run in fp32 ...").
  s=$(./build/bench/bench_step --config "$config" --threads "$threads" --steps "$steps" \
    --set run.precision="$precision" "${sets[@]}" --json 2>"$err") || { rc=$?; cat "$err" >&2; exit $rc; }
  cat "$err" >&2
  if grep -q "run.precision = BF16:" "$err"; then
    skein_label="BF16 requested, ran fp32: see the note above"
  fi
  echo "skein   $s"
  kernel=$(field "$s" matmul_kernel)
  skein+=("$(field "$s" tokens_per_s)")
  t=$("${torch_env[@]}" /usr/bin/python3 bench/pytorch_gpt.py --config "$config" --threads "$threads" --steps "$steps" \
    --precision "$torch_precision" "${sets[@]}" --json)
  echo "pytorch $t"
  torch+=("$(field "$t" tokens_per_s)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ms=$(median "${skein[@]}")
mt=$(median "${torch[@]}")
if [[ $precision == BF16_EMULATED ]]; then
  echo "note: BF16_EMULATED is a numerics check (bf16 rounding at fp32 speed), not a speed mode;" \
    "PyTorch ran fp32"
fi
echo "median tokens/s: skein $ms ($skein_label, matmuls on $kernel)  pytorch $mt$torch_label  (OPENBLAS_CORETYPE=$coretype, $threads threads)"
echo "ratio skein/pytorch tokens/s: $(awk -v a="$ms" -v b="$mt" 'BEGIN {printf "%.2f", a / b}')"
