#include "kernels/encoder.h"

namespace skein {

template <typename F>
void encoder_forward_rows(F* out, const int32_t* tokens, const F* wte, const F* wpe, int T, int C,
                          long row_begin, long row_end) {
  for (long r = row_begin; r < row_end; ++r) {
    F* o = out + r * C;
    const F* e = wte + static_cast<long>(tokens[r]) * C;
    if (wpe == nullptr) {
      for (int c = 0; c < C; ++c) o[c] = e[c];
      continue;
    }
    const F* p = wpe + (r % T) * C;
    for (int c = 0; c < C; ++c) o[c] = e[c] + p[c];
  }
}

template <typename F>
void encoder_forward(F* out, const int32_t* tokens, const F* wte, const F* wpe, int B, int T,
                     int C) {
  encoder_forward_rows(out, tokens, wte, wpe, T, C, 0, static_cast<long>(B) * T);
}

template <typename F>
void encoder_backward_channels(F* dwte, F* dwpe, const F* dout, const int32_t* tokens, int B, int T,
                               int C, int c_begin, int c_end) {
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < T; ++t) {
      const F* d = dout + (static_cast<long>(b) * T + t) * C;
      F* de = dwte + static_cast<long>(tokens[b * T + t]) * C;
      if (dwpe == nullptr) {
        for (int c = c_begin; c < c_end; ++c) de[c] += d[c];
        continue;
      }
      F* dp = dwpe + static_cast<long>(t) * C;
      for (int c = c_begin; c < c_end; ++c) {
        de[c] += d[c];
        dp[c] += d[c];
      }
    }
  }
}

template <typename F>
void encoder_backward(F* dwte, F* dwpe, const F* dout, const int32_t* tokens, int B, int T, int C) {
  encoder_backward_channels(dwte, dwpe, dout, tokens, B, T, C, 0, C);
}

template void encoder_forward<float>(float*, const int32_t*, const float*, const float*, int, int,
                                     int);
template void encoder_forward<double>(double*, const int32_t*, const double*, const double*, int,
                                      int, int);
template void encoder_forward_rows<float>(float*, const int32_t*, const float*, const float*, int,
                                          int, long, long);
template void encoder_forward_rows<double>(double*, const int32_t*, const double*, const double*,
                                           int, int, long, long);
template void encoder_backward_channels<float>(float*, float*, const float*, const int32_t*, int,
                                               int, int, int, int);
template void encoder_backward_channels<double>(double*, double*, const double*, const int32_t*,
                                                int, int, int, int, int);
template void encoder_backward<float>(float*, float*, const float*, const int32_t*, int, int, int);
template void encoder_backward<double>(double*, double*, const double*, const int32_t*, int, int,
                                       int);

}  // namespace skein
