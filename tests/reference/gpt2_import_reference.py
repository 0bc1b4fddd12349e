#!/usr/bin/env python3
"""Pretrained-weights fixtures for `train --init_from`: one small random GPT-2 written in Hugging
Face's and llm.c's layouts, with the logits, loss and gradients PyTorch computes on it.

Writes into tests/reference/import/ (regenerate with Debian's python3-torch; CI does not):
    /usr/bin/python3 tests/reference/gpt2_import_reference.py tests/reference/import

  hf_f32/    model.safetensors + config.json: GPT2LMHeadModel's names ("transformer." prefix),
             Conv1D weights stored [in, out], the attn.bias / attn.masked_bias mask buffers, and
             lm_head.weight (tied: equal to wte)
  hf_f16/    the same weights in F16, GPT2Model's names (no prefix), mask buffers, __metadata__
  hf_bf16/   the same weights in BF16, prefixed names, no mask buffers (newer transformers)
  gpt2_tiny_v3.bin   llm.c's model file, version 3 (fp32), vocabulary padded to Vp rows
  gpt2_tiny_v5.bin   llm.c's model file, version 5 (bf16)
  expected.bin       PyTorch's answers, in gpt_reference.py's fixture format: config
                     [V, n_ctx, L, NH, C, B, T], tokens, targets (B,T) (one target -1 = ignored),
                     logits (B,T,V), loss, grad/NAME (skein's names and layouts)

Every weight is a bfloat16 value within float16's normal range, so that the F32, F16 and BF16
files (and both llm.c versions) hold exactly the same numbers and one set of answers serves all
of them; each file's encoding of them differs, which is what the importers are tested on (the
rounding of the converters is tested on its own, in tests/engine/import_test.cc).

safetensors is written here from its specification (8-byte little-endian header length, a JSON
header name -> {dtype, shape, data_offsets} plus __metadata__, padded with spaces to 8 bytes, then
the data), since Debian packages neither safetensors nor transformers.
"""
import json
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt_reference import GPT, write_fixture  # noqa: E402  (the model code lives there)

V, N_CTX, L, NH, C, B, T = 53, 9, 2, 3, 12, 3, 7
VP = 64  # llm.c pads the vocabulary (to a multiple of 128 for GPT-2's 50257); 64 keeps it small
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def make_weights():
    """skein's tensor names and [out, in] layouts -> float32 tensors, exact in bf16 and f16."""
    torch.manual_seed(20240326)
    weights = {}
    for name, p in GPT(V, N_CTX, L, NH, C).named_parameters():
        if ".ln_" in "." + name and name.endswith("weight"):
            w = 1.0 + 0.1 * torch.randn(p.shape)
        else:
            w = 0.2 * torch.randn(p.shape)
        w = w.bfloat16().float()
        tiny = w.abs() < 2.0**-12  # keep clear of float16's subnormals
        w[tiny] = torch.where(w[tiny] < 0, -(2.0**-12), 2.0**-12)
        assert torch.equal(w.half().float(), w) and torch.equal(w.bfloat16().float(), w)
        weights[name] = w
    return weights


def hf_tensors(weights, prefix, masks, lm_head):
    """Hugging Face GPT-2's state dict: Conv1D weights transposed to [in, out]."""
    out = {}
    for name, w in weights.items():
        hf = name + ".weight" if name in ("wte", "wpe") else name
        out[prefix + hf] = w.t().contiguous() if hf.endswith(CONV1D) else w
    if masks:
        for layer in range(L):
            tril = torch.tril(torch.ones(N_CTX, N_CTX)).view(1, 1, N_CTX, N_CTX)
            out[f"{prefix}h.{layer}.attn.bias"] = tril
            out[f"{prefix}h.{layer}.attn.masked_bias"] = torch.tensor(-1e4)
    if lm_head:
        out["lm_head.weight"] = weights["wte"]
    return out


