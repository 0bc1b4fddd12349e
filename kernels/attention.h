// Causal multi-head self-attention (the part after the qkv projection and before the output
// projection). Dimensions: B batch, T sequence, C channels, NH heads, HS = C / NH head size.
// qkv rows hold [q | k | v], each C wide, heads contiguous inside (PyTorch's view(B,T,NH,HS)).
#pragma once

#include "kernels/gemm.h"

namespace skein {

// mm: the products' precision and kernel (ignored for double); the overloads without it compute
// in fp32.

// qkv (B,T,3C) -> out (B,T,C); att (B,NH,T,T) keeps the softmax probabilities for backward
// (row t holds weights for keys 0..t; entries above the diagonal are written as 0).
template <typename F>
void attention_forward(const MatmulContext& mm, F* out, F* att, const F* qkv, int B, int T, int C,
                       int NH);
template <typename F>
void attention_forward(F* out, F* att, const F* qkv, int B, int T, int C, int NH) {
  attention_forward(MatmulContext{}, out, att, qkv, B, T, C, NH);
}

// dout (B,T,C) -> dqkv (B,T,3C) +=. scratch: T*T elements, overwritten.
template <typename F>
void attention_backward(const MatmulContext& mm, F* dqkv, F* scratch, const F* dout, const F* qkv,
                        const F* att, int B, int T, int C, int NH);
template <typename F>
void attention_backward(F* dqkv, F* scratch, const F* dout, const F* qkv, const F* att, int B,
                        int T, int C, int NH) {
  attention_backward(MatmulContext{}, dqkv, scratch, dout, qkv, att, B, T, C, NH);
}

}  // namespace skein
