// Shared by the libFuzzer targets: a scratch file per process for readers that take a path, and
// the checksum fix-ups that let half of the inputs past a reader's integrity check, so that the
// parsing behind it is fuzzed too (the other half fuzzes the check itself).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace skein::fuzz {

// A file of this process's own under $TMPDIR, rewritten with each input.
inline const std::string& scratch_path() {
  static const std::string path = [] {
    const char* tmp = std::getenv("TMPDIR");
    return std::string(tmp && *tmp ? tmp : "/tmp") + "/skein_fuzz_" + std::to_string(::getpid());
  }();
  return path;
}

inline void write_scratch(const uint8_t* data, size_t n) {
  std::FILE* f = std::fopen(scratch_path().c_str(), "wb");
  if (!f) std::abort();
  if (n && std::fwrite(data, 1, n, f) != n) std::abort();
  std::fclose(f);
}

inline void put_le64(uint64_t v, uint8_t* p) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

}  // namespace skein::fuzz
