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

#include "data/file_util.h"
#include "data/loader.h"
#include "data/shard.h"
#include "data/tokenizer.h"
#include "engine/checkpoint.h"
#include "engine/comm.h"
#include "engine/config.h"
#include "engine/fma_peak.h"
#include "engine/import.h"
#include "engine/metrics.h"
#include "engine/model.h"
#include "engine/thread_team.h"
#include "engine/trainer.h"
#include "kernels/gemm.h"

namespace skein {

namespace fs = std::filesystem;

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

// Where a resumed run continues: what the checkpoint's manifest says (all zero for a fresh
// run). Sent from rank 0 to the others as bytes.
struct ResumePoint {
  long step = 0;         // optimizer steps done
  long data_cursor = 0;  // the next batch's step number
  long skipped = 0;      // steps skipped so far for a non-finite gradient
  float last_loss = 0;   // the training loss of the checkpoint's last step
};

// One training run, in the stages that run() calls in order. Each setup stage returns an exit
// code (0: go on) that the ranks agree on before the next, so that they all stop together and
// the job prints one message: rank 0's, or another rank's if only that one failed (a file
// missing on one machine).
class TrainingRun {
 public:
  TrainingRun(const TrainRequest& req, Comm& comm)
      : req_(req), comm_(comm), P_(comm.size()), rank_(comm.rank()) {}

  int run() {
    g_leader = rank_ == 0;
    if (int c = resolve_config_and_data()) return c;
    comm_.set_timeout_seconds(cfg_.run().comm_timeout_s());
    if (int c = agree(agree_on_replicas_and_data())) return c;
    if (int c = agree(check_memory())) return c;
    build_trainer();
    if (int c = agree(open_run_folder_and_resume())) return c;
    if (int c = start_or_resume()) return c;
    if (int c = agree(open_metrics())) return c;
    print_start_lines();
    return train_loop();
  }

 private:
  // ---- error handling ----
  int fail(int code, const std::string& msg) {
    error_ = msg;
    return code;
  }
  // The job's outcome of a setup stage: the worst exit code of the ranks, printed once.
  int agree(int code) {
    if (P_ == 1) {
      if (code) std::fprintf(stderr, "error: %s\n", error_.c_str());
      return code;
    }
    std::vector<int> codes(P_);
    comm_.allgather_bytes(&code, sizeof(int), codes.data());
    if (code && (rank_ == 0 || codes[0] == 0)) {
      if (rank_ == 0)
        std::fprintf(stderr, "error: %s\n", error_.c_str());
      else
        std::fprintf(stderr, "error: rank %d: %s\n", rank_, error_.c_str());
    }
    return *std::max_element(codes.begin(), codes.end());
  }
  // A failure of one rank during training (rank 0's file I/O): the job ends with it.
  int fail_job(int code, const std::string& msg) {
    std::fprintf(stderr, "error: %s\n", msg.c_str());
    if (P_ > 1) comm_.abort(code);
    return code;
  }

  // ---- 1. config and data, on every rank; nothing is allocated or written before this ----
  // In steps that the ranks agree on, since the second sends rank 0's choice to the others.
  int resolve_config_and_data() {
    bool file_sets_nothing = false;
    if (int c = agree(resolve(&file_sets_nothing))) return c;
    if (int c = agree(choose_checkpoint_early())) return c;
    if (int c = agree(take_shape_from_checkpoint())) return c;
    return agree(open_weights_and_data(file_sets_nothing));
  }

  int resolve(bool* file_sets_nothing) {
    StatusOr<proto::Config> cfg = resolve_config(req_.config_path, req_.overrides, req_.out_dir,
                                                 file_sets_nothing, req_.init_from);
    if (!cfg.ok()) return fail(kExitBadInput, cfg.status().message());
    cfg_ = *cfg;
    return 0;
  }

  int open_weights_and_data(bool file_sets_nothing) {
    if (int c = open_pretrained()) return c;
    gcfg_ = gpt_config(cfg_.model());
    if (int c = check_data_folder(file_sets_nothing)) return c;
    threads_ = thread_count();
    return open_loaders();
  }

  // model.init_from on a run that will resume: the model's shape is the checkpoint's, and the
  // weights' file is not opened at all (it may have been moved since). Rank 0 picks the
  // checkpoint here as choose_checkpoint() will, reading only; a run folder whose only complete
  // checkpoint is a leftover that clean_leftovers() puts back still opens the file.
  int choose_checkpoint_early() {
    if (rank_ != 0 || cfg_.model().init_from().empty() || req_.resume == "none") return 0;
    if (int c = check_resume_flag()) return c;
    std::string path = req_.resume;
    if (req_.resume == "auto") {
      if (!fs::is_directory(checkpoints_dir())) return 0;
      chosen_early_ = true;
      early_checkpoint_ = find_latest_valid_checkpoint(checkpoints_dir(), &early_skipped_);
      path = early_checkpoint_;
    }
    if (path.empty()) return 0;
    StatusOr<proto::CheckpointManifest> m = read_checkpoint_manifest(path);
    if (!m.ok()) return fail(kExitResume, m.status().message());
    m->config().model().SerializeToString(&checkpoint_model_);
    return 0;
  }

