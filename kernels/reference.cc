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
  gqa_attention_forward(out, qkv, B, T, NH, NH, C / NH);
}

void gqa_attention_forward(double* out, const double* qkv, int B, int T, int NH, int NKV, int HS) {
  const int C = NH * HS, W = (NH + 2 * NKV) * HS;
  std::vector<double> w(T);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h) {
      const int g = h / (NH / NKV);  // the key/value head this query head reads
      for (int t = 0; t < T; ++t) {
        const double* q = qkv + (b * T + t) * W + h * HS;
        double mx = -INFINITY;
        for (int j = 0; j <= t; ++j) {
          const double* k = qkv + (b * T + j) * W + C + g * HS;
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
            acc += std::exp(w[j] - mx) / z * qkv[(b * T + j) * W + C + NKV * HS + g * HS + d];
          out[(b * T + t) * C + h * HS + d] = acc;
        }
      }
    }
}

void rmsnorm_forward(double* out, const double* inp, const double* weight, int N, int C,
                     double eps) {
  for (int i = 0; i < N; ++i) {
    double ms = 0;
    for (int c = 0; c < C; ++c) ms += inp[i * C + c] * inp[i * C + c];
    const double s = 1.0 / std::sqrt(ms / C + eps);
    for (int c = 0; c < C; ++c) out[i * C + c] = inp[i * C + c] * s * weight[c];
  }
}

void rope_forward(double* out, const double* inp, int B, int T, int heads, int HS, int stride,
                  double theta) {
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t) {
      const long row = (long(b) * T + t) * stride;
      for (int c = 0; c < stride; ++c) out[row + c] = inp[row + c];
      for (int h = 0; h < heads; ++h)
        for (int i = 0; i < HS / 2; ++i) {
          // Hugging Face's rotate_half: x * cos + rotate_half(x) * sin, rotate_half(x) =
          // [-x2, x1] for the halves x1, x2 of the head
          const double angle = t / std::pow(theta, 2.0 * i / HS);
          const double x1 = inp[row + h * HS + i], x2 = inp[row + h * HS + HS / 2 + i];
          out[row + h * HS + i] = x1 * std::cos(angle) - x2 * std::sin(angle);
          out[row + h * HS + HS / 2 + i] = x2 * std::cos(angle) + x1 * std::sin(angle);
        }
    }
}

void swiglu_forward(double* out, const double* inp, long N, int F) {
  for (long r = 0; r < N; ++r)
    for (int i = 0; i < F; ++i) {
      const double g = inp[r * 2 * F + i], u = inp[r * 2 * F + F + i];
      out[r * F + i] = g / (1.0 + std::exp(-g)) * u;
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
