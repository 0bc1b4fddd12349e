// Reads a text file, plain or gzip-compressed (zlib detects which from the content), in blocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/status.h"

namespace skein {

class TextReader {
 public:
  static StatusOr<TextReader> open(const std::string& path);
  TextReader(TextReader&& o) noexcept;
  TextReader& operator=(TextReader&&) = delete;
  TextReader(const TextReader&) = delete;
  ~TextReader();

  // Reads up to n bytes of text into buf; 0 at the end. Errors name the file (e.g. a corrupt or
  // truncated .gz).
  StatusOr<size_t> read(char* buf, size_t n);
  // Bytes of the file consumed so far (compressed bytes for gzip) and the file's size, for
  // progress reports.
  uint64_t file_offset() const;
  uint64_t file_size() const { return file_size_; }
  const std::string& path() const { return path_; }

 private:
  TextReader(std::string path, void* gz, uint64_t size)
      : path_(std::move(path)), gz_(gz), file_size_(size) {}
  std::string path_;
  void* gz_ = nullptr;  // gzFile, kept opaque so that zlib.h stays out of this header
  uint64_t file_size_ = 0;
};

}  // namespace skein