  // Every rank: the shape fields that the config leaves unset, from rank 0's checkpoint. One
  // that it sets to another value is refused with the other config changes, on resume.
  int take_shape_from_checkpoint() {
    comm_.broadcast_string(&checkpoint_model_);
    if (checkpoint_model_.empty()) return 0;
    proto::ModelConfig saved;
    if (!saved.ParseFromString(checkpoint_model_))
      return fail(kExitResume, "rank 0's checkpoint config did not arrive intact");
    proto::ModelConfig* m = cfg_.mutable_model();
    if (!m->has_vocab_size()) m->set_vocab_size(saved.vocab_size());
    if (!m->has_seq_len()) m->set_seq_len(saved.seq_len());
    if (!m->has_n_layer()) m->set_n_layer(saved.n_layer());
    if (!m->has_n_head()) m->set_n_head(saved.n_head());
    if (!m->has_d_model()) m->set_d_model(saved.d_model());
    if (!m->has_arch()) m->set_arch(saved.arch());
    if (!m->has_n_kv_head() && saved.has_n_kv_head()) m->set_n_kv_head(saved.n_kv_head());
    if (!m->has_ffn_dim() && saved.has_ffn_dim()) m->set_ffn_dim(saved.ffn_dim());
    if (!m->has_rope_theta() && saved.has_rope_theta()) m->set_rope_theta(saved.rope_theta());
    if (!m->has_norm_eps() && saved.has_norm_eps()) m->set_norm_eps(saved.norm_eps());
    if (!m->has_tie_embeddings() && saved.has_tie_embeddings())
      m->set_tie_embeddings(saved.tie_embeddings());
    if (Status s = validate_config(cfg_); !s.ok())
      return fail(kExitResume,
                  req_.config_path + " with the shape of the checkpoint: " + s.message());
    shape_from_checkpoint_ = true;
    return 0;
  }

  // model.init_from: the weights decide the model's shape, and every value of theirs is checked
  // here, before anything is allocated or written; they are copied into the model only when the
  // run starts at step 0 (start_or_resume). A run that resumes does not open them.
  int open_pretrained() {
    if (cfg_.model().init_from().empty() || shape_from_checkpoint_) return 0;
    StatusOr<PretrainedWeights> w = PretrainedWeights::open(cfg_.model().init_from());
    if (!w.ok()) return fail(kExitBadInput, w.status().message());
    if (Status s = apply_pretrained_shape(*w, cfg_.mutable_model()); !s.ok())
      return fail(kExitBadInput, req_.config_path + ": " + s.message());
    if (Status s = validate_config(cfg_); !s.ok())
      return fail(kExitBadInput,
                  req_.config_path + " with the shape of " + w->path() + ": " + s.message());
    if (Status s = w->check_values(); !s.ok()) return fail(kExitBadInput, s.message());
    init_source_ = init_source_record(*w);
    pretrained_.emplace(std::move(*w));
    return 0;
  }

