#include "engine/generator.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/check.h"
#include "kernels/gelu.h"
#include "kernels/layernorm.h"
#include "kernels/linear.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"

namespace skein {

Generator::Generator(const Model& model) : model_(model) {
  const GptConfig& c = model.config();
  const size_t C = c.d_model, KV = size_t(c.kv_heads()) * c.head_size();
  k_cache_.assign(size_t(c.n_layer) * c.seq_len * KV, 0.0f);
  v_cache_.assign(k_cache_.size(), 0.0f);
  x_.resize(C);
  ln_.resize(C);
  qkv_.resize(c.qkv_width());
  atty_.resize(C);
  tmp_.resize(C);
  fch_.resize(c.fc_width());
  fcg_.resize(c.ffn());
  logits_.resize(c.vocab_size);
  scores_.resize(c.seq_len);
  mean_.resize(1);
  rstd_.resize(1);
}

void Generator::reset() {
  pos_ = 0;
  history_.clear();
}

const float* Generator::param(size_t offset) const {
  return offset == Model::kAbsent ? nullptr : model_.params() + offset;
}

void Generator::norm(float* out, const float* inp, size_t weight, size_t bias) {
  const GptConfig& c = model_.config();
  if (c.norm == Norm::kLayerNorm)
    layernorm_forward(out, mean_.data(), rstd_.data(), inp, param(weight), param(bias), 1,
                      c.d_model);
  else
    rmsnorm_forward(out, rstd_.data(), inp, param(weight), 1, c.d_model,
                    static_cast<float>(c.norm_eps));
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
  const int C = c.d_model, NH = c.n_head, HS = c.head_size(), NKV = c.kv_heads();
  const int KV = NKV * HS, QKV = c.qkv_width(), F = c.ffn(), group = NH / NKV;
  const float scale = 1.0f / std::sqrt(float(HS));
  const float* wte = param(model_.wte_offset());
  const float* wpe = param(model_.wpe_offset());
  for (int i = 0; i < C; ++i)
    x_[i] = wte[size_t(token) * C + i] + (wpe ? wpe[size_t(pos_) * C + i] : 0.0f);
  for (int l = 0; l < c.n_layer; ++l) {
    const Model::LayerOffsets& o = model_.layer(l);
    float* kc = k_cache_.data() + size_t(l) * c.seq_len * KV;
    float* vc = v_cache_.data() + size_t(l) * c.seq_len * KV;
    norm(ln_.data(), x_.data(), o.ln1w, o.ln1b);
    linear_forward(qkv_.data(), ln_.data(), param(o.qkvw), param(o.qkvb), 1, C, QKV);
    if (c.position == Position::kRotary)  // one row, turned by this position's table row
      rope_forward(qkv_.data(), model_.rope_table() + size_t(pos_) * HS, 0, 1, 1, NH + NKV, HS,
                   QKV);
    std::copy_n(qkv_.data() + C, KV, kc + size_t(pos_) * KV);
    std::copy_n(qkv_.data() + C + KV, KV, vc + size_t(pos_) * KV);
    // one query against the cached keys 0..pos_, per head
    for (int h = 0; h < NH; ++h) {
      const int kvh = h / group;
      const float* q = qkv_.data() + h * HS;
      float mx = -INFINITY;
      for (int j = 0; j <= pos_; ++j) {
        const float* k = kc + size_t(j) * KV + kvh * HS;
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
        const float* v = vc + size_t(j) * KV + kvh * HS;
        for (int d = 0; d < HS; ++d) y[d] += pj * v[d];
      }
    }
    linear_forward(tmp_.data(), atty_.data(), param(o.projw), param(o.projb), 1, C, C);
    for (int i = 0; i < C; ++i) x_[i] += tmp_[i];
    norm(ln_.data(), x_.data(), o.ln2w, o.ln2b);
    linear_forward(fch_.data(), ln_.data(), param(o.fcw), param(o.fcb), 1, C, c.fc_width());
    if (c.mlp == Mlp::kGelu)
      gelu_forward(fcg_.data(), fch_.data(), long(F));
    else
      swiglu_forward(fcg_.data(), fch_.data(), 1, F);
    linear_forward(tmp_.data(), fcg_.data(), param(o.fcprojw), param(o.fcprojb), 1, F, C);
    for (int i = 0; i < C; ++i) x_[i] += tmp_[i];
  }
  norm(ln_.data(), x_.data(), model_.lnfw_offset(), model_.lnfb_offset());
  linear_forward(logits_.data(), ln_.data(), param(model_.lm_head_offset()),
                 static_cast<const float*>(nullptr), 1, C, c.vocab_size);
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
