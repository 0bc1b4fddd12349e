#include "data/tokenizer.h"

#include <climits>
#include <cstring>
#include <unordered_map>

#include "data/file_util.h"
#include "data/gpt2_encoder.h"
#include "data/gpt2_pretokenize.h"
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

StatusOr<Tokenizer> Tokenizer::from_merges(std::vector<Merge> merges, BpePieces pieces) {
  if (merges.size() > size_t(kMaxVocabSize - 256)) {
    return Status::error("a BPE tokenizer with " + std::to_string(merges.size()) +
                         " merges would have " + std::to_string(256 + merges.size()) +
                         " tokens, more than the 65536 that uint16 shards can hold. HINT: use a "
                         "vocabulary of at most 65536");
  }
  Tokenizer t;
  t.kind_ = Kind::kBpe;
  t.pieces_ = pieces;
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
  if (pieces == BpePieces::kGpt2) {
    // Token bytes -> id, to refuse a second token with the same bytes. Filled after the last
    // push_back: the keys point into vocab_'s strings, which a reallocation moves.
    std::unordered_map<std::string_view, int32_t> ids;
    for (int32_t id = 0; id < t.vocab_size(); ++id) {
      const auto [it, added] = ids.emplace(t.vocab_[id], id);
      if (!added) {
        return Status::error("merge " + std::to_string(id - 256) + " makes token " +
                             std::to_string(id) + " with the same bytes as token " +
                             std::to_string(it->second) +
                             " (a tokenizer with GPT-2's pieces has no two tokens alike)");
      }
    }
    // The encoder's tables: byte b is token b, merge i makes token 256 + i.
    Gpt2Vocab v;
    v.tokens = t.vocab_;
    for (int b = 0; b < 256; ++b) v.byte_ids[b] = b;
    v.merges.reserve(t.merges_.size());
    for (size_t i = 0; i < t.merges_.size(); ++i) {
      v.merges.push_back({t.merges_[i].left, t.merges_[i].right, 256 + static_cast<int32_t>(i)});
    }
    v.rules = Gpt2Rules::kMergeList;
    t.gpt2_ = std::make_shared<const Gpt2Encoder>(v);
  }
  return t;
}

StatusOr<Tokenizer> Tokenizer::from_gpt2(Gpt2Vocab vocab) {
  SKEIN_RETURN_IF_ERROR(check_gpt2_vocab(vocab, "GPT-2 vocabulary " + vocab.source));
  Tokenizer t;
  t.kind_ = Kind::kGpt2;
  t.vocab_ = vocab.tokens;
  t.merges_.reserve(vocab.merges.size());
  for (const Gpt2Merge& m : vocab.merges) t.merges_.push_back({m.left, m.right});
  t.eot_ = vocab.eot;
  t.checksum_ = gpt2_vocab_checksum(vocab);
  t.gpt2_ = std::make_shared<const Gpt2Encoder>(vocab);
  t.gpt2_vocab_ = std::make_shared<const Gpt2Vocab>(std::move(vocab));
  return t;
}

const char* Tokenizer::kind_name() const {
  switch (kind_) {
    case Kind::kByte:
      return "byte";
    case Kind::kBpe:
      return "bpe";
    case Kind::kGpt2:
      return "gpt2";
  }
  return "?";
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
  if (gpt2_) {
    gpt2_->encode(p, text.size(), text.size(), {}, eot_, &out);
  } else {
    encode_all(p, text.size(), text.size(), &out);
  }
  return out;
}

size_t Tokenizer::stable_prefix(std::string_view buffer) const {
  const auto* p = reinterpret_cast<const uint8_t*>(buffer.data());
  return gpt2_ ? gpt2_stable_prefix(p, buffer.size()) : skein::stable_prefix(p, buffer.size());
}

