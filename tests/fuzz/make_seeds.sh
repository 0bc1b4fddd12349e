#!/usr/bin/env bash
# Regenerates the seed corpora in tests/fuzz/corpus/ from the Release build's binaries (build/):
# a real shard and tokenizer files from prepare_data (byte, BPE, and GPT-2 from a small
# vocabulary of its form, which seeds gpt2_vocab_fuzz and, as tokenizer.json, hf_tokenizer_fuzz;
# texts seed gpt2_encode_fuzz), a real
# checkpoint (format 2, and the same manifest rewritten in format 1) from train, and the
# pretrained-weights fixtures of tests/reference/import/, each packed as its fuzz target expects.
#   tests/fuzz/make_seeds.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
out=tests/fuzz/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"/{config,checkpoint,shard,tokenizer,import,gpt2_vocab,gpt2_encode,hf_tokenizer}

for i in $(seq 200); do echo "the quick brown fox $i jumps over the lazy dog."; done >"$tmp/corpus.txt"
"$build/apps/prepare_data" --out "$tmp/byte" "$tmp/corpus.txt" >/dev/null 2>&1
"$build/apps/prepare_data" --out "$tmp/bpe" --tokenizer bpe --bpe_pieces skein --vocab 300 \
  "$tmp/corpus.txt" >/dev/null 2>&1
"$build/apps/prepare_data" --out "$tmp/bpe3" --tokenizer bpe --vocab 300 "$tmp/corpus.txt" \
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
{ printf '\x01'; cat "$tmp/bpe3/tokenizer.bin"; } >"$out/tokenizer/bpe300_gpt2_pieces"

# A small vocabulary of GPT-2's form (its 256 byte tokens, 40 merges, <|endoftext|>) as
# vocab.json + merges.txt; gpt2_vocab_fuzz: uint16 length of the JSON, the JSON, the merges.
mkdir -p "$tmp/gpt2"
python3 - "$tmp/gpt2" "$out/gpt2_vocab" "$out/hf_tokenizer" <<'PY'
import json, struct, sys
d, out, hf = sys.argv[1], sys.argv[2], sys.argv[3]
bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
cs, n = bs[:], 0
for b in range(256):
    if b not in bs:
        bs.append(b); cs.append(256 + n); n += 1
ch = {b: chr(c) for b, c in zip(bs, cs)}
text = lambda s: ''.join(ch[b] for b in s.encode())
merges = [('t', 'h'), ('h', 'e'), (' ', 't'), (' t', 'he'), ('i', 'n'), (' ', 'a'), ('e', 'r'),
          ('in', 'g'), (' ', 'o'), ('o', 'n'), (' ', 's'), ('r', 'e'), ('a', 't'), ('e', 'n'),
          (' ', 'w'), ('o', 'r'), ('i', 's'), ('e', 's'), (' ', 'c'), ('i', 't'), ('a', 'n'),
          ('an', 'd'), (' ', 'and'), (' ', 'f'), ('o', 'x'), (' f', 'ox'), ("'", 's'), ('\n', '\n'),
          (' ', ' '), ('  ', '  '), ('1', '2'), ('12', '3'), ('e', 'd'), (' ', 'in'), ('l', 'l'),
          ('a', 'y'), ('l', 'a'), ('q', 'u'), (' ', 'qu'), ('!', '!')]
vocab = {ch[b]: i for i, b in enumerate(bs)}
for l, r in merges:
    vocab[text(l + r)] = len(vocab)
