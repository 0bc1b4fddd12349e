// A decoder-only transformer described by a GptConfig: token embedding (plus a learned position
// embedding, or rotary embeddings inside attention), n_layer pre-norm blocks (causal attention
// with NH query heads and n_kv_head key/value heads, an MLP), a final norm and the output
// projection (tied to the token embedding, or its own matrix). GPT-2: LayerNorm, learned
// positions, GELU MLP of width 4C, biases, tied. Llama: RMSNorm, rotary, SwiGLU, no biases.
// Dimensions: B batch, T sequence (<= seq_len), C = d_model, V vocab, L layers, NH heads,
// HS = C / NH head size, NKV key/value heads, F MLP width.
//
// All parameters live in one contiguous float buffer; each tensor is a named view into it
// (PyTorch's [out, in] layout for linear weights). Gradient buffers and optimizer state use the
// same layout, so a shard of any of them is just an index range.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/aligned.h"
#include "base/spin_barrier.h"
#include "kernels/gemm.h"

namespace skein {

enum class Arch { kGpt2, kLlama };  // the family: its tensor names and formats
enum class Norm { kLayerNorm, kRmsNorm };
enum class Position { kLearned, kRotary };
enum class Mlp { kGelu, kSwiGlu };  // GELU(fc(x)); silu(gate(x)) * up(x)

// The model's description, read by the forward, the backward, the generator, the memory report
// and the FLOP count. The defaults are GPT-2's blocks; llama_blocks() sets Llama's.
struct GptConfig {
  int vocab_size = 256;
  int seq_len = 256;  // maximum T (rows of the position embedding, the rotary table)
  int n_layer = 6;
  int n_head = 6;
  int d_model = 384;
  Arch arch = Arch::kGpt2;
  Norm norm = Norm::kLayerNorm;
  Position position = Position::kLearned;
  Mlp mlp = Mlp::kGelu;
  bool biases = true;  // the linear layers' (and LayerNorms') biases
  bool tied = true;    // the output projection is the token embedding
  int n_kv_head = 0;   // 0: n_head (multi-head attention)
  int ffn_dim = 0;     // F; 0: 4 d_model
  double rope_theta = 10000;
  double norm_eps = 1e-5;  // RMSNorm's; LayerNorm's is kLayerNormEps

  int kv_heads() const { return n_kv_head > 0 ? n_kv_head : n_head; }
  int head_size() const { return d_model / n_head; }
  int ffn() const { return ffn_dim > 0 ? ffn_dim : 4 * d_model; }
  int qkv_width() const { return (n_head + 2 * kv_heads()) * head_size(); }
  // the MLP's first product's outputs: F, or [gate | up] 2F
  int fc_width() const { return mlp == Mlp::kSwiGlu ? 2 * ffn() : ffn(); }
};

// cfg with Llama's blocks (arch, RMSNorm, rotary, SwiGLU, no biases); head counts, F, tying
// and the constants stay as cfg has them.
GptConfig llama_blocks(GptConfig cfg);

// Floating-point operations of training per token (forward and backward) at sequence length T:
// 6 per weight of every product, and attention's 12 L C T (the PaLM paper's count).
double training_flops_per_token(const GptConfig& cfg, int T);

// The weights that the products multiply by: every block matrix and the output projection's
// V x C (the embeddings are looked up, not multiplied; so an untied model's table is not here).
double matmul_weights(const GptConfig& cfg);

// How a tensor starts (Model::init): N(0, init_std), or all ones, or all zeros.
enum class Init { kNormal, kOnes, kZeros };

struct TensorView {
  std::string name;
  size_t offset = 0;  // in floats, from the start of the parameter buffer
  size_t size = 0;    // number of floats
  std::vector<int> shape;
  bool decay = false;  // weight decay applies (matrices and embeddings, not biases or norms)
  Init init = Init::kZeros;
  double init_std = 0;  // of Init::kNormal
};

// The threads that run one forward or backward together (run.threads_per_replica): each calls
// it with the same Activations and its own index. Every operation is cut among them along an
// output dimension (rows, columns, heads, channels; never along a sum), with a barrier of theirs
// between operations, so the result has the same bits for any count. The default is one thread.
struct Workers {
  int index = 0, count = 1;
  SpinBarrier* barrier = nullptr;  // of the count threads; unused when count is 1

