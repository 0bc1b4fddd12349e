// sample: loads a checkpoint and the tokenizer of its data, prints generated text.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "engine/checkpoint.h"
#include "engine/config.h"
#include "engine/generator.h"

namespace {

const char kHelp[] =
    R"(usage: sample --checkpoint PATH [--prompt TEXT] [--tokens N] [--temperature X]
              [--top_k K] [--seed S] [--tokenizer FILE]

Generates text from a checkpoint (a folder RUN/checkpoints/step_NNNNNNNN, or a run folder, which
means its newest checkpoint that verifies), with a KV cache.
  --prompt TEXT      text to continue (default: none; starts from <|endoftext|> with a GPT-2
                     tokenizer, else from a newline)
  --tokens N         tokens to generate (default 200)
  --temperature X    0 = greedy; default 0.8
  --top_k K          sample among the K most likely tokens; 0 = all (default 40)
  --seed S           sampling seed (default 1)
  --tokenizer FILE   default: tokenizer.bin in the run's data.dir
exit codes: 0 ok, 2 bad usage or input
)";

int fail(const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string ckpt, prompt = "\n", tok_path;
  bool prompt_given = false;
  long tokens = 200;
  skein::SamplingOptions opt{0.8f, 40};
  uint64_t seed = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kHelp, stdout);
      return 0;
    }
    if (i + 1 >= argc) return fail("missing value after " + a);
    const std::string v = argv[++i];
    char* end = nullptr;
    if (a == "--checkpoint")
      ckpt = v;
    else if (a == "--prompt") {
      prompt = v;
      prompt_given = true;
    } else if (a == "--tokenizer")
      tok_path = v;
    else if (a == "--tokens")
      tokens = std::strtol(v.c_str(), &end, 10);
    else if (a == "--temperature")
      opt.temperature = std::strtof(v.c_str(), &end);
    else if (a == "--top_k")
      opt.top_k = static_cast<int>(std::strtol(v.c_str(), &end, 10));
    else if (a == "--seed")
      seed = std::strtoull(v.c_str(), &end, 10);
    else
      return fail("unknown argument '" + a + "' (see sample --help)");
    if (end && *end) return fail(a + " expects a number, got '" + v + "'");
    if (tokens < 0 || opt.top_k < 0 || opt.temperature < 0)
      return fail(a + " must not be negative");
  }
  if (ckpt.empty()) return fail("--checkpoint PATH is required (see sample --help)");
  if (std::filesystem::is_directory(ckpt + "/checkpoints")) {
    std::vector<std::string> skipped;
    std::string found = skein::find_latest_valid_checkpoint(ckpt + "/checkpoints", &skipped);
    if (found.empty()) return fail(ckpt + " holds no checkpoint that verifies");
    ckpt = found;
  }
  // the manifest for the model's shape; load_checkpoint verifies every tensor as it loads them
  auto manifest = skein::read_checkpoint_manifest(ckpt);
  if (!manifest.ok()) return fail(manifest.status().message());
  skein::Model model(skein::gpt_config(manifest->config().model()));
  auto loaded = skein::load_checkpoint(ckpt, model, {{"param/", model.params()}});
  if (!loaded.ok()) return fail(loaded.status().message());
  if (tok_path.empty()) tok_path = manifest->config().data().dir() + "/tokenizer.bin";
  auto tok = skein::Tokenizer::load(tok_path);
  if (!tok.ok())
    return fail(tok.status().message() + "\nHINT: pass the data's tokenizer with --tokenizer FILE");
  if (tok->vocab_size() > model.config().vocab_size)
    return fail("the tokenizer " + tok_path + " has a larger vocabulary than the model");

  skein::Generator gen(model);
  skein::Rng rng(seed);
  // GPT-2 models begin a document after <|endoftext|>, as in their training data.
  if (!prompt_given && tok->eot_id() >= 0) prompt.clear();
  std::vector<int32_t> ids = tok->encode(prompt);
  if (ids.empty()) ids.push_back(tok->eot_id() >= 0 ? tok->eot_id() : tok->encode("\n").front());
  const float* logits = nullptr;
  for (int32_t id : ids) logits = gen.feed(id);
  std::fputs(prompt.c_str(), stdout);
  for (long i = 0; i < tokens; ++i) {
    // only tokens the tokenizer knows can be drawn
    const int32_t next = skein::Generator::sample(logits, tok->vocab_size(), opt, rng);
    auto text = tok->decode(std::vector<int32_t>{next});
    if (text.ok()) std::fputs(text->c_str(), stdout);
    logits = gen.feed(next);
  }
  std::fputs("\n", stdout);
  return 0;
}
