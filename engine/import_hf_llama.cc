// Hugging Face LlamaForCausalLM (SmolLM, TinyLlama, Llama 2 and 3.2 shapes): model.safetensors
// with config.json beside it, model_type "llama".
//
// config.json (LlamaConfig): hidden_size (C), intermediate_size (F), num_hidden_layers (L),
// num_attention_heads (NH), num_key_value_heads (NKV; default NH), max_position_embeddings
// (n_ctx), vocab_size (V), rms_norm_eps, rope_theta (default 10000), tie_word_embeddings
// (default false), and the switches that would change the architecture, which must have the
// plain Llama's values: hidden_act "silu", attention_bias and mlp_bias false, rope_scaling null
// (no Llama 3.1 / linear / dynamic scaling), head_dim C / NH, pretraining_tp 1.
//
// Tensors, named with or without LlamaForCausalLM's "model." prefix: embed_tokens.weight (V,C),
// layers.N.input_layernorm.weight (C), layers.N.self_attn.{q,k,v,o}_proj.weight (q, o: C x C;
// k, v: NKV*HS x C), layers.N.post_attention_layernorm.weight, layers.N.mlp.{gate,up}_proj.weight
// (F,C), layers.N.mlp.down_proj.weight (C,F), norm.weight (C), and lm_head.weight (V,C): the
// output projection when untied; when tied it may be stored, and must then equal embed_tokens.
// All [out, in], as skein's. q, k and v fill the rows of skein's qkv_proj in that order, gate
// and up those of gate_up_proj; the rotary layout is Hugging Face's in both (channel i of a head
// pairs with i + HS/2), so no row moves. layers.N.self_attn.rotary_emb.inv_freq (a buffer that
// older files hold) is ignored.
#include <map>
#include <set>

#include "engine/import.h"
#include "engine/import_detail.h"
#include "engine/safetensors.h"

