#include "engine/config.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <cctype>
#include <climits>
#include <cmath>
#include <cstdio>
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

namespace {

// A rough reader of text-format structure, enough to explain the parser's errors: it walks the
// text (skipping strings and # comments) and keeps the stack of open blocks and the last field
// name seen, up to a stop position or to the end.
struct TextScan {
  struct Open {
    std::string name;
    int line;  // 0-based
  };
  std::vector<Open> open;  // blocks open at the stop
  std::string field;       // the last `name:` or `name {` before the stop
  int unmatched_close_line = -1;
};

TextScan scan_text(const std::string& text, int stop_line = INT32_MAX, int stop_col = 0) {
  TextScan s;
  std::string ident;
  int line = 0, col = 0;
  for (size_t i = 0; i < text.size(); ++i, ++col) {
    if (line > stop_line || (line == stop_line && col >= stop_col)) break;
    const char c = text[i];
    if (c == '\n') {
      ++line, col = -1;
      continue;
    }
    if (c == '\t') col += 7 - col % 8;  // as protobuf's tokenizer counts columns
    if (c == '#') {
      while (i + 1 < text.size() && text[i + 1] != '\n') ++i, ++col;
      continue;
    }
    if (c == '"' || c == '\'') {
      while (i + 1 < text.size() && text[i + 1] != c && text[i + 1] != '\n') {
        if (text[i + 1] == '\\' && i + 2 < text.size() && text[i + 2] != '\n') ++i, ++col;
        ++i, ++col;
      }
      if (i + 1 < text.size() && text[i + 1] == c) ++i, ++col;
      ident.clear();
      continue;
    }
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') {
      if (ident.empty() || std::isalnum(static_cast<unsigned char>(text[i - 1])) ||
          text[i - 1] == '_')
        ident += c;
      else
        ident = std::string(1, c);
      continue;
    }
    if (c == ':' && !ident.empty()) s.field = ident;
    if (c == '{') {
      if (!ident.empty()) s.field = ident;
      s.open.push_back({s.field, line});
    }
    if (c == '}') {
      if (s.open.empty())
        s.unmatched_close_line = line;
      else
        s.open.pop_back();
    }
    if (!std::isspace(static_cast<unsigned char>(c)) && c != ':') ident.clear();
  }
  return s;
}

// Collects the parser's messages as "FILE:LINE:COL: message" (1-based line and column), with
// what the text around them says: the field at the error, a block left open, a stray '}'.
class ExplainingCollector : public google::protobuf::io::ErrorCollector {
 public:
  ExplainingCollector(std::string file, const std::string& text)
      : file_(std::move(file)), text_(text) {}
  void AddError(int line, int column, const std::string& message) override {
    if (!first_.empty()) return;
    first_ =
        file_ + ":" + std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " + message;
    const TextScan whole = scan_text(text_);
    if (!whole.open.empty()) {
      const size_t n = whole.open.size();
      first_ += n == 1 ? "\n  a '}' is missing: the block "
                       : "\n  " + std::to_string(n) + " '}' are missing: the blocks ";
      for (size_t i = 0; i < n; ++i) {
        const TextScan::Open& b = whole.open[i];
        first_ += (i ? ", " : "") + std::string("'") + (b.name.empty() ? "" : b.name + " ") +
                  "{' opened at line " + std::to_string(b.line + 1);
      }
      first_ += n == 1 ? " is never closed" : " are never closed";
      return;
    }
    if (whole.unmatched_close_line >= 0) {
      first_ += "\n  line " + std::to_string(whole.unmatched_close_line + 1) +
                " has a '}' that closes no block";
      return;
    }
    // The field being parsed at the error, with its path and type. Not for an unknown or a
    // repeated field: the parser names it itself, at the ':' after it.
    if (message.find("has no field named") != std::string::npos ||
        message.find("specified multiple times") != std::string::npos)
      return;
    const TextScan here = scan_text(text_, line, column);
    if (here.field.empty()) return;
    const Descriptor* d = proto::Config::descriptor();
    std::string path;
    for (const TextScan::Open& o : here.open) {
      const FieldDescriptor* f = d ? d->FindFieldByName(o.name) : nullptr;
      d = f && f->message_type() ? f->message_type() : nullptr;
      path += o.name + ".";
    }
    const FieldDescriptor* f = d ? d->FindFieldByName(here.field) : nullptr;
    if (!f) return;  // the parser's own message names an unknown field
    path += here.field;
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) return;
    first_ +=
        "\n  in field " + path + ", which takes " +
        (f->cpp_type() == FieldDescriptor::CPPTYPE_ENUM
             ? "one of the names of " + std::string(f->enum_type()->name())
             : std::string(f->is_repeated() ? "repeated values of type " : "a value of type ") +
                   f->type_name()) +
        " (see proto/skein.proto)";
  }
  void AddWarning(int, int, const std::string&) override {}
  const std::string& first() const { return first_; }

 private:
  std::string file_;
  const std::string& text_;
  std::string first_;
};

