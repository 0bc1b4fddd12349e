// Crash-safe checkpoints. A checkpoint is a folder RUN/checkpoints/step_NNNNNNNN holding
// tensors.bin (the raw float32 tensors, one after another) and manifest.pb (a binary
// proto::CheckpointManifest: step, seed, data cursor, resolved config, and a table of tensors
// with shape, offset, size and CRC-32C).
//
// Writing: everything goes into a temporary folder .tmp-step_N-PID inside checkpoints/; the blob
// is written and fsynced first, the manifest last; the folder is fsynced and renamed into place,
// then checkpoints/ is fsynced, then the `latest` pointer file is replaced atomically (temp file +
// rename). Old checkpoints beyond keep_last are first renamed to .trash-* (so a half-deleted one
// never looks complete) and then removed. A crash at any moment leaves every earlier checkpoint
// intact, and leftovers (.tmp-*, .trash-*) are removed by clean_leftovers() at start-up.
//
// Reading verifies the manifest, the blob's size, every tensor's bounds and checksum before
// anything is copied into the model.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "engine/model.h"
#include "proto/skein.pb.h"

namespace skein {

constexpr uint32_t kCheckpointFormatVersion = 1;

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

// Removes .tmp-* and .trash-* leftovers of interrupted saves; returns how many.
int clean_leftovers(const std::string& checkpoints_dir);

}  // namespace skein
