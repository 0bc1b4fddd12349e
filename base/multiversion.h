// SKEIN_MULTIVERSION: compile one hot loop for several x86-64 levels and run the best one that
// this CPU has, so that one portable binary (SKEIN_NATIVE=OFF) runs the elementwise and row loops
// at the speed of a -march=native build. GCC's target_clones: each clone is compiled for its
// level, and an ifunc resolver picks one per function when the program loads, the same for every
// thread for the whole run (a run's bits do not depend on the thread count).
//
//   x86-64-v4  AVX-512 F/BW/CD/DQ/VL: Skylake-SP, Ice Lake, Sapphire Rapids, AMD Zen 4 and 5
//   x86-64-v3  AVX2, FMA: Haswell and later, AMD Zen 1 to 3
//   default    the build's own baseline (x86-64: SSE2)
//
// flatten inlines every call in the function (lane_sum and its lambdas, exp_approx, the loop
// template) into each clone, so that all of it is compiled for the clone's level: a call left out
// of line would run baseline code.
//
// Results: a clone computes what the plain loop computes, operation for operation. The only
// difference is FMA: where the level has it (v3, v4), GCC contracts a * b + c into one fused
// operation, as it does in the native builds (-ffp-contract=fast is GCC's default for C++, also
// under -std=c++20). No reassociation: the explicit lanes of kernels/lane_reduce.h keep their
// order at any vector width.
//
// Where it expands to nothing (CMake defines SKEIN_MULTIVERSION_CLONES=0):
// - SKEIN_NATIVE=ON or SKEIN_MARCH: all the code is compiled for the CPU it is to run on;
// - ThreadSanitizer: it does not instrument 32-byte (AVX) loads and stores (scripts/test.sh);
// - clang: clang 14 refuses target_clones together with flatten, does not inline lane_sum into
//   the clones without it, and its resolver for arch=x86-64-v4/v3 compares one word of
//   __cpu_model with 0 and has no branch for v3 (seen in its output);
// - -DSKEIN_MULTIVERSION=OFF.
//
// Use it on a non-template float function. A kernel that is a template over float and double
// (double for the finite-difference checks) keeps its loop as the template, and adds a float
// overload that carries the macro and calls the template's float instance; an unqualified call
// then picks the overload for float (a non-template wins an exact match), the template for double:
//   template <typename F> void foo_rows(F* x, long n) { ... }
//   SKEIN_MULTIVERSION void foo_rows(float* x, long n) { foo_rows<float>(x, n); }
#pragma once

#if !defined(SKEIN_MULTIVERSION_CLONES)
#define SKEIN_MULTIVERSION_CLONES 0
#endif

#if SKEIN_MULTIVERSION_CLONES && defined(__x86_64__) && defined(__GNUC__) && \
    !defined(__clang__) && !defined(__SANITIZE_THREAD__)
#define SKEIN_MULTIVERSION \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), flatten))
#else
#define SKEIN_MULTIVERSION
#endif
