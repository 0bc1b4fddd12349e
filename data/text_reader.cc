#include "data/text_reader.h"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "data/file_util.h"

namespace skein {

StatusOr<TextReader> TextReader::open(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    int e = errno;
    return Status::error("cannot read input file " + path + ": " + errno_text(e) +
                         ". HINT: check the path");
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::error("input " + path + " is not a regular file. HINT: pass text files");
  }
  gzFile gz = gzopen(path.c_str(), "rb");
  if (!gz) {
    int e = errno;
    return Status::error("cannot open input file " + path + ": " + errno_text(e) +
                         ". HINT: check that it is readable");
  }
  gzbuffer(gz, 1 << 18);
  return TextReader(path, gz, static_cast<uint64_t>(st.st_size));
}

TextReader::TextReader(TextReader&& o) noexcept
    : path_(std::move(o.path_)), gz_(std::exchange(o.gz_, nullptr)), file_size_(o.file_size_) {}

TextReader::~TextReader() {
  if (gz_) gzclose(static_cast<gzFile>(gz_));
}

StatusOr<size_t> TextReader::read(char* buf, size_t n) {
  auto* gz = static_cast<gzFile>(gz_);
  size_t total = 0;
  while (total < n) {
    const unsigned want = static_cast<unsigned>(std::min<size_t>(n - total, 1u << 30));
    const int got = gzread(gz, buf + total, want);
    if (got < 0) {
      int code = 0;
      const char* msg = gzerror(gz, &code);
      return Status::error("reading " + path_ + " failed: " + msg +
                           ". HINT: the file is corrupt or truncated (a .gz must be complete)");
    }
    if (got == 0) {
      // A gzip stream cut short reads as a clean end of data unless we ask.
      int code = 0;
      const char* msg = gzerror(gz, &code);
      if (code != Z_OK && code != Z_STREAM_END) {
        return Status::error("reading " + path_ + " failed: " + msg +
                             ". HINT: the file is corrupt or truncated (a .gz must be complete)");
      }
      break;
    }
    total += static_cast<size_t>(got);
  }
  return total;
}

uint64_t TextReader::file_offset() const {
  const z_off_t off = gzoffset(static_cast<gzFile>(gz_));
  return off < 0 ? 0 : static_cast<uint64_t>(off);
}

}  // namespace skein
