#include "data/gpt2_pretokenize.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "base/check.h"

namespace skein {

namespace {

// GPT-2's pattern with \s spelled as \p{White_Space}: PCRE2's own \s (with PCRE2_UCP) also
// matches U+180E, which is no longer White_Space (Unicode 6.3) and is not \s in tiktoken.
constexpr char kPattern[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+)"
    R"(|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+)";

// Gpt2Pieces::kDigits in one pattern. Hugging Face cuts the text at every \p{N} character
// (Rust's char::is_numeric: Nd, Nl, No), keeps each alone, and matches GPT-2's pattern on each
// stretch between them, where a stretch's end is the end of the text. Here: " ?\p{N}+" becomes
// "\p{N}" (no other alternative can take or cross a digit: letters, the punctuation class and
// white space all exclude \p{N}), and the look-ahead (?!\S) becomes (?![^\s\p{N}]), since a digit
// after white space is where the stretch ends.
constexpr char kDigitsPattern[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+|\p{N}| ?[^\p{White_Space}\p{L}\p{N}]+)"
    R"(|\p{White_Space}+(?![^\p{White_Space}\p{N}])|\p{White_Space}+)";

// A compiled pattern: compiled (and JIT-compiled) once, then only read, by any thread.
struct Pattern {
  pcre2_code* code = nullptr;
  bool jit = false;
  explicit Pattern(const char* text) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(text), PCRE2_ZERO_TERMINATED,
                         PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &error, &offset, nullptr);
    SKEIN_CHECK(code != nullptr, "GPT-2's pattern does not compile with this PCRE2");
    // Without JIT (a PCRE2 built without it, or no executable memory) the interpreter matches
    // the same, only slower.
    jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  }
};

const Pattern& pattern(Gpt2Pieces pieces) {
  static const Pattern gpt2(kPattern);
  static const Pattern digits(kDigitsPattern);
  return pieces == Gpt2Pieces::kDigits ? digits : gpt2;
}

// Raw-byte classes for the safe-cut rule; only ASCII is classified.
enum Cls : uint8_t { kL, kN, kP, kQ, kS, kW, kO };

constexpr Cls cls(uint8_t b) {
  if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')) return kL;
  if (b >= '0' && b <= '9') return kN;
  if (b == '\'') return kQ;
  if (b == ' ') return kS;
  if (b >= '\t' && b <= '\r') return kW;
  if (b > ' ' && b < 0x7F) return kP;
  return kO;  // other control bytes and everything >= 0x80
}

// Bytes that begin a non-White_Space character once the text is sanitized: printable ASCII,
// and every byte >= 0x80 except the lead bytes of the White_Space characters beyond ASCII
// (C2: U+0085, U+00A0; E1: U+1680; E2: U+2000-U+205F; E3: U+3000). A byte that is not the
// start of a valid sequence becomes U+FFFD, which is not White_Space either.
constexpr bool starts_non_space(uint8_t b) {
  if (b > ' ' && b < 0x7F) return true;
  return b >= 0x80 && b != 0xC2 && b != 0xE1 && b != 0xE2 && b != 0xE3;
}

}  // namespace

size_t sanitize_utf8(const uint8_t* text, size_t n, std::string* out) {
  static constexpr char kReplacement[] = "\xEF\xBF\xBD";
  size_t replaced = 0;
  size_t i = 0, run = 0;  // text[run, i) is valid and not yet copied
  while (i < n) {
    const uint8_t b = text[i];
    if (b < 0x80) {
      ++i;
      continue;
    }
    // Length and the allowed range of the second byte (Unicode 15, table 3-7).
    int len = 0;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;  // no surrogates
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
    }
    int k = 1;  // bytes of a valid prefix of the sequence
    if (len > 0) {
      if (i + 1 < n && text[i + 1] >= lo && text[i + 1] <= hi) {
        k = 2;
        while (k < len && i + k < n && (text[i + k] & 0xC0) == 0x80) ++k;
      }
    }
    if (k == len) {
      i += len;
      continue;
    }
    // text[i, i + k) is a maximal ill-formed subpart: one U+FFFD for it.
    out->append(reinterpret_cast<const char*>(text + run), i - run);
    out->append(kReplacement, 3);
    ++replaced;
    i += k;
    run = i;
  }
  out->append(reinterpret_cast<const char*>(text + run), n - run);
  return replaced;
}

