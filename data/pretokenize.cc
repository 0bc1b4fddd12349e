#include "data/pretokenize.h"

namespace skein {

using pretokenize_detail::local_boundary;

size_t stable_prefix(const uint8_t* text, size_t n) {
  if (n < 2) return 0;
  // Boundaries at i <= n - 2 are final: their one byte of look-ahead is known.
  size_t last = 0;
  for (size_t i = n - 2; i >= 1; --i) {
    if (local_boundary(text, n, i)) {
      last = i;
      break;
    }
  }
  // No local boundary after `last` up to n - 2, so the pieces from `last` on are cut by the
  // length cap alone, every kMaxPieceBytes bytes.
  return last + (n - 2 - last) / kMaxPieceBytes * kMaxPieceBytes;
}

std::vector<size_t> chunk_bounds(const uint8_t* text, size_t n, size_t end, size_t chunk) {
  std::vector<size_t> cuts{0};
  size_t pos = chunk;
  while (pos < end) {
    size_t i = pos;
    while (i < end && !local_boundary(text, n, i)) ++i;
    if (i >= end) break;
    cuts.push_back(i);
    pos = i + chunk;
  }
  if (end > 0) cuts.push_back(end);
  return cuts;
}

}  // namespace skein
