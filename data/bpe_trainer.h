// Learns byte-level BPE merges from a corpus.
//
// add_text() cuts text into pieces (data/pretokenize.h) and counts distinct pieces, in parallel
// over chunks with one table per thread; the tables are then merged in thread order. Only the
// table of distinct pieces is kept, not the text, so a corpus of any size can be streamed in.
//
// train() then repeats: take the pair of adjacent tokens with the highest count over all pieces
// (weighted by piece count; ties go to the smaller (left, right)), make it a new token, and
// update the counts of the pieces that held it. Counts are integers and the choice depends only
// on them, so the merges are the same for any thread count and any order of the counting.
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
  // Counts the pieces of buffer[0, end). Bytes after `end` are look-ahead only; for a text that
  // continues past the buffer, `end` must come from stable_prefix() (pretokenize.h).
  void add_text(std::string_view buffer, size_t end);
  void add_text(std::string_view text) { add_text(text, text.size()); }

  size_t distinct_pieces() const { return counts_.size(); }
  uint64_t bytes() const { return bytes_; }

  // Learns merges until the vocabulary has vocab_size tokens (257..65536) or no pair of tokens
  // is left to merge (then the vocabulary is smaller; see Tokenizer::vocab_size()).
  StatusOr<Tokenizer> train(int vocab_size) const;

 private:
  std::string_view intern(std::string_view piece);

  std::vector<std::unique_ptr<char[]>> arena_;  // bytes of the distinct pieces
  size_t arena_left_ = 0;
  std::unordered_map<std::string_view, int64_t> counts_;
  uint64_t bytes_ = 0;
};

}  // namespace skein
