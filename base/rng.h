// Deterministic random numbers. Two flavours:
//  - Rng: a sequential stream (splitmix64) for initialisation, seeded once.
//  - mix64(): a stateless counter hash, so that "random value number i of step s" is a pure
//    function of (seed, s, i) — what the data loader needs for exact resume.
// Both are fully specified here, so results never depend on the standard library's engines.
#pragma once

#include <cmath>
#include <cstdint>

namespace skein {

// splitmix64 finaliser: a bijective 64-bit mixer with good avalanche.
constexpr uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Hash of several counters, order-sensitive.
constexpr uint64_t mix64(uint64_t a, uint64_t b) {
  return mix64(mix64(a) ^ (b * 0xD1B54A32D192ED03ull));
}
constexpr uint64_t mix64(uint64_t a, uint64_t b, uint64_t c) {
  return mix64(mix64(a, b), c);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t next_u64() {
    state_ += 0x9E3779B97F4A7C15ull;
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  // Uniform integer in [0, n), n > 0 (multiply-shift; bias < 2^-32 for n < 2^32).
  uint64_t below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next_u64()) * n) >> 64);
  }
  // Standard normal by Box-Muller; one value per call (the pair's second half is dropped so
  // that the stream position is a simple function of the number of calls).
  double normal() {
    double u1 = uniform();
    double u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

  uint64_t state() const { return state_; }
  void set_state(uint64_t s) { state_ = s; }

 private:
  uint64_t state_;
};

}  // namespace skein