  // data.dir: there, with train shards, and a tokenizer (if any) that fits the model.
  int check_data_folder(bool file_sets_nothing) {
    const std::string data_dir = cfg_.data().dir();
    if (data_dir.empty() && file_sets_nothing)
      return fail(kExitBadInput,
                  req_.config_path +
                      " sets no field at all (it is empty or holds only comments), and a run "
                      "needs at least data.dir, the model and the run's length\nHINT: start "
                      "from configs/demo.textproto; proto/skein.proto lists every field");
    if (data_dir.empty())
      return fail(kExitBadInput, req_.config_path +
                                     ": config field data.dir is not set\nHINT: run prepare_data "
                                     "--out DIR FILE... and set data { dir: \"DIR\" }");
    if (!fs::is_directory(data_dir))
      return fail(kExitBadInput,
                  "data.dir = \"" + data_dir +
                      "\": no such folder\nHINT: create it with prepare_data --out " + data_dir +
                      " FILE..." + (P_ > 1 ? " (on every machine of the job)" : ""));
    train_shards_ = list_shards(data_dir, "train");
    if (train_shards_.empty())
      return fail(kExitBadInput, "data.dir = \"" + data_dir + "\" holds no train_*.bin shards");
    const std::string tok_path = data_dir + "/tokenizer.bin";
    if (!fs::exists(tok_path)) {
      say("warning: data.dir = \"%s\" has no tokenizer.bin: training works on the token ids "
          "alone, but sample cannot turn the model's output back into text\nHINT: prepare_data "
          "writes tokenizer.bin next to the shards; copy it there\n",
          data_dir.c_str());
      return 0;
    }
    StatusOr<Tokenizer> tok = Tokenizer::load(tok_path);
    if (!tok.ok()) return fail(kExitBadInput, tok.status().message());
    // Pretrained weights' embedding rows mean their tokenizer's ids: GPT-2's byte-level BPE (a
    // Llama's vocab.json + merges.txt, read the same way), and no other kind.
    if (!cfg_.model().init_from().empty() && tok->kind() != Tokenizer::Kind::kGpt2)
      return fail(
          kExitBadInput,
          "model.init_from = \"" + cfg_.model().init_from() +
              "\" needs data tokenized with GPT-2's tokenizer, but data.dir's " + tok_path +
              " is of kind " + tok->kind_name() + " (vocabulary of " +
              std::to_string(tok->vocab_size()) +
              "), not gpt2\nHINT: tokenize the text again with prepare_data --tokenizer gpt2 "
              "--tokenizer_files DIR (the model's vocab.json + merges.txt; for GPT-2 also "
              "OpenAI's encoder.json + vocab.bpe)");
    if (tok->vocab_size() != gcfg_.vocab_size)
      return fail(kExitBadInput,
                  "config field model.vocab_size = " + std::to_string(gcfg_.vocab_size) +
                      " does not match the data's tokenizer (" + tok_path + ": vocabulary of " +
                      std::to_string(tok->vocab_size()) + ")\nHINT: set model { vocab_size: " +
                      std::to_string(tok->vocab_size()) + " }");
    StatusOr<uint32_t> crc = file_crc32c(tok_path);
    if (!crc.ok()) return fail(kExitBadInput, crc.status().message());
    tokenizer_crc_ = *crc;
    return 0;
  }

  // run.threads, or for 0 the cores this rank may use (single process: the most that the
  // timing probe of build_trainer() tries).
  int thread_count() const {
    if (cfg_.run().threads() > 0) return cfg_.run().threads();
    int threads = available_cores();
    if (P_ > 1) {  // no timing probe under mpirun
      const int machine = static_cast<int>(std::thread::hardware_concurrency());
      const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
      const int on_this_machine = local ? std::max(1, std::atoi(local)) : 1;
      // mpirun may have bound the rank to a subset already; else share the machine's cores
      if (threads >= machine) threads = std::max(1, machine / on_this_machine);
    }
    return threads;
  }

  int open_loaders() {
    const proto::RunConfig& run = cfg_.run();
    lo_.shards = train_shards_;
    lo_.B = run.batch_size() / P_ * run.grad_accum_steps();  // this rank's share
    lo_.T = gcfg_.seq_len;
    lo_.seed = run.seed();
    lo_.rank = rank_;
    lo_.ranks = P_;
    lo_.micro_steps = run.grad_accum_steps();
    lo_.vocab_size = gcfg_.vocab_size;
    lo_.prefetch = cfg_.data().prefetch();
    lo_.threads = cfg_.data().loader_threads();
    StatusOr<std::unique_ptr<Loader>> l = Loader::open(lo_);
    if (!l.ok()) return fail(kExitBadInput, l.status().message());
    loader_ = std::move(*l);
    const std::vector<std::string> val_shards = list_shards(cfg_.data().dir(), "val");
    if (!val_shards.empty() && run.eval_batches() > 0) {
      StatusOr<ValIterator> v =
          ValIterator::open(val_shards, run.batch_size(), gcfg_.seq_len, gcfg_.vocab_size);
      if (!v.ok()) return fail(kExitBadInput, v.status().message());
      val_ = std::make_unique<ValIterator>(std::move(*v));
      val_files_ = val_shards;
    }
    return 0;
  }

  // ---- 1b. what the ranks must share: the replica count (from rank 0's thread count, since
  // R fixes the results and every rank must cut the batch alike) and the data ----
  int agree_on_replicas_and_data() {
    const proto::RunConfig& run = cfg_.run();
    // rank 0's layout fixes R (when run.replicas is 0); each rank then picks its own W for it
    // (every rank takes part in both collectives whatever it found; errors are returned after)
    int layout0[3] = {threads_, 1, 0};  // rank 0's threads, W, and its error code
    if (rank_ == 0) {
      layout0[2] = choose_threads_per_replica(0);
      layout0[1] = threads_per_replica_;
    }
    comm_.broadcast_bytes(layout0, sizeof(layout0));
    int code = layout0[2];  // rank 0 failed: so do the others (agree() prints rank 0's message)
    if (!code) {
      replicas_ = run.replicas() > 0 ? run.replicas() : layout0[0] / layout0[1] * P_;
      if (rank_ != 0) code = choose_threads_per_replica(replicas_);
    }
    uint64_t mine = shards_fingerprint(lo_.shards, val_files_, tokenizer_crc_);
    std::vector<uint64_t> all(P_);
    comm_.allgather_bytes(&mine, sizeof(mine), all.data());
    if (code) return code;
    if (all[0] != mine)
      return fail(kExitBadInput, "data.dir = \"" + cfg_.data().dir() +
                                     "\" differs from rank 0's (shard names or sizes, validation "
                                     "shards or tokenizer)\nHINT: copy the same prepared data to "
                                     "every machine");
    if (replicas_ % P_ != 0)
      return fail(kExitBadInput, "config field run.replicas = " + std::to_string(replicas_) +
                                     ": must be divisible by the number of MPI ranks, " +
                                     std::to_string(P_));
    if (run.batch_size() % replicas_ != 0)
      return fail(kExitBadInput,
                  "config field run.batch_size = " + std::to_string(run.batch_size()) +
                      ": must be divisible by the replica count " + std::to_string(replicas_) +
                      (P_ > 1 ? " (run.replicas, or threads x ranks when 0)"
                              : " (run.replicas, or run.threads when 0)"));
    return 0;
  }

