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
  EXPECT_NE(v.status().message().find("manifest.pb: not a valid checkpoint manifest"),
            std::string::npos)
      << v.status().message();
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
  EXPECT_EQ(clean_leftovers(ckdir()), 2);
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
