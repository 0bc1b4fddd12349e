#include "engine/training_run.h"

#include <google/protobuf/text_format.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <thread>

#include "base/crc32c.h"
#include "base/rng.h"
#include "data/loader.h"
#include "data/shard.h"
#include "data/tokenizer.h"
#include "engine/checkpoint.h"
#include "engine/comm.h"
#include "engine/config.h"
#include "engine/fma_peak.h"
#include "engine/metrics.h"
#include "engine/model.h"
#include "engine/thread_team.h"
#include "engine/trainer.h"

namespace skein {

namespace fs = std::filesystem;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

namespace {

// ---- signals: the first SIGINT/SIGTERM asks for a clean stop, the second exits at once ----
std::atomic<int> g_signals{0};
extern "C" void on_signal(int) {
  if (g_signals.fetch_add(1) >= 1) {
    static const char msg[] = "\nsecond signal: exiting now; the last checkpoint is intact\n";
    (void)!::write(2, msg, sizeof(msg) - 1);
    ::_exit(kExitInterrupted);
  }
}

void diff_messages(const Message& a, const Message& b, const std::string& prefix,
                   std::vector<std::pair<std::string, std::string>>* out) {
  const auto* d = a.GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const std::string name = prefix + f->name();
    if (f->is_repeated()) continue;
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      diff_messages(a.GetReflection()->GetMessage(a, f), b.GetReflection()->GetMessage(b, f),
                    name + ".", out);
      continue;
    }
    std::string va, vb;
    google::protobuf::TextFormat::PrintFieldValueToString(a, f, -1, &va);
    google::protobuf::TextFormat::PrintFieldValueToString(b, f, -1, &vb);
    if (va != vb) out->emplace_back(name, va + " -> " + vb);
  }
}

bool is_incompatible(const std::string& field) {
  return field.rfind("model.", 0) == 0 || field == "optimizer.kind";
}

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[32];
  const long t = static_cast<long>(s + 0.5);
  if (t >= 3600)
    std::snprintf(buf, sizeof(buf), "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else
    std::snprintf(buf, sizeof(buf), "%ldm%02lds", t / 60, t % 60);
  return buf;
}

std::vector<std::string> shard_paths(const std::string& dir, const std::string& split) {
  std::vector<std::string> paths;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind(split + "_", 0) == 0 && n.size() > 4 && n.substr(n.size() - 4) == ".bin")
      paths.push_back(e.path().string());
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

Status check_writable(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::error("cannot create the run folder " + dir + ": " + ec.message());
  const std::string probe = dir + "/.write-probe-" + std::to_string(::getpid());
  {
    std::ofstream f(probe);
    if (!(f << "probe") || !f.flush())
      return Status::error("the run folder " + dir +
                           " is not writable\nHINT: choose another with --out");
  }
  fs::remove(probe, ec);
  return Status();
}

bool all_finite(const float* p, size_t n) {
  bool ok = true;
  for (size_t i = 0; i < n; ++i) ok &= std::isfinite(p[i]);
  return ok;
}

// What the ranks of a job must agree on about their data: shard names and sizes (train and the
// validation shards in use) and the tokenizer's checksum, hashed.
uint64_t data_fingerprint(const std::vector<std::string>& train,
                          const std::vector<std::string>& val, uint32_t tokenizer_crc) {
  uint64_t h = mix64(tokenizer_crc, train.size(), val.size());
  for (const auto* list : {&train, &val})
    for (const std::string& path : *list) {
      std::error_code ec;
      const uint64_t size = fs::file_size(path, ec);
      const std::string name = fs::path(path).filename().string();
      h = mix64(h, crc32c(name.data(), name.size()), ec ? ~0ull : size);
    }
  return h;
}