namespace skein {

namespace {

using nlohmann::json;

StatusOr<PretrainedShape> read_llama_config(const std::string& text, const std::string& cpath) {
  StatusOr<json> parsed = import_detail::parse_config_json(text, cpath);
  if (!parsed.ok()) return parsed.status();
  const json& j = *parsed;
  auto fail = [&](const std::string& what) {
    return Status::error(cpath + ": " + what +
                         "\nHINT: skein reads Llama-family models (model_type \"llama\") as "
                         "transformers' LlamaConfig writes them");
  };
  PretrainedShape s;
  s.arch = Arch::kLlama;
  struct Field {
    const char* key;
    int* out;
    int64_t max;
    bool required;
  };
  for (const Field& f :
       {Field{"vocab_size", &s.vocab_size, import_detail::kMaxVocab, true},
        Field{"max_position_embeddings", &s.n_ctx, import_detail::kMaxContext, true},
        Field{"num_hidden_layers", &s.n_layer, import_detail::kMaxLayers, true},
        Field{"num_attention_heads", &s.n_head, import_detail::kMaxChannels, true},
        Field{"hidden_size", &s.d_model, import_detail::kMaxChannels, true},
        Field{"intermediate_size", &s.ffn_dim, import_detail::kMaxChannels * 16, true},
        Field{"num_key_value_heads", &s.n_kv_head, import_detail::kMaxChannels, false}}) {
    if (!j.contains(f.key) || (!f.required && j[f.key].is_null())) {
      if (f.required) return fail(std::string("no \"") + f.key + "\"");
      continue;
    }
    const json& v = j[f.key];
    if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > f.max)
      return fail(std::string(f.key) + " is " + v.dump() + ", not an integer in 1.." +
                  std::to_string(f.max));
    *f.out = static_cast<int>(v.get<int64_t>());
  }
  if (s.n_kv_head == 0) s.n_kv_head = s.n_head;
  if (s.d_model % s.n_head != 0)
    return fail("num_attention_heads = " + std::to_string(s.n_head) +
                " does not divide hidden_size = " + std::to_string(s.d_model));
  if (s.n_head % s.n_kv_head != 0)
    return fail("num_key_value_heads = " + std::to_string(s.n_kv_head) +
                " does not divide num_attention_heads = " + std::to_string(s.n_head));
  if ((s.d_model / s.n_head) % 2 != 0)
    return fail("the head size hidden_size / num_attention_heads = " +
                std::to_string(s.d_model / s.n_head) + " is odd, and rotary embeddings turn pairs");
  if (j.contains("head_dim") && !j["head_dim"].is_null() && j["head_dim"] != s.d_model / s.n_head)
    return fail("head_dim is " + j["head_dim"].dump() + ", but skein's heads are hidden_size / " +
                "num_attention_heads = " + std::to_string(s.d_model / s.n_head) + " wide");
  const auto positive_number = [&](const char* key, double* out) -> Status {
    if (!j.contains(key)) return Status();
    const json& v = j[key];
    if (!v.is_number() || !(v.get<double>() > 0) || !std::isfinite(v.get<double>()))
      return fail(std::string(key) + " is " + v.dump() + ", not a positive number");
    *out = v.get<double>();
    return Status();
  };
  s.norm_eps = 1e-6;  // LlamaConfig's default
  SKEIN_RETURN_IF_ERROR(positive_number("rms_norm_eps", &s.norm_eps));
  SKEIN_RETURN_IF_ERROR(positive_number("rope_theta", &s.rope_theta));
  if (!(s.norm_eps < 1)) return fail("rms_norm_eps is " + j["rms_norm_eps"].dump() + ", not < 1");
  if (!(s.rope_theta > 1)) return fail("rope_theta is " + j["rope_theta"].dump() + ", not > 1");
  s.tied = false;  // LlamaConfig's default
  if (j.contains("tie_word_embeddings")) {
    if (!j["tie_word_embeddings"].is_boolean())
      return fail("tie_word_embeddings is " + j["tie_word_embeddings"].dump() + ", not a boolean");
    s.tied = j["tie_word_embeddings"].get<bool>();
  }
  if (j.contains("hidden_act") && j["hidden_act"] != "silu")
    return fail("hidden_act is " + j["hidden_act"].dump() + ", but skein's SwiGLU uses \"silu\"");
  for (const char* key : {"attention_bias", "mlp_bias"})
    if (j.contains(key) && j[key] != false)
      return fail(std::string(key) + " is " + j[key].dump() + ", but skein's Llama has no biases");
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null())
    return fail("rope_scaling is " + j["rope_scaling"].dump() +
                ", which skein does not apply (plain rotary embeddings only)");
  if (j.contains("pretraining_tp") && j["pretraining_tp"] != 1)
    return fail("pretraining_tp is " + j["pretraining_tp"].dump() + ", not 1");
  return s;
}

// One tensor the file must hold: its name without "model.", its shape, and where it goes.
struct Expected {
  std::string file;   // "layers.0.self_attn.k_proj.weight", "lm_head.weight"
  std::string skein;  // "layers.0.self_attn.qkv_proj.weight"
  std::vector<int64_t> shape;
  int64_t row0 = -1;  // a part of skein's tensor: its rows from here on
};

std::vector<Expected> llama_tensors(const PretrainedShape& s) {
  const int64_t C = s.d_model, V = s.vocab_size, F = s.ffn_dim;
  const int64_t KV = int64_t(s.n_kv_head) * (s.d_model / s.n_head);
  std::vector<Expected> t = {{"embed_tokens.weight", "embed_tokens.weight", {V, C}}};
  for (int l = 0; l < s.n_layer; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    const std::string qkv = p + "self_attn.qkv_proj.weight", gu = p + "mlp.gate_up_proj.weight";
    t.insert(t.end(),
             {{p + "input_layernorm.weight", p + "input_layernorm.weight", {C}},
              {p + "self_attn.q_proj.weight", qkv, {C, C}, 0},
              {p + "self_attn.k_proj.weight", qkv, {KV, C}, C},
              {p + "self_attn.v_proj.weight", qkv, {KV, C}, C + KV},
              {p + "self_attn.o_proj.weight", p + "self_attn.o_proj.weight", {C, C}},
              {p + "post_attention_layernorm.weight", p + "post_attention_layernorm.weight", {C}},
              {p + "mlp.gate_proj.weight", gu, {F, C}, 0},
              {p + "mlp.up_proj.weight", gu, {F, C}, F},
              {p + "mlp.down_proj.weight", p + "mlp.down_proj.weight", {C, F}}});
  }
  t.push_back({"norm.weight", "norm.weight", {C}});
  if (!s.tied) t.push_back({"lm_head.weight", "lm_head.weight", {V, C}});
  return t;
}

}  // namespace

