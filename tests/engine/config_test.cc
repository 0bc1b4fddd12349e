#include "engine/config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

namespace skein {
namespace {

struct BadConfig {
  const char* what;
  const char* text;
  const char* message;  // a piece the error must contain
};

// Each bad config must be refused with a message that names the place (file:line:col for syntax,
// the field and value for semantics).
const BadConfig kBad[] = {
    {"syntax error", "model { vocab_size: 256 ", "bad.textproto:1:25"},
    {"unknown field", "model {\n  vocab_sise: 256\n}",
     "bad.textproto:2:13: Message type \"skein.proto.ModelConfig\" has no field named "
     "\"vocab_sise\""},
    {"unknown section", "modle { }",
     "bad.textproto:1:7: Message type \"skein.proto.Config\" has no field named \"modle\""},
    {"wrong type", "run { steps: \"many\" }", "bad.textproto:1:14"},
    {"negative into unsigned", "run { seed: -1 }", "bad.textproto:1:13"},
    {"unknown enum", "optimizer { kind: ADAM }",
     "bad.textproto:1:24: Unknown enumeration value of \"ADAM\""},
    {"heads do not divide", "model { d_model: 100 n_head: 3 }",
     "model.d_model = 100: must be divisible by model.n_head = 3"},
    {"zero layers", "model { n_layer: 0 }", "model.n_layer = 0: must be positive"},
    {"negative seq_len", "model { seq_len: -4 }", "model.seq_len = -4: must be positive"},
    {"vocab too large", "model { vocab_size: 70000 }", "model.vocab_size = 70000"},
    {"negative lr", "optimizer { lr: -0.1 }", "optimizer.lr"},
    {"beta1 of one", "optimizer { beta1: 1.0 }", "optimizer.beta1"},
    {"zero eps", "optimizer { eps: 0 }", "optimizer.eps"},
    {"nesterov without momentum", "optimizer { kind: SGD momentum: 0 nesterov: true }",
     "optimizer.nesterov"},
    {"negative clip", "optimizer { max_grad_norm: -1 }", "optimizer.max_grad_norm"},
    {"min_lr above lr", "optimizer { lr: 0.001 } schedule { min_lr: 0.01 }", "schedule.min_lr"},
    {"negative warmup", "schedule { warmup_steps: -5 }", "schedule.warmup_steps = -5"},
    {"batch not divisible by replicas", "run { batch_size: 10 replicas: 4 }",
     "run.batch_size = 10: must be divisible by run.replicas = 4"},
    {"zero steps", "run { steps: 0 }", "run.steps = 0"},
    {"zero accumulation", "run { grad_accum_steps: 0 }", "run.grad_accum_steps = 0"},
    {"negative threads", "run { threads: -2 }", "run.threads = -2"},
    {"unknown team", "run { team: \"mpi\" }", "run.team = \"mpi\""},
    {"zero prefetch", "data { prefetch: 0 }", "data.prefetch = 0"},
    {"zero keep", "run { keep_checkpoints: 0 }", "run.keep_checkpoints = 0: must be >= 1"},
    {"empty out_dir", "run { out_dir: \"\" }", "run.out_dir"},
    {"unknown policy", "run { on_nonfinite: IGNORE }",
     "bad.textproto:1:28: Unknown enumeration value of \"IGNORE\""},
    // a block left open at the end: the parser only says "Expected identifier, got: "
    {"unclosed brace", "model { vocab_size: 256 }\nrun {\n  steps: 3\n\n\n",
     "a '}' is missing: the block 'run {' opened at line 2 is never closed"},
    {"two unclosed braces", "model {\n run {\n",
     "2 '}' are missing: the blocks 'model {' opened at line 1, 'run {' opened at line 2"},
    {"stray brace", "run { steps: 3 }\n}\n", "line 2 has a '}' that closes no block"},
    {"float for an integer", "run {\n  batch_size: 64.5\n}",
     "in field run.batch_size, which takes a value of type int32"},
    {"float after a tab", "run {\n\tsteps: 3\tbatch_size: 6.5\n}",
     "in field run.batch_size, which takes a value of type int32"},
    {"bad enum names its field", "run { precision: FP64 }",
     "in field run.precision, which takes one of the names of Precision"},
    {"binary file", "\x89PNG\r\n\x1a\n\x00\x00",
     "bad.textproto is not a text config: byte 0 is 0x89"},
    {"control byte", "run { steps: 3 }\x01", "is not a text config: byte 16 is 0x01"},
    {"infinite lr", "optimizer { lr: inf }", "optimizer.lr = inf: must be a finite number"},
    {"nan clip", "optimizer { max_grad_norm: nan }",
     "optimizer.max_grad_norm = nan: must be a finite number"},
    {"-inf timeout", "run { comm_timeout_s: -inf }",
     "run.comm_timeout_s = -inf: must be a finite number"},
    {"Llama field on GPT-2", "model { n_kv_head: 2 }",
     "model.n_kv_head = set: applies to arch: LLAMA only"},
    {"untied GPT-2", "model { tie_embeddings: false }", "model.tie_embeddings = set"},
    {"kv heads do not divide", "model { arch: LLAMA n_head: 6 n_kv_head: 4 }",
     "model.n_kv_head = 4: must be positive and divide model.n_head = 6"},
    {"zero kv heads", "model { arch: LLAMA n_kv_head: 0 }", "model.n_kv_head = 0"},
    {"negative ffn", "model { arch: LLAMA ffn_dim: -1 }", "model.ffn_dim = -1: must be in 1.."},
    {"huge ffn", "model { arch: LLAMA ffn_dim: 1073741824 }", "model.ffn_dim = 1073741824"},
    {"odd head size", "model { arch: LLAMA d_model: 18 n_head: 2 }",
     "rotary embeddings need an even head size, and d_model / n_head = 9"},
    {"zero norm eps", "model { arch: LLAMA norm_eps: 0 }", "model.norm_eps = 0"},
    {"rope base of one", "model { arch: LLAMA rope_theta: 1 }", "model.rope_theta = 1"},
};

void PrintTo(const BadConfig& c, std::ostream* os) {
  *os << c.what;
}

class BadConfigTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(BadConfigTest, IsRefusedWithAClearMessage) {
  const BadConfig& c = GetParam();
  StatusOr<proto::Config> cfg = parse_config_text(c.text, "bad.textproto");
  Status s = cfg.ok() ? validate_config(*cfg) : cfg.status();
  ASSERT_FALSE(s.ok()) << c.what;
  EXPECT_NE(s.message().find(c.message), std::string::npos)
      << c.what << "\n  message: " << s.message() << "\n  expected to contain: " << c.message;
}

INSTANTIATE_TEST_SUITE_P(Table, BadConfigTest, ::testing::ValuesIn(kBad));

TEST(Config, ShippedConfigsAreValid) {
  for (const char* path :
       {"configs/char.textproto", "configs/gpt2.textproto", "configs/small.textproto",
        "configs/smollm135.textproto", "configs/llama_char.textproto"}) {
    StatusOr<proto::Config> cfg = load_config(path);
    ASSERT_TRUE(cfg.ok()) << cfg.status().message();
    EXPECT_TRUE(validate_config(*cfg).ok()) << path << ": " << validate_config(*cfg).message();
  }
}

// arch: LLAMA gives the model Llama's blocks and its own fields; GPT2 (the default) GPT-2's.
TEST(Config, ArchSelectsTheBlocks) {
  StatusOr<proto::Config> gpt = parse_config_text("", "gpt");
  ASSERT_TRUE(gpt.ok());
  const GptConfig g = gpt_config(gpt->model());
  EXPECT_EQ(g.arch, Arch::kGpt2);
  EXPECT_EQ(g.norm, Norm::kLayerNorm);
  EXPECT_EQ(g.position, Position::kLearned);
  EXPECT_EQ(g.mlp, Mlp::kGelu);
  EXPECT_TRUE(g.biases && g.tied);
  EXPECT_EQ(g.kv_heads(), g.n_head);
  EXPECT_EQ(g.ffn(), 4 * g.d_model);

  StatusOr<proto::Config> llama = load_config("configs/smollm135.textproto");
  ASSERT_TRUE(llama.ok()) << llama.status().message();
  const GptConfig l = gpt_config(llama->model());
  EXPECT_EQ(l.arch, Arch::kLlama);
  EXPECT_EQ(l.norm, Norm::kRmsNorm);
  EXPECT_EQ(l.position, Position::kRotary);
  EXPECT_EQ(l.mlp, Mlp::kSwiGlu);
  EXPECT_FALSE(l.biases);
  EXPECT_TRUE(l.tied);
  EXPECT_EQ(l.kv_heads(), 3);
  EXPECT_EQ(l.ffn(), 1536);
  EXPECT_EQ(l.qkv_width(), (9 + 2 * 3) * 64);
  EXPECT_EQ(l.rope_theta, 10000);
  EXPECT_EQ(l.norm_eps, 1e-5);
  // SmolLM-135M: 134.5M parameters
  EXPECT_NEAR(Model::num_params_for(l) / 1e6, 134.5, 0.1);

  // defaults: n_kv_head = n_head, F = 8/3 d_model rounded up to a multiple of 32, untied on ask
  StatusOr<proto::Config> d =
      parse_config_text("model { arch: LLAMA d_model: 200 n_head: 4 tie_embeddings: false }", "d");
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(validate_config(*d).ok()) << validate_config(*d).message();
  const GptConfig dc = gpt_config(d->model());
  EXPECT_EQ(dc.kv_heads(), 4);
  EXPECT_EQ(dc.ffn(), 544);  // 533.3 -> 544
  EXPECT_FALSE(dc.tied);
}

TEST(Config, DefaultsComeFromTheSchema) {
  StatusOr<proto::Config> cfg = parse_config_text("", "empty");
  ASSERT_TRUE(cfg.ok());
  EXPECT_EQ(cfg->model().d_model(), 384);
  EXPECT_EQ(cfg->run().batch_size(), 8);
  EXPECT_FLOAT_EQ(cfg->optimizer().beta2(), 0.95f);
  EXPECT_TRUE(validate_config(*cfg).ok());
}

// run.precision: FP32 and BF16_EMULATED as asked; BF16 gets the vdpbf16ps kernel where it runs
// and passes its check, else fp32 with a line that says why.
TEST(Config, PrecisionMapsToTheMatmulArithmetic) {
  StatusOr<proto::Config> cfg = parse_config_text("run { precision: BF16_EMULATED }", "p");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  std::string note = "stale";
  EXPECT_EQ(matmul_precision_for(cfg->run().precision(), &note), MatmulPrecision::kBf16Rounded);
  EXPECT_EQ(note, "");
  EXPECT_EQ(matmul_precision_for(proto::RunConfig::FP32, &note), MatmulPrecision::kFp32);
  EXPECT_EQ(note, "");
  const MatmulPrecision bf16 = matmul_precision_for(proto::RunConfig::BF16, &note);
  if (cpu_has_avx512_bf16()) {
    EXPECT_EQ(bf16, MatmulPrecision::kBf16) << note;
    EXPECT_EQ(note, "");
  } else {
    EXPECT_EQ(bf16, MatmulPrecision::kFp32);
    EXPECT_NE(note.find("run.precision = BF16: this CPU has no avx512_bf16"), std::string::npos)
        << note;
    EXPECT_NE(note.find("the matmuls run in fp32"), std::string::npos) << note;
  }
  EXPECT_FALSE(parse_config_text("run { precision: FP16 }", "p").ok());
}

// NaN and infinity are refused in every float or double field of the schema, from --set too.
TEST(Config, EveryFloatFieldRefusesNanAndInfinity) {
  int checked = 0;
  const auto* root = proto::Config::descriptor();
  for (int i = 0; i < root->field_count(); ++i) {
    const auto* section = root->field(i);
    if (!section->message_type()) continue;
    for (int j = 0; j < section->message_type()->field_count(); ++j) {
      const auto* f = section->message_type()->field(j);
      using google::protobuf::FieldDescriptor;
      if (f->cpp_type() != FieldDescriptor::CPPTYPE_FLOAT &&
          f->cpp_type() != FieldDescriptor::CPPTYPE_DOUBLE)
        continue;
      const std::string path = section->name() + "." + f->name();
      for (const char* v : {"inf", "-inf", "nan"}) {
        proto::Config cfg;
        ASSERT_TRUE(apply_override(&cfg, path + "=" + v).ok()) << path;
        Status s = validate_config(cfg);
        ASSERT_FALSE(s.ok()) << path << "=" << v;
        EXPECT_NE(s.message().find(path + " = "), std::string::npos) << s.message();
        EXPECT_NE(s.message().find("must be a finite number"), std::string::npos) << s.message();
      }
      ++checked;
    }
  }
  EXPECT_GE(checked, 8);  // lr, betas, eps, decay, momentum, clip, min_lr, timeout
}

TEST(Config, MissingFileIsNamed) {
  StatusOr<proto::Config> cfg = load_config("no/such/config.textproto");
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("no/such/config.textproto"), std::string::npos);
}

TEST(Config, OverridesSetNestedFieldsAndCheckTypes) {
  proto::Config cfg;
  EXPECT_TRUE(apply_override(&cfg, "run.steps=42").ok());
  EXPECT_EQ(cfg.run().steps(), 42);
  EXPECT_TRUE(apply_override(&cfg, "optimizer.kind=SGD").ok());
  EXPECT_EQ(cfg.optimizer().kind(), proto::OptimizerConfig::SGD);
  EXPECT_TRUE(apply_override(&cfg, "data.dir=some/folder").ok());
  EXPECT_EQ(cfg.data().dir(), "some/folder");
  EXPECT_TRUE(apply_override(&cfg, "optimizer.lr=0.5").ok());
  EXPECT_FLOAT_EQ(cfg.optimizer().lr(), 0.5f);

  Status s = apply_override(&cfg, "run.stepz=1");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("no field 'stepz'"), std::string::npos) << s.message();
  s = apply_override(&cfg, "run.steps=ten");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("'ten' is not a valid int64"), std::string::npos) << s.message();
  EXPECT_FALSE(apply_override(&cfg, "run=1").ok());
  EXPECT_FALSE(apply_override(&cfg, "steps").ok());
}

}  // namespace
}  // namespace skein
