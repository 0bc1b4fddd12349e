#include "engine/generator.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/check.h"
#include "kernels/gelu.h"
#include "kernels/layernorm.h"
#include "kernels/linear.h"

namespace skein {

Generator::Generator(const Model& model) : model_(model) {
  const GptConfig& c = model.config();
  auto p = [&](const std::string& name) { return model.params() + model.tensor(name).offset; };
  for (int l = 0; l < c.n_layer; ++l) {
    const std::string h = "h." + std::to_string(l) + ".";
    layers_.push_back({p(h + "ln_1.weight"), p(h + "ln_1.bias"), p(h + "attn.c_attn.weight"),
                       p(h + "attn.c_attn.bias"), p(h + "attn.c_proj.weight"),
                       p(h + "attn.c_proj.bias"), p(h + "ln_2.weight"), p(h + "ln_2.bias"),
                       p(h + "mlp.c_fc.weight"), p(h + "mlp.c_fc.bias"), p(h + "mlp.c_proj.weight"),
                       p(h + "mlp.c_proj.bias")});
  }
  wte_ = p("wte");
  wpe_ = p("wpe");
  lnfw_ = p("ln_f.weight");
  lnfb_ = p("ln_f.bias");
  const size_t C = c.d_model;
  k_cache_.assign(size_t(c.n_layer) * c.seq_len * C, 0.0f);
  v_cache_.assign(k_cache_.size(), 0.0f);
  x_.resize(C);
  ln_.resize(C);
  qkv_.resize(3 * C);
  atty_.resize(C);
  tmp_.resize(C);
  fch_.resize(4 * C);
  fcg_.resize(4 * C);
  logits_.resize(c.vocab_size);
  scores_.resize(c.seq_len);
  mean_.resize(1);
  rstd_.resize(1);
}

void Generator::reset() {
  pos_ = 0;
  history_.clear();
}

const float* Generator::feed(int32_t token) {
  const GptConfig& c = model_.config();
  SKEIN_CHECK(token >= 0 && token < c.vocab_size);
  if (pos_ == c.seq_len) {
    // Context full: slide to the last half and rebuild the cache from those tokens.
    std::vector<int32_t> keep(history_.end() - c.seq_len / 2, history_.end());
    reset();
    for (int32_t t : keep) feed(t);
  }
  history_.push_back(token);
  const int C = c.d_model, NH = c.n_head, HS = C / NH;
  const float scale = 1.0f / std::sqrt(float(HS));
  for (int i = 0; i < C; ++i) x_[i] = wte_[size_t(token) * C + i] + wpe_[size_t(pos_) * C + i];
  for (int l = 0; l < c.n_layer; ++l) {
    const LayerPtrs& w = layers_[l];
    float* kc = k_cache_.data() + size_t(l) * c.seq_len * C;
    float* vc = v_cache_.data() + size_t(l) * c.seq_len * C;
    layernorm_forward(ln_.data(), mean_.data(), rstd_.data(), x_.data(), w.ln1w, w.ln1b, 1, C);
    linear_forward(qkv_.data(), ln_.data(), w.qkvw, w.qkvb, 1, C, 3 * C);
    std::copy_n(qkv_.data() + C, C, kc + size_t(pos_) * C);
    std::copy_n(qkv_.data() + 2 * C, C, vc + size_t(pos_) * C);
    // one query against the cached keys 0..pos_, per head
    for (int h = 0; h < NH; ++h) {
      const float* q = qkv_.data() + h * HS;
      float mx = -INFINITY;
      for (int j = 0; j <= pos_; ++j) {
        const float* k = kc + size_t(j) * C + h * HS;
        float s = 0;
        for (int d = 0; d < HS; ++d) s += q[d] * k[d];
        scores_[j] = s * scale;
        mx = std::max(mx, scores_[j]);
      }
      float sum = 0;
      for (int j = 0; j <= pos_; ++j) sum += (scores_[j] = std::exp(scores_[j] - mx));
      float* y = atty_.data() + h * HS;
      std::fill(y, y + HS, 0.0f);
      for (int j = 0; j <= pos_; ++j) {
        const float pj = scores_[j] / sum;
        const float* v = vc + size_t(j) * C + h * HS;
        for (int d = 0; d < HS; ++d) y[d] += pj * v[d];
      }
    }
    linear_forward(tmp_.data(), atty_.data(), w.projw, w.projb, 1, C, C);
    for (int i = 0; i < C; ++i) x_[i] += tmp_[i];
    layernorm_forward(ln_.data(), mean_.data(), rstd_.data(), x_.data(), w.ln2w, w.ln2b, 1, C);
    linear_forward(fch_.data(), ln_.data(), w.fcw, w.fcb, 1, C, 4 * C);
    gelu_forward(fcg_.data(), fch_.data(), 4L * C);
    linear_forward(tmp_.data(), fcg_.data(), w.fcprojw, w.fcprojb, 1, 4 * C, C);
    for (int i = 0; i < C; ++i) x_[i] += tmp_[i];
  }
  layernorm_forward(ln_.data(), mean_.data(), rstd_.data(), x_.data(), lnfw_, lnfb_, 1, C);
  linear_forward(logits_.data(), ln_.data(), wte_, static_cast<const float*>(nullptr), 1, C,
                 c.vocab_size);
  ++pos_;
  return logits_.data();
}

int32_t Generator::sample(const float* logits, int V, const SamplingOptions& opt, Rng& rng) {
  if (opt.temperature <= 0)
    return static_cast<int32_t>(std::max_element(logits, logits + V) - logits);
  std::vector<int32_t> idx(V);
  std::iota(idx.begin(), idx.end(), 0);
  int k = opt.top_k > 0 ? std::min(opt.top_k, V) : V;
  if (k < V) {
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                      [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
    idx.resize(k);
  }
  float mx = -INFINITY;
  for (int32_t i : idx) mx = std::max(mx, logits[i]);
  std::vector<double> w(idx.size());
  double total = 0;
  for (size_t i = 0; i < idx.size(); ++i)
    total += (w[i] = std::exp((logits[idx[i]] - mx) / opt.temperature));
  double u = rng.uniform() * total;
  for (size_t i = 0; i < idx.size(); ++i) {
    if ((u -= w[i]) < 0) return idx[i];
  }
  return idx.back();
}

}  // namespace skein
