#include "engine/config.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <fstream>
#include <sstream>

namespace skein {

namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// Collects the parser's messages as "FILE:LINE:COL: message" (1-based line and column).
class ErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  explicit ErrorCollector(std::string file) : file_(std::move(file)) {}
  void AddError(int line, int column, const std::string& message) override {
    if (!first_.empty()) return;
    first_ =
        file_ + ":" + std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " + message;
  }
  void AddWarning(int, int, const std::string&) override {}
  const std::string& first() const { return first_; }

 private:
  std::string file_;
  std::string first_;
};

Status field_error(const std::string& field, const std::string& value, const std::string& rule) {
  return Status::error("config field " + field + " = " + value + ": " + rule);
}

}  // namespace

StatusOr<proto::Config> parse_config_text(const std::string& text, const std::string& filename) {
  proto::Config cfg;
  google::protobuf::TextFormat::Parser parser;
  ErrorCollector errors(filename);
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &cfg)) {
    return Status::error(errors.first() +
                         "\nHINT: the schema with every field, its unit and default is "
                         "proto/skein.proto");
  }
  return cfg;
}

StatusOr<proto::Config> load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    return Status::error("cannot read config file " + path + ": no such file or not readable");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config_text(ss.str(), path);
}

Status apply_override(proto::Config* cfg, const std::string& assignment) {
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    return Status::error("--set " + assignment +
                         ": expected path.to.field=value, e.g. run.steps=100");
  const std::string path = assignment.substr(0, eq), value = assignment.substr(eq + 1);
  // Walk "a.b.c": all but the last component are sub-messages.
  Message* msg = cfg;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string name =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const FieldDescriptor* f = msg->GetDescriptor()->FindFieldByName(name);
    if (!f) {
      return Status::error("--set " + assignment + ": " + msg->GetDescriptor()->name() +
                           " has no field '" + name + "' (see proto/skein.proto)");
    }
    if (dot == std::string::npos) {
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE || f->is_repeated())
        return Status::error("--set " + assignment + ": " + path + " is not a scalar field");
      // Reuse the text-format parser for the value, so types and enums are checked alike.
      std::string quoted =
          f->cpp_type() == FieldDescriptor::CPPTYPE_STRING ? "\"" + value + "\"" : value;
      google::protobuf::TextFormat::Parser parser;
      ErrorCollector errors("--set " + assignment);
      parser.RecordErrorsTo(&errors);
      if (!parser.ParseFieldValueFromString(quoted, f, msg))
        return Status::error("--set " + assignment + ": '" + value + "' is not a valid " +
                             f->type_name() + " for " + path);
      return Status();
    }
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE)
      return Status::error("--set " + assignment + ": " + name + " is not a message");
    msg = msg->GetReflection()->MutableMessage(msg, f);
    start = dot + 1;
  }
}