  // run.threads_per_replica, or for 0 the smallest divisor W of the thread count such that no
  // group of W threads idles (there are at least as many replicas on this rank as groups), the
  // replica count divides the batch, and the run fits in memory. replicas: the agreed R, or 0 on
  // rank 0 when run.replicas is 0 (R is then threads / W x ranks). Says what it chose when W > 1.
  int choose_threads_per_replica(int replicas) {
    const proto::RunConfig& run = cfg_.run();
    const int fixed = replicas > 0 ? replicas : run.replicas();
    const int K = threads_;
    if (run.threads_per_replica() > 0) {
      threads_per_replica_ = run.threads_per_replica();
      if (K % threads_per_replica_ != 0)
        return fail(kExitBadInput, "config field run.threads_per_replica = " +
                                       std::to_string(threads_per_replica_) + ": must divide the " +
                                       std::to_string(K) +
                                       " threads (run.threads = 0: the cores available)");
      return 0;
    }
    std::string why;
    for (int W = 1; W <= K; ++W) {
      if (K % W != 0) continue;
      const int R = fixed > 0 ? fixed : K / W * P_;
      if (groups_would_idle(K, W, fixed > 0 ? fixed / P_ : 0)) {
        why = std::to_string(fixed / P_) + " replica(s) on this rank's " + std::to_string(K) +
              " threads";
        continue;
      }
      if (run.batch_size() % R != 0) {
        why = "run.batch_size = " + std::to_string(run.batch_size()) + " is not divisible by " +
              std::to_string(R) + " replicas";
        continue;
      }
      if (!memory_status(W, R).ok()) {
        why = "one replica per " + std::to_string(W) + " thread(s) would not fit in memory";
        continue;
      }
      threads_per_replica_ = W;
      if (W > 1)
        say("threads: %d per replica (run.threads_per_replica = 0; with fewer, %s)\n", W,
            why.c_str());
      return 0;
    }
    threads_per_replica_ = K;  // nothing fits: check_memory and the replica checks say why
    return 0;
  }

  // Whether the run fits in this machine's memory with W threads per replica and R replicas.
  Status memory_status(int W, int R) const {
    TrainerOptions o = trainer_options(cfg_);
    o.threads = threads_;  // with run.threads = 0, the most the thread-count probe tries
    o.threads_per_replica = W;
    o.replicas = R;
    const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    const int on_machine = P_ > 1 && local ? std::max(1, std::atoi(local)) : 1;
    // the loader's ring of batches
    const double extra =
        double(lo_.prefetch + 2) * lo_.B * (gcfg_.seq_len + 1) * 2 * sizeof(int32_t);
    return check_fits_in_memory(gcfg_, o, P_, rank_, on_machine, extra, P_ > 1,
                                available_memory_bytes());
  }

  // ---- 1c. memory: a run that cannot fit is refused before anything is allocated ----
  int check_memory() {
    Status s = memory_status(threads_per_replica_, replicas_);
    return s.ok() ? 0 : fail(kExitBadInput, s.message());
  }

