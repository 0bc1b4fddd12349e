// SGD with momentum and Nesterov, PyTorch's semantics (dampening 0, L2 weight decay added to the
// gradient). Works on one contiguous range so a thread can own a shard of the parameters.
#pragma once

namespace skein {

struct SgdHyper {
  float lr = 0.01f;
  float momentum = 0.0f;      // 0 = plain SGD, no buffer used
  bool nesterov = false;      // requires momentum > 0
  float weight_decay = 0.0f;  // L2, applied only where decay == true
};

// p, g, momentum_buf: n floats each (momentum_buf starts at zero; unused when momentum == 0).
// The gradient used is g * grad_scale (grad_scale carries global-norm clipping).
void sgd_update(float* p, const float* g, float* momentum_buf, long n, const SgdHyper& h,
                bool decay, float grad_scale);

}  // namespace skein
