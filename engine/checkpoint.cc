#include "engine/checkpoint.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <mutex>

#include "base/crc32c.h"
#include "base/fault.h"

namespace skein {

namespace fs = std::filesystem;

namespace {

constexpr const char* kManifest = "manifest.pb";
constexpr const char* kBlob = "tensors.bin";
constexpr const char* kLatest = "latest";

std::string errno_text() {
  return std::strerror(errno);
}

std::string step_name(long step) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "step_%08ld", step);
  return buf;
}

// step number of a folder named step_N, or -1
long parse_step_name(const std::string& name) {
  if (name.rfind("step_", 0) != 0 || name.size() == 5) return -1;
  long v = 0;
  for (size_t i = 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

Status fsync_path(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return Status::error("cannot open " + path + " to fsync: " + errno_text());
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return Status::error("fsync " + path + " failed: " + std::strerror(err));
  return Status();
}

// Writes n bytes from the chunks to a new file, fsyncs and closes it; any short write or error
// (disk full, quota, I/O) is reported with the file's name.
Status write_file(const std::string& path,
                  const std::vector<std::pair<const void*, size_t>>& parts) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::error("cannot create " + path + ": " + errno_text());
  for (const auto& [data, n] : parts) {
    const char* p = static_cast<const char*>(data);
    size_t left = n;
    while (left > 0) {
      ssize_t w = ::write(fd, p, std::min(left, size_t(1) << 30));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        std::string why = w < 0 ? errno_text() : "no progress";
        ::close(fd);
        return Status::error("writing " + path + " failed: " + why +
                             "\nHINT: is the disk full? the previous checkpoint is intact");
      }
      p += w;
      left -= size_t(w);
    }
  }
  if (::fsync(fd) != 0) {
    std::string why = errno_text();
    ::close(fd);
    return Status::error("fsync " + path + " failed: " + why);
  }
  if (::close(fd) != 0) return Status::error("closing " + path + " failed: " + errno_text());
  return Status();
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%08x", v);
  return buf;
}

// A read-only mapping of a file.
class MappedFile {
 public:
  Status open(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return Status::error("cannot open " + path + ": " + errno_text());
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return Status::error("cannot stat " + path + ": " + errno_text());
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
      if (p == MAP_FAILED) return Status::error("cannot map " + path + ": " + errno_text());
      data_ = static_cast<const uint8_t*>(p);
    }
    return Status();
  }
  ~MappedFile() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
    if (fd_ >= 0) ::close(fd_);
  }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  int fd_ = -1;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

StatusOr<proto::CheckpointManifest> read_manifest(const std::string& dir) {
  const std::string path = dir + "/" + kManifest;
  MappedFile f;
  SKEIN_RETURN_IF_ERROR(f.open(path));
  return parse_manifest(f.data(), f.size(), path);
}

// Checks the blob's size and every tensor's bounds and checksum.
Status verify_blob(const std::string& dir, const proto::CheckpointManifest& m,
                   const MappedFile& blob) {
  return verify_blob_bytes(m, blob.data(), blob.size(), dir + "/" + kBlob);
}

uint64_t load_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}
void store_le64(uint64_t v, char* p) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}

// The manifest file: kManifestMagic, the payload's length (uint64) and CRC-32C (uint32), four
// zero bytes, then the serialized CheckpointManifest.
constexpr char kManifestMagic[8] = {'S', 'K', 'E', 'I', 'N', 'M', 'F', '\n'};
constexpr size_t kManifestHeader = 24;

std::string frame_manifest(const std::string& payload) {
  std::string out(kManifestHeader, '\0');
  std::memcpy(out.data(), kManifestMagic, 8);
  store_le64(payload.size(), out.data() + 8);
  const uint32_t crc = crc32c(payload.data(), payload.size());
  store_le64(crc, out.data() + 16);  // the crc in bytes 16..19, zeros in 20..23
  return out + payload;
}

}  // namespace

