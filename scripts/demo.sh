#!/usr/bin/env bash
# skein's main job, end to end on a fresh Debian machine:
#   1. installs what is missing (scripts/setup.sh, and the fortunes text),
#   2. builds,
#   3. turns the fortunes into byte-level token shards (data_cache/fortunes),
#   4. trains configs/demo.textproto into runs/demo with a progress line (resumes if interrupted),
#   5. prints a sample from the final checkpoint,
#   6. exports it to GGUF and prints llama.cpp's greedy continuation of a prompt (node-llama-cpp's
#      prebuilt CPU build, which setup.sh installs with Node 20+) next to skein's.
# Extra arguments go to train, e.g. ./scripts/demo.sh --set run.steps=100
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
if ! ls /usr/share/games/fortunes/*.dat >/dev/null 2>&1; then
  echo "demo: installing the fortunes text (Debian packages fortunes, fortunes-min)"
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq fortunes fortunes-min >/dev/null
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target train sample prepare_data inspect_checkpoint \
  export_model

corpus=()
for f in /usr/share/games/fortunes/*; do
  [[ -f "$f" && "$f" != *.dat && "$f" != *.u8 ]] && corpus+=("$f")
done
if [[ ! -f data_cache/fortunes/tokenizer.bin ]]; then
  echo "== preparing ${#corpus[@]} fortune files into data_cache/fortunes"
  ./build/apps/prepare_data --out data_cache/fortunes --tokenizer byte "${corpus[@]}"
fi

echo "== training configs/demo.textproto into runs/demo"
./build/apps/train --config configs/demo.textproto --resume auto "$@"

echo "== a sample from the final checkpoint"
./build/apps/sample --checkpoint runs/demo --tokens 300 --temperature 0.8 --top_k 40 --prompt "The "
echo

echo "== the same model in llama.cpp: runs/demo/model.gguf"
./build/apps/export_model --checkpoint runs/demo --format gguf --out runs/demo/model.gguf
prompt="Life is "
node_dir=${XDG_CACHE_HOME:-$HOME/.cache}/skein/node
if [[ -d $node_dir/node_modules/node-llama-cpp ]]; then
  echo "-- skein, sample --temperature 0:"
  ./build/apps/sample --checkpoint runs/demo --tokens 120 --temperature 0 --prompt "$prompt"
  echo "-- llama.cpp (node-llama-cpp), greedy:"
  node scripts/llama_continue.mjs "$node_dir" runs/demo/model.gguf "$prompt" 120
else
  echo "demo: node-llama-cpp is not installed (it needs Node.js 20 or newer; this machine has" \
    "$(node --version 2>/dev/null || echo none)): run runs/demo/model.gguf in llama.cpp yourself"
fi
echo
echo "run folder: runs/demo (metrics.jsonl, loss.svg, checkpoints/, model.gguf)"
echo "sample again: ./build/apps/sample --checkpoint runs/demo --prompt 'Life is'"
echo "train longer: ./build/apps/train --config configs/demo.textproto --set run.steps=800"
