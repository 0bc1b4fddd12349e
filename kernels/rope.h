// Rotary position embeddings (RoPE) on the query and key heads of a qkv buffer, in the Hugging
// Face layout: inside each head of HS channels, channel i pairs with channel i + HS/2 (not the
// interleaved pairs 2i, 2i+1 of Meta's and GGUF's checkpoints), and the pair at position t turns
// by the angle t * theta^(-2i/HS).
#pragma once

namespace skein {

// table (T, HS/2, 2): (cos, sin) of each position's and pair's angle, computed in double and
// rounded. HS even.
template <typename F>
void rope_table(F* table, int T, int HS, double theta);

// x: rows of `stride` floats whose first `heads` heads of HS channels turn (q and k in a qkv row);
// rows [row_begin, row_end) of a buffer of sequences of T rows, so that row r is position r % T.
// In place.
template <typename F>
void rope_forward(F* x, const F* table, long row_begin, long row_end, int T, int heads, int HS,
                  int stride);

// The gradient through rope_forward: the inverse (transposed) turn of dy, in place.
template <typename F>
void rope_backward(F* dx, const F* table, long row_begin, long row_end, int T, int heads, int HS,
                   int stride);

}  // namespace skein
