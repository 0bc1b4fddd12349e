#include "engine/checkpoint.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "base/crc32c.h"
#include "base/rng.h"

namespace skein {
namespace {

namespace fs = std::filesystem;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("skein_ckpt_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    model_.init(3);
    m_.assign(model_.num_params(), 0.0f);
    Rng rng(9);  // tensor elements only: padding between tensors is zero, as in training
    for (const TensorView& t : model_.tensors())
      for (size_t i = 0; i < t.size; ++i) m_[t.offset + i] = static_cast<float>(rng.normal());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<NamedBuffer> buffers() {
    return {{"param/", model_.params()}, {"adam_m/", m_.data()}};
  }
  std::string ckdir() const { return (dir_ / "checkpoints").string(); }
  std::string save(long step, int keep = 3) {
    CheckpointInfo info;
    info.step = step;
    info.seed = 77;
    info.data_cursor = step;
    info.last_loss = 1.5f;
    info.config.mutable_run()->set_steps(1000);
    std::string path;
    Status s = write_checkpoint(ckdir(), model_, buffers(), info, keep, &path);
    EXPECT_TRUE(s.ok()) << s.message();
    return path;
  }

  fs::path dir_;
  Model model_{GptConfig{29, 8, 2, 2, 12}};
  std::vector<float> m_;
};

TEST_F(CheckpointTest, RoundTripIsBitExact) {
  const std::string path = save(12);
  Model other(model_.config());
  std::vector<float> m2(m_.size());
  auto loaded = load_checkpoint(path, other, {{"param/", other.params()}, {"adam_m/", m2.data()}});
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(loaded->step(), 12);
  EXPECT_EQ(loaded->seed(), 77u);
  EXPECT_EQ(loaded->data_cursor(), 12);
  EXPECT_EQ(loaded->config().run().steps(), 1000);
  EXPECT_EQ(0, std::memcmp(other.params(), model_.params(), model_.num_params() * 4));
  EXPECT_EQ(0, std::memcmp(m2.data(), m_.data(), m_.size() * 4));
}

TEST_F(CheckpointTest, KeepsTheNewestAndPointsLatestAtIt) {
  for (long s = 1; s <= 5; ++s) save(s * 10, 3);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(ckdir())) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"latest", "step_00000030", "step_00000040",
                                             "step_00000050"}));
  std::ifstream latest(ckdir() + "/latest");
  std::string pointed;
  latest >> pointed;
  EXPECT_EQ(pointed, "step_00000050");
}

void flip_byte(const std::string& path, long offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(offset);
  char c;
  f.get(c);
  f.seekp(offset);
  f.put(static_cast<char>(c ^ 0x40));
}

TEST_F(CheckpointTest, FlippedByteIsRefusedNamingTheTensor) {
  const std::string path = save(5);
  flip_byte(path + "/tensors.bin", 4 * 29 * 12 + 8);  // inside param/wpe, right after wte
  auto v = verify_checkpoint(path);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("tensor param/wpe is corrupt: stored CRC-32C"),
            std::string::npos)
      << v.status().message();
  EXPECT_NE(v.status().message().find("computed"), std::string::npos);
  // and nothing is copied into the model
  Model other(model_.config());
  auto l = load_checkpoint(path, other, {{"param/", other.params()}});
  EXPECT_FALSE(l.ok());
  for (size_t i = 0; i < other.num_params(); ++i) ASSERT_EQ(other.params()[i], 0.0f);
}

TEST_F(CheckpointTest, TruncatedBlobIsRefused) {
  const std::string path = save(5);
  fs::resize_file(path + "/tensors.bin", fs::file_size(path + "/tensors.bin") - 3);
  auto v = verify_checkpoint(path);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("truncated"), std::string::npos) << v.status().message();
}