// Why these cuts are safe. Every character is matched by one of \p{L}, \p{N}, \s and the
// punctuation class [^\s\p{L}\p{N}], so the pieces tile the text and each match starts where
// the last one ended. Let a = text[i-1] and c = text[i]; a is ASCII in every rule, so the
// U+FFFD replacement restarts at i.
//  - a is a letter, c an ASCII non-letter (digit, punctuation, ', space, \t..\r): the piece
//    holding a is a run of letters (greedy, it stops at c) or a contraction ending at a (a
//    contraction continuing past a would need c to be a letter).
//  - a is a digit, c an ASCII letter, punctuation, ', space or \t..\r: the digit run stops at c.
//  - a is punctuation other than ', c an ASCII letter, digit, space or \t..\r: the punctuation
//    run stops at c, and a cannot be inside a contraction (they start with ').
//  - a is one of \t..\r, c starts a non-space character: the piece holding a is a whitespace
//    match (no other alternative takes \t..\r). The whitespace run ends at i because c is not
//    \s; \s+(?!\S) then gives back the run's last character, which \s+ matches alone. Either way
//    the piece ends at i.
// In each case the pieces before i depend on the bytes up to and including c only, and the
// match after i starts at i, so it depends on nothing before i (the pattern has no look-behind).
// A single space never ends a cut: " ?\p{L}+" joins it to the word after it.
// With Gpt2Pieces::kDigits (kDigitsPattern) each case holds too: a digit is a piece alone, so it
// ends at i; a letter, punctuation or white-space run stops before a digit as before; and a
// white-space run before a digit is matched whole by its first alternative, ending at i.
bool gpt2_safe_cut(const uint8_t* text, size_t i) {
  const Cls a = cls(text[i - 1]);
  const uint8_t c = text[i];
  const Cls k = cls(c);
  switch (a) {
    case kL:
      return k == kN || k == kP || k == kQ || k == kS || k == kW;
    case kN:
      return k == kL || k == kP || k == kQ || k == kS || k == kW;
    case kP:
      return k == kL || k == kN || k == kS || k == kW;
    case kW:
      return starts_non_space(c);
    default:
      return false;
  }
}

size_t gpt2_stable_prefix(const uint8_t* text, size_t n) {
  for (size_t i = n; i-- > 1;) {
    // The character at a cut must be whole in the buffer: with Gpt2Pieces::kDigits, how a white
    // space run before it is cut depends on whether it is a digit, which its lead byte alone
    // does not say (a lone lead byte would be seen as U+FFFD). A byte that cannot lead a valid
    // sequence becomes U+FFFD whatever follows.
    const uint8_t c = text[i];
    const size_t len = c >= 0xF0 && c <= 0xF4   ? 4
                       : c >= 0xE0 && c <= 0xEF ? 3
                       : c >= 0xC2 && c <= 0xDF ? 2
                                                : 1;
    if (i + len <= n && gpt2_safe_cut(text, i)) return i;
  }
  return 0;
}

std::vector<size_t> gpt2_chunk_bounds(const uint8_t* text, size_t n, size_t end, size_t chunk) {
  SKEIN_CHECK(end <= n && chunk > 0);
  std::vector<size_t> cuts{0};
  size_t pos = chunk;
  while (pos < end) {
    size_t i = pos;
    while (i < end && !gpt2_safe_cut(text, i)) ++i;
    if (i >= end) break;
    cuts.push_back(i);
    pos = i + chunk;
  }
  if (end > 0) cuts.push_back(end);
  return cuts;
}

Gpt2PieceMatcher::Gpt2PieceMatcher(Gpt2Pieces pieces)
    : pieces_(pieces),
      match_data_(pcre2_match_data_create_from_pattern(pattern(pieces).code, nullptr)) {
  SKEIN_CHECK(match_data_ != nullptr, "out of memory for PCRE2 match data");
}

Gpt2PieceMatcher::~Gpt2PieceMatcher() {
  pcre2_match_data_free(static_cast<pcre2_match_data*>(match_data_));
}

size_t Gpt2PieceMatcher::piece_end(const uint8_t* subject, size_t n, size_t at) {
  const Pattern& p = pattern(pieces_);
  auto* md = static_cast<pcre2_match_data*>(match_data_);
  int rc =
      p.jit ? pcre2_jit_match(p.code, subject, n, at, 0, md, nullptr) : PCRE2_ERROR_JIT_BADOPTION;
  if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
    // No JIT, or its stack ran out (it should not for this pattern): the interpreter, on the heap.
    rc = pcre2_match(p.code, subject, n, at, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, nullptr);
  }
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
  SKEIN_CHECK(rc > 0 && ov[0] == at && ov[1] > at,
              "GPT-2's pattern did not match a piece where every character starts one");
  return ov[1];
}

std::vector<std::string> gpt2_pieces(const std::string& text, Gpt2Pieces pieces) {
  std::string clean;
  sanitize_utf8(reinterpret_cast<const uint8_t*>(text.data()), text.size(), &clean);
  const auto* p = reinterpret_cast<const uint8_t*>(clean.data());
  Gpt2PieceMatcher m(pieces);
  std::vector<std::string> out;
  for (size_t at = 0; at < clean.size();) {
    const size_t e = m.piece_end(p, clean.size(), at);
    out.push_back(clean.substr(at, e - at));
    at = e;
  }
  return out;
}

}  // namespace skein
