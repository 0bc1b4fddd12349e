// train --init_from on the fixtures of tests/reference/gpt2_import_reference.py: the run starts
// from exactly the imported weights, its checkpoints record the file and its CRC-32C, a resume
// takes its weights and shape from the checkpoint (bit-exact with a straight run, even once the
// file is gone), and a bad file, a conflicting shape or data of another tokenizer is refused
// with exit code 2 before anything is written.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/rng.h"
#include "data/file_util.h"
#include "data/shard.h"
#include "data/tokenizer.h"
#include "engine/checkpoint.h"
#include "engine/import.h"
#include "tests/system/process.h"

namespace skein {
namespace {

namespace fs = std::filesystem;
using testing::read_file;
using testing::run;

const std::string kTrain = SKEIN_TRAIN_BIN;
const std::string kFixtures = "tests/reference/import";

class InitFromTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("skein_init_from_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "data");
    // tokens of the fixtures' 53-token vocabulary; no tokenizer.bin (train warns, and trains)
    Rng rng(7);
    std::vector<uint16_t> train(4000), val(400);
    for (auto& t : train) t = static_cast<uint16_t>(rng.below(53));
    for (auto& t : val) t = static_cast<uint16_t>(rng.below(53));
    ASSERT_TRUE(write_shard((root_ / "data/train_000000.bin").string(), train).ok());
    ASSERT_TRUE(write_shard((root_ / "data/val_000000.bin").string(), val).ok());
    // no model block: the weights decide the shape
    std::ofstream(root_ / "ft.textproto")
        << "optimizer { kind: ADAMW lr: 0.001 }\n"
        << "schedule { kind: CONSTANT }\n"
        << "data { dir: \"" << (root_ / "data").string() << "\" loader_threads: 1 }\n"
        << "run { batch_size: 2 replicas: 1 threads: 1 steps: 4 log_every: 1 eval_every: 0 "
        << "eval_batches: 1 checkpoint_every: 2 seed: 3 }\n";
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  static std::string out(const std::string& name) { return (root_ / name).string(); }
  static int train(const std::vector<std::string>& extra, const std::string& log) {
    std::vector<std::string> argv = {kTrain, "--config", (root_ / "ft.textproto").string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run(argv, log);
  }
  static std::string step_dir(const std::string& run_dir, int step) {
    char name[32];
    std::snprintf(name, sizeof(name), "step_%08d", step);
    return run_dir + "/checkpoints/" + name;
  }

  static fs::path root_;
};
fs::path InitFromTest::root_;

// With lr 0 the parameters after one step are the imported ones, bit for bit; the manifest
// records the source.
TEST_F(InitFromTest, TrainingStartsFromTheImportedWeightsAndRecordsThem) {
  const std::string dir = out("lr0"), src = kFixtures + "/hf_f16";
  // the flag overrides the config's model.init_from
  ASSERT_EQ(train({"--set", "model.init_from=/no/such/model", "--init_from", src, "--out", dir,
                   "--set", "run.steps=1", "--set", "optimizer.lr=0"},
                  dir + ".log"),
            0)
      << read_file(dir + ".log");
  const std::string log = read_file(dir + ".log");
  EXPECT_NE(log.find("weights: " + src + "/model.safetensors (safetensors, F16, crc32c"),
            std::string::npos)
      << log;
  StatusOr<PretrainedWeights> w = PretrainedWeights::open(src);
  ASSERT_TRUE(w.ok());
  Model imported({53, 9, 2, 3, 12}), trained({53, 9, 2, 3, 12});
  ASSERT_TRUE(w->load_into(imported).ok());
  StatusOr<proto::CheckpointManifest> m =
      load_checkpoint(step_dir(dir, 1), trained, {{"param/", trained.params()}});
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(0, std::memcmp(imported.params(), trained.params(), imported.num_params() * 4));
  ASSERT_TRUE(m->has_init_source());
  const proto::InitSource& s = m->init_source();
  EXPECT_EQ(s.path(), fs::absolute(src + "/model.safetensors").lexically_normal().string());
  EXPECT_EQ(s.crc32c(), *file_crc32c(src + "/model.safetensors"));
  EXPECT_EQ(s.config_crc32c(), *file_crc32c(src + "/config.json"));
  EXPECT_EQ(s.format(), "safetensors, F16");
  EXPECT_EQ(m->config().model().init_from(), src);
  EXPECT_EQ(m->config().model().n_layer(), 2);
  EXPECT_EQ(m->config().model().seq_len(), 9);  // the file's context, as none was set
}

// A Llama-family model's files: the config (no model block) becomes arch LLAMA with the file's
// heads, F, tying and constants, and with lr 0 one step leaves the imported weights as they are.
TEST_F(InitFromTest, ALlamaStartsFromItsImportedWeights) {
  const fs::path data = root_ / "llama_data";
  fs::create_directories(data);
  Rng rng(8);
  std::vector<uint16_t> train_tokens(4000), val(400);
  for (auto& t : train_tokens) t = static_cast<uint16_t>(rng.below(57));  // V of the fixture
  for (auto& t : val) t = static_cast<uint16_t>(rng.below(57));
  ASSERT_TRUE(write_shard((data / "train_000000.bin").string(), train_tokens).ok());
  ASSERT_TRUE(write_shard((data / "val_000000.bin").string(), val).ok());
  const std::string dir = out("llama_lr0"), src = kFixtures + "/llama_f32";
  ASSERT_EQ(train({"--init_from", src, "--out", dir, "--set", "run.steps=1", "--set",
                   "optimizer.lr=0", "--set", "data.dir=" + data.string()},
                  dir + ".log"),
            0)
      << read_file(dir + ".log");
  const std::string log = read_file(dir + ".log");
  EXPECT_NE(log.find("(safetensors (Llama), F32, crc32c"), std::string::npos) << log;
  StatusOr<PretrainedWeights> w = PretrainedWeights::open(src);
  ASSERT_TRUE(w.ok());
  const GptConfig cfg = pretrained_model_config(w->shape(), w->shape().n_ctx);
  Model imported(cfg), trained(cfg);
  ASSERT_TRUE(w->load_into(imported).ok());
  StatusOr<proto::CheckpointManifest> m =
      load_checkpoint(step_dir(dir, 1), trained, {{"param/", trained.params()}});
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(0, std::memcmp(imported.params(), trained.params(), imported.num_params() * 4));
  const proto::ModelConfig& mc = m->config().model();
  EXPECT_EQ(mc.arch(), proto::ModelConfig::LLAMA);
  EXPECT_EQ(mc.n_kv_head(), 2);
  EXPECT_EQ(mc.ffn_dim(), 40);
  EXPECT_FALSE(mc.tie_embeddings());
  EXPECT_EQ(mc.rope_theta(), 100.0);
}

// Train 4 steps, or 2 then resume for 2: the same bits. The resumed process says that it does
// not read the weights again, and its checkpoint still records where step 0 came from.
TEST_F(InitFromTest, ResumeTakesTheCheckpointNotTheFile) {
  const std::string src = kFixtures + "/gpt2_tiny_v3.bin";
  const std::string whole = out("whole"), parts = out("parts");
  const std::vector<std::string> args = {"--init_from", src, "--set", "model.seq_len=8"};
  auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.begin(), args.begin(), args.end());
    return extra;
  };
  ASSERT_EQ(train(with({"--out", whole}), whole + ".log"), 0) << read_file(whole + ".log");
  ASSERT_EQ(train(with({"--out", parts, "--set", "run.steps=2"}), parts + ".1.log"), 0)
      << read_file(parts + ".1.log");
  ASSERT_EQ(train(with({"--out", parts}), parts + ".2.log"), 0) << read_file(parts + ".2.log");
  const std::string log2 = read_file(parts + ".2.log");
  EXPECT_NE(log2.find("resumed from"), std::string::npos) << log2;
  EXPECT_NE(log2.find("model.init_from: not read again"), std::string::npos) << log2;
  EXPECT_EQ(log2.find("weights: "), std::string::npos) << log2;
  EXPECT_EQ(read_file(step_dir(whole, 4) + "/tensors.bin"),
            read_file(step_dir(parts, 4) + "/tensors.bin"));
  StatusOr<proto::CheckpointManifest> m = verify_checkpoint(step_dir(parts, 4));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->init_source().crc32c(), *file_crc32c(src));
  EXPECT_EQ(m->init_source().format(), "llm.c model file, version 3 (fp32)");
  EXPECT_EQ(m->config().model().seq_len(), 8);
  // training moved the weights away from the file's
  StatusOr<PretrainedWeights> w = PretrainedWeights::open(src);
  Model imported({53, 8, 2, 3, 12}), trained({53, 8, 2, 3, 12});
  ASSERT_TRUE(w->load_into(imported).ok());
  ASSERT_TRUE(load_checkpoint(step_dir(whole, 4), trained, {{"param/", trained.params()}}).ok());
  EXPECT_NE(0, std::memcmp(imported.params(), trained.params(), imported.num_params() * 4));
}

