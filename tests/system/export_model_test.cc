// The export_model binary on a real run (2 steps of a tiny byte-level model with a checkpoint):
// a run folder or a checkpoint folder exports to Hugging Face and llm.c files that import as the
// checkpoint's parameters, it says what it wrote, and bad flags, a missing checkpoint or
// tokenizer, the wrong tokenizer and an unusable --out exit 2 with the reason, leaving nothing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "base/rng.h"
#include "data/tokenizer.h"
#include "engine/checkpoint.h"
#include "engine/config.h"
#include "engine/import.h"
#include "tests/system/process.h"

namespace skein {
namespace {

namespace fs = std::filesystem;
using testing::read_file;
using testing::run;

const std::string kTrain = SKEIN_TRAIN_BIN;
const std::string kPrepare = SKEIN_PREPARE_DATA_BIN;
const std::string kExport = SKEIN_EXPORT_MODEL_BIN;

class ExportModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("skein_export_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    std::ofstream text(root_ / "corpus.txt");
    Rng rng(5);
    const char* words[] = {"the ", "quick ", "brown ", "fox ", "jumps ", "over ", "lazy ", "dog. "};
    for (int i = 0; i < 4000; ++i) text << words[rng.below(8)];
    text.close();
    ASSERT_EQ(run({kPrepare, "--out", (root_ / "data").string(), "--val_fraction", "0.05",
                   (root_ / "corpus.txt").string()},
                  (root_ / "prepare.log").string()),
              0)
        << read_file((root_ / "prepare.log").string());
    std::ofstream(root_ / "tiny.textproto")
        << "model { vocab_size: 256 seq_len: 16 n_layer: 1 n_head: 2 d_model: 16 }\n"
        << "optimizer { kind: ADAMW lr: 0.003 }\n"
        << "schedule { kind: CONSTANT }\n"
        << "data { dir: \"" << (root_ / "data").string() << "\" loader_threads: 1 }\n"
        << "run { batch_size: 2 replicas: 1 threads: 1 steps: 2 log_every: 1 eval_every: 0 "
        << "eval_batches: 1 checkpoint_every: 2 seed: 3 out_dir: \"" << (root_ / "run").string()
        << "\" }\n";
    ASSERT_EQ(run({kTrain, "--config", (root_ / "tiny.textproto").string()},
                  (root_ / "train.log").string()),
              0)
        << read_file((root_ / "train.log").string());
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  static std::string path(const std::string& name) { return (root_ / name).string(); }
  static std::string run_dir() { return path("run"); }
  static std::string checkpoint() { return path("run/checkpoints/step_00000002"); }
  // Runs export_model with args; *log receives what it printed.
  static int export_model(const std::vector<std::string>& args, std::string* log) {
    std::vector<std::string> argv = {kExport};
    argv.insert(argv.end(), args.begin(), args.end());
    const std::string log_path = path("export_" + std::to_string(++calls_) + ".log");
    const int rc = run(argv, log_path, 60);
    *log = read_file(log_path);
    return rc;
  }
  // The checkpoint's parameters, and the same model's from an exported file.
  static void expect_exported_params(const std::string& file, const std::string& format) {
    const GptConfig cfg = {256, 16, 1, 2, 16};
    Model trained(cfg), exported(cfg);
    ASSERT_TRUE(load_checkpoint(checkpoint(), trained, {{"param/", trained.params()}}).ok());
    StatusOr<PretrainedWeights> w = PretrainedWeights::open(file);
    ASSERT_TRUE(w.ok()) << w.status().message();
    EXPECT_EQ(w->format(), format);
    ASSERT_TRUE(w->load_into(exported).ok());
    EXPECT_EQ(0, std::memcmp(trained.params(), exported.params(), trained.num_params() * 4));
  }
  // Names in `dir`, for "nothing was left behind".
  static std::set<std::string> files_in(const std::string& dir) {
    std::set<std::string> names;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
      names.insert(e.path().filename().string());
    return names;
  }

  static fs::path root_;
  static int calls_;
};
fs::path ExportModelTest::root_;
int ExportModelTest::calls_ = 0;

TEST_F(ExportModelTest, HfOfARunFolderIsItsNewestCheckpoint) {
  const std::string out = path("hf");
  std::string log;
  ASSERT_EQ(export_model({"--checkpoint", run_dir(), "--format", "hf", "--out", out}, &log), 0)
      << log;
  expect_exported_params(out, "safetensors, F32");
  EXPECT_NE(
      log.find("checkpoint: " + checkpoint() + " (step 2; GPT-2, V 256, T 16, L 1, NH 2, C 16"),
      std::string::npos)
      << log;
  EXPECT_NE(log.find("tokenizer: " + path("data") + "/tokenizer.bin (byte, 256 tokens)"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("Hugging Face has no files for it"), std::string::npos) << log;
  const uint64_t size = fs::file_size(out + "/model.safetensors");
  EXPECT_NE(log.find("wrote " + out + "/model.safetensors: Hugging Face GPT2LMHeadModel, f32, " +
                     std::to_string(size) + " bytes"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find(", 16 tensors\n"), std::string::npos) << log;  // 2 + 12 x 1 layer + 2
  EXPECT_NE(log.find("wrote " + out + "/config.json: "), std::string::npos) << log;
  EXPECT_EQ(files_in(out), (std::set<std::string>{"config.json", "model.safetensors"}));
}

// A Llama-family run: hf writes LlamaForCausalLM's tensors (q, k, v, gate, up apart), gguf the
// llama architecture's; llm.c's format holds GPT-2 only, so llmc is bad input (exit code 2) and
// writes nothing.
TEST_F(ExportModelTest, LlamaGoesToHfAndGgufNotLlmc) {
  std::ofstream(path("llama.textproto"))
      << "model { arch: LLAMA vocab_size: 256 seq_len: 16 n_layer: 1 n_head: 2 n_kv_head: 1 "
      << "d_model: 16 tie_embeddings: false }\n"
      << "data { dir: \"" << path("data") << "\" loader_threads: 1 }\n"
      << "run { batch_size: 2 replicas: 1 threads: 1 steps: 1 eval_every: 0 eval_batches: 1 "
      << "out_dir: \"" << path("llama_run") << "\" }\n";
  ASSERT_EQ(run({kTrain, "--config", path("llama.textproto")}, path("llama_train.log")), 0)
      << read_file(path("llama_train.log"));
  std::string log;
  const std::string hf = path("llama_hf");
  ASSERT_EQ(export_model({"--checkpoint", path("llama_run"), "--format", "hf", "--out", hf}, &log),
            0)
      << log;
  EXPECT_NE(log.find("(step 1; Llama, V 256, T 16, L 1, NH 2, C 16"), std::string::npos) << log;
  EXPECT_NE(log.find("Hugging Face LlamaForCausalLM, f32, "), std::string::npos) << log;
  // embed, 2 norms, q, k, v, o, gate, up, down, final norm, lm_head
  EXPECT_NE(log.find(", 12 tensors\n"), std::string::npos) << log;
  const std::string gguf = path("llama.gguf");
  ASSERT_EQ(
      export_model({"--checkpoint", path("llama_run"), "--format", "gguf", "--out", gguf}, &log), 0)
      << log;
  EXPECT_NE(log.find("GGUF (llama.cpp), f32, "), std::string::npos) << log;
  EXPECT_NE(log.find(", 12 tensors\n"), std::string::npos) << log;
  const std::string llmc = path("llama.bin");
  EXPECT_EQ(
      export_model({"--checkpoint", path("llama_run"), "--format", "llmc", "--out", llmc}, &log), 2)
      << log;
  EXPECT_NE(log.find("llm.c's model file holds GPT-2 models only"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(llmc));
}

TEST_F(ExportModelTest, LlmcOfACheckpointFolder) {
  const std::string out = path("model.bin"), out5 = path("model_bf16.bin");
  std::string log;
  ASSERT_EQ(export_model({"--checkpoint", checkpoint(), "--format", "llmc", "--out", out}, &log), 0)
      << log;
  expect_exported_params(out, "llm.c model file, version 3 (fp32)");
  EXPECT_NE(log.find("wrote " + out + ": llm.c model file, f32, "), std::string::npos) << log;
  EXPECT_EQ(log.find("tokenizer:"), std::string::npos) << log;  // llm.c's file has none
  ASSERT_EQ(export_model({"--checkpoint", checkpoint(), "--format", "llmc", "--dtype", "bf16",
                          "--out", out5},
                         &log),
            0)
      << log;
  EXPECT_NE(log.find("wrote " + out5 + ": llm.c model file, bf16, "), std::string::npos) << log;
  StatusOr<PretrainedWeights> w = PretrainedWeights::open(out5);
  ASSERT_TRUE(w.ok()) << w.status().message();
  EXPECT_EQ(w->format(), "llm.c model file, version 5 (bf16)");
}

TEST_F(ExportModelTest, BadFlagsExitTwoAndWriteNothing) {
  const std::string out = path("bad_out");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--checkpoint", run_dir(), "--format", "onnx", "--out", out},
       "--format onnx: unknown format, expected hf, llmc or gguf"},
      {{"--checkpoint", run_dir(), "--format", "hf", "--dtype", "fp8", "--out", out},
       "--dtype: unknown dtype 'fp8': expected f32, f16 or bf16"},
      {{"--checkpoint", run_dir(), "--format", "llmc", "--dtype", "f16", "--out", out},
       "--dtype f16: llm.c has no float16 model file"},
      {{"--checkpoint", run_dir(), "--format", "hf"}, "--out PATH is required"},
      {{"--format", "hf", "--out", out}, "--checkpoint PATH is required"},
      {{"--checkpoint", run_dir(), "--out", out}, "--format hf|llmc|gguf is required"},
      {{"--checkpoint", run_dir(), "--format", "hf", "--out", out, "--frobnicate", "1"},
       "unknown argument '--frobnicate'"},
      {{"--checkpoint", run_dir(), "--format", "hf", "--out"}, "missing value after --out"},
  };
  for (const auto& [args, want] : cases) {
    std::string log;
    EXPECT_EQ(export_model(args, &log), 2) << log;
    EXPECT_NE(log.find("error: " + want), std::string::npos) << log;
  }
  EXPECT_FALSE(fs::exists(out));
  std::string help;
  ASSERT_EQ(export_model({"--help"}, &help), 0);
  EXPECT_NE(help.find("exit codes:"), std::string::npos) << help;
  EXPECT_NE(help.find("--dtype D"), std::string::npos) << help;
}

TEST_F(ExportModelTest, MissingCheckpointOrTokenizerExitsTwoAndNamesIt) {
  const std::string out = path("missing_out");
  std::string log;
  EXPECT_EQ(
      export_model({"--checkpoint", path("no_such_run"), "--format", "hf", "--out", out}, &log), 2);
  EXPECT_NE(
      log.find("error: --checkpoint " + path("no_such_run") + ": no such checkpoint or run folder"),
      std::string::npos)
      << log;
  // a run folder whose checkpoints do not verify
  fs::create_directories(path("broken_run/checkpoints/step_00000002"));
  fs::copy_file(checkpoint() + "/manifest.pb",
                path("broken_run/checkpoints/step_00000002/manifest.pb"));
  std::ofstream(path("broken_run/checkpoints/step_00000002/tensors.bin")) << "truncated";
  EXPECT_EQ(
      export_model({"--checkpoint", path("broken_run"), "--format", "hf", "--out", out}, &log), 2);
  EXPECT_NE(log.find(path("broken_run") + " holds no checkpoint that verifies"), std::string::npos)
      << log;
  EXPECT_NE(log.find("skipped"), std::string::npos) << log;
  // --tokenizer that does not exist (hf), or none for gguf
  EXPECT_EQ(export_model({"--checkpoint", run_dir(), "--format", "hf", "--out", out, "--tokenizer",
                          path("no_such_tokenizer.bin")},
                         &log),
            2);
  EXPECT_NE(log.find(path("no_such_tokenizer.bin")), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(ExportModelTest, ATokenizerOtherThanTheTrainedOneIsRefused) {
  // the data's tokenizer.bin replaced after training (prepare_data run again with BPE, say)
  const std::string tok = path("data/tokenizer.bin"), saved = path("tokenizer.bin.saved");
  fs::copy_file(tok, saved);
  StatusOr<Tokenizer> bpe = Tokenizer::from_merges({});  // 256 tokens too, another file
  ASSERT_TRUE(bpe.ok());
  ASSERT_TRUE(bpe->save(tok).ok());
  const std::string out = path("other_tok");
  std::string log;
  EXPECT_EQ(export_model({"--checkpoint", run_dir(), "--format", "hf", "--out", out}, &log), 2);
  EXPECT_NE(log.find("error: " + tok + " is not the tokenizer file the model was trained with"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("--tokenizer FILE"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(out));
  // given explicitly, it is used, with a warning
  EXPECT_EQ(
      export_model({"--checkpoint", run_dir(), "--format", "hf", "--out", out, "--tokenizer", tok},
                   &log),
      0)
      << log;
  EXPECT_NE(log.find("warning: " + tok + " is not the tokenizer file"), std::string::npos) << log;
  // and the original one passes
  EXPECT_EQ(
      export_model(
          {"--checkpoint", run_dir(), "--format", "hf", "--out", out, "--tokenizer", saved}, &log),
      0)
      << log;
  EXPECT_EQ(log.find("warning"), std::string::npos) << log;
  fs::rename(saved, tok);
}

TEST_F(ExportModelTest, UnusableOutExitsTwoWithTheReasonAndLeavesNothing) {
  const fs::path dir = root_ / "outs";
  fs::create_directories(dir);
  std::ofstream(dir / "file") << "x";
  fs::create_directories(dir / "folder");
  const std::string file = (dir / "file").string(), folder = (dir / "folder").string();
  struct Case {
    std::string format, out, want;
  };
  const std::vector<Case> cases = {
      {"hf", file, "--out " + file + " is a file, but a Hugging Face model is a folder"},
      {"hf", file + "/sub", "--out " + file + "/sub: a file stands where a folder"},
      {"llmc", folder, "--out " + folder + " is a folder, but this format is one file"},
      {"llmc", folder + "/no/such/model.bin",
       "--out " + folder + "/no/such/model.bin: the folder " + folder + "/no/such does not exist"},
      {"llmc", file + "/model.bin",
       "--out " + file + "/model.bin: " + file + " is a file, not a folder"},
  };
  for (const Case& c : cases) {
    std::string log;
    EXPECT_EQ(export_model({"--checkpoint", run_dir(), "--format", c.format, "--out", c.out}, &log),
              2)
        << log;
    EXPECT_NE(log.find("error: " + c.want), std::string::npos) << log;
  }
  if (::geteuid() != 0) {  // root writes anywhere
    fs::create_directories(dir / "read_only");
    fs::permissions(dir / "read_only", fs::perms::owner_read | fs::perms::owner_exec);
    std::string log;
    EXPECT_EQ(export_model({"--checkpoint", run_dir(), "--format", "llmc", "--out",
                            (dir / "read_only/model.bin").string()},
                           &log),
              2);
    EXPECT_NE(log.find("cannot write into " + (dir / "read_only").string()), std::string::npos)
        << log;
    EXPECT_TRUE(files_in((dir / "read_only").string()).empty());
    fs::permissions(dir / "read_only", fs::perms::owner_all);
  }
  EXPECT_EQ(files_in(dir.string()).count("file"), 1u);
  EXPECT_EQ(read_file(file), "x");
  EXPECT_TRUE(files_in(folder).empty());
  for (const std::string& name : files_in(dir.string()))
    EXPECT_TRUE(name == "file" || name == "folder" || name == "read_only") << name;
}

}  // namespace
}  // namespace skein
