// Token shards: llm.c's layout, so its prepared datasets load unchanged.
//
//   header  256 x int32, little endian: [0] magic 20240520, [1] version 1, [2] token count N,
//           the rest zero
//   body    N x uint16 token ids, little endian
//
// File size is exactly 1024 + 2 N bytes. Token ids are uint16, so a vocabulary has at most 65536
// entries. Shards are written atomically (see AtomicFile) and read through mmap, so a shard
// larger than RAM works.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "data/file_util.h"

namespace skein {

// Tokens are used straight from the mapping; a big-endian port would have to byte-swap.
static_assert(std::endian::native == std::endian::little, "shards are little endian");

inline constexpr int32_t kShardMagic = 20240520;
inline constexpr int32_t kShardVersion = 1;
inline constexpr size_t kShardHeaderInts = 256;
inline constexpr size_t kShardHeaderBytes = kShardHeaderInts * sizeof(int32_t);
inline constexpr int kMaxVocabSize = 65536;            // ids must fit in uint16
inline constexpr int64_t kMaxShardTokens = INT32_MAX;  // the header's count is an int32

// Checks a vocabulary size against what uint16 shards can hold; `what` names its source.
Status check_vocab_size(int64_t vocab_size, const std::string& what);

// Streams tokens into a new shard; the header's count is filled in by commit(), which renames
// the finished file into place. Abandoning the writer leaves no file behind.
class ShardWriter {
 public:
  static StatusOr<ShardWriter> create(const std::string& path);
  Status append(std::span<const uint16_t> tokens);
  int64_t tokens() const { return count_; }
  Status commit();

 private:
  explicit ShardWriter(AtomicFile f) : file_(std::move(f)) {}
  AtomicFile file_;
  int64_t count_ = 0;
};

// The shards SPLIT_*.bin (e.g. "train", "val") in dir, sorted by name; none if dir is missing.
std::vector<std::string> list_shards(const std::string& dir, const std::string& split);

// A hash of the shards' names and sizes (train, then val) and a tokenizer checksum: what the
// ranks of a job must agree on about their data folders.
uint64_t shards_fingerprint(const std::vector<std::string>& train,
                            const std::vector<std::string>& val, uint32_t tokenizer_crc32c);

// Writes a whole shard atomically.
Status write_shard(const std::string& path, std::span<const uint16_t> tokens);

// A validated, memory-mapped shard.
class Shard {
 public:
  // Fails, naming the file and what is wrong, when the file is missing, has a bad magic or
  // version, is truncated (size != 1024 + 2 N), holds fewer than min_tokens tokens, or contains
  // a token id >= vocab_size (the first such token and its offset are named).
  static StatusOr<Shard> open(const std::string& path, int vocab_size, int64_t min_tokens = 1);

  const uint16_t* tokens() const {
    return reinterpret_cast<const uint16_t*>(file_.data() + kShardHeaderBytes);
  }
  int64_t size() const { return count_; }  // number of tokens
  const std::string& path() const { return file_.path(); }

 private:
  explicit Shard(MappedFile f, int64_t count) : file_(std::move(f)), count_(count) {}
  MappedFile file_;
  int64_t count_ = 0;
};

}  // namespace skein