size_t Tokenizer::encode_prefix(std::string_view buffer, size_t end, std::vector<uint16_t>* out,
                                std::span<const size_t> doc_starts) const {
  SKEIN_CHECK(end <= buffer.size());
  const auto* p = reinterpret_cast<const uint8_t*>(buffer.data());
  SKEIN_CHECK(doc_starts.empty() || eot_ >= 0, "only GPT-2's tokenizer has a document separator");
  if (gpt2_) return gpt2_->encode(p, buffer.size(), end, doc_starts, eot_, out);
  encode_all(p, buffer.size(), end, out);
  return 0;
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

std::string Tokenizer::serialize() const {
  std::string bytes;
  if (gpt2_vocab_) {
    const Gpt2Vocab& v = *gpt2_vocab_;
    const bool gpt2_own = v.pieces == Gpt2Pieces::kGpt2 && v.rules == Gpt2Rules::kTiktoken;
    put_le32(&bytes, kTokenizerMagic);
    put_le32(&bytes, gpt2_own ? kTokenizerVersionGpt2 : kTokenizerVersionHf);
    put_le32(&bytes, static_cast<int32_t>(kind_));
    put_le32(&bytes, vocab_size());
    put_le32(&bytes, static_cast<int32_t>(v.merges.size()));
    put_le32(&bytes, static_cast<int32_t>(v.specials.size()));
    put_le32(&bytes, static_cast<int32_t>(checksum_));
    put_le32(&bytes, static_cast<int32_t>(checksum_ >> 32));
    for (int b = 0; b < 256; ++b) put_le32(&bytes, v.byte_ids[b]);
    for (const Gpt2Merge& m : v.merges) {
      put_le32(&bytes, m.left);
      put_le32(&bytes, m.right);
      put_le32(&bytes, m.result);
    }
    for (int32_t id : v.specials) {
      put_le32(&bytes, id);
      put_le32(&bytes, static_cast<int32_t>(v.tokens[id].size()));
      bytes += v.tokens[id];
    }
    put_le32(&bytes, v.eot);
    if (!gpt2_own) {
      put_le32(&bytes, static_cast<int32_t>(v.pieces));
      put_le32(&bytes, static_cast<int32_t>(v.rules));
    }
  } else {
    const bool gpt2_pieces = pieces_ == BpePieces::kGpt2;
    put_le32(&bytes, kTokenizerMagic);
    put_le32(&bytes, gpt2_pieces ? kTokenizerVersionBpeGpt2Pieces : kTokenizerVersion);
    put_le32(&bytes, static_cast<int32_t>(kind_));
    put_le32(&bytes, vocab_size());
    put_le32(&bytes, static_cast<int32_t>(merges_.size()));
    put_le32(&bytes, static_cast<int32_t>(pieces_));
    for (int i = 0; i < 2; ++i) put_le32(&bytes, 0);
    for (const Merge& m : merges_) {
      put_le32(&bytes, m.left);
      put_le32(&bytes, m.right);
    }
  }
  const uint64_t h = fnv1a(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>(h >> (8 * i)));
  return bytes;
}

Status Tokenizer::save(const std::string& path) const {
  const std::string bytes = serialize();
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
  const int32_t version = get_le32(p + 4);
  if (version == kTokenizerVersionGpt2 || version == kTokenizerVersionHf) {
    return load_gpt2(p, size, path);
  }
  if (version != kTokenizerVersion && version != kTokenizerVersionBpeGpt2Pieces) {
    return bad("version is " + std::to_string(version) + ", expected 1, 2, 3 or 4");
  }
  const int32_t kind = get_le32(p + 8), vocab = get_le32(p + 12), count = get_le32(p + 16);
  if (kind != 0 && kind != 1) return bad("unknown kind " + std::to_string(kind));
  const bool gpt2_pieces = version == kTokenizerVersionBpeGpt2Pieces;
  const int32_t pieces = get_le32(p + 20);
  if (pieces != (gpt2_pieces ? 1 : 0)) {
    return bad("pieces " + std::to_string(pieces) + " in a version " + std::to_string(version) +
               " file, expected " + (gpt2_pieces ? "1 (GPT-2's)" : "0"));
  }
  if (gpt2_pieces && kind != 1) return bad("a version 3 file of kind " + std::to_string(kind));
  if (gpt2_pieces && (get_le32(p + 24) != 0 || get_le32(p + 28) != 0))
    return bad("the reserved header words of a version 3 file are not zero");
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
  auto t = from_merges(std::move(merges), gpt2_pieces ? BpePieces::kGpt2 : BpePieces::kSkein);
  if (!t.ok()) return bad(t.status().message());
  return t;
}

StatusOr<Tokenizer> Tokenizer::load_gpt2(const uint8_t* p, size_t size, const std::string& path) {
  auto bad = [&](const std::string& what) {
    return Status::error("tokenizer " + path + ": " + what +
                         ". HINT: use the tokenizer.bin written by prepare_data with these shards, "
                         "or run prepare_data again");
  };
  if (get_le64(p + size - 8) != fnv1a(p, size - 8)) {
    return bad("content hash does not match (the file is corrupt)");
  }
  const int32_t kind = get_le32(p + 8), vocab = get_le32(p + 12), merges = get_le32(p + 16),
                specials = get_le32(p + 20);
  const uint64_t checksum =
      uint64_t(uint32_t(get_le32(p + 24))) | uint64_t(uint32_t(get_le32(p + 28))) << 32;
  const int32_t version = get_le32(p + 4);
  if (kind != static_cast<int32_t>(Kind::kGpt2)) {
    return bad("kind " + std::to_string(kind) + " in a version " + std::to_string(version) +
               " file, expected 2 (gpt2)");
  }
  if (vocab < 257 || vocab > kMaxVocabSize || merges < 0 || specials < 1 ||
      int64_t(merges) + specials + 256 != vocab) {
    return bad("vocabulary size " + std::to_string(vocab) + " is not 256 bytes + " +
               std::to_string(merges) + " merges + " + std::to_string(specials) +
               " special tokens, or outside 257..65536");
  }
  const size_t body_end = size - 8;
  size_t at = kHeaderBytes;
  auto truncated = [&] {
    return bad("file is " + std::to_string(size) + " bytes, too short for its " +
               std::to_string(vocab) + " tokens (truncated)");
  };
  if (at + 4 * 256 + 12 * size_t(merges) > body_end) return truncated();
  Gpt2Vocab v;
  v.source = path;
  v.tokens.assign(vocab, std::string());
  std::vector<uint8_t> known(vocab, 0);
  auto valid = [&](int32_t id) { return id >= 0 && id < vocab; };
  for (int b = 0; b < 256; ++b, at += 4) {
    const int32_t id = get_le32(p + at);
    if (!valid(id) || known[id]) return bad("byte " + std::to_string(b) + " has a bad id");
    v.byte_ids[b] = id;
    v.tokens[id] = std::string(1, static_cast<char>(b));
    known[id] = 1;
  }
  for (int32_t i = 0; i < merges; ++i, at += 12) {
    const Gpt2Merge m{get_le32(p + at), get_le32(p + at + 4), get_le32(p + at + 8)};
    if (!valid(m.left) || !valid(m.right) || !valid(m.result) || !known[m.left] ||
        !known[m.right] || known[m.result] ||
        v.tokens[m.left].size() + v.tokens[m.right].size() > kMaxGpt2TokenBytes) {
      return bad("merge " + std::to_string(i) + " is invalid");
    }
    v.tokens[m.result] = v.tokens[m.left] + v.tokens[m.right];
    known[m.result] = 1;
    v.merges.push_back(m);
  }
  for (int32_t i = 0; i < specials; ++i) {
    if (at + 8 > body_end) return truncated();
    const int32_t id = get_le32(p + at), len = get_le32(p + at + 4);
    at += 8;
    if (!valid(id) || known[id] || len < 1 || size_t(len) > kMaxGpt2TokenBytes) {
      return bad("special token " + std::to_string(i) + " is invalid");
    }
    if (at + size_t(len) > body_end) return truncated();
    v.tokens[id].assign(reinterpret_cast<const char*>(p + at), size_t(len));
    at += size_t(len);
    known[id] = 1;
    v.specials.push_back(id);
  }
  if (at + 4 > body_end) return truncated();
  v.eot = get_le32(p + at);
  at += 4;
  if (version == kTokenizerVersionHf) {
    if (at + 8 > body_end) return truncated();
    v.pieces = static_cast<Gpt2Pieces>(get_le32(p + at));
    v.rules = static_cast<Gpt2Rules>(get_le32(p + at + 4));
    at += 8;
    if (v.pieces == Gpt2Pieces::kGpt2 && v.rules == Gpt2Rules::kTiktoken) {
      return bad("a version 4 file with GPT-2's own pieces and rules (version 2 holds those)");
    }
  }
  if (at != body_end) {
    return bad("file is " + std::to_string(size) + " bytes, expected " + std::to_string(at + 8) +
               " (trailing bytes)");
  }
  auto t = from_gpt2(std::move(v));
  if (!t.ok()) return bad(t.status().message());
  if (t->vocab_checksum() != checksum) {
    return bad("the vocabulary checksum in the header does not match the vocabulary");
  }
  return t;
}

}  // namespace skein
