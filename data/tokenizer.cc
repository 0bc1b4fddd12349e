#include "data/tokenizer.h"

#include <climits>
#include <cstring>

#include "data/file_util.h"
#include "data/pretokenize.h"
#include "data/shard.h"

namespace skein {

namespace {

constexpr size_t kHeaderBytes = 8 * sizeof(int32_t);
constexpr size_t kEncodeChunkBytes = 1 << 16;  // unit of parallel work when encoding

uint64_t pair_key(int32_t left, int32_t right) {
  return uint64_t(uint32_t(left)) << 32 | uint32_t(right);
}

uint64_t fnv1a(const uint8_t* p, size_t n) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001B3ull;
  return h;
}

void put_le32(std::string* s, int32_t v) {
  for (int i = 0; i < 4; ++i) s->push_back(static_cast<char>(uint32_t(v) >> (8 * i)));
}
int32_t get_le32(const uint8_t* p) {
  uint32_t u = 0;
  for (int i = 0; i < 4; ++i) u |= uint32_t(p[i]) << (8 * i);
  return static_cast<int32_t>(u);
}
uint64_t get_le64(const uint8_t* p) {
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u |= uint64_t(p[i]) << (8 * i);
  return u;
}

}  // namespace

Tokenizer::Tokenizer() {
  vocab_.resize(256);
  for (int b = 0; b < 256; ++b) vocab_[b] = std::string(1, static_cast<char>(b));
}

StatusOr<Tokenizer> Tokenizer::from_merges(std::vector<Merge> merges) {
  if (merges.size() > size_t(kMaxVocabSize - 256)) {
    return Status::error("a BPE tokenizer with " + std::to_string(merges.size()) +
                         " merges would have " + std::to_string(256 + merges.size()) +
                         " tokens, more than the 65536 that uint16 shards can hold. HINT: use a "
                         "vocabulary of at most 65536");
  }
  Tokenizer t;
  t.kind_ = Kind::kBpe;
  t.rank_ = FlatMap64<int32_t>(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const Merge m = merges[i];
    const int32_t id = 256 + static_cast<int32_t>(i);
    if (m.left < 0 || m.left >= id || m.right < 0 || m.right >= id) {
      return Status::error("merge " + std::to_string(i) + " joins tokens " +
                           std::to_string(m.left) + " and " + std::to_string(m.right) +
                           ", expected ids below " + std::to_string(id) +
                           " (a merge may only use bytes and earlier merges)");
    }
    if (t.rank_.find(pair_key(m.left, m.right))) {
      return Status::error("merge " + std::to_string(i) + " (" + std::to_string(m.left) + ", " +
                           std::to_string(m.right) + ") repeats an earlier merge");
    }
    t.rank_[pair_key(m.left, m.right)] = static_cast<int32_t>(i);
    t.vocab_.push_back(t.vocab_[m.left] + t.vocab_[m.right]);
  }
  t.merges_ = std::move(merges);
  return t;
}

const std::string& Tokenizer::token_bytes(int id) const {
  SKEIN_CHECK(id >= 0 && id < vocab_size(), "token id out of range");
  return vocab_[id];
}

template <typename T>
void Tokenizer::encode_range(const uint8_t* text, size_t n, size_t begin, size_t end,
                             std::vector<T>* out) const {
  if (merges_.empty()) {
    out->insert(out->end(), text + begin, text + end);
    return;
  }
  for_each_piece(text, n, begin, end, [&](size_t b, size_t e) {
    int32_t ids[kMaxPieceBytes];
    int len = static_cast<int>(e - b);
    for (int i = 0; i < len; ++i) ids[i] = text[b + i];
    // Apply the earliest learned merge present, all its occurrences left to right; repeat.
    while (len >= 2) {
      int32_t best = INT32_MAX;
      for (int i = 0; i + 1 < len; ++i) {
        const int32_t* r = rank_.find(pair_key(ids[i], ids[i + 1]));
        if (r && *r < best) best = *r;
      }
      if (best == INT32_MAX) break;
      const Merge m = merges_[best];
      int j = 0;
      for (int i = 0; i < len;) {
        if (i + 1 < len && ids[i] == m.left && ids[i + 1] == m.right) {
          ids[j++] = 256 + best;
          i += 2;
        } else {
          ids[j++] = ids[i++];
        }
      }
      len = j;
    }
    for (int i = 0; i < len; ++i) out->push_back(static_cast<T>(ids[i]));
  });
}

