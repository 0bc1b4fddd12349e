// Causal multi-head self-attention (the part after the qkv projection and before the output
// projection). Dimensions: B batch, T sequence, C channels, NH heads, HS = C / NH head size.
// qkv rows hold [q | k | v], each C wide, heads contiguous inside (PyTorch's view(B,T,NH,HS)).
//
// Grouped-query attention (AttentionHeads with kv < q): qkv rows hold [q | k | v] with q of
// q * size channels and k, v of kv * size each; query head h reads key/value head h / (q / kv).
// With kv == q it is the multi-head attention above, computed the same way.
#pragma once

#include "kernels/gemm.h"

namespace skein {

struct AttentionHeads {
  int q = 1, kv = 1, size = 1;  // query heads, key/value heads (dividing q), channels per head
  int qkv_width() const { return (q + 2 * kv) * size; }
};

// mm: the products' precision and kernel (ignored for double); the overloads without it compute
// in fp32.

// The softmax statistics forward keeps for backward: for each (sequence, head, query row) the
// row's maximum score and 1/sum, 2 values. Backward rebuilds the probabilities from them and a
// second product q k^T, bit for bit what forward computed, instead of keeping B*NH*T*T of them
// (at T = 1024 that is 48 MB per layer and sequence; the statistics are 96 KB).
inline long attention_stats_size(int B, int T, int NH) {
  return 2L * B * NH * T;
}

// qkv (B,T,3C) -> out (B,T,C), stats (attention_stats_size). scratch: T*T elements, overwritten.
template <typename F>
void attention_forward(const MatmulContext& mm, F* out, F* stats, F* scratch, const F* qkv, int B,
                       int T, int C, int NH);
template <typename F>
void attention_forward(F* out, F* stats, F* scratch, const F* qkv, int B, int T, int C, int NH) {
  attention_forward(MatmulContext{}, out, stats, scratch, qkv, B, T, C, NH);
}

// The same with grouped-query heads: qkv (B,T,heads.qkv_width()) -> out (B,T,q*size).
template <typename F>
void attention_forward(const MatmulContext& mm, F* out, F* stats, F* scratch, const F* qkv, int B,
                       int T, AttentionHeads heads);

// The tasks b * heads.kv + g in [task_begin, task_end) of attention_forward only, for threads
// that share one forward: sequence b's query heads that read key/value head g (all heads of b
// in multi-head attention); each is computed as attention_forward computes it.
template <typename F>
void attention_forward_tasks(const MatmulContext& mm, F* out, F* stats, F* scratch, const F* qkv,
                             int T, AttentionHeads heads, int task_begin, int task_end);

// dout (B,T,C) -> dqkv (B,T,3C) +=, from qkv and the stats of the forward that made dout's out.
// scratch: 2*T*T elements, overwritten.
template <typename F>
void attention_backward(const MatmulContext& mm, F* dqkv, F* scratch, const F* dout, const F* qkv,
                        const F* stats, int B, int T, int C, int NH);
template <typename F>
void attention_backward(F* dqkv, F* scratch, const F* dout, const F* qkv, const F* stats, int B,
                        int T, int C, int NH) {
  attention_backward(MatmulContext{}, dqkv, scratch, dout, qkv, stats, B, T, C, NH);
}

// The same with grouped-query heads; dqkv (B,T,heads.qkv_width()) +=. A key/value head's
// gradient sums over its query heads in their order.
template <typename F>
void attention_backward(const MatmulContext& mm, F* dqkv, F* scratch, const F* dout, const F* qkv,
                        const F* stats, int B, int T, AttentionHeads heads);

// The tasks in [task_begin, task_end) of attention_backward only (see attention_forward_tasks:
// a task owns its key/value head's gradient, so tasks may run on different threads).
template <typename F>
void attention_backward_tasks(const MatmulContext& mm, F* dqkv, F* scratch, const F* dout,
                              const F* qkv, const F* stats, int T, AttentionHeads heads,
                              int task_begin, int task_end);

}  // namespace skein
