// <immintrin.h> for all of skein: include this header, never <immintrin.h> itself.
//
// GCC 12's AVX-512 intrinsics (avx512fintrin.h) build their "undefined" operands with a
// self-initialised `__m512 __Y = __Y;`. Once Eigen's packet code or our own kernels inline them,
// -Wmaybe-uninitialized (-Wuninitialized in the sanitizer builds) fires inside that header (GCC
// bug 105593, fixed in GCC 13): the header
// is a system header, but GCC 12 does not exempt this late warning. Diagnostic pragmas apply by
// source location, so the region below silences the warning for the text of the intrinsics
// headers only (parsed here, inside it, for the first time in every translation unit); skein's
// own code, before and after, keeps both warnings. The compile-only ISA check
// (scripts/isa_check.sh) builds everything under -Werror for AVX2, AVX-512 and AVX-512-BF16
// targets (the last also with the sanitizers), so a translation unit that pulls <immintrin.h> in
// some other way first fails there.
#pragma once

// The region itself, for the other third-party headers that inline the intrinsics (Eigen):
// SKEIN_BEGIN_INTRINSICS_USERS, #include ..., SKEIN_END_INTRINSICS_USERS.
#if defined(__GNUC__) && !defined(__clang__)
#define SKEIN_BEGIN_INTRINSICS_USERS                                                         \
  _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"") \
      _Pragma("GCC diagnostic ignored \"-Wuninitialized\"")
#define SKEIN_END_INTRINSICS_USERS _Pragma("GCC diagnostic pop")
#else
#define SKEIN_BEGIN_INTRINSICS_USERS
#define SKEIN_END_INTRINSICS_USERS
#endif

#if defined(__x86_64__)
#if defined(__GNUC__) && !defined(__clang__) && defined(_IMMINTRIN_H_INCLUDED)
#error \
    "<immintrin.h> was included before kernels/intrinsics.h; include kernels/intrinsics.h (or kernels/eigen_maps.h) first"
#endif
SKEIN_BEGIN_INTRINSICS_USERS
#include <immintrin.h>
SKEIN_END_INTRINSICS_USERS
#endif
