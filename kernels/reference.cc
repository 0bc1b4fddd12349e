#include "kernels/reference.h"

#include <cmath>
#include <vector>

namespace skein::ref {

void encoder_forward(double* out, const int32_t* tokens, const double* wte, const double* wpe,
                     int B, int T, int C) {
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t)
      for (int c = 0; c < C; ++c)
        out[(b * T + t) * C + c] = wte[tokens[b * T + t] * C + c] + wpe[t * C + c];
}

void layernorm_forward(double* out, const double* inp, const double* weight, const double* bias,
                       int N, int C) {
  for (int i = 0; i < N; ++i) {
    double sum = 0, sumsq = 0;
    for (int c = 0; c < C; ++c) sum += inp[i * C + c];
    double mean = sum / C;
    for (int c = 0; c < C; ++c) sumsq += std::pow(inp[i * C + c] - mean, 2);
    double sd = std::sqrt(sumsq / C + 1e-5);
    for (int c = 0; c < C; ++c) out[i * C + c] = (inp[i * C + c] - mean) / sd * weight[c] + bias[c];
  }
}

void linear_forward(double* out, const double* inp, const double* weight, const double* bias, int N,
                    int C, int OC) {
  for (int i = 0; i < N; ++i)
    for (int o = 0; o < OC; ++o) {
      double acc = bias ? bias[o] : 0.0;
      for (int c = 0; c < C; ++c) acc += inp[i * C + c] * weight[o * C + c];
      out[i * OC + o] = acc;
    }
}

void attention_forward(double* out, const double* qkv, int B, int T, int C, int NH) {
  const int HS = C / NH;
  std::vector<double> w(T);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h)
      for (int t = 0; t < T; ++t) {
        const double* q = qkv + (b * T + t) * 3 * C + h * HS;
        double mx = -INFINITY;
        for (int j = 0; j <= t; ++j) {
          const double* k = qkv + (b * T + j) * 3 * C + C + h * HS;
          double s = 0;
          for (int d = 0; d < HS; ++d) s += q[d] * k[d];
          w[j] = s / std::sqrt(double(HS));
          mx = std::max(mx, w[j]);
        }
        double z = 0;
        for (int j = 0; j <= t; ++j) z += std::exp(w[j] - mx);
        for (int d = 0; d < HS; ++d) {
          double acc = 0;
          for (int j = 0; j <= t; ++j)
            acc += std::exp(w[j] - mx) / z * qkv[(b * T + j) * 3 * C + 2 * C + h * HS + d];
          out[(b * T + t) * C + h * HS + d] = acc;
        }
      }
}

void gelu_forward(double* out, const double* inp, long n) {
  const double k = std::sqrt(2.0 / M_PI);
  for (long i = 0; i < n; ++i) {
    double x = inp[i];
    out[i] = 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
  }
}

void residual_forward(double* out, const double* a, const double* b, long n) {
  for (long i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

double softmax_crossentropy_forward(double* probs, const double* logits, const int32_t* targets,
                                    int N, int V) {
  double total = 0;
  int count = 0;
  for (int i = 0; i < N; ++i) {
    double mx = -INFINITY;
    for (int v = 0; v < V; ++v) mx = std::max(mx, logits[i * V + v]);
    double z = 0;
    for (int v = 0; v < V; ++v) z += std::exp(logits[i * V + v] - mx);
    for (int v = 0; v < V; ++v) probs[i * V + v] = std::exp(logits[i * V + v] - mx) / z;
    if (targets[i] < 0) continue;
    total += -std::log(probs[i * V + targets[i]]);
    ++count;
  }
  return count ? total / count : 0.0;
}

}  // namespace skein::ref
