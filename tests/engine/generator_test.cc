#include "engine/generator.h"

#include <gtest/gtest.h>

#include <cmath>

namespace skein {
namespace {

// The KV-cache path must give the same logits as the full causal forward at every position:
// GPT-2's blocks, and Llama's (its cache holds the 2 key/value heads only, rotated).
TEST(Generator, CachedLogitsMatchTheFullForward) {
  GptConfig llama = llama_blocks({41, 12, 2, 4, 24});
  llama.n_kv_head = 2;
  llama.ffn_dim = 40;
  llama.rope_theta = 100;
  llama.tied = false;
  for (const GptConfig& cfg : {GptConfig{41, 12, 2, 3, 24}, llama}) {
    SCOPED_TRACE(cfg.arch == Arch::kGpt2 ? "gpt2" : "llama");
    Model model(cfg);
    model.init(11);
    for (size_t i = 0; i < model.num_params(); ++i) model.params()[i] += 0.05f * std::sin(float(i));
    const int T = 12;
    std::vector<int32_t> tok(T), tgt(T, 0);
    for (int t = 0; t < T; ++t) tok[t] = (t * 17 + 3) % cfg.vocab_size;
    Activations acts(cfg, 1, T);
    model.forward(acts, tok.data(), tgt.data());
    const float* full = model.logits(acts);
    Generator gen(model);
    double worst = 0, scale = 0;
    for (int t = 0; t < T; ++t) {
      const float* step = gen.feed(tok[t]);
      for (int v = 0; v < cfg.vocab_size; ++v) {
        worst = std::max(worst, double(std::abs(step[v] - full[t * cfg.vocab_size + v])));
        scale = std::max(scale, double(std::abs(full[t * cfg.vocab_size + v])));
      }
    }
    EXPECT_LE(worst / scale, 1e-5);
    EXPECT_EQ(gen.position(), T);
  }
}

TEST(Generator, SlidesWhenTheContextIsFull) {
  GptConfig cfg{11, 6, 1, 1, 8};
  Model model(cfg);
  model.init(1);
  Generator gen(model);
  for (int i = 0; i < 20; ++i) gen.feed(i % 11);
  EXPECT_LE(gen.position(), cfg.seq_len);
  EXPECT_GT(gen.position(), 0);
}

TEST(Generator, SamplingRespectsTopKAndTemperature) {
  const float logits[5] = {0.0f, 3.0f, 1.0f, 2.9f, -1.0f};
  Rng rng(3);
  EXPECT_EQ(Generator::sample(logits, 5, {0.0f, 0}, rng), 1);  // greedy
  int counts[5] = {};
  for (int i = 0; i < 2000; ++i) ++counts[Generator::sample(logits, 5, {1.0f, 2}, rng)];
  EXPECT_EQ(counts[0] + counts[2] + counts[4], 0);  // only the top 2 are ever drawn
  EXPECT_GT(counts[1], 800);
  EXPECT_GT(counts[3], 800);
}

}  // namespace
}  // namespace skein
