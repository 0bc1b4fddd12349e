// Autoregressive generation with a KV cache: each new token costs one pass of one position
// through the network, attending to the cached keys and values, so generating n tokens is linear
// in n (the full forward would be quadratic).
// Dimensions: C channels, V vocab, L layers, NH heads, HS = C / NH, NKV key/value heads; the
// cache holds the NKV key/value heads of up to seq_len positions; beyond that the context slides
// (the cache is rebuilt from the last seq_len/2 tokens). It reads the model's description (norm,
// positions, MLP, heads, tying) as Model::forward does.
#pragma once

#include <cstdint>
#include <vector>

#include "base/rng.h"
#include "engine/model.h"

namespace skein {

struct SamplingOptions {
  float temperature = 1.0f;  // 0 = greedy (argmax)
  int top_k = 0;             // keep the k most likely tokens; 0 = all
};

class Generator {
 public:
  explicit Generator(const Model& model);

  void reset();
  // Feeds one token at the next position; returns the logits (V) for the position after it.
  const float* feed(int32_t token);
  int position() const { return pos_; }

  // Draws a token from logits with the options, using rng.
  static int32_t sample(const float* logits, int V, const SamplingOptions& opt, Rng& rng);

 private:
  // out = norm(inp) for one row, with weight (and bias) at those offsets
  void norm(float* out, const float* inp, size_t weight, size_t bias);
  // the parameter at offset, nullptr for Model::kAbsent
  const float* param(size_t offset) const;

  const Model& model_;
  int pos_ = 0;
  std::vector<int32_t> history_;          // tokens in the cache, for a slide
  std::vector<float> k_cache_, v_cache_;  // (L, seq_len, NKV * HS)
  std::vector<float> x_, ln_, qkv_, atty_, tmp_, fch_, fcg_, logits_, scores_, mean_, rstd_;
};

}  // namespace skein
