#include "data/gpt2_encoder.h"

#include <algorithm>
#include <climits>
#include <queue>

#include "data/gpt2_pretokenize.h"

namespace skein {

namespace {

uint64_t bytes_hash(std::string_view s) {
  uint64_t h = 0xCBF29CE484222325ull;  // FNV-1a; FlatMap64 mixes it further
  for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
  return h == FlatMap64<int32_t>::kEmpty ? 0 : h;
}

}  // namespace

Gpt2Encoder::Gpt2Encoder(const Gpt2Vocab& v)
    : rules_(v.rules),
      pieces_(v.pieces),
      byte_ids_(v.byte_ids),
      pairs_(2 * v.tokens.size()),
      tokens_(v.tokens),
      by_hash_(v.tokens.size()) {
  if (rules_ == Gpt2Rules::kMergeList) {
    for (size_t r = 0; r < v.merges.size(); ++r) {
      const Gpt2Merge& m = v.merges[r];
      pairs_[uint64_t(uint32_t(m.left)) << 32 | uint32_t(m.right)] =
          uint32_t(r) << 16 | uint32_t(m.result);
    }
    return;
  }
  // rank of every token that BPE can make (bytes: none needed, they are never joined into)
  std::vector<int32_t> rank(v.tokens.size(), -1);
  for (size_t r = 0; r < v.merges.size(); ++r) rank[v.merges[r].result] = static_cast<int32_t>(r);
  auto add = [&](int32_t id) {
    int32_t& slot = by_hash_[bytes_hash(tokens_[id])];
    if (slot == 0) {
      slot = id + 1;  // stored as id + 1: 0 is FlatMap64's value of a new key
    } else {
      collided_.emplace(tokens_[id], id);
    }
  };
  for (int b = 0; b < 256; ++b) add(byte_ids_[b]);
  for (const Gpt2Merge& m : v.merges) add(m.result);
  // Every split of a token into two tokens joins (tiktoken hashes the joined bytes).
  for (const Gpt2Merge& m : v.merges) {
    const std::string_view t = tokens_[m.result];
    const uint32_t packed = uint32_t(rank[m.result]) << 16 | uint32_t(m.result);
    for (size_t k = 1; k < t.size(); ++k) {
      const int32_t a = find_token(t.substr(0, k));
      if (a < 0) continue;
      const int32_t b = find_token(t.substr(k));
      if (b < 0) continue;
      pairs_[uint64_t(uint32_t(a)) << 32 | uint32_t(b)] = packed;
    }
  }
}

int32_t Gpt2Encoder::find_token(std::string_view bytes) const {
  if (const int32_t* slot = by_hash_.find(bytes_hash(bytes))) {
    if (tokens_[*slot - 1] == bytes) return *slot - 1;
  }
  if (collided_.empty()) return -1;
  auto it = collided_.find(std::string(bytes));
  return it == collided_.end() ? -1 : it->second;
}

template <typename T>
void Gpt2Encoder::encode_piece(const uint8_t* p, size_t n, std::vector<T>* out) const {
  if (n == 0) return;
  if (n == 1) {
    out->push_back(static_cast<T>(byte_ids_[p[0]]));
    return;
  }
  if (rules_ == Gpt2Rules::kTiktoken) {
    const int32_t whole = find_token(std::string_view(reinterpret_cast<const char*>(p), n));
    if (whole >= 0) {
      out->push_back(static_cast<T>(whole));
      return;
    }
  }
  if (n <= kSmallPiece) {
    merge_small(p, n, out);
  } else {
    merge_heap(p, n, out);
  }
}

// tiktoken's loop: scan for the lowest packed rank (the leftmost of equal ones), merge, repeat.
template <typename T>
void Gpt2Encoder::merge_small(const uint8_t* p, size_t n, std::vector<T>* out) const {
  constexpr uint32_t kNone = UINT32_MAX;
  int32_t ids[kSmallPiece];
  uint32_t joins[kSmallPiece];  // joins[i]: packed rank of (ids[i], ids[i + 1]), or kNone
  size_t m = n;
  for (size_t i = 0; i < m; ++i) ids[i] = byte_ids_[p[i]];
  auto join_at = [&](size_t i) {
    const uint32_t* j = join(ids[i], ids[i + 1]);
    return j ? *j : kNone;
  };
  for (size_t i = 0; i + 1 < m; ++i) joins[i] = join_at(i);
  while (m > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < m; ++i) {
      if (joins[i] < joins[best]) best = i;
    }
    if (joins[best] == kNone) break;
    ids[best] = static_cast<int32_t>(joins[best] & 0xFFFF);
    for (size_t i = best + 1; i + 1 < m; ++i) {
      ids[i] = ids[i + 1];
      joins[i] = joins[i + 1];
    }
    --m;
    if (best > 0) joins[best - 1] = join_at(best - 1);
    if (best + 1 < m) joins[best] = join_at(best);
  }
  for (size_t i = 0; i < m; ++i) out->push_back(static_cast<T>(ids[i]));
}

