// train: trains a GPT from a config file. Argument parsing only; the run is engine/training_run.
#include <cstdio>
#include <cstring>
#include <new>
#include <string>

#include "engine/comm.h"
#include "engine/training_run.h"

namespace {

const char kHelp[] =
    R"(usage: train --config FILE [--set path.to.field=value ...] [--resume auto|none|PATH]
             [--out DIR] [--init_from PATH]

Trains a GPT as the config file says (protobuf text format; the schema with every field, its unit
and default is proto/skein.proto). Everything is checked before anything is allocated or written.

  --config FILE        the config (required)
  --set FIELD=VALUE    override one field, e.g. --set run.steps=100 --set optimizer.lr=3e-4
                       (repeatable)
  --resume MODE        auto (default): continue from the newest checkpoint in DIR/checkpoints that
                       verifies, or start afresh if there is none;
                       none: start afresh (refused if DIR already holds checkpoints);
                       PATH: continue from that checkpoint folder
  --out DIR            the run folder (default: run.out_dir of the config)
  --init_from PATH     start from pretrained GPT-2 weights (sets model.init_from): a Hugging Face
                       folder with model.safetensors and config.json (F32, F16 or BF16), a
                       .safetensors file with config.json beside it, or an llm.c model file
                       (gpt2_124M.bin, version 3 or 5). The file decides the model's shape: leave
                       model.vocab_size, n_layer, n_head and d_model unset (model.seq_len may be
                       shorter than its context). Training starts at step 0 with fresh optimizer
                       state; the checkpoints record the file and its CRC-32C. A resumed run
                       takes its weights from its checkpoint, not from the file.
  --help               this text

The run folder gets config.textproto (the resolved config), metrics.jsonl, loss.svg and
checkpoints/. Under mpirun (mpirun -np P train ...) the P processes train one model on their shares
of each batch; rank 0 prints and writes. README.md, "Several processes and machines", says how.
SIGINT or SIGTERM (Ctrl-C) finishes the current step, saves a checkpoint and exits 0;
a second one exits at once, leaving the last complete checkpoint intact.

exit codes:
  0    finished, or stopped by a signal after saving
  1    error during training (I/O, disk full, non-finite loss with run.on_nonfinite = STOP)
  2    bad flags, config, data, --init_from weights or run folder; nothing was written
  3    resume refused: incompatible config change, or the checkpoint does not verify
  130  stopped by a second signal
)";

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "error: %s\nrun 'train --help' for usage\n", msg.c_str());
  return skein::kExitBadInput;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines reach a log file as they happen
  skein::TrainRequest req;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    std::string v;
    if (a == "--help" || a == "-h") {
      std::fputs(kHelp, stdout);
      return 0;
    } else if (a == "--config") {
      if (!value(&req.config_path)) return usage_error("--config needs a file");
    } else if (a == "--set") {
      if (!value(&v)) return usage_error("--set needs path.to.field=value");
      req.overrides.push_back(v);
    } else if (a == "--resume") {
      if (!value(&req.resume))
        return usage_error("--resume needs auto, none or a checkpoint folder");
    } else if (a == "--out") {
      if (!value(&req.out_dir)) return usage_error("--out needs a folder");
    } else if (a == "--init_from") {
      if (!value(&req.init_from) || req.init_from.empty())
        return usage_error("--init_from needs a model file or folder");
    } else {
      return usage_error("unknown argument '" + a + "'");
    }
  }
  if (req.config_path.empty()) return usage_error("--config FILE is required");
  req.comm = skein::world_comm();  // the MPI job when started by mpirun, else this process
  int code;
  try {
    code = skein::run_training(req);
  } catch (const std::bad_alloc&) {
    // The memory check at start-up makes this rare: another process took the memory meanwhile.
    std::fprintf(stderr,
                 "error: out of memory (an allocation failed); the last checkpoint is intact\n"
                 "HINT: free memory or train a smaller model\n");
    code = skein::kExitRuntime;
    // under mpirun the other ranks wait in a collective: end the job rather than finalize
    if (req.comm && req.comm->size() > 1) req.comm->abort(code);
  }
  skein::finalize_world_comm();
  return code;
}