  void sync() const {
    if (count > 1) barrier->arrive_and_wait();
  }
  // This worker's part [first, second) of n items, cut at multiples of align.
  std::pair<long, long> share(long n, long align = 1) const {
    const long units = (n + align - 1) / align;
    return {std::min(n, units * index / count * align),
            std::min(n, units * (index + 1) / count * align)};
  }
};

// Activation buffers for one (B, T): owned by one thread or one group of Workers (with a scratch
// area for each of them), reused every step.
class Activations {
 public:
  Activations(const GptConfig& cfg, int B, int T, int workers = 1);
  // The floats an Activations(cfg, B, T, workers) holds, without allocating them.
  static size_t floats_for(const GptConfig& cfg, int B, int T, int workers = 1);
  int B() const { return B_; }
  int T() const { return T_; }
  int workers() const { return workers_; }
  size_t num_floats() const { return buf_.size(); }

 private:
  friend class Model;
  enum class Mode { kAllocate, kMeasure };
  Activations(const GptConfig& cfg, int B, int T, int workers, Mode mode);
  size_t planned_floats_ = 0;
  struct Layer {
    // Kept: what backward needs and cannot recompute cheaply. The norms' and the MLP activation's
    // outputs are recomputed in backward from their inputs (an elementwise pass each, bit for bit
    // what forward computed), and attention keeps its softmax's row statistics
    // (attention_stats_size), not its T x T probabilities. qkv: after the rotary turn, if any;
    // fch: the MLP's first product (fc_width wide); ln*_mean: LayerNorm only.
    float *ln1_mean, *ln1_rstd, *qkv, *att_stats, *atty, *res2, *ln2_mean, *ln2_rstd, *fch, *res3;
  };
  int B_, T_, workers_;
  AlignedBuffer<float> buf_;
  std::vector<Layer> layers_;
  // logits_: backward overwrites them with their gradient; ce_stats_: the cross-entropy's softmax
  // statistics (kCrossEntropyStats per row), from which backward rebuilds the probabilities
  float *encoded_, *lnf_, *lnf_mean_, *lnf_rstd_, *logits_, *ce_stats_, *losses_;
  // scratch of forward (the LayerNorms' and GELU's outputs, the projections') and backward;
  // att_scratch_: one head's T x T scores twice, for each worker
  float *dres_, *dwide_a_, *dwide_b_, *dnarrow_, *att_scratch_;
  std::vector<int32_t> tokens_, targets_;
  int target_count_ = 0;
};

class Model {
 public:
  explicit Model(const GptConfig& cfg);
  // The parameter floats a Model(cfg) holds (padding included), without allocating them.
  static size_t num_params_for(const GptConfig& cfg);

  const GptConfig& config() const { return cfg_; }
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const TensorView& tensor(std::string_view name) const;  // checks that it exists
  size_t num_params() const { return params_.size(); }
  float* params() { return params_.data(); }
  const float* params() const { return params_.data(); }

  // Every tensor as its TensorView::init says, drawn from one seeded stream in tensor order.
  // GPT-2: weights and embeddings N(0, 0.02), the residual output projections (attn.c_proj,
  // mlp.c_proj) N(0, 0.02/sqrt(2 L)), biases 0, LayerNorm weights 1. Llama (as Hugging Face's
  // LlamaForCausalLM): every matrix N(0, 0.02), norm weights 1.
  void init(uint64_t seed);

