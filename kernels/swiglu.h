// SwiGLU, the gated MLP activation of Llama: out = silu(gate) * up, silu(g) = g / (1 + e^-g).
// Each input row holds [gate | up], F channels each (the fused gate_up projection's output).
#pragma once

namespace skein {

// inp (N, 2F) -> out (N, F)
template <typename F>
void swiglu_forward(F* out, const F* inp, long N, int Fd);

// dout (N, F) -> dinp (N, 2F), written (not added to); dinp overlaps no input.
template <typename F>
void swiglu_backward(F* dinp, const F* inp, const F* dout, long N, int Fd);

}  // namespace skein