TEST_F(CheckpointTest, TruncatedOrMissingManifestIsRefused) {
  const std::string path = save(5);
  fs::resize_file(path + "/manifest.pb", fs::file_size(path + "/manifest.pb") / 2);
  auto v = verify_checkpoint(path);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("manifest.pb: the manifest says it holds"), std::string::npos)
      << v.status().message();
  EXPECT_NE(v.status().message().find("truncated"), std::string::npos) << v.status().message();
  fs::remove(path + "/manifest.pb");
  v = verify_checkpoint(path);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("cannot open"), std::string::npos) << v.status().message();
}

TEST_F(CheckpointTest, DeletedBlobIsRefused) {
  const std::string path = save(5);
  fs::remove(path + "/tensors.bin");
  auto v = verify_checkpoint(path);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("tensors.bin"), std::string::npos) << v.status().message();
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
void spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// The manifest carries its own checksum: every single-byte change of it and every truncation is
// refused (before, a flipped step or data cursor was accepted).
TEST_F(CheckpointTest, EveryFlippedOrTruncatedManifestByteIsRefused) {
  const std::string path = save(5);
  const std::string manifest = path + "/manifest.pb";
  const std::string good = slurp(manifest);
  ASSERT_GT(good.size(), 24u);
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ (1 << (i % 8)));
    spit(manifest, bad);
    ASSERT_FALSE(verify_checkpoint(path).ok()) << "flip at byte " << i;
  }
  for (size_t n = 0; n < good.size(); ++n) {
    spit(manifest, good.substr(0, n));
    ASSERT_FALSE(verify_checkpoint(path).ok()) << "truncated to " << n;
  }
  spit(manifest, good);
  EXPECT_TRUE(verify_checkpoint(path).ok());
  spit(manifest, good + "x");
  EXPECT_FALSE(verify_checkpoint(path).ok());
}

// Format 1 manifests (bare, no checksum of their own) still load; their structure is
// cross-checked against the blob, so an inconsistent one is refused with what is wrong.
TEST_F(CheckpointTest, FormatOneManifestStillLoadsAndIsCrossChecked) {
  const std::string path = save(7);
  auto m = verify_checkpoint(path);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->format_version(), 2u);
  proto::CheckpointManifest v1 = *m;
  v1.set_format_version(1);
  spit(path + "/manifest.pb", v1.SerializeAsString());
  auto loaded = verify_checkpoint(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(loaded->step(), 7);

  auto refused = [&](proto::CheckpointManifest bad, const std::string& why) {
    spit(path + "/manifest.pb", bad.SerializeAsString());
    auto r = verify_checkpoint(path);
    ASSERT_FALSE(r.ok()) << why;
    EXPECT_NE(r.status().message().find(why), std::string::npos) << r.status().message();
  };
  proto::CheckpointManifest bad = v1;
  bad.set_data_cursor(5);
  refused(bad, "data cursor 5 is behind step 7");
  bad = v1;
  bad.set_step(6), bad.set_data_cursor(6);  // consistent, but the blob still decides nothing
  spit(path + "/manifest.pb", bad.SerializeAsString());
  EXPECT_TRUE(verify_checkpoint(path).ok());
  bad = v1;
  bad.mutable_tensors(1)->set_offset(bad.tensors(1).offset() + 4);
  refused(bad, "starts at byte");
  bad = v1;
  bad.mutable_tensors(0)->add_shape(2);
  refused(bad, "its shape needs");
  bad = v1;
  bad.mutable_tensors(2)->set_name(bad.tensors(0).name());
  refused(bad, "appears twice");
  bad = v1;
  bad.set_blob_size(bad.blob_size() + 4);
  refused(bad, "blob size");
  bad = v1;
  bad.set_format_version(3);
  refused(bad, "not a valid checkpoint manifest");
}

