// export_logits DIR: what tests/reference/export_hf_check.py compares with PyTorch. A GPT with
// random weights (GPT-2-like: LayerNorm weights near 1, the rest N(0, 0.2^2)) exported with
// export_hf in f32, f16 and bf16 (DIR/f32, DIR/f16, DIR/bf16), and DIR/logits.bin: skein's
// logits of that model on B sequences of T tokens, little endian:
//   int32 B, T, V; B x T int32 tokens; B x T x V float32 logits.
// Exit code 0 when written, 1 on an error (printed).
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "base/rng.h"
#include "data/file_util.h"
#include "engine/export.h"
#include "engine/model.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: export_logits DIR\n");
    return 1;
  }
  const std::string dir = argv[1];
  const skein::GptConfig cfg = {61, 11, 2, 4, 32};  // V, T, L, NH, C
  const int B = 3, T = cfg.seq_len;
  skein::Model model(cfg);
  skein::Rng rng(20260101);
  for (const skein::TensorView& t : model.tensors()) {
    float* p = model.params() + t.offset;
    const bool ln_weight = t.name.find("ln_") != std::string::npos && t.name.ends_with(".weight");
    for (size_t i = 0; i < t.size; ++i)
      p[i] = static_cast<float>(ln_weight ? 1.0 + 0.1 * rng.normal() : 0.2 * rng.normal());
  }
  if (skein::Status s = skein::make_dirs(dir); !s.ok()) {
    std::fprintf(stderr, "error: %s\n", s.message().c_str());
    return 1;
  }
  for (skein::ExportDtype d :
       {skein::ExportDtype::kF32, skein::ExportDtype::kF16, skein::ExportDtype::kBf16}) {
    const skein::Status s =
        skein::export_hf(model, nullptr, d, dir + "/" + skein::export_dtype_name(d));
    if (!s.ok()) {
      std::fprintf(stderr, "error: %s\n", s.message().c_str());
      return 1;
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
    return 1;
  }
  std::printf("wrote %s/{f32,f16,bf16}/ and %s/logits.bin\n", dir.c_str(), dir.c_str());
  return 0;
}