// Progress and notes: printed by rank 0 only.
bool g_leader = true;
__attribute__((format(printf, 1, 2))) void say(const char* fmt, ...) {
  if (!g_leader) return;
  va_list ap;
  va_start(ap, fmt);
  std::vprintf(fmt, ap);
  va_end(ap);
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// run.threads = 0: time two steps (after one warm-up) at every thread count 1..cores, with the
// replica count fixed (so the choice cannot change results) and learning rate 0 (so the
// parameters do not move: AdamW and SGD then leave every bit as it was), and keep the fastest.
int measure_best_thread_count(Model& model, TrainerOptions opt, const Batch& batch, int cores) {
  opt.schedule = {ScheduleKind::kConstant, 0.0f, 0.0f, 0, 1};
  int best = cores;
  double best_t = INFINITY;
  for (int k = 1; k <= cores; ++k) {
    opt.threads = k;
    Trainer probe(model, opt);
    probe.step(batch.inputs.data(), batch.targets.data());
    const double t0 = now_s();
    for (int i = 0; i < 2; ++i) probe.step(batch.inputs.data(), batch.targets.data());
    const double t = (now_s() - t0) / 2;
    say("threads: auto: %d thread%s %.1f ms/step\n", k, k > 1 ? "s" : " ", t * 1e3);
    if (t < best_t * 0.97) best = k, best_t = t;  // more threads only for a clear gain
  }
  return best;
}

}  // namespace

std::vector<std::string> incompatible_changes(const proto::Config& saved, const proto::Config& now,
                                              std::vector<std::string>* notes) {
  std::vector<std::pair<std::string, std::string>> diffs;
  diff_messages(saved, now, "", &diffs);
  std::vector<std::string> bad;
  for (const auto& [field, change] : diffs) {
    if (is_incompatible(field))
      bad.push_back(field + ": " + change);
    else if (notes)
      notes->push_back(field + ": " + change);
  }
  return bad;
}