// A resume needs no weights' file: the model's shape and weights come from the checkpoint, so a
// run whose file was deleted after step 2 still continues, bit-exact with a straight run.
TEST_F(InitFromTest, ResumeRunsWithoutTheFile) {
  const std::string copy = out("hf_f32_copy");
  fs::copy(kFixtures + "/hf_f32", copy, fs::copy_options::recursive);
  const std::string whole = out("whole_f32"), parts = out("parts_f32");
  ASSERT_EQ(train({"--init_from", kFixtures + "/hf_f32", "--out", whole}, whole + ".log"), 0)
      << read_file(whole + ".log");
  ASSERT_EQ(train({"--init_from", copy, "--out", parts, "--set", "run.steps=2"}, parts + ".1.log"),
            0)
      << read_file(parts + ".1.log");
  fs::remove_all(copy);
  // a fresh run needs it, so it is gone indeed
  const std::string fresh = out("fresh_f32");
  EXPECT_EQ(train({"--init_from", copy, "--out", fresh}, fresh + ".log"), 2)
      << read_file(fresh + ".log");
  EXPECT_FALSE(fs::exists(fresh));
  ASSERT_EQ(train({"--init_from", copy, "--out", parts}, parts + ".2.log"), 0)
      << read_file(parts + ".2.log");
  const std::string log2 = read_file(parts + ".2.log");
  EXPECT_NE(log2.find("resumed from " + step_dir(parts, 2) + " (step 2)"), std::string::npos)
      << log2;
  EXPECT_NE(log2.find("model.init_from: not read again: a resumed run takes its weights and its "
                      "shape from its checkpoint"),
            std::string::npos)
      << log2;
  EXPECT_EQ(read_file(step_dir(whole, 4) + "/tensors.bin"),
            read_file(step_dir(parts, 4) + "/tensors.bin"));
  StatusOr<proto::CheckpointManifest> m = verify_checkpoint(step_dir(parts, 4));
  ASSERT_TRUE(m.ok()) << m.status().message();
  // where step 0 came from stays on record, and the shape is the file's
  EXPECT_EQ(m->init_source().path(),
            fs::absolute(copy + "/model.safetensors").lexically_normal().string());
  EXPECT_EQ(m->init_source().format(), "safetensors, F32");
  EXPECT_EQ(m->config().model().n_layer(), 2);
  EXPECT_EQ(m->config().model().seq_len(), 9);
}

