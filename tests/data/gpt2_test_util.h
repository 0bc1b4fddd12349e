// Small GPT-2-style vocabularies for the tests: GPT-2's 256 byte tokens (ids 0..255 in GPT-2's
// order), one token per merge (ids 256.., in merge order) and <|endoftext|> last, written as
// Hugging Face's vocab.json + merges.txt or as OpenAI's encoder.json + vocab.bpe.
#pragma once

#include <algorithm>
#include <array>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "base/rng.h"
#include "data/bpe_trainer.h"
#include "data/gpt2_vocab.h"
#include "tests/data/data_test_util.h"

namespace skein::testing {

// Bytes -> GPT-2's byte characters, as UTF-8 (a space is "Ġ", U+0120).
inline std::string gpt2_chars(const std::string& bytes) {
  return gpt2_spelling(bytes);
}

// A JSON string literal; with ascii, every non-ASCII character as \uXXXX (as Python's json.dump
// writes OpenAI's encoder.json), else raw UTF-8 (as Hugging Face's vocab.json).
inline std::string json_string(const std::string& utf8, bool ascii) {
  std::string out = "\"";
  for (size_t i = 0; i < utf8.size();) {
    const auto b = static_cast<unsigned char>(utf8[i]);
    if (b == '"' || b == '\\') {
      out += '\\';
      out += static_cast<char>(b);
      ++i;
    } else if (b < 0x80 || !ascii) {
      out += static_cast<char>(b);
      ++i;
    } else {  // two-byte sequences only: GPT-2's characters are below U+0800
      const uint32_t cp = (b & 0x1F) << 6 | (static_cast<unsigned char>(utf8[i + 1]) & 0x3F);
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", cp);
      out += buf;
      i += 2;
    }
  }
  return out + "\"";
}

struct MiniGpt2 {
  std::vector<std::pair<std::string, std::string>> merges;  // as bytes, in rank order

  // Token bytes by id.
  std::vector<std::string> tokens() const {
    std::array<int, 256> order;
    for (int b = 0; b < 256; ++b) order[b] = b;
    std::sort(order.begin(), order.end(),
              [](int a, int b) { return gpt2_byte_char(a) < gpt2_byte_char(b); });
    std::vector<std::string> t;
    for (int b : order) t.push_back(std::string(1, static_cast<char>(b)));
    for (const auto& [l, r] : merges) t.push_back(l + r);
    t.push_back(kGpt2EndOfText);
    return t;
  }
  std::string json(bool openai) const {
    const auto t = tokens();
    std::string s = "{";
    for (size_t id = 0; id < t.size(); ++id) {
      if (id) s += openai ? ", " : ",";
      s += json_string(gpt2_chars(t[id]), openai) + (openai ? ": " : ":") + std::to_string(id);
    }
    return s + "}";
  }
  std::string merges_text(bool final_newline) const {
    std::string s = "#version: 0.2";
    for (const auto& [l, r] : merges) {
      s += '\n';
      s += gpt2_chars(l);
      s += ' ';
      s += gpt2_chars(r);
    }
    return final_newline ? s + "\n" : s;
  }
  void write_hf(const std::string& dir) const {
    write_bytes(dir + "/vocab.json", json(false));
    write_bytes(dir + "/merges.txt", merges_text(false));
  }
  void write_openai(const std::string& dir) const {
    write_bytes(dir + "/encoder.json", json(true));
    write_bytes(dir + "/vocab.bpe", merges_text(true));
  }
  // Hugging Face's tokenizer.json of the same vocabulary: pre-tokenizer ByteLevel (GPT-2's) or,
  // with digits, Sequence[Digits(individual_digits), ByteLevel] (SmolLM's); merges as "a b"
  // strings or, with pairs, as ["a", "b"]; <|endoftext|> as an added token.
  std::string tokenizer_json(bool digits, bool pairs) const {
    const std::string byte_level =
        R"({"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true})";
    const std::string pre =
        digits
            ? R"({"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},)" +
                  byte_level + "]}"
            : byte_level;
    // append, not operator+ on a literal: GCC 12 at -O3 reports a false -Wrestrict (bug 105329)
    std::string m;
    for (const auto& [l, r] : merges) {
      if (!m.empty()) m.push_back(',');
      if (pairs) {
        m.push_back('[');
        m.append(json_string(gpt2_chars(l), false));
        m.push_back(',');
        m.append(json_string(gpt2_chars(r), false));
        m.push_back(']');
      } else {
        m.append(json_string(gpt2_chars(l) + " " + gpt2_chars(r), false));
      }
    }
    const size_t eot = tokens().size() - 1;
    return R"({"version":"1.0","truncation":null,"padding":null,"added_tokens":[{"id":)" +
           std::to_string(eot) +
           R"(,"content":"<|endoftext|>","single_word":false,"lstrip":false,"rstrip":false,)"
           R"("normalized":true,"special":true}],"normalizer":null,"pre_tokenizer":)" +
           pre + R"(,"post_processor":)" + byte_level + R"(,"decoder":)" + byte_level +
           R"(,"model":{"type":"BPE","dropout":null,"unk_token":null,)"
           R"("continuing_subword_prefix":"","end_of_word_suffix":"","fuse_unk":false,)"
           R"("byte_fallback":false,"ignore_merges":false,"vocab":)" +
           json(false) + R"(,"merges":[)" + m + "]}}";
  }
  StatusOr<Gpt2Vocab> parse() const {
    return parse_gpt2_vocab(json(false), "vocab.json", merges_text(true), "merges.txt");
  }
};

// Text with words, contractions, digits, runs of spaces, tabs and newlines, UTF-8 letters,
// combining marks, CJK and emoji.
inline std::string gpt2_texty(size_t n, uint64_t seed) {
  static const char* kParts[] = {"the",   " cat",     "  ",      " sat",    ",",          "\n",
                                 "\n\n",  " 1234567", "---",     "été",     "  on",       " mat.",
                                 "\t",    " ",        "a",       "'s",      " it's",      " DON'T",
                                 " 3.14", " naïve",   "e\u0301", " 你好",   "\U0001F600", "\r\n",
                                 "   \n", " ",        "zz",      " \u00A0", "!?"};
  Rng rng(seed);
  std::string s;
  while (s.size() < n) {
    if (rng.below(300) == 0) {
      const size_t run = rng.below(400);  // one draw per statement: the same text for any compiler
      s += std::string(run, " \nx"[rng.below(3)]);
    } else {
      s += kParts[rng.below(std::size(kParts))];
    }
  }
  return s;
}

// Merges learned by skein's BPE trainer from gpt2_texty text: realistic, and many of them.
inline MiniGpt2 trained_mini_gpt2(int merges) {
  BpeTrainer trainer;
  trainer.add_text(gpt2_texty(200000, 77));
  auto t = trainer.train(256 + merges);
  SKEIN_CHECK(t.ok(), "training the test vocabulary failed");
  MiniGpt2 v;
  std::vector<std::string> made;  // BPE may make the same bytes twice ("a"+"bc", "ab"+"c")
  for (const Merge& m : t->merges()) {
    const std::string l = t->token_bytes(m.left), r = t->token_bytes(m.right);
    if (std::find(made.begin(), made.end(), l + r) != made.end()) continue;
    made.push_back(l + r);
    v.merges.push_back({l, r});
  }
  return v;
}

}  // namespace skein::testing
