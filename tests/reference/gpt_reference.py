#!/usr/bin/env python3
"""PyTorch reference for skein's GPT: writes the parity fixture tests/reference/gpt_parity.bin.

The model is built here from PyTorch primitives (not from skein), in float64, from float32 weights,
so the fixture holds near-exact answers for skein's float32 code to be compared against.

Regenerate (needs Debian's python3-torch; CI does not):
    /usr/bin/python3 tests/reference/gpt_reference.py tests/reference/gpt_parity.bin

Fixture format (little endian):
    8 bytes magic "SKEINFX1", uint32 record count, then per record:
    uint32 name length, name (utf-8), uint32 dtype (0 = float32, 1 = int32),
    uint32 ndim, int32 dims[ndim], data.
Records: config [V, seq_len, L, NH, C, B, T]; tokens, targets (B,T) (one target is -1 = ignored);
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


def make_model(initial):
    model = GPT(V, SEQ_LEN, L, NH, C).double()
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


def main(path):
    torch.manual_seed(20240520)
    # Random float32 weights everywhere (biases and LayerNorm too), so every gradient is non-trivial.
    initial = {}
    for name, p in GPT(V, SEQ_LEN, L, NH, C).named_parameters():
        if ".ln_" in "." + name and name.endswith("weight"):
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

    records = [("config", "i", [V, SEQ_LEN, L, NH, C, B, T]), ("tokens", "i", tokens), ("targets", "i", targets)]
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
    print(f"wrote {path}: {len(records)} records, loss {loss.item():.6f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/reference/gpt_parity.bin")
