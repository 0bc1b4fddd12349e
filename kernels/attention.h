// Causal multi-head self-attention (the part after the qkv projection and before the output
// projection). Dimensions: B batch, T sequence, C channels, NH heads, HS = C / NH head size.
// qkv rows hold [q | k | v], each C wide, heads contiguous inside (PyTorch's view(B,T,NH,HS)).
#pragma once

namespace skein {

// qkv (B,T,3C) -> out (B,T,C); att (B,NH,T,T) keeps the softmax probabilities for backward
// (row t holds weights for keys 0..t; entries above the diagonal are written as 0).
template <typename F>
void attention_forward(F* out, F* att, const F* qkv, int B, int T, int C, int NH);

// dout (B,T,C) -> dqkv (B,T,3C) +=. scratch: T*T elements, overwritten.
template <typename F>
void attention_backward(F* dqkv, F* scratch, const F* dout, const F* qkv, const F* att, int B,
                        int T, int C, int NH);

}  // namespace skein