// Where the bytes stop looking like text: a NUL, a control character other than tab, newline
// or carriage return, or a byte sequence that is not UTF-8. -1 if they are text.
long first_non_text_byte(const std::string& t) {
  for (size_t i = 0; i < t.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(t[i]);
    if (c < 0x80) {
      if (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v') return long(i);
      if (c == 0x7f) return long(i);
      continue;
    }
    const int extra = (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
    if (extra < 0 || c == 0xC0 || c == 0xC1 || i + size_t(extra) >= t.size()) return long(i);
    for (int k = 1; k <= extra; ++k)
      if ((static_cast<unsigned char>(t[i + k]) & 0xC0) != 0x80) return long(i);
    i += size_t(extra);
  }
  return -1;
}

}  // namespace

StatusOr<proto::Config> parse_config_text(const std::string& text, const std::string& filename) {
  if (const long at = first_non_text_byte(text); at >= 0) {
    char byte[8];
    std::snprintf(byte, sizeof(byte), "0x%02x", static_cast<unsigned char>(text[size_t(at)]));
    return Status::error(filename + " is not a text config: byte " + std::to_string(at) + " is " +
                         byte +
                         ", which no text file holds (a binary file such as a "
                         "checkpoint or a token shard?)\nHINT: a config is protobuf text "
                         "format, like configs/demo.textproto; the schema is proto/skein.proto");
  }
  proto::Config cfg;
  google::protobuf::TextFormat::Parser parser;
  ExplainingCollector errors(filename, text);
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &cfg)) {
    return Status::error(errors.first() +
                         "\nHINT: the schema with every field, its unit and default is "
                         "proto/skein.proto");
  }
  return cfg;
}

StatusOr<proto::Config> load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
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

namespace {
// Every float and double field, set or default, at any depth, must be finite: NaN or infinity
// from a file or from --set would otherwise surface only as skipped steps.
Status check_finite(const Message& msg, const std::string& prefix) {
  const Descriptor* d = msg.GetDescriptor();
  const Reflection* r = msg.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const std::string name = prefix + f->name();
    if (f->is_repeated()) continue;
    double v = 0;
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_MESSAGE:
        if (r->HasField(msg, f))
          SKEIN_RETURN_IF_ERROR(check_finite(r->GetMessage(msg, f), name + "."));
        continue;
      case FieldDescriptor::CPPTYPE_FLOAT:
        v = r->GetFloat(msg, f);
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        v = r->GetDouble(msg, f);
        break;
      default:
        continue;
    }
    if (!std::isfinite(v))
      return field_error(name, std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"),
                         "must be a finite number");
  }
  return Status();
}
}  // namespace

// The family's own fields: the Llama ones only with arch: LLAMA, and in range.
Status validate_arch(const proto::ModelConfig& m) {
  if (m.arch() == proto::ModelConfig::GPT2) {
    const std::pair<bool, const char*> llama_only[] = {
        {m.has_n_kv_head(), "model.n_kv_head"},
        {m.has_ffn_dim(), "model.ffn_dim"},
        {m.has_rope_theta(), "model.rope_theta"},
        {m.has_norm_eps(), "model.norm_eps"},
        {m.has_tie_embeddings(), "model.tie_embeddings"}};
    for (const auto& [set, field] : llama_only)
      if (set)
        return field_error(field, "set",
                           "applies to arch: LLAMA only (GPT-2 has multi-head attention, a 4 x "
                           "d_model GELU MLP, LayerNorm with epsilon 1e-5 and a tied output)");
    return Status();
  }
  if (m.has_n_kv_head() && (m.n_kv_head() <= 0 || m.n_head() % m.n_kv_head() != 0))
    return field_error("model.n_kv_head", std::to_string(m.n_kv_head()),
                       "must be positive and divide model.n_head = " + std::to_string(m.n_head()));
  if (m.has_ffn_dim() && (m.ffn_dim() <= 0 || m.ffn_dim() > (1 << 20)))
    return field_error("model.ffn_dim", std::to_string(m.ffn_dim()), "must be in 1..1048576");
  if (!(m.rope_theta() > 1))
    return field_error("model.rope_theta", std::to_string(m.rope_theta()), "must be > 1");
  if (!(m.norm_eps() > 0 && m.norm_eps() < 1))
    return field_error("model.norm_eps", std::to_string(m.norm_eps()), "must be in (0, 1)");
  if ((m.d_model() / m.n_head()) % 2 != 0)
    return field_error("model.d_model", std::to_string(m.d_model()),
                       "rotary embeddings need an even head size, and d_model / n_head = " +
                           std::to_string(m.d_model() / m.n_head()));
  return Status();
}

