#include "data/file_util.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "base/crc32c.h"

namespace skein {

std::string errno_text(int e) {
  char buf[256];
  // GNU strerror_r returns the message, which may or may not live in buf.
  return strerror_r(e, buf, sizeof(buf));
}

namespace {

std::string dir_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return Status::error("cannot open directory " + dir + " to flush it: " + errno_text(errno));
  }
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0) return Status::error("fsync of directory " + dir + " failed: " + errno_text(e));
  return {};
}

}  // namespace

StatusOr<AtomicFile> AtomicFile::create(const std::string& path) {
  std::string temp = path + ".tmp.XXXXXX";
  std::vector<char> name(temp.begin(), temp.end());
  name.push_back('\0');
  int fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return Status::error("cannot create " + path + " (temporary file " + temp +
                         "): " + errno_text(e) +
                         ". HINT: check that the directory exists and is writable, and that the "
                         "disk is not full");
  }
  return AtomicFile(path, std::string(name.data()), fd);
}

AtomicFile::AtomicFile(AtomicFile&& o) noexcept
    : path_(std::move(o.path_)),
      temp_path_(std::move(o.temp_path_)),
      fd_(std::exchange(o.fd_, -1)),
      size_(o.size_) {}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(temp_path_.c_str());
  }
}

Status AtomicFile::write(const void* data, size_t bytes) {
  SKEIN_RETURN_IF_ERROR(write_at(size_, data, bytes));
  return {};
}

Status AtomicFile::write_at(uint64_t offset, const void* data, size_t bytes) {
  SKEIN_CHECK(fd_ >= 0, "write to a committed AtomicFile");
  SKEIN_CHECK(offset <= size_, "write_at past the end of the file");
  const char* p = static_cast<const char*>(data);
  uint64_t at = offset;
  size_t left = bytes;
  while (left > 0) {
    ssize_t n = ::pwrite(fd_, p, left, static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = n < 0 ? errno : ENOSPC;
      return Status::error("writing " + path_ + " failed at byte " + std::to_string(at) + ": " +
                           errno_text(e) + ". HINT: check free disk space and permissions");
    }
    p += n;
    at += static_cast<uint64_t>(n);
    left -= static_cast<size_t>(n);
  }
  if (at > size_) size_ = at;
  return {};
}

Status AtomicFile::commit() {
  SKEIN_CHECK(fd_ >= 0, "commit of a committed AtomicFile");
  int fd = std::exchange(fd_, -1);
  // mkstemp creates 0600; data files should be readable like any other output.
  ::fchmod(fd, 0644);
  if (::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    ::unlink(temp_path_.c_str());
    return Status::error("flushing " + path_ + " to disk (fsync) failed: " + errno_text(e));
  }
  ::close(fd);
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    int e = errno;
    ::unlink(temp_path_.c_str());
    return Status::error("cannot rename " + temp_path_ + " to " + path_ + ": " + errno_text(e));
  }
  return fsync_dir(dir_of(path_));
}

StatusOr<MappedFile> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return Status::error(
        "cannot open " + path + ": " + errno_text(e) +
        (e == ENOENT ? ". HINT: check the path; shards are made by prepare_data" : ""));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::error(path + " is not a regular file. HINT: pass the path of a file");
  }
  MappedFile m;
  m.path_ = path;
  m.size_ = static_cast<size_t>(st.st_size);
  if (m.size_ > 0) {
    void* p = ::mmap(nullptr, m.size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      return Status::error("cannot memory-map " + path + ": " + errno_text(e));
    }
    m.data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);  // the mapping keeps the file open
  return m;
}

MappedFile::MappedFile(MappedFile&& o) noexcept
    : path_(std::move(o.path_)),
      data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
    path_ = std::move(o.path_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

void MappedFile::advise_sequential() const {
  if (data_) ::madvise(const_cast<uint8_t*>(data_), size_, MADV_SEQUENTIAL);
}
void MappedFile::advise_random() const {
  if (data_) ::madvise(const_cast<uint8_t*>(data_), size_, MADV_RANDOM);
}

Status make_dirs(const std::string& dir) {
  if (dir.empty()) return {};
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    std::string part = dir.substr(0, pos);
    if (part.empty() || part == "/") continue;
    if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) {
      int e = errno;
      return Status::error("cannot create directory " + dir + ": creating " + part + " failed: " +
                           errno_text(e) + ". HINT: choose a directory you can write to");
    }
    struct stat st;
    if (::stat(part.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Status::error("cannot create directory " + dir + ": " + part +
                           " exists but is not a directory. HINT: choose another path");
    }
  }
  return {};
}

StatusOr<uint32_t> file_crc32c(const std::string& path) {
  StatusOr<MappedFile> f = MappedFile::open(path);
  if (!f.ok()) return f.status();
  return crc32c(f->data(), f->size());
}

}  // namespace skein
