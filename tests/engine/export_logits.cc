// export_logits DIR: what tests/reference/export_hf_check.py compares with PyTorch. A GPT with
// random weights (GPT-2-like: norm weights near 1, the rest N(0, 0.2^2)) exported with
// export_hf in f32, f16 and bf16 (DIR/f32, DIR/f16, DIR/bf16), and DIR/logits.bin: skein's
// logits of that model on B sequences of T tokens, little endian:
//   int32 B, T, V; B x T int32 tokens; B x T x V float32 logits.
// The same for a Llama-family model (grouped-query heads, untied output) in DIR/llama/, and for
// one with a byte tokenizer's vocabulary and a tied output as GGUF (export_gguf, f32:
// DIR/llama_gguf/model.gguf, q and k rows in the interleaved rotary layout) with its logits.bin.
// Exit code 0 when written, 1 on an error (printed).
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "base/rng.h"
#include "data/file_util.h"
#include "data/tokenizer.h"
#include "engine/export.h"
#include "engine/model.h"

namespace {

// Exports a model of cfg with random weights into dir/{f32,f16,bf16} (gguf: into dir/model.gguf
// in f32 with a byte tokenizer instead) and writes dir/logits.bin.
bool write_case(const skein::GptConfig& cfg, const std::string& dir, uint64_t seed,
                bool gguf = false) {
  const int B = 3, T = cfg.seq_len;
  skein::Model model(cfg);
  skein::Rng rng(seed);
  for (const skein::TensorView& t : model.tensors()) {
    float* p = model.params() + t.offset;
    const bool norm_weight = t.shape.size() == 1 && t.name.ends_with(".weight");
    for (size_t i = 0; i < t.size; ++i)
      p[i] = static_cast<float>(norm_weight ? 1.0 + 0.1 * rng.normal() : 0.2 * rng.normal());
  }
  if (skein::Status s = skein::make_dirs(dir); !s.ok()) {
    std::fprintf(stderr, "error: %s\n", s.message().c_str());
    return false;
  }
  for (skein::ExportDtype d :
       {skein::ExportDtype::kF32, skein::ExportDtype::kF16, skein::ExportDtype::kBf16}) {
    if (gguf && d != skein::ExportDtype::kF32) continue;
    const skein::Status s =
        gguf ? skein::export_gguf(model, skein::Tokenizer(), d, dir + "/model.gguf")
             : skein::export_hf(model, nullptr, d, dir + "/" + skein::export_dtype_name(d));
    if (!s.ok()) {
      std::fprintf(stderr, "error: %s\n", s.message().c_str());
      return false;
    }
  }
  std::vector<int32_t> tokens(size_t(B) * T), targets(tokens.size(), -1);
  for (int32_t& x : tokens) x = static_cast<int32_t>(rng.below(uint64_t(cfg.vocab_size)));
  skein::Activations acts(cfg, B, T);
  model.forward(acts, tokens.data(), targets.data());
  const float* logits = model.logits(acts);
  std::ofstream out(dir + "/logits.bin", std::ios::binary);
  const int32_t dims[3] = {B, T, cfg.vocab_size};
  out.write(reinterpret_cast<const char*>(dims), sizeof(dims));
  out.write(reinterpret_cast<const char*>(tokens.data()), std::streamsize(tokens.size() * 4));
  out.write(reinterpret_cast<const char*>(logits),
            std::streamsize(tokens.size() * size_t(cfg.vocab_size) * 4));
  if (!out) {
    std::fprintf(stderr, "error: writing %s/logits.bin failed\n", dir.c_str());
    return false;
  }
  std::printf("wrote %s/%s and %s/logits.bin\n", dir.c_str(),
              gguf ? "model.gguf" : "{f32,f16,bf16}/", dir.c_str());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: export_logits DIR\n");
    return 1;
  }
  const std::string dir = argv[1];
  skein::GptConfig llama = skein::llama_blocks({61, 11, 2, 4, 32});  // V, T, L, NH, C
  llama.n_kv_head = 2;
  llama.ffn_dim = 48;
  llama.tied = false;
  llama.rope_theta = 100;  // every pair turns by a sizeable angle within T
  skein::GptConfig gguf = llama;
  gguf.vocab_size = skein::Tokenizer().vocab_size();
  gguf.tied = true;
  gguf.n_head = 4;
  gguf.n_kv_head = 1;  // one kv head for all four query heads
  gguf.d_model = 40;   // head size 10: an odd number of rotary pairs
  return write_case({61, 11, 2, 4, 32}, dir, 20260101) &&
                 write_case(llama, dir + "/llama", 20261201) &&
                 write_case(gguf, dir + "/llama_gguf", 20261202, true)
             ? 0
             : 1;
}
