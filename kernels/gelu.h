// GELU, tanh approximation: y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
#pragma once

namespace skein {

// inp (n) -> out (n)
template <typename F>
void gelu_forward(F* out, const F* inp, long n);

// dout (n) -> dinp (n), overwritten (the model's only use wrote it into a zeroed buffer, a pass
// over memory of its own)
template <typename F>
void gelu_backward(F* dinp, const F* inp, const F* dout, long n);

}  // namespace skein