vocab['<|endoftext|>'] = len(vocab)
js = json.dumps(vocab, ensure_ascii=False).encode()
mg = ('#version: 0.2\n' + ''.join(text(l) + ' ' + text(r) + '\n' for l, r in merges)).encode()
open(d + '/vocab.json', 'wb').write(js)
open(d + '/merges.txt', 'wb').write(mg)
open(out + '/small', 'wb').write(struct.pack('<H', len(js)) + js + mg)
open(out + '/truncated_merges', 'wb').write(struct.pack('<H', len(js)) + js + mg[:200])
# hf_tokenizer_fuzz: the same vocabulary as tokenizer.json files, SmolLM's pre-tokenizer with
# [left, right] merges, and GPT-2's with "left right" merges
bl = {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': True}
eot = {'id': vocab['<|endoftext|>'], 'content': '<|endoftext|>', 'special': True}
for name, pre, ms in [
        ('digits', {'type': 'Sequence', 'pretokenizers': [
            {'type': 'Digits', 'individual_digits': True}, bl]}, [[text(l), text(r)] for l, r in merges]),
        ('bytelevel', bl, [text(l) + ' ' + text(r) for l, r in merges])]:
    tj = {'version': '1.0', 'added_tokens': [eot], 'normalizer': None, 'pre_tokenizer': pre,
          'decoder': bl, 'model': {'type': 'BPE', 'dropout': None, 'byte_fallback': False,
                                   'vocab': vocab, 'merges': ms}}
    open(hf + '/' + name, 'wb').write(json.dumps(tj, ensure_ascii=False).encode())
PY
"$build/apps/prepare_data" --out "$tmp/gpt2out" --tokenizer gpt2 --tokenizer_files "$tmp/gpt2" \
  --val_fraction 0 "$tmp/corpus.txt" >/dev/null 2>&1
{ printf '\x01'; cat "$tmp/gpt2out/tokenizer.bin"; } >"$out/tokenizer/gpt2_small"
# a version 4 file: the same vocabulary from SmolLM's kind of tokenizer.json
mkdir -p "$tmp/hfdigits"
cp "$out/hf_tokenizer/digits" "$tmp/hfdigits/tokenizer.json"
"$build/apps/prepare_data" --out "$tmp/hfout" --tokenizer gpt2 --tokenizer_files "$tmp/hfdigits" \
  --val_fraction 0 "$tmp/corpus.txt" >/dev/null 2>&1
{ printf '\x01'; cat "$tmp/hfout/tokenizer.bin"; } >"$out/tokenizer/hf_digits"
# gpt2_encode_fuzz: one byte (the block size less one), then the text
{ printf '\x07'; head -c 600 "$tmp/corpus.txt"; } >"$out/gpt2_encode/corpus"
printf '\x02don'"'"'t DON'"'"'T  \n\n\tx  y\xc3\xa9t\xc3\xa9 e\xcc\x81 12345 \xf0\x9f\x98\x80!!\n\n\n' \
  >"$out/gpt2_encode/tricky"
printf '\x00a \n\xd9\xa3 b\t\n\xd9\xa3x \r\xc2\xb2  \xe2\x91\xa0\n\n end \n\xd9\xa3 12 3' \
  >"$out/gpt2_encode/digits"
printf '\x00ok \xc3( \xed\xa0\x80 \xff\xfe aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xe2\x80\xa8\xc2\x85 \xef\xbb\xbf' \
  >"$out/gpt2_encode/invalid"

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
# import_fuzz: a flag byte (even: safetensors, then uint16 config.json length and config.json;
# odd: llm.c), then the file
python3 - tests/reference/import "$out/import" <<'PY'
import struct, sys
src, out = sys.argv[1], sys.argv[2]
for name, flag in (('hf_f16', 0), ('hf_f32', 2), ('llama_bf16', 0), ('llama_f32', 2)):
    cfg = open(f'{src}/{name}/config.json', 'rb').read()
    st = open(f'{src}/{name}/model.safetensors', 'rb').read()
    open(f'{out}/{name}', 'wb').write(bytes([flag]) + struct.pack('<H', len(cfg)) + cfg + st)
for name, flag in (('gpt2_tiny_v3.bin', 1), ('gpt2_tiny_v5.bin', 7)):
    open(f'{out}/llmc_' + name[10:12], 'wb').write(bytes([flag]) + open(f'{src}/{name}', 'rb').read())
PY
cp configs/*.textproto "$out/config/"
printf 'model { vocab_size: 256\nrun {\n  steps: 3\n' >"$out/config/unclosed"
printf 'run { batch_size: 64.5 }\nrun.steps=12' >"$out/config/override"
ls -l "$out"/*
