// Byte-level tokenizers: every byte string, valid UTF-8 or not, encodes and decodes back to
// itself (decode(encode(x)) == x).
//
//  - byte: token id = byte value, vocabulary 256 (the default).
//  - BPE:  byte-level byte-pair encoding. Merge i joins tokens (left, right) into token 256 + i;
//          the merges are learned from a corpus by BpeTrainer (data/bpe_trainer.h). Text is first
//          cut into pieces (data/pretokenize.h); within a piece the merge with the lowest index
//          that applies is done first, then the next, until none applies.
//
// Saved as tokenizer.bin next to the shards, little endian:
//   int32 magic 20240607, int32 version 1, int32 kind (0 byte, 1 BPE), int32 vocab size,
//   int32 merge count M, 3 x int32 zero, M x (int32 left, int32 right),
//   uint64 FNV-1a hash of all the bytes before it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "data/flat_map.h"

namespace skein {

inline constexpr int32_t kTokenizerMagic = 20240607;
inline constexpr int32_t kTokenizerVersion = 1;

struct Merge {
  int32_t left = 0, right = 0;
  bool operator==(const Merge&) const = default;
};

class Tokenizer {
 public:
  enum class Kind : int32_t { kByte = 0, kBpe = 1 };

  Tokenizer();  // byte-level
  // merges[i] makes token 256 + i from two tokens below 256 + i; at most 65536 - 256 merges.
  static StatusOr<Tokenizer> from_merges(std::vector<Merge> merges);

  Kind kind() const { return kind_; }
  int vocab_size() const { return 256 + static_cast<int>(merges_.size()); }
  const std::vector<Merge>& merges() const { return merges_; }
  // The bytes that token id stands for (0 <= id < vocab_size()).
  const std::string& token_bytes(int id) const;

  // Tokens of a complete text. Parallel over chunks (OpenMP); the result does not depend on the
  // thread count.
  std::vector<int32_t> encode(std::string_view text) const;
  // Appends the tokens of buffer[0, end) to *out. Bytes after `end` are look-ahead only: for a
  // text that continues past the buffer, `end` must come from stable_prefix() (pretokenize.h).
  void encode_prefix(std::string_view buffer, size_t end, std::vector<uint16_t>* out) const;

  // The bytes of a token sequence; an id outside [0, vocab_size()) is an error naming it.
  StatusOr<std::string> decode(std::span<const int32_t> ids) const;

  // Atomic write (temporary file, fsync, rename); see the format above.
  Status save(const std::string& path) const;
  // Refuses, naming the file and the problem, a missing, truncated, corrupt (hash mismatch) or
  // otherwise invalid file, or one of another version.
  static StatusOr<Tokenizer> load(const std::string& path);

 private:
  template <typename T>
  void encode_range(const uint8_t* text, size_t n, size_t begin, size_t end,
                    std::vector<T>* out) const;
  template <typename T>
  void encode_all(const uint8_t* text, size_t n, size_t end, std::vector<T>* out) const;

  Kind kind_ = Kind::kByte;
  std::vector<Merge> merges_;
  std::vector<std::string> vocab_;  // bytes of every token
  FlatMap64<int32_t> rank_;         // (left << 32 | right) -> merge index
};

}  // namespace skein
