#include "engine/trainer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "base/rng.h"
#include "tests/engine/thread_comm.h"

namespace skein {
namespace {

GptConfig tiny() {
  return {32, 16, 2, 2, 32};
}

// 4080 parameters: one block of the partition, fewer than the threads or ranks of the tests
// below, so some own nothing.
GptConfig one_block() {
  return {32, 16, 1, 2, 16};
}

// Synthetic tokens for step s: a noisy periodic text, so there is something to learn.
void make_batch(long s, int rows, int T, std::vector<int32_t>* in, std::vector<int32_t>* tg) {
  in->resize(size_t(rows) * T);
  tg->resize(size_t(rows) * T);
  for (int b = 0; b < rows; ++b) {
    const uint64_t start = mix64(s, b) % 1000;
    for (int t = 0; t <= T; ++t) {
      const int32_t tok = static_cast<int32_t>((start + t) % 7 * 3 + (mix64(s, b, t) % 13 == 0));
      if (t < T) (*in)[b * T + t] = tok;
      if (t > 0) (*tg)[b * T + t - 1] = tok;
    }
  }
}

struct RunResult {
  std::vector<float> params, m, v;
  std::vector<float> losses;
};

RunResult train(TrainerOptions opt, int steps, uint64_t seed = 1, GptConfig cfg = tiny()) {
  Model model(cfg);
  model.init(seed);
  opt.seq_len = cfg.seq_len;
  Trainer trainer(model, opt);
  RunResult run;
  std::vector<int32_t> in, tg;
  for (int s = 0; s < steps; ++s) {
    make_batch(s, opt.batch_size * opt.grad_accum_steps, opt.seq_len, &in, &tg);
    run.losses.push_back(trainer.step(in.data(), tg.data()).loss);
  }
  run.params.assign(model.params(), model.params() + model.num_params());
  run.m.assign(trainer.state_m(), trainer.state_m() + trainer.state_m_floats());
  run.v.assign(trainer.state_v(), trainer.state_v() + trainer.state_v_floats());
  return run;
}

// (memcmp is not given the null data() of empty vectors, e.g. SGD's v: UBSan refuses that)
bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

TrainerOptions base_options() {
  TrainerOptions o;
  o.threads = 2;
  o.replicas = 4;
  o.batch_size = 8;
  o.adamw.weight_decay = 0.1f;
  o.schedule = {ScheduleKind::kCosine, 3e-3f, 3e-4f, 5, 20};
  o.max_grad_norm = 1.0f;
  return o;
}

TEST(Trainer, SameSeedSameBits) {
  RunResult a = train(base_options(), 20), b = train(base_options(), 20);
  EXPECT_TRUE(bit_equal(a.params, b.params));
  EXPECT_TRUE(bit_equal(a.m, b.m));
  EXPECT_TRUE(bit_equal(a.v, b.v));
  EXPECT_TRUE(bit_equal(a.losses, b.losses));
  // and the comparison can fail: another seed gives other bits
  RunResult c = train(base_options(), 20, 2);
  EXPECT_FALSE(bit_equal(a.params, c.params));
}

TEST(Trainer, ReplicasFixedAnyThreadCountSameBits) {
  TrainerOptions o = base_options();
  o.threads = 1;
  RunResult one = train(o, 20);
  for (int threads : {2, 4}) {
    for (const char* team : {"omp", "pool"}) {
      o.threads = threads;
      o.team = team;
      RunResult r = train(o, 20);
      EXPECT_TRUE(bit_equal(one.params, r.params)) << threads << " threads, " << team;
      EXPECT_TRUE(bit_equal(one.m, r.m)) << threads << " threads, " << team;
      EXPECT_TRUE(bit_equal(one.v, r.v)) << threads << " threads, " << team;
      EXPECT_TRUE(bit_equal(one.losses, r.losses)) << threads << " threads, " << team;
    }
  }
}

// Threads that share a replica (threads_per_replica = W) give the bits of one thread per
// replica: R = 1 with K = W = 1..4, R = 2 with W = 1 and 2, both teams, accumulation of two
// micro-steps. The model is wide enough (C = 128, V = 300) that the products' columns and rows,
// the heads and the rows of every buffer are all cut among the threads.
TEST(Trainer, ThreadsSharingAReplicaGiveTheSameBits) {
  const GptConfig cfg{300, 24, 2, 4, 128};
  TrainerOptions o = base_options();
  o.batch_size = 4;
  o.grad_accum_steps = 2;
  for (int R : {1, 2}) {
    o.replicas = R;
    o.threads = 1;
    o.threads_per_replica = 1;
    const RunResult one = train(o, 6, 1, cfg);
    for (int W = 1; W <= (R == 1 ? 4 : 2); ++W) {
      for (const char* team : {"omp", "pool"}) {
        o.threads = R * W;
        o.threads_per_replica = W;
        o.team = team;
        const RunResult r = train(o, 6, 1, cfg);
        const std::string what = "R " + std::to_string(R) + ", " + std::to_string(o.threads) +
                                 " threads, " + std::to_string(W) + " per replica, " + team;
        EXPECT_TRUE(bit_equal(one.params, r.params)) << what;
        EXPECT_TRUE(bit_equal(one.m, r.m)) << what;
        EXPECT_TRUE(bit_equal(one.v, r.v)) << what;
        EXPECT_TRUE(bit_equal(one.losses, r.losses)) << what;
      }
    }
  }
  // 4 threads in groups of 2 over 4 replicas: each group takes several in turn
  o.replicas = 4;
  o.threads = 1;
  o.threads_per_replica = 1;
  const RunResult one = train(o, 4, 1, cfg);
  o.threads = 4;
  o.threads_per_replica = 2;
  const RunResult r = train(o, 4, 1, cfg);
  EXPECT_TRUE(bit_equal(one.params, r.params));
  EXPECT_TRUE(bit_equal(one.losses, r.losses));
}

// Llama's blocks (grouped-query heads, rotary, SwiGLU, untied output) through the trainer: with
// R fixed, 1 thread, 2 threads and 2 threads sharing each replica give the same bits, and the
// loss falls.
TEST(Trainer, LlamaBlocksAnyThreadLayoutSameBits) {
  GptConfig cfg = llama_blocks({32, 16, 2, 4, 32});
  cfg.n_kv_head = 2;
  cfg.ffn_dim = 48;
  cfg.tied = false;
  TrainerOptions o = base_options();
  o.replicas = 2;
  o.threads = 1;
  const RunResult one = train(o, 20, 1, cfg);
  EXPECT_LT(one.losses.back(), 0.7f * one.losses.front());
  for (auto [threads, W] : {std::pair{2, 1}, {2, 2}, {4, 2}}) {
    o.threads = threads;
    o.threads_per_replica = W;
    const RunResult r = train(o, 20, 1, cfg);
    const std::string what =
        std::to_string(threads) + " threads, " + std::to_string(W) + " per replica";
    EXPECT_TRUE(bit_equal(one.params, r.params)) << what;
    EXPECT_TRUE(bit_equal(one.m, r.m)) << what;
    EXPECT_TRUE(bit_equal(one.v, r.v)) << what;
    EXPECT_TRUE(bit_equal(one.losses, r.losses)) << what;
  }
}

TEST(Trainer, SgdTeamsAgreeToo) {
  TrainerOptions o = base_options();
  o.optimizer = OptimizerKind::kSgd;
  o.sgd = {0.1f, 0.9f, true, 0.01f};
  o.threads = 1;
  RunResult one = train(o, 10);
  o.threads = 3;
  RunResult three = train(o, 10);
  EXPECT_TRUE(bit_equal(one.params, three.params));
  EXPECT_TRUE(bit_equal(one.m, three.m));
}

// Gradient of one step recovered from plain SGD with lr 1: g = p_before - p_after.
std::vector<double> one_step_gradient(int replicas, int batch, int accum, float* loss) {
  TrainerOptions o;
  o.threads = 2;
  o.replicas = replicas;
  o.batch_size = batch;
  o.grad_accum_steps = accum;
  o.optimizer = OptimizerKind::kSgd;
  o.sgd = {1.0f, 0.0f, false, 0.0f};
  o.schedule = {ScheduleKind::kConstant, 1.0f, 0.0f, 0, 1};
  o.max_grad_norm = 0;
  GptConfig cfg = tiny();
  o.seq_len = cfg.seq_len;
  Model model(cfg);
  model.init(5);
  std::vector<float> before(model.params(), model.params() + model.num_params());
  Trainer trainer(model, o);
  std::vector<int32_t> in, tg;
  make_batch(0, 8, cfg.seq_len, &in, &tg);  // the same 8 sequences however they are cut
  tg[3] = -1;                               // an ignored target changes the per-replica counts
  *loss = trainer.step(in.data(), tg.data()).loss;
  std::vector<double> g(before.size());
  for (size_t i = 0; i < g.size(); ++i) g[i] = double(before[i]) - model.params()[i];
  return g;
}

double rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0, s = 0;
  for (size_t i = 0; i < a.size(); ++i)
    d = std::max(d, std::abs(a[i] - b[i])), s = std::max(s, std::abs(b[i]));
  return d / s;
}

// R replicas of b sequences, or accumulation over micro-steps, compute the gradient of the mean
// loss over all the step's targets: equal to one replica of R*b sequences up to float rounding
// (different summation order). Tolerance 1e-5 of the largest gradient element.
TEST(Trainer, ReplicasAndAccumulationMatchOneBigBatch) {
  float l_one, l_four, l_accum;
  auto one = one_step_gradient(1, 8, 1, &l_one);
  auto four = one_step_gradient(4, 8, 1, &l_four);
  auto accum = one_step_gradient(2, 4, 2, &l_accum);
  EXPECT_LE(rel_diff(four, one), 1e-5);
  EXPECT_LE(rel_diff(accum, one), 1e-5);
  EXPECT_NEAR(l_four, l_one, 1e-6);
  EXPECT_NEAR(l_accum, l_one, 1e-6);
}

TEST(Trainer, LearnsARepetitiveCorpus) {
  // The corpus is a period-7 sequence of token ids with a 1-in-13 chance that a token is bumped
  // by one. The bump is unpredictable: the best achievable mean loss is the entropy of that coin,
  // H(1/13) = 0.271 nats, against log(32) = 3.47 at initialisation. Requiring < 0.40 after 150
  // steps means the model learned the period (a model that ignores context stays above 2).
  TrainerOptions o = base_options();
  o.schedule = {ScheduleKind::kCosine, 1e-2f, 1e-3f, 10, 150};
  RunResult r = train(o, 150);
  float tail = 0;
  for (int i = 140; i < 150; ++i) tail += r.losses[i] / 10;
  EXPECT_GT(r.losses[0], 3.0f);
  EXPECT_LT(tail, 0.40f);
}

TEST(Trainer, NonFiniteGradientSkipsTheUpdate) {
  TrainerOptions o = base_options();
  o.seq_len = tiny().seq_len;
  Model model(tiny());
  model.init(1);
  model.params()[model.tensor("h.0.ln_1.weight").offset] = NAN;
  std::vector<float> before(model.params(), model.params() + model.num_params());
  Trainer trainer(model, o);
  std::vector<int32_t> in, tg;
  make_batch(0, 8, o.seq_len, &in, &tg);
  StepStats st = trainer.step(in.data(), tg.data());
  EXPECT_TRUE(st.skipped);
  EXPECT_EQ(trainer.steps_done(), 0);
  EXPECT_EQ(0, std::memcmp(before.data(), model.params(), before.size() * sizeof(float)));
}

TEST(Trainer, ShardsPartitionTheBlocks) {
  GptConfig cfg{300, 64, 3, 4, 96};  // > 10 blocks
  Model model(cfg);
  for (int threads : {1, 2, 3, 7}) {
    TrainerOptions o = base_options();
    o.threads = threads;
    o.seq_len = 8;
    Trainer t(model, o);
    size_t next = 0;
    for (int k = 0; k < threads; ++k) {
      auto [b0, b1] = t.shard_blocks(k);
      EXPECT_EQ(b0, next);
      EXPECT_LE(b1 - b0, t.num_blocks() / threads + 1);
      next = b1;
    }
    EXPECT_EQ(next, t.num_blocks());
    EXPECT_EQ(t.num_blocks(),
              (model.num_params() + Trainer::kBlockFloats - 1) / Trainer::kBlockFloats);
  }
}

// More threads than blocks: the threads with an empty shard reduce and update nothing, and the
// bits are those of one thread.
TEST(Trainer, ThreadsWithoutBlocksGiveTheBitsOfOneThread) {
  TrainerOptions o = base_options();
  o.threads = 1;
  const RunResult one = train(o, 10, 1, one_block());
  for (int threads : {2, 3, 4}) {
    for (const char* team : {"omp", "pool"}) {
      o.threads = threads;
      o.team = team;
      {
        Model model(one_block());
        o.seq_len = one_block().seq_len;
        Trainer t(model, o);
        ASSERT_EQ(t.num_blocks(), 1u);
        int empty = 0;
        for (int k = 0; k < threads; ++k)
          empty += t.shard_blocks(k).first == t.shard_blocks(k).second;
        EXPECT_EQ(empty, threads - 1) << "the case this test is about";
      }
      const RunResult r = train(o, 10, 1, one_block());
      EXPECT_TRUE(bit_equal(one.params, r.params)) << threads << " threads, " << team;
      EXPECT_TRUE(bit_equal(one.m, r.m)) << threads << " threads, " << team;
      EXPECT_TRUE(bit_equal(one.v, r.v)) << threads << " threads, " << team;
      EXPECT_TRUE(bit_equal(one.losses, r.losses)) << threads << " threads, " << team;
    }
  }
}

}  // namespace
}  // namespace skein

