// GPT-2's byte-level BPE encoder, with tiktoken's rules (so the ids equal tiktoken's "gpt2"
// encoding, and llm.c's GPT-2 shards):
//  1. the text is cut into pieces by GPT-2's pattern (data/gpt2_pretokenize.h), after invalid
//     UTF-8 is replaced by U+FFFD;
//  2. a piece that is a token itself is that token;
//  3. otherwise the piece starts as its bytes, and the adjacent pair whose joined bytes form the
//     token of lowest rank is merged, the leftmost of equal ones first, until no pair forms a
//     token. The rank of a token is the index of the merge that makes it.
// Rule 3 looks at joined bytes, not at the merge list: tokens "a" + "bc" join into "abc" even
// when the merge that makes "abc" is "ab" + "c". OpenAI's encoder.py (and so gpt-3-encoder and
// Hugging Face's BPE) only applies listed merges and has no rule 2. For GPT-2's vocabulary the
// two gave the same ids on all text tried (tests/data/gpt2_js_test.sh compares them), and
// every token encodes to itself by either rule; with other vocabularies they may differ.
//
// With Gpt2Rules::kMergeList the encoder applies the listed merges only, by rule 3 with "the
// pair is a listed merge" for "the joined bytes form a token", and no rule 2: Hugging Face's BPE
// and llama.cpp's "gpt2" tokenizer model. skein's BPE tokenizers with GPT-2's pieces and
// vocabularies from tokenizer.json use it. The vocabulary's `pieces` picks the pattern of step 1.
//
// Pieces up to kSmallPiece bytes use the plain quadratic loop; longer ones a heap, which picks
// the same pair (lowest rank, then leftmost) in O(n log n).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "data/flat_map.h"
#include "data/gpt2_vocab.h"

namespace skein {

class Gpt2Encoder {
 public:
  static constexpr size_t kSmallPiece = 128;
  static constexpr size_t kChunkBytes = 1 << 16;  // unit of parallel work

  // v must pass check_gpt2_vocab (kMergeList: except for the special tokens, which it needs none
  // of; its merges' ranks and ids below 65536). Its rules and pieces say how it encodes.
  explicit Gpt2Encoder(const Gpt2Vocab& v);

  // Appends the tokens of text[0, end) to *out; bytes from end to n are look-ahead only, and
  // `end` must be n or a safe cut (gpt2_stable_prefix). Each position in doc_starts (ascending,
  // each <= end, 0 or after a byte below 0x80) starts a document: no piece spans it, the text
  // before it ends there (no look-ahead past it), and `separator` is emitted there. Parallel
  // over chunks (OpenMP); the result does not depend on the thread count. Returns the number of
  // ill-formed UTF-8 subparts replaced by U+FFFD.
  template <typename T>
  size_t encode(const uint8_t* text, size_t n, size_t end, std::span<const size_t> doc_starts,
                int32_t separator, std::vector<T>* out) const;

  // Appends the tokens of one piece (bytes) to *out (rules 2 and 3).
  template <typename T>
  void encode_piece(const uint8_t* p, size_t n, std::vector<T>* out) const;

 private:
  // The id of the token with these bytes (not special), or -1.
  int32_t find_token(std::string_view bytes) const;
  // The packed rank << 16 | id of the token that joins tokens a and b, or nullptr.
  const uint32_t* join(int32_t a, int32_t b) const {
    return pairs_.find(uint64_t(uint32_t(a)) << 32 | uint32_t(b));
  }
  template <typename T>
  void merge_small(const uint8_t* p, size_t n, std::vector<T>* out) const;
  template <typename T>
  void merge_heap(const uint8_t* p, size_t n, std::vector<T>* out) const;
  template <typename T>
  size_t encode_chunk(const uint8_t* text, size_t n, size_t begin, size_t end,
                      std::span<const size_t> doc_starts, int32_t separator,
                      std::vector<T>* out) const;

  Gpt2Rules rules_;
  Gpt2Pieces pieces_;
  std::array<int32_t, 256> byte_ids_{};
  FlatMap64<uint32_t> pairs_;  // (a << 32 | b) -> rank << 16 | id of the token bytes(a)+bytes(b)
  std::vector<std::string> tokens_;  // bytes by id
  // Token bytes -> id: by a 64-bit hash of the bytes (checked against tokens_), and the rare
  // token whose hash another token has already, by its bytes.
  FlatMap64<int32_t> by_hash_;
  std::unordered_map<std::string, int32_t> collided_;
};

}  // namespace skein
