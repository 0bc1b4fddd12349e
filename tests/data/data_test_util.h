// Helpers for the data tests: a temporary directory removed at scope end, raw file writing, and
// synthetic shards.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/rng.h"
#include "data/shard.h"

namespace skein::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "skein_data_XXXXXX").string();
    SKEIN_CHECK(::mkdtemp(tmpl.data()) != nullptr, "mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  SKEIN_CHECK(f.good(), "writing a test file failed");
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// n tokens below vocab from a seeded stream.
inline std::vector<uint16_t> random_tokens(size_t n, int vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<uint16_t> t(n);
  for (auto& x : t) x = static_cast<uint16_t>(rng.below(vocab));
  return t;
}

// Tokens 0, 1, 2, ... (mod 65536) starting at `first`: every window's position is readable
// from its first token.
inline std::vector<uint16_t> counting_tokens(size_t n, uint32_t first = 0) {
  std::vector<uint16_t> t(n);
  for (size_t i = 0; i < n; ++i) t[i] = static_cast<uint16_t>(first + i);
  return t;
}

inline std::string make_shard(const TempDir& dir, const std::string& name,
                              const std::vector<uint16_t>& tokens) {
  const std::string path = dir.file(name);
  Status s = write_shard(path, tokens);
  SKEIN_CHECK(s.ok(), "writing a test shard failed");
  return path;
}

// A raw shard header with the given fields, for corrupt-file tests.
inline std::string raw_header(int32_t magic, int32_t version, int32_t count) {
  std::string h(kShardHeaderBytes, '\0');
  const int32_t fields[3] = {magic, version, count};
  for (int f = 0; f < 3; ++f) {
    for (int i = 0; i < 4; ++i) h[4 * f + i] = static_cast<char>(uint32_t(fields[f]) >> (8 * i));
  }
  return h;
}

}  // namespace skein::testing
