#!/usr/bin/python3
"""Times our CPU ops (the a2f_bench_ops binary, JSON output) and the same ops in PyTorch in one run.

usage: /usr/bin/python3 bench/compare_torch.py build/bin/a2f_bench_ops [--filter REGEX] [--repeats N] [--cpu-time]

Each op is timed alternately (ours, torch) N times and the best of each is kept. With --cpu-time both sides run
on one thread and CPU time is compared instead of wall time: a measure of the work that other processes on a
shared machine do not disturb.

PyTorch gets its best CPU setup: all cores (torch.set_num_threads(os.cpu_count())), oneDNN convolutions
(torch.backends.mkldnn), the system BLAS (OpenBLAS, libopenblas0-pthread) for f32 matmuls, no_grad, warm-up.
Attention is the unfused path diffusers' AttnProcessor takes on torch 1.13 (head_to_batch_dim, baddbmm with
the scale, softmax, bmm, batch_to_head_dim); CLIP adds its causal mask through baddbmm's input.
Prints a table: op, shape, dtype, ours ms, torch ms, ours/torch.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

import torch
import torch.nn.functional as F


def list_ours(binary, flt):
    cmd = [binary, "--benchmark_list_tests=true", f"--benchmark_filter={flt}"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def run_ours(binary, full_name, cpu_time):
    """One benchmark of ours (exact name); returns (ms per iteration, context). cpu_time: one thread, CPU time."""
    cmd = [binary, "--benchmark_format=json", f"--benchmark_filter=^{re.escape(full_name)}$"]
    env = dict(os.environ)
    if cpu_time:
        env["OMP_NUM_THREADS"] = "1"
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    data = json.loads(out)
    b = data["benchmarks"][0]
    scale = {"ms": 1.0, "us": 1e-3, "ns": 1e-6, "s": 1e3}[b["time_unit"]]
    return b["cpu_time" if cpu_time else "real_time"] * scale, data.get("context", {})


def time_torch(fn, min_time, cpu_time):
    clock = time.process_time if cpu_time else time.perf_counter
    fn()
    fn()  # warm-up (oneDNN primitive creation, allocator)
    n, start = 0, clock()
    while True:
        fn()
        n += 1
        el = clock() - start
        if el >= min_time and n >= 2:
            return el / n * 1e3


def torch_op(name):
    op, shape, ds = name.split("/")
    dt = {"f32": torch.float32, "bf16": torch.bfloat16}[ds]
    nums = [int(v) for v in re.findall(r"\d+", shape)]
    g = torch.Generator().manual_seed(0)

    def rnd(*s, scale=1.0):
        return (torch.randn(*s, generator=g) * scale).to(dt)

    if op in ("conv3x3", "conv3x3_wino"):
        b, c, h, w = nums
        conv = torch.nn.Conv2d(c, c, 3, padding=1).to(dt).eval()
        x = rnd(b, c, h, w)
        return lambda: conv(x)
    if op == "linear":
        m, k, n = nums
        x, wt, bias = rnd(m, k), rnd(n, k, scale=0.05), rnd(n, scale=0.1)
        return lambda: F.linear(x, wt, bias)
    if op == "matmul":
        bt, m, k, n = nums
        a, bm = rnd(bt, m, k), rnd(k, n, scale=0.05)
        return lambda: torch.matmul(a, bm)
    if op == "bmm":
        bt, m, k, n = nums
        a, bm = rnd(bt, m, k), rnd(bt, k, n, scale=0.05)
        return lambda: torch.bmm(a, bm)
    if op == "attention":
        kind = shape.split("_")[0]
        if kind == "self":
            b, l, heads, d = nums[0], nums[1], nums[2], nums[3]
            lk = l
        elif kind == "cross":
            b, l, lk, heads, d = nums
        elif kind == "vae":
            b, l, heads, d = nums
            lk = l
        else:  # clip causal
            b, l, heads, d = nums
            lk = l
        q, k, v = rnd(b, l, heads * d), rnd(b, lk, heads * d), rnd(b, lk, heads * d)
        scale = d ** -0.5
        mask = None
        if kind == "clip":
            mask = torch.full((l, l), float("-inf"), dtype=dt).triu(1)[None]

        def h2b(t):
            bb, ll, _ = t.shape
            return t.reshape(bb, ll, heads, d).permute(0, 2, 1, 3).reshape(bb * heads, ll, d)

        def attn():
            qh, kh, vh = h2b(q), h2b(k), h2b(v)
            if mask is None:
                base = torch.empty(qh.shape[0], qh.shape[1], kh.shape[1], dtype=qh.dtype)
                s = torch.baddbmm(base, qh, kh.transpose(-1, -2), beta=0, alpha=scale)
            else:
                s = torch.baddbmm(mask, qh, kh.transpose(-1, -2), beta=1, alpha=scale)
            p = s.softmax(dim=-1)
            o = torch.bmm(p, vh)
            return o.reshape(b, heads, l, d).permute(0, 2, 1, 3).reshape(b, l, heads * d)

        return attn
    if op == "group_norm_silu":
        b, c, h, w = nums
        x, gm, bt = rnd(b, c, h, w), rnd(c), rnd(c)
        return lambda: F.silu(F.group_norm(x, 32, gm, bt, 1e-5))
    if op == "group_norm":
        b, c, h, w = nums
        x, gm, bt = rnd(b, c, h, w), rnd(c), rnd(c)
        return lambda: F.group_norm(x, 32, gm, bt, 1e-5)
    if op == "layer_norm":
        b, l, d = nums
        x, gm, bt = rnd(b, l, d), rnd(d), rnd(d)
        return lambda: F.layer_norm(x, (d,), gm, bt, 1e-5)
    if op == "geglu":  # diffusers GEGLU after its projection: chunk, gate with exact GELU
        b, l, h2 = nums
        x = rnd(b, l, h2)

        def geglu():
            hs, gate = x.chunk(2, dim=-1)
            return hs * F.gelu(gate)

        return geglu
    if op == "silu":
        x = rnd(*nums)
        return lambda: F.silu(x)
    if op == "add":  # <a shape>+<b shape>
        sa, sb = ([int(v) for v in re.findall(r"\d+", part)] for part in shape.split("+"))
        a, bb = rnd(*sa), rnd(*sb)
        return lambda: a + bb
    raise ValueError(f"no torch version of {name}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--filter", default=".")
    ap.add_argument("--min-time", type=float, default=0.5, help="seconds per torch measurement")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cpu-time", action="store_true",
                    help="both sides on one thread, CPU time instead of wall time (robust to other load)")
    args = ap.parse_args()

    torch.set_num_threads(1 if args.cpu_time else os.cpu_count())
    torch.backends.mkldnn.enabled = True
    names = list_ours(args.binary, args.filter)
    rows, ctx = [], {}
    with torch.no_grad():
        for full in names:
            name = full.split("/min_time")[0]
            fn = torch_op(name)
            ours_ms, torch_ms = [], []
            for _ in range(args.repeats):  # interleaved, best of N: robust to other load on the machine
                ms, ctx = run_ours(args.binary, full, args.cpu_time)
                ours_ms.append(ms)
                torch_ms.append(time_torch(fn, args.min_time, args.cpu_time))
            rows.append((name, min(ours_ms), min(torch_ms)))
            print(f"  {name}: ours {min(ours_ms):.2f} ms, torch {min(torch_ms):.2f} ms", file=sys.stderr)
    mode = "single thread, CPU time" if args.cpu_time else "wall time"
    print(f"# {mode}; ours: {ctx.get('a2f_backend', '?')}, {ctx.get('a2f_threads', '?')} threads; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"mkldnn {torch.backends.mkldnn.is_available()}; best of {args.repeats} interleaved runs")
    print(f"{'op':<16} {'shape':<28} {'dtype':<5} {'ours ms':>9} {'torch ms':>9} {'ours/torch':>10}")
    for name, ms, t in rows:
        op, shape, ds = name.split("/")
        print(f"{op:<16} {shape:<28} {ds:<5} {ms:9.2f} {t:9.2f} {ms / t:10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
