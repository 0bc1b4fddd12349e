#!/usr/bin/env bash
# Regenerates the seed corpora in tests/fuzz/corpus/ from the Release build's binaries (build/):
# a real shard and tokenizer files from prepare_data, and a real checkpoint (format 2, and the
# same manifest rewritten in format 1) from train, each packed as its fuzz target expects.
#   tests/fuzz/make_seeds.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
out=tests/fuzz/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"/{config,checkpoint,shard,tokenizer}

for i in $(seq 200); do echo "the quick brown fox $i jumps over the lazy dog."; done >"$tmp/corpus.txt"
"$build/apps/prepare_data" --out "$tmp/byte" "$tmp/corpus.txt" >/dev/null 2>&1
"$build/apps/prepare_data" --out "$tmp/bpe" --tokenizer bpe --vocab 300 "$tmp/corpus.txt" \
  >/dev/null 2>&1
# shard_fuzz: one byte choosing the vocabulary (odd: 65536), then the file
{ printf '\x01'; head -c 1600 "$tmp/byte/train_000000.bin"; } >"$tmp/shard"
python3 - "$tmp/shard" "$out/shard/train_small" <<'PY'
import struct, sys
data = bytearray(open(sys.argv[1], 'rb').read())
n = (len(data) - 1 - 1024) // 2
data[1 + 8:1 + 12] = struct.pack('<i', n)   # token count of the cut shard
open(sys.argv[2], 'wb').write(data)
PY
# tokenizer_fuzz: one byte (odd: the hash is recomputed), then the file
{ printf '\x00'; cat "$tmp/byte/tokenizer.bin"; } >"$out/tokenizer/byte"
{ printf '\x01'; cat "$tmp/bpe/tokenizer.bin"; } >"$out/tokenizer/bpe300"

cat >"$tmp/tiny.textproto" <<CFG
model { vocab_size: 256 seq_len: 8 n_layer: 1 n_head: 1 d_model: 8 }
data { dir: "$tmp/byte" loader_threads: 1 }
run { batch_size: 2 threads: 1 steps: 2 log_every: 1 eval_batches: 0 out_dir: "$tmp/run" }
CFG
"$build/apps/train" --config "$tmp/tiny.textproto" >/dev/null
ck="$tmp/run/checkpoints/step_00000002"
# checkpoint_fuzz: a flag byte (odd: length and CRC fixed up), uint32 manifest length, manifest,
# blob; format 1 is the same payload without the 24-byte header, format_version 1
python3 - "$ck" "$out/checkpoint" <<'PY'
import struct, sys
ck, out = sys.argv[1], sys.argv[2]
m = open(ck + '/manifest.pb', 'rb').read()
blob = open(ck + '/tensors.bin', 'rb').read()
open(out + '/tiny_v2', 'wb').write(b'\x01' + struct.pack('<I', len(m)) + m + blob)
payload = bytearray(m[24:])
assert payload[0] == 0x08 and payload[1] == 2   # field 1 (format_version) = 2
payload[1] = 1
open(out + '/tiny_v1', 'wb').write(b'\x00' + struct.pack('<I', len(payload)) + payload + blob)
PY
cp configs/*.textproto "$out/config/"
printf 'model { vocab_size: 256\nrun {\n  steps: 3\n' >"$out/config/unclosed"
printf 'run { batch_size: 64.5 }\nrun.steps=12' >"$out/config/override"
ls -l "$out"/*
