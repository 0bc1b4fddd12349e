// Learns byte-level BPE merges from a corpus.
//
// add_text() cuts text into pieces (BpePieces: GPT-2's pattern after U+FFFD replacement, or
// skein's byte classes of data/pretokenize.h) and counts distinct pieces, in parallel
// over chunks, each OpenMP thread into its own table that lives across calls (so streaming many
// blocks or small files costs no merging); train() sums the tables. Only distinct pieces are
// kept, not the text, so a corpus of any size can be streamed in.
//
// train() then repeats: take the pair of adjacent tokens with the highest count over all pieces
// (weighted by piece count; ties go to the smaller (left, right)), make it a new token, and
// update the counts of the pieces that held it. Counts are integers and the choice depends only
// on them, so the merges are the same for any thread count and any order of the counting.
// With GPT-2's pieces a pair whose joined bytes some token has already (made another way, e.g.
// "a" + "bc" after "ab" + "c") is never merged: llama.cpp and Hugging Face find tokens by their
// bytes, so two tokens alike could not be exported.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "data/tokenizer.h"

namespace skein {

class BpeTrainer {
 public:
  explicit BpeTrainer(BpePieces pieces = BpePieces::kSkein) : pieces_(pieces) {}

  // Counts the pieces of buffer[0, end). Bytes after `end` are look-ahead only; for a text that
  // continues past the buffer, `end` must come from stable_prefix().
  void add_text(std::string_view buffer, size_t end);
  void add_text(std::string_view text) { add_text(text, text.size()); }

  // For a text that may continue after buffer: the longest prefix whose pieces are final.
  size_t stable_prefix(std::string_view buffer) const;
  size_t distinct_pieces() const;  // sums the per-thread tables: not free
  uint64_t bytes() const { return bytes_; }

  // Learns merges until the vocabulary has vocab_size tokens (257..65536) or no pair of tokens
  // is left to merge (then the vocabulary is smaller; see Tokenizer::vocab_size()).
  StatusOr<Tokenizer> train(int vocab_size) const;

 private:
  // Counts of one thread; the pieces' bytes live in its arena. Cache-line aligned: threads
  // update their tables' headers all the time, which must not share a line.
  struct alignas(64) Table {
    std::unordered_map<std::string_view, int64_t> counts;
    std::vector<std::unique_ptr<char[]>> arena;
    size_t arena_left = 0;
    std::string_view intern(std::string_view piece);
  };
  std::unordered_map<std::string_view, int64_t> merged_counts() const;

  BpePieces pieces_;
  std::vector<std::unique_ptr<Table>> tables_;  // indexed by omp_get_thread_num()
  uint64_t bytes_ = 0;
};

}  // namespace skein