  // ---- 2. model and trainer ----
  void build_trainer() {
    model_.emplace(gcfg_);
    std::string precision_note;
    MatmulPrecision precision = matmul_precision_for(cfg_.run().precision(), &precision_note);
    if (P_ > 1) {
      // one arithmetic for the whole job: BF16 only if every rank's CPU runs it
      const bool all_bf16 = comm_.max(precision == MatmulPrecision::kBf16 ? 0 : 1) == 0;
      if (precision == MatmulPrecision::kBf16 && !all_bf16) {
        precision = MatmulPrecision::kFp32;
        precision_note =
            "run.precision = BF16: another rank's CPU cannot run the bf16 kernel, so the matmuls "
            "run in fp32 on every rank";
      }
    }
    model_->set_matmul_precision(precision);
    if (!precision_note.empty()) say("%s\n", precision_note.c_str());
    TrainerOptions to = trainer_options(cfg_);
    to.threads = threads_;
    to.threads_per_replica = threads_per_replica_;
    to.replicas = replicas_;
    to.comm = &comm_;
    if (cfg_.run().threads() == 0 && threads_ > 1 && P_ == 1) {
      Batch probe_batch;
      Loader::fill(loader_->options(), loader_->shard_set(), 0, &probe_batch);
      threads_ = fastest_thread_count(*model_, to, probe_batch.inputs.data(),
                                      probe_batch.targets.data(), threads_, [](int k, double t) {
                                        say("threads: auto: %d thread%s %.1f ms/step\n", k,
                                            k > 1 ? "s" : " ", t * 1e3);
                                      });
      to.threads = threads_;
      say("threads: auto: using %d (replicas fixed at %d, so results do not depend on it)\n",
          threads_, replicas_);
    }
    trainer_ = std::make_unique<Trainer>(*model_, to);
    adamw_ = to.optimizer == OptimizerKind::kAdamW;
  }

  // Checkpoints hold the whole optimizer state in parameter order. One process saves and loads
  // its own buffers; with several ranks, rank 0 gathers the state into full-size buffers for a
  // save (and reads a checkpoint into them, then scatters it), which exist only meanwhile.
  std::vector<NamedBuffer> state_buffers() {
    std::vector<NamedBuffer> b = {{"param/", model_->params()}};
    float* m = P_ == 1 ? trainer_->state_m() : full_m_.data();
    float* v = P_ == 1 ? trainer_->state_v() : full_v_.data();
    if (adamw_) {
      b.push_back({"adam_m/", m});
      b.push_back({"adam_v/", v});
    } else {
      b.push_back({"momentum/", m});
    }
    return b;
  }
  void allocate_full_state(bool on) {
    if (P_ == 1) return;
    full_m_.assign(on ? model_->num_params() : 0, 0.0f);
    full_v_.assign(on && adamw_ ? model_->num_params() : 0, 0.0f);
    if (!on) full_m_.shrink_to_fit(), full_v_.shrink_to_fit();
  }

  // ---- 3. run folder and resume (rank 0 reads; the others receive in start_or_resume) ----
  std::string checkpoints_dir() const { return cfg_.run().out_dir() + "/checkpoints"; }

  int open_run_folder_and_resume() {
    if (rank_ != 0) return 0;
    const std::string out = cfg_.run().out_dir(), ckpt_dir = checkpoints_dir();
    // Before the run folder is created, so that a mistyped path leaves nothing behind.
    if (int c = check_resume_flag()) return c;
    if (Status s = check_writable(out); !s.ok()) return fail(kExitBadInput, s.message());
    bool recovered = false;
    if (fs::is_directory(ckpt_dir)) {
      const LeftoverReport leftovers = clean_leftovers(ckpt_dir);
      for (const std::string& r : leftovers.recovered)
        say("recovered a complete checkpoint that an interrupted save had left aside: %s\n",
            r.c_str());
      if (leftovers.removed > 0)
        say("removed %d leftover(s) of an interrupted save in %s\n", leftovers.removed,
            ckpt_dir.c_str());
      recovered = !leftovers.recovered.empty();
    }
    if (int c = choose_checkpoint(recovered)) return c;
    if (shape_from_checkpoint_ && resume_from_.empty())  // removed meanwhile by someone else
      return fail(kExitResume, "the checkpoints in " + ckpt_dir +
                                   " changed while the run started (the model's shape was "
                                   "taken from " +
                                   early_checkpoint_ + ")\nHINT: run the command again");
    if (resume_from_.empty()) return 0;
    return load_resume_checkpoint();
  }

  int check_resume_flag() {
    if (req_.resume != "auto" && req_.resume != "none" && !fs::is_directory(req_.resume))
      return fail(kExitBadInput, "--resume " + req_.resume +
                                     ": no such checkpoint folder\nHINT: name a folder "
                                     "RUN/checkpoints/step_NNNNNNNN, or use --resume auto");
    return 0;
  }

