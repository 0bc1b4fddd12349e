#!/usr/bin/env python3
"""skein's Hugging Face export (engine/export.cc) read by PyTorch, without skein's code.

Runs tests/engine/export_logits (built by CMake; its path is the argument) into a temporary folder,
reads the model.safetensors it wrote in f32, f16 and bf16 from the format's specification (8-byte
little-endian header length, JSON header, raw little-endian data) and its config.json, and checks:
  - the header: 8-byte aligned, __metadata__ {"format": "pt"}, GPT2LMHeadModel's tensor names
    ("transformer." prefix, Conv1D weights [in, out], no lm_head), the data back to back;
  - config.json: model_type gpt2, the shape, gelu_new and eps 1e-5 (what the reference uses);
  - the f32 weights in tests/reference/gpt_reference.py's GPT (float64) give skein's logits within
    max|a - b| / max|b| <= 1e-5;
  - the f16 and bf16 files hold exactly PyTorch's .half() and .bfloat16() of the f32 weights.
The same for the Llama-family model it writes (LlamaForCausalLM's names, q/k/v and gate/up apart,
config.json's model_type llama and its fields), run in the reference's Llama (Hugging Face's
rotary layout and grouped-query heads).
And the Llama-family GGUF file it writes (llama_gguf/model.gguf, f32, tied output, one kv head),
read from GGUF's specification (header, typed key/value pairs, tensor infos, aligned data; the
dimensions listed fastest first): llama.* keys state the shape, and the tensors, q and k in their
interleaved rotary layout, run in the reference's Llama with Meta's rotary convention (channel 2i
pairs with 2i + 1) give skein's logits within 1e-5, while read with Hugging Face's convention they
do not (so the check tells the layouts apart).
Exit code 0 when every check passes, 1 otherwise (each failure printed).

    /usr/bin/python3 tests/reference/export_hf_check.py build/tests/export_logits
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt_reference import GPT, Llama  # noqa: E402  (skein's models in PyTorch, written once)

CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what)
    return ok


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    check(n % 8 == 0, f"{path}: header length {n} is not a multiple of 8")
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    check(data[8 : 8 + n].rstrip(b" ").endswith(b"}"), f"{path}: header not padded with spaces")
    meta = header.pop("__metadata__", None)
    check(meta == {"format": "pt"}, f"{path}: __metadata__ is {meta}")
    body = data[8 + n :]
    tensors, end = {}, 0
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        begin, stop = e["data_offsets"]
        check(begin == end, f"{path}: {name} starts at {begin}, not right after the previous ({end})")
        end = stop
        dtype = DTYPES[e["dtype"]]
        t = torch.frombuffer(bytearray(body[begin:stop]), dtype=dtype).reshape(e["shape"])
        tensors[name] = t
    check(end == len(body), f"{path}: the data ends at {end}, the file has {len(body)} bytes of data")
    return tensors


def reference_state(tensors):
    """GPT2LMHeadModel's names and layouts -> gpt_reference.GPT's (skein's names, nn.Linear [out, in])."""
    state = {}
    for name, t in tensors.items():
        check(name.startswith("transformer."), f"{name}: no transformer. prefix")
        bare = name[len("transformer.") :]
        bare = bare[: -len(".weight")] if bare in ("wte.weight", "wpe.weight") else bare
        state[bare] = t.t() if bare.endswith(CONV1D) else t
    return state


def read_logits(folder):
    with open(os.path.join(folder, "logits.bin"), "rb") as f:
        raw = f.read()
    B, T, V = struct.unpack("<3i", raw[:12])
    tokens = torch.frombuffer(bytearray(raw[12 : 12 + 4 * B * T]), dtype=torch.int32)
    tokens = tokens.reshape(B, T).long()
    logits = torch.frombuffer(bytearray(raw[12 + 4 * B * T :]), dtype=torch.float32)
    return B, T, V, tokens, logits.reshape(B, T, V).double()


def llama_state(tensors, config):
    """LlamaForCausalLM's names -> gpt_reference.Llama's (skein's: q, k, v stacked into qkv_proj,
    gate and up into gate_up_proj, no "model." prefix)."""
    state = {}
    for name, t in tensors.items():
        check(name.startswith("model.") or name == "lm_head.weight", f"{name}: no model. prefix")
        state[name[len("model."):] if name.startswith("model.") else name] = t
    for l in range(config["num_hidden_layers"]):
        a, m = f"layers.{l}.self_attn.", f"layers.{l}.mlp."
        parts = [state.pop(a + p + "_proj.weight", None) for p in "qkv"]
        if check(all(p is not None for p in parts), f"layer {l}: q_proj, k_proj or v_proj missing"):
            state[a + "qkv_proj.weight"] = torch.cat(parts, dim=0)
        parts = [state.pop(m + p + "_proj.weight", None) for p in ("gate", "up")]
        if check(all(p is not None for p in parts), f"layer {l}: gate_proj or up_proj missing"):
            state[m + "gate_up_proj.weight"] = torch.cat(parts, dim=0)
    return state


def check_model(folder, llama):
    B, T, V, tokens, skein_logits = read_logits(folder)
    config = json.load(open(os.path.join(folder, "f32", "config.json")))
    if llama:
        wants = [("model_type", "llama"), ("architectures", ["LlamaForCausalLM"]),
                 ("hidden_act", "silu"), ("tie_word_embeddings", False), ("vocab_size", V),
                 ("attention_bias", False), ("mlp_bias", False), ("rope_scaling", None),
                 ("head_dim", config["hidden_size"] // config["num_attention_heads"])]
        check(config["max_position_embeddings"] >= T, "config.json: max_position_embeddings")
    else:
        wants = [("model_type", "gpt2"), ("architectures", ["GPT2LMHeadModel"]),
                 ("activation_function", "gelu_new"), ("layer_norm_epsilon", 1e-5),
                 ("tie_word_embeddings", True), ("vocab_size", V)]
        check(config["n_positions"] == config["n_ctx"] >= T, "config.json: n_positions, n_ctx")
        # the reference uses what config.json states: nn.LayerNorm's default eps and tanh GELU
        check(torch.nn.LayerNorm(4).eps == config["layer_norm_epsilon"], "LayerNorm eps")
    for key, want in wants:
        check(config.get(key) == want, f"config.json: {key} is {config.get(key)!r}, not {want!r}")

    f32 = read_safetensors(os.path.join(folder, "f32", "model.safetensors"))
    if llama:
        check("lm_head.weight" in f32, "lm_head.weight is missing (the output is untied)")
        state = llama_state(f32, config)
        model = Llama(V, config["max_position_embeddings"], config["num_hidden_layers"],
                      config["num_attention_heads"], config["num_key_value_heads"],
                      config["hidden_size"], config["intermediate_size"], config["rope_theta"],
                      config["rms_norm_eps"], tied=config["tie_word_embeddings"])
    else:
        check("lm_head.weight" not in f32, "lm_head.weight is stored (it is tied to wte)")
        state = reference_state(f32)
        model = GPT(V, config["n_positions"], config["n_layer"], config["n_head"], config["n_embd"])
    expected_names = set(dict(model.named_parameters()))
    check(set(state) == expected_names,
          f"tensor names: extra {sorted(set(state) - expected_names)}, "
          f"missing {sorted(expected_names - set(state))}")
    model = model.double()
    model.load_state_dict({k: v.double() for k, v in state.items()}, strict=True)
    with torch.no_grad():
        logits, _ = model(tokens, torch.zeros_like(tokens))
    rel = ((logits - skein_logits).abs().max() / logits.abs().max()).item()
    check(rel <= 1e-5, f"logits: max|a-b|/max|b| = {rel:.3g} > 1e-5")
    kind = "Llama" if llama else "GPT-2"
    print(f"logits of the exported f32 {kind} model (B {B}, T {T}, V {V}) vs skein's: {rel:.3g}")

    for name, dtype, convert in [("f16", torch.float16, torch.Tensor.half),
                                 ("bf16", torch.bfloat16, torch.Tensor.bfloat16)]:
        low = read_safetensors(os.path.join(folder, name, "model.safetensors"))
        check(set(low) == set(f32), f"{name}: other tensor names than f32's")
        cfg = json.load(open(os.path.join(folder, name, "config.json")))
        check(cfg.get("torch_dtype") == {"f16": "float16", "bf16": "bfloat16"}[name],
              f"{name}: torch_dtype {cfg.get('torch_dtype')}")
        for k in f32:
            want = convert(f32[k])
            got = low.get(k)
            check(got is not None and got.dtype == dtype and
                  torch.equal(got.view(torch.int16), want.view(torch.int16)),
                  f"{name}: {k} is not PyTorch's rounding of the f32 weights")
        print(f"{kind} {name}: every tensor is PyTorch's rounding of the f32 weights")


GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
                11: "<q", 12: "<d"}


def read_gguf(path):
    """(key/value dict, {name: tensor}) of a GGUF v3 file whose tensors are all F32."""
    with open(path, "rb") as f:
        data = f.read()
    pos = 0

    def take(fmt):
        nonlocal pos
        (v,) = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return v

    def string():
        nonlocal pos
        n = take("<Q")
        pos += n
        return data[pos - n : pos].decode("utf-8")

    def value(kind):
        if kind == 8:
            return string()
        if kind == 9:
            elem, n = take("<I"), take("<Q")
            return [value(elem) for _ in range(n)]
        return take(GGUF_SCALARS[kind])

    check(data[:4] == b"GGUF", f"{path}: magic {data[:4]!r}")
    pos = 4
    version, n_tensors, n_kv = take("<I"), take("<Q"), take("<Q")
    check(version == 3, f"{path}: version {version}")
    kv = {}
    for _ in range(n_kv):
        key = string()
        kv[key] = value(take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = string()
        dims = [take("<Q") for _ in range(take("<I"))]
        kind, offset = take("<I"), take("<Q")
        check(kind == 0, f"{path}: {name} has ggml type {kind}, not F32")
        infos.append((name, dims, offset))
    align = kv.get("general.alignment", 32)
    base = (pos + align - 1) // align * align
    tensors = {}
    for name, dims, offset in infos:
        count = 1
        for d in dims:
            count *= d
        check(offset % align == 0, f"{path}: {name} at offset {offset} is not aligned")
        raw = bytearray(data[base + offset : base + offset + 4 * count])
        check(len(raw) == 4 * count, f"{path}: {name} runs past the end of the file")
        tensors[name] = torch.frombuffer(raw, dtype=torch.float32).reshape(dims[::-1])
    return kv, tensors


def check_gguf_llama(folder):
    B, T, V, tokens, skein_logits = read_logits(folder)
    kv, t = read_gguf(os.path.join(folder, "model.gguf"))
    check(kv.get("general.architecture") == "llama", f"architecture {kv.get('general.architecture')}")
    get = lambda key: kv.get("llama." + key)  # noqa: E731
    L, C, NH, NKV = (get("block_count"), get("embedding_length"), get("attention.head_count"),
                     get("attention.head_count_kv"))
    check(get("rope.dimension_count") == C // NH, "llama.rope.dimension_count is not the head size")
    check(get("context_length") >= T, "llama.context_length")
    check("output.weight" not in t, "output.weight is stored (the output is tied)")
    check(t["token_embd.weight"].shape == (V, C), f"token_embd.weight {t['token_embd.weight'].shape}")
    state = {"embed_tokens.weight": t.pop("token_embd.weight"),
             "norm.weight": t.pop("output_norm.weight")}
    for l in range(L):
        g, a, m = f"blk.{l}.", f"layers.{l}.self_attn.", f"layers.{l}.mlp."
        state[f"layers.{l}.input_layernorm.weight"] = t.pop(g + "attn_norm.weight")
        state[f"layers.{l}.post_attention_layernorm.weight"] = t.pop(g + "ffn_norm.weight")
        state[a + "qkv_proj.weight"] = torch.cat([t.pop(g + f"attn_{p}.weight") for p in "qkv"])
        state[a + "o_proj.weight"] = t.pop(g + "attn_output.weight")
        state[m + "gate_up_proj.weight"] = torch.cat([t.pop(g + "ffn_gate.weight"),
                                                      t.pop(g + "ffn_up.weight")])
        state[m + "down_proj.weight"] = t.pop(g + "ffn_down.weight")
    check(not t, f"unexpected GGUF tensors {sorted(t)}")
    rel = {}
    for interleaved in (True, False):
        model = Llama(V, kv["llama.context_length"], L, NH, NKV, C, get("feed_forward_length"),
                      get("rope.freq_base"), get("attention.layer_norm_rms_epsilon"), tied=True,
                      interleaved=interleaved).double()
        model.load_state_dict({k: v.double() for k, v in state.items()}, strict=True)
        with torch.no_grad():
            logits, _ = model(tokens, torch.zeros_like(tokens))
        rel[interleaved] = ((logits - skein_logits).abs().max() / logits.abs().max()).item()
    check(rel[True] <= 1e-5, f"GGUF logits, interleaved rotary: max|a-b|/max|b| = {rel[True]:.3g}")
    check(rel[False] > 1e-3, f"GGUF logits read with Hugging Face's rotary layout match too "
                             f"({rel[False]:.3g}): the check cannot tell the layouts apart")
    print(f"logits of the exported GGUF Llama (B {B}, T {T}, V {V}, {NH} heads, {NKV} kv head) vs "
          f"skein's: {rel[True]:.3g} with Meta's interleaved rotary, {rel[False]:.3g} with "
          f"Hugging Face's rotate-half (must differ)")


def main(binary):
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([binary, tmp], check=True, stdout=subprocess.DEVNULL)
        check_model(tmp, llama=False)
        check_model(os.path.join(tmp, "llama"), llama=True)
        check_gguf_llama(os.path.join(tmp, "llama_gguf"))
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: export_hf_check.py PATH/TO/export_logits")
    sys.exit(main(sys.argv[1]))
