#include "engine/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/check.h"
#include "base/rng.h"
#include "kernels/attention.h"
#include "kernels/crossentropy.h"
#include "kernels/encoder.h"
#include "kernels/gelu.h"
#include "kernels/layernorm.h"
#include "kernels/linear.h"
#include "kernels/residual.h"

namespace skein {

namespace {
// Every tensor starts on a 64-byte boundary, so SIMD loads of a tensor are aligned and shards
// made of whole tensors never share a cache line. Padding floats are zero and stay zero.
constexpr size_t kTensorAlign = 16;
size_t round_up(size_t n, size_t a) {
  return (n + a - 1) / a * a;
}
}  // namespace

Activations::Activations(const GptConfig& cfg, int B, int T)
    : Activations(cfg, B, T, Mode::kAllocate) {}

size_t Activations::floats_for(const GptConfig& cfg, int B, int T) {
  return Activations(cfg, B, T, Mode::kMeasure).planned_floats_;
}

Activations::Activations(const GptConfig& cfg, int B, int T, Mode mode) : B_(B), T_(T) {
  SKEIN_CHECK(B > 0 && T > 0 && T <= cfg.seq_len);
  const size_t C = cfg.d_model, V = cfg.vocab_size, L = cfg.n_layer, NH = cfg.n_head;
  const size_t BT = size_t(B) * T;
  // Carve every buffer out of one allocation, each 64-byte aligned.
  std::vector<std::pair<float**, size_t>> plan;
  layers_.resize(L);
  for (auto& l : layers_) {
    plan.insert(plan.end(), {{&l.ln1_mean, BT},
                             {&l.ln1_rstd, BT},
                             {&l.qkv, BT * 3 * C},
                             {&l.att_stats, size_t(attention_stats_size(B, T, NH))},
                             {&l.atty, BT * C},
                             {&l.res2, BT * C},
                             {&l.ln2_mean, BT},
                             {&l.ln2_rstd, BT},
                             {&l.fch, BT * 4 * C},
                             {&l.res3, BT * C}});
  }
  plan.insert(plan.end(), {{&encoded_, BT * C},
                           {&lnf_, BT * C},
                           {&lnf_mean_, BT},
                           {&lnf_rstd_, BT},
                           {&logits_, BT * V},
                           {&ce_stats_, BT * kCrossEntropyStats},
                           {&losses_, BT},
                           {&dres_, BT * C},
                           {&dwide_a_, BT * 4 * C},
                           {&dwide_b_, BT * 4 * C},
                           {&dnarrow_, BT * C},
                           {&att_scratch_, size_t(2) * T * T}});
  size_t total = 0;
  for (auto& [ptr, n] : plan) total += round_up(n, kTensorAlign);
  planned_floats_ = total;
  if (mode == Mode::kMeasure) return;
  buf_.resize(total);
  size_t off = 0;
  for (auto& [ptr, n] : plan) {
    *ptr = buf_.data() + off;
    off += round_up(n, kTensorAlign);
  }
  tokens_.resize(BT);
  targets_.resize(BT);
}

size_t Model::add(const std::string& name, std::vector<int> shape, bool decay) {
  size_t offset =
      tensors_.empty() ? 0 : round_up(tensors_.back().offset + tensors_.back().size, kTensorAlign);
  size_t n = 1;
  for (int d : shape) n *= size_t(d);
  tensors_.push_back({name, offset, n, std::move(shape), decay});
  return offset;
}

size_t Model::num_params_for(const GptConfig& cfg) {
  return Model(cfg, LayoutOnly{}).layout_floats_;
}

Model::Model(const GptConfig& cfg) : Model(cfg, LayoutOnly{}) {
  params_.resize(layout_floats_);
  const int C = cfg.d_model, V = cfg.vocab_size;
  // lm_head's product writes wte whole (then the encoder adds to it), each block's four products
  // their weight matrices; everything else, padding included, is accumulated_.
  std::vector<std::pair<size_t, size_t>> written = {{wte_, size_t(V) * C}};
  for (const LayerOffsets& o : layer_) {
    written.emplace_back(o.qkvw, size_t(3) * C * C);
    written.emplace_back(o.projw, size_t(C) * C);
    written.emplace_back(o.fcw, size_t(4) * C * C);
    written.emplace_back(o.fcprojw, size_t(4) * C * C);
  }
  std::sort(written.begin(), written.end());
  size_t at = 0;
  for (const auto& [offset, size] : written) {
    if (offset > at) accumulated_.emplace_back(at, offset - at);
    at = offset + size;
  }
  if (params_.size() > at) accumulated_.emplace_back(at, params_.size() - at);
}

Model::Model(const GptConfig& cfg, LayoutOnly) : cfg_(cfg) {
  SKEIN_CHECK(cfg.vocab_size > 0 && cfg.seq_len > 0 && cfg.n_layer > 0 && cfg.n_head > 0);
  SKEIN_CHECK(cfg.d_model % cfg.n_head == 0, "d_model must be divisible by n_head");
  const int C = cfg.d_model, V = cfg.vocab_size;
  wte_ = add("wte", {V, C}, true);
  wpe_ = add("wpe", {cfg.seq_len, C}, true);
  for (int l = 0; l < cfg.n_layer; ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    LayerOffsets o;
    o.ln1w = add(p + "ln_1.weight", {C}, false);
    o.ln1b = add(p + "ln_1.bias", {C}, false);
    o.qkvw = add(p + "attn.c_attn.weight", {3 * C, C}, true);
    o.qkvb = add(p + "attn.c_attn.bias", {3 * C}, false);
    o.projw = add(p + "attn.c_proj.weight", {C, C}, true);
    o.projb = add(p + "attn.c_proj.bias", {C}, false);
    o.ln2w = add(p + "ln_2.weight", {C}, false);
    o.ln2b = add(p + "ln_2.bias", {C}, false);
    o.fcw = add(p + "mlp.c_fc.weight", {4 * C, C}, true);
    o.fcb = add(p + "mlp.c_fc.bias", {4 * C}, false);
    o.fcprojw = add(p + "mlp.c_proj.weight", {C, 4 * C}, true);
    o.fcprojb = add(p + "mlp.c_proj.bias", {C}, false);
    layer_.push_back(o);
  }
  lnfw_ = add("ln_f.weight", {C}, false);
  lnfb_ = add("ln_f.bias", {C}, false);
  layout_floats_ = round_up(tensors_.back().offset + tensors_.back().size, kTensorAlign);
}

const TensorView& Model::tensor(std::string_view name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return t;
  SKEIN_CHECK(false, "no such tensor");
  __builtin_unreachable();
}

void Model::init(uint64_t seed) {
  Rng rng(seed);
  params_.zero();
  const double proj_std = 0.02 / std::sqrt(2.0 * cfg_.n_layer);
  for (const auto& t : tensors_) {
    float* p = params_.data() + t.offset;
    const bool is_ln_weight =
        t.name.find("ln_") != std::string::npos && t.name.ends_with(".weight");
    if (is_ln_weight) {
      for (size_t i = 0; i < t.size; ++i) p[i] = 1.0f;
    } else if (t.shape.size() >= 2) {
      const bool residual_proj = t.name.ends_with("c_proj.weight");
      const double sd = residual_proj ? proj_std : 0.02;
      for (size_t i = 0; i < t.size; ++i) p[i] = static_cast<float>(sd * rng.normal());
    }  // biases stay 0
  }
}

float Model::forward(Activations& a, const int32_t* tokens, const int32_t* targets) const {
  const int B = a.B_, T = a.T_, C = cfg_.d_model, V = cfg_.vocab_size, NH = cfg_.n_head;
  const int BT = B * T;
  const float* p = params_.data();
  const MatmulContext mm{precision_};
  std::memcpy(a.tokens_.data(), tokens, sizeof(int32_t) * BT);
  std::memcpy(a.targets_.data(), targets, sizeof(int32_t) * BT);

  encoder_forward(a.encoded_, tokens, p + wte_, p + wpe_, B, T, C);
  const float* x = a.encoded_;  // residual stream entering the block
  for (int l = 0; l < cfg_.n_layer; ++l) {
    const LayerOffsets& o = layer_[l];
    Activations::Layer& A = a.layers_[l];
    // the LayerNorms' outputs in dres_, GELU's in dwide_a_, the projections' in dnarrow_: scratch
    float* ln = a.dres_;
    float* fcg = a.dwide_a_;
    layernorm_forward(ln, A.ln1_mean, A.ln1_rstd, x, p + o.ln1w, p + o.ln1b, BT, C);
    linear_forward(mm, A.qkv, ln, p + o.qkvw, p + o.qkvb, BT, C, 3 * C);
    attention_forward(mm, A.atty, A.att_stats, a.att_scratch_, A.qkv, B, T, C, NH);
    linear_forward(mm, a.dnarrow_, A.atty, p + o.projw, p + o.projb, BT, C, C);
    residual_forward(A.res2, x, a.dnarrow_, long(BT) * C);
    layernorm_forward(ln, A.ln2_mean, A.ln2_rstd, A.res2, p + o.ln2w, p + o.ln2b, BT, C);
    linear_forward(mm, A.fch, ln, p + o.fcw, p + o.fcb, BT, C, 4 * C);
    gelu_forward(fcg, A.fch, long(BT) * 4 * C);
    linear_forward(mm, a.dnarrow_, fcg, p + o.fcprojw, p + o.fcprojb, BT, 4 * C, C);
    residual_forward(A.res3, A.res2, a.dnarrow_, long(BT) * C);
    x = A.res3;
  }
  layernorm_forward(a.lnf_, a.lnf_mean_, a.lnf_rstd_, x, p + lnfw_, p + lnfb_, BT, C);
  linear_forward(mm, a.logits_, a.lnf_, p + wte_, static_cast<const float*>(nullptr), BT, C, V);
  double sum = softmax_crossentropy_forward(a.losses_, a.ce_stats_, a.logits_, targets, BT, V);
  a.target_count_ = count_targets(targets, BT);
  return a.target_count_ ? static_cast<float>(sum / a.target_count_) : 0.0f;
}

void Model::backward(Activations& a, float* g, float loss_scale, GradMode mode) const {
  const int B = a.B_, T = a.T_, C = cfg_.d_model, V = cfg_.vocab_size, NH = cfg_.n_head;
  const int BT = B * T;
  const long nC = long(BT) * C;
  const float* p = params_.data();
  const bool overwrite = mode == GradMode::kOverwrite;
  const MatmulContext mm{precision_};
  if (a.target_count_ == 0) {  // no target, no gradient
    if (overwrite) std::memset(g, 0, sizeof(float) * params_.size());
    return;
  }
  if (overwrite)
    for (const auto& [offset, size] : accumulated_)
      std::memset(g + offset, 0, sizeof(float) * size);
  const float beta_w = overwrite ? 0.0f : 1.0f;  // the matrices' old gradient: kept or ignored
  const float dloss = loss_scale / static_cast<float>(a.target_count_);

  // dlogits in place of the logits
  float* dlogits = a.logits_;
  softmax_crossentropy_backward(dlogits, a.logits_, a.ce_stats_, a.targets_.data(), BT, V, dloss);
  // lm_head tied to wte: logits = lnf @ wte^T
  linear_backward(mm, a.dnarrow_, g + wte_, static_cast<float*>(nullptr), dlogits, a.lnf_, p + wte_,
                  BT, C, V, 0.0f, beta_w);
  const float* x_last = cfg_.n_layer ? a.layers_.back().res3 : a.encoded_;
  std::memset(a.dres_, 0, sizeof(float) * nC);
  layernorm_backward(a.dres_, g + lnfw_, g + lnfb_, a.dnarrow_, x_last, p + lnfw_, a.lnf_mean_,
                     a.lnf_rstd_, BT, C);

  // dres_ holds d(loss)/d(residual stream) at the output of the block being walked back through.
  for (int l = cfg_.n_layer - 1; l >= 0; --l) {
    const LayerOffsets& o = layer_[l];
    Activations::Layer& A = a.layers_[l];
    const float* x_in = l ? a.layers_[l - 1].res3 : a.encoded_;
    // MLP: res3 = res2 + c_proj(gelu(c_fc(ln_2(res2)))). gelu(fch) and ln_2(res2) are computed
    // again (into free scratch) as forward computed them, then used as forward's would be.
    float* fcg = a.dwide_b_;
    gelu_forward(fcg, A.fch, nC * 4);
    linear_backward(mm, a.dwide_a_, g + o.fcprojw, g + o.fcprojb, a.dres_, fcg, p + o.fcprojw, BT,
                    4 * C, C, 0.0f, beta_w);
    std::memset(a.dwide_b_, 0, sizeof(float) * nC * 4);
    gelu_backward(a.dwide_b_, A.fch, a.dwide_a_, nC * 4);
    float* ln2 = a.dwide_a_;
    layernorm_forward(ln2, A.ln2_mean, A.ln2_rstd, A.res2, p + o.ln2w, p + o.ln2b, BT, C);
    linear_backward(mm, a.dnarrow_, g + o.fcw, g + o.fcb, a.dwide_b_, ln2, p + o.fcw, BT, C, 4 * C,
                    0.0f, beta_w);
    // the skip path carries dres_ through unchanged; ln_2 adds its share
    layernorm_backward(a.dres_, g + o.ln2w, g + o.ln2b, a.dnarrow_, A.res2, p + o.ln2w, A.ln2_mean,
                       A.ln2_rstd, BT, C);
    // attention: res2 = x_in + c_proj(attn(c_attn(ln_1(x_in))))
    linear_backward(mm, a.dnarrow_, g + o.projw, g + o.projb, a.dres_, A.atty, p + o.projw, BT, C,
                    C, 0.0f, beta_w);
    std::memset(a.dwide_a_, 0, sizeof(float) * nC * 3);
    attention_backward(mm, a.dwide_a_, a.att_scratch_, a.dnarrow_, A.qkv, A.att_stats, B, T, C, NH);
    float* ln1 = a.dwide_b_;
    layernorm_forward(ln1, A.ln1_mean, A.ln1_rstd, x_in, p + o.ln1w, p + o.ln1b, BT, C);
    linear_backward(mm, a.dnarrow_, g + o.qkvw, g + o.qkvb, a.dwide_a_, ln1, p + o.qkvw, BT, C,
                    3 * C, 0.0f, beta_w);
    layernorm_backward(a.dres_, g + o.ln1w, g + o.ln1b, a.dnarrow_, x_in, p + o.ln1w, A.ln1_mean,
                       A.ln1_rstd, BT, C);
  }
  encoder_backward(g + wte_, g + wpe_, a.dres_, a.tokens_.data(), B, T, C);
}

}  // namespace skein