// GPT-2's weights mean GPT-2's token ids: data with another tokenizer is refused up front.
TEST_F(InitFromTest, DataWithAnotherTokenizerExitsTwoAndWritesNothing) {
  const fs::path data = root_ / "data_byte";
  fs::create_directories(data);
  fs::copy_file(root_ / "data/train_000000.bin", data / "train_000000.bin");
  ASSERT_TRUE(Tokenizer().save((data / "tokenizer.bin").string()).ok());
  const std::string dir = out("byte_tokenizer");
  EXPECT_EQ(train({"--init_from", kFixtures + "/hf_f32", "--set", "data.dir=" + data.string(),
                   "--out", dir},
                  dir + ".log"),
            2)
      << read_file(dir + ".log");
  const std::string log = read_file(dir + ".log");
  EXPECT_NE(log.find("needs data tokenized with GPT-2's tokenizer, but data.dir's " +
                     (data / "tokenizer.bin").string() +
                     " is of kind byte (vocabulary of 256), not gpt2"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("prepare_data --tokenizer gpt2"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(dir));
}

TEST_F(InitFromTest, BadWeightsOrAConflictingShapeExitTwoAndWriteNothing) {
  const std::string dir = out("bad");
  // a NaN in one tensor of a copy of the llm.c file
  std::string bytes = read_file(kFixtures + "/gpt2_tiny_v5.bin");
  const uint16_t nan = 0x7fc0;
  std::memcpy(bytes.data() + bytes.size() - 2, &nan, 2);  // the last element of lnfb
  const std::string corrupt = out("corrupt_v5.bin");
  std::ofstream(corrupt, std::ios::binary) << bytes;
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--init_from", corrupt},
       "corrupt_v5.bin: tensor ln_f.bias (lnfb in the file) holds NaN "
       "at [11]"},
      {{"--init_from", kFixtures + "/hf_bf16", "--set", "model.n_layer=3", "--set",
        "model.d_model=16"},
       "model.n_layer = 3, but the weights have 2 layers\n  model.d_model = 16, but the weights "
       "have 12 channels"},
      {{"--init_from", kFixtures + "/hf_bf16", "--set", "model.seq_len=10"},
       "model.seq_len = 10 is longer than the weights' context, 9 positions"},
      {{"--init_from", out("no_such_model")}, "no such file or folder"},
      {{"--set", "model.init_from=" + (root_ / "data/train_000000.bin").string()},
       "a token shard's magic"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"--out", dir};
    args.insert(args.end(), c.args.begin(), c.args.end());
    EXPECT_EQ(train(args, dir + ".log"), 2) << read_file(dir + ".log");
    EXPECT_NE(read_file(dir + ".log").find(c.message), std::string::npos)
        << read_file(dir + ".log");
    EXPECT_FALSE(fs::exists(dir)) << c.message;
  }
  EXPECT_EQ(
      run({kTrain, "--config", (root_ / "ft.textproto").string(), "--init_from"}, dir + ".log"), 2);
  EXPECT_NE(read_file(dir + ".log").find("--init_from needs a model file or folder"),
            std::string::npos);
}

}  // namespace
}  // namespace skein
