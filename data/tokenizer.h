// Byte-level tokenizers: every byte string, valid UTF-8 or not, encodes and decodes back to
// itself (decode(encode(x)) == x), except that GPT-2's replaces invalid UTF-8 (see below).
//
//  - byte: token id = byte value, vocabulary 256 (the default).
//  - BPE:  byte-level byte-pair encoding. Merge i joins tokens (left, right) into token 256 + i;
//          the merges are learned from a corpus by BpeTrainer (data/bpe_trainer.h). Text is first
//          cut into pieces; within a piece the merge with the lowest index that applies is done
//          first (the leftmost of its occurrences first), then the next, until none applies. The
//          pieces (BpePieces) are
//            - kGpt2 (prepare_data's default): GPT-2's pattern (data/gpt2_pretokenize.h), after
//              invalid UTF-8 is replaced by U+FFFD as GPT-2's tokenizer does. No two tokens have
//              the same bytes. This is llama.cpp's "gpt2" tokenizer with pre-tokenizer "gpt-2"
//              (and Hugging Face's GPT2Tokenizer), so such a tokenizer exports to GGUF exactly.
//            - kSkein: skein's byte classes (data/pretokenize.h), every byte string round-trips;
//              the first BPE tokenizers, still read and written (prepare_data --bpe_pieces skein).
//  - GPT-2: OpenAI's byte-level BPE, read from vocab.json + merges.txt or encoder.json +
//          vocab.bpe (data/gpt2_vocab.h), encoded exactly as tiktoken's "gpt2" encoding
//          (data/gpt2_encoder.h) after GPT-2's pre-tokenizer (data/gpt2_pretokenize.h). Invalid
//          UTF-8 is replaced by U+FFFD first, so decode(encode(x)) == x for valid UTF-8 only.
//          "<|endoftext|>" (id 50256) is never made from text; prepare_data puts it before each
//          document (encode_prefix's doc_starts). The same kind holds the byte-level BPEs of
//          Hugging Face's tokenizer.json (SmolLM's, GPT-2's): encoded as Hugging Face's BPE
//          does (the merge list), with GPT-2's pieces or with every digit alone, as the file
//          says; their special tokens (added_tokens) are never made from text either.
//
// Saved as tokenizer.bin next to the shards, little endian. Byte tokenizers and BPE with skein's
// pieces (version 1), BPE with GPT-2's pieces (version 3):
//   int32 magic 20240607, int32 version 1 or 3, int32 kind (0 byte, 1 BPE), int32 vocab size,
//   int32 merge count M, int32 pieces (version 1: 0; version 3: 1 = GPT-2's), 2 x int32 zero,
//   M x (int32 left, int32 right), uint64 FNV-1a hash of all the bytes before it.
// (Version 3 rather than a flag in version 1: skein builds from before it refuse the file
// instead of cutting its text the old way.)
// GPT-2 (version 2; version 1 files stay readable):
//   int32 magic, int32 version 2, int32 kind 2, int32 vocab size V, int32 merge count M,
//   int32 special count S, uint64 vocabulary checksum (gpt2_vocab_checksum), 256 x int32 id of
//   each byte, M x (int32 left, int32 right, int32 result) in rank order, S x (int32 id, int32
//   length, the bytes), int32 id of <|endoftext|>, uint64 FNV-1a hash of all the bytes before it.
// A byte-level BPE from tokenizer.json (version 4, kind 2) is version 2's layout with two more
// int32 before the hash: the pieces (Gpt2Pieces: 0 GPT-2's pattern, 1 digits alone) and the
// rules (Gpt2Rules: 0 tiktoken's, 1 the merge list); GPT-2's own files stay version 2.
// A run records the CRC-32C of this file, so a resume with another vocabulary is refused.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "data/flat_map.h"
#include "data/gpt2_vocab.h"

namespace skein {

inline constexpr int32_t kTokenizerMagic = 20240607;
inline constexpr int32_t kTokenizerVersion = 1;               // byte and BPE files
inline constexpr int32_t kTokenizerVersionGpt2 = 2;           // GPT-2 files
inline constexpr int32_t kTokenizerVersionBpeGpt2Pieces = 3;  // BPE with GPT-2's pieces
inline constexpr int32_t kTokenizerVersionHf = 4;             // GPT-2 kind, other pieces or rules

// How a BPE tokenizer cuts text into pieces before merging (see above).
enum class BpePieces : int32_t { kSkein = 0, kGpt2 = 1 };

class Gpt2Encoder;

struct Merge {
  int32_t left = 0, right = 0;
  bool operator==(const Merge&) const = default;
};

class Tokenizer {
 public:
  enum class Kind : int32_t { kByte = 0, kBpe = 1, kGpt2 = 2 };

