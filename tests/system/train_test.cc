// System tests of the train binary: real processes, real files. Exact resume (also with another
// thread count), kill -9 at random moments, SIGINT/SIGTERM, corruption, bad input.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "base/rng.h"
#include "engine/checkpoint.h"
#include "kernels/gemm.h"
#include "tests/system/process.h"

namespace skein {
namespace {

namespace fs = std::filesystem;
using testing::read_file;
using testing::run;
using testing::spawn;
using testing::wait_exit;
using testing::wait_for_text;

const std::string kTrain = SKEIN_TRAIN_BIN;
const std::string kPrepare = SKEIN_PREPARE_DATA_BIN;
const std::string kInspect = SKEIN_INSPECT_BIN;

class TrainSystemTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("skein_system_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    // a small repetitive corpus, byte-level
    std::ofstream text(root_ / "corpus.txt");
    Rng rng(5);
    const char* words[] = {"the ", "quick ", "brown ", "fox ", "jumps ", "over ", "lazy ", "dog. "};
    for (int i = 0; i < 40000; ++i) text << words[rng.below(8)];
    text.close();
    const int rc = run({kPrepare, "--out", (root_ / "data").string(), "--val_fraction", "0.05",
                        (root_ / "corpus.txt").string()},
                       (root_ / "prepare.log").string());
    ASSERT_EQ(rc, 0) << read_file((root_ / "prepare.log").string());
    std::ofstream cfg(root_ / "tiny.textproto");
    cfg << "model { vocab_size: 256 seq_len: 32 n_layer: 2 n_head: 2 d_model: 32 }\n"
        << "optimizer { kind: ADAMW lr: 0.003 }\n"
        << "schedule { kind: CONSTANT }\n"
        << "data { dir: \"" << (root_ / "data").string() << "\" loader_threads: 1 }\n"
        << "run { batch_size: 4 replicas: 2 threads: 2 steps: 12 log_every: 1 eval_every: 0 "
        << "eval_batches: 2 checkpoint_every: 6 keep_checkpoints: 3 seed: 3 }\n";
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  static std::string config() { return (root_ / "tiny.textproto").string(); }
  static std::string out(const std::string& name) { return (root_ / name).string(); }
  static int train(const std::vector<std::string>& extra, const std::string& log) {
    std::vector<std::string> argv = {kTrain, "--config", config()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run(argv, log);
  }

  static fs::path root_;
};
fs::path TrainSystemTest::root_;

// The digits right after `key` at or after pos, as a number (-1 if none). (Plain string search:
// std::regex trips GCC 12's -Wmaybe-uninitialized under ASan.)
long number_after(const std::string& text, const std::string& key, size_t* pos) {
  const size_t p = text.find(key, *pos);
  if (p == std::string::npos) return -1;
  size_t e = p + key.size();
  long v = 0;
  bool any = false;
  for (; e < text.size() && text[e] >= '0' && text[e] <= '9'; ++e)
    v = v * 10 + (text[e] - '0'), any = true;
  *pos = e;
  return any ? v : -1;
}

// step -> the "loss" text of each train record of metrics.jsonl
std::map<long, std::string> losses(const std::string& run_dir) {
  std::map<long, std::string> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    size_t pos = 0;
    const long step = number_after(line, "\"type\": \"train\", \"step\": ", &pos);
    const size_t l = line.find("\"loss\": ", pos);
    if (step < 0 || l == std::string::npos) continue;
    const size_t start = l + 8;
    out[step] = line.substr(start, line.find(',', start) - start);
  }
  return out;
}

TEST_F(TrainSystemTest, ResumeIsBitExactAlsoWithAnotherThreadCount) {
  const std::string whole = out("whole"), parts = out("parts");
  ASSERT_EQ(train({"--out", whole}, whole + ".log"), 0) << read_file(whole + ".log");
  ASSERT_EQ(train({"--out", parts, "--set", "run.steps=6"}, parts + ".1.log"), 0)
      << read_file(parts + ".1.log");
  ASSERT_EQ(train({"--out", parts, "--set", "run.threads=1"}, parts + ".2.log"), 0)
      << read_file(parts + ".2.log");
  const std::string log2 = read_file(parts + ".2.log");
  EXPECT_NE(log2.find("resumed from"), std::string::npos) << log2;
  EXPECT_NE(log2.find("run.steps: 6 -> 12"), std::string::npos) << log2;  // reported, allowed
  EXPECT_NE(log2.find("run.threads: 2 -> 1"), std::string::npos) << log2;
  // parameters, optimizer moments (the whole blob) and losses are bit-identical
  const std::string a = whole + "/checkpoints/step_00000012",
                    b = parts + "/checkpoints/step_00000012";
  ASSERT_TRUE(verify_checkpoint(a).ok());
  ASSERT_TRUE(verify_checkpoint(b).ok());
  EXPECT_EQ(read_file(a + "/tensors.bin"), read_file(b + "/tensors.bin"));
  auto ma = verify_checkpoint(a), mb = verify_checkpoint(b);
  EXPECT_EQ(ma->last_loss(), mb->last_loss());
  EXPECT_EQ(ma->data_cursor(), mb->data_cursor());
  auto la = losses(whole), lb = losses(parts);
  EXPECT_EQ(la.size(), 12u);
  EXPECT_EQ(la, lb);
  // a finished run started again does nothing and reports its checkpoint's loss, not 0
  ASSERT_EQ(train({"--out", whole}, whole + ".again.log"), 0) << read_file(whole + ".again.log");
  const std::string again = read_file(whole + ".again.log");
  char final_loss[64];
  std::snprintf(final_loss, sizeof(final_loss), "(0 this session), final loss %.4f",
                ma->last_loss());
  EXPECT_NE(again.find(final_loss), std::string::npos) << again;
  EXPECT_GT(ma->last_loss(), 0.0f);
}

// run.threads_per_replica: two threads running each of the two replicas in turn train the same
// bits as a thread per replica; with one replica, the automatic choice puts both threads on it
// and says so; a count that does not divide the threads is refused, naming the field.
TEST_F(TrainSystemTest, ThreadsSharingAReplicaTrainTheSameBits) {
  const std::vector<std::string> short_run = {"--set", "run.steps=5", "--set",
                                              "run.checkpoint_every=0"};
  auto run_with = [&](const std::string& name, std::vector<std::string> args) {
    args.insert(args.end(), {"--out", out(name)});
    args.insert(args.end(), short_run.begin(), short_run.end());
    const int rc = train(args, out(name) + ".log");
    return std::pair{rc, read_file(out(name) + ".log")};
  };
  const auto [rc1, log1] = run_with("w_one", {});
  ASSERT_EQ(rc1, 0) << log1;
  const auto [rc2, log2] = run_with("w_two", {"--set", "run.threads_per_replica=2"});
  ASSERT_EQ(rc2, 0) << log2;
  EXPECT_NE(log2.find("2 threads (1 group(s) of 2 per replica), 2 replicas"), std::string::npos)
      << log2;
  EXPECT_EQ(losses(out("w_one")), losses(out("w_two")));
  EXPECT_EQ(losses(out("w_one")).size(), 5u);
  const auto [rc3, log3] = run_with("w_auto", {"--set", "run.replicas=1"});
  ASSERT_EQ(rc3, 0) << log3;
  EXPECT_NE(log3.find("threads: 2 per replica (run.threads_per_replica = 0; with fewer, 1 "
                      "replica(s) on this rank's 2 threads)"),
            std::string::npos)
      << log3;
  // a batch that two replicas cannot share: one replica, both threads on it
  const auto [rc5, log5] =
      run_with("w_batch", {"--set", "run.replicas=0", "--set", "run.batch_size=1"});
  ASSERT_EQ(rc5, 0) << log5;
  EXPECT_NE(log5.find("with fewer, run.batch_size = 1 is not divisible by 2 replicas"),
            std::string::npos)
      << log5;
  EXPECT_NE(log5.find("2 threads (1 group(s) of 2 per replica), 1 replicas"), std::string::npos)
      << log5;
  const auto [rc4, log4] = run_with("w_bad", {"--set", "run.threads_per_replica=3"});
  EXPECT_EQ(rc4, 2) << log4;
  EXPECT_NE(log4.find("run.threads_per_replica"), std::string::npos) << log4;
  EXPECT_FALSE(fs::exists(out("w_bad") + "/checkpoints"));
}

// run.precision = BF16 on a machine that cannot run it says so and trains in fp32 (the same
// losses, bit for bit); where it can, it says so and trains close to fp32. BF16_EMULATED says
// what it does and trains close to, not exactly as, fp32.
TEST_F(TrainSystemTest, PrecisionBf16FallsBackToFp32AndEmulatedIsClose) {
  const std::vector<std::string> short_run = {"--set", "run.steps=3", "--set",
                                              "run.checkpoint_every=0"};
  auto run_with = [&](const std::string& name, const std::string& precision) {
    std::vector<std::string> args = {"--out", out(name), "--set", "run.precision=" + precision};
    args.insert(args.end(), short_run.begin(), short_run.end());
    EXPECT_EQ(train(args, out(name) + ".log"), 0) << read_file(out(name) + ".log");
    return read_file(out(name) + ".log");
  };
  const std::string fp32_log = run_with("p_fp32", "FP32");
  const std::string bf16_log = run_with("p_bf16", "BF16");
  const std::string emu_log = run_with("p_emulated", "BF16_EMULATED");
  EXPECT_EQ(fp32_log.find("precision"), std::string::npos) << fp32_log;
  EXPECT_NE(emu_log.find("precision: BF16_EMULATED"), std::string::npos) << emu_log;
  const auto fp32 = losses(out("p_fp32")), bf16 = losses(out("p_bf16")),
             emulated = losses(out("p_emulated"));
  ASSERT_EQ(fp32.size(), 3u);
  ASSERT_EQ(emulated.size(), 3u);
  ASSERT_EQ(bf16.size(), 3u);
  const bool hardware = cpu_has_avx512_bf16();
  if (hardware) {
    // the kernel this process picks (the same check as train's): AMX or vdpbf16ps
    const std::string kernel = sgemm_kernels()[sgemm_chosen_kernel(MatmulPrecision::kBf16)].name;
    EXPECT_NE(bf16_log.find("precision: BF16: matmuls on " + kernel), std::string::npos)
        << bf16_log;
  } else {
    EXPECT_NE(bf16_log.find("run.precision = BF16: this CPU has no avx512_bf16"), std::string::npos)
        << bf16_log;
    EXPECT_NE(bf16_log.find("the matmuls run in fp32"), std::string::npos) << bf16_log;
    EXPECT_EQ(bf16, fp32);
  }
  for (const auto& [step, loss] : fp32) {
    for (const auto* other : {&emulated, &bf16}) {
      EXPECT_NEAR(std::stod(other->at(step)), std::stod(loss), 0.02 * std::stod(loss)) << step;
    }
    if (step == 1) {
      EXPECT_NE(emulated.at(step), loss);
      if (hardware) {
        EXPECT_NE(bf16.at(step), loss);
      }
    }
  }
}

TEST_F(TrainSystemTest, KillNineAtRandomMomentsNeverLosesACheckpoint) {
  const std::string dir = out("kill9");
  const std::vector<std::string> args = {kTrain,
                                         "--config",
                                         config(),
                                         "--out",
                                         dir,
                                         "--set",
                                         "run.steps=1000000",
                                         "--set",
                                         "run.checkpoint_every=1",
                                         "--set",
                                         "run.log_every=10"};
  Rng rng(11);
  long last_done = -1, found_step = -1;
  for (int trial = 0; trial < 20; ++trial) {
    const std::string log = dir + ".trial" + std::to_string(trial) + ".log";
    testing::Process p = spawn(args, log);
    // a random moment once training runs (start-up is slow under the sanitizers)
    ASSERT_TRUE(wait_for_text(log, "skein: ", 120)) << read_file(log);
    usleep(static_cast<useconds_t>(rng.below(600000)));  // 0 to 0.6 s
    kill(p.pid, SIGKILL);
    EXPECT_EQ(wait_exit(p), 128 + SIGKILL);
    // the newest checkpoint whose save completed (its line is printed after the rename)
    const std::string text = read_file(log);
    for (size_t pos = 0;;) {
      const size_t at = text.find("saved checkpoint ", pos);
      if (at == std::string::npos) break;
      pos = at;
      const long step = number_after(text, "step_", &pos);
      if (step < 0) break;
      last_done = std::max(last_done, step);
    }
    std::vector<std::string> skipped;
    const std::string found = find_latest_valid_checkpoint(dir + "/checkpoints", &skipped);
    if (last_done >= 0) {
      ASSERT_FALSE(found.empty()) << "trial " << trial << ": no checkpoint verifies";
      found_step = std::stol(fs::path(found).filename().string().substr(5));
      EXPECT_GE(found_step, last_done) << "trial " << trial;
    }
  }
  EXPECT_GT(last_done, 0) << "no trial got as far as a checkpoint";
  // and the run resumes and finishes
  std::vector<std::string> finish = args;
  finish[6] = "run.steps=" + std::to_string(found_step + 3);
  const std::string log = dir + ".final.log";
  ASSERT_EQ(run(finish, log), 0) << read_file(log);
  EXPECT_NE(read_file(log).find("done: " + std::to_string(found_step + 3) + " steps"),
            std::string::npos)
      << read_file(log);
}

TEST_F(TrainSystemTest, SigtermFinishesTheStepSavesAndExitsZero) {
  const std::string dir = out("sigterm");
  testing::Process p = spawn({kTrain, "--config", config(), "--out", dir, "--set",
                              "run.steps=100000", "--set", "run.checkpoint_every=0"},
                             dir + ".log");
  ASSERT_TRUE(wait_for_text(dir + ".log", "step 3/", 120)) << read_file(dir + ".log");
  kill(p.pid, SIGTERM);
  EXPECT_EQ(wait_exit(p, 120), 0);
  const std::string log = read_file(dir + ".log");
  EXPECT_NE(log.find("Resume with: train --config"), std::string::npos) << log;
  std::vector<std::string> skipped;
  const std::string found = find_latest_valid_checkpoint(dir + "/checkpoints", &skipped);
  ASSERT_FALSE(found.empty());
  EXPECT_GE(verify_checkpoint(found)->step(), 3);
}

TEST_F(TrainSystemTest, SecondSigintExitsAtOnceAndTheLastCheckpointVerifies) {
  const std::string dir = out("sigint2");
  // A wider model, so that a step lasts long enough for the second signal to arrive while the
  // first is still being honoured (two pending signals of one kind would merge into one).
  testing::Process p =
      spawn({kTrain, "--config", config(), "--out", dir, "--set", "run.steps=100000", "--set",
             "run.checkpoint_every=2", "--set", "model.d_model=384", "--set", "model.n_layer=4",
             "--set", "model.seq_len=64"},
            dir + ".log");
  ASSERT_TRUE(wait_for_text(dir + ".log", "saved checkpoint", 120)) << read_file(dir + ".log");
  kill(p.pid, SIGINT);
  // The second only once the first has been delivered (no longer pending in the process's
  // ShdPnd mask), else the two merge into one on a loaded machine and the run stops cleanly.
  const auto pending = [&] {
    std::ifstream f("/proc/" + std::to_string(p.pid) + "/status");
    for (std::string line; std::getline(f, line);)
      if (line.rfind("ShdPnd:", 0) == 0)
        return (std::stoull(line.substr(7), nullptr, 16) >> (SIGINT - 1)) & 1;
    return 0ull;
  };
  for (int i = 0; i < 10000 && pending(); ++i) usleep(1000);
  ASSERT_FALSE(pending()) << "the first SIGINT was not delivered within 10 s";
  kill(p.pid, SIGINT);
  EXPECT_EQ(wait_exit(p, 120), 130);
  std::vector<std::string> skipped;
  const std::string found = find_latest_valid_checkpoint(dir + "/checkpoints", &skipped);
  ASSERT_FALSE(found.empty());
  EXPECT_EQ(run({kInspect, found}, dir + ".inspect.log"), 0);
  EXPECT_NE(read_file(dir + ".inspect.log").find("VERIFIED"), std::string::npos);
}

TEST_F(TrainSystemTest, CorruptCheckpointIsRefusedOnResume) {
  const std::string dir = out("corrupt");
  ASSERT_EQ(train({"--out", dir, "--set", "run.steps=6"}, dir + ".log"), 0)
      << read_file(dir + ".log");
  const std::string ck = dir + "/checkpoints/step_00000006";
  {
    std::fstream f(ck + "/tensors.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1000);
    f.put('\x7f');
  }
  EXPECT_EQ(run({kInspect, ck}, dir + ".inspect.log"), 1);
  EXPECT_NE(read_file(dir + ".inspect.log").find("DOES NOT VERIFY"), std::string::npos);
  EXPECT_EQ(train({"--out", dir, "--resume", ck, "--set", "run.steps=8"}, dir + ".2.log"), 3);
  EXPECT_NE(read_file(dir + ".2.log").find("is corrupt: stored CRC-32C"), std::string::npos)
      << read_file(dir + ".2.log");
  // auto skips it (it is the only one, so training starts afresh) and says so
  EXPECT_EQ(train({"--out", dir, "--set", "run.steps=2"}, dir + ".3.log"), 0);
  EXPECT_NE(read_file(dir + ".3.log").find("skipping a checkpoint that does not verify"),
            std::string::npos);
}

TEST_F(TrainSystemTest, IncompatibleConfigIsRefusedWithAFieldDiff) {
  const std::string dir = out("incompatible");
  ASSERT_EQ(train({"--out", dir, "--set", "run.steps=2"}, dir + ".log"), 0)
      << read_file(dir + ".log");
  EXPECT_EQ(train({"--out", dir, "--set", "model.d_model=48", "--set", "optimizer.kind=SGD"},
                  dir + ".2.log"),
            3);
  const std::string log = read_file(dir + ".2.log");
  EXPECT_NE(log.find("model.d_model: 32 -> 48"), std::string::npos) << log;
  EXPECT_NE(log.find("optimizer.kind: ADAMW -> SGD"), std::string::npos) << log;
}

// A learning rate of 1e30 blows the parameters up after one step; the next loss is not finite.
TEST_F(TrainSystemTest, NonFiniteLossFollowsThePolicyAndNeverCheckpointsNaN) {
  const std::string dir = out("nonfinite");
  const std::vector<std::string> blowup = {"--out", dir,
                                           "--set", "optimizer.lr=1e30",
                                           "--set", "optimizer.max_grad_norm=0",
                                           "--set", "run.checkpoint_every=1"};
  std::vector<std::string> stop = blowup;
  stop.insert(stop.end(), {"--set", "run.on_nonfinite=STOP"});
  EXPECT_EQ(train(stop, dir + ".stop.log"), 1);
  const std::string log = read_file(dir + ".stop.log");
  EXPECT_NE(log.find("non-finite loss or gradient at step"), std::string::npos) << log;
  std::vector<std::string> skip = blowup;
  skip.insert(skip.end(), {"--set", "run.on_nonfinite=SKIP", "--set", "run.max_skipped_steps=3",
                           "--resume", "auto"});
  EXPECT_EQ(train(skip, dir + ".skip.log"), 1);
  const std::string log2 = read_file(dir + ".skip.log");
  EXPECT_NE(log2.find("update skipped"), std::string::npos) << log2;
  EXPECT_NE(log2.find("3 steps in a row had a non-finite gradient"), std::string::npos) << log2;
  // every checkpoint that exists verifies and holds finite parameters only
  std::vector<std::string> skipped;
  const std::string found = find_latest_valid_checkpoint(dir + "/checkpoints", &skipped);
  EXPECT_TRUE(skipped.empty());
  if (!found.empty()) {
    Model model(GptConfig{256, 32, 2, 2, 32});
    ASSERT_TRUE(load_checkpoint(found, model, {{"param/", model.params()}}).ok());
    for (size_t i = 0; i < model.num_params(); ++i)
      ASSERT_TRUE(std::isfinite(model.params()[i])) << i;
  }
}

TEST_F(TrainSystemTest, BadInputExitsTwoAndWritesNothing) {
  const std::string dir = out("bad");
  EXPECT_EQ(train({"--out", dir, "--set", "model.n_head=5"}, dir + ".1.log"), 2);
  EXPECT_NE(
      read_file(dir + ".1.log").find("model.d_model = 32: must be divisible by model.n_head = 5"),
      std::string::npos);
  EXPECT_EQ(train({"--out", dir, "--set", "data.dir=/no/such/folder"}, dir + ".2.log"), 2);
  EXPECT_NE(read_file(dir + ".2.log").find("data.dir = \"/no/such/folder\": no such folder"),
            std::string::npos);
  EXPECT_EQ(train({"--out", dir, "--set", "model.vocab_size=200"}, dir + ".3.log"), 2);
  EXPECT_NE(read_file(dir + ".3.log").find("does not match the data's tokenizer"),
            std::string::npos)
      << read_file(dir + ".3.log");
  EXPECT_EQ(train({"--out", dir, "--bogus"}, dir + ".4.log"), 2);
  EXPECT_EQ(run({kTrain, "--config", "/no/such.textproto"}, dir + ".5.log"), 2);
  EXPECT_NE(read_file(dir + ".5.log").find("/no/such.textproto"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir));
}

void flip_byte_at(const std::string& path, long offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(offset);
  char c = 0;
  f.get(c);
  f.seekp(offset);
  f.put(static_cast<char>(c ^ 0x10));
}

// Finding 3: a re-save of a step (here: resumed from step 6, trained to 12 again) killed between
// moving the old copy aside and renaming the new one in. The next run recovers the complete
// copy instead of deleting it, resumes from step 12, and its bits are those of a straight run.
TEST_F(TrainSystemTest, KillBetweenTheRenamesOfAReSaveLosesNoCheckpoint) {
  const std::string dir = out("resave"), straight = out("resave_straight");
  ASSERT_EQ(train({"--out", straight}, straight + ".log"), 0) << read_file(straight + ".log");
  ASSERT_EQ(train({"--out", dir}, dir + ".1.log"), 0) << read_file(dir + ".1.log");
  ::setenv("SKEIN_TEST_KILL_AT", "checkpoint_between_renames", 1);
  const int rc =
      train({"--out", dir, "--resume", dir + "/checkpoints/step_00000006"}, dir + ".2.log");
  ::unsetenv("SKEIN_TEST_KILL_AT");
  ASSERT_EQ(rc, 128 + SIGKILL) << read_file(dir + ".2.log");
  EXPECT_FALSE(fs::exists(dir + "/checkpoints/step_00000012"));  // the window
  ASSERT_EQ(train({"--out", dir}, dir + ".3.log"), 0) << read_file(dir + ".3.log");
  const std::string log = read_file(dir + ".3.log");
  EXPECT_NE(log.find("recovered a complete checkpoint"), std::string::npos) << log;
  EXPECT_NE(log.find("resumed from " + dir + "/checkpoints/step_00000012"), std::string::npos)
      << log;
  EXPECT_EQ(read_file(dir + "/checkpoints/step_00000012/tensors.bin"),
            read_file(straight + "/checkpoints/step_00000012/tensors.bin"));
}

// Findings 1 and 2 at the process level: with every checkpoint failing verification (one with a
// flipped manifest byte, one with a flipped tensor byte), train says that it starts again from
// step 0, and what it saves now is kept (corrupt checkpoints do not count among the kept ones).
TEST_F(TrainSystemTest, WhenNoCheckpointVerifiesTrainingRestartsAndKeepsWhatItSaves) {
  const std::string dir = out("allbad");
  ASSERT_EQ(train({"--out", dir, "--set", "run.keep_checkpoints=2"}, dir + ".1.log"), 0)
      << read_file(dir + ".1.log");
  flip_byte_at(dir + "/checkpoints/step_00000006/manifest.pb", 40);
  flip_byte_at(dir + "/checkpoints/step_00000012/tensors.bin", 100);
  EXPECT_EQ(run({kInspect, dir + "/checkpoints/step_00000006"}, dir + ".inspect.log"), 1);
  EXPECT_NE(read_file(dir + ".inspect.log").find("manifest is corrupt"), std::string::npos)
      << read_file(dir + ".inspect.log");
  ASSERT_EQ(train({"--out", dir, "--set", "run.keep_checkpoints=2", "--set", "run.steps=3", "--set",
                   "run.checkpoint_every=1"},
                  dir + ".2.log"),
            0)
      << read_file(dir + ".2.log");
  const std::string log = read_file(dir + ".2.log");
  EXPECT_NE(log.find("training starts again from step 0"), std::string::npos) << log;
  for (const char* step : {"step_00000002", "step_00000003"}) {
    EXPECT_TRUE(verify_checkpoint(dir + "/checkpoints/" + step).ok()) << step;
  }
  EXPECT_FALSE(fs::exists(dir + "/checkpoints/step_00000001"));
  EXPECT_EQ(read_file(dir + "/checkpoints/latest"), "step_00000003\n");
}

// Findings 4, 5 and 6 at the process level: refused with exit code 2, nothing written.
TEST_F(TrainSystemTest, BadInputFoundAtStartUpNamesTheCauseAndWritesNothing) {
  const std::string dir = out("bad2");
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--set", "optimizer.lr=inf"}, "optimizer.lr = inf: must be a finite number"},
      {{"--set", "schedule.min_lr=nan"}, "schedule.min_lr = nan: must be a finite number"},
      {{"--set", "model.d_model=1000000"}, "GiB of memory"},
      {{"--set", "model.seq_len=100000"}, "fewer than the 100001 that one training sequence"},
      {{"--resume", dir + "/no/such/checkpoint"}, "no/such/checkpoint: no such checkpoint folder"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"--out", dir};
    args.insert(args.end(), c.args.begin(), c.args.end());
    EXPECT_EQ(train(args, dir + ".log"), 2) << c.args[1] << "\n" << read_file(dir + ".log");
    EXPECT_NE(read_file(dir + ".log").find(c.message), std::string::npos)
        << c.args[1] << "\n"
        << read_file(dir + ".log");
    EXPECT_FALSE(fs::exists(dir)) << c.args[1];
  }
  // an empty config says so, a config file that is not text too
  std::ofstream(dir + ".empty.textproto") << "# nothing here\n";
  EXPECT_EQ(run({kTrain, "--config", dir + ".empty.textproto", "--out", dir}, dir + ".log"), 2);
  EXPECT_NE(read_file(dir + ".log").find("sets no field at all"), std::string::npos)
      << read_file(dir + ".log");
  EXPECT_EQ(run({kTrain, "--config", kTrain, "--out", dir}, dir + ".log"), 2);
  EXPECT_NE(read_file(dir + ".log").find("is not a text config"), std::string::npos)
      << read_file(dir + ".log");
  EXPECT_FALSE(fs::exists(dir));
}

// Finding 6: a data folder without tokenizer.bin trains, with a warning that sample cannot
// decode.
TEST_F(TrainSystemTest, DataWithoutTokenizerWarns) {
  const std::string data = out("data_notok"), dir = out("notok");
  fs::create_directories(data);
  for (const auto& e : fs::directory_iterator(root_ / "data"))
    if (e.path().filename() != "tokenizer.bin")
      fs::copy_file(e.path(), data + "/" + e.path().filename().string());
  ASSERT_EQ(
      train({"--out", dir, "--set", "data.dir=" + data, "--set", "run.steps=1"}, dir + ".log"), 0)
      << read_file(dir + ".log");
  EXPECT_NE(read_file(dir + ".log").find("has no tokenizer.bin"), std::string::npos)
      << read_file(dir + ".log");
}

}  // namespace
}  // namespace skein