StatusOr<proto::CheckpointManifest> parse_manifest(const uint8_t* data, size_t n,
                                                   const std::string& path) {
  proto::CheckpointManifest m;
  const bool framed = n >= 8 && std::memcmp(data, kManifestMagic, 8) == 0;
  if (framed) {
    if (n < kManifestHeader)
      return Status::error(path + ": truncated checkpoint manifest (" + std::to_string(n) +
                           " bytes, the header alone is " + std::to_string(kManifestHeader) + ")");
    const uint64_t len = load_le64(data + 8), stored = load_le64(data + 16);
    if (len != n - kManifestHeader)
      return Status::error(path + ": the manifest says it holds " + std::to_string(len) +
                           " bytes after its header, the file has " +
                           std::to_string(n - kManifestHeader) + ": truncated or corrupt");
    const uint32_t crc = crc32c(data + kManifestHeader, len);
    if (stored >> 32 != 0)
      return Status::error(path +
                           ": the manifest is corrupt: its header's reserved bytes 20..23 "
                           "are not zero");
    if (stored != crc)
      return Status::error(path + ": the manifest is corrupt: stored CRC-32C " +
                           hex32(static_cast<uint32_t>(stored)) + ", computed " + hex32(crc));
    if (len > size_t(INT32_MAX) || !m.ParseFromArray(data + kManifestHeader, static_cast<int>(len)))
      return Status::error(path +
                           ": not a valid checkpoint manifest (its checksum matches, so "
                           "it was written so: another program's file?)");
    if (m.format_version() != kCheckpointFormatVersion)
      return Status::error(path + ": format version " + std::to_string(m.format_version()) +
                           ", this build reads versions 1 and " +
                           std::to_string(kCheckpointFormatVersion));
  } else {
    // Format 1 (skein before manifests carried a checksum): a bare CheckpointManifest. Only
    // the structural checks below and the tensors' own checksums vouch for it.
    if (n > size_t(INT32_MAX) || !m.ParseFromArray(data, static_cast<int>(n)))
      return Status::error(path + ": not a valid checkpoint manifest (truncated or corrupt)");
    if (m.format_version() != 1)
      return Status::error(path +
                           ": not a valid checkpoint manifest (no header, and format "
                           "version " +
                           std::to_string(m.format_version()) + " is not 1): truncated or corrupt");
  }
  SKEIN_RETURN_IF_ERROR(check_manifest_structure(m, path));
  return m;
}

Status check_manifest_structure(const proto::CheckpointManifest& m, const std::string& path) {
  auto bad = [&](const std::string& what) {
    return Status::error(path + ": inconsistent checkpoint manifest: " + what);
  };
  if (m.step() < 0 || m.data_cursor() < 0 || m.skipped_steps() < 0)
    return bad("negative step, data cursor or skipped-step count");
  // The loop draws one batch per step, applied or skipped: the cursor is at least either.
  if (m.data_cursor() < m.step() || m.data_cursor() < m.skipped_steps())
    return bad("data cursor " + std::to_string(m.data_cursor()) + " is behind step " +
               std::to_string(m.step()) + " or skipped steps " + std::to_string(m.skipped_steps()));
  if (m.tensors_size() == 0) return bad("no tensors");
  std::map<std::string, int> seen;
  uint64_t end = 0;
  for (const proto::TensorEntry& t : m.tensors()) {
    if (t.name().empty()) return bad("a tensor without a name");
    if (!seen.emplace(t.name(), 1).second) return bad("tensor " + t.name() + " appears twice");
    if (t.dtype() != "f32") return bad("tensor " + t.name() + " has dtype '" + t.dtype() + "'");
    uint64_t elements = 1;
    for (int d : t.shape()) {
      if (d <= 0 || elements > (uint64_t(1) << 40) / uint64_t(d))
        return bad("tensor " + t.name() + " has an impossible shape");
      elements *= uint64_t(d);
    }
    if (t.shape_size() == 0 || t.size() != elements * 4)
      return bad("tensor " + t.name() + " is " + std::to_string(t.size()) +
                 " bytes, its shape needs " + std::to_string(elements * 4));
    if (t.offset() != end)
      return bad("tensor " + t.name() + " starts at byte " + std::to_string(t.offset()) +
                 ", the previous one ends at " + std::to_string(end));
    end += t.size();
  }
  if (m.blob_size() != end)
    return bad("blob size " + std::to_string(m.blob_size()) + ", the tensors take " +
               std::to_string(end));
  return Status();
}