  // resume_from_: the checkpoint that --resume asks for ("" = start afresh). With --resume auto,
  // choose_checkpoint_early()'s choice stands unless clean_leftovers() put a checkpoint back.
  int choose_checkpoint(bool leftovers_recovered) {
    const std::string ckpt_dir = checkpoints_dir();
    if (req_.resume == "auto") {
      std::vector<std::string> skipped;
      if (chosen_early_ && !leftovers_recovered) {
        resume_from_ = early_checkpoint_;
        skipped = early_skipped_;
      } else if (fs::is_directory(ckpt_dir)) {
        resume_from_ = find_latest_valid_checkpoint(ckpt_dir, &skipped);
      }
      for (const auto& why : skipped)
        say("skipping a checkpoint that does not verify: %s\n", why.c_str());
      if (resume_from_.empty() && !skipped.empty())
        say("no checkpoint in %s verifies: training starts again from step 0 (the %zu that do "
            "not verify are left in place and do not count among run.keep_checkpoints)\n",
            ckpt_dir.c_str(), skipped.size());
    } else if (req_.resume == "none") {
      std::vector<std::string> ignored;
      if (fs::is_directory(ckpt_dir) && !find_latest_valid_checkpoint(ckpt_dir, &ignored).empty())
        return fail(kExitBadInput, cfg_.run().out_dir() +
                                       " already holds checkpoints of a run\nHINT: continue it "
                                       "with --resume auto, or start afresh elsewhere with --out "
                                       "DIR");
    } else {
      resume_from_ = req_.resume;  // verified once, when it is loaded
    }
    return 0;
  }

  // Checks the checkpoint against the config and the data, then loads it (verifying every
  // tensor) into the model and the optimizer state.
  int load_resume_checkpoint() {
    StatusOr<proto::CheckpointManifest> m = read_checkpoint_manifest(resume_from_);
    if (!m.ok()) return fail(kExitResume, m.status().message());
    std::vector<std::string> notes;
    std::vector<std::string> bad = incompatible_changes(m->config(), cfg_, &notes);
    if (!bad.empty()) {
      std::string msg = "cannot resume from " + resume_from_ + ": the config changed incompatibly:";
      for (const auto& b : bad) msg += "\n  " + b;
      return fail(kExitResume,
                  msg + "\nHINT: restore these fields, or start a new run with --out DIR");
    }
    if (m->tokenizer_crc32c() != tokenizer_crc_)
      return fail(kExitResume,
                  "cannot resume from " + resume_from_ +
                      ": the data's tokenizer is not the one the run was trained with");
    for (const auto& n : notes)
      say("config change since the checkpoint (allowed): %s\n", n.c_str());
    allocate_full_state(true);
    m = load_checkpoint(resume_from_, *model_, state_buffers());
    if (!m.ok()) return fail(kExitResume, m.status().message());
    resume_ = {m->step(), m->data_cursor(), m->skipped_steps(), m->last_loss()};
    init_source_ = m->init_source();  // where step 0 came from stays on record
    return 0;
  }

  // Every rank: the resumed state from rank 0, the pretrained weights (rank 0 reads them), or a
  // fresh initialisation (the same bits on every rank).
  int start_or_resume() {
    comm_.broadcast_string(&resume_from_);
    if (resume_from_.empty() && pretrained_) {
      int code = 0;
      if (rank_ == 0) {
        // checked at start-up already: an error here means that the file changed meanwhile
        if (Status s = pretrained_->load_into(*model_); !s.ok())
          code = fail(kExitBadInput, s.message());
      }
      if (int c = agree(code)) return c;
      if (P_ > 1) comm_.broadcast_bytes(model_->params(), model_->num_params() * sizeof(float));
      say("weights: %s (%s, crc32c %08x); training starts from them at step 0\n",
          pretrained_->path().c_str(), pretrained_->format().c_str(), pretrained_->crc32c());
    } else if (resume_from_.empty()) {
      model_->init(cfg_.run().seed());
    } else {
      comm_.broadcast_bytes(&resume_, sizeof(resume_));
      if (P_ > 1) {
        comm_.broadcast_bytes(model_->params(), model_->num_params() * sizeof(float));
        trainer_->scatter_state(full_m_.data(), full_v_.data());
        allocate_full_state(false);
      }
      trainer_->set_steps_done(resume_.step);
      say("resumed from %s (step %ld)\n", resume_from_.c_str(), resume_.step);
      if (!cfg_.model().init_from().empty())
        say("model.init_from: not read again: a resumed run takes its weights and its shape "
            "from its checkpoint\n");
    }
    pretrained_.reset();  // unmaps the file
    data_cursor_ = resume_.data_cursor;
    skipped_total_ = resume_.skipped;
    return 0;
  }

  int open_metrics() {
    if (rank_ != 0) return 0;
    const std::string out = cfg_.run().out_dir();
    std::string text;
    google::protobuf::TextFormat::PrintToString(cfg_, &text);
    std::ofstream(out + "/config.textproto") << "# resolved config of this run\n" << text;
    StatusOr<MetricsLog> m =
        MetricsLog::open(out, resume_from_.empty() ? -1 : trainer_->steps_done());
    if (!m.ok()) return fail(kExitRuntime, m.status().message());
    metrics_.emplace(std::move(*m));
    return 0;
  }

