// GPT-2's pre-tokenizer: the text is cut into pieces by OpenAI's pattern
//
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// matched with PCRE2 (JIT) in UTF-8 mode with Unicode properties (PCRE2's tables for \p{L} and
// \p{N}). \s is Unicode's White_Space property, as in tiktoken (Rust's regex) and in OpenAI's
// encoder.py (Python's `regex`): U+0009-U+000D, U+0020, U+0085, U+00A0, U+1680, U+2000-U+200A,
// U+2028, U+2029, U+202F, U+205F, U+3000. (JavaScript's \s differs: it has U+FEFF and lacks
// U+0085, so js-tiktoken and gpt-3-encoder cut text with those two characters differently.)
// The contractions are lowercase only: "'S" is "'" and "S", as in GPT-2.
//
// Gpt2Pieces::kDigits (SmolLM's tokenizer.json: Sequence[Digits(individual_digits), ByteLevel])
// first makes every \p{N} character a piece of its own, then cuts the text between with GPT-2's
// pattern, each stretch ending where a digit starts: "a  12" is "a", "  ", "1", "2" where GPT-2
// has "a", " ", " 12". llama.cpp calls this pre-tokenizer "smollm".
//
// Invalid UTF-8: the pattern works on Unicode text (tiktoken's encode takes a Python str), so
// every ill-formed sequence of the input is first replaced by U+FFFD (EF BF BD), one per maximal
// ill-formed subpart, exactly as Python's bytes.decode("utf-8", errors="replace") and the WHATWG
// decoder (Node's Buffer.toString, TextDecoder) do. For valid UTF-8, decode(encode(x)) == x;
// for other input it gives the replaced text.
//
// Cutting for threads and streaming: position i (0 < i < n) is a safe cut when the piece that
// holds byte i-1 ends at i whatever follows byte i, and the U+FFFD replacement restarts at i.
// safe_cut() decides that from bytes i-1 and i alone (see gpt2_pretokenize.cc for the proof),
// so pieces found between safe cuts are the pieces of the whole text, for any chunking. The
// same cuts are safe for kDigits (the proof covers it).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "data/gpt2_vocab.h"

namespace skein {

// Appends text[0, n) to *out with every ill-formed UTF-8 subpart replaced by U+FFFD; returns
// how many were replaced.
size_t sanitize_utf8(const uint8_t* text, size_t n, std::string* out);

// True when position i (0 < i, i < n) of the raw bytes is a safe cut (see above).
bool gpt2_safe_cut(const uint8_t* text, size_t i);

// For a text that may continue after text[0, n): the last safe cut whose character lies whole in
// text[0, n), 0 if none. The pieces (and the U+FFFD replacements) of text[0, p) are final
// whatever bytes follow.
size_t gpt2_stable_prefix(const uint8_t* text, size_t n);

// Cut points 0 = c_0 < c_1 < ... < c_k = end of text[0, end): each the first safe cut at or
// after a multiple of `chunk` bytes past the previous cut (n > end: bytes after end exist).
std::vector<size_t> gpt2_chunk_bounds(const uint8_t* text, size_t n, size_t end, size_t chunk);

// Finds the pieces of valid UTF-8 text. One matcher per thread: the compiled pattern is
// shared (read-only), the match data is the matcher's own.
class Gpt2PieceMatcher {
 public:
  explicit Gpt2PieceMatcher(Gpt2Pieces pieces = Gpt2Pieces::kGpt2);
  ~Gpt2PieceMatcher();
  Gpt2PieceMatcher(const Gpt2PieceMatcher&) = delete;
  Gpt2PieceMatcher& operator=(const Gpt2PieceMatcher&) = delete;

  // The end of the piece that starts at `at` (< n) of the valid UTF-8 subject[0, n). Bytes up to
  // n are look-ahead (\s+(?!\S) looks one character past its match).
  size_t piece_end(const uint8_t* subject, size_t n, size_t at);

 private:
  Gpt2Pieces pieces_;
  void* match_data_;  // pcre2_match_data_8, kept opaque so that pcre2.h stays out of headers
};

// Calls f(piece, length) for each piece of the raw bytes text[begin, end) after U+FFFD
// replacement (the piece points into *scratch). `begin` must be 0 or a safe cut; `end` a safe
// cut, n, or a document start (look_ahead false: the text ends there for the pattern). Returns
// how many ill-formed UTF-8 subparts were replaced.
template <typename F>
size_t for_each_gpt2_piece(Gpt2PieceMatcher& matcher, std::string* scratch, const uint8_t* text,
                           size_t n, size_t begin, size_t end, bool look_ahead, F&& f) {
  scratch->clear();
  const size_t replaced = sanitize_utf8(text + begin, end - begin, scratch);
  const size_t limit = scratch->size();
  // The next character, which only the pattern's look-ahead (\s+(?!\S)) may see.
  if (look_ahead && end < n) sanitize_utf8(text + end, std::min(n, end + 4) - end, scratch);
  const auto* b = reinterpret_cast<const uint8_t*>(scratch->data());
  for (size_t at = 0; at < limit;) {
    const size_t pe = matcher.piece_end(b, scratch->size(), at);
    SKEIN_CHECK(pe <= limit, "a GPT-2 piece crosses a safe cut");
    f(b + at, pe - at);
    at = pe;
  }
  return replaced;
}

// The pieces of a text (after U+FFFD replacement), as strings (for tests and tools).
std::vector<std::string> gpt2_pieces(const std::string& text,
                                     Gpt2Pieces pieces = Gpt2Pieces::kGpt2);

}  // namespace skein