// Checkpoints that do not verify do not count among the keep_last newest: with the newest ones
// corrupt, what a run writes now is kept, and `latest` points at it.
TEST_F(CheckpointTest, CorruptCheckpointsDoNotCountAmongTheKeptOnes) {
  save(10, 3);
  const std::string a = save(20, 3), b = save(30, 3);
  flip_byte(a + "/tensors.bin", 10);
  flip_byte(b + "/manifest.pb", 30);
  const std::string now = save(15, 2);
  EXPECT_TRUE(fs::exists(now));
  EXPECT_TRUE(verify_checkpoint(now).ok());
  EXPECT_TRUE(fs::exists(ckdir() + "/step_00000010"));  // the other good one of the two kept
  std::ifstream latest(ckdir() + "/latest");
  std::string pointed;
  latest >> pointed;
  EXPECT_EQ(pointed, "step_00000015");
  std::vector<std::string> skipped;
  EXPECT_EQ(find_latest_valid_checkpoint(ckdir(), &skipped), now);
  EXPECT_EQ(skipped.size(), 2u);
  save(16, 2);  // now 16 and 15 are the two kept; 10 goes
  EXPECT_FALSE(fs::exists(ckdir() + "/step_00000010"));
  EXPECT_TRUE(fs::exists(now));
}

// The checkpoint just written is never pruned, even when newer ones (of a run resumed from an
// earlier step) fill keep_last.
TEST_F(CheckpointTest, TheCheckpointJustWrittenIsAlwaysKept) {
  save(6, 2);
  save(12, 2);
  const std::string now = save(9, 1);
  EXPECT_TRUE(verify_checkpoint(now).ok());
  EXPECT_FALSE(fs::exists(ckdir() + "/step_00000012"));
  EXPECT_FALSE(fs::exists(ckdir() + "/step_00000006"));
  std::ifstream latest(ckdir() + "/latest");
  std::string pointed;
  latest >> pointed;
  EXPECT_EQ(pointed, "step_00000009");
}

// Re-saving a step: a kill between moving the old copy aside and renaming the new one in (an
// injected SIGKILL at exactly that point) leaves both complete copies; clean_leftovers() puts
// the new one back instead of deleting it.
TEST_F(CheckpointTest, KillBetweenTheRenamesOfAReSaveLosesNothing) {
  const std::string path = save(10);
  const std::string first = slurp(path + "/tensors.bin");
  model_.params()[3] += 1.0f;  // the re-save holds other parameters
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::setenv("SKEIN_TEST_KILL_AT", "checkpoint_between_renames", 1);
    save(10);
    _exit(0);  // not reached: the kill point fires
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  EXPECT_FALSE(fs::exists(path));  // the window: neither copy at its place
  const LeftoverReport r = clean_leftovers(ckdir());
  ASSERT_EQ(r.recovered.size(), 1u);
  EXPECT_EQ(r.recovered[0].rfind(".tmp-step_00000010-", 0), 0u) << r.recovered[0];
  EXPECT_EQ(r.removed, 1);  // the old copy
  ASSERT_TRUE(verify_checkpoint(path).ok());
  EXPECT_NE(slurp(path + "/tensors.bin"), first);  // the newer state
  Model other(model_.config());
  ASSERT_TRUE(load_checkpoint(path, other, {{"param/", other.params()}}).ok());
  EXPECT_EQ(other.params()[3], model_.params()[3]);
  // a normal re-save leaves one copy and no leftovers
  save(10);
  EXPECT_EQ(clean_leftovers(ckdir()).removed, 0);
}

// Only the old copy survives when the new one is incomplete: it is put back.
TEST_F(CheckpointTest, AnOldCopyIsRecoveredWhenTheNewOneIsIncomplete) {
  const std::string path = save(10);
  const std::string old = ckdir() + "/.old-step_00000010-999";
  fs::rename(path, old);
  fs::create_directories(ckdir() + "/.tmp-step_00000010-999");
  std::ofstream(ckdir() + "/.tmp-step_00000010-999/tensors.bin") << "partial";
  const LeftoverReport r = clean_leftovers(ckdir());
  ASSERT_EQ(r.recovered.size(), 1u);
  EXPECT_EQ(r.removed, 1);
  EXPECT_TRUE(verify_checkpoint(path).ok());
  EXPECT_FALSE(fs::exists(old));
}

