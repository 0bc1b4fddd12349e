// Google Benchmark of every kernel, forward and backward, at the shapes of two configs:
//   char: V=256,   T=256, C=384, NH=6,  B=4 sequences
//   gpt2: V=50257, T=64,  C=768, NH=12, B=2 sequences
// plus sgemm/{skein,eigen}/{fwd,dX,dW}/<layer>: the three products of each linear layer of the
// char config, on skein's sgemm and on Eigen side by side.
// Rate counters: GFLOPS (compute-bound kernels) or GBps (memory-bound ones), and peak_frac, the
// achieved FLOP rate over the single-thread fp32 FMA peak measured at start-up by this binary.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "base/aligned.h"
#include "base/rng.h"
#include "engine/fma_peak.h"
#include "engine/model.h"
#include "engine/thread_team.h"
#include "engine/trainer.h"
#include "kernels/attention.h"
#include "kernels/crossentropy.h"
#include "kernels/encoder.h"
#include "kernels/gelu.h"
#include "kernels/gemm.h"
#include "kernels/layernorm.h"
#include "kernels/linear.h"
#include "kernels/residual.h"
#include "optimizers/adamw.h"
#include "optimizers/clip.h"

namespace skein::bench {
namespace {

double g_peak = 0;  // FLOP/s of one thread

struct Shape {
  const char* name;
  int V, T, C, NH, B;
};
constexpr Shape kShapes[] = {{"char", 256, 256, 384, 6, 4}, {"gpt2", 50257, 64, 768, 12, 2}};

AlignedBuffer<float> random_buffer(size_t n, uint64_t seed, float scale = 1.0f) {
  AlignedBuffer<float> b(n);
  Rng rng(seed);
  for (size_t i = 0; i < n; ++i) b[i] = scale * static_cast<float>(rng.normal());
  return b;
}

void set_flops(benchmark::State& st, double flops_per_iter) {
  const double total = flops_per_iter * st.iterations();
  st.counters["GFLOPS"] = benchmark::Counter(total / 1e9, benchmark::Counter::kIsRate);
  st.counters["peak_frac"] = benchmark::Counter(total / g_peak, benchmark::Counter::kIsRate);
}
void set_bytes(benchmark::State& st, double bytes_per_iter) {
  st.counters["GBps"] =
      benchmark::Counter(bytes_per_iter * st.iterations() / 1e9, benchmark::Counter::kIsRate);
}

void BM_fma_peak(benchmark::State& st) {
  float sink = 0;
  double flops = 0;
  for (auto _ : st) flops += fma_peak_loop(1'000'000, &sink);
  benchmark::DoNotOptimize(sink);
  st.counters["GFLOPS"] = benchmark::Counter(flops / 1e9, benchmark::Counter::kIsRate);
}

// Linear layers of a block plus the tied lm_head: (C -> 3C), (C -> C), (C -> 4C), (4C -> C), (C ->
// V)
struct LinearShape {
  const char* name;
  int in_mult, out_mult;  // multiples of C; out_mult 0 = V
};
constexpr LinearShape kLinears[] = {
    {"qkv", 1, 3}, {"attn_proj", 1, 1}, {"fc", 1, 4}, {"fc_proj", 4, 1}, {"lm_head", 1, 0}};

void BM_linear(benchmark::State& st, Shape s, LinearShape l, bool backward) {
  const int N = s.B * s.T, C = s.C * l.in_mult, OC = l.out_mult ? s.C * l.out_mult : s.V;
  const bool bias = l.out_mult != 0;
  auto x = random_buffer(size_t(N) * C, 1), w = random_buffer(size_t(OC) * C, 2, 0.02f);
  auto b = random_buffer(OC, 3), y = random_buffer(size_t(N) * OC, 4);
  AlignedBuffer<float> dx(size_t(N) * C), dw(size_t(OC) * C), db(OC);
  for (auto _ : st) {
    if (backward)
      linear_backward(dx.data(), dw.data(), bias ? db.data() : nullptr, y.data(), x.data(),
                      w.data(), N, C, OC);
    else
      linear_forward(y.data(), x.data(), w.data(), bias ? b.data() : nullptr, N, C, OC);
    benchmark::ClobberMemory();
  }
  set_flops(st, (backward ? 4.0 : 2.0) * N * C * OC);
}

// The three products of one linear layer (N rows, C in, OC out), as linear.cc calls them:
//   fwd: out (N,OC) = inp (N,C) @ weight^T          sgemm(no, trans_b), beta 0
//   dX:  dinp (N,C) += dout (N,OC) @ weight (OC,C)  sgemm(no, no),      beta 1
//   dW:  dweight (OC,C) += dout^T (OC,N) @ inp      sgemm(trans_a, no), beta 1
enum class Product { kFwd, kDx, kDw };
constexpr std::pair<Product, const char*> kProducts[] = {
    {Product::kFwd, "fwd"}, {Product::kDx, "dX"}, {Product::kDw, "dW"}};
using SgemmFn = std::function<void(bool, bool, int, int, int, const float*, int, const float*, int,
                                   float, float*, int, const float*)>;

// The bf16 products (run.precision BF16 and BF16_EMULATED) in sgemm's signature. peak_frac stays
// against the fp32 FMA peak, so vdpbf16ps (twice the FLOPs per instruction) can reach 2.
void sgemm_vdpbf16ps(bool ta, bool tb, int M, int N, int K, const float* A, int lda, const float* B,
                     int ldb, float beta, float* C, int ldc, const float* bias) {
  sgemm(MatmulContext{MatmulPrecision::kBf16}, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, bias);
}
void sgemm_bf16_emulated(bool ta, bool tb, int M, int N, int K, const float* A, int lda,
                         const float* B, int ldb, float beta, float* C, int ldc,
                         const float* bias) {
  sgemm(MatmulContext{MatmulPrecision::kBf16Rounded}, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc,
        bias);
}

// skip: why this CPU cannot run fn ("" when it can).
void BM_sgemm(benchmark::State& st, SgemmFn fn, std::string skip, Shape s, LinearShape l,
              Product prod) {
  if (!skip.empty()) {
    st.SkipWithError(skip.c_str());  // e.g. no avx512_bf16 on this CPU
    return;
  }
  const int N = s.B * s.T, C = s.C * l.in_mult, OC = l.out_mult ? s.C * l.out_mult : s.V;
  auto x = random_buffer(size_t(N) * C, 1), w = random_buffer(size_t(OC) * C, 2, 0.02f);
  auto dy = random_buffer(size_t(N) * OC, 3);
  AlignedBuffer<float> y(size_t(N) * OC), dx(size_t(N) * C), dw(size_t(OC) * C);
  for (auto _ : st) {
    switch (prod) {
      case Product::kFwd:
        fn(false, true, N, OC, C, x.data(), C, w.data(), C, 0.0f, y.data(), OC, nullptr);
        break;
      case Product::kDx:
        fn(false, false, N, C, OC, dy.data(), OC, w.data(), C, 1.0f, dx.data(), C, nullptr);
        break;
      case Product::kDw:
        fn(true, false, OC, C, N, dy.data(), OC, x.data(), C, 1.0f, dw.data(), C, nullptr);
        break;
    }
    benchmark::ClobberMemory();
  }
  set_flops(st, 2.0 * N * C * OC);
}

void BM_attention(benchmark::State& st, Shape s, bool backward) {
  const int B = s.B, T = s.T, C = s.C, NH = s.NH, HS = C / NH;
  auto qkv = random_buffer(size_t(B) * T * 3 * C, 1);
  auto out = random_buffer(size_t(B) * T * C, 2);
  AlignedBuffer<float> stats(attention_stats_size(B, T, NH)), dqkv(qkv.size()),
      scratch(size_t(2) * T * T);
  attention_forward(out.data(), stats.data(), scratch.data(), qkv.data(), B, T, C, NH);
  for (auto _ : st) {
    if (backward)
      attention_backward(dqkv.data(), scratch.data(), out.data(), qkv.data(), stats.data(), B, T, C,
                         NH);
    else
      attention_forward(out.data(), stats.data(), scratch.data(), qkv.data(), B, T, C, NH);
    benchmark::ClobberMemory();
  }
  // matmul FLOPs of full T x T score matrices, 2 products forward, 4 backward: a fixed measure
  // of work. The kernel skips most of the causally masked half, so it does ~60% of these at T=256;
  // backward also recomputes the scores (a fifth product) instead of reading stored probabilities.
  set_flops(st, (backward ? 8.0 : 4.0) * B * NH * double(T) * T * HS);
}

void BM_layernorm(benchmark::State& st, Shape s, bool backward) {
  const int N = s.B * s.T, C = s.C;
  auto x = random_buffer(size_t(N) * C, 1), w = random_buffer(C, 2), b = random_buffer(C, 3);
  auto dy = random_buffer(size_t(N) * C, 4);
  AlignedBuffer<float> y(size_t(N) * C), mean(N), rstd(N), dx(size_t(N) * C), dw(C), db(C);
  layernorm_forward(y.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C);
  for (auto _ : st) {
    if (backward)
      layernorm_backward(dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(),
                         mean.data(), rstd.data(), N, C);
    else
      layernorm_forward(y.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C);
    benchmark::ClobberMemory();
  }
  set_bytes(st, (backward ? 4.0 : 2.0) * N * C * sizeof(float));  // streams of N*C floats
}

void BM_gelu(benchmark::State& st, Shape s, bool backward) {
  const long n = long(s.B) * s.T * 4 * s.C;
  auto x = random_buffer(n, 1), dy = random_buffer(n, 2);
  AlignedBuffer<float> y(n), dx(n);
  for (auto _ : st) {
    if (backward)
      gelu_backward(dx.data(), x.data(), dy.data(), n);
    else
      gelu_forward(y.data(), x.data(), n);
    benchmark::ClobberMemory();
  }
  set_bytes(st, (backward ? 4.0 : 2.0) * n * sizeof(float));
}

void BM_residual(benchmark::State& st, Shape s, bool backward) {
  const long n = long(s.B) * s.T * s.C;
  auto a = random_buffer(n, 1), b = random_buffer(n, 2);
  AlignedBuffer<float> y(n);
  for (auto _ : st) {
    if (backward)
      residual_backward(a.data(), b.data(), y.data(), n);
    else
      residual_forward(y.data(), a.data(), b.data(), n);
    benchmark::ClobberMemory();
  }
  set_bytes(st, (backward ? 5.0 : 3.0) * n * sizeof(float));
}

void BM_encoder(benchmark::State& st, Shape s, bool backward) {
  const int B = s.B, T = s.T, C = s.C;
  std::vector<int32_t> tok(B * T);
  for (int i = 0; i < B * T; ++i) tok[i] = static_cast<int32_t>(mix64(i) % s.V);
  auto wte = random_buffer(size_t(s.V) * C, 1), wpe = random_buffer(size_t(T) * C, 2);
  AlignedBuffer<float> y(size_t(B) * T * C);
  for (auto _ : st) {
    if (backward)
      encoder_backward(wte.data(), wpe.data(), y.data(), tok.data(), B, T, C);
    else
      encoder_forward(y.data(), tok.data(), wte.data(), wpe.data(), B, T, C);
    benchmark::ClobberMemory();
  }
  set_bytes(st, (backward ? 5.0 : 3.0) * B * T * C * sizeof(float));
}

void BM_crossentropy(benchmark::State& st, Shape s, bool backward) {
  const int N = s.B * s.T, V = s.V;
  auto z = random_buffer(size_t(N) * V, 1);
  std::vector<int32_t> y(N);
  for (int i = 0; i < N; ++i) y[i] = static_cast<int32_t>(mix64(i) % V);
  AlignedBuffer<float> stats(size_t(N) * kCrossEntropyStats), losses(N), dz(size_t(N) * V);
  softmax_crossentropy_forward(losses.data(), stats.data(), z.data(), y.data(), N, V);
  for (auto _ : st) {
    if (backward)
      softmax_crossentropy_backward(dz.data(), z.data(), stats.data(), y.data(), N, V, 1.0f / N);
    else
      softmax_crossentropy_forward(losses.data(), stats.data(), z.data(), y.data(), N, V);
    benchmark::ClobberMemory();
  }
  set_bytes(st, (backward ? 2.0 : 1.0) * N * V * sizeof(float));  // forward reads z; backward z, dz
}

// The training step's memory-bound phases (trainer.h, steps 2 and 3) over a model's whole
// parameter vector, cut into one contiguous shard per thread of a persistent team (the trainer's
// kind of team; its thread k runs part k every time, so each shard stays with the thread that
// allocated and first touched it; the trainer cuts its shards at 64 KiB block boundaries, which
// changes nothing here):
//   replica_sum   two gradient buffers summed into the first (tree_sum of R = 2 replicas:
//                 a[i] += b[i], a plain streaming loop, so its GBps is what this machine's memory
//                 delivers to that many threads: the roofline of the other two)
//   grad_norm     squared_norm of the summed gradient (the trainer takes it per block right after
//                 the block's sum, from cache; here from memory)
//   adamw         adamw_update of parameters, gradient, m and v
// at 1 thread and at every core (threads:K). GBps: bytes read + written per wall second.
enum class MemPhase { kReplicaSum, kGradNorm, kAdamW };
struct ParamShape {
  const char* name;
  GptConfig cfg;
};
ParamShape param_shape(const Shape& s, int n_layer) {
  GptConfig c;
  c.vocab_size = s.V;
  c.seq_len = s.T;
  c.n_layer = n_layer;
  c.n_head = s.NH;
  c.d_model = s.C;
  return {s.name, c};
}

void BM_memory_phase(benchmark::State& st, ParamShape shape, MemPhase phase, int threads) {
  const size_t n = Model::num_params_for(shape.cfg);
  const std::unique_ptr<ThreadTeam> team = make_thread_team("pool", threads);
  // per thread: its shard's arrays (a, b: the two gradient buffers, or p, g, m, v)
  std::vector<std::vector<AlignedBuffer<float>>> shard(threads);
  std::vector<size_t> len(threads);
  team->run([&](int k) {
    len[k] = n * (k + 1) / threads - n * k / threads;
    const int arrays = phase == MemPhase::kAdamW ? 4 : 2;
    for (int i = 0; i < arrays; ++i) {
      shard[k].emplace_back(len[k]);
      float* x = shard[k].back().data();
      const float fill = i == 0 ? 0.02f : (i == 1 ? 1e-3f : 0.0f);
      for (size_t j = 0; j < len[k]; ++j) x[j] = fill;
    }
  });
  const double bytes_per_float = phase == MemPhase::kReplicaSum ? 3
                                 : phase == MemPhase::kGradNorm ? 1
                                                                : 7;
  std::vector<double> sink(threads);
  AdamWHyper h;
  h.weight_decay = 0.1f;
  long step = 0;
  for (auto _ : st) {
    ++step;
    team->run([&](int k) {
      auto& b = shard[k];
      if (phase == MemPhase::kReplicaSum) {
        float* terms[2] = {b[0].data(), b[1].data()};
        tree_sum(terms, 2, len[k]);
      } else if (phase == MemPhase::kGradNorm) {
        sink[k] += squared_norm(b[1].data(), static_cast<long>(len[k]));
      } else {
        adamw_update(b[0].data(), b[1].data(), b[2].data(), b[3].data(), static_cast<long>(len[k]),
                     h, step, true, 1.0f);
      }
    });
    benchmark::DoNotOptimize(sink.data());
    benchmark::ClobberMemory();
  }
  set_bytes(st, bytes_per_float * sizeof(float) * n);
  st.counters["params_M"] = n / 1e6;
}

void register_all() {
  benchmark::RegisterBenchmark("fma_peak/1thread", BM_fma_peak);
  using Fn = void (*)(benchmark::State&, Shape, bool);
  const std::pair<const char*, Fn> ops[] = {
      {"encoder", BM_encoder}, {"layernorm", BM_layernorm}, {"attention", BM_attention},
      {"gelu", BM_gelu},       {"residual", BM_residual},   {"crossentropy", BM_crossentropy}};
  // sgemm: skein's fp32 dispatcher, each kernel of the table (fp32 and bf16 families; skipped
  // with the reason where the CPU lacks it) and Eigen (sgemm_portable) side by side at the char
  // config's shapes, and skein's bf16 products as run.precision runs them (bf16: the chosen bf16
  // kernel, skipped where vdpbf16ps is missing or fails its check; bf16_emulated: the fp32 kernel
  // on rounded operands).
  auto skein_fp32 = [](bool ta, bool tb, int M, int N, int K, const float* A, int lda,
                       const float* B, int ldb, float beta, float* C, int ldc, const float* bias) {
    sgemm(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, bias);
  };
  auto eigen = [](bool ta, bool tb, int M, int N, int K, const float* A, int lda, const float* B,
                  int ldb, float beta, float* C, int ldc, const float* bias) {
    sgemm_portable(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, bias);
  };
  std::vector<std::tuple<std::string, SgemmFn, std::string>> impls = {{"skein", skein_fp32, ""},
                                                                      {"eigen", eigen, ""}};
  const auto kernels = sgemm_kernels();
  for (int i = 0; i < int(kernels.size()); ++i) {
    auto fn = [i](bool ta, bool tb, int M, int N, int K, const float* A, int lda, const float* B,
                  int ldb, float beta, float* C, int ldc, const float* bias) {
      sgemm_with_kernel(i, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, bias);
    };
    impls.emplace_back(
        std::string("kernel_") + kernels[i].name, fn,
        kernels[i].supported() ? "" : std::string("this CPU has no ") + kernels[i].needs);
  }
  impls.emplace_back("bf16", sgemm_vdpbf16ps, bf16_self_check());
  impls.emplace_back("bf16_emulated", sgemm_bf16_emulated, "");
  for (const LinearShape& l : kLinears)
    for (const auto& [prod, prod_name] : kProducts)
      for (const auto& [impl, fn, skip] : impls)
        benchmark::RegisterBenchmark(("sgemm/" + impl + "/" + prod_name + "/" + l.name).c_str(),
                                     BM_sgemm, fn, skip, kShapes[0], l, prod)
            ->Unit(benchmark::kMicrosecond);
  for (const Shape& s : kShapes) {
    for (bool bwd : {false, true}) {
      const std::string pass = bwd ? "backward" : "forward";
      for (const LinearShape& l : kLinears)
        benchmark::RegisterBenchmark(("linear_" + pass + "/" + s.name + "/" + l.name).c_str(),
                                     BM_linear, s, l, bwd)
            ->Unit(benchmark::kMicrosecond);
      for (const auto& [name, fn] : ops)
        benchmark::RegisterBenchmark((std::string(name) + "_" + pass + "/" + s.name).c_str(), fn, s,
                                     bwd)
            ->Unit(benchmark::kMicrosecond);
    }
  }
  const int cores = available_cores();
  const std::pair<MemPhase, const char*> phases[] = {{MemPhase::kReplicaSum, "replica_sum"},
                                                     {MemPhase::kGradNorm, "grad_norm"},
                                                     {MemPhase::kAdamW, "adamw"}};
  for (const ParamShape& ps : {param_shape(kShapes[0], 6), param_shape(kShapes[1], 12)})
    for (const auto& [phase, name] : phases)
      for (int k : cores > 1 ? std::vector<int>{1, cores} : std::vector<int>{1})
        benchmark::RegisterBenchmark(
            (std::string(name) + "/" + ps.name + "/threads:" + std::to_string(k)).c_str(),
            BM_memory_phase, ps, phase, k)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
  // GPT-2's lm_head with its vocabulary as it is (50257, one partial 32-column tile out of 1571)
  // and padded as llm.c pads it (50304 = 393 x 128), side by side:
  //   bench_kernels --benchmark_filter='linear_.*/gpt2.*/lm_head'
  //     --benchmark_enable_random_interleaving=true --benchmark_repetitions=9
  Shape padded = kShapes[1];
  padded.name = "gpt2_v50304";
  padded.V = 50304;
  for (bool bwd : {false, true})
    benchmark::RegisterBenchmark(
        (std::string("linear_") + (bwd ? "backward" : "forward") + "/gpt2_v50304/lm_head").c_str(),
        BM_linear, padded, kLinears[4], bwd)
        ->Unit(benchmark::kMicrosecond);
}

}  // namespace
}  // namespace skein::bench

int main(int argc, char** argv) {
  skein::bench::g_peak = skein::measure_fma_peak();
  std::printf("single-thread fp32 FMA peak: %.1f GFLOP/s (%s, thread CPU time)\n",
              skein::bench::g_peak / 1e9, skein::fma_peak_unit());
  benchmark::AddCustomContext("fma_peak_gflops", std::to_string(skein::bench::g_peak / 1e9));
  benchmark::AddCustomContext("sgemm_path", skein::sgemm_choice());
  skein::bench::register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
