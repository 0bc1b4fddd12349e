// A small open-addressing hash map from 64-bit keys to values, for the tokenizer's pair tables
// (a token pair (a, b) is the key a << 32 | b). No erase: counts that drop to zero stay.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "base/check.h"
#include "base/rng.h"

namespace skein {

template <typename V>
class FlatMap64 {
 public:
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // the one key that cannot be stored

  explicit FlatMap64(size_t expected = 16) { rehash(capacity_for(expected)); }

  // The value of key, inserted as V{} if missing.
  V& operator[](uint64_t key) {
    SKEIN_CHECK(key != kEmpty);
    if (2 * (size_ + 1) > keys_.size()) rehash(keys_.size() * 2);
    size_t i = slot(key);
    if (keys_[i] == kEmpty) {
      keys_[i] = key;
      values_[i] = V{};
      ++size_;
    }
    return values_[i];
  }
  const V* find(uint64_t key) const {
    size_t i = slot(key);
    return keys_[i] == kEmpty ? nullptr : &values_[i];
  }
  V* find(uint64_t key) {
    size_t i = slot(key);
    return keys_[i] == kEmpty ? nullptr : &values_[i];
  }
  size_t size() const { return size_; }

  // f(key, value) for every entry, in slot order (not insertion order).
  template <typename F>
  void for_each(F&& f) const {
    for (size_t i = 0; i < keys_.size(); ++i) {
      if (keys_[i] != kEmpty) f(keys_[i], values_[i]);
    }
  }

 private:
  static size_t capacity_for(size_t n) {
    size_t c = 16;
    while (c < 2 * n) c *= 2;
    return c;
  }
  // Linear probing: the slot holding key, or the empty slot where it would go.
  size_t slot(uint64_t key) const {
    const size_t mask = keys_.size() - 1;
    size_t i = mix64(key) & mask;
    while (keys_[i] != kEmpty && keys_[i] != key) i = (i + 1) & mask;
    return i;
  }
  void rehash(size_t capacity) {
    std::vector<uint64_t> old_keys(capacity, kEmpty);
    std::vector<V> old_values(capacity);
    old_keys.swap(keys_);
    old_values.swap(values_);
    for (size_t i = 0; i < old_keys.size(); ++i) {
      if (old_keys[i] != kEmpty) {
        size_t j = slot(old_keys[i]);
        keys_[j] = old_keys[i];
        values_[j] = std::move(old_values[i]);
      }
    }
  }

  std::vector<uint64_t> keys_;
  std::vector<V> values_;
  size_t size_ = 0;
};

}  // namespace skein