  Tokenizer();  // byte-level
  // merges[i] makes token 256 + i from two tokens below 256 + i; at most 65536 - 256 merges.
  // BpePieces::kGpt2: no merge may make the bytes of an earlier token.
  static StatusOr<Tokenizer> from_merges(std::vector<Merge> merges,
                                         BpePieces pieces = BpePieces::kSkein);
  // GPT-2's tokenizer from its vocabulary (read_gpt2_vocab_dir); checked again here.
  static StatusOr<Tokenizer> from_gpt2(Gpt2Vocab vocab);

  Kind kind() const { return kind_; }
  const char* kind_name() const;  // "byte", "bpe", "gpt2"
  // BPE: how text is cut before merging (kSkein for the other kinds).
  BpePieces bpe_pieces() const { return pieces_; }
  // True when every ill-formed UTF-8 subpart is replaced by U+FFFD before encoding (GPT-2, and
  // BPE with GPT-2's pieces); decode(encode(x)) == x then holds for valid UTF-8 only.
  bool replaces_invalid_utf8() const { return gpt2_ != nullptr; }
  int vocab_size() const { return static_cast<int>(vocab_.size()); }
  // BPE: the merges; GPT-2: the (left, right) of each merge in rank order.
  const std::vector<Merge>& merges() const { return merges_; }
  // The special tokens' ids, ascending (<|endoftext|> among them): the tokens that are neither a
  // byte nor made by a merge, never made from text. GPT-2 kind only; byte and BPE have none.
  std::span<const int32_t> special_ids() const {
    return gpt2_vocab_ ? std::span<const int32_t>(gpt2_vocab_->specials)
                       : std::span<const int32_t>();
  }
  // The id of <|endoftext|>, or -1 for tokenizers without one (byte, BPE).
  int32_t eot_id() const { return eot_; }
  // GPT-2 kind: how text is cut and which pairs merge (GPT-2's own files: kGpt2, kTiktoken);
  // kGpt2 and kMergeList for BPE with GPT-2's pieces.
  Gpt2Pieces gpt2_pieces() const { return gpt2_vocab_ ? gpt2_vocab_->pieces : Gpt2Pieces::kGpt2; }
  Gpt2Rules gpt2_rules() const { return gpt2_vocab_ ? gpt2_vocab_->rules : Gpt2Rules::kMergeList; }
  // GPT-2: gpt2_vocab_checksum of the vocabulary; 0 for the others.
  uint64_t vocab_checksum() const { return checksum_; }
  // The bytes that token id stands for (0 <= id < vocab_size()).
  const std::string& token_bytes(int id) const;

  // Tokens of a complete text (no <|endoftext|>, like tiktoken's encode_ordinary). Parallel
  // over chunks (OpenMP); the result does not depend on the thread count.
  std::vector<int32_t> encode(std::string_view text) const;
  // For a text that may continue after buffer: the longest prefix whose tokens are final
  // whatever follows (pretokenize.h's stable_prefix, or GPT-2's gpt2_stable_prefix).
  size_t stable_prefix(std::string_view buffer) const;
  // Appends the tokens of buffer[0, end) to *out. Bytes after `end` are look-ahead only: for a
  // text that continues past the buffer, `end` must come from stable_prefix(). GPT-2 only:
  // every position in doc_starts (ascending, <= end, each 0 or right after a newline or other
  // ASCII byte) starts a document, which ends the text before it and emits <|endoftext|>.
  // Returns how many invalid UTF-8 sequences were replaced by U+FFFD (replaces_invalid_utf8()).
  size_t encode_prefix(std::string_view buffer, size_t end, std::vector<uint16_t>* out,
                       std::span<const size_t> doc_starts = {}) const;

  // The bytes of a token sequence; an id outside [0, vocab_size()) is an error naming it.
  StatusOr<std::string> decode(std::span<const int32_t> ids) const;

  // Atomic write (temporary file, fsync, rename); see the format above.
  Status save(const std::string& path) const;
  // Refuses, naming the file and the problem, a missing, truncated, corrupt (hash mismatch) or
  // otherwise invalid file, or one of another version.
  static StatusOr<Tokenizer> load(const std::string& path);
  // The bytes that save() writes.
  std::string serialize() const;

 private:
  template <typename T>
  void encode_range(const uint8_t* text, size_t n, size_t begin, size_t end,
                    std::vector<T>* out) const;
  template <typename T>
  void encode_all(const uint8_t* text, size_t n, size_t end, std::vector<T>* out) const;

  static StatusOr<Tokenizer> load_gpt2(const uint8_t* p, size_t size, const std::string& path);

  Kind kind_ = Kind::kByte;
  BpePieces pieces_ = BpePieces::kSkein;
  std::vector<Merge> merges_;
  std::vector<std::string> vocab_;  // bytes of every token
  FlatMap64<int32_t> rank_;         // BPE: (left << 32 | right) -> merge index
  int32_t eot_ = -1;
  uint64_t checksum_ = 0;
  std::shared_ptr<const Gpt2Vocab> gpt2_vocab_;  // GPT-2: what save() writes
  // GPT-2, and BPE with GPT-2's pieces: pre-tokenizer and BPE tables
  std::shared_ptr<const Gpt2Encoder> gpt2_;
};

}  // namespace skein