Status verify_blob_bytes(const proto::CheckpointManifest& m, const uint8_t* data, size_t n,
                         const std::string& path) {
  if (n != m.blob_size())
    return Status::error(path + " is " + std::to_string(n) + " bytes, the manifest says " +
                         std::to_string(m.blob_size()) + ": truncated or replaced");
  for (const proto::TensorEntry& t : m.tensors()) {
    if (t.offset() > n || t.size() > n - t.offset())
      return Status::error(path + ": tensor " + t.name() + " lies outside the blob");
    const uint32_t crc = crc32c(data + t.offset(), t.size());
    if (crc != t.crc32c())
      return Status::error(path + ": tensor " + t.name() + " is corrupt: stored CRC-32C " +
                           hex32(t.crc32c()) + ", computed " + hex32(crc));
  }
  return Status();
}

namespace {

// Folders this process wrote or fully verified, with what identified them then (the folder's
// inode, the manifest's and blob's size and modification time): pruning counts verified
// checkpoints without reading every blob again at every save.
struct FolderId {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t manifest_size = 0, blob_size = 0;
  long manifest_mtime_ns = 0, blob_mtime_ns = 0;
  bool operator==(const FolderId&) const = default;
};
std::mutex g_verified_mu;
std::map<std::string, FolderId> g_verified;

bool folder_id(const std::string& dir, FolderId* id) {
  struct stat d {
  }, mf{}, bl{};
  if (::stat(dir.c_str(), &d) != 0 || ::stat((dir + "/" + kManifest).c_str(), &mf) != 0 ||
      ::stat((dir + "/" + kBlob).c_str(), &bl) != 0)
    return false;
  *id = {d.st_dev,
         d.st_ino,
         mf.st_size,
         bl.st_size,
         mf.st_mtim.tv_sec * 1'000'000'000L + mf.st_mtim.tv_nsec,
         bl.st_mtim.tv_sec * 1'000'000'000L + bl.st_mtim.tv_nsec};
  return true;
}

void remember_verified(const std::string& dir) {
  FolderId id;
  if (!folder_id(dir, &id)) return;
  std::lock_guard<std::mutex> lock(g_verified_mu);
  g_verified[dir] = id;
}

bool known_verified(const std::string& dir) {
  FolderId id;
  if (!folder_id(dir, &id)) return false;
  std::lock_guard<std::mutex> lock(g_verified_mu);
  auto it = g_verified.find(dir);
  return it != g_verified.end() && it->second == id;
}

// Verified, from the record above or by reading it now.
bool verifies(const std::string& dir) {
  return known_verified(dir) || verify_checkpoint(dir).ok();
}

}  // namespace

Status write_checkpoint(const std::string& checkpoints_dir, const Model& model,
                        const std::vector<NamedBuffer>& buffers, const CheckpointInfo& info,
                        int keep_last, std::string* path) {
  SKEIN_CHECK(keep_last >= 1);
  std::error_code ec;
  fs::create_directories(checkpoints_dir, ec);
  if (ec)
    return Status::error("cannot create checkpoint folder " + checkpoints_dir + ": " +
                         ec.message());

  const std::string name = step_name(info.step);
  const std::string final_dir = checkpoints_dir + "/" + name;
  const std::string tmp_dir = checkpoints_dir + "/.tmp-" + name + "-" + std::to_string(::getpid());
  fs::remove_all(tmp_dir, ec);
  if (!fs::create_directory(tmp_dir, ec) || ec)
    return Status::error("cannot create " + tmp_dir + ": " + (ec ? ec.message() : "exists"));
  auto fail = [&](Status s) {
    std::error_code ignored;
    fs::remove_all(tmp_dir, ignored);
    return s;
  };

  proto::CheckpointManifest m;
  m.set_format_version(kCheckpointFormatVersion);
  m.set_step(info.step);
  m.set_seed(info.seed);
  m.set_data_cursor(info.data_cursor);
  *m.mutable_config() = info.config;
  m.set_last_loss(info.last_loss);
  m.set_skipped_steps(info.skipped_steps);
  m.set_tokenizer_crc32c(info.tokenizer_crc32c);
  if (info.init_source.has_path()) *m.mutable_init_source() = info.init_source;
  const std::time_t now = std::time(nullptr);
  char when[64];
  std::strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  m.set_created_by(std::string("skein train, ") + when);

  std::vector<std::pair<const void*, size_t>> parts;
  uint64_t offset = 0;
  for (const NamedBuffer& b : buffers) {
    for (const TensorView& t : model.tensors()) {
      const float* data = b.data + t.offset;
      const size_t bytes = t.size * sizeof(float);
      proto::TensorEntry* e = m.add_tensors();
      e->set_name(b.prefix + t.name);
      e->set_dtype("f32");
      for (int d : t.shape) e->add_shape(d);
      e->set_offset(offset);
      e->set_size(bytes);
      e->set_crc32c(crc32c(data, bytes));
      parts.emplace_back(data, bytes);
      offset += bytes;
    }
  }
  m.set_blob_size(offset);
  Status s = write_file(tmp_dir + "/" + kBlob, parts);
  if (!s.ok()) return fail(s);
  const std::string manifest = frame_manifest(m.SerializeAsString());
  s = write_file(tmp_dir + "/" + kManifest, {{manifest.data(), manifest.size()}});
  if (!s.ok()) return fail(s);
  s = fsync_path(tmp_dir, true);
  if (!s.ok()) return fail(s);

  // A checkpoint of the same step (a rerun) is replaced. Its folder is moved aside, not
  // removed, until the new one is in place and durable: a crash between the two renames leaves
  // both complete copies, and clean_leftovers() puts one back.
  std::string old_copy;
  if (fs::exists(final_dir)) {
    old_copy = checkpoints_dir + "/.old-" + name + "-" + std::to_string(::getpid());
    fs::remove_all(old_copy, ec);
    fs::rename(final_dir, old_copy, ec);
    if (ec) return fail(Status::error("cannot replace " + final_dir + ": " + ec.message()));
    kill_point("checkpoint_between_renames");
  }
  fs::rename(tmp_dir, final_dir, ec);
  if (ec) {
    std::error_code ignored;
    if (!old_copy.empty()) fs::rename(old_copy, final_dir, ignored);
    return fail(
        Status::error("cannot rename " + tmp_dir + " to " + final_dir + ": " + ec.message()));
  }
  SKEIN_RETURN_IF_ERROR(fsync_path(checkpoints_dir, true));
  remember_verified(final_dir);  // written and fsynced by us just now
  if (!old_copy.empty()) fs::remove_all(old_copy, ec);

  // latest -> name, atomically
  const std::string latest_tmp = checkpoints_dir + "/.tmp-latest-" + std::to_string(::getpid());
  const std::string text = name + "\n";
  SKEIN_RETURN_IF_ERROR(write_file(latest_tmp, {{text.data(), text.size()}}));
  fs::rename(latest_tmp, checkpoints_dir + "/" + kLatest, ec);
  if (ec) return Status::error("cannot update " + checkpoints_dir + "/latest: " + ec.message());
  SKEIN_RETURN_IF_ERROR(fsync_path(checkpoints_dir, true));

  // Keep the one just written and the newest keep_last - 1 others that verify (a corrupt one
  // counts for nothing, so it never pushes out a good one); older ones go. Each is renamed to
  // .trash-* first, so a half-deleted folder never looks like a checkpoint.
  std::vector<long> steps;
  for (const auto& e : fs::directory_iterator(checkpoints_dir, ec)) {
    long st = parse_step_name(e.path().filename().string());
    if (st >= 0 && e.is_directory()) steps.push_back(st);
  }
  std::sort(steps.rbegin(), steps.rend());
  int kept = 1;  // the one just written, whatever else is there
  for (long st : steps) {
    if (st == info.step) continue;
    const std::string dir = checkpoints_dir + "/" + step_name(st);
    if (kept < keep_last) {
      if (verifies(dir)) ++kept;
      continue;
    }
    const std::string trash = checkpoints_dir + "/.trash-" + step_name(st);
    fs::rename(dir, trash, ec);
    if (!ec) fs::remove_all(trash, ec);
  }
  if (path) *path = final_dir;
  return Status();
}

namespace {
// Reads the manifest and maps the blob of checkpoint `dir`, verifying both.
StatusOr<proto::CheckpointManifest> open_verified(const std::string& dir, MappedFile* blob) {
  if (!fs::is_directory(dir)) return Status::error(dir + ": no such checkpoint folder");
  StatusOr<proto::CheckpointManifest> m = read_manifest(dir);
  if (!m.ok()) return m.status();
  SKEIN_RETURN_IF_ERROR(blob->open(dir + "/" + kBlob));
  SKEIN_RETURN_IF_ERROR(verify_blob(dir, *m, *blob));
  return m;
}
}  // namespace

StatusOr<proto::CheckpointManifest> read_checkpoint_manifest(const std::string& dir) {
  if (!fs::is_directory(dir)) return Status::error(dir + ": no such checkpoint folder");
  return read_manifest(dir);
}

StatusOr<proto::CheckpointManifest> verify_checkpoint(const std::string& dir) {
  MappedFile blob;
  StatusOr<proto::CheckpointManifest> m = open_verified(dir, &blob);
  if (m.ok()) remember_verified(dir);
  return m;
}

StatusOr<proto::CheckpointManifest> load_checkpoint(const std::string& dir, const Model& model,
                                                    const std::vector<NamedBuffer>& buffers) {
  MappedFile blob;
  StatusOr<proto::CheckpointManifest> m = open_verified(dir, &blob);
  if (!m.ok()) return m.status();
  std::map<std::string, const proto::TensorEntry*> by_name;
  for (const auto& t : m->tensors()) by_name[t.name()] = &t;
  // Check every wanted tensor before copying any.
  for (const NamedBuffer& b : buffers) {
    for (const TensorView& t : model.tensors()) {
      auto it = by_name.find(b.prefix + t.name);
      if (it == by_name.end())
        return Status::error(dir + ": the checkpoint has no tensor " + b.prefix + t.name);
      std::vector<int> shape(it->second->shape().begin(), it->second->shape().end());
      if (shape != t.shape || it->second->size() != t.size * sizeof(float) ||
          it->second->dtype() != "f32")
        return Status::error(dir + ": tensor " + b.prefix + t.name +
                             " has another shape or type than the model's");
    }
  }
  for (const NamedBuffer& b : buffers)
    for (const TensorView& t : model.tensors()) {
      const proto::TensorEntry* e = by_name[b.prefix + t.name];
      std::memcpy(b.data + t.offset, blob.data() + e->offset(), e->size());
    }
  return m;
}

std::string find_latest_valid_checkpoint(const std::string& checkpoints_dir,
                                         std::vector<std::string>* skipped) {
  std::error_code ec;
  std::vector<long> steps;
  for (const auto& e : fs::directory_iterator(checkpoints_dir, ec)) {
    long st = parse_step_name(e.path().filename().string());
    if (st >= 0) steps.push_back(st);
  }
  std::sort(steps.rbegin(), steps.rend());
  for (long st : steps) {
    const std::string dir = checkpoints_dir + "/" + step_name(st);
    StatusOr<proto::CheckpointManifest> m = verify_checkpoint(dir);
    if (m.ok()) return dir;
    if (skipped) skipped->push_back(m.status().message());
  }
  return "";
}

LeftoverReport clean_leftovers(const std::string& checkpoints_dir) {
  LeftoverReport report;
  std::error_code ec;
  // step -> the complete copies an interrupted save left of it: .tmp-step_N-PID (the new state,
  // fsynced before any rename) first, then .old-step_N-PID (the copy it was replacing)
  std::map<long, std::vector<fs::path>> copies;
  std::vector<fs::path> junk;
  for (const auto& e : fs::directory_iterator(checkpoints_dir, ec)) {
    const std::string n = e.path().filename().string();
    const bool tmp = n.rfind(".tmp-step_", 0) == 0, old = n.rfind(".old-step_", 0) == 0;
    if (tmp || old) {
      const size_t dash = n.find('-', 5);
      const long st =
          parse_step_name(n.substr(5, dash == std::string::npos ? std::string::npos : dash - 5));
      if (st >= 0 && e.is_directory()) {
        auto& list = copies[st];
        list.insert(tmp ? list.begin() : list.end(), e.path());
        continue;
      }
    }
    if (n.rfind(".tmp-", 0) == 0 || n.rfind(".trash-", 0) == 0 || n.rfind(".old-", 0) == 0)
      junk.push_back(e.path());
  }
  for (auto& [st, list] : copies) {
    const std::string final_dir = checkpoints_dir + "/" + step_name(st);
    bool have = fs::exists(final_dir, ec);
    for (const fs::path& p : list) {
      if (!have && verify_checkpoint(p.string()).ok()) {
        fs::rename(p, final_dir, ec);
        if (!ec) {
          have = true;
          report.recovered.push_back(p.filename().string() + " -> " + step_name(st));
          continue;
        }
      }
      junk.push_back(p);
    }
  }
  if (!report.recovered.empty()) (void)fsync_path(checkpoints_dir, true);
  for (const auto& p : junk) fs::remove_all(p, ec);
  report.removed = static_cast<int>(junk.size());
  return report;
}

}  // namespace skein
