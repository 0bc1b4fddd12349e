// Single-thread fp32 FMA peak of this machine, measured with a loop of independent FMA chains in
// the widest vector unit the build targets (AVX-512, else AVX2+FMA, else scalar).
#pragma once

namespace skein {

// FLOPs per second (an FMA counts 2) of one thread, best of `repeats` timed runs.
double measure_fma_peak(int repeats = 5, long iters = 20'000'000);

// Runs fma_peak_loop for `iters` iterations; returns FLOPs done (value kept alive in *sink).
double fma_peak_loop(long iters, float* sink);

}  // namespace skein
