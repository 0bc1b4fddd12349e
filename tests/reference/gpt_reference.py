#!/usr/bin/env python3
"""PyTorch reference for skein's models: writes the parity fixtures tests/reference/gpt_parity.bin
(GPT-2's blocks) and tests/reference/llama_parity.bin (Llama's: RMSNorm, rotary embeddings in
Hugging Face's rotate-half layout, SwiGLU, grouped-query attention, no biases, untied output).

The models are built here from PyTorch primitives (not from skein), in float64, from float32
weights, so the fixtures hold near-exact answers for skein's float32 code to be compared against.

Regenerate (needs Debian's python3-torch; CI does not):
    /usr/bin/python3 tests/reference/gpt_reference.py tests/reference/gpt_parity.bin
    /usr/bin/python3 tests/reference/gpt_reference.py --llama tests/reference/llama_parity.bin

Fixture format (little endian):
    8 bytes magic "SKEINFX1", uint32 record count, then per record:
    uint32 name length, name (utf-8), uint32 dtype (0 = float32, 1 = int32),
    uint32 ndim, int32 dims[ndim], data.
Records: config [V, seq_len, L, NH, C, B, T] (Llama: then [NKV, F, tied], and llama_constants
[rope_theta, norm_eps]); tokens, targets (B,T) (one target is -1 = ignored);
param/NAME (initial weights); logits (B,T,V); loss; grad/NAME; adamw_hyper [lr, beta1, beta2, eps,
weight_decay, max_norm]; adamw/NAME (after two steps); adamw_loss (loss at step 2); sgd_hyper [lr,
momentum, nesterov, weight_decay, max_norm]; sgd/NAME (after two steps).
"""
import math
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

V, SEQ_LEN, L, NH, C, B, T = 53, 9, 2, 3, 30, 3, 7
# Llama: 4 query heads sharing 2 key/value heads of 6 channels, a SwiGLU of width 40; a small
# rotary base so that every pair turns by a sizeable angle within T positions.
LLAMA_NH, LLAMA_NKV, LLAMA_C, LLAMA_F, ROPE_THETA, NORM_EPS = 4, 2, 24, 40, 100.0, 1e-5


class Block(nn.Module):
    def __init__(self, n_head, d_model):
        super().__init__()
        c = d_model
        self.n_head = n_head
        self.ln_1 = nn.LayerNorm(c)
        self.attn = nn.Module()
        self.attn.c_attn = nn.Linear(c, 3 * c)
        self.attn.c_proj = nn.Linear(c, c)
        self.ln_2 = nn.LayerNorm(c)
        self.mlp = nn.Module()
        self.mlp.c_fc = nn.Linear(c, 4 * c)
        self.mlp.c_proj = nn.Linear(4 * c, c)

    def forward(self, x):
        b, t, c = x.shape
        nh = self.n_head
        hs = c // nh
        q, k, v = self.attn.c_attn(self.ln_1(x)).split(c, dim=2)
        q = q.view(b, t, nh, hs).transpose(1, 2)
        k = k.view(b, t, nh, hs).transpose(1, 2)
        v = v.view(b, t, nh, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, c)
        x = x + self.attn.c_proj(y)
        x = x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh"))
        return x