int run_training(const TrainRequest& req) {
  static LocalComm alone;
  Comm& comm = req.comm ? *req.comm : alone;
  const int P = comm.size(), rank = comm.rank();
  g_leader = rank == 0;
  // Setup runs in stages; after each, the ranks agree on the outcome (the worst exit code), so
  // that they all stop together and one message is printed for the job: rank 0's, or another
  // rank's if only that one failed (a file missing on one machine).
  std::string error;
  auto fail = [&](int code, const std::string& msg) {
    error = msg;
    return code;
  };
  auto agree = [&](int code) {
    if (P == 1) {
      if (code) std::fprintf(stderr, "error: %s\n", error.c_str());
      return code;
    }
    std::vector<int> codes(P);
    comm.allgather_bytes(&code, sizeof(int), codes.data());
    if (code && (rank == 0 || codes[0] == 0)) {
      if (rank == 0)
        std::fprintf(stderr, "error: %s\n", error.c_str());
      else
        std::fprintf(stderr, "error: rank %d: %s\n", rank, error.c_str());
    }
    return *std::max_element(codes.begin(), codes.end());
  };
  // A failure of one rank during training (rank 0's file I/O): the job ends with it.
  auto fail_job = [&](int code, const std::string& msg) {
    std::fprintf(stderr, "error: %s\n", msg.c_str());
    if (P > 1) comm.abort(code);
    return code;
  };

  // ---- 1. config, data (every rank; nothing is allocated or written before this) ----
  proto::Config cfg;
  GptConfig gcfg;
  uint32_t tokenizer_crc = 0;
  int threads = 1, replicas = 1;
  LoaderOptions lo;
  std::unique_ptr<Loader> loader;
  std::unique_ptr<ValIterator> val;
  std::vector<std::string> val_files;  // the validation shards in use (none when not evaluating)
  const int setup_code = [&]() -> int {
    StatusOr<proto::Config> loaded = load_config(req.config_path);
    if (!loaded.ok()) return fail(kExitBadInput, loaded.status().message());
    cfg = *loaded;
    for (const std::string& o : req.overrides) {
      Status s = apply_override(&cfg, o);
      if (!s.ok()) return fail(kExitBadInput, s.message());
    }
    if (!req.out_dir.empty()) cfg.mutable_run()->set_out_dir(req.out_dir);
    if (Status s = validate_config(cfg); !s.ok())
      return fail(kExitBadInput, req.config_path + ": " + s.message());
    gcfg = gpt_config(cfg.model());
    const proto::RunConfig& run = cfg.run();

    const std::string data_dir = cfg.data().dir();
    if (data_dir.empty())
      return fail(kExitBadInput, req.config_path +
                                     ": config field data.dir is not set\nHINT: run prepare_data "
                                     "--out DIR FILE... and set data { dir: \"DIR\" }");
    if (!fs::is_directory(data_dir))
      return fail(kExitBadInput,
                  "data.dir = \"" + data_dir +
                      "\": no such folder\nHINT: create it with prepare_data --out " + data_dir +
                      " FILE..." + (P > 1 ? " (on every machine of the job)" : ""));
    const std::vector<std::string> train_shards = shard_paths(data_dir, "train");
    const std::vector<std::string> val_shards = shard_paths(data_dir, "val");
    if (train_shards.empty())
      return fail(kExitBadInput, "data.dir = \"" + data_dir + "\" holds no train_*.bin shards");
    const std::string tok_path = data_dir + "/tokenizer.bin";
    if (fs::exists(tok_path)) {
      StatusOr<Tokenizer> tok = Tokenizer::load(tok_path);
      if (!tok.ok()) return fail(kExitBadInput, tok.status().message());
      if (tok->vocab_size() != gcfg.vocab_size)
        return fail(kExitBadInput,
                    "config field model.vocab_size = " + std::to_string(gcfg.vocab_size) +
                        " does not match the data's tokenizer (" + tok_path + ": vocabulary of " +
                        std::to_string(tok->vocab_size()) + ")\nHINT: set model { vocab_size: " +
                        std::to_string(tok->vocab_size()) + " }");
      std::ifstream f(tok_path, std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      tokenizer_crc = crc32c(bytes.data(), bytes.size());
    }
    if (run.threads() > 0) {
      threads = run.threads();
    } else if (P > 1) {  // no timing probe: the cores this rank may use
      threads = available_cores();
      const int machine = static_cast<int>(std::thread::hardware_concurrency());
      const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
      const int on_this_machine = local ? std::max(1, std::atoi(local)) : 1;
      // mpirun may have bound the rank to a subset already; else share the machine's cores
      if (threads >= machine) threads = std::max(1, machine / on_this_machine);
    } else {
      threads = available_cores();
    }
    lo.shards = train_shards;
    lo.B = run.batch_size() / P * run.grad_accum_steps();  // this rank's share
    lo.T = gcfg.seq_len;
    lo.seed = run.seed();
    lo.rank = rank;
    lo.ranks = P;
    lo.micro_steps = run.grad_accum_steps();
    lo.vocab_size = gcfg.vocab_size;
    lo.prefetch = cfg.data().prefetch();
    lo.threads = cfg.data().loader_threads();
    StatusOr<std::unique_ptr<Loader>> l = Loader::open(lo);
    if (!l.ok()) return fail(kExitBadInput, l.status().message());
    loader = std::move(*l);
    if (!val_shards.empty() && run.eval_batches() > 0) {
      StatusOr<ValIterator> v =
          ValIterator::open(val_shards, run.batch_size(), gcfg.seq_len, gcfg.vocab_size);
      if (!v.ok()) return fail(kExitBadInput, v.status().message());
      val = std::make_unique<ValIterator>(std::move(*v));
      val_files = val_shards;
    }
    return 0;
  }();
  if (int c = agree(setup_code)) return c;
  const proto::RunConfig& run = cfg.run();
  comm.set_timeout_seconds(run.comm_timeout_s());

  // ---- 1b. what the ranks must share: the replica count (from rank 0's thread count, since
  // R fixes the results and every rank must cut the batch alike) and the data ----
  const int agreed_code = [&]() -> int {
    int threads0 = threads;
    comm.broadcast_bytes(&threads0, sizeof(threads0));
    replicas = run.replicas() > 0 ? run.replicas() : threads0 * P;
    uint64_t mine = data_fingerprint(lo.shards, val_files, tokenizer_crc);
    std::vector<uint64_t> all(P);
    comm.allgather_bytes(&mine, sizeof(mine), all.data());
    if (all[0] != mine)
      return fail(kExitBadInput, "data.dir = \"" + cfg.data().dir() +
                                     "\" differs from rank 0's (shard names or sizes, validation "
                                     "shards or tokenizer)\nHINT: copy the same prepared data to "
                                     "every machine");
    if (replicas % P != 0)
      return fail(kExitBadInput, "config field run.replicas = " + std::to_string(replicas) +
                                     ": must be divisible by the number of MPI ranks, " +
                                     std::to_string(P));
    if (run.batch_size() % replicas != 0)
      return fail(kExitBadInput,
                  "config field run.batch_size = " + std::to_string(run.batch_size()) +
                      ": must be divisible by the replica count " + std::to_string(replicas) +
                      (P > 1 ? " (run.replicas, or threads x ranks when 0)"
                             : " (run.replicas, or run.threads when 0)"));
    return 0;
  }();
  if (int c = agree(agreed_code)) return c;

  // ---- 2. model and trainer ----
  Model model(gcfg);
  std::string precision_note;
  MatmulPrecision precision = matmul_precision_for(run.precision(), &precision_note);
  if (P > 1) {
    // one arithmetic for the whole job: BF16 only if every rank's CPU runs it
    const bool all_bf16 = comm.max(precision == MatmulPrecision::kBf16 ? 0 : 1) == 0;
    if (precision == MatmulPrecision::kBf16 && !all_bf16) {
      precision = MatmulPrecision::kFp32;
      precision_note =
          "run.precision = BF16: another rank's CPU cannot run the bf16 kernel, so the matmuls "
          "run in fp32 on every rank";
    }
  }
  model.set_matmul_precision(precision);
  if (!precision_note.empty()) say("%s\n", precision_note.c_str());
  TrainerOptions to;
  to.threads = threads;
  to.replicas = replicas;
  to.batch_size = run.batch_size();
  to.seq_len = gcfg.seq_len;
  to.grad_accum_steps = run.grad_accum_steps();
  to.team = run.team();
  to.comm = &comm;
  const auto& oc = cfg.optimizer();
  to.optimizer =
      oc.kind() == proto::OptimizerConfig::SGD ? OptimizerKind::kSgd : OptimizerKind::kAdamW;
  to.adamw = {oc.lr(), oc.beta1(), oc.beta2(), oc.eps(), oc.weight_decay()};
  to.sgd = {oc.lr(), oc.momentum(), oc.nesterov(), oc.weight_decay()};
  to.schedule = {cfg.schedule().kind() == proto::ScheduleConfig::COSINE ? ScheduleKind::kCosine
                                                                        : ScheduleKind::kConstant,
                 oc.lr(), cfg.schedule().min_lr(), cfg.schedule().warmup_steps(), run.steps()};
  to.max_grad_norm = oc.max_grad_norm();
  if (run.threads() == 0 && threads > 1 && P == 1) {
    Batch probe_batch;
    Loader::fill(loader->options(), loader->shard_set(), 0, &probe_batch);
    threads = measure_best_thread_count(model, to, probe_batch, threads);
    to.threads = threads;
    say("threads: auto: using %d (replicas fixed at %d, so results do not depend on it)\n", threads,
        replicas);
  }
  Trainer trainer(model, to);
  const bool adamw = to.optimizer == OptimizerKind::kAdamW;
  // Checkpoints hold the whole optimizer state in parameter order. One process saves and loads
  // its own buffers; with several ranks, rank 0 gathers the state into full-size buffers for a
  // save (and reads a checkpoint into them, then scatters it), which exist only meanwhile.
  std::vector<float> full_m, full_v;
  auto state_buffers = [&]() -> std::vector<NamedBuffer> {
    std::vector<NamedBuffer> b = {{"param/", model.params()}};
    float* m = P == 1 ? trainer.state_m() : full_m.data();
    float* v = P == 1 ? trainer.state_v() : full_v.data();
    if (adamw) {
      b.push_back({"adam_m/", m});
      b.push_back({"adam_v/", v});
    } else {
      b.push_back({"momentum/", m});
    }
    return b;
  };
  auto allocate_full_state = [&](bool on) {
    if (P == 1) return;
    full_m.assign(on ? model.num_params() : 0, 0.0f);
    full_v.assign(on && adamw ? model.num_params() : 0, 0.0f);
    if (!on) full_m.shrink_to_fit(), full_v.shrink_to_fit();
  };

  // ---- 3. run folder and resume (rank 0 reads; the others receive) ----
  const std::string out = run.out_dir();
  const std::string ckpt_dir = out + "/checkpoints";
  std::string resume_from;
  long resume_info[3] = {0, 0, 0};  // steps done, data cursor, skipped steps
  const int resume_code = [&]() -> int {
    if (rank != 0) return 0;
    if (Status s = check_writable(out); !s.ok()) return fail(kExitBadInput, s.message());
    if (fs::is_directory(ckpt_dir)) {
      if (int n = clean_leftovers(ckpt_dir); n > 0)
        say("removed %d leftover(s) of an interrupted save in %s\n", n, ckpt_dir.c_str());
    }
    if (req.resume == "auto") {
      std::vector<std::string> skipped;
      if (fs::is_directory(ckpt_dir))
        resume_from = find_latest_valid_checkpoint(ckpt_dir, &skipped);
      for (const auto& why : skipped)
        say("skipping a checkpoint that does not verify: %s\n", why.c_str());
    } else if (req.resume == "none") {
      std::vector<std::string> ignored;
      if (fs::is_directory(ckpt_dir) && !find_latest_valid_checkpoint(ckpt_dir, &ignored).empty())
        return fail(kExitBadInput, out +
                                       " already holds checkpoints of a run\nHINT: continue it "
                                       "with --resume auto, or start afresh elsewhere with --out "
                                       "DIR");
    } else {
      resume_from = req.resume;  // verified once, when it is loaded below
    }
    if (resume_from.empty()) return 0;
    // The manifest alone for the compatibility checks; load_checkpoint verifies every tensor.
    StatusOr<proto::CheckpointManifest> m = read_checkpoint_manifest(resume_from);
    if (!m.ok()) return fail(kExitResume, m.status().message());
    std::vector<std::string> notes;
    std::vector<std::string> bad = incompatible_changes(m->config(), cfg, &notes);
    if (!bad.empty()) {
      std::string msg = "cannot resume from " + resume_from + ": the config changed incompatibly:";
      for (const auto& b : bad) msg += "\n  " + b;
      return fail(kExitResume,
                  msg + "\nHINT: restore these fields, or start a new run with --out DIR");
    }
    if (m->tokenizer_crc32c() != tokenizer_crc)
      return fail(kExitResume,
                  "cannot resume from " + resume_from +
                      ": the data's tokenizer is not the one the run was trained with");
    for (const auto& n : notes)
      say("config change since the checkpoint (allowed): %s\n", n.c_str());
    allocate_full_state(true);
    m = load_checkpoint(resume_from, model, state_buffers());
    if (!m.ok()) return fail(kExitResume, m.status().message());
    resume_info[0] = m->step();
    resume_info[1] = m->data_cursor();
    resume_info[2] = m->skipped_steps();
    return 0;
  }();
  if (int c = agree(resume_code)) return c;
  comm.broadcast_string(&resume_from);
  if (!resume_from.empty()) {
    comm.broadcast_bytes(resume_info, sizeof(resume_info));
    if (P > 1) {
      comm.broadcast_bytes(model.params(), model.num_params() * sizeof(float));
      trainer.scatter_state(full_m.data(), full_v.data());
      allocate_full_state(false);
    }
    trainer.set_steps_done(resume_info[0]);
    say("resumed from %s (step %ld)\n", resume_from.c_str(), resume_info[0]);
  } else {
    model.init(run.seed());  // the same bits on every rank
  }
  long data_cursor = resume_info[1], skipped_total = resume_info[2];
  std::optional<MetricsLog> metrics;
  const int metrics_code = [&]() -> int {
    if (rank != 0) return 0;
    std::string text;
    google::protobuf::TextFormat::PrintToString(cfg, &text);
    std::ofstream(out + "/config.textproto") << "# resolved config of this run\n" << text;
    StatusOr<MetricsLog> m = MetricsLog::open(out, resume_from.empty() ? -1 : trainer.steps_done());
    if (!m.ok()) return fail(kExitRuntime, m.status().message());
    metrics.emplace(std::move(*m));
    return 0;
  }();
  if (int c = agree(metrics_code)) return c;

  // Collective: every rank calls it; rank 0 writes.
  auto save = [&](float last_loss) -> Status {
    if (!all_finite(model.params(), model.num_params()))  // the same on every rank
      return Status::error(
          "parameters hold NaN or Inf: no checkpoint written; the previous one is intact");
    if (P > 1) {
      allocate_full_state(rank == 0);
      trainer.gather_state(full_m.data(), full_v.data());
    }
    Status s;
    if (rank == 0) {
      CheckpointInfo info;
      info.step = trainer.steps_done();
      info.seed = run.seed();
      info.data_cursor = data_cursor;
      info.last_loss = last_loss;
      info.skipped_steps = skipped_total;
      info.tokenizer_crc32c = tokenizer_crc;
      info.config = cfg;
      std::string path;
      s = write_checkpoint(ckpt_dir, model, state_buffers(), info, run.keep_checkpoints(), &path);
      if (s.ok()) say("saved checkpoint %s\n", path.c_str());
    }
    allocate_full_state(false);
    return s;
  };
  auto evaluate = [&]() -> double {
    if (!val) return NAN;
    val->reset();
    Batch b;
    double sum = 0;
    int n = 0;
    while (n < run.eval_batches() && val->next(&b)) {
      sum += trainer.evaluate(b.inputs.data(), b.targets.data());
      ++n;
    }
    return n ? sum / n : NAN;
  };

  // ---- 4. the loop ----
  const double peak = measure_fma_peak(3, 2'000'000);  // ~30 ms: the MFU of the progress line
  const double C = gcfg.d_model, L = gcfg.n_layer, T = gcfg.seq_len;
  const double flops_per_token =
      6.0 * (12.0 * L * C * C + double(gcfg.vocab_size) * C) + 12.0 * L * C * T;
  const long tokens_per_step = long(lo.B) * P * gcfg.seq_len;
  if (P > 1)
    say("skein: %s, %ld parameters, %d ranks x %d threads, %d replicas, %ld tokens/step, %ld "
        "steps\n",
        req.config_path.c_str(), long(model.num_params()), P, threads, replicas, tokens_per_step,
        long(run.steps()));
  else
    say("skein: %s, %ld parameters, %d threads, %d replicas, %ld tokens/step, %ld steps\n",
        req.config_path.c_str(), long(model.num_params()), threads, replicas, tokens_per_step,
        long(run.steps()));
  say("memory%s: %s\n", P > 1 ? " per rank" : "", trainer.memory().describe().c_str());
  if (model.matmul_precision() == MatmulPrecision::kBf16Rounded)
    say("precision: BF16_EMULATED: matmul operands rounded to bf16, fp32 sums (bf16's numerics, "
        "fp32's speed)\n");
  if (model.matmul_precision() == MatmulPrecision::kBf16)
    say("precision: BF16: matmuls with vdpbf16ps (bf16 operands, fp32 sums); weights and "
        "optimizer state fp32\n");
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  loader->start(data_cursor);
  const double t_start = now_s();
  double window_t = now_s(), window_wait = loader->wait_seconds(), window_comm = comm.seconds();
  long window_steps = 0, consecutive_skips = 0;
  float last_loss = 0;
  const long first_step = trainer.steps_done();
  while (trainer.steps_done() < run.steps()) {
    // The ranks stop together: at the first step boundary after any of them got a signal.
    if (comm.max(g_signals.load() > 0 ? 1 : 0)) {
      say("signal received: saving a checkpoint and stopping\n");
      if (Status s = save(last_loss); !s.ok()) return fail_job(kExitRuntime, s.message());
      say("stopped at step %ld. Resume with: train --config %s --out %s --resume auto\n",
          trainer.steps_done(), req.config_path.c_str(), out.c_str());
      return kExitOk;
    }
    const Batch& batch = loader->next();
    ++data_cursor;
    StepStats st = trainer.step(batch.inputs.data(), batch.targets.data());
    if (st.skipped || !std::isfinite(st.loss)) {  // the same on every rank
      ++skipped_total;
      ++consecutive_skips;
      say("step %ld: non-finite %s, update skipped (%ld skipped so far)\n",
          trainer.steps_done() + 1, std::isfinite(st.loss) ? "gradient norm" : "loss",
          skipped_total);
      if (run.on_nonfinite() == proto::RunConfig::STOP) {
        error = "non-finite loss or gradient at step " + std::to_string(trainer.steps_done() + 1) +
                " (run.on_nonfinite = STOP); the last checkpoint is intact\nHINT: lower "
                "optimizer.lr or set optimizer.max_grad_norm";
        return agree(kExitRuntime);
      }
      if (consecutive_skips >= run.max_skipped_steps()) {
        error = std::to_string(consecutive_skips) +
                " steps in a row had a non-finite gradient (run.max_skipped_steps); the last "
                "checkpoint is intact\nHINT: lower optimizer.lr";
        return agree(kExitRuntime);
      }
      continue;
    }
    consecutive_skips = 0;
    last_loss = st.loss;
    ++window_steps;
    const long step = trainer.steps_done();
    if (step % run.log_every() == 0 || step == run.steps()) {
      const double t = now_s(), wait = loader->wait_seconds(), comm_s = comm.seconds();
      const double dt = t - window_t;
      const double tps = window_steps * tokens_per_step / dt;
      const double wait_frac = (wait - window_wait) / dt;
      const double mfu = tps * flops_per_token / (peak * threads * P);
      const double eta = (run.steps() - step) * dt / window_steps;
      char comm_part[32] = "";
      if (P > 1)
        std::snprintf(comm_part, sizeof(comm_part), " | comm %.1f%%",
                      100 * (comm_s - window_comm) / dt);
      say("step %ld/%ld | loss %.4f | lr %.2e | norm %.3f | %.0f tok/s | MFU %.1f%% | wait %.1f%%"
          "%s | ETA %s\n",
          step, long(run.steps()), st.loss, st.lr, st.grad_norm, tps, 100 * mfu, 100 * wait_frac,
          comm_part, format_duration(eta).c_str());
      std::fflush(stdout);
      if (metrics) {
        Status s = metrics->log_train(
            {step, st.loss, st.lr, st.grad_norm, tps, mfu, wait_frac, t - t_start});
        if (!s.ok()) return fail_job(kExitRuntime, s.message());
      }
      window_t = t;
      window_wait = wait;
      window_comm = comm_s;
      window_steps = 0;
    }
    const bool last = step == run.steps();
    if ((run.eval_every() > 0 && step % run.eval_every() == 0) || last) {
      const double vl = evaluate();
      if (metrics) {
        if (std::isfinite(vl)) {
          say("eval step %ld | val loss %.4f\n", step, vl);
          if (Status s = metrics->log_eval(step, vl); !s.ok())
            return fail_job(kExitRuntime, s.message());
        }
        if (Status s = metrics->write_plot(); !s.ok()) return fail_job(kExitRuntime, s.message());
      }
    }
    if ((run.checkpoint_every() > 0 && step % run.checkpoint_every() == 0) || last) {
      if (Status s = save(last_loss); !s.ok()) return fail_job(kExitRuntime, s.message());
    }
  }
  say("done: %ld steps in %s (%ld this session), final loss %.4f, %ld skipped; run folder %s\n",
      trainer.steps_done(), format_duration(now_s() - t_start).c_str(),
      trainer.steps_done() - first_step, last_loss, skipped_total, out.c_str());
  return kExitOk;
}

}  // namespace skein
