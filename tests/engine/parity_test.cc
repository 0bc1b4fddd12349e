// PyTorch parity: skein's models against the fixtures written by tests/reference/gpt_reference.py
// (float64 PyTorch on the same float32 weights and tokens): GPT-2's blocks, and Llama's (RMSNorm,
// rotary, SwiGLU, grouped-query attention, untied output). Every tensor is compared on its own:
// max |a - b| / (max |b| + tiny) <= 1e-5.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "engine/model.h"
#include "optimizers/adamw.h"
#include "optimizers/clip.h"
#include "optimizers/sgd.h"
#include "tests/kernels/kernel_test_util.h"

namespace skein {
namespace {

constexpr double kTol = 1e-5;

struct Record {
  std::vector<int> shape;
  std::vector<float> f;
  std::vector<int32_t> i;
};

std::map<std::string, Record> load_fixture(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) ADD_FAILURE() << "cannot open " << path << " (run the test from the repository root)";
  char magic[8];
  in.read(magic, 8);
  if (!in || std::memcmp(magic, "SKEINFX1", 8) != 0) {
    ADD_FAILURE() << path << ": bad magic";
    return {};
  }
  auto u32 = [&] {
    uint32_t v = 0;
    in.read(reinterpret_cast<char*>(&v), 4);
    return v;
  };
  std::map<std::string, Record> out;
  const uint32_t count = u32();
  for (uint32_t r = 0; r < count && in; ++r) {
    std::string name(u32(), '\0');
    in.read(name.data(), name.size());
    const uint32_t dtype = u32(), ndim = u32();
    Record rec;
    size_t n = 1;
    for (uint32_t d = 0; d < ndim; ++d) {
      rec.shape.push_back(static_cast<int>(u32()));
      n *= rec.shape.back();
    }
    if (dtype == 0) {
      rec.f.resize(n);
      in.read(reinterpret_cast<char*>(rec.f.data()), n * 4);
    } else {
      rec.i.resize(n);
      in.read(reinterpret_cast<char*>(rec.i.data()), n * 4);
    }
    out[name] = std::move(rec);
  }
  if (!in) ADD_FAILURE() << path << ": truncated";
  return out;
}

// the fixture's file
class ParityTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    fx_ = load_fixture(GetParam());
    ASSERT_TRUE(fx_.count("config"));
    const auto& c = fx_["config"].i;
    cfg_ = {c[0], c[1], c[2], c[3], c[4]};
    B_ = c[5];
    T_ = c[6];
    if (c.size() > 7) {  // Llama: [NKV, F, tied], and [rope_theta, norm_eps]
      ASSERT_EQ(c.size(), 10u);
      cfg_ = llama_blocks(cfg_);
      cfg_.n_kv_head = c[7];
      cfg_.ffn_dim = c[8];
      cfg_.tied = c[9] != 0;
      const auto& k = rec("llama_constants").f;
      ASSERT_EQ(k.size(), 2u);
      cfg_.rope_theta = k[0];
      cfg_.norm_eps = k[1];
    }
    model_ = std::make_unique<Model>(cfg_);
    for (const auto& t : model_->tensors()) {
      const Record& r = rec("param/" + t.name);
      ASSERT_EQ(r.shape, t.shape) << t.name;
      std::memcpy(model_->params() + t.offset, r.f.data(), t.size * sizeof(float));
    }
    initial_.assign(model_->params(), model_->params() + model_->num_params());
  }

  const Record& rec(const std::string& name) {
    auto it = fx_.find(name);
    if (it == fx_.end()) {
      ADD_FAILURE() << "fixture has no record " << name;
      static Record empty;
      return empty;
    }
    return it->second;
  }

  // Compares every tensor of `buf` (model layout) with the fixture records prefix + name.
  void expect_tensors_match(const float* buf, const std::string& prefix) {
    for (const auto& t : model_->tensors()) {
      const Record& r = rec(prefix + t.name);
      std::vector<float> got(buf + t.offset, buf + t.offset + t.size);
      EXPECT_LE(testing::rel_error(got, r.f), kTol) << prefix << t.name;
    }
  }

  // One optimizer step: forward, backward, global-norm clip, update of every tensor.
  template <typename Update>
  float train_step(Activations& acts, std::vector<float>& grads, float max_norm, Update update) {
    std::fill(grads.begin(), grads.end(), 0.0f);
    const float loss = model_->forward(acts, rec("tokens").i.data(), rec("targets").i.data());
    model_->backward(acts, grads.data());
    const double norm = std::sqrt(squared_norm(grads.data(), grads.size()));
    const float scale = clip_factor(norm, max_norm);
    EXPECT_LT(scale, 1.0f) << "clipping should be active";
    for (const auto& t : model_->tensors()) update(t, scale);
    return loss;
  }

  std::map<std::string, Record> fx_;
  GptConfig cfg_;
  int B_ = 0, T_ = 0;
  std::unique_ptr<Model> model_;
  std::vector<float> initial_;
};

