#include "engine/model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <thread>
#include <vector>

namespace skein {
namespace {

GptConfig tiny() {
  return {37, 11, 2, 3, 24};
}

// Llama's blocks at tiny()'s vocabulary and length: 4 query heads sharing 2 key/value heads of 6
// channels, a SwiGLU of width 40, tied or not.
GptConfig tiny_llama(bool tied) {
  GptConfig c = llama_blocks({37, 11, 2, 4, 24});
  c.n_kv_head = 2;
  c.ffn_dim = 40;
  c.tied = tied;
  c.rope_theta = 100;
  return c;
}

TEST(Model, LlamaLayoutNamesAndInitialisation) {
  for (bool tied : {true, false}) {
    const GptConfig cfg = tiny_llama(tied);
    Model m(cfg);
    m.init(7);
    const int C = 24, V = 37, L = 2, QKV = (4 + 2 * 2) * 6, F = 40;
    size_t expected = V * C + C + L * (C + QKV * C + C * C + C + 2 * F * C + C * F);
    if (!tied) expected += V * C;
    size_t total = 0, end = 0;
    for (const auto& t : m.tensors()) {
      EXPECT_EQ(t.offset % 16, 0u) << t.name;
      EXPECT_GE(t.offset, end) << t.name;
      end = t.offset + t.size;
      total += t.size;
      EXPECT_EQ(t.decay, t.shape.size() >= 2) << t.name;
      EXPECT_EQ(t.name.find("bias"), std::string::npos) << t.name;
      // norms start at 1, every matrix at N(0, 0.02) (no residual scaling, as Hugging Face's)
      const float* p = m.params() + t.offset;
      double s2 = 0;
      for (size_t i = 0; i < t.size; ++i) s2 += double(p[i]) * p[i];
      const double rms = std::sqrt(s2 / t.size);
      if (t.shape.size() == 1)
        EXPECT_EQ(rms, 1.0) << t.name;
      else
        EXPECT_NEAR(rms, 0.02, 0.002) << t.name;
    }
    EXPECT_EQ(total, expected) << "tied " << tied;
    EXPECT_EQ(m.tensor("layers.1.self_attn.qkv_proj.weight").shape, (std::vector<int>{QKV, C}));
    EXPECT_EQ(m.tensor("layers.0.mlp.gate_up_proj.weight").shape, (std::vector<int>{2 * F, C}));
    EXPECT_EQ(m.tensor("layers.0.mlp.down_proj.weight").shape, (std::vector<int>{C, F}));
    EXPECT_EQ(m.tensor("norm.weight").shape, (std::vector<int>{C}));
    EXPECT_EQ(m.tensor("embed_tokens.weight").shape, (std::vector<int>{V, C}));
    EXPECT_EQ(m.wpe_offset(), Model::kAbsent);
    EXPECT_EQ(m.lm_head_offset() == m.wte_offset(), tied);
    if (!tied) {
      EXPECT_EQ(m.tensor("lm_head.weight").shape, (std::vector<int>{V, C}));
    }
  }
}

TEST(Model, LayoutIsContiguousAlignedAndComplete) {
  Model m(tiny());
  const int C = 24, V = 37, L = 2;
  size_t expected = V * C + 11 * C + C * 2;
  expected +=
      L * (2 * C + 3 * C * C + 3 * C + C * C + C + 2 * C + 4 * C * C + 4 * C + 4 * C * C + C);
  size_t total = 0, end = 0;
  for (const auto& t : m.tensors()) {
    EXPECT_EQ(t.offset % 16, 0u) << t.name;
    EXPECT_GE(t.offset, end) << t.name << " overlaps its predecessor";
    end = t.offset + t.size;
    total += t.size;
    EXPECT_EQ(t.decay, t.shape.size() >= 2) << t.name;
  }
  EXPECT_EQ(total, expected);
  EXPECT_LE(end, m.num_params());
  EXPECT_EQ(m.tensor("h.1.mlp.c_fc.weight").shape, (std::vector<int>{4 * C, C}));
}

TEST(Model, Gpt2InitialisationStatistics) {
  GptConfig cfg{64, 32, 4, 4, 64};
  Model m(cfg);
  m.init(7);
  auto stats = [&](const std::string& name) {
    const auto& t = m.tensor(name);
    const float* p = m.params() + t.offset;
    double s = 0, s2 = 0;
    for (size_t i = 0; i < t.size; ++i) s += p[i], s2 += double(p[i]) * p[i];
    double mean = s / t.size;
    return std::pair{mean, std::sqrt(s2 / t.size - mean * mean)};
  };
  EXPECT_NEAR(stats("wte").second, 0.02, 0.001);
  EXPECT_NEAR(stats("h.0.mlp.c_fc.weight").second, 0.02, 0.001);
  EXPECT_NEAR(stats("h.2.attn.c_proj.weight").second, 0.02 / std::sqrt(8.0), 0.0005);
  EXPECT_NEAR(stats("h.3.mlp.c_proj.weight").second, 0.02 / std::sqrt(8.0), 0.0005);
  EXPECT_EQ(stats("h.1.ln_1.weight"), (std::pair{1.0, 0.0}));
  EXPECT_EQ(stats("ln_f.weight"), (std::pair{1.0, 0.0}));
  EXPECT_EQ(stats("h.1.attn.c_attn.bias"), (std::pair{0.0, 0.0}));
}

TEST(Model, InitIsDeterministicPerSeed) {
  Model a(tiny()), b(tiny()), c(tiny());
  a.init(1);
  b.init(1);
  c.init(2);
  EXPECT_EQ(0, std::memcmp(a.params(), b.params(), a.num_params() * sizeof(float)));
  EXPECT_NE(0, std::memcmp(a.params(), c.params(), a.num_params() * sizeof(float)));
}

TEST(Model, InitialLossIsNearUniform) {
  // Small initial weights give near-uniform predictions: loss ~ log(V).
  Model m(tiny());
  m.init(3);
  const int B = 2, T = 11;
  Activations acts(m.config(), B, T);
  std::vector<int32_t> tok(B * T), tgt(B * T);
  for (int i = 0; i < B * T; ++i) tok[i] = i % 37, tgt[i] = (i * 3) % 37;
  EXPECT_NEAR(m.forward(acts, tok.data(), tgt.data()), std::log(37.0), 0.05);
}

TEST(Model, ShorterSequenceThanSeqLenAndGradientAccumulates) {
  Model m(tiny());
  m.init(4);
  const int B = 1, T = 5;
  Activations acts(m.config(), B, T);
  std::vector<int32_t> tok = {1, 2, 3, 4, 5}, tgt = {2, 3, 4, 5, 6};
  std::vector<float> g1(m.num_params()), g2(m.num_params());
  // backward consumes the logits (it turns them into their gradient): one forward per backward
  m.forward(acts, tok.data(), tgt.data());
  m.backward(acts, g1.data());
  m.forward(acts, tok.data(), tgt.data());
  m.backward(acts, g2.data(), 0.5f);
  m.forward(acts, tok.data(), tgt.data());
  m.backward(acts, g2.data(), 0.5f);
  for (size_t i = 0; i < g1.size(); ++i) ASSERT_NEAR(g1[i], g2[i], 1e-6 + 1e-5 * std::abs(g1[i]));
  // positions >= T of wpe get no gradient
  const auto& wpe = m.tensor("wpe");
  for (size_t i = T * 24; i < wpe.size; ++i) EXPECT_EQ(g1[wpe.offset + i], 0.0f);
}

// GradMode::kOverwrite on a buffer full of NaN gives exactly what kAccumulate gives on zeros
// (padding included), also for a following kAccumulate, and zeros when there is no target.
TEST(Model, OverwriteIgnoresTheOldGradient) {
  for (const GptConfig& cfg : {tiny(), tiny_llama(true), tiny_llama(false)}) {
    SCOPED_TRACE(cfg.arch == Arch::kGpt2 ? "gpt2" : cfg.tied ? "llama tied" : "llama untied");
    Model m(cfg);
    m.init(5);
    const int B = 2, T = 11;
    Activations acts(m.config(), B, T);
    std::vector<int32_t> tok(B * T), tgt(B * T);
    for (int i = 0; i < B * T; ++i) tok[i] = (i * 7) % 37, tgt[i] = (i * 5 + 1) % 37;
    tgt[3] = -1;
    const size_t n = m.num_params();
    std::vector<float> zeroed(n, 0.0f), garbage(n, NAN);
    // backward consumes the logits: one forward per backward
    m.forward(acts, tok.data(), tgt.data());
    m.backward(acts, zeroed.data(), 0.7f);
    m.forward(acts, tok.data(), tgt.data());
    m.backward(acts, garbage.data(), 0.7f, Model::GradMode::kOverwrite);
    size_t nonzero = 0;
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(garbage[i], zeroed[i]) << "element " << i;  // == also equates -0 and +0
      nonzero += zeroed[i] != 0;
    }
    EXPECT_GT(nonzero, n / 2);
    m.forward(acts, tok.data(), tgt.data());
    m.backward(acts, zeroed.data(), 0.3f);
    m.forward(acts, tok.data(), tgt.data());
    m.backward(acts, garbage.data(), 0.3f, Model::GradMode::kAccumulate);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(garbage[i], zeroed[i]) << "element " << i;

    std::vector<int32_t> none(B * T, -1);
    m.forward(acts, tok.data(), none.data());
    std::fill(garbage.begin(), garbage.end(), NAN);
    m.backward(acts, garbage.data(), 1.0f, Model::GradMode::kOverwrite);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(garbage[i], 0.0f) << "element " << i;
  }
}

// set_matmul_precision(kBf16Rounded) reaches every matmul of forward and backward (each gets it
// as its MatmulContext): the loss and gradient move by bf16's rounding (~0.4% relative), no more.
TEST(Model, Bf16RoundedMatmulsStayCloseToFp32) {
  Model m(tiny());
  m.init(6);
  const int B = 2, T = 11;
  Activations acts(m.config(), B, T);
  std::vector<int32_t> tok(B * T), tgt(B * T);
  for (int i = 0; i < B * T; ++i) tok[i] = (i * 5) % 37, tgt[i] = (i * 3 + 2) % 37;
  const size_t n = m.num_params();
  std::vector<float> g32(n), g16(n);
  const float loss32 = m.forward(acts, tok.data(), tgt.data());
  m.backward(acts, g32.data(), 1.0f, Model::GradMode::kOverwrite);
  m.set_matmul_precision(MatmulPrecision::kBf16Rounded);
  const float loss16 = m.forward(acts, tok.data(), tgt.data());
  m.backward(acts, g16.data(), 1.0f, Model::GradMode::kOverwrite);
  EXPECT_NE(loss16, loss32);
  EXPECT_NEAR(loss16, loss32, 1e-2 * loss32);
  double diff = 0, scale = 0;
  for (size_t i = 0; i < n; ++i) {
    diff = std::max(diff, double(std::abs(g16[i] - g32[i])));
    scale = std::max(scale, double(std::abs(g32[i])));
  }
  EXPECT_GT(diff, 1e-4 * scale);
  EXPECT_LT(diff, 3e-2 * scale);
  // kBf16 (the vdpbf16ps kernel; its portable twin on CPUs without avx512_bf16): the same rounding,
  // the sums in vdpbf16ps's order, so within fp32 rounding of kBf16Rounded
  m.set_matmul_precision(MatmulPrecision::kBf16);
  EXPECT_NEAR(m.forward(acts, tok.data(), tgt.data()), loss16, 1e-5 * loss16);
  // and back to fp32: the same bits as before
  m.set_matmul_precision(MatmulPrecision::kFp32);
  EXPECT_EQ(m.forward(acts, tok.data(), tgt.data()), loss32);
}

// Workers: W threads running one forward + backward together (each operation cut among them)
// give the bits of one thread, for the loss and every gradient element, whatever the kernel
// family; also when some rows have no target and when the gradient is accumulated.
TEST(Model, WorkersSharingOneForwardAndBackwardGiveTheBitsOfOne) {
  GptConfig gpt;
  gpt.vocab_size = 300;  // lm_head columns and wte rows cut in several places
  gpt.seq_len = 40;
  gpt.n_layer = 2;
  gpt.n_head = 4;
  gpt.d_model = 128;  // 3C, 4C and C cut at kLinearColumnAlign / kLinearRowAlign
  // Llama: grouped-query heads (2 tasks per sequence), rotary turns by rows, SwiGLU by rows,
  // untied output
  GptConfig llama = llama_blocks(gpt);
  llama.n_kv_head = 2;
  llama.ffn_dim = 176;
  llama.tied = false;
  for (const GptConfig& cfg : {gpt, llama}) {
    SCOPED_TRACE(cfg.arch == Arch::kGpt2 ? "gpt2" : "llama");
    Model m(cfg);
    m.init(9);
    // 111 rows (a multiple of nothing): every product cut by columns; 240 rows: the narrower
    // products (C = 128 wide) by rows
    for (auto [B, T] : {std::pair{3, 37}, {6, 40}}) {
      std::vector<int32_t> tok(B * T), tgt(B * T), tok2(B * T);
      for (int i = 0; i < B * T; ++i) {
        tok[i] = (i * 7 + 3) % 300, tgt[i] = (i * 11 + 1) % 300, tok2[i] = (i * 13 + 5) % 300;
      }
      for (int i = 0; i < B * T; i += 9) tgt[i] = -1;
      const size_t n = m.num_params();
      for (MatmulPrecision prec : {MatmulPrecision::kFp32, MatmulPrecision::kBf16}) {
        m.set_matmul_precision(prec);
        // one thread: two micro-steps, overwrite then accumulate
        Activations one(cfg, B, T);
        std::vector<float> want(n, NAN);
        const float loss_a = m.forward(one, tok.data(), tgt.data());
        m.backward(one, want.data(), 0.6f, Model::GradMode::kOverwrite);
        const float loss_b = m.forward(one, tok2.data(), tgt.data());  // another batch
        m.backward(one, want.data(), 0.4f, Model::GradMode::kAccumulate);
        for (int W : {2, 3, 4}) {
          Activations shared(cfg, B, T, W);
          std::vector<float> got(n, NAN);
          std::vector<float> losses(2 * W);
          SpinBarrier barrier(W);
          std::vector<std::thread> threads;
          for (int k = 0; k < W; ++k) {
            threads.emplace_back([&, k] {
              const Workers w{k, W, &barrier};
              losses[2 * k] = m.forward(shared, tok.data(), tgt.data(), w);
              m.backward(shared, got.data(), 0.6f, Model::GradMode::kOverwrite, w);
              losses[2 * k + 1] = m.forward(shared, tok2.data(), tgt.data(), w);
              m.backward(shared, got.data(), 0.4f, Model::GradMode::kAccumulate, w);
            });
          }
          for (auto& t : threads) t.join();
          for (int k = 0; k < W; ++k) {
            EXPECT_EQ(losses[2 * k], loss_a) << "W " << W << " worker " << k;
            EXPECT_EQ(losses[2 * k + 1], loss_b) << "W " << W << " worker " << k;
          }
          size_t differ = 0;
          for (size_t i = 0; i < n; ++i)
            differ += std::memcmp(&got[i], &want[i], sizeof(float)) != 0;
          EXPECT_EQ(differ, 0u) << "W " << W << ", precision " << int(prec) << ", rows " << B * T
                                << ": " << differ << " of " << n << " gradient elements differ";
        }
      }
    }
  }
}

}  // namespace
}  // namespace skein
