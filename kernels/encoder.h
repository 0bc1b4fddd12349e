// Token + position embedding.
// Dimensions: B batch, T sequence, C channels, V vocab. wpe and dwpe may be nullptr: a model
// without a learned position embedding (rotary), whose rows are the token embedding's alone.
#pragma once

#include <cstdint>

namespace skein {

// tokens (B,T) in [0,V), wte (V,C), wpe (>=T,C) -> out (B,T,C) = wte[token] + wpe[t]
template <typename F>
void encoder_forward(F* out, const int32_t* tokens, const F* wte, const F* wpe, int B, int T,
                     int C);

// Rows [row_begin, row_end) of the (B*T, C) output only: row r is position r % T of sequence
// r / T.
template <typename F>
void encoder_forward_rows(F* out, const int32_t* tokens, const F* wte, const F* wpe, int T, int C,
                          long row_begin, long row_end);

// dout (B,T,C) -> dwte (V,C) +=, dwpe (>=T,C) +=   (accumulates; rows of unused tokens untouched)
template <typename F>
void encoder_backward(F* dwte, F* dwpe, const F* dout, const int32_t* tokens, int B, int T, int C);

// Channels [c_begin, c_end) of every row of dwte and dwpe only, summed over (b, t) in order as
// encoder_backward does, so any split of the channels gives its bits.
template <typename F>
void encoder_backward_channels(F* dwte, F* dwpe, const F* dout, const int32_t* tokens, int B, int T,
                               int C, int c_begin, int c_end);

}  // namespace skein