  // tokens, targets (B,T) with B,T those of acts; target -1 = ignored.
  // Returns the mean cross-entropy over non-ignored targets (0 if there are none).
  // With several workers (at most acts.workers()) each calls it with the same arguments and gets
  // the same result; so for backward.
  float forward(Activations& acts, const int32_t* tokens, const int32_t* targets,
                const Workers& workers = {}) const;

  // d(loss_scale * mean loss)/d(params) into grads (same layout as params), from the activations
  // of the last forward with acts. It consumes them (the logits become their gradient, as
  // PyTorch frees its graph after a backward): one backward per forward. kAccumulate adds to grads;
  // kOverwrite ignores what grads held (anything, NaN included) and gives what kAccumulate gives on
  // a zeroed buffer (up to the sign of zeros), without reading the big matrices' old gradients or
  // needing them zeroed.
  enum class GradMode { kAccumulate, kOverwrite };
  void backward(Activations& acts, float* grads, float loss_scale = 1.0f,
                GradMode mode = GradMode::kAccumulate, const Workers& workers = {}) const;

  // The arithmetic of the matmuls in forward and backward (on whichever thread runs them);
  // kFp32 unless set. Set it before the threads start using the model.
  void set_matmul_precision(MatmulPrecision p) { precision_ = p; }
  MatmulPrecision matmul_precision() const { return precision_; }

  // Logits (B,T,V) of the last forward with acts, until a backward with acts (which overwrites
  // them with their gradient).
  const float* logits(const Activations& acts) const { return acts.logits_; }

  // Offsets (in floats) of one block's tensors; the same for params, grads and optimizer state.
  // kAbsent where the description has no such tensor (biases, LayerNorm's bias).
  static constexpr size_t kAbsent = ~size_t(0);
  struct LayerOffsets {
    size_t ln1w, ln1b, qkvw, qkvb, projw, projb, ln2w, ln2b, fcw, fcb, fcprojw, fcprojb;
  };
  const LayerOffsets& layer(int l) const { return layer_[l]; }
  // the token embedding, the position embedding (kAbsent if rotary), the final norm's weight and
  // bias (kAbsent for RMSNorm), the output projection (wte's offset if tied)
  size_t wte_offset() const { return wte_; }
  size_t wpe_offset() const { return wpe_; }
  size_t lnfw_offset() const { return lnfw_; }
  size_t lnfb_offset() const { return lnfb_; }
  size_t lm_head_offset() const { return lm_head_; }
  // (seq_len, HS/2, 2) cos, sin of the rotary turns (kernels/rope.h); empty without them
  const float* rope_table() const { return rope_.data(); }

 private:
  // Rows [r0, r0 + n) of the model's norm of inp (N, C) into out, their statistics into mean
  // (LayerNorm only) and rstd; weight and bias are parameter offsets.
  void norm_rows(float* out, float* mean, float* rstd, const float* inp, size_t weight, size_t bias,
                 long r0, int n) const;
  size_t add(const std::string& name, std::vector<int> shape, bool decay, Init init,
             double init_std = 0);
  size_t add_if(bool present, const std::string& name, std::vector<int> shape, bool decay,
                Init init) {
    return present ? add(name, std::move(shape), decay, init) : kAbsent;
  }
  // The tensor table and offsets only (num_params_for); no parameter buffer.
  struct LayoutOnly {};
  Model(const GptConfig& cfg, LayoutOnly);
  size_t layout_floats_ = 0;

  GptConfig cfg_;
  MatmulPrecision precision_ = MatmulPrecision::kFp32;
  std::vector<TensorView> tensors_;
  AlignedBuffer<float> params_;
  size_t wte_ = 0, wpe_ = kAbsent, lnfw_ = 0, lnfb_ = kAbsent, lm_head_ = 0;
  std::vector<float> rope_;
  std::vector<LayerOffsets> layer_;
  // (offset, size) of the tensors whose gradient backward adds up piece by piece (all but the
  // matrices, which one product writes whole): zeroed first in GradMode::kOverwrite.
  std::vector<std::pair<size_t, size_t>> accumulated_;
};

}  // namespace skein