  void print_start_lines() {
    const proto::RunConfig& run = cfg_.run();
    // The measurements first (the FMA peak for the progress line's MFU, the fp32 kernel's choice:
    // tens of ms), so that training starts right after the first line.
    peak_ = measure_fma_peak(3, 2'000'000);
    const std::string matmuls = sgemm_choice();
    const long tokens_per_step = tokens_per_step_count();
    const std::string per_replica = threads_per_replica_ > 1
                                        ? " (" + std::to_string(threads_ / threads_per_replica_) +
                                              " group(s) of " +
                                              std::to_string(threads_per_replica_) + " per replica)"
                                        : "";
    if (P_ > 1)
      say("skein: %s, %ld parameters, %d ranks x %d threads%s, %d replicas, %ld tokens/step, %ld "
          "steps\n",
          req_.config_path.c_str(), long(model_->num_params()), P_, threads_, per_replica.c_str(),
          replicas_, tokens_per_step, long(run.steps()));
    else
      say("skein: %s, %ld parameters, %d threads%s, %d replicas, %ld tokens/step, %ld steps\n",
          req_.config_path.c_str(), long(model_->num_params()), threads_, per_replica.c_str(),
          replicas_, tokens_per_step, long(run.steps()));
    say("memory%s: %s\n", P_ > 1 ? " per rank" : "", trainer_->memory().describe().c_str());
    say("matmuls: %s\n", matmuls.c_str());
    if (model_->matmul_precision() == MatmulPrecision::kBf16Rounded)
      say("precision: BF16_EMULATED: matmul operands rounded to bf16, fp32 sums (bf16's "
          "numerics, fp32's speed)\n");
    if (model_->matmul_precision() == MatmulPrecision::kBf16)
      say("precision: BF16: matmuls on %s (bf16 operands, fp32 sums); weights and "
          "optimizer state fp32\n",
          sgemm_bf16_choice().c_str());
  }

  long tokens_per_step_count() const { return long(lo_.B) * P_ * gcfg_.seq_len; }

  // ---- checkpoints and evaluation during training ----
  // Collective: every rank calls it; rank 0 writes.
  Status save(float last_loss) {
    if (!all_finite(model_->params(), model_->num_params()))  // the same on every rank
      return Status::error(
          "parameters hold NaN or Inf: no checkpoint written; the previous one is intact");
    if (P_ > 1) {
      allocate_full_state(rank_ == 0);
      trainer_->gather_state(full_m_.data(), full_v_.data());
    }
    Status s;
    if (rank_ == 0) {
      CheckpointInfo info;
      info.step = trainer_->steps_done();
      info.seed = cfg_.run().seed();
      info.data_cursor = data_cursor_;
      info.last_loss = last_loss;
      info.skipped_steps = skipped_total_;
      info.tokenizer_crc32c = tokenizer_crc_;
      info.config = cfg_;
      info.init_source = init_source_;
      std::string path;
      s = write_checkpoint(checkpoints_dir(), *model_, state_buffers(), info,
                           cfg_.run().keep_checkpoints(), &path);
      if (s.ok()) say("saved checkpoint %s\n", path.c_str());
    }
    allocate_full_state(false);
    return s;
  }

  double evaluate() {
    if (!val_) return NAN;
    val_->reset();
    Batch b;
    double sum = 0;
    int n = 0;
    while (n < cfg_.run().eval_batches() && val_->next(&b)) {
      sum += trainer_->evaluate(b.inputs.data(), b.targets.data());
      ++n;
    }
    return n ? sum / n : NAN;
  }