Status validate_config(const proto::Config& cfg) {
  const auto& m = cfg.model();
  auto positive = [](const std::string& field, long v) -> Status {
    if (v <= 0) return field_error(field, std::to_string(v), "must be positive");
    return Status();
  };
  SKEIN_RETURN_IF_ERROR(positive("model.vocab_size", m.vocab_size()));
  SKEIN_RETURN_IF_ERROR(positive("model.seq_len", m.seq_len()));
  SKEIN_RETURN_IF_ERROR(positive("model.n_layer", m.n_layer()));
  SKEIN_RETURN_IF_ERROR(positive("model.n_head", m.n_head()));
  SKEIN_RETURN_IF_ERROR(positive("model.d_model", m.d_model()));
  if (m.vocab_size() > 65536)
    return field_error("model.vocab_size", std::to_string(m.vocab_size()),
                       "token shards hold uint16 tokens, so at most 65536");
  if (m.d_model() % m.n_head() != 0)
    return field_error("model.d_model", std::to_string(m.d_model()),
                       "must be divisible by model.n_head = " + std::to_string(m.n_head()));
  const auto& o = cfg.optimizer();
  if (!(o.lr() >= 0)) return field_error("optimizer.lr", std::to_string(o.lr()), "must be >= 0");
  if (!(o.beta1() >= 0 && o.beta1() < 1))
    return field_error("optimizer.beta1", std::to_string(o.beta1()), "must be in [0, 1)");
  if (!(o.beta2() >= 0 && o.beta2() < 1))
    return field_error("optimizer.beta2", std::to_string(o.beta2()), "must be in [0, 1)");
  if (!(o.eps() > 0)) return field_error("optimizer.eps", std::to_string(o.eps()), "must be > 0");
  if (!(o.weight_decay() >= 0))
    return field_error("optimizer.weight_decay", std::to_string(o.weight_decay()), "must be >= 0");
  if (!(o.momentum() >= 0 && o.momentum() < 1))
    return field_error("optimizer.momentum", std::to_string(o.momentum()), "must be in [0, 1)");
  if (o.nesterov() && o.momentum() == 0)
    return field_error("optimizer.nesterov", "true", "needs optimizer.momentum > 0");
  if (!(o.max_grad_norm() >= 0))
    return field_error("optimizer.max_grad_norm", std::to_string(o.max_grad_norm()),
                       "must be >= 0 (0 turns clipping off)");
  const auto& s = cfg.schedule();
  if (s.warmup_steps() < 0)
    return field_error("schedule.warmup_steps", std::to_string(s.warmup_steps()), "must be >= 0");
  if (!(s.min_lr() >= 0 && s.min_lr() <= o.lr()))
    return field_error("schedule.min_lr", std::to_string(s.min_lr()),
                       "must be in [0, optimizer.lr = " + std::to_string(o.lr()) + "]");
  const auto& r = cfg.run();
  if (r.threads() < 0)
    return field_error("run.threads", std::to_string(r.threads()), "must be >= 0 (0 = auto)");
  if (r.replicas() < 0)
    return field_error("run.replicas", std::to_string(r.replicas()), "must be >= 0 (0 = threads)");
  SKEIN_RETURN_IF_ERROR(positive("run.batch_size", r.batch_size()));
  SKEIN_RETURN_IF_ERROR(positive("run.grad_accum_steps", r.grad_accum_steps()));
  SKEIN_RETURN_IF_ERROR(positive("run.steps", r.steps()));
  if (r.replicas() > 0 && r.batch_size() % r.replicas() != 0)
    return field_error("run.batch_size", std::to_string(r.batch_size()),
                       "must be divisible by run.replicas = " + std::to_string(r.replicas()));
  if (r.team() != "omp" && r.team() != "pool")
    return field_error("run.team", "\"" + r.team() + "\"", "must be \"omp\" or \"pool\"");
  if (r.log_every() <= 0)
    return field_error("run.log_every", std::to_string(r.log_every()), "must be positive");
  if (r.eval_every() < 0)
    return field_error("run.eval_every", std::to_string(r.eval_every()),
                       "must be >= 0 (0 = only at the end)");
  if (r.eval_batches() < 0)
    return field_error("run.eval_batches", std::to_string(r.eval_batches()),
                       "must be >= 0 (0 = no evaluation)");
  if (r.checkpoint_every() < 0)
    return field_error("run.checkpoint_every", std::to_string(r.checkpoint_every()),
                       "must be >= 0 (0 = only at the end)");
  if (r.keep_checkpoints() < 1)
    return field_error("run.keep_checkpoints", std::to_string(r.keep_checkpoints()),
                       "must be >= 1");
  if (r.out_dir().empty()) return field_error("run.out_dir", "\"\"", "must name a folder");
  if (r.max_skipped_steps() < 1)
    return field_error("run.max_skipped_steps", std::to_string(r.max_skipped_steps()),
                       "must be >= 1");
  if (!(r.comm_timeout_s() > 0))
    return field_error("run.comm_timeout_s", std::to_string(r.comm_timeout_s()),
                       "must be positive (seconds)");
  if (cfg.data().prefetch() <= 0)
    return field_error("data.prefetch", std::to_string(cfg.data().prefetch()), "must be positive");
  if (cfg.data().loader_threads() <= 0)
    return field_error("data.loader_threads", std::to_string(cfg.data().loader_threads()),
                       "must be positive");
  return Status();
}

GptConfig gpt_config(const proto::ModelConfig& m) {
  return {m.vocab_size(), m.seq_len(), m.n_layer(), m.n_head(), m.d_model()};
}

MatmulPrecision matmul_precision_for(proto::RunConfig::Precision p, std::string* note) {
  note->clear();
  switch (p) {
    case proto::RunConfig::FP32:
      return MatmulPrecision::kFp32;
    case proto::RunConfig::BF16_EMULATED:
      return MatmulPrecision::kBf16Rounded;
    case proto::RunConfig::BF16:
      break;
  }
  // The vdpbf16ps kernel only where the CPU has it and it passes its check against the
  // portable kernel; otherwise fp32, saying why.
  const std::string why_not = bf16_self_check();
  if (why_not.empty()) return MatmulPrecision::kBf16;
  *note = "run.precision = BF16: " + why_not +
          ", so the matmuls run in fp32 (BF16_EMULATED gives bf16's numerics at fp32 speed)";
  return MatmulPrecision::kFp32;
}

}  // namespace skein