template <typename T>
void Tokenizer::encode_all(const uint8_t* text, size_t n, size_t end, std::vector<T>* out) const {
  if (merges_.empty() || end <= kEncodeChunkBytes) {
    encode_range(text, n, 0, end, out);
    return;
  }
  // Chunks cut at piece boundaries fixed by the text alone, encoded in parallel, concatenated
  // in order: the same tokens for any thread count.
  const std::vector<size_t> cuts = chunk_bounds(text, n, end, kEncodeChunkBytes);
  const long chunks = static_cast<long>(cuts.size()) - 1;
  std::vector<std::vector<T>> parts(chunks);
#pragma omp parallel for schedule(dynamic, 1)
  for (long c = 0; c < chunks; ++c) {
    // Encode into a vector of this thread's own: neighbouring parts[c] share cache lines.
    std::vector<T> local;
    local.reserve((cuts[c + 1] - cuts[c]) / 2);
    encode_range(text, n, cuts[c], cuts[c + 1], &local);
    parts[c] = std::move(local);
  }
  size_t total = out->size();
  for (const auto& p : parts) total += p.size();
  out->reserve(total);
  for (const auto& p : parts) out->insert(out->end(), p.begin(), p.end());
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out;
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  encode_all(p, text.size(), text.size(), &out);
  return out;
}

void Tokenizer::encode_prefix(std::string_view buffer, size_t end,
                              std::vector<uint16_t>* out) const {
  SKEIN_CHECK(end <= buffer.size());
  encode_all(reinterpret_cast<const uint8_t*>(buffer.data()), buffer.size(), end, out);
}

StatusOr<std::string> Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size()) {
      return Status::error("cannot decode token id " + std::to_string(ids[i]) + " at position " +
                           std::to_string(i) + ": the tokenizer has ids 0.." +
                           std::to_string(vocab_size() - 1) +
                           ". HINT: use the tokenizer.bin that was saved with the model's shards");
    }
    s += vocab_[ids[i]];
  }
  return s;
}

Status Tokenizer::save(const std::string& path) const {
  std::string bytes;
  put_le32(&bytes, kTokenizerMagic);
  put_le32(&bytes, kTokenizerVersion);
  put_le32(&bytes, static_cast<int32_t>(kind_));
  put_le32(&bytes, vocab_size());
  put_le32(&bytes, static_cast<int32_t>(merges_.size()));
  for (int i = 0; i < 3; ++i) put_le32(&bytes, 0);
  for (const Merge& m : merges_) {
    put_le32(&bytes, m.left);
    put_le32(&bytes, m.right);
  }
  const uint64_t h = fnv1a(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>(h >> (8 * i)));
  auto f = AtomicFile::create(path);
  if (!f.ok()) return f.status();
  SKEIN_RETURN_IF_ERROR(f->write(bytes.data(), bytes.size()));
  return f->commit();
}

StatusOr<Tokenizer> Tokenizer::load(const std::string& path) {
  auto file = MappedFile::open(path);
  if (!file.ok()) return file.status();
  const uint8_t* p = file->data();
  const size_t size = file->size();
  auto bad = [&](const std::string& what) {
    return Status::error("tokenizer " + path + ": " + what +
                         ". HINT: use the tokenizer.bin written by prepare_data with these shards, "
                         "or run prepare_data again");
  };
  if (size < kHeaderBytes + 8) {
    return bad("file is " + std::to_string(size) + " bytes, too short for the " +
               std::to_string(kHeaderBytes + 8) + "-byte header and hash (truncated)");
  }
  if (get_le32(p) != kTokenizerMagic) {
    return bad("magic number is " + std::to_string(get_le32(p)) + ", expected " +
               std::to_string(kTokenizerMagic) + " (not a skein tokenizer file)");
  }
  if (get_le32(p + 4) != kTokenizerVersion) {
    return bad("version is " + std::to_string(get_le32(p + 4)) + ", expected " +
               std::to_string(kTokenizerVersion));
  }
  const int32_t kind = get_le32(p + 8), vocab = get_le32(p + 12), count = get_le32(p + 16);
  if (kind != 0 && kind != 1) return bad("unknown kind " + std::to_string(kind));
  if (count < 0 || count > kMaxVocabSize - 256) {
    return bad("merge count " + std::to_string(count) + " is outside 0.." +
               std::to_string(kMaxVocabSize - 256));
  }
  if (vocab != 256 + count) {
    return bad("vocabulary size " + std::to_string(vocab) + " does not match 256 + " +
               std::to_string(count) + " merges");
  }
  if (kind == 0 && count != 0) return bad("a byte-level tokenizer with merges");
  const size_t expected = kHeaderBytes + 8 * size_t(count) + 8;
  if (size != expected) {
    return bad("file is " + std::to_string(size) + " bytes, expected " + std::to_string(expected) +
               " for " + std::to_string(count) + " merges (truncated or trailing bytes)");
  }
  if (get_le64(p + size - 8) != fnv1a(p, size - 8)) {
    return bad("content hash does not match (the file is corrupt)");
  }
  if (kind == 0) return Tokenizer();
  std::vector<Merge> merges(count);
  for (int32_t i = 0; i < count; ++i) {
    merges[i] = {get_le32(p + kHeaderBytes + 8 * size_t(i)),
                 get_le32(p + kHeaderBytes + 8 * size_t(i) + 4)};
  }
  auto t = from_merges(std::move(merges));
  if (!t.ok()) return bad(t.status().message());
  return t;
}

}  // namespace skein