Status validate_config(const proto::Config& cfg) {
  SKEIN_RETURN_IF_ERROR(check_finite(cfg, ""));
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
  // with model.init_from, the weights' shape is checked against the config's once it is read
  if (m.init_from().empty() && m.d_model() % m.n_head() != 0)
    return field_error("model.d_model", std::to_string(m.d_model()),
                       "must be divisible by model.n_head = " + std::to_string(m.n_head()));
  SKEIN_RETURN_IF_ERROR(validate_arch(m));
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
  if (r.threads_per_replica() < 0)
    return field_error("run.threads_per_replica", std::to_string(r.threads_per_replica()),
                       "must be >= 0 (0 = auto)");
  if (r.threads_per_replica() > 0 && r.threads() > 0 && r.threads() % r.threads_per_replica() != 0)
    return field_error("run.threads_per_replica", std::to_string(r.threads_per_replica()),
                       "must divide run.threads = " + std::to_string(r.threads()));
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

StatusOr<proto::Config> resolve_config(const std::string& path,
                                       const std::vector<std::string>& overrides,
                                       const std::string& out_dir, bool* file_sets_nothing,
                                       const std::string& init_from) {
  StatusOr<proto::Config> loaded = load_config(path);
  if (!loaded.ok()) return loaded.status();
  proto::Config cfg = *loaded;
  *file_sets_nothing = cfg.ByteSizeLong() == 0;
  for (const std::string& o : overrides) SKEIN_RETURN_IF_ERROR(apply_override(&cfg, o));
  if (!out_dir.empty()) cfg.mutable_run()->set_out_dir(out_dir);
  if (!init_from.empty()) cfg.mutable_model()->set_init_from(init_from);
  if (Status s = validate_config(cfg); !s.ok()) return Status::error(path + ": " + s.message());
  return cfg;
}

TrainerOptions trainer_options(const proto::Config& cfg) {
  const proto::RunConfig& run = cfg.run();
  const proto::OptimizerConfig& oc = cfg.optimizer();
  TrainerOptions to;
  to.batch_size = run.batch_size();
  to.seq_len = cfg.model().seq_len();
  to.grad_accum_steps = run.grad_accum_steps();
  to.team = run.team();
  to.optimizer =
      oc.kind() == proto::OptimizerConfig::SGD ? OptimizerKind::kSgd : OptimizerKind::kAdamW;
  to.adamw = {oc.lr(), oc.beta1(), oc.beta2(), oc.eps(), oc.weight_decay()};
  to.sgd = {oc.lr(), oc.momentum(), oc.nesterov(), oc.weight_decay()};
  to.schedule = {cfg.schedule().kind() == proto::ScheduleConfig::COSINE ? ScheduleKind::kCosine
                                                                        : ScheduleKind::kConstant,
                 oc.lr(), cfg.schedule().min_lr(), cfg.schedule().warmup_steps(), run.steps()};
  to.max_grad_norm = oc.max_grad_norm();
  return to;
}

namespace {
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

// model.init_from is read only when a run starts at step 0: a resumed run takes its weights and
// its shape from its checkpoint (training_run.cc), so another path there changes nothing.
bool is_incompatible(const std::string& field) {
  return (field.rfind("model.", 0) == 0 && field != "model.init_from") || field == "optimizer.kind";
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

GptConfig gpt_config(const proto::ModelConfig& m) {
  GptConfig c{m.vocab_size(), m.seq_len(), m.n_layer(), m.n_head(), m.d_model()};
  if (m.arch() != proto::ModelConfig::LLAMA) return c;
  c = llama_blocks(c);
  c.n_kv_head = m.has_n_kv_head() ? m.n_kv_head() : m.n_head();
  c.ffn_dim = m.has_ffn_dim() ? m.ffn_dim() : (8 * m.d_model() / 3 + 31) / 32 * 32;
  c.rope_theta = m.rope_theta();
  c.norm_eps = m.norm_eps();
  c.tied = m.tie_embeddings();
  return c;
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
