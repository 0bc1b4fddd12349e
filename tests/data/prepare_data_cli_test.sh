#!/usr/bin/env bash
# The prepare_data command line: --help, usage errors (exit 2), data errors (exit 1), and a
# successful run on a plain and a .gz input. Usage: prepare_data_cli_test.sh PATH/TO/prepare_data
set -uo pipefail
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

# expect CODE PATTERN -- ARGS...: runs prepare_data ARGS, checks the exit code and that the
# output (stdout and stderr) matches PATTERN.
expect() {
  local code=$1 pattern=$2
  shift 3
  local out rc
  out=$("$bin" "$@" 2>&1)
  rc=$?
  if [[ $rc -ne $code ]]; then
    echo "FAIL: prepare_data $*: exit $rc, expected $code"$'\n'"$out"
    failures=$((failures + 1))
  elif ! grep -qE -- "$pattern" <<<"$out"; then
    echo "FAIL: prepare_data $*: output lacks /$pattern/"$'\n'"$out"
    failures=$((failures + 1))
  fi
}

for i in $(seq 1 3000); do echo "line $i: the quick brown fox jumps over the lazy dog"; done >"$tmp/a.txt"
for i in $(seq 1 2000); do echo "zwei $i: Franz jagt im komplett verwahrlosten Taxi"; done >"$tmp/b.txt"
gzip -k "$tmp/b.txt"

expect 0 "exit codes" -- --help
expect 2 "unknown flag --bogus" -- --bogus 1 --out "$tmp/o" "$tmp/a.txt"
expect 2 "--out DIR is required" -- "$tmp/a.txt"
expect 2 "no input files" -- --out "$tmp/o"
expect 2 "--vocab wants an integer" -- --out "$tmp/o" --vocab lots "$tmp/a.txt"
expect 2 "--val_fraction needs a value" -- --out "$tmp/o" "$tmp/a.txt" --val_fraction
expect 1 "missing.txt" -- --out "$tmp/o" "$tmp/missing.txt"
touch "$tmp/plainfile"
expect 1 "plainfile/o.*not a directory" -- --out "$tmp/plainfile/o" "$tmp/a.txt"
expect 1 "too small" -- --out "$tmp/small" "$tmp/plainfile"
expect 1 "unknown" -- --out "$tmp/o" --tokenizer words "$tmp/a.txt"
expect 1 "needs --tokenizer_files" -- --out "$tmp/o" --tokenizer gpt2 "$tmp/a.txt"
mkdir -p "$tmp/nofiles"
expect 1 "missing vocab.json and merges.txt.*missing encoder.json and vocab.bpe" -- \
  --out "$tmp/o" --tokenizer gpt2 --tokenizer_files "$tmp/nofiles" "$tmp/a.txt"
expect 1 "needs a tokenizer with an end-of-text token" -- --out "$tmp/o" \
  --doc_separator blank_line "$tmp/a.txt"
expect 2 "--doc_separator needs a value" -- --out "$tmp/o" "$tmp/a.txt" --doc_separator
expect 1 "--bpe_pieces 'words' is unknown" -- --out "$tmp/o" --tokenizer bpe --bpe_pieces words \
  "$tmp/a.txt"
expect 1 "--bpe_pieces is for --tokenizer bpe" -- --out "$tmp/o" --bpe_pieces gpt2 "$tmp/a.txt"

expect 0 "tokens \(byte tokenizer, vocab 256\)" -- --out "$tmp/byte" "$tmp/a.txt" "$tmp/b.txt.gz"
bytes=$(($(wc -c <"$tmp/a.txt") + $(wc -c <"$tmp/b.txt")))
shard_bytes=$(($(cat "$tmp"/byte/train_*.bin "$tmp"/byte/val_*.bin | wc -c) - 2048))
if [[ $shard_bytes -ne $((2 * bytes)) ]]; then
  echo "FAIL: byte shards hold $shard_bytes bytes of tokens, expected $((2 * bytes))"
  failures=$((failures + 1))
fi
expect 1 "already holds" -- --out "$tmp/byte" "$tmp/a.txt"
expect 0 "BPE \(GPT-2's pieces\)" -- --out "$tmp/byte" --overwrite --tokenizer=bpe --vocab 300 \
  --threads 2 --quiet "$tmp/a.txt" "$tmp/b.txt.gz"
expect 0 "BPE \(skein's pieces\)" -- --out "$tmp/bpe1" --tokenizer=bpe --bpe_pieces skein --vocab 300 \
  --quiet "$tmp/a.txt"
leftover=$(find "$tmp/byte" -name '*.tmp*' -o -name '.prepare*')
if [[ -n $leftover ]]; then
  echo "FAIL: temporary files left: $leftover"
  failures=$((failures + 1))
fi

if [[ $failures -ne 0 ]]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "prepare_data command line: all checks passed"
