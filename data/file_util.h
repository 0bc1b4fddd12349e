// Files that are never seen half-written, and read-only memory maps.
//
// AtomicFile writes to a temporary file in the destination's directory; commit() flushes it
// (fsync), renames it over the destination and fsyncs the directory, so a crash at any moment
// leaves either the old file or the complete new one. A file that is never committed is removed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "base/status.h"

namespace skein {

// "No such file or directory" for errno e.
std::string errno_text(int e);

// CRC-32C of a whole file's bytes (e.g. to fingerprint a tokenizer file).
StatusOr<uint32_t> file_crc32c(const std::string& path);

class AtomicFile {
 public:
  // Creates the temporary file next to `path` (same directory, so the rename stays atomic).
  static StatusOr<AtomicFile> create(const std::string& path);

  AtomicFile(AtomicFile&& o) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  AtomicFile(const AtomicFile&) = delete;
  ~AtomicFile();  // removes the temporary file unless committed

  // Appends bytes at the end of what was written so far.
  Status write(const void* data, size_t bytes);
  // Overwrites bytes at `offset` (which must lie within what was written), e.g. a header that is
  // known only at the end.
  Status write_at(uint64_t offset, const void* data, size_t bytes);
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Where the bytes are until commit() (e.g. to map what was written).
  const std::string& temp_path() const { return temp_path_; }

  // fsync, rename into place, fsync the directory. The object is spent afterwards.
  Status commit();

 private:
  AtomicFile(std::string path, std::string temp_path, int fd)
      : path_(std::move(path)), temp_path_(std::move(temp_path)), fd_(fd) {}
  std::string path_, temp_path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// A whole file mapped read-only. Pages are loaded on demand, so files larger than RAM work.
class MappedFile {
 public:
  static StatusOr<MappedFile> open(const std::string& path);

  MappedFile() = default;
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Access-pattern hints (madvise); failures are ignored, they only affect speed.
  void advise_sequential() const;
  void advise_random() const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Creates `dir` and its missing parents; an error names the first component that failed.
Status make_dirs(const std::string& dir);

}  // namespace skein
