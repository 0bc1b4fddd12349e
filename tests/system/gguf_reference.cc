// skein's side of tests/system/gguf_test.sh: what llama.cpp must reproduce from an exported GGUF.
//   gguf_reference --checkpoint DIR --tokenizer FILE --heldout FILE --prompt TEXT --tokens N
//                  --out JSON [--encode FILE]...
// writes one JSON object:
//   encode:   {FILE's name: Tokenizer::encode of its bytes} for each --encode FILE;
//   heldout:  ids = the first seq_len + 1 tokens of the held-out text (fewer if it is shorter),
//             logprobs[i] = log p(ids[i+1] | ids[0..i]) from Model::forward's logits (softmax
//             over all V rows, in double);
//   greedy:   prompt_ids, ids = N tokens chosen as sample --temperature 0 chooses them (the
//             Generator's KV-cache path, argmax over the tokenizer's ids), margins = the most
//             likely logit minus the second one at each of those steps (how close a tie was);
//   tensors:  for each of the model's tensors (in Model::tensors() order): its name, the sum of
//             all its values in index order (in double), and every stride-th value (stride chosen
//             for at most 4096 of them), to check the file's tensor data against; a Llama's
//             fused matrices (qkv_proj, gate_up_proj), which the file holds in parts, with all
//             their values;
//   config:   the model's shape (arch "gpt2" or "llama", with a Llama's n_kv_head, ffn_dim,
//             rope_theta, norm_eps, tied); tokenizer: kind, vocabulary size and its tokenizer.bin.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "engine/checkpoint.h"
#include "engine/config.h"
#include "engine/generator.h"
#include "engine/model.h"

namespace {

int fail(const std::string& msg) {
  std::fprintf(stderr, "gguf_reference: %s\n", msg.c_str());
  return 2;
}

bool read_all(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string ckpt, tok_path, heldout_path, prompt, out_path;
  std::vector<std::string> encode_paths;
  long tokens = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--checkpoint")
      ckpt = v;
    else if (a == "--tokenizer")
      tok_path = v;
    else if (a == "--heldout")
      heldout_path = v;
    else if (a == "--prompt")
      prompt = v;
    else if (a == "--tokens")
      tokens = std::stol(v);
    else if (a == "--out")
      out_path = v;
    else if (a == "--encode")
      encode_paths.push_back(v);
    else
      return fail("unknown argument " + a);
  }
  if (ckpt.empty() || tok_path.empty() || heldout_path.empty() || out_path.empty() || tokens <= 0)
    return fail("usage: see the comment at the top of tests/system/gguf_reference.cc");
  if (std::filesystem::is_directory(ckpt + "/checkpoints")) {
    std::vector<std::string> skipped;
    ckpt = skein::find_latest_valid_checkpoint(ckpt + "/checkpoints", &skipped);
    if (ckpt.empty()) return fail("no checkpoint that verifies");
  }
  auto manifest = skein::verify_checkpoint(ckpt);
  if (!manifest.ok()) return fail(manifest.status().message());
  const skein::GptConfig cfg = skein::gpt_config(manifest->config().model());
  skein::Model model(cfg);
  auto loaded = skein::load_checkpoint(ckpt, model, {{"param/", model.params()}});
  if (!loaded.ok()) return fail(loaded.status().message());
  auto tok = skein::Tokenizer::load(tok_path);
  if (!tok.ok()) return fail(tok.status().message());

  nlohmann::json out;
  out["config"] = {{"arch", cfg.arch == skein::Arch::kLlama ? "llama" : "gpt2"},
                   {"vocab_size", cfg.vocab_size},
                   {"seq_len", cfg.seq_len},
                   {"n_layer", cfg.n_layer},
                   {"n_head", cfg.n_head},
                   {"d_model", cfg.d_model},
                   {"n_kv_head", cfg.kv_heads()},
                   {"ffn_dim", cfg.ffn()},
                   {"rope_theta", cfg.rope_theta},
                   {"norm_eps", cfg.norm_eps},
                   {"tied", cfg.tied}};
  out["tokenizer"] = {
      {"kind", tok->kind_name()}, {"vocab_size", tok->vocab_size()}, {"file", tok_path}};

