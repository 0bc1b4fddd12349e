#include "data/bpe_trainer.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <queue>
#include <string>
#include <unordered_set>

#include "data/flat_map.h"
#include "data/gpt2_pretokenize.h"
#include "data/pretokenize.h"
#include "data/shard.h"

namespace skein {

namespace {

constexpr size_t kCountChunkBytes = 1 << 18;  // unit of parallel work when counting pieces
constexpr size_t kArenaBlock = 1 << 20;

uint64_t pair_key(int32_t left, int32_t right) {
  return uint64_t(uint32_t(left)) << 32 | uint32_t(right);
}

// Max-heap order: higher count first, then the smaller pair.
struct Candidate {
  int64_t count;
  uint64_t key;
  bool operator<(const Candidate& o) const {
    return count != o.count ? count < o.count : key > o.key;
  }
};

// Distinct pieces as token sequences, stored back to back; merges shrink them in place.
struct Words {
  std::vector<int32_t> symbols;
  std::vector<uint32_t> start, length;
  std::vector<int64_t> count;
};

}  // namespace

std::string_view BpeTrainer::Table::intern(std::string_view piece) {
  if (arena_left < piece.size()) {
    arena.push_back(std::make_unique<char[]>(kArenaBlock));
    arena_left = kArenaBlock;
  }
  char* dst = arena.back().get() + (kArenaBlock - arena_left);
  std::memcpy(dst, piece.data(), piece.size());
  arena_left -= piece.size();
  return {dst, piece.size()};
}

size_t BpeTrainer::stable_prefix(std::string_view buffer) const {
  const auto* p = reinterpret_cast<const uint8_t*>(buffer.data());
  return pieces_ == BpePieces::kGpt2 ? gpt2_stable_prefix(p, buffer.size())
                                     : skein::stable_prefix(p, buffer.size());
}

void BpeTrainer::add_text(std::string_view buffer, size_t end) {
  SKEIN_CHECK(end <= buffer.size());
  const auto* text = reinterpret_cast<const uint8_t*>(buffer.data());
  const size_t n = buffer.size();
  const bool gpt2 = pieces_ == BpePieces::kGpt2;
  const std::vector<size_t> cuts = gpt2 ? gpt2_chunk_bounds(text, n, end, kCountChunkBytes)
                                        : chunk_bounds(text, n, end, kCountChunkBytes);
  const long chunks = static_cast<long>(cuts.size()) - 1;
  while (tables_.size() < size_t(omp_get_max_threads())) {
    tables_.push_back(std::make_unique<Table>());
  }
#pragma omp parallel for schedule(dynamic, 1)
  for (long c = 0; c < chunks; ++c) {
    SKEIN_CHECK(size_t(omp_get_thread_num()) < tables_.size());
    Table& table = *tables_[omp_get_thread_num()];
    auto count = [&](std::string_view piece) {
      auto it = table.counts.find(piece);
      if (it == table.counts.end()) it = table.counts.emplace(table.intern(piece), 0).first;
      ++it->second;
    };
    if (gpt2) {
      Gpt2PieceMatcher matcher;
      std::string scratch;
      for_each_gpt2_piece(matcher, &scratch, text, n, cuts[c], cuts[c + 1], true,
                          [&](const uint8_t* p, size_t len) {
                            count({reinterpret_cast<const char*>(p), len});
                          });
    } else {
      for_each_piece(text, n, cuts[c], cuts[c + 1],
                     [&](size_t b, size_t e) { count(buffer.substr(b, e - b)); });
    }
  }
  bytes_ += end;
}

std::unordered_map<std::string_view, int64_t> BpeTrainer::merged_counts() const {
  std::unordered_map<std::string_view, int64_t> all;
  // Integer sums: the same counts whichever thread saw which piece.
  for (const auto& table : tables_) {
    for (const auto& [piece, n] : table->counts) all[piece] += n;
  }
  return all;
}

size_t BpeTrainer::distinct_pieces() const {
  return merged_counts().size();
}

StatusOr<Tokenizer> BpeTrainer::train(int vocab_size) const {
  SKEIN_RETURN_IF_ERROR(check_vocab_size(vocab_size, "BPE training"));
  if (vocab_size <= 256) {
    return Status::error("BPE vocabulary size " + std::to_string(vocab_size) +
                         " leaves no room for merges; expected more than 256 (the byte tokens). "
                         "HINT: use the byte tokenizer for a vocabulary of 256, or ask for more");
  }
  // Pieces of one byte hold no pair and are left out.
  Words w;
  for (const auto& [piece, n] : merged_counts()) {
    if (piece.size() < 2) continue;
    w.start.push_back(static_cast<uint32_t>(w.symbols.size()));
    w.length.push_back(static_cast<uint32_t>(piece.size()));
    w.count.push_back(n);
    for (char ch : piece) w.symbols.push_back(static_cast<uint8_t>(ch));
  }
  const long num_words = static_cast<long>(w.count.size());

  // Pair counts, one table per thread, summed.
  struct alignas(64) PairTable {  // one cache line or more each: no false sharing
    FlatMap64<int64_t> counts;
  };
  std::vector<PairTable> local(omp_get_max_threads());
#pragma omp parallel for schedule(static)
  for (long i = 0; i < num_words; ++i) {
    auto& table = local[omp_get_thread_num()].counts;
    const int32_t* s = &w.symbols[w.start[i]];
    for (uint32_t j = 0; j + 1 < w.length[i]; ++j) table[pair_key(s[j], s[j + 1])] += w.count[i];
  }
  FlatMap64<int64_t> pair_count(local.empty() ? 16 : local[0].counts.size());
  for (const auto& table : local) {
    table.counts.for_each([&](uint64_t key, int64_t n) { pair_count[key] += n; });
  }
  local.clear();

  // Where each pair occurs: pair -> index of its list of words (may hold words that lost the
  // pair since; they are skipped). last_word dedupes appends from one word.
  FlatMap64<uint32_t> list_of(pair_count.size());
  std::vector<std::vector<uint32_t>> lists;
  std::vector<int64_t> last_word;
  auto note = [&](uint64_t key, uint32_t word) {
    uint32_t* idx = list_of.find(key);
    if (!idx) {
      list_of[key] = static_cast<uint32_t>(lists.size());
      lists.emplace_back();
      last_word.push_back(-1);
      idx = list_of.find(key);
    }
    if (last_word[*idx] == word) return;
    last_word[*idx] = word;
    lists[*idx].push_back(word);
  };
  for (long i = 0; i < num_words; ++i) {
    const int32_t* s = &w.symbols[w.start[i]];
    for (uint32_t j = 0; j + 1 < w.length[i]; ++j) {
      note(pair_key(s[j], s[j + 1]), static_cast<uint32_t>(i));
    }
  }

  std::priority_queue<Candidate> heap;
  pair_count.for_each([&](uint64_t key, int64_t n) {
    if (n > 0) heap.push({n, key});
  });

  std::vector<Merge> merges;
  std::vector<uint64_t> new_keys;
  // GPT-2's pieces: the bytes of every token, to leave out pairs that would make them again
  const bool unique_bytes = pieces_ == BpePieces::kGpt2;
  std::vector<std::string> token_bytes;
  std::unordered_set<std::string> have;
  if (unique_bytes) {
    for (int b = 0; b < 256; ++b) token_bytes.emplace_back(1, static_cast<char>(b));
    have.insert(token_bytes.begin(), token_bytes.end());
  }
  while (256 + static_cast<int>(merges.size()) < vocab_size && !heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    const int64_t current = *pair_count.find(top.key);
    if (current <= 0) continue;
    if (current != top.count) {  // stale: counts only fall after a pair first appears
      if (current > 0) heap.push({current, top.key});
      continue;
    }
    const int32_t left = static_cast<int32_t>(top.key >> 32);
    const int32_t right = static_cast<int32_t>(top.key & 0xFFFFFFFFu);
    if (unique_bytes) {
      // Popped and not pushed again: its count only changes when a merge uses left or right,
      // and pairs are pushed only when they hold the newest token.
      std::string joined = token_bytes[left] + token_bytes[right];
      if (!have.insert(joined).second) continue;
      token_bytes.push_back(std::move(joined));
    }
    const int32_t z = 256 + static_cast<int32_t>(merges.size());
    merges.push_back({left, right});

    const std::vector<uint32_t> words = std::move(lists[*list_of.find(top.key)]);
    new_keys.clear();
    for (uint32_t i : words) {
      int32_t* s = &w.symbols[w.start[i]];
      const int len = static_cast<int>(w.length[i]);
      bool has = false;
      for (int j = 0; j + 1 < len && !has; ++j) has = s[j] == left && s[j + 1] == right;
      if (!has) continue;
      const int64_t n = w.count[i];
      for (int j = 0; j + 1 < len; ++j) pair_count[pair_key(s[j], s[j + 1])] -= n;
      int out = 0;
      for (int j = 0; j < len;) {
        if (j + 1 < len && s[j] == left && s[j + 1] == right) {
          s[out++] = z;
          j += 2;
        } else {
          s[out++] = s[j++];
        }
      }
      w.length[i] = static_cast<uint32_t>(out);
      for (int j = 0; j + 1 < out; ++j) {
        const uint64_t key = pair_key(s[j], s[j + 1]);
        pair_count[key] += n;
        if (s[j] == z || s[j + 1] == z) {
          note(key, i);
          new_keys.push_back(key);
        }
      }
    }
    SKEIN_CHECK(*pair_count.find(top.key) == 0, "a merged pair is left over");
    // Pairs with the new token are new; their counts are final until a later merge lowers them.
    std::sort(new_keys.begin(), new_keys.end());
    new_keys.erase(std::unique(new_keys.begin(), new_keys.end()), new_keys.end());
    for (uint64_t key : new_keys) {
      if (*pair_count.find(key) > 0) heap.push({*pair_count.find(key), key});
    }
  }
  return Tokenizer::from_merges(std::move(merges), pieces_);
}

}  // namespace skein