StatusOr<PretrainedWeights> PretrainedWeights::from_llama_safetensors(
    const uint8_t* data, size_t n, const std::string& config_json, const std::string& path,
    const std::string& config_path) {
  StatusOr<PretrainedShape> shape = read_llama_config(config_json, config_path);
  if (!shape.ok()) return shape.status();
  StatusOr<SafetensorsHeader> h = parse_safetensors(data, n, path);
  if (!h.ok()) return h.status();
  PretrainedWeights w;
  w.shape_ = *shape;
  w.path_ = path;
  w.config_path_ = config_path;
  const PretrainedShape& s = w.shape_;
  const std::string config_shape =
      " (" + config_path + ": vocab_size " + std::to_string(s.vocab_size) + ", hidden_size " +
      std::to_string(s.d_model) + ", num_hidden_layers " + std::to_string(s.n_layer) +
      ", num_attention_heads " + std::to_string(s.n_head) + ", num_key_value_heads " +
      std::to_string(s.n_kv_head) + ", intermediate_size " + std::to_string(s.ffn_dim) + ")";
  const std::vector<Expected> expected = llama_tensors(s);
  std::map<std::string, const Expected*> by_file;
  for (const Expected& e : expected) by_file[e.file] = &e;
  std::map<std::string, SourceTensor> found;  // by the file's name without "model."
  std::set<std::string> dtypes;
  for (const SafetensorsTensor& t : h->tensors) {
    const bool prefixed = t.name.starts_with("model.");
    const std::string bare = prefixed ? t.name.substr(6) : t.name;
    if (bare.ends_with(".self_attn.rotary_emb.inv_freq")) continue;
    StatusOr<WireType> type = import_detail::wire_type(t, path);
    if (!type.ok()) return type.status();
    if (bare == "lm_head.weight" && s.tied) {
      const std::vector<int64_t> want = {s.vocab_size, s.d_model};
      if (t.shape != want)
        return Status::error(path + ": tensor " + t.name + " has shape " + shape_text(t.shape) +
                             ", but the output layer of this model is " + shape_text(want) +
                             config_shape);
      w.tied_.push_back({"lm_head", t.name, *type, data + t.begin, t.shape, false, -1});
      continue;
    }
    auto e = by_file.find(bare);
    if (e == by_file.end())
      return Status::error(path + ": tensor " + t.name + " has no place in a Llama of this " +
                           "shape" + config_shape +
                           "\nHINT: skein reads LlamaModel and LlamaForCausalLM weights; a model "
                           "with other parts (adapters, biases, another architecture) is not one");
    if (found.count(bare))
      return Status::error(path + ": holds both " + found[bare].file_name + " and " + t.name +
                           ": which one is meant is unclear");
    if (t.shape != e->second->shape)
      return Status::error(path + ": tensor " + t.name + " has shape " + shape_text(t.shape) +
                           ", but this model needs " + shape_text(e->second->shape) + config_shape);
    dtypes.insert(t.dtype);
    found[bare] = {e->second->skein, t.name, *type, data + t.begin,
                   t.shape,          false,  -1,    e->second->row0};
  }
  std::vector<std::string> missing;
  for (const Expected& e : expected) {
    if (found.count(e.file))
      w.tensors_.push_back(found[e.file]);
    else
      missing.push_back(e.file);
  }
  if (!missing.empty())
    return import_detail::missing_tensors(path, missing, "model.", "Llama", config_shape);
  w.format_ = "safetensors (Llama), " + import_detail::dtypes_text(dtypes);
  return w;
}

}  // namespace skein
