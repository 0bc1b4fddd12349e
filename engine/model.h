// GPT: token + position embedding, n_layer pre-LayerNorm blocks (causal multi-head attention,
// GELU MLP of width 4C), final LayerNorm, lm_head tied to the token embedding.
// Dimensions: B batch, T sequence (<= seq_len), C = d_model, V vocab, L layers, NH heads.
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

struct GptConfig {
  int vocab_size = 256;
  int seq_len = 256;  // maximum T (rows of the position embedding)
  int n_layer = 6;
  int n_head = 6;
  int d_model = 384;
};

struct TensorView {
  std::string name;
  size_t offset = 0;  // in floats, from the start of the parameter buffer
  size_t size = 0;    // number of floats
  std::vector<int> shape;
  bool decay = false;  // weight decay applies (matrices and embeddings, not biases or LayerNorm)
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
    // Kept: what backward needs and cannot recompute cheaply. The LayerNorms' and GELU's outputs
    // are recomputed in backward from their inputs (an elementwise pass each, bit for bit what
    // forward computed), and attention keeps its softmax's row statistics (attention_stats_size),
    // not its T x T probabilities.
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

  // GPT-2 initialisation from a seeded stream: weights and embeddings N(0, 0.02), the residual
  // output projections (attn.c_proj, mlp.c_proj) N(0, 0.02/sqrt(2 L)), biases 0, LayerNorm
  // weights 1.
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

 private:
  // Offsets (in floats) of one block's tensors; the same for params, grads and optimizer state.
  struct LayerOffsets {
    size_t ln1w, ln1b, qkvw, qkvb, projw, projb, ln2w, ln2b, fcw, fcb, fcprojw, fcprojb;
  };
  size_t add(const std::string& name, std::vector<int> shape, bool decay);
  // The tensor table and offsets only (num_params_for); no parameter buffer.
  struct LayoutOnly {};
  Model(const GptConfig& cfg, LayoutOnly);
  size_t layout_floats_ = 0;

  GptConfig cfg_;
  MatmulPrecision precision_ = MatmulPrecision::kFp32;
  std::vector<TensorView> tensors_;
  AlignedBuffer<float> params_;
  size_t wte_ = 0, wpe_ = 0, lnfw_ = 0, lnfb_ = 0;
  std::vector<LayerOffsets> layer_;
  // (offset, size) of the tensors whose gradient backward adds up piece by piece (all but the
  // matrices, which one product writes whole): zeroed first in GradMode::kOverwrite.
  std::vector<std::pair<size_t, size_t>> accumulated_;
};

}  // namespace skein
