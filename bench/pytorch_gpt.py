#!/usr/bin/env python3
"""PyTorch side of the side-by-side benchmark: the same model as skein (tests/reference's GPT, or
its Llama for model.arch: LLAMA), eager, AdamW, synthetic tokens, torch.set_num_threads(K).

    bench/pytorch_gpt.py --config configs/char.textproto [--threads K] [--steps N] [--warmup W]
                         [--precision fp32|bf16] [--set path=value]... [--json]

--precision bf16 runs the forward and the loss under torch.autocast("cpu", dtype=torch.bfloat16):
the matmuls take bf16 operands, while the parameters, gradients and AdamW state stay fp32, as in
skein's run.precision: BF16 (the backward follows the forward's dtypes). Default fp32.
--set model.seq_len=1024, run.batch_size=2, ...: the config's fields as bench_step's --set takes
them (the model's shape, run.batch_size, optimizer.lr and weight_decay count here; others, such as
run.grad_accum_steps, are accepted and not used: this script runs one micro-batch per step).
Prints the median ms/step and tokens/s over the warm steps (one JSON object with --json, which
records the precision). bench/compare.sh runs it in its tuned form next to bench_step.
"""
import argparse
import contextlib
import json
import os
import re
import resource
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
from gpt_reference import GPT, Llama  # noqa: E402


def read_config(path):
    """The few fields needed here, from skein's text-format config (defaults of proto/skein.proto)."""
    text = open(path).read()
    text = re.sub(r"#.*", "", text)

    def field(block, name, default, kind=int):
        m = re.search(block + r"\s*{([^}]*)}", text)
        if m:
            f = re.search(r"\b" + name + r"\s*:\s*([-+0-9.eE]+)", m.group(1))
            if f:
                return kind(f.group(1))
        return default

    def word(block, name, default):
        m = re.search(block + r"\s*{([^}]*)}", text)
        f = m and re.search(r"\b" + name + r"\s*:\s*([A-Za-z0-9_]+)", m.group(1))
        return f.group(1) if f else default

    d_model, n_head = field("model", "d_model", 384), field("model", "n_head", 6)
    return dict(vocab_size=field("model", "vocab_size", 256), seq_len=field("model", "seq_len", 256),
                n_layer=field("model", "n_layer", 6), n_head=n_head, d_model=d_model,
                batch_size=field("run", "batch_size", 8),
                lr=field("optimizer", "lr", 3e-4, float),
                weight_decay=field("optimizer", "weight_decay", 0.1, float),
                llama=word("model", "arch", "GPT2") == "LLAMA",
                n_kv_head=field("model", "n_kv_head", n_head),
                # engine/config.cc's default: 8/3 d_model rounded up to a multiple of 32
                ffn_dim=field("model", "ffn_dim", (8 * d_model // 3 + 31) // 32 * 32),
                rope_theta=field("model", "rope_theta", 10000.0, float),
                norm_eps=field("model", "norm_eps", 1e-5, float),
                tied=word("model", "tie_embeddings", "true") == "true")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="bf16: forward and loss under bf16 autocast (default fp32)")
    ap.add_argument("--set", action="append", default=[], metavar="PATH=VALUE")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    cfg = read_config(a.config)
    for item in a.set:
        path, sep, value = item.partition("=")
        key = path.rpartition(".")[2]
        if not sep:
            ap.error(f"--set {item}: expected path=value")
        if key in cfg and not isinstance(cfg[key], bool):
            cfg[key] = type(cfg[key])(float(value)) if isinstance(cfg[key], int) else float(value)
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    if cfg["llama"]:
        model = Llama(cfg["vocab_size"], cfg["seq_len"], cfg["n_layer"], cfg["n_head"], cfg["n_kv_head"],
                      cfg["d_model"], cfg["ffn_dim"], cfg["rope_theta"], cfg["norm_eps"], cfg["tied"])
    else:
        model = GPT(cfg["vocab_size"], cfg["seq_len"], cfg["n_layer"], cfg["n_head"], cfg["d_model"])
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif p.dim() == 1:  # the norms' weights
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg["weight_decay"]},
                             {"params": other, "weight_decay": 0.0}], lr=cfg["lr"], betas=(0.9, 0.95))
    B, T, V = cfg["batch_size"], cfg["seq_len"], cfg["vocab_size"]

    def autocast():
        if a.precision == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    times = []
    for step in range(a.warmup + a.steps):
        x = torch.randint(0, V, (B, T))
        y = torch.randint(0, V, (B, T))
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with autocast():
            _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step >= a.warmup:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    out = dict(config=a.config, threads=a.threads, precision=a.precision, ms_per_step=med * 1e3,
               tokens_per_s=B * T / med,
               peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
               torch=torch.__version__)
    if a.json:
        print(json.dumps(out))
    else:
        print(f"pytorch {torch.__version__}: {a.config} {a.threads} threads, {a.precision}: "
              f"{out['ms_per_step']:.1f} ms/step, "
              f"{out['tokens_per_s']:.0f} tokens/s, peak RSS {out['peak_rss_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
