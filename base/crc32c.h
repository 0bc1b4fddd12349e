// CRC-32C (Castagnoli), the checksum of every tensor in a checkpoint. Uses the SSE4.2 crc32
// instruction where the CPU has it (checked once), a table otherwise; both give the same value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace skein {

namespace detail {

inline const uint32_t* crc32c_table() {
  static const auto table = [] {
    static uint32_t t[256];
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
      t[i] = c;
    }
    return t;
  }();
  return table;
}

inline uint32_t crc32c_portable(uint32_t crc, const uint8_t* p, size_t n) {
  const uint32_t* t = crc32c_table();
  for (size_t i = 0; i < n; ++i) crc = t[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) inline uint32_t crc32c_sse42(uint32_t crc, const uint8_t* p,
                                                               size_t n) {
  uint64_t c = crc;
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  for (; n > 0; --n, ++p) c32 = __builtin_ia32_crc32qi(c32, *p);
  return c32;
}
#endif

}  // namespace detail

// CRC-32C of data[0..n), continuing from a previous value (0 to start).
inline uint32_t crc32c(const void* data, size_t n, uint32_t previous = 0) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint32_t crc = ~previous;
#if defined(__x86_64__)
  static const bool hw = __builtin_cpu_supports("sse4.2");
  crc = hw ? detail::crc32c_sse42(crc, p, n) : detail::crc32c_portable(crc, p, n);
#else
  crc = detail::crc32c_portable(crc, p, n);
#endif
  return ~crc;
}

}  // namespace skein
