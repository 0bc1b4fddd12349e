// Token + position embedding.
// Dimensions: B batch, T sequence, C channels, V vocab.
#pragma once

#include <cstdint>

namespace skein {

// tokens (B,T) in [0,V), wte (V,C), wpe (>=T,C) -> out (B,T,C) = wte[token] + wpe[t]
template <typename F>
void encoder_forward(F* out, const int32_t* tokens, const F* wte, const F* wpe, int B, int T,
                     int C);

// dout (B,T,C) -> dwte (V,C) +=, dwpe (>=T,C) +=   (accumulates; rows of unused tokens untouched)
template <typename F>
void encoder_backward(F* dwte, F* dwpe, const F* dout, const int32_t* tokens, int B, int T, int C);

}  // namespace skein
