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
void gelu_forward(double* out, const double* inp, long n);
void residual_forward(double* out, const double* a, const double* b, long n);
// Returns the mean loss over non-ignored targets; probs (N,V).
double softmax_crossentropy_forward(double* probs, const double* logits, const int32_t* targets,
                                    int N, int V);

}  // namespace skein::ref
