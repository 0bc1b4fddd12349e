// Causal multi-head self-attention (the part after the qkv projection and before the output
// projection). Dimensions: B batch, T sequence, C channels, NH heads, HS = C / NH head size.
// qkv rows hold [q | k | v], each C wide, heads contiguous inside (PyTorch's view(B,T,NH,HS)).
#pragma once

#include "kernels/gemm.h"

namespace skein {

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

// The (sequence, head) pairs b * NH + h in [task_begin, task_end) of attention_forward only, for
// threads that share one forward; each pair is computed as attention_forward computes it.
template <typename F>
void attention_forward_tasks(const MatmulContext& mm, F* out, F* stats, F* scratch, const F* qkv,
                             int T, int C, int NH, int task_begin, int task_end);

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

// The (sequence, head) pairs in [task_begin, task_end) of attention_backward only (see
// attention_forward_tasks).
template <typename F>
void attention_backward_tasks(const MatmulContext& mm, F* dqkv, F* scratch, const F* dout,
                              const F* qkv, const F* stats, int T, int C, int NH, int task_begin,
                              int task_end);

}  // namespace skein