def raw_bytes(t, dtype):
    t = t.contiguous()
    if dtype == "F32":
        return t.float().numpy().astype("<f4").tobytes()
    if dtype == "F16":
        return t.half().numpy().astype("<f2").tobytes()
    if dtype == "BF16":  # numpy has no bfloat16: its bits as int16
        return t.bfloat16().view(torch.int16).numpy().astype("<i2").tobytes()
    raise ValueError(dtype)


def write_safetensors(path, tensors, dtype, metadata=None):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        data = raw_bytes(tensors[name], dtype)
        header[name] = {"dtype": dtype, "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def write_hf(folder, weights, dtype, prefix, masks, lm_head, metadata=None):
    os.makedirs(folder, exist_ok=True)
    write_safetensors(os.path.join(folder, "model.safetensors"),
                      hf_tensors(weights, prefix, masks, lm_head), dtype, metadata)
    config = {  # what GPT2Config.save_pretrained writes, for this shape
        "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1, "bos_token_id": V - 1, "embd_pdrop": 0.1, "eos_token_id": V - 1,
        "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "gpt2",
        "n_ctx": N_CTX, "n_embd": C, "n_head": NH, "n_inner": None, "n_layer": L,
        "n_positions": N_CTX, "reorder_and_upcast_attn": False, "resid_pdrop": 0.1,
        "scale_attn_by_inverse_layer_idx": False, "scale_attn_weights": True,
        "summary_activation": None, "summary_first_dropout": 0.1, "summary_proj_to_labels": True,
        "summary_type": "cls_index", "summary_use_proj": True,
        "torch_dtype": {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dtype],
        "transformers_version": "4.40.0", "use_cache": True, "vocab_size": V,
    }
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")


def write_llmc(path, weights, dtype):
    """llm.c's model file: 256 int32 header, then its 16 tensors grouped by kind across layers."""
    header = [0] * 256
    header[:8] = [20240326, {"F32": 3, "BF16": 5}[dtype], N_CTX, V, L, NH, C, VP]
    wte = torch.zeros(VP, C)
    wte[:V] = weights["wte"]  # padding rows are zero
    order = [wte, weights["wpe"]]
    for kind in ("ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
                 "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
                 "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"):
        order += [weights[f"h.{layer}.{kind}"] for layer in range(L)]  # [out, in] already
    order += [weights["ln_f.weight"], weights["ln_f.bias"]]
    with open(path, "wb") as f:
        f.write(struct.pack("<256i", *header))
        for t in order:
            f.write(raw_bytes(t, dtype))


def write_expected(path, weights):
    torch.manual_seed(5)
    tokens = torch.randint(0, V, (B, T))
    targets = torch.randint(0, V, (B, T))
    targets[2, 4] = -1
    model = GPT(V, N_CTX, L, NH, C).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(weights[name].double())
    logits, loss = model(tokens, targets)
    loss.backward()
    records = [("config", "i", [V, N_CTX, L, NH, C, B, T]), ("tokens", "i", tokens),
               ("targets", "i", targets), ("logits", "f", logits.detach()),
               ("loss", "f", loss.detach().reshape(1))]
    records += [("grad/" + n, "f", p.grad) for n, p in model.named_parameters()]
    write_fixture(path, records)  # gpt_reference.py's fixture format
    return loss.item()


def main(out):
    weights = make_weights()
    write_hf(os.path.join(out, "hf_f32"), weights, "F32", "transformer.", masks=True, lm_head=True)
    write_hf(os.path.join(out, "hf_f16"), weights, "F16", "", masks=True, lm_head=False,
             metadata={"format": "pt"})
    write_hf(os.path.join(out, "hf_bf16"), weights, "BF16", "transformer.", masks=False,
             lm_head=False)
    write_llmc(os.path.join(out, "gpt2_tiny_v3.bin"), weights, "F32")
    write_llmc(os.path.join(out, "gpt2_tiny_v5.bin"), weights, "BF16")
    loss = write_expected(os.path.join(out, "expected.bin"), weights)
    print(f"wrote {out}: 5 model files, expected.bin (loss {loss:.6f})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/reference/import")
