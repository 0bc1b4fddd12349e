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

float Model::forward(Activations& a, const int32_t* tokens, const int32_t* targets,
                     const Workers& w) const {
  const int B = a.B_, T = a.T_, C = cfg_.d_model, V = cfg_.vocab_size, NH = cfg_.n_head;
  const int BT = B * T;
  const float* p = params_.data();
  const MatmulContext mm{precision_};
  SKEIN_CHECK(w.count <= a.workers_, "more workers than the activations have scratch for");
  float* scratch = a.att_scratch_ + size_t(2) * T * T * w.index;
  const std::pair<long, long> row_range = w.share(BT);
  const long r0 = row_range.first, r1 = row_range.second;  // rows (lambdas capture them)
  const auto [h0, h1] = w.share(long(B) * NH);             // (sequence, head) pairs
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
  std::copy(tokens + r0, tokens + r1, a.tokens_.data() + r0);
  std::copy(targets + r0, targets + r1, a.targets_.data() + r0);
  const int count = count_targets(targets, BT);
  if (w.index == 0) a.target_count_ = count;  // read by backward, after barriers

  encoder_forward_rows(a.encoded_, tokens, p + wte_, p + wpe_, T, C, r0, r1);
  const float* x = a.encoded_;  // residual stream entering the block
  for (int l = 0; l < cfg_.n_layer; ++l) {
    const LayerOffsets& o = layer_[l];
    Activations::Layer& A = a.layers_[l];
    // the LayerNorms' outputs in dres_, GELU's in dwide_a_, the projections' in dnarrow_: scratch
    float* ln = a.dres_;
    float* fcg = a.dwide_a_;
    // x's rows r0..r1 were written by this worker (encoder, residual): no barrier needed
    layernorm_forward(rows(ln, C), rows(A.ln1_mean, 1), rows(A.ln1_rstd, 1), x + r0 * C, p + o.ln1w,
                      p + o.ln1b, int(r1 - r0), C);
    w.sync();
    linear(A.qkv, ln, o.qkvw, p + o.qkvb, C, 3 * C);
    w.sync();
    attention_forward_tasks(mm, A.atty, A.att_stats, scratch, A.qkv, T, C, NH, h0, h1);
    w.sync();
    linear(a.dnarrow_, A.atty, o.projw, p + o.projb, C, C);
    w.sync();
    residual_forward(rows(A.res2, C), x + r0 * C, rows(a.dnarrow_, C), (r1 - r0) * C);
    layernorm_forward(rows(ln, C), rows(A.ln2_mean, 1), rows(A.ln2_rstd, 1), rows(A.res2, C),
                      p + o.ln2w, p + o.ln2b, int(r1 - r0), C);
    w.sync();
    linear(A.fch, ln, o.fcw, p + o.fcb, C, 4 * C);
    w.sync();
    const auto [e0, e1] = elements(w, long(BT) * 4 * C);
    gelu_forward(fcg + e0, A.fch + e0, e1 - e0);
    w.sync();
    linear(a.dnarrow_, fcg, o.fcprojw, p + o.fcprojb, 4 * C, C);
    w.sync();
    residual_forward(rows(A.res3, C), rows(A.res2, C), rows(a.dnarrow_, C), (r1 - r0) * C);
    x = A.res3;
  }
  layernorm_forward(rows(a.lnf_, C), rows(a.lnf_mean_, 1), rows(a.lnf_rstd_, 1), x + r0 * C,
                    p + lnfw_, p + lnfb_, int(r1 - r0), C);
  w.sync();
  linear(a.logits_, a.lnf_, wte_, nullptr, C, V);
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
  const int B = a.B_, T = a.T_, C = cfg_.d_model, V = cfg_.vocab_size, NH = cfg_.n_head;
  const int BT = B * T;
  const long nC = long(BT) * C;
  const float* p = params_.data();
  const bool overwrite = mode == GradMode::kOverwrite;
  const MatmulContext mm{precision_};
  SKEIN_CHECK(w.count <= a.workers_, "more workers than the activations have scratch for");
  float* scratch = a.att_scratch_ + size_t(2) * T * T * w.index;
  const std::pair<long, long> row_range = w.share(BT);
  const long r0 = row_range.first, r1 = row_range.second;  // rows (lambdas capture them)
  const auto [h0, h1] = w.share(long(B) * NH);
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
  // channels of the LayerNorms' parameter gradients (not a structured binding: lambdas use it)
  const std::pair<long, long> channels = w.share(C, 16);  // whole cache lines of dweight
  const long ch0 = channels.first, ch1 = channels.second;
  // one LayerNorm's backward: the input's gradient into dres_ by rows, the parameters' by channels
  auto layernorm_back = [&](size_t weight, size_t bias, const float* dout, const float* inp,
                            const float* mean, const float* rstd) {
    layernorm_backward_input(rows(a.dres_, C), dout + r0 * C, inp + r0 * C, p + weight, mean + r0,
                             rstd + r0, nrows, C);
    layernorm_backward_params(g + weight, g + bias, dout, inp, mean, rstd, BT, C, int(ch0),
                              int(ch1));
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
  // the smaller operand's packing), dbias by columns
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
    const auto [b0, b1] = col(out);
    linear_backward_bias_columns(g + bias, dout, BT, out, int(b0), int(b1));
  };
  // lm_head tied to wte: logits = lnf @ wte^T
  {
    input_grad(a.dnarrow_, wte_, dlogits, C, V);
    const auto [v0, v1] = out_rows(V);
    linear_backward_weight_block(mm, g + wte_, dlogits, a.lnf_, BT, C, V, int(v0), int(v1), 0, C,
                                 beta_w);
  }
  w.sync();
  layernorm_back(lnfw_, lnfb_, a.dnarrow_, x_last, a.lnf_mean_, a.lnf_rstd_);
  w.sync();

  // dres_ holds d(loss)/d(residual stream) at the output of the block being walked back through.
  for (int l = cfg_.n_layer - 1; l >= 0; --l) {
    const LayerOffsets& o = layer_[l];
    Activations::Layer& A = a.layers_[l];
    const float* x_in = l ? a.layers_[l - 1].res3 : a.encoded_;
    // MLP: res3 = res2 + c_proj(gelu(c_fc(ln_2(res2)))). gelu(fch) and ln_2(res2) are computed
    // again (into free scratch) as forward computed them, then used as forward's would be.
    float* fcg = a.dwide_b_;
    const auto [e0, e1] = elements(w, nC * 4);
    gelu_forward(fcg + e0, A.fch + e0, e1 - e0);
    w.sync();
    linear_back(a.dwide_a_, o.fcprojw, o.fcprojb, a.dres_, fcg, 4 * C, C);
    w.sync();
    std::fill(a.dwide_b_ + e0, a.dwide_b_ + e1, 0.0f);
    gelu_backward(a.dwide_b_ + e0, A.fch + e0, a.dwide_a_ + e0, e1 - e0);
    w.sync();
    float* ln2 = a.dwide_a_;
    layernorm_forward(rows(ln2, C), rows(A.ln2_mean, 1), rows(A.ln2_rstd, 1), rows(A.res2, C),
                      p + o.ln2w, p + o.ln2b, nrows, C);
    w.sync();
    linear_back(a.dnarrow_, o.fcw, o.fcb, a.dwide_b_, ln2, C, 4 * C);
    w.sync();
    // the skip path carries dres_ through unchanged; ln_2 adds its share
    layernorm_back(o.ln2w, o.ln2b, a.dnarrow_, A.res2, A.ln2_mean, A.ln2_rstd);
    w.sync();
    // attention: res2 = x_in + c_proj(attn(c_attn(ln_1(x_in))))
    linear_back(a.dnarrow_, o.projw, o.projb, a.dres_, A.atty, C, C);
    const auto [z0, z1] = elements(w, nC * 3);
    std::fill(a.dwide_a_ + z0, a.dwide_a_ + z1, 0.0f);
    w.sync();
    attention_backward_tasks(mm, a.dwide_a_, scratch, a.dnarrow_, A.qkv, A.att_stats, T, C, NH,
                             int(h0), int(h1));
    float* ln1 = a.dwide_b_;
    layernorm_forward(rows(ln1, C), rows(A.ln1_mean, 1), rows(A.ln1_rstd, 1), x_in + r0 * C,
                      p + o.ln1w, p + o.ln1b, nrows, C);
    w.sync();
    linear_back(a.dnarrow_, o.qkvw, o.qkvb, a.dwide_a_, ln1, C, 3 * C);
    w.sync();
    layernorm_back(o.ln1w, o.ln1b, a.dnarrow_, x_in, A.ln1_mean, A.ln1_rstd);
    w.sync();
  }
  encoder_backward_channels(g + wte_, g + wpe_, a.dres_, a.tokens_.data(), B, T, C, int(ch0),
                            int(ch1));
  w.sync();
}

}  // namespace skein
