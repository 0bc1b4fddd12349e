#!/usr/bin/env bash
# bf16's accuracy, measured on any CPU: trains the demo model on the fortunes corpus twice from
# the same seed and data, with run.precision FP32 and BF16_EMULATED (matmul operands rounded to
# bf16, fp32 sums: the numerics of vdpbf16ps), and plots both loss curves into
# runs/bf16_curve/loss_fp32_vs_bf16.svg with a table of the validation losses.
#   bench/bf16_curve.sh [STEPS]      (default 1000; ~10 minutes on 2 cores)
#   BF16=BF16 bench/bf16_curve.sh    the same with the real bf16 kernel (AMX or vdpbf16ps, the one
#                                    train picks on this CPU; SKEIN_SGEMM_KERNEL=name forces one)
# Needs the prepared corpus (./scripts/demo.sh makes data_cache/fortunes).
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-1000}
bf16=${BF16:-BF16_EMULATED}
[[ -f data_cache/fortunes/tokenizer.bin ]] || {
  echo "bf16_curve: no data_cache/fortunes; run ./scripts/demo.sh first" >&2
  exit 2
}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target train >/dev/null
out=runs/bf16_curve
mkdir -p "$out"
for p in FP32 "$bf16"; do
  echo "== run.precision = $p, $steps steps into $out/$p"
  rm -rf "${out:?}/$p"
  ./build/apps/train --config configs/demo.textproto --out "$out/$p" \
    --set run.steps="$steps" --set run.precision="$p" --set run.replicas=2 \
    --set run.log_every=10 --set run.eval_every=100 --set run.eval_batches=20 \
    --set run.checkpoint_every=0 --set run.keep_checkpoints=1 | tee "$out/$p.log" |
    grep -E "^(eval|done|precision|run.precision)"
done
label="bf16 (emulated)"
if [[ $bf16 == BF16 ]]; then
  kernel=$(grep -o "matmuls on [a-z0-9_]*" "$out/$bf16.log" | head -1 | cut -d' ' -f3)
  label="bf16 (${kernel:-fp32 fallback})"
fi
python3 bench/bf16_curve_plot.py "$out/FP32/metrics.jsonl" "$out/$bf16/metrics.jsonl" \
  "$out/loss_fp32_vs_bf16.svg" "$label"
