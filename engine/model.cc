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
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"

namespace skein {

namespace {
// Every tensor starts on a 64-byte boundary, so SIMD loads of a tensor are aligned and shards
// made of whole tensors never share a cache line. Padding floats are zero and stay zero.
constexpr size_t kTensorAlign = 16;
size_t round_up(size_t n, size_t a) {
  return (n + a - 1) / a * a;
}
}  // namespace

GptConfig llama_blocks(GptConfig cfg) {
  cfg.arch = Arch::kLlama;
  cfg.norm = Norm::kRmsNorm;
  cfg.position = Position::kRotary;
  cfg.mlp = Mlp::kSwiGlu;
  cfg.biases = false;
  return cfg;
}

double matmul_weights(const GptConfig& c) {
  const double C = c.d_model, L = c.n_layer;
  const double per_layer = C * c.qkv_width() + C * C + C * c.fc_width() + double(c.ffn()) * C;
  return L * per_layer + double(c.vocab_size) * C;
}

double training_flops_per_token(const GptConfig& c, int T) {
  return 6.0 * matmul_weights(c) + 12.0 * c.n_layer * c.d_model * double(T);
}

Activations::Activations(const GptConfig& cfg, int B, int T, int workers)
    : Activations(cfg, B, T, workers, Mode::kAllocate) {}

size_t Activations::floats_for(const GptConfig& cfg, int B, int T, int workers) {
  return Activations(cfg, B, T, workers, Mode::kMeasure).planned_floats_;
}

Activations::Activations(const GptConfig& cfg, int B, int T, int workers, Mode mode)
    : B_(B), T_(T), workers_(workers) {
  SKEIN_CHECK(B > 0 && T > 0 && T <= cfg.seq_len && workers >= 1);
  const size_t C = cfg.d_model, V = cfg.vocab_size, L = cfg.n_layer, NH = cfg.n_head;
  const size_t BT = size_t(B) * T;
  const size_t mean_rows = cfg.norm == Norm::kLayerNorm ? BT : 0;
  const size_t QKV = cfg.qkv_width(), FC = cfg.fc_width();
  const size_t wide = std::max({QKV, FC, size_t(cfg.ffn())});
  // Carve every buffer out of one allocation, each 64-byte aligned.
  std::vector<std::pair<float**, size_t>> plan;
  layers_.resize(L);
  for (auto& l : layers_) {
    plan.insert(plan.end(), {{&l.ln1_mean, mean_rows},
                             {&l.ln1_rstd, BT},
                             {&l.qkv, BT * QKV},
                             {&l.att_stats, size_t(attention_stats_size(B, T, NH))},
                             {&l.atty, BT * C},
                             {&l.res2, BT * C},
                             {&l.ln2_mean, mean_rows},
                             {&l.ln2_rstd, BT},
                             {&l.fch, BT * FC},
                             {&l.res3, BT * C}});
  }
  plan.insert(plan.end(), {{&encoded_, BT * C},
                           {&lnf_, BT * C},
                           {&lnf_mean_, mean_rows},
                           {&lnf_rstd_, BT},
                           {&logits_, BT * V},
                           {&ce_stats_, BT * kCrossEntropyStats},
                           {&losses_, BT},
                           {&dres_, BT * C},
                           {&dwide_a_, BT * wide},
                           {&dwide_b_, BT * wide},
                           {&dnarrow_, BT * C},
                           {&att_scratch_, size_t(2) * T * T * workers}});
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

size_t Model::add(const std::string& name, std::vector<int> shape, bool decay, Init init,
                  double init_std) {
  size_t offset =
      tensors_.empty() ? 0 : round_up(tensors_.back().offset + tensors_.back().size, kTensorAlign);
  size_t n = 1;
  for (int d : shape) n *= size_t(d);
  tensors_.push_back({name, offset, n, std::move(shape), decay, init, init_std});
  return offset;
}

size_t Model::num_params_for(const GptConfig& cfg) {
  return Model(cfg, LayoutOnly{}).layout_floats_;
}

Model::Model(const GptConfig& cfg) : Model(cfg, LayoutOnly{}) {
  params_.resize(layout_floats_);
  const size_t C = cfg.d_model, V = cfg.vocab_size;
  if (cfg.position == Position::kRotary) {
    rope_.resize(size_t(cfg.seq_len) * cfg.head_size());
    skein::rope_table(rope_.data(), cfg.seq_len, cfg.head_size(), cfg.rope_theta);
  }
  // The output projection's product writes its matrix whole (if tied, wte, to which the encoder
  // then adds), each block's four products their weight matrices; everything else, padding
  // included, is accumulated_.
  std::vector<std::pair<size_t, size_t>> written = {{lm_head_, V * C}};
  for (const LayerOffsets& o : layer_) {
    written.emplace_back(o.qkvw, size_t(cfg.qkv_width()) * C);
    written.emplace_back(o.projw, C * C);
    written.emplace_back(o.fcw, size_t(cfg.fc_width()) * C);
    written.emplace_back(o.fcprojw, size_t(cfg.ffn()) * C);
  }
  std::sort(written.begin(), written.end());
  size_t at = 0;
  for (const auto& [offset, size] : written) {
    if (offset > at) accumulated_.emplace_back(at, offset - at);
    at = offset + size;
  }
  if (params_.size() > at) accumulated_.emplace_back(at, params_.size() - at);
}

namespace {
// The tensor names of a family: GPT-2's as Hugging Face's GPT2Model has them (without its
// "transformer." prefix), Llama's as LlamaForCausalLM's (without "model."), with the q, k, v
// projections fused into one qkv_proj and gate and up into gate_up_proj.
struct TensorNames {
  const char *wte, *wpe, *block, *ln1, *qkv, *proj, *ln2, *fc, *fcproj, *lnf, *lm_head;
};
constexpr TensorNames kGpt2Names = {"wte",         "wpe",         "h.",     "ln_1",
                                    "attn.c_attn", "attn.c_proj", "ln_2",   "mlp.c_fc",
                                    "mlp.c_proj",  "ln_f",        "lm_head"};
constexpr TensorNames kLlamaNames = {"embed_tokens.weight",
                                     "",
                                     "layers.",
                                     "input_layernorm",
                                     "self_attn.qkv_proj",
                                     "self_attn.o_proj",
                                     "post_attention_layernorm",
                                     "mlp.gate_up_proj",
                                     "mlp.down_proj",
                                     "norm",
                                     "lm_head"};
}  // namespace

Model::Model(const GptConfig& cfg, LayoutOnly) : cfg_(cfg) {
  SKEIN_CHECK(cfg.vocab_size > 0 && cfg.seq_len > 0 && cfg.n_layer > 0 && cfg.n_head > 0);
  SKEIN_CHECK(cfg.d_model % cfg.n_head == 0, "d_model must be divisible by n_head");
  SKEIN_CHECK(cfg.kv_heads() > 0 && cfg.n_head % cfg.kv_heads() == 0,
              "n_kv_head must divide n_head");
  SKEIN_CHECK(cfg.position != Position::kRotary || cfg.head_size() % 2 == 0,
              "rotary embeddings need an even head size");
  SKEIN_CHECK(cfg.norm != Norm::kLayerNorm || cfg.norm_eps == kLayerNormEps,
              "LayerNorm's epsilon is fixed at 1e-5");
  const TensorNames& n = cfg.arch == Arch::kLlama ? kLlamaNames : kGpt2Names;
  const int C = cfg.d_model, V = cfg.vocab_size, F = cfg.ffn();
  const bool ln = cfg.norm == Norm::kLayerNorm, bias = cfg.biases;
  // GPT-2 scales the residual stream's output projections by 1/sqrt(2 L); Llama does not
  const double proj_std = cfg.arch == Arch::kGpt2 ? 0.02 / std::sqrt(2.0 * cfg.n_layer) : 0.02;
  const auto weight = [](const std::string& name) { return name + ".weight"; };
  const auto bias_of = [](const std::string& name) { return name + ".bias"; };
  wte_ = add(n.wte, {V, C}, true, Init::kNormal, 0.02);
  if (cfg.position == Position::kLearned)
    wpe_ = add(n.wpe, {cfg.seq_len, C}, true, Init::kNormal, 0.02);
  for (int l = 0; l < cfg.n_layer; ++l) {
    const std::string p = n.block + std::to_string(l) + ".";
    LayerOffsets o;
    o.ln1w = add(weight(p + n.ln1), {C}, false, Init::kOnes);
    o.ln1b = add_if(ln, bias_of(p + n.ln1), {C}, false, Init::kZeros);
    o.qkvw = add(weight(p + n.qkv), {cfg.qkv_width(), C}, true, Init::kNormal, 0.02);
    o.qkvb = add_if(bias, bias_of(p + n.qkv), {cfg.qkv_width()}, false, Init::kZeros);
    o.projw = add(weight(p + n.proj), {C, C}, true, Init::kNormal, proj_std);
    o.projb = add_if(bias, bias_of(p + n.proj), {C}, false, Init::kZeros);
    o.ln2w = add(weight(p + n.ln2), {C}, false, Init::kOnes);
    o.ln2b = add_if(ln, bias_of(p + n.ln2), {C}, false, Init::kZeros);
    o.fcw = add(weight(p + n.fc), {cfg.fc_width(), C}, true, Init::kNormal, 0.02);
    o.fcb = add_if(bias, bias_of(p + n.fc), {cfg.fc_width()}, false, Init::kZeros);
    o.fcprojw = add(weight(p + n.fcproj), {C, F}, true, Init::kNormal, proj_std);
    o.fcprojb = add_if(bias, bias_of(p + n.fcproj), {C}, false, Init::kZeros);
    layer_.push_back(o);
  }
  lnfw_ = add(weight(n.lnf), {C}, false, Init::kOnes);
  lnfb_ = add_if(ln, bias_of(n.lnf), {C}, false, Init::kZeros);
  lm_head_ = cfg.tied ? wte_ : add(weight(n.lm_head), {V, C}, true, Init::kNormal, 0.02);
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
  for (const auto& t : tensors_) {
    float* p = params_.data() + t.offset;
    switch (t.init) {
      case Init::kOnes:
        std::fill(p, p + t.size, 1.0f);
        break;
      case Init::kNormal:
        for (size_t i = 0; i < t.size; ++i) p[i] = static_cast<float>(t.init_std * rng.normal());
        break;
      case Init::kZeros:
        break;
    }
  }
}

// In forward and backward every operation is cut among the workers (Workers::share) along an
// output dimension, and w.sync() separates an operation from the next that reads what it wrote.
// Rows of (B*T, ...) buffers; the larger output dimension of a product (rows at multiples of
// kLinearRowAlign, columns of kLinearColumnAlign; a weight gradient's rows or columns),
// (sequence, head) pairs of attention, channels of the LayerNorms' and the embeddings' parameter
// gradients (their sums run over rows). One worker runs the same cuts with one part each, so
// any count gives the bits of one. On the Eigen fallback (no AVX2+FMA) pieces of a product need
// not give the whole's bits, so worker 0 computes each product whole there (product_share).
namespace {
// the worker's part of n floats, cut at whole cache lines
std::pair<long, long> elements(const Workers& w, long n) {
  return w.share(n, 16);
}
// The worker's part of a product's n output rows or columns, cut at multiples of align where the
// pieces give the whole product's bits (sgemm_runs_blocked); else the whole on worker 0.
std::pair<long, long> product_share(const Workers& w, bool exact, long n, long align) {
  if (exact) return w.share(n, align);
  return w.index == 0 ? std::pair<long, long>{0, n} : std::pair<long, long>{n, n};
}
}  // namespace

void Model::norm_rows(float* out, float* mean, float* rstd, const float* inp, size_t weight,
                      size_t bias, long r0, int n) const {
  const int C = cfg_.d_model;
  const float* p = params_.data();
  if (cfg_.norm == Norm::kLayerNorm)
    layernorm_forward(out + r0 * C, mean + r0, rstd + r0, inp + r0 * C, p + weight, p + bias, n, C);
  else
    rmsnorm_forward(out + r0 * C, rstd + r0, inp + r0 * C, p + weight, n, C,
                    static_cast<float>(cfg_.norm_eps));
}

float Model::forward(Activations& a, const int32_t* tokens, const int32_t* targets,
                     const Workers& w) const {
  const int B = a.B_, T = a.T_, C = cfg_.d_model, V = cfg_.vocab_size;
  const int BT = B * T, QKV = cfg_.qkv_width(), FC = cfg_.fc_width(), F = cfg_.ffn();
  const AttentionHeads heads{cfg_.n_head, cfg_.kv_heads(), cfg_.head_size()};
  const bool rotary = cfg_.position == Position::kRotary;
  const float* p = params_.data();
  const auto opt = [p](size_t offset) { return offset == kAbsent ? nullptr : p + offset; };
  const MatmulContext mm{precision_};
  SKEIN_CHECK(w.count <= a.workers_, "more workers than the activations have scratch for");
  float* scratch = a.att_scratch_ + size_t(2) * T * T * w.index;
  const std::pair<long, long> row_range = w.share(BT);
  const long r0 = row_range.first, r1 = row_range.second;  // rows (lambdas capture them)
  const int nrows = int(r1 - r0);
  const auto [h0, h1] = w.share(long(B) * heads.kv);  // attention's (sequence, kv head) tasks
  const auto rows = [&](float* out, long width) { return out + r0 * width; };
  // out (BT, n) = inp (BT, k) @ weight^T + bias, cut along its larger dimension, so that every
  // worker packs the smaller operand whole (rows: the weight; columns: the input)
  const bool exact = sgemm_runs_blocked(mm);
  const auto linear = [&](float* out, const float* inp, size_t weight, const float* bias, int k,
                          int n) {
    if (BT > n) {
      const auto [n0, n1] = product_share(w, exact, BT, kLinearRowAlign);
      linear_forward_columns(mm, out + n0 * n, inp + n0 * k, p + weight, bias, int(n1 - n0), k, n,
                             0, n);
    } else {
      const auto [j0, j1] = product_share(w, exact, n, kLinearColumnAlign);
      linear_forward_columns(mm, out, inp, p + weight, bias, BT, k, n, int(j0), int(j1));
    }
  };
  // this worker's rows of a norm: out = norm(inp), its statistics kept
  const auto norm = [&](float* out, float* mean, float* rstd, const float* inp, size_t weight,
                        size_t bias) { norm_rows(out, mean, rstd, inp, weight, bias, r0, nrows); };
  std::copy(tokens + r0, tokens + r1, a.tokens_.data() + r0);
  std::copy(targets + r0, targets + r1, a.targets_.data() + r0);
  const int count = count_targets(targets, BT);
  if (w.index == 0) a.target_count_ = count;  // read by backward, after barriers

  encoder_forward_rows(a.encoded_, tokens, p + wte_, opt(wpe_), T, C, r0, r1);
  const float* x = a.encoded_;  // residual stream entering the block
  for (int l = 0; l < cfg_.n_layer; ++l) {
    const LayerOffsets& o = layer_[l];
    Activations::Layer& A = a.layers_[l];
    // the norms' outputs in dres_, the MLP activation's in dwide_a_, the projections' in
    // dnarrow_: scratch
    float* ln = a.dres_;
    float* fcg = a.dwide_a_;
    // x's rows r0..r1 were written by this worker (encoder, residual): no barrier needed
    norm(ln, A.ln1_mean, A.ln1_rstd, x, o.ln1w, o.ln1b);
    w.sync();
    linear(A.qkv, ln, o.qkvw, opt(o.qkvb), C, QKV);
    w.sync();
    if (rotary) {  // q and k turn in place, by rows
      rope_forward(A.qkv, rope_.data(), r0, r1, T, heads.q + heads.kv, heads.size, QKV);
      w.sync();
    }
    attention_forward_tasks(mm, A.atty, A.att_stats, scratch, A.qkv, T, heads, int(h0), int(h1));
    w.sync();
    linear(a.dnarrow_, A.atty, o.projw, opt(o.projb), C, C);
    w.sync();
    residual_forward(rows(A.res2, C), x + r0 * C, rows(a.dnarrow_, C), (r1 - r0) * C);
    norm(ln, A.ln2_mean, A.ln2_rstd, A.res2, o.ln2w, o.ln2b);
    w.sync();
    linear(A.fch, ln, o.fcw, opt(o.fcb), C, FC);
    w.sync();
    if (cfg_.mlp == Mlp::kGelu) {
      const auto [e0, e1] = elements(w, long(BT) * F);
      gelu_forward(fcg + e0, A.fch + e0, e1 - e0);
    } else {
      swiglu_forward(rows(fcg, F), rows(A.fch, FC), nrows, F);
    }
    w.sync();
    linear(a.dnarrow_, fcg, o.fcprojw, opt(o.fcprojb), F, C);
    w.sync();
    residual_forward(rows(A.res3, C), rows(A.res2, C), rows(a.dnarrow_, C), (r1 - r0) * C);
    x = A.res3;
  }
  norm(a.lnf_, a.lnf_mean_, a.lnf_rstd_, x, lnfw_, lnfb_);
  w.sync();
  linear(a.logits_, a.lnf_, lm_head_, nullptr, C, V);
  w.sync();
  softmax_crossentropy_forward(rows(a.losses_, 1), rows(a.ce_stats_, kCrossEntropyStats),
                               a.logits_ + r0 * V, targets + r0, int(r1 - r0), V);
  w.sync();
  // The loss summed in row order, as softmax_crossentropy_forward sums it over all rows.
  double sum = 0;
  for (int i = 0; i < BT; ++i)
    if (targets[i] != kIgnoreTarget) sum += a.losses_[i];
  // (No barrier: what comes next writes no loss before barriers of its own.)
  return count ? static_cast<float>(sum / count) : 0.0f;
}

void Model::backward(Activations& a, float* g, float loss_scale, GradMode mode,
                     const Workers& w) const {
  const int B = a.B_, T = a.T_, C = cfg_.d_model, V = cfg_.vocab_size;
  const int BT = B * T, QKV = cfg_.qkv_width(), FC = cfg_.fc_width(), F = cfg_.ffn();
  const AttentionHeads heads{cfg_.n_head, cfg_.kv_heads(), cfg_.head_size()};
  const bool layernorm = cfg_.norm == Norm::kLayerNorm, rotary = cfg_.position == Position::kRotary;
  const float* p = params_.data();
  const bool overwrite = mode == GradMode::kOverwrite;
  const MatmulContext mm{precision_};
  SKEIN_CHECK(w.count <= a.workers_, "more workers than the activations have scratch for");
  float* scratch = a.att_scratch_ + size_t(2) * T * T * w.index;
  const std::pair<long, long> row_range = w.share(BT);
  const long r0 = row_range.first, r1 = row_range.second;  // rows (lambdas capture them)
  const auto [h0, h1] = w.share(long(B) * heads.kv);
  const bool exact = sgemm_runs_blocked(mm);
  const auto col = [&](int n) { return product_share(w, exact, n, kLinearColumnAlign); };
  const auto out_rows = [&](int n) { return product_share(w, exact, n, kLinearRowAlign); };
  const auto rows = [&](float* buf, long width) { return buf + r0 * width; };
  const int nrows = int(r1 - r0);
  const int target_count = a.target_count_;  // written by worker 0 before forward's barriers
  if (target_count == 0) {                   // no target, no gradient
    if (overwrite) {
      const auto [e0, e1] = elements(w, long(params_.size()));
      std::fill(g + e0, g + e1, 0.0f);
    }
    w.sync();
    return;
  }
  if (overwrite) {
    for (const auto& [offset, size] : accumulated_) {
      const auto [e0, e1] = w.share(long(size));
      std::fill(g + offset + e0, g + offset + e1, 0.0f);
    }
  }
  const float beta_w = overwrite ? 0.0f : 1.0f;  // the matrices' old gradient: kept or ignored
  const float dloss = loss_scale / static_cast<float>(target_count);

  // dlogits in place of the logits
  float* dlogits = a.logits_;
  softmax_crossentropy_backward(dlogits + r0 * V, a.logits_ + r0 * V,
                                rows(a.ce_stats_, kCrossEntropyStats), a.targets_.data() + r0,
                                nrows, V, dloss);
  std::fill(rows(a.dres_, C), rows(a.dres_, C) + long(nrows) * C, 0.0f);
  w.sync();
  const float* x_last = cfg_.n_layer ? a.layers_.back().res3 : a.encoded_;
  // channels of the norms' parameter gradients (not a structured binding: lambdas use it)
  const std::pair<long, long> channels = w.share(C, 16);  // whole cache lines of dweight
  const long ch0 = channels.first, ch1 = channels.second;
  // this worker's rows of a norm's output, as forward computed them
  // (its statistics are written again too, with the values they hold)
  const auto norm_again = [&](float* out, float* mean, float* rstd, const float* inp, size_t weight,
                              size_t bias) {
    norm_rows(out, mean, rstd, inp, weight, bias, r0, nrows);
  };
  // one norm's backward: the input's gradient into dres_ by rows, the parameters' by channels
  auto norm_back = [&](size_t weight, size_t bias, const float* dout, const float* inp,
                       const float* mean, const float* rstd) {
    if (layernorm) {
      layernorm_backward_input(rows(a.dres_, C), dout + r0 * C, inp + r0 * C, p + weight, mean + r0,
                               rstd + r0, nrows, C);
      layernorm_backward_params(g + weight, g + bias, dout, inp, mean, rstd, BT, C, int(ch0),
                                int(ch1));
    } else {
      rmsnorm_backward_input(rows(a.dres_, C), dout + r0 * C, inp + r0 * C, p + weight, rstd + r0,
                             nrows, C);
      rmsnorm_backward_params(g + weight, dout, inp, rstd, BT, C, int(ch0), int(ch1));
    }
  };
  // dinp (BT, in) = dout (BT, out) @ weight, cut along its larger dimension (as forward's linear)
  auto input_grad = [&](float* dinp, size_t weight, const float* dout, int in, int out) {
    if (BT > in) {
      const auto [n0, n1] = out_rows(BT);
      linear_backward_input_columns(mm, dinp + n0 * in, dout + n0 * out, p + weight, int(n1 - n0),
                                    in, out, 0, in, 0.0f);
    } else {
      const auto [c0, c1] = col(in);
      linear_backward_input_columns(mm, dinp, dout, p + weight, BT, in, out, int(c0), int(c1),
                                    0.0f);
    }
  };
  // a linear layer's backward: dinp as above (beta 0), dweight by rows or columns (duplicating
  // the smaller operand's packing), dbias (if any) by columns
  auto linear_back = [&](float* dinp, size_t weight, size_t bias, const float* dout,
                         const float* inp, int in, int out) {
    input_grad(dinp, weight, dout, in, out);
    const auto [c0, c1] = col(in);
    if (out >= in) {  // dout (N, out) is the larger: split the rows of dweight, packing inp whole
      const auto [o0, o1] = out_rows(out);
      linear_backward_weight_block(mm, g + weight, dout, inp, BT, in, out, int(o0), int(o1), 0, in,
                                   beta_w);
    } else {
      linear_backward_weight_block(mm, g + weight, dout, inp, BT, in, out, 0, out, int(c0), int(c1),
                                   beta_w);
    }
    if (bias == kAbsent) return;
    const auto [b0, b1] = col(out);
    linear_backward_bias_columns(g + bias, dout, BT, out, int(b0), int(b1));
  };
  // the output projection: logits = lnf @ lm_head^T (lm_head is wte if tied)
  {
    input_grad(a.dnarrow_, lm_head_, dlogits, C, V);
    const auto [v0, v1] = out_rows(V);
    linear_backward_weight_block(mm, g + lm_head_, dlogits, a.lnf_, BT, C, V, int(v0), int(v1), 0,
                                 C, beta_w);
  }
  w.sync();
  norm_back(lnfw_, lnfb_, a.dnarrow_, x_last, a.lnf_mean_, a.lnf_rstd_);
  w.sync();

  // dres_ holds d(loss)/d(residual stream) at the output of the block being walked back through.
  for (int l = cfg_.n_layer - 1; l >= 0; --l) {
    const LayerOffsets& o = layer_[l];
    Activations::Layer& A = a.layers_[l];
    const float* x_in = l ? a.layers_[l - 1].res3 : a.encoded_;
    // MLP: res3 = res2 + proj(act(fc(norm_2(res2)))). act(fch) and norm_2(res2) are computed
    // again (into free scratch) as forward computed them, then used as forward's would be.
    float* fcg = a.dwide_b_;
    const auto [e0, e1] = elements(w, long(BT) * F);
    if (cfg_.mlp == Mlp::kGelu)
      gelu_forward(fcg + e0, A.fch + e0, e1 - e0);
    else
      swiglu_forward(rows(fcg, F), rows(A.fch, FC), nrows, F);
    w.sync();
    linear_back(a.dwide_a_, o.fcprojw, o.fcprojb, a.dres_, fcg, F, C);
    w.sync();
    if (cfg_.mlp == Mlp::kGelu) {
      gelu_backward(a.dwide_b_ + e0, A.fch + e0, a.dwide_a_ + e0, e1 - e0);
    } else {
      swiglu_backward(rows(a.dwide_b_, FC), rows(A.fch, FC), rows(a.dwide_a_, F), nrows, F);
    }
    w.sync();
    float* ln2 = a.dwide_a_;
    norm_again(ln2, A.ln2_mean, A.ln2_rstd, A.res2, o.ln2w, o.ln2b);
    w.sync();
    linear_back(a.dnarrow_, o.fcw, o.fcb, a.dwide_b_, ln2, C, FC);
    w.sync();
    // the skip path carries dres_ through unchanged; norm_2 adds its share
    norm_back(o.ln2w, o.ln2b, a.dnarrow_, A.res2, A.ln2_mean, A.ln2_rstd);
    w.sync();
    // attention: res2 = x_in + proj(attn(rope(qkv(norm_1(x_in)))))
    linear_back(a.dnarrow_, o.projw, o.projb, a.dres_, A.atty, C, C);
    const auto [z0, z1] = elements(w, long(BT) * QKV);
    std::fill(a.dwide_a_ + z0, a.dwide_a_ + z1, 0.0f);
    w.sync();
    attention_backward_tasks(mm, a.dwide_a_, scratch, a.dnarrow_, A.qkv, A.att_stats, T, heads,
                             int(h0), int(h1));
    if (rotary) {  // dq and dk turn back, by rows
      w.sync();
      rope_backward(a.dwide_a_, rope_.data(), r0, r1, T, heads.q + heads.kv, heads.size, QKV);
    }
    float* ln1 = a.dwide_b_;
    norm_again(ln1, A.ln1_mean, A.ln1_rstd, x_in, o.ln1w, o.ln1b);
    w.sync();
    linear_back(a.dnarrow_, o.qkvw, o.qkvb, a.dwide_a_, ln1, C, QKV);
    w.sync();
    norm_back(o.ln1w, o.ln1b, a.dnarrow_, x_in, A.ln1_mean, A.ln1_rstd);
    w.sync();
  }
  encoder_backward_channels(g + wte_, wpe_ == kAbsent ? nullptr : g + wpe_, a.dres_,
                            a.tokens_.data(), B, T, C, int(ch0), int(ch1));
  w.sync();
}

}  // namespace skein
