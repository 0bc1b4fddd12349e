// Fuzzes GPT-2's encoder on arbitrary bytes (U+FFFD replacement, the PCRE2 pre-tokenizer, the
// safe cuts, the BPE loop and heap) with a small vocabulary of GPT-2's form. Input: one byte B,
// then the text. Checks: decode(encode(x)) is x with U+FFFD for invalid UTF-8; every safe cut
// is a piece boundary; encoding in blocks of 1 + B bytes cut by stable_prefix, with a document
// start after every "\n\n", gives the tokens of the documents encoded one by one. The same
// merges as a skein BPE with GPT-2's pieces (the merge-list rules): decode(encode(x)) is x with
// U+FFFD, the ids equal a naive twin of llama.cpp's merge loop, and streaming changes nothing.
// The same vocabulary cut with every digit alone (SmolLM's tokenizer.json): decode(encode(x)) is
// x with U+FFFD, and streaming changes nothing.
#include <cstdint>
#include <string>
#include <vector>

#include "data/gpt2_pretokenize.h"
#include "data/gpt2_vocab.h"
#include "data/tokenizer.h"

namespace {

const skein::Tokenizer& tokenizer() {
  static const skein::Tokenizer t = [] {
    static const char* kMerges[][2] = {
        {"t", "h"},   {"h", "e"},       {" ", "t"},           {" t", "he"},     {"i", "n"},
        {" ", "a"},   {"e", "r"},       {"in", "g"},          {" ", " "},       {"  ", "  "},
        {"\n", "\n"}, {"\xC3", "\xA9"}, {"1", "2"},           {"12", "3"},      {"'", "s"},
        {" ", "\n"},  {"a", "a"},       {"aa", "aa"},         {"aaaa", "aaaa"}, {"a", "aa"},
        {"!", "!"},   {"\xEF", "\xBF"}, {"\xEF\xBF", "\xBD"}, {"e", "\xCC"},    {"\xCC", "\x81"}};
    skein::Gpt2Vocab v;
    for (int b = 0; b < 256; ++b) {
      v.byte_ids[b] = b;
      v.tokens.push_back(std::string(1, static_cast<char>(b)));
    }
    auto id = [&](const std::string& s) {
      for (size_t i = 0; i < v.tokens.size(); ++i) {
        if (v.tokens[i] == s) return static_cast<int32_t>(i);
      }
      __builtin_trap();
    };
    for (const auto& m : kMerges) {
      v.merges.push_back({id(m[0]), id(m[1]), static_cast<int32_t>(v.tokens.size())});
      v.tokens.push_back(std::string(m[0]) + m[1]);
    }
    v.eot = static_cast<int32_t>(v.tokens.size());
    v.specials = {v.eot};
    v.tokens.push_back(skein::kGpt2EndOfText);
    auto tok = skein::Tokenizer::from_gpt2(std::move(v));
    if (!tok.ok()) __builtin_trap();
    return std::move(*tok);
  }();
  return t;
}

// The same vocabulary cut as SmolLM's tokenizer.json cuts (every digit alone), merged by the
// merge list.
const skein::Tokenizer& digits_tokenizer() {
  static const skein::Tokenizer t = [] {
    skein::Gpt2Vocab v;
    for (int b = 0; b < 256; ++b) v.byte_ids[b] = b;
    for (int id = 0; id < tokenizer().vocab_size(); ++id)
      v.tokens.push_back(tokenizer().token_bytes(id));
    const auto& m = tokenizer().merges();
    for (size_t i = 0; i < m.size(); ++i)
      v.merges.push_back({m[i].left, m[i].right, 256 + int32_t(i)});
    v.eot = tokenizer().eot_id();
    v.specials = {v.eot};
    v.pieces = skein::Gpt2Pieces::kDigits;
    v.rules = skein::Gpt2Rules::kMergeList;
    auto tok = skein::Tokenizer::from_gpt2(std::move(v));
    if (!tok.ok()) __builtin_trap();
    return std::move(*tok);
  }();
  return t;
}

// Streams text in blocks of `block` bytes cut by stable_prefix: the tokens of the whole text.
void check_streaming(const skein::Tokenizer& t, const std::string& text, size_t block,
                     const std::vector<int32_t>& whole) {
  std::vector<uint16_t> streamed;
  std::string buf;
  for (size_t read = 0;;) {
    const size_t take = std::min(block, text.size() - read);
    buf += text.substr(read, take);
    read += take;
    const bool last = read == text.size();
    const size_t end = last ? buf.size() : t.stable_prefix(buf);
    t.encode_prefix(buf, end, &streamed);
    buf.erase(0, end);
    if (last) break;
  }
  if (!std::equal(whole.begin(), whole.end(), streamed.begin(), streamed.end())) __builtin_trap();
}

// The same merges (byte b is token b in both) in a BPE tokenizer with GPT-2's pieces.
const skein::Tokenizer& bpe_tokenizer() {
  static const skein::Tokenizer t = [] {
    std::vector<skein::Merge> merges;
    for (const skein::Merge& m : tokenizer().merges()) merges.push_back(m);
    auto tok = skein::Tokenizer::from_merges(merges, skein::BpePieces::kGpt2);
    if (!tok.ok()) __builtin_trap();
    return std::move(*tok);
  }();
  return t;
}

// llama.cpp's loop, naively: per piece, merge the leftmost listed pair of lowest rank.
std::vector<int32_t> merge_list_twin(const skein::Tokenizer& t, const std::string& clean) {
  std::vector<int32_t> out;
  for (const std::string& piece : skein::gpt2_pieces(clean)) {
    std::vector<int32_t> ids(piece.begin(), piece.end());
    for (auto& id : ids) id &= 0xFF;
    for (;;) {
      size_t best = t.merges().size(), at = 0;
      for (size_t i = 0; i + 1 < ids.size(); ++i) {
        for (size_t r = 0; r < best; ++r) {
          if (t.merges()[r].left == ids[i] && t.merges()[r].right == ids[i + 1]) best = r, at = i;
        }
      }
      if (best == t.merges().size()) break;
      ids[at] = 256 + static_cast<int32_t>(best);
      ids.erase(ids.begin() + static_cast<long>(at) + 1);
    }
    out.insert(out.end(), ids.begin(), ids.end());
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const skein::Tokenizer& tok = tokenizer();
  const size_t block = 1 + data[0];
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string clean;
  skein::sanitize_utf8(reinterpret_cast<const uint8_t*>(text.data()), text.size(), &clean);
  const std::vector<int32_t> ids = tok.encode(text);
  auto back = tok.decode(ids);
  if (!back.ok() || *back != clean) __builtin_trap();

  std::vector<bool> boundary(clean.size() + 1, false);
  size_t at = 0;
  for (const auto& p : skein::gpt2_pieces(clean)) boundary[at += p.size()] = true;
  if (at != clean.size()) __builtin_trap();
  if (clean == text) {
    for (size_t i = 1; i < text.size(); ++i) {
      if (skein::gpt2_safe_cut(reinterpret_cast<const uint8_t*>(text.data()), i) && !boundary[i]) {
        __builtin_trap();
      }
    }
  }

  // documents after every "\n\n", as prepare_data --doc_separator blank_line
  std::vector<int32_t> want = {tok.eot_id()};
  for (size_t s = 0;;) {
    const size_t cut = text.find("\n\n", s);
    const size_t e = cut == std::string::npos ? text.size() : cut + 2;
    for (int32_t id : tok.encode(text.substr(s, e - s))) want.push_back(id);
    if (cut == std::string::npos) break;
    want.push_back(tok.eot_id());
    s = e;
  }
  std::vector<uint16_t> streamed;
  std::string buf;
  std::vector<size_t> starts;
  bool pending = true;  // the first document starts with the first text that is final
  for (size_t read = 0;;) {
    const size_t take = std::min(block, text.size() - read);
    buf += text.substr(read, take);
    read += take;
    const bool last = read == text.size();
    const size_t end = last ? buf.size() : tok.stable_prefix(buf);
    starts.clear();
    if (pending && (end > 0 || last)) {
      starts.push_back(0);
      pending = false;
    }
    for (size_t i = 0; i + 1 < end;) {
      if (buf[i] == '\n' && buf[i + 1] == '\n') {
        starts.push_back(i + 2);
        i += 2;
      } else {
        ++i;
      }
    }
    tok.encode_prefix(buf, end, &streamed, starts);
    buf.erase(0, end);
    if (last) break;
  }
  if (!std::equal(want.begin(), want.end(), streamed.begin(), streamed.end())) __builtin_trap();

  const skein::Tokenizer& bpe = bpe_tokenizer();
  const std::vector<int32_t> bpe_ids = bpe.encode(text);
  auto bpe_back = bpe.decode(bpe_ids);
  if (!bpe_back.ok() || *bpe_back != clean) __builtin_trap();
  if (bpe_ids != merge_list_twin(bpe, clean)) __builtin_trap();
  check_streaming(bpe, text, block, bpe_ids);

  const skein::Tokenizer& digits = digits_tokenizer();
  const std::vector<int32_t> digit_ids = digits.encode(text);
  auto digits_back = digits.decode(digit_ids);
  if (!digits_back.ok() || *digits_back != clean) __builtin_trap();
  check_streaming(digits, text, block, digit_ids);
  return 0;
}