TEST_F(CheckpointTest, MissingTensorOrOtherShapeIsRefused) {
  const std::string path = save(5);
  Model other(model_.config());
  std::vector<float> v(m_.size());
  auto l = load_checkpoint(path, other, {{"adam_v/", v.data()}});
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.status().message().find("no tensor adam_v/wte"), std::string::npos);
  Model wider(GptConfig{29, 8, 2, 2, 16});
  l = load_checkpoint(path, wider, {{"param/", wider.params()}});
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.status().message().find("another shape"), std::string::npos);
}

TEST_F(CheckpointTest, ResumeAutoSkipsABrokenNewestCheckpoint) {
  save(10);
  const std::string newest = save(20);
  flip_byte(newest + "/tensors.bin", 100);
  std::vector<std::string> skipped;
  EXPECT_EQ(find_latest_valid_checkpoint(ckdir(), &skipped), ckdir() + "/step_00000010");
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_NE(skipped[0].find("step_00000020"), std::string::npos);
}

TEST_F(CheckpointTest, LeftoversOfAnInterruptedSaveAreCleaned) {
  save(10);
  fs::create_directories(ckdir() + "/.tmp-step_00000020-123");
  std::ofstream(ckdir() + "/.tmp-step_00000020-123/tensors.bin") << "partial";
  fs::create_directories(ckdir() + "/.trash-step_00000001");
  std::vector<std::string> skipped;
  EXPECT_EQ(find_latest_valid_checkpoint(ckdir(), &skipped), ckdir() + "/step_00000010");
  EXPECT_EQ(clean_leftovers(ckdir()).removed, 2);
  EXPECT_FALSE(fs::exists(ckdir() + "/.tmp-step_00000020-123"));
}

TEST_F(CheckpointTest, UnwritableFolderGivesAClearError) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "file") << "not a folder";
  CheckpointInfo info;
  Status s = write_checkpoint((dir_ / "file" / "checkpoints").string(), model_, buffers(), info, 2);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("cannot create checkpoint folder"), std::string::npos) << s.message();
}

// Disk full during a save, simulated with a file-size limit in a child process: the save fails
// with a clear error, and the previous checkpoint still verifies.
TEST_F(CheckpointTest, DiskFullDuringSaveKeepsThePreviousCheckpoint) {
  const std::string previous = save(10);
  const std::string msg_file = (dir_ / "msg").string();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::signal(SIGXFSZ, SIG_IGN);  // get EFBIG from write() instead of a signal
    rlimit lim{1000, 1000};
    setrlimit(RLIMIT_FSIZE, &lim);
    CheckpointInfo info;
    info.step = 20;
    Status s = write_checkpoint(ckdir(), model_, buffers(), info, 3);
    lim = {RLIM_INFINITY, RLIM_INFINITY};
    setrlimit(RLIMIT_FSIZE, &lim);
    std::ofstream(msg_file) << s.message();
    _exit(s.ok() ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  std::string msg;
  std::getline(std::ifstream(msg_file), msg);
  EXPECT_NE(msg.find("writing"), std::string::npos) << msg;
  EXPECT_NE(msg.find("File too large"), std::string::npos) << msg;
  EXPECT_TRUE(verify_checkpoint(previous).ok());
  std::vector<std::string> skipped;
  EXPECT_EQ(find_latest_valid_checkpoint(ckdir(), &skipped), previous);
  EXPECT_FALSE(fs::exists(ckdir() + "/step_00000020"));
}

}  // namespace
}  // namespace skein

namespace skein {
namespace {

TEST(Crc32c, KnownValuesAndBothPathsAgree) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);  // the standard check value of CRC-32C
  EXPECT_EQ(crc32c("", 0), 0u);
  std::vector<uint8_t> data(1000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(mix64(i));
  for (size_t n : {0, 1, 7, 8, 9, 999, 1000}) {
    const uint32_t portable = ~detail::crc32c_portable(~0u, data.data(), n);
    EXPECT_EQ(crc32c(data.data(), n), portable) << n;
  }
  // continuing a checksum over two pieces equals one pass
  EXPECT_EQ(crc32c(data.data() + 300, 700, crc32c(data.data(), 300)), crc32c(data.data(), 1000));
}

}  // namespace
}  // namespace skein