// The same choice with a heap of candidate pairs. A pair is (left part, its right neighbour);
// an entry is stale once either part changed (its version moved on) or the left part's
// neighbour is another. The lowest valid (packed rank, position) is the pair the loop picks:
// positions grow from left to right.
template <typename T>
void Gpt2Encoder::merge_heap(const uint8_t* p, size_t n, std::vector<T>* out) const {
  constexpr size_t kEnd = SIZE_MAX;
  struct Entry {
    uint32_t packed;
    size_t pos, right;
    uint32_t left_version, right_version;
    bool operator>(const Entry& o) const {
      return packed != o.packed ? packed > o.packed : pos > o.pos;
    }
  };
  std::vector<int32_t> ids(n);
  std::vector<size_t> next(n), prev(n);
  std::vector<uint32_t> version(n, 0);
  for (size_t i = 0; i < n; ++i) {
    ids[i] = byte_ids_[p[i]];
    next[i] = i + 1 < n ? i + 1 : kEnd;
    prev[i] = i > 0 ? i - 1 : kEnd;
  }
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
  auto push = [&](size_t i) {
    const size_t j = next[i];
    if (j == kEnd) return;
    if (const uint32_t* r = join(ids[i], ids[j])) heap.push({*r, i, j, version[i], version[j]});
  };
  for (size_t i = 0; i + 1 < n; ++i) push(i);
  std::vector<bool> alive(n, true);
  while (!heap.empty()) {
    const Entry e = heap.top();
    heap.pop();
    if (!alive[e.pos] || next[e.pos] != e.right || version[e.pos] != e.left_version ||
        version[e.right] != e.right_version) {
      continue;
    }
    ids[e.pos] = static_cast<int32_t>(e.packed & 0xFFFF);
    ++version[e.pos];
    alive[e.right] = false;
    next[e.pos] = next[e.right];
    if (next[e.pos] != kEnd) prev[next[e.pos]] = e.pos;
    if (prev[e.pos] != kEnd) push(prev[e.pos]);
    push(e.pos);
  }
  for (size_t i = 0; i != kEnd; i = next[i]) out->push_back(static_cast<T>(ids[i]));
}

// Tokens of text[begin, end): the pieces of each stretch between document starts, and the
// separator at each document start (see encode()).
template <typename T>
size_t Gpt2Encoder::encode_chunk(const uint8_t* text, size_t n, size_t begin, size_t end,
                                 std::span<const size_t> doc_starts, int32_t separator,
                                 std::vector<T>* out) const {
  Gpt2PieceMatcher matcher(pieces_);
  std::string buf;
  size_t replaced = 0;
  size_t s = begin;
  for (size_t k = 0; k <= doc_starts.size(); ++k) {
    const size_t e = k < doc_starts.size() ? doc_starts[k] : end;
    if (e > s) {
      replaced +=
          for_each_gpt2_piece(matcher, &buf, text, n, s, e, k == doc_starts.size(),
                              [&](const uint8_t* p, size_t len) { encode_piece(p, len, out); });
    }
    if (k < doc_starts.size()) out->push_back(static_cast<T>(separator));
    s = e;
  }
  return replaced;
}

template <typename T>
size_t Gpt2Encoder::encode(const uint8_t* text, size_t n, size_t end,
                           std::span<const size_t> doc_starts, int32_t separator,
                           std::vector<T>* out) const {
  SKEIN_CHECK(end <= n);
  for (size_t i = 0; i < doc_starts.size(); ++i) {
    SKEIN_CHECK(doc_starts[i] <= end && (i == 0 || doc_starts[i] > doc_starts[i - 1]),
                "document starts must ascend and lie in the text");
  }
  if (end <= kChunkBytes) return encode_chunk(text, n, 0, end, doc_starts, separator, out);
  // Chunks cut at safe cuts, encoded in parallel, concatenated in order: the same tokens for
  // any thread count. Chunk c takes the document starts in (c_c, c_{c+1}] (chunk 0 also 0), so
  // a document start on a cut ends the text before it.
  const std::vector<size_t> cuts = gpt2_chunk_bounds(text, n, end, kChunkBytes);
  const long chunks = static_cast<long>(cuts.size()) - 1;
  std::vector<std::vector<T>> parts(chunks);
  std::vector<size_t> replaced(chunks, 0);
#pragma omp parallel for schedule(dynamic, 1)
  for (long c = 0; c < chunks; ++c) {
    const auto first = c == 0 ? doc_starts.begin()
                              : std::upper_bound(doc_starts.begin(), doc_starts.end(), cuts[c]);
    const auto last = std::upper_bound(doc_starts.begin(), doc_starts.end(), cuts[c + 1]);
    std::vector<T> local;  // this thread's own: neighbouring parts[c] share cache lines
    local.reserve((cuts[c + 1] - cuts[c]) / 3);
    replaced[c] = encode_chunk(text, n, cuts[c], cuts[c + 1],
                               doc_starts.subspan(first - doc_starts.begin(), last - first),
                               separator, &local);
    parts[c] = std::move(local);
  }
  size_t total = out->size(), sum = 0;
  for (const auto& p : parts) total += p.size();
  out->reserve(total);
  for (long c = 0; c < chunks; ++c) {
    out->insert(out->end(), parts[c].begin(), parts[c].end());
    sum += replaced[c];
  }
  return sum;
}

template size_t Gpt2Encoder::encode(const uint8_t*, size_t, size_t, std::span<const size_t>,
                                    int32_t, std::vector<int32_t>*) const;
template size_t Gpt2Encoder::encode(const uint8_t*, size_t, size_t, std::span<const size_t>,
                                    int32_t, std::vector<uint16_t>*) const;
template void Gpt2Encoder::encode_piece(const uint8_t*, size_t, std::vector<int32_t>*) const;

}  // namespace skein