namespace skein {
namespace {

// Runs body(p) on P threads, one per rank, and joins them. A rank that skips a collective the
// others enter leaves them waiting forever (ThreadComm has no timeout), so after 300 s this ends
// the test binary with a message instead of hanging the suite.
void run_rank_threads(int P, const std::function<void(int)>& body) {
  std::atomic<int> finished{0};
  std::vector<std::thread> ranks;
  for (int p = 0; p < P; ++p)
    ranks.emplace_back([&, p] {
      body(p);
      finished.fetch_add(1);
    });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  while (finished.load() < P) {
    if (std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr,
                   "FATAL: %d of %d rank threads still wait after 300 s: a rank skipped a "
                   "collective that the others entered\n",
                   P - finished.load(), P);
      std::_Exit(1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  for (auto& t : ranks) t.join();
}

// One process with 2 threads, the reference of the multi-rank runs: parameters, optimizer state,
// losses after `steps` steps, and the validation loss of the next batch.
RunResult train_one(TrainerOptions o, int steps, GptConfig cfg, float* eval_loss) {
  o.threads = 2;
  o.seq_len = cfg.seq_len;
  Model model(cfg);
  model.init(1);
  Trainer trainer(model, o);
  RunResult one;
  std::vector<int32_t> in, tg;
  for (int s = 0; s < steps; ++s) {
    make_batch(s, o.batch_size * o.grad_accum_steps, o.seq_len, &in, &tg);
    one.losses.push_back(trainer.step(in.data(), tg.data()).loss);
  }
  one.params.assign(model.params(), model.params() + model.num_params());
  one.m.assign(trainer.state_m(), trainer.state_m() + trainer.state_m_floats());
  one.v.assign(trainer.state_v(), trainer.state_v() + trainer.state_v_floats());
  make_batch(steps, o.batch_size, o.seq_len, &in, &tg);
  *eval_loss = trainer.evaluate(in.data(), tg.data());
  return one;
}

// P ranks (threads of this process, each with its own model copy and thread team) train on
// their shares of the same global batches; returns rank 0's parameters, the whole optimizer
// state gathered on rank 0, the losses, and the validation loss of the last batch.
RunResult train_ranks(int P, TrainerOptions opt, int steps, GptConfig cfg, float* eval_loss) {
  ThreadGroup group(P);
  std::vector<RunResult> results(P);
  std::vector<float> eval(P);
  run_rank_threads(P, [&](int p) {
    {
      ThreadComm comm(&group, p);
      Model model(cfg);
      model.init(1);
      TrainerOptions o = opt;
      o.seq_len = cfg.seq_len;
      o.comm = &comm;
      Trainer trainer(model, o);
      const int A = o.grad_accum_steps, b = o.batch_size / P, T = o.seq_len;
      std::vector<int32_t> in, tg, my_in(size_t(A) * b * T), my_tg(my_in.size());
      RunResult& run = results[p];
      for (int s = 0; s < steps; ++s) {
        make_batch(s, o.batch_size * A, T, &in, &tg);
        for (int a = 0; a < A; ++a) {  // micro-step a: rows a*B + p*b .. of the global batch
          const size_t from = (size_t(a) * o.batch_size + size_t(p) * b) * T;
          std::copy(in.begin() + from, in.begin() + from + size_t(b) * T,
                    my_in.begin() + size_t(a) * b * T);
          std::copy(tg.begin() + from, tg.begin() + from + size_t(b) * T,
                    my_tg.begin() + size_t(a) * b * T);
        }
        run.losses.push_back(trainer.step(my_in.data(), my_tg.data()).loss);
      }
      run.params.assign(model.params(), model.params() + model.num_params());
      run.m.assign(p == 0 ? model.num_params() : 0, 0.0f);
      run.v.assign(p == 0 ? model.num_params() : 0, 0.0f);
      trainer.gather_state(run.m.data(), run.v.data());
      make_batch(steps, o.batch_size, T, &in, &tg);
      eval[p] = trainer.evaluate(in.data(), tg.data());
    }
  });
  for (int p = 1; p < P; ++p) {
    EXPECT_TRUE(bit_equal(results[0].params, results[p].params)) << "rank " << p;
    EXPECT_TRUE(bit_equal(results[0].losses, results[p].losses)) << "rank " << p;
    EXPECT_EQ(eval[0], eval[p]) << "rank " << p;
  }
  *eval_loss = eval[0];
  return results[0];
}

// The multi-rank step (ordered exchange of gradient pieces, optimizer state owned by one rank,
// all-gather of parameters): with R/P a power of two, P ranks give the bits of one process with
// the same R, whatever the threads per rank. Also built for the ThreadSanitizer run.
TEST(Trainer, RanksGiveTheBitsOfOneProcess) {
  const GptConfig cfg{300, 16, 3, 4, 96};  // 23 blocks: every rank owns several
  struct Case {
    int P, threads, replicas, accum;
  };
  for (const Case c :
       {Case{2, 1, 2, 1}, Case{2, 2, 4, 2}, Case{4, 1, 4, 1}, Case{3, 2, 6, 1}, Case{2, 1, 6, 1}}) {
    TrainerOptions o = base_options();
    o.replicas = c.replicas;
    o.batch_size = 12;
    o.grad_accum_steps = c.accum;
    float one_eval = 0;
    const RunResult one = train_one(o, 6, cfg, &one_eval);
    o.threads = c.threads;
    float eval = 0;
    RunResult ranks = train_ranks(c.P, o, 6, cfg, &eval);
    const std::string what = std::to_string(c.P) + " ranks x " + std::to_string(c.threads) +
                             " threads, R = " + std::to_string(c.replicas) + ", accumulation " +
                             std::to_string(c.accum);
    if (c.replicas / c.P == 3) {
      // R/P = 3 is not a power of two: the replica tree associates differently, so gradients
      // differ by rounding. AdamW turns rounding noise on a near-zero gradient into a step of up
      // to lr, so the bound is a third of one step (lr = 3e-3); measured: 2.4e-6.
      double worst = 0;
      for (size_t i = 0; i < one.params.size(); ++i)
        worst = std::max(worst, double(std::fabs(one.params[i] - ranks.params[i])));
      EXPECT_LT(worst, 1e-3) << what;
      EXPECT_NEAR(one.losses.back(), ranks.losses.back(), 1e-4) << what;
      continue;
    }
    EXPECT_TRUE(bit_equal(one.params, ranks.params)) << what;
    EXPECT_TRUE(bit_equal(one.m, ranks.m)) << what;
    EXPECT_TRUE(bit_equal(one.v, ranks.v)) << what;
    EXPECT_TRUE(bit_equal(one.losses, ranks.losses)) << what;
    EXPECT_EQ(one_eval, eval) << what;
  }
}

// A model of fewer blocks than ranks: some ranks own no parameters (an empty range and no
// optimizer state) and still take part in every collective, with the bits of one process.
// Regression: gather_state skipped the v gather on such a rank, which paired the others' gather
// with its next collective (under mpirun: a hang or a crash at the first checkpoint, whose v was
// zeros).
TEST(Trainer, RanksThatOwnNoBlocksGiveTheBitsOfOneProcess) {
  struct Case {
    GptConfig cfg;
    int P, threads, replicas, accum;
    OptimizerKind kind;
  };
  const OptimizerKind adamw = OptimizerKind::kAdamW, sgd = OptimizerKind::kSgd;
  for (const Case& c : {Case{one_block(), 2, 1, 2, 1, adamw}, Case{one_block(), 2, 2, 4, 2, adamw},
                        Case{one_block(), 3, 1, 3, 1, adamw}, Case{one_block(), 2, 1, 2, 1, sgd},
                        Case{tiny(), 4, 1, 4, 1, adamw}}) {
    const size_t blocks =
        (Model::num_params_for(c.cfg) + Trainer::kBlockFloats - 1) / Trainer::kBlockFloats;
    ASSERT_LT(blocks, size_t(c.P)) << "the case this test is about: a rank owns no block";
    TrainerOptions o = base_options();
    o.optimizer = c.kind;
    o.sgd = {0.1f, 0.9f, true, 0.01f};
    o.replicas = c.replicas;
    o.batch_size = 12;
    o.grad_accum_steps = c.accum;
    float one_eval = 0, eval = 0;
    const RunResult one = train_one(o, 4, c.cfg, &one_eval);
    o.threads = c.threads;
    const RunResult ranks = train_ranks(c.P, o, 4, c.cfg, &eval);
    const std::string what = std::to_string(c.P) + " ranks x " + std::to_string(c.threads) +
                             " threads, d_model " + std::to_string(c.cfg.d_model) +
                             (c.kind == sgd ? ", SGD" : ", AdamW");
    EXPECT_TRUE(bit_equal(one.params, ranks.params)) << what;
    EXPECT_TRUE(bit_equal(one.m, ranks.m)) << what;
    if (c.kind == adamw) {  // SGD has no v
      EXPECT_TRUE(bit_equal(one.v, ranks.v)) << what;
    }
    EXPECT_TRUE(bit_equal(one.losses, ranks.losses)) << what;
    EXPECT_EQ(one_eval, eval) << what;
  }
}

// scatter_state (a resume) then gather_state (a save) give back rank 0's whole state, also when
// some ranks own an empty range.
TEST(Trainer, StateScattersAndGathersThroughEmptyRanges) {
  const GptConfig cfg = one_block();
  const size_t n = Model::num_params_for(cfg);
  for (int P : {2, 3}) {
    for (OptimizerKind kind : {OptimizerKind::kAdamW, OptimizerKind::kSgd}) {
      const bool adamw = kind == OptimizerKind::kAdamW;
      std::vector<float> m(n), v(adamw ? n : 0), m_back(n, 0.0f), v_back(v.size(), 0.0f);
      for (size_t i = 0; i < n; ++i) m[i] = float(i) + 0.5f;
      for (size_t i = 0; i < v.size(); ++i) v[i] = 1.0f / float(i + 1);
      ThreadGroup group(P);
      std::vector<size_t> owned(P);
      run_rank_threads(P, [&](int p) {
        ThreadComm comm(&group, p);
        Model model(cfg);
        TrainerOptions o = base_options();
        o.optimizer = kind;
        o.replicas = P;
        o.batch_size = 3 * P;
        o.threads = 1;
        o.seq_len = cfg.seq_len;
        o.comm = &comm;
        Trainer t(model, o);
        const size_t b = t.owned_begin();
        owned[p] = t.owned_end() - b;
        t.scatter_state(p == 0 ? m.data() : nullptr, p == 0 && adamw ? v.data() : nullptr);
        for (size_t i = 0; i < owned[p]; ++i) {
          EXPECT_EQ(t.state_m()[i], m[b + i]) << "rank " << p << ", index " << b + i;
          if (adamw) {
            EXPECT_EQ(t.state_v()[i], v[b + i]) << "rank " << p << ", index " << b + i;
          }
        }
        t.gather_state(p == 0 ? m_back.data() : nullptr, p == 0 ? v_back.data() : nullptr);
      });
      const std::string what = std::to_string(P) + " ranks, " + (adamw ? "AdamW" : "SGD");
      EXPECT_EQ(owned[0], 0u) << what << ": the case this test is about";
      EXPECT_EQ(owned[P - 1], n) << what;
      EXPECT_TRUE(bit_equal(m, m_back)) << what;
      EXPECT_TRUE(bit_equal(v, v_back)) << what;
    }
  }
}

// A rank's optimizer state is its range only (ZeRO-1): it shrinks with the number of ranks, and
// the ranges tile the parameters.
// The memory estimate that train checks before allocating equals what the trainer holds.
TEST(Trainer, MemoryEstimateEqualsWhatTheTrainerAllocates) {
  GptConfig llama = llama_blocks({300, 24, 3, 4, 96});
  llama.n_kv_head = 1;
  llama.ffn_dim = 200;
  llama.tied = false;
  for (const GptConfig& cfg : {tiny(), GptConfig{300, 24, 3, 4, 96}, llama}) {
    for (auto [threads, W] : {std::pair{1, 1}, {3, 1}, {4, 2}, {3, 3}}) {
      for (OptimizerKind kind : {OptimizerKind::kAdamW, OptimizerKind::kSgd}) {
        TrainerOptions o = base_options();
        o.threads = threads;
        o.threads_per_replica = W;
        o.replicas = 0;
        o.batch_size = 6;
        o.optimizer = kind;
        o.seq_len = cfg.seq_len;
        Model model(cfg);
        EXPECT_EQ(Model::num_params_for(cfg), model.num_params());
        Trainer t(model, o);
        const MemoryReport est = Trainer::estimate_memory(cfg, o, 1, 0), got = t.memory();
        EXPECT_EQ(est.params, got.params);
        EXPECT_EQ(est.gradients, got.gradients);
        EXPECT_EQ(est.optimizer, got.optimizer);
        EXPECT_EQ(est.activations, got.activations);
        EXPECT_EQ(est.exchange, got.exchange);
        EXPECT_EQ(est.describe(), got.describe());
        EXPECT_EQ(got.groups, threads / W);
        EXPECT_EQ(got.replicas, threads / W);  // replicas 0: one per group
      }
    }
  }
}

TEST(Trainer, RanksOwnDisjointRangesOfTheState) {
  const GptConfig cfg{300, 16, 3, 4, 96};
  const int P = 3;
  ThreadGroup group(P);
  std::vector<size_t> begin(P), end(P), floats(P);
  std::vector<std::thread> ranks;
  for (int p = 0; p < P; ++p)
    ranks.emplace_back([&, p] {
      ThreadComm comm(&group, p);
      Model model(cfg);
      TrainerOptions o = base_options();
      o.replicas = 3;
      o.batch_size = 6;
      o.threads = 1;
      o.seq_len = cfg.seq_len;
      o.comm = &comm;
      Trainer t(model, o);
      begin[p] = t.owned_begin();
      end[p] = t.owned_end();
      floats[p] = t.state_m_floats();
      // the estimate made before allocating is what this rank's trainer holds
      const MemoryReport est = Trainer::estimate_memory(cfg, o, P, p), got = t.memory();
      EXPECT_EQ(est.total(), got.total()) << p;
      EXPECT_EQ(est.exchange, got.exchange) << p;
      EXPECT_EQ(est.optimizer, got.optimizer) << p;
    });
  for (auto& t : ranks) t.join();
  const size_t n = Model(cfg).num_params();
  EXPECT_EQ(begin[0], 0u);
  for (int p = 0; p < P; ++p) {
    EXPECT_EQ(floats[p], end[p] - begin[p]);
    EXPECT_LT(floats[p], n / 2);
    if (p > 0) {
      EXPECT_EQ(begin[p], end[p - 1]);
    }
  }
  EXPECT_EQ(end[P - 1], n);
}

}  // namespace
}  // namespace skein