  out["tensors"] = nlohmann::json::array();
  for (const skein::TensorView& t : model.tensors()) {
    const float* p = model.params() + t.offset;
    const size_t stride = (t.size + 4095) / 4096;
    double sum = 0;
    for (size_t i = 0; i < t.size; ++i) sum += p[i];
    std::vector<double> samples;
    for (size_t i = 0; i < t.size; i += stride) samples.push_back(p[i]);
    nlohmann::json entry = {
        {"name", t.name}, {"sum", sum}, {"stride", stride}, {"samples", samples}};
    if (t.name.ends_with("qkv_proj.weight") || t.name.ends_with("gate_up_proj.weight"))
      entry["values"] = std::vector<double>(p, p + t.size);
    out["tensors"].push_back(std::move(entry));
  }

  out["encode"] = nlohmann::json::object();
  for (const std::string& p : encode_paths) {
    std::string text;
    if (!read_all(p, &text)) return fail("cannot read " + p);
    out["encode"][std::filesystem::path(p).filename().string()] = tok->encode(text);
  }

  // held-out log-probabilities from one forward pass over T = len - 1 positions
  std::string heldout;
  if (!read_all(heldout_path, &heldout)) return fail("cannot read " + heldout_path);
  std::vector<int32_t> ids = tok->encode(heldout);
  if (ids.size() > size_t(cfg.seq_len) + 1) ids.resize(size_t(cfg.seq_len) + 1);
  if (ids.size() < 2) return fail("the held-out text is shorter than two tokens");
  const int T = static_cast<int>(ids.size()) - 1, V = cfg.vocab_size;
  skein::Activations acts(cfg, 1, T);
  model.forward(acts, ids.data(), ids.data() + 1);
  const float* logits = model.logits(acts);
  std::vector<double> logprobs(T);
  for (int t = 0; t < T; ++t) {
    const float* row = logits + size_t(t) * V;
    double mx = row[0];
    for (int v = 1; v < V; ++v) mx = std::max(mx, double(row[v]));
    double sum = 0;
    for (int v = 0; v < V; ++v) sum += std::exp(double(row[v]) - mx);
    logprobs[t] = double(row[ids[t + 1]]) - mx - std::log(sum);
  }
  out["heldout"] = {{"ids", ids}, {"logprobs", logprobs}};

  // greedy continuation, as apps/sample.cc does it with --temperature 0
  std::vector<int32_t> prompt_ids = tok->encode(prompt);
  if (prompt_ids.empty()) return fail("the prompt has no tokens");
  skein::Generator gen(model);
  const float* next = nullptr;
  for (int32_t id : prompt_ids) next = gen.feed(id);
  skein::Rng rng(1);
  const skein::SamplingOptions greedy{0.0f, 0};
  std::vector<int32_t> greedy_ids;
  std::vector<double> margins;
  for (long i = 0; i < tokens; ++i) {
    const int Vt = tok->vocab_size();
    const int32_t id = skein::Generator::sample(next, Vt, greedy, rng);
    double second = -INFINITY;
    for (int v = 0; v < Vt; ++v)
      if (v != id) second = std::max(second, double(next[v]));
    margins.push_back(double(next[id]) - second);
    greedy_ids.push_back(id);
    next = gen.feed(id);
  }
  out["greedy"] = {
      {"prompt", prompt}, {"prompt_ids", prompt_ids}, {"ids", greedy_ids}, {"margins", margins}};

  std::ofstream f(out_path);
  f << out.dump() << "\n";
  if (!f) return fail("cannot write " + out_path);
  return 0;
}
