// Residual add.
#pragma once

namespace skein {

// a (n), b (n) -> out (n) = a + b
template <typename F>
void residual_forward(F* out, const F* a, const F* b, long n);

// dout (n) -> da (n) +=, db (n) +=
template <typename F>
void residual_backward(F* da, F* db, const F* dout, long n);

}  // namespace skein
