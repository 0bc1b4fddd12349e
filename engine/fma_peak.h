// Single-thread fp32 FMA peak of this machine, measured with a loop of independent FMA chains in
// the widest vector unit the CPU has (AVX-512, else AVX2+FMA, else scalar), chosen at run time, so
// a portable build (SKEIN_NATIVE=OFF) measures the same peak as a native one.
#pragma once

namespace skein {

// FLOPs per second (an FMA counts 2) of one thread, best of `repeats` timed runs. Each run is
// timed in the thread's own CPU time, so a run that another process preempts (a shared machine)
// does not lower the figure.
double measure_fma_peak(int repeats = 5, long iters = 20'000'000);

// Runs the FMA loop for `iters` iterations; returns FLOPs done (value kept alive in *sink).
double fma_peak_loop(long iters, float* sink);

// "avx512", "avx2+fma" or "scalar": the unit fma_peak_loop measures on this CPU.
const char* fma_peak_unit();

}  // namespace skein
