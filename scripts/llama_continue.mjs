// llama.cpp's greedy continuation of a prompt, from a GGUF file, through the npm package
// node-llama-cpp's prebuilt CPU build (scripts/setup.sh installs it into NODE_DIR). For the demo:
// it prints what llama.cpp writes next to what skein's `sample --temperature 0` writes.
//   node scripts/llama_continue.mjs NODE_DIR MODEL.gguf PROMPT TOKENS
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [nodeDir, file, prompt, count] = process.argv.slice(2);
if (!nodeDir || !file || prompt === undefined || !(Number(count) > 0)) {
  console.error('usage: node scripts/llama_continue.mjs NODE_DIR MODEL.gguf PROMPT TOKENS');
  process.exit(2);
}
// the package's ES module entry, found from its package.json (NODE_DIR is not on node's path)
const dir = path.join(nodeDir, 'node_modules', 'node-llama-cpp');
const json = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
const exp = json.exports?.['.'];
const main = (typeof exp === 'string' ? exp : exp?.import?.default ?? exp?.import ?? exp?.default) ??
  json.module ?? json.main;
const { getLlama, LlamaLogLevel } = await import(pathToFileURL(path.join(dir, main)).href);

const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error,
  progressLogs: false });
const model = await llama.loadModel({ modelPath: file });
const context = await model.createContext({ contextSize: model.trainContextSize * 2, threads: 2 });
const sequence = context.getSequence();
const ids = Array.from(model.tokenize(prompt, false));
const limit = Math.min(Number(count), model.trainContextSize - ids.length);
const next = { generateNext: { token: true, options: { temperature: 0 } } };
let input = ids.map((t, i) => (i === ids.length - 1 ? [t, next] : t));
const out = [];
for (let i = 0; i < limit; ++i) {
  const res = await sequence.controlledEvaluate(input);
  const token = res[input.length - 1].next.token;
  out.push(token);
  input = [[token, next]];
}
process.stdout.write(prompt + model.detokenize(out) + '\n');
await llama.dispose();
