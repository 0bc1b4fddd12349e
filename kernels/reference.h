// Naive reference forwards, in double: the oracles that the optimised kernels are tested against
// (backwards are checked against finite differences instead). Written for obviousness, not speed;
// the same shape contracts as the real kernels.
#pragma once

#include <cstdint>

namespace skein::ref {

void encoder_forward(double* out, const int32_t* tokens, const double* wte, const double* wpe,
                     int B, int T, int C);
void layernorm_forward(double* out, const double* inp, const double* weight, const double* bias,
                       int N, int C);
void linear_forward(double* out, const double* inp, const double* weight, const double* bias, int N,
                    int C, int OC);
void attention_forward(double* out, const double* qkv, int B, int T, int C, int NH);
// qkv rows [q (NH*HS) | k (NKV*HS) | v (NKV*HS)] -> out (B,T,NH*HS)
void gqa_attention_forward(double* out, const double* qkv, int B, int T, int NH, int NKV, int HS);
void rmsnorm_forward(double* out, const double* inp, const double* weight, int N, int C,
                     double eps);
// rows of `stride` values, the first `heads` heads of HS turned by position t of each sequence
void rope_forward(double* out, const double* inp, int B, int T, int heads, int HS, int stride,
                  double theta);
// inp (N, 2F) rows [gate | up] -> out (N, F)
void swiglu_forward(double* out, const double* inp, long N, int F);
void gelu_forward(double* out, const double* inp, long n);
void residual_forward(double* out, const double* a, const double* b, long n);
// Returns the mean loss over non-ignored targets; probs (N,V).
double softmax_crossentropy_forward(double* probs, const double* logits, const int32_t* targets,
                                    int N, int V);

}  // namespace skein::ref
