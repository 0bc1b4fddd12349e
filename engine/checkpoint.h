// Crash-safe checkpoints. A checkpoint is a folder RUN/checkpoints/step_NNNNNNNN holding
// tensors.bin (the raw float32 tensors, one after another) and manifest.pb (a binary
// proto::CheckpointManifest: step, seed, data cursor, resolved config, and a table of tensors
// with shape, offset, size and CRC-32C).
//
// Writing: everything goes into a temporary folder .tmp-step_N-PID inside checkpoints/; the blob
// is written and fsynced first, the manifest last; the folder is fsynced and renamed into place,
// then checkpoints/ is fsynced, then the `latest` pointer file is replaced atomically (temp file +
// rename). A checkpoint of the same step is moved aside (.old-*) before the rename and removed
// only after it. Old checkpoints beyond the keep_last newest that verify are first renamed to
// .trash-* (so a half-deleted one never looks complete) and then removed. A crash at any moment
// leaves every earlier checkpoint intact; clean_leftovers() at start-up puts back a complete copy
// that a crash left aside and removes the rest.
//
// manifest.pb (format 2): 8 bytes "SKEINMF\n", the payload's length (uint64 LE), its CRC-32C
// (uint32 LE), 4 zero bytes, then the serialized manifest. Reading verifies the manifest's own
// checksum, its structure against the blob (entries, offsets, sizes, blob size), the blob's size
// and every tensor's checksum before anything is copied into the model.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "engine/model.h"
#include "proto/skein.pb.h"

namespace skein {

// 2: manifest.pb is framed (magic, length, CRC-32C of the payload); 1: a bare manifest, still read.
constexpr uint32_t kCheckpointFormatVersion = 2;

// Buffers in the model's parameter layout, saved as one tensor per model tensor under
// prefix + tensor name: {"param/", params}, {"adam_m/", m}, {"adam_v/", v}, {"momentum/", buf}.
struct NamedBuffer {
  std::string prefix;
  float* data;
};

struct CheckpointInfo {  // everything in the manifest except the tensor table
  long step = 0;
  uint64_t seed = 0;
  long data_cursor = 0;
  float last_loss = 0;
  long skipped_steps = 0;
  uint32_t tokenizer_crc32c = 0;  // fingerprint of the data's tokenizer file, 0 if none
  proto::Config config;
  proto::InitSource init_source;  // the pretrained weights step 0 started from; empty if none
};

// Writes checkpoint `info.step` into checkpoints_dir (created if missing) and keeps the newest
// keep_last (>= 1). On success *path is the checkpoint folder.
Status write_checkpoint(const std::string& checkpoints_dir, const Model& model,
                        const std::vector<NamedBuffer>& buffers, const CheckpointInfo& info,
                        int keep_last, std::string* path = nullptr);

// Reads a checkpoint's manifest only (cheap: no tensor is read or verified).
StatusOr<proto::CheckpointManifest> read_checkpoint_manifest(const std::string& checkpoint_dir);

// Reads and fully verifies a checkpoint folder; returns its manifest.
StatusOr<proto::CheckpointManifest> verify_checkpoint(const std::string& checkpoint_dir);

// Verifies, then copies the tensors named prefix + tensor name into the buffers. Every tensor
// of the model must be present with the model's shape. Nothing is written on error.
StatusOr<proto::CheckpointManifest> load_checkpoint(const std::string& checkpoint_dir,
                                                    const Model& model,
                                                    const std::vector<NamedBuffer>& buffers);

// The newest checkpoint in checkpoints_dir that verifies ("" if none); the ones skipped, with
// why, are appended to *skipped.
std::string find_latest_valid_checkpoint(const std::string& checkpoints_dir,
                                         std::vector<std::string>* skipped);

// Tidies up after interrupted saves. A complete copy that an interrupted save left behind
// (.tmp-step_N-* or .old-step_N-*) of a step that has no checkpoint folder is verified and, if it
// verifies, renamed back into place (the newer .tmp first); every other leftover (.tmp-*,
// .old-*, .trash-*) is removed.
struct LeftoverReport {
  int removed = 0;
  std::vector<std::string> recovered;  // "LEFTOVER -> step_N"
};
LeftoverReport clean_leftovers(const std::string& checkpoints_dir);

// The readers of the two files on bytes (the fuzzers call them). parse_manifest reads either
// format and runs check_manifest_structure: tensors named once, f32, sizes that match their
// shapes, laid out back to back from offset 0, blob_size their sum, data cursor = step + skipped
// steps. verify_blob_bytes checks the blob's size and every tensor's CRC-32C. `path` is for
// messages only.
StatusOr<proto::CheckpointManifest> parse_manifest(const uint8_t* data, size_t n,
                                                   const std::string& path);
Status check_manifest_structure(const proto::CheckpointManifest& m, const std::string& path);
Status verify_blob_bytes(const proto::CheckpointManifest& m, const uint8_t* data, size_t n,
                         const std::string& path);

}  // namespace skein