TEST_P(ParityTest, LogitsLossAndGradients) {
  Activations acts(cfg_, B_, T_);
  std::vector<float> grads(model_->num_params(), 0.0f);
  const float loss = model_->forward(acts, rec("tokens").i.data(), rec("targets").i.data());
  // read before backward, which overwrites the logits with their gradient
  std::vector<float> logits(model_->logits(acts), model_->logits(acts) + B_ * T_ * cfg_.vocab_size);
  model_->backward(acts, grads.data());

  const float want = rec("loss").f[0];
  EXPECT_LE(std::abs(loss - want) / std::abs(want), kTol) << loss << " vs " << want;
  EXPECT_LE(testing::rel_error(logits, rec("logits").f), kTol) << "logits";
  expect_tensors_match(grads.data(), "grad/");
}

TEST_P(ParityTest, TwoAdamWSteps) {
  const auto& hp = rec("adamw_hyper").f;
  AdamWHyper h{hp[0], hp[1], hp[2], hp[3], hp[4]};
  Activations acts(cfg_, B_, T_);
  std::vector<float> grads(model_->num_params()), m(model_->num_params()), v(model_->num_params());
  float loss = 0;
  for (long step = 1; step <= 2; ++step) {
    loss = train_step(acts, grads, hp[5], [&](const TensorView& t, float scale) {
      adamw_update(model_->params() + t.offset, grads.data() + t.offset, m.data() + t.offset,
                   v.data() + t.offset, t.size, h, step, t.decay, scale);
    });
  }
  EXPECT_LE(std::abs(loss - rec("adamw_loss").f[0]) / rec("adamw_loss").f[0], kTol);
  expect_tensors_match(model_->params(), "adamw/");
}

TEST_P(ParityTest, TwoSgdSteps) {
  const auto& hp = rec("sgd_hyper").f;
  SgdHyper h{hp[0], hp[1], hp[2] != 0.0f, hp[3]};
  Activations acts(cfg_, B_, T_);
  std::vector<float> grads(model_->num_params()), buf(model_->num_params());
  for (int step = 0; step < 2; ++step) {
    train_step(acts, grads, hp[4], [&](const TensorView& t, float scale) {
      sgd_update(model_->params() + t.offset, grads.data() + t.offset, buf.data() + t.offset,
                 t.size, h, t.decay, scale);
    });
  }
  expect_tensors_match(model_->params(), "sgd/");
}

// The comparisons above can fail: every optimizer result moved each tensor well beyond the
// tolerance, so an update that is skipped or applied to the wrong tensor is caught, and every
// gradient tensor is non-zero.
TEST_P(ParityTest, FixtureIsDiscriminating) {
  for (const auto& t : model_->tensors()) {
    std::vector<float> before(initial_.begin() + t.offset, initial_.begin() + t.offset + t.size);
    EXPECT_GT(testing::rel_error(before, rec("adamw/" + t.name).f), 100 * kTol) << t.name;
    EXPECT_GT(testing::rel_error(before, rec("sgd/" + t.name).f), 100 * kTol) << t.name;
    std::vector<float> zero(t.size, 0.0f);
    EXPECT_GT(testing::rel_error(zero, rec("grad/" + t.name).f), 0.5) << t.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ParityTest,
                         ::testing::Values("tests/reference/gpt_parity.bin",
                                           "tests/reference/llama_parity.bin"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.index == 0 ? "Gpt2" : "Llama");
                         });

}  // namespace
}  // namespace skein