class GPT(nn.Module):
    """skein's architecture; parameter names match skein's tensor names."""

    def __init__(self, vocab_size, seq_len, n_layer, n_head, d_model):
        super().__init__()
        self.vocab_size = vocab_size
        self.wte = nn.Parameter(torch.zeros(vocab_size, d_model))
        self.wpe = nn.Parameter(torch.zeros(seq_len, d_model))
        self.h = nn.ModuleList([Block(n_head, d_model) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(d_model)

    def forward(self, idx, targets):
        t = idx.shape[1]
        x = self.wte[idx] + self.wpe[:t]
        for block in self.h:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.t()  # lm_head tied to the token embedding
        loss = F.cross_entropy(logits.view(-1, self.vocab_size), targets.view(-1), ignore_index=-1)
        return logits, loss


def rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rotate_half(x):
    """Hugging Face's rotary layout: channel i of a head pairs with channel i + HS/2."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rotate_pairs(x):
    """Meta's and GGUF's rotary layout: channel 2i of a head pairs with channel 2i + 1."""
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack((-odd, even), dim=-1).flatten(-2)


class LlamaBlock(nn.Module):
    def __init__(self, n_head, n_kv_head, d_model, ffn_dim, eps, rotate=rotate_half):
        super().__init__()
        c, hs = d_model, d_model // n_head
        self.n_head, self.n_kv_head, self.ffn_dim, self.eps = n_head, n_kv_head, ffn_dim, eps
        self.rotate = rotate
        self.input_layernorm = nn.Module()
        self.input_layernorm.weight = nn.Parameter(torch.ones(c))
        self.self_attn = nn.Module()
        # q, k, v stacked: rows [q (NH*HS) | k (NKV*HS) | v (NKV*HS)], as skein fuses them
        self.self_attn.qkv_proj = nn.Linear(c, (n_head + 2 * n_kv_head) * hs, bias=False)
        self.self_attn.o_proj = nn.Linear(c, c, bias=False)
        self.post_attention_layernorm = nn.Module()
        self.post_attention_layernorm.weight = nn.Parameter(torch.ones(c))
        self.mlp = nn.Module()
        self.mlp.gate_up_proj = nn.Linear(c, 2 * ffn_dim, bias=False)  # rows [gate | up]
        self.mlp.down_proj = nn.Linear(ffn_dim, c, bias=False)

    def forward(self, x, cos, sin):
        b, t, c = x.shape
        nh, nkv = self.n_head, self.n_kv_head
        hs = c // nh
        h = rms_norm(x, self.input_layernorm.weight, self.eps)
        q, k, v = self.self_attn.qkv_proj(h).split([nh * hs, nkv * hs, nkv * hs], dim=2)
        q = q.view(b, t, nh, hs).transpose(1, 2)
        k = k.view(b, t, nkv, hs).transpose(1, 2)
        v = v.view(b, t, nkv, hs).transpose(1, 2)
        q = q * cos + self.rotate(q) * sin
        k = k * cos + self.rotate(k) * sin
        # query head j reads key/value head j // (nh / nkv)
        k = k.repeat_interleave(nh // nkv, dim=1)
        v = v.repeat_interleave(nh // nkv, dim=1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, c)
        x = x + self.self_attn.o_proj(y)
        gate, up = self.mlp.gate_up_proj(
            rms_norm(x, self.post_attention_layernorm.weight, self.eps)).split(self.ffn_dim, dim=2)
        return x + self.mlp.down_proj(F.silu(gate) * up)


class Llama(nn.Module):
    """skein's Llama blocks; parameter names match skein's tensor names. tied: the output
    projection is the token embedding (no lm_head). interleaved: q and k rows in Meta's and GGUF's
    rotary layout (pairs 2i, 2i + 1) instead of Hugging Face's (i, i + HS/2)."""

    def __init__(self, vocab_size, seq_len, n_layer, n_head, n_kv_head, d_model, ffn_dim, theta,
                 eps, tied=False, interleaved=False):
        super().__init__()
        self.vocab_size, self.eps = vocab_size, eps
        self.embed_tokens = nn.Module()
        self.embed_tokens.weight = nn.Parameter(torch.zeros(vocab_size, d_model))
        self.layers = nn.ModuleList(
            [LlamaBlock(n_head, n_kv_head, d_model, ffn_dim, eps,
                        rotate_pairs if interleaved else rotate_half) for _ in range(n_layer)])
        self.norm = nn.Module()
        self.norm.weight = nn.Parameter(torch.ones(d_model))
        self.lm_head = None if tied else nn.Linear(d_model, vocab_size, bias=False)
        hs = d_model // n_head
        # the rotary angles in float64: position t, pair i turns by t * theta^(-2i/HS)
        inv_freq = theta ** (-torch.arange(0, hs, 2, dtype=torch.float64) / hs)
        angles = torch.arange(seq_len, dtype=torch.float64)[:, None] * inv_freq[None, :]
        # each angle on both channels of its pair, in the layout's order
        angles = angles.repeat_interleave(2, dim=-1) if interleaved else torch.cat(
            (angles, angles), dim=-1)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, idx, targets):
        t = idx.shape[1]
        x = self.embed_tokens.weight[idx]
        cos, sin = self.cos[:t].to(x.dtype), self.sin[:t].to(x.dtype)
        for block in self.layers:
            x = block(x, cos, sin)
        x = rms_norm(x, self.norm.weight, self.eps)
        logits = x @ self.embed_tokens.weight.t() if self.lm_head is None else self.lm_head(x)
        loss = F.cross_entropy(logits.view(-1, self.vocab_size), targets.view(-1), ignore_index=-1)
        return logits, loss


LLAMA = "--llama" in sys.argv


def new_model():
    if LLAMA:
        return Llama(V, SEQ_LEN, L, LLAMA_NH, LLAMA_NKV, LLAMA_C, LLAMA_F, ROPE_THETA, NORM_EPS)
    return GPT(V, SEQ_LEN, L, NH, C)


def make_model(initial):
    model = new_model().double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(initial[name].double())
    return model


def param_groups(model, weight_decay):
    decay = [p for _, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for _, p in model.named_parameters() if p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def train_two_steps(model, opt, tokens, targets, max_norm):
    loss = None
    for _ in range(2):
        opt.zero_grad()
        _, loss = model(tokens, targets)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        assert norm > max_norm, "clipping must be active in the fixture"
        opt.step()
    return loss


def write_fixture(path, records):
    """The fixture format above; records are (name, "i" or "f", value)."""
    with open(path, "wb") as f:
        f.write(b"SKEINFX1")
        f.write(struct.pack("<I", len(records)))
        for name, kind, value in records:
            t = torch.as_tensor(value)
            t = t.to(torch.int32 if kind == "i" else torch.float32).contiguous()
            f.write(struct.pack("<I", len(name)) + name.encode())
            f.write(struct.pack("<II", 1 if kind == "i" else 0, t.dim()))
            f.write(struct.pack("<%di" % t.dim(), *t.shape))
            f.write(t.numpy().astype("<i4" if kind == "i" else "<f4").tobytes())


def main(path):
    torch.manual_seed(20240520)
    # Random float32 weights everywhere (biases and LayerNorm too), so every gradient is non-trivial.
    initial = {}
    for name, p in new_model().named_parameters():
        if p.dim() == 1 and name.endswith("weight"):  # the norms' weights
            w = 1.0 + 0.1 * torch.randn(p.shape)
        else:
            w = 0.2 * torch.randn(p.shape)
        initial[name] = w.float()
    tokens = torch.randint(0, V, (B, T))
    targets = torch.randint(0, V, (B, T))
    targets[1, 3] = -1

    model = make_model(initial)
    logits, loss = model(tokens, targets)
    loss.backward()

    if LLAMA:
        config = [V, SEQ_LEN, L, LLAMA_NH, LLAMA_C, B, T, LLAMA_NKV, LLAMA_F, 0]
        records = [("config", "i", config), ("llama_constants", "f", [ROPE_THETA, NORM_EPS])]
    else:
        records = [("config", "i", [V, SEQ_LEN, L, NH, C, B, T])]
    records += [("tokens", "i", tokens), ("targets", "i", targets)]
    records += [("param/" + n, "f", w) for n, w in initial.items()]
    records += [("logits", "f", logits.detach()), ("loss", "f", loss.detach().reshape(1))]
    records += [("grad/" + n, "f", p.grad) for n, p in model.named_parameters()]

    # eps = 1e-5, not 1e-8: the key bias gets an exactly-zero true gradient (softmax ignores a
    # per-row constant), which float32 sees as rounding noise of ~1e-9; with a tiny eps Adam turns
    # that noise into +-lr steps of random sign, in PyTorch's float32 as in ours.
    adamw = dict(lr=1e-2, betas=(0.9, 0.95), eps=1e-5, weight_decay=0.1, max_norm=0.5)
    model = make_model(initial)
    opt = torch.optim.AdamW(param_groups(model, adamw["weight_decay"]), lr=adamw["lr"],
                            betas=adamw["betas"], eps=adamw["eps"])
    loss2 = train_two_steps(model, opt, tokens, targets, adamw["max_norm"])
    records.append(("adamw_hyper", "f", [adamw["lr"], *adamw["betas"], adamw["eps"],
                                         adamw["weight_decay"], adamw["max_norm"]]))
    records += [("adamw/" + n, "f", p.detach()) for n, p in model.named_parameters()]
    records.append(("adamw_loss", "f", loss2.detach().reshape(1)))

    sgd = dict(lr=0.5, momentum=0.9, nesterov=True, weight_decay=0.01, max_norm=0.5)
    model = make_model(initial)
    opt = torch.optim.SGD(param_groups(model, sgd["weight_decay"]), lr=sgd["lr"],
                          momentum=sgd["momentum"], nesterov=sgd["nesterov"])
    train_two_steps(model, opt, tokens, targets, sgd["max_norm"])
    records.append(("sgd_hyper", "f", [sgd["lr"], sgd["momentum"], 1.0, sgd["weight_decay"],
                                       sgd["max_norm"]]))
    records += [("sgd/" + n, "f", p.detach()) for n, p in model.named_parameters()]

    write_fixture(path, records)
    print(f"wrote {path}: {len(records)} records, loss {loss.item():.6f}")


if __name__ == "__main__":
    paths = [a for a in sys.argv[1:] if a != "--llama"]
    default = "tests/reference/llama_parity.bin" if LLAMA else "tests/reference/gpt_parity.bin"
    main(paths[0] if paths else default)
