// Pre-tokenization: before BPE, text is cut into pieces, and merges never cross a piece boundary.
// This keeps tokens word-like, lets training work on a table of distinct pieces with counts, and
// lets encoding run in parallel over chunks of text.
//
// Bytes fall into classes: letter (A-Z, a-z and every byte >= 0x80, so UTF-8 sequences stay
// inside words), digit, punctuation (every other non-space byte), space (' ') and other
// whitespace (\t \n \v \f \r). A piece is a run of one class, where a single space right before
// a letter, digit or punctuation run joins that run (" the", " 42", " --"); in a run of several
// spaces the last one joins the following word. Pieces longer than kMaxPieceBytes are cut every
// kMaxPieceBytes bytes from their start.
//
// Whether position i is a boundary (not counting the length cap) depends only on bytes i-1, i
// and i+1, so a boundary found anywhere is a boundary of the whole text. Chunking for threads
// and streaming in blocks cut only there, so the pieces (and the tokens) never depend on the
// thread count or the block size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace skein {

inline constexpr size_t kMaxPieceBytes = 64;

// Calls f(piece_begin, piece_end) for each piece of text[begin, end) in order. `begin` must be
// a piece start. Bytes at and after `end` (up to n) are only looked at to decide boundaries; a
// text that continues past n must be cut with stable_prefix first.
template <typename F>
void for_each_piece(const uint8_t* text, size_t n, size_t begin, size_t end, F&& f);

// For a text that may continue after text[0, n): the longest prefix [0, p) whose pieces are
// final whatever bytes follow. text[0] must be a piece start. p > n - 2 - kMaxPieceBytes for
// n > kMaxPieceBytes + 2, so the carried-over rest stays short.
size_t stable_prefix(const uint8_t* text, size_t n);

// Cut points 0 = c_0 < c_1 < ... < c_k = end of text[0, end) near multiples of `chunk` bytes,
// each a piece boundary, for processing the pieces of a text in parallel (n as above).
std::vector<size_t> chunk_bounds(const uint8_t* text, size_t n, size_t end, size_t chunk);

namespace pretokenize_detail {

enum ByteClass : uint8_t { kLetter, kDigit, kPunct, kSpace, kOtherSpace, kEnd };

constexpr ByteClass byte_class(uint8_t b) {
  if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || b >= 0x80) return kLetter;
  if (b >= '0' && b <= '9') return kDigit;
  if (b == ' ') return kSpace;
  if (b == '\t' || b == '\n' || b == '\v' || b == '\f' || b == '\r') return kOtherSpace;
  return kPunct;
}

inline bool is_word(ByteClass c) {
  return c == kLetter || c == kDigit || c == kPunct;
}

// Boundary between bytes i-1 and i (0 < i < n) by the local rule, ignoring the length cap.
inline bool local_boundary(const uint8_t* text, size_t n, size_t i) {
  const ByteClass a = byte_class(text[i - 1]), c = byte_class(text[i]);
  if (a == kSpace) {
    const ByteClass next = i + 1 < n ? byte_class(text[i + 1]) : kEnd;
    if (c == kSpace) return is_word(next);  // the run's last space joins the next word
    return !is_word(c);                     // a single space joins the word after it
  }
  return a != c;
}

}  // namespace pretokenize_detail

template <typename F>
void for_each_piece(const uint8_t* text, size_t n, size_t begin, size_t end, F&& f) {
  size_t start = begin;
  while (start < end) {
    size_t j = start + 1;
    while (j < end && j - start < kMaxPieceBytes &&
           !pretokenize_detail::local_boundary(text, n, j)) {
      ++j;
    }
    f(start, j);
    start = j;
  }
}

}  // namespace skein
