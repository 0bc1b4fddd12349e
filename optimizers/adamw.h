// AdamW (Loshchilov & Hutter) with bias correction and decoupled weight decay, PyTorch's
// semantics. Works on one contiguous range so a thread can own a shard of the parameters.
#pragma once

namespace skein {

struct AdamWHyper {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;  // decoupled; applied only where decay == true
};

// p, g, m, v: n floats each; m and v start at zero. step is the 1-based number of this update.
// The gradient used is g * grad_scale (grad_scale carries global-norm clipping).
void adamw_update(float* p, const float* g, float* m, float* v, long n, const AdamWHyper& h,
                  long step, bool decay, float grad_scale);

}  // namespace skein
