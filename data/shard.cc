#include "data/shard.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "base/crc32c.h"
#include "base/rng.h"

namespace skein {

namespace {

void put_le32(uint8_t* p, int32_t v) {
  uint32_t u = static_cast<uint32_t>(v);
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(u >> (8 * i));
}
int32_t get_le32(const uint8_t* p) {
  uint32_t u = 0;
  for (int i = 0; i < 4; ++i) u |= uint32_t(p[i]) << (8 * i);
  return static_cast<int32_t>(u);
}

// Largest id in tokens[0, n): a plain loop that the compiler vectorises (unsigned max).
uint16_t max_token(const uint16_t* tokens, size_t n) {
  uint16_t m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, tokens[i]);
  return m;
}

}  // namespace

Status check_vocab_size(int64_t vocab_size, const std::string& what) {
  if (vocab_size < 1 || vocab_size > kMaxVocabSize) {
    return Status::error(what + ": vocabulary size " + std::to_string(vocab_size) +
                         " is out of range; expected 1.." + std::to_string(kMaxVocabSize) +
                         ". HINT: shards store token ids as uint16, so ids above 65535 cannot "
                         "be represented; use a vocabulary of at most 65536 tokens");
  }
  return {};
}

StatusOr<ShardWriter> ShardWriter::create(const std::string& path) {
  auto f = AtomicFile::create(path);
  if (!f.ok()) return f.status();
  ShardWriter w(std::move(*f));
  uint8_t header[kShardHeaderBytes] = {};  // count is patched in by commit()
  SKEIN_RETURN_IF_ERROR(w.file_.write(header, sizeof(header)));
  return w;
}

Status ShardWriter::append(std::span<const uint16_t> tokens) {
  if (count_ + static_cast<int64_t>(tokens.size()) > kMaxShardTokens) {
    return Status::error("shard " + file_.path() + " would exceed " +
                         std::to_string(kMaxShardTokens) +
                         " tokens, the most its int32 header can count. HINT: write smaller "
                         "shards (prepare_data --shard_tokens)");
  }
  SKEIN_RETURN_IF_ERROR(file_.write(tokens.data(), tokens.size_bytes()));
  count_ += static_cast<int64_t>(tokens.size());
  return {};
}

Status ShardWriter::commit() {
  uint8_t header[kShardHeaderBytes] = {};
  put_le32(header + 0, kShardMagic);
  put_le32(header + 4, kShardVersion);
  put_le32(header + 8, static_cast<int32_t>(count_));
  SKEIN_RETURN_IF_ERROR(file_.write_at(0, header, sizeof(header)));
  return file_.commit();
}

Status write_shard(const std::string& path, std::span<const uint16_t> tokens) {
  auto w = ShardWriter::create(path);
  if (!w.ok()) return w.status();
  SKEIN_RETURN_IF_ERROR(w->append(tokens));
  return w->commit();
}

StatusOr<Shard> Shard::open(const std::string& path, int vocab_size, int64_t min_tokens) {
  SKEIN_RETURN_IF_ERROR(check_vocab_size(vocab_size, "opening shard " + path));
  auto file = MappedFile::open(path);
  if (!file.ok()) return file.status();
  const MappedFile& f = *file;
  if (f.size() < kShardHeaderBytes) {
    return Status::error("shard " + path + " is truncated: expected a 1024-byte header, found " +
                         std::to_string(f.size()) +
                         " bytes in all. HINT: the file was cut short; regenerate it with "
                         "prepare_data");
  }
  const int32_t magic = get_le32(f.data());
  const int32_t version = get_le32(f.data() + 4);
  const int32_t count = get_le32(f.data() + 8);
  if (magic != kShardMagic) {
    return Status::error("shard " + path + " has magic number " + std::to_string(magic) +
                         ", expected " + std::to_string(kShardMagic) +
                         ". HINT: this is not a token shard; make shards with prepare_data (or "
                         "llm.c's data scripts)");
  }
  if (version != kShardVersion) {
    return Status::error("shard " + path + " has version " + std::to_string(version) +
                         ", expected " + std::to_string(kShardVersion) +
                         " (uint16 tokens). HINT: version 2 is llm.c's uint32 format for large "
                         "vocabularies, which skein does not read; re-tokenize with prepare_data");
  }
  if (count < 0) {
    return Status::error("shard " + path + " has a negative token count " + std::to_string(count) +
                         " in its header. HINT: the file is corrupt");
  }
  const uint64_t expected = kShardHeaderBytes + 2 * uint64_t(count);
  if (f.size() != expected) {
    return Status::error(
        "shard " + path + " is truncated or has trailing bytes: its header says " +
        std::to_string(count) + " tokens, so the file should be " + std::to_string(expected) +
        " bytes, found " + std::to_string(f.size()) +
        ". HINT: the file was cut short or appended to; regenerate it with prepare_data");
  }
  if (count < min_tokens) {
    return Status::error("shard " + path + " holds " + std::to_string(count) +
                         " tokens, fewer than the " + std::to_string(min_tokens) +
                         " that one training sequence needs (T+1, with T = " + "model.seq_len = " +
                         std::to_string(min_tokens - 1) + "). HINT: set model.seq_len to at " +
                         "most " + std::to_string(std::max<int64_t>(count - 1, 1)) +
                         ", or merge the shard with others (prepare_data --shard_tokens)");
  }
  Shard shard(std::move(*file), count);
  if (vocab_size < kMaxVocabSize) {
    // Scan in blocks: a fast max per block, and a search only in a block that fails.
    shard.file_.advise_sequential();
    const uint16_t* t = shard.tokens();
    constexpr size_t kBlock = 1 << 16;
    for (size_t start = 0; start < size_t(count); start += kBlock) {
      const size_t n = std::min(kBlock, size_t(count) - start);
      if (max_token(t + start, n) < vocab_size) continue;
      size_t i = start;
      while (t[i] < vocab_size) ++i;
      return Status::error("shard " + path + " has token id " + std::to_string(t[i]) +
                           " at token offset " + std::to_string(i) + " (byte offset " +
                           std::to_string(kShardHeaderBytes + 2 * i) +
                           "), but the model's vocabulary has " + std::to_string(vocab_size) +
                           " tokens (ids 0.." + std::to_string(vocab_size - 1) +
                           "). HINT: the shards were made with a larger vocabulary than the "
                           "model's vocab_size; raise vocab_size or re-tokenize");
    }
  }
  shard.file_.advise_random();  // training reads random windows
  return shard;
}

std::vector<std::string> list_shards(const std::string& dir, const std::string& split) {
  std::vector<std::string> paths;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind(split + "_", 0) == 0 && n.size() > 4 && n.substr(n.size() - 4) == ".bin")
      paths.push_back(e.path().string());
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

uint64_t shards_fingerprint(const std::vector<std::string>& train,
                            const std::vector<std::string>& val, uint32_t tokenizer_crc32c) {
  uint64_t h = mix64(tokenizer_crc32c, train.size(), val.size());
  for (const auto* list : {&train, &val})
    for (const std::string& path : *list) {
      std::error_code ec;
      const uint64_t size = std::filesystem::file_size(path, ec);
      const std::string name = std::filesystem::path(path).filename().string();
      h = mix64(h, crc32c(name.data(), name.size()), ec ? ~0ull : size);
    }
  return h;
}

}  // namespace skein