  // ---- 4. the loop ----
  int train_loop() {
    const proto::RunConfig& run = cfg_.run();
    const double peak = peak_;
    const double flops_per_token = training_flops_per_token(gcfg_, gcfg_.seq_len);
    const long tokens_per_step = tokens_per_step_count();
    const std::string out = run.out_dir();
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    loader_->start(data_cursor_);
    const double t_start = now_s();
    double window_t = now_s(), window_wait = loader_->wait_seconds(), window_comm = comm_.seconds();
    long window_steps = 0, consecutive_skips = 0;
    // a run resumed where it ended, or stopped before its first new step, reports (and re-saves)
    // its checkpoint's loss, not 0
    float last_loss = resume_.last_loss;
    const long first_step = trainer_->steps_done();
    while (trainer_->steps_done() < run.steps()) {
      // The ranks stop together: at the first step boundary after any of them got a signal.
      if (comm_.max(g_signals.load() > 0 ? 1 : 0)) {
        say("signal received: saving a checkpoint and stopping\n");
        if (Status s = save(last_loss); !s.ok()) return fail_job(kExitRuntime, s.message());
        say("stopped at step %ld. Resume with: train --config %s --out %s --resume auto\n",
            trainer_->steps_done(), req_.config_path.c_str(), out.c_str());
        return kExitOk;
      }
      const Batch& batch = loader_->next();
      ++data_cursor_;
      StepStats st = trainer_->step(batch.inputs.data(), batch.targets.data());
      if (st.skipped || !std::isfinite(st.loss)) {  // the same on every rank
        ++skipped_total_;
        ++consecutive_skips;
        say("step %ld: non-finite %s, update skipped (%ld skipped so far)\n",
            trainer_->steps_done() + 1, std::isfinite(st.loss) ? "gradient norm" : "loss",
            skipped_total_);
        if (run.on_nonfinite() == proto::RunConfig::STOP) {
          error_ = "non-finite loss or gradient at step " +
                   std::to_string(trainer_->steps_done() + 1) +
                   " (run.on_nonfinite = STOP); the last checkpoint is intact\nHINT: lower "
                   "optimizer.lr or set optimizer.max_grad_norm";
          return agree(kExitRuntime);
        }
        if (consecutive_skips >= run.max_skipped_steps()) {
          error_ = std::to_string(consecutive_skips) +
                   " steps in a row had a non-finite gradient (run.max_skipped_steps); the last "
                   "checkpoint is intact\nHINT: lower optimizer.lr";
          return agree(kExitRuntime);
        }
        continue;
      }
      consecutive_skips = 0;
      last_loss = st.loss;
      ++window_steps;
      const long step = trainer_->steps_done();
      if (step % run.log_every() == 0 || step == run.steps()) {
        const double t = now_s(), wait = loader_->wait_seconds(), comm_s = comm_.seconds();
        const double dt = t - window_t;
        Progress p;
        p.step = step;
        p.steps = run.steps();
        p.loss = st.loss;
        p.lr = st.lr;
        p.grad_norm = st.grad_norm;
        p.tokens_per_s = window_steps * tokens_per_step / dt;
        p.mfu = p.tokens_per_s * flops_per_token / (peak * threads_ * P_);
        p.wait_frac = (wait - window_wait) / dt;
        if (P_ > 1) p.comm_frac = (comm_s - window_comm) / dt;
        p.eta_s = (run.steps() - step) * dt / window_steps;
        say("%s\n", format_progress(p).c_str());
        std::fflush(stdout);
        if (metrics_) {
          Status s = metrics_->log_train({step, st.loss, st.lr, st.grad_norm, p.tokens_per_s, p.mfu,
                                          p.wait_frac, t - t_start});
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
        if (metrics_) {
          if (std::isfinite(vl)) {
            say("eval step %ld | val loss %.4f\n", step, vl);
            if (Status s = metrics_->log_eval(step, vl); !s.ok())
              return fail_job(kExitRuntime, s.message());
          }
          if (Status s = metrics_->write_plot(); !s.ok())
            return fail_job(kExitRuntime, s.message());
        }
      }
      if ((run.checkpoint_every() > 0 && step % run.checkpoint_every() == 0) || last) {
        if (Status s = save(last_loss); !s.ok()) return fail_job(kExitRuntime, s.message());
      }
    }
    say("done: %ld steps in %s (%ld this session), final loss %.4f, %ld skipped; run folder %s\n",
        trainer_->steps_done(), format_duration(now_s() - t_start).c_str(),
        trainer_->steps_done() - first_step, last_loss, skipped_total_, out.c_str());
    return kExitOk;
  }

  const TrainRequest& req_;
  Comm& comm_;
  const int P_, rank_;
  std::string error_;  // the message of the failing stage

  // stage 1
  proto::Config cfg_;
  GptConfig gcfg_;
  uint32_t tokenizer_crc_ = 0;                   // of the data's tokenizer.bin, 0 if none
  std::optional<PretrainedWeights> pretrained_;  // model.init_from, until start_or_resume
  proto::InitSource init_source_;                // for the manifests; empty: random init
  // model.init_from on a resume: the checkpoint's proto::ModelConfig (serialized; "" when the run
  // starts afresh), and whether the shape came from it; rank 0's choice with --resume auto
  std::string checkpoint_model_;
  bool shape_from_checkpoint_ = false;
  bool chosen_early_ = false;
  std::string early_checkpoint_;
  std::vector<std::string> early_skipped_;
  std::vector<std::string> train_shards_;
  std::vector<std::string> val_files_;  // the validation shards in use (none: no evaluation)
  int threads_ = 1, threads_per_replica_ = 1, replicas_ = 1;
  LoaderOptions lo_;
  std::unique_ptr<Loader> loader_;
  std::unique_ptr<ValIterator> val_;
  // stage 2
  std::optional<Model> model_;
  std::unique_ptr<Trainer> trainer_;
  bool adamw_ = true;
  std::vector<float> full_m_, full_v_;  // with several ranks: rank 0's whole optimizer state
  // stage 3
  std::string resume_from_;
  ResumePoint resume_;
  long data_cursor_ = 0, skipped_total_ = 0;
  std::optional<MetricsLog> metrics_;
  double peak_ = 0;  // FMA peak of one thread, FLOP/s
};

}  // namespace

int run_training(const TrainRequest& req) {
  static LocalComm alone;
  TrainingRun run(req, req.comm ? *req.comm : alone);
  return run.run();
}

}  // namespace skein
