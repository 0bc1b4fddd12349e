#!/usr/bin/env python3
"""Pretrained-weights fixtures for `train --init_from` of a Llama-family model: one small random
Llama (4 query heads sharing 2 key/value heads, SwiGLU, untied output) written as Hugging Face's
LlamaForCausalLM writes it, with the logits, loss and gradients PyTorch computes on it.

Writes into tests/reference/import/ (regenerate with Debian's python3-torch; CI does not):
    /usr/bin/python3 tests/reference/llama_import_reference.py tests/reference/import

  llama_f32/    model.safetensors + config.json: LlamaForCausalLM's names ("model." prefix,
                q_proj, k_proj, v_proj, gate_proj, up_proj apart), the rotary_emb.inv_freq
                buffers older transformers saved, lm_head.weight
  llama_bf16/   the same weights in BF16, without the "model." prefix, no buffers
  llama_expected.bin  PyTorch's answers, in gpt_reference.py's fixture format: config
                [V, n_ctx, L, NH, C, B, T, NKV, F, tied], llama_constants [rope_theta, norm_eps],
                tokens, targets, logits, loss, grad/NAME (skein's names: qkv_proj, gate_up_proj)

The model is gpt_reference.py's Llama (Hugging Face's rotate-half rotary layout, grouped-query
heads repeated as transformers' repeat_kv does); every weight is a bfloat16 value, so both files
hold the same numbers.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2_import_reference import write_safetensors  # noqa: E402
from gpt_reference import Llama, write_fixture  # noqa: E402

V, N_CTX, L, NH, NKV, C, F, B, T = 57, 10, 2, 4, 2, 24, 40, 3, 8
THETA, EPS = 100.0, 1e-5  # a small rotary base: every pair turns by a sizeable angle in T


def new_model():
    return Llama(V, N_CTX, L, NH, NKV, C, F, THETA, EPS, tied=False)


def make_weights():
    """skein's tensor names -> float32 tensors, exact in bfloat16."""
    torch.manual_seed(20261201)
    weights = {}
    for name, p in new_model().named_parameters():
        w = 1.0 + 0.1 * torch.randn(p.shape) if p.dim() == 1 else 0.2 * torch.randn(p.shape)
        weights[name] = w.bfloat16().float()
    return weights


def hf_tensors(weights, prefix, buffers):
    """LlamaForCausalLM's state dict: q, k, v and gate, up cut out of skein's fused matrices."""
    hs, kv = C // NH, NKV * (C // NH)
    out = {}
    for name, w in weights.items():
        if name.endswith("self_attn.qkv_proj.weight"):
            base = name[: -len("qkv_proj.weight")]
            for part, rows in (("q", w[:C]), ("k", w[C : C + kv]), ("v", w[C + kv :])):
                out[prefix + base + part + "_proj.weight"] = rows.contiguous()
        elif name.endswith("mlp.gate_up_proj.weight"):
            base = name[: -len("gate_up_proj.weight")]
            out[prefix + base + "gate_proj.weight"] = w[:F].contiguous()
            out[prefix + base + "up_proj.weight"] = w[F:].contiguous()
        elif name == "lm_head.weight":
            out[name] = w
        else:
            out[prefix + name] = w
    if buffers:
        inv_freq = THETA ** (-torch.arange(0, hs, 2, dtype=torch.float32) / hs)
        for layer in range(L):
            out[f"{prefix}layers.{layer}.self_attn.rotary_emb.inv_freq"] = inv_freq
    return out


def write_hf(folder, weights, dtype, prefix, buffers):
    os.makedirs(folder, exist_ok=True)
    write_safetensors(os.path.join(folder, "model.safetensors"),
                      hf_tensors(weights, prefix, buffers), dtype, {"format": "pt"})
    config = {  # what LlamaConfig.save_pretrained writes, for this shape
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 1, "eos_token_id": 2, "head_dim": C // NH, "hidden_act": "silu",
        "hidden_size": C, "initializer_range": 0.02, "intermediate_size": F,
        "max_position_embeddings": N_CTX, "mlp_bias": False, "model_type": "llama",
        "num_attention_heads": NH, "num_hidden_layers": L, "num_key_value_heads": NKV,
        "pretraining_tp": 1, "rms_norm_eps": EPS, "rope_scaling": None, "rope_theta": THETA,
        "tie_word_embeddings": False,
        "torch_dtype": {"F32": "float32", "BF16": "bfloat16"}[dtype],
        "transformers_version": "4.44.0", "use_cache": True, "vocab_size": V,
    }
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")


def write_expected(path, weights):
    torch.manual_seed(7)
    tokens = torch.randint(0, V, (B, T))
    targets = torch.randint(0, V, (B, T))
    targets[0, 5] = -1
    model = new_model().double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(weights[name].double())
    logits, loss = model(tokens, targets)
    loss.backward()
    records = [("config", "i", [V, N_CTX, L, NH, C, B, T, NKV, F, 0]),
               ("llama_constants", "f", [THETA, EPS]), ("tokens", "i", tokens),
               ("targets", "i", targets), ("logits", "f", logits.detach()),
               ("loss", "f", loss.detach().reshape(1))]
    records += [("grad/" + n, "f", p.grad) for n, p in model.named_parameters()]
    write_fixture(path, records)  # gpt_reference.py's fixture format
    return loss.item()


def main(out):
    weights = make_weights()
    write_hf(os.path.join(out, "llama_f32"), weights, "F32", "model.", buffers=True)
    write_hf(os.path.join(out, "llama_bf16"), weights, "BF16", "", buffers=False)
    loss = write_expected(os.path.join(out, "llama_expected.bin"), weights)
    print(f"wrote {out}: llama_f32, llama_bf16, llama_expected.bin (loss {loss:.6f})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/reference/import")
